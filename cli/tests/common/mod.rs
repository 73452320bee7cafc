//! What the black-box tests of the CLI (`cli.rs`, `flags.rs`, `pid1.rs`)
//! share: running the built binary with a time limit, collecting everything
//! it wrote, and leaving nothing running when a run fails.
//!
//! Every test file that uses this module also declares `mod support` (the
//! workspace's `tests/support`) at its root, for [`kill_strays`].

#![allow(dead_code)] // Each test file uses its own part.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::support::children;

/// How long any single CLI run may take before the test gives up on it.
pub const LIMIT: Duration = Duration::from_secs(30);

/// What one run of the CLI produced.
pub struct Out {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// From just before the spawn until the process was reaped.
    pub elapsed: Duration,
}

impl Out {
    /// Asserts the exit code, showing both streams when it differs.
    pub fn expect_code(&self, code: i32) -> &Out {
        assert_eq!(
            self.code,
            code,
            "exit code; stderr: {:?}; stdout: {:?}",
            self.stderr_str(),
            self.stdout_str()
        );
        self
    }

    /// Asserts exit code 0 and nothing on stderr.
    pub fn expect_clean(&self) -> &Out {
        self.expect_code(0);
        assert_eq!(self.stderr_str(), "", "stderr");
        self
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Asserts that stderr is exactly one line starting with `procession: `.
    pub fn expect_one_error_line(&self) -> String {
        let err = String::from_utf8(self.stderr.clone()).expect("utf-8 stderr");
        assert!(err.starts_with("procession: "), "stderr: {err:?}");
        assert!(
            err.ends_with('\n') && err.matches('\n').count() == 1,
            "stderr: {err:?}"
        );
        err
    }

    /// Asserts exit code 125 and a one-line `procession: ` message or a
    /// clap `error: ` message that contains `what`.
    pub fn expect_usage_error(&self, what: &str) {
        self.expect_code(125);
        let err = self.stderr_str();
        assert!(
            err.starts_with("procession: ") || err.starts_with("error: "),
            "stderr: {err:?}"
        );
        assert!(err.contains(what), "{what:?} not in stderr: {err:?}");
    }
}

/// The CLI binary, with stdin from /dev/null.
pub fn procession() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_procession"));
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs the CLI with `args` and collects everything.
pub fn run(args: &[&str]) -> Out {
    run_cmd(procession().args(args))
}

/// Runs a prepared command (stdout and stderr are captured); a death by
/// signal is the code 128+N.
pub fn run_cmd(cmd: &mut Command) -> Out {
    run_piped(cmd, None, code_of)
}

/// Runs a prepared command with stdin, stdout and stderr piped: `input`
/// (if any) is written to its stdin, which is then closed. `code` turns
/// the exit status into [`Out::code`] ([`code_of`] or [`own_exit_code`]).
pub fn run_piped(cmd: &mut Command, input: Option<&[u8]>, code: fn(ExitStatus) -> i32) -> Out {
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = read_in_background(child.stdout.take().expect("stdout"));
    let stderr = read_in_background(child.stderr.take().expect("stderr"));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).expect("write stdin");
    }
    let status = wait_for(&mut child);
    let elapsed = start.elapsed();
    // Something the process left running may still hold the pipes: fail
    // rather than wait for it forever.
    let collect = |rx: mpsc::Receiver<Vec<u8>>, name: &str| {
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| {
                kill_strays();
                panic!("exited but its {name} is still open (a stray descendant?)")
            })
    };
    Out {
        code: code(status),
        stdout: collect(stdout, "stdout"),
        stderr: collect(stderr, "stderr"),
        elapsed,
    }
}

/// Reads `r` to the end on a thread; the bytes arrive on the channel.
pub fn read_in_background(r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(read_all(r));
    });
    rx
}

/// Reads `r` to the end.
pub fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut buf = Vec::new();
    r.read_to_end(&mut buf).expect("read to the end");
    buf
}

/// Waits for `child`, killing it and whatever else of ours still runs
/// (and failing) after [`LIMIT`].
pub fn wait_for(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            kill_strays();
            panic!("did not exit within {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// The exit code; a death by signal is 128+N, as a shell shows it.
pub fn code_of(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// The code a process exited with, for one that must exit by itself:
/// procession passes a program's death by signal on as its own exit code
/// 128+N, so a signal status means procession itself was killed, and the
/// test fails (after [`kill_strays`]).
pub fn own_exit_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| {
        // Its program may still run, and hold pipes we would read.
        kill_strays();
        panic!("procession itself was killed: {status:?}")
    })
}

/// Before failing a test: SIGKILL whatever of ours is still running, so
/// that it does not outlive the test or hold pipes open. As a subreaper
/// (see `support::Guard`), we are the parent of what procession orphaned.
pub fn kill_strays() {
    for p in children().iter().filter(|p| p.state != 'Z') {
        // SAFETY: kill(2) takes plain integers; `p` is our unreaped child, so
        // its pid cannot have been reused.
        unsafe { libc::kill(p.pid, libc::SIGKILL) };
    }
}

/// Whether we run as root (some flags need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

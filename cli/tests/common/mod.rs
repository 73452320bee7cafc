//! What the black-box tests of `flags.rs` and `pid1.rs` share: running the
//! built binary with a time limit and collecting everything it wrote.

#![allow(dead_code)] // Each test file uses its own part.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long any single CLI run may take before the test gives up on it.
pub const LIMIT: Duration = Duration::from_secs(30);

/// What one run of the CLI produced.
pub struct Out {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
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

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
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

/// Runs a prepared command (stdout and stderr are captured).
pub fn run_cmd(cmd: &mut Command) -> Out {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = read_in_background(child.stdout.take().expect("stdout"));
    let stderr = read_in_background(child.stderr.take().expect("stderr"));
    let status = wait_for(&mut child);
    let collect = |rx: mpsc::Receiver<Vec<u8>>, name: &str| {
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("exited but its {name} is still open"))
    };
    Out {
        code: code_of(status),
        stdout: collect(stdout, "stdout"),
        stderr: collect(stderr, "stderr"),
    }
}

/// Reads `r` to the end on a thread; the bytes arrive on the channel.
pub fn read_in_background(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Waits for `child`, killing it (and failing) after [`LIMIT`].
pub fn wait_for(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
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

/// Whether we run as root (some flags need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

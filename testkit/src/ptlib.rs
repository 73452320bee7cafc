//! `ptlib`: runs one library call the way an application would and reports
//! on stdout, so that tests can put it where the test process itself cannot
//! be: on a pseudo-terminal (`pt pty -- ptlib ...`), or in a session without
//! a controlling terminal. Every line it prints is flushed at once.
//!
//! - `ptlib status LINE`: `Command::shell(LINE).status()`, then
//!   `status: <shell code>`.
//! - `ptlib stop LINE`: spawns `Command::shell(LINE)` with stdout piped,
//!   relays its first line (the test's synchronisation point), calls
//!   `stop()` and prints `status: <shell code> ended: <Ended>`.
//! - `ptlib timeout MS LINE`: `Command::shell(LINE).timeout(MS ms)` with
//!   stdout piped: relays the first line, then waits and prints the status
//!   as `stop` does.
//! - `ptlib drop LINE`: as `stop`, but drops the handle instead, then waits
//!   until the library has reaped the child (its pid is gone from /proc)
//!   and prints `dropped`.
//!
//! - `ptlib spawn-at-nproc-limit`: (as root) sets `RLIMIT_NPROC` to 0,
//!   becomes user and group 65534 (nobody), so that the kernel refuses to
//!   create any process, then spawns `/bin/true` and prints `spawned`, or
//!   `error: <Step> <errno>` for the error it got.
//! - `ptlib drop-without-reaper`: (as root) becomes nobody, spawns
//!   `/bin/sleep 100`, then sets `RLIMIT_NPROC` to 1 so that the library's
//!   reaper thread cannot start (no new process or thread), drops the handle
//!   and prints `gone` if the child was killed and reaped by then, else
//!   `left running` (and kills and reaps it itself).
//!
//! - `ptlib reaper-after-emfile`: the background reaper cannot be had
//!   while the descriptor table is full, and a passing shortage must not
//!   disable it. Detaches a running `/bin/sleep 1` with no descriptor
//!   free, then spawns `/bin/sleep 100` with a timeout with one descriptor
//!   free (the child's pidfd takes it, the reaper's epoll finds none), then,
//!   with descriptors free again, runs `/bin/sleep 0.1` with a timeout, and
//!   prints `detach: <alive|killed> first: <spawned|error reaper|error
//!   other> second: <ok|...> detached: <reaped|left>`.
//!
//! - `ptlib write-after-exit`: a host whose SIGPIPE disposition is the
//!   default (as in C or Python): writes to the stdin of a child that has
//!   exited, through the handle and through `output()` with an input, and
//!   prints `handle: <io error kind> output: <ok|error>`. A SIGPIPE would
//!   kill it instead.
//!
//! - `ptlib watchdog-after-nproc-limit`: (as root) becomes nobody with
//!   `RLIMIT_NPROC` 0 (hard limit 1024), spawns `/bin/true` (refused: the
//!   owner-death watchdog cannot start either), raises the soft limit to
//!   1024, spawns again and prints `watchdog: <bool>`, whether a watchdog
//!   runs now (a passing shortage must not disable it for good).
//! - `ptlib as-nobody WHAT`: (as root) becomes nobody, then spawns `id -u`
//!   with a setting nobody has no right to: `user-root` (`user("root")`),
//!   `raise-hard-limit` (`RLIMIT_NOFILE` hard limit above nobody's),
//!   `negative-nice` (`nice(-5)`), or `user-self` (`user("nobody")`, which
//!   needs no right), and prints the child's output as
//!   `ran: <stdout>`, or `error: <Step> <ErrorKind> <errno>`.
//! - `ptlib foreground-after-emfile`: asks whether it is in the terminal's
//!   foreground while no descriptor is free (opening `/dev/tty` fails with
//!   EMFILE), then again with descriptors free, and prints
//!   `emfile: <bool> after: <bool>`. Run on a terminal (`pt pty`), a
//!   passing failure must not be remembered as "no terminal".
//! - `ptlib bad-inputs-as-nobody DIR`: (as root) becomes nobody, then
//!   spawns `true` four times, each with one thing nobody may not have
//!   (DIR is a directory only root may enter): stdin from `DIR/in`, stdout
//!   to `DIR/out`, `DIR` as working directory, `user("root")`. Prints one
//!   line per spawn: `<ErrorKind> <Step> <message>`, or `ran`.
//!
//! - `ptlib emfile-sweep OP` / `ptlib emfile-once OP`: OP run with the
//!   descriptor table nearly full, at every size of shortage (see
//!   `emfile.rs`).
//! - `ptlib closed-std REPORT`: run with descriptors 0, 1 and 2 closed (a
//!   daemon's state; it closes them itself, since the Rust runtime
//!   reopens them onto /dev/null before `main`): checks that they are closed, then runs `cat` with an
//!   input through `output()`, a shell writing to both streams through
//!   `events()`, and a child with stdin, stdout and stderr piped through
//!   the handle, and writes `closed: <fds found open>`, `output: <stdout>`,
//!   `events: <stdout>|<stderr>` and `child: <stdout>|<stderr>` lines to the
//!   file REPORT (it has no stdout). The library's pipes then get the low
//!   numbers 0–2 themselves: a child side that moved them onto 0–2 in the
//!   wrong order would cross or close them.
//!
//! Exit code: 0 after a report, 2 on bad usage, 1 when the library failed.

mod emfile;

use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;

use procession::{Command, Limit, Stdio};

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["status", line] => Command::shell(line)
            .status()
            .map(|s| say(&format!("status: {}", s.shell_code()))),
        // A pipeline whose first stage was given no stdin: what that stage
        // has as fd 0 (this process's own stdin must not leak into it).
        ["pipeline-stdin"] => Command::shell("readlink /proc/self/fd/0")
            .pipe(&Command::new("cat"))
            .output()
            .map(|o| {
                say(&format!(
                    "stdin: {}",
                    String::from_utf8_lossy(&o.stdout).trim_end()
                ))
            }),
        ["stop", line] => stop(line, End::Stop),
        ["drop", line] => stop(line, End::Drop),
        ["spawn-at-nproc-limit"] => {
            if become_nobody_with_nproc(Some((0, 0))) {
                at_nproc_limit();
            }
            return ExitCode::SUCCESS;
        }
        ["as-nobody", what] => {
            if become_nobody_with_nproc(None) {
                as_nobody(what);
            }
            return ExitCode::SUCCESS;
        }
        ["bad-inputs-as-nobody", dir] => {
            if become_nobody_with_nproc(None) {
                bad_inputs_as_nobody(std::path::Path::new(dir));
            }
            return ExitCode::SUCCESS;
        }
        ["foreground-after-emfile"] => {
            foreground_after_emfile();
            return ExitCode::SUCCESS;
        }
        ["watchdog-after-nproc-limit"] => {
            if become_nobody_with_nproc(Some((0, 1024))) {
                watchdog_after_nproc_limit();
            }
            return ExitCode::SUCCESS;
        }
        ["write-after-exit"] => {
            write_after_exit();
            return ExitCode::SUCCESS;
        }
        ["reaper-after-emfile"] => {
            reaper_after_emfile();
            return ExitCode::SUCCESS;
        }
        ["drop-without-reaper"] => {
            if become_nobody_with_nproc(None) {
                drop_without_reaper();
            }
            return ExitCode::SUCCESS;
        }
        ["emfile-sweep", op] => {
            emfile::run(op, true);
            return ExitCode::SUCCESS;
        }
        ["emfile-once", op] => {
            emfile::run(op, false);
            return ExitCode::SUCCESS;
        }
        ["closed-std", report] => {
            closed_std(report);
            return ExitCode::SUCCESS;
        }
        ["timeout", ms, line] => match ms.parse() {
            Ok(ms) => stop(line, End::Timeout(ms)),
            Err(_) => {
                eprintln!("ptlib: bad milliseconds {ms:?}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!(
                "usage: ptlib status LINE | stop LINE | drop LINE | timeout MS LINE \
                 | spawn-at-nproc-limit"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ptlib: {e}");
            ExitCode::from(1)
        }
    }
}

/// How `stop` ends the child.
enum End {
    Stop,
    Drop,
    Timeout(u64),
}

fn stop(line: &str, end: End) -> Result<(), procession::Error> {
    let mut cmd = Command::shell(line);
    cmd.stdout(Stdio::piped());
    if let End::Timeout(ms) = end {
        cmd.timeout(std::time::Duration::from_millis(ms));
    }
    let mut child = cmd.spawn()?;
    let mut first = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut first);
    }
    say(first.trim_end());
    let status = match end {
        End::Stop => child.stop()?,
        End::Timeout(_) => child.wait()?,
        End::Drop => {
            let pid = child.pid();
            drop(child);
            // The library reaps it in the background; /proc tells when.
            while std::path::Path::new(&format!("/proc/{pid}")).exists() {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            say("dropped");
            return Ok(());
        }
    };
    say(&format!(
        "status: {} ended: {:?}",
        status.shell_code(),
        status.ended()
    ));
    Ok(())
}

/// Sets `RLIMIT_NPROC` to `limit` (soft, hard; if given) and becomes user
/// and group 65534; says why and returns `false` if that failed.
fn become_nobody_with_nproc(limit: Option<(libc::rlim_t, libc::rlim_t)>) -> bool {
    // SAFETY: plain system calls on this process's own limits and ids.
    let dropped = unsafe {
        limit.is_none_or(|(soft, hard)| set_nproc(soft, hard))
            && libc::setgroups(0, std::ptr::null()) == 0
            && libc::setgid(65534) == 0
            && libc::setuid(65534) == 0
    };
    if !dropped {
        say(&format!(
            "setup failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    dropped
}

/// `setrlimit(RLIMIT_NPROC, {soft, hard})`; `true` when it worked.
fn set_nproc(soft: libc::rlim_t, hard: libc::rlim_t) -> bool {
    let rl = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the valid `rl`; it changes only this process.
    unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &rl) == 0 }
}

/// Opens `/dev/null` until the descriptor table is full (under a soft
/// limit of 256), then closes `free` of them: exactly `free` descriptors
/// are left.
fn fill_fds(free: usize) -> Vec<std::fs::File> {
    let rl = libc::rlimit {
        rlim_cur: 256,
        rlim_max: libc::RLIM_INFINITY,
    };
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write valid rlimit structs and
    // change only this process's own limit (the soft one, within the hard).
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur);
        libc::setrlimit(
            libc::RLIMIT_NOFILE,
            &libc::rlimit {
                rlim_max: cur.rlim_max,
                ..rl
            },
        );
    }
    let mut files = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        files.push(f);
    }
    files.truncate(files.len().saturating_sub(free));
    files
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

/// See `write-after-exit` in the module docs.
fn write_after_exit() {
    // SAFETY: restoring SIGPIPE's default action has no memory-safety
    // preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let mut child = match Command::new("/bin/true").stdin(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => return say(&format!("setup failed: {e}")),
    };
    if child.wait().is_err() {
        return say("setup failed: wait");
    }
    // wait() closed our stdin end; write through a fresh child's instead.
    let mut child = match Command::new("/bin/true").stdin(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => return say(&format!("setup failed: {e}")),
    };
    let mut stdin = child.stdin.take().expect("piped");
    let _ = child.wait();
    let handle = match stdin.write_all(&[b'x'; 100_000]) {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("{:?}", e.kind()),
    };
    let output = match Command::new("/bin/true")
        .input([vec![b'y'; 1 << 20]])
        .output()
    {
        Ok(o) if o.status.success() => "ok".to_string(),
        Ok(o) => format!("status {}", o.status),
        Err(e) => format!("error {e}"),
    };
    say(&format!("handle: {handle} output: {output}"));
}

/// See `reaper-after-emfile` in the module docs.
fn reaper_after_emfile() {
    use std::time::{Duration, Instant};
    // The owner-death watchdog first: its descriptors stay for good.
    if Command::new("/bin/true").status().is_err() {
        say("setup failed: first spawn");
        return;
    }
    let detached = match Command::new("/bin/sleep").arg("1").spawn() {
        Ok(c) => c,
        Err(e) => return say(&format!("setup failed: {e}")),
    };
    let dpid = detached.pid();
    let fillers = fill_fds(0);
    detached.detach();
    drop(fillers); // (reading /proc needs a descriptor)
    let after_detach = if alive(dpid) { "alive" } else { "killed" };
    let fillers = fill_fds(1);
    let first = Command::new("/bin/sleep")
        .arg("100")
        .timeout(Duration::from_secs(10))
        .spawn();
    drop(fillers);
    let first = match first {
        Ok(mut c) => {
            let _ = c.kill();
            let _ = c.wait();
            "spawned".to_string()
        }
        Err(e) if e.to_string().contains("reaper") => "error reaper".to_string(),
        Err(e) => format!("error other ({e})"),
    };
    let second = match Command::new("/bin/sleep")
        .arg("0.1")
        .timeout(Duration::from_secs(10))
        .status()
    {
        Ok(s) if s.success() => "ok".to_string(),
        Ok(s) => format!("failed ({s})"),
        Err(e) => format!("error ({e})"),
    };
    // The detached child ends after 1 s; the reaper that started since
    // reaps it (its /proc entry goes).
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{dpid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10)); // polling /proc, no event for it
    }
    let detached = if std::path::Path::new(&format!("/proc/{dpid}")).exists() {
        "left"
    } else {
        "reaped"
    };
    say(&format!(
        "detach: {after_detach} first: {first} second: {second} detached: {detached}"
    ));
}

/// See `watchdog-after-nproc-limit` in the module docs (nobody already,
/// with no process allowed).
fn watchdog_after_nproc_limit() {
    if Command::new("/bin/true").status().is_ok() {
        say("setup failed: spawned at the limit");
        return;
    }
    if !set_nproc(1024, 1024) {
        say(&format!(
            "setup failed: {}",
            std::io::Error::last_os_error()
        ));
        return;
    }
    match Command::new("/bin/true").status() {
        Ok(_) => say(&format!(
            "watchdog: {}",
            procession::__test_support::watchdog_pid().is_some()
        )),
        Err(e) => say(&format!("error: {e}")),
    }
}

/// See `spawn-at-nproc-limit` in the module docs.
fn at_nproc_limit() {
    match Command::new("/bin/true").spawn() {
        Ok(mut child) => {
            let _ = child.wait();
            say("spawned");
        }
        Err(e) => {
            let errno = e.os_error().and_then(|e| e.raw_os_error());
            let name = match errno {
                Some(libc::EAGAIN) => "EAGAIN".to_string(),
                other => format!("{other:?}"),
            };
            say(&format!("error: {:?} {name}", e.step()));
        }
    }
}

/// See `bad-inputs-as-nobody` in the module docs.
fn bad_inputs_as_nobody(dir: &std::path::Path) {
    let settings: [fn(&mut Command, &std::path::Path); 4] = [
        |cmd, dir| {
            cmd.stdin(Stdio::file(dir.join("in")));
        },
        |cmd, dir| {
            cmd.stdout(Stdio::file(dir.join("out")));
        },
        |cmd, dir| {
            cmd.current_dir(dir);
        },
        |cmd, _| {
            cmd.user("root");
        },
    ];
    for set in settings {
        let mut cmd = Command::new("true");
        set(&mut cmd, dir);
        match cmd.status() {
            Ok(_) => say("ran"),
            Err(e) => say(&format!("{:?} {:?} {e}", e.kind(), e.step())),
        }
    }
}

/// See `as-nobody` in the module docs.
fn as_nobody(what: &str) {
    let mut cmd = Command::new("id");
    cmd.arg("-u");
    match what {
        "user-root" => cmd.user("root"),
        // Becoming oneself needs no right: this one must run.
        "user-self" => cmd.user("nobody"),
        "raise-hard-limit" => {
            let mut rl = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: `rl` is a valid out pointer.
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
            cmd.limit(Limit::OpenFiles, rl.rlim_cur, rl.rlim_max + 1)
        }
        "negative-nice" => cmd.nice(-5),
        _ => {
            say(&format!("unknown as-nobody case {what:?}"));
            return;
        }
    };
    match cmd.run() {
        Ok(out) => say(&format!(
            "ran: {}",
            String::from_utf8_lossy(&out.stdout).trim_end()
        )),
        Err(e) => {
            let errno = e.os_error().and_then(|e| e.raw_os_error());
            let name = match errno {
                Some(libc::EPERM) => "EPERM".to_string(),
                Some(libc::EACCES) => "EACCES".to_string(),
                other => format!("{other:?}"),
            };
            say(&format!("error: {:?} {:?} {name}", e.step(), e.kind()));
        }
    }
}

/// See `foreground-after-emfile` in the module docs.
fn foreground_after_emfile() {
    let mut saved = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on this process with valid pointers.
    let during = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut saved);
        // No descriptor number is below the limit except those in use
        // (0, 1, 2 and the reaper's, at most): every open fails.
        let none = libc::rlimit {
            rlim_cur: 3,
            rlim_max: saved.rlim_max,
        };
        libc::setrlimit(libc::RLIMIT_NOFILE, &none);
        let during = procession::__test_support::in_foreground();
        libc::setrlimit(libc::RLIMIT_NOFILE, &saved);
        during
    };
    let after = procession::__test_support::in_foreground();
    say(&format!("emfile: {during} after: {after}"));
}

/// See `drop-without-reaper` in the module docs.
fn drop_without_reaper() {
    let child = match Command::new("/bin/sleep").arg("100").spawn() {
        Ok(child) => child,
        Err(e) => {
            say(&format!("spawn failed: {e}"));
            return;
        }
    };
    let pid = child.pid() as libc::pid_t;
    // Now no new process or thread is allowed (nobody has at least this
    // one and the child).
    let one = libc::rlimit {
        rlim_cur: 1,
        rlim_max: 1,
    };
    // SAFETY: lowering this process's own limit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &one) } != 0 {
        say("setup failed: setrlimit");
    }
    drop(child);
    if std::path::Path::new(&format!("/proc/{pid}")).exists() {
        say("left running");
        // SAFETY: killing and reaping our own child by pid.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    } else {
        say("gone");
    }
}

/// See `closed-std` in the module docs.
fn closed_std(report: &str) {
    use std::io::Read;
    // The Rust runtime reopens closed fds 0-2 onto /dev/null before main:
    // close them here, as a C daemon would have them.
    for fd in 0..3 {
        // SAFETY: closing the standard descriptors; nothing in this
        // program uses them from here on (reports go to a file).
        unsafe { libc::close(fd) };
    }
    let mut lines = Vec::new();
    let open: Vec<String> = (0..3)
        .filter(|fd| {
            // SAFETY: F_GETFD only queries whether the descriptor is open.
            let flags = unsafe { libc::fcntl(*fd, libc::F_GETFD) };
            flags != -1
        })
        .map(|fd| fd.to_string())
        .collect();
    lines.push(format!("closed: {}", open.join(",")));
    let show = |b: &[u8]| String::from_utf8_lossy(b).replace('\n', "\\n");
    lines.push(match Command::new("/bin/cat").input_bytes("abc").output() {
        Ok(o) => format!("output: {} {}", show(&o.stdout), o.status),
        Err(e) => format!("output: error {e}"),
    });
    let shell = "read line; echo \"out $line\"; echo err >&2";
    lines.push(
        match Command::shell(shell)
            .input_bytes("in\n")
            .stderr(Stdio::piped())
            .events()
            .and_then(|e| e.collect_output())
        {
            Ok(o) => format!("events: {}|{}", show(&o.stdout), show(&o.stderr)),
            Err(e) => format!("events: error {e}"),
        },
    );
    let child = Command::shell(shell)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    lines.push(match child {
        Ok(mut c) => {
            let _ = c.stdin.take().expect("piped").write_all(b"in\n");
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let _ = c.stdout.take().expect("piped").read_to_end(&mut out);
            let _ = c.stderr.take().expect("piped").read_to_end(&mut err);
            let _ = c.wait();
            format!("child: {}|{}", show(&out), show(&err))
        }
        Err(e) => format!("child: error {e}"),
    });
    let _ = std::fs::write(report, lines.join("\n") + "\n");
}

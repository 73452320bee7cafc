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
//!
//! Exit code: 0 after a report, 2 on bad usage, 1 when the library failed.

use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;

use procession::{Command, Stdio};

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
        ["stop", line] => stop(line, End::Stop),
        ["drop", line] => stop(line, End::Drop),
        ["spawn-at-nproc-limit"] => {
            at_nproc_limit();
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

/// See `spawn-at-nproc-limit` in the module docs.
fn at_nproc_limit() {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on this process's own limits and ids.
    let dropped = unsafe {
        libc::setrlimit(libc::RLIMIT_NPROC, &none) == 0
            && libc::setgroups(0, std::ptr::null()) == 0
            && libc::setgid(65534) == 0
            && libc::setuid(65534) == 0
    };
    if !dropped {
        say(&format!(
            "setup failed: {}",
            std::io::Error::last_os_error()
        ));
        return;
    }
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

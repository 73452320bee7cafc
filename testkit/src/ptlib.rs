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
        ["timeout", ms, line] => match ms.parse() {
            Ok(ms) => stop(line, End::Timeout(ms)),
            Err(_) => {
                eprintln!("ptlib: bad milliseconds {ms:?}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: ptlib status LINE | stop LINE | drop LINE | timeout MS LINE");
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

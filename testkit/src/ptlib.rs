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
        ["stop", line] => stop(line),
        _ => {
            eprintln!("usage: ptlib status LINE | ptlib stop LINE");
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

fn stop(line: &str) -> Result<(), procession::Error> {
    let mut child = Command::shell(line).stdout(Stdio::piped()).spawn()?;
    let mut first = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut first);
    }
    say(first.trim_end());
    let status = child.stop()?;
    say(&format!(
        "status: {} ended: {:?}",
        status.shell_code(),
        status.ended()
    ));
    Ok(())
}

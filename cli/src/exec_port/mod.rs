//! `procession exec-port`: a drop-in replacement for erlexec's port
//! program, built on procession's public API. See `docs/EXEC-PORT.md`.
//!
//! The binary answers to `procession exec-port [ARGS]` and, busybox-style,
//! to being run under the name `exec-port` (a copy or a symlink of the
//! `procession` binary in erlexec's `priv/<arch>/` directory).

pub mod options;
mod port;
pub mod term;

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

pub use port::CHUNK;

/// If this process was started as exec-port (its name is `exec-port`, or
/// its first argument is `exec-port`), runs the port and returns its exit
/// code; otherwise `None`.
pub fn dispatch() -> Option<i32> {
    let mut args = std::env::args_os();
    let argv0 = args.next()?;
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    if name == "exec-port" {
        return Some(main(args.collect()));
    }
    let rest: Vec<OsString> = args.collect();
    if rest.first().is_some_and(|a| a == "exec-port") {
        return Some(main(rest[1..].to_vec()));
    }
    None
}

const USAGE: &str = "\
usage: exec-port [-n] [-alarm SECS] [-debug [LEVEL]] [-user USER] [-cap CAPS] [-demand BYTES] [--whoami] [-h]
erlexec's port program (procession exec-port): speaks erlexec's protocol on stdin/stdout.
  -n              use fds 3 and 4 instead of 0 and 1
  -alarm SECS     the longest a shutdown may take before what is left is killed (15)
  -debug [LEVEL]  debug messages on stderr
  -user USER      children run as USER (the port must be root for another user)
  -cap CAPS       accepted and ignored (no capabilities support)
  -demand BYTES   every child's output is demand-driven with this window (see docs/EXEC-PORT.md)
  --whoami        print the effective user's name and exit
Other arguments are ignored, as erlexec's port does.
";

/// Runs exec-port with these arguments (without the program name); returns
/// the exit code: 0 after `{shutdown}` or end of input, 1 after a signal or
/// an error, and erlexec's startup codes (3: bad user or I/O setup, 4: no
/// `SHELL`, or a user switch that is impossible).
pub fn main(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut fds34 = false;
    let mut alarm = Duration::from_secs(15);
    let mut debug = 0;
    let mut user = None;
    let mut demand = None;
    let mut i = 0;
    let next_num = |i: usize| args.get(i + 1).and_then(|a| a.parse::<u64>().ok());
    while i < args.len() {
        match args[i].as_str() {
            "-n" => fds34 = true,
            "-alarm" => {
                if let Some(n) = next_num(i) {
                    alarm = Duration::from_secs(n);
                    i += 1;
                }
            }
            "-debug" => {
                debug = 1;
                if let Some(n) = next_num(i) {
                    debug = n.min(10) as i64;
                    i += 1;
                }
            }
            "-user" => {
                if let Some(u) = args.get(i + 1) {
                    user = Some(u.clone());
                    i += 1;
                }
            }
            "-cap" => i += 1,
            "-demand" => {
                if let Some(n) = next_num(i).filter(|&n| n > 0) {
                    demand = Some(n);
                    i += 1;
                }
            }
            "--whoami" => {
                println!("{}", user_name(euid()));
                return 0;
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                return 0;
            }
            _ => {}
        }
        i += 1;
    }
    let shell = std::env::var_os("SHELL").unwrap_or_default();
    if shell.is_empty() {
        eprintln!("exec-port: SHELL is not set: it runs every string command");
        return 4;
    }
    if let Some(u) = &user {
        let me = euid();
        let uid = match uid_of(u) {
            Some(uid) => uid,
            None => {
                eprintln!("exec-port: unknown user {u}");
                return 3;
            }
        };
        if me != 0 && uid != me {
            eprintln!("exec-port: cannot run children as {u}: the port is not root");
            return 4;
        }
    }
    let defaults = options::Defaults {
        shell,
        user,
        demand,
    };
    port::run(port::Config {
        fds34,
        alarm,
        debug,
        defaults,
    })
}

/// The effective uid: the owner of /proc/self (no unsafe call needed).
fn euid() -> u32 {
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

/// Entries of /etc/passwd as (name, uid).
fn passwd() -> Vec<(String, u32)> {
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((name.to_owned(), uid))
        })
        .collect()
}

fn user_name(uid: u32) -> String {
    passwd()
        .into_iter()
        .find(|(_, u)| *u == uid)
        .map_or_else(|| uid.to_string(), |(n, _)| n)
}

fn uid_of(user: &str) -> Option<u32> {
    passwd()
        .into_iter()
        .find(|(n, _)| n == user)
        .map(|(_, u)| u)
        .or_else(|| user.parse().ok())
}

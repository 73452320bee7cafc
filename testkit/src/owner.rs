//! `owner`: a program that uses the library to start children and then
//! ends without stopping them, so that tests can check that nothing it
//! started outlives it (owner-death cleanup).
//!
//! `owner MARK N [OPTION]...` starts N children, each `sh` with a
//! grandchild `sleep` (`sleep 1000 & ...; exec sleep 1000`), every one with
//! `PT_MARK=MARK` in its environment (the test counts survivors by it). Each
//! child reports `up` on its stdout once its grandchild is started; when
//! all have, the owner prints `ready <pids>` and then ends as told.
//!
//! Options:
//! - `--daemons`: each child's grandchild is started with `setsid` (it
//!   leaves the child's process group and session before `up`).
//! - `--cgroup DIR`: every child in a cgroup of its own under DIR (`auto`:
//!   under this process's own cgroup).
//! - `--spawn-thread`: the children are started from a thread that has
//!   ended before `ready` (the `PR_SET_PDEATHSIG` trap).
//! - `--outlive`: the children are started with `outlive_owner(true)`.
//! - `--then hang` (default): waits forever (the test kills it);
//!   `--then exit`: `std::process::exit(0)` with the children running.
//! - `--burst`: starts children without waiting for `up`, forever, printing
//!   `spawned <count>` after each; the test kills it midway.
//!
//! Exit code: 0, 2 on bad usage, 1 when the library failed.

use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;

use procession::{Cgroup, Child, Command, Stdio};

#[derive(Clone)]
struct Options {
    mark: String,
    count: usize,
    daemons: bool,
    cgroup: Option<String>,
    spawn_thread: bool,
    exit: bool,
    burst: bool,
    outlive: bool,
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: owner MARK N [--daemons] [--cgroup DIR|auto] [--spawn-thread] [--outlive] [--then hang|exit] [--burst]"
    );
    ExitCode::from(2)
}

fn parse() -> Option<Options> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.into_iter();
    let mut o = Options {
        mark: it.next()?,
        count: it.next()?.parse().ok()?,
        daemons: false,
        cgroup: None,
        spawn_thread: false,
        exit: false,
        burst: false,
        outlive: false,
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--daemons" => o.daemons = true,
            "--cgroup" => o.cgroup = Some(it.next()?),
            "--spawn-thread" => o.spawn_thread = true,
            "--burst" => o.burst = true,
            "--outlive" => o.outlive = true,
            "--then" => match it.next()?.as_str() {
                "hang" => o.exit = false,
                "exit" => o.exit = true,
                _ => return None,
            },
            _ => return None,
        }
    }
    Some(o)
}

fn command(o: &Options) -> Command {
    // A daemon is reported up only once it has left the group (setsid).
    let grandchild = if o.daemons {
        "setsid sleep 1000 & while [ \"$(cut -d' ' -f6 /proc/$!/stat)\" != $! ]; do :; done;"
    } else {
        "sleep 1000 &"
    };
    let mut cmd = Command::shell(format!("{grandchild} echo up; exec sleep 1000"));
    cmd.env("PT_MARK", &o.mark)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Nothing is stopped by this program: only the owner's end may.
        .stop_on_drop(false)
        .outlive_owner(o.outlive);
    match o.cgroup.as_deref() {
        Some("auto") => {
            cmd.cgroup(Cgroup::auto());
        }
        Some(dir) => {
            cmd.cgroup(Cgroup::under(dir));
        }
        None => {}
    }
    cmd
}

fn start(o: &Options) -> Result<Vec<Child>, String> {
    let mut children = Vec::with_capacity(o.count);
    for _ in 0..o.count {
        let mut child = command(o).spawn().map_err(|e| e.to_string())?;
        let mut line = String::new();
        let out = child.stdout.take().expect("piped");
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| format!("reading up: {e}"))?;
        if line != "up\n" {
            return Err(format!("the child said {line:?}, not up"));
        }
        children.push(child);
    }
    Ok(children)
}

fn main() -> ExitCode {
    let Some(o) = parse() else {
        return usage();
    };
    if o.burst {
        let mut n = 0u64;
        loop {
            match command(&o).spawn() {
                Ok(child) => {
                    // Kept running: dropping the handle does not stop it.
                    drop(child);
                    n += 1;
                    say(&format!("spawned {n}"));
                }
                Err(e) => {
                    eprintln!("owner: {e}");
                    return ExitCode::from(1);
                }
            }
        }
    }
    let children = if o.spawn_thread {
        let o2 = o.clone();
        let joined = std::thread::spawn(move || start(&o2)).join();
        match joined {
            Ok(r) => r,
            Err(_) => return ExitCode::from(1),
        }
    } else {
        start(&o)
    };
    let children = match children {
        Ok(c) => c,
        Err(e) => {
            eprintln!("owner: {e}");
            return ExitCode::from(1);
        }
    };
    let pids: Vec<String> = children.iter().map(|c| c.pid().to_string()).collect();
    say(&format!("ready {}", pids.join(" ")));
    if o.exit {
        std::process::exit(0);
    }
    loop {
        std::thread::park();
    }
}

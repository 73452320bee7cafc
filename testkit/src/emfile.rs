//! `ptlib emfile-sweep OP` and `ptlib emfile-once OP`: one library operation
//! run with the descriptor table nearly full, at every size of shortage.
//!
//! `emfile-sweep` runs OP once for each K in 0..=SWEEP, with `RLIMIT_NOFILE`
//! lowered so that exactly K descriptors are free (counted from
//! `/proc/self/fd` just before), and the limit restored right after the
//! call. Because it is a fresh process, the first calls also meet the first
//! use of every background piece (the owner-death watchdog, the reaper, the
//! delivery and input threads, the tokio registration): each of them fails
//! for want of a descriptor at some K. It prints one line per K:
//!
//! - `k=K ok`: the operation succeeded and its result was exactly right;
//! - `k=K error <ErrorKind> <Step> EMFILE`: it failed cleanly for want of
//!   a descriptor (any other error is printed in full, `error <Display>`);
//! - `k=K wrong <what>`: it "succeeded" with a wrong result.
//!
//! then `fds: <the descriptor table>` (each open descriptor's kind, sorted:
//! `pipe`, `anon_inode:[pidfd]`, `/dev/null`...) once the library's
//! background work is over, and `children: N` (processes whose parent is
//! this one still in /proc, zombies included). `emfile-once` runs OP once
//! with no shortage and prints the same two lines: the reference the test
//! compares the sweep's table with, so that a descriptor leaked by any
//! failed attempt shows, and the library's own counters judge nothing.

use std::io::{Read, Write};
use std::time::Duration;

use std::sync::OnceLock;

use procession::{Command, Limit, Pty, Stdio, Supervisor};

/// The descriptor limit the program started with.
static NORMAL: OnceLock<libc::rlimit> = OnceLock::new();

use crate::say;

/// How many shortages the sweep tries (no operation needs more than about
/// a dozen descriptors, background pieces included).
const SWEEP: usize = 32;

/// The data the operations pass through `cat`: a known, non-repeating
/// pattern larger than a pipe's default capacity.
fn data() -> Vec<u8> {
    (0..200_000u32).map(|i| (i % 251) as u8).collect()
}

/// A file holding [`data`], written once (before any shortage).
fn data_file() -> &'static std::path::Path {
    static FILE: OnceLock<std::path::PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("ptlib-emfile-{}", std::process::id()));
        std::fs::write(&path, data()).expect("write the data file");
        path
    })
}

type Checked = Result<Result<(), String>, procession::Error>;

fn expect(what: &str, got: &[u8], want: &[u8]) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{what}: {} bytes, want {} ({:?}...)",
            got.len(),
            want.len(),
            &got[..got.len().min(16)]
        ))
    }
}

fn success(status: procession::ExitStatus) -> Result<(), String> {
    if status.success() {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}

fn op(name: &str, rt: Option<&tokio::runtime::Runtime>) -> Checked {
    // Every child gets the normal descriptor limit back (it inherits the
    // lowered one otherwise, and a shell that cannot `dup` is not what is
    // tested here).
    let full = NORMAL.get().expect("limit saved").rlim_cur;
    let new = |program: &str| {
        let mut cmd = Command::new(program);
        cmd.limit(Limit::OpenFiles, full, full);
        cmd
    };
    let shell = |line: &str| {
        let mut cmd = new("/bin/sh");
        cmd.args(["-c", line]);
        cmd
    };
    let cat = || {
        let mut cmd = new("/bin/cat");
        cmd.input_bytes(data());
        cmd
    };
    Ok(match name {
        "output" => {
            let out = cat().output()?;
            expect("stdout", &out.stdout, &data()).and(success(out.status))
        }
        "stream" => {
            let got = cat().stream()?.collect_bytes()?;
            expect("stream", &got, &data())
        }
        "events" => {
            let out = shell("echo out; echo err >&2; exit 3")
                .stderr(Stdio::piped())
                .success_exit_codes([3])
                .events()?
                .collect_output()?;
            expect("stdout", &out.stdout, b"out\n")
                .and(expect("stderr", &out.stderr, b"err\n"))
                .and(success(out.status))
        }
        "child" => {
            let mut child = new("/bin/cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let mut stdin = child.stdin.take().expect("piped");
            let writer = std::thread::spawn(move || stdin.write_all(&data()));
            let mut got = Vec::new();
            let read = child.stdout.as_mut().expect("piped").read_to_end(&mut got);
            let written = writer.join().expect("writer thread");
            let status = child.wait()?;
            match (read, written) {
                (Ok(_), Ok(())) => expect("stdout", &got, &data()).and(success(status)),
                (r, w) => Err(format!("read {r:?} write {w:?}")),
            }
        }
        "timeout" => success(
            new("/bin/sleep")
                .arg("0.01")
                .timeout(Duration::from_secs(30))
                .status()?,
        ),
        "drop" => {
            // A shell with a grandchild in its own group, dropped: the
            // stop sequence must still reach the whole group.
            let mut child = shell("sleep 100 & echo started; wait")
                .stdout(Stdio::piped())
                .spawn()?;
            let pgid = child.pid() as i32;
            let mut line = [0u8; 8];
            let n = child.stdout.as_mut().expect("piped").read(&mut line);
            drop(child);
            if !procession::__test_support::wait_for_reaper() {
                return Ok(Err("reaper still busy after 10 s".into()));
            }
            match n {
                Ok(8) if &line == b"started\n" => group_gone(pgid),
                other => Err(format!("first line: {other:?} {line:?}")),
            }
        }
        "callback" => {
            // Output to a channel: a delivery thread of the supervisor's.
            let sup = Supervisor::new();
            let (tx, rx) = std::sync::mpsc::sync_channel(4);
            let child = sup.spawn(
                new("/bin/cat")
                    .stdin(Stdio::file(data_file()))
                    .stdout(Stdio::channel(tx)),
            )?;
            let got: Vec<u8> = rx.iter().flat_map(|b| b.to_vec()).collect();
            match child.wait()? {
                procession::Exit::Status(s) => expect("channel", &got, &data()).and(success(s)),
                other => Err(format!("exit {other:?}")),
            }
        }
        "supervisor" => {
            let sup = Supervisor::new();
            let exit = sup.spawn(shell("exit 3").success_exit_codes([3]))?;
            match exit.wait()? {
                procession::Exit::Status(s) if s.code() == Some(3) => Ok(()),
                other => Err(format!("exit {other:?}")),
            }
        }
        "pty" => {
            let out = new("/bin/echo").arg("hi").pty(Pty::new()).output()?;
            expect("stdout", &out.stdout, b"hi\r\n").and(success(out.status))
        }
        "async-output" => {
            let out = rt.expect("runtime").block_on(cat().output_async())?;
            expect("stdout", &out.stdout, &data()).and(success(out.status))
        }
        "async-child" => rt.expect("runtime").block_on(async {
            let mut child = new("/bin/cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn_async()?;
            let mut got = Vec::new();
            child.write_all(b"abc").await?;
            child.close_stdin();
            while let Some(chunk) = child.read().await? {
                got.extend_from_slice(&chunk);
            }
            let status = child.wait().await?;
            Ok::<_, procession::Error>(expect("stdout", &got, b"abc").and(success(status)))
        })?,
        other => {
            eprintln!("ptlib: unknown operation {other:?}");
            std::process::exit(2);
        }
    })
}

/// Whether every member of group `pgid` is dead (polled in /proc: a
/// killed member re-parented to an outside reaper has no event this
/// process could wait for, and stays a zombie until that reaper gets to
/// it, so zombies count as dead).
fn group_gone(pgid: i32) -> Result<(), String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let alive = proc_stats()
            .filter(|(_, state, _, pgrp)| *pgrp == pgid && *state != 'Z')
            .count();
        if alive == 0 {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(format!("group {pgid} still has {alive} live members"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// (pid, state, ppid, pgrp) of every process in /proc.
fn proc_stats() -> impl Iterator<Item = (i32, char, i32, i32)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let mut f = stat.rsplit_once(')')?.1.split_whitespace();
            let state = f.next()?.chars().next()?;
            let ppid = f.next()?.parse().ok()?;
            let pgrp = f.next()?.parse().ok()?;
            Some((pid, state, ppid, pgrp))
        })
}

fn describe(result: Checked) -> String {
    match result {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(what)) => format!("wrong {what}"),
        Err(e) if e.os_error().and_then(|o| o.raw_os_error()) == Some(libc::EMFILE) => {
            format!("error {:?} {:?} EMFILE", e.kind(), e.step())
        }
        Err(e) => format!("error {e}"),
    }
}

/// The open descriptors: number and kind (the directory listing's own
/// descriptor left out).
fn open_fds() -> Vec<(i32, String)> {
    let me = format!("/proc/{}/fd", std::process::id());
    let mut kinds: Vec<(i32, String)> = std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let fd = e.file_name().to_str()?.parse().ok()?;
                    Some((fd, std::fs::read_link(e.path()).ok()?))
                })
                .filter(|(_, target)| target.as_os_str() != me.as_str())
                .map(|(fd, target)| {
                    let t = target.to_string_lossy().into_owned();
                    // pipe:[inode] -> pipe; the inode differs per run.
                    let kind = match t.split_once(":[") {
                        Some((kind, _)) if !t.starts_with("anon_inode") => kind.to_string(),
                        _ => t,
                    };
                    (fd, kind)
                })
                .collect()
        })
        .unwrap_or_default();
    kinds.sort();
    kinds
}

/// The descriptor table's kinds, sorted, once it has stopped changing
/// (a background thread closes a reaped child's pidfd just after the
/// reap; nothing signals that moment, so the table is read until two
/// readings 50 ms apart agree, for at most 5 s).
fn settled_fds() -> String {
    let read = || {
        let mut kinds: Vec<String> = open_fds().into_iter().map(|(_, k)| k).collect();
        kinds.sort();
        kinds.join(" ")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut last = read();
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = read();
        if now == last {
            break;
        }
        last = now;
    }
    last
}

/// The `RLIMIT_NOFILE` soft limit that leaves exactly `free` descriptor
/// numbers unused below it (the limit bounds the numbers, not the count).
fn limit_leaving(free: usize) -> libc::rlim_t {
    let open: Vec<i32> = open_fds().into_iter().map(|(fd, _)| fd).collect();
    let mut limit = 0usize;
    loop {
        let used = open.iter().filter(|&&fd| (fd as usize) < limit).count();
        if limit - used == free {
            return limit as libc::rlim_t;
        }
        limit += 1;
    }
}

fn children() -> usize {
    let me = std::process::id() as i32;
    proc_stats().filter(|(_, _, ppid, _)| *ppid == me).count()
}

fn nofile() -> libc::rlimit {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes a valid rlimit struct we own.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    rl
}

fn set_nofile(rl: &libc::rlimit) {
    // SAFETY: setrlimit reads a valid rlimit struct; lowering or restoring
    // our own soft limit within the hard one needs no privilege.
    let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, rl) };
    assert_eq!(r, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// Runs `name` with K descriptors free for every K (or once with no
/// shortage when `sweep` is false) and prints the report described in the
/// module docs.
pub fn run(name: &str, sweep: bool) {
    NORMAL.get_or_init(nofile);
    let is_async = name.starts_with("async-");
    // The runtime is the host's, made before any shortage: its own
    // descriptors are tokio's business, not the library's.
    let rt = is_async.then(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    });
    let full = *NORMAL.get_or_init(nofile);
    data_file();
    if sweep {
        for k in 0..=SWEEP {
            set_nofile(&libc::rlimit {
                rlim_cur: limit_leaving(k),
                rlim_max: full.rlim_max,
            });
            let result = op(name, rt.as_ref());
            set_nofile(&full);
            let line = describe(result);
            // Whatever happened, let the background work end before the
            // next count.
            procession::__test_support::wait_for_reaper();
            say(&format!("k={k} {line}"));
        }
    } else {
        say(&format!("k=max {}", describe(op(name, rt.as_ref()))));
        procession::__test_support::wait_for_reaper();
    }
    drop(rt);
    let _ = std::fs::remove_file(data_file());
    say(&format!("fds: {}", settled_fds()));
    say(&format!("children: {}", children()));
}

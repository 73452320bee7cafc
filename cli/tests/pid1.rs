//! procession as PID 1, the entrypoint of a container: run as the first
//! process of a new PID namespace (`unshare --pid --fork --mount-proc`,
//! which needs root), it must reap the zombies re-parented to it, forward
//! the signals it gets to the program's group, and exit with the program's
//! status, as tini and dumb-init do.
//!
//! The program itself reports what it sees inside the namespace (its /proc
//! is the namespace's own, from --mount-proc), so no test needs to find
//! the namespace's processes from outside, except to send SIGTERM to
//! procession as a container runtime does.

#[path = "../../tests/support/mod.rs"]
mod support;
use support::*;

mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Whether a PID namespace can be made here (root and `unshare`).
fn can_unshare() -> bool {
    is_root()
        && Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// `unshare ... procession run ARGS`, procession being PID 1 inside.
fn as_pid1(args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc"])
        .arg(env!("CARGO_BIN_EXE_procession"))
        .arg("run")
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// A program that orphans children which exit at once or soon (one whose
/// parent exits first, one started by a subshell, one double-forked
/// daemon), then waits until they have all ended and reports every zombie
/// that remains: procession (PID 1) must have reaped them, or the loop
/// gives up after about 5 s and lists them. It checks it is under PID 1
/// first, and exits with 7.
const ORPHANS: &str = r#"
[ "$PPID" = 1 ] || { echo "parent is not pid 1"; exit 99; }
sh -c 'sleep 0.1 & sleep 0.2 & exit 0'
(sh -c 'exit 3' &)
(setsid sh -c 'sleep 0.1' &)
i=0
while [ $i -lt 500 ]; do
  z=''; busy=''
  for d in /proc/[0-9]*; do
    read -r l < "$d/stat" 2>/dev/null || continue
    rest=${l##*) }
    state=${rest%% *}
    case $l in *'(sleep)'*) [ "$state" = Z ] || busy=1 ;; esac
    [ "$state" = Z ] && z="$z ${l%% *}"
  done
  if [ -z "$busy" ] && [ -z "$z" ]; then echo clean; exit 7; fi
  sleep 0.01
  i=$((i+1))
done
echo "zombies:$z"
exit 7
"#;

#[test]
fn pid1_reaps_adopted_zombies_and_passes_the_status_through() {
    let _g = Guard::new();
    if !can_unshare() {
        eprintln!("skipped: needs root and unshare(1) for a PID namespace");
        return;
    }
    // In procession's group (the default), and with --foreground, where
    // being PID 1 is what makes procession reap.
    for extra in [&[][..], &["--foreground"]] {
        let mut args = extra.to_vec();
        args.extend(["--", "sh", "-c", ORPHANS]);
        let out = run_cmd(&mut as_pid1(&args));
        assert_eq!(
            out.stdout_str(),
            "clean\n",
            "{extra:?}: {}",
            out.stderr_str()
        );
        out.expect_code(7);
    }
    // A death by signal: 128+N.
    let out = run_cmd(&mut as_pid1(&["--", "sh", "-c", "kill -KILL $$"]));
    out.expect_code(137);
}

/// The pid of procession: the only child of `unshare` (after its fork).
fn child_of(parent: u32) -> i32 {
    let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .expect("children of unshare");
    let pids: Vec<i32> = children
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 1, "{children:?}");
    pids[0]
}

#[test]
fn sigterm_to_pid1_reaches_the_programs_group() {
    let _g = Guard::new();
    if !can_unshare() {
        eprintln!("skipped: needs root and unshare(1) for a PID namespace");
        return;
    }
    // The program and a member of its group each trap SIGTERM and report
    // it; the program waits for the member, then exits with 42. (Its trap
    // is set before the member starts, whose line the test waits for.)
    let script = r#"
trap 'echo program got TERM; wait; exit 42' TERM
sh -c 'trap "echo member got TERM; exit 0" TERM; echo member ready; while :; do sleep 0.01; done' &
while :; do sleep 0.01; done
"#;
    let mut unshare = as_pid1(&["--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare");
    let mut stdout = BufReader::new(unshare.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "member ready\n");
    let pid1 = child_of(unshare.id());
    // From outside the namespace, as `docker stop` does.
    // SAFETY: kill(2) with plain integers; `pid1` is unshare's child,
    // which cannot be reaped (and its pid reused) while unshare waits for it.
    assert_eq!(unsafe { libc::kill(pid1, libc::SIGTERM) }, 0);
    let rest = read_in_background(stdout);
    let stderr = read_in_background(unshare.stderr.take().unwrap());
    let code = code_of(wait_for(&mut unshare));
    let rest = String::from_utf8(rest.recv().unwrap()).unwrap();
    let stderr = String::from_utf8_lossy(&stderr.recv().unwrap()).into_owned();
    assert!(rest.contains("program got TERM\n"), "{rest:?} {stderr:?}");
    assert!(rest.contains("member got TERM\n"), "{rest:?} {stderr:?}");
    assert_eq!(code, 42, "{rest:?} {stderr:?}");
}

#[test]
fn subreaper_adopts_and_reaps_with_foreground() {
    let _g = Guard::new();
    // The program orphans a sleep, checks that procession (its own
    // parent) adopted it, then waits until it is gone, reaped: a zombie
    // keeps its /proc entry.
    let script = r#"
p=$(sh -c 'sleep 0.2 >/dev/null & echo $!')
l=$(cat /proc/$p/stat) || { echo "gone too soon"; exit 1; }
rest=${l##*) }; rest=${rest#* }; ppid=${rest%% *}
[ "$ppid" = "$PPID" ] || { echo "adopted by $ppid, not $PPID"; exit 1; }
i=0
while [ -e /proc/$p ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done
[ -e /proc/$p ] && { echo "not reaped"; exit 1; }
echo reaped
"#;
    let out = run(&[
        "run",
        "--foreground",
        "--subreaper",
        "--",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out.stdout_str(), "reaped\n", "{}", out.stderr_str());
    out.expect_code(0);
}

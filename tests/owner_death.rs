//! Nothing left behind when the owner dies (owner-death watchdog), and the
//! cgroup mode (`Command::cgroup`).
//!
//! The owner is the `owner` helper (testkit), a program using the library
//! that starts children and grandchildren carrying `PT_MARK=<mark>` in their
//! environment; survivors are counted by that mark in /proc, never by the
//! library's bookkeeping. This test process is a child subreaper (see
//! `support::Guard`), so what the owner leaves is re-parented to it: the
//! tests reap those zombies themselves, as init would.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child as StdChild, ChildStdout, Stdio as StdStdio};
use std::time::{Duration, Instant};

use procession::{Cgroup, Command, ErrorKind, Step};
use support::*;

fn owner_path() -> std::path::PathBuf {
    pt().with_file_name("owner")
}

/// A mark unique to this test run.
fn mark(name: &str) -> String {
    format!("{}-{name}", std::process::id())
}

/// Pids of live processes whose environment has `PT_MARK=<mark>`.
fn marked(mark: &str) -> Vec<i32> {
    let needle = format!("PT_MARK={mark}\0");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.windows(needle.len()).any(|w| w == needle.as_bytes()) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// Starts `owner MARK N ARGS...` and returns it once it printed `ready`.
fn start_owner(mark: &str, n: usize, args: &[&str]) -> (StdChild, BufReader<ChildStdout>) {
    let mut owner = std::process::Command::new(owner_path())
        .arg(mark)
        .arg(n.to_string())
        .args(args)
        .stdin(StdStdio::null())
        .stdout(StdStdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(owner.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready "), "owner said {line:?}");
    assert_eq!(line.split_whitespace().count(), n + 1, "{line}");
    (owner, out)
}

/// Waits up to 1 s for no process to carry `mark`; returns how long it
/// took, and fails naming the survivors otherwise.
fn all_gone_within_a_second(mark: &str) -> Duration {
    let start = Instant::now();
    loop {
        let left = marked(mark);
        if left.is_empty() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() <= Duration::from_secs(1),
            "{mark}: {} survivors: {left:?}",
            left.len()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// SIGKILLs `pids` (survivors the test expected), then reaps them.
fn kill_survivors(pids: Vec<i32>) {
    for pid in pids {
        // SAFETY: killing our own test processes by pid.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    reap_orphans();
}

/// Reaps what the dead owner left re-parented to us (its children, its
/// watchdog once done): zombies are reaped, and this waits (up to 5 s)
/// until no such child is left. Returns how many zombies it reaped.
fn reap_orphans() -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut reaped = 0;
    loop {
        let kids = children();
        if kids.is_empty() {
            return reaped;
        }
        for k in kids.iter().filter(|k| k.state == 'Z') {
            // SAFETY: reaping a zombie child of ours by pid.
            if unsafe { libc::waitpid(k.pid, std::ptr::null_mut(), libc::WNOHANG) } == k.pid {
                reaped += 1;
            }
        }
        assert!(
            Instant::now() < deadline,
            "still running after the owner's death: {kids:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits (up to 5 s) until `pid` leads a group of its own (its `setsid`
/// has run).
fn wait_own_group(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while stat(pid).map(|(_, _, pgrp)| pgrp) != Some(pid) {
        assert!(Instant::now() < deadline, "{pid} never left its group");
        std::thread::yield_now();
    }
}

/// Spawns `cmd` (which prints the pid of a `setsid` daemon it starts)
/// with stdout piped; returns it once the daemon has left its group.
fn with_daemon(cmd: &mut Command) -> (procession::Child, i32) {
    let mut child = cmd.stdout(procession::Stdio::piped()).spawn().unwrap();
    let daemon: i32 = read_line(child.stdout.as_mut().unwrap())
        .trim()
        .parse()
        .unwrap();
    wait_own_group(daemon);
    (child, daemon)
}

fn kill9(owner: &mut StdChild) {
    owner.kill().unwrap();
    owner.wait().unwrap();
}

#[test]
fn sigkill_of_the_owner_leaves_none_of_its_100_children_and_grandchildren() {
    let _g = Guard::new();
    let m = mark("sigkill");
    let (mut owner, _out) = start_owner(&m, 100, &[]);
    assert_eq!(marked(&m).len(), 200, "100 children + 100 grandchildren");
    kill9(&mut owner);
    let took = all_gone_within_a_second(&m);
    eprintln!("all 200 gone {took:?} after the owner's death");
    // The 100 children were re-parented to us as zombies (the grandchildren
    // to their own parents, which reaped them or died with them).
    assert!(reap_orphans() >= 100);
}

#[test]
fn an_owner_that_exits_without_stopping_its_children_leaves_none() {
    let _g = Guard::new();
    let m = mark("exit");
    let (mut owner, _out) = start_owner(&m, 20, &["--then", "exit"]);
    assert!(owner.wait().unwrap().success());
    let took = all_gone_within_a_second(&m);
    eprintln!("all 40 gone {took:?} after the owner's exit");
    reap_orphans();
}

#[test]
fn children_started_from_a_thread_that_ended_live_until_the_owner_dies() {
    let _g = Guard::new();
    // PR_SET_PDEATHSIG fires when the creating *thread* ends: a child armed
    // with it would already be dead when the owner says `ready`.
    let m = mark("thread");
    let (mut owner, _out) = start_owner(&m, 20, &["--spawn-thread"]);
    assert_eq!(marked(&m).len(), 40);
    kill9(&mut owner);
    all_gone_within_a_second(&m);
    reap_orphans();
}

#[test]
fn an_owner_killed_during_a_burst_of_spawns_leaves_none() {
    let _g = Guard::new();
    let m = mark("burst");
    for round in 0..5 {
        let mut owner = std::process::Command::new(owner_path())
            .args([&m, "0", "--burst"])
            .stdin(StdStdio::null())
            .stdout(StdStdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(owner.stdout.take().unwrap());
        // Killed at a different point of the burst each round.
        let stop_at = format!("spawned {}\n", 10 + round * 7);
        let mut line = String::new();
        while line != stop_at {
            line.clear();
            assert_ne!(out.read_line(&mut line).unwrap(), 0, "owner ended");
        }
        kill9(&mut owner);
        all_gone_within_a_second(&m);
        reap_orphans();
    }
}

#[test]
fn a_child_that_may_outlive_its_owner_does() {
    let _g = Guard::new();
    let m = mark("outlive");
    let (mut owner, _out) = start_owner(&m, 3, &["--outlive"]);
    kill9(&mut owner);
    // Nothing kills them: the owner's watchdog ends with nothing to do.
    reap_watchdog_of_dead_owner();
    let left = marked(&m);
    assert_eq!(left.len(), 6, "{left:?}");
    kill_survivors(left);
}

/// Waits until the dead owner's watchdog (re-parented to us) has ended.
fn reap_watchdog_of_dead_owner() {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let kids = children();
        let watchdog = kids.iter().find(|k| k.comm.starts_with("procession-wat"));
        match watchdog {
            None => return,
            Some(k) if k.state == 'Z' => {
                // SAFETY: reaping a zombie child of ours by pid.
                unsafe { libc::waitpid(k.pid, std::ptr::null_mut(), 0) };
                return;
            }
            Some(_) => {
                assert!(Instant::now() < deadline, "the watchdog did not end");
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

#[test]
fn setsid_daemons_escape_the_owner_death_cleanup_without_cgroups() {
    let _g = Guard::new();
    // The documented limit of the default strength: a grandchild that left
    // its group (setsid) is not reached. Cgroup mode reaches it (below).
    let m = mark("daemons");
    let (mut owner, _out) = start_owner(&m, 5, &["--daemons"]);
    kill9(&mut owner);
    reap_watchdog_of_dead_owner();
    let deadline = Instant::now() + Duration::from_secs(1);
    while marked(&m).len() > 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let left = marked(&m);
    assert_eq!(left.len(), 5, "the 5 setsid daemons, only: {left:?}");
    kill_survivors(left);
}

#[test]
fn cgroup_mode_sigkill_of_the_owner_leaves_no_setsid_daemon_and_no_cgroup() {
    let _g = Guard::new();
    let m = mark("cgroup");
    let (mut owner, _out) = start_owner(&m, 100, &["--daemons", "--cgroup", "auto"]);
    let owner_pid = owner.id();
    let dirs = |pid: u32| {
        let prefix = format!("procession-{pid}-");
        std::fs::read_dir(own_cgroup_dir().unwrap())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .count()
    };
    assert_eq!(dirs(owner_pid), 100);
    assert_eq!(marked(&m).len(), 200);
    kill9(&mut owner);
    let took = all_gone_within_a_second(&m);
    eprintln!("all 200 gone {took:?} after the owner's death");
    reap_orphans();
    // The watchdog removed the cgroups before it ended.
    assert_eq!(dirs(owner_pid), 0);
}

#[test]
fn cgroup_mode_stop_reaches_a_double_forked_daemon_and_removes_the_cgroup() {
    let _g = Guard::new();
    // The daemon leaves the group and the session and is re-parented away
    // from the child: only its cgroup still holds it.
    let (mut child, daemon) = with_daemon(
        Command::shell("(setsid sleep 1000 & echo $!) ; exec sleep 1000").cgroup(Cgroup::auto()),
    );
    let dir = leftover_cgroups();
    assert_eq!(dir.len(), 1);
    let procs = std::fs::read_to_string(dir[0].join("cgroup.procs")).unwrap();
    assert!(procs.lines().any(|l| l == daemon.to_string()), "{procs}");
    let status = child.stop().unwrap();
    assert_eq!(status.signal(), Some(procession::Signal::TERM));
    assert!(
        wait_dead(daemon, Duration::from_secs(1)),
        "the daemon lives"
    );
    assert!(!dir[0].exists(), "the cgroup is still there");
    reap_orphans();
}

#[test]
fn cgroup_mode_stop_sends_the_stop_signal_to_every_member_before_any_kill() {
    let _g = Guard::new();
    // A daemon that left the group takes SIGTERM gracefully (it reports it
    // in a file). With a grace period of 30 s, a stop that reached it only
    // through the final cgroup.kill would take 30 s and leave no report.
    let dir = std::env::temp_dir().join(format!("procession-cg-term-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("daemon");
    let line = format!(
        "(setsid sh -c 'trap \"echo term > {}; exit 0\" TERM; echo $$; while :; do sleep 0.01; done' &) ; exec sleep 1000",
        report.display()
    );
    let (mut child, daemon) = with_daemon(
        Command::shell(line)
            .cgroup(Cgroup::auto())
            .stop_timeout(Duration::from_secs(30)),
    );
    let start = Instant::now();
    let status = child.stop().unwrap();
    let took = start.elapsed();
    assert_eq!(status.signal(), Some(procession::Signal::TERM));
    assert!(
        took < Duration::from_secs(10),
        "{took:?}: the daemon was not stopped by SIGTERM"
    );
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "term\n");
    assert!(!alive(daemon));
    std::fs::remove_dir_all(&dir).unwrap();
    reap_orphans();
}

#[test]
fn cgroup_mode_the_rest_of_the_cgroup_is_stopped_when_the_child_exits() {
    let _g = Guard::new();
    let (mut child, daemon) =
        with_daemon(Command::shell("setsid sleep 1000 & echo $!").cgroup(Cgroup::auto()));
    let start = Instant::now();
    let status = child.wait().unwrap();
    assert!(status.success());
    // wait() returns once the cgroup is empty and removed: the daemon got
    // the stop signal at once (sleep obeys SIGTERM), not after the 5 s
    // grace period.
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(!alive(daemon));
    assert!(leftover_cgroups().is_empty());
    reap_orphans();
}

#[test]
fn cgroup_mode_counts_the_cpu_time_of_a_daemon_the_child_never_waited_for() {
    let _g = Guard::new();
    // The busy loop runs in a double-forked daemon: the child's own rusage
    // (its waited-for descendants) does not include it; its cgroup does.
    // The child waits for the daemon's output to end through `cat`.
    let busy = "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo done";
    let status = Command::shell(format!("(setsid sh -c '{busy}' &) | cat >/dev/null"))
        .cgroup(Cgroup::auto())
        .status()
        .unwrap();
    assert!(status.success());
    let counted = status.cgroup_usage().expect("cgroup usage");
    let cgroup_cpu = counted.user_time + counted.system_time;
    let rusage_cpu = status.usage().unwrap().cpu_time();
    assert!(
        cgroup_cpu >= Duration::from_millis(50) && cgroup_cpu > rusage_cpu * 4,
        "cgroup {cgroup_cpu:?}, rusage {rusage_cpu:?}"
    );
    reap_orphans();
}

#[test]
fn cgroup_mode_a_spawn_that_fails_in_the_child_leaves_no_cgroup() {
    let _g = Guard::new();
    // The cgroup is made before the clone; the child then fails (exec of a
    // file that is not executable, a missing working directory).
    let err = Command::new("/etc/hostname")
        .cgroup(Cgroup::auto())
        .spawn()
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.step()),
        (ErrorKind::PermissionDenied, Step::Exec)
    );
    assert_eq!(leftover_cgroups(), Vec::<std::path::PathBuf>::new());
    let err = Command::new("true")
        .current_dir("/no/such/dir")
        .cgroup(Cgroup::auto())
        .spawn()
        .unwrap_err();
    assert_eq!(err.step(), Step::Chdir);
    assert_eq!(leftover_cgroups(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn cgroup_mode_without_a_usable_hierarchy_is_a_clear_error_and_starts_nothing() {
    let _g = Guard::new();
    let spawn = |cg: Cgroup| {
        Command::new("sh")
            .args(["-c", "echo started"])
            .cgroup(cg)
            .spawn()
            .unwrap_err()
    };
    // Not a cgroup v2 file system.
    let err = spawn(Cgroup::under("/proc"));
    assert_eq!(
        (err.kind(), err.step()),
        (ErrorKind::Unsupported, Step::Cgroup)
    );
    assert!(
        err.to_string().contains("not in a cgroup v2 hierarchy"),
        "{err}"
    );
    // A parent that does not exist.
    let missing = own_cgroup_dir().unwrap().join("no-such-parent");
    let err = spawn(Cgroup::under(&missing));
    assert_eq!(
        (err.kind(), err.step()),
        (ErrorKind::NotFound, Step::Cgroup)
    );
    assert!(err.to_string().contains("no-such-parent"), "{err}");
    // A read-only mount of the hierarchy.
    let ro = ReadOnlyCgroupMount::new();
    let err = spawn(Cgroup::under(&ro.path));
    assert_eq!(
        (err.kind(), err.step()),
        (ErrorKind::PermissionDenied, Step::Cgroup)
    );
    assert_eq!(
        err.os_error().and_then(|e| e.raw_os_error()),
        Some(libc::EROFS)
    );
}

#[test]
fn cgroup_mode_a_path_too_long_for_the_watchdog_is_refused() {
    let _g = Guard::new();
    // Three nested cgroups of 200-byte names: the child's path would not
    // fit the watchdog's 510-byte line, so it could not be killed when this
    // process dies. Refused, never run unwatched.
    let mut deep = own_cgroup_dir().unwrap();
    let mut made = Vec::new();
    for c in ['a', 'b', 'c'] {
        deep.push(std::iter::repeat_n(c, 200).collect::<String>());
        std::fs::create_dir(&deep).unwrap();
        made.push(deep.clone());
    }
    let err = Command::new("true")
        .cgroup(Cgroup::under(&deep))
        .spawn()
        .unwrap_err();
    for d in made.iter().rev() {
        std::fs::remove_dir(d).unwrap();
    }
    assert_eq!(
        (err.kind(), err.step()),
        (ErrorKind::InvalidInput, Step::Cgroup)
    );
    assert!(err.to_string().contains("longer than 510 bytes"), "{err}");
}

/// The committed lines of this process's watchdog cgroup table.
fn watchdog_cgroups() -> Vec<String> {
    let wd = procession::__test_support::watchdog_pid().unwrap();
    let table = std::fs::read(format!("/proc/{wd}/fd/4")).unwrap();
    String::from_utf8(table)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix('k').map(str::to_owned))
        .collect()
}

#[test]
fn the_watchdog_lists_a_cgroup_while_it_exists() {
    let _g = Guard::new();
    let mut child = Command::new("sleep")
        .arg("1000")
        .cgroup(Cgroup::auto())
        .spawn()
        .unwrap();
    let dir = leftover_cgroups();
    assert_eq!(dir.len(), 1);
    assert_eq!(watchdog_cgroups(), [dir[0].display().to_string()]);
    child.kill().unwrap();
    child.wait().unwrap();
    drop(child);
    assert_eq!(watchdog_cgroups(), Vec::<String>::new());
}

/// cgroup2 mounted read-only on a temporary directory (as root); unmounted
/// and removed on drop.
struct ReadOnlyCgroupMount {
    path: std::path::PathBuf,
}

impl ReadOnlyCgroupMount {
    fn new() -> ReadOnlyCgroupMount {
        let path =
            std::env::temp_dir().join(format!("procession-ro-cgroup-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "cgroup2", "-o", "ro", "none"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "mount -t cgroup2 -o ro (needs root)");
        ReadOnlyCgroupMount { path }
    }
}

impl Drop for ReadOnlyCgroupMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
        let _ = std::fs::remove_dir(&self.path);
    }
}

#[test]
fn a_watchdog_refused_for_want_of_processes_starts_at_a_later_spawn() {
    let _g = Guard::new();
    if let Some(out) = ptlib_as_nobody("watchdog-after-nproc-limit") {
        assert_eq!(out, "watchdog: true\n");
    }
    reap_orphans();
}

#[test]
fn a_killed_watchdog_is_replaced_at_the_next_spawn() {
    let mut g = Guard::new();
    let first = procession::__test_support::watchdog_pid().unwrap() as i32;
    // SAFETY: killing our own watchdog child by pid.
    unsafe { libc::kill(first, libc::SIGKILL) };
    assert!(wait_dead(first, Duration::from_secs(1)));
    // Spawns look whether it still runs at most once per 10 ms: the first
    // spawn more than 10 ms after the last look replaces it.
    std::thread::sleep(Duration::from_millis(20));
    let mut child = Command::new("true").spawn().unwrap();
    assert!(child.wait().unwrap().success());
    let replaced = procession::__test_support::watchdog_pid().unwrap() as i32;
    assert_ne!(
        replaced, first,
        "not replaced by the first spawn 20 ms later"
    );
    // Whether it runs is looked at once per 10 ms: spawn until a spawn
    // notices (bounded).
    let start = Instant::now();
    let second = loop {
        let mut child = Command::new("true").spawn().unwrap();
        assert!(child.wait().unwrap().success());
        let now = procession::__test_support::watchdog_pid().unwrap() as i32;
        if now != first {
            break now;
        }
        assert!(start.elapsed() < Duration::from_secs(2), "never replaced");
    };
    assert!(alive(second));
    // The dead one was reaped, not left a zombie.
    assert_eq!(stat(first), None);
    // Its stdin pipe was replaced by the new one's.
    g.snapshot_fds();
}

/// The committed lines of this process's watchdog table: what the watchdog
/// would kill if this process died now (read through the watchdog's own
/// descriptor, the file it reads).
fn watchdog_table() -> Vec<String> {
    let wd = procession::__test_support::watchdog_pid().unwrap();
    let table = std::fs::read(format!("/proc/{wd}/fd/3")).unwrap();
    String::from_utf8(table)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('k'))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn the_watchdog_lists_a_child_with_its_group_until_it_is_reaped() {
    let _g = Guard::new();
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    let pid = child.pid() as i32;
    assert!(
        watchdog_table().contains(&format!("-{pid} {pid}")),
        "{:?}",
        watchdog_table()
    );
    // In a group we join, only the pid: the group is not ours.
    let mut joined = Command::new("sleep")
        .arg("1000")
        .process_group(procession::ProcessGroup::Join(pid as u32))
        .stop_group(false)
        .spawn()
        .unwrap();
    let joined_pid = joined.pid() as i32;
    assert!(watchdog_table().contains(&joined_pid.to_string()));
    joined.kill().unwrap();
    joined.wait().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    // Reaped: its pid may name another process from now on.
    let table = watchdog_table();
    assert!(
        !table.iter().any(|l| l
            .split(' ')
            .any(|w| w.trim_start_matches('-') == pid.to_string() || w == joined_pid.to_string())),
        "{table:?}"
    );
}

#[test]
fn the_watchdog_keeps_only_the_group_while_it_is_cleaned_up_after_the_leader() {
    let _g = Guard::new();
    // A group member that ignores SIGTERM keeps the cleanup going after
    // the leader was reaped: the group id stays listed, the pid not.
    let mut child = Command::shell(
        "trap '' TERM; sh -c \"trap '' TERM; echo ready; exec sleep 1000\" & read x",
    )
    .stdin(procession::Stdio::piped())
    .stdout(procession::Stdio::piped())
    .stop_timeout(Duration::from_secs(30))
    .spawn()
    .unwrap();
    let pid = child.pid() as i32;
    assert_eq!(read_line(child.stdout.as_mut().unwrap()), "ready\n");
    child.close_stdin();
    // The leader exits on EOF; the member is left for the group cleanup.
    let status = child.wait_timeout(Duration::from_millis(300)).unwrap();
    assert_eq!(status, None, "the cleanup should still wait for the member");
    assert_eq!(watchdog_table(), vec![format!("-{pid}")]);
    // The reaper takes the cleanup over; the member goes, the group
    // cleanup ends, and the watchdog forgets the group.
    drop(child);
    // SAFETY: killing our own test group.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !watchdog_table().is_empty() {
        assert!(Instant::now() < deadline, "{:?}", watchdog_table());
        std::thread::sleep(Duration::from_millis(5));
    }
}

//! Process groups, the stop sequence (stop, kill, stop_signal,
//! stop_command, stop_group), timeouts, and what dropping or detaching a
//! running handle does.

mod support;
use support::*;

use std::io::Read;
use std::time::{Duration, Instant};

use procession::{Child, Command, Ended, ErrorKind, ProcessGroup, Signal, Stdio, Step};

/// Live (non-zombie) processes in process group `pgid` whose command name
/// (`/proc/<pid>/comm`) is `comm`.
fn group_members(pgid: i32, comm: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Some((state, _, pgrp)) = stat(pid) else {
            continue;
        };
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if pgrp == pgid && state != 'Z' && state != 'X' && name.trim_end() == comm {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// Spawns `pt ignore-term` and waits for its `ready\n` (SIGTERM is ignored
/// from then on).
fn spawn_ignore_term(cmd: &mut Command) -> Child {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    assert_eq!(read_line(child.stdout.as_mut().unwrap()), "ready\n");
    child
}

/// Calls `stop()` and checks that it returned no sooner than `at_least`
/// with the child killed by SIGKILL in the stop sequence (the first step did
/// not end it).
fn stop_ends_in_sigkill_after(child: &mut Child, at_least: Duration) {
    let t = Instant::now();
    let status = child.stop().unwrap();
    assert!(t.elapsed() >= at_least, "{:?}", t.elapsed());
    assert_eq!(status.signal(), Some(Signal::KILL));
    assert_eq!(status.ended(), Ended::Requested);
}

/// `pt pgid` output: (pid, pgid, sid).
fn pgid_of(cmd: &mut Command) -> (u32, (i32, i32, i32)) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let out = read_to_end_string(child.stdout.as_mut().unwrap());
    assert!(child.wait().unwrap().success());
    let f: Vec<i32> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert_eq!(f.len(), 3, "{out:?}");
    (child.pid(), (f[0], f[1], f[2]))
}

fn own_pgid() -> i32 {
    // SAFETY: getpgid has no memory-safety preconditions.
    unsafe { libc::getpgid(0) }
}

fn own_sid() -> i32 {
    // SAFETY: getsid has no memory-safety preconditions.
    unsafe { libc::getsid(0) }
}

#[test]
fn a_child_leads_a_new_process_group_by_default() {
    let _g = Guard::new();
    let (pid, (reported_pid, pgid, sid)) = pgid_of(&mut pt_cmd(["pgid"]));
    assert_eq!(reported_pid, pid as i32);
    assert_eq!(pgid, pid as i32);
    assert_ne!(pgid, own_pgid());
    // Same session as ours: a new group, not a new session.
    assert_eq!(sid, own_sid());
}

#[test]
fn process_group_join_puts_the_child_in_that_group() {
    let _g = Guard::new();
    // The first child runs until its stdin is closed.
    let mut first = pt_cmd(["echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let leader = first.pid();
    assert_eq!(stat(leader as i32).map(|s| s.2), Some(leader as i32));
    let (pid, (_, pgid, _)) = pgid_of(pt_cmd(["pgid"]).process_group(ProcessGroup::Join(leader)));
    assert_ne!(pid, leader);
    assert_eq!(pgid, leader as i32);
    assert_eq!(first.wait().unwrap().code(), Some(0));
}

#[test]
fn process_group_inherit_keeps_the_child_in_our_group() {
    let _g = Guard::new();
    let (pid, (reported_pid, pgid, _)) =
        pgid_of(pt_cmd(["pgid"]).process_group(ProcessGroup::Inherit));
    assert_eq!(reported_pid, pid as i32);
    assert_eq!(pgid, own_pgid());
}

#[test]
fn stop_group_with_inherit_is_refused() {
    let _g = Guard::new();
    let err = pt_cmd(["exit", "0"])
        .process_group(ProcessGroup::Inherit)
        .stop_group(true)
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(err.step(), Step::Prepare);
    assert_eq!(err.program(), pt().as_os_str());
}

#[test]
fn stop_sends_sigterm_and_reports_stopped() {
    let _g = Guard::new();
    let mut child = pt_cmd(["sleep", "100"]).spawn().unwrap();
    let t = Instant::now();
    let status = child.stop().unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(status.signal(), Some(Signal::TERM));
    assert_eq!(status.ended(), Ended::Requested);
    assert!(!status.success());
    assert_eq!(
        status.to_string(),
        "killed by SIGTERM, stopped by procession"
    );
}

#[test]
fn stop_escalates_to_sigkill_after_stop_timeout() {
    let _g = Guard::new();
    let mut child = spawn_ignore_term(pt_cmd(["ignore-term"]).stop_timeout(Duration::from_secs(1)));
    let t = Instant::now();
    let status = child.stop().unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took <= Duration::from_secs(3),
        "stop took {took:?}"
    );
    assert_eq!(status.signal(), Some(Signal::KILL));
    assert_eq!(status.ended(), Ended::Requested);
}

/// The default stop timeout applies: SIGKILL follows an ignored SIGTERM
/// after `DEFAULT_STOP_TIMEOUT`, 5 s, when none is set.
#[test]
fn stop_escalates_to_sigkill_after_the_default_stop_timeout() {
    let _g = Guard::new();
    assert_eq!(procession::DEFAULT_STOP_TIMEOUT, Duration::from_secs(5));
    let mut child = spawn_ignore_term(&mut pt_cmd(["ignore-term"]));
    let t = Instant::now();
    let status = child.stop().unwrap();
    let took = t.elapsed();
    assert!(
        took >= procession::DEFAULT_STOP_TIMEOUT,
        "stop took {took:?}"
    );
    assert!(
        took < procession::DEFAULT_STOP_TIMEOUT + Duration::from_secs(3),
        "stop took {took:?}"
    );
    assert_eq!(status.signal(), Some(Signal::KILL));
    assert_eq!(status.ended(), Ended::Requested);
}

#[test]
fn stop_after_the_child_exited_returns_its_status_unchanged() {
    let _g = Guard::new();
    let mut child = pt_cmd(["exit", "5"]).spawn().unwrap();
    let status = child
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("exited");
    let t = Instant::now();
    let again = child.stop().unwrap();
    assert!(t.elapsed() < Duration::from_millis(500));
    assert_eq!(again, status);
    assert_eq!(again.code(), Some(5));
    assert_eq!(again.ended(), Ended::OnItsOwn);
}

#[test]
fn stop_signal_replaces_sigterm() {
    let _g = Guard::new();
    let mut child = pt_cmd(["sleep", "100"])
        .stop_signal(Signal::INT)
        .spawn()
        .unwrap();
    let status = child.stop().unwrap();
    assert_eq!(status.signal(), Some(Signal::INT));
    assert_eq!(status.ended(), Ended::Requested);
}

#[test]
fn kill_sends_sigkill_at_once() {
    let _g = Guard::new();
    let mut child =
        spawn_ignore_term(pt_cmd(["ignore-term"]).stop_timeout(Duration::from_secs(60)));
    let t = Instant::now();
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(status.signal(), Some(Signal::KILL));
    assert_eq!(status.ended(), Ended::Requested);
}

#[test]
fn stop_command_runs_with_child_pid_instead_of_the_signal() {
    let _g = Guard::new();
    let tmp = TempDir::new("killcmd");
    let file = tmp.join("pid");
    let line = format!(
        "echo $CHILD_PID > '{}'; kill -USR1 $CHILD_PID",
        file.display()
    );
    let mut child = pt_cmd(["sleep", "100"])
        .stop_command(&line)
        .stop_timeout(Duration::from_secs(10))
        .spawn()
        .unwrap();
    let t = Instant::now();
    let status = child.stop().unwrap();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(status.signal(), Some(Signal::USR1));
    assert_eq!(status.ended(), Ended::Requested);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{}\n", child.pid())
    );
}

#[test]
fn stop_command_that_does_nothing_is_followed_by_sigkill() {
    let _g = Guard::new();
    let mut child = pt_cmd(["sleep", "100"])
        .stop_command("true")
        .stop_timeout(Duration::from_millis(300))
        .spawn()
        .unwrap();
    stop_ends_in_sigkill_after(&mut child, Duration::from_millis(250));
}

#[test]
fn stop_group_stop_reaches_every_process_in_the_group() {
    let _g = Guard::new();
    let mut child = Command::new("sh")
        .args(["-c", "sleep 100 & sleep 100"])
        .stop_group(true)
        .spawn()
        .unwrap();
    let pgid = child.pid() as i32;
    // No event tells when the shell has started both sleeps.
    let deadline = Instant::now() + Duration::from_secs(5);
    let sleeps = loop {
        let found = group_members(pgid, "sleep");
        if found.len() == 2 {
            break found;
        }
        assert!(Instant::now() < deadline, "sleeps not found: {found:?}");
        std::thread::sleep(Duration::from_millis(5));
    };
    let status = child.stop().unwrap();
    assert_eq!(status.signal(), Some(Signal::TERM));
    assert_eq!(status.ended(), Ended::Requested);
    for pid in sleeps {
        assert!(
            wait_dead(pid, Duration::from_secs(5)),
            "sleep {pid} survived"
        );
    }
}

#[test]
fn stop_group_stops_the_rest_of_the_group_when_the_leader_is_killed_alone() {
    let _g = Guard::new();
    let (mut child, grandchild) =
        spawn_with_grandchild(pt_cmd(["spawn-grandchild"]).stop_group(true));
    assert_eq!(stat(grandchild).map(|s| s.2), Some(child.pid() as i32));
    child.signal(Signal::KILL).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(Signal::KILL));
    assert_eq!(status.ended(), Ended::OnItsOwn);
    assert!(
        wait_dead(grandchild, Duration::from_secs(5)),
        "the leader's group member survived"
    );
}

#[test]
fn stop_group_stops_the_rest_of_the_group_when_the_leader_exits() {
    let _g = Guard::new();
    let mut child = Command::new("sh")
        .args(["-c", "\"$0\" sleep 1000 >/dev/null & echo $!; exit 7"])
        .arg0("sh")
        .arg(pt())
        .stdout(Stdio::piped())
        .stop_group(true)
        .spawn()
        .unwrap();
    let member: i32 = read_line(child.stdout.as_mut().unwrap())
        .trim()
        .parse()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7));
    assert_eq!(status.ended(), Ended::OnItsOwn);
    assert!(
        wait_dead(member, Duration::from_secs(5)),
        "the leader's group member survived"
    );
}

#[test]
fn without_stop_group_stop_reaches_the_child_only() {
    let _g = Guard::new();
    let (mut child, grandchild) =
        spawn_with_grandchild(pt_cmd(["spawn-grandchild"]).stop_group(false));
    let status = child.stop().unwrap();
    assert_eq!(status.signal(), Some(Signal::TERM));
    // The grandchild is untouched (re-parented to us, the subreaper).
    assert!(alive(grandchild));
    // SAFETY: killing our own leftover descendant by pid; it is alive (not
    // reaped), so the pid still names it.
    unsafe { libc::kill(grandchild, libc::SIGKILL) };
    assert!(wait_dead(grandchild, Duration::from_secs(5)));
}

#[test]
fn timeout_stops_the_child_while_waiting() {
    let _g = Guard::new();
    let t = Instant::now();
    let mut child = pt_cmd(["sleep", "100"])
        .timeout(Duration::from_millis(200))
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(status.timed_out());
    assert_eq!(status.ended(), Ended::TimedOut);
    assert_eq!(status.signal(), Some(Signal::TERM));
    assert_eq!(status.to_string(), "killed by SIGTERM, timed out");
}

#[test]
fn timeout_is_enforced_when_nobody_waits() {
    let _g = Guard::new();
    let t = Instant::now();
    let mut child = pt_cmd(["sleep", "100"])
        .timeout(Duration::from_millis(200))
        .spawn()
        .unwrap();
    let pid = child.pid() as i32;
    // Nothing here calls into the library until the child is dead: only the
    // background reaper can have enforced the deadline.
    assert!(
        wait_dead(pid, Duration::from_secs(5)),
        "timeout not enforced"
    );
    assert!(t.elapsed() >= Duration::from_millis(200));
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "try_wait never returned the status"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.timed_out());
    assert_eq!(status.ended(), Ended::TimedOut);
    assert_eq!(status.signal(), Some(Signal::TERM));
}

#[test]
fn wait_timeout_shorter_than_the_timeout_returns_none_then_wait_times_out() {
    let _g = Guard::new();
    let mut child = pt_cmd(["sleep", "100"])
        .timeout(Duration::from_millis(300))
        .spawn()
        .unwrap();
    assert_eq!(child.wait_timeout(Duration::from_millis(50)).unwrap(), None);
    let status = child.wait().unwrap();
    assert_eq!(status.ended(), Ended::TimedOut);
}

#[test]
fn timeout_escalates_to_sigkill_after_stop_timeout() {
    let _g = Guard::new();
    let mut child = spawn_ignore_term(
        pt_cmd(["ignore-term"])
            .timeout(Duration::from_millis(100))
            .stop_timeout(Duration::from_millis(200)),
    );
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(Signal::KILL));
    assert_eq!(status.ended(), Ended::TimedOut);
}

#[test]
fn dropping_a_running_child_returns_at_once_and_it_is_killed_later() {
    let _g = Guard::new();
    let child = spawn_ignore_term(pt_cmd(["ignore-term"]).stop_timeout(Duration::from_secs(5)));
    let pid = child.pid() as i32;
    let t = Instant::now();
    drop(child);
    let took = t.elapsed();
    assert!(took < Duration::from_millis(50), "drop took {took:?}");
    // SIGTERM is ignored: it lives on until SIGKILL, 5 s later.
    assert!(alive(pid));
    assert!(wait_dead(pid, Duration::from_secs(8)), "never killed");
    assert!(
        t.elapsed() >= Duration::from_millis(4500),
        "{:?}",
        t.elapsed()
    );
    _g.check();
}

/// A dropped child with a stop command: the drop returns at once, and the
/// stop command still runs (in the background). The stop command waits on a
/// fifo until the test writes to it, which the test does only after the drop
/// returned: the order is shown by events, not by timing.
#[test]
fn dropping_a_child_with_a_stop_command_runs_it_without_waiting_for_it() {
    use std::io::Write;
    use std::sync::mpsc;
    let _g = Guard::new();
    let dir = TempDir::new("drop-stop-command");
    let fifo = dir.join("go");
    let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
    let (reports_r, reports_w) = pipe();
    // `pt catch 1 10` reports the SIGUSR1 only the stop command sends. A
    // long stop timeout: only the stop command may end the child.
    let child = pt_cmd(["catch", "1", "10"])
        .stdout(reports_w)
        .stop_timeout(Duration::from_secs(60))
        .stop_command(format!(
            "read x < '{}'; kill -USR1 $CHILD_PID",
            fifo.display()
        ))
        .spawn()
        .unwrap();
    let mut reports = std::fs::File::from(reports_r);
    assert_eq!(read_line(&mut reports), "ready\n");
    // Writing to the fifo returns once the stop command opened it to read.
    let release = move || {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            f.write_all(b"go\n").unwrap();
            tx.send(()).unwrap();
        });
        rx
    };
    let (tx, dropped) = mpsc::channel();
    std::thread::spawn(move || {
        drop(child);
        tx.send(()).unwrap();
    });
    // The limits only bound a failure: a drop that waited for the stop
    // command would never return, as the command waits for the release.
    if dropped.recv_timeout(Duration::from_secs(10)).is_err() {
        let _ = release().recv_timeout(Duration::from_secs(10));
        panic!("the drop waited for the stop command");
    }
    assert!(
        release().recv_timeout(Duration::from_secs(10)).is_ok(),
        "the stop command never ran"
    );
    // Its SIGUSR1 reached the child, which said so and exited (end of file).
    assert_eq!(read_to_end_string(&mut reports), "caught 10\n");
}

#[test]
fn dropping_a_running_child_sends_the_stop_signal() {
    let _g = Guard::new();
    let child = pt_cmd(["sleep", "100"]).spawn().unwrap();
    let pid = child.pid() as i32;
    drop(child);
    assert!(wait_dead(pid, Duration::from_secs(3)));
}

#[test]
fn detached_child_runs_to_its_end_and_is_reaped() {
    let _g = Guard::new();
    let t = Instant::now();
    let child = pt_cmd(["sleep", "0.2"]).spawn().unwrap();
    let pid = child.pid() as i32;
    child.detach();
    assert!(wait_dead(pid, Duration::from_secs(5)));
    // It was not stopped: it slept its 200 ms.
    assert!(
        t.elapsed() >= Duration::from_millis(190),
        "{:?}",
        t.elapsed()
    );
    // The Guard proves the background reaper reaped it.
}

#[test]
fn stop_on_drop_false_lets_the_child_finish() {
    let _g = Guard::new();
    let t = Instant::now();
    let child = pt_cmd(["sleep", "0.2"])
        .stop_on_drop(false)
        .spawn()
        .unwrap();
    let pid = child.pid() as i32;
    drop(child);
    assert!(wait_dead(pid, Duration::from_secs(5)));
    assert!(
        t.elapsed() >= Duration::from_millis(190),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn detached_child_still_honours_its_timeout() {
    let _g = Guard::new();
    let t = Instant::now();
    let child = pt_cmd(["sleep", "100"])
        .timeout(Duration::from_millis(200))
        .spawn()
        .unwrap();
    let pid = child.pid() as i32;
    child.detach();
    assert!(
        wait_dead(pid, Duration::from_secs(5)),
        "timeout not enforced"
    );
    assert!(t.elapsed() >= Duration::from_millis(200));
}

#[test]
fn start_stop_does_not_wait_and_the_reaper_finishes() {
    let _g = Guard::new();
    let child = spawn_ignore_term(pt_cmd(["ignore-term"]).stop_timeout(Duration::from_millis(300)));
    let pid = child.pid() as i32;
    let t = Instant::now();
    child.start_stop();
    assert!(t.elapsed() < Duration::from_millis(50));
    assert!(alive(pid));
    // Nobody waits: the background reaper sends SIGKILL after 300 ms.
    assert!(wait_dead(pid, Duration::from_secs(5)));
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    let mut child = child;
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(Signal::KILL));
    assert_eq!(status.ended(), Ended::Requested);
}

#[test]
fn a_stop_command_that_hangs_is_killed_with_everything_it_started() {
    let _g = Guard::new();
    // The shell forks `pt sleep 100` (it is not the last command, so it is
    // not exec'd) and waits for it; the kill command never signals the child.
    let line = format!("'{}' sleep 100; true", pt().display());
    let mut child = pt_cmd(["sleep", "100"])
        .stop_command(&line)
        .stop_timeout(Duration::from_millis(300))
        .spawn()
        .unwrap();
    stop_ends_in_sigkill_after(&mut child, Duration::from_millis(250));
    // The Guard then finds no stray `pt sleep 100` from the kill command.
}

#[test]
fn kill_with_stop_group_kills_the_whole_group_at_once() {
    let _g = Guard::new();
    let (mut child, grandchild) = spawn_with_grandchild(
        pt_cmd(["spawn-grandchild"])
            .stop_group(true)
            .stop_timeout(Duration::from_secs(60)),
    );
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(Signal::KILL));
    assert_eq!(status.ended(), Ended::Requested);
    assert!(wait_dead(grandchild, Duration::from_secs(5)));
}

/// The stop signal must reach the whole group while the leader is still
/// running: a leader that catches SIGTERM and goes on must not shield its
/// children until the SIGKILL (nor until its own exit, when the rest of the
/// group is stopped anyway, which would hide a stop signal sent to the
/// leader alone).
#[test]
fn group_stop_reaches_the_members_while_a_term_catching_leader_runs_on() {
    let _g = Guard::new();
    let script = format!(
        "'{pt}' sleep 300 & echo $!; exec '{pt}' catch 2 15",
        pt = pt().display()
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stop_group(true)
        .stop_timeout(Duration::from_secs(3))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let member: i32 = read_line(&mut out).trim().parse().unwrap();
    assert_eq!(read_line(&mut out), "ready\n"); // TERM is caught from now on
    child.start_stop();
    assert_eq!(read_line(&mut out), "caught 15\n");
    // The member got the TERM too, while the leader still runs (it waits
    // for a second TERM until the SIGKILL, 3 s later).
    assert!(
        wait_dead(member, Duration::from_secs(2)),
        "the member {member} did not get the stop signal"
    );
    assert_eq!(child.try_wait().unwrap(), None, "the leader ended early");
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(Signal::KILL));
}

/// When the leader exits on its own, the rest of its group gets the stop
/// signal at once, then SIGCONT (so a suspended member acts on it), and a
/// member that needs a moment to exit gets the whole stop timeout before
/// SIGKILL.
#[test]
fn group_cleanup_after_the_leader_exits_sends_term_and_cont_and_waits_the_stop_timeout() {
    let _g = Guard::new();
    let stop_timeout = Duration::from_secs(5);
    let script = format!(
        "'{pt}' sleep 300 & echo a:$!; \
         sh -c 'trap \"sleep 0.2; echo bye; exit 0\" TERM; echo ready; \
                while :; do sleep 0.05; done' & \
         read x; exit 0",
        pt = pt().display()
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stop_group(true)
        .stop_timeout(stop_timeout)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let a: i32 = read_line(&mut out)
        .trim()
        .strip_prefix("a:")
        .unwrap()
        .parse()
        .unwrap();
    // Member A is suspended: only SIGCONT lets it act on SIGTERM.
    // SAFETY: stopping our own grandchild by pid (alive: it runs `sleep 300`).
    unsafe { libc::kill(a, libc::SIGSTOP) };
    while stat(a).map(|s| s.0) != Some('T') {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(read_line(&mut out), "ready\n"); // member B's trap is set
    let start = Instant::now();
    // wait() closes stdin: the leader's `read` returns and it exits.
    let status = child.wait().unwrap();
    let took = start.elapsed();
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    // B exited by itself 200 ms after its SIGTERM, not by an early SIGKILL.
    assert_eq!(rest, "bye\n");
    assert!(
        took < stop_timeout,
        "someone waited for the SIGKILL: {took:?}"
    );
    // A (re-parented to us) died of the SIGTERM, not of the SIGKILL.
    let mut raw = 0;
    // SAFETY: reaping our own re-parented grandchild by pid.
    assert_eq!(unsafe { libc::waitpid(a, &mut raw, 0) }, a);
    assert!(libc::WIFSIGNALED(raw));
    assert_eq!(libc::WTERMSIG(raw), libc::SIGTERM);
}

/// A member that ignores SIGTERM is SIGKILLed, as a group, once the stop
/// timeout after the leader's own exit has passed.
#[test]
fn group_cleanup_sigkills_members_that_ignore_the_stop_signal() {
    let _g = Guard::new();
    let script = format!("'{pt}' ignore-term & read x; exit 0", pt = pt().display());
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stop_group(true)
        .stop_timeout(Duration::from_millis(300))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    assert_eq!(read_line(&mut out), "ready\n"); // SIGTERM is ignored from now on
    let start = Instant::now();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(start.elapsed() >= Duration::from_millis(300));
    // wait() returned: the member is gone (its end closed our pipe).
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

/// wait() (and so stop()) returns only once a stop command has ended too.
#[test]
fn stop_waits_for_the_stop_command_to_end() {
    let _g = Guard::new();
    let dir = tempdir();
    let done = dir.join("done");
    let mut child = pt_cmd(["sleep", "100"])
        .stop_command(format!(
            "kill -TERM $CHILD_PID; sleep 0.3; echo done > '{}'",
            done.display()
        ))
        .spawn()
        .unwrap();
    let status = child.stop().unwrap();
    assert_eq!(status.signal(), Some(Signal::TERM));
    assert_eq!(std::fs::read_to_string(&done).unwrap(), "done\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// signal_group() reaches every member of the group, not only the leader.
#[test]
fn signal_group_reaches_a_member_while_the_leader_runs_on() {
    let _g = Guard::new();
    let script = format!(
        "'{pt}' catch 1 10 & echo $!; exec '{pt}' catch 2 10",
        pt = pt().display()
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stop_group(true)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    // The member's pid and two `ready` lines (member and leader, in either
    // order): both block USR1 from then on.
    let mut member = None;
    let mut ready = 0;
    while member.is_none() || ready < 2 {
        let line = read_line(&mut out);
        match line.trim().parse::<i32>() {
            Ok(pid) => member = Some(pid),
            Err(_) => {
                assert_eq!(line, "ready\n");
                ready += 1;
            }
        }
    }
    let member = member.unwrap();
    child.signal_group(Signal::USR1).unwrap();
    // The member caught it and exited; the leader waits for a second one.
    assert!(
        wait_dead(member, Duration::from_secs(5)),
        "the member missed it"
    );
    assert_eq!(read_line(&mut out), "caught 10\n");
    assert_eq!(read_line(&mut out), "caught 10\n");
    assert_eq!(child.try_wait().unwrap(), None);
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(Signal::KILL));
}

//! Every duration the API takes, at its extremes: `Duration::MAX` means
//! "never" and `Duration::ZERO` "at once", with no panic, no zombie and no
//! stray (regressions of an outside probe: "overflow when adding duration
//! to instant" in the caller, the reaper thread and `Drop`).

mod support;
use support::*;

use std::time::{Duration, Instant};

use procession::{Command, Ended, Exit, Signal, Stdio, Supervisor};

const MAX: Duration = Duration::MAX;
const ZERO: Duration = Duration::ZERO;

#[test]
fn timeout_max_never_fires_and_zero_stops_at_once() {
    let _g = Guard::new();
    let mut child = pt_cmd(["sleep", "100"]).timeout(MAX).spawn().unwrap();
    assert_eq!(
        child.wait_timeout(Duration::from_millis(100)).unwrap(),
        None
    );
    assert_eq!(child.stop().unwrap().ended(), Ended::Requested);
    let status = pt_cmd(["sleep", "100"]).timeout(ZERO).status().unwrap();
    assert_eq!(
        (status.ended(), status.signal()),
        (Ended::TimedOut, Some(Signal::TERM))
    );
}

#[test]
fn stop_timeout_max_waits_for_a_term_obeying_child_and_zero_kills_at_once() {
    let _g = Guard::new();
    let mut child = pt_cmd(["sleep", "100"]).stop_timeout(MAX).spawn().unwrap();
    assert_eq!(child.stop().unwrap().signal(), Some(Signal::TERM));
    // TERM ignored: with no grace at all, SIGKILL follows at once.
    let mut child = pt_cmd(["ignore-term"])
        .stdout(Stdio::piped())
        .stop_timeout(ZERO)
        .spawn()
        .unwrap();
    assert_eq!(child.read().unwrap().unwrap(), "ready\n");
    assert_eq!(child.stop().unwrap().signal(), Some(Signal::KILL));
    // TERM ignored and a grace of "never": the sequence stays at TERM until
    // we kill.
    let mut child = pt_cmd(["ignore-term"])
        .stdout(Stdio::piped())
        .stop_timeout(MAX)
        .spawn()
        .unwrap();
    assert_eq!(child.read().unwrap().unwrap(), "ready\n");
    child.start_stop();
    assert_eq!(
        child.wait_timeout(Duration::from_millis(200)).unwrap(),
        None
    );
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(Signal::KILL));
}

#[test]
fn group_stop_with_stop_timeout_max_and_a_drop_reaps_everything() {
    let _g = Guard::new();
    // The member obeys TERM: the group cleanup ends without its (never) kill.
    let (child, member) = spawn_with_grandchild(
        pt_cmd(["spawn-grandchild"])
            .stop_group(true)
            .stop_timeout(MAX),
    );
    drop(child);
    assert!(
        wait_dead(member, Duration::from_secs(10)),
        "the member outlived the group stop"
    );
    assert!(procession::__test_support::wait_for_reaper());
    // The background reaper survived it: a child dropped now is reaped (a
    // dead reaper thread would leave it a zombie for the guard to find).
    let later = pt_cmd(["sleep", "100"]).spawn().unwrap();
    let pid = later.pid() as i32;
    drop(later);
    assert!(wait_dead(pid, Duration::from_secs(10)));
    assert!(procession::__test_support::wait_for_reaper());
}

#[test]
fn wait_timeout_max_waits_for_the_exit_and_zero_only_looks() {
    let _g = Guard::new();
    let mut child = pt_cmd(["sleep", "100"]).spawn().unwrap();
    assert_eq!(child.wait_timeout(ZERO).unwrap(), None);
    let signaller = child.signaller();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50)); // the waiter's pace, not a sync
        signaller.signal(Signal::KILL).unwrap();
    });
    let status = child.wait_timeout(MAX).unwrap().unwrap();
    killer.join().unwrap();
    assert_eq!(status.signal(), Some(Signal::KILL));
}

#[test]
fn drop_timeout_max_lets_a_dropped_streams_child_end_on_its_own() {
    let _g = Guard::new();
    let mut chunks = Command::shell("echo first; exec sleep 0.2")
        .drop_timeout(MAX)
        .stream()
        .unwrap();
    let pid = chunks.pid();
    assert_eq!(chunks.next().unwrap().unwrap(), "first\n");
    let t = Instant::now();
    drop(chunks); // no stop sequence for a century: sleep ends by itself
    assert!(t.elapsed() < Duration::from_millis(100), "the drop blocked");
    assert!(wait_dead(pid as i32, Duration::from_secs(10)));
    assert!(procession::__test_support::wait_for_reaper());
    // ZERO: the stop sequence starts at once.
    let mut chunks = Command::shell("echo first; exec sleep 100")
        .drop_timeout(ZERO)
        .stream()
        .unwrap();
    let pid = chunks.pid();
    assert_eq!(chunks.next().unwrap().unwrap(), "first\n");
    drop(chunks);
    assert!(wait_dead(pid as i32, Duration::from_secs(10)));
    assert!(procession::__test_support::wait_for_reaper());
}

#[test]
fn pipe_drain_timeout_max_and_zero_end_a_stream_whose_pipe_closes() {
    let _g = Guard::new();
    for drain in [MAX, ZERO] {
        let out = pt_cmd(["write", "100000"])
            .pipe_drain_timeout(drain)
            .run()
            .unwrap();
        assert_eq!(out.stdout.len(), 100_000);
        let bytes = pt_cmd(["write", "1000"])
            .pipe_drain_timeout(drain)
            .stream()
            .unwrap()
            .collect_bytes()
            .unwrap();
        assert_eq!(bytes.len(), 1000);
    }
    // MAX with a grandchild holding the pipe a moment: all its output comes.
    let out = Command::shell("echo out; (sleep 0.3; echo late) &")
        .stop_group(false)
        .pipe_drain_timeout(MAX)
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"out\nlate\n");
    // ZERO with a grandchild holding the pipe: the stream ends at the exit.
    let t = Instant::now();
    let out = Command::shell("echo out; sleep 100 & echo $! >&2")
        .stderr(Stdio::piped())
        .stop_group(false)
        .pipe_drain_timeout(ZERO)
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert!(t.elapsed() < Duration::from_secs(5));
    let grandchild: i32 = String::from_utf8_lossy(&out.stderr).trim().parse().unwrap();
    kill_stray(grandchild);
}

/// SIGKILL to a stray the test made on purpose (then reaped by the guard).
fn kill_stray(pid: i32) {
    // The shell's own `kill` (no procps needed).
    Command::shell(format!("kill -9 {pid}")).status().unwrap();
    assert!(wait_dead(pid, Duration::from_secs(10)));
}

#[test]
fn supervised_waits_and_monitors_take_max_and_zero() {
    let _g = Guard::new();
    let sup = Supervisor::new();
    let child = sup
        .spawn(pt_cmd(["sleep", "100"]).stdout(Stdio::null()))
        .unwrap();
    let monitor = child.monitor();
    assert!(child.wait_timeout(ZERO).unwrap().is_none());
    assert!(monitor.recv_timeout(ZERO).is_none());
    child.start_stop();
    let exit = child.wait_timeout(MAX).unwrap().unwrap();
    assert_eq!(exit.status().unwrap().signal(), Some(Signal::TERM));
    assert!(matches!(monitor.recv_timeout(MAX), Some(Exit::Status(_))));
    let exit = sup
        .spawn(
            pt_cmd(["sleep", "100"])
                .stdout(Stdio::null())
                .timeout(ZERO)
                .stop_timeout(MAX),
        )
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(exit.ended(), Ended::TimedOut);
    sup.shutdown();
}

#[cfg(feature = "tokio")]
#[test]
fn async_wait_timeout_takes_max_and_zero() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _g = Guard::new();
    rt.block_on(async {
        let mut child = pt_cmd(["sleep", "100"]).spawn_async().unwrap();
        assert_eq!(child.wait_timeout(ZERO).await.unwrap(), None);
        child.start_stop();
        let status = child.wait_timeout(MAX).await.unwrap().unwrap();
        assert_eq!(status.signal(), Some(Signal::TERM));
    });
}

//! Faults (issue 17's list): the descriptor table full at every point, a
//! child that closes its stdout early or is stopped mid-stream, a host with
//! fds 0–2 closed, an argument list the kernel refuses, a child that forks
//! a thousand grandchildren. (The pid wrap-around checks are in
//! `fds_signals.rs`, the host's default SIGPIPE in `errors.rs`.)

mod support;

use std::io::Read;
use std::time::Duration;

use procession::{Command, Ended, ErrorKind, Signal, Stdio, Step};
use support::{Guard, pt_cmd, ptlib};

// ---------------------------------------------------------------------------
// EMFILE at every point
// ---------------------------------------------------------------------------

/// Runs `ptlib emfile-sweep OP` (OP with 0, 1, 2... 32 descriptors free, in
/// a fresh process so that the first use of every background piece meets
/// the shortage too) and `ptlib emfile-once OP` (no shortage), and checks:
/// every attempt either succeeded with exactly the right result or failed
/// with an `EMFILE` error; the shortest shortage failed and the longest
/// ones succeeded (a passing shortage is not remembered); and afterwards
/// the descriptor table and the children are exactly those of the run
/// without shortage (nothing leaked by a failed attempt).
fn emfile_sweep(op: &str) {
    let _g = Guard::new();
    let run = |mode: &str| {
        let out = Command::new(ptlib()).args([mode, op]).output().unwrap();
        assert!(out.status.success(), "ptlib {mode} {op}: {}", out.status);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // A panic anywhere (a background thread included) prints here.
        assert_eq!(stderr, "", "ptlib {mode} {op} wrote to stderr");
        String::from_utf8(out.stdout).unwrap()
    };
    let sweep = run("emfile-sweep");
    let once = run("emfile-once");
    let (attempts, tail): (Vec<&str>, Vec<&str>) = sweep.lines().partition(|l| l.starts_with("k="));
    assert_eq!(attempts.len(), 33, "{sweep}");
    let ok = |l: &&str| l.ends_with(" ok");
    for line in &attempts {
        assert!(
            ok(line) || (line.contains(" error Os ") && line.ends_with(" EMFILE")),
            "{op}: {line}\n{sweep}"
        );
    }
    assert!(!ok(&attempts[0]), "{op} succeeded with no descriptor free");
    assert!(
        attempts[24..].iter().all(ok),
        "{op} still fails with 24 descriptors free:\n{sweep}"
    );
    let once_tail: Vec<&str> = once.lines().filter(|l| !l.starts_with("k=")).collect();
    assert_eq!(once.lines().next(), Some("k=max ok"), "{once}");
    assert_eq!(tail, once_tail, "{op}: the sweep left more behind");
}

#[test]
fn emfile_at_every_point_of_output() {
    emfile_sweep("output");
}

#[test]
fn emfile_at_every_point_of_stream() {
    emfile_sweep("stream");
}

#[test]
fn emfile_at_every_point_of_events() {
    emfile_sweep("events");
}

#[test]
fn emfile_at_every_point_of_a_handle_with_pipes() {
    emfile_sweep("child");
}

#[test]
fn emfile_at_every_point_of_a_timeout_first_use_of_the_reaper() {
    emfile_sweep("timeout");
}

#[test]
fn emfile_at_every_point_of_a_dropped_group() {
    emfile_sweep("drop");
}

#[test]
fn emfile_at_every_point_of_output_to_a_channel_first_use_of_delivery() {
    emfile_sweep("callback");
}

/// The regression: a supervised child was spawned, then killed at once
/// when the reaper could not start, and `spawn` said `Ok`.
#[test]
fn emfile_at_every_point_of_a_supervised_child() {
    emfile_sweep("supervisor");
}

#[test]
fn emfile_at_every_point_of_a_pty() {
    emfile_sweep("pty");
}

/// The regression: the probe of the tokio runtime failed for want of a
/// descriptor and the runtime was remembered as one without an I/O
/// driver: every later async spawn on it failed.
#[cfg(feature = "tokio")]
#[test]
fn emfile_at_every_point_of_async_output() {
    emfile_sweep("async-output");
}

#[cfg(feature = "tokio")]
#[test]
fn emfile_at_every_point_of_an_async_handle() {
    emfile_sweep("async-child");
}

// ---------------------------------------------------------------------------
// The child misbehaves
// ---------------------------------------------------------------------------

#[test]
fn a_child_closing_its_stdout_early_still_gives_stderr_and_status() {
    let _g = Guard::new();
    let out = Command::shell("echo before; exec >&-; echo after-close >&2; exit 4")
        .stderr(Stdio::piped())
        .success_exit_codes([4])
        .events()
        .unwrap()
        .collect_output()
        .unwrap();
    assert_eq!(out.stdout, b"before\n");
    assert_eq!(out.stderr, b"after-close\n");
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn a_child_closing_its_stdin_early_ends_the_input_not_the_run() {
    let _g = Guard::new();
    // 8 MiB of input, far more than the pipe holds: the writer meets
    // EPIPE once the child has closed its end, and the run still succeeds
    // with the child's own output.
    let out = Command::shell("exec <&-; echo closed")
        .input_bytes(vec![b'x'; 8 << 20])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"closed\n");
    assert!(out.status.success(), "{}", out.status);
}

#[test]
fn a_child_stopped_mid_stream_resumes_and_every_byte_arrives() {
    let _g = Guard::new();
    let total = 16 << 20;
    let mut chunks = pt_cmd(["write", &total.to_string()]).stream().unwrap();
    let pid = chunks.pid() as i32;
    let first = chunks.next().unwrap().unwrap();
    // SAFETY: the child is ours and not reaped (its stream is open).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    // The stop is a state change, not an exit: wait until the kernel shows
    // it stopped (the only event for that is polling /proc).
    assert!(wait_state(pid, 'T'), "the child never showed as stopped");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    let mut got = first.len();
    for chunk in chunks.by_ref() {
        got += chunk.unwrap().len();
    }
    assert_eq!(got, total);
    let status = chunks.status().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn a_child_stopped_mid_stream_is_stopped_with_sigterm_not_left_to_sigkill() {
    let _g = Guard::new();
    let mut child = pt_cmd(["write", "1000000000"])
        .stdout(Stdio::piped())
        .stop_timeout(Duration::from_secs(30))
        .spawn()
        .unwrap();
    let mut buf = [0u8; 4096];
    child.stdout.as_mut().unwrap().read_exact(&mut buf).unwrap();
    child.signal(Signal::STOP).unwrap();
    assert!(wait_state(child.pid() as i32, 'T'));
    // A stopped process acts on SIGTERM only once continued: the stop
    // sequence sends SIGCONT after it. Without that it would take the
    // 30 s timeout and SIGKILL.
    let started = std::time::Instant::now();
    let status = child.stop().unwrap();
    assert_eq!(status.signal(), Some(Signal::TERM), "{status}");
    assert_eq!(status.ended(), Ended::Requested);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_child_stopped_mid_stream_still_times_out() {
    let _g = Guard::new();
    let mut chunks = pt_cmd(["write", "1000000000"])
        .timeout(Duration::from_millis(300))
        .stop_timeout(Duration::from_secs(30))
        .stream()
        .unwrap();
    let pid = chunks.pid() as i32;
    chunks.next().unwrap().unwrap();
    // SAFETY: the child is ours and not reaped (its stream is open).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    // Drain to the end (the timeout's stop sequence ends the stream).
    for chunk in chunks.by_ref() {
        let _ = chunk;
    }
    let status = chunks.status().unwrap();
    assert_eq!(status.ended(), Ended::TimedOut, "{status}");
    assert_eq!(status.signal(), Some(Signal::TERM), "{status}");
}

#[test]
fn a_stopped_child_is_not_taken_for_an_exited_one() {
    let _g = Guard::new();
    let mut child = pt_cmd(["sleep", "100"]).spawn().unwrap();
    child.signal(Signal::STOP).unwrap();
    assert!(wait_state(child.pid() as i32, 'T'));
    assert_eq!(child.try_wait().unwrap(), None);
    assert_eq!(child.wait_timeout(Duration::from_millis(50)).unwrap(), None);
    child.signal(Signal::CONT).unwrap();
    let status = child.stop().unwrap();
    assert_eq!(status.signal(), Some(Signal::TERM));
}

/// Polls `/proc/PID/stat` until the process shows state `state` (10 s at
/// most): the kernel reports a stop to no one but the parent's wait.
fn wait_state(pid: i32, state: char) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if support::stat(pid).is_some_and(|(s, _, _)| s == state) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

// ---------------------------------------------------------------------------
// The host is unusual
// ---------------------------------------------------------------------------

#[test]
fn a_host_with_fds_0_to_2_closed_gets_every_stream_right() {
    let _g = Guard::new();
    let dir = support::TempDir::new("closed-std");
    let report = dir.join("report");
    let status = Command::new(ptlib())
        .arg("closed-std")
        .arg(&report)
        .stdin(Stdio::closed())
        .stdout(Stdio::closed())
        .stderr(Stdio::closed())
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(
        std::fs::read_to_string(&report).unwrap(),
        "closed: \n\
         output: abc exit code 0\n\
         events: out in\\n|err\\n\n\
         child: out in\\n|err\\n\n"
    );
}

#[test]
fn an_argument_list_the_kernel_refuses_is_an_e2big_error_at_exec() {
    let _g = Guard::new();
    // One argument above MAX_ARG_STRLEN (32 pages).
    let err = Command::new("/bin/true")
        .arg("x".repeat(200_000))
        .spawn()
        .unwrap_err();
    assert_eq!(err.step(), Step::Exec, "{err}");
    assert_eq!(err.kind(), ErrorKind::Os, "{err}");
    assert_eq!(
        err.os_error().and_then(|e| e.raw_os_error()),
        Some(libc::E2BIG)
    );
    // Many arguments whose sum is above the limit (a quarter of the stack
    // limit, 2 MiB by default), and the same through the environment.
    let many: Vec<String> = (0..100).map(|_| "y".repeat(100_000)).collect();
    let err = Command::new("/bin/true").args(&many).status().unwrap_err();
    assert_eq!(
        err.os_error().and_then(|e| e.raw_os_error()),
        Some(libc::E2BIG),
        "{err}"
    );
    let mut cmd = Command::new("/bin/true");
    for (i, v) in many.iter().enumerate() {
        cmd.env(format!("BIG{i}"), v);
    }
    let err = cmd.output().unwrap_err();
    assert_eq!(
        err.os_error().and_then(|e| e.raw_os_error()),
        Some(libc::E2BIG),
        "{err}"
    );
    // And the next command runs normally.
    assert!(Command::new("/bin/true").status().unwrap().success());
}

// ---------------------------------------------------------------------------
// A thousand grandchildren
// ---------------------------------------------------------------------------

const THOUSAND: &str = "i=0; while [ $i -lt 1000 ]; do sleep 1000 & i=$((i+1)); done; echo ready";

/// The members of process group `pgid`, from /proc.
fn group_members(pgid: i32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| support::stat(pid).is_some_and(|(s, _, g)| g == pgid && s != 'Z'))
        .count()
}

#[test]
fn a_thousand_grandchildren_are_all_stopped_with_their_parent() {
    let _g = Guard::new();
    let mut child = Command::shell(format!("{THOUSAND}; wait"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(
        support::read_line(child.stdout.as_mut().unwrap()),
        "ready\n"
    );
    let pgid = child.pid() as i32;
    assert_eq!(group_members(pgid), 1001);
    let status = child.stop().unwrap();
    assert_eq!(status.ended(), Ended::Requested);
    // (The guard checks that none of them is left.)
}

#[test]
fn a_thousand_grandchildren_left_behind_by_an_exited_parent_do_not_hold_the_stream() {
    let _g = Guard::new();
    // The shell exits at once; its thousand sleeps keep stdout open. The
    // group stop after the leader's exit ends them, so the stream ends.
    let out = Command::shell(THOUSAND).output().unwrap();
    assert_eq!(out.stdout, b"ready\n");
    assert!(out.status.success(), "{}", out.status);
}

// ---------------------------------------------------------------------------
// Pid wrap-around: a reaped child's pid taken by a stranger
// ---------------------------------------------------------------------------

/// Checks that the stranger (which took a reaped child's pid) received no
/// signal: it stops with its own TERM, not with anything sent before.
#[cfg(feature = "tokio")]
fn stranger_untouched(mut stranger: procession::Child) {
    assert_eq!(
        stranger.try_wait().unwrap(),
        None,
        "the stranger was killed"
    );
    let status = stranger.stop().unwrap();
    assert_eq!(status.signal(), Some(Signal::TERM), "{status}");
    assert_eq!(status.ended(), Ended::Requested);
}

/// A supervised child reaped by the background reaper (not by a wait of
/// the caller's): its pid goes to a new process, and every handle of the
/// old child refuses to signal, and stopping it sends nothing.
#[test]
fn a_supervised_childs_handles_never_signal_the_process_that_reuses_its_pid() {
    let _g = Guard::new();
    let sup = procession::Supervisor::new();
    let old = sup.spawn(&pt_cmd(["exit", "0"])).unwrap();
    let monitor = old.monitor();
    let old_pid = old.pid();
    // Reaped in the background; the monitor hears of it after.
    assert!(monitor.recv().status().unwrap().success());
    let Some(stranger) = support::spawn_with_pid(old_pid) else {
        eprintln!("note: could not reuse pid {old_pid}; only the error results are checked");
        assert_eq!(
            old.signal(Signal::USR1).unwrap_err().kind(),
            ErrorKind::AlreadyReaped
        );
        return;
    };
    for result in [old.signal(Signal::USR1), old.signal_group(Signal::USR1)] {
        assert_eq!(result.unwrap_err().kind(), ErrorKind::AlreadyReaped);
    }
    old.start_stop();
    assert!(old.stop().unwrap().status().unwrap().success());
    assert!(sup.manage(old_pid).is_ok_and(|m| m.pid() == old_pid));
    // (manage adopted the stranger: a fresh handle for the live process;
    // the old handle still refers to the old child.)
    assert_eq!(
        old.signal(Signal::USR1).unwrap_err().kind(),
        ErrorKind::AlreadyReaped
    );
    drop(sup); // stops what it manages: the stranger, with its own TERM
    let mut stranger = stranger;
    let status = stranger.wait().unwrap();
    assert_eq!(status.signal(), Some(Signal::TERM), "{status}");
}

/// The same for a handle of the async API, whose child the reaper reaped
/// while the runtime waited on it.
#[cfg(feature = "tokio")]
#[test]
fn an_async_childs_handles_never_signal_the_process_that_reuses_its_pid() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _g = Guard::new();
    let mut old = rt
        .block_on(async { pt_cmd(["exit", "0"]).spawn_async() })
        .unwrap();
    let old_pid = old.pid();
    let signaller = old.signaller();
    assert!(rt.block_on(old.wait()).unwrap().success());
    let Some(stranger) = support::spawn_with_pid(old_pid) else {
        eprintln!("note: could not reuse pid {old_pid}; only the error results are checked");
        assert_eq!(old.kill().unwrap_err().kind(), ErrorKind::AlreadyReaped);
        return;
    };
    for result in [
        old.signal(Signal::USR1),
        old.signal_group(Signal::USR1),
        old.kill(),
        signaller.signal(Signal::USR1),
        signaller.signal_group(Signal::USR1),
    ] {
        assert_eq!(result.unwrap_err().kind(), ErrorKind::AlreadyReaped);
    }
    old.start_stop();
    assert!(rt.block_on(old.stop()).unwrap().success());
    rt.block_on(async move { drop(old) });
    stranger_untouched(stranger);
}

//! What the child inherits (descriptors, signal mask and dispositions), and
//! signalling: delivery, Signaller, process-group signals, and the refusal
//! to signal anything once the child has been reaped.

mod support;
use support::*;

use std::time::{Duration, Instant};

use procession::__test_support::Disposition;
use procession::{ErrorKind, Signal, Stdio, Step};

fn sigchld_disposition() -> Disposition {
    procession::__test_support::disposition(libc::SIGCHLD).unwrap()
}

/// The kernel's `struct sigaction` on x86_64 and aarch64: handler, flags,
/// restorer, mask.
type KernelSigaction = [u64; 4];

/// `rt_sigaction(sig, new, &old)` as a raw system call: glibc's `sigaction`
/// refuses signals 32 and 33, which it keeps for itself.
fn raw_sigaction(sig: i32, new: &KernelSigaction) -> KernelSigaction {
    let mut old: KernelSigaction = [0; 4];
    // SAFETY: both pointers point to 32-byte kernel sigaction structures;
    // the mask size is the kernel's 8 bytes.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            new.as_ptr(),
            old.as_mut_ptr(),
            8usize,
        )
    };
    assert_eq!(r, 0, "rt_sigaction({sig})");
    old
}

extern "C" fn ignore_it(_: libc::c_int) {}

/// Restores this thread's signal mask and every disposition it changed on
/// drop (also when an assertion fails).
struct SignalStateRestore {
    mask: libc::sigset_t,
    saved: Vec<(i32, KernelSigaction)>,
}

impl SignalStateRestore {
    fn new() -> SignalStateRestore {
        // SAFETY: sigset_t is plain data; pthread_sigmask with a NULL new
        // set only reads the current mask into `mask`.
        let mask = unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), &mut mask);
            mask
        };
        SignalStateRestore {
            mask,
            saved: Vec::new(),
        }
    }

    /// Sets `sig` to SIG_IGN, or to a handler that does nothing.
    fn set(&mut self, sig: i32, ignore: bool) {
        let handler = if ignore {
            libc::SIG_IGN as u64
        } else {
            ignore_it as extern "C" fn(libc::c_int) as usize as u64
        };
        // SA_RESTORER with glibc's restorer is only needed for a handler to
        // return; these handlers never run (the signals are never sent).
        let old = raw_sigaction(sig, &[handler, 0, 0, 0]);
        if !self.saved.iter().any(|(s, _)| *s == sig) {
            self.saved.push((sig, old));
        }
    }

    fn block(&mut self, sigs: &[i32]) {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &sig in sigs {
                libc::sigaddset(&mut set, sig);
            }
            assert_eq!(
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
                0
            );
        }
    }
}

impl Drop for SignalStateRestore {
    fn drop(&mut self) {
        for (sig, old) in self.saved.drain(..).rev() {
            raw_sigaction(sig, &old);
        }
        // SAFETY: restoring the mask saved in `new`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.mask, std::ptr::null_mut());
        }
    }
}

/// A hex mask field (`SigBlk:` ...) of /proc/thread-self/status.
fn own_mask(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let value = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap()
        .trim();
    u64::from_str_radix(value, 16).unwrap()
}

fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

#[test]
fn child_sees_only_fds_0_1_2_despite_inheritable_fds_in_the_parent() {
    let _g = Guard::new();
    let mut fds = Vec::new();
    for _ in 0..50 {
        // SAFETY: plain open(2) of a constant path; closed below.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
        assert!(fd >= 0);
        // SAFETY: F_GETFD only reads the descriptor's flags.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert_eq!(
            flags & libc::FD_CLOEXEC,
            0,
            "the test needs inheritable fds"
        );
        fds.push(fd);
    }
    let result = output(&mut pt_cmd(["fds"]));
    for fd in fds {
        // SAFETY: closing descriptors this test opened.
        unsafe { libc::close(fd) };
    }
    let (out, status) = result;
    assert!(status.success());
    assert_eq!(String::from_utf8(out).unwrap(), "0 1 2\n");
}

#[test]
fn piped_streams_are_the_only_fds_the_child_gets() {
    let _g = Guard::new();
    let mut child = pt_cmd(["fds"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = read_to_end_string(child.stdout.as_mut().unwrap());
    assert_eq!(out, "0 1 2\n");
    assert!(child.wait().unwrap().success());
}

#[test]
fn closed_stdin_leaves_fd_0_free_in_the_child() {
    let _g = Guard::new();
    let (out, status) = output(pt_cmd(["fds"]).stdin(Stdio::closed()));
    assert!(status.success());
    assert_eq!(String::from_utf8(out).unwrap(), "1 2\n");
}

const CLEAN_SIGNAL_STATE: &str =
    "blocked 0000000000000000\nignored 0000000000000000\ncaught 0000000000000000\n";

/// The parent blocks some signals, ignores others (standard, real-time, and
/// the two glibc keeps for itself) and catches others; the child must start
/// with none of that. Then the parent ignores one more signal and the next
/// child must not inherit it either (nothing about the parent's state is
/// remembered between spawns).
#[test]
fn child_gets_an_empty_signal_mask_and_default_dispositions() {
    let _g = Guard::new();
    let mut state = SignalStateRestore::new();
    state.block(&[libc::SIGUSR1, libc::SIGTERM]);
    let ignored = [
        libc::SIGPIPE,
        libc::SIGINT,
        libc::SIGHUP,
        32,
        33,
        libc::SIGRTMIN() + 3,
        libc::SIGRTMAX(),
    ];
    for sig in ignored {
        state.set(sig, true);
    }
    let caught = [libc::SIGUSR2, libc::SIGWINCH, libc::SIGRTMIN() + 5];
    for sig in caught {
        state.set(sig, false);
    }
    // The parent really has that state.
    let blocked = own_mask("SigBlk:");
    assert_eq!(
        blocked & (bit(libc::SIGUSR1) | bit(libc::SIGTERM)),
        bit(libc::SIGUSR1) | bit(libc::SIGTERM)
    );
    let want_ignored: u64 = ignored.iter().map(|&s| bit(s)).sum();
    assert_eq!(own_mask("SigIgn:") & want_ignored, want_ignored);
    let want_caught: u64 = caught.iter().map(|&s| bit(s)).sum();
    assert_eq!(own_mask("SigCgt:") & want_caught, want_caught);

    let (out, status) = output(&mut pt_cmd(["sigstate"]));
    assert!(status.success());
    assert_eq!(String::from_utf8(out).unwrap(), CLEAN_SIGNAL_STATE);

    state.set(libc::SIGQUIT, true);
    assert_ne!(own_mask("SigIgn:") & bit(libc::SIGQUIT), 0);
    let (out, status) = output(&mut pt_cmd(["sigstate"]));
    assert!(status.success());
    assert_eq!(String::from_utf8(out).unwrap(), CLEAN_SIGNAL_STATE);

    // Spawning left the parent's own mask as it was.
    assert_eq!(own_mask("SigBlk:"), blocked);
}

#[test]
fn no_sigchld_handler_is_ever_installed() {
    let _g = Guard::new();
    assert_eq!(sigchld_disposition(), Disposition::Default);

    let mut child = pt_cmd(["exit", "0"]).spawn().unwrap();
    assert_eq!(sigchld_disposition(), Disposition::Default);
    child.wait().unwrap();
    assert_eq!(sigchld_disposition(), Disposition::Default);

    // A running child dropped: the background reaper takes over.
    let child = pt_cmd(["sleep", "100"]).spawn().unwrap();
    let pid = child.pid() as i32;
    drop(child);
    assert!(wait_dead(pid, Duration::from_secs(5)));
    assert_eq!(sigchld_disposition(), Disposition::Default);

    // A timeout enforced by the reaper.
    let mut child = pt_cmd(["sleep", "100"])
        .timeout(Duration::from_millis(10))
        .spawn()
        .unwrap();
    assert!(child.wait().unwrap().timed_out());
    assert_eq!(sigchld_disposition(), Disposition::Default);
}

#[test]
fn signal_delivers_to_the_child() {
    let _g = Guard::new();
    let mut child = pt_cmd(["sleep", "100"]).spawn().unwrap();
    child.signal(Signal::USR1).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(Signal::USR1));
    assert_eq!(status.shell_code(), 128 + libc::SIGUSR1);
    // The caller's own signal is not the library's stop sequence.
    assert_eq!(status.ended(), procession::Ended::OnItsOwn);
}

#[test]
fn signaller_signals_from_another_thread_while_one_waits() {
    let _g = Guard::new();
    let mut child = pt_cmd(["sleep", "100"]).spawn().unwrap();
    let signaller = child.signaller();
    assert_eq!(signaller.pid(), child.pid());
    let t = std::thread::spawn(move || signaller.signal(Signal::USR2));
    let status = child.wait().unwrap();
    t.join().unwrap().unwrap();
    assert_eq!(status.signal(), Some(Signal::USR2));
}

#[test]
fn signal_group_reaches_the_whole_group() {
    let _g = Guard::new();
    let (mut child, grandchild) = spawn_with_grandchild(&mut pt_cmd(["spawn-grandchild"]));
    assert_eq!(stat(grandchild).map(|s| s.2), Some(child.pid() as i32));
    child.signal_group(Signal::USR1).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(Signal::USR1));
    assert!(wait_dead(grandchild, Duration::from_secs(5)));
}

#[test]
fn signal_group_is_refused_for_a_child_in_our_group() {
    let _g = Guard::new();
    let mut child = pt_cmd(["echo"])
        .stdin(Stdio::piped())
        .process_group(procession::ProcessGroup::Inherit)
        .spawn()
        .unwrap();
    let err = child.signal_group(Signal::USR1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(err.step(), Step::Signal);
    let err = child.signaller().signal_group(Signal::USR1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    // Nothing was sent: the child ends normally at EOF.
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn after_wait_signal_kill_and_signal_group_fail_with_already_reaped() {
    let _g = Guard::new();
    let mut child = pt_cmd(["exit", "0"]).spawn().unwrap();
    let signaller = child.signaller();
    assert!(child.wait().unwrap().success());
    let errors = [
        child.signal(Signal::USR1).unwrap_err(),
        child.kill().unwrap_err(),
        child.signal_group(Signal::USR1).unwrap_err(),
        signaller.signal(Signal::USR1).unwrap_err(),
        signaller.signal_group(Signal::USR1).unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.kind(), ErrorKind::AlreadyReaped, "{err}");
        assert_eq!(err.step(), Step::Signal, "{err}");
        assert_eq!(err.program(), pt().as_os_str());
        assert!(err.os_error().is_none(), "{err:?}");
    }
    // stop() on a reaped child returns the status again.
    assert!(child.stop().unwrap().success());
}

#[test]
fn signaller_fails_with_already_reaped_after_a_background_reap() {
    let _g = Guard::new();
    let child = pt_cmd(["sleep", "100"]).spawn().unwrap();
    let signaller = child.signaller();
    let pid = child.pid() as i32;
    drop(child);
    // The reaper reaps it once SIGTERM took effect; no event tells us when.
    let deadline = Instant::now() + Duration::from_secs(5);
    while procession::__test_support::unreaped_children() != 0 {
        assert!(Instant::now() < deadline, "not reaped in the background");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(!alive(pid));
    for err in [
        signaller.signal(Signal::USR1).unwrap_err(),
        signaller.signal_group(Signal::USR1).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::AlreadyReaped, "{err}");
    }
}

#[test]
fn a_reaped_childs_handles_never_signal_the_process_that_reuses_its_pid() {
    let _g = Guard::new();
    let mut old = pt_cmd(["exit", "0"]).spawn().unwrap();
    let old_pid = old.pid();
    let signaller = old.signaller();
    assert!(old.wait().unwrap().success());

    let Some(mut new) = support::spawn_with_pid(old_pid) else {
        eprintln!("note: could not reuse pid {old_pid}; only the error results are checked");
        assert_eq!(
            old.signal(Signal::USR1).unwrap_err().kind(),
            ErrorKind::AlreadyReaped
        );
        return;
    };
    // The new child leads its own group, whose id is the old child's pid too.
    assert_eq!(new.pid(), old_pid);
    for result in [
        old.signal(Signal::USR1),
        old.signal_group(Signal::USR1),
        old.kill(),
        signaller.signal(Signal::USR1),
        signaller.signal_group(Signal::USR1),
    ] {
        assert_eq!(result.unwrap_err().kind(), ErrorKind::AlreadyReaped);
    }
    // Dropping the old handle and starting its stop sequence send nothing either.
    signaller.start_stop();
    drop(old);
    // Had USR1 or KILL reached the new child, it would report that signal
    // rather than the TERM of its own stop sequence (USR1 is delivered
    // before TERM, and KILL wins over anything).
    assert_eq!(new.try_wait().unwrap(), None);
    let status = new.stop().unwrap();
    assert_eq!(status.signal(), Some(Signal::TERM));
    assert_eq!(status.ended(), procession::Ended::Requested);
}

/// A host that reaps our child itself (its own `waitpid(-1)` or SIGCHLD
/// handler) leaves the library's bookkeeping saying "not reaped". Group
/// signals must then check through the pidfd, not trust the flag: the old
/// pid may already be the id of an unrelated group.
#[test]
fn group_signals_refuse_a_leader_reaped_elsewhere() {
    let _g = Guard::new();
    let old = pt_cmd(["sleep", "100"])
        .process_group(procession::ProcessGroup::New)
        .stop_group(true)
        .spawn()
        .unwrap();
    let old_pid = old.pid();
    // The "host" kills and reaps it behind the library's back.
    // SAFETY: signalling and reaping our own child by pid, as a host would.
    unsafe {
        libc::kill(old_pid as i32, libc::SIGKILL);
        assert_eq!(
            libc::waitpid(old_pid as i32, std::ptr::null_mut(), 0),
            old_pid as i32
        );
    }
    let new = support::spawn_with_pid(old_pid);
    // The library's flag still says "not reaped": only the pidfd knows.
    // A signal by pid (kill(2)) would reach the new process.
    let err = old.signal(Signal::USR1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyReaped, "{err}");
    assert!(err.to_string().contains("reaped outside"), "{err}");
    let err = old.signal_group(Signal::USR1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyReaped, "{err}");
    // kill() goes to the group too (group stop): refused the same way.
    let err = old.kill().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyReaped, "{err}");
    // The stop sequence of the old handle sends nothing either.
    old.signaller().start_stop();
    drop(old);
    if let Some(mut new) = new {
        // The new process leads its own group, whose id is the old pid.
        assert_eq!(new.pid(), old_pid);
        // Had USR1 or TERM reached it, it would end with that signal. No
        // event tells that a signal did not come: give one 300 ms.
        let hit = new.wait_timeout(Duration::from_millis(300)).unwrap();
        assert_eq!(hit, None, "the new process was hit");
        new.kill().unwrap();
        assert_eq!(new.wait().unwrap().signal(), Some(Signal::KILL));
    } else {
        eprintln!("note: could not reuse pid {old_pid}; only the error result is checked");
    }
}

/// wait() on a child that something else reaped (a host's `waitpid(-1)`)
/// is an error naming the step and the cause, not a status made up.
#[test]
fn wait_after_a_host_reaped_the_child_is_an_error() {
    let _g = Guard::new();
    let mut child = pt_cmd(["exit", "3"]).spawn().unwrap();
    let pid = child.pid() as i32;
    // SAFETY: reaping our own child by pid, as a host would.
    assert_eq!(unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) }, pid);
    let err = child.wait().unwrap_err();
    assert_eq!(err.step(), Step::Wait);
    assert_eq!(
        err.os_error().and_then(|e| e.raw_os_error()),
        Some(libc::ECHILD)
    );
    assert!(err.to_string().contains("reaped elsewhere"), "{err}");
}

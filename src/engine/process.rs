//! [`Process`]: one child's life as a state machine shared by every driver.
//!
//! The state machine does no waiting of its own. [`Process::advance`] looks at
//! the clock and the child (a non-blocking `waitid`), performs whatever is due
//! (start the stop sequence at the timeout, SIGKILL at the end of
//! `kill_timeout`, stop the rest of the group when the leader has exited,
//! reap) and returns the next instant at which something will be due. Any
//! driver can call it: a blocking `wait` that polls the pidfd on the
//! caller's thread, or the background reaper's epoll loop. The state sits
//! behind a mutex, so the drivers can race and each step still happens once.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Step};
use crate::status::{Ended, ExitStatus};
use crate::sys::fd::{self, Interest};
use crate::sys::pidfd::{self, RawExit, Target};
use crate::sys::procfs;
use crate::{Command, Signal, Stdio};

/// Children spawned and not yet reaped, process-wide.
static UNREAPED: AtomicUsize = AtomicUsize::new(0);

/// How many children this process has spawned and not yet reaped (including
/// those handed to the background reaper).
pub(crate) fn unreaped() -> usize {
    UNREAPED.load(Ordering::SeqCst)
}

/// The stop policy, fixed at spawn.
pub(crate) struct Policy {
    pub kill_signal: Signal,
    pub kill_command: Option<OsString>,
    pub kill_timeout: Duration,
    pub kill_group: bool,
    pub success_codes: Vec<i32>,
}

/// Where the stop sequence is.
#[derive(Clone, Copy, Debug)]
enum Stop {
    NotStarted,
    /// The first signal (or kill command) went out; SIGKILL follows at `kill_at`.
    Signalled {
        reason: Ended,
        kill_at: Instant,
    },
    /// SIGKILL went out.
    Killed {
        reason: Ended,
    },
}

/// With `kill_group`, what is left to do for the rest of the group once the
/// leader has exited.
#[derive(Clone, Copy, Debug)]
enum GroupCleanup {
    /// Leader still running (or no `kill_group`).
    Idle,
    /// `kill_signal` sent to the group; waiting for it to empty, SIGKILL at `kill_at`.
    Draining {
        kill_at: Instant,
        recheck: Duration,
    },
    Done,
}

struct State {
    exit: Option<RawExit>,
    reaped: bool,
    stop: Stop,
    timeout_at: Option<Instant>,
    /// Set by [`Process::stop_after`]: start the stop sequence then.
    stop_at: Option<(Instant, Ended)>,
    group: GroupCleanup,
    /// `waitid` failed (`ECHILD`: someone else reaped our child).
    lost: Option<i32>,
    /// The kill command's process, while the stop sequence uses one: the
    /// child is not finished until it is.
    helper: Option<Arc<Process>>,
}

/// What [`Process::advance`] leaves to do.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Progress {
    /// When `advance` should run again (a deadline), if anything is pending
    /// besides the child's exit.
    pub next: Option<Instant>,
    /// Reaped and nothing left to do.
    pub done: bool,
}

/// A spawned child: pid, pidfd, policy and state.
pub(crate) struct Process {
    pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    program: OsString,
    /// The group signalled by group operations: the child's own group or the
    /// one it joined; `None` when it stays in ours.
    pgid: Option<libc::pid_t>,
    policy: Policy,
    state: Mutex<State>,
}

impl Process {
    pub(crate) fn new(
        pid: libc::pid_t,
        pidfd: Option<OwnedFd>,
        program: OsString,
        pgid: Option<libc::pid_t>,
        policy: Policy,
        timeout: Option<Duration>,
    ) -> Process {
        UNREAPED.fetch_add(1, Ordering::SeqCst);
        Process {
            pid,
            pidfd,
            program,
            pgid,
            policy,
            state: Mutex::new(State {
                exit: None,
                reaped: false,
                stop: Stop::NotStarted,
                timeout_at: timeout.map(|t| Instant::now() + t),
                stop_at: None,
                group: GroupCleanup::Idle,
                lost: None,
                helper: None,
            }),
        }
    }

    pub(crate) fn pid(&self) -> libc::pid_t {
        self.pid
    }

    pub(crate) fn program(&self) -> &OsStr {
        &self.program
    }

    pub(crate) fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|f| f.as_fd())
    }

    /// Whether the reaper must watch this child from the start: a deadline
    /// or a group to clean up must be honoured even if nobody waits.
    pub(crate) fn needs_watching(&self) -> bool {
        self.policy.kill_group || self.lock().timeout_at.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state inconsistent
        // (every update is a single assignment), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn target(&self) -> Target<'_> {
        match &self.pidfd {
            Some(fd) => Target::Pidfd(fd.as_fd()),
            None => Target::Pid(self.pid),
        }
    }

    fn mark_reaped(&self, st: &mut State) {
        if !st.reaped {
            st.reaped = true;
            UNREAPED.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The exit status, once the child has exited.
    fn status_of(&self, st: &State) -> Option<ExitStatus> {
        let ended = match st.stop {
            Stop::NotStarted => Ended::OnItsOwn,
            Stop::Signalled { reason, .. } | Stop::Killed { reason } => reason,
        };
        Some(match st.exit? {
            RawExit::Code(c) => ExitStatus::from_code(c, ended, &self.policy.success_codes),
            RawExit::Signal {
                signal,
                core_dumped,
            } => ExitStatus::from_signal(signal, core_dumped, ended),
        })
    }

    /// Sends `sig` to the child, or to its group with `kill_group`.
    /// Only called while the child is not reaped, so neither its pid nor its
    /// group id can have been reused. `ESRCH` (already exiting) is ignored.
    fn send(&self, sig: Signal) {
        let _ = match (self.policy.kill_group, self.pgid) {
            (true, Some(g)) => pidfd::kill(-g, sig.as_raw()),
            _ => self.send_to_child(sig),
        };
    }

    fn send_to_child(&self, sig: Signal) -> std::io::Result<()> {
        match &self.pidfd {
            Some(fd) => pidfd::pidfd_send_signal(fd.as_fd(), sig.as_raw()),
            None => pidfd::kill(self.pid, sig.as_raw()),
        }
    }

    /// Runs the kill command with `CHILD_PID` set; the reaper enforces its
    /// deadline and reaps it, and waits on the child also wait for it.
    fn run_kill_command(&self, st: &mut State, line: &OsStr) -> Result<(), Error> {
        let mut cmd = Command::shell(line);
        cmd.env("CHILD_PID", self.pid.to_string())
            .stdin(Stdio::null())
            // It is part of the cleanup: neither it nor anything it starts
            // may outlive the sequence, so it runs in a group of its own
            // that is stopped as a whole.
            .process_group(crate::ProcessGroup::New)
            .kill_group(true)
            .timeout(self.policy.kill_timeout)
            .kill_signal(Signal::KILL);
        let helper = super::spawn::spawn(&cmd)?;
        super::reaper::adopt(helper.clone());
        st.helper = Some(helper);
        Ok(())
    }

    fn begin_stop(&self, st: &mut State, reason: Ended, now: Instant) {
        if st.exit.is_some() || st.reaped || !matches!(st.stop, Stop::NotStarted) {
            return;
        }
        let by_command = match &self.policy.kill_command {
            Some(line) => self.run_kill_command(st, line).is_ok(),
            None => false,
        };
        if !by_command {
            self.send(self.policy.kill_signal);
        }
        st.stop = Stop::Signalled {
            reason,
            kill_at: now + self.policy.kill_timeout,
        };
    }

    /// Looks at the child and performs what is due. See the module docs.
    pub(crate) fn advance(&self, now: Instant) -> Progress {
        let mut st = self.lock();
        self.advance_locked(&mut st, now)
    }

    fn advance_locked(&self, st: &mut State, now: Instant) -> Progress {
        if st.exit.is_none() && !st.reaped {
            // With kill_group the leader stays a zombie until its group is
            // gone, which keeps the group id from being reused meanwhile.
            let reap = !self.policy.kill_group;
            match pidfd::wait_exit(self.target(), reap, false) {
                Ok(Some(raw)) => {
                    st.exit = Some(raw);
                    if reap {
                        self.mark_reaped(st);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    st.lost = e.raw_os_error();
                    self.mark_reaped(st);
                }
            }
        }
        if st.reaped && st.exit.is_none() {
            return Progress {
                next: None,
                done: true,
            };
        }
        if st.exit.is_none() {
            let mut next: Option<Instant> = None;
            if let (Some(t), Stop::NotStarted) = (st.timeout_at, st.stop) {
                if now >= t {
                    self.begin_stop(st, Ended::TimedOut, now);
                } else {
                    next = Some(t);
                }
            }
            if let (Some((t, reason)), Stop::NotStarted) = (st.stop_at, st.stop) {
                if now >= t {
                    self.begin_stop(st, reason, now);
                } else {
                    next = Some(next.map_or(t, |n| n.min(t)));
                }
            }
            if let Stop::Signalled { reason, kill_at } = st.stop {
                if now >= kill_at {
                    self.send(Signal::KILL);
                    st.stop = Stop::Killed { reason };
                } else {
                    next = Some(next.map_or(kill_at, |n| n.min(kill_at)));
                }
            }
            return Progress { next, done: false };
        }
        if !st.reaped {
            // Exited with kill_group: stop the rest of the group.
            let pgid = self.pgid.unwrap_or(self.pid);
            if let GroupCleanup::Idle = st.group {
                let sig = match st.stop {
                    Stop::Killed { .. } => Signal::KILL,
                    _ => self.policy.kill_signal,
                };
                let _ = pidfd::kill(-pgid, sig.as_raw());
                st.group = GroupCleanup::Draining {
                    kill_at: now + self.policy.kill_timeout,
                    recheck: Duration::from_millis(1),
                };
            }
            if let GroupCleanup::Draining { kill_at, recheck } = st.group {
                if procfs::group_has_members(pgid, self.pid) {
                    if now < kill_at {
                        // No event tells when a group empties: look again
                        // soon, backing off to 50 ms.
                        st.group = GroupCleanup::Draining {
                            kill_at,
                            recheck: (recheck * 2).min(Duration::from_millis(50)),
                        };
                        return Progress {
                            next: Some((now + recheck).min(kill_at)),
                            done: false,
                        };
                    }
                    let _ = pidfd::kill(-pgid, libc::SIGKILL);
                }
                st.group = GroupCleanup::Done;
            }
            let _ = pidfd::wait_exit(self.target(), true, false);
            self.mark_reaped(st);
        }
        Progress {
            next: None,
            done: true,
        }
    }

    /// Whether everything about the child is over: it is reaped (with
    /// `kill_group`, after the rest of its group is gone) and its kill
    /// command, if one ran, has ended too.
    fn finished(&self, st: &State) -> bool {
        st.reaped && st.helper.as_ref().is_none_or(|h| h.is_reaped())
    }

    /// Whether the child's exit has been seen (its status is known), even if
    /// the group cleanup still runs.
    pub(crate) fn exit_seen(&self) -> bool {
        self.lock().exit.is_some()
    }

    /// The status once the child is [finished](Self::finished), without
    /// blocking.
    pub(crate) fn try_wait(&self) -> Result<Option<ExitStatus>, Error> {
        let mut st = self.lock();
        self.advance_locked(&mut st, Instant::now());
        if let Some(h) = &st.helper {
            h.advance(Instant::now());
        }
        self.lost_error(&st)?;
        Ok(if self.finished(&st) {
            self.status_of(&st)
        } else {
            None
        })
    }

    fn lost_error(&self, st: &State) -> Result<(), Error> {
        match (st.lost, st.exit) {
            (Some(errno), None) => Err(Error::os(
                &self.program,
                Step::Wait,
                std::io::Error::from_raw_os_error(errno),
            )
            .with_detail("the child was reaped elsewhere (is SIGCHLD ignored?)")),
            _ => Ok(()),
        }
    }

    /// Blocks until the child is [finished](Self::finished) or `deadline`
    /// passes, driving timeouts, the stop sequence and the group cleanup
    /// meanwhile.
    pub(crate) fn wait_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<ExitStatus>, Error> {
        // Nothing to enforce while waiting (no timeout, no stop sequence
        // under way, no caller deadline): block in waitid until the exit,
        // without reaping and without the lock, then let `advance` reap.
        // One system call instead of look, poll, look.
        let idle = {
            let st = self.lock();
            st.exit.is_none()
                && !st.reaped
                && st.timeout_at.is_none()
                && st.stop_at.is_none()
                && matches!(st.stop, Stop::NotStarted)
        };
        if idle && deadline.is_none() {
            // ECHILD (another driver reaped it meanwhile) is fine: the state
            // says so below.
            let _ = pidfd::wait_exit(self.target(), false, true);
        }
        loop {
            let now = Instant::now();
            let (progress, exit_seen, reaped, helper) = {
                let mut st = self.lock();
                let p = self.advance_locked(&mut st, now);
                self.lost_error(&st)?;
                if self.finished(&st) {
                    return Ok(self.status_of(&st));
                }
                (p, st.exit.is_some(), st.reaped, st.helper.clone())
            };
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            let until = match (progress.next, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = until.map(|u| u.saturating_duration_since(now));
            if reaped {
                // Only the kill command is left.
                if let Some(h) = helper {
                    h.wait_until(deadline)?;
                }
                continue;
            }
            if exit_seen {
                // The group is draining: no event tells when it is empty.
                std::thread::sleep(timeout.unwrap_or(Duration::from_millis(5)));
                continue;
            }
            match &self.pidfd {
                Some(fd) => {
                    fd::poll_one(fd.as_fd(), Interest::Read, timeout)
                        .map_err(|e| Error::os(&self.program, Step::Wait, e))?;
                }
                // No pidfd (kernel < 5.3): look again every few milliseconds.
                None => std::thread::sleep(timeout.map_or(Duration::from_millis(5), |t| {
                    t.min(Duration::from_millis(5))
                })),
            }
        }
    }

    /// The handle that owned the child lets go of it (it is dropped): with
    /// `stop`, the stop sequence starts; unless everything is over, the
    /// background reaper takes the child over. Never blocks.
    pub(crate) fn release(this: &Arc<Process>, stop: bool) {
        if this.finished(&this.lock()) {
            return;
        }
        if stop {
            this.start_stop(Ended::Stopped);
        }
        super::reaper::adopt(this.clone());
    }

    /// Starts the stop sequence (no-op once started or exited).
    pub(crate) fn start_stop(&self, reason: Ended) {
        let mut st = self.lock();
        self.advance_locked(&mut st, Instant::now());
        self.begin_stop(&mut st, reason, Instant::now());
    }

    /// Starts the stop sequence `grace` from now unless the child exits
    /// first (a dropped stream's `exit_timeout`). Whoever drives `advance`
    /// (usually the reaper) starts it.
    pub(crate) fn stop_after(&self, grace: Duration, reason: Ended) {
        let mut st = self.lock();
        let now = Instant::now();
        if grace.is_zero() {
            self.begin_stop(&mut st, reason, now);
        } else if st.stop_at.is_none() {
            st.stop_at = Some((now + grace, reason));
        }
    }

    /// SIGKILL now (to the group with `kill_group`).
    pub(crate) fn kill(&self) -> Result<(), Error> {
        let mut st = self.lock();
        if st.reaped || st.exit.is_some() {
            return Err(Error::reaped(&self.program));
        }
        self.send(Signal::KILL);
        let reason = match st.stop {
            Stop::Signalled { reason, .. } | Stop::Killed { reason } => reason,
            Stop::NotStarted => Ended::Stopped,
        };
        st.stop = Stop::Killed { reason };
        Ok(())
    }

    /// Sends `sig` to the child alone.
    pub(crate) fn signal(&self, sig: Signal) -> Result<(), Error> {
        let st = self.lock();
        // Once its status is collected the child is gone for the caller,
        // even while (with kill_group) its zombie pins the group id.
        if st.reaped || st.exit.is_some() {
            return Err(Error::reaped(&self.program));
        }
        self.send_to_child(sig)
            .map_err(|e| Error::os(&self.program, Step::Signal, e))
    }

    /// Sends `sig` to the child's process group.
    pub(crate) fn signal_group(&self, sig: Signal) -> Result<(), Error> {
        let st = self.lock();
        if st.reaped {
            return Err(Error::reaped(&self.program));
        }
        let Some(pgid) = self.pgid else {
            return Err(Error::new(
                &self.program,
                Step::Signal,
                ErrorKind::InvalidInput,
                Some("the child is in our process group; signalling it would hit us".into()),
                None,
            ));
        };
        pidfd::kill(-pgid, sig.as_raw()).map_err(|e| Error::os(&self.program, Step::Signal, e))
    }

    pub(crate) fn is_reaped(&self) -> bool {
        self.lock().reaped
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Every owner hands a live child to the reaper before letting go, so
        // the last reference is dropped only after reaping.
        debug_assert!(
            self.lock().reaped,
            "a child was dropped without being reaped"
        );
    }
}

//! [`Process`]: one child's life as a state machine shared by every driver.
//!
//! The state machine does no waiting of its own. [`Process::advance`] looks at
//! the clock and the child (a non-blocking `waitid`), performs whatever is due
//! (start the stop sequence at the timeout, SIGKILL at the end of
//! `stop_timeout`, stop the rest of the group when the leader has exited,
//! reap) and returns the next instant at which something will be due. Any
//! driver can call it: a blocking `wait` that polls the pidfd on the
//! caller's thread, or the background reaper's epoll loop. The state sits
//! behind a mutex, so the drivers can race and each step still happens once.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::cgroup::ChildCgroup;
use super::terminal::Terminal;
use super::trace::{Span, event};
use super::watchdog::Slot;
use crate::cgroup::CgroupUsage;
use crate::error::{Error, ErrorKind, Step, Subject, Who};
use crate::status::{Ended, ExitStatus, ResourceUsage};
use crate::sys::fd::{self, Interest};
use crate::sys::pidfd::{self, RawExit, RawUsage, Target};
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
    pub stop_signal: Signal,
    pub stop_command: Option<OsString>,
    pub stop_timeout: Duration,
    pub stop_group: bool,
    pub success_codes: Vec<i32>,
}

/// Where the stop sequence is.
#[derive(Clone, Copy, Debug)]
enum Stop {
    NotStarted,
    /// The first signal (or stop command) went out; SIGKILL follows at `kill_at`.
    Signalled {
        reason: Ended,
        kill_at: Instant,
    },
    /// SIGKILL went out.
    Killed {
        reason: Ended,
    },
}

/// With `stop_group`, what is left to do for the rest of the group once the
/// leader has exited.
#[derive(Clone, Copy, Debug)]
enum GroupCleanup {
    /// Leader still running (or no `stop_group`).
    Idle,
    /// `stop_signal` sent to the group; waiting for it to empty, SIGKILL at `kill_at`.
    Draining {
        kill_at: Instant,
        recheck: Duration,
        /// SIGKILL (`cgroup.kill`) has been sent.
        killed: bool,
    },
    Done,
}

struct State {
    exit: Option<RawExit>,
    /// What the kernel counted for the child, from the `waitid` that reaped it.
    usage: Option<RawUsage>,
    reaped: bool,
    stop: Stop,
    timeout_at: Option<Instant>,
    /// Set by [`Process::stop_after`]: start the stop sequence then.
    stop_at: Option<(Instant, Ended)>,
    group: GroupCleanup,
    /// `waitid` failed (`ECHILD`: someone else reaped our child).
    lost: Option<i32>,
    /// The stop command's process, while the stop sequence uses one: the
    /// child is not finished until it is.
    helper: Option<Arc<Process>>,
    /// The owner-death watchdog's record of the child, until it is reaped
    /// (and its group cleaned up).
    watch: Option<Slot>,
    /// Read from the child's cgroup just before it was removed.
    cgroup_usage: Option<CgroupUsage>,
    /// A pty child's terminal master, held until the child is reaped: the
    /// last master descriptor closing hangs the terminal up (SIGHUP), so
    /// a reader that saw end-of-file must not be the one to close it
    /// while the child is still exiting. `None` after
    /// [`hang_up`](Process::hang_up).
    terminal: Option<Terminal>,
}

/// What keeps a child's descendants within reach beyond its process group:
/// its owner-death watchdog slot and its own cgroup.
#[derive(Default)]
pub(crate) struct Containment {
    pub watch: Option<Slot>,
    pub cgroup: Option<ChildCgroup>,
    /// A pty child's terminal (see [`Process::terminal`]).
    pub terminal: Option<Terminal>,
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

/// Bytes written to stdin and read from stdout and stderr, counted by the
/// parent's pipe ends and the drivers (for `info()`).
#[derive(Debug, Default)]
pub(crate) struct IoCounters(pub [std::sync::atomic::AtomicU64; 3]);

impl IoCounters {
    /// Adds `n` bytes to stream `fd` (0, 1 or 2).
    pub(crate) fn add(&self, fd: usize, n: usize) {
        self.0[fd].fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn get(&self, fd: usize) -> u64 {
        self.0[fd].load(Ordering::Relaxed)
    }
}

/// A spawned child: pid, pidfd, policy and state.
pub(crate) struct Process {
    pid: libc::pid_t,
    io: Arc<IoCounters>,
    pidfd: Option<OwnedFd>,
    who: Who,
    /// The group signalled by group operations: the child's own group or the
    /// one it joined; `None` when it stays in ours.
    pgid: Option<libc::pid_t>,
    policy: Policy,
    /// Not our child (adopted by pid): its exit is seen through the pidfd
    /// becoming readable, and its status belongs to its parent.
    adopted: bool,
    /// The child's own cgroup ([`Command::cgroup`]): signalled with the
    /// group, cleaned up after the leader's exit, then removed.
    cgroup: Option<ChildCgroup>,
    /// Which of stdin, stdout, stderr are on the pty, for a pty child.
    pty_streams: Option<[bool; 3]>,
    /// Called once, without the state lock, when the child is finished.
    on_finish: OnceLock<Box<dyn Fn() + Send + Sync>>,
    finish_reported: AtomicBool,
    span: Span,
    state: Mutex<State>,
}

impl Process {
    pub(crate) fn new(
        pid: libc::pid_t,
        pidfd: Option<OwnedFd>,
        who: Who,
        pgid: Option<libc::pid_t>,
        policy: Policy,
        timeout: Option<Duration>,
        containment: Containment,
    ) -> Process {
        let mut p = Process::build(pid, pidfd, who, pgid, policy, timeout, false);
        p.cgroup = containment.cgroup;
        p.pty_streams = containment.terminal.as_ref().map(|t| t.streams);
        {
            let mut st = p.lock();
            st.watch = containment.watch;
            st.terminal = containment.terminal;
        }
        event!(p.span, "spawned", pgid = ?pgid);
        p
    }

    fn build(
        pid: libc::pid_t,
        pidfd: Option<OwnedFd>,
        who: Who,
        pgid: Option<libc::pid_t>,
        policy: Policy,
        timeout: Option<Duration>,
        adopted: bool,
    ) -> Process {
        UNREAPED.fetch_add(1, Ordering::SeqCst);
        let span = Span::child(Subject::program(&&who), pid, adopted);
        Process {
            pid,
            io: Arc::default(),
            pidfd,
            who,
            pgid,
            policy,
            adopted,
            cgroup: None,
            pty_streams: None,
            on_finish: OnceLock::new(),
            finish_reported: AtomicBool::new(false),
            span,
            state: Mutex::new(State {
                exit: None,
                usage: None,
                reaped: false,
                stop: Stop::NotStarted,
                timeout_at: timeout.map(|t| super::after(Instant::now(), t)),
                stop_at: None,
                group: GroupCleanup::Idle,
                lost: None,
                helper: None,
                watch: None,
                cgroup_usage: None,
                terminal: None,
            }),
        }
    }

    /// A process we did not start, watched through `pidfd` (which the
    /// caller opened with `pidfd_open`). It is signalled only through the
    /// pidfd, its group never (it is not ours), and its exit is seen when
    /// the pidfd becomes readable; the status is its parent's to collect.
    pub(crate) fn adopted(
        pid: libc::pid_t,
        pidfd: OwnedFd,
        who: Who,
        policy: Policy,
        timeout: Option<Duration>,
    ) -> Process {
        let p = Process::build(pid, Some(pidfd), who, None, policy, timeout, true);
        event!(p.span, "adopted");
        p
    }

    /// Lets go of an adopted process that is not watched after all (a
    /// second adoption of the same pid lost a race): nothing is sent to it.
    pub(crate) fn abandon(this: &Arc<Process>) {
        debug_assert!(this.adopted);
        this.mark_reaped(&mut this.lock());
    }

    /// The byte counters of the child's pipes.
    pub(crate) fn io(&self) -> &Arc<IoCounters> {
        &self.io
    }

    /// The command line, quoted and shortened as for errors.
    pub(crate) fn command_line(&self) -> &str {
        self.who.command_line()
    }

    /// The exit status if the child has exited, without reaping it (a
    /// child reaped already gives its recorded status).
    pub(crate) fn peek_status(&self) -> Option<ExitStatus> {
        let st = self.lock();
        if st.exit.is_some() {
            return self.status_of(&st);
        }
        if self.adopted || st.reaped {
            return None;
        }
        // WNOWAIT: the child stays a zombie, for its owner to reap.
        let (exit, usage) = pidfd::wait_exit(self.target(), false, false).ok()??;
        Some(self.make_status(exit, Some(usage), &st))
    }

    /// Whether this is a process adopted by pid rather than spawned.
    pub(crate) fn is_adopted(&self) -> bool {
        self.adopted
    }

    /// Sets the function called once when the child is
    /// [finished](Self::finished), by whichever driver sees it first (the
    /// reaper, a waiter), without the state lock held. If the child is
    /// already finished, it is called now. Only the first call sets it.
    pub(crate) fn on_finish(&self, f: Box<dyn Fn() + Send + Sync>) {
        let _ = self.on_finish.set(f);
        if self.is_finished() {
            self.report_finish();
        }
    }

    fn report_finish(&self) {
        if let Some(f) = self.on_finish.get() {
            if !self.finish_reported.swap(true, Ordering::SeqCst) {
                f();
            }
        }
    }

    /// How the child's end came about (for a status that is not known).
    pub(crate) fn ended(&self) -> Ended {
        match self.lock().stop {
            Stop::NotStarted => Ended::OnItsOwn,
            Stop::Signalled { reason, .. } | Stop::Killed { reason } => reason,
        }
    }

    pub(crate) fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// The program and its command line, for errors.
    pub(crate) fn program(&self) -> &Who {
        &self.who
    }

    pub(crate) fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|f| f.as_fd())
    }

    /// Whether the reaper must watch this child from the start: a deadline
    /// or a group to clean up must be honoured even if nobody waits.
    ///
    /// A group to clean up after the leader's exit is not enough: whoever
    /// waits, polls or drops the child does it, and watching every child
    /// from spawn on would cost every spawn a trip through the reaper.
    pub(crate) fn needs_watching(&self) -> bool {
        self.lock().timeout_at.is_some()
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
            if !self.adopted {
                super::live::remove(self);
            }
            // The session leader is gone: the terminal may close now.
            st.terminal = None;
            // The pid is free now: the watchdog keeps only a group that is
            // still being cleaned up (its id stays allocated while a
            // member lives).
            match (self.policy.stop_group, self.pgid, st.exit.is_some()) {
                (true, Some(g), true) => {
                    if let Some(w) = &st.watch {
                        w.group_only(g);
                    }
                }
                _ => st.watch = None,
            }
        }
    }

    /// The exit status, once the child has exited.
    fn status_of(&self, st: &State) -> Option<ExitStatus> {
        Some(self.make_status(st.exit?, st.usage, st))
    }

    fn make_status(&self, exit: RawExit, usage: Option<RawUsage>, st: &State) -> ExitStatus {
        let ended = match st.stop {
            Stop::NotStarted => Ended::OnItsOwn,
            Stop::Signalled { reason, .. } | Stop::Killed { reason } => reason,
        };
        let status = match exit {
            RawExit::Code(c) => ExitStatus::from_code(c, ended, &self.policy.success_codes),
            RawExit::Signal {
                signal,
                core_dumped,
            } => ExitStatus::from_signal(signal, core_dumped, ended),
        };
        status
            .with_usage(usage.map(|u| ResourceUsage {
                user_time: u.user,
                system_time: u.system,
                max_rss: u.max_rss_kib.saturating_mul(1024),
            }))
            .with_cgroup_usage(st.cgroup_usage)
    }

    /// Sends `sig` to the child, or to its group with `stop_group`.
    /// Only called while the child is not reaped, so neither its pid nor its
    /// group id can have been reused. `ESRCH` (already exiting) is ignored.
    ///
    /// "Not reaped" includes by anyone else: every caller has just looked
    /// through the pidfd (`advance_locked`'s `waitid`, which notices a
    /// child reaped elsewhere, or [`leader_unreaped`](Self::leader_unreaped)).
    fn send(&self, sig: Signal) {
        event!(self.span, "signal", signal = %sig, group = self.policy.stop_group && self.pgid.is_some());
        let _ = match (self.policy.stop_group, self.pgid) {
            (true, Some(g)) => pidfd::kill(-g, sig.as_raw()),
            _ => self.send_to_child(sig),
        };
        if let Some(cg) = &self.cgroup {
            cg.signal(sig);
        }
    }

    /// Whether group or cgroup cleanup follows the leader's exit.
    fn has_tree(&self) -> bool {
        self.policy.stop_group || self.cgroup.is_some()
    }

    /// Whether the child is provably not reaped yet, by us or by anyone
    /// else, so that its pid, and the id of the group it leads, cannot have
    /// been reused: `waitid(P_PIDFD, WEXITED | WNOHANG | WNOWAIT)` answers
    /// while the child runs or is a zombie, and fails with `ECHILD` once
    /// something reaped it. Without a pidfd (Linux < 5.3) only our own
    /// bookkeeping can tell.
    fn leader_unreaped(&self) -> bool {
        if self.adopted {
            return !self.exited_adopted();
        }
        match &self.pidfd {
            Some(fd) => pidfd::wait_exit(Target::Pidfd(fd.as_fd()), false, false).is_ok(),
            None => true,
        }
    }

    /// For an adopted process: whether its pidfd says it has exited.
    fn exited_adopted(&self) -> bool {
        self.pidfd.as_ref().is_some_and(|fd| {
            fd::poll_one(fd.as_fd(), Interest::Read, Some(Duration::ZERO)).unwrap_or(true)
        })
    }

    fn send_to_child(&self, sig: Signal) -> std::io::Result<()> {
        match &self.pidfd {
            Some(fd) => pidfd::pidfd_send_signal(fd.as_fd(), sig.as_raw()),
            None => pidfd::kill(self.pid, sig.as_raw()),
        }
    }

    /// Runs the stop command with `CHILD_PID` set; the reaper enforces its
    /// deadline and reaps it, and waits on the child also wait for it.
    fn run_stop_command(&self, st: &mut State, line: &OsStr) -> Result<(), Error> {
        let mut cmd = Command::shell(line);
        cmd.env("CHILD_PID", self.pid.to_string())
            .stdin(Stdio::null())
            // It is part of the cleanup: neither it nor anything it starts
            // may outlive the sequence, so it runs in a group of its own
            // that is stopped as a whole.
            .process_group(crate::ProcessGroup::New)
            .stop_group(true)
            .timeout(self.policy.stop_timeout)
            .stop_signal(Signal::KILL);
        let helper = super::spawn::spawn(&cmd)?;
        super::reaper::adopt(helper.clone());
        st.helper = Some(helper);
        Ok(())
    }

    fn begin_stop(&self, st: &mut State, reason: Ended, now: Instant) {
        if st.exit.is_some() || st.reaped || !matches!(st.stop, Stop::NotStarted) {
            return;
        }
        event!(self.span, "stop sequence started", reason = ?reason, grace = ?self.policy.stop_timeout, command = self.policy.stop_command.is_some());
        let by_command = match &self.policy.stop_command {
            Some(line) => self.run_stop_command(st, line).is_ok(),
            None => false,
        };
        if !by_command {
            self.send(self.policy.stop_signal);
            // A suspended child (SIGSTOP, SIGTTIN) would only act on the
            // stop signal once continued: continue it, as GNU `timeout`
            // and systemd do.
            if !matches!(self.policy.stop_signal, Signal::KILL | Signal::CONT) {
                self.send(Signal::CONT);
            }
        }
        st.stop = Stop::Signalled {
            reason,
            kill_at: super::after(now, self.policy.stop_timeout),
        };
    }

    /// Looks at the child and performs what is due. See the module docs.
    pub(crate) fn advance(&self, now: Instant) -> Progress {
        let mut st = self.lock();
        let progress = self.advance_locked(&mut st, now);
        let finished = self.finished(&st);
        drop(st);
        if finished {
            self.report_finish();
        }
        progress
    }

    fn advance_locked(&self, st: &mut State, now: Instant) -> Progress {
        if self.adopted && !st.reaped {
            // Not our child: waitid would fail with ECHILD. Its pidfd turns
            // readable when it exits; its parent reaps it.
            if self.exited_adopted() {
                event!(self.span, "exited (status unknown: not our child)");
                self.mark_reaped(st);
            }
        }
        if !self.adopted && st.exit.is_none() && !st.reaped {
            // Reaped at once, with group stop too: from here on the group
            // id is pinned by the members still alive (see clean_up_group).
            match pidfd::wait_exit(self.target(), true, false) {
                Ok(Some((raw, usage))) => {
                    event!(self.span, "exited", exit = ?raw, cpu = ?(usage.user + usage.system));
                    st.exit = Some(raw);
                    st.usage = Some(usage);
                    self.mark_reaped(st);
                }
                Ok(None) => {}
                Err(e) => {
                    event!(self.span, "lost: reaped outside procession", error = %e);
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
                    event!(self.span, "stop: grace period over");
                    self.send(Signal::KILL);
                    st.stop = Stop::Killed { reason };
                } else {
                    next = Some(next.map_or(kill_at, |n| n.min(kill_at)));
                }
            }
            return Progress { next, done: false };
        }
        if self.has_tree() {
            self.clean_up_group(st, now)
        } else {
            Progress {
                next: None,
                done: true,
            }
        }
    }

    /// After the leader of a stopped group (or of a cgroup) exited: the
    /// stop signal to the rest of the group and of the cgroup, then SIGKILL
    /// (`cgroup.kill`) after `stop_timeout` if anything is left; a cgroup
    /// is then read for its accounting and removed once empty.
    ///
    /// The leader has been reaped. From then on the group id stays
    /// allocated exactly as long as a member is alive (the kernel does not
    /// hand out a number still in use as a group id), which `kill(-pgid, 0)`
    /// tells in one system call: in the usual case, an empty group, that is
    /// all the cleanup costs. A group that answers is signalled at once.
    /// Only a group that emptied and whose id was handed out again to a new
    /// group between a check and the signal that follows it (microseconds,
    /// or one recheck interval of at most 50 ms while draining) could be
    /// hit; that needs the pid counter to wrap around in that time. A
    /// cgroup has no such race: it is a directory only we remove.
    fn clean_up_group(&self, st: &mut State, now: Instant) -> Progress {
        let pgid = self.pgid.unwrap_or(self.pid);
        if let GroupCleanup::Idle = st.group {
            if !self.tree_alive(pgid) {
                self.tree_done(st);
                return Progress {
                    next: None,
                    done: true,
                };
            }
            let sig = match st.stop {
                Stop::Killed { .. } => Signal::KILL,
                _ => self.policy.stop_signal,
            };
            event!(self.span, "leader exited: stopping the rest of its group", pgid, signal = %sig);
            self.signal_tree(pgid, sig);
            if !matches!(sig, Signal::KILL | Signal::CONT) {
                self.signal_tree(pgid, Signal::CONT);
            }
            st.group = GroupCleanup::Draining {
                kill_at: super::after(now, self.policy.stop_timeout),
                recheck: Duration::from_millis(1),
                killed: sig == Signal::KILL,
            };
        }
        if let GroupCleanup::Draining {
            kill_at,
            recheck,
            killed,
        } = st.group
        {
            if self.tree_alive(pgid) {
                let mut killed = killed;
                if now >= kill_at && !killed {
                    event!(self.span, "group: grace period over", pgid);
                    self.signal_tree(pgid, Signal::KILL);
                    killed = true;
                }
                // Before the grace period ends, and for a cgroup (which must
                // be empty to be removed) a while after SIGKILL: look again
                // soon, backing off to 50 ms. No event tells when a group
                // empties.
                let waiting = !killed || (self.cgroup.is_some() && now < kill_at + KILLED_WAIT);
                if waiting {
                    st.group = GroupCleanup::Draining {
                        kill_at,
                        recheck: (recheck * 2).min(Duration::from_millis(50)),
                        killed,
                    };
                    let next = if killed {
                        now + recheck
                    } else {
                        (now + recheck).min(kill_at)
                    };
                    return Progress {
                        next: Some(next),
                        done: false,
                    };
                }
            }
            self.tree_done(st);
        }
        Progress {
            next: None,
            done: true,
        }
    }

    /// Whether the leader's group (with `stop_group`) or its cgroup still
    /// has a live member.
    fn tree_alive(&self, pgid: libc::pid_t) -> bool {
        (self.policy.stop_group && group_alive(pgid, self.pid))
            || self.cgroup.as_ref().is_some_and(|c| c.populated())
    }

    /// Sends `sig` to the rest of the group (with `stop_group`) and to the
    /// cgroup's members.
    fn signal_tree(&self, pgid: libc::pid_t, sig: Signal) {
        if self.policy.stop_group {
            let _ = pidfd::kill(-pgid, sig.as_raw());
        }
        if let Some(cg) = &self.cgroup {
            cg.signal(sig);
        }
    }

    /// The cleanup is over: the watchdog forgets the child; a cgroup is
    /// read and removed.
    fn tree_done(&self, st: &mut State) {
        st.group = GroupCleanup::Done;
        st.watch = None;
        if let Some(cg) = &self.cgroup {
            st.cgroup_usage = Some(cg.usage());
            let removed = cg.remove();
            #[cfg(feature = "tracing")]
            if let Err(e) = &removed {
                event!(self.span, "cgroup not removed", dir = %cg.dir().display(), error = %e);
            }
            drop(removed);
        }
    }

    /// Whether everything about the child is over: it is reaped (with
    /// `stop_group`, after the rest of its group is gone) and its kill
    /// command, if one ran, has ended too.
    fn finished(&self, st: &State) -> bool {
        st.reaped
            && (!self.has_tree() || st.exit.is_none() || matches!(st.group, GroupCleanup::Done))
            && st.helper.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Whether everything about the child is over (see `finished`).
    pub(crate) fn is_finished(&self) -> bool {
        self.finished(&self.lock())
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
        self.settled(st).unwrap_or_else(|_still_going| Ok(None))
    }

    /// The result once the child is over: its status when it is
    /// [finished](Self::finished), the error when another reaper took it.
    /// The finish hook runs after the lock is released. While the child
    /// is still going, the lock is handed back.
    fn settled<'a>(
        &self,
        st: MutexGuard<'a, State>,
    ) -> Result<Result<Option<ExitStatus>, Error>, MutexGuard<'a, State>> {
        let finished = self.finished(&st);
        let result = match self.lost_error(&st) {
            Err(e) => Err(e),
            Ok(()) if finished => Ok(self.status_of(&st)),
            Ok(()) => return Err(st),
        };
        drop(st);
        if finished {
            self.report_finish();
        }
        Ok(result)
    }

    fn lost_error(&self, st: &State) -> Result<(), Error> {
        match (st.lost, st.exit) {
            (Some(errno), None) => Err(Error::os(
                &self.who,
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
                let st = match self.settled(st) {
                    Ok(result) => return result,
                    Err(still_going) => still_going,
                };
                let draining = matches!(st.group, GroupCleanup::Draining { .. });
                (
                    p,
                    st.exit.is_some(),
                    st.reaped && !draining,
                    st.helper.clone(),
                )
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
                // Only the stop command is left.
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
                        .map_err(|e| Error::os(&self.who, Step::Wait, e))?;
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
            if this.policy.stop_command.is_some() {
                // Starting the stop command is a whole spawn: leave it to
                // the reaper, so that the drop stays cheap.
                this.stop_after(Duration::ZERO, Ended::Requested);
            } else {
                this.start_stop(Ended::Requested);
            }
            super::reaper::adopt(this.clone());
        } else {
            // Detached: it must run on, so it never gets the fallback's
            // kill; without a reaper now it waits for the next one.
            super::reaper::adopt_later(this.clone());
        }
    }

    /// Starts the stop sequence (no-op once started or exited).
    pub(crate) fn start_stop(&self, reason: Ended) {
        let mut st = self.lock();
        self.advance_locked(&mut st, Instant::now());
        self.begin_stop(&mut st, reason, Instant::now());
    }

    /// Starts the stop sequence `grace` from now unless the child exits
    /// first (a dropped stream's `drop_timeout`). Whoever drives `advance`
    /// (usually the reaper) starts it.
    pub(crate) fn stop_after(&self, grace: Duration, reason: Ended) {
        let mut st = self.lock();
        let now = Instant::now();
        if grace.is_zero() && self.policy.stop_command.is_none() {
            self.begin_stop(&mut st, reason, now);
        } else if let Some(at) = now.checked_add(grace) {
            // (A grace too long to represent means never.)
            if st.stop_at.is_none_or(|(t, _)| at < t) {
                st.stop_at = Some((at, reason));
            }
        }
    }

    /// SIGKILL now (to the group with `stop_group`).
    pub(crate) fn kill(&self) -> Result<(), Error> {
        let mut st = self.lock();
        if st.reaped || st.exit.is_some() || !self.leader_unreaped() {
            return Err(Error::reaped(&self.who));
        }
        self.send(Signal::KILL);
        let reason = match st.stop {
            Stop::Signalled { reason, .. } | Stop::Killed { reason } => reason,
            Stop::NotStarted => Ended::Requested,
        };
        st.stop = Stop::Killed { reason };
        Ok(())
    }

    /// Sends `sig` to the child alone.
    pub(crate) fn signal(&self, sig: Signal) -> Result<(), Error> {
        let st = self.lock();
        // Once its status is collected the child is gone for the caller,
        // even while (with stop_group) its zombie pins the group id.
        if st.reaped || st.exit.is_some() {
            return Err(Error::reaped(&self.who));
        }
        event!(self.span, "signal", signal = %sig, group = false);
        self.send_to_child(sig).map_err(|e| {
            // Through the pidfd, ESRCH means reaped (a zombie still takes
            // signals): by someone else, since our flag says not yet.
            if e.raw_os_error() == Some(libc::ESRCH) {
                Error::reaped(&self.who).with_detail(REAPED_ELSEWHERE)
            } else {
                Error::os(&self.who, Step::Signal, e)
            }
        })
    }

    /// Which streams are on the pty, for a pty child.
    pub(crate) fn pty_streams(&self) -> Option<[bool; 3]> {
        self.pty_streams
    }

    /// Runs `f` on the child's terminal.
    ///
    /// # Errors
    ///
    /// `InvalidInput` without a pty; `AlreadyReaped` once the child is
    /// reaped or the terminal hung up.
    pub(crate) fn terminal<T>(
        &self,
        f: impl FnOnce(&Terminal) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if self.pty_streams.is_none() {
            return Err(Error::new(
                &self.who,
                Step::Terminal,
                ErrorKind::InvalidInput,
                Some("the child has no pty (Command::pty)".into()),
                None,
            ));
        }
        let st = self.lock();
        match &st.terminal {
            Some(t) => f(t),
            // About the terminal, not a signal: the step says so.
            None => Err(Error::reaped(&self.who)
                .with_step(Step::Terminal)
                .with_detail("its terminal is closed (the child was reaped or hung up)")),
        }
    }

    /// Closes this process's own copy of the terminal (see
    /// `State::terminal`): with the handle's ends closed too, the terminal
    /// hangs up.
    pub(crate) fn hang_up(&self) {
        let t = self.lock().terminal.take();
        drop(t);
    }

    /// Sends `sig` to the child's process group.
    pub(crate) fn signal_group(&self, sig: Signal) -> Result<(), Error> {
        let st = self.lock();
        if st.reaped {
            return Err(Error::reaped(&self.who));
        }
        let Some(pgid) = self.pgid else {
            let why = if self.adopted {
                "the process was adopted by pid: its process group is not ours to signal"
            } else {
                "the child is in our process group; signalling it would hit us"
            };
            return Err(Error::new(
                &self.who,
                Step::Signal,
                ErrorKind::InvalidInput,
                Some(why.into()),
                None,
            ));
        };
        if !self.leader_unreaped() {
            return Err(Error::reaped(&self.who).with_detail(format!(
                "{REAPED_ELSEWHERE}: its group id may name another group now"
            )));
        }
        event!(self.span, "signal", signal = %sig, group = true);
        pidfd::kill(-pgid, sig.as_raw()).map_err(|e| Error::os(&self.who, Step::Signal, e))
    }
}

/// How long a cgroup is waited for after `cgroup.kill` before it is left
/// behind (its members are dying; the kernel needs microseconds).
const KILLED_WAIT: Duration = Duration::from_secs(2);

/// Why a child our bookkeeping still counts as running is gone.
const REAPED_ELSEWHERE: &str = "the child was reaped outside procession (is SIGCHLD ignored, or does something call waitpid(-1)?)";

/// Whether group `pgid` still has a live member other than `leader` (which
/// has been reaped): one `kill(-pgid, 0)`, and only when that answers, a
/// `/proc` scan to tell live members from zombies waiting for their parent.
fn group_alive(pgid: libc::pid_t, leader: libc::pid_t) -> bool {
    let answered = !pidfd::kill(-pgid, 0).is_err_and(|e| e.raw_os_error() == Some(libc::ESRCH));
    answered && procfs::group_has_members(pgid, leader)
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

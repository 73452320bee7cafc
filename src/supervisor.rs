//! [`Supervisor`]: a registry that owns many children (erlexec's `exec`
//! server, in a Rust shape: handles, monitors and futures instead of Erlang
//! processes and messages).
//!
//! Every supervised child is driven by the background reaper from its spawn
//! on, so its exit is seen as it happens (through its pidfd) whether or not
//! anyone waits, and its stop sequence and timeout run on time. When the
//! child is finished (reaped, and with group stop its group gone) the
//! supervisor forgets it and every [`Monitor`] of it gets its [`Exit`].
//!
//! # erlexec and Port, mapped
//!
//! | erlexec / Port | procession |
//! |---|---|
//! | `exec:run(Cmd, Opts)` | [`Supervisor::spawn`] |
//! | `exec:run_link` | [`Supervisor::spawn`] then [`Supervised::link`]: the returned [`Link`] stops the child when dropped, and is a future of its exit |
//! | `exec:monitor`, `{'DOWN', …}` | [`Supervised::monitor`]: a [`Monitor`] that blocks ([`Monitor::recv`]) or is awaited (it is a `Future`) |
//! | `exec:manage(Pid, Opts)` | [`Supervisor::manage`] |
//! | `exec:which_children()` | [`Supervisor::children`] |
//! | `exec:pid(OsPid)` | [`Supervisor::get`] |
//! | `exec:stop`, `exec:kill` | [`Supervised::stop`] / [`Supervised::start_stop`], [`Supervised::signal`] |
//! | `exec:stop_and_wait` | [`Supervised::stop`] |
//! | `{limit_users, Users}` | [`Supervisor::with_allowed_users`] |
//! | stopping the `exec` application | [`Supervisor::shutdown`], or dropping the supervisor |
//! | Port's `connect` (give the port to another owner) | clone the [`Supervised`] handle or a [`Monitor`] and move it: every clone controls and observes the same child |

use std::collections::HashMap;
use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::engine::credentials;
use crate::engine::deliver;
use crate::engine::process::{Policy, Process};
use crate::engine::reaper;
use crate::engine::spawn::{Ends, spawn_with_ends};
use crate::error::{Step, Who};
use crate::stdio::{Callback, Kind};
use crate::sys::{fd, pidfd};
use crate::{Command, Ended, Error, ErrorKind, ExitStatus, Signal, Stdio};

/// How a supervised process ended.
///
/// ```
/// use procession::{Command, Exit, Supervisor};
/// let sup = Supervisor::new();
/// let child = sup.spawn(Command::new("sh").args(["-c", "exit 3"]))?;
/// match child.wait()? {
///     Exit::Status(status) => assert_eq!(status.code(), Some(3)),
///     Exit::Unknown { .. } => unreachable!("a child we started has a status"),
/// }
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exit {
    /// A child the supervisor started: its exit status.
    Status(ExitStatus),
    /// The process ended, but its exit status cannot be known here: it was
    /// adopted with [`Supervisor::manage`] (only its parent can collect
    /// the status), or it was reaped outside procession (a host that
    /// ignores `SIGCHLD` or calls `waitpid(-1)`).
    Unknown {
        /// Whether it ended on its own or after a stop we started.
        ended: Ended,
    },
}

impl Exit {
    /// The exit status, when known.
    ///
    /// ```
    /// use procession::{Command, Supervisor};
    /// let sup = Supervisor::new();
    /// let exit = sup.spawn(&Command::new("true"))?.wait()?;
    /// assert!(exit.status().unwrap().success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn status(&self) -> Option<ExitStatus> {
        match self {
            Exit::Status(s) => Some(*s),
            Exit::Unknown { .. } => None,
        }
    }

    /// Who or what ended the process.
    ///
    /// ```
    /// use procession::{Command, Ended, Supervisor};
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(Command::new("sleep").arg("10"))?;
    /// assert_eq!(child.stop()?.ended(), Ended::Requested);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn ended(&self) -> Ended {
        match self {
            Exit::Status(s) => s.ended(),
            Exit::Unknown { ended } => *ended,
        }
    }
}

/// One supervised process, shared by its handles, monitors and the registry.
struct Entry {
    process: Arc<Process>,
    exit: Mutex<ExitState>,
    exited: Condvar,
    /// With output delivered to functions: the exit is reported once the
    /// process is finished *and* every delivery thread is done.
    deliveries: Option<Deliveries>,
}

struct Deliveries {
    /// Parts still to finish: the process, and each delivery thread.
    pending: AtomicUsize,
    /// Written when the process is finished: the threads start their
    /// drain timeout.
    exited: Arc<OwnedFd>,
}

/// Called with the exit once it is reported.
type Listener = Box<dyn FnOnce(Exit) + Send>;

#[derive(Default)]
struct ExitState {
    exit: Option<Exit>,
    /// The exit, known but held back until the deliveries are done.
    staged: Option<Exit>,
    wakers: Vec<Waker>,
    listeners: Vec<Listener>,
}

impl Entry {
    fn lock(&self) -> MutexGuard<'_, ExitState> {
        self.exit.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called once the process is finished: records the exit and, unless
    /// output is still being delivered, reports it.
    fn finish(&self) {
        let exit = match self.process.try_wait() {
            Ok(Some(status)) => Exit::Status(status),
            _ => Exit::Unknown {
                ended: self.process.ended(),
            },
        };
        match &self.deliveries {
            None => self.publish(exit),
            Some(d) => {
                self.lock().staged = Some(exit);
                fd::eventfd_notify(d.exited.as_fd());
                self.part_done();
            }
        }
    }

    /// One part (the process or a delivery thread) is done; the last one
    /// reports the exit.
    fn part_done(&self) {
        let Some(d) = &self.deliveries else { return };
        if d.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            let staged = self.lock().staged.take();
            if let Some(exit) = staged {
                self.publish(exit);
            }
        }
    }

    /// Records the exit and wakes every monitor.
    fn publish(&self, exit: Exit) {
        let (wakers, listeners) = {
            let mut st = self.lock();
            st.exit = Some(exit);
            (
                std::mem::take(&mut st.wakers),
                std::mem::take(&mut st.listeners),
            )
        };
        self.exited.notify_all();
        for w in wakers {
            w.wake();
        }
        for f in listeners {
            f(exit);
        }
    }

    /// Calls `f` with the exit once it is reported (now, if it is).
    fn on_exit(&self, f: Listener) {
        let mut st = self.lock();
        match st.exit {
            Some(exit) => {
                drop(st);
                f(exit);
            }
            None => st.listeners.push(f),
        }
    }

    fn exit(&self) -> Option<Exit> {
        self.lock().exit
    }

    fn wait_exit(&self, deadline: Option<Instant>) -> Option<Exit> {
        let mut st = self.lock();
        loop {
            if let Some(exit) = st.exit {
                return Some(exit);
            }
            st = match deadline {
                None => self.exited.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    self.exited
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }

    fn poll_exit(&self, cx: &mut Context<'_>) -> Poll<Exit> {
        let mut st = self.lock();
        if let Some(exit) = st.exit {
            return Poll::Ready(exit);
        }
        if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            st.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

struct Registry {
    children: Mutex<HashMap<u32, Arc<Entry>>>,
    allowed_users: Option<Vec<libc::uid_t>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<u32, Arc<Entry>>> {
        self.children.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Owns many children: spawns them, adopts external processes, lists them,
/// and stops them all on [`shutdown`](Supervisor::shutdown) or drop.
///
/// ```
/// use procession::{Command, Supervisor};
/// let sup = Supervisor::new();
/// let a = sup.spawn(Command::new("sleep").arg("10"))?;
/// let b = sup.spawn(Command::new("sleep").arg("10"))?;
/// assert_eq!(sup.children().len(), 2);
/// assert_eq!(sup.get(a.pid()).unwrap().pid(), a.pid());
/// sup.shutdown(); // SIGTERM to both; they obey at once
/// assert!(sup.children().is_empty());
/// assert_eq!(b.wait()?.status().unwrap().signal(), Some(procession::Signal::TERM));
/// # Ok::<(), procession::Error>(())
/// ```
pub struct Supervisor {
    registry: Arc<Registry>,
}

impl Default for Supervisor {
    fn default() -> Supervisor {
        Supervisor::new()
    }
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("children", &self.registry.lock().len())
            .field("allowed_users", &self.registry.allowed_users)
            .finish()
    }
}

impl Supervisor {
    /// A supervisor with no children. Its children may run as any user the
    /// caller may switch to.
    ///
    /// ```
    /// let sup = procession::Supervisor::new();
    /// assert!(sup.children().is_empty());
    /// ```
    pub fn new() -> Supervisor {
        Supervisor {
            registry: Arc::new(Registry {
                children: Mutex::new(HashMap::new()),
                allowed_users: None,
            }),
        }
    }

    /// A supervisor whose children may only run as these users (erlexec's
    /// `limit_users`): a command with a [`user`](Command::user) outside
    /// the list is refused before anything starts. Commands without a
    /// `user` run as the caller, as always.
    ///
    /// # Errors
    ///
    /// An unknown user name.
    ///
    /// ```
    /// use procession::{Command, ErrorKind, Supervisor};
    /// let sup = Supervisor::with_allowed_users(["nobody"])?;
    /// let err = sup.spawn(Command::new("true").user("root")).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn with_allowed_users<I, U>(users: I) -> Result<Supervisor, Error>
    where
        I: IntoIterator<Item = U>,
        U: Into<crate::NameOrId>,
    {
        let who = std::ffi::OsStr::new("Supervisor");
        let uids = users
            .into_iter()
            .map(|u| credentials::uid_of(who, &u.into()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Supervisor {
            registry: Arc::new(Registry {
                children: Mutex::new(HashMap::new()),
                allowed_users: Some(uids),
            }),
        })
    }

    /// Starts `cmd` under supervision. Its stdin, stdout and stderr are as
    /// the command sets them (inherited by default); pipes have no reader
    /// here, so [`Stdio::piped`] and [`input`](Command::input) are
    /// refused. The child is watched from now on: its timeout and stop
    /// sequence run whether or not anyone waits.
    ///
    /// # Errors
    ///
    /// As [`Command::spawn`]; a piped stream or an input is
    /// [`InvalidInput`](ErrorKind::InvalidInput); a [`user`](Command::user)
    /// not in [`with_allowed_users`](Supervisor::with_allowed_users)'s list
    /// is [`PermissionDenied`](ErrorKind::PermissionDenied). Nothing is
    /// started then.
    ///
    /// ```
    /// use procession::{Command, Supervisor};
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(&Command::shell("exit 7"))?;
    /// assert_eq!(child.wait()?.status().unwrap().code(), Some(7));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn spawn(&self, cmd: &Command) -> Result<Supervised, Error> {
        let program = cmd.program.as_os_str();
        if cmd.input.is_some() {
            return Err(cmd.invalid("a supervised child has no writer for an input"));
        }
        let inherit = Stdio::inherit();
        let piped = Stdio::piped();
        let stdin = cmd.stdin.as_ref().unwrap_or(&inherit);
        let stdout = cmd.stdout.as_ref().unwrap_or(&inherit);
        let stderr = cmd.stderr.as_ref().unwrap_or(&inherit);
        if matches!(stdin.0, Kind::Callback(_)) {
            return Err(cmd.invalid("stdin cannot be a callback or a channel"));
        }
        let callback = |s: &Stdio| match &s.0 {
            Kind::Callback(c) => Some(c.clone()),
            _ => None,
        };
        let (out_cb, err_cb) = (callback(stdout), callback(stderr));
        // A stream handed to a function is a pipe that a delivery thread reads.
        let stdio = [
            stdin,
            if out_cb.is_some() { &piped } else { stdout },
            if err_cb.is_some() { &piped } else { stderr },
        ];
        if [stdin, stdout, stderr]
            .iter()
            .any(|s| matches!(s.0, Kind::Piped))
        {
            return Err(cmd.invalid(
                "a supervised child's pipes would have no reader: give it a file, null or inherit",
            ));
        }
        if let (Some(allowed), Some(run_as)) = (&self.registry.allowed_users, cmd.run_as.as_deref())
        {
            if let Some(user) = &run_as.user {
                let uid = credentials::uid_of(program, user)?;
                if !allowed.contains(&uid) {
                    return Err(Error::new(
                        &cmd.who(),
                        Step::User,
                        ErrorKind::PermissionDenied,
                        Some(format!(
                            "user {user} (uid {uid}) is not among the supervisor's allowed users"
                        )),
                        None,
                    ));
                }
            }
        }
        // The reaper drives every supervised child: without one, starting
        // the child would only mean killing it again. Failing here starts
        // nothing, and a later call tries again.
        reaper::ensure().map_err(|e| {
            Error::os(&cmd.who(), Step::Spawn, e)
                .with_detail("cannot start the background reaper that drives supervised children")
        })?;
        // The eventfd that tells delivery threads of the exit, made before
        // the spawn so that failing to make it starts nothing.
        let exited = match (&out_cb, &err_cb) {
            (None, None) => None,
            _ => Some(Arc::new(
                fd::eventfd().map_err(|e| Error::os(&cmd.who(), Step::Pipe, e))?,
            )),
        };
        let mut spawned = spawn_with_ends(cmd, stdio, Ends::Blocking)?;
        let streams: Vec<(OwnedFd, Callback)> = [
            (spawned.ends.stdout.take(), out_cb),
            (spawned.ends.stderr.take(), err_cb),
        ]
        .into_iter()
        .filter_map(|(fd, cb)| Some((fd?, cb?)))
        .collect();
        let deliveries = exited.map(|exited| Deliveries {
            pending: AtomicUsize::new(streams.len() + 1),
            exited,
        });
        let handle = self.register(spawned.process, deliveries, |entry| {
            for (pipe, sink) in streams {
                let done = {
                    let entry = entry.clone();
                    move || entry.part_done()
                };
                let exited = entry
                    .deliveries
                    .as_ref()
                    .map(|d| d.exited.clone())
                    .expect("deliveries exist with callbacks");
                // Without a thread, the pipe closes at once (the child's
                // writes fail with EPIPE) and the part counts as done.
                if deliver::start(pipe, exited, sink, cmd.max_chunk, cmd.drain_timeout, done)
                    .is_err()
                {
                    entry.part_done();
                }
            }
        });
        Ok(handle)
    }

    /// Adopts a running process that procession did not start (erlexec's
    /// `manage`): it is watched through a pidfd, so its exit is seen the
    /// moment it happens, and it can be stopped with the default stop
    /// sequence (SIGTERM, SIGKILL 5 s later). Its exit status belongs to
    /// its parent: its [`Exit`] is [`Exit::Unknown`]. Adopting a pid that
    /// is already supervised returns the existing handle.
    ///
    /// # Errors
    ///
    /// [`NotFound`](ErrorKind::NotFound) for a pid with no process, or
    /// whose process has already exited (a zombie);
    /// [`InvalidInput`](ErrorKind::InvalidInput) for pid 0, a pid above
    /// the kernel's range, or this process itself.
    ///
    /// ```
    /// use procession::{Exit, Supervisor};
    /// let mut sleeper = std::process::Command::new("sleep").arg("10").spawn()?;
    /// let sup = Supervisor::new();
    /// let managed = sup.manage(sleeper.id())?;
    /// let exit = managed.stop()?;
    /// assert!(matches!(exit, Exit::Unknown { .. }));
    /// // Its parent (here, std) collects the status.
    /// assert_eq!(std::os::unix::process::ExitStatusExt::signal(&sleeper.wait()?), Some(15));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn manage(&self, pid: u32) -> Result<Supervised, Error> {
        self.manage_with(pid, &Command::new("-"))
    }

    /// [`manage`](Supervisor::manage) with the stop settings of `stop`
    /// (erlexec's `manage(Pid, Opts)`): its [`stop_signal`](Command::stop_signal),
    /// [`stop_command`](Command::stop_command) (run with `CHILD_PID` set),
    /// [`stop_timeout`](Command::stop_timeout) and
    /// [`timeout`](Command::timeout). Nothing else of `stop` is used (its
    /// program is never run).
    ///
    /// # Errors
    ///
    /// As [`manage`](Supervisor::manage).
    ///
    /// ```
    /// use procession::{Command, Ended, Signal, Supervisor};
    /// use std::time::Duration;
    /// let mut sleeper = std::process::Command::new("sleep").arg("10").spawn()?;
    /// let sup = Supervisor::new();
    /// let settings = Command::new("-").stop_signal(Signal::INT).timeout(Duration::from_millis(50)).clone();
    /// let exit = sup.manage_with(sleeper.id(), &settings)?.monitor().recv();
    /// assert_eq!(exit.ended(), Ended::TimedOut);
    /// assert_eq!(std::os::unix::process::ExitStatusExt::signal(&sleeper.wait()?), Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn manage_with(&self, pid: u32, stop: &Command) -> Result<Supervised, Error> {
        let name = format!("pid {pid}");
        let who = Who::new(std::ffi::OsStr::new(&name), std::iter::empty());
        let invalid = |detail: &str| {
            Error::new(
                &who,
                Step::Prepare,
                ErrorKind::InvalidInput,
                Some(detail.into()),
                None,
            )
        };
        if pid == 0 || pid > i32::MAX as u32 {
            return Err(invalid("not a process id"));
        }
        if pid == std::process::id() {
            return Err(invalid("a process cannot supervise itself"));
        }
        if stop
            .stop_command
            .as_ref()
            .is_some_and(|c| std::os::unix::ffi::OsStrExt::as_bytes(c.as_os_str()).contains(&0))
        {
            return Err(invalid("the stop command contains a NUL byte"));
        }
        if let Some(existing) = self.get(pid) {
            return Ok(existing);
        }
        // Without a reaper the adopted process could only be stopped at
        // once (what is done to a child that cannot be watched): refuse
        // instead, and leave it alone.
        reaper::ensure().map_err(|e| {
            Error::os(&who, Step::Prepare, e)
                .with_detail("cannot start the background reaper that watches adopted processes")
        })?;
        let gone = |detail: &str, os: Option<std::io::Error>| {
            Error::new(
                &who,
                Step::Prepare,
                ErrorKind::NotFound,
                Some(detail.into()),
                os,
            )
        };
        let pidfd = pidfd::pidfd_open(pid as libc::pid_t).map_err(|e| {
            if e.raw_os_error() == Some(libc::ESRCH) {
                gone("no such process", Some(e))
            } else {
                Error::os(&who, Step::Prepare, e)
            }
        })?;
        // A zombie has a pid (and a pidfd) but has already exited.
        if fd::poll_one(
            std::os::fd::AsFd::as_fd(&pidfd),
            fd::Interest::Read,
            Some(Duration::ZERO),
        )
        .unwrap_or(true)
        {
            return Err(gone("the process has already exited", None));
        }
        let process = Arc::new(Process::adopted(
            pid as libc::pid_t,
            pidfd,
            who.clone(),
            Policy {
                stop_signal: stop.stop_signal,
                stop_command: stop.stop_command.clone(),
                stop_timeout: stop.stop_timeout,
                stop_group: false,
                success_codes: vec![0],
            },
            stop.timeout,
        ));
        Ok(self.register(process, None, |_| {}))
    }

    /// Adds `process` to the registry; `start` runs with its entry before
    /// anything can report the exit (it starts the delivery threads).
    fn register(
        &self,
        process: Arc<Process>,
        deliveries: Option<Deliveries>,
        start: impl FnOnce(&Arc<Entry>),
    ) -> Supervised {
        let pid = process.pid() as u32;
        let entry = Arc::new(Entry {
            process: process.clone(),
            exit: Mutex::new(ExitState::default()),
            exited: Condvar::new(),
            deliveries,
        });
        start(&entry);
        {
            let mut children = self.registry.lock();
            match children.get(&pid) {
                // Two `manage` calls for one pid raced: keep the first.
                Some(existing) if process.is_adopted() && existing.process.is_adopted() => {
                    let existing = existing.clone();
                    drop(children);
                    Process::abandon(&process);
                    return Supervised { entry: existing };
                }
                _ => {
                    children.insert(pid, entry.clone());
                }
            }
        }
        let weak_entry: Weak<Entry> = Arc::downgrade(&entry);
        let weak_registry: Weak<Registry> = Arc::downgrade(&self.registry);
        process.on_finish(Box::new(move || {
            let Some(entry) = weak_entry.upgrade() else {
                return;
            };
            // Out of the list first, so that whoever is told of the exit
            // no longer finds it there.
            if let Some(registry) = weak_registry.upgrade() {
                let mut children = registry.lock();
                // The pid may already name a newer child.
                if children.get(&pid).is_some_and(|e| Arc::ptr_eq(e, &entry)) {
                    children.remove(&pid);
                }
            }
            entry.finish();
        }));
        // The reaper drives it from now on (exit, timeout, stop sequence).
        reaper::adopt(process);
        Supervised { entry }
    }

    /// The children still running (erlexec's `which_children`), in no
    /// particular order. A child leaves the list once it is finished.
    ///
    /// ```
    /// use procession::{Command, Supervisor};
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(Command::new("sleep").arg("10"))?;
    /// assert_eq!(sup.children().iter().map(|c| c.pid()).collect::<Vec<_>>(), [child.pid()]);
    /// child.stop()?;
    /// assert!(sup.children().is_empty());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn children(&self) -> Vec<Supervised> {
        self.registry
            .lock()
            .values()
            .map(|entry| Supervised {
                entry: entry.clone(),
            })
            .collect()
    }

    /// The running child with this pid (erlexec's `pid/1`).
    ///
    /// ```
    /// use procession::{Command, Supervisor};
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(Command::new("sleep").arg("10"))?;
    /// assert!(sup.get(child.pid()).is_some());
    /// assert!(sup.get(1).is_none());
    /// # sup.shutdown();
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn get(&self, pid: u32) -> Option<Supervised> {
        self.registry.lock().get(&pid).map(|entry| Supervised {
            entry: entry.clone(),
        })
    }

    /// Stops every child with its own stop sequence, all at once, and
    /// returns when all are gone: at once for children that obey their stop
    /// signal, after the longest grace period at worst.
    ///
    /// ```
    /// use procession::{Command, Supervisor};
    /// use std::time::{Duration, Instant};
    /// let sup = Supervisor::new();
    /// for _ in 0..10 {
    ///     sup.spawn(Command::new("sleep").arg("100"))?;
    /// }
    /// let start = Instant::now();
    /// sup.shutdown();
    /// assert!(start.elapsed() < Duration::from_secs(2));
    /// assert!(sup.children().is_empty());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn shutdown(&self) {
        let children = self.children();
        for child in &children {
            child.start_stop();
        }
        for child in &children {
            child.entry.wait_exit(None);
        }
    }
}

impl Drop for Supervisor {
    /// Starts every child's stop sequence and returns at once; the
    /// background reaper finishes the sequences and reaps.
    fn drop(&mut self) {
        for child in self.children() {
            child.start_stop();
        }
    }
}

/// A handle to one supervised process. Clones control and observe the same
/// process; dropping a handle does nothing to it (the
/// [`Supervisor`] owns it; see [`link`](Supervised::link) for a handle that
/// stops it when dropped).
#[derive(Clone)]
pub struct Supervised {
    entry: Arc<Entry>,
}

impl std::fmt::Debug for Supervised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervised")
            .field("pid", &self.pid())
            .field("program", &self.entry.process.program())
            .field("adopted", &self.entry.process.is_adopted())
            .field("exit", &self.entry.exit())
            .finish()
    }
}

impl Supervised {
    /// The process id.
    ///
    /// ```
    /// use procession::{Command, Supervisor};
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(&Command::new("true"))?;
    /// assert!(child.pid() > 0);
    /// # child.wait()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.entry.process.pid() as u32
    }

    /// Sends `signal` to the process alone (through its pidfd: never to a
    /// later process that reused the pid).
    ///
    /// # Errors
    ///
    /// [`AlreadyReaped`](ErrorKind::AlreadyReaped) once it has ended.
    ///
    /// ```
    /// use procession::{Command, Signal, Supervisor};
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(Command::new("sleep").arg("10"))?;
    /// child.signal(Signal::KILL)?;
    /// assert_eq!(child.wait()?.status().unwrap().signal(), Some(Signal::KILL));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn signal(&self, signal: Signal) -> Result<(), Error> {
        self.entry.process.signal(signal)
    }

    /// Sends `signal` to the process's group, when it leads or joined one
    /// of its own (never a group procession does not own).
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](ErrorKind::InvalidInput) when the child stayed in
    /// the caller's group or was adopted with
    /// [`manage`](Supervisor::manage); [`AlreadyReaped`](ErrorKind::AlreadyReaped)
    /// once it has ended.
    ///
    /// ```
    /// use procession::{Command, ProcessGroup, Signal, Supervisor};
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(Command::shell("sleep 10 & sleep 10; wait")
    ///     .process_group(ProcessGroup::New))?;
    /// child.signal_group(Signal::KILL)?;
    /// assert_eq!(child.wait()?.status().unwrap().signal(), Some(Signal::KILL));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn signal_group(&self, signal: Signal) -> Result<(), Error> {
        self.entry.process.signal_group(signal)
    }

    /// Starts the stop sequence (the command's stop signal or stop command,
    /// SIGKILL after its stop timeout) and returns at once.
    ///
    /// ```
    /// use procession::{Command, Ended, Supervisor};
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(Command::new("sleep").arg("10"))?;
    /// child.start_stop();
    /// assert_eq!(child.wait()?.ended(), Ended::Requested);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn start_stop(&self) {
        self.entry.process.start_stop(Ended::Requested);
        reaper::adopt(self.entry.process.clone());
    }

    /// Runs the stop sequence and waits for the end (erlexec's
    /// `stop_and_wait`).
    ///
    /// # Errors
    ///
    /// As [`wait`](Supervised::wait).
    ///
    /// ```
    /// use procession::{Command, Signal, Supervisor};
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(Command::new("sleep").arg("10"))?;
    /// assert_eq!(child.stop()?.status().unwrap().signal(), Some(Signal::TERM));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn stop(&self) -> Result<Exit, Error> {
        self.start_stop();
        self.wait()
    }

    /// Blocks until the process is finished (with group stop, until its
    /// group is gone too) and returns how it ended. Any number of threads
    /// may wait at once.
    ///
    /// # Errors
    ///
    /// A failure to wait (`poll` or `waitid` failing for a reason other
    /// than the exit).
    ///
    /// ```
    /// use procession::{Command, Supervisor};
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(&Command::new("true"))?;
    /// let other = child.clone();
    /// let t = std::thread::spawn(move || other.wait().map(|e| e.status().unwrap().success()));
    /// assert!(child.wait()?.status().unwrap().success());
    /// assert!(t.join().unwrap()?);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn wait(&self) -> Result<Exit, Error> {
        if let Some(exit) = self.entry.exit() {
            return Ok(exit);
        }
        // Drive it on this thread too (the reaper does as well): the exit
        // is reported as soon as either sees it. A child reaped outside
        // procession is finished too: its exit is `Unknown`, as monitors
        // see it.
        if let Err(e) = self.entry.process.wait_until(None) {
            if !self.entry.process.is_finished() {
                return Err(e);
            }
        }
        Ok(self
            .entry
            .wait_exit(None)
            .expect("a finished process has an exit"))
    }

    /// Like [`wait`](Supervised::wait), giving up after `timeout`
    /// (`None` then). The timeout also bounds the wait for output still
    /// being delivered to a [`Stdio::callback`] or [`Stdio::channel`].
    ///
    /// # Errors
    ///
    /// As [`wait`](Supervised::wait).
    ///
    /// ```
    /// use procession::{Command, Supervisor};
    /// use std::time::Duration;
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(Command::new("sleep").arg("10"))?;
    /// assert_eq!(child.wait_timeout(Duration::from_millis(10))?, None);
    /// # sup.shutdown();
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<Exit>, Error> {
        if let Some(exit) = self.entry.exit() {
            return Ok(Some(exit));
        }
        let deadline = Instant::now().checked_add(timeout);
        match self.entry.process.wait_until(deadline) {
            Err(e) if !self.entry.process.is_finished() => return Err(e),
            Ok(None) if !self.entry.process.is_finished() => return Ok(None),
            _ => {}
        }
        // Finished. Without output being delivered to a function, the exit
        // is being reported right now (by this thread, or by another that
        // saw the end first): wait for it. Delivery can take longer; the
        // deadline bounds it (with a little slack for that same report).
        if self.entry.deliveries.is_none() {
            return Ok(self.entry.wait_exit(None));
        }
        Ok(self
            .entry
            .wait_exit(deadline.map(|d| d.max(Instant::now() + Duration::from_millis(10)))))
    }

    /// How the process ended, if it is finished; never blocks.
    ///
    /// ```
    /// use procession::{Command, Supervisor};
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(Command::new("sleep").arg("10"))?;
    /// assert_eq!(child.try_wait(), None);
    /// # sup.shutdown();
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn try_wait(&self) -> Option<Exit> {
        self.entry.exit()
    }

    /// A subscription to the process's exit (erlexec's `monitor`): it can
    /// be moved to another thread or task, cloned, blocked on
    /// ([`Monitor::recv`]) or awaited (it is a `Future` that works under
    /// any executor). It does not keep the process alive or stop it.
    ///
    /// ```
    /// use procession::{Command, Supervisor};
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(Command::new("sh").args(["-c", "exit 4"]))?;
    /// let monitor = child.monitor();
    /// let seen = std::thread::spawn(move || monitor.recv().status().unwrap().code());
    /// assert_eq!(seen.join().unwrap(), Some(4));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn monitor(&self) -> Monitor {
        Monitor {
            entry: self.entry.clone(),
        }
    }

    /// A guard that stops the process when dropped (erlexec's link, from
    /// the owner's side) and is a future of its exit (the child's side).
    ///
    /// ```
    /// use procession::{Command, Ended, Supervisor};
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(Command::new("sleep").arg("10"))?;
    /// let monitor = child.monitor();
    /// drop(child.link()); // the owner went away: the child is stopped
    /// assert_eq!(monitor.recv().ended(), Ended::Requested);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn link(&self) -> Link {
        Link {
            handle: self.clone(),
        }
    }
}

/// A subscription to one process's exit; see [`Supervised::monitor`].
#[derive(Clone)]
pub struct Monitor {
    entry: Arc<Entry>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("pid", &self.entry.process.pid())
            .field("exit", &self.entry.exit())
            .finish()
    }
}

impl Monitor {
    /// Blocks until the process is finished and returns how it ended.
    ///
    /// ```
    /// use procession::{Command, Supervisor};
    /// let sup = Supervisor::new();
    /// let m = sup.spawn(&Command::new("true"))?.monitor();
    /// assert!(m.recv().status().unwrap().success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn recv(&self) -> Exit {
        self.entry.wait_exit(None).expect("no deadline")
    }

    /// Like [`recv`](Monitor::recv), giving up after `timeout`.
    ///
    /// ```
    /// use procession::{Command, Supervisor};
    /// use std::time::Duration;
    /// let sup = Supervisor::new();
    /// let m = sup.spawn(Command::new("sleep").arg("10"))?.monitor();
    /// assert_eq!(m.recv_timeout(Duration::from_millis(10)), None);
    /// # sup.shutdown();
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Exit> {
        self.entry.wait_exit(Some(
            Instant::now()
                .checked_add(timeout)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(86400 * 365)),
        ))
    }

    /// How the process ended, if it is finished; never blocks.
    ///
    /// ```
    /// use procession::{Command, Supervisor};
    /// let sup = Supervisor::new();
    /// let m = sup.spawn(Command::new("sleep").arg("10"))?.monitor();
    /// assert_eq!(m.try_recv(), None);
    /// # sup.shutdown();
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn try_recv(&self) -> Option<Exit> {
        self.entry.exit()
    }
}

impl Future for Monitor {
    type Output = Exit;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Exit> {
        self.entry.poll_exit(cx)
    }
}

/// Stops its process when dropped, and is a future of its exit; see
/// [`Supervised::link`].
#[derive(Debug)]
pub struct Link {
    handle: Supervised,
}

impl Link {
    /// The linked process.
    ///
    /// ```
    /// use procession::{Command, Supervisor};
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(Command::new("sleep").arg("10"))?;
    /// let link = child.link();
    /// assert_eq!(link.handle().pid(), child.pid());
    /// drop(link); // stops the child
    /// child.wait()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn handle(&self) -> &Supervised {
        &self.handle
    }
}

impl Future for Link {
    type Output = Exit;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Exit> {
        self.handle.entry.poll_exit(cx)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if self.handle.entry.exit().is_none() {
            self.handle.start_stop();
        }
    }
}

/// Ended commands (index, exit) not yet returned, and the task to wake.
type Queue = (std::collections::VecDeque<(usize, Exit)>, Option<Waker>);

/// The completions of [`Supervisor::run_many`], in the order they happen.
struct Completions {
    queue: Mutex<Queue>,
    ready: Condvar,
}

/// Runs commands with at most a given number at once; see
/// [`Supervisor::run_many`]. An `Iterator` (blocking) of
/// `(index, result)` in completion order; [`next_async`](RunMany::next_async)
/// is the same without blocking (any executor; with the `tokio` feature it
/// is also a `Stream`).
pub struct RunMany<'a, I: Iterator<Item = Command>> {
    supervisor: &'a Supervisor,
    commands: std::iter::Enumerate<I>,
    max: usize,
    /// The commands running now, with their index.
    running: Vec<(usize, Supervised)>,
    completions: Arc<Completions>,
}

impl<I: Iterator<Item = Command>> std::fmt::Debug for RunMany<'_, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunMany")
            .field("max", &self.max)
            .field("running", &self.running.len())
            .finish()
    }
}

impl Supervisor {
    /// Runs `commands` with at most `max_at_once` running at a time (at
    /// least one), each with its own [`timeout`](Command::timeout) and stop
    /// sequence, and yields `(index, result)` as each one ends: the index in
    /// `commands`, and the [`Exit`] or the error that kept it from
    /// starting. A new command starts as soon as one ends. Dropping the
    /// iterator early starts the stop sequence of those still running.
    ///
    /// ```
    /// use procession::{Command, Supervisor};
    /// use std::time::Duration;
    /// let sup = Supervisor::new();
    /// let cmds = ["0.3", "0.1", "0.2"].map(|t| {
    ///     let mut c = Command::new("sleep");
    ///     c.arg(t);
    ///     c
    /// });
    /// // All three at once: the shortest ends first.
    /// let order: Vec<usize> = sup.run_many(cmds, 3).map(|(i, r)| {
    ///     assert!(r.unwrap().status().unwrap().success());
    ///     i
    /// }).collect();
    /// assert_eq!(order, [1, 2, 0]);
    /// ```
    pub fn run_many<C>(&self, commands: C, max_at_once: usize) -> RunMany<'_, C::IntoIter>
    where
        C: IntoIterator<Item = Command>,
    {
        RunMany {
            supervisor: self,
            commands: commands.into_iter().enumerate(),
            max: max_at_once.max(1),
            running: Vec::new(),
            completions: Arc::new(Completions {
                queue: Mutex::new((std::collections::VecDeque::new(), None)),
                ready: Condvar::new(),
            }),
        }
    }
}

impl<I: Iterator<Item = Command>> RunMany<'_, I> {
    /// Starts commands up to the limit; a command that fails to start is
    /// returned at once as its result.
    fn fill(&mut self) -> Option<(usize, Result<Exit, Error>)> {
        while self.running.len() < self.max {
            let (index, cmd) = self.commands.next()?;
            match self.supervisor.spawn(&cmd) {
                Ok(child) => {
                    let completions = self.completions.clone();
                    child.entry.on_exit(Box::new(move |exit| {
                        let waker = {
                            let mut q = completions.queue.lock().unwrap_or_else(|p| p.into_inner());
                            q.0.push_back((index, exit));
                            q.1.take()
                        };
                        completions.ready.notify_one();
                        if let Some(w) = waker {
                            w.wake();
                        }
                    }));
                    self.running.push((index, child));
                }
                Err(e) => return Some((index, Err(e))),
            }
        }
        None
    }

    fn take_completion(
        &mut self,
        q: &mut std::collections::VecDeque<(usize, Exit)>,
    ) -> Option<(usize, Result<Exit, Error>)> {
        let (index, exit) = q.pop_front()?;
        if let Some(pos) = self.running.iter().position(|(i, _)| *i == index) {
            self.running.swap_remove(pos);
        }
        Some((index, Ok(exit)))
    }

    /// The next completion, without blocking the thread: resolves when a
    /// command ends (or fails to start); `None` once all have been
    /// returned. Works under any executor.
    ///
    /// ```
    /// use procession::{Command, Supervisor};
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     struct W(std::thread::Thread);
    /// #     impl std::task::Wake for W { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let waker = std::task::Waker::from(std::sync::Arc::new(W(std::thread::current())));
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// let sup = Supervisor::new();
    /// let mut run = sup.run_many((0..4).map(|i| Command::shell(format!("exit {i}"))), 2);
    /// let mut codes = Vec::new();
    /// block_on(async {
    ///     while let Some((i, result)) = run.next_async().await {
    ///         codes.push((i, result.unwrap().status().unwrap().code().unwrap()));
    ///     }
    /// });
    /// codes.sort();
    /// assert_eq!(codes, [(0, 0), (1, 1), (2, 2), (3, 3)]);
    /// ```
    pub fn next_async(
        &mut self,
    ) -> impl Future<Output = Option<(usize, Result<Exit, Error>)>> + '_ {
        std::future::poll_fn(move |cx| self.poll_next_completion(cx))
    }

    fn poll_next_completion(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(usize, Result<Exit, Error>)>> {
        if let Some(failed) = self.fill() {
            return Poll::Ready(Some(failed));
        }
        let completions = self.completions.clone();
        let mut q = completions.queue.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(done) = self.take_completion(&mut q.0) {
            return Poll::Ready(Some(done));
        }
        if self.running.is_empty() {
            return Poll::Ready(None);
        }
        q.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl<I: Iterator<Item = Command>> Iterator for RunMany<'_, I> {
    type Item = (usize, Result<Exit, Error>);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(failed) = self.fill() {
            return Some(failed);
        }
        let completions = self.completions.clone();
        let mut q = completions.queue.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(done) = self.take_completion(&mut q.0) {
                return Some(done);
            }
            if self.running.is_empty() {
                return None;
            }
            q = completions.ready.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(feature = "tokio")]
impl<I: Iterator<Item = Command> + Unpin> futures_core::Stream for RunMany<'_, I> {
    type Item = (usize, Result<Exit, Error>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_completion(cx)
    }
}

impl<I: Iterator<Item = Command>> Drop for RunMany<'_, I> {
    fn drop(&mut self) {
        for (_, child) in &self.running {
            if child.entry.exit().is_none() {
                child.start_stop();
            }
        }
    }
}

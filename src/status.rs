//! [`ExitStatus`]: how a child ended, and who ended it.

use std::fmt;
use std::time::Duration;

use crate::Signal;
use crate::cgroup::CgroupUsage;

/// Who or what ended a child.
///
/// ```
/// use procession::{Command, Ended};
/// assert_eq!(Command::new("true").status()?.ended(), Ended::OnItsOwn);
/// let mut child = Command::new("sleep").arg("10").spawn()?;
/// assert_eq!(child.stop()?.ended(), Ended::Requested);
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ended {
    /// The child exited, or was killed by a signal, without procession
    /// starting its stop sequence.
    OnItsOwn,
    /// It ended after the caller asked for it: [`Child::stop`](crate::Child::stop),
    /// [`Child::kill`](crate::Child::kill), or dropping a running child or
    /// stream. (Not to be confused with the Unix *stopped* state of
    /// `SIGSTOP`, which procession calls *suspended*.)
    Requested,
    /// The command's [`timeout`](crate::Command::timeout) expired and the
    /// stop sequence ended it.
    TimedOut,
    /// It wrote more than the command's
    /// [`max_output`](crate::Command::max_output) and the stop sequence
    /// ended it.
    OutputLimit,
}

/// How a child ended: an exit code or a signal, plus [`Ended`].
///
/// ```
/// use procession::{Command, Ended};
/// let status = Command::new("sh").args(["-c", "exit 3"]).status()?;
/// assert_eq!(status.code(), Some(3));
/// assert!(!status.success());
/// assert_eq!(status.ended(), Ended::OnItsOwn);
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExitStatus {
    kind: Kind,
    ended: Ended,
    success: bool,
    usage: Option<ResourceUsage>,
    cgroup: Option<CgroupUsage>,
}

/// What the kernel counted for an ended child: CPU time and peak memory
/// (`waitid`'s `struct rusage`, as Go's `ProcessState.SysUsage` gives it).
/// It covers the child and the descendants it waited for.
///
/// ```
/// use std::time::Duration;
/// let status = procession::Command::new("sh").args(["-c", "exit 0"]).status()?;
/// let usage = status.usage().expect("a reaped child has a usage");
/// assert!(usage.cpu_time() < Duration::from_secs(1));
/// assert!(usage.max_rss() > 0);
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResourceUsage {
    pub(crate) user_time: Duration,
    pub(crate) system_time: Duration,
    pub(crate) max_rss: u64,
}

impl ResourceUsage {
    /// CPU time spent in user mode (`ru_utime`).
    ///
    /// ```
    /// let status = procession::Command::new("true").status()?;
    /// assert!(status.usage().unwrap().user_time() <= status.usage().unwrap().cpu_time());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn user_time(&self) -> Duration {
        self.user_time
    }

    /// CPU time spent in the kernel on the child's behalf (`ru_stime`).
    ///
    /// ```
    /// let status = procession::Command::new("true").status()?;
    /// assert!(status.usage().unwrap().system_time() <= status.usage().unwrap().cpu_time());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn system_time(&self) -> Duration {
        self.system_time
    }

    /// User plus system time.
    ///
    /// ```
    /// let usage = procession::Command::new("true").status()?.usage().unwrap();
    /// assert_eq!(usage.cpu_time(), usage.user_time() + usage.system_time());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn cpu_time(&self) -> Duration {
        self.user_time + self.system_time
    }

    /// The peak resident set size in bytes (`ru_maxrss`, which the kernel
    /// counts in KiB).
    ///
    /// ```
    /// let usage = procession::Command::new("true").status()?.usage().unwrap();
    /// assert!(usage.max_rss() >= 4096);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn max_rss(&self) -> u64 {
        self.max_rss
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Code(i32),
    Signal { signal: i32, core_dumped: bool },
}

impl ExitStatus {
    pub(crate) fn from_code(code: i32, ended: Ended, success_codes: &[i32]) -> ExitStatus {
        ExitStatus {
            kind: Kind::Code(code),
            ended,
            success: success_codes.contains(&code),
            usage: None,
            cgroup: None,
        }
    }

    pub(crate) fn with_usage(mut self, usage: Option<ResourceUsage>) -> ExitStatus {
        self.usage = usage;
        self
    }

    /// The child's resource usage (CPU time, peak memory), when the kernel
    /// reported it: always for a child procession started and reaped.
    /// Two statuses compare equal only when their usage does too; compare
    /// [`code`](ExitStatus::code), [`signal`](ExitStatus::signal) and
    /// [`ended`](ExitStatus::ended) to ask "did they end the same way".
    ///
    /// ```
    /// let status = procession::Command::new("true").status()?;
    /// assert!(status.usage().is_some());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn usage(&self) -> Option<ResourceUsage> {
        self.usage
    }

    pub(crate) fn with_cgroup_usage(mut self, usage: Option<CgroupUsage>) -> ExitStatus {
        self.cgroup = usage;
        self
    }

    /// What the child's own cgroup counted, for a child started with
    /// [`Command::cgroup`](crate::Command::cgroup): the CPU time of the
    /// child and of every descendant, daemons that left its group
    /// included (where [`usage`](ExitStatus::usage) counts only the child
    /// and the descendants it waited for). `None` without a cgroup.
    ///
    /// ```no_run
    /// use procession::{Cgroup, Command};
    /// // Needs a writable cgroup v2 hierarchy (root, or a delegated subtree).
    /// let status = Command::new("sh").args(["-c", "setsid sh -c 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done' &"])
    ///     .cgroup(Cgroup::auto())
    ///     .status()?;
    /// let counted = status.cgroup_usage().expect("it ran in a cgroup");
    /// println!("cpu: {:?}", counted.user_time + counted.system_time);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn cgroup_usage(&self) -> Option<CgroupUsage> {
        self.cgroup
    }

    pub(crate) fn from_signal(signal: i32, core_dumped: bool, ended: Ended) -> ExitStatus {
        ExitStatus {
            kind: Kind::Signal {
                signal,
                core_dumped,
            },
            ended,
            success: false,
            usage: None,
            cgroup: None,
        }
    }

    /// The exit code, or `None` when a signal ended the child.
    ///
    /// ```
    /// let status = procession::Command::new("true").status()?;
    /// assert_eq!(status.code(), Some(0));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn code(&self) -> Option<i32> {
        match self.kind {
            Kind::Code(c) => Some(c),
            Kind::Signal { .. } => None,
        }
    }

    /// The signal that ended the child, if one did.
    ///
    /// ```
    /// use procession::{Command, Signal};
    /// let status = Command::new("sh").args(["-c", "kill -KILL $$"]).status()?;
    /// assert_eq!(status.signal(), Some(Signal::KILL));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn signal(&self) -> Option<Signal> {
        match self.kind {
            Kind::Signal { signal, .. } => Signal::new(signal),
            Kind::Code(_) => None,
        }
    }

    /// Whether the signal that ended the child also dumped core.
    ///
    /// ```
    /// let status = procession::Command::new("true").status()?;
    /// assert!(!status.core_dumped());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn core_dumped(&self) -> bool {
        matches!(
            self.kind,
            Kind::Signal {
                core_dumped: true,
                ..
            }
        )
    }

    /// Whether the exit code is one of the command's
    /// [`success_exit_codes`](crate::Command::success_exit_codes) (`[0]` by
    /// default). A signal is never a success.
    ///
    /// ```
    /// use procession::Command;
    /// let status = Command::new("sh").args(["-c", "exit 10"]).success_exit_codes([0, 10]).status()?;
    /// assert!(status.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn success(&self) -> bool {
        self.success
    }

    /// Who ended the child.
    ///
    /// ```
    /// use procession::{Command, Ended};
    /// use std::time::Duration;
    /// let status = Command::new("sleep").arg("10").timeout(Duration::from_millis(50)).status()?;
    /// assert_eq!(status.ended(), Ended::TimedOut);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn ended(&self) -> Ended {
        self.ended
    }

    /// `true` when the [`timeout`](crate::Command::timeout) ended the child.
    ///
    /// ```
    /// assert!(!procession::Command::new("true").status()?.timed_out());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn timed_out(&self) -> bool {
        self.ended == Ended::TimedOut
    }

    /// The status as a shell reports it in `$?`: the exit code, or 128 plus
    /// the signal number.
    ///
    /// ```
    /// use procession::Command;
    /// let status = Command::new("sh").args(["-c", "kill -TERM $$"]).status()?;
    /// assert_eq!(status.shell_code(), 128 + 15);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn shell_code(&self) -> i32 {
        match self.kind {
            Kind::Code(c) => c,
            Kind::Signal { signal, .. } => 128 + signal,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Code(c) => write!(f, "exit code {c}")?,
            Kind::Signal {
                signal,
                core_dumped,
            } => {
                match Signal::new(signal) {
                    Some(s) => write!(f, "killed by {s}")?,
                    None => write!(f, "killed by signal {signal}")?,
                }
                if core_dumped {
                    f.write_str(" (core dumped)")?;
                }
            }
        }
        match self.ended {
            Ended::OnItsOwn => Ok(()),
            Ended::Requested => f.write_str(", stopped by procession"),
            Ended::TimedOut => f.write_str(", timed out"),
            Ended::OutputLimit => f.write_str(", stopped for writing too much"),
        }
    }
}

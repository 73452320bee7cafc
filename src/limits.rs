//! Who a child runs as and the limits it runs under: user and groups,
//! resource limits, scheduling priority, `no_new_privs`, umask.
//!
//! These are settings of a [`Command`](crate::Command)
//! ([`user`](crate::Command::user), [`limit`](crate::Command::limit),
//! [`nice`](crate::Command::nice), …). Names are looked up in the parent
//! while the spawn is prepared; the child only makes the system calls
//! (`prlimit64`, `setpriority`, `umask`, `prctl`, `setgroups`, `setresgid`,
//! `setresuid`, in that order, before `chdir` and `execve`).

use std::ffi::OsString;
use std::fmt;

/// A user or a group, by name (looked up in the system's databases) or by
/// numeric id.
///
/// ```
/// use procession::NameOrId;
/// assert_eq!(NameOrId::from("nobody"), NameOrId::Name("nobody".into()));
/// assert_eq!(NameOrId::from(65534), NameOrId::Id(65534));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NameOrId {
    /// A name, as in `/etc/passwd` or `/etc/group`.
    Name(OsString),
    /// A numeric uid or gid.
    Id(u32),
}

impl From<&str> for NameOrId {
    fn from(name: &str) -> NameOrId {
        NameOrId::Name(name.into())
    }
}

impl From<String> for NameOrId {
    fn from(name: String) -> NameOrId {
        NameOrId::Name(name.into())
    }
}

impl From<OsString> for NameOrId {
    fn from(name: OsString) -> NameOrId {
        NameOrId::Name(name)
    }
}

impl From<u32> for NameOrId {
    fn from(id: u32) -> NameOrId {
        NameOrId::Id(id)
    }
}

impl fmt::Display for NameOrId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameOrId::Name(n) => write!(f, "{:?}", n),
            NameOrId::Id(id) => write!(f, "{id}"),
        }
    }
}

/// A resource limit (`setrlimit(2)`), set with
/// [`Command::limit`](crate::Command::limit).
///
/// ```
/// use procession::{Command, Limit};
/// let out = Command::shell("ulimit -n; ulimit -c")
///     .limit(Limit::OpenFiles, 64, 128)
///     .limit(Limit::CoreSize, 0, 0)
///     .run()?;
/// assert_eq!(out.stdout, b"64\n0\n");
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// `RLIMIT_AS`: the size of the virtual address space, in bytes.
    AddressSpace,
    /// `RLIMIT_CORE`: the largest core dump, in bytes (0: none).
    CoreSize,
    /// `RLIMIT_CPU`: CPU time in seconds (SIGXCPU at the soft limit,
    /// SIGKILL at the hard one).
    CpuTime,
    /// `RLIMIT_DATA`: the data segment and heap, in bytes.
    Data,
    /// `RLIMIT_FSIZE`: the largest file the process may write, in bytes
    /// (SIGXFSZ beyond it).
    FileSize,
    /// `RLIMIT_MEMLOCK`: memory that may be locked, in bytes.
    LockedMemory,
    /// `RLIMIT_MSGQUEUE`: bytes in POSIX message queues.
    MessageQueues,
    /// `RLIMIT_NICE`: the ceiling of the nice value, as `20 - limit`.
    Nice,
    /// `RLIMIT_NOFILE`: one more than the highest descriptor number.
    OpenFiles,
    /// `RLIMIT_NPROC`: processes (threads) of the child's real user.
    Processes,
    /// `RLIMIT_RTPRIO`: the ceiling of the real-time priority.
    RealtimePriority,
    /// `RLIMIT_RTTIME`: CPU time without a blocking call under a real-time
    /// policy, in microseconds.
    RealtimeTime,
    /// `RLIMIT_SIGPENDING`: signals that may be queued.
    PendingSignals,
    /// `RLIMIT_STACK`: the main thread's stack, in bytes.
    Stack,
}

impl Limit {
    /// No limit (`RLIM_INFINITY`), for either the soft or the hard value.
    pub const UNLIMITED: u64 = libc::RLIM_INFINITY;

    pub(crate) fn resource(self) -> libc::c_int {
        (match self {
            Limit::AddressSpace => libc::RLIMIT_AS,
            Limit::CoreSize => libc::RLIMIT_CORE,
            Limit::CpuTime => libc::RLIMIT_CPU,
            Limit::Data => libc::RLIMIT_DATA,
            Limit::FileSize => libc::RLIMIT_FSIZE,
            Limit::LockedMemory => libc::RLIMIT_MEMLOCK,
            Limit::MessageQueues => libc::RLIMIT_MSGQUEUE,
            Limit::Nice => libc::RLIMIT_NICE,
            Limit::OpenFiles => libc::RLIMIT_NOFILE,
            Limit::Processes => libc::RLIMIT_NPROC,
            Limit::RealtimePriority => libc::RLIMIT_RTPRIO,
            Limit::RealtimeTime => libc::RLIMIT_RTTIME,
            Limit::PendingSignals => libc::RLIMIT_SIGPENDING,
            Limit::Stack => libc::RLIMIT_STACK,
        }) as libc::c_int
    }

    /// The C name, for errors.
    pub(crate) fn c_name(self) -> &'static str {
        match self {
            Limit::AddressSpace => "RLIMIT_AS",
            Limit::CoreSize => "RLIMIT_CORE",
            Limit::CpuTime => "RLIMIT_CPU",
            Limit::Data => "RLIMIT_DATA",
            Limit::FileSize => "RLIMIT_FSIZE",
            Limit::LockedMemory => "RLIMIT_MEMLOCK",
            Limit::MessageQueues => "RLIMIT_MSGQUEUE",
            Limit::Nice => "RLIMIT_NICE",
            Limit::OpenFiles => "RLIMIT_NOFILE",
            Limit::Processes => "RLIMIT_NPROC",
            Limit::RealtimePriority => "RLIMIT_RTPRIO",
            Limit::RealtimeTime => "RLIMIT_RTTIME",
            Limit::PendingSignals => "RLIMIT_SIGPENDING",
            Limit::Stack => "RLIMIT_STACK",
        }
    }
}

/// The settings of this module, kept together in the [`Command`](crate::Command)
/// (boxed: most commands change none of them).
#[derive(Clone, Debug, Default)]
pub(crate) struct RunAs {
    pub user: Option<NameOrId>,
    pub primary_group: Option<NameOrId>,
    pub groups: Option<Vec<NameOrId>>,
    pub limits: Vec<(Limit, u64, u64)>,
    pub nice: Option<i32>,
    pub umask: Option<u32>,
    pub no_new_privs: bool,
}

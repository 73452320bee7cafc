//! A cgroup v2 per child: the strongest "nothing left behind" (see
//! [`Command::cgroup`](crate::Command::cgroup)).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a child's own cgroup is created, for
/// [`Command::cgroup`](crate::Command::cgroup).
///
/// Each child gets a new cgroup directory, `procession-<pid>-<n>`, under the
/// parent chosen here. Nothing else is configured today: the type is the
/// place where resource limits (`memory.max`, `pids.max`, `cpu.max`) will
/// be set, once a hierarchy with those controllers can be tested.
///
/// ```
/// use procession::Cgroup;
/// let beside_me = Cgroup::auto();
/// let there = Cgroup::under("/sys/fs/cgroup/jobs");
/// assert_eq!(there.parent(), Some(std::path::Path::new("/sys/fs/cgroup/jobs")));
/// assert_eq!(beside_me.parent(), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    parent: Option<PathBuf>,
}

impl Cgroup {
    /// Under this process's own cgroup in the cgroup v2 hierarchy (found
    /// from `/proc/self/mountinfo` and `/proc/self/cgroup`, so it works
    /// whether v2 is mounted alone at `/sys/fs/cgroup` or beside v1).
    pub fn auto() -> Cgroup {
        Cgroup { parent: None }
    }

    /// Under `dir`, which must be a directory of a cgroup v2 file system
    /// that this process may create cgroups in (a delegated subtree, or
    /// any as root).
    pub fn under(dir: impl Into<PathBuf>) -> Cgroup {
        Cgroup {
            parent: Some(dir.into()),
        }
    }

    /// The parent directory given with [`under`](Cgroup::under); `None`
    /// for [`auto`](Cgroup::auto).
    pub fn parent(&self) -> Option<&Path> {
        self.parent.as_deref()
    }
}

/// What a child's cgroup counted for everything that ran in it (the child
/// and all its descendants, including those that left its process group),
/// read just before the cgroup is removed. See
/// [`ExitStatus::cgroup_usage`](crate::ExitStatus::cgroup_usage).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CgroupUsage {
    /// CPU time in user mode (`cpu.stat`'s `user_usec`).
    pub user_time: Duration,
    /// CPU time in the kernel (`cpu.stat`'s `system_usec`).
    pub system_time: Duration,
    /// Peak memory use in bytes (`memory.peak`), when the memory controller
    /// is enabled for the cgroup.
    pub memory_peak: Option<u64>,
    /// Peak number of processes (`pids.peak`), when the pids controller is
    /// enabled for the cgroup.
    pub pids_peak: Option<u64>,
}

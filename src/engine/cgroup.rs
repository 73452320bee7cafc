//! A child's own cgroup: created before the spawn, joined by the child
//! before `execve`, emptied with `cgroup.kill`, read for accounting and
//! removed once the child is reaped.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::watchdog::{self, CgroupEntry};
use crate::cgroup::{Cgroup, CgroupUsage};
use crate::error::{Error, ErrorKind, Step};
use crate::signal::Signal;
use crate::sys::fd;
use crate::sys::fs::{self, CGROUP2_MAGIC};
use crate::sys::pidfd;

pub(crate) struct ChildCgroup {
    dir: PathBuf,
    /// `cgroup.procs`, open for writing: the child writes `0` into it.
    procs: OwnedFd,
    /// The watchdog's record of the directory (owner-death cleanup).
    _watch: Option<CgroupEntry>,
    removed: AtomicBool,
}

fn unsupported(program: &std::ffi::OsStr, detail: String) -> Error {
    Error::new(
        program,
        Step::Cgroup,
        ErrorKind::Unsupported,
        Some(detail),
        None,
    )
}

/// This process's own cgroup directory, looked up once.
fn own_dir() -> Result<PathBuf, String> {
    static OWN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    OWN.get_or_init(crate::sys::procfs::own_cgroup_dir).clone()
}

impl ChildCgroup {
    /// Makes `procession-<our pid>-<n>` under the parent `cfg` names.
    ///
    /// # Errors
    ///
    /// `Unsupported` when there is no cgroup v2 hierarchy or the parent is
    /// not in one; the OS error (`PermissionDenied` for `EACCES`, `EPERM`
    /// and a read-only mount, `NotFound` for a missing parent) when the
    /// directory cannot be made. Never a silent fallback.
    pub(crate) fn create(program: &std::ffi::OsStr, cfg: &Cgroup) -> Result<ChildCgroup, Error> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let parent = match cfg.parent() {
            Some(p) => p.to_path_buf(),
            None => own_dir().map_err(|why| unsupported(program, why))?,
        };
        let c = cstring(program, &parent)?;
        match fs::fs_type(&c) {
            Ok(CGROUP2_MAGIC) => {}
            Ok(_) => {
                return Err(unsupported(
                    program,
                    format!("{} is not in a cgroup v2 hierarchy", parent.display()),
                ));
            }
            Err(e) => {
                return Err(Error::os(program, Step::Cgroup, e)
                    .with_detail(format!("cgroup parent {}", parent.display())));
            }
        }
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!("procession-{}-{n}", std::process::id()));
        // The watchdog's table holds the path in a fixed-width line (the
        // kernel refuses cgroup names with a newline, which the line ends
        // with).
        if dir.as_os_str().len() > watchdog::CGROUP_PATH_MAX {
            return Err(Error::invalid(
                program,
                format!(
                    "the cgroup path {} is longer than {} bytes",
                    dir.display(),
                    watchdog::CGROUP_PATH_MAX
                ),
            )
            .with_step(Step::Cgroup));
        }
        std::fs::create_dir(&dir).map_err(|e| {
            Error::os(program, Step::Cgroup, e)
                .with_detail(format!("cannot create the cgroup {}", dir.display()))
        })?;
        // Listed for the watchdog before anything can run in it.
        let watch = watchdog::record_cgroup(dir.as_os_str().as_bytes());
        let procs = cstring(program, &dir.join("cgroup.procs"))
            .and_then(|p| {
                fd::open(&p, libc::O_WRONLY, 0).map_err(|e| {
                    Error::os(program, Step::Cgroup, e)
                        .with_detail(format!("cannot open {}/cgroup.procs", dir.display()))
                })
            })
            .inspect_err(|_| {
                let _ = std::fs::remove_dir(&dir);
            })?;
        Ok(ChildCgroup {
            dir,
            procs,
            _watch: watch,
            removed: AtomicBool::new(false),
        })
    }

    /// The descriptor the child writes `0` into.
    pub(crate) fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sends `sig` to every process in the cgroup; SIGKILL through
    /// `cgroup.kill` (Linux 5.14), which also reaches processes forked
    /// while it runs. Best effort: members that ended meanwhile are fine.
    pub(crate) fn signal(&self, sig: Signal) {
        if sig == Signal::KILL && std::fs::write(self.dir.join("cgroup.kill"), b"1").is_ok() {
            return;
        }
        for pid in self.members() {
            let _ = pidfd::kill(pid, sig.as_raw());
        }
    }

    /// The pids in `cgroup.procs`.
    fn members(&self) -> Vec<libc::pid_t> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Whether a live process is still in the cgroup (`cgroup.events`,
    /// present in every non-root cgroup v2; unreadable means the directory
    /// is gone, so nothing is in it).
    pub(crate) fn populated(&self) -> bool {
        std::fs::read_to_string(self.dir.join("cgroup.events"))
            .is_ok_and(|events| events.lines().any(|l| l.trim() == "populated 1"))
    }

    /// The cgroup's accounting (`cpu.stat`, `memory.peak`, `pids.peak`).
    pub(crate) fn usage(&self) -> CgroupUsage {
        let stat = std::fs::read_to_string(self.dir.join("cpu.stat")).unwrap_or_default();
        let field = |name: &str| {
            stat.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let number = |file: &str| {
            std::fs::read_to_string(self.dir.join(file))
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
        };
        CgroupUsage {
            user_time: Duration::from_micros(field("user_usec ")),
            system_time: Duration::from_micros(field("system_usec ")),
            memory_peak: number("memory.peak"),
            pids_peak: number("pids.peak"),
        }
    }

    /// Removes the (empty) directory, once.
    pub(crate) fn remove(&self) -> std::io::Result<()> {
        if self.removed.load(Ordering::Relaxed) {
            return Ok(());
        }
        match std::fs::remove_dir(&self.dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        self.removed.store(true, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for ChildCgroup {
    /// A cgroup whose child was never started (a failed spawn), or one
    /// dropped early, is removed if it is empty.
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

fn cstring(program: &std::ffi::OsStr, path: &Path) -> Result<CString, Error> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::invalid(program, "the cgroup path contains a NUL byte"))
}

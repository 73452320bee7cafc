//! Process handles and reaping: `pidfd_open(2)`, `pidfd_send_signal(2)`,
//! `waitid(2)` (on a pidfd or a pid), `kill(2)`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{cvt, cvt_long, retry};

/// How a process ended, as `waitid(2)` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RawExit {
    /// `CLD_EXITED`: the exit code.
    Code(i32),
    /// `CLD_KILLED` / `CLD_DUMPED`: the signal and whether a core was dumped.
    Signal { signal: i32, core_dumped: bool },
}

/// What the kernel counted for an ended process (`struct rusage`): CPU
/// time and peak resident set size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawUsage {
    pub user: std::time::Duration,
    pub system: std::time::Duration,
    /// `ru_maxrss`: kibibytes.
    pub max_rss_kib: u64,
}

fn duration(tv: libc::timeval) -> std::time::Duration {
    std::time::Duration::new(
        tv.tv_sec.max(0) as u64,
        (tv.tv_usec.clamp(0, 999_999) * 1000) as u32,
    )
}

/// `pidfd_open(pid, 0)`. The returned descriptor is close-on-exec.
pub(crate) fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: the syscall takes two integers and returns a new descriptor.
    let fd = cvt_long(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`: signals exactly the process the
/// pidfd refers to, never a later process that reused its pid.
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: a NULL siginfo is allowed and means "as kill(2) would".
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })?;
    Ok(())
}

/// `kill(pid, sig)`. Only called for a child that has not been reaped (its pid
/// cannot have been reused) or, with a negative pid, for a process group whose
/// leader has not been reaped.
pub(crate) fn kill(pid: libc::pid_t, sig: i32) -> io::Result<()> {
    // SAFETY: no memory is passed.
    cvt(unsafe { libc::kill(pid, sig) })?;
    Ok(())
}

/// Which process `wait_exit` looks at.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    Pidfd(BorrowedFd<'a>),
    Pid(libc::pid_t),
}

/// `waitid(P_PIDFD or P_PID, WEXITED | WNOHANG [| WNOWAIT], rusage)`: the
/// system call, whose fifth argument (which the C library's wrapper does
/// not offer) receives the process's resource usage.
///
/// Returns `Ok(None)` while the process runs. With `reap == false` the
/// process is left a zombie (`WNOWAIT`), which keeps its pid (and so its
/// process-group id) from being reused.
pub(crate) fn wait_exit(
    target: Target<'_>,
    reap: bool,
    block: bool,
) -> io::Result<Option<(RawExit, RawUsage)>> {
    let (idtype, id) = match target {
        Target::Pidfd(fd) => (libc::P_PIDFD, fd.as_raw_fd() as libc::id_t),
        Target::Pid(pid) => (libc::P_PID, pid as libc::id_t),
    };
    let mut flags = libc::WEXITED;
    if !block {
        flags |= libc::WNOHANG;
    }
    if !reap {
        flags |= libc::WNOWAIT;
    }
    retry(|| {
        // SAFETY: an all-zero siginfo_t is a valid value; the kernel fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: an all-zero rusage is a valid value; the kernel fills it.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `info` and `usage` are valid out pointers for the call.
        cvt_long(unsafe {
            libc::syscall(
                libc::SYS_waitid,
                idtype,
                id,
                &mut info as *mut libc::siginfo_t,
                flags,
                &mut usage as *mut libc::rusage,
            )
        })?;
        // SAFETY: after a successful waitid the pid field is initialised
        // (zero when WNOHANG found nothing to report).
        let pid = unsafe { info.si_pid() };
        if pid == 0 {
            return Ok(None);
        }
        // SAFETY: si_pid != 0, so the kernel filled si_status for a CLD_* code.
        let status = unsafe { info.si_status() };
        let usage = RawUsage {
            user: duration(usage.ru_utime),
            system: duration(usage.ru_stime),
            max_rss_kib: usage.ru_maxrss.max(0) as u64,
        };
        let how = match info.si_code {
            libc::CLD_EXITED => RawExit::Code(status),
            libc::CLD_DUMPED => RawExit::Signal {
                signal: status,
                core_dumped: true,
            },
            _ => RawExit::Signal {
                signal: status,
                core_dumped: false,
            },
        };
        Ok(Some((how, usage)))
    })
}

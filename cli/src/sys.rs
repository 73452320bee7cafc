//! The system calls that the CLI makes itself (the library makes the rest),
//! one safe function each, with descriptors as `BorrowedFd`/`OwnedFd` and
//! errors as `io::Error`.
//!
//! Most are `rustix`'s safe wrappers. Three are `libc` calls, this crate's
//! only `unsafe`: `getpgrp` (as PID 1 of a PID namespace procession's group
//! id is 0, which rustix's non-zero `Pid` cannot hold), `getrlimit` (the
//! resource is the `RLIMIT_` number that the flags carry and the library
//! takes, which rustix's `Resource` enum has no conversion from) and
//! `pidfd_send_signal` (any signal number up to SIGRTMAX must go through,
//! the ones glibc reserves included, which rustix's `Signal` only takes
//! through an `unsafe` constructor).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::Timespec;
pub use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, PidfdFlags, WaitId, WaitIdOptions, WaitOptions};
use rustix::termios::OptionalActions;
pub use rustix::termios::Termios;

/// A process id for rustix: EINVAL for one that is not positive, as the
/// kernel would answer.
fn to_pid(raw: i32) -> io::Result<Pid> {
    let pid = if raw > 0 { Pid::from_raw(raw) } else { None };
    pid.ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `getpid()`: procession's pid.
pub fn getpid() -> i32 {
    rustix::process::getpid().as_raw_nonzero().get()
}

/// `getpgrp()`: the id of procession's process group; 0 when that group
/// is outside procession's PID namespace (procession is its PID 1).
pub fn getpgrp() -> i32 {
    // Not rustix's, which makes a non-zero `Pid` of that 0 (a failed debug
    // assertion, an invalid value in a release build).
    // SAFETY: getpgrp takes nothing and cannot fail.
    unsafe { libc::getpgrp() }
}

/// `setpgid(0, 0)`: makes procession the leader of a new process group.
pub fn setpgid_self() -> io::Result<()> {
    Ok(rustix::process::setpgid(None, None)?)
}

/// `prctl(PR_SET_CHILD_SUBREAPER, 1)`: makes procession a child subreaper.
pub fn set_child_subreaper() -> io::Result<()> {
    // The argument is a flag, any non-zero value sets it: rustix passes
    // the pid given, 1 here as in the C idiom.
    Ok(rustix::process::set_child_subreaper(Some(Pid::INIT))?)
}

/// `getrlimit(resource)`: procession's own (soft, hard) value of the limit
/// `resource` (an `RLIMIT_` number); `RLIM_INFINITY` is `u64::MAX`.
pub fn getrlimit(resource: i32) -> io::Result<(u64, u64)> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit to the valid pointer; an unknown
    // resource is an EINVAL error.
    if unsafe { libc::getrlimit(resource as _, &mut rl) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok((rl.rlim_cur, rl.rlim_max))
}

/// `pidfd_open(pid, 0)`: a pidfd (close-on-exec) for the process `pid`.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    Ok(rustix::process::pidfd_open(
        to_pid(pid)?,
        PidfdFlags::empty(),
    )?)
}

/// `pidfd_send_signal(pidfd, signal, NULL, 0)`: sends the signal numbered
/// `signal` to the process behind `pidfd`.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: pidfd_send_signal takes integers only (the descriptor is
    // borrowed, so open for the call), and a null siginfo, which the kernel
    // then makes itself.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `waitpid(pid, NULL, WNOHANG)`: reaps the child `pid` if it is a zombie;
/// never blocks.
pub fn waitpid_nohang(pid: i32) -> io::Result<()> {
    rustix::process::waitpid(Some(to_pid(pid)?), WaitOptions::NOHANG)?;
    Ok(())
}

/// `waitid(P_PID, pid, WEXITED | WNOHANG | WNOWAIT)`: whether the child
/// `pid` has exited, leaving it unreaped; never blocks.
pub fn waitid_exited(pid: u32) -> io::Result<bool> {
    let pid = to_pid(i32::try_from(pid).unwrap_or(-1))?;
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    // None: no siginfo filled in (si_pid 0), the child has not exited.
    Ok(rustix::process::waitid(WaitId::Pid(pid), options)?.is_some())
}

/// `poll(fds, timeout)` (as `ppoll`): waits until one of `fds` has an event
/// or `timeout` has passed (never with None); how many have events.
pub fn poll(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> io::Result<usize> {
    // A timeout too long for a timespec (hundreds of billions of years) is
    // no timeout.
    let timeout = timeout.and_then(|t| Timespec::try_from(t).ok());
    Ok(rustix::event::poll(fds, timeout.as_ref())?)
}

/// `tcgetattr(fd)`: the settings of the terminal on `fd`.
pub fn tcgetattr(fd: BorrowedFd<'_>) -> io::Result<Termios> {
    Ok(rustix::termios::tcgetattr(fd)?)
}

/// `tcsetattr(fd, TCSANOW, termios)`: changes the settings of the terminal
/// on `fd` at once.
pub fn tcsetattr_now(fd: BorrowedFd<'_>, termios: &Termios) -> io::Result<()> {
    Ok(rustix::termios::tcsetattr(
        fd,
        OptionalActions::Now,
        termios,
    )?)
}

/// `ioctl(fd, TIOCGWINSZ)`: the window size of the terminal on `fd`, as
/// (rows, columns).
pub fn tcgetwinsize(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    let ws = rustix::termios::tcgetwinsize(fd)?;
    Ok((ws.ws_row, ws.ws_col))
}

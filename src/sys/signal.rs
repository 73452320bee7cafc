//! Signal masks and dispositions: `pthread_sigmask(3)`, `sigaction(2)`.

use std::io;

/// The calling thread's signal mask, saved by [`block_all`].
pub(crate) struct SavedMask(libc::sigset_t);

/// `pthread_sigmask(SIG_SETMASK, full set)`: blocks every signal on the
/// calling thread and returns the previous mask. Used around `clone` so that
/// no handler of ours runs in a child that shares our memory.
pub(crate) fn block_all() -> SavedMask {
    // SAFETY: sigset_t is plain data; sigfillset initialises it fully and
    // pthread_sigmask only reads `full` and writes `old`.
    unsafe {
        let mut full: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut full);
        libc::pthread_sigmask(libc::SIG_SETMASK, &full, &mut old);
        SavedMask(old)
    }
}

/// Restores a mask saved by [`block_all`].
pub(crate) fn restore(mask: SavedMask) {
    // SAFETY: `mask.0` was filled by pthread_sigmask; a NULL old set is allowed.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &mask.0, std::ptr::null_mut());
    }
}

/// Runs `write` (a write to a pipe) with SIGPIPE blocked on the calling
/// thread (`pthread_sigmask`), and takes back with a zero-timeout
/// `sigtimedwait` the SIGPIPE a broken pipe raised: the caller gets `EPIPE`
/// and the host process lives on even when its SIGPIPE disposition is the
/// default (a host in C or Python), not only when it ignores SIGPIPE as Rust
/// programs do. A thread that blocks SIGPIPE itself is left as it is.
pub(crate) fn without_sigpipe<T>(write: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before
    // use; pthread_sigmask reads `set` and writes `old`.
    let (set, old) = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        (set, old)
    };
    // SAFETY: `old` was filled by pthread_sigmask.
    if unsafe { libc::sigismember(&old, libc::SIGPIPE) } == 1 {
        return write();
    }
    let result = write();
    if matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EPIPE)) {
        let now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `set` is initialised; a NULL info pointer is allowed.
        // The write raised SIGPIPE on this thread, where it is pending.
        unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &now) };
    }
    // SAFETY: `old` was filled by pthread_sigmask; a NULL old set is allowed.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    result
}

/// `sigaction(sig, NULL, &old)`: whether a handler (not `SIG_DFL`/`SIG_IGN`)
/// is installed for `sig`. Used by tests and checks, never on a hot path.
pub(crate) fn disposition(sig: i32) -> io::Result<Disposition> {
    // SAFETY: `old` is a valid out pointer; a NULL new action only queries.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        super::cvt(libc::sigaction(sig, std::ptr::null(), &mut old))?;
        Ok(match old.sa_sigaction {
            libc::SIG_DFL => Disposition::Default,
            libc::SIG_IGN => Disposition::Ignore,
            _ => Disposition::Handler,
        })
    }
}

/// What a signal does when it arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// `SIG_DFL`: the default action.
    Default,
    /// `SIG_IGN`: discarded.
    Ignore,
    /// A handler function is installed.
    Handler,
}

/// `sigaddset`/`sigemptyset` helpers for the spawn path: the empty set.
pub(crate) fn empty_set() -> libc::sigset_t {
    // SAFETY: sigemptyset fully initialises the set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        set
    }
}

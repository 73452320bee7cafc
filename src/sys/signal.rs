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

//! The controlling terminal: `open("/dev/tty")`, `tcgetpgrp(3)` (the
//! `TIOCGPGRP` ioctl), `getpgrp(2)` and `getsid(2)`.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// The session found to have no controlling terminal (0: none found yet).
static NO_TERMINAL_SESSION: AtomicI32 = AtomicI32::new(0);

/// Whether this process belongs to the foreground process group of its
/// controlling terminal: it was started from an interactive prompt and not
/// sent to the background. `false` without a controlling terminal (a
/// service, a CI job, a process detached with `setsid`).
///
/// Opening `/dev/tty` costs several microseconds, so a session found to
/// have no terminal is remembered: a later call costs one `getsid`. Only a
/// session leader can acquire a terminal, and `setsid` (which makes one)
/// changes the session id, so the answer is looked up again then. (A
/// session leader that opens its first terminal after a spawn without
/// calling `setsid` again keeps the remembered answer.)
pub(crate) fn in_foreground() -> bool {
    // SAFETY: getsid(0) only reads this process's session id.
    let sid = unsafe { libc::getsid(0) };
    if sid > 0 && NO_TERMINAL_SESSION.load(Ordering::Relaxed) == sid {
        return false;
    }
    let tty = match super::fd::open(c"/dev/tty", libc::O_RDONLY | libc::O_NOCTTY, 0) {
        Ok(tty) => tty,
        Err(e) => {
            if e.raw_os_error() == Some(libc::ENXIO) && sid > 0 {
                NO_TERMINAL_SESSION.store(sid, Ordering::Relaxed);
            }
            return false;
        }
    };
    // SAFETY: tcgetpgrp only reads the terminal's foreground group id.
    let fg = unsafe { libc::tcgetpgrp(tty.as_raw_fd()) };
    // SAFETY: getpgrp takes no arguments and cannot fail.
    fg > 0 && fg == unsafe { libc::getpgrp() }
}

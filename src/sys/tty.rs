//! The controlling terminal: `open("/dev/tty")`, `tcgetpgrp(3)` (the
//! `TIOCGPGRP` ioctl) and `getpgrp(2)`.

use std::os::fd::AsRawFd;

/// Whether this process belongs to the foreground process group of its
/// controlling terminal: it was started from an interactive prompt and not
/// sent to the background. `false` without a controlling terminal (a
/// service, a CI job, a process detached with `setsid`).
///
/// One `open` that fails at once (`ENXIO`) without a terminal; `open`,
/// `ioctl`, `getpgrp` and `close` with one.
pub(crate) fn in_foreground() -> bool {
    let Ok(tty) = super::fd::open(c"/dev/tty", libc::O_RDONLY | libc::O_NOCTTY, 0) else {
        return false;
    };
    // SAFETY: tcgetpgrp only reads the terminal's foreground group id.
    let fg = unsafe { libc::tcgetpgrp(tty.as_raw_fd()) };
    // SAFETY: getpgrp takes no arguments and cannot fail.
    fg > 0 && fg == unsafe { libc::getpgrp() }
}

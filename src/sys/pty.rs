//! Pseudo-terminals: `posix_openpt(3)`, `grantpt`/`unlockpt`, the
//! `TIOCGPTPEER` ioctl (the slave, without a path lookup), `tcgetattr(3)`,
//! `tcsetattr(3)` and the `TIOCSWINSZ` / `TIOCSIG` ioctls.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{cvt, retry};

/// Opens a new pseudo-terminal: `(master, slave)`, both close-on-exec and
/// neither becoming this process's controlling terminal (`O_NOCTTY`).
pub(crate) fn open() -> io::Result<(OwnedFd, OwnedFd)> {
    // SAFETY: posix_openpt takes flags only.
    let m = cvt(unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })?;
    // SAFETY: posix_openpt returned a fresh descriptor that we own.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    // SAFETY: grantpt/unlockpt act on the master descriptor only.
    unsafe {
        cvt(libc::grantpt(master.as_raw_fd()))?;
        cvt(libc::unlockpt(master.as_raw_fd()))?;
    }
    // TIOCGPTPEER (Linux 4.13) opens the slave of this very master.
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags as an integer argument.
    let peer = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    let slave = if peer >= 0 {
        // SAFETY: the ioctl returned a fresh descriptor that we own.
        unsafe { OwnedFd::from_raw_fd(peer) }
    } else {
        let mut name = [0 as libc::c_char; 64];
        // SAFETY: `name` is a writable buffer of the length passed.
        let r = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        // SAFETY: ptsname_r wrote a NUL-terminated path into `name`.
        let path = unsafe { CStr::from_ptr(name.as_ptr()) };
        super::fd::open(path, libc::O_RDWR | libc::O_NOCTTY, 0)?
    };
    Ok((master, slave))
}

/// An all-zero `termios` (every flag off, every character disabled).
pub(crate) fn zeroed_termios() -> libc::termios {
    // SAFETY: termios is plain integers and arrays: all-zero is valid.
    unsafe { std::mem::zeroed() }
}

/// `tcgetattr(fd)`.
pub(crate) fn get_attr(fd: BorrowedFd<'_>) -> io::Result<libc::termios> {
    let mut t = zeroed_termios();
    // SAFETY: `t` is a valid termios to write.
    cvt(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) })?;
    Ok(t)
}

/// `tcsetattr(fd, TCSANOW, t)`.
pub(crate) fn set_attr(fd: BorrowedFd<'_>, t: &libc::termios) -> io::Result<()> {
    // SAFETY: `t` is a valid termios that the call only reads.
    retry(|| cvt(unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, t) })).map(|_| ())
}

/// `cfsetispeed` / `cfsetospeed` with a `B…` constant.
pub(crate) fn set_speeds(
    t: &mut libc::termios,
    input: Option<libc::speed_t>,
    output: Option<libc::speed_t>,
) -> io::Result<()> {
    // SAFETY: `t` is a valid termios; the calls only write its speed fields.
    unsafe {
        if let Some(s) = input {
            cvt(libc::cfsetispeed(t, s))?;
        }
        if let Some(s) = output {
            cvt(libc::cfsetospeed(t, s))?;
        }
    }
    Ok(())
}

/// `ioctl(fd, TIOCSWINSZ)`: sets the window size; the kernel sends SIGWINCH
/// to the terminal's foreground process group when it changes.
pub(crate) fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) }).map(|_| ())
}

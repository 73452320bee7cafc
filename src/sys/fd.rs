//! File-descriptor primitives: `open(2)`, `fcntl(2)`, `read(2)`, `write(2)`,
//! `poll(2)` and `eventfd(2)`. Every descriptor created here is `O_CLOEXEC`.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::{cvt, retry};

/// `open(2)` with `O_CLOEXEC` always added.
pub(crate) fn open(path: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    retry(|| {
        // SAFETY: `path` is a valid NUL-terminated string for the duration of
        // the call; `open` does not keep the pointer.
        let fd = cvt(unsafe {
            libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint)
        })?;
        // SAFETY: `open` succeeded, so `fd` is a fresh descriptor we own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })
}

/// `fcntl(F_DUPFD_CLOEXEC, min)`: a close-on-exec duplicate numbered `min` or higher.
pub(crate) fn dup_at_least(fd: BorrowedFd<'_>, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC only reads the descriptor table.
    let new = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) })?;
    // SAFETY: the call returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// `fcntl(F_SETFL)`: turns `O_NONBLOCK` on.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor we borrow; no memory is passed.
    unsafe {
        let flags = cvt(libc::fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
        if flags & libc::O_NONBLOCK == 0 {
            cvt(libc::fcntl(
                fd.as_raw_fd(),
                libc::F_SETFL,
                flags | libc::O_NONBLOCK,
            ))?;
        }
    }
    Ok(())
}

#[cfg(feature = "tokio")]
/// `fcntl(F_SETFL)`: turns `O_NONBLOCK` off (the flag belongs to the open
/// file description, so every copy of the descriptor, a child's too, sees it).
pub(crate) fn set_blocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor we borrow; no memory is passed.
    unsafe {
        let flags = cvt(libc::fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
        if flags & libc::O_NONBLOCK != 0 {
            cvt(libc::fcntl(
                fd.as_raw_fd(),
                libc::F_SETFL,
                flags & !libc::O_NONBLOCK,
            ))?;
        }
    }
    Ok(())
}

/// `read(2)`; `EINTR` is retried, `EAGAIN` is returned as `WouldBlock`.
/// `EIO` is end-of-file: what a pty's master reads once no process holds
/// its terminal side any more (pipes never return it).
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    eio_is_eof(retry(|| {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }))
}

fn eio_is_eof(r: io::Result<usize>) -> io::Result<usize> {
    match r {
        Err(e) if e.raw_os_error() == Some(libc::EIO) => Ok(0),
        other => other,
    }
}

/// `write(2)`, with SIGPIPE held back ([`without_sigpipe`](super::signal::without_sigpipe));
/// `EINTR` is retried, `EAGAIN` is returned as `WouldBlock`.
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // A child's pipe whose reader is gone must give EPIPE, never kill us.
    super::signal::without_sigpipe(|| write_raw(fd, buf))
}

fn write_raw(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    retry(|| {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
        let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    })
}

/// Readiness to wait for with [`poll_one`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Interest {
    Read,
    Write,
}

/// `poll(2)` on one descriptor. Returns `true` when it is ready (or has hung
/// up / failed, which the next read or write reports), `false` on timeout.
/// `EINTR` is retried with the remaining time.
pub(crate) fn poll_one(
    fd: BorrowedFd<'_>,
    interest: Interest,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let events = match interest {
        Interest::Read => libc::POLLIN,
        Interest::Write => libc::POLLOUT,
    };
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // A timeout too long to add waits forever.
    let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => timeout_ms(d.saturating_duration_since(std::time::Instant::now())),
        };
        // SAFETY: `pfd` is a valid pollfd array of length 1.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(n > 0);
    }
}

/// Converts a duration to a poll/epoll millisecond timeout, rounding up so a
/// wait never ends before its deadline.
pub(crate) fn timeout_ms(d: Duration) -> libc::c_int {
    let ms = d.as_nanos().div_ceil(1_000_000);
    ms.min(libc::c_int::MAX as u128) as libc::c_int
}

/// `eventfd(2)` with `EFD_CLOEXEC | EFD_NONBLOCK`: a wakeup counter.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: no pointers are passed.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    // SAFETY: fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds one to an eventfd counter (wakes whoever polls it).
pub(crate) fn eventfd_notify(fd: BorrowedFd<'_>) {
    // EAGAIN (counter saturated) still leaves it readable, so the wakeup is
    // not lost; nothing else can fail on a valid eventfd.
    let _ = write(fd, &1u64.to_ne_bytes());
}

/// Resets an eventfd counter to zero.
pub(crate) fn eventfd_drain(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 8];
    let _ = read(fd, &mut buf);
}

/// `getrlimit(RLIMIT_NOFILE)` soft limit: the highest descriptor number + 1,
/// read once (it only serves kernels without `close_range`).
pub(crate) fn max_fd() -> RawFd {
    static MAX: std::sync::OnceLock<RawFd> = std::sync::OnceLock::new();
    *MAX.get_or_init(read_max_fd)
}

fn read_max_fd() -> RawFd {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid out pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0
        && rl.rlim_cur != libc::RLIM_INFINITY
    {
        rl.rlim_cur.min(RawFd::MAX as libc::rlim_t) as RawFd
    } else {
        1 << 20
    }
}

/// `read(2)` of at most `max` bytes into the spare capacity of `buf`
/// (reserving it first), without zero-filling it. `EINTR` is retried,
/// `EAGAIN` is returned as `WouldBlock`, `EIO` is end-of-file (see
/// [`read`]). Returns the number of bytes added.
pub(crate) fn read_buf(
    fd: BorrowedFd<'_>,
    buf: &mut bytes::BytesMut,
    max: usize,
) -> io::Result<usize> {
    use bytes::BufMut;
    buf.reserve(max);
    let spare = buf.chunk_mut();
    let len = spare.len().min(max);
    let ptr = spare.as_mut_ptr();
    let n = eio_is_eof(retry(|| {
        // SAFETY: `ptr` points to at least `len` bytes of spare capacity
        // owned by `buf`; the kernel only writes into it.
        let n = unsafe { libc::read(fd.as_raw_fd(), ptr.cast(), len) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }))?;
    // SAFETY: the kernel initialised exactly `n <= len` bytes of the spare
    // capacity.
    unsafe { buf.advance_mut(n) };
    Ok(n)
}

/// The bytes waiting in a pipe (either end) or terminal: `ioctl(FIONREAD)`.
pub(crate) fn queued(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the valid pointer `&mut n`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n as *mut libc::c_int) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n.max(0) as usize)
    }
}

/// `poll(2)` on several descriptors at once. Fills each entry's `revents`;
/// returns the number of ready entries (0 on timeout). `EINTR` returns 0.
pub(crate) fn poll_many(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = timeout.map_or(-1, timeout_ms);
    // SAFETY: `fds` is a valid, exclusively borrowed array of pollfd.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(0)
        } else {
            Err(e)
        };
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn timeout_ms_rounds_up_and_saturates() {
        assert_eq!(timeout_ms(Duration::ZERO), 0);
        assert_eq!(timeout_ms(Duration::from_nanos(1)), 1);
        assert_eq!(timeout_ms(Duration::from_millis(1)), 1);
        assert_eq!(timeout_ms(Duration::from_micros(1001)), 2);
        assert_eq!(timeout_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(timeout_ms(Duration::MAX), libc::c_int::MAX);
        assert_eq!(
            timeout_ms(Duration::from_millis(libc::c_int::MAX as u64 + 1)),
            libc::c_int::MAX
        );
    }

    #[test]
    fn max_fd_is_the_soft_descriptor_limit() {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `rl` is a valid out pointer.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
        let want = if rl.rlim_cur == libc::RLIM_INFINITY {
            1 << 20
        } else {
            rl.rlim_cur.min(RawFd::MAX as libc::rlim_t) as RawFd
        };
        assert_eq!(read_max_fd(), want);
        assert_eq!(max_fd(), want);
    }

    #[test]
    fn poll_one_times_out_then_sees_data_and_eventfd_wakes() {
        let efd = eventfd().unwrap();
        // Close-on-exec (no child inherits it) and non-blocking (a drain of
        // an empty counter returns at once).
        // SAFETY: F_GETFD/F_GETFL on a descriptor we own.
        let (fd_flags, fl_flags) = unsafe {
            (
                libc::fcntl(efd.as_raw_fd(), libc::F_GETFD),
                libc::fcntl(efd.as_raw_fd(), libc::F_GETFL),
            )
        };
        assert_ne!(fd_flags & libc::FD_CLOEXEC, 0);
        assert_ne!(fl_flags & libc::O_NONBLOCK, 0);
        eventfd_drain(efd.as_fd());
        // Nothing yet: a 10 ms poll times out.
        assert!(!poll_one(efd.as_fd(), Interest::Read, Some(Duration::from_millis(10))).unwrap());
        eventfd_notify(efd.as_fd());
        eventfd_notify(efd.as_fd());
        assert!(poll_one(efd.as_fd(), Interest::Read, None).unwrap());
        // The counter holds 2; draining resets it to not readable.
        let mut fds = [libc::pollfd {
            fd: efd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        assert_eq!(poll_many(&mut fds, Some(Duration::ZERO)).unwrap(), 1);
        eventfd_drain(efd.as_fd());
        fds[0].revents = 0;
        assert_eq!(poll_many(&mut fds, Some(Duration::ZERO)).unwrap(), 0);
        assert_eq!(fds[0].revents, 0);
    }
}

//! `splice(2)`: moving bytes from a pipe to another descriptor inside the
//! kernel, with no copy through user space.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::retry;

/// `splice(from, NULL, to, NULL, len, SPLICE_F_MOVE | SPLICE_F_MORE)`.
/// `from` must be a pipe. Returns how many bytes
/// moved; 0 is end-of-file on `from` (every writer closed). `EINTR` is
/// retried; SIGPIPE from a broken `to` is held back as for
/// [`write`](super::fd::write), so the caller gets `EPIPE`.
///
/// `EINVAL` means `to` cannot take spliced data (for example a file
/// opened with `O_APPEND`); the caller then copies through a buffer.
/// `EAGAIN` comes from whichever side would block, if that descriptor is
/// itself `O_NONBLOCK` (the flags are hints: neither changes which bytes
/// move or what the call returns).
pub(crate) fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_MORE;
    super::signal::without_sigpipe(|| {
        retry(|| {
            // SAFETY: both descriptors are borrowed for the call; NULL
            // offsets are allowed (the pipe has none, the target's file
            // position is used and advanced); no memory of ours is passed.
            let n = unsafe {
                libc::splice(
                    from.as_raw_fd(),
                    std::ptr::null_mut(),
                    to.as_raw_fd(),
                    std::ptr::null_mut(),
                    len,
                    flags,
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn splice_moves_pipe_bytes_into_a_pipe_and_reports_end_of_file() {
        let (r1, w1) = crate::sys::pipe::pipe().unwrap();
        let (r2, w2) = crate::sys::pipe::pipe().unwrap();
        crate::sys::fd::write(w1.as_fd(), b"hello").unwrap();
        drop(w1);
        assert_eq!(splice(r1.as_fd(), w2.as_fd(), 1 << 20).unwrap(), 5);
        assert_eq!(splice(r1.as_fd(), w2.as_fd(), 1 << 20).unwrap(), 0);
        let mut buf = [0u8; 8];
        assert_eq!(crate::sys::fd::read(r2.as_fd(), &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
    }

    #[test]
    fn splice_into_a_broken_pipe_is_epipe_not_a_signal() {
        let (r1, w1) = crate::sys::pipe::pipe().unwrap();
        let (r2, w2) = crate::sys::pipe::pipe().unwrap();
        drop(r2);
        crate::sys::fd::write(w1.as_fd(), b"x").unwrap();
        let e = splice(r1.as_fd(), w2.as_fd(), 1).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPIPE));
    }
}

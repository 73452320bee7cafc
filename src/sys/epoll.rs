//! `epoll_create1(2)`, `epoll_ctl(2)`, `epoll_wait(2)`: the reaper's event loop.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::cvt;

/// An epoll instance (close-on-exec).
pub(crate) struct Epoll(OwnedFd);

/// One readiness report: the token given to [`Epoll::add`].
pub(crate) type Token = u64;

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`.
    pub(crate) fn new() -> io::Result<Epoll> {
        // SAFETY: no pointers are passed.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: fresh descriptor owned by nobody else.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// `epoll_ctl(EPOLL_CTL_ADD, fd, EPOLLIN [| EPOLLONESHOT])` with `token`
    /// as the user data. `oneshot` reports readiness once, which suits a
    /// pidfd: it becomes readable at exit and stays so until reaped.
    pub(crate) fn add(&self, fd: BorrowedFd<'_>, token: Token, oneshot: bool) -> io::Result<()> {
        let mut events = libc::EPOLLIN;
        if oneshot {
            events |= libc::EPOLLONESHOT;
        }
        let mut ev = libc::epoll_event {
            events: events as u32,
            u64: token,
        };
        // SAFETY: `ev` is valid for the duration of the call; the kernel copies it.
        cvt(unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            )
        })?;
        Ok(())
    }

    /// `epoll_ctl(EPOLL_CTL_DEL, fd)`.
    pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        // SAFETY: a NULL event is allowed for EPOLL_CTL_DEL since Linux 2.6.9.
        cvt(unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd.as_raw_fd(),
                std::ptr::null_mut(),
            )
        })?;
        Ok(())
    }

    /// `epoll_wait(2)`: fills `out` with the tokens of ready descriptors and
    /// returns how many; `None` waits without a time limit. `EINTR` returns 0.
    pub(crate) fn wait(&self, out: &mut [Token], timeout: Option<Duration>) -> io::Result<usize> {
        const MAX: usize = 64;
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; MAX];
        let n = out.len().min(MAX);
        let ms = timeout.map_or(-1, super::fd::timeout_ms);
        // SAFETY: `evs` has room for `n` events.
        let got =
            unsafe { libc::epoll_wait(self.0.as_raw_fd(), evs.as_mut_ptr(), n as libc::c_int, ms) };
        if got < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            };
        }
        let got = got as usize;
        for (slot, ev) in out.iter_mut().zip(evs.iter()).take(got) {
            *slot = ev.u64;
        }
        Ok(got)
    }
}

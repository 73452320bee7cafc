//! Registration of descriptors with tokio's reactor (`epoll_ctl` inside
//! tokio), feature `tokio`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// An owner of a descriptor, lent to the reactor: it keeps the descriptor
/// open for as long as the registration exists.
#[derive(Debug)]
pub(crate) struct Lent<T: AsFd>(pub(crate) T);

impl<T: AsFd> AsRawFd for Lent<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Registers `owner`'s descriptor with the current runtime's reactor for
/// `interest`. `owner` must always return the same descriptor from `as_fd`
/// (true of `OwnedFd` and of the pidfd holder that uses this).
///
/// Panics, as tokio does, outside a runtime: callers check first.
pub(crate) fn register<T: AsFd>(owner: T, interest: Interest) -> io::Result<AsyncFd<Lent<T>>> {
    // SAFETY: the descriptor belongs to `owner`, which the `AsyncFd` owns:
    // it is open for the whole life of the registration, and `owner`
    // returns the same descriptor on every call (the contract above).
    unsafe { AsyncFd::register_with_interest(Lent(owner), interest) }.map_err(io::Error::from)
}

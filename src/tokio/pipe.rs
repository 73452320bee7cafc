//! The parent's pipe ends registered with the tokio runtime.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

use crate::engine::process::IoCounters;
use crate::sys::fd;
use crate::sys::reactor::{self, Lent};

/// A non-blocking descriptor registered with the runtime's reactor.
#[derive(Debug)]
pub(crate) struct Registered(pub(crate) AsyncFd<Lent<OwnedFd>>);

impl Registered {
    /// Registers `fd` (already non-blocking) with the current runtime.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<Registered> {
        reactor::register(fd, Interest::READABLE | Interest::WRITABLE).map(Registered)
    }

    /// One read of at most `max` bytes once readable: `None` at end of file.
    /// Cancel-safe: the data is taken in the same poll that returns it.
    pub(crate) fn poll_read_chunk(
        &self,
        cx: &mut Context<'_>,
        max: usize,
    ) -> Poll<io::Result<Option<Bytes>>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let mut buf = BytesMut::new();
            match guard.try_io(|inner| fd::read_buf(inner.get_ref().0.as_fd(), &mut buf, max)) {
                Ok(Ok(0)) => return Poll::Ready(Ok(None)),
                Ok(Ok(_)) => return Poll::Ready(Ok(Some(buf.freeze()))),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_read_into(&self, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = out.initialize_unfilled();
            match guard.try_io(|inner| fd::read(inner.get_ref().0.as_fd(), unfilled)) {
                Ok(Ok(n)) => {
                    out.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }

    pub(crate) fn poll_write_bytes(
        &self,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            match guard.try_io(|inner| fd::write(inner.get_ref().0.as_fd(), data)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsFd for Registered {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.get_ref().0.as_fd()
    }
}

macro_rules! async_end {
    ($(#[$doc:meta])* $name:ident, $stream:literal $({ $($extra:tt)* })?) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            pub(crate) fd: Registered,
            /// The child's byte counters.
            pub(crate) io: Arc<IoCounters>,
            $($($extra)*)?
        }

        impl $name {
            /// Counts `n` bytes through this end.
            pub(crate) fn count(&self, n: usize) {
                self.io.add($stream, n);
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.fd.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.as_fd().as_raw_fd()
            }
        }
    };
}

async_end! {
    /// The write end of a child's stdin pipe, for tokio (`AsyncWrite`).
    /// Dropping it closes the pipe: the child reads end-of-file.
    AsyncChildStdin, 0 {
        /// On a pty child's stdin: the end-of-file character typed when
        /// this end is dropped.
        pub(crate) eof: Option<crate::engine::terminal::EofOnClose>,
    }
}

async_end! {
    /// The read end of a child's stdout pipe, for tokio (`AsyncRead`).
    AsyncChildStdout, 1
}

async_end! {
    /// The read end of a child's stderr pipe, for tokio (`AsyncRead`).
    AsyncChildStderr, 2
}

impl AsyncWrite for AsyncChildStdin {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = std::task::ready!(self.fd.poll_write_bytes(cx, buf))?;
        self.count(n);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for AsyncChildStdout {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        std::task::ready!(self.fd.poll_read_into(cx, buf))?;
        self.count(buf.filled().len() - before);
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for AsyncChildStderr {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        std::task::ready!(self.fd.poll_read_into(cx, buf))?;
        self.count(buf.filled().len() - before);
        Poll::Ready(Ok(()))
    }
}

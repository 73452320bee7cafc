//! The parent's ends of a child's pipes: [`ChildStdin`], [`ChildStdout`],
//! [`ChildStderr`].
//!
//! A [`Child`](crate::Child)'s pipe ends are blocking, as in `std`, so a
//! `read` or `write` is one system call. Ends that a driver multiplexes are
//! non-blocking; `Read` and `Write` here block as usual either way: on
//! `EAGAIN` they wait in `poll(2)` for readiness and try again.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;

use crate::engine::process::IoCounters;

use crate::engine::terminal::EofOnClose;
use crate::sys::fd::{self, Interest};

fn read_blocking(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match fd::read(fd, buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                fd::poll_one(fd, Interest::Read, None)?;
            }
            other => return other,
        }
    }
}

fn write_blocking(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    loop {
        match fd::write(fd, buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                fd::poll_one(fd, Interest::Write, None)?;
            }
            other => return other,
        }
    }
}

/// A pipe end that counts the bytes through it (for `info()`).
pub(crate) trait Counted {
    /// Adds `n` bytes to the child's counter for this stream.
    fn count(&self, n: usize);
}

macro_rules! pipe_end {
    ($(#[$doc:meta])* $name:ident, $stream:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            fd: OwnedFd,
            /// On a pty child's stdin: the end-of-file character typed
            /// when this end is dropped.
            eof: Option<EofOnClose>,
            /// The child's byte counters.
            io: Option<Arc<IoCounters>>,
        }

        impl $name {
            pub(crate) fn new(fd: OwnedFd) -> $name {
                $name { fd, eof: None, io: None }
            }

            /// Counts the bytes through this end in `io`.
            pub(crate) fn counted(mut self, io: &Arc<IoCounters>) -> $name {
                self.io = Some(io.clone());
                self
            }
        }

        impl Counted for $name {
            fn count(&self, n: usize) {
                if let Some(io) = &self.io {
                    io.add($stream, n);
                }
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.fd.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.as_raw_fd()
            }
        }

        impl From<$name> for OwnedFd {
            /// The descriptor. (On a pty, closing it types nothing: the
            /// descriptor is yours.)
            fn from(p: $name) -> OwnedFd {
                if let Some(eof) = p.eof {
                    eof.disarm();
                }
                p.fd
            }
        }
    };
}

pipe_end! {
    /// The write end of a child's stdin pipe. Dropping it closes the pipe, so
    /// the child reads end-of-file.
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// use std::io::{Read, Write};
    /// let mut child = Command::new("tr").arg("a-z").arg("A-Z")
    ///     .stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    /// child.stdin.as_mut().unwrap().write_all(b"shout\n")?;
    /// child.close_stdin();
    /// let mut out = String::new();
    /// child.stdout.as_mut().unwrap().read_to_string(&mut out)?;
    /// assert_eq!(out, "SHOUT\n");
    /// # child.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ChildStdin, 0
}

pipe_end! {
    /// The read end of a child's stdout pipe.
    ChildStdout, 1
}

pipe_end! {
    /// The read end of a child's stderr pipe.
    ChildStderr, 2
}

impl ChildStdin {
    /// The input of a pty child: dropping it types `eof`.
    pub(crate) fn with_eof(fd: OwnedFd, eof: Option<EofOnClose>) -> ChildStdin {
        ChildStdin {
            eof,
            ..ChildStdin::new(fd)
        }
    }
}

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = write_blocking(self.fd.as_fd(), buf)?;
        self.count(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for ChildStdout {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = read_blocking(self.fd.as_fd(), buf)?;
        self.count(n);
        Ok(n)
    }
}

impl Read for ChildStderr {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = read_blocking(self.fd.as_fd(), buf)?;
        self.count(n);
        Ok(n)
    }
}

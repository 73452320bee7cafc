//! Forwarding: everything a pipe carries, moved into another descriptor (a
//! file, a socket, another pipe) with `splice(2)` when the kernel allows it,
//! and through a buffer (`read` + `write`) when it does not.
//!
//! [`Forwarder::step`] never waits by itself when the descriptors are
//! non-blocking; it says which side would block, so the blocking API polls
//! that side and the async API waits for its readiness.

use std::io;
use std::os::fd::BorrowedFd;

use crate::sys::fd::{self, Interest};
use crate::sys::splice::splice;

/// The most one `splice` moves: the default pipe capacity, so one call
/// empties a full pipe.
pub(crate) const SPLICE_CHUNK: usize = 1 << 20;

/// The buffer of the read/write fallback.
const COPY_BUFFER: usize = 1 << 20;

/// Which descriptor an operation waits for or failed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// The pipe being drained.
    From,
    /// The sink.
    To,
}

impl Side {
    /// The readiness to wait for on this side.
    pub(crate) fn interest(self) -> Interest {
        match self {
            Side::From => Interest::Read,
            Side::To => Interest::Write,
        }
    }
}

/// The result of one step.
#[derive(Debug)]
pub(crate) enum Moved {
    /// This many bytes reached the sink (at least one).
    Bytes(usize),
    /// The pipe reached end-of-file and nothing is pending.
    Eof,
    /// Nothing could move without waiting for this side.
    Blocked(Side),
}

/// An error of one step, with the side it came from.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) error: io::Error,
    pub(crate) side: Side,
}

/// The state of one forwarding: the method in use and, for the fallback,
/// the bytes read but not yet written.
#[derive(Debug)]
pub(crate) struct Forwarder {
    splice: bool,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    moved: u64,
    spliced: u64,
}

impl Forwarder {
    /// A forwarding that tries `splice` first when `splice` is true, and
    /// only copies otherwise.
    pub(crate) fn new(splice: bool) -> Forwarder {
        Forwarder {
            splice,
            buf: Vec::new(),
            start: 0,
            end: 0,
            moved: 0,
            spliced: 0,
        }
    }

    /// Bytes that reached the sink so far.
    pub(crate) fn moved(&self) -> u64 {
        self.moved
    }

    /// Of those, the bytes moved by `splice`.
    pub(crate) fn spliced(&self) -> u64 {
        self.spliced
    }

    /// Moves what it can without waiting (with non-blocking descriptors;
    /// a blocking descriptor blocks in its system call as usual).
    pub(crate) fn step(
        &mut self,
        from: BorrowedFd<'_>,
        to: BorrowedFd<'_>,
    ) -> Result<Moved, Failed> {
        if self.splice {
            match splice(from, to, SPLICE_CHUNK, false) {
                Ok(0) => return Ok(Moved::Eof),
                Ok(n) => {
                    self.moved += n as u64;
                    self.spliced += n as u64;
                    return Ok(Moved::Bytes(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The pipe holding data means the sink is the one that is full.
                    let side = match fd::queued(from) {
                        Ok(n) if n > 0 => Side::To,
                        _ => Side::From,
                    };
                    return Ok(Moved::Blocked(side));
                }
                // The sink (or the source, when it is not a pipe) does not
                // support splice: copy from now on.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                    self.splice = false;
                }
                Err(error) => {
                    return Err(Failed {
                        error,
                        side: Side::To,
                    });
                }
            }
        }
        self.copy_step(from, to)
    }

    fn copy_step(&mut self, from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<Moved, Failed> {
        if self.start == self.end {
            if self.buf.is_empty() {
                self.buf = vec![0; COPY_BUFFER];
            }
            match fd::read(from, &mut self.buf) {
                Ok(0) => return Ok(Moved::Eof),
                Ok(n) => (self.start, self.end) = (0, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Moved::Blocked(Side::From));
                }
                Err(error) => {
                    return Err(Failed {
                        error,
                        side: Side::From,
                    });
                }
            }
        }
        match fd::write(to, &self.buf[self.start..self.end]) {
            Ok(0) => Err(Failed {
                error: io::Error::from(io::ErrorKind::WriteZero),
                side: Side::To,
            }),
            Ok(n) => {
                self.start += n;
                self.moved += n as u64;
                Ok(Moved::Bytes(n))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Moved::Blocked(Side::To)),
            Err(error) => Err(Failed {
                error,
                side: Side::To,
            }),
        }
    }

    /// Moves everything until end-of-file, waiting in `poll(2)` for the
    /// side that blocks. `count` is told of every move.
    pub(crate) fn run_blocking(
        &mut self,
        from: BorrowedFd<'_>,
        to: BorrowedFd<'_>,
        mut count: impl FnMut(usize),
    ) -> Result<(), Failed> {
        loop {
            match self.step(from, to)? {
                Moved::Bytes(n) => count(n),
                Moved::Eof => return Ok(()),
                Moved::Blocked(side) => {
                    let fd = if side == Side::From { from } else { to };
                    fd::poll_one(fd, side.interest(), None)
                        .map_err(|error| Failed { error, side })?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn run(splice: bool, sink: &std::fs::File) -> (u64, u64) {
        let (r, w) = crate::sys::pipe::pipe().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let data = data.clone();
            std::thread::spawn(move || {
                let mut off = 0;
                while off < data.len() {
                    off += crate::sys::fd::write(w.as_fd(), &data[off..]).unwrap();
                }
            })
        };
        let mut f = Forwarder::new(splice);
        f.run_blocking(r.as_fd(), sink.as_fd(), |_| {}).unwrap();
        writer.join().unwrap();
        (f.moved(), f.spliced())
    }

    #[test]
    fn forwards_every_byte_by_splice_or_by_copy() {
        let dir = std::env::temp_dir();
        for (splice, append) in [(true, false), (false, false), (true, true)] {
            let path = dir.join(format!(
                "procession-fwd-unit-{}-{splice}-{append}",
                std::process::id()
            ));
            std::fs::write(&path, b"").unwrap();
            let file = std::fs::OpenOptions::new()
                .write(true)
                .append(append)
                .open(&path)
                .unwrap();
            let (moved, spliced) = run(splice, &file);
            assert_eq!(moved, 300_000);
            // An O_APPEND file refuses splice: everything was copied.
            let expect_spliced = if splice && !append { 300_000 } else { 0 };
            assert_eq!(spliced, expect_spliced, "splice {splice} append {append}");
            let back = std::fs::read(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            assert!(back.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
            assert_eq!(back.len(), 300_000);
        }
    }
}

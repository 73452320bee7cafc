//! The streaming state machine: stdin feeding, demand-driven reads of stdout
//! and stderr, exit and drain handling. It performs only non-blocking I/O
//! and never waits: [`Driver::step`] does what the given readiness allows and
//! returns either an output chunk, the end, or the [`Interest`] to wait for.
//! The blocking driver waits with `poll(2)` on the consumer's thread
//! ([`Driver::next_blocking`]); an async driver waits on its runtime's
//! readiness instead.
//!
//! # Memory bound
//!
//! The driver holds at most one input chunk that the pipe has not taken yet,
//! the read buffer (whose filled part is handed to the consumer as soon as a
//! read returns), and, in tail mode, at most [`STDERR_TAIL`] bytes of stderr.
//! Nothing is read from the child unless the consumer asked for the next
//! item, so the kernel pipe is the only other buffer and a slow consumer
//! blocks the child in `write`.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use super::process::Process;
use super::reaper;
use crate::error::{Error, Step};
use crate::input::{InputSink, Source};
use crate::status::Ended;
use crate::sys::fd;
use crate::{ChildStdin, ExitStatus};

/// How many bytes of stderr a checked stream keeps for its error message.
pub(crate) const STDERR_TAIL: usize = 8 * 1024;

/// One output chunk.
#[derive(Debug)]
pub(crate) enum Chunk {
    Stdout(Bytes),
    Stderr(Bytes),
}

/// What to do with a piped stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StderrMode {
    /// Hand each chunk to the consumer.
    Events,
    /// Keep the last [`STDERR_TAIL`] bytes for the error message.
    Tail,
}

/// Which of the driver's descriptors are ready (or may be: a spurious
/// readiness costs one `EAGAIN`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ready {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub exit: bool,
}

impl Ready {
    pub(crate) const ALL: Ready = Ready {
        stdin: true,
        stdout: true,
        stderr: true,
        exit: true,
    };
}

/// What the driver waits for before the next [`Driver::step`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Interest {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// The child's exit (the pidfd becoming readable).
    pub exit: bool,
    /// Step again at this instant even if nothing is ready.
    pub deadline: Option<Instant>,
}

/// The result of one [`Driver::step`].
#[derive(Debug)]
pub(crate) enum Progress {
    Data(Chunk),
    /// Output is over and the child has exited.
    Done(ExitStatus),
    Pending(Interest),
}

/// Options for a streaming run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Options {
    pub max_chunk: usize,
    pub ignore_epipe: bool,
    pub exit_timeout: Duration,
    pub drain_timeout: Duration,
    pub stderr_mode: StderrMode,
}

/// A streaming run of one child.
pub(crate) struct Driver {
    process: Arc<Process>,
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    source: Option<Source>,
    pending: Bytes,
    feeder: Option<JoinHandle<std::io::Result<()>>>,
    opts: Options,
    buf: BytesMut,
    tail: BytesMut,
    /// The first I/O error on stdin (broken pipe unless ignored, or a failing
    /// input source), reported when the stream ends.
    input_error: Option<Error>,
    status: Option<ExitStatus>,
    exited_at: Option<Instant>,
    /// The next deadline of the process's own state machine (timeout, stop).
    process_deadline: Option<Instant>,
    prefer_stderr: bool,
    finished: bool,
    high_water: usize,
}

impl Driver {
    pub(crate) fn new(
        process: Arc<Process>,
        stdin: Option<OwnedFd>,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
        source: Option<Source>,
        opts: Options,
    ) -> Driver {
        let mut driver = Driver {
            process,
            stdin,
            stdout,
            stderr,
            source: None,
            pending: Bytes::new(),
            feeder: None,
            opts,
            buf: BytesMut::new(),
            tail: BytesMut::new(),
            input_error: None,
            status: None,
            exited_at: None,
            process_deadline: None,
            prefer_stderr: false,
            finished: false,
            high_water: 0,
        };
        match source {
            Some(Source::Callback(f)) => {
                // The callback writes with blocking writes of its own, so it
                // runs on a helper thread that owns the stdin pipe.
                if let Some(fd) = driver.stdin.take() {
                    let spawned = std::thread::Builder::new()
                        .name("procession-input".into())
                        .spawn(move || f(&mut InputSink::new(ChildStdin::new(fd))));
                    match spawned {
                        Ok(h) => driver.feeder = Some(h),
                        Err(e) => {
                            driver.input_error = Some(Error::os(driver.program(), Step::Write, e))
                        }
                    }
                }
            }
            Some(s) => driver.source = Some(s),
            // No source but a stdin pipe: nothing to send, close it now.
            None => driver.stdin = None,
        }
        driver
    }

    fn program(&self) -> &std::ffi::OsStr {
        self.process.program()
    }

    pub(crate) fn program_name(&self) -> &std::ffi::OsStr {
        self.process.program()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid() as u32
    }

    /// The most bytes the driver held at once (pending input, unreturned read
    /// buffer, stderr tail).
    pub(crate) fn high_water(&self) -> usize {
        self.high_water
    }

    fn note_buffered(&mut self) {
        let now = self.pending.len() + self.buf.len() + self.tail.len();
        self.high_water = self.high_water.max(now);
    }

    pub(crate) fn stderr_tail(&self) -> &[u8] {
        &self.tail
    }

    /// Writes input while the pipe takes it, pulling one chunk at a time.
    /// Each call writes at most about `max_chunk` bytes, so that a source of
    /// tiny chunks cannot delay the reads of output behind a pipe-full of
    /// small writes.
    fn feed(&mut self) {
        let mut budget = self.opts.max_chunk.max(4096);
        while budget > 0 {
            if self.stdin.is_none() {
                return;
            }
            if self.pending.is_empty() {
                let next = match self.source.as_mut() {
                    Some(s) => s.next_chunk(self.opts.max_chunk),
                    None => None,
                };
                match next {
                    Some(Ok(chunk)) => {
                        self.pending = chunk;
                        self.note_buffered();
                    }
                    Some(Err(e)) => {
                        self.input_error = Some(
                            Error::os(self.program(), Step::Write, e)
                                .with_detail("reading the input"),
                        );
                        self.end_input();
                        return;
                    }
                    None => {
                        // Input used up: close stdin so the child sees EOF.
                        self.end_input();
                        return;
                    }
                }
            }
            let Some(stdin) = self.stdin.as_ref() else {
                return;
            };
            match fd::write(stdin.as_fd(), &self.pending) {
                Ok(n) => {
                    self.pending.advance(n);
                    budget = budget.saturating_sub(n.max(1));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    let epipe = e.kind() == std::io::ErrorKind::BrokenPipe;
                    if !(epipe && self.opts.ignore_epipe) && self.input_error.is_none() {
                        self.input_error = Some(Error::os(self.program(), Step::Write, e));
                    }
                    self.end_input();
                    return;
                }
            }
        }
    }

    fn end_input(&mut self) {
        self.stdin = None;
        self.source = None;
        self.pending = Bytes::new();
    }

    /// Reads one chunk from stdout (`err == false`) or stderr.
    /// `Ok(None)`: nothing available now. End of file closes the descriptor.
    fn read_one(&mut self, err: bool) -> Result<Option<Bytes>, Error> {
        let slot = if err {
            &mut self.stderr
        } else {
            &mut self.stdout
        };
        let Some(f) = slot.as_ref() else {
            return Ok(None);
        };
        match fd::read_buf(f.as_fd(), &mut self.buf, self.opts.max_chunk) {
            Ok(0) => {
                *slot = None;
                Ok(None)
            }
            Ok(n) => {
                let now = self.pending.len() + n + self.tail.len();
                self.high_water = self.high_water.max(now);
                Ok(Some(self.buf.split_to(n).freeze()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => {
                *slot = None;
                Err(Error::os(self.program(), Step::Read, e))
            }
        }
    }

    fn keep_tail(&mut self, chunk: &[u8]) {
        self.tail.extend_from_slice(chunk);
        if self.tail.len() > STDERR_TAIL {
            let cut = self.tail.len() - STDERR_TAIL;
            self.tail.advance(cut);
        }
    }

    /// Does what `ready` allows without blocking. See the module docs.
    pub(crate) fn step(&mut self, ready: Ready, now: Instant) -> Result<Progress, Error> {
        if ready.stdin && self.stdin.is_some() {
            self.feed();
        }
        // Alternate which stream goes first, so neither starves the other.
        let order = if self.prefer_stderr {
            [true, false]
        } else {
            [false, true]
        };
        for err in order {
            let is_ready = if err { ready.stderr } else { ready.stdout };
            if !is_ready {
                continue;
            }
            while let Some(chunk) = self.read_one(err)? {
                if !err {
                    self.prefer_stderr = true;
                    return Ok(Progress::Data(Chunk::Stdout(chunk)));
                }
                self.prefer_stderr = false;
                match self.opts.stderr_mode {
                    StderrMode::Events => return Ok(Progress::Data(Chunk::Stderr(chunk))),
                    // The tail is ours, not the consumer's: keep reading.
                    StderrMode::Tail => self.keep_tail(&chunk),
                }
            }
        }
        if self.status.is_none()
            && (ready.exit
                || (self.stdout.is_none() && self.stderr.is_none())
                || self.process_deadline.is_some_and(|d| now >= d))
        {
            let p = self.process.advance(now);
            self.process_deadline = p.next;
            self.status = self.process.try_wait()?;
            if self.exited_at.is_none() && self.process.exit_seen() {
                self.exited_at = Some(now);
            }
        }
        if self.stdout.is_none() && self.stderr.is_none() {
            if let Some(st) = self.status {
                return Ok(Progress::Done(st));
            }
        } else if let Some(t) = self.exited_at {
            // The child is gone but something (a descendant) keeps the pipes
            // open. Past the drain deadline, end once nothing is waiting in
            // them: what the child wrote is never cut off.
            let deadline = t + self.opts.drain_timeout;
            if now >= deadline && !ready.stdout && !ready.stderr {
                self.stdout = None;
                self.stderr = None;
                if let Some(st) = self.status {
                    return Ok(Progress::Done(st));
                }
            }
        }
        let drain = self.exited_at.map(|t| t + self.opts.drain_timeout);
        let deadline = match (self.process_deadline, drain) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(Progress::Pending(Interest {
            stdin: self.stdin.is_some(),
            stdout: self.stdout.is_some(),
            stderr: self.stderr.is_some(),
            // The pidfd stays readable after the exit, so it is only worth
            // waiting on until the exit is seen; the rest (group cleanup)
            // has deadlines.
            exit: self.exited_at.is_none(),
            deadline,
        }))
    }

    /// The error to report at the end of the run, if any: a failed input.
    pub(crate) fn take_input_error(&mut self) -> Option<Error> {
        if let Some(e) = self.input_error.take() {
            return Some(e);
        }
        // A callback's result, if it is over; a callback still running is
        // left alone (it holds the only stdin end and ends on EPIPE).
        if self.feeder.as_ref().is_some_and(|h| h.is_finished()) {
            let result = self.feeder.take().map(|h| h.join());
            match result {
                Some(Ok(Err(e)))
                    if !(e.kind() == std::io::ErrorKind::BrokenPipe && self.opts.ignore_epipe) =>
                {
                    return Some(
                        Error::os(self.program(), Step::Write, e)
                            .with_detail("the input callback failed"),
                    );
                }
                Some(Err(_)) => {
                    return Some(Error::new(
                        self.program(),
                        Step::Write,
                        crate::ErrorKind::Os,
                        Some("the input callback panicked".into()),
                        None,
                    ));
                }
                _ => {}
            }
        }
        None
    }

    /// Blocks on the consumer's thread until the next chunk or the end.
    pub(crate) fn next_blocking(&mut self) -> Result<Progress, Error> {
        let mut ready = Ready::ALL;
        loop {
            match self.step(ready, Instant::now())? {
                Progress::Pending(interest) => ready = self.wait(interest)?,
                done_or_data => {
                    if let Progress::Done(_) = done_or_data {
                        self.finished = true;
                    }
                    return Ok(done_or_data);
                }
            }
        }
    }

    /// `poll(2)` for `interest`.
    fn wait(&self, interest: Interest) -> Result<Ready, Error> {
        let mut fds = [libc::pollfd {
            fd: -1,
            events: 0,
            revents: 0,
        }; 4];
        let slots: [(Option<&OwnedFd>, bool, libc::c_short); 4] = [
            (self.stdin.as_ref(), interest.stdin, libc::POLLOUT),
            (self.stdout.as_ref(), interest.stdout, libc::POLLIN),
            (self.stderr.as_ref(), interest.stderr, libc::POLLIN),
            (None, false, libc::POLLIN),
        ];
        let pidfd = if interest.exit {
            self.process.pidfd()
        } else {
            None
        };
        let mut timeout = interest
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()));
        if interest.exit && pidfd.is_none() {
            // No pidfd (old kernel): look at the child every few milliseconds.
            let poll = Duration::from_millis(5);
            timeout = Some(timeout.map_or(poll, |t| t.min(poll)));
        }
        for (i, (f, wanted, ev)) in slots.iter().enumerate() {
            if let (Some(f), true) = (f, wanted) {
                fds[i] = libc::pollfd {
                    fd: std::os::fd::AsRawFd::as_raw_fd(*f),
                    events: *ev,
                    revents: 0,
                };
            }
        }
        if let Some(p) = pidfd {
            fds[3] = libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(&p),
                events: libc::POLLIN,
                revents: 0,
            };
        }
        fd::poll_many(&mut fds, timeout).map_err(|e| Error::os(self.program(), Step::Wait, e))?;
        let hit = |i: usize| fds[i].fd >= 0 && fds[i].revents != 0;
        Ok(Ready {
            stdin: hit(0),
            stdout: hit(1),
            stderr: hit(2),
            exit: hit(3) || (interest.exit && pidfd.is_none()),
        })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.finished || self.status.is_some() {
            return;
        }
        // Dropped before the end: close our ends, give the child
        // `exit_timeout` to exit by itself, then the stop sequence. The
        // reaper does the waiting; the consumer goes on at once.
        self.end_input();
        self.stdout = None;
        self.stderr = None;
        self.process
            .stop_after(self.opts.exit_timeout, Ended::Stopped);
        reaper::adopt(self.process.clone());
    }
}

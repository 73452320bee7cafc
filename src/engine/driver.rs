//! The streaming state machine: stdin feeding, demand-driven reads of stdout
//! and stderr, exit and drain handling. It performs only non-blocking I/O
//! and never waits: [`Driver::step`] does what the given readiness allows and
//! returns either an output chunk, the end, or the [`Interest`] to wait for.
//! The blocking driver waits with `poll(2)` on the consumer's thread
//! ([`Driver::next_blocking`]); the tokio driver (`crate::tokio`) waits on
//! the runtime's readiness instead. Both run this same state machine, which
//! is generic over how a pipe end is held (`F: AsFd`: a plain `OwnedFd`, or
//! one registered with a runtime).
//!
//! # Memory bound
//!
//! The driver holds at most one input chunk that the pipe has not taken yet,
//! the read buffer (whose filled part is handed to the consumer as soon as a
//! read returns), and, in tail mode, at most [`STDERR_TAIL`] bytes of stderr.
//! Nothing is read from the child unless the consumer asked for the next
//! item, so the kernel pipe is the only other buffer and a slow consumer
//! blocks the child in `write`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use super::process::Process;
use super::reaper;
use super::terminal::EofOnClose;
use crate::ExitStatus;
use crate::error::{Error, Step};
use crate::input::{InputThread, Source};
use crate::status::Ended;
use crate::sys::fd;

/// The most `write` calls one [`Driver::step`] makes into stdin.
const FEED_WRITES: usize = 32;

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

/// Where the child's input comes from.
pub(crate) enum Feed {
    /// No input: a stdin pipe, if any, is closed at once.
    Nothing,
    /// The driver pulls chunks from this source while stdin is writable.
    Pull(Source),
    /// The caller pushes chunks with [`Driver::push_input`] when
    /// [`Driver::wants_input`] (async sources, polled by the async driver).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))] // used by the tokio driver
    Push,
    /// Another thread owns stdin and writes to it (a callback); its result
    /// is reported at the end.
    Thread(InputThread),
}

/// Options for a streaming run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Options {
    pub max_chunk: usize,
    pub ignore_epipe: bool,
    pub drop_timeout: Duration,
    pub drain_timeout: Duration,
    pub stderr_mode: StderrMode,
    /// `Command::max_output`: the most bytes a collecting helper keeps of
    /// each stream.
    pub max_output: Option<usize>,
}

/// A streaming run of one child.
pub(crate) struct Driver<F: AsFd = OwnedFd> {
    process: Arc<Process>,
    stdin: Option<F>,
    stdout: Option<F>,
    stderr: Option<F>,
    feed: Feed,
    pending: Bytes,
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
    /// The descriptors whose I/O returned `EAGAIN` in the last step.
    blocked: Ready,
    /// On a pty: the end-of-file character typed when the input ends.
    stdin_eof: Option<EofOnClose>,
}

impl<F: AsFd> Driver<F> {
    pub(crate) fn new(
        process: Arc<Process>,
        stdin: Option<F>,
        stdout: Option<F>,
        stderr: Option<F>,
        feed: Feed,
        opts: Options,
    ) -> Driver<F> {
        // Without a source to pull or push, nothing will ever be written:
        // close stdin now so the child sees end-of-file.
        let stdin = match feed {
            Feed::Pull(_) | Feed::Push => stdin,
            Feed::Nothing | Feed::Thread(_) => None,
        };
        Driver {
            process,
            stdin,
            stdout,
            stderr,
            feed,
            pending: Bytes::new(),
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
            blocked: Ready::default(),
            stdin_eof: None,
        }
    }

    /// For a pty child: what closing the input types (at once if the input
    /// is already closed).
    pub(crate) fn with_input_eof(mut self, eof: Option<EofOnClose>) -> Driver<F> {
        if self.stdin.is_some() {
            self.stdin_eof = eof;
        }
        self
    }

    /// The descriptors whose I/O returned `EAGAIN` during the last
    /// [`step`](Driver::step): an edge-triggered waiter may clear their
    /// readiness.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))] // used by the tokio driver
    pub(crate) fn blocked(&self) -> Ready {
        self.blocked
    }

    #[cfg_attr(not(feature = "tokio"), allow(dead_code))] // used by the tokio driver
    /// The command's `max_output`.
    pub(crate) fn max_output(&self) -> Option<usize> {
        self.opts.max_output
    }

    pub(crate) fn process(&self) -> &Arc<Process> {
        &self.process
    }

    /// The pipe ends still open, for a driver that registers them.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))] // used by the tokio driver
    pub(crate) fn handles(&self) -> [Option<&F>; 3] {
        [
            self.stdin.as_ref(),
            self.stdout.as_ref(),
            self.stderr.as_ref(),
        ]
    }

    /// With [`Feed::Push`]: whether the driver can take another chunk now.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))] // used by the tokio driver
    pub(crate) fn wants_input(&self) -> bool {
        matches!(self.feed, Feed::Push) && self.stdin.is_some() && self.pending.is_empty()
    }

    /// With [`Feed::Push`]: the next chunk to write (empty chunks are ignored).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))] // used by the tokio driver
    pub(crate) fn push_input(&mut self, chunk: Bytes) {
        debug_assert!(self.pending.is_empty());
        if self.stdin.is_some() {
            self.pending = chunk;
            self.note_buffered();
        }
    }

    /// With [`Feed::Push`]: the source failed (`Some`) or ended (`None`);
    /// stdin is closed either way.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))] // used by the tokio driver
    pub(crate) fn finish_input(&mut self, error: Option<io::Error>) {
        if let Some(e) = error {
            self.record_input_error(e, "reading the input");
        }
        if self.pending.is_empty() {
            self.end_input();
        } else {
            // Write what is pending first; close after.
            self.feed = Feed::Pull(Source::Bytes(Bytes::new()));
        }
    }

    /// The input ran on its own (an async callback owning stdin) and ended
    /// with this result.
    pub(crate) fn input_result(&mut self, result: io::Result<()>) {
        if let Err(e) = result {
            self.record_input_error(e, "the input callback failed");
        }
    }

    fn record_input_error(&mut self, e: io::Error, detail: &str) {
        let epipe = e.kind() == io::ErrorKind::BrokenPipe;
        if !(epipe && self.opts.ignore_epipe) && self.input_error.is_none() {
            self.input_error = Some(Error::os(self.program(), Step::Write, e).with_detail(detail));
        }
    }

    fn program(&self) -> &crate::error::Who {
        self.process.program()
    }

    /// Who errors about this run are about.
    pub(crate) fn who(&self) -> &crate::error::Who {
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
    /// Each call makes at most [`FEED_WRITES`] writes, so that a source of
    /// tiny chunks cannot delay the reads of output behind a pipe-full of
    /// small writes, while large chunks still fill the pipe in one go.
    fn feed(&mut self) {
        let mut budget = FEED_WRITES;
        while budget > 0 && self.stdin.is_some() {
            if self.pending.is_empty() {
                let Feed::Pull(source) = &mut self.feed else {
                    // Push: the caller brings the next chunk.
                    return;
                };
                match source.next_chunk(self.opts.max_chunk) {
                    Some(Ok(chunk)) => {
                        self.pending = chunk;
                        self.note_buffered();
                    }
                    Some(Err(e)) => {
                        self.record_input_error(e, "reading the input");
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
                    self.process.io().add(0, n);
                    self.pending.advance(n);
                    budget -= 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked.stdin = true;
                    return;
                }
                Err(e) => {
                    self.record_input_error(e, "writing the input");
                    self.end_input();
                    return;
                }
            }
        }
    }

    fn end_input(&mut self) {
        self.stdin = None;
        // On a pty, closing our end is not seen by the child: type EOF.
        self.stdin_eof = None;
        if !matches!(self.feed, Feed::Thread(_)) {
            self.feed = Feed::Nothing;
        }
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
                self.process.io().add(if err { 2 } else { 1 }, n);
                let now = self.pending.len() + n + self.tail.len();
                self.high_water = self.high_water.max(now);
                Ok(Some(self.buf.split_to(n).freeze()))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if err {
                    self.blocked.stderr = true;
                } else {
                    self.blocked.stdout = true;
                }
                Ok(None)
            }
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
    pub(crate) fn step(&mut self, mut ready: Ready, now: Instant) -> Result<Progress, Error> {
        self.blocked = Ready::default();
        // Past the drain deadline, look into the pipes whatever the waiter
        // said: the stream may end only once a read found them empty.
        let draining = self
            .exited_at
            .is_some_and(|t| now >= super::after(t, self.opts.drain_timeout));
        if draining {
            ready.stdout = true;
            ready.stderr = true;
        }
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
            // (`draining` made this step read both: a chunk would have
            // been returned above, so `blocked` means empty right now.)
            let empty = |end: &Option<F>, blocked: bool| end.is_none() || blocked;
            if now >= super::after(t, self.opts.drain_timeout)
                && empty(&self.stdout, self.blocked.stdout)
                && empty(&self.stderr, self.blocked.stderr)
            {
                self.stdout = None;
                self.stderr = None;
                if let Some(st) = self.status {
                    return Ok(Progress::Done(st));
                }
            }
        }
        let drain = self
            .exited_at
            .map(|t| super::after(t, self.opts.drain_timeout));
        let deadline = match (self.process_deadline, drain) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(Progress::Pending(Interest {
            // With a pushed source and nothing pending there is nothing to
            // write: the pusher brings the next chunk.
            stdin: self.stdin.is_some()
                && (!self.pending.is_empty() || matches!(self.feed, Feed::Pull(_))),
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
        // A callback thread's result, if it is over (it hands it over
        // before closing stdin); one still feeding is left alone: it holds
        // the only stdin end and ends on EPIPE.
        if let Feed::Thread(t) = &self.feed {
            if let Some(result) = t.result() {
                self.feed = Feed::Nothing;
                self.input_result(result);
            }
        }
        self.input_error.take()
    }

    /// At the end of a blocking run: a callback thread still feeding gets
    /// what is left of the drain timeout to report its result (see
    /// [`InputThread::wait_result`]), so that a broken pipe it is about to
    /// see is not lost. Not for the async driver, which must not block.
    fn settle_input(&mut self, now: Instant) {
        if let Feed::Thread(t) = &self.feed {
            let left = self.exited_at.map_or(Duration::ZERO, |at| {
                super::after(at, self.opts.drain_timeout).saturating_duration_since(now)
            });
            if let Some(result) = t.wait_result(left) {
                self.feed = Feed::Nothing;
                self.input_result(result);
            }
        }
    }

    /// Marks the run as complete (its end was reported).
    pub(crate) fn set_finished(&mut self) {
        self.finished = true;
    }
}

impl Driver<OwnedFd> {
    /// Blocks on the consumer's thread until the next chunk or the end.
    pub(crate) fn next_blocking(&mut self) -> Result<Progress, Error> {
        let mut ready = Ready::ALL;
        loop {
            match self.step(ready, Instant::now())? {
                Progress::Pending(interest) => ready = self.wait(interest)?,
                done_or_data => {
                    if let Progress::Done(_) = done_or_data {
                        self.settle_input(Instant::now());
                        self.set_finished();
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
                    fd: f.as_raw_fd(),
                    events: *ev,
                    revents: 0,
                };
            }
        }
        if let Some(p) = pidfd {
            fds[3] = libc::pollfd {
                fd: p.as_raw_fd(),
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

impl<F: AsFd> Drop for Driver<F> {
    fn drop(&mut self) {
        if self.finished || self.status.is_some() {
            return;
        }
        // Dropped before the end: close our ends, give the child
        // `drop_timeout` to exit by itself, then the stop sequence. The
        // reaper does the waiting; the consumer goes on at once.
        self.end_input();
        self.stdout = None;
        self.stderr = None;
        self.process
            .stop_after(self.opts.drop_timeout, Ended::Requested);
        reaper::adopt(self.process.clone());
    }
}

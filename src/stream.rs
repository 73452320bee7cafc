//! Demand-driven streaming: [`Stream`] (checked stdout chunks), [`Events`]
//! (tagged stdout/stderr chunks and the exit) and [`Output`].
//!
//! All three run the engine's streaming driver on the caller's thread: each
//! `next()` does what I/O is ready and otherwise waits in `poll(2)`, so no
//! runtime and no background thread is needed. Nothing is read from the
//! child before the consumer asks for it: the pipe fills, and the child
//! waits in `write`.

use std::time::Duration;

use bytes::Bytes;

use crate::engine::driver::{Chunk, Driver, Feed, Options, Progress, StderrMode};
use crate::engine::spawn::{Ends, Spawned, spawn_with_ends};
use crate::error::Step;
use crate::input::{InputSink, InputSpec, Source};
use crate::stdio::{Kind, Stdio};
use crate::{ChildStdin, Command, Error, ExitStatus};

/// What to do with a streaming child's stderr (exile's `stderr:` option);
/// converts into a [`Stdio`] for [`Command::stderr`].
///
/// ```
/// use procession::{Command, Event, Stderr};
/// let events: Vec<Event> = Command::new("sh").args(["-c", "echo stdout && echo stderr >&2"])
///     .stderr(Stderr::Consume).events()?.collect::<Result<_, _>>()?;
/// assert_eq!(events[0], Event::Stdout("stdout\n".into()));
/// assert_eq!(events[1], Event::Stderr("stderr\n".into()));
/// assert!(matches!(events[2], Event::Exit(s) if s.success()));
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stderr {
    /// The parent's stderr (the default for streams; exile's `:console`).
    Inherit,
    /// `/dev/null` (exile's `:disable`).
    Null,
    /// Piped: [`Command::events`] yields [`Event::Stderr`] chunks;
    /// [`Command::stream`] keeps the last 8 KiB for its error message.
    Consume,
    /// Into stdout, in the order the child wrote (`2>&1`; exile's
    /// `:redirect_to_stdout`).
    Merge,
}

impl From<Stderr> for Stdio {
    fn from(s: Stderr) -> Stdio {
        match s {
            Stderr::Inherit => Stdio::inherit(),
            Stderr::Null => Stdio::null(),
            Stderr::Consume => Stdio::piped(),
            Stderr::Merge => Stdio::to_stdout(),
        }
    }
}

/// One item of [`Command::events`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A chunk of stdout (at most `max_chunk_size` bytes).
    Stdout(Bytes),
    /// A chunk of stderr, when it is [consumed](Stderr::Consume).
    Stderr(Bytes),
    /// The child's exit status: always the last event.
    Exit(ExitStatus),
}

/// The result of [`Command::output`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// How the child ended (a failure is not an error here).
    pub status: ExitStatus,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr (empty unless stderr was piped, which is
    /// the default for `output`).
    pub stderr: Vec<u8>,
}

impl Command {
    /// The largest chunk a stream yields ([`DEFAULT_MAX_CHUNK_SIZE`](crate::DEFAULT_MAX_CHUNK_SIZE), 64 KiB, by default).
    ///
    /// ```
    /// use procession::Command;
    /// let chunks: Vec<_> = Command::new("head").args(["-c", "500", "/dev/zero"])
    ///     .max_chunk_size(100).stream()?.collect::<Result<_, _>>()?;
    /// assert!(chunks.iter().all(|c| c.len() <= 100));
    /// assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 500);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn max_chunk_size(&mut self, bytes: usize) -> &mut Command {
        self.max_chunk = bytes.max(1);
        self
    }

    /// When the child stops reading (exits, or closes stdin) before the input
    /// is used up, drop the rest of the input silently instead of reporting
    /// a broken pipe at the end of the stream. Off by default.
    ///
    /// ```
    /// use procession::Command;
    /// let forever = std::iter::repeat("data\n");
    /// let out = Command::new("head").args(["-c", "5"]).input(forever)
    ///     .ignore_epipe(true).stream()?.collect_string()?;
    /// assert_eq!(out, "data\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn ignore_epipe(&mut self, on: bool) -> &mut Command {
        self.ignore_epipe = on;
        self
    }

    /// How long a child whose stream was dropped early may take to exit by
    /// itself (its stdin and stdout are closed at once) before the stop
    /// sequence starts ([`DEFAULT_EXIT_TIMEOUT`](crate::DEFAULT_EXIT_TIMEOUT), 5 s, by default). The
    /// consumer never waits for this: the background reaper does.
    pub fn exit_timeout(&mut self, timeout: Duration) -> &mut Command {
        self.exit_timeout = timeout;
        self
    }

    /// How long a stream keeps going after the child has exited while
    /// something else (a descendant that inherited the pipe) keeps its
    /// stdout or stderr open ([`DEFAULT_PIPE_DRAIN_TIMEOUT`](crate::DEFAULT_PIPE_DRAIN_TIMEOUT), 1 s, by
    /// default; Go's `WaitDelay`). Without it such a stream would hang until
    /// the descendant exits.
    ///
    /// The timer only ends the stream while nothing is waiting in the pipes:
    /// whatever the child wrote before exiting is always delivered, however
    /// slow the consumer. 1 s leaves a descendant that is just finishing time
    /// to deliver its last output, and is short enough that a forgotten
    /// background process does not visibly stall the caller.
    ///
    /// ```
    /// use procession::Command;
    /// use std::time::{Duration, Instant};
    /// let start = Instant::now();
    /// let out = Command::new("sh").args(["-c", "sleep 30 & echo done"])
    ///     .pipe_drain_timeout(Duration::from_millis(200)).kill_group(true)
    ///     .stream()?.collect_string()?;
    /// assert_eq!(out, "done\n");
    /// assert!(start.elapsed() < Duration::from_secs(5));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn pipe_drain_timeout(&mut self, timeout: Duration) -> &mut Command {
        self.drain_timeout = timeout;
        self
    }

    /// Spawns for streaming: stdout piped, stdin from the input (or as
    /// configured, `/dev/null` by default), stderr as configured (else
    /// `stderr_default`). Returns the child, the input source to feed, and
    /// the driver options (`mode` applies only when stderr is piped).
    pub(crate) fn spawn_streaming(
        &self,
        stderr_default: Stdio,
        mode: StderrMode,
    ) -> Result<(Spawned, Option<Source>, Options), Error> {
        let program = self.program.as_os_str();
        let mut source = None;
        let file;
        let piped = Stdio::piped();
        let null = Stdio::null();
        let stdin: &Stdio = match &self.input {
            Some(InputSpec::Bytes(b)) => {
                source = Some(Source::Bytes(b.clone()));
                &piped
            }
            Some(InputSpec::File(p)) => {
                file = Stdio::file(p.clone());
                &file
            }
            Some(InputSpec::Once(slot)) => {
                let taken = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                match taken {
                    Some(s) => {
                        source = Some(s);
                        &piped
                    }
                    None => {
                        return Err(Error::invalid(
                            program,
                            "the input (an iterator, reader or callback) was used by an earlier run",
                        ));
                    }
                }
            }
            None => self.stdin.as_ref().unwrap_or(&null),
        };
        let stderr = self.stderr.as_ref().unwrap_or(&stderr_default);
        let mode = match stderr.0 {
            Kind::Piped => mode,
            _ => StderrMode::Tail,
        };
        let spawned = spawn_with_ends(self, [stdin, &piped, stderr], Ends::NonBlocking)?;
        let opts = Options {
            max_chunk: self.max_chunk,
            ignore_epipe: self.ignore_epipe,
            exit_timeout: self.exit_timeout,
            drain_timeout: self.drain_timeout,
            stderr_mode: mode,
        };
        Ok((spawned, source, opts))
    }

    fn start_driver(&self, stderr_default: Stdio, mode: StderrMode) -> Result<Driver, Error> {
        let (spawned, source, opts) = self.spawn_streaming(stderr_default, mode)?;
        let mut ends = spawned.ends;
        let feed = match source {
            None => Feed::Nothing,
            Some(Source::Callback(f)) => match ends.stdin.take() {
                // The callback writes with blocking writes of its own, so it
                // runs on a helper thread that owns the stdin pipe.
                Some(fd) => {
                    let thread = std::thread::Builder::new()
                        .name("procession-input".into())
                        .spawn(move || f(&mut InputSink::new(ChildStdin::new(fd))));
                    match thread {
                        Ok(h) => Feed::Thread(h),
                        Err(e) => {
                            let err = Error::os(self.program.as_os_str(), Step::Write, e)
                                .with_detail("cannot start the input thread");
                            // Dropping the driver stops the child just started.
                            drop(Driver::new(
                                spawned.process,
                                None,
                                ends.stdout,
                                ends.stderr,
                                Feed::Nothing,
                                opts,
                            ));
                            return Err(err);
                        }
                    }
                }
                None => Feed::Nothing,
            },
            Some(s) if s.is_async() => {
                return Err(Error::invalid(
                    self.program.as_os_str(),
                    "an async input needs the async API (stream_async, events_async, output_async)",
                ));
            }
            Some(s) => Feed::Pull(s),
        };
        Ok(Driver::new(
            spawned.process,
            ends.stdin,
            ends.stdout,
            ends.stderr,
            feed,
            opts,
        ))
    }

    /// Starts the child and streams its stdout in chunks (exile's `stream!`).
    ///
    /// stdout is piped; stdin comes from the [`input`](Command::input) (or is
    /// `/dev/null`); stderr is inherited unless [`Command::stderr`] says
    /// otherwise (with [`Stderr::Consume`] its last 8 KiB go into the error).
    /// When the child does not [succeed](ExitStatus::success), the last item
    /// is an [`Error`] of kind [`Exit`](crate::ErrorKind::Exit) carrying the
    /// status. Dropping the stream early closes the pipes, gives the child
    /// [`exit_timeout`](Command::exit_timeout), then runs the stop sequence,
    /// all in the background.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Command::spawn).
    ///
    /// ```
    /// use procession::{Command, ErrorKind};
    /// let out = Command::new("echo").args(["Hello", "World!"]).stream()?.collect_string()?;
    /// assert_eq!(out, "Hello World!\n");
    ///
    /// let err = Command::new("sh").args(["-c", "exit 10"]).stream()?.collect_bytes().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Exit);
    /// assert_eq!(err.exit_status().unwrap().code(), Some(10));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn stream(&self) -> Result<Stream, Error> {
        Ok(Stream {
            driver: self.start_driver(Stdio::inherit(), StderrMode::Tail)?,
            done: false,
            status: None,
        })
    }

    /// Starts the child and yields its output as tagged [`Event`]s, ending
    /// with [`Event::Exit`] (exile's `stream`). A failing exit is an event,
    /// not an error. stderr is inherited unless [`Command::stderr`] pipes it
    /// ([`Stderr::Consume`]).
    ///
    /// # Errors
    ///
    /// As [`spawn`](Command::spawn).
    ///
    /// ```
    /// use procession::{Command, Event};
    /// let events: Vec<Event> = Command::new("sh").args(["-c", "exit 10"])
    ///     .events()?.collect::<Result<_, _>>()?;
    /// assert!(matches!(events.last(), Some(Event::Exit(s)) if s.code() == Some(10)));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn events(&self) -> Result<Events, Error> {
        Ok(Events {
            driver: self.start_driver(Stdio::inherit(), StderrMode::Events)?,
            done: false,
        })
    }

    /// Runs the child to the end and collects its stdout and stderr (both
    /// piped by default and read concurrently, so no size deadlocks).
    ///
    /// # Errors
    ///
    /// As [`spawn`](Command::spawn), and I/O errors; a failing exit is not an
    /// error (look at [`Output::status`]).
    ///
    /// ```
    /// use procession::Command;
    /// let out = Command::shell("echo Test; echo ERR 1>&2").output()?;
    /// assert_eq!(out.stdout, b"Test\n");
    /// assert_eq!(out.stderr, b"ERR\n");
    /// assert!(out.status.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn output(&self) -> Result<Output, Error> {
        let mut events = Events {
            driver: self.start_driver(Stdio::piped(), StderrMode::Events)?,
            done: false,
        };
        let mut collect = Collect::default();
        for ev in events.by_ref() {
            if let Some(output) = collect.push(ev?) {
                return Ok(output);
            }
        }
        unreachable!("an event stream always ends with Exit or an error")
    }
}

/// Gathers events into an [`Output`] (for `output` and `output_async`).
#[derive(Default)]
pub(crate) struct Collect {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Collect {
    /// Adds one event; the `Output` once the exit arrives.
    pub(crate) fn push(&mut self, event: Event) -> Option<Output> {
        match event {
            Event::Stdout(b) => self.stdout.extend_from_slice(&b),
            Event::Stderr(b) => self.stderr.extend_from_slice(&b),
            Event::Exit(status) => {
                return Some(Output {
                    status,
                    stdout: std::mem::take(&mut self.stdout),
                    stderr: std::mem::take(&mut self.stderr),
                });
            }
        }
        None
    }
}

/// The checked stream of a child's stdout: see [`Command::stream`].
///
/// `Iterator<Item = Result<Bytes, Error>>`. After an `Err` the iterator ends.
pub struct Stream {
    driver: Driver,
    done: bool,
    status: Option<ExitStatus>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("pid", &self.driver.pid())
            .finish_non_exhaustive()
    }
}

impl Stream {
    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.driver.pid()
    }

    /// The exit status, once the stream has ended.
    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Collects every chunk.
    ///
    /// # Errors
    ///
    /// The first error of the stream (an unsuccessful exit, a broken pipe).
    pub fn collect_bytes(self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        for chunk in self {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// Collects every chunk into a `String` (invalid UTF-8 is replaced).
    ///
    /// # Errors
    ///
    /// As [`collect_bytes`](Stream::collect_bytes).
    pub fn collect_string(self) -> Result<String, Error> {
        let bytes = self.collect_bytes()?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    #[doc(hidden)]
    /// The most bytes the library held for this stream at once.
    pub fn buffered_high_water(&self) -> usize {
        self.driver.high_water()
    }
}

impl Iterator for Stream {
    type Item = Result<Bytes, Error>;

    fn next(&mut self) -> Option<Result<Bytes, Error>> {
        while !self.done {
            match self.driver.next_blocking() {
                Ok(Progress::Data(Chunk::Stdout(b))) => return Some(Ok(b)),
                // Stderr is kept as a tail in this mode; never yielded.
                Ok(Progress::Data(Chunk::Stderr(_))) => continue,
                Ok(Progress::Done(status)) => {
                    self.done = true;
                    self.status = Some(status);
                    if !status.success() {
                        let tail = Bytes::copy_from_slice(self.driver.stderr_tail());
                        return Some(Err(Error::exit(self.driver_program(), status, Some(tail))));
                    }
                    return self.driver.take_input_error().map(Err);
                }
                Ok(Progress::Pending(_)) => unreachable!("next_blocking waits"),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

impl Stream {
    fn driver_program(&self) -> &std::ffi::OsStr {
        self.driver.program_name()
    }
}

/// The tagged event stream of a child: see [`Command::events`].
pub struct Events {
    driver: Driver,
    done: bool,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("pid", &self.driver.pid())
            .finish_non_exhaustive()
    }
}

impl Events {
    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.driver.pid()
    }
}

impl Iterator for Events {
    type Item = Result<Event, Error>;

    fn next(&mut self) -> Option<Result<Event, Error>> {
        if self.done {
            return None;
        }
        match self.driver.next_blocking() {
            Ok(Progress::Data(Chunk::Stdout(b))) => Some(Ok(Event::Stdout(b))),
            Ok(Progress::Data(Chunk::Stderr(b))) => Some(Ok(Event::Stderr(b))),
            Ok(Progress::Done(status)) => {
                self.done = true;
                match self.driver.take_input_error() {
                    // The input failed: report that; the exit is in the error's program.
                    Some(e) => Some(Err(e)),
                    None => Some(Ok(Event::Exit(status))),
                }
            }
            Ok(Progress::Pending(_)) => unreachable!("next_blocking waits"),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

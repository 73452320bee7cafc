//! Demand-driven streaming: [`Chunks`] (checked stdout chunks), [`Events`]
//! (tagged stdout/stderr chunks and the exit) and [`Output`].
//!
//! All three run the engine's streaming driver on the caller's thread: each
//! `next()` does what I/O is ready and otherwise waits in `poll(2)`, so no
//! runtime and no background thread is needed. Nothing is read from the
//! child before the consumer asks for it: the pipe fills, and the child
//! waits in `write`.

use std::time::Duration;

use bytes::Bytes;

use crate::engine::driver::{Chunk, Driver, Feed, Options, Progress, STDERR_TAIL, StderrMode};
use crate::engine::spawn::{Ends, Spawned, spawn_with_ends};
use crate::error::Step;
use crate::input::{InputThread, Source};
use crate::pipeline::{Upstream, conclude};
use crate::stdio::{Kind, Stdio};
use crate::{ChildStdin, Command, Error, ExitStatus};

/// A chunk of a child's output, tagged with the pipe it came from
/// ([`Child::read_any`](crate::Child::read_any)).
///
/// ```
/// use procession::{Command, OutputChunk, Stdio};
/// let mut child = Command::shell("echo err >&2").stderr(Stdio::piped()).spawn()?;
/// assert_eq!(child.read_any()?, Some(OutputChunk::Stderr("err\n".into())));
/// child.wait()?;
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputChunk {
    /// A chunk of stdout.
    Stdout(Bytes),
    /// A chunk of stderr.
    Stderr(Bytes),
}

/// One item of [`Command::events`].
///
/// ```
/// use procession::{Command, Event};
/// let events: Vec<Event> = Command::new("echo").arg("hi").events()?.collect::<Result<_, _>>()?;
/// assert_eq!(events[0], Event::Stdout("hi\n".into()));
/// assert!(matches!(events[1], Event::Exit(s) if s.success()));
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A chunk of stdout (at most `max_chunk_size` bytes).
    Stdout(Bytes),
    /// A chunk of stderr, when it is [consumed](Stdio::piped()).
    Stderr(Bytes),
    /// The child's exit status: always the last event.
    Exit(ExitStatus),
}

/// The result of [`Command::output`].
///
/// ```
/// let out = procession::Command::shell("echo o; echo e >&2; exit 1").output()?;
/// assert_eq!((&out.stdout[..], &out.stderr[..], out.status.code()), (&b"o\n"[..], &b"e\n"[..], Some(1)));
/// # Ok::<(), procession::Error>(())
/// ```
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
    /// is used up, whether the rest of the input is dropped silently (`true`,
    /// the default) or a broken pipe is reported at the end of the run
    /// (`false`), as an error that carries the exit status (and, from
    /// [`output`](Command::output), everything collected).
    ///
    /// On by default, as Python's `communicate()` and Go's `os/exec` do: a
    /// child may stop reading on purpose (`head`, `grep -q`), and its exit
    /// status says whether it succeeded.
    ///
    /// # Caveats
    ///
    /// A callback input ([`input_fn`](Command::input_fn),
    /// `input_async_fn`) sees the broken pipe itself, and the run can end
    /// before it does. The blocking API waits for the callback's result up
    /// to the [`pipe_drain_timeout`](Command::pipe_drain_timeout) after the
    /// exit (a callback blocked writing to the exited child gets its broken
    /// pipe at once). The async API does not wait (it would block the
    /// runtime): there, a broken pipe that a callback meets after the exit
    /// was seen is not reported. Inputs the library writes itself (bytes,
    /// iterators, readers, streams) meet the broken pipe in the run itself,
    /// when they still had data to write.
    ///
    /// ```
    /// use procession::{Command, Step};
    /// let forever = || std::iter::repeat("data\n");
    /// let out = Command::new("head").args(["-c", "5"]).input(forever()).stream()?.collect_string()?;
    /// assert_eq!(out, "data\n");
    ///
    /// let err = Command::new("head").args(["-c", "5"]).input(forever())
    ///     .ignore_epipe(false).output().unwrap_err();
    /// assert_eq!(err.step(), Step::Write);
    /// assert_eq!(err.output().unwrap().stdout, b"data\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn ignore_epipe(&mut self, on: bool) -> &mut Command {
        self.ignore_epipe = on;
        self
    }

    /// How long a child whose stream was dropped early may take to exit by
    /// itself (its stdin and stdout are closed at once) before the stop
    /// sequence starts ([`DEFAULT_DROP_TIMEOUT`](crate::DEFAULT_DROP_TIMEOUT), 5 s, by default). The
    /// consumer never waits for this: the background reaper does.
    ///
    /// ```
    /// use procession::Command;
    /// use std::time::{Duration, Instant};
    /// let mut chunks = Command::new("yes").drop_timeout(Duration::from_millis(100)).stream()?;
    /// let first = chunks.next().unwrap()?;
    /// assert!(first.starts_with(b"y\n"));
    /// let start = Instant::now();
    /// drop(chunks); // `yes` dies of EPIPE; a child that did not would be stopped 100 ms later
    /// assert!(start.elapsed() < Duration::from_millis(50));
    /// # assert!(procession::__test_support::wait_for_reaper());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn drop_timeout(&mut self, timeout: Duration) -> &mut Command {
        self.drop_timeout = timeout;
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
    /// // The background `sleep` keeps stdout open for 3 s; the stream ends
    /// // 200 ms after the shell exited. (stop_group(false): nothing stops
    /// // the sleep, so only the drain timeout can end the stream early.)
    /// let out = Command::new("sh").args(["-c", "sleep 3 & echo done"])
    ///     .pipe_drain_timeout(Duration::from_millis(200)).stop_group(false)
    ///     .stream()?.collect_string()?;
    /// assert_eq!(out, "done\n");
    /// assert!(start.elapsed() < Duration::from_secs(2));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn pipe_drain_timeout(&mut self, timeout: Duration) -> &mut Command {
        self.drain_timeout = timeout;
        self
    }

    /// The most bytes of stdout, and of stderr, that the collecting helpers
    /// keep (execa's `maxBuffer`): [`output`](Command::output),
    /// [`run`](Command::run), [`Chunks::collect_bytes`],
    /// [`Chunks::collect_string`], [`Events::collect_output`],
    /// [`Child::wait_with_output`](crate::Child::wait_with_output) and their
    /// async forms. No limit by default.
    ///
    /// When a child writes more, the helper keeps exactly `bytes` bytes of
    /// that stream, starts the child's stop sequence (its status says
    /// [`Ended::OutputLimit`](crate::Ended::OutputLimit) unless it had
    /// already exited), reads and drops the rest until the child is gone,
    /// and returns an error of kind
    /// [`OutputLimit`](crate::ErrorKind::OutputLimit) carrying the
    /// [`Output`] collected ([`Error::output`]). Memory stays bounded
    /// whatever the child prints. The streams themselves
    /// ([`stream`](Command::stream), [`events`](Command::events)) are not
    /// limited: their consumer sets the pace.
    ///
    /// ```
    /// use procession::{Command, Ended, ErrorKind};
    /// let err = Command::new("yes").max_output(10).output().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::OutputLimit);
    /// let out = err.output().unwrap();
    /// assert_eq!(out.stdout, b"y\ny\ny\ny\ny\n");
    /// assert_eq!(out.status.ended(), Ended::OutputLimit);
    ///
    /// // Within the limit, nothing changes.
    /// assert_eq!(Command::new("echo").arg("hi").max_output(3).run()?.stdout, b"hi\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn max_output(&mut self, bytes: usize) -> &mut Command {
        self.max_output = Some(bytes);
        self
    }

    /// Spawns for streaming: stdin from the input (or as configured,
    /// `/dev/null` by default), stdout and stderr as configured (else
    /// `stdout_default` / `stderr_default`). Returns the child, the input
    /// source to feed, and the driver options (`mode` applies only when
    /// stderr is piped).
    pub(crate) fn spawn_streaming(
        &self,
        stdout_default: Stdio,
        stderr_default: Stdio,
        mode: StderrMode,
    ) -> Result<(Spawned, Option<Source>, Options), Error> {
        let (stdin, source) = self.stdin_and_source(Stdio::null())?;
        let stdout = self.stdout.as_ref().unwrap_or(&stdout_default);
        let stderr = self.stderr.as_ref().unwrap_or(&stderr_default);
        let mode = match stderr.0 {
            Kind::Piped => mode,
            _ => StderrMode::Tail,
        };
        let spawned = spawn_with_ends(self, [&stdin, stdout, stderr], Ends::NonBlocking)?;
        let opts = Options {
            max_chunk: self.max_chunk,
            ignore_epipe: self.ignore_epipe,
            drop_timeout: self.drop_timeout,
            drain_timeout: self.drain_timeout,
            stderr_mode: mode,
            max_output: self.max_output,
        };
        Ok((spawned, source, opts))
    }

    /// The error for a stdout setting a stream cannot honour: a stream
    /// reads stdout, so it must be piped.
    pub(crate) fn check_stdout_streamable(&self, method: &str) -> Result<(), Error> {
        match &self.stdout {
            Some(s) if !matches!(s.0, Kind::Piped) => Err(self.invalid(format!(
                "`stdout` is set to {:?} but {method} streams stdout: remove the stdout \
                 setting, or use events()/output(), which honour it",
                s.0
            ))),
            _ => Ok(()),
        }
    }

    fn start_driver(&self, stderr_default: Stdio, mode: StderrMode) -> Result<Driver, Error> {
        // Before the spawn: a child started for an input that cannot be fed
        // would have to be stopped again.
        self.refuse_async_input()?;
        let (spawned, source, opts) = self.spawn_streaming(Stdio::piped(), stderr_default, mode)?;
        let mut ends = spawned.ends;
        let feed = match source {
            None => Feed::Nothing,
            Some(Source::Callback(f)) => match ends.stdin.take() {
                // The callback writes with blocking writes of its own, so it
                // runs on a helper thread that owns the stdin pipe.
                Some(fd) => {
                    let thread = InputThread::start(
                        Source::Callback(f),
                        ChildStdin::with_eof(fd, ends.stdin_eof.take())
                            .counted(spawned.process.io()),
                        opts.max_chunk,
                    );
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
                // Refused above, before the spawn; should a source turn up
                // here all the same, the child is stopped and reaped.
                drop(Driver::new(
                    spawned.process,
                    None,
                    ends.stdout,
                    ends.stderr,
                    Feed::Nothing,
                    opts,
                ));
                return Err(self.async_input_refused());
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
        )
        .with_input_eof(ends.stdin_eof))
    }

    /// Starts the child and streams its stdout in chunks, checked: a child
    /// that does not succeed ends the stream with an error.
    ///
    /// stdout is piped (another `stdout` setting is refused); stdin comes
    /// from the [`input`](Command::input) (or is `/dev/null`); stderr is
    /// inherited unless [`Command::stderr`] says otherwise (with
    /// [`Stdio::piped()`] its last 8 KiB go into the error).
    /// When the child does not [succeed](ExitStatus::success), the last item
    /// is an [`Error`] of kind [`Exit`](crate::ErrorKind::Exit) carrying the
    /// status. Dropping the stream early closes the pipes, gives the child
    /// [`drop_timeout`](Command::drop_timeout), then runs the stop sequence,
    /// all in the background.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Command::spawn), and
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) when `stdout` is set
    /// to anything but a pipe.
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
    pub fn stream(&self) -> Result<Chunks, Error> {
        self.check_stdout_streamable("stream()")?;
        Ok(Chunks {
            driver: self.start_driver(Stdio::inherit(), StderrMode::Tail)?,
            done: false,
            status: None,
            upstream: None,
            stages: Vec::new(),
        })
    }

    /// Starts the child and yields its output as tagged [`Event`]s, ending
    /// with [`Event::Exit`], always (a failing exit is an event, not an
    /// error). stdout is piped unless [`Command::stdout`] says otherwise;
    /// stderr is inherited unless [`Command::stderr`] pipes it
    /// ([`Stdio::piped()`]).
    ///
    /// An input that failed (a reader's error; a broken pipe with
    /// [`ignore_epipe(false)`](Command::ignore_epipe)) is reported as an
    /// `Err` carrying the exit status, just before the `Exit` event: the
    /// status is never lost.
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
        Ok(Events::new(
            self.start_driver(Stdio::inherit(), StderrMode::Events)?,
        ))
    }

    /// Runs the child to the end and collects its stdout and stderr (both
    /// piped unless [`Command::stdout`]/[`Command::stderr`] say otherwise,
    /// and read concurrently, so no size deadlocks). A broken input pipe is
    /// not an error by default (the child chose to stop reading; its status
    /// tells whether it succeeded), as with Python's `communicate()`.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Command::spawn), and I/O errors; a failing exit is not an
    /// error (look at [`Output::status`], or use [`run`](Command::run)). An
    /// error after the child's start that is not about reading its output
    /// (a failing input) carries everything collected: see
    /// [`Error::output`].
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
        self.output_events()?.collect_output()
    }

    /// The events `output` collects: stdout and stderr piped by default.
    pub(crate) fn output_events(&self) -> Result<Events, Error> {
        Ok(Events::new(
            self.start_driver(Stdio::piped(), StderrMode::Events)?,
        ))
    }

    /// Runs the child to the end, collecting its output as
    /// [`output`](Command::output) does, and checks that it succeeded: the
    /// one-shot form of the checked [`stream`](Command::stream) (duct's
    /// `run`, Python's `run(check=True, capture_output=True)`).
    ///
    /// # Errors
    ///
    /// As [`output`](Command::output), and an error of kind
    /// [`Exit`](crate::ErrorKind::Exit) when the child did not
    /// [succeed](ExitStatus::success); it carries the status, the tail of
    /// stderr for its message, and the whole [`Output`]
    /// ([`Error::output`]).
    ///
    /// ```
    /// use procession::{Command, ErrorKind};
    /// let out = Command::new("echo").arg("hi").run()?;
    /// assert_eq!(out.stdout, b"hi\n");
    ///
    /// let err = Command::shell("echo oops >&2; exit 3").run().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Exit);
    /// assert_eq!(err.exit_status().unwrap().code(), Some(3));
    /// assert_eq!(err.output().unwrap().stderr, b"oops\n");
    /// assert!(err.to_string().contains("oops"));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn run(&self) -> Result<Output, Error> {
        let output = self.output()?;
        check(self, output)
    }
}

/// `output` if it succeeded, else the exit error carrying it (the command
/// line for it is made only then).
pub(crate) fn check(cmd: &Command, output: Output) -> Result<Output, Error> {
    if output.status.success() {
        return Ok(output);
    }
    let who = &cmd.who();
    let tail = &output.stderr[output.stderr.len().saturating_sub(STDERR_TAIL)..];
    let tail = Bytes::copy_from_slice(tail);
    Err(Error::exit(who, output.status, Some(tail)).with_output(output))
}

/// The `max_output` cap of one collection: what fits is kept, the first
/// overflow is reported so that the caller stops the child.
#[derive(Debug, Default)]
pub(crate) struct Cap {
    limit: Option<usize>,
    /// The stream that went over first.
    hit: Option<&'static str>,
}

impl Cap {
    pub(crate) fn new(limit: Option<usize>) -> Cap {
        Cap { limit, hit: None }
    }

    /// Appends what fits of `bytes` to `into` (stream `which`); `true` when
    /// this is the first time a stream went over: stop the child now.
    pub(crate) fn append(&mut self, which: &'static str, into: &mut Vec<u8>, bytes: &[u8]) -> bool {
        let room = self
            .limit
            .map_or(usize::MAX, |l| l.saturating_sub(into.len()));
        if bytes.len() <= room {
            into.extend_from_slice(bytes);
            return false;
        }
        into.extend_from_slice(&bytes[..room]);
        let first = self.hit.is_none();
        self.hit.get_or_insert(which);
        first
    }

    pub(crate) fn went_over(&self) -> bool {
        self.hit.is_some()
    }

    /// [`error`](Cap::error) for a collection of stdout alone.
    pub(crate) fn error_for_stdout(
        &self,
        who: &crate::error::Who,
        status: ExitStatus,
        stdout: Vec<u8>,
    ) -> Result<Vec<u8>, Error> {
        let output = Output {
            status,
            stdout,
            stderr: Vec::new(),
        };
        self.error(who, output).map(|o| o.stdout)
    }

    /// The error to return once the child is gone, if a stream went over.
    pub(crate) fn error(&self, who: &crate::error::Who, output: Output) -> Result<Output, Error> {
        match (self.hit, self.limit) {
            (Some(which), Some(limit)) => Err(Error::new(
                who,
                Step::Read,
                crate::ErrorKind::OutputLimit,
                Some(format!(
                    "{which} went over the max_output limit of {limit} bytes"
                )),
                None,
            )
            .with_output(output)),
            _ => Ok(output),
        }
    }
}

/// Stops a child whose output went over the cap (the background reaper
/// enforces the rest of the stop sequence).
pub(crate) fn stop_for_cap(process: &std::sync::Arc<crate::engine::process::Process>) {
    process.start_stop(crate::Ended::OutputLimit);
    crate::engine::reaper::adopt(process.clone());
}

/// Gathers events into an [`Output`] (for `output` and `output_async`).
#[derive(Default)]
pub(crate) struct Collect {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// An error that came with the exit status (a failed input): reported
    /// once the run is over, with everything collected.
    deferred: Option<Error>,
    cap: Cap,
}

impl Collect {
    pub(crate) fn with_cap(limit: Option<usize>) -> Collect {
        Collect {
            cap: Cap::new(limit),
            ..Collect::default()
        }
    }

    /// Adds one item; the `Output` once the exit arrives. An error without
    /// an exit status (reading the output failed) ends the collection.
    /// `stop` is called when the output first goes over the cap.
    pub(crate) fn push(
        &mut self,
        item: Result<Event, Error>,
        stop: impl FnOnce(),
    ) -> Result<Option<Output>, Error> {
        let over = match item {
            Ok(Event::Stdout(b)) => self.cap.append("stdout", &mut self.stdout, &b),
            Ok(Event::Stderr(b)) => self.cap.append("stderr", &mut self.stderr, &b),
            Ok(Event::Exit(status)) => {
                return Ok(Some(Output {
                    status,
                    stdout: std::mem::take(&mut self.stdout),
                    stderr: std::mem::take(&mut self.stderr),
                }));
            }
            Err(e) if e.exit_status().is_some() => {
                self.deferred.get_or_insert(e);
                false
            }
            Err(e) => return Err(e),
        };
        if over {
            stop();
        }
        Ok(None)
    }

    /// The result once the exit arrived: the output, the cap's error, or
    /// the deferred error, carrying it.
    pub(crate) fn finish(
        &mut self,
        who: &crate::error::Who,
        output: Output,
    ) -> Result<Output, Error> {
        let output = self.cap.error(who, output)?;
        match self.deferred.take() {
            Some(e) => Err(e.with_output(output)),
            None => Ok(output),
        }
    }
}

/// The checked stream of a child's stdout: see [`Command::stream`].
///
/// `Iterator<Item = Result<Bytes, Error>>`. After an `Err` the iterator ends.
///
/// ```
/// let mut chunks = procession::Command::new("echo").arg("hi").stream()?;
/// assert!(chunks.pid() > 0);
/// assert_eq!(chunks.next().unwrap()?, "hi\n");
/// assert!(chunks.next().is_none());
/// assert!(chunks.status().unwrap().success());
/// # Ok::<(), procession::Error>(())
/// ```
pub struct Chunks {
    driver: Driver,
    done: bool,
    status: Option<ExitStatus>,
    /// A pipeline's other stages, waited for when the last one ends.
    upstream: Option<Upstream>,
    /// Every stage's status, once ended.
    stages: Vec<ExitStatus>,
}

impl std::fmt::Debug for Chunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunks")
            .field("pid", &self.driver.pid())
            .finish_non_exhaustive()
    }
}

impl Chunks {
    /// The child's pid.
    ///
    /// ```
    /// let chunks = procession::Command::shell("echo $$").stream()?;
    /// let pid = chunks.pid(); // the shell prints its own pid
    /// assert_eq!(chunks.collect_string()?, format!("{pid}\n"));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.driver.pid()
    }

    /// Who the child is, for errors.
    pub(crate) fn who(&self) -> &crate::error::Who {
        self.driver.who()
    }

    /// The exit status, once the stream has ended.
    ///
    /// ```
    /// use procession::{Command, ErrorKind};
    /// let mut chunks = Command::shell("echo hi; exit 3").stream()?;
    /// assert_eq!(chunks.status(), None);
    /// assert_eq!(chunks.next().unwrap()?, "hi\n");
    /// assert_eq!(chunks.status(), None); // the stream has not ended yet
    /// assert_eq!(chunks.next().unwrap().unwrap_err().kind(), ErrorKind::Exit);
    /// assert!(chunks.next().is_none());
    /// assert_eq!(chunks.status().unwrap().code(), Some(3));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Every stage's exit status, first to last, once the stream has ended
    /// (one status for a single command; a [`Pipeline`](crate::Pipeline)'s
    /// [`status`](Chunks::status) is the one its
    /// [`Pipefail`](crate::Pipefail) rule picks from these). Empty before.
    ///
    /// ```
    /// use procession::Command;
    /// let mut chunks = Command::shell("exit 1").pipe(&Command::new("true")).stream()?;
    /// assert!(chunks.stage_statuses().is_empty());
    /// assert!(chunks.next().unwrap().is_err()); // the first stage failed
    /// let codes: Vec<_> = chunks.stage_statuses().iter().map(|s| s.code()).collect();
    /// assert_eq!(codes, [Some(1), Some(0)]);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn stage_statuses(&self) -> &[ExitStatus] {
        &self.stages
    }

    /// Attaches a pipeline's upstream stages.
    pub(crate) fn with_upstream(mut self, upstream: Option<Upstream>) -> Chunks {
        self.upstream = upstream;
        self
    }

    /// Collects every chunk.
    ///
    /// # Errors
    ///
    /// The first error of the stream (an unsuccessful exit, a broken pipe).
    ///
    /// ```
    /// use procession::Command;
    /// let out = Command::new("printf").arg(r"a\000\377b").stream()?.collect_bytes()?;
    /// assert_eq!(out, b"a\x00\xffb"); // any bytes, not only UTF-8
    ///
    /// let err = Command::shell("printf partial; exit 2").stream()?.collect_bytes().unwrap_err();
    /// assert_eq!(err.exit_status().unwrap().code(), Some(2));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn collect_bytes(mut self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        let mut cap = Cap::new(self.driver.max_output());
        while let Some(chunk) = self.next() {
            match chunk {
                Ok(b) => {
                    if cap.append("stdout", &mut out, &b) {
                        stop_for_cap(self.driver.process());
                    }
                }
                // Over the cap, the exit the stop caused is no error of its
                // own.
                Err(e) => match e.exit_status() {
                    Some(status) if cap.went_over() => {
                        return cap.error_for_stdout(self.driver.who(), status, out);
                    }
                    _ => return Err(e),
                },
            }
        }
        match self.status {
            Some(status) if cap.went_over() => cap.error_for_stdout(self.driver.who(), status, out),
            _ => Ok(out),
        }
    }

    /// Collects every chunk into a `String` (invalid UTF-8 is replaced).
    ///
    /// # Errors
    ///
    /// As [`collect_bytes`](Chunks::collect_bytes).
    ///
    /// ```
    /// use procession::Command;
    /// let out = Command::new("printf").arg(r"caf\303\251 \377").stream()?.collect_string()?;
    /// assert_eq!(out, "café \u{FFFD}"); // the lone 0xff byte is replaced
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn collect_string(self) -> Result<String, Error> {
        let bytes = self.collect_bytes()?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    #[doc(hidden)]
    /// The most bytes the library held for this stream at once.
    ///
    /// ```
    /// use procession::Command;
    /// let mut chunks = Command::new("echo").arg("hi").stream()?;
    /// assert_eq!(chunks.buffered_high_water(), 0); // nothing read yet
    /// assert_eq!(chunks.by_ref().collect::<Result<Vec<_>, _>>()?, ["hi\n"]);
    /// assert_eq!(chunks.buffered_high_water(), 3);
    ///
    /// // A megabyte goes through, at most one 4 KiB chunk held at a time.
    /// let mut chunks = Command::new("head").args(["-c", "1000000", "/dev/zero"])
    ///     .max_chunk_size(4096).stream()?;
    /// let total: usize = chunks.by_ref().map(|c| c.map(|c| c.len())).sum::<Result<_, _>>()?;
    /// assert_eq!(total, 1_000_000);
    /// assert!(chunks.buffered_high_water() <= 4096);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn buffered_high_water(&self) -> usize {
        self.driver.high_water()
    }
}

impl Iterator for Chunks {
    type Item = Result<Bytes, Error>;

    fn next(&mut self) -> Option<Result<Bytes, Error>> {
        while !self.done {
            match self.driver.next_blocking() {
                Ok(Progress::Data(Chunk::Stdout(b))) => return Some(Ok(b)),
                // Stderr is kept as a tail in this mode; never yielded.
                Ok(Progress::Data(Chunk::Stderr(_))) => continue,
                Ok(Progress::Done(last)) => {
                    self.done = true;
                    let c = match conclude(&mut self.upstream, last) {
                        Ok(c) => c,
                        Err(e) => return Some(Err(e)),
                    };
                    let status = c.status;
                    self.status = Some(status);
                    self.stages.clone_from(&c.stages);
                    if !status.success() {
                        let tail = Bytes::copy_from_slice(self.driver.stderr_tail());
                        return Some(Err(c.exit_error(self.driver.who(), Some(tail))));
                    }
                    return self
                        .driver
                        .take_input_error()
                        .map(|e| e.with_status(status))
                        .or(c.input_error)
                        .map(Err);
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

/// The tagged event stream of a child: see [`Command::events`].
///
/// `Iterator<Item = Result<Event, Error>>`; the last item is always
/// `Ok(Event::Exit(status))` unless reading the output failed.
///
/// ```
/// let mut events = procession::Command::new("true").events()?;
/// assert!(events.pid() > 0);
/// let output = events.collect_output()?;
/// assert!(output.status.success());
/// # Ok::<(), procession::Error>(())
/// ```
pub struct Events {
    driver: Driver,
    state: EventsState,
    status: Option<ExitStatus>,
    /// A pipeline's other stages, waited for when the last one ends.
    upstream: Option<Upstream>,
    /// Every stage's status, once ended.
    stages: Vec<ExitStatus>,
    /// The upstream stage whose failure is reported, for `run`.
    failed: Option<(crate::error::Who, String)>,
}

/// Where an [`Events`] iterator is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EventsState {
    Running,
    /// An input error was yielded; the exit event comes next.
    ExitNext,
    Done,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("pid", &self.driver.pid())
            .finish_non_exhaustive()
    }
}

impl Events {
    fn new(driver: Driver) -> Events {
        Events {
            driver,
            state: EventsState::Running,
            status: None,
            upstream: None,
            stages: Vec::new(),
            failed: None,
        }
    }

    /// Attaches a pipeline's upstream stages.
    pub(crate) fn with_upstream(mut self, upstream: Option<Upstream>) -> Events {
        self.upstream = upstream;
        self
    }

    /// Every stage's exit status, first to last, once the
    /// [`Event::Exit`] has been yielded (one status for a single command).
    ///
    /// ```
    /// let mut events = procession::Command::new("false").pipe(&procession::Command::new("true")).events()?;
    /// events.by_ref().for_each(drop);
    /// let codes: Vec<_> = events.stage_statuses().iter().map(|s| s.code()).collect();
    /// assert_eq!(codes, [Some(1), Some(0)]);
    /// assert_eq!(events.status().unwrap().code(), Some(1)); // the rightmost failure
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn stage_statuses(&self) -> &[ExitStatus] {
        &self.stages
    }

    /// The exit error for an unsuccessful end (naming the reported stage),
    /// `None` on success.
    pub(crate) fn failure(&self, output: &Output) -> Option<Error> {
        if output.status.success() {
            return None;
        }
        let tail = &output.stderr[output.stderr.len().saturating_sub(STDERR_TAIL)..];
        Some(match &self.failed {
            Some((who, detail)) => {
                Error::exit(who, output.status, None).with_detail(detail.clone())
            }
            None => Error::exit(
                self.driver.who(),
                output.status,
                Some(Bytes::copy_from_slice(tail)),
            ),
        })
    }

    /// The child's pid.
    ///
    /// ```
    /// let events = procession::Command::shell("echo $$").events()?;
    /// let pid = events.pid(); // the shell prints its own pid
    /// assert_eq!(events.collect_output()?.stdout, format!("{pid}\n").as_bytes());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.driver.pid()
    }

    /// Who the child is, for errors.
    pub(crate) fn who(&self) -> &crate::error::Who {
        self.driver.who()
    }

    /// The exit status, once the [`Event::Exit`] has been yielded (or is
    /// next, after an input error).
    ///
    /// ```
    /// let mut events = procession::Command::new("true").events()?;
    /// assert_eq!(events.status(), None);
    /// events.by_ref().for_each(drop);
    /// assert!(events.status().unwrap().success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Collects every event into an [`Output`], like
    /// [`Command::output`].
    ///
    /// # Errors
    ///
    /// As [`Command::output`].
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// let events = Command::shell("echo out; echo err >&2; exit 4").stderr(Stdio::piped()).events()?;
    /// let output = events.collect_output()?; // a failing exit is not an error
    /// assert_eq!((&output.stdout[..], &output.stderr[..]), (&b"out\n"[..], &b"err\n"[..]));
    /// assert_eq!(output.status.code(), Some(4));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn collect_output(mut self) -> Result<Output, Error> {
        self.collect_output_mut()
    }

    pub(crate) fn collect_output_mut(&mut self) -> Result<Output, Error> {
        let mut collect = Collect::with_cap(self.driver.max_output());
        while let Some(ev) = self.next() {
            if let Some(output) = collect.push(ev, || stop_for_cap(self.driver.process()))? {
                return collect.finish(self.driver.who(), output);
            }
        }
        unreachable!("an event stream always ends with Exit or an error")
    }
}

impl Iterator for Events {
    type Item = Result<Event, Error>;

    fn next(&mut self) -> Option<Result<Event, Error>> {
        match self.state {
            EventsState::Done => return None,
            EventsState::ExitNext => {
                self.state = EventsState::Done;
                return self.status.map(|s| Ok(Event::Exit(s)));
            }
            EventsState::Running => {}
        }
        match self.driver.next_blocking() {
            Ok(Progress::Data(Chunk::Stdout(b))) => Some(Ok(Event::Stdout(b))),
            Ok(Progress::Data(Chunk::Stderr(b))) => Some(Ok(Event::Stderr(b))),
            Ok(Progress::Done(last)) => {
                let c = match conclude(&mut self.upstream, last) {
                    Ok(c) => c,
                    Err(e) => {
                        self.state = EventsState::Done;
                        return Some(Err(e));
                    }
                };
                let status = c.status;
                self.status = Some(status);
                self.stages = c.stages;
                self.failed = c.failed;
                let input_error = self
                    .driver
                    .take_input_error()
                    .map(|e| e.with_status(status))
                    .or(c.input_error);
                match input_error {
                    // The input failed: report that, with the status; the
                    // exit event still comes last.
                    Some(e) => {
                        self.state = EventsState::ExitNext;
                        Some(Err(e))
                    }
                    None => {
                        self.state = EventsState::Done;
                        Some(Ok(Event::Exit(status)))
                    }
                }
            }
            Ok(Progress::Pending(_)) => unreachable!("next_blocking waits"),
            Err(e) => {
                self.state = EventsState::Done;
                Some(Err(e))
            }
        }
    }
}

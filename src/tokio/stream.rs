//! Async streaming: [`AsyncChunks`], [`AsyncEvents`], `output_async`, and
//! the async input sources. The engine's streaming state machine
//! (`engine::driver::Driver`) does the work; this file only waits for the
//! readiness it asks for, on the runtime.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::pipe::{AsyncChildStdin, Registered};
use super::wait::Watch;
use crate::engine::driver::{Chunk, Driver, Feed, Progress, Ready, StderrMode};
use crate::error::Step;
use crate::input::{InputSpec, InputThread, Source};
use crate::pipeline::{Conclusion, Upstream, conclude};
use crate::stream::{Cap, Collect, Event, Output, stop_for_cap};
use crate::{ChildStdin, Command, Error, Stdio};

/// The sink an [`input_async_fn`](Command::input_async_fn) callback writes
/// the child's input into (`AsyncWrite`). Writes wait while the child is
/// not reading; once it stops reading they fail with `BrokenPipe`. Stdin is
/// closed when the sink is dropped.
#[derive(Debug)]
pub struct AsyncInputSink {
    stdin: AsyncChildStdin,
}

impl AsyncWrite for AsyncInputSink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

type InputFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// An input the async driver pulls itself (the sync driver cannot).
enum AsyncSource {
    None,
    Stream(Pin<Box<dyn Stream<Item = Bytes> + Send>>),
    Read(Pin<Box<dyn AsyncRead + Send>>),
    Callback(InputFuture),
}

/// The async driver: the shared state machine plus runtime registrations.
struct Core {
    driver: Driver<Registered>,
    watch: Watch,
    source: AsyncSource,
    /// The source was polled and is pending (it will wake us); nothing was
    /// pulled since.
    source_waiting: bool,
    ready: Ready,
    max_chunk: usize,
    /// A pipeline's other stages, waited for when the last one ends.
    upstream: Option<Upstream>,
    /// The last stage's status, once seen, while the upstream ends.
    ended: Option<crate::ExitStatus>,
}

/// A step of a stream: data, or the (pipeline's) end.
enum Stepped {
    Data(Chunk),
    Done(Conclusion),
}

impl Core {
    fn start(cmd: &Command, stderr_default: Stdio, mode: StderrMode) -> Result<Core, Error> {
        // The command line for errors is made only if one happens; after
        // the spawn the process has it.
        super::check_runtime(cmd.get_program()).map_err(|e| e.with_who(&cmd.who()))?;
        let (spawned, source, opts) = cmd.spawn_streaming(Stdio::piped(), stderr_default, mode)?;
        let ends = spawned.ends;
        let process = spawned.process;
        let owner = Arc::clone(&process);
        let program = owner.program();
        let mut stdin = ends.stdin;
        let mut stdin_eof = ends.stdin_eof;
        let register = |fd| Registered::new(fd).map_err(|e| Error::os(program, Step::Pipe, e));
        let stdout = ends.stdout.map(register).transpose();
        let stderr = ends.stderr.map(register).transpose();
        let (stdout, stderr) = match (stdout, stderr) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(e), _) | (_, Err(e)) => {
                // Dropping a driver stops and reaps the child.
                drop(Driver::<Registered>::new(
                    process,
                    None,
                    None,
                    None,
                    Feed::Nothing,
                    opts,
                ));
                return Err(e);
            }
        };
        let mut async_source = AsyncSource::None;
        let feed = match source {
            None => Feed::Nothing,
            Some(Source::Stream(s)) => {
                async_source = AsyncSource::Stream(s);
                Feed::Push
            }
            Some(Source::AsyncRead(r)) => {
                async_source = AsyncSource::Read(r);
                Feed::Push
            }
            Some(Source::AsyncCallback(f)) => {
                if let Some(fd) = stdin.take() {
                    match Registered::new(fd) {
                        Ok(fd) => {
                            let stdin = AsyncChildStdin {
                                fd,
                                io: owner.io().clone(),
                                eof: stdin_eof.take(),
                            };
                            async_source = AsyncSource::Callback(f(AsyncInputSink { stdin }))
                        }
                        Err(e) => {
                            drop(Driver::<Registered>::new(
                                process,
                                None,
                                stdout,
                                stderr,
                                Feed::Nothing,
                                opts,
                            ));
                            return Err(Error::os(program, Step::Pipe, e));
                        }
                    }
                }
                Feed::Nothing
            }
            Some(Source::Callback(f)) => match stdin.take() {
                // A blocking callback gets a thread, as in the blocking API.
                Some(fd) => {
                    let thread = InputThread::start(
                        Source::Callback(f),
                        ChildStdin::new(fd).counted(owner.io()),
                        opts.max_chunk,
                    );
                    match thread {
                        Ok(h) => Feed::Thread(h),
                        Err(e) => {
                            drop(Driver::<Registered>::new(
                                process,
                                None,
                                stdout,
                                stderr,
                                Feed::Nothing,
                                opts,
                            ));
                            return Err(Error::os(program, Step::Write, e)
                                .with_detail("cannot start the input thread"));
                        }
                    }
                }
                None => Feed::Nothing,
            },
            // Bytes and iterators are pulled by the state machine itself.
            Some(s) => Feed::Pull(s),
        };
        let stdin = match stdin.map(Registered::new).transpose() {
            Ok(s) => s,
            Err(e) => {
                drop(Driver::<Registered>::new(
                    process,
                    None,
                    stdout,
                    stderr,
                    Feed::Nothing,
                    opts,
                ));
                return Err(Error::os(program, Step::Pipe, e));
            }
        };
        let watch = Watch::new(&process);
        Ok(Core {
            driver: Driver::new(process, stdin, stdout, stderr, feed, opts)
                .with_input_eof(stdin_eof),
            watch,
            source: async_source,
            source_waiting: false,
            ready: Ready::ALL,
            max_chunk: opts.max_chunk,
            upstream: None,
            ended: None,
        })
    }

    /// [`poll_progress`](Core::poll_progress), with the end waiting for a
    /// pipeline's upstream stages and concluded by its rule.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Result<Stepped, Error>> {
        let last = match self.ended {
            Some(s) => s,
            None => match std::task::ready!(self.poll_progress(cx))? {
                Progress::Done(s) => {
                    self.ended = Some(s);
                    s
                }
                Progress::Data(c) => return Poll::Ready(Ok(Stepped::Data(c))),
                Progress::Pending(_) => unreachable!("poll_progress waits"),
            },
        };
        let c = match &mut self.upstream {
            Some(up) => std::task::ready!(up.poll_finish(cx, last))?,
            None => conclude(&mut None, last)?,
        };
        Poll::Ready(Ok(Stepped::Done(c)))
    }

    /// Feeds the driver from an async source while stdin can take more.
    /// Returns `true` if something changed (the caller steps again).
    fn poll_source(&mut self, cx: &mut Context<'_>) -> bool {
        match &mut self.source {
            AsyncSource::None => false,
            AsyncSource::Callback(fut) => match fut.as_mut().poll(cx) {
                Poll::Ready(result) => {
                    self.driver.input_result(result);
                    self.source = AsyncSource::None;
                    true
                }
                Poll::Pending => false,
            },
            AsyncSource::Stream(_) | AsyncSource::Read(_) => {
                if !self.driver.wants_input() {
                    if self.driver.handles()[0].is_none() {
                        // stdin is closed (EPIPE, or the child is gone).
                        self.source = AsyncSource::None;
                    }
                    return false;
                }
                // The pipe took the whole previous chunk: pull the next one
                // (the driver holds at most one chunk the pipe has not
                // taken, as with the blocking sources).
                let next = match &mut self.source {
                    AsyncSource::Stream(s) => match s.as_mut().poll_next(cx) {
                        Poll::Ready(Some(chunk)) => Poll::Ready(Ok(Some(chunk))),
                        Poll::Ready(None) => Poll::Ready(Ok(None)),
                        Poll::Pending => Poll::Pending,
                    },
                    AsyncSource::Read(r) => {
                        let mut buf = BytesMut::zeroed(self.max_chunk);
                        let mut rb = ReadBuf::new(&mut buf);
                        match r.as_mut().poll_read(cx, &mut rb) {
                            Poll::Ready(Ok(())) => {
                                let n = rb.filled().len();
                                buf.truncate(n);
                                Poll::Ready(Ok((n > 0).then(|| buf.freeze())))
                            }
                            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                            Poll::Pending => Poll::Pending,
                        }
                    }
                    _ => unreachable!(),
                };
                self.source_waiting = next.is_pending();
                match next {
                    Poll::Pending => false,
                    Poll::Ready(Ok(Some(chunk))) => {
                        if !chunk.is_empty() {
                            self.driver.push_input(chunk);
                            self.ready.stdin = true;
                        }
                        true
                    }
                    Poll::Ready(Ok(None)) => {
                        self.driver.finish_input(None);
                        self.source = AsyncSource::None;
                        self.ready.stdin = true;
                        true
                    }
                    Poll::Ready(Err(e)) => {
                        self.driver.finish_input(Some(e));
                        self.source = AsyncSource::None;
                        true
                    }
                }
            }
        }
    }

    /// The next chunk or the end, waiting on the runtime.
    fn poll_progress(&mut self, cx: &mut Context<'_>) -> Poll<Result<Progress, Error>> {
        loop {
            let moved = self.poll_source(cx);
            let ready = std::mem::take(&mut self.ready);
            match self.driver.step(ready, Instant::now())? {
                Progress::Pending(interest) => {
                    // The pipe just took the last chunk: pull the next one
                    // now (unless the source already said it will wake us).
                    let pullable =
                        matches!(self.source, AsyncSource::Stream(_) | AsyncSource::Read(_));
                    let mut due =
                        moved || (pullable && self.driver.wants_input() && !self.source_waiting);
                    let [stdin, stdout, stderr] = self.driver.handles();
                    let blocked = self.driver.blocked();
                    // Tokio's readiness is edge-triggered: it may be cleared
                    // only after the I/O returned EAGAIN (`blocked`), and the
                    // I/O is always tried again after a clear, so an event
                    // that arrived in between is never lost. A readiness that
                    // is still set means: try the I/O.
                    due |= poll_ready(
                        cx,
                        stdin,
                        Dir::Write,
                        interest.stdin,
                        blocked.stdin,
                        &mut self.ready.stdin,
                    );
                    due |= poll_ready(
                        cx,
                        stdout,
                        Dir::Read,
                        interest.stdout,
                        blocked.stdout,
                        &mut self.ready.stdout,
                    );
                    due |= poll_ready(
                        cx,
                        stderr,
                        Dir::Read,
                        interest.stderr,
                        blocked.stderr,
                        &mut self.ready.stderr,
                    );
                    if self
                        .watch
                        .poll_due(cx, interest.exit, ready.exit, interest.deadline)
                    {
                        self.ready.exit = true;
                        due = true;
                    }
                    if !due {
                        return Poll::Pending;
                    }
                }
                done_or_data => {
                    if let Progress::Done(_) = done_or_data {
                        self.driver.set_finished();
                        // An async callback still running is dropped: its
                        // sink closes.
                        self.source = AsyncSource::None;
                    }
                    return Poll::Ready(Ok(done_or_data));
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Dir {
    Read,
    Write,
}

/// Asks the runtime whether a pipe end the driver is `interested` in is
/// ready; if so marks it in `ready` and returns `true`. The readiness is
/// cleared first when the last I/O on it returned `EAGAIN` (`blocked`); the
/// caller then retries the I/O, so an event that arrived meanwhile is never
/// lost.
fn poll_ready(
    cx: &mut Context<'_>,
    end: Option<&Registered>,
    dir: Dir,
    interested: bool,
    blocked: bool,
    ready: &mut bool,
) -> bool {
    let Some(end) = end.filter(|_| interested) else {
        return false;
    };
    let polled = match dir {
        Dir::Read => end.0.poll_read_ready(cx),
        Dir::Write => end.0.poll_write_ready(cx),
    };
    match polled {
        Poll::Ready(Ok(mut guard)) => {
            if blocked {
                guard.clear_ready();
            }
            *ready = true;
            true
        }
        // An error (the runtime is shutting down) or not ready: the I/O
        // itself will report a real error.
        _ => false,
    }
}

/// The checked stream of a child's stdout for tokio: see
/// [`Command::stream_async`]. A `futures` `Stream` of `io::Result<Bytes>`;
/// errors carry a [`procession::Error`](crate::Error) (see
/// [`Error::from_io`](crate::Error::from_io)).
///
/// Dropping it early behaves as for [`Chunks`](crate::Chunks): the pipes
/// close, the child gets `drop_timeout`, then the stop sequence, all in the
/// background; the task is never blocked.
pub struct AsyncChunks {
    core: Core,
    done: bool,
    status: Option<crate::ExitStatus>,
    stages: Vec<crate::ExitStatus>,
}

impl std::fmt::Debug for AsyncChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncChunks")
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl AsyncChunks {
    /// The child's pid.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// let chunks = procession::Command::shell("echo $$").stream_async()?;
    /// let pid = chunks.pid(); // the shell prints its own pid
    /// assert_eq!(chunks.collect_string().await?, format!("{pid}\n"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn pid(&self) -> u32 {
        self.core.driver.process().pid() as u32
    }

    /// The exit status, once the stream has ended.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, ErrorKind};
    /// let mut chunks = Command::shell("echo hi; exit 3").stream_async()?;
    /// assert_eq!(chunks.status(), None);
    /// assert_eq!(chunks.next_chunk().await.unwrap()?, "hi\n");
    /// assert_eq!(chunks.status(), None); // the stream has not ended yet
    /// assert_eq!(chunks.next_chunk().await.unwrap().unwrap_err().kind(), ErrorKind::Exit);
    /// assert!(chunks.next_chunk().await.is_none());
    /// assert_eq!(chunks.status().unwrap().code(), Some(3));
    /// # Ok(())
    /// # }
    /// ```
    pub fn status(&self) -> Option<crate::ExitStatus> {
        self.status
    }

    /// Collects every chunk.
    ///
    /// # Errors
    ///
    /// The first error of the stream (an unsuccessful exit, a failed input).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::Command;
    /// let out = Command::new("printf").arg(r"a\000\377b").stream_async()?.collect_bytes().await?;
    /// assert_eq!(out, b"a\x00\xffb"); // any bytes, not only UTF-8
    ///
    /// let err = Command::shell("printf partial; exit 2").stream_async()?.collect_bytes().await.unwrap_err();
    /// assert_eq!(err.exit_status().unwrap().code(), Some(2));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn collect_bytes(mut self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        let mut cap = Cap::new(self.core.driver.max_output());
        while let Some(chunk) = self.next_chunk().await {
            match chunk {
                Ok(b) => {
                    if cap.append("stdout", &mut out, &b) {
                        stop_for_cap(self.core.driver.process());
                    }
                }
                Err(e) => match e.exit_status() {
                    Some(status) if cap.went_over() => {
                        return cap.error_for_stdout(self.core.driver.who(), status, out);
                    }
                    _ => return Err(e),
                },
            }
        }
        match self.status {
            Some(status) if cap.went_over() => {
                cap.error_for_stdout(self.core.driver.who(), status, out)
            }
            _ => Ok(out),
        }
    }

    /// Collects every chunk into a `String` (invalid UTF-8 is replaced), as
    /// [`Chunks::collect_string`](crate::Chunks::collect_string).
    ///
    /// # Errors
    ///
    /// As [`collect_bytes`](AsyncChunks::collect_bytes).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// let out = procession::Command::new("echo").arg("hi").stream_async()?.collect_string().await?;
    /// assert_eq!(out, "hi\n");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn collect_string(self) -> Result<String, Error> {
        let bytes = self.collect_bytes().await?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// The next chunk, with the structured error type (the `Stream` impl
    /// yields `io::Result`). Cancel-safe.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::Command;
    /// let mut chunks = Command::shell("echo one; exit 3").stream_async()?;
    /// assert_eq!(chunks.next_chunk().await.unwrap()?, "one\n");
    /// // The unsuccessful exit is the last item: a procession::Error with the status.
    /// let err = chunks.next_chunk().await.unwrap().unwrap_err();
    /// assert_eq!(err.exit_status().unwrap().code(), Some(3));
    /// assert!(chunks.next_chunk().await.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, Error>> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }

    #[doc(hidden)]
    /// The most bytes the library held for this stream at once.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::Command;
    /// let mut chunks = Command::new("echo").arg("hi").stream_async()?;
    /// assert_eq!(chunks.buffered_high_water(), 0); // nothing read yet
    /// assert_eq!(chunks.next_chunk().await.unwrap()?, "hi\n");
    /// assert!(chunks.next_chunk().await.is_none());
    /// assert_eq!(chunks.buffered_high_water(), 3);
    ///
    /// // A megabyte goes through, at most one 4 KiB chunk held at a time.
    /// let mut chunks = Command::new("head").args(["-c", "1000000", "/dev/zero"])
    ///     .max_chunk_size(4096).stream_async()?;
    /// let mut total = 0;
    /// while let Some(chunk) = chunks.next_chunk().await {
    ///     total += chunk?.len();
    /// }
    /// assert_eq!(total, 1_000_000);
    /// assert!(chunks.buffered_high_water() <= 4096);
    /// # Ok(())
    /// # }
    /// ```
    pub fn buffered_high_water(&self) -> usize {
        self.core.driver.high_water()
    }

    /// Who the child is, for errors.
    pub(crate) fn who(&self) -> &crate::error::Who {
        self.core.driver.who()
    }

    /// Every stage's exit status, first to last, once the stream has ended
    /// (as [`Chunks::stage_statuses`](crate::Chunks::stage_statuses)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::Command;
    /// let mut chunks = Command::shell("exit 1").pipe(&Command::new("true")).stream_async()?;
    /// assert!(chunks.next_chunk().await.unwrap().is_err()); // the first stage failed
    /// let codes: Vec<_> = chunks.stage_statuses().iter().map(|s| s.code()).collect();
    /// assert_eq!(codes, [Some(1), Some(0)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn stage_statuses(&self) -> &[crate::ExitStatus] {
        &self.stages
    }

    /// Attaches a pipeline's upstream stages.
    pub(crate) fn with_upstream(mut self, upstream: Option<Upstream>) -> AsyncChunks {
        self.core.upstream = upstream;
        self
    }

    pub(crate) fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Error>>> {
        while !self.done {
            match std::task::ready!(self.core.poll_step(cx)) {
                Ok(Stepped::Data(Chunk::Stdout(b))) => return Poll::Ready(Some(Ok(b))),
                Ok(Stepped::Data(Chunk::Stderr(_))) => continue,
                Ok(Stepped::Done(c)) => {
                    self.done = true;
                    let status = c.status;
                    self.status = Some(status);
                    self.stages.clone_from(&c.stages);
                    if !status.success() {
                        let tail = Bytes::copy_from_slice(self.core.driver.stderr_tail());
                        return Poll::Ready(Some(Err(
                            c.exit_error(self.core.driver.who(), Some(tail))
                        )));
                    }
                    return Poll::Ready(
                        self.core
                            .driver
                            .take_input_error()
                            .map(|e| e.with_status(status))
                            .or(c.input_error)
                            .map(Err),
                    );
                }
                Err(e) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
        Poll::Ready(None)
    }
}

impl Stream for AsyncChunks {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        self.get_mut()
            .poll_chunk(cx)
            .map(|o| o.map(|r| r.map_err(io::Error::from)))
    }
}

/// The tagged event stream of a child for tokio: see
/// [`Command::events_async`]. Ends with [`Event::Exit`], always (an input
/// error comes just before it, carrying the status), as
/// [`Events`](crate::Events) does.
pub struct AsyncEvents {
    core: Core,
    /// 0: running; 1: an input error was yielded, the exit comes next; 2: done.
    state: u8,
    status: Option<crate::ExitStatus>,
    stages: Vec<crate::ExitStatus>,
    /// The upstream stage whose failure is reported, for `run_async`.
    failed: Option<(crate::error::Who, String)>,
}

impl std::fmt::Debug for AsyncEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncEvents")
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl AsyncEvents {
    fn new(core: Core) -> AsyncEvents {
        AsyncEvents {
            core,
            state: 0,
            status: None,
            stages: Vec::new(),
            failed: None,
        }
    }

    /// The child's pid.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// let events = procession::Command::shell("echo $$").events_async()?;
    /// let pid = events.pid(); // the shell prints its own pid
    /// assert_eq!(events.collect_output().await?.stdout, format!("{pid}\n").as_bytes());
    /// # Ok(())
    /// # }
    /// ```
    pub fn pid(&self) -> u32 {
        self.core.driver.process().pid() as u32
    }

    /// The exit status, once the [`Event::Exit`] has been yielded (or is
    /// next, after an input error).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Event};
    /// let mut events = Command::shell("echo hi; exit 3").events_async()?;
    /// assert_eq!(events.status(), None);
    /// assert_eq!(events.next_event().await.unwrap()?, Event::Stdout("hi\n".into()));
    /// assert_eq!(events.status(), None); // the exit has not been yielded yet
    /// assert!(matches!(events.next_event().await.unwrap()?, Event::Exit(_)));
    /// assert_eq!(events.status().unwrap().code(), Some(3));
    /// # Ok(())
    /// # }
    /// ```
    pub fn status(&self) -> Option<crate::ExitStatus> {
        self.status
    }

    /// Collects every event into an [`Output`], like
    /// [`Command::output_async`].
    ///
    /// # Errors
    ///
    /// As [`Command::output`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Stdio};
    /// let events = Command::shell("echo out; echo err >&2; exit 4").stderr(Stdio::piped()).events_async()?;
    /// let output = events.collect_output().await?; // a failing exit is not an error
    /// assert_eq!((&output.stdout[..], &output.stderr[..]), (&b"out\n"[..], &b"err\n"[..]));
    /// assert_eq!(output.status.code(), Some(4));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn collect_output(mut self) -> Result<Output, Error> {
        self.collect_output_mut().await
    }

    pub(crate) async fn collect_output_mut(&mut self) -> Result<Output, Error> {
        let mut collect = Collect::with_cap(self.core.driver.max_output());
        while let Some(ev) = self.next_event().await {
            let process = self.core.driver.process();
            if let Some(output) = collect.push(ev, || stop_for_cap(process))? {
                return collect.finish(self.core.driver.who(), output);
            }
        }
        unreachable!("an event stream always ends with Exit or an error")
    }

    /// Every stage's exit status, first to last, once the exit has been
    /// yielded (as [`Events::stage_statuses`](crate::Events::stage_statuses)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::Command;
    /// let mut events = Command::new("false").pipe(&Command::new("true")).events_async()?;
    /// while events.next_event().await.is_some() {}
    /// let codes: Vec<_> = events.stage_statuses().iter().map(|s| s.code()).collect();
    /// assert_eq!(codes, [Some(1), Some(0)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn stage_statuses(&self) -> &[crate::ExitStatus] {
        &self.stages
    }

    /// Attaches a pipeline's upstream stages.
    pub(crate) fn with_upstream(mut self, upstream: Option<Upstream>) -> AsyncEvents {
        self.core.upstream = upstream;
        self
    }

    /// The exit error for an unsuccessful end (naming the reported stage),
    /// `None` on success.
    pub(crate) fn failure(&self, output: &Output) -> Option<Error> {
        if output.status.success() {
            return None;
        }
        let tail = &output.stderr[output
            .stderr
            .len()
            .saturating_sub(crate::engine::driver::STDERR_TAIL)..];
        Some(match &self.failed {
            Some((who, detail)) => {
                Error::exit(who, output.status, None).with_detail(detail.clone())
            }
            None => Error::exit(
                self.core.driver.who(),
                output.status,
                Some(Bytes::copy_from_slice(tail)),
            ),
        })
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Event, Error>>> {
        match self.state {
            2 => return Poll::Ready(None),
            1 => {
                self.state = 2;
                return Poll::Ready(self.status.map(|s| Ok(Event::Exit(s))));
            }
            _ => {}
        }
        Poll::Ready(Some(match std::task::ready!(self.core.poll_step(cx)) {
            Ok(Stepped::Data(Chunk::Stdout(b))) => Ok(Event::Stdout(b)),
            Ok(Stepped::Data(Chunk::Stderr(b))) => Ok(Event::Stderr(b)),
            Ok(Stepped::Done(c)) => {
                let status = c.status;
                self.status = Some(status);
                self.stages = c.stages;
                self.failed = c.failed;
                let input_error = self
                    .core
                    .driver
                    .take_input_error()
                    .map(|e| e.with_status(status))
                    .or(c.input_error);
                match input_error {
                    Some(e) => {
                        self.state = 1;
                        Err(e)
                    }
                    None => {
                        self.state = 2;
                        Ok(Event::Exit(status))
                    }
                }
            }
            Err(e) => {
                self.state = 2;
                Err(e)
            }
        }))
    }

    /// The next event, with the structured error type (the `Stream` impl
    /// yields `io::Result`). Cancel-safe.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Event};
    /// let mut events = Command::shell("echo out; exit 5").events_async()?;
    /// assert_eq!(events.next_event().await.unwrap()?, Event::Stdout("out\n".into()));
    /// // A failing exit is an event, not an error, and always the last one.
    /// let Event::Exit(status) = events.next_event().await.unwrap()? else { panic!("not the exit") };
    /// assert_eq!(status.code(), Some(5));
    /// assert!(events.next_event().await.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn next_event(&mut self) -> Option<Result<Event, Error>> {
        poll_fn(|cx| self.poll_item(cx)).await
    }
}

impl Stream for AsyncEvents {
    type Item = io::Result<Event>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Event>>> {
        self.get_mut()
            .poll_item(cx)
            .map(|o| o.map(|r| r.map_err(io::Error::from)))
    }
}

impl Command {
    /// The async counterpart of [`stream`](Command::stream): the same
    /// checked stream of stdout chunks, as a `futures` `Stream` of
    /// `io::Result<Bytes>`. Cancel-safe: dropping a pending `next()` loses
    /// no data.
    ///
    /// # Errors
    ///
    /// As [`stream`](Command::stream); [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput)
    /// outside a tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::Command;
    /// let out = Command::new("cat").input(["Hello ", "Back!"]).stream_async()?.collect_bytes().await?;
    /// assert_eq!(out, b"Hello Back!");
    /// # Ok(())
    /// # }
    /// ```
    pub fn stream_async(&self) -> Result<AsyncChunks, Error> {
        self.check_stdout_streamable("stream_async()")?;
        Ok(AsyncChunks {
            core: Core::start(self, Stdio::inherit(), StderrMode::Tail)?,
            done: false,
            status: None,
            stages: Vec::new(),
        })
    }

    /// The async counterpart of [`events`](Command::events).
    ///
    /// # Errors
    ///
    /// As [`stream_async`](Command::stream_async).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Event, Stdio};
    /// let mut events = Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"])
    ///     .stderr(Stdio::piped()).events_async()?;
    /// let mut seen = Vec::new();
    /// while let Some(ev) = events.next_event().await {
    ///     seen.push(ev?);
    /// }
    /// assert!(seen.contains(&Event::Stdout("out\n".into())));
    /// assert!(seen.contains(&Event::Stderr("err\n".into())));
    /// assert!(matches!(seen.last(), Some(Event::Exit(s)) if s.code() == Some(3)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn events_async(&self) -> Result<AsyncEvents, Error> {
        Ok(AsyncEvents::new(Core::start(
            self,
            Stdio::inherit(),
            StderrMode::Events,
        )?))
    }

    /// The async counterpart of [`output`](Command::output).
    ///
    /// # Errors
    ///
    /// As [`output`](Command::output).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// let out = procession::Command::shell("echo Test; echo ERR 1>&2").output_async().await?;
    /// assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"Test\n"[..], &b"ERR\n"[..]));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn output_async(&self) -> Result<Output, Error> {
        self.output_events_async()?.collect_output().await
    }

    /// The events `output_async` collects: stdout and stderr piped by default.
    pub(crate) fn output_events_async(&self) -> Result<AsyncEvents, Error> {
        Ok(AsyncEvents::new(Core::start(
            self,
            Stdio::piped(),
            StderrMode::Events,
        )?))
    }

    /// The async counterpart of [`run`](Command::run): [`output_async`](Command::output_async),
    /// checked.
    ///
    /// # Errors
    ///
    /// As [`run`](Command::run).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// let err = procession::Command::shell("echo partial; exit 4").run_async().await.unwrap_err();
    /// assert_eq!(err.exit_status().unwrap().code(), Some(4));
    /// assert_eq!(err.output().unwrap().stdout, b"partial\n");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run_async(&self) -> Result<Output, Error> {
        let output = self.output_async().await?;
        crate::stream::check(self, output)
    }

    /// Feeds stdin from a `futures` stream of chunks, polled only while the
    /// child's stdin can take more (async API only; the blocking methods
    /// refuse it). The stream is consumed by the first run.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::Command;
    /// let chunks = futures_util::stream::iter(["b\n", "a\n"]);
    /// let out = Command::new("sort").input_stream(chunks).stream_async()?.collect_bytes().await?;
    /// assert_eq!(out, b"a\nb\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn input_stream<S>(&mut self, stream: S) -> &mut Command
    where
        S: Stream + Send + 'static,
        S::Item: Into<Bytes>,
    {
        let mapped = MapInto(Box::pin(stream));
        self.input = Some(InputSpec::once(Source::Stream(Box::pin(mapped))));
        self
    }

    /// Feeds stdin from a tokio `AsyncRead`, read one chunk at a time while
    /// the child's stdin can take more (async API only).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::Command;
    /// // Any tokio `AsyncRead`: a file, a socket, a byte slice.
    /// let reader: &'static [u8] = b"b\na\n";
    /// let out = Command::new("sort").input_async_read(reader).stream_async()?.collect_bytes().await?;
    /// assert_eq!(out, b"a\nb\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn input_async_read(&mut self, reader: impl AsyncRead + Send + 'static) -> &mut Command {
        self.input = Some(InputSpec::once(Source::AsyncRead(Box::pin(reader))));
        self
    }

    /// Feeds stdin from an async callback writing into an [`AsyncInputSink`]
    /// (async API only). It runs inside the stream's own polling (no task is
    /// spawned); stdin closes when it returns.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::Command;
    /// use tokio::io::AsyncWriteExt;
    /// let out = Command::new("cat")
    ///     .input_async_fn(|mut sink| async move {
    ///         sink.write_all(b"data\n").await?;
    ///         sink.write_all(b"data\n").await
    ///     })
    ///     .stream_async()?
    ///     .collect_bytes()
    ///     .await?;
    /// assert_eq!(out, b"data\ndata\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn input_async_fn<F, Fut>(&mut self, callback: F) -> &mut Command
    where
        F: FnOnce(AsyncInputSink) -> Fut + Send + 'static,
        Fut: Future<Output = io::Result<()>> + Send + 'static,
    {
        let boxed: crate::input::AsyncCallback = Box::new(move |sink| Box::pin(callback(sink)));
        self.input = Some(InputSpec::once(Source::AsyncCallback(boxed)));
        self
    }
}

/// Maps a stream's items into `Bytes`.
struct MapInto<S>(Pin<Box<S>>);

impl<S> Stream for MapInto<S>
where
    S: Stream,
    S::Item: Into<Bytes>,
{
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.0.as_mut().poll_next(cx).map(|o| o.map(Into::into))
    }
}

//! The async pipeline and forwarding: [`Pipeline`]'s `_async` methods,
//! [`Command::forward_stdout_async`], [`AsyncChildStdout::forward`], and the
//! conversions of the async pipe ends into descriptors.

use std::future::poll_fn;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::task::{Context, Poll};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::pipe::{AsyncChildStderr, AsyncChildStdin, AsyncChildStdout, Registered};
use super::stream::{AsyncChunks, AsyncEvents};
use super::wait::Watch;
use crate::engine::forward::{Failed, Forwarder, Moved, Side};
use crate::error::Step;
use crate::forward::{Forwarded, failed, finish, spawn_forwarded};
use crate::pipeline::{Pipeline, conclude};
use crate::stream::Output;
use crate::sys::fd;
use crate::sys::reactor::{self, Lent};
use crate::{Command, Error};

/// Steps moved in one poll before the task yields, so that a long
/// forwarding with both sides always ready does not starve the runtime.
const STEPS_PER_POLL: u32 = 64;

/// The sink of an async forwarding: a copy of the descriptor registered
/// with the reactor for writability when it can be (sockets, pipes,
/// terminals), or nothing for a regular file, which is always ready (its
/// writes go to the page cache).
struct Sink<'a> {
    fd: BorrowedFd<'a>,
    registered: Option<AsyncFd<Lent<OwnedFd>>>,
}

impl<'a> Sink<'a> {
    fn new(fd: BorrowedFd<'a>) -> io::Result<Sink<'a>> {
        let copy = fd::dup_at_least(fd, 3)?;
        let registered = match reactor::register(copy, Interest::WRITABLE) {
            Ok(r) => Some(r),
            // epoll refuses regular files and directories.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => None,
            Err(e) => return Err(e),
        };
        Ok(Sink { fd, registered })
    }
}

/// Moves from `from` into `sink` until end of file, waiting on the
/// runtime for whichever side blocks.
fn poll_forward(
    cx: &mut Context<'_>,
    fw: &mut Forwarder,
    from: &Registered,
    sink: &Sink<'_>,
    count: &dyn Fn(usize),
) -> Poll<Result<(), Failed>> {
    let mut steps = 0;
    loop {
        match fw.step(from.as_fd(), sink.fd)? {
            Moved::Bytes(n) => {
                count(n);
                steps += 1;
                if steps == STEPS_PER_POLL {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
            Moved::Eof => return Poll::Ready(Ok(())),
            // Tokio's readiness is edge-triggered: clear it only after the
            // I/O said EAGAIN, then try the I/O again before waiting.
            Moved::Blocked(Side::From) => match from.0.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(mut guard)) => guard.clear_ready(),
                Poll::Ready(Err(error)) => {
                    return Poll::Ready(Err(Failed {
                        error,
                        side: Side::From,
                    }));
                }
            },
            Moved::Blocked(Side::To) => match &sink.registered {
                Some(r) => match r.poll_write_ready(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(mut guard)) => guard.clear_ready(),
                    Poll::Ready(Err(error)) => {
                        return Poll::Ready(Err(Failed {
                            error,
                            side: Side::To,
                        }));
                    }
                },
                // Not pollable yet not ready: try again on the next turn.
                None => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            },
        }
    }
}

impl AsyncChildStdout {
    /// Moves everything the child writes to stdout into `sink` until end of
    /// file, with `splice(2)` where the kernel allows it (no copy through
    /// this process), else through a buffer, waiting on the runtime for
    /// whichever side blocks: the async form of
    /// [`ChildStdout::forward`](crate::ChildStdout::forward), for a socket
    /// (a `tokio::net::TcpStream`, after writing a header of your own) or
    /// any descriptor. Returns the number of bytes moved.
    ///
    /// # Errors
    ///
    /// The first error reading the pipe or writing `sink` (`BrokenPipe` or
    /// `ConnectionReset` from a socket whose peer has gone).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use procession::{Command, Stdio};
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let mut client = tokio::net::TcpStream::connect(listener.local_addr()?).await?;
    /// let (mut server, _) = listener.accept().await?;
    /// let mut child = Command::new("echo").arg("body").stdout(Stdio::piped()).spawn_async()?;
    /// server.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await?;
    /// let n = child.stdout.as_mut().unwrap().forward(&server).await?;
    /// drop(server);
    /// let mut got = String::new();
    /// client.read_to_string(&mut got).await?;
    /// assert_eq!(got, "HTTP/1.0 200 OK\r\n\r\nbody\n");
    /// assert_eq!(n, 5);
    /// child.wait().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn forward(&mut self, sink: impl AsFd) -> io::Result<u64> {
        let sink = Sink::new(sink.as_fd())?;
        let mut fw = Forwarder::new(true);
        let this = &*self;
        poll_fn(|cx| poll_forward(cx, &mut fw, &this.fd, &sink, &|n| this.count(n)))
            .await
            .map_err(|f| f.error)?;
        Ok(fw.moved())
    }
}

macro_rules! into_fd {
    ($name:ident $(, $eof:ident)?) => {
        impl From<$name> for OwnedFd {
            /// The descriptor, taken out of the runtime and made blocking
            /// again, ready to be another child's stdin or stdout
            /// (`Stdio::from`) or a blocking `File`: the next stage of a
            /// pipeline wired by hand. (`O_NONBLOCK` belongs to the pipe's
            /// open file description, which a child would share.)
            ///
            /// ```
            /// # #[tokio::main(flavor = "current_thread")]
            /// # async fn main() -> Result<(), procession::Error> {
            /// use procession::{Command, Stdio};
            /// use std::os::fd::OwnedFd;
            /// let mut first = Command::new("echo").arg("b a").stdout(Stdio::piped()).spawn_async()?;
            /// let link = OwnedFd::from(first.stdout.take().unwrap());
            /// let out = Command::new("tr").args([" ", "\n"]).stdin(link).output_async().await?;
            /// assert_eq!(out.stdout, b"b\na\n");
            /// first.wait().await?;
            /// # Ok(())
            /// # }
            /// ```
            fn from(end: $name) -> OwnedFd {
                $( if let Some(eof) = end.$eof { eof.disarm(); } )?
                let fd = end.fd.0.into_inner().0;
                // Best effort: a descriptor left non-blocking only makes a
                // child's reads or writes fail with EAGAIN.
                let _ = fd::set_blocking(fd.as_fd());
                fd
            }
        }
    };
}

into_fd!(AsyncChildStdin, eof);
into_fd!(AsyncChildStdout);
into_fd!(AsyncChildStderr);

impl Command {
    /// The async form of [`forward_stdout`](Command::forward_stdout): the
    /// child's stdout moved into `sink` by the kernel (`splice(2)`, else a
    /// buffer), waiting on the runtime for the pipe and, when it is a
    /// socket or a pipe, the sink; then the checked status. The "program
    /// output to a network client" case: the client's socket is never
    /// handed to the child, and a client that goes away ends the
    /// forwarding with an error (and stops the child).
    ///
    /// # Errors
    ///
    /// As [`forward_stdout`](Command::forward_stdout), and
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) outside a tokio
    /// runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use procession::Command;
    /// use tokio::io::AsyncReadExt;
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let mut client = tokio::net::TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// let reader = tokio::spawn(async move {
    ///     let mut got = Vec::new();
    ///     client.read_to_end(&mut got).await.map(|_| got)
    /// });
    /// let done = Command::new("head").args(["-c", "3000000", "/dev/zero"])
    ///     .forward_stdout_async(&server).await?;
    /// drop(server);
    /// assert_eq!(done.bytes, 3_000_000);
    /// assert_eq!(reader.await??.len(), 3_000_000);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn forward_stdout_async(&self, sink: impl AsFd) -> Result<Forwarded, Error> {
        Pipeline::new([self.clone()])
            .forward_with_async(sink.as_fd(), true)
            .await
    }

    /// [`forward_stdout_async`](Command::forward_stdout_async) through a
    /// buffer of this process, never `splice(2)`: for a socket read on this
    /// machine (loopback TCP, a Unix socket), see
    /// [`forward_stdout_copying`](Command::forward_stdout_copying).
    ///
    /// # Errors
    ///
    /// As [`forward_stdout_async`](Command::forward_stdout_async).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (mut r, w) = std::io::pipe()?;
    /// let done = procession::Command::new("echo").arg("hi").forward_stdout_async_copying(&w).await?;
    /// assert_eq!((done.bytes, done.spliced), (3, 0));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn forward_stdout_async_copying(&self, sink: impl AsFd) -> Result<Forwarded, Error> {
        Pipeline::new([self.clone()])
            .forward_with_async(sink.as_fd(), false)
            .await
    }
}

impl Pipeline {
    /// The async form of [`stream`](Pipeline::stream).
    ///
    /// # Errors
    ///
    /// As [`stream`](Pipeline::stream), and
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) outside a tokio
    /// runtime. An async input on the first stage
    /// ([`input_stream`](Command::input_stream)…) is driven by a task of
    /// the runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::Command;
    /// let out = Command::new("printf").arg(r"b\na\nc\n")
    ///     .pipe(&Command::new("sort"))
    ///     .pipe(Command::new("head").args(["-n", "2"]))
    ///     .stream_async()?.collect_string().await?;
    /// assert_eq!(out, "a\nb\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn stream_async(&self) -> Result<AsyncChunks, Error> {
        let (upstream, last) = self.start_upstream_async()?;
        Ok(last.stream_async()?.with_upstream(upstream))
    }

    /// The async form of [`events`](Pipeline::events).
    ///
    /// # Errors
    ///
    /// As [`stream_async`](Pipeline::stream_async).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Event};
    /// let mut events = Command::shell("exit 3").pipe(&Command::new("cat")).events_async()?;
    /// let Some(Ok(Event::Exit(status))) = events.next_event().await else { panic!() };
    /// assert_eq!(status.code(), Some(3));
    /// # Ok(())
    /// # }
    /// ```
    pub fn events_async(&self) -> Result<AsyncEvents, Error> {
        let (upstream, last) = self.start_upstream_async()?;
        Ok(last.events_async()?.with_upstream(upstream))
    }

    /// The async form of [`output`](Pipeline::output).
    ///
    /// # Errors
    ///
    /// As [`output`](Pipeline::output).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::Command;
    /// let out = Command::new("echo").arg("x").pipe(&Command::new("cat")).output_async().await?;
    /// assert_eq!(out.stdout, b"x\n");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn output_async(&self) -> Result<Output, Error> {
        let (upstream, last) = self.start_upstream_async()?;
        let events = last.output_events_async()?;
        // Close this process's copy of the last link now.
        drop(last);
        events.with_upstream(upstream).collect_output().await
    }

    /// The async form of [`run`](Pipeline::run).
    ///
    /// # Errors
    ///
    /// As [`run`](Pipeline::run).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::Command;
    /// let err = Command::shell("exit 6").pipe(&Command::new("cat")).run_async().await.unwrap_err();
    /// assert_eq!(err.exit_status().unwrap().code(), Some(6));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run_async(&self) -> Result<Output, Error> {
        let (upstream, last) = self.start_upstream_async()?;
        let events = last.output_events_async()?;
        drop(last);
        let mut events = events.with_upstream(upstream);
        let output = events.collect_output_mut().await?;
        match events.failure(&output) {
            None => Ok(output),
            Some(e) => Err(e.with_output(output)),
        }
    }

    /// The async form of [`forward_stdout`](Pipeline::forward_stdout) (see
    /// [`Command::forward_stdout_async`]).
    ///
    /// # Errors
    ///
    /// As [`forward_stdout`](Pipeline::forward_stdout), and
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) outside a tokio
    /// runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use procession::Command;
    /// use std::io::Read;
    /// let (mut r, w) = std::io::pipe()?;
    /// let done = Command::new("seq").arg("3").pipe(&Command::new("tac"))
    ///     .forward_stdout_async(&w).await?;
    /// drop(w);
    /// let mut got = String::new();
    /// r.read_to_string(&mut got)?;
    /// assert_eq!((got.as_str(), done.bytes), ("3\n2\n1\n", 6));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn forward_stdout_async(&self, sink: impl AsFd) -> Result<Forwarded, Error> {
        self.forward_with_async(sink.as_fd(), true).await
    }

    pub(crate) async fn forward_with_async(
        &self,
        sink: BorrowedFd<'_>,
        splice: bool,
    ) -> Result<Forwarded, Error> {
        if let Some(last) = self.stages().last() {
            super::check_runtime(last.get_program()).map_err(|e| e.with_who(&last.who()))?;
        }
        self.check_forwardable()?;
        let (mut upstream, mut last) = self.start_upstream_async()?;
        let mut child = spawn_forwarded(&mut last)?;
        drop(last);
        let process = child.process().clone();
        let who = process.program();
        let stdout = OwnedFd::from(child.stdout.take().expect("spawned with stdout piped"));
        let from = fd::set_nonblocking(stdout.as_fd())
            .and_then(|()| Registered::new(stdout))
            .map_err(|e| Error::os(who, Step::Pipe, e))?;
        let sink = Sink::new(sink).map_err(|e| {
            Error::os(who, Step::Write, e).with_detail("registering the sink with the runtime")
        })?;
        let mut fw = Forwarder::new(splice);
        let io = process.io().clone();
        poll_fn(|cx| poll_forward(cx, &mut fw, &from, &sink, &|n| io.add(1, n)))
            .await
            .map_err(|f| failed(who, f))?;
        drop(from);
        let mut watch = Watch::new(&process);
        poll_fn(|cx| watch.poll_wait(cx, &process)).await?;
        // Finished: returns at once, with the input thread's result.
        let status = child.wait()?;
        let c = match &mut upstream {
            Some(up) => poll_fn(|cx| up.poll_finish(cx, status)).await?,
            None => conclude(&mut None, status)?,
        };
        finish(c, who, (fw.moved(), fw.spliced()))
    }
}

//! [`AsyncChild`]: the async handle of a running program.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::pipe::{AsyncChildStderr, AsyncChildStdin, AsyncChildStdout, Registered};
use super::wait::Watch;
use crate::child::not_piped;
use crate::engine::process::Process;
use crate::engine::spawn::{Ends, spawn_with_ends};
use crate::error::Step;
use crate::status::Ended;
use crate::{Command, Error, ExitStatus, OutputChunk, Signal, Signaller, Stdio, TerminalMode};

/// A running child for tokio; the async counterpart of [`Child`](crate::Child),
/// with the same semantics.
///
/// # Drop
///
/// As for `Child`: dropping it never blocks, starts the stop sequence if the
/// child still runs (unless `stop_on_drop(false)` or [`detach`](AsyncChild::detach)),
/// and the background reaper reaps it, even after the runtime is gone.
///
/// # Cancel safety
///
/// [`wait`](AsyncChild::wait), [`stop`](AsyncChild::stop),
/// [`read`](AsyncChild::read), [`read_stderr`](AsyncChild::read_stderr) and
/// [`read_any`](AsyncChild::read_any) are cancel-safe: dropping the future
/// loses no data and leaks nothing (a read takes data only in the poll that
/// returns it; the exit status stays with the child). [`write_all`](AsyncChild::write_all)
/// is not: if it is dropped, an unknown prefix of the data was written.
#[derive(Debug)]
pub struct AsyncChild {
    pub(super) process: Arc<Process>,
    watch: WatchCell,
    /// The child's stdin pipe, when piped (as in `tokio::process::Child`:
    /// `child.stdin.take()` takes it, dropping it closes it).
    pub stdin: Option<AsyncChildStdin>,
    /// The child's stdout pipe, when piped.
    pub stdout: Option<AsyncChildStdout>,
    /// The child's stderr pipe, when piped.
    pub stderr: Option<AsyncChildStderr>,
    stop_on_drop: bool,
    max_chunk: usize,
    prefer_stderr: bool,
}

struct WatchCell(Watch);

impl std::fmt::Debug for WatchCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watch")
    }
}

impl Command {
    /// Starts the child for use with tokio: the async counterpart of
    /// [`spawn`](Command::spawn) (stdio inherited unless configured; piped
    /// ends are registered with the runtime).
    ///
    /// # Errors
    ///
    /// As [`spawn`](Command::spawn), and
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) outside a tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Stdio};
    /// let mut child = Command::new("bc").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn_async()?;
    /// child.write_all(b"6 * 7\n").await?;
    /// assert_eq!(child.read().await?.as_deref(), Some(&b"42\n"[..]));
    /// assert!(child.wait().await?.success());
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn_async(&self) -> Result<AsyncChild, Error> {
        super::check_runtime(self.get_program()).map_err(|e| e.with_who(&self.who()))?;
        if self.input.is_some() {
            return Err(self.invalid(
                "`input` is fed by stream_async/events_async/output_async; with spawn_async, \
                 pipe stdin and write to the child (AsyncChild::write_all)",
            ));
        }
        let inherit = Stdio::inherit();
        let stdio = [
            self.stdin.as_ref().unwrap_or(&inherit),
            self.stdout.as_ref().unwrap_or(&inherit),
            self.stderr.as_ref().unwrap_or(&inherit),
        ];
        let spawned = spawn_with_ends(self, stdio, Ends::NonBlocking)?;
        let process = spawned.process;
        let ends = spawned.ends;
        let owner = Arc::clone(&process);
        let io = process.io().clone();
        let register =
            |fd| Registered::new(fd).map_err(|e| Error::os(owner.program(), Step::Pipe, e));
        // Build the handle first, so that a failure below drops it (which
        // stops and reaps the child) instead of leaking it.
        let mut child = AsyncChild {
            watch: WatchCell(Watch::new(&process)),
            process,
            stdin: None,
            stdout: None,
            stderr: None,
            stop_on_drop: self.stop_on_drop,
            max_chunk: self.max_chunk,
            prefer_stderr: false,
        };
        if let Some(fd) = ends.stdin {
            child.stdin = Some(AsyncChildStdin {
                fd: register(fd)?,
                io: io.clone(),
                eof: ends.stdin_eof,
            });
        }
        if let Some(fd) = ends.stdout {
            child.stdout = Some(AsyncChildStdout {
                fd: register(fd)?,
                io: io.clone(),
            });
        }
        if let Some(fd) = ends.stderr {
            child.stderr = Some(AsyncChildStderr {
                fd: register(fd)?,
                io: io.clone(),
            });
        }
        Ok(child)
    }
}

/// One chunk from a piped end of the handle (`None` at end of file).
/// The stdin pipe, or the error for a handle without one.
fn piped<'a>(
    stdin: &'a mut Option<AsyncChildStdin>,
    program: &crate::error::Who,
) -> Result<&'a mut AsyncChildStdin, Error> {
    stdin.as_mut().ok_or_else(|| not_piped(program, "stdin"))
}

async fn read_end(
    end: Option<&Registered>,
    program: &crate::error::Who,
    what: &str,
    max: usize,
) -> Result<Option<Bytes>, Error> {
    let end = end.ok_or_else(|| not_piped(program, what))?;
    poll_fn(|cx| end.poll_read_chunk(cx, max))
        .await
        .map_err(|e| Error::os(program, Step::Read, e))
}

impl AsyncChild {
    /// A snapshot of the child: as [`Child::info`](crate::Child::info).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{ChildState, Command, Stdio};
    /// let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn_async()?;
    /// child.write_all(b"four").await?;
    /// assert_eq!(child.read().await?.as_deref(), Some(&b"four"[..]));
    /// let info = child.info();
    /// assert_eq!((info.stdin_written, info.stdout_read, info.state), (4, 4, ChildState::Running));
    /// child.close_stdin();
    /// child.wait().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn info(&self) -> crate::ChildInfo {
        crate::ChildInfo::of(
            &self.process,
            [
                self.stdin.as_ref().map(|p| std::os::fd::AsFd::as_fd(p)),
                self.stdout.as_ref().map(|p| std::os::fd::AsFd::as_fd(p)),
                self.stderr.as_ref().map(|p| std::os::fd::AsFd::as_fd(p)),
            ],
        )
    }

    /// The child's process id.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Stdio};
    /// let mut child = Command::shell("echo $$").stdout(Stdio::piped()).spawn_async()?;
    /// let pid = child.pid(); // the shell prints its own pid
    /// assert_eq!(child.read().await?, Some(format!("{pid}\n").into()));
    /// assert!(child.wait().await?.success());
    /// # Ok(())
    /// # }
    /// ```
    pub fn pid(&self) -> u32 {
        self.process.pid() as u32
    }

    /// Closes stdin: the child reads end-of-file. Idempotent.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Stdio};
    /// let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn_async()?;
    /// child.write_all(b"abc").await?;
    /// child.close_stdin(); // same as `drop(child.stdin.take())`
    /// child.close_stdin();
    /// assert!(child.stdin.is_none());
    /// assert_eq!(child.read().await?.as_deref(), Some(&b"abc"[..]));
    /// assert_eq!(child.read().await?, None); // cat saw end-of-file and exited
    /// assert!(child.wait().await?.success());
    /// # Ok(())
    /// # }
    /// ```
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// As [`Child::resize`](crate::Child::resize).
    ///
    /// # Errors
    ///
    /// As [`Child::resize`](crate::Child::resize).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Pty};
    /// let mut child = Command::shell("read x; stty size").pty(Pty::new()).spawn_async()?;
    /// child.resize(30, 90)?;
    /// child.write_all(b"\n").await?;
    /// assert_eq!(child.read().await?.as_deref(), Some(&b"30 90\r\n"[..]));
    /// assert!(child.wait().await?.success());
    /// # Ok(())
    /// # }
    /// ```
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), Error> {
        let who = self.process.program();
        self.process.terminal(|t| t.resize(who, rows, cols))
    }

    /// As [`Child::set_terminal_modes`](crate::Child::set_terminal_modes).
    ///
    /// # Errors
    ///
    /// As [`Child::set_terminal_modes`](crate::Child::set_terminal_modes).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Pty, Signal, TerminalMode};
    /// let mut child = Command::new("cat").pty(Pty::new()).spawn_async()?;
    /// child.set_terminal_modes([(TerminalMode::Vintr, 2)])?;
    /// child.write_all(&[2]).await?;
    /// assert_eq!(child.wait().await?.signal(), Some(Signal::INT));
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_terminal_modes(
        &self,
        modes: impl IntoIterator<Item = (TerminalMode, u32)>,
    ) -> Result<(), Error> {
        let modes: Vec<_> = modes.into_iter().collect();
        let who = self.process.program();
        self.process.terminal(|t| t.set_modes(who, &modes))
    }

    /// As [`Child::hang_up`](crate::Child::hang_up).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Pty, Signal};
    /// let mut child = Command::new("cat").pty(Pty::new()).spawn_async()?;
    /// child.hang_up();
    /// assert_eq!(child.wait().await?.signal(), Some(Signal::HUP));
    /// # Ok(())
    /// # }
    /// ```
    pub fn hang_up(&mut self) {
        let Some(on) = self.process.pty_streams() else {
            return;
        };
        if on[0] {
            if let Some(mut stdin) = self.stdin.take() {
                if let Some(eof) = stdin.eof.take() {
                    eof.disarm();
                }
            }
        }
        if on[1] {
            self.stdout = None;
        } else if on[2] {
            self.stderr = None;
        }
        self.process.hang_up();
    }

    /// As [`Child::signal`](crate::Child::signal).
    ///
    /// # Errors
    ///
    /// As [`Child::signal`](crate::Child::signal).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, ErrorKind, Signal};
    /// let mut child = Command::new("sleep").arg("100").spawn_async()?;
    /// child.signal(Signal::USR1)?;
    /// assert_eq!(child.wait().await?.signal(), Some(Signal::USR1));
    /// assert_eq!(child.signal(Signal::USR1).unwrap_err().kind(), ErrorKind::AlreadyReaped);
    /// # Ok(())
    /// # }
    /// ```
    pub fn signal(&self, signal: Signal) -> Result<(), Error> {
        self.process.signal(signal)
    }

    /// As [`Child::signal_group`](crate::Child::signal_group).
    ///
    /// # Errors
    ///
    /// As [`Child::signal_group`](crate::Child::signal_group).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Signal};
    /// // stop_group(true): the shell leads a group of its own, with its sleep.
    /// let mut child = Command::shell("sleep 100 & wait").stop_group(true).spawn_async()?;
    /// child.signal_group(Signal::TERM)?; // the shell and the sleep
    /// // The wait returns once the whole group is gone.
    /// assert_eq!(child.wait().await?.signal(), Some(Signal::TERM));
    /// # Ok(())
    /// # }
    /// ```
    pub fn signal_group(&self, signal: Signal) -> Result<(), Error> {
        self.process.signal_group(signal)
    }

    /// As [`Child::kill`](crate::Child::kill).
    ///
    /// # Errors
    ///
    /// As [`Child::kill`](crate::Child::kill).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Ended, Signal};
    /// let mut child = Command::new("sleep").arg("100").spawn_async()?;
    /// child.kill()?;
    /// let status = child.wait().await?;
    /// assert_eq!((status.signal(), status.ended()), (Some(Signal::KILL), Ended::Requested));
    /// # Ok(())
    /// # }
    /// ```
    pub fn kill(&self) -> Result<(), Error> {
        self.process.kill()
    }

    /// A handle that signals the child from anywhere.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Signal};
    /// let mut child = Command::new("sleep").arg("100").spawn_async()?;
    /// let signaller = child.signaller();
    /// assert_eq!(signaller.pid(), child.pid());
    /// std::thread::spawn(move || signaller.signal(Signal::INT));
    /// assert_eq!(child.wait().await?.signal(), Some(Signal::INT));
    /// # Ok(())
    /// # }
    /// ```
    pub fn signaller(&self) -> Signaller {
        Signaller::new(self.process.clone())
    }

    /// Waits for the child to finish, as [`Child::wait`](crate::Child::wait)
    /// (stdin is closed first; the timeout, the stop sequence and the group
    /// cleanup are driven meanwhile). Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`Child::wait`](crate::Child::wait).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Stdio};
    /// let mut child = Command::shell("exit 7").spawn_async()?;
    /// assert_eq!(child.wait().await?.code(), Some(7));
    /// // Waiting again gives the same status.
    /// assert_eq!(child.wait().await?.code(), Some(7));
    ///
    /// // stdin is closed first: cat reads end-of-file and exits.
    /// let mut child = Command::new("cat").stdin(Stdio::piped()).spawn_async()?;
    /// assert_eq!(child.wait().await?.code(), Some(0));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait(&mut self) -> Result<ExitStatus, Error> {
        self.close_stdin();
        let process = self.process.clone();
        let watch = &mut self.watch.0;
        poll_fn(|cx| watch.poll_wait(cx, &process)).await
    }

    /// The status if the child has finished, without waiting.
    ///
    /// # Errors
    ///
    /// As [`Child::try_wait`](crate::Child::try_wait).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Signal};
    /// let mut child = Command::new("sleep").arg("100").spawn_async()?;
    /// assert_eq!(child.try_wait()?, None);
    /// child.kill()?;
    /// child.wait().await?;
    /// assert_eq!(child.try_wait()?.and_then(|s| s.signal()), Some(Signal::KILL));
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        self.process.try_wait()
    }

    /// Waits at most `timeout`; `Ok(None)` if the child is still running.
    /// Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`wait`](AsyncChild::wait).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Signal};
    /// use std::time::Duration;
    /// let mut child = Command::new("sleep").arg("100").spawn_async()?;
    /// assert_eq!(child.wait_timeout(Duration::from_millis(10)).await?, None);
    /// child.kill()?;
    /// // Returns as soon as the child is over, long before the limit.
    /// let status = child.wait_timeout(Duration::from_secs(60)).await?;
    /// assert_eq!(status.and_then(|s| s.signal()), Some(Signal::KILL));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        let process = self.process.clone();
        let watch = &mut self.watch.0;
        let fut = poll_fn(|cx| watch.poll_wait(cx, &process));
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Runs the stop sequence and waits for the end, as
    /// [`Child::stop`](crate::Child::stop). Cancel-safe: once started, the
    /// sequence goes on (in the background) if the future is dropped.
    ///
    /// # Errors
    ///
    /// As [`wait`](AsyncChild::wait).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Signal};
    /// let mut child = Command::new("sleep").arg("100").spawn_async()?;
    /// assert_eq!(child.stop().await?.signal(), Some(Signal::TERM));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn stop(&mut self) -> Result<ExitStatus, Error> {
        self.close_stdin();
        self.process.start_stop(Ended::Requested);
        self.wait().await
    }

    /// Starts the stop sequence without waiting for it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Ended, Signal};
    /// let mut child = Command::new("sleep").arg("100").spawn_async()?;
    /// child.start_stop(); // returns at once
    /// let status = child.wait().await?;
    /// assert_eq!((status.signal(), status.ended()), (Some(Signal::TERM), Ended::Requested));
    /// # Ok(())
    /// # }
    /// ```
    pub fn start_stop(&self) {
        self.process.start_stop(Ended::Requested);
        crate::engine::reaper::adopt(self.process.clone());
    }

    /// Reads the next chunk of stdout; `None` at end of file. Cancel-safe.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when stdout is not piped; [`Step::Read`]
    /// OS errors.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Stdio};
    /// let mut child = Command::new("echo").arg("hi").stdout(Stdio::piped()).spawn_async()?;
    /// assert_eq!(child.read().await?.as_deref(), Some(&b"hi\n"[..]));
    /// assert_eq!(child.read().await?, None);
    /// assert!(child.wait().await?.success());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn read(&mut self) -> Result<Option<Bytes>, Error> {
        let out = self.stdout.as_ref().map(|p| &p.fd);
        let chunk = read_end(out, self.process.program(), "stdout", self.max_chunk).await?;
        self.process
            .io()
            .add(1, chunk.as_ref().map_or(0, Bytes::len));
        Ok(chunk)
    }

    /// Reads the next chunk of stderr; `None` at end of file. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`read`](AsyncChild::read).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Stdio};
    /// let mut child = Command::shell("echo oops >&2").stderr(Stdio::piped()).spawn_async()?;
    /// assert_eq!(child.read_stderr().await?.as_deref(), Some(&b"oops\n"[..]));
    /// assert_eq!(child.read_stderr().await?, None);
    /// assert!(child.wait().await?.success());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn read_stderr(&mut self) -> Result<Option<Bytes>, Error> {
        let err = self.stderr.as_ref().map(|p| &p.fd);
        let chunk = read_end(err, self.process.program(), "stderr", self.max_chunk).await?;
        self.process
            .io()
            .add(2, chunk.as_ref().map_or(0, Bytes::len));
        Ok(chunk)
    }

    /// Whichever of stdout and stderr has data first, tagged; `None` when
    /// both are at end of file. As [`Child::read_any`](crate::Child::read_any).
    /// Cancel-safe.
    ///
    /// # Errors
    ///
    /// [`Step::Read`] OS errors.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, OutputChunk, Stdio};
    /// // stdout comes only once we answer on stdin: the order is certain.
    /// let mut child = Command::shell("echo err >&2; exec 2>&-; read go; echo out")
    ///     .stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn_async()?;
    /// assert_eq!(child.read_any().await?, Some(OutputChunk::Stderr("err\n".into())));
    /// child.write_all(b"go\n").await?;
    /// assert_eq!(child.read_any().await?, Some(OutputChunk::Stdout("out\n".into())));
    /// assert_eq!(child.read_any().await?, None);
    /// assert!(child.wait().await?.success());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn read_any(&mut self) -> Result<Option<OutputChunk>, Error> {
        let max = self.max_chunk;
        let program = self.process.program();
        poll_fn(|cx| {
            loop {
                if self.stdout.is_none() && self.stderr.is_none() {
                    return Poll::Ready(Ok(None));
                }
                let order = if self.prefer_stderr {
                    [true, false]
                } else {
                    [false, true]
                };
                let mut progressed = false;
                for is_err in order {
                    let polled = if is_err {
                        self.stderr.as_ref().map(|p| p.fd.poll_read_chunk(cx, max))
                    } else {
                        self.stdout.as_ref().map(|p| p.fd.poll_read_chunk(cx, max))
                    };
                    match polled {
                        None | Some(Poll::Pending) => {}
                        Some(Poll::Ready(Ok(Some(chunk)))) => {
                            self.process.io().add(1 + usize::from(is_err), chunk.len());
                            self.prefer_stderr = !is_err;
                            let ev = if is_err {
                                OutputChunk::Stderr(chunk)
                            } else {
                                OutputChunk::Stdout(chunk)
                            };
                            return Poll::Ready(Ok(Some(ev)));
                        }
                        Some(Poll::Ready(Ok(None))) => {
                            if is_err {
                                self.stderr = None;
                            } else {
                                self.stdout = None;
                            }
                            progressed = true;
                        }
                        Some(Poll::Ready(Err(e))) => {
                            return Poll::Ready(Err(Error::os(program, Step::Read, e)));
                        }
                    }
                }
                if !progressed {
                    return Poll::Pending;
                }
            }
        })
        .await
    }

    /// Writes all of `data` to stdin, waiting while the pipe is full. Not
    /// cancel-safe (a dropped future may have written part of the data).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when stdin is not piped; a [`Step::Write`]
    /// error (`BrokenPipe`) once the child no longer reads.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Stdio};
    /// let mut child = Command::new("bc").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn_async()?;
    /// child.write_all(b"2 ^ 10\n").await?;
    /// assert_eq!(child.read().await?.as_deref(), Some(&b"1024\n"[..]));
    /// assert!(child.wait().await?.success()); // bc ends at end-of-file
    /// # Ok(())
    /// # }
    /// ```
    pub async fn write_all(&mut self, data: &[u8]) -> Result<(), Error> {
        let program = self.process.program();
        piped(&mut self.stdin, program)?
            .write_all(data)
            .await
            .map_err(|e| Error::os(program, Step::Write, e))
    }

    /// Writes some of `data` to stdin once the pipe can take it; returns how
    /// much. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`write_all`](AsyncChild::write_all).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Stdio};
    /// let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn_async()?;
    /// // The pipe is empty, and a write of at most PIPE_BUF bytes is atomic.
    /// assert_eq!(child.write(b"abc").await?, 3);
    /// child.close_stdin();
    /// assert_eq!(child.read().await?.as_deref(), Some(&b"abc"[..]));
    /// assert!(child.wait().await?.success());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn write(&mut self, data: &[u8]) -> Result<usize, Error> {
        let program = self.process.program();
        piped(&mut self.stdin, program)?
            .write(data)
            .await
            .map_err(|e| Error::os(program, Step::Write, e))
    }

    /// Lets the child run on after the handle is dropped (it is still
    /// reaped in the background).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use procession::{Command, Stdio};
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn_async()?;
    /// let (mut stdin, mut stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    /// child.detach(); // the handle is gone, cat is not stopped
    /// stdin.write_all(b"still here\n").await?;
    /// drop(stdin); // cat reads end-of-file, and exits on its own
    /// let mut echoed = Vec::new();
    /// stdout.read_to_end(&mut echoed).await?;
    /// assert_eq!(echoed, b"still here\n");
    /// # // The background reaper reaps it: wait for that, so the example leaves nothing.
    /// # assert!(procession::__test_support::wait_for_reaper());
    /// # Ok(())
    /// # }
    /// ```
    pub fn detach(mut self) {
        self.stop_on_drop = false;
    }
}

impl Drop for AsyncChild {
    fn drop(&mut self) {
        self.stdin = None;
        self.stdout = None;
        self.stderr = None;
        Process::release(&self.process, self.stop_on_drop);
    }
}

const _: fn() = || {
    fn is<T: Send + Sync>() {}
    is::<AsyncChild>();
};

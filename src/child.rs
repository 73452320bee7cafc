//! [`Child`]: the handle of a running program.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use std::time::{Duration, Instant};

use crate::ChildInfo;
use crate::engine::process::Process;
use crate::engine::reaper;
use crate::engine::spawn::Spawned;
use crate::error::{ErrorKind, Step, Subject, Who};
use crate::input::InputThread;
use crate::pipe::{ChildStderr, ChildStdin, ChildStdout, Counted};
use crate::status::Ended;
use crate::stream::{Cap, stop_for_cap};
use crate::sys::fd::{self, Interest};
use crate::{Decode, Error, ExitStatus, Output, OutputChunk, PacketCodec, Signal, TerminalMode};

/// The error for an operation on a pipe end the handle does not have.
pub(crate) fn not_piped(program: impl Subject, what: &str) -> Error {
    Error::new(
        program,
        if what == "stdin" {
            Step::Write
        } else {
            Step::Read
        },
        ErrorKind::InvalidInput,
        Some(format!("{what} is not piped (or was taken or closed)")),
        None,
    )
}

/// One non-blocking read of at most `max` bytes: `Ok(None)` at end of file.
fn read_now(fd: BorrowedFd<'_>, max: usize) -> io::Result<Option<Bytes>> {
    let mut buf = BytesMut::new();
    match fd::read_buf(fd, &mut buf, max)? {
        0 => Ok(None),
        _ => Ok(Some(buf.freeze())),
    }
}

/// [`read_chunk`] on a pipe end of the handle (`None` again on every read
/// after end of file).
fn read_pipe<P: AsFd + Counted>(
    slot: &mut Option<P>,
    program: &Who,
    what: &str,
    max: usize,
) -> Result<Option<Bytes>, Error> {
    let end = slot.as_ref().ok_or_else(|| not_piped(program, what))?;
    let chunk = read_chunk(end.as_fd(), max).map_err(|e| Error::os(program, Step::Read, e))?;
    end.count(chunk.as_ref().map_or(0, Bytes::len));
    Ok(chunk)
}

/// Waits until `fd` is readable, then reads one chunk.
fn read_chunk(fd: BorrowedFd<'_>, max: usize) -> io::Result<Option<Bytes>> {
    loop {
        match read_now(fd, max) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                fd::poll_one(fd, Interest::Read, None)?;
            }
            other => return other,
        }
    }
}

/// A running (or finished, not yet dropped) child process.
///
/// It is `Send` and `Sync`: move it to another thread, or share it and use
/// [`Child::signaller`] to signal it while one thread waits.
///
/// # Drop
///
/// Dropping a `Child` never blocks. If the child is still running, its stop
/// sequence starts (unless [`Command::stop_on_drop`](crate::Command::stop_on_drop)
/// is off or [`detach`](Child::detach) was called) and the background reaper
/// finishes the sequence and reaps it. No zombie is left behind either way.
///
/// ```
/// use procession::Command;
/// let mut child = Command::new("sleep").arg("100").spawn()?;
/// assert!(child.try_wait()?.is_none());
/// drop(child); // SIGTERM now; reaped in the background
/// # assert!(procession::__test_support::wait_for_reaper());
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Debug)]
pub struct Child {
    process: Arc<Process>,
    /// The child's stdin pipe, when [`Stdio::piped`](crate::Stdio::piped)
    /// (as in `std`: `child.stdin.take()` takes it, dropping it closes it).
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// use std::io::Write;
    /// let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    /// let mut stdin = child.stdin.take().unwrap();
    /// stdin.write_all(b"hi")?;
    /// drop(stdin); // cat sees end-of-file
    /// assert_eq!(child.wait_with_output()?.stdout, b"hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub stdin: Option<ChildStdin>,
    /// The child's stdout pipe, when piped.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr pipe, when piped.
    pub stderr: Option<ChildStderr>,
    stop_on_drop: bool,
    max_chunk: usize,
    /// `read_any` alternates which stream it looks at first.
    prefer_stderr: bool,
    /// The thread feeding the command's `input`, until its result is taken.
    input: Option<InputThread>,
    /// Whether a broken pipe on that input is not an error.
    ignore_epipe: bool,
    /// How long `wait` gives that thread to report after the exit.
    drain_timeout: Duration,
    /// `Command::max_output`, for `wait_with_output`.
    max_output: Option<usize>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid())
            .field("program", &self.program())
            .finish_non_exhaustive()
    }
}

impl Child {
    pub(crate) fn new(spawned: Spawned, stop_on_drop: bool, max_chunk: usize) -> Child {
        let ends = spawned.ends;
        let stdin_eof = ends.stdin_eof;
        let io = spawned.process.io().clone();
        Child {
            process: spawned.process,
            stdin: ends
                .stdin
                .map(|fd| ChildStdin::with_eof(fd, stdin_eof).counted(&io)),
            stdout: ends.stdout.map(|fd| ChildStdout::new(fd).counted(&io)),
            stderr: ends.stderr.map(|fd| ChildStderr::new(fd).counted(&io)),
            stop_on_drop,
            max_chunk,
            prefer_stderr: false,
            input: None,
            ignore_epipe: true,
            drain_timeout: Duration::ZERO,
            max_output: None,
        }
    }

    /// The child's process (its state machine).
    pub(crate) fn process(&self) -> &Arc<Process> {
        &self.process
    }

    /// The command's `max_output`, for `wait_with_output`.
    pub(crate) fn with_max_output(mut self, max_output: Option<usize>) -> Child {
        self.max_output = max_output;
        self
    }

    /// The child, fed by `thread` (the command's `input`): its failure is
    /// reported by the wait that sees the exit.
    pub(crate) fn fed_by(
        mut self,
        thread: InputThread,
        ignore_epipe: bool,
        drain_timeout: Duration,
    ) -> Child {
        self.input = Some(thread);
        self.ignore_epipe = ignore_epipe;
        self.drain_timeout = drain_timeout;
        self
    }

    /// `status`, or the error of an input that failed (carrying `status`).
    /// The input thread reports before it closes stdin, so a failure that
    /// led to the exit (end-of-file) is always there by now. A thread still
    /// feeding gets up to `limit` (the drain timeout for `wait`; nothing
    /// for the non-blocking calls): one blocked writing to the exited child
    /// gets its broken pipe at once. After that it is left to end on its
    /// own (it holds the only stdin end).
    fn with_input_result(
        &mut self,
        status: ExitStatus,
        limit: Duration,
    ) -> Result<ExitStatus, Error> {
        let Some(result) = self.input.as_ref().and_then(|t| t.wait_result(limit)) else {
            return Ok(status);
        };
        self.input = None;
        match result {
            Err(e) if !(self.ignore_epipe && e.kind() == io::ErrorKind::BrokenPipe) => {
                Err(Error::os(self.process.program(), Step::Write, e)
                    .with_detail("feeding the input")
                    .with_status(status))
            }
            _ => Ok(status),
        }
    }

    /// Reads the next chunk of stdout (at most
    /// [`max_chunk_size`](crate::Command::max_chunk_size) bytes), waiting
    /// until the child writes; `None` at end of file. Nothing is read before
    /// it is asked for.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when stdout is not piped or was taken;
    /// [`Step::Read`] OS errors.
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// let mut child = Command::new("echo").arg("hi").stdout(Stdio::piped()).spawn()?;
    /// assert_eq!(child.read()?.as_deref(), Some(&b"hi\n"[..]));
    /// assert_eq!(child.read()?, None);
    /// child.wait()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn read(&mut self) -> Result<Option<Bytes>, Error> {
        read_pipe(
            &mut self.stdout,
            self.process.program(),
            "stdout",
            self.max_chunk,
        )
    }

    /// Reads the next chunk of stderr; `None` at end of file.
    ///
    /// # Errors
    ///
    /// As [`read`](Child::read).
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// let mut child = Command::shell("echo oops >&2").stderr(Stdio::piped()).spawn()?;
    /// assert_eq!(child.read_stderr()?.as_deref(), Some(&b"oops\n"[..]));
    /// child.wait()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn read_stderr(&mut self) -> Result<Option<Bytes>, Error> {
        read_pipe(
            &mut self.stderr,
            self.process.program(),
            "stderr",
            self.max_chunk,
        )
    }

    /// Reads whichever of stdout and stderr has data first, tagged
    /// ([`OutputChunk::Stdout`] or [`OutputChunk::Stderr`]). When one
    /// stream ends it goes on with the other; `None` only when both are at
    /// end of file (or not piped).
    ///
    /// # Errors
    ///
    /// [`Step::Read`] and [`Step::Wait`] OS errors.
    ///
    /// ```
    /// use procession::{Command, OutputChunk, Stdio};
    /// // stdout comes only once we answer on stdin: the order is certain.
    /// let mut child = Command::shell("echo err >&2; exec 2>&-; read go; echo out")
    ///     .stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    /// assert_eq!(child.read_any()?, Some(OutputChunk::Stderr("err\n".into())));
    /// child.write_all(b"go\n")?;
    /// assert_eq!(child.read_any()?, Some(OutputChunk::Stdout("out\n".into())));
    /// assert_eq!(child.read_any()?, None);
    /// child.wait()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn read_any(&mut self) -> Result<Option<OutputChunk>, Error> {
        let program = self.process.program();
        loop {
            let out = self.stdout.as_ref().map(|f| f.as_fd());
            let err = self.stderr.as_ref().map(|f| f.as_fd());
            if out.is_none() && err.is_none() {
                return Ok(None);
            }
            let mut fds = [out, err].map(|f| libc::pollfd {
                fd: f.map_or(-1, |f| f.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            });
            fd::poll_many(&mut fds, None).map_err(|e| Error::os(program, Step::Wait, e))?;
            let order = if self.prefer_stderr { [1, 0] } else { [0, 1] };
            for i in order {
                if fds[i].fd < 0 || fds[i].revents == 0 {
                    continue;
                }
                let max = self.max_chunk;
                let slot_fd = if i == 0 {
                    self.stdout.as_ref().map(|f| f.as_fd())
                } else {
                    self.stderr.as_ref().map(|f| f.as_fd())
                };
                let Some(f) = slot_fd else { continue };
                match read_now(f, max) {
                    Ok(Some(chunk)) => {
                        self.process.io().add(i + 1, chunk.len());
                        self.prefer_stderr = i == 0;
                        return Ok(Some(if i == 0 {
                            OutputChunk::Stdout(chunk)
                        } else {
                            OutputChunk::Stderr(chunk)
                        }));
                    }
                    Ok(None) => {
                        if i == 0 {
                            self.stdout = None;
                        } else {
                            self.stderr = None;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(Error::os(program, Step::Read, e)),
                }
            }
        }
    }

    /// Writes some of `data` to the child's stdin, waiting until the pipe
    /// takes at least one byte; returns how many it took. (The pipe is
    /// blocking: `write(2)` usually returns only once all of `data` is in,
    /// waiting while the child drains the pipe; a signal can cut it short.)
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when stdin is not piped; a [`Step::Write`]
    /// error with the OS error `EPIPE` (`io::ErrorKind::BrokenPipe`) once the
    /// child no longer reads.
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    /// let n = child.write(b"abc")?;
    /// assert!(n > 0 && n <= 3);
    /// child.close_stdin();
    /// assert!(child.wait()?.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn write(&mut self, data: &[u8]) -> Result<usize, Error> {
        let program = self.process.program();
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| not_piped(self.process.program(), "stdin"))?;
        stdin
            .write(data)
            .map_err(|e| Error::os(program, Step::Write, e))
    }

    /// Writes all of `data` to the child's stdin, waiting while the pipe is
    /// full.
    ///
    /// # Errors
    ///
    /// As [`write`](Child::write).
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// let mut child = Command::new("bc").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    /// child.write_all(b"1 + 1\n")?;
    /// assert_eq!(child.read()?.as_deref(), Some(&b"2\n"[..]));
    /// child.close_stdin();
    /// assert!(child.wait()?.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn write_all(&mut self, data: &[u8]) -> Result<(), Error> {
        let program = self.process.program();
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| not_piped(self.process.program(), "stdin"))?;
        stdin
            .write_all(data)
            .map_err(|e| Error::os(program, Step::Write, e))
    }

    /// Reads the next frame of stdout with `decoder` (a [`LineCodec`](crate::LineCodec) for
    /// lines, a [`PacketCodec`] for packets, or any [`Decode`]): reads
    /// chunks until a whole frame is there; `None` once stdout has ended
    /// and every frame is out. Keep the decoder between calls: it holds
    /// the bytes read past the frame.
    ///
    /// # Errors
    ///
    /// As [`read`](Child::read), and [`ErrorKind::InvalidData`] when stdout
    /// breaks the framing ([`Error::frame_error`]).
    ///
    /// ```
    /// use procession::{Command, Line, LineCodec, Stdio};
    /// let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    /// let mut lines = LineCodec::new(80);
    /// child.write_all(b"one\ntw")?;
    /// assert_eq!(child.read_frame(&mut lines)?, Some(Line::complete("one")));
    /// child.write_all(b"o\nend")?;
    /// assert_eq!(child.read_frame(&mut lines)?, Some(Line::complete("two")));
    /// child.close_stdin();
    /// assert_eq!(child.read_frame(&mut lines)?, Some(Line::incomplete("end")));
    /// assert_eq!(child.read_frame(&mut lines)?, None);
    /// child.wait()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn read_frame<D: Decode>(&mut self, decoder: &mut D) -> Result<Option<D::Frame>, Error> {
        loop {
            let frame = decoder
                .next_frame()
                .map_err(|e| Error::framing(self.process.program(), e))?;
            if frame.is_some() {
                return Ok(frame);
            }
            match self.read()? {
                Some(chunk) => decoder.push(chunk),
                None => {
                    decoder.finish();
                    return decoder
                        .next_frame()
                        .map_err(|e| Error::framing(self.process.program(), e));
                }
            }
        }
    }

    /// Writes `data` to stdin as one packet of `codec`'s framing: its
    /// length as a 1-, 2- or 4-byte big-endian header, then the bytes
    /// (Erlang Port's `{packet, N}` on the way in).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when `data` is longer than the codec's
    /// maximum ([`Error::frame_error`] says by how much): nothing is
    /// written then, never a truncated packet. Otherwise as
    /// [`write_all`](Child::write_all).
    ///
    /// ```
    /// use procession::{Command, ErrorKind, PacketCodec, PacketSize, Stdio};
    /// let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    /// let mut codec = PacketCodec::new(PacketSize::One);
    /// child.write_packet(&codec, b"ping")?;
    /// assert_eq!(child.write_packet(&codec, &[0; 256]).unwrap_err().kind(), ErrorKind::InvalidInput);
    /// assert_eq!(child.read_frame(&mut codec)?.unwrap(), "ping"); // cat sent it back
    /// child.close_stdin();
    /// assert_eq!(child.read_frame(&mut codec)?, None);
    /// child.wait()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn write_packet(&mut self, codec: &PacketCodec, data: &[u8]) -> Result<(), Error> {
        let mut framed = BytesMut::new();
        codec
            .encode(data, &mut framed)
            .map_err(|e| Error::unframable(self.process.program(), e))?;
        self.write_all(&framed)
    }

    /// A snapshot of the child: pid, command line, bytes written and read,
    /// bytes still queued in its pipes, and whether it has exited (Erlang's
    /// `port_info`). It never blocks and never reaps.
    ///
    /// ```
    /// use procession::{ChildState, Command, Stdio};
    /// let mut child = Command::new("printf").arg("abc").stdout(Stdio::piped()).spawn()?;
    /// let status = loop {
    ///     if let ChildState::Exited(s) = child.info().state { break s; }
    ///     std::thread::yield_now();
    /// };
    /// assert!(status.success());
    /// let info = child.info();
    /// assert_eq!((info.stdout_queued, info.stdout_read), (Some(3), 0)); // written, not read yet
    /// assert_eq!(child.read()?.as_deref(), Some(&b"abc"[..]));
    /// assert_eq!((child.info().stdout_queued, child.info().stdout_read), (Some(0), 3));
    /// child.wait()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn info(&self) -> ChildInfo {
        ChildInfo::of(
            &self.process,
            [
                self.stdin.as_ref().map(|p| p.as_fd()),
                self.stdout.as_ref().map(|p| p.as_fd()),
                self.stderr.as_ref().map(|p| p.as_fd()),
            ],
        )
    }

    /// The child's process id. It names the child until it is reaped; use
    /// [`signal`](Child::signal) rather than `kill(2)` on it.
    ///
    /// ```
    /// let mut child = procession::Command::new("true").spawn()?;
    /// assert!(child.pid() > 0);
    /// child.wait()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.process.pid() as u32
    }

    /// Closes the stdin pipe, so the child reads end-of-file. Idempotent.
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// let mut child = Command::new("cat").stdin(Stdio::piped()).spawn()?;
    /// child.close_stdin(); // same as `drop(child.stdin.take())`
    /// assert!(child.stdin.is_none());
    /// assert!(child.wait()?.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Changes the window size of the child's terminal
    /// ([`Command::pty`](crate::Command::pty); erlexec's `winsz/3`): the
    /// child's foreground process group gets SIGWINCH.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) for a child without
    /// a pty; [`AlreadyReaped`](crate::ErrorKind::AlreadyReaped) (step
    /// [`Terminal`](crate::Step::Terminal)) once the child was reaped or the
    /// terminal hung up; the OS error of `TIOCSWINSZ`.
    ///
    /// ```
    /// use procession::{Command, Pty, Stdio};
    /// // The shell reports its size when told the window changed.
    /// let mut child = Command::shell("trap 'stty size' WINCH; echo ready; while :; do sleep 0.01; done")
    ///     .pty(Pty::new().size(24, 80)).spawn()?;
    /// assert_eq!(&child.read()?.unwrap()[..], b"ready\r\n");
    /// child.resize(50, 132)?;
    /// assert_eq!(&child.read()?.unwrap()[..], b"50 132\r\n");
    /// # child.kill()?; child.wait()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), Error> {
        let who = self.process.program();
        self.process.terminal(|t| t.resize(who, rows, cols))
    }

    /// Changes terminal modes of the child's terminal now (erlexec's
    /// `pty_opts/2`), as [`Pty::mode`](crate::Pty::mode) does at start.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) naming every bad
    /// mode (nothing is changed then), or for a child without a pty; the OS
    /// error of `tcsetattr`.
    ///
    /// ```
    /// use procession::{Command, Pty, TerminalMode};
    /// let mut child = Command::new("cat").pty(Pty::new()).spawn()?;
    /// child.set_terminal_modes([(TerminalMode::Echo, 1)])?;
    /// child.write_all(b"hi\n")?;
    /// // The terminal's echo, then cat's copy.
    /// let mut seen = Vec::new();
    /// while seen.len() < 8 {
    ///     seen.extend_from_slice(&child.read()?.unwrap());
    /// }
    /// assert_eq!(seen, b"hi\r\nhi\r\n");
    /// # child.kill()?; child.wait()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn set_terminal_modes(
        &self,
        modes: impl IntoIterator<Item = (TerminalMode, u32)>,
    ) -> Result<(), Error> {
        let modes: Vec<_> = modes.into_iter().collect();
        let who = self.process.program();
        self.process.terminal(|t| t.set_modes(who, &modes))
    }

    /// Hangs up the child's terminal, as a closing terminal window or a
    /// modem line does (erlexec's `eof` on a pty): every end of the
    /// terminal this handle holds is closed (output not read yet is lost),
    /// the child gets SIGHUP and its reads of the terminal end. A no-op
    /// without a pty. Compare [`close_stdin`](Child::close_stdin), which
    /// types end-of-file.
    ///
    /// ```
    /// use procession::{Command, Pty, Signal};
    /// let mut child = Command::new("cat").pty(Pty::new()).spawn()?;
    /// child.hang_up();
    /// assert_eq!(child.wait()?.signal(), Some(Signal::HUP));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn hang_up(&mut self) {
        let Some(on) = self.process.pty_streams() else {
            return;
        };
        if on[0] {
            if let Some(stdin) = self.stdin.take() {
                drop(OwnedFd::from(stdin));
            }
        }
        if on[1] {
            self.stdout = None;
        } else if on[2] {
            self.stderr = None;
        }
        self.process.hang_up();
    }

    /// Sends `signal` to the child alone, through its pidfd: a process that
    /// reused the pid after the child was reaped can never be hit.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::AlreadyReaped`](crate::ErrorKind::AlreadyReaped) once the
    /// child has been reaped (after [`wait`](Child::wait) returned), and the
    /// OS error if the kernel refuses.
    ///
    /// ```
    /// use procession::{Command, ErrorKind, Signal};
    /// let mut child = Command::new("sleep").arg("100").spawn()?;
    /// child.signal(Signal::USR1)?;
    /// assert_eq!(child.wait()?.signal(), Some(Signal::USR1));
    /// assert_eq!(child.signal(Signal::USR1).unwrap_err().kind(), ErrorKind::AlreadyReaped);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn signal(&self, signal: Signal) -> Result<(), Error> {
        self.process.signal(signal)
    }

    /// Sends `signal` to the child's process group (its own group by
    /// default, or the group it joined).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::AlreadyReaped`](crate::ErrorKind::AlreadyReaped) after
    /// reaping (the group id might since name another group), and
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the
    /// child stays in our own group.
    ///
    /// The leader (`sleep`, after `exec`) and a member that reports SIGUSR1.
    /// (Not SIGINT: `sh` starts background jobs with SIGINT ignored. The
    /// member ignores SIGTERM, so only SIGUSR1 can make it report, not the
    /// stop of the rest of the group after the leader's exit.)
    ///
    /// ```
    /// use procession::{Command, Signal, Stdio};
    /// let mut child = Command::shell(
    ///     "(trap '' TERM; trap 'echo member: USR1; exit 0' USR1; sleep 100 & echo ready; wait) & \
    ///      exec sleep 100")
    ///     .stop_group(true).stdout(Stdio::piped()).spawn()?;
    /// assert_eq!(child.read()?.as_deref(), Some(&b"ready\n"[..])); // the member's trap is set
    /// child.signal_group(Signal::USR1)?; // the leader, the member and its sleep
    /// assert_eq!(child.wait()?.signal(), Some(Signal::USR1));
    /// assert_eq!(child.read()?.as_deref(), Some(&b"member: USR1\n"[..]));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn signal_group(&self, signal: Signal) -> Result<(), Error> {
        self.process.signal_group(signal)
    }

    /// SIGKILL at once (to the whole group with
    /// [`stop_group`](crate::Command::stop_group)). Does not wait. The status
    /// then reports [`Ended::Requested`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::AlreadyReaped`](crate::ErrorKind::AlreadyReaped) after reaping.
    ///
    /// ```
    /// use procession::{Command, Ended, Signal};
    /// let mut child = Command::new("sleep").arg("100").spawn()?;
    /// child.kill()?;
    /// let status = child.wait()?;
    /// assert_eq!((status.signal(), status.ended()), (Some(Signal::KILL), Ended::Requested));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn kill(&self) -> Result<(), Error> {
        self.process.kill()
    }

    /// Runs the stop sequence and waits for the end: `stop_signal` (or
    /// `stop_command`), then SIGKILL after `stop_timeout` if the child is
    /// still running. Closes stdin first. Returns at once with the status if
    /// the child had already exited.
    ///
    /// # Errors
    ///
    /// As [`wait`](Child::wait).
    ///
    /// ```
    /// use procession::{Command, Ended, Signal};
    /// let mut child = Command::new("sleep").arg("100").spawn()?;
    /// let status = child.stop()?;
    /// assert_eq!(status.signal(), Some(Signal::TERM));
    /// assert_eq!(status.ended(), Ended::Requested);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn stop(&mut self) -> Result<ExitStatus, Error> {
        self.close_stdin();
        self.process.start_stop(Ended::Requested);
        self.wait()
    }

    /// Starts the stop sequence without waiting for it; the background reaper
    /// sends SIGKILL after `stop_timeout` if needed.
    ///
    /// ```
    /// use procession::{Command, Signal};
    /// let mut child = Command::new("sleep").arg("100").spawn()?;
    /// child.start_stop(); // returns at once
    /// assert_eq!(child.wait()?.signal(), Some(Signal::TERM));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn start_stop(&self) {
        self.process.start_stop(Ended::Requested);
        reaper::adopt(self.process.clone());
    }

    /// Waits for the child to exit and reaps it. Closes stdin first, so a
    /// child that reads until end-of-file can finish. The command's
    /// `timeout` and stop sequence are enforced while waiting. With
    /// [`stop_group`](crate::Command::stop_group) it also waits until the
    /// rest of the group is gone, and after a
    /// [`stop_command`](crate::Command::stop_command) until that command has
    /// ended: when it returns, nothing the child or its stop sequence started
    /// is left.
    ///
    /// # Errors
    ///
    /// [`Step::Wait`](crate::Step::Wait) errors from `poll`/`waitid`, or when
    /// something else reaped the child (a `SIGCHLD` set to `SIG_IGN`). When
    /// the command had an [`input`](crate::Command::input) that failed (a
    /// reader's error; a broken pipe with
    /// [`ignore_epipe(false)`](crate::Command::ignore_epipe)), the wait that
    /// sees the exit returns a [`Step::Write`](crate::Step::Write) error
    /// carrying the status ([`Error::exit_status`]); later waits return the
    /// status. An input thread still feeding when the child exits gets up to
    /// the [`pipe_drain_timeout`](crate::Command::pipe_drain_timeout) to
    /// report (one blocked writing to the exited child gets its broken pipe
    /// at once; one blocked reading its own source is left to end on its
    /// own, and its result is then not reported).
    ///
    /// ```
    /// let mut child = procession::Command::new("sh").args(["-c", "exit 7"]).spawn()?;
    /// assert_eq!(child.wait()?.code(), Some(7));
    /// // Waiting again gives the same status.
    /// assert_eq!(child.wait()?.code(), Some(7));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        self.close_stdin();
        match self.process.wait_until(None)? {
            Some(s) => self.with_input_result(s, self.drain_timeout),
            None => unreachable!("wait_until(None) returns only with a status"),
        }
    }

    /// Closes stdin, reads stdout and stderr to their end (both at once, so
    /// neither pipe can fill up and block the child), then waits: `std`'s
    /// `wait_with_output`. Pipes that were not piped (or were taken) give
    /// empty output.
    ///
    /// # Errors
    ///
    /// As [`wait`](Child::wait), and [`Step::Read`] errors.
    ///
    /// # Caveats
    ///
    /// As with `std`, a descendant that inherited stdout or stderr and runs
    /// on keeps them open, and this waits for it. The streaming methods
    /// ([`Command::output`](crate::Command::output)) end after
    /// [`pipe_drain_timeout`](crate::Command::pipe_drain_timeout) instead.
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// let child = Command::shell("echo out; echo err >&2")
    ///     .stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    /// let output = child.wait_with_output()?;
    /// assert_eq!((&output.stdout[..], &output.stderr[..]), (&b"out\n"[..], &b"err\n"[..]));
    /// assert!(output.status.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn wait_with_output(mut self) -> Result<Output, Error> {
        self.close_stdin();
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let mut cap = Cap::new(self.max_output);
        while let Some(chunk) = self.read_any()? {
            let over = match chunk {
                OutputChunk::Stdout(b) => cap.append("stdout", &mut stdout, &b),
                OutputChunk::Stderr(b) => cap.append("stderr", &mut stderr, &b),
            };
            if over {
                stop_for_cap(&self.process);
            }
        }
        let status = self.wait()?;
        cap.error(
            self.process.program(),
            Output {
                status,
                stdout,
                stderr,
            },
        )
    }

    /// The status if the child has finished (reaping it; see
    /// [`wait`](Child::wait) for what finished means with `stop_group`),
    /// `None` if not yet.
    ///
    /// # Errors
    ///
    /// As [`wait`](Child::wait).
    ///
    /// ```
    /// let mut child = procession::Command::new("sleep").arg("100").spawn()?;
    /// assert_eq!(child.try_wait()?, None);
    /// child.kill()?;
    /// child.wait()?;
    /// assert!(child.try_wait()?.is_some());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        match self.process.try_wait()? {
            Some(s) => self.with_input_result(s, Duration::ZERO).map(Some),
            None => Ok(None),
        }
    }

    /// Waits at most `timeout` for the child to exit; `Ok(None)` if it is
    /// still running then. Unlike [`wait`](Child::wait), stdin stays open.
    ///
    /// # Errors
    ///
    /// As [`wait`](Child::wait).
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut child = procession::Command::new("sleep").arg("100").spawn()?;
    /// assert!(child.wait_timeout(Duration::from_millis(10))?.is_none());
    /// # drop(child);
    /// # assert!(procession::__test_support::wait_for_reaper());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        match self
            .process
            .wait_until(Some(crate::engine::after(Instant::now(), timeout)))?
        {
            Some(s) => self.with_input_result(s, Duration::ZERO).map(Some),
            None => Ok(None),
        }
    }

    /// Lets the child run on after the handle is dropped, without the stop
    /// sequence. It is still reaped in the background when it exits, and a
    /// `timeout` set on the command still applies.
    ///
    /// ```
    /// use std::time::Duration;
    /// // Runs on for 50 ms after the handle is gone, then is reaped.
    /// procession::Command::new("sleep").arg("0.05").spawn()?.detach();
    /// # assert!(procession::__test_support::wait_for_reaper());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn detach(mut self) {
        self.stop_on_drop = false;
    }

    /// A cloneable handle that can signal the child from other threads while
    /// this one waits.
    ///
    /// ```
    /// use procession::{Command, Signal};
    /// let mut child = Command::new("sleep").arg("100").spawn()?;
    /// let signaller = child.signaller();
    /// std::thread::spawn(move || signaller.signal(Signal::INT));
    /// assert_eq!(child.wait()?.signal(), Some(Signal::INT));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn signaller(&self) -> Signaller {
        Signaller::new(self.process.clone())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Close our pipe ends first: a child blocked writing to us gets EPIPE.
        self.stdin = None;
        self.stdout = None;
        self.stderr = None;
        Process::release(&self.process, self.stop_on_drop);
    }
}

/// Signals (and, on a pty, resizes) a [`Child`] from any thread; see
/// [`Child::signaller`].
#[derive(Clone, Debug)]
pub struct Signaller {
    process: Arc<Process>,
}

impl Signaller {
    pub(crate) fn new(process: Arc<Process>) -> Signaller {
        Signaller { process }
    }

    /// As [`Child::signal`].
    ///
    /// # Errors
    ///
    /// As [`Child::signal`].
    pub fn signal(&self, signal: Signal) -> Result<(), Error> {
        self.process.signal(signal)
    }

    /// As [`Child::signal_group`].
    ///
    /// # Errors
    ///
    /// As [`Child::signal_group`].
    pub fn signal_group(&self, signal: Signal) -> Result<(), Error> {
        self.process.signal_group(signal)
    }

    /// As [`Child::start_stop`].
    pub fn start_stop(&self) {
        self.process.start_stop(Ended::Requested);
        reaper::adopt(self.process.clone());
    }

    /// As [`Child::resize`]: a thread that does not own the handle (one
    /// that follows the window size while another waits) can resize.
    ///
    /// # Errors
    ///
    /// As [`Child::resize`].
    ///
    /// ```
    /// use procession::{Command, Pty};
    /// let mut child = Command::shell("read x; stty size").pty(Pty::new()).spawn()?;
    /// let resizer = child.signaller();
    /// std::thread::spawn(move || resizer.resize(42, 99)).join().unwrap()?;
    /// child.write_all(b"\n")?;
    /// assert_eq!(&child.read()?.unwrap()[..], b"42 99\r\n");
    /// assert!(child.wait()?.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), Error> {
        let who = self.process.program();
        self.process.terminal(|t| t.resize(who, rows, cols))
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.process.pid() as u32
    }
}

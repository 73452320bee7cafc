//! Forwarding a child's stdout into any descriptor without a copy through
//! this process: [`Command::forward_stdout`], [`ChildStdout::forward`],
//! [`Forwarded`]. The engine part is `engine::forward`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use crate::child::Child;
use crate::engine::forward::{Failed, Forwarder, Side};
use crate::error::{Step, Who};
use crate::pipe::Counted;
use crate::pipeline::{Conclusion, Pipeline};
use crate::{ChildStdout, Command, Error, ExitStatus, Stdio};

/// What [`Command::forward_stdout`] (or [`Pipeline::forward_stdout`]) did.
///
/// ```
/// use procession::Command;
/// # let path = std::env::temp_dir().join(format!("procession-doc-fwd-{}", std::process::id()));
/// let file = std::fs::File::create(&path)?;
/// let done = Command::new("head").args(["-c", "100000", "/dev/zero"]).forward_stdout(&file)?;
/// assert_eq!(done.bytes, 100_000);
/// assert_eq!(done.spliced, 100_000); // a regular file takes spliced data
/// assert!(done.status.success());
/// assert_eq!(done.stages.len(), 1);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Forwarded {
    /// Bytes that reached the sink.
    pub bytes: u64,
    /// Of those, the bytes the kernel moved with `splice(2)`; the rest
    /// were copied through a buffer (a sink that refuses splice, such as a
    /// file opened for appending).
    pub spliced: u64,
    /// The status (for a pipeline, the one its [`Pipefail`](crate::Pipefail)
    /// rule reports).
    pub status: ExitStatus,
    /// Every stage's status, first to last (one for a single command).
    pub stages: Vec<ExitStatus>,
}

impl Command {
    /// Runs the command with its stdout moved into `sink` (a file, a
    /// socket, a pipe: any descriptor) until it ends, by the kernel: a pipe
    /// from the child, then `splice(2)` from that pipe into `sink`, so the
    /// bytes are never copied into this process. A sink that refuses
    /// splice (a file opened with `O_APPEND`, a descriptor some driver
    /// does not support) is written through a buffer instead
    /// ([`Forwarded::spliced`] says how much went each way). Then waits for
    /// the child and checks its status, as [`run`](Command::run) does.
    ///
    /// stdin is the [`input`](Command::input) or the `stdin` setting
    /// (`/dev/null` by default; [`input_file`](Command::input_file) gives
    /// the file to the child directly, with no copy either); stderr as
    /// configured (inherited by default). A blocking sink blocks the child
    /// through the pipe (back-pressure); a non-blocking one is waited for
    /// with `poll(2)`. The [`timeout`](Command::timeout) applies; a write
    /// error stops the child.
    ///
    /// Giving the file itself as stdout ([`Stdio::file`], `Stdio::from`)
    /// needs no forwarding at all; this is for a sink the child should not
    /// hold, or that must be written only while this process says so (the
    /// socket of a client that may go away: its end is never handed to the
    /// child).
    ///
    /// # Errors
    ///
    /// As [`spawn`](Command::spawn); [`InvalidInput`](crate::ErrorKind::InvalidInput)
    /// when `stdout` is set, or stderr is piped (nobody would read it); a
    /// failing write to `sink` (a closed socket, a full disk) is a
    /// [`Step::Write`] error; an unsuccessful exit is an
    /// [`Exit`](crate::ErrorKind::Exit) error carrying the status.
    ///
    /// ```
    /// use procession::Command;
    /// use std::io::Read;
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let client = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// let (server, _) = listener.accept()?;
    /// let done = Command::new("echo").arg("over the socket").forward_stdout(&server)?;
    /// drop(server);
    /// let mut got = String::new();
    /// (&client).read_to_string(&mut got)?;
    /// assert_eq!((got.as_str(), done.bytes), ("over the socket\n", 16));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn forward_stdout(&self, sink: impl AsFd) -> Result<Forwarded, Error> {
        Pipeline::new([self.clone()]).forward_stdout(sink)
    }

    /// [`forward_stdout`](Command::forward_stdout) through a 1 MiB buffer
    /// of this process (`read(2)` then `write(2)`), never `splice(2)`.
    ///
    /// Choose it when the sink's reader is on this machine and reads a
    /// socket: a loopback TCP connection or a Unix socket. Spliced pipe
    /// pages reach that reader as many 4 KiB fragments, and its copy out of
    /// them cost three times the copy out of a written buffer here
    /// (BENCHMARKS.md, scenario 14: 0.56 against 0.18 CPU seconds per GiB),
    /// so copying here moves more bytes per second in all (1.63 against
    /// 1.30 GiB/s). Splice remains the better default for files, pipes and
    /// a peer on another machine, where it saves this process a copy.
    ///
    /// # Errors
    ///
    /// As [`forward_stdout`](Command::forward_stdout).
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("procession-doc-fwdc-{}", std::process::id()));
    /// let file = std::fs::File::create(&path)?;
    /// let done = procession::Command::new("echo").arg("hi").forward_stdout_copying(&file)?;
    /// assert_eq!((done.bytes, done.spliced), (3, 0));
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn forward_stdout_copying(&self, sink: impl AsFd) -> Result<Forwarded, Error> {
        Pipeline::new([self.clone()]).forward_with(sink.as_fd(), false)
    }
}

impl ChildStdout {
    /// Moves everything the child writes to stdout into `sink` until end
    /// of file, with `splice(2)` where the kernel allows it, else through a
    /// buffer (see [`Command::forward_stdout`]). Returns the number of
    /// bytes moved. Useful after writing something of your own to the
    /// sink first (a header).
    ///
    /// # Errors
    ///
    /// The first error reading the pipe or writing `sink` (for example
    /// `BrokenPipe` from a socket whose peer has gone).
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// use std::io::{Read, Write};
    /// let (mut reader, mut writer) = std::io::pipe()?;
    /// let mut child = Command::new("echo").arg("body").stdout(Stdio::piped()).spawn()?;
    /// writer.write_all(b"header\n")?;
    /// let n = child.stdout.as_mut().unwrap().forward(&writer)?;
    /// drop(writer);
    /// assert_eq!(n, 5);
    /// let mut got = String::new();
    /// reader.read_to_string(&mut got)?;
    /// assert_eq!(got, "header\nbody\n");
    /// child.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn forward(&mut self, sink: impl AsFd) -> io::Result<u64> {
        let mut fw = Forwarder::new(true);
        fw.run_blocking(self.as_fd(), sink.as_fd(), |n| self.count(n))
            .map_err(|f| f.error)?;
        Ok(fw.moved())
    }
}

/// Spawns the last stage of a forwarding: stdout piped (blocking end),
/// stdin `/dev/null` unless the command sets it or has an input.
pub(crate) fn spawn_forwarded(cmd: &mut Command) -> Result<Child, Error> {
    if cmd.stdin.is_none() && cmd.input.is_none() {
        cmd.stdin(Stdio::null());
    }
    cmd.stdout(Stdio::piped());
    cmd.spawn()
}

/// The error of a failed forwarding step of `who`'s stdout.
pub(crate) fn failed(who: &Who, f: Failed) -> Error {
    let step = match f.side {
        Side::From => Step::Read,
        Side::To => Step::Write,
    };
    Error::os(who, step, f.error).with_detail("forwarding stdout to the sink")
}

/// Forwards `child`'s stdout (taken from it) into `sink`, blocking.
/// Returns (bytes, spliced bytes).
pub(crate) fn forward_child(
    child: &mut Child,
    sink: BorrowedFd<'_>,
    splice: bool,
) -> Result<(u64, u64), Error> {
    let stdout = child.stdout.take().expect("spawned with stdout piped");
    let mut fw = Forwarder::new(splice);
    let r = fw.run_blocking(stdout.as_fd(), sink, |n| stdout.count(n));
    drop(stdout);
    r.map_err(|f| failed(child.process().program(), f))?;
    Ok((fw.moved(), fw.spliced()))
}

/// The result of a forwarding whose stages have all ended.
pub(crate) fn finish(c: Conclusion, last: &Who, moved: (u64, u64)) -> Result<Forwarded, Error> {
    if !c.status.success() {
        return Err(c.exit_error(last, None));
    }
    if let Some(e) = c.input_error {
        return Err(e);
    }
    Ok(Forwarded {
        bytes: moved.0,
        spliced: moved.1,
        status: c.status,
        stages: c.stages,
    })
}

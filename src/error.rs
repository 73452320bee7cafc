//! [`Error`]: which program, which step, what the OS said.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;

use bytes::Bytes;

use crate::{ExitStatus, FrameError, Output};

/// Who an error is about: the program and, where known, a short form of
/// the command line (so that errors of many `sh -c` jobs can be told apart).
#[derive(Clone, Debug)]
pub(crate) struct Who {
    program: OsString,
    command: Box<str>,
}

/// The longest command line (in characters) an error message shows.
const COMMAND_SHOWN: usize = 80;

impl Who {
    /// `program` with `args`, quoted as a shell would need them and cut
    /// after [`COMMAND_SHOWN`] characters.
    pub(crate) fn new<'a>(program: &'a OsStr, args: impl IntoIterator<Item = &'a OsStr>) -> Who {
        let mut command = String::new();
        for word in std::iter::once(program).chain(args) {
            if command.len() > COMMAND_SHOWN {
                break;
            }
            if !command.is_empty() {
                command.push(' ');
            }
            command.push_str(&shell_words::quote(&word.to_string_lossy()));
        }
        if command.chars().count() > COMMAND_SHOWN {
            command = command.chars().take(COMMAND_SHOWN - 1).collect();
            command.push('…');
        }
        Who {
            program: program.to_owned(),
            command: command.into_boxed_str(),
        }
    }

    /// The command line, quoted and shortened.
    pub(crate) fn command_line(&self) -> &str {
        &self.command
    }
}

/// What an error can be about: a bare program name, or a [`Who`].
pub(crate) trait Subject {
    fn program(&self) -> &OsStr;
    fn command(&self) -> Option<&str> {
        None
    }
}

impl Subject for &OsStr {
    fn program(&self) -> &OsStr {
        self
    }
}

impl Subject for &Who {
    fn program(&self) -> &OsStr {
        &self.program
    }
    fn command(&self) -> Option<&str> {
        Some(&self.command)
    }
}

/// The step during which an operation on a child failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Checking the command before anything is started (a NUL byte in an
    /// argument, a bad environment name, conflicting options).
    Prepare,
    /// Finding the program on `PATH`.
    Resolve,
    /// Opening the file or `/dev/null` given as stdin.
    OpenStdin,
    /// Opening the file or `/dev/null` given as stdout.
    OpenStdout,
    /// Opening the file or `/dev/null` given as stderr.
    OpenStderr,
    /// Creating a pipe.
    Pipe,
    /// Creating the child process (`clone`).
    Spawn,
    /// In the child: resetting signal dispositions or the signal mask.
    Signals,
    /// In the child: joining or creating the process group (`setpgid`).
    ProcessGroup,
    /// In the child: setting a resource limit (`setrlimit`).
    Limit,
    /// In the child: setting the nice value (`setpriority`).
    Nice,
    /// In the child: setting `no_new_privs` (`prctl`).
    NoNewPrivs,
    /// Looking up the user or groups (before the spawn), or, in the
    /// child, changing them (`setgroups`, `setresgid`, `setresuid`).
    User,
    /// In the child: changing to the working directory (`chdir`).
    Chdir,
    /// In the child: installing stdin, stdout and stderr (`dup2`).
    Stdio,
    /// In the child: closing inherited descriptors (`close_range`).
    CloseFds,
    /// In the child: `execve`.
    Exec,
    /// Waiting for the child (`waitid`, `poll`).
    Wait,
    /// Sending a signal.
    Signal,
    /// Reading from the child.
    Read,
    /// Writing to the child.
    Write,
    /// Creating the child's cgroup (before the spawn) or, in the child,
    /// joining it (`cgroup.procs`).
    Cgroup,
    /// Opening or configuring the child's pseudo-terminal (modes, size),
    /// or, in the child, making it the controlling terminal.
    Terminal,
}

impl Step {
    fn describe(self) -> &'static str {
        match self {
            Step::Prepare => "preparing the command",
            Step::Resolve => "finding the program",
            Step::OpenStdin => "opening stdin",
            Step::OpenStdout => "opening stdout",
            Step::OpenStderr => "opening stderr",
            Step::Pipe => "creating a pipe",
            Step::Spawn => "creating the process",
            Step::Signals => "resetting signals in the child",
            Step::ProcessGroup => "setting the process group",
            Step::Limit => "setting a resource limit",
            Step::Nice => "setting the nice value",
            Step::NoNewPrivs => "setting no_new_privs",
            Step::User => "changing user",
            Step::Chdir => "changing directory",
            Step::Stdio => "setting up stdio in the child",
            Step::CloseFds => "closing inherited descriptors",
            Step::Exec => "executing the program",
            Step::Wait => "waiting for the child",
            Step::Signal => "signalling the child",
            Step::Read => "reading from the child",
            Step::Write => "writing to the child",
            Step::Cgroup => "setting up the child's cgroup",
            Step::Terminal => "setting up the child's terminal",
        }
    }
}

/// What kind of failure an [`Error`] is, for callers that branch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The program, a file, the working directory or an interpreter does not
    /// exist (`ENOENT`).
    NotFound,
    /// The program is not executable, or a file or directory is not
    /// accessible (`EACCES`, `EPERM`, `ENOEXEC`).
    PermissionDenied,
    /// The command itself is invalid (NUL byte, bad environment name,
    /// conflicting options).
    InvalidInput,
    /// The child has exited and its status was collected (by a wait or by
    /// the background reaper): there is no process left to signal.
    AlreadyReaped,
    /// The child did not succeed (see [`Error::exit_status`]).
    Exit,
    /// Any other operating-system error (see [`Error::os_error`]).
    Os,
    /// What was asked for does not exist on this system (no cgroup v2
    /// hierarchy for [`Command::cgroup`](crate::Command::cgroup)).
    Unsupported,
    /// The child's output does not follow the framing it was read with (a
    /// packet longer than the maximum, a stream that ended inside a
    /// packet): see [`Error::frame_error`].
    InvalidData,
    /// The child wrote more than the
    /// [`max_output`](crate::Command::max_output) limit allows; the error
    /// carries what was collected up to it ([`Error::output`]).
    OutputLimit,
}

/// An error from starting, controlling or talking to a child.
///
/// It names the program and the [`Step`] that failed, and keeps the
/// operating-system error. It converts into [`std::io::Error`] for `?` in
/// functions that return `io::Result`.
///
/// ```
/// use procession::{Command, ErrorKind, Step};
/// let err = Command::new("no-such-program-here").spawn().unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::NotFound);
/// assert_eq!(err.step(), Step::Resolve);
/// assert_eq!(err.program(), "no-such-program-here");
/// assert!(err.to_string().contains("no-such-program-here"));
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    program: OsString,
    /// The command line, shortened, when known.
    command: Option<Box<str>>,
    /// What was collected before the error (`output`, `run`).
    output: Option<Box<Output>>,
    step: Step,
    kind: ErrorKind,
    detail: Option<String>,
    os: Option<io::Error>,
    status: Option<ExitStatus>,
    stderr: Option<Bytes>,
    frame: Option<FrameError>,
}

impl Error {
    /// The child's output broke its framing.
    pub(crate) fn framing(program: impl Subject, err: FrameError) -> Error {
        let mut e = Error::new(program, Step::Read, ErrorKind::InvalidData, None, None);
        e.inner.frame = Some(err);
        e
    }

    /// A packet to write does not fit the framing: refused before writing.
    pub(crate) fn unframable(program: impl Subject, err: FrameError) -> Error {
        let mut e = Error::new(program, Step::Write, ErrorKind::InvalidInput, None, None);
        e.inner.frame = Some(err);
        e
    }

    /// The framing error behind an [`InvalidData`](ErrorKind::InvalidData)
    /// error (or an [`InvalidInput`](ErrorKind::InvalidInput) one from
    /// writing a packet too long for its header).
    ///
    /// ```
    /// use procession::{Command, ErrorKind, FrameError, PacketCodec, PacketSize};
    /// // A 1-byte header announcing 3 bytes, then only 2.
    /// let err = Command::new("printf").arg(r"\003ab").stream()?
    ///     .packets(PacketCodec::new(PacketSize::One))
    ///     .collect::<Result<Vec<_>, _>>().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidData);
    /// assert_eq!(err.frame_error(), Some(&FrameError::Truncated { have: 3, need: 4 }));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn frame_error(&self) -> Option<&FrameError> {
        self.inner.frame.as_ref()
    }

    pub(crate) fn os(program: impl Subject, step: Step, err: io::Error) -> Error {
        let kind = match err.raw_os_error() {
            Some(libc::ENOENT) => ErrorKind::NotFound,
            Some(libc::EACCES | libc::EPERM | libc::ENOEXEC | libc::EROFS) => {
                ErrorKind::PermissionDenied
            }
            _ => ErrorKind::Os,
        };
        Error::new(program, step, kind, None, Some(err))
    }

    /// Names the command line, if the error does not yet.
    pub(crate) fn with_who(mut self, who: &Who) -> Error {
        if self.inner.command.is_none() {
            self.inner.command = Some(who.command.clone());
        }
        self
    }

    /// Attaches what was collected before the error, and its status.
    pub(crate) fn with_output(mut self, output: Output) -> Error {
        self.inner.status = self.inner.status.or(Some(output.status));
        self.inner.output = Some(Box::new(output));
        self
    }

    /// Attaches the child's exit status (an input error at the end of a run).
    pub(crate) fn with_status(mut self, status: ExitStatus) -> Error {
        self.inner.status = Some(status);
        self
    }

    pub(crate) fn with_step(mut self, step: Step) -> Error {
        self.inner.step = step;
        self
    }

    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Error {
        self.inner.detail = Some(detail.into());
        self
    }

    pub(crate) fn invalid(program: impl Subject, detail: impl Into<String>) -> Error {
        Error::new(
            program,
            Step::Prepare,
            ErrorKind::InvalidInput,
            Some(detail.into()),
            None,
        )
    }

    /// The child did not succeed; `stderr` is the captured tail, if any.
    pub(crate) fn exit(program: impl Subject, status: ExitStatus, stderr: Option<Bytes>) -> Error {
        let mut e = Error::new(program, Step::Wait, ErrorKind::Exit, None, None);
        e.inner.status = Some(status);
        e.inner.stderr = stderr.filter(|s| !s.is_empty());
        e
    }

    pub(crate) fn reaped(program: impl Subject) -> Error {
        Error::new(
            program,
            Step::Signal,
            ErrorKind::AlreadyReaped,
            Some("the child has already exited and its status was collected".into()),
            None,
        )
    }

    pub(crate) fn new(
        program: impl Subject,
        step: Step,
        kind: ErrorKind,
        detail: Option<String>,
        os: Option<io::Error>,
    ) -> Error {
        Error {
            inner: Box::new(Inner {
                program: program.program().to_owned(),
                command: program.command().map(Box::from),
                output: None,
                step,
                kind,
                detail,
                os,
                status: None,
                stderr: None,
                frame: None,
            }),
        }
    }

    /// The program the error is about, as given to the command.
    ///
    /// ```
    /// use procession::{Command, ErrorKind, Step};
    /// let err = Command::new("no-such-program-here").arg("x").spawn().unwrap_err();
    /// assert_eq!(err.program(), "no-such-program-here");
    /// assert_eq!((err.step(), err.kind()), (Step::Resolve, ErrorKind::NotFound));
    /// ```
    pub fn program(&self) -> &OsStr {
        &self.inner.program
    }

    /// The command line the error is about, quoted as for a shell and
    /// shortened to 80 characters, when known (every error from running a
    /// command has it).
    ///
    /// ```
    /// use procession::Command;
    /// let err = Command::shell("exit 3").run().unwrap_err();
    /// assert_eq!(err.command(), Some("/bin/sh -c 'exit 3'"));
    /// assert!(err.to_string().starts_with("`/bin/sh -c 'exit 3'`"));
    /// ```
    pub fn command(&self) -> Option<&str> {
        self.inner.command.as_deref()
    }

    /// The step that failed.
    ///
    /// ```
    /// use procession::{Command, Step};
    /// let err = Command::new("true").current_dir("/no/such/dir").spawn().unwrap_err();
    /// assert_eq!(err.step(), Step::Chdir);
    /// // An unsuccessful exit is reported by the wait that saw it.
    /// let err = Command::new("false").run().unwrap_err();
    /// assert_eq!(err.step(), Step::Wait);
    /// ```
    pub fn step(&self) -> Step {
        self.inner.step
    }

    /// The kind of failure.
    ///
    /// ```
    /// use procession::{Command, ErrorKind};
    /// let err = Command::new("no-such-program-here").spawn().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::NotFound);
    /// assert_eq!(Command::new("false").run().unwrap_err().kind(), ErrorKind::Exit);
    /// let mut child = Command::new("true").spawn()?;
    /// assert!(child.wait()?.success());
    /// assert_eq!(child.kill().unwrap_err().kind(), ErrorKind::AlreadyReaped);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The operating-system error, when one caused this.
    ///
    /// ```
    /// let err = procession::Command::new("/").spawn().unwrap_err();
    /// assert_eq!(err.os_error().and_then(|e| e.raw_os_error()), Some(libc::EACCES));
    /// ```
    pub fn os_error(&self) -> Option<&io::Error> {
        self.inner.os.as_ref()
    }

    /// The procession error inside an `io::Error` made from one (as the
    /// async streams yield), if there is one.
    ///
    /// ```
    /// use procession::{Command, Error, ErrorKind};
    /// let err: std::io::Error = Command::new("no-such-program-here").spawn().unwrap_err().into();
    /// assert_eq!(Error::from_io(&err).map(Error::kind), Some(ErrorKind::NotFound));
    /// ```
    pub fn from_io(err: &io::Error) -> Option<&Error> {
        err.get_ref().and_then(|e| e.downcast_ref::<Error>())
    }

    /// The child's exit status: for errors of kind [`ErrorKind::Exit`], and
    /// for any error that happened once the child had ended (a broken input
    /// pipe reported at the end of a run). The status is never lost.
    ///
    /// ```
    /// let err = procession::Command::new("false").run().unwrap_err();
    /// assert_eq!(err.exit_status().unwrap().code(), Some(1));
    /// ```
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.inner.status
    }

    /// Everything collected before the error, for errors of
    /// [`Command::run`](crate::Command::run) and
    /// [`Command::output`](crate::Command::output): collected output is
    /// never lost.
    ///
    /// ```
    /// use procession::{Command, ErrorKind};
    /// let err = Command::shell("echo partial; exit 2").run().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Exit);
    /// assert_eq!(err.output().unwrap().stdout, b"partial\n");
    /// ```
    pub fn output(&self) -> Option<&Output> {
        self.inner.output.as_deref()
    }

    /// Takes the collected output out of the error (see
    /// [`output`](Error::output)).
    ///
    /// ```
    /// let err = procession::Command::shell("echo kept; exit 1").run().unwrap_err();
    /// assert_eq!(err.into_output().unwrap().stdout, b"kept\n");
    /// ```
    pub fn into_output(self) -> Option<Output> {
        self.inner.output.map(|o| *o)
    }

    /// The last bytes the child wrote to stderr (up to 8 KiB), for errors of
    /// kind [`ErrorKind::Exit`] from a stream whose stderr was captured.
    ///
    /// ```
    /// let err = procession::Command::shell("echo why >&2; exit 1").run().unwrap_err();
    /// assert_eq!(err.stderr_tail(), Some(&b"why\n"[..]));
    /// ```
    pub fn stderr_tail(&self) -> Option<&[u8]> {
        self.inner.stderr.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        match &i.command {
            Some(c) => write!(f, "`{c}`")?,
            None => write!(f, "{}", i.program.to_string_lossy())?,
        }
        if i.kind == ErrorKind::Exit {
            f.write_str(": did not succeed")?;
        } else {
            write!(f, ": {} failed", i.step.describe())?;
        }
        if let Some(d) = &i.detail {
            write!(f, ": {d}")?;
        }
        if let Some(e) = &i.os {
            write!(f, ": {e}")?;
        }
        if let Some(e) = &i.frame {
            write!(f, ": {e}")?;
        }
        if let Some(s) = &i.status {
            write!(f, ": {s}")?;
        }
        if let Some(tail) = &i.stderr {
            let text = String::from_utf8_lossy(tail);
            let last = text.trim_end().lines().last().unwrap_or("");
            if !last.is_empty() {
                write!(f, " (stderr: {last})")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("program", &self.inner.program)
            .field("command", &self.inner.command)
            .field("step", &self.inner.step)
            .field("kind", &self.inner.kind)
            .field("detail", &self.inner.detail)
            .field("os", &self.inner.os)
            .field("status", &self.inner.status)
            .field("stderr", &self.inner.stderr)
            .field("frame", &self.inner.frame)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match (&self.inner.os, &self.inner.frame) {
            (Some(e), _) => Some(e),
            (None, Some(e)) => Some(e),
            (None, None) => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e.kind() {
            ErrorKind::NotFound => io::ErrorKind::NotFound,
            ErrorKind::PermissionDenied => io::ErrorKind::PermissionDenied,
            ErrorKind::InvalidInput => io::ErrorKind::InvalidInput,
            ErrorKind::InvalidData => io::ErrorKind::InvalidData,
            _ => e.os_error().map_or(io::ErrorKind::Other, |o| o.kind()),
        };
        io::Error::new(kind, e)
    }
}

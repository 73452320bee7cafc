//! What a running child is doing (Erlang's `port_info`): [`ChildInfo`]
//! from [`Child::info`](crate::Child::info), and [`children`], the list of
//! every live child of this program (Erlang's `erlang:ports()`).

use std::os::fd::BorrowedFd;

use crate::ExitStatus;
use crate::engine::{live, process::Process};
use crate::sys::fd;

/// Where a child is in its life ([`ChildInfo::state`]).
///
/// ```
/// use procession::{ChildState, Command};
/// let mut child = Command::new("true").spawn()?;
/// child.wait()?;
/// assert!(matches!(child.info().state, ChildState::Exited(s) if s.success()));
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildState {
    /// It has not exited.
    Running,
    /// It has exited (reaped or not yet: an exited child is seen at once,
    /// and the status is left for its owner to collect).
    Exited(ExitStatus),
}

/// A snapshot of a child: who it is, the bytes through its pipes, and its
/// state (Erlang's `port_info`).
///
/// The byte counts are of what procession's pipe ends moved: every read
/// and write through the handle, its public pipe ends, the streams and an
/// [`input`](crate::Command::input). A pipe end taken out as an `OwnedFd`
/// is no longer counted.
///
/// ```
/// use procession::{ChildState, Command, Stdio};
/// let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
/// child.write_all(b"hello")?;
/// let info = child.info();
/// assert_eq!((info.pid, info.command.as_str()), (child.pid(), "cat"));
/// assert_eq!(info.stdin_written, 5);
/// assert_eq!(info.state, ChildState::Running);
/// assert_eq!(child.read()?.as_deref(), Some(&b"hello"[..]));
/// assert_eq!(child.info().stdout_read, 5);
/// child.close_stdin();
/// child.wait()?;
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChildInfo {
    /// The process id.
    pub pid: u32,
    /// The command line, quoted as for a shell and shortened to 80
    /// characters (as in error messages).
    pub command: String,
    /// Bytes written to the child's stdin.
    pub stdin_written: u64,
    /// Bytes read from its stdout.
    pub stdout_read: u64,
    /// Bytes read from its stderr.
    pub stderr_read: u64,
    /// Bytes written to stdin that the child has not read yet; `None` when
    /// stdin is not a pipe the handle holds (and in [`children`]).
    pub stdin_queued: Option<usize>,
    /// Bytes the child wrote to stdout that are not read yet; `None` as
    /// for `stdin_queued`.
    pub stdout_queued: Option<usize>,
    /// The same for stderr.
    pub stderr_queued: Option<usize>,
    /// Running, or exited with its status.
    pub state: ChildState,
}

impl ChildInfo {
    /// The snapshot of `process`; the pipe ends the handle holds, if any,
    /// give the queued bytes.
    pub(crate) fn of(process: &Process, pipes: [Option<BorrowedFd<'_>>; 3]) -> ChildInfo {
        let io = process.io();
        let queued = |fd: Option<BorrowedFd<'_>>| fd.and_then(|fd| fd::queued(fd).ok());
        let [stdin, stdout, stderr] = pipes;
        ChildInfo {
            pid: process.pid() as u32,
            command: process.command_line().to_owned(),
            stdin_written: io.get(0),
            stdout_read: io.get(1),
            stderr_read: io.get(2),
            stdin_queued: queued(stdin),
            stdout_queued: queued(stdout),
            stderr_queued: queued(stderr),
            state: match process.peek_status() {
                Some(status) => ChildState::Exited(status),
                None => ChildState::Running,
            },
        }
    }
}

/// Every child this program started through procession and has not reaped
/// yet, in pid order (Erlang's `erlang:ports()`): those with a handle,
/// those streaming, supervised ones, and those dropped whose stop sequence
/// is still running. A child leaves the list when it is reaped; processes
/// adopted with [`Supervisor::manage`](crate::Supervisor::manage) are not
/// ours and are not listed.
///
/// ```
/// use procession::Command;
/// let mut child = Command::new("sleep").arg("10").spawn()?;
/// let listed = procession::children();
/// let me = listed.iter().find(|c| c.pid == child.pid()).unwrap();
/// assert_eq!(me.command, "sleep 10");
/// child.stop()?; // reaped: off the list
/// assert!(procession::children().iter().all(|c| c.pid != child.pid()));
/// # Ok::<(), procession::Error>(())
/// ```
pub fn children() -> Vec<ChildInfo> {
    live::all()
        .iter()
        .map(|p| ChildInfo::of(p, [None, None, None]))
        .collect()
}

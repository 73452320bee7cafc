//! [`Child`]: the handle of a running program.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::process::Process;
use crate::engine::reaper;
use crate::engine::spawn::Spawned;
use crate::pipe::{ChildStderr, ChildStdin, ChildStdout};
use crate::status::Ended;
use crate::{Error, ExitStatus, Signal};

/// A running (or finished, not yet dropped) child process.
///
/// It is `Send` and `Sync`: move it to another thread, or share it and use
/// [`Child::signaller`] to signal it while one thread waits.
///
/// # Drop
///
/// Dropping a `Child` never blocks. If the child is still running, its stop
/// sequence starts (unless [`Command::kill_on_drop`](crate::Command::kill_on_drop)
/// is off or [`detach`](Child::detach) was called) and the background reaper
/// finishes the sequence and reaps it. No zombie is left behind either way.
///
/// ```
/// use procession::Command;
/// let mut child = Command::new("sleep").arg("100").spawn()?;
/// assert!(child.try_wait()?.is_none());
/// drop(child); // SIGTERM now; reaped in the background
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Debug)]
pub struct Child {
    process: Arc<Process>,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    kill_on_drop: bool,
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
    pub(crate) fn new(spawned: Spawned, kill_on_drop: bool) -> Child {
        let ends = spawned.ends;
        Child {
            process: spawned.process,
            stdin: ends.stdin.map(ChildStdin::new),
            stdout: ends.stdout.map(ChildStdout::new),
            stderr: ends.stderr.map(ChildStderr::new),
            kill_on_drop,
        }
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

    /// The child's stdin pipe, if [`Stdio::piped`](crate::Stdio::piped) and
    /// not taken or closed.
    pub fn stdin(&mut self) -> Option<&mut ChildStdin> {
        self.stdin.as_mut()
    }

    /// The child's stdout pipe, if piped and not taken.
    pub fn stdout(&mut self) -> Option<&mut ChildStdout> {
        self.stdout.as_mut()
    }

    /// The child's stderr pipe, if piped and not taken.
    pub fn stderr(&mut self) -> Option<&mut ChildStderr> {
        self.stderr.as_mut()
    }

    /// Takes the stdin pipe out of the handle (to use on another thread).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// Takes the stdout pipe out of the handle.
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// use std::io::Read;
    /// let mut child = Command::new("echo").arg("hi").stdout(Stdio::piped()).spawn()?;
    /// let mut stdout = child.take_stdout().unwrap();
    /// let reader = std::thread::spawn(move || {
    ///     let mut s = String::new();
    ///     stdout.read_to_string(&mut s).map(|_| s)
    /// });
    /// assert!(child.wait()?.success());
    /// assert_eq!(reader.join().unwrap()?, "hi\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.stdout.take()
    }

    /// Takes the stderr pipe out of the handle.
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.stderr.take()
    }

    /// Closes the stdin pipe, so the child reads end-of-file. Idempotent.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
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
    pub fn signal_group(&self, signal: Signal) -> Result<(), Error> {
        self.process.signal_group(signal)
    }

    /// SIGKILL at once (to the whole group with
    /// [`kill_group`](crate::Command::kill_group)). Does not wait. The status
    /// then reports [`Ended::Stopped`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::AlreadyReaped`](crate::ErrorKind::AlreadyReaped) after reaping.
    pub fn kill(&self) -> Result<(), Error> {
        self.process.kill()
    }

    /// Runs the stop sequence and waits for the end: `kill_signal` (or
    /// `kill_command`), then SIGKILL after `kill_timeout` if the child is
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
    /// assert_eq!(status.ended(), Ended::Stopped);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn stop(&mut self) -> Result<ExitStatus, Error> {
        self.close_stdin();
        self.process.start_stop(Ended::Stopped);
        self.wait()
    }

    /// Starts the stop sequence without waiting for it; the background reaper
    /// sends SIGKILL after `kill_timeout` if needed.
    pub fn start_stop(&self) {
        self.process.start_stop(Ended::Stopped);
        reaper::adopt(self.process.clone());
    }

    /// Waits for the child to exit and reaps it. Closes stdin first, so a
    /// child that reads until end-of-file can finish. The command's
    /// `timeout` is enforced while waiting.
    ///
    /// # Errors
    ///
    /// [`Step::Wait`](crate::Step::Wait) errors from `poll`/`waitid`, or when
    /// something else reaped the child (a `SIGCHLD` set to `SIG_IGN`).
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        self.close_stdin();
        match self.process.wait_until(None)? {
            Some(s) => Ok(s),
            None => unreachable!("wait_until(None) returns only with a status"),
        }
    }

    /// The status if the child has exited (reaping it), `None` if it runs.
    ///
    /// # Errors
    ///
    /// As [`wait`](Child::wait).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        self.process.try_wait()
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
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        self.process.wait_until(Some(Instant::now() + timeout))
    }

    /// Lets the child run on after the handle is dropped, without the stop
    /// sequence. It is still reaped in the background when it exits, and a
    /// `timeout` set on the command still applies.
    pub fn detach(mut self) {
        self.kill_on_drop = false;
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
        Signaller {
            process: self.process.clone(),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Close our pipe ends first: a child blocked writing to us gets EPIPE.
        self.stdin = None;
        self.stdout = None;
        self.stderr = None;
        if self.process.is_reaped() {
            return;
        }
        if self.kill_on_drop {
            self.process.start_stop(Ended::Stopped);
        }
        reaper::adopt(self.process.clone());
    }
}

/// Signals a [`Child`] from any thread; see [`Child::signaller`].
#[derive(Clone, Debug)]
pub struct Signaller {
    process: Arc<Process>,
}

impl Signaller {
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
        self.process.start_stop(Ended::Stopped);
        reaper::adopt(self.process.clone());
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.process.pid() as u32
    }
}

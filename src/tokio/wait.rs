//! Waiting for a child on the runtime: its pidfd registered with the
//! reactor, plus a timer for the deadlines of its state machine.

use std::future::Future;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::time::Sleep;

use crate::engine::process::Process;
use crate::sys::reactor::{self, Lent};
use crate::{Error, ExitStatus};

/// Holds a process with a pidfd, to lend that pidfd to the reactor: the
/// `Arc` keeps the descriptor open for as long as the registration exists.
struct PidfdOwner(Arc<Process>);

impl AsFd for PidfdOwner {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // Built only for processes that have a pidfd, which never changes.
        self.0
            .pidfd()
            .expect("a PidfdOwner is made only for a process with a pidfd")
    }
}

/// Without a pidfd (kernel < 5.3), or while a group drains after the
/// leader's exit (no event tells when it is empty), look this often.
const RECHECK: Duration = Duration::from_millis(5);

/// A child's exit and deadlines, as runtime events.
pub(crate) struct Watch {
    pidfd: Option<AsyncFd<Lent<PidfdOwner>>>,
    sleep: Pin<Box<Sleep>>,
}

impl Watch {
    pub(crate) fn new(process: &Arc<Process>) -> Watch {
        let pidfd = process.pidfd().and_then(|_| {
            reactor::register(PidfdOwner(process.clone()), tokio::io::Interest::READABLE).ok()
        });
        Watch {
            pidfd,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }

    /// Registers interest in the exit (unless it was already seen) and in
    /// `deadline`. Returns `true` if either is already due, so the caller
    /// should look at the process again right away.
    ///
    /// `checked` says that the caller looked (`waitid`) since the last call
    /// and found the child running: only then is the pidfd's edge-triggered
    /// readiness cleared, and the caller always looks once more after a
    /// clear, so an exit that raced with the look is not missed.
    pub(crate) fn poll_due(
        &mut self,
        cx: &mut Context<'_>,
        want_exit: bool,
        checked: bool,
        deadline: Option<Instant>,
    ) -> bool {
        let mut due = false;
        let mut deadline = deadline;
        if want_exit {
            match &self.pidfd {
                Some(fd) => {
                    if let Poll::Ready(Ok(mut guard)) = fd.poll_read_ready(cx) {
                        if checked {
                            guard.clear_ready();
                        }
                        due = true;
                    }
                }
                None => {
                    let t = Instant::now() + RECHECK;
                    deadline = Some(deadline.map_or(t, |d| d.min(t)));
                }
            }
        }
        if let Some(t) = deadline {
            self.sleep.as_mut().reset(t.into());
            if self.sleep.as_mut().poll(cx).is_ready() {
                due = true;
            }
        }
        due
    }

    /// Polls until the child is finished (as [`crate::Child::wait`] defines
    /// it), driving its timeouts and stop sequence.
    pub(crate) fn poll_wait(
        &mut self,
        cx: &mut Context<'_>,
        process: &Process,
    ) -> Poll<Result<ExitStatus, Error>> {
        loop {
            let progress = process.advance(Instant::now());
            if let Some(status) = process.try_wait()? {
                return Poll::Ready(Ok(status));
            }
            let exit_seen = process.exit_seen();
            let next = if exit_seen {
                // Group cleanup or the stop command: deadlines only.
                let t = Instant::now() + RECHECK;
                Some(progress.next.map_or(t, |n| n.min(t)))
            } else {
                progress.next
            };
            if !self.poll_due(cx, !exit_seen, true, next) {
                return Poll::Pending;
            }
        }
    }
}

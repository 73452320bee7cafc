//! The background reaper: one lazily started thread that finishes what
//! dropped handles leave behind and enforces deadlines nobody waits for.
//!
//! It owns an epoll instance watching each adopted child's pidfd (one-shot:
//! a pidfd becomes readable at exit) plus an eventfd for new adoptions, and a
//! heap of deadlines. On every wakeup it calls [`Process::advance`] on the
//! children that are ready or due, and forgets those that are reaped. It
//! never installs a SIGCHLD handler and never calls `waitpid(-1)`, so it
//! cannot steal another library's children.
//!
//! Children without a pidfd (kernels before 5.3) are looked at every 10 ms.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::process::Process;
use crate::status::Ended;
use crate::sys::epoll::{Epoll, Token};
use crate::sys::fd;

const WAKE: Token = 0;
const NO_PIDFD_POLL: Duration = Duration::from_millis(10);

struct Reaper {
    epoll: Epoll,
    wake: OwnedFd,
    inbox: Mutex<Vec<Arc<Process>>>,
}

static REAPER: OnceLock<Option<Reaper>> = OnceLock::new();

fn reaper() -> Option<&'static Reaper> {
    REAPER
        .get_or_init(|| {
            let epoll = Epoll::new().ok()?;
            let wake = fd::eventfd().ok()?;
            epoll.add(wake.as_fd(), WAKE, false).ok()?;
            Some(Reaper {
                epoll,
                wake,
                inbox: Mutex::new(Vec::new()),
            })
        })
        .as_ref()
        .filter(|_| start_thread())
}

fn start_thread() -> bool {
    static STARTED: OnceLock<bool> = OnceLock::new();
    *STARTED.get_or_init(|| {
        std::thread::Builder::new()
            .name("procession-reaper".into())
            .spawn(|| {
                if let Some(Some(r)) = REAPER.get() {
                    run(r)
                }
            })
            .is_ok()
    })
}

/// Starts the reaper thread now rather than at the first adoption (its
/// epoll and eventfd descriptors then exist from this point on).
pub(crate) fn start() -> bool {
    reaper().is_some()
}

/// Hands `process` to the reaper (or asks it to look again at one it has):
/// it will enforce the deadlines and reap the child. Never blocks.
pub(crate) fn adopt(process: Arc<Process>) {
    match reaper() {
        Some(r) => {
            r.inbox
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(process);
            fd::eventfd_notify(r.wake.as_fd());
        }
        None => fallback(process),
    }
}

/// Without a reaper thread (the system refused a thread or descriptor), the
/// child cannot be left to run unwatched: kill it and reap it here. SIGKILL
/// makes the wait short.
fn fallback(process: Arc<Process>) {
    process.start_stop(Ended::Requested);
    let _ = process.kill();
    let _ = process.wait_until(None);
    while !process.advance(Instant::now()).done {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn run(r: &Reaper) {
    let mut children: HashMap<Token, Arc<Process>> = HashMap::new();
    let mut timers: BinaryHeap<Reverse<(Instant, Token)>> = BinaryHeap::new();
    let mut ready = [0 as Token; 64];
    let mut due: Vec<Token> = Vec::new();
    loop {
        let timeout = timers
            .peek()
            .map(|Reverse((t, _))| t.saturating_duration_since(Instant::now()));
        let n = r.epoll.wait(&mut ready, timeout).unwrap_or(0);
        let now = Instant::now();
        due.clear();
        for &token in &ready[..n] {
            if token != WAKE {
                due.push(token);
                continue;
            }
            fd::eventfd_drain(r.wake.as_fd());
            let new = std::mem::take(&mut *r.inbox.lock().unwrap_or_else(|p| p.into_inner()));
            for p in new {
                // The Arc keeps the address unique while we hold it.
                let token = Arc::as_ptr(&p) as usize as Token;
                if let std::collections::hash_map::Entry::Vacant(slot) = children.entry(token) {
                    if let Some(pidfd) = p.pidfd() {
                        let _ = r.epoll.add(pidfd, token, true);
                    }
                    slot.insert(p);
                }
                due.push(token);
            }
        }
        while let Some(&Reverse((t, token))) = timers.peek() {
            if t > now {
                break;
            }
            timers.pop();
            due.push(token);
        }
        due.sort_unstable();
        due.dedup();
        for token in due.iter() {
            let Some(p) = children.get(token) else {
                continue;
            };
            let progress = p.advance(now);
            if progress.done {
                if let Some(pidfd) = p.pidfd() {
                    let _ = r.epoll.delete(pidfd);
                }
                children.remove(token);
                continue;
            }
            let next = if p.pidfd().is_none() {
                Some(
                    progress
                        .next
                        .map_or(now + NO_PIDFD_POLL, |n| n.min(now + NO_PIDFD_POLL)),
                )
            } else {
                progress.next
            };
            if let Some(t) = next {
                timers.push(Reverse((t, *token)));
            }
        }
    }
}

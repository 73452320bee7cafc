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
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
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

/// The reaper, once its descriptors were made. A failure to make them (or
/// to start the thread) is not remembered: the next use tries again, so a
/// passing shortage (a full descriptor table, the process limit) does not
/// disable it for good.
static REAPER: OnceLock<Reaper> = OnceLock::new();
/// Whether the reaper thread runs (set once, under `STARTING`).
static RUNNING: AtomicBool = AtomicBool::new(false);
static STARTING: Mutex<()> = Mutex::new(());
/// Children handed over while no reaper could be had and that must not be
/// killed for it (a detached child): the reaper takes them when it starts.
static WAITING: Mutex<Vec<Arc<Process>>> = Mutex::new(Vec::new());

fn reaper() -> io::Result<&'static Reaper> {
    if let (true, Some(r)) = (RUNNING.load(Ordering::Acquire), REAPER.get()) {
        return Ok(r);
    }
    let _starting = STARTING.lock().unwrap_or_else(|p| p.into_inner());
    if let (true, Some(r)) = (RUNNING.load(Ordering::Acquire), REAPER.get()) {
        return Ok(r);
    }
    let r = match REAPER.get() {
        Some(r) => r,
        None => {
            let epoll = Epoll::new()?;
            let wake = fd::eventfd()?;
            epoll.add(wake.as_fd(), WAKE, false)?;
            // Only this thread sets it (under `STARTING`).
            REAPER.get_or_init(|| Reaper {
                epoll,
                wake,
                inbox: Mutex::new(Vec::new()),
            })
        }
    };
    std::thread::Builder::new()
        .name("procession-reaper".into())
        .spawn(move || run(r))?;
    RUNNING.store(true, Ordering::Release);
    // Children that waited for a reaper are its first.
    let waiting = std::mem::take(&mut *WAITING.lock().unwrap_or_else(|p| p.into_inner()));
    for p in waiting {
        hand_over(r, p);
    }
    Ok(r)
}

fn hand_over(r: &Reaper, process: Arc<Process>) {
    r.inbox
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(process);
    fd::eventfd_notify(r.wake.as_fd());
}

/// Starts the reaper thread now rather than at the first adoption (its
/// epoll and eventfd descriptors then exist from this point on).
pub(crate) fn start() -> bool {
    reaper().is_ok()
}

/// Hands `process` to the reaper (or asks it to look again at one it has):
/// it will enforce the deadlines and reap the child. Never blocks. Without
/// a reaper (see [`fallback`]) the child is stopped and reaped here.
pub(crate) fn adopt(process: Arc<Process>) {
    match reaper() {
        Ok(r) => hand_over(r, process),
        Err(_) => fallback(process),
    }
}

/// Hands `process` to the reaper, or says why no reaper can be had now
/// (the caller reports it: a child just spawned is then stopped by its
/// caller, never silently).
pub(crate) fn try_adopt(process: &Arc<Process>) -> io::Result<()> {
    hand_over(reaper()?, process.clone());
    Ok(())
}

/// Starts the reaper if it is not running yet, or says why it cannot be
/// had now (nothing is remembered: the next call tries again).
pub(crate) fn ensure() -> io::Result<()> {
    reaper().map(drop)
}

/// Hands over a child that must keep running (detached): without a reaper
/// now, it waits for the next start of one, and is reaped then.
pub(crate) fn adopt_later(process: Arc<Process>) {
    match reaper() {
        Ok(r) => hand_over(r, process),
        Err(_) => {
            WAITING
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(process);
            // A reaper that started meanwhile may have emptied the list
            // before this push: then hand the list over here.
            if let (true, Some(r)) = (RUNNING.load(Ordering::Acquire), REAPER.get()) {
                let waiting =
                    std::mem::take(&mut *WAITING.lock().unwrap_or_else(|p| p.into_inner()));
                for p in waiting {
                    hand_over(r, p);
                }
            }
        }
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

#[cfg(test)]
mod tests {
    //! The path for kernels without pidfds (before 5.3): such a child is
    //! looked at every [`NO_PIDFD_POLL`]. This kernel has pidfds, so the test
    //! builds the `Process` without one.

    use std::ffi::OsStr;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{NO_PIDFD_POLL, adopt};
    use crate::Signal;
    use crate::engine::process::{Policy, Process};
    use crate::error::Who;

    /// CPU time (user + system, in clock ticks of 10 ms) of the reaper
    /// thread, from /proc/self/task/*/stat.
    fn reaper_ticks() -> u64 {
        // The thread names itself once it runs, a moment after `start`
        // returned: look for it until then.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(ticks) = reaper_ticks_now() {
                return ticks;
            }
            assert!(Instant::now() < deadline, "no reaper thread");
            std::thread::yield_now();
        }
    }

    fn reaper_ticks_now() -> Option<u64> {
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let path = task.path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if comm.trim_end() != "procession-reap" {
                continue;
            }
            let stat = std::fs::read_to_string(path.join("stat")).unwrap();
            let after_name = &stat[stat.rfind(')').unwrap() + 2..];
            let fields: Vec<&str> = after_name.split(' ').collect();
            // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th
            // after the name.
            return Some(fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap());
        }
        None
    }

    /// Whether `pid` is still a process (running or a zombie): /proc says,
    /// not the library.
    fn exists(pid: u32) -> bool {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    }

    fn without_pidfd(sleep: &str, timeout: Option<Duration>) -> (u32, Arc<Process>) {
        let child = std::process::Command::new("sleep")
            .arg(sleep)
            .spawn()
            .unwrap();
        let pid = child.id();
        // std's handle neither waits nor kills on drop: the Process below
        // owns the child from here.
        drop(child);
        let process = Arc::new(Process::new(
            pid as libc::pid_t,
            None,
            Who::new(OsStr::new("sleep"), [OsStr::new(sleep)]),
            None,
            Policy {
                stop_signal: Signal::TERM,
                stop_command: None,
                stop_timeout: Duration::from_secs(5),
                stop_group: false,
                success_codes: vec![0],
            },
            timeout,
            Default::default(),
        ));
        (pid, process)
    }

    /// Waits (up to 5 s) for `pid` to be reaped; returns how long it took.
    fn reaped_within(pid: u32) -> Duration {
        let start = Instant::now();
        while exists(pid) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{pid} never reaped"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        start.elapsed()
    }

    #[test]
    fn a_child_without_a_pidfd_is_reaped_by_polling_without_spinning() {
        assert!(super::start());
        // Without a deadline (the poll interval alone), then with a far
        // deadline (the poll interval is the nearer of the two).
        for timeout in [None, Some(Duration::from_secs(60))] {
            let (pid, process) = without_pidfd("0.3", timeout);
            let before = reaper_ticks();
            adopt(process.clone());
            let took = reaped_within(pid);
            let ticks = reaper_ticks() - before;
            // The sleep lasts 300 ms; the reaper notices within a poll
            // interval, plus scheduling slack generous enough for a machine
            // busy with builds (a reaper that does not poll never notices:
            // `reaped_within` gives up after 5 s).
            assert!(
                took < Duration::from_millis(300) + NO_PIDFD_POLL * 100,
                "{took:?}"
            );
            // About 30 wake-ups of a few microseconds each: well under one
            // 10 ms tick. A reaper that spins burns the whole 300 ms, 30
            // ticks.
            assert!(
                ticks <= 10,
                "the reaper used {ticks} ticks of CPU ({timeout:?})"
            );
            assert_eq!(process.try_wait().unwrap().unwrap().code(), Some(0));
        }
    }
}

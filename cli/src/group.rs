//! procession's own process group, which the program and everything it
//! starts share (unless `--foreground`): signalling every member except
//! procession, and waiting for them to end.
//!
//! A member is a live (not zombie) process of the group that descends from
//! procession. Other processes can be in the group too: started from an
//! interactive shell as `procession run ... | tee log`, procession leads the
//! pipeline's group, and `tee` (the shell's child) is in it; it is left
//! alone. procession is a child subreaper, so what the program started stays
//! a descendant when its parent dies.
//!
//! Members are found by scanning `/proc/[pid]/stat`. Each candidate is
//! opened as a pidfd and checked again after that, so the signal (sent
//! through the pidfd) never reaches a process that merely reused a member's
//! pid.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use procession::Signal;

use crate::sys::{self, PollFd, PollFlags};

/// How many scans one signalling pass makes at most: each scan after the
/// first only looks for members that appeared meanwhile (forked by a member
/// before it got the signal).
const MAX_SCANS: usize = 64;

/// How long a SIGKILL pass waits for the killed members to end before it
/// scans again.
const KILL_WAIT: Duration = Duration::from_millis(500);

/// How many SIGKILL passes before giving up on members that cannot be
/// killed (another user's setuid program, for example).
const KILL_PASSES: usize = 10;

/// How far up the parent chain a member may be from procession.
const MAX_DEPTH: usize = 1024;

/// The process group that procession leads.
#[derive(Clone, Copy, Debug)]
pub struct Group {
    /// procession's pid, which is also the group id.
    me: i32,
}

/// The members one signalling pass has reached so far, so that each gets
/// the signal once, kept as pidfds to wait on.
#[derive(Debug, Default)]
pub struct Reached {
    members: Vec<(i32, OwnedFd)>,
}

impl Reached {
    /// Whether `pid` is a member reached already (and still the same
    /// process: a reached member that has ended may have left its pid to a
    /// new one).
    fn contains(&self, pid: i32) -> bool {
        self.members
            .iter()
            .any(|(p, fd)| *p == pid && !exited(fd, Duration::ZERO))
    }

    /// Waits until every reached member has ended, or until `deadline`.
    /// Returns whether they all have.
    fn wait(&self, deadline: Instant) -> bool {
        loop {
            let Some((_, fd)) = self
                .members
                .iter()
                .find(|(_, fd)| !exited(fd, Duration::ZERO))
            else {
                return true;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            exited(fd, left);
        }
    }
}

impl Group {
    /// Makes procession the leader of a process group, if it is not one
    /// already: from an interactive shell it leads its job's group (the
    /// terminal's foreground group) and stays there; elsewhere it gets a new
    /// group of its own, so that it can signal everything the program starts
    /// without hitting its caller.
    pub fn lead() -> io::Result<Group> {
        let me = sys::getpid();
        if sys::getpgrp() != me {
            sys::setpgid_self()?;
        }
        sys::set_child_subreaper()?;
        Ok(Group { me })
    }

    /// Sends `signals`, in order, to every member not in `reached` yet
    /// except procession and `except` (the program, which is signalled
    /// through the library), scanning again until a scan finds no new member.
    /// Returns how many members were reached.
    pub fn signal(&self, signals: &[Signal], except: Option<u32>, reached: &mut Reached) -> usize {
        let mut count = 0;
        for _ in 0..MAX_SCANS {
            let mut new = 0;
            for pid in self.live_members(except) {
                if reached.contains(pid) {
                    continue;
                }
                let Ok(fd) = sys::pidfd_open(pid) else {
                    continue; // ended meanwhile
                };
                // Opened after the scan: still a member?
                if !self.is_member(pid) {
                    continue;
                }
                for &signal in signals {
                    // Fails if the member has ended since, or with EPERM (a
                    // setuid program): nothing more can be done either way.
                    let _ = sys::pidfd_send_signal(fd.as_fd(), signal.as_raw());
                }
                reached.members.push((pid, fd));
                new += 1;
            }
            if new == 0 {
                break;
            }
            count += new;
        }
        count
    }

    /// Stops every member except procession (the program has ended): the
    /// stop signal and SIGCONT to each (only the members not in `reached`,
    /// which had them already), a wait until they have all ended or until
    /// `deadline`, then SIGKILL to what is left. Returns once no member is
    /// left, or once members that cannot be killed have had their chances.
    pub fn stop(&self, stop_signal: Signal, deadline: Instant, mut reached: Reached) {
        let signals = stop_sequence(stop_signal);
        loop {
            // Members that appeared since the last scan get the signals too.
            let new = self.signal(&signals, None, &mut reached);
            if self.live_members(None).is_empty() {
                self.reap_orphans();
                return;
            }
            // Live members that were neither reached now nor before cannot
            // be reached (no pidfd): waiting for them is no use.
            if new == 0 && reached.wait(Instant::now()) {
                break;
            }
            if !reached.wait(deadline) {
                break;
            }
        }
        self.kill(None);
        self.reap_orphans();
    }

    /// SIGKILLs every member except procession and `except`, until a scan
    /// finds none alive (a bounded number of times).
    pub fn kill(&self, except: Option<u32>) {
        for _ in 0..KILL_PASSES {
            let mut killed = Reached::default();
            self.signal(&[Signal::KILL], except, &mut killed);
            killed.wait(Instant::now() + KILL_WAIT);
            if self.live_members(except).is_empty() {
                return;
            }
        }
    }

    /// The live members except procession and `except`.
    fn live_members(&self, except: Option<u32>) -> Vec<i32> {
        let Ok(dir) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        let except = except.and_then(|p| i32::try_from(p).ok());
        dir.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != self.me && Some(pid) != except && self.is_member(pid))
            .collect()
    }

    /// Whether `pid` is a live process of the group that descends from
    /// procession.
    fn is_member(&self, pid: i32) -> bool {
        match stat(pid) {
            Some(s) if s.pgrp == self.me && !s.zombie => {}
            _ => return false,
        }
        // Up the parent chain (bounded, should it change under us).
        let mut at = pid;
        for _ in 0..MAX_DEPTH {
            match stat(at) {
                Some(s) if s.ppid == self.me => return true,
                Some(s) if s.ppid > 1 => at = s.ppid,
                _ => return false,
            }
        }
        false
    }

    /// Reaps the zombies of the group that were re-parented to procession
    /// (as a subreaper); the program has been reaped by the library already.
    fn reap_orphans(&self) {
        let Ok(dir) = fs::read_dir("/proc") else {
            return;
        };
        for pid in dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        {
            if let Some(s) = stat(pid)
                && s.zombie
                && s.ppid == self.me
                && s.pgrp == self.me
            {
                let _ = sys::waitpid_nohang(pid);
            }
        }
    }
}

/// Set while a child that the library must reap itself (the stop command)
/// may exist besides the program: [`reap_adopted`] then leaves every zombie
/// alone, so that it never takes a status the library waits for.
pub static HOLD_REAPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Reaps the zombies re-parented to procession (a child subreaper, or PID 1
/// in a container) while the program runs: descendants whose parent died
/// before them. Every zombie child of procession except `program` is one,
/// unless [`HOLD_REAPING`] is set (the library's other children, the stop
/// command, run only then).
///
/// Why by pid from a /proc scan, and not `waitpid(-1)`: the library reaps
/// the program itself, through its pidfd (`waitid(P_PIDFD)`), and the
/// status it reads there is the program's exit status that procession
/// reports. A `waitpid(-1)` could take it first; so could a
/// `waitid(P_ALL, WNOWAIT)` peek followed by a reap, and that peek also
/// keeps returning the same first zombie (the program's, once it is one),
/// hiding the others. The scan names each zombie whose parent is
/// procession, and only those that are not the program are waited for, by
/// pid. The library's only other child, its owner-death watchdog, never
/// exits while procession runs unless someone kills it; then taking its
/// status costs nothing (the library replaces a dead watchdog and ignores
/// the outcome of its own wait for it).
pub fn reap_adopted(program: u32) {
    use std::sync::atomic::Ordering;
    if HOLD_REAPING.load(Ordering::SeqCst) {
        return;
    }
    let me = sys::getpid();
    let Ok(dir) = fs::read_dir("/proc") else {
        return;
    };
    for pid in dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        if u32::try_from(pid).ok() == Some(program) || HOLD_REAPING.load(Ordering::SeqCst) {
            continue;
        }
        if let Some(s) = stat(pid)
            && s.zombie
            && s.ppid == me
        {
            let _ = sys::waitpid_nohang(pid);
        }
    }
}

/// Whether procession is PID 1 (a container's entrypoint, or the first
/// process of a PID namespace): then it reaps every zombie re-parented to
/// it, as an init must, even with `--foreground`.
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// Makes procession a child subreaper (`--subreaper` with `--foreground`;
/// [`Group::lead`] does it otherwise).
pub fn become_subreaper() -> io::Result<()> {
    sys::set_child_subreaper()
}

/// procession's own (soft, hard) value of the limit `resource` (an
/// `RLIMIT_` constant).
pub fn own_limit(resource: i32) -> io::Result<(u64, u64)> {
    sys::getrlimit(resource)
}

/// The stop signal, then SIGCONT so that a suspended process can act on it
/// (not after SIGKILL or SIGCONT itself).
pub fn stop_sequence(stop_signal: Signal) -> Vec<Signal> {
    if stop_signal == Signal::KILL || stop_signal == Signal::CONT {
        vec![stop_signal]
    } else {
        vec![stop_signal, Signal::CONT]
    }
}

/// What procession needs of /proc/PID/stat.
struct Stat {
    zombie: bool,
    ppid: i32,
    pgrp: i32,
}

/// Fields 3-5 of /proc/PID/stat, or None if the process is gone.
fn stat(pid: i32) -> Option<Stat> {
    let stat = fs::read(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain anything, ')' included: the
    // fields after it start after the last ')'.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    Some(Stat {
        zombie: state == "Z" || state == "X",
        ppid: fields.next()?.parse().ok()?,
        pgrp: fields.next()?.parse().ok()?,
    })
}

/// Whether the process behind the pidfd has ended, waiting up to `timeout`
/// (a pidfd becomes readable when its process exits).
fn exited(fd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = [PollFd::new(fd, PollFlags::IN)];
        match sys::poll(&mut pfd, Some(left)) {
            Ok(1) => return true,
            Ok(_) => return false,
            // EINTR (a caught signal): poll again with what is left.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Cannot happen with a valid pidfd; do not spin on it.
            Err(_) => return true,
        }
    }
}

//! Owner-death cleanup: a watchdog process that outlives this one and stops
//! every child (and its group, and its cgroup) still running when this
//! process ends, however it ends (SIGKILL included).
//!
//! # How
//!
//! At the first spawn, procession starts `/bin/sh` running [`SCRIPT`] (an
//! exec'd program, not forked code: it pins none of this process's memory)
//! in a session of its own, deaf to the signals a terminal or a group kill
//! would send. Its stdin is a pipe whose only write end this process holds
//! (close-on-exec), so its `read` returns at EOF exactly when this process
//! is gone (or has called `execve`).
//!
//! The list of live children is not sent to it: it is a table in shared
//! memory (a memfd mapped `MAP_SHARED` here, fd 3 in the watchdog) that the
//! watchdog reads only once, after the owner's end. Recording a child costs
//! the parent no system call: the child itself writes its pid (and `-pid`
//! for its group) into a slot reserved for it, between clone and exec, then
//! checks that its parent is still the owner (`getpid` and `getppid`; see
//! `sys::spawn`'s `RecordSelf`).
//! Whatever the moment the owner dies, a child either is in the table when
//! the watchdog reads it or sees its new parent and exits before `execve`.
//! The slot is released when the child is reaped (after its group cleanup
//! when there is one), so the watchdog never holds a pid that could name
//! another process by then.
//!
//! Cgroups made for [`Cgroup`](crate::Cgroup) children are listed in a
//! second table (fd 4) by the owner, before the child is started; the
//! watchdog writes `cgroup.kill` in each, then removes them once empty.
//!
//! # Slots
//!
//! A slot is a line of fixed width, padded with newlines. Its first byte is
//! the commit byte: `k` for a recorded child, `#` otherwise; the watchdog
//! acts only on `k` lines. The text is written before the commit byte (a release store), so
//! a reader never acts on half a pid. Freed slots are reused.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::sys::fd::{self, Interest};
use crate::sys::pidfd::{self, Target};
use crate::sys::shm::{self, Mapping};
use crate::sys::spawn::{self as sys_spawn, Action, ChildPlan, SLOT};

/// What the watchdog runs once its stdin reaches EOF (the owner is gone):
/// `cgroup.kill` in every recorded cgroup (or SIGKILL to each member on
/// kernels without it), SIGKILL to every recorded child and group (one
/// `kill` for all), then the removal of the emptied cgroups (bounded: about
/// a second per cgroup). The tables are read with `cat` and split into
/// words by the shell, not with `read`, which reads a byte per system call.
const SCRIPT: &str = r#"trap '' HUP INT QUIT TERM PIPE ALRM USR1 USR2 TSTP TTIN TTOU
printf procession-watchdog > /proc/self/comm
while read -r _; do :; done
exec 0</dev/null
set -f
nl='
'
IFS=$nl
ks=''
for l in $(cat <&4); do
  case $l in k/*)
    d=${l#k}
    echo 1 > "$d/cgroup.kill" || for p in $(cat "$d/cgroup.procs"); do kill -9 "$p"; done
    ks="$ks$d$nl" ;;
  esac
done
IFS=' 	'"$nl"
all=''
on=''
for w in $(cat <&3); do
  case $w in
    k) on=1 ;;
    '#') on='' ;;
    *) [ -n "$on" ] && all="$all $w" ;;
  esac
done
[ -n "$all" ] && kill -9 $all
IFS=$nl
for d in $ks; do
  n=0
  until rmdir "$d" || [ ! -d "$d" ] || [ $n -ge 100 ]; do sleep 0.01; n=$((n + 1)); done
done
"#;

/// The name the watchdog shows in `ps` (its `argv[0]`, and its command
/// name, cut by the kernel to `procession-watc`).
pub(crate) const NAME: &str = "procession-watchdog";

/// Bytes reserved for each table's mapping (the file grows within it).
const PIDS_RESERVE: usize = 64 << 20;
/// A cgroup slot: commit byte, path, newline padding.
pub(crate) const CGROUP_SLOT: usize = 512;
const CGROUPS_RESERVE: usize = 16 << 20;
const PAGE: usize = 4096;
/// How often a spawn looks whether the watchdog still runs.
const LIVENESS_CHECK: Duration = Duration::from_millis(10);

/// One table: a memfd, its mapping, and the slot allocator.
struct Table {
    file: OwnedFd,
    map: Mapping,
    slot: usize,
    /// Bytes of the file in use (its size): whole pages of free slots.
    size: usize,
    free: Vec<usize>,
    next: usize,
    /// What a free slot holds: `#`, then newlines (the watchdog splits the
    /// table into lines or words, so empty lines vanish; a path in a cgroup
    /// slot may hold spaces, not newlines).
    blank: Box<[u8]>,
}

impl Table {
    fn new(name: &std::ffi::CStr, slot: usize, reserve: usize) -> std::io::Result<Table> {
        let file = shm::memfd(name)?;
        let map = Mapping::new(file.as_fd(), reserve)?;
        Ok(Table {
            file,
            map,
            slot,
            size: 0,
            free: Vec::new(),
            next: 0,
            blank: std::iter::once(b'#')
                .chain(std::iter::repeat_n(b'\n', slot - 1))
                .collect(),
        })
    }

    /// Reserves a slot and returns its offset; grows the file by a page of
    /// blank slots when none is free.
    fn take(&mut self) -> Option<usize> {
        if let Some(off) = self.free.pop() {
            return Some(off);
        }
        if self.next + self.slot > self.size {
            let grown = self.size + PAGE.max(self.slot);
            if grown > self.map.len() || shm::set_len(self.file.as_fd(), grown).is_err() {
                return None;
            }
            let mut off = self.size;
            while off + self.slot <= grown {
                self.map.write(off, &self.blank);
                off += self.slot;
            }
            self.size = grown;
        }
        let off = self.next;
        self.next += self.slot;
        Some(off)
    }

    /// Blanks the slot at `off` (commit byte first) and frees it.
    fn release(&mut self, off: usize) {
        self.map.commit(off, b'#');
        self.map.write(off, &self.blank);
        self.free.push(off);
    }
}

struct Watchdog {
    pids: Table,
    cgroups: Table,
    /// The running watchdog: its pid, pidfd, and the write end of its stdin
    /// (never written: its closing is the message). `None` once it could
    /// not be started.
    running: Option<Running>,
    /// Set when starting it failed for good (no `/bin/sh`): not retried.
    unavailable: bool,
    /// When it was last checked to be running.
    checked: Option<Instant>,
}

struct Running {
    pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    _owner_end: OwnedFd,
}

static WATCHDOG: Mutex<Option<Watchdog>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<Watchdog>> {
    WATCHDOG.lock().unwrap_or_else(|p| p.into_inner())
}

/// A reserved slot in the children's table. The child fills it in; it is
/// blanked when this is dropped (after the reap), or narrowed to the group
/// alone while a group cleanup outlives the leader.
pub(crate) struct Slot {
    offset: usize,
}

impl Slot {
    /// The leader has been reaped; its group `pgid` is still being cleaned
    /// up: keep only `-pgid` (the group id stays allocated while a member
    /// lives, so it cannot name another group meanwhile).
    pub(crate) fn group_only(&self, pgid: libc::pid_t) {
        let guard = lock();
        if let Some(w) = guard.as_ref() {
            w.pids.map.commit(self.offset, b'#');
            w.pids.map.write(self.offset, &w.pids.blank);
            w.pids
                .map
                .write(self.offset + 1, format!(" -{pgid}").as_bytes());
            w.pids.map.commit(self.offset, b'k');
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(w) = lock().as_mut() {
            w.pids.release(self.offset);
        }
    }
}

/// A cgroup listed in the watchdog's cgroup table while it exists.
pub(crate) struct CgroupEntry {
    offset: usize,
}

impl Drop for CgroupEntry {
    fn drop(&mut self) {
        if let Some(w) = lock().as_mut() {
            w.cgroups.release(self.offset);
        }
    }
}

/// The longest cgroup path a slot holds (commit byte and newline aside).
pub(crate) const CGROUP_PATH_MAX: usize = CGROUP_SLOT - 2;

/// Lists `dir` for the watchdog: an absolute cgroup directory path (never
/// with a newline: the kernel refuses those names), at most
/// [`CGROUP_PATH_MAX`] bytes (the caller checks). `None` when no watchdog
/// runs.
pub(crate) fn record_cgroup(dir: &[u8]) -> Option<CgroupEntry> {
    debug_assert!(dir.len() <= CGROUP_PATH_MAX);
    let mut guard = lock();
    let w = ensure(&mut guard)?;
    let off = w.cgroups.take()?;
    w.cgroups.map.write(off + 1, dir);
    w.cgroups.map.commit(off, b'k');
    Some(CgroupEntry { offset: off })
}

/// Reserves a slot for a child about to be spawned, starting the watchdog
/// if needed (or again, if it died), and returns it with the address where
/// the child writes its record. `None` when no watchdog can run.
pub(crate) fn slot() -> Option<(Slot, *mut u8)> {
    let mut guard = lock();
    let w = ensure(&mut guard)?;
    let offset = w.pids.take()?;
    let slot = Slot { offset };
    let ptr = w.pids.map.ptr(offset)?;
    Some((slot, ptr))
}

/// The watchdog, started if it is not running. A watchdog found dead
/// (someone killed it) is reaped and replaced; the tables carry over, so
/// the children recorded so far are watched again.
fn ensure(state: &mut Option<Watchdog>) -> Option<&mut Watchdog> {
    if state.is_none() {
        let pids = Table::new(c"procession-children", SLOT, PIDS_RESERVE).ok()?;
        let cgroups = Table::new(c"procession-cgroups", CGROUP_SLOT, CGROUPS_RESERVE).ok()?;
        *state = Some(Watchdog {
            pids,
            cgroups,
            running: None,
            unavailable: false,
            checked: None,
        });
    }
    let w = state.as_mut()?;
    // Whether it still runs is looked at most every LIVENESS_CHECK (a
    // `poll` per spawn costs more than the rest of the recording): a
    // watchdog killed meanwhile is replaced a little later, and every
    // child recorded in between is in the table the new one reads.
    let now = Instant::now();
    let due = w
        .checked
        .is_none_or(|t| now.duration_since(t) >= LIVENESS_CHECK);
    if due {
        w.checked = Some(now);
    }
    if due && w.running.as_ref().is_some_and(exited) {
        if let Some(r) = w.running.take() {
            let target = match &r.pidfd {
                Some(fd) => Target::Pidfd(fd.as_fd()),
                None => Target::Pid(r.pid),
            };
            let _ = pidfd::wait_exit(target, true, true);
        }
    }
    if w.running.is_none() && !w.unavailable {
        match start(w) {
            Ok(r) => w.running = Some(r),
            // Out of processes or descriptors for now: the next spawn
            // tries again (and most likely fails the same way itself).
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EAGAIN | libc::ENOMEM | libc::EMFILE | libc::ENFILE)
                ) => {}
            // No /bin/sh, or not executable: not retried on every spawn.
            Err(_) => w.unavailable = true,
        }
    }
    w.running.as_ref()?;
    Some(w)
}

/// Whether the watchdog has exited (a zero-timeout poll of its pidfd; one
/// `waitid(WNOHANG | WNOWAIT)` without one).
fn exited(r: &Running) -> bool {
    match &r.pidfd {
        Some(fd) => fd::poll_one(fd.as_fd(), Interest::Read, Some(Duration::ZERO)).unwrap_or(false),
        None => matches!(
            pidfd::wait_exit(Target::Pid(r.pid), false, false),
            Ok(Some(_))
        ),
    }
}

/// Starts `/bin/sh` on [`SCRIPT`]: a new session, signal dispositions
/// reset (the script ignores what it must), stdin the pipe, stdout and
/// stderr `/dev/null`, the tables as fds 3 and 4, nothing else open.
fn start(w: &Watchdog) -> std::io::Result<Running> {
    let (read_end, owner_end) = crate::sys::pipe::pipe()?;
    let null = fd::open(c"/dev/null", libc::O_RDWR, 0)?;
    // Sources above 4, so that no dup2 overwrites one before it is used.
    let high = |f: &OwnedFd| fd::dup_at_least(f.as_fd(), 5);
    let (stdin, null, pids, cgroups) = (
        high(&read_end)?,
        high(&null)?,
        high(&w.pids.file)?,
        high(&w.cgroups.file)?,
    );
    drop(read_end);
    let path = c"/bin/sh";
    let arg0 = CString::new(NAME).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let script =
        CString::new(SCRIPT).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let argv = [
        arg0.as_ptr(),
        c"-c".as_ptr(),
        script.as_ptr(),
        std::ptr::null(),
    ];
    let envp = [
        c"PATH=/usr/bin:/bin:/usr/sbin:/sbin".as_ptr(),
        std::ptr::null(),
    ];
    let actions = [
        Action::ResetSignalDispositions,
        Action::NewSession,
        Action::Chdir(c"/".as_ptr()),
        Action::CloseOthers {
            max_fd: fd::max_fd(),
        },
        Action::Dup2 {
            from: stdin.as_raw_fd(),
            to: 0,
        },
        Action::Dup2 {
            from: null.as_raw_fd(),
            to: 1,
        },
        Action::Dup2 {
            from: null.as_raw_fd(),
            to: 2,
        },
        Action::Dup2 {
            from: pids.as_raw_fd(),
            to: 3,
        },
        Action::Dup2 {
            from: cgroups.as_raw_fd(),
            to: 4,
        },
        Action::UnblockSignals,
    ];
    let plan = ChildPlan {
        path,
        argv: &argv,
        envp: envp.as_ptr(),
        actions: &actions,
    };
    let spawned = sys_spawn::spawn(&plan).map_err(|e| match e {
        sys_spawn::SpawnError::Clone(e) | sys_spawn::SpawnError::Child { error: e, .. } => e,
    })?;
    Ok(Running {
        pid: spawned.pid,
        pidfd: spawned.pidfd,
        _owner_end: owner_end,
    })
}

/// The watchdog's pid, starting it if needed (`None` if none can run).
pub(crate) fn pid() -> Option<u32> {
    let mut guard = lock();
    let w = ensure(&mut guard)?;
    w.running.as_ref().map(|r| r.pid as u32)
}

//! The spawn path: `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` followed,
//! in the child, by a prepared list of [`Action`]s and `execve(2)`.
//!
//! # The child side is async-signal-safe
//!
//! The child shares the parent's memory until it calls `execve` (that is what
//! `CLONE_VM` means), and the parent thread is suspended meanwhile
//! (`CLONE_VFORK`). The child therefore runs only [`child_main`]: it does not
//! allocate, take locks, panic or touch anything but the prepared
//! [`ChildPlan`], and it calls only async-signal-safe functions. Everything it
//! needs (paths, argv, envp as C strings, descriptor numbers, the empty signal
//! set) is computed by the parent before the clone.
//!
//! # Why `CLONE_VFORK` and not `fork`
//!
//! The cost of `fork` grows with the parent's memory (page tables are copied);
//! a `CLONE_VM` child borrows the parent's address space and costs the same
//! whatever the parent's size. No current step needs a real `fork`.
//!
//! # How a failure reaches the parent
//!
//! A classic fork/exec reports a failed step through a close-on-exec pipe.
//! Here the child shares our memory and the parent does not resume until the
//! child has either called `execve` successfully or exited, so the child writes
//! the index of the failed action and its errno into a slot of the parent's
//! memory that the parent reads after `clone` returns: the same information
//! with no pipe to create, read and close on every spawn.
//!
//! # Signals
//!
//! Every signal is blocked on the calling thread around the clone, so no
//! handler of the parent can run in the child while it shares the parent's
//! memory. The child resets every disposition to `SIG_DFL` (ignored signals
//! would otherwise stay ignored across `execve`) and unblocks everything just
//! before `execve`.

use std::cell::UnsafeCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use super::pidfd::{self, Target};
use super::signal;

/// One step the child performs before `execve`, with everything it needs
/// already computed. Raw pointers point into data the parent keeps alive
/// until [`spawn`] returns.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Action {
    /// `rt_sigaction(sig, SIG_DFL)` for every catchable signal, the C
    /// library's internal ones included.
    ResetSignalDispositions,
    /// `setpgid(0, pgid)`; 0 makes the child lead a new group.
    SetProcessGroup(libc::pid_t),
    /// `setsid()`: a new session (and group) led by the child.
    NewSession,
    /// `ioctl(fd, TIOCSCTTY, 0)`: the terminal `fd` becomes the
    /// controlling terminal of the child's new session.
    ControllingTerminal(RawFd),
    /// Records the child in its owner-death watchdog slot (`SLOT` bytes at
    /// `slot`, see `engine::watchdog`): its pid, and `-pid` for its group
    /// when it leads one, then the commit byte; then checks that its parent
    /// is still `owner`. An owner that died during the spawn may have let
    /// its watchdog read the table before the slot was committed, so the
    /// child then exits instead of running unwatched (`ESRCH`).
    RecordSelf {
        slot: *mut u8,
        group: bool,
        owner: libc::pid_t,
    },
    /// `write(fd, "0")` to a cgroup's `cgroup.procs`: moves the child into
    /// that cgroup (0 names the writer).
    JoinCgroup(RawFd),
    /// `chdir(path)`.
    Chdir(*const c_char),
    /// `dup2(from, to)`; when `from == to`, clears `FD_CLOEXEC` instead.
    Dup2 { from: RawFd, to: RawFd },
    /// `close(fd)`.
    Close(RawFd),
    /// Marks every descriptor from 3 up close-on-exec:
    /// `close_range(3, ~0, CLOSE_RANGE_CLOEXEC)`, or, on kernels without it,
    /// `fcntl(F_SETFD, FD_CLOEXEC)` on each descriptor below `max_fd`.
    CloseOthers { max_fd: RawFd },
    /// `prlimit64(0, resource, {soft, hard}, NULL)`: what `setrlimit(2)` does.
    SetLimit {
        resource: c_int,
        soft: u64,
        hard: u64,
    },
    /// `setpriority(PRIO_PROCESS, 0, nice)`.
    Nice(c_int),
    /// `umask(mask)`.
    Umask(libc::mode_t),
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)`.
    NoNewPrivs,
    /// `setgroups(len, list)`.
    SetGroups {
        list: *const libc::gid_t,
        len: usize,
    },
    /// `setresgid(gid, gid, gid)`.
    SetGid(libc::gid_t),
    /// `setresuid(uid, uid, uid)`.
    SetUid(libc::uid_t),
    /// `sigprocmask(SIG_SETMASK, empty)`: must be the last action.
    UnblockSignals,
}

/// What the child runs: actions in order, then `execve(path, argv, envp)`.
pub(crate) struct ChildPlan<'a> {
    pub path: &'a CStr,
    /// NULL-terminated array of pointers to NUL-terminated strings.
    pub argv: &'a [*const c_char],
    /// NULL-terminated array of pointers to NUL-terminated `KEY=VALUE`
    /// strings (a slice the plan owns, or [`inherited_environ`]).
    pub envp: *const *const c_char,
    pub actions: &'a [Action],
}

/// A child that was started (it has called `execve` successfully).
pub(crate) struct Spawned {
    pub pid: libc::pid_t,
    /// `None` only on kernels older than 5.3 (no pidfds).
    pub pidfd: Option<OwnedFd>,
}

/// Why [`spawn`] failed.
#[derive(Debug)]
pub(crate) enum SpawnError {
    /// `clone` itself failed (e.g. `EAGAIN` at the process limit).
    Clone(io::Error),
    /// The child failed at `actions[action]` (or at `execve` when
    /// `action == actions.len()`). The child has been reaped.
    Child { action: usize, error: io::Error },
}

/// Written by the child when a step fails, read by the parent after `clone`.
struct Failure {
    action: usize,
    errno: c_int,
}

struct Shared<'a> {
    plan: &'a ChildPlan<'a>,
    empty_mask: libc::sigset_t,
    failure: UnsafeCell<Option<Failure>>,
}

const STACK_SIZE: usize = 64 * 1024;

thread_local! {
    static STACK: std::cell::Cell<Option<Box<[std::mem::MaybeUninit<u8>]>>> =
        const { std::cell::Cell::new(None) };
}

/// The calling process's own environment (`environ`), for a child that
/// inherits it unchanged: `execve` copies it, so no per-spawn copy is made.
///
/// Like `posix_spawn` with `environ`, this relies on no other thread
/// modifying the environment meanwhile, which Rust's `set_var` (an `unsafe`
/// function since the 2024 edition) already requires of its callers.
pub(crate) fn inherited_environ() -> *const *const c_char {
    // SAFETY: reads the pointer value of the C library's `environ`; the
    // strings it points to are read only by the kernel during `execve`.
    unsafe { libc::environ as *const *const c_char }
}

/// Set once `clone` has refused `CLONE_PIDFD` (kernels before 5.2).
static NO_CLONE_PIDFD: AtomicBool = AtomicBool::new(false);

/// Starts a child that runs `plan`. Returns once the child has called `execve`
/// (success) or failed a step (then it has been reaped).
pub(crate) fn spawn(plan: &ChildPlan<'_>) -> Result<Spawned, SpawnError> {
    debug_assert!(plan.argv.last().is_some_and(|p| p.is_null()));
    let shared = Shared {
        plan,
        empty_mask: signal::empty_set(),
        failure: UnsafeCell::new(None),
    };
    // The child's stack: uninitialised memory that the child writes before it
    // reads, kept per thread between spawns (a thread cannot spawn twice at
    // once: CLONE_VFORK suspends it until the child has left the stack).
    let mut stack = STACK
        .take()
        .unwrap_or_else(|| Box::new_uninit_slice(STACK_SIZE));
    // SAFETY: the slice is STACK_SIZE long, so the one-past-the-end pointer
    // is in bounds of the allocation.
    let top = unsafe { stack.as_mut_ptr().add(STACK_SIZE) };
    let top = (top as usize & !15) as *mut c_void;

    let mut pidfd: c_int = -1;
    let saved = signal::block_all();
    let mut with_pidfd = !NO_CLONE_PIDFD.load(Ordering::Relaxed);
    let pid = loop {
        let mut flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
        if with_pidfd {
            flags |= libc::CLONE_PIDFD;
        }
        // SAFETY: `child_main` only touches `shared` (alive until we return,
        // and the parent is suspended while the child uses it) and the stack
        // we allocated; it never returns into the parent's frames. With
        // CLONE_PIDFD the kernel writes the pidfd into `pidfd`.
        let pid = unsafe {
            libc::clone(
                child_main,
                top,
                flags,
                &shared as *const Shared<'_> as *mut c_void,
                &mut pidfd as *mut c_int,
            )
        };
        if pid == -1 {
            let e = io::Error::last_os_error();
            if with_pidfd && e.raw_os_error() == Some(libc::EINVAL) {
                NO_CLONE_PIDFD.store(true, Ordering::Relaxed);
                with_pidfd = false;
                continue;
            }
            signal::restore(saved);
            return Err(SpawnError::Clone(e));
        }
        break pid;
    };
    signal::restore(saved);
    STACK.set(Some(stack));

    let pidfd = if with_pidfd {
        // SAFETY: clone succeeded with CLONE_PIDFD, so `pidfd` is a fresh
        // close-on-exec descriptor that we own.
        Some(unsafe { OwnedFd::from_raw_fd(pidfd) })
    } else {
        // The child cannot have been reaped yet (only we reap it), so its pid
        // still names it.
        pidfd::pidfd_open(pid).ok()
    };

    // SAFETY: the child has exec'd or exited (CLONE_VFORK), so nothing else
    // accesses `failure` any more.
    if let Some(f) = unsafe { (*shared.failure.get()).take() } {
        // The child called _exit right after writing the failure: reap it.
        let target = match &pidfd {
            Some(fd) => Target::Pidfd(fd.as_fd()),
            None => Target::Pid(pid),
        };
        let _ = pidfd::wait_exit(target, true, true);
        return Err(SpawnError::Child {
            action: f.action,
            error: io::Error::from_raw_os_error(f.errno),
        });
    }
    Ok(Spawned { pid, pidfd })
}

/// The child's whole life before `execve`. Async-signal-safe: no allocation,
/// no locks, no panics (no indexing, no arithmetic that can overflow).
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Shared` the parent passed to clone; the parent is
    // suspended and keeps it alive until we exec or exit.
    let shared = unsafe { &*(arg as *const Shared<'_>) };
    let plan = shared.plan;
    for (i, action) in plan.actions.iter().enumerate() {
        if let Err(errno) = run_action(action, shared) {
            fail(shared, i, errno);
        }
    }
    // SAFETY: path, argv and envp are NUL-terminated strings and
    // NULL-terminated arrays prepared by the parent.
    unsafe {
        libc::execve(plan.path.as_ptr(), plan.argv.as_ptr(), plan.envp);
    }
    fail(shared, plan.actions.len(), errno())
}

fn errno() -> c_int {
    // SAFETY: reads the calling thread's errno slot.
    unsafe { *libc::__errno_location() }
}

fn check(ret: c_int) -> Result<(), c_int> {
    if ret == -1 { Err(errno()) } else { Ok(()) }
}

fn check_long(ret: libc::c_long) -> Result<(), c_int> {
    if ret == -1 { Err(errno()) } else { Ok(()) }
}

fn fail(shared: &Shared<'_>, action: usize, errno: c_int) -> ! {
    // SAFETY: the parent is suspended until we exit, so this write cannot race.
    unsafe {
        std::ptr::write_volatile(shared.failure.get(), Some(Failure { action, errno }));
        libc::_exit(127)
    }
}

fn run_action(action: &Action, shared: &Shared<'_>) -> Result<(), c_int> {
    // SAFETY (whole block): each call is an async-signal-safe system call on
    // plain integers, on pointers the parent prepared and keeps alive, or on
    // a local buffer of the size the kernel reads.
    unsafe {
        match *action {
            Action::ResetSignalDispositions => {
                // The system call itself, not the C library's `sigaction`,
                // which refuses (EINVAL) the signals it reserves for itself
                // (32 and 33 with glibc): those can arrive here ignored, as
                // glibc's posix_spawn leaves them in the programs it starts,
                // and SIG_IGN would survive execve. An all-zero kernel
                // `struct sigaction` (at most 64 bytes on any architecture)
                // is SIG_DFL with no flags and an empty mask; the kernel's
                // sigset_t holds one bit per signal up to SIGRTMAX.
                let dfl = [0u64; 8];
                let max = libc::SIGRTMAX();
                let sigset_size = (max as usize).div_ceil(64) * 8;
                for sig in 1..max + 1 {
                    if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                        libc::syscall(
                            libc::SYS_rt_sigaction,
                            sig,
                            dfl.as_ptr(),
                            std::ptr::null_mut::<c_void>(),
                            sigset_size,
                        );
                    }
                }
                Ok(())
            }
            Action::SetProcessGroup(pgid) => check(libc::setpgid(0, pgid)),
            Action::NewSession => check(libc::setsid()),
            Action::ControllingTerminal(fd) => check(libc::ioctl(fd, libc::TIOCSCTTY, 0)),
            Action::RecordSelf { slot, group, owner } => {
                record_self(slot, group);
                if libc::syscall(libc::SYS_getppid) as libc::pid_t == owner {
                    Ok(())
                } else {
                    Err(libc::ESRCH)
                }
            }
            Action::JoinCgroup(fd) => loop {
                let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                if n == -1 && errno() == libc::EINTR {
                    continue;
                }
                break if n == 1 { Ok(()) } else { Err(errno()) };
            },
            Action::Chdir(path) => check(libc::chdir(path)),
            Action::Dup2 { from, to } => {
                if from == to {
                    check(libc::fcntl(from, libc::F_SETFD, 0))
                } else {
                    loop {
                        let r = libc::dup2(from, to);
                        if r == -1 && errno() == libc::EINTR {
                            continue;
                        }
                        break check(r);
                    }
                }
            }
            Action::Close(fd) => {
                libc::close(fd);
                Ok(())
            }
            Action::CloseOthers { max_fd } => {
                let r = libc::syscall(
                    libc::SYS_close_range,
                    3 as libc::c_uint,
                    libc::c_uint::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
                if r == 0 {
                    return Ok(());
                }
                // Kernels before 5.11: mark them one by one.
                let mut fd = 3;
                while fd < max_fd {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                    fd += 1;
                }
                Ok(())
            }
            // The credential and limit calls below are the raw system calls.
            // glibc's `setuid`/`setgid`/`setgroups` wrappers make every
            // thread of the caller change too, by signalling the threads in
            // the C library's thread list, which in a CLONE_VM child is the
            // parent's list: the parent's threads would be signalled (and
            // the wrapper would wait on locks they hold). The kernel calls
            // change only the calling process, which is what a child wants.
            Action::SetLimit {
                resource,
                soft,
                hard,
            } => {
                let limit = libc::rlimit64 {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                check_long(libc::syscall(
                    libc::SYS_prlimit64,
                    0,
                    resource,
                    &limit as *const libc::rlimit64,
                    std::ptr::null_mut::<libc::rlimit64>(),
                ))
            }
            Action::Nice(nice) => check_long(libc::syscall(
                libc::SYS_setpriority,
                libc::PRIO_PROCESS,
                0,
                nice,
            )),
            Action::Umask(mask) => {
                libc::syscall(libc::SYS_umask, mask);
                Ok(())
            }
            Action::NoNewPrivs => check_long(libc::syscall(
                libc::SYS_prctl,
                libc::PR_SET_NO_NEW_PRIVS,
                1 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )),
            Action::SetGroups { list, len } => {
                check_long(libc::syscall(libc::SYS_setgroups, len, list))
            }
            Action::SetGid(gid) => check_long(libc::syscall(libc::SYS_setresgid, gid, gid, gid)),
            Action::SetUid(uid) => check_long(libc::syscall(libc::SYS_setresuid, uid, uid, uid)),
            Action::UnblockSignals => check(libc::sigprocmask(
                libc::SIG_SETMASK,
                &shared.empty_mask,
                std::ptr::null_mut(),
            )),
        }
    }
}

/// Bytes per watchdog slot: a commit byte, the text, a newline.
pub(crate) const SLOT: usize = 32;

/// Formats `" -<pid> <pid>"` (or `" <pid>"`) into the slot after its commit
/// byte, then commits it with `k`. Async-signal-safe: stack buffer, integer
/// arithmetic on a pid (at most 10 digits), volatile and atomic stores.
fn record_self(slot: *mut u8, group: bool) {
    // SAFETY: getpid has no arguments and cannot fail.
    let pid = unsafe { libc::syscall(libc::SYS_getpid) } as u32;
    let mut digits = [0u8; 10];
    let mut n = 0;
    let mut v = pid;
    loop {
        digits[n % 10] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 || n == 10 {
            break;
        }
    }
    let mut text = [b' '; SLOT - 2];
    let mut at = 1;
    let mut put = |b: u8| {
        if at < text.len() {
            text[at] = b;
            at += 1;
        }
    };
    if group {
        put(b'-');
        for i in (0..n).rev() {
            put(digits[i % 10]);
        }
        put(b' ');
    }
    for i in (0..n).rev() {
        put(digits[i % 10]);
    }
    for (i, &b) in text.iter().enumerate() {
        // SAFETY: `slot` points at SLOT bytes of the watchdog's mapping
        // (prepared by the parent); bytes 1..SLOT-1 are written here.
        unsafe { std::ptr::write_volatile(slot.add(1 + i), b) };
    }
    super::shm::commit_at(slot, b'k');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many bytes of this thread's clone stack a spawn used: the stack
    /// is painted first; the child writes from the top down, so the paint
    /// left at the bottom is what it never touched.
    fn stack_used_by(spawn_one: impl FnOnce()) -> usize {
        const PAINT: u8 = 0xA5;
        let mut stack = STACK
            .take()
            .unwrap_or_else(|| Box::new_uninit_slice(STACK_SIZE));
        for b in stack.iter_mut() {
            b.write(PAINT);
        }
        STACK.set(Some(stack));
        spawn_one();
        let stack = STACK.take().expect("the spawn put the stack back");
        // SAFETY: every byte was written above (painted, or by the child).
        let untouched = stack
            .iter()
            .take_while(|b| unsafe { b.assume_init() } == PAINT)
            .count();
        STACK.set(Some(stack));
        STACK_SIZE - untouched
    }

    /// Kernels before 5.2 refuse `CLONE_PIDFD`; the pidfd then comes from
    /// `pidfd_open` right after the clone. Forced here (nextest runs each
    /// test in a process of its own, so the flag stays in this one).
    #[test]
    fn without_clone_pidfd_the_child_still_gets_a_pidfd() {
        NO_CLONE_PIDFD.store(true, Ordering::Relaxed);
        let pidfds = || {
            std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| target.to_string_lossy().contains("pidfd"))
                .count()
        };
        // The watchdog's own pidfd stays open from its start.
        assert!(crate::engine::watchdog::pid().is_some());
        let before = pidfds();
        let mut child = crate::Command::new("sleep").arg("100").spawn().unwrap();
        assert_eq!(pidfds(), before + 1, "no pidfd for the child");
        child.kill().unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(crate::Signal::KILL));
        let mut child = crate::Command::new("sh")
            .args(["-c", "exit 3"])
            .spawn()
            .unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(3));
    }

    /// The child runs on a stack of our own with no guard page below it:
    /// an overflow would silently write over the heap. Its use must stay
    /// far below the size, for the plainest spawn and for one that takes
    /// every step (pipes, working directory, group, environment, a failed
    /// exec that reports back).
    #[test]
    fn the_child_uses_a_small_part_of_its_stack() {
        let plain = stack_used_by(|| {
            let mut child = crate::Command::new("true").spawn().unwrap();
            assert!(child.wait().unwrap().success());
        });
        let busy = stack_used_by(|| {
            let err = crate::Command::new("/nonexistent/program")
                .current_dir("/")
                .env("A", "1")
                .env_remove("HOME")
                .process_group(crate::ProcessGroup::New)
                .stdin(crate::Stdio::piped())
                .stdout(crate::Stdio::piped())
                .stderr(crate::Stdio::piped())
                .spawn()
                .unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::NotFound);
        });
        for used in [plain, busy] {
            assert!(used > 0, "the child never ran on this stack");
            assert!(
                used <= STACK_SIZE / 8,
                "the child used {used} of {STACK_SIZE} bytes of stack"
            );
        }
    }
}

//! Calibration rows for scenario 4: a minimal spawn, `clone(CLONE_VM |
//! CLONE_VFORK)` and `execve`, with none of procession's safety features;
//! the same with every signal disposition reset in the child; and the same
//! with every safety feature procession applies, done with the fewest system
//! calls and no library around them. They show what the kernel allows on
//! this machine, so that a spawn-rate target can be judged against the floor
//! rather than against std alone.

use std::ffi::{CString, c_char, c_int, c_void};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What the calibration child does besides `execve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Safety {
    /// Nothing: the kernel's floor for a vfork-style spawn.
    None,
    /// Every signal disposition reset to `SIG_DFL` (62 `rt_sigaction`).
    SignalReset,
    /// Everything procession does by default: a pidfd from the clone
    /// (`CLONE_PIDFD`), every disposition reset, a new process group,
    /// `close_range(3, ~0, CLOSE_RANGE_CLOEXEC)`, an empty mask; waited for
    /// and reaped through the pidfd, which is then closed.
    All,
}

struct ChildArgs {
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    safety: Safety,
}

extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` points to the parent's `ChildArgs`, alive until the
    // parent resumes (CLONE_VFORK suspends it until our execve or exit).
    let a = unsafe { &*(arg as *const ChildArgs) };
    if a.safety != Safety::None {
        // The kernel's struct sigaction: handler, flags, restorer, mask.
        let sa: [u64; 4] = [0, 0, 0, 0]; // SIG_DFL, no flags, empty mask
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            // SAFETY: raw rt_sigaction with a valid kernel sigaction and an
            // 8-byte mask size; async-signal-safe, allocates nothing.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    sa.as_ptr(),
                    std::ptr::null::<u64>(),
                    8usize,
                )
            };
        }
    }
    if a.safety == Safety::All {
        // SAFETY: plain system calls on integers.
        unsafe {
            libc::setpgid(0, 0);
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
        }
    }
    let empty: u64 = 0;
    // SAFETY: raw rt_sigprocmask with a valid 8-byte mask.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null::<u64>(),
            8usize,
        )
    };
    // SAFETY: NUL-terminated path and NULL-terminated argv/envp arrays
    // prepared by the parent.
    unsafe {
        libc::execve(a.path, a.argv, a.envp);
        libc::_exit(127)
    }
}

/// A prepared raw spawner for one program.
pub struct RawSpawner {
    _path: CString,
    _argv_s: Vec<CString>,
    argv: Vec<*const c_char>,
    _env_s: Vec<CString>,
    envp: Vec<*const c_char>,
    stack: Vec<u8>,
    safety: Safety,
}

impl RawSpawner {
    pub fn new(prog: &Path, safety: Safety) -> io::Result<RawSpawner> {
        let path = CString::new(prog.as_os_str().as_bytes()).map_err(io::Error::other)?;
        let argv_s = vec![path.clone()];
        let argv: Vec<*const c_char> = argv_s
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        let env_s: Vec<CString> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect();
        let envp: Vec<*const c_char> = env_s
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        Ok(RawSpawner {
            _path: path,
            _argv_s: argv_s,
            argv,
            _env_s: env_s,
            envp,
            stack: vec![0u8; 64 * 1024],
            safety,
        })
    }

    /// Spawns and waits; returns the exit status word.
    pub fn run(&mut self) -> io::Result<c_int> {
        let args = ChildArgs {
            path: self.argv[0],
            argv: self.argv.as_ptr(),
            envp: self.envp.as_ptr(),
            safety: self.safety,
        };
        // SAFETY: plain data; zeroed then filled by sigfillset.
        let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid sigset pointers.
        unsafe {
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        }
        // The stack grows down: pass its 16-byte-aligned top.
        let top = (self.stack.as_mut_ptr() as usize + self.stack.len()) & !15;
        let with_pidfd = self.safety == Safety::All;
        let mut flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
        if with_pidfd {
            flags |= libc::CLONE_PIDFD;
        }
        let mut pidfd: c_int = -1;
        // SAFETY: `child_main` only uses `args` and async-signal-safe calls;
        // CLONE_VFORK keeps `args` and the stack alive (this thread is
        // suspended) until the child has exec'd or exited. With CLONE_PIDFD
        // the kernel writes the pidfd into `pidfd`.
        let pid = unsafe {
            libc::clone(
                child_main,
                top as *mut c_void,
                flags,
                &args as *const ChildArgs as *mut c_void,
                &mut pidfd as *mut c_int,
            )
        };
        let err = io::Error::last_os_error();
        // SAFETY: restores the saved mask.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        if pid < 0 {
            return Err(err);
        }
        if with_pidfd {
            return wait_pidfd(pidfd);
        }
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, 0) };
            if r == pid {
                return Ok(status);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Reaps the child through `pidfd` (one `waitid(P_PIDFD, ..., WEXITED)`),
/// closes it, and returns a wait-style status word (exit code << 8, or the
/// signal number).
fn wait_pidfd(pidfd: c_int) -> io::Result<c_int> {
    // SAFETY: plain data, filled by waitid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let r = loop {
        // SAFETY: `pidfd` is the descriptor clone returned; `info` is a
        // valid out pointer.
        let r =
            unsafe { libc::waitid(libc::P_PIDFD, pidfd as libc::id_t, &mut info, libc::WEXITED) };
        if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break r;
        }
    };
    let err = io::Error::last_os_error();
    // SAFETY: we own `pidfd` and close it once.
    unsafe { libc::close(pidfd) };
    if r != 0 {
        return Err(err);
    }
    // SAFETY: waitid filled a SIGCHLD siginfo.
    let (code, value) = unsafe { (info.si_code, info.si_status()) };
    Ok(if code == libc::CLD_EXITED {
        value << 8
    } else {
        value
    })
}

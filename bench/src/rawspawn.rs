//! Calibration rows for scenario 4: a minimal spawn, `clone(CLONE_VM |
//! CLONE_VFORK)` and `execve`, with none of procession's safety features,
//! and the same with every signal disposition reset in the child. They show what the
//! kernel allows on this machine, so that a spawn-rate target can be judged
//! against the floor rather than against std alone.

use std::ffi::{CString, c_char, c_int, c_void};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

struct ChildArgs {
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    reset_signals: bool,
}

extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` points to the parent's `ChildArgs`, alive until the
    // parent resumes (CLONE_VFORK suspends it until our execve or exit).
    let a = unsafe { &*(arg as *const ChildArgs) };
    if a.reset_signals {
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
    reset_signals: bool,
}

impl RawSpawner {
    pub fn new(prog: &Path, reset_signals: bool) -> io::Result<RawSpawner> {
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
            reset_signals,
        })
    }

    /// Spawns and waits; returns the exit status word.
    pub fn run(&mut self) -> io::Result<c_int> {
        let args = ChildArgs {
            path: self.argv[0],
            argv: self.argv.as_ptr(),
            envp: self.envp.as_ptr(),
            reset_signals: self.reset_signals,
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
        // SAFETY: `child_main` only uses `args` and async-signal-safe calls;
        // CLONE_VFORK keeps `args` and the stack alive (this thread is
        // suspended) until the child has exec'd or exited.
        let pid = unsafe {
            libc::clone(
                child_main,
                top as *mut c_void,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                &args as *const ChildArgs as *mut c_void,
            )
        };
        let err = io::Error::last_os_error();
        // SAFETY: restores the saved mask.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        if pid < 0 {
            return Err(err);
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

//! The only module with `unsafe` code: thin, documented wrappers over the raw
//! Linux system calls the engine needs, one file per syscall family.
//!
//! Everything here takes and returns I/O-safe types (`OwnedFd`, `BorrowedFd`)
//! and `io::Result`; callers above never see a raw errno convention.
//!
//! Linux is the only target built and tested today. The seam for other Unix
//! systems is this module: the engine only calls the functions below.

#![allow(unsafe_code)]

pub(crate) mod epoll;
pub(crate) mod fd;
pub(crate) mod fs;
pub(crate) mod pidfd;
pub(crate) mod pipe;
pub(crate) mod procfs;
pub(crate) mod pty;
#[cfg(feature = "tokio")]
pub(crate) mod reactor;
pub(crate) mod shm;
pub(crate) mod signal;
pub(crate) mod spawn;
pub(crate) mod splice;
pub(crate) mod tty;
pub(crate) mod user;

use std::io;

/// Turns a libc return value of -1 into the thread's `errno`.
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like [`cvt`], for `syscall(2)`'s `c_long` return.
pub(crate) fn cvt_long(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Retries `f` while it fails with `EINTR`.
pub(crate) fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

//! `pipe2(2)` and `fcntl(F_SETPIPE_SZ)`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

use super::cvt;

/// `pipe2(O_CLOEXEC)`: returns `(read end, write end)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded: both descriptors are fresh and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `/proc/sys/fs/pipe-max-size`, read once (1 MiB when unreadable).
pub(crate) fn max_pipe_size() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1 << 20)
    })
}

/// `fcntl(F_SETPIPE_SZ)`: asks for a pipe capacity of at least `size` bytes,
/// capped at the system maximum. Best effort: returns the capacity the pipe
/// has afterwards, and the error when the kernel refused (for example an
/// unprivileged user over `fs.pipe-user-pages-soft`), in which case the pipe
/// keeps its old capacity.
pub(crate) fn set_pipe_size(fd: BorrowedFd<'_>, size: usize) -> io::Result<usize> {
    let size = size.min(max_pipe_size()).min(libc::c_int::MAX as usize);
    // SAFETY: F_SETPIPE_SZ takes an int argument and no memory.
    let got = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) })?;
    Ok(got as usize)
}

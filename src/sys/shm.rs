//! Shared memory backed by a file: `memfd_create(2)`, `ftruncate(2)` and a
//! `MAP_SHARED` `mmap(2)` that is never unmapped.
//!
//! The owner-death watchdog (`engine::watchdog`) reads the list of live
//! children from such a file once the owner is gone; the owner, and a child
//! between clone and exec, write it through the mapping.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};

use super::{cvt, retry};

/// `memfd_create(name, MFD_CLOEXEC)`: an anonymous file of size 0.
pub(crate) fn memfd(name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a valid NUL-terminated string for the call.
    let fd = cvt(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: memfd_create returned a fresh descriptor that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `ftruncate(fd, len)`: sets the file's size (new bytes read as zeros).
pub(crate) fn set_len(fd: BorrowedFd<'_>, len: usize) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: ftruncate takes a descriptor and an integer; no memory.
    retry(|| cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len) })).map(|_| ())
}

/// A `MAP_SHARED` read-write mapping of a file, `len` bytes long, that
/// stays mapped for the life of the process (it is never unmapped, so a
/// pointer into it never dangles). Only the part within the file's size
/// may be touched (beyond it the kernel sends SIGBUS): callers grow the
/// file first.
pub(crate) struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; every access goes through the
// methods below, which write bytes with volatile or atomic stores.
unsafe impl Send for Mapping {}
// SAFETY: as above; callers keep writers of one range apart (one owner per
// slot), and concurrent readers only ever see whole bytes.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)`.
    pub(crate) fn new(fd: BorrowedFd<'_>, len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh mapping chosen by the kernel; no existing memory is
        // touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            base: NonNull::new(p.cast())
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?,
            len,
        })
    }

    /// The mapping's length in bytes (not the file's size).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// A pointer to byte `offset`, for a child to write its own slot
    /// between clone and exec (see `sys::spawn`'s `RecordSelf`).
    pub(crate) fn ptr(&self, offset: usize) -> Option<*mut u8> {
        // SAFETY: in bounds of the mapping (checked).
        (offset < self.len).then(|| unsafe { self.base.as_ptr().add(offset) })
    }

    /// Copies `bytes` to `offset` (volatile stores, so that they reach the
    /// shared file even though this process never reads them back).
    /// Out-of-range writes are refused (`false`).
    pub(crate) fn write(&self, offset: usize, bytes: &[u8]) -> bool {
        if offset
            .checked_add(bytes.len())
            .is_none_or(|end| end > self.len)
        {
            return false;
        }
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: `offset + i < len`, inside the mapping; the range is
            // within the file's size by the caller's contract.
            unsafe { std::ptr::write_volatile(self.base.as_ptr().add(offset + i), b) };
        }
        true
    }

    /// Stores one byte with release ordering: a reader that sees it also
    /// sees every byte written before it (the commit byte of a slot).
    pub(crate) fn commit(&self, offset: usize, byte: u8) -> bool {
        match self.ptr(offset) {
            Some(p) => {
                commit_at(p, byte);
                true
            }
            None => false,
        }
    }
}

/// The release store of [`Mapping::commit`] on a raw slot pointer.
/// Async-signal-safe (a single atomic store), so a child may use it between
/// clone and exec.
pub(crate) fn commit_at(p: *mut u8, byte: u8) {
    // SAFETY: callers pass a pointer into a live mapping (from
    // `Mapping::ptr`); AtomicU8 has the layout of u8 and any byte address
    // is suitably aligned.
    let a = unsafe { AtomicU8::from_ptr(p) };
    a.store(byte, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_mapping_refuses_offsets_past_its_end() {
        let fd = memfd(c"procession-test").unwrap();
        set_len(fd.as_fd(), 4096).unwrap();
        let m = Mapping::new(fd.as_fd(), 4096).unwrap();
        assert_eq!(m.len(), 4096);
        assert!(m.ptr(4095).is_some());
        assert!(m.ptr(4096).is_none(), "one past the end is not a slot");
        assert!(m.write(4094, b"ab"));
        assert!(!m.write(4095, b"ab"));
        assert!(!m.write(usize::MAX, b"a"));
        assert!(m.commit(4095, b'k'));
        assert!(!m.commit(4096, b'k'));
        // What was written is in the file.
        let mut buf = [0u8; 2];
        // SAFETY: pread into a valid 2-byte buffer from a valid descriptor.
        let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), 2, 4094) };
        assert_eq!((n, &buf), (2, b"ak"));
    }
}

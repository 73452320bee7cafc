//! File-system queries: `statfs(2)`.

use std::ffi::CStr;
use std::io;

use super::{cvt, retry};

/// `CGROUP2_SUPER_MAGIC`: the `f_type` of a cgroup v2 file system.
pub(crate) const CGROUP2_MAGIC: i64 = 0x6367_7270;

/// `statfs(path)`'s `f_type`: which kind of file system `path` is on.
pub(crate) fn fs_type(path: &CStr) -> io::Result<i64> {
    // SAFETY: an all-zero statfs is a valid value for the kernel to overwrite.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` is a valid statfs to fill.
    retry(|| cvt(unsafe { libc::statfs(path.as_ptr(), &mut st) }))?;
    #[allow(clippy::unnecessary_cast)] // its width differs between targets
    Ok(st.f_type as i64)
}

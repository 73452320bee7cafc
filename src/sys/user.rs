//! The user and group databases: `getpwnam_r(3)`, `getpwuid_r(3)`,
//! `getgrnam_r(3)`, `getgrouplist(3)`, and the caller's ids (`geteuid(2)`,
//! `getegid(2)`).
//!
//! These run in the parent while the spawn is prepared: name lookups may
//! read files, talk to NSS modules and allocate, none of which is allowed
//! between `clone` and `execve`.

use std::ffi::{CStr, CString, c_char};
use std::io;

/// A `passwd` entry: the fields the spawn path needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Passwd {
    pub name: CString,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

/// Calls a `get*_r` function with a growing buffer until it fits.
fn with_buffer<T>(
    mut call: impl FnMut(&mut [c_char]) -> Result<Option<T>, i32>,
) -> io::Result<Option<T>> {
    let mut size = 1024;
    loop {
        let mut buf = vec![0 as c_char; size];
        match call(&mut buf) {
            Ok(found) => return Ok(found),
            Err(libc::ERANGE) if size < 1 << 20 => size *= 4,
            Err(e) => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

fn passwd(
    lookup: impl Fn(*mut libc::passwd, &mut [c_char], *mut *mut libc::passwd) -> i32,
) -> io::Result<Option<Passwd>> {
    with_buffer(|buf| {
        // SAFETY: an all-zero passwd is a valid value for the function to fill.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let r = lookup(&mut pw, buf, &mut found);
        if r != 0 {
            return Err(r);
        }
        if found.is_null() {
            return Ok(None);
        }
        // SAFETY: on success `pw_name` points to a NUL-terminated string
        // inside `buf`, which is alive here.
        let name = unsafe { CStr::from_ptr(pw.pw_name) }.to_owned();
        Ok(Some(Passwd {
            name,
            uid: pw.pw_uid,
            gid: pw.pw_gid,
        }))
    })
}

/// `getpwnam_r(name)`: `None` when there is no such user.
pub(crate) fn user_by_name(name: &CStr) -> io::Result<Option<Passwd>> {
    passwd(|pw, buf, found| {
        // SAFETY: every pointer is valid for the call; `buf.len()` is its size.
        unsafe { libc::getpwnam_r(name.as_ptr(), pw, buf.as_mut_ptr(), buf.len(), found) }
    })
}

/// `getpwuid_r(uid)`: `None` when no user has this id.
pub(crate) fn user_by_id(uid: libc::uid_t) -> io::Result<Option<Passwd>> {
    passwd(|pw, buf, found| {
        // SAFETY: every pointer is valid for the call; `buf.len()` is its size.
        unsafe { libc::getpwuid_r(uid, pw, buf.as_mut_ptr(), buf.len(), found) }
    })
}

/// `getgrnam_r(name)`: the group's id, `None` when there is no such group.
pub(crate) fn group_by_name(name: &CStr) -> io::Result<Option<libc::gid_t>> {
    with_buffer(|buf| {
        // SAFETY: an all-zero group is a valid value for the function to fill.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf.len()` is its size.
        let r = unsafe {
            libc::getgrnam_r(
                name.as_ptr(),
                &mut gr,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        if r != 0 {
            return Err(r);
        }
        Ok((!found.is_null()).then_some(gr.gr_gid))
    })
}

/// `getgrouplist(name, gid)`: the groups `name` belongs to, `gid` included
/// (what `initgroups(3)` would install).
pub(crate) fn group_list(name: &CStr, gid: libc::gid_t) -> Vec<libc::gid_t> {
    let mut n: libc::c_int = 32;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let mut count = n;
        // SAFETY: `groups` has room for `count` ids; the function writes at
        // most that many and sets `count` to the number needed.
        let r = unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if r >= 0 {
            groups.truncate(count.max(0) as usize);
            return groups;
        }
        // Too small: `count` now holds the size needed.
        n = count.max(n.saturating_mul(2));
    }
}

/// `geteuid()`, `getegid()`.
pub(crate) fn effective_ids() -> (libc::uid_t, libc::gid_t) {
    // SAFETY: neither call takes arguments or can fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_uid_0_by_name_and_by_id() {
        let root = user_by_name(c"root").unwrap().unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(user_by_id(0).unwrap().unwrap().name.as_c_str(), c"root");
        assert_eq!(group_by_name(c"root").unwrap(), Some(0));
        assert!(group_list(c"root", 0).contains(&0));
    }

    #[test]
    fn unknown_names_are_none() {
        assert_eq!(user_by_name(c"no-such-user-here").unwrap(), None);
        assert_eq!(group_by_name(c"no-such-group-here").unwrap(), None);
        assert_eq!(user_by_id(4_000_000_000).unwrap(), None);
    }
}

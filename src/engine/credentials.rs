//! The parent's half of [`Command::user`](crate::Command::user) and the other
//! [`RunAs`] settings: names looked up, values checked, and the child-side
//! actions they become.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use crate::error::{Error, Step};
use crate::limits::{NameOrId, RunAs};
use crate::sys::user::{self, Passwd};

/// The ids a child switches to, resolved before the spawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Credentials {
    /// `None`: keep the caller's uid.
    pub uid: Option<libc::uid_t>,
    /// `None`: keep the caller's gid.
    pub gid: Option<libc::gid_t>,
    /// `None`: keep the caller's supplementary groups.
    pub groups: Option<Vec<libc::gid_t>>,
}

fn lookup_failed(program: &std::ffi::OsStr, what: String, e: std::io::Error) -> Error {
    Error::os(program, Step::User, e).with_detail(what)
}

fn c_name(program: &std::ffi::OsStr, name: &std::ffi::OsStr) -> Result<CString, Error> {
    CString::new(name.as_bytes())
        .map_err(|_| Error::invalid(program, format!("the name {name:?} contains a NUL byte")))
}

/// The error for an id of -1, which the kernel reads as "leave unchanged":
/// the child would keep the caller's id instead of getting this one.
fn minus_one(program: &std::ffi::OsStr, what: &str) -> Error {
    Error::invalid(
        program,
        format!(
            "{what} {} is not a {} id (to the kernel, -1 means \"unchanged\")",
            u32::MAX,
            if what == "uid" { "user" } else { "group" }
        ),
    )
    .with_step(Step::User)
}

/// A user's uid and passwd entry (no entry for a uid the database does
/// not know; an unknown name is an error).
fn account_of(
    program: &std::ffi::OsStr,
    u: &NameOrId,
) -> Result<(libc::uid_t, Option<Passwd>), Error> {
    match u {
        NameOrId::Name(name) => {
            let c = c_name(program, name)?;
            match user::user_by_name(&c) {
                Ok(Some(pw)) => Ok((pw.uid, Some(pw))),
                Ok(None) => Err(Error::invalid(program, format!("no user named {name:?}"))
                    .with_step(Step::User)),
                Err(e) => Err(lookup_failed(
                    program,
                    format!("looking up user {name:?}"),
                    e,
                )),
            }
        }
        NameOrId::Id(u32::MAX) => Err(minus_one(program, "uid")),
        NameOrId::Id(uid) => user::user_by_id(*uid)
            .map(|pw| (*uid, pw))
            .map_err(|e| lookup_failed(program, format!("looking up uid {uid}"), e)),
    }
}

/// A group's id.
pub(crate) fn gid_of(program: &std::ffi::OsStr, g: &NameOrId) -> Result<libc::gid_t, Error> {
    match g {
        NameOrId::Id(u32::MAX) => Err(minus_one(program, "gid")),
        NameOrId::Id(gid) => Ok(*gid),
        NameOrId::Name(name) => {
            let c = c_name(program, name)?;
            match user::group_by_name(&c) {
                Ok(Some(gid)) => Ok(gid),
                Ok(None) => Err(Error::invalid(program, format!("no group named {name:?}"))
                    .with_step(Step::User)),
                Err(e) => Err(lookup_failed(
                    program,
                    format!("looking up group {name:?}"),
                    e,
                )),
            }
        }
    }
}

/// A user's uid (for allow-lists): the name looked up, or the id itself.
pub(crate) fn uid_of(program: &std::ffi::OsStr, u: &NameOrId) -> Result<libc::uid_t, Error> {
    account_of(program, u).map(|(uid, _)| uid)
}

/// Resolves the user and group settings of `run_as`.
pub(crate) fn resolve(program: &std::ffi::OsStr, run_as: &RunAs) -> Result<Credentials, Error> {
    let mut creds = Credentials {
        uid: None,
        gid: None,
        groups: None,
    };
    let explicit_gid = match &run_as.primary_group {
        Some(g) => Some(gid_of(program, g)?),
        None => None,
    };
    let explicit_groups = match &run_as.groups {
        Some(list) => Some(
            list.iter()
                .map(|g| gid_of(program, g))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    if let Some(u) = &run_as.user {
        let (uid, pw) = account_of(program, u)?;
        let gid = match (explicit_gid, &pw) {
            (Some(g), _) => g,
            (None, Some(pw)) => pw.gid,
            (None, None) => {
                return Err(Error::invalid(
                    program,
                    format!("uid {uid} has no passwd entry: set primary_group too"),
                )
                .with_step(Step::User));
            }
        };
        let groups = match (explicit_groups, &pw) {
            (Some(list), _) => list,
            (None, Some(pw)) => user::group_list(&pw.name, gid),
            (None, None) => vec![gid],
        };
        // Becoming oneself needs no right: leave the groups alone then (an
        // unprivileged `setgroups` fails even when nothing changes).
        let (euid, egid) = user::effective_ids();
        let same = uid == euid && gid == egid && run_as.groups.is_none();
        creds.uid = Some(uid);
        creds.gid = Some(gid);
        creds.groups = (!same).then_some(groups);
    } else {
        creds.gid = explicit_gid;
        creds.groups = explicit_groups;
    }
    Ok(creds)
}

/// Checks the values that need no lookup (limits, nice, umask).
pub(crate) fn check(program: &std::ffi::OsStr, run_as: &RunAs) -> Result<(), Error> {
    for &(limit, soft, hard) in &run_as.limits {
        if soft > hard {
            return Err(Error::invalid(
                program,
                format!(
                    "{}: the soft limit {soft} is above the hard limit {hard}",
                    limit.c_name()
                ),
            )
            .with_step(Step::Limit));
        }
    }
    if let Some(n) = run_as.nice {
        if !(-20..=19).contains(&n) {
            return Err(
                Error::invalid(program, format!("nice {n} is outside -20..=19"))
                    .with_step(Step::Nice),
            );
        }
    }
    if let Some(m) = run_as.umask {
        if m > 0o777 {
            return Err(Error::invalid(
                program,
                format!("umask {m:#o} is above 0o777"),
            ));
        }
    }
    Ok(())
}

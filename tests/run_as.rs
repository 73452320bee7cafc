//! Who the child runs as and what it may use: user and groups, resource
//! limits, nice, umask, `no_new_privs`. Each setting is read back from the
//! running child's /proc entry (not from the library), and each kind of bad
//! input is an error before anything runs.
//!
//! Changing user needs root: the tests that do are skipped (with a note)
//! otherwise. CI runs as root.

mod support;
use support::*;

use std::os::unix::fs::PermissionsExt;

use procession::{Child, Command, Error, ErrorKind, Limit, Stdio, Step};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("note: skipped: needs root");
    }
    root
}

/// Starts `cmd` as a `cat` that waits on its stdin, so that its /proc entry
/// can be read while it runs.
fn parked(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn")
}

/// Ends a child started by [`parked`] and checks it ran to its end.
fn finish(mut child: Child) {
    child.close_stdin();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// The value of `field` in /proc/<pid>/status, whitespace-normalised.
fn status_field(child: &Child, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.pid())).unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What `id` (an outside view of the user database) says.
fn id(args: &[&str]) -> String {
    let out = std::process::Command::new("id")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The error `cmd` gives, checking that the program never ran: the command
/// is `touch MARKER`, and the marker must not exist afterwards.
fn refused(cmd: impl FnOnce(&mut Command) -> &mut Command) -> Error {
    let dir = TempDir::new("run-as");
    let marker = dir.join("ran");
    let mut c = Command::new("touch");
    c.arg(&marker);
    let err = cmd(&mut c).status().expect_err("must be refused");
    assert!(!marker.exists(), "the program ran: {err}");
    err
}

#[test]
fn runs_as_nobody_with_nobodys_group_and_groups() {
    let _g = Guard::new();
    if !is_root() {
        return;
    }
    let uid = id(&["-u", "nobody"]);
    let gid = id(&["-g", "nobody"]);
    // By name, and by id (the passwd entry found from the uid gives the
    // group and the groups).
    for user in [
        procession::NameOrId::from("nobody"),
        procession::NameOrId::Id(uid.parse().unwrap()),
    ] {
        let child = parked(Command::new("cat").user(user));
        assert_eq!(status_field(&child, "Uid"), [uid.as_str(); 4].join(" "));
        assert_eq!(status_field(&child, "Gid"), [gid.as_str(); 4].join(" "));
        // The kernel lists the groups sorted.
        let mut groups: Vec<u32> = id(&["-G", "nobody"])
            .split(' ')
            .map(|g| g.parse().unwrap())
            .collect();
        groups.sort_unstable();
        let groups: Vec<String> = groups.iter().map(u32::to_string).collect();
        assert_eq!(status_field(&child, "Groups"), groups.join(" "));
        finish(child);
    }
}

#[test]
fn explicit_primary_and_supplementary_groups_by_name_and_id() {
    let _g = Guard::new();
    if !is_root() {
        return;
    }
    let nogroup = id(&["-g", "nobody"]);
    let child = parked(
        Command::new("cat")
            .user(65534)
            .primary_group("root")
            .supplementary_groups([procession::NameOrId::Id(7), "root".into()]),
    );
    assert_eq!(status_field(&child, "Uid"), "65534 65534 65534 65534");
    assert_eq!(status_field(&child, "Gid"), "0 0 0 0");
    assert_eq!(status_field(&child, "Groups"), "0 7");
    finish(child);
    // An empty list leaves none (root's own groups are not kept).
    let child = parked(
        Command::new("cat")
            .user("nobody")
            .supplementary_groups(Vec::<u32>::new()),
    );
    assert_eq!(status_field(&child, "Gid"), [nogroup.as_str(); 4].join(" "));
    assert_eq!(status_field(&child, "Groups"), "");
    finish(child);
    // Root staying root with another primary group: a change, so the
    // groups are root's list for that group (getgrouplist), not ours.
    let child = parked(Command::new("cat").user("root").primary_group(65534));
    assert_eq!(status_field(&child, "Gid"), "65534 65534 65534 65534");
    let groups = status_field(&child, "Groups");
    assert!(groups.split(' ').any(|g| g == "65534"), "{groups}");
    finish(child);
}

#[test]
fn a_uid_without_a_passwd_entry_needs_a_group() {
    let _g = Guard::new();
    let err = refused(|c| c.user(4_000_000));
    assert_eq!(
        (err.kind(), err.step()),
        (ErrorKind::InvalidInput, Step::User)
    );
    assert!(
        err.to_string().contains("uid 4000000 has no passwd entry"),
        "{err}"
    );
    if !is_root() {
        return;
    }
    let child = parked(Command::new("cat").user(4_000_000).primary_group(4_000_001));
    assert_eq!(
        status_field(&child, "Uid"),
        "4000000 4000000 4000000 4000000"
    );
    assert_eq!(
        status_field(&child, "Gid"),
        "4000001 4000001 4000001 4000001"
    );
    assert_eq!(status_field(&child, "Groups"), "4000001");
    finish(child);
}

#[test]
fn unknown_user_and_group_names_are_refused_before_anything_runs() {
    let _g = Guard::new();
    for err in [
        refused(|c| c.user("no-such-user-here")),
        refused(|c| c.primary_group("no-such-group-here")),
        refused(|c| c.supplementary_groups(["root", "no-such-group-here"])),
    ] {
        assert_eq!(
            (err.kind(), err.step()),
            (ErrorKind::InvalidInput, Step::User)
        );
        assert!(err.to_string().contains("no-such-"), "{err}");
        assert!(err.os_error().is_none());
    }
}

#[test]
fn the_working_directory_is_entered_as_the_new_user() {
    let _g = Guard::new();
    if !is_root() {
        return;
    }
    let dir = TempDir::new("private");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    // Root may enter; nobody may not, so the user changed first.
    assert!(
        Command::new("true")
            .current_dir(dir.path())
            .status()
            .unwrap()
            .success()
    );
    let err = refused(|c| c.user("nobody").current_dir(dir.path()));
    assert_eq!(
        (err.kind(), err.step()),
        (ErrorKind::PermissionDenied, Step::Chdir)
    );
}

#[test]
fn without_the_right_a_user_change_a_raised_hard_limit_and_a_negative_nice_fail_in_the_child() {
    let _g = Guard::new();
    if !is_root() {
        return;
    }
    // ptlib becomes nobody, then asks for each; `id -u` must never run.
    for (what, want) in [
        ("user-root", "error: User PermissionDenied EPERM\n"),
        ("raise-hard-limit", "error: Limit PermissionDenied EPERM\n"),
        ("negative-nice", "error: Nice PermissionDenied EACCES\n"),
        // Becoming oneself is no change and needs no right (an unprivileged
        // setgroups would fail even with the same groups).
        ("user-self", "ran: 65534\n"),
    ] {
        let out = std::process::Command::new(ptlib())
            .args(["as-nobody", what])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{what}");
    }
}

#[test]
fn nice_limits_umask_and_no_new_privs_are_visible_in_the_child() {
    let _g = Guard::new();
    let child = parked(
        Command::new("cat")
            .nice(10)
            .limit(Limit::OpenFiles, 100, 200)
            .limit(Limit::CoreSize, 0, Limit::UNLIMITED)
            .umask(0o027)
            .no_new_privs(true),
    );
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.pid())).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // Field 19 of stat is the nice value (the 17th after the name).
    assert_eq!(fields[16], "10");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.pid())).unwrap();
    let row = |name: &str| {
        let line = limits.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..]
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(row("Max open files"), "100 200");
    assert_eq!(row("Max core file size"), "0 unlimited");
    assert_eq!(status_field(&child, "Umask"), "0027");
    assert_eq!(status_field(&child, "NoNewPrivs"), "1");
    finish(child);
    // And none of it without the settings (the test's own values differ).
    let child = parked(&mut Command::new("cat"));
    assert_eq!(status_field(&child, "NoNewPrivs"), "0");
    finish(child);
}

#[test]
fn a_later_limit_for_the_same_resource_replaces_the_earlier() {
    let _g = Guard::new();
    let out = Command::shell("ulimit -Sn; ulimit -Hn")
        .limit(Limit::OpenFiles, 10, 20)
        .limit(Limit::OpenFiles, 30, 40)
        .run()
        .unwrap();
    assert_eq!(out.stdout, b"30\n40\n");
}

#[test]
fn bad_limits_nice_and_umask_are_refused_before_anything_runs() {
    let _g = Guard::new();
    let err = refused(|c| c.limit(Limit::OpenFiles, 200, 100));
    assert_eq!(
        (err.kind(), err.step()),
        (ErrorKind::InvalidInput, Step::Limit)
    );
    assert!(
        err.to_string()
            .contains("RLIMIT_NOFILE: the soft limit 200 is above the hard limit 100"),
        "{err}"
    );
    for n in [20, -21, i32::MIN] {
        let err = refused(|c| c.nice(n));
        assert_eq!(
            (err.kind(), err.step()),
            (ErrorKind::InvalidInput, Step::Nice),
            "{n}"
        );
    }
    // The largest umask is accepted; one bit more is not.
    let out = Command::shell("umask").umask(0o777).run().unwrap();
    assert_eq!(out.stdout, b"0777\n");
    let err = refused(|c| c.umask(0o1000));
    assert_eq!(
        (err.kind(), err.step()),
        (ErrorKind::InvalidInput, Step::Prepare)
    );
    // A limit the kernel refuses (a soft limit above fs.nr_open) fails in
    // the child, before the program.
    let err = refused(|c| c.limit(Limit::OpenFiles, 1 << 40, 1 << 40));
    assert_eq!(
        (err.step(), err.kind()),
        (Step::Limit, ErrorKind::PermissionDenied),
        "{err}"
    );
}

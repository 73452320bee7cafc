//! The catalogue of bad inputs (docs/BAD-INPUTS.md): one test per entry.
//!
//! Each test gives the library one bad input and asserts the exact error a
//! user gets: its kind, its step and its whole message (`to_string()`). The
//! rule for all of them: nothing panics, nothing hangs, nothing leaks. Every
//! test that can start a process holds the leak guard (no zombie, no stray
//! descendant, no descriptor left open), and a failing spawn pipes all three
//! streams so that a pipe end leaked on an error path would show.

mod support;
use support::*;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use procession::{
    Cgroup, Command, Error, ErrorKind, FrameError, Limit, PacketCodec, PacketSize, ProcessGroup,
    Pty, Signal, Stdio, Step, Supervisor, TerminalMode,
};

/// The error's kind, step and whole message, compared at once so that a
/// failure shows all three.
#[track_caller]
fn check(err: &Error, kind: ErrorKind, step: Step, message: &str) {
    assert_eq!(
        (err.kind(), err.step(), err.to_string().as_str()),
        (kind, step, message),
        "{err:?}"
    );
}

/// As [`check`], for a message whose end varies: its stable start.
#[track_caller]
fn check_prefix(err: &Error, kind: ErrorKind, step: Step, prefix: &str) {
    let message = err.to_string();
    assert_eq!((err.kind(), err.step()), (kind, step), "{err:?}");
    assert!(
        message.starts_with(prefix),
        "{message:?} does not start with {prefix:?}"
    );
}

fn pid_max() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------------------
// The command itself: refused before anything starts (step Prepare).
// ---------------------------------------------------------------------------

#[test]
fn nul_in_a_stdout_file_name() {
    let _g = Guard::new();
    let err = Command::new("echo")
        .stdout(Stdio::file("/tmp/out\0x"))
        .spawn()
        .unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        "`echo`: preparing the command failed: a file name contains a NUL byte",
    );
}

#[test]
fn input_and_stdin_both_set() {
    let _g = Guard::new();
    let err = Command::new("cat")
        .input(["x"])
        .stdin(Stdio::null())
        .output()
        .unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        "`cat`: preparing the command failed: `input` and `stdin` both set the child's stdin: \
         keep one (input_file(path) is stdin(Stdio::file(path)) with the input's error handling)",
    );
}

#[test]
fn a_one_shot_input_run_twice() {
    let _g = Guard::new();
    let mut cmd = Command::new("cat");
    cmd.input_reader(std::io::Cursor::new(b"once".to_vec()));
    assert_eq!(cmd.output().unwrap().stdout, b"once");
    let err = cmd.output().unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        "`cat`: preparing the command failed: the input (an iterator, reader or callback) was \
         used by an earlier run",
    );
}

#[test]
fn stop_group_with_the_callers_own_group() {
    let _g = Guard::new();
    let err = spawn_err(
        Command::new("true")
            .process_group(ProcessGroup::Inherit)
            .stop_group(true),
    );
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        "`true`: preparing the command failed: stop_group(true) and \
         process_group(ProcessGroup::Inherit) conflict: stopping the group would stop the \
         caller's own group",
    );
}

#[test]
fn stream_with_a_stdout_that_is_not_a_pipe() {
    let _g = Guard::new();
    let err = Command::new("echo")
        .arg("x")
        .stdout(Stdio::null())
        .stream()
        .expect_err("stream must fail");
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        "`echo x`: preparing the command failed: `stdout` is set to Null but stream() streams \
         stdout: remove the stdout setting, or use events()/output(), which honour it",
    );
}

#[test]
fn a_callback_stdout_without_a_supervisor() {
    let _g = Guard::new();
    let err = Command::new("echo")
        .stdout(Stdio::callback(|_| {}))
        .spawn()
        .unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        "`echo`: preparing the command failed: Stdio::callback and Stdio::channel are \
         delivered by a Supervisor: use Supervisor::spawn, or read the pipe (Stdio::piped)",
    );
}

#[test]
fn pty_in_the_callers_process_group() {
    let _g = Guard::new();
    let err = Command::new("true")
        .pty(Pty::new())
        .process_group(ProcessGroup::Inherit)
        .spawn()
        .unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        "`true`: preparing the command failed: a pty child leads a session of its own: \
         process_group(Inherit) and process_group(Join(..)) conflict with pty()",
    );
}

#[test]
fn pty_with_bad_terminal_modes() {
    let _g = Guard::new();
    let err = Command::new("true")
        .pty(
            Pty::new()
                .mode(TerminalMode::Vintr, 300)
                .mode(TerminalMode::Echo, 2)
                .mode(TerminalMode::Vstatus, 1)
                .mode(TerminalMode::TtyOpIspeed, 12345),
        )
        .spawn()
        .unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        "`true`: preparing the command failed: invalid terminal modes: vintr = 300 (a \
         character is 0 to 255), echo = 2 (a flag is 0 or 1), vstatus = 1 (not available on \
         Linux), tty_op_ispeed = 12345 (not a standard speed in bits per second)",
    );
}

#[test]
fn nice_above_19() {
    let _g = Guard::new();
    let err = spawn_err(Command::new("true").nice(20));
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Nice,
        "`true`: setting the nice value failed: nice 20 is outside -20..=19",
    );
}

#[test]
fn nice_below_minus_20() {
    let _g = Guard::new();
    let err = spawn_err(Command::new("true").nice(-21));
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Nice,
        "`true`: setting the nice value failed: nice -21 is outside -20..=19",
    );
}

#[test]
fn umask_above_0o777() {
    let _g = Guard::new();
    let err = spawn_err(Command::new("true").umask(0o1000));
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        "`true`: preparing the command failed: umask 0o1000 is above 0o777",
    );
}

#[test]
fn soft_limit_above_hard_limit() {
    let _g = Guard::new();
    let err = spawn_err(Command::new("true").limit(Limit::OpenFiles, 200, 100));
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Limit,
        "`true`: setting a resource limit failed: RLIMIT_NOFILE: the soft limit 200 is above \
         the hard limit 100",
    );
}

#[test]
fn unknown_user_name() {
    let _g = Guard::new();
    let err = spawn_err(Command::new("true").user("procession-no-such-user"));
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::User,
        "`true`: changing user failed: no user named \"procession-no-such-user\"",
    );
}

#[test]
fn unknown_group_name() {
    let _g = Guard::new();
    let err = spawn_err(Command::new("true").primary_group("procession-no-such-group"));
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::User,
        "`true`: changing user failed: no group named \"procession-no-such-group\"",
    );
}

#[test]
fn unknown_supplementary_group_name() {
    let _g = Guard::new();
    let err = spawn_err(Command::new("true").supplementary_groups(["root", "procession-nope"]));
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::User,
        "`true`: changing user failed: no group named \"procession-nope\"",
    );
}

#[test]
fn nul_in_a_user_name() {
    let _g = Guard::new();
    let err = spawn_err(Command::new("true").user("nob\0ody"));
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        "`true`: preparing the command failed: the name \"nob\\0ody\" contains a NUL byte",
    );
}

#[test]
fn uid_without_a_passwd_entry_and_no_group() {
    let _g = Guard::new();
    let err = spawn_err(Command::new("true").user(3_999_999_999));
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::User,
        "`true`: changing user failed: uid 3999999999 has no passwd entry: set primary_group too",
    );
}

#[test]
fn uid_minus_one() {
    let _g = Guard::new();
    // (uid_t)-1 means "leave unchanged" to setresuid: the child would keep
    // the caller's user.
    let err = spawn_err(Command::new("id").arg("-u").user(u32::MAX).primary_group(0));
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::User,
        "`id -u`: changing user failed: uid 4294967295 is not a user id (to the kernel, -1 \
         means \"unchanged\")",
    );
}

#[test]
fn gid_minus_one() {
    let _g = Guard::new();
    let err = spawn_err(Command::new("id").arg("-g").primary_group(u32::MAX));
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::User,
        "`id -g`: changing user failed: gid 4294967295 is not a group id (to the kernel, -1 \
         means \"unchanged\")",
    );
}

#[test]
fn parse_an_unterminated_quote() {
    let err = Command::parse("echo 'unterminated").unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        "echo 'unterminated: preparing the command failed: missing closing quote",
    );
}

#[test]
fn parse_an_empty_line() {
    let err = Command::parse("  # only a comment").unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        "  # only a comment: preparing the command failed: the command line is empty",
    );
}

// ---------------------------------------------------------------------------
// Finding and starting the program.
// ---------------------------------------------------------------------------

#[test]
fn program_missing_on_a_custom_path() {
    let _g = Guard::new();
    let tmp = TempDir::new("bad-path");
    // `true` is on the caller's PATH, not on the child's.
    let err = spawn_err(Command::new("true").env("PATH", tmp.path()));
    check(
        &err,
        ErrorKind::NotFound,
        Step::Resolve,
        "`true`: finding the program failed: not found in PATH: No such file or directory (os \
         error 2)",
    );
}

#[test]
fn which_a_program_that_is_not_on_path() {
    let err = procession::which("procession-no-such-program").unwrap_err();
    check(
        &err,
        ErrorKind::NotFound,
        Step::Resolve,
        "procession-no-such-program: finding the program failed: not found in PATH: No such \
         file or directory (os error 2)",
    );
}

#[test]
fn which_an_empty_name() {
    // Not the directories of PATH themselves.
    let err = procession::which("").unwrap_err();
    check(
        &err,
        ErrorKind::NotFound,
        Step::Resolve,
        ": finding the program failed: not found in PATH: No such file or directory (os error 2)",
    );
}

#[test]
fn empty_interpreter_line() {
    let _g = Guard::new();
    let tmp = TempDir::new("bad-shebang");
    let script = tmp.join("script");
    // `#!` followed by nothing: the kernel finds no interpreter to run.
    write_file(&script, b"#!\necho hi\n", 0o755);
    let err = spawn_err(&mut Command::new(&script));
    check(
        &err,
        ErrorKind::PermissionDenied,
        Step::Exec,
        &format!(
            "`{}`: executing the program failed: Exec format error (os error 8)",
            script.display()
        ),
    );
}

#[test]
fn empty_working_directory() {
    let _g = Guard::new();
    let err = spawn_err(Command::new("pwd").current_dir(""));
    check(
        &err,
        ErrorKind::NotFound,
        Step::Chdir,
        "`pwd`: changing directory failed: : No such file or directory (os error 2)",
    );
}

#[test]
fn missing_input_file() {
    let _g = Guard::new();
    let err = Command::new("cat")
        .input_file("/procession/no/such/input")
        .output()
        .unwrap_err();
    check(
        &err,
        ErrorKind::NotFound,
        Step::OpenStdin,
        "`cat`: opening stdin failed: /procession/no/such/input: No such file or directory (os \
         error 2)",
    );
}

#[test]
fn empty_stdout_file_name() {
    let _g = Guard::new();
    let err = Command::new("echo")
        .stdout(Stdio::file(""))
        .spawn()
        .unwrap_err();
    check(
        &err,
        ErrorKind::NotFound,
        Step::OpenStdout,
        "`echo`: opening stdout failed: : No such file or directory (os error 2)",
    );
}

#[test]
fn directory_as_stdout_file() {
    let _g = Guard::new();
    let err = Command::new("echo")
        .stdout(Stdio::file("/tmp"))
        .spawn()
        .unwrap_err();
    check(
        &err,
        ErrorKind::Os,
        Step::OpenStdout,
        "`echo`: opening stdout failed: /tmp: Is a directory (os error 21)",
    );
}

#[test]
fn files_and_directories_the_user_may_not_open() {
    let _g = Guard::new();
    // Modes do not stop root: ptlib becomes nobody and runs `true` with a
    // stdin, a stdout and a working directory inside a root-only directory.
    let tmp = TempDir::new("bad-private");
    let private = tmp.join("private");
    std::fs::create_dir(&private).unwrap();
    write_file(&private.join("in"), b"secret\n", 0o600);
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("note: skipped: needs root (ptlib becomes nobody)");
        return;
    }
    let out = std::process::Command::new(ptlib())
        .arg("bad-inputs-as-nobody")
        .arg(&private)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = private.display();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "PermissionDenied OpenStdin `true`: opening stdin failed: {p}/in: Permission denied \
             (os error 13)\n\
             PermissionDenied OpenStdout `true`: opening stdout failed: {p}/out: Permission \
             denied (os error 13)\n\
             PermissionDenied Chdir `true`: changing directory failed: {p}: Permission denied \
             (os error 13)\n\
             PermissionDenied User `true`: changing user failed: uid 0, gid 0, groups [0]: \
             changing user needs root (CAP_SETUID, CAP_SETGID): Operation not permitted (os \
             error 1)\n"
        )
    );
}

#[test]
fn hard_limit_above_the_kernels_ceiling() {
    let _g = Guard::new();
    // RLIMIT_NOFILE cannot go above fs.nr_open, even for root.
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let err = spawn_err(Command::new("true").limit(Limit::OpenFiles, 64, nr_open + 1));
    check(
        &err,
        ErrorKind::PermissionDenied,
        Step::Limit,
        "`true`: setting a resource limit failed: Operation not permitted (os error 1)",
    );
}

#[test]
fn cgroup_under_a_missing_directory() {
    let _g = Guard::new();
    let err = spawn_err(Command::new("true").cgroup(Cgroup::under("/procession/no/such/cgroup")));
    check(
        &err,
        ErrorKind::NotFound,
        Step::Cgroup,
        "`true`: setting up the child's cgroup failed: cgroup parent /procession/no/such/cgroup: \
         No such file or directory (os error 2)",
    );
}

#[test]
fn cgroup_under_a_directory_outside_cgroupfs() {
    let _g = Guard::new();
    let err = spawn_err(Command::new("true").cgroup(Cgroup::under("/tmp")));
    check(
        &err,
        ErrorKind::Unsupported,
        Step::Cgroup,
        "`true`: setting up the child's cgroup failed: /tmp is not in a cgroup v2 hierarchy",
    );
}

// ---------------------------------------------------------------------------
// Talking to a child the wrong way.
// ---------------------------------------------------------------------------

#[test]
fn signal_after_wait() {
    let _g = Guard::new();
    let mut child = Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    let err = child.signal(Signal::TERM).unwrap_err();
    check(
        &err,
        ErrorKind::AlreadyReaped,
        Step::Signal,
        "`true`: signalling the child failed: the child has already exited and its status was \
         collected",
    );
}

#[test]
fn kill_after_wait() {
    let _g = Guard::new();
    let mut child = Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    let err = child.kill().unwrap_err();
    check(
        &err,
        ErrorKind::AlreadyReaped,
        Step::Signal,
        "`true`: signalling the child failed: the child has already exited and its status was \
         collected",
    );
    // A second wait gives the same status again, not an error.
    assert!(child.wait().unwrap().success());
}

#[test]
fn signal_group_after_wait() {
    let _g = Guard::new();
    let mut child = Command::new("true")
        .process_group(ProcessGroup::New)
        .spawn()
        .unwrap();
    child.wait().unwrap();
    let err = child.signal_group(Signal::TERM).unwrap_err();
    check(
        &err,
        ErrorKind::AlreadyReaped,
        Step::Signal,
        "`true`: signalling the child failed: the child has already exited and its status was \
         collected",
    );
}

#[test]
fn signal_group_of_a_child_in_our_group() {
    let _g = Guard::new();
    let mut child = Command::new("sleep")
        .arg("10")
        .process_group(ProcessGroup::Inherit)
        .spawn()
        .unwrap();
    let err = child.signal_group(Signal::TERM).unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Signal,
        "`sleep 10`: signalling the child failed: the child is in our process group; \
         signalling it would hit us",
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn write_to_a_stdin_that_is_not_piped() {
    let _g = Guard::new();
    let mut child = Command::new("true").stdin(Stdio::null()).spawn().unwrap();
    let err = child.write_all(b"x").unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Write,
        "`true`: writing to the child failed: stdin is not piped (or was taken or closed)",
    );
    child.wait().unwrap();
}

#[test]
fn write_after_close_stdin() {
    let _g = Guard::new();
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.close_stdin();
    let err = child.write(b"x").unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Write,
        "`cat`: writing to the child failed: stdin is not piped (or was taken or closed)",
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn write_after_wait() {
    let _g = Guard::new();
    let mut child = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    // wait closes stdin first, as std's does.
    child.wait().unwrap();
    let err = child.write_all(b"x").unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Write,
        "`true`: writing to the child failed: stdin is not piped (or was taken or closed)",
    );
}

#[test]
fn write_to_a_child_that_has_exited() {
    let _g = Guard::new();
    let mut child = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    // Exited, not waited for: the pipe is still ours, its reader is gone.
    while !matches!(child.info().state, procession::ChildState::Exited(_)) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let err = child.write_all(b"x").unwrap_err();
    assert_eq!(raw_os(&err), Some(libc::EPIPE));
    check(
        &err,
        ErrorKind::Os,
        Step::Write,
        "`true`: writing to the child failed: Broken pipe (os error 32)",
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn read_a_stdout_that_is_not_piped() {
    let _g = Guard::new();
    let mut child = Command::new("true").stdout(Stdio::null()).spawn().unwrap();
    let err = child.read().unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Read,
        "`true`: reading from the child failed: stdout is not piped (or was taken or closed)",
    );
    let err = child.read_stderr().unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Read,
        "`true`: reading from the child failed: stderr is not piped (or was taken or closed)",
    );
    child.wait().unwrap();
}

#[test]
fn resize_a_child_without_a_pty() {
    let _g = Guard::new();
    let mut child = Command::new("true").spawn().unwrap();
    let err = child.resize(50, 132).unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Terminal,
        "`true`: setting up the child's terminal failed: the child has no pty (Command::pty)",
    );
    let err = child
        .set_terminal_modes([(TerminalMode::Echo, 1)])
        .unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Terminal,
        "`true`: setting up the child's terminal failed: the child has no pty (Command::pty)",
    );
    child.wait().unwrap();
}

#[test]
fn bad_terminal_modes_on_a_running_pty_child() {
    let _g = Guard::new();
    let mut child = Command::new("cat").pty(Pty::new()).spawn().unwrap();
    let err = child
        .set_terminal_modes([(TerminalMode::Isig, 7), (TerminalMode::Vdsusp, 1)])
        .unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Terminal,
        "`cat`: setting up the child's terminal failed: invalid terminal modes: isig = 7 (a \
         flag is 0 or 1), vdsusp = 1 (not available on Linux)",
    );
    child.hang_up();
    child.wait().unwrap();
}

#[test]
fn resize_a_pty_child_after_wait() {
    let _g = Guard::new();
    let mut child = Command::new("true").pty(Pty::new()).spawn().unwrap();
    child.wait().unwrap();
    let err = child.resize(10, 10).unwrap_err();
    check(
        &err,
        ErrorKind::AlreadyReaped,
        Step::Terminal,
        "`true`: setting up the child's terminal failed: its terminal is closed (the child was \
         reaped or hung up)",
    );
}

#[test]
fn max_output_of_0() {
    let _g = Guard::new();
    let err = Command::new("yes").max_output(0).output().unwrap_err();
    // The status that ends the message is whatever the stop did to `yes`
    // (SIGTERM, or its own exit on the broken pipe): checked apart.
    let prefix =
        "`yes`: reading from the child failed: stdout went over the max_output limit of 0 bytes: ";
    check_prefix(&err, ErrorKind::OutputLimit, Step::Read, prefix);
    let out = err.output().unwrap();
    assert!(out.stdout.is_empty());
    assert_eq!(out.status.ended(), procession::Ended::OutputLimit);
    assert_eq!(err.to_string(), format!("{prefix}{}", out.status));
}

#[test]
fn packet_header_of_3_bytes() {
    let err = PacketSize::try_from(3).unwrap_err();
    assert_eq!(err, FrameError::BadHeaderSize(3));
    assert_eq!(
        err.to_string(),
        "a packet header has 1, 2 or 4 bytes, not 3"
    );
}

#[test]
fn write_a_packet_longer_than_its_header_allows() {
    let _g = Guard::new();
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child
        .write_packet(&PacketCodec::new(PacketSize::One), &[0; 256])
        .unwrap_err();
    assert_eq!(
        err.frame_error(),
        Some(&FrameError::TooLong { len: 256, max: 255 })
    );
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Write,
        "`cat`: writing to the child failed: a packet of 256 bytes is longer than the maximum \
         of 255",
    );
    child.close_stdin();
    // Nothing was written: cat echoes nothing back.
    assert_eq!(child.read().unwrap(), None);
    child.wait().unwrap();
}

#[test]
fn write_a_packet_with_a_maximum_of_0() {
    let _g = Guard::new();
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let codec = PacketCodec::new(PacketSize::Four).max_len(0);
    // An empty packet fits; one byte does not.
    child.write_packet(&codec, b"").unwrap();
    let err = child.write_packet(&codec, b"x").unwrap_err();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Write,
        "`cat`: writing to the child failed: a packet of 1 bytes is longer than the maximum of 0",
    );
    child.close_stdin();
    child.wait().unwrap();
}

#[test]
fn read_a_packet_longer_than_the_maximum() {
    let _g = Guard::new();
    // A 2-byte header announcing 300 bytes, read with a maximum of 100.
    let err = Command::new("printf")
        .arg(r"\001\054")
        .stream()
        .unwrap()
        .packets(PacketCodec::new(PacketSize::Two).max_len(100))
        .collect::<Result<Vec<_>, _>>()
        .unwrap_err();
    check(
        &err,
        ErrorKind::InvalidData,
        Step::Read,
        "`printf '\\001\\054'`: reading from the child failed: a packet of 300 bytes is longer \
         than the maximum of 100",
    );
}

#[test]
fn read_a_packet_cut_short() {
    let _g = Guard::new();
    let err = Command::new("printf")
        .arg(r"\005ab")
        .stream()
        .unwrap()
        .packets(PacketCodec::new(PacketSize::One))
        .collect::<Result<Vec<_>, _>>()
        .unwrap_err();
    check(
        &err,
        ErrorKind::InvalidData,
        Step::Read,
        "`printf '\\005ab'`: reading from the child failed: the stream ended inside a packet: 3 \
         of 6 bytes arrived",
    );
}

// ---------------------------------------------------------------------------
// Signals and terminal modes by name or number.
// ---------------------------------------------------------------------------

#[test]
fn unknown_signal_name() {
    let err = "SIGFOO".parse::<Signal>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown signal \"SIGFOO\" (expected a name such as TERM or SIGKILL, or a number)"
    );
}

#[test]
fn signal_number_0() {
    assert_eq!(Signal::new(0), None);
    let err = "0".parse::<Signal>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown signal \"0\" (expected a name such as TERM or SIGKILL, or a number)"
    );
}

#[test]
fn signal_number_above_sigrtmax() {
    assert_eq!(Signal::new(65), None);
    assert_eq!(Signal::new(-9), None);
    let err = "65".parse::<Signal>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown signal \"65\" (expected a name such as TERM or SIGKILL, or a number)"
    );
}

#[test]
fn empty_signal_name() {
    for bad in ["", "SIG", " TERM"] {
        let err = bad.parse::<Signal>().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "unknown signal {bad:?} (expected a name such as TERM or SIGKILL, or a number)"
            )
        );
    }
}

#[test]
fn unknown_terminal_mode_name() {
    let err = "ECHOX".parse::<TerminalMode>().unwrap_err();
    assert_eq!(err.to_string(), "unknown terminal mode \"ECHOX\"");
}

// ---------------------------------------------------------------------------
// Supervisor.
// ---------------------------------------------------------------------------

#[test]
fn manage_pid_0() {
    let _g = Guard::new();
    let err = Supervisor::new().manage(0).err().unwrap();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        "`'pid 0'`: preparing the command failed: not a process id",
    );
}

#[test]
fn manage_pid_minus_1() {
    let _g = Guard::new();
    let err = Supervisor::new().manage(-1i32 as u32).err().unwrap();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        "`'pid 4294967295'`: preparing the command failed: not a process id",
    );
}

#[test]
fn manage_our_own_pid() {
    let _g = Guard::new();
    let pid = std::process::id();
    let err = Supervisor::new().manage(pid).err().unwrap();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        &format!("`'pid {pid}'`: preparing the command failed: a process cannot supervise itself"),
    );
}

#[test]
fn manage_a_pid_with_no_process() {
    let _g = Guard::new();
    let pid = pid_max() + 1;
    let err = Supervisor::new().manage(pid).err().unwrap();
    check(
        &err,
        ErrorKind::NotFound,
        Step::Prepare,
        &format!(
            "`'pid {pid}'`: preparing the command failed: no such process: No such process (os \
             error 3)"
        ),
    );
}

#[test]
fn manage_a_process_that_has_exited() {
    let _g = Guard::new();
    // A zombie: exited, not yet reaped by its parent (us, through std).
    let mut zombie = std::process::Command::new("true").spawn().unwrap();
    let pid = zombie.id();
    while !matches!(stat(pid as i32), Some(('Z', _, _))) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let err = Supervisor::new().manage(pid).err().unwrap();
    check(
        &err,
        ErrorKind::NotFound,
        Step::Prepare,
        &format!("`'pid {pid}'`: preparing the command failed: the process has already exited"),
    );
    zombie.wait().unwrap();
}

#[test]
fn manage_with_a_nul_in_the_stop_command() {
    let _g = Guard::new();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("10")
        .spawn()
        .unwrap();
    let pid = sleeper.id();
    let err = Supervisor::new()
        .manage_with(pid, Command::new("-").stop_command("kill\0"))
        .err()
        .unwrap();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        &format!(
            "`'pid {pid}'`: preparing the command failed: the stop command contains a NUL byte"
        ),
    );
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

#[test]
fn supervised_child_with_a_pipe() {
    let _g = Guard::new();
    let err = Supervisor::new()
        .spawn(Command::new("echo").stdout(Stdio::piped()))
        .err()
        .unwrap();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        "`echo`: preparing the command failed: a supervised child's pipes would have no \
         reader: give it a file, null or inherit",
    );
}

#[test]
fn supervised_child_with_an_input() {
    let _g = Guard::new();
    let err = Supervisor::new()
        .spawn(Command::new("cat").input(["x"]))
        .err()
        .unwrap();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        "`cat`: preparing the command failed: a supervised child has no writer for an input",
    );
}

#[test]
fn supervised_child_with_a_callback_stdin() {
    let _g = Guard::new();
    let err = Supervisor::new()
        .spawn(Command::new("cat").stdin(Stdio::callback(|_| {})))
        .err()
        .unwrap();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::Prepare,
        "`cat`: preparing the command failed: stdin cannot be a callback or a channel",
    );
}

#[test]
fn supervised_child_as_a_user_not_allowed() {
    let _g = Guard::new();
    let sup = Supervisor::with_allowed_users(["nobody"]).unwrap();
    let err = sup.spawn(Command::new("true").user("root")).err().unwrap();
    check(
        &err,
        ErrorKind::PermissionDenied,
        Step::User,
        "`true`: changing user failed: user \"root\" (uid 0) is not among the supervisor's \
         allowed users",
    );
}

#[test]
fn supervisor_allowing_an_unknown_user() {
    let err = Supervisor::with_allowed_users(["procession-no-such-user"])
        .err()
        .unwrap();
    check(
        &err,
        ErrorKind::InvalidInput,
        Step::User,
        "Supervisor: changing user failed: no user named \"procession-no-such-user\"",
    );
}

// ---------------------------------------------------------------------------
// The async API (feature `tokio`).
// ---------------------------------------------------------------------------

#[cfg(feature = "tokio")]
mod async_api {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// An async input: a stream of one chunk.
    fn async_input(cmd: &mut Command) -> &mut Command {
        cmd.input_stream(futures_util::stream::iter(["x"]))
    }

    #[test]
    fn spawn_async_outside_a_runtime() {
        let _g = Guard::new();
        let err = Command::new("true").spawn_async().err().unwrap();
        check(
            &err,
            ErrorKind::InvalidInput,
            Step::Spawn,
            "`true`: creating the process failed: the async API must be used inside a tokio \
             runtime",
        );
    }

    #[test]
    fn spawn_async_on_a_runtime_without_io() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _g = Guard::new();
        let err = rt.block_on(async { Command::new("true").spawn_async().err().unwrap() });
        check(
            &err,
            ErrorKind::InvalidInput,
            Step::Spawn,
            "`true`: creating the process failed: the tokio runtime has no I/O or time driver: \
             build it with enable_all() (or enable_io() and enable_time())",
        );
    }

    #[test]
    fn spawn_async_with_an_input() {
        let rt = runtime();
        let _g = Guard::new();
        let err = rt.block_on(async {
            Command::new("cat")
                .input(["x"])
                .spawn_async()
                .err()
                .unwrap()
        });
        check(
            &err,
            ErrorKind::InvalidInput,
            Step::Prepare,
            "`cat`: preparing the command failed: `input` is fed by \
             stream_async/events_async/output_async; with spawn_async, pipe stdin and write to \
             the child (AsyncChild::write_all)",
        );
    }

    #[test]
    fn stream_async_with_a_stdout_that_is_not_a_pipe() {
        let rt = runtime();
        let _g = Guard::new();
        let err = rt.block_on(async {
            Command::new("echo")
                .stdout(Stdio::null())
                .stream_async()
                .err()
                .unwrap()
        });
        check(
            &err,
            ErrorKind::InvalidInput,
            Step::Prepare,
            "`echo`: preparing the command failed: `stdout` is set to Null but stream_async() \
             streams stdout: remove the stdout setting, or use events()/output(), which honour it",
        );
    }

    #[test]
    fn async_input_to_the_blocking_spawn() {
        let rt = runtime();
        let _g = Guard::new();
        let mut cmd = Command::new("cat");
        async_input(&mut cmd).stdout(Stdio::null());
        let err = cmd.spawn().unwrap_err();
        check(
            &err,
            ErrorKind::InvalidInput,
            Step::Prepare,
            "`cat`: preparing the command failed: an async input (input_stream, \
             input_async_read, input_async_fn) needs the async API (stream_async, events_async, \
             output_async, run_async)",
        );
        // The refusal did not use the input up: the async API still runs it.
        let out = rt.block_on(async { cmd.stdout(Stdio::piped()).output_async().await });
        assert_eq!(out.unwrap().stdout, b"x");
    }

    #[test]
    fn async_input_to_a_blocking_stream() {
        let _g = Guard::new();
        let mut cmd = Command::new("cat");
        async_input(&mut cmd);
        let err = cmd.stream().err().unwrap();
        check(
            &err,
            ErrorKind::InvalidInput,
            Step::Prepare,
            "`cat`: preparing the command failed: an async input (input_stream, \
             input_async_read, input_async_fn) needs the async API (stream_async, events_async, \
             output_async, run_async)",
        );
        let err = cmd.output().unwrap_err();
        check(
            &err,
            ErrorKind::InvalidInput,
            Step::Prepare,
            "`cat`: preparing the command failed: an async input (input_stream, \
             input_async_read, input_async_fn) needs the async API (stream_async, events_async, \
             output_async, run_async)",
        );
    }
}

//! Spawn failures: each gives a structured error naming the program, the
//! step and the OS error, and leaves no zombie and no descriptor behind (the
//! Guard checks both; the failing commands pipe all three streams so that a
//! pipe end leaked on the error path would show).

mod support;
use support::*;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use procession::{Command, Error, ErrorKind, Stdio, Step};

/// An InvalidInput error found before anything is started, with its
/// whole message.
#[track_caller]
fn assert_invalid(err: &Error, program: &str, message: &str) {
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(err.step(), Step::Prepare, "{err}");
    assert_eq!(err.program(), program);
    assert!(err.os_error().is_none(), "{err:?}");
    assert_eq!(err.to_string(), message);
}

/// `pt` and its arguments as an error message shows the command.
fn pt_line(args: &str) -> String {
    format!("`{} {args}`", pt().display())
}

#[test]
fn program_not_found_in_path() {
    let _g = Guard::new();
    let err = spawn_err(&mut Command::new("procession-no-such-program"));
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.step(), Step::Resolve);
    assert_eq!(err.program(), "procession-no-such-program");
    assert_eq!(raw_os(&err), Some(libc::ENOENT));
    assert_eq!(
        err.to_string(),
        "`procession-no-such-program`: finding the program failed: not found in PATH: No such \
         file or directory (os error 2)"
    );
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn program_not_found_by_path_fails_at_exec() {
    let _g = Guard::new();
    let tmp = TempDir::new("notfound");
    let prog = tmp.join("missing");
    let err = spawn_err(&mut Command::new(&prog));
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.step(), Step::Exec);
    assert_eq!(err.program(), prog.as_os_str());
    assert_eq!(raw_os(&err), Some(libc::ENOENT));
    assert_eq!(
        err.to_string(),
        format!(
            "`{}`: executing the program failed: the program or its interpreter (#! line) or \
             dynamic loader does not exist: No such file or directory (os error 2)",
            prog.display()
        )
    );
}

#[test]
fn non_executable_file_by_path_fails_at_exec_with_eacces() {
    let _g = Guard::new();
    let tmp = TempDir::new("noexec");
    let prog = tmp.join("prog");
    write_file(&prog, b"#!/bin/sh\nexit 0\n", 0o644);
    let err = spawn_err(&mut Command::new(&prog));
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(err.step(), Step::Exec);
    assert_eq!(err.program(), prog.as_os_str());
    assert_eq!(raw_os(&err), Some(libc::EACCES));
    assert_eq!(
        err.to_string(),
        format!(
            "`{}`: executing the program failed: Permission denied (os error 13)",
            prog.display()
        )
    );
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
}

#[test]
fn directory_by_path_fails_at_exec_with_eacces() {
    let _g = Guard::new();
    let tmp = TempDir::new("direxec");
    let err = spawn_err(&mut Command::new(tmp.path()));
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(err.step(), Step::Exec);
    assert_eq!(err.program(), tmp.path().as_os_str());
    assert_eq!(raw_os(&err), Some(libc::EACCES));
    assert_eq!(
        err.to_string(),
        format!(
            "`{}`: executing the program failed: Permission denied (os error 13)",
            tmp.path().display()
        )
    );
}

#[test]
fn non_executable_file_in_path_fails_at_resolve_with_eacces() {
    let _g = Guard::new();
    let tmp = TempDir::new("noexec-path");
    write_file(&tmp.join("prog"), b"#!/bin/sh\nexit 0\n", 0o644);
    let err = spawn_err(Command::new("prog").env("PATH", tmp.path()));
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(err.step(), Step::Resolve);
    assert_eq!(err.program(), "prog");
    assert_eq!(raw_os(&err), Some(libc::EACCES));
    assert_eq!(
        err.to_string(),
        format!(
            "`prog`: finding the program failed: {}/prog is not executable: Permission denied \
             (os error 13)",
            tmp.path().display()
        )
    );
}

#[test]
fn directory_in_path_is_skipped_and_not_found() {
    let _g = Guard::new();
    let tmp = TempDir::new("dir-path");
    std::fs::create_dir(tmp.join("prog")).unwrap();
    let err = spawn_err(Command::new("prog").env("PATH", tmp.path()));
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.step(), Step::Resolve);
    assert_eq!(err.program(), "prog");
    assert_eq!(raw_os(&err), Some(libc::ENOENT));
    assert_eq!(
        err.to_string(),
        "`prog`: finding the program failed: not found in PATH: No such file or directory (os \
         error 2)"
    );
}

#[test]
fn path_search_skips_directories_and_non_executables() {
    let _g = Guard::new();
    let tmp = TempDir::new("path-order");
    for d in ["a", "b", "c", "d"] {
        std::fs::create_dir(tmp.join(d)).unwrap();
    }
    std::fs::create_dir(tmp.join("a/prog")).unwrap();
    write_file(&tmp.join("b/prog"), b"#!/bin/sh\necho b\n", 0o644);
    write_file(&tmp.join("c/prog"), b"#!/bin/sh\necho c\n", 0o755);
    write_file(&tmp.join("d/prog"), b"#!/bin/sh\necho d\n", 0o755);
    let path = ["a", "b", "c", "d"]
        .map(|d| tmp.join(d).into_os_string().into_string().unwrap())
        .join(":");
    let (out, status) = output(Command::new("prog").env("PATH", path));
    assert!(status.success());
    assert_eq!(out, b"c\n");
}

#[test]
fn bad_interpreter_fails_at_exec_with_enoent() {
    let _g = Guard::new();
    let tmp = TempDir::new("interp");
    let script = tmp.join("script");
    write_file(&script, b"#!/nonexistent/interp\necho hi\n", 0o755);
    let err = spawn_err(&mut Command::new(&script));
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.step(), Step::Exec);
    assert_eq!(err.program(), script.as_os_str());
    assert_eq!(raw_os(&err), Some(libc::ENOENT));
    // The message points at the interpreter, since the file itself exists.
    assert_eq!(
        err.to_string(),
        format!(
            "`{}`: executing the program failed: the program or its interpreter (#! line) or \
             dynamic loader does not exist: No such file or directory (os error 2)",
            script.display()
        )
    );
}

#[test]
fn script_without_shebang_fails_at_exec_with_enoexec() {
    let _g = Guard::new();
    let tmp = TempDir::new("noshebang");
    let script = tmp.join("script");
    write_file(&script, b"echo hi\n", 0o755);
    let err = spawn_err(&mut Command::new(&script));
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(err.step(), Step::Exec);
    assert_eq!(raw_os(&err), Some(libc::ENOEXEC));
    // Not a missing interpreter: the message must not say so.
    assert_eq!(
        err.to_string(),
        format!(
            "`{}`: executing the program failed: Exec format error (os error 8)",
            script.display()
        )
    );
}

#[test]
fn missing_working_directory_fails_at_chdir_with_enoent() {
    let _g = Guard::new();
    let tmp = TempDir::new("cwd");
    let missing = tmp.join("missing");
    let err = spawn_err(pt_cmd(["cwd"]).current_dir(&missing));
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.step(), Step::Chdir);
    assert_eq!(err.program(), pt().as_os_str());
    assert_eq!(raw_os(&err), Some(libc::ENOENT));
    // The message names the directory (the program exists).
    assert_eq!(
        err.to_string(),
        format!(
            "{}: changing directory failed: {}: No such file or directory (os error 2)",
            pt_line("cwd"),
            missing.display()
        )
    );
}

#[test]
fn file_as_working_directory_fails_at_chdir_with_enotdir() {
    let _g = Guard::new();
    let tmp = TempDir::new("cwdfile");
    let file = tmp.join("file");
    write_file(&file, b"", 0o644);
    let err = spawn_err(pt_cmd(["cwd"]).current_dir(&file));
    assert_eq!(err.kind(), ErrorKind::Os);
    assert_eq!(err.step(), Step::Chdir);
    assert_eq!(raw_os(&err), Some(libc::ENOTDIR));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: changing directory failed: {}: Not a directory (os error 20)",
            pt_line("cwd"),
            file.display()
        )
    );
}

#[test]
fn nul_byte_in_an_argument_is_invalid_input() {
    let _g = Guard::new();
    let err = spawn_err(&mut pt_cmd(["argv", "a\0b"]));
    assert_invalid(
        &err,
        pt().to_str().unwrap(),
        &format!(
            "{}: preparing the command failed: an argument contains a NUL byte",
            pt_line("argv a\0b")
        ),
    );
}

#[test]
fn nul_byte_in_the_stop_command_is_refused_at_spawn() {
    let _g = Guard::new();
    // Before: accepted, then silently replaced by SIGTERM at stop time.
    let err = spawn_err(pt_cmd(["sleep", "100"]).stop_command("kill -INT $CHILD_PID\0x"));
    assert_eq!(
        (err.kind(), err.step()),
        (ErrorKind::InvalidInput, Step::Prepare)
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: preparing the command failed: the stop command contains a NUL byte",
            pt_line("sleep 100")
        )
    );
}

#[test]
fn nul_byte_in_arg0_is_invalid_input() {
    let _g = Guard::new();
    let err = spawn_err(pt_cmd(["argv"]).arg0("x\0y"));
    assert_invalid(
        &err,
        pt().to_str().unwrap(),
        &format!(
            "{}: preparing the command failed: argument 0 contains a NUL byte",
            pt_line("argv")
        ),
    );
}

#[test]
fn nul_byte_in_the_program_name_is_invalid_input() {
    let _g = Guard::new();
    // Both with argv[0] defaulting to the name and with an explicit arg0, and
    // with and without a slash (a PATH search must not report "not found").
    for name in ["ab\0c", "/bin/ab\0c"] {
        let message =
            format!("`{name}`: preparing the command failed: the program name contains a NUL byte");
        let err = spawn_err(&mut Command::new(name));
        assert_invalid(&err, name, &message);
        let err = spawn_err(Command::new(name).arg0("x"));
        assert_invalid(&err, name, &message);
    }
}

#[test]
fn empty_program_name_is_invalid_input() {
    let _g = Guard::new();
    let err = spawn_err(&mut Command::new(""));
    assert_invalid(
        &err,
        "",
        "`''`: preparing the command failed: the program name is empty",
    );
}

#[test]
fn nul_byte_in_an_env_value_is_invalid_input() {
    let _g = Guard::new();
    let err = spawn_err(pt_cmd(["env"]).env("A", "1\0x"));
    assert_invalid(
        &err,
        pt().to_str().unwrap(),
        &format!(
            "{}: preparing the command failed: an environment variable contains a NUL byte",
            pt_line("env")
        ),
    );
}

#[test]
fn nul_byte_in_an_env_name_is_invalid_input() {
    let _g = Guard::new();
    let err = spawn_err(pt_cmd(["env"]).env("A\0B", "1"));
    assert_invalid(
        &err,
        pt().to_str().unwrap(),
        &format!(
            "{}: preparing the command failed: an environment variable contains a NUL byte",
            pt_line("env")
        ),
    );
}

#[test]
fn equals_sign_in_an_env_name_is_invalid_input() {
    let _g = Guard::new();
    let message = |name: &str| {
        format!(
            "{}: preparing the command failed: invalid environment variable name {name:?}",
            pt_line("env")
        )
    };
    let err = spawn_err(pt_cmd(["env"]).env("A=B", "1"));
    assert_invalid(&err, pt().to_str().unwrap(), &message("A=B"));
    // Also when the name is only removed, and after env_clear.
    let err = spawn_err(pt_cmd(["env"]).env_remove("A=B"));
    assert_invalid(&err, pt().to_str().unwrap(), &message("A=B"));
    let err = spawn_err(pt_cmd(["env"]).env_clear().env("=X", "1"));
    assert_invalid(&err, pt().to_str().unwrap(), &message("=X"));
}

#[test]
fn empty_env_name_is_invalid_input() {
    let _g = Guard::new();
    let err = spawn_err(pt_cmd(["env"]).env("", "1"));
    assert_invalid(
        &err,
        pt().to_str().unwrap(),
        &format!(
            "{}: preparing the command failed: invalid environment variable name \"\"",
            pt_line("env")
        ),
    );
}

#[test]
fn nul_byte_in_the_working_directory_is_invalid_input() {
    let _g = Guard::new();
    let err = spawn_err(pt_cmd(["cwd"]).current_dir(OsStr::from_bytes(b"/tmp\0x")));
    assert_invalid(
        &err,
        pt().to_str().unwrap(),
        &format!(
            "{}: preparing the command failed: the working directory contains a NUL byte",
            pt_line("cwd")
        ),
    );
}

#[test]
fn missing_stdin_file_fails_at_open_stdin() {
    let _g = Guard::new();
    let tmp = TempDir::new("stdin");
    let missing = tmp.join("missing");
    let err = pt_cmd(["stdin-state"])
        .stdin(Stdio::file(&missing))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.step(), Step::OpenStdin);
    assert_eq!(raw_os(&err), Some(libc::ENOENT));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: opening stdin failed: {}: No such file or directory (os error 2)",
            pt_line("stdin-state"),
            missing.display()
        )
    );
}

#[test]
fn stdout_and_stderr_files_in_a_missing_directory_fail_at_open() {
    let _g = Guard::new();
    let tmp = TempDir::new("stdout");
    let target = tmp.join("missing/out");
    let err = pt_cmd(["print", "x"])
        .stdin(Stdio::piped())
        .stdout(Stdio::file(&target))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.step(), Step::OpenStdout);
    assert_eq!(raw_os(&err), Some(libc::ENOENT));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: opening stdout failed: {}: No such file or directory (os error 2)",
            pt_line("print x"),
            target.display()
        )
    );
    let err = pt_cmd(["print", "x"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::append(&target))
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.step(), Step::OpenStderr);
    assert_eq!(
        err.to_string(),
        format!(
            "{}: opening stderr failed: {}: No such file or directory (os error 2)",
            pt_line("print x"),
            target.display()
        )
    );
}

#[test]
fn stdout_and_stderr_redirected_into_each_other_is_invalid_input() {
    let _g = Guard::new();
    let err = pt_cmd(["print", "x"])
        .stdout(Stdio::to_stderr())
        .stderr(Stdio::to_stdout())
        .spawn()
        .unwrap_err();
    assert_invalid(
        &err,
        pt().to_str().unwrap(),
        &format!(
            "{}: preparing the command failed: stdout and stderr each point at the other",
            pt_line("print x")
        ),
    );
}

#[test]
fn a_stream_redirected_into_itself_is_invalid_input() {
    let _g = Guard::new();
    let message = format!(
        "{}: preparing the command failed: a stream cannot be redirected into itself",
        pt_line("print x")
    );
    let err = pt_cmd(["print", "x"])
        .stdout(Stdio::to_stdout())
        .spawn()
        .unwrap_err();
    assert_invalid(&err, pt().to_str().unwrap(), &message);
    let err = pt_cmd(["print", "x"])
        .stderr(Stdio::to_stderr())
        .spawn()
        .unwrap_err();
    assert_invalid(&err, pt().to_str().unwrap(), &message);
}

#[test]
fn failures_in_the_child_reap_it_before_returning() {
    let _g = Guard::new();
    let before = procession::__test_support::unreaped_children();
    for _ in 0..20 {
        let err = spawn_err(pt_cmd(["cwd"]).current_dir("/procession/no/such/dir"));
        assert_eq!(err.step(), Step::Chdir);
        // Reaped by spawn itself, not later by a background thread.
        assert_eq!(procession::__test_support::unreaped_children(), before);
        assert!(
            children().is_empty(),
            "a failed child is left: {:?}",
            children()
        );
    }
}

#[test]
fn joining_a_missing_process_group_fails_at_process_group_with_eperm() {
    let _g = Guard::new();
    // No process group has an id above pid_max.
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let err =
        spawn_err(pt_cmd(["pgid"]).process_group(procession::ProcessGroup::Join(pid_max + 1)));
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(err.step(), Step::ProcessGroup);
    assert_eq!(raw_os(&err), Some(libc::EPERM));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: setting the process group failed: Operation not permitted (os error 1)",
            pt_line("pgid")
        )
    );
}

#[test]
fn redirecting_stderr_into_a_closed_stdout_fails_at_stdio_with_ebadf() {
    let _g = Guard::new();
    let err = pt_cmd(["print", "x"])
        .stdin(Stdio::piped())
        .stdout(Stdio::closed())
        .stderr(Stdio::to_stdout())
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Os);
    assert_eq!(err.step(), Step::Stdio);
    assert_eq!(raw_os(&err), Some(libc::EBADF));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: setting up stdio in the child failed: Bad file descriptor (os error 9)",
            pt_line("print x")
        )
    );
}

#[test]
fn clone_refused_at_the_process_limit_is_a_spawn_error() {
    let _g = Guard::new();
    // A process at its user's process limit (a fork bomb's victim, a
    // container's pids limit): clone fails with EAGAIN, and spawn must say
    // so, not take -1 for a pid.
    if let Some(out) = ptlib_as_nobody("spawn-at-nproc-limit") {
        assert_eq!(out, "error: Spawn EAGAIN\n");
    }
}

#[test]
fn without_a_reaper_thread_a_dropped_child_is_killed_and_reaped_at_once() {
    let _g = Guard::new();
    // The system refuses the reaper thread (no process left under the
    // limit): a dropped child cannot be left unwatched, so the drop kills
    // and reaps it itself.
    if let Some(out) = ptlib_as_nobody("drop-without-reaper") {
        assert_eq!(out, "gone\n");
    }
}

#[test]
fn a_reaper_that_could_not_start_is_tried_again_and_never_kills_silently() {
    let _g = Guard::new();
    // In a process of its own (its descriptor table is filled on purpose):
    // a detached child is not killed for want of a reaper, a spawn whose
    // timeout cannot be enforced fails with an error naming the reaper, and
    // once descriptors are free again the reaper starts, enforces the next
    // timeout and reaps the detached child.
    let out = Command::new(ptlib())
        .arg("reaper-after-emfile")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "detach: alive first: error reaper second: ok detached: reaped\n"
    );
}

#[test]
fn a_host_with_sigpipe_at_its_default_lives_through_writing_to_an_exited_child() {
    let _g = Guard::new();
    // C and Python hosts may keep SIGPIPE's default action (Rust programs
    // ignore it): a write to a child that exited must be an EPIPE error,
    // not a SIGPIPE that kills the host (the old behaviour: ptlib died of
    // signal 13).
    let out = Command::new(ptlib())
        .arg("write-after-exit")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "handle: BrokenPipe output: ok\n"
    );
}

#[test]
fn an_empty_success_code_list_is_refused_not_a_failing_true() {
    let _g = Guard::new();
    // Before: `true` ran and "did not succeed: exit code 0".
    let err = spawn_err(pt_cmd(["exit", "0"]).success_exit_codes([]));
    assert_eq!(
        (err.kind(), err.step()),
        (ErrorKind::InvalidInput, Step::Prepare)
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: preparing the command failed: success_exit_codes is empty: no exit could \
             succeed (give at least one code)",
            pt_line("exit 0")
        )
    );
}

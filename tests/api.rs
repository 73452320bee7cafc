//! The public API's defaults and promises, one regression test per defect a
//! new user ran into (issue "The API a Rust user expects"). Each test names
//! the trap it pins.

mod support;
use support::*;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

use bytes::Bytes;
use procession::{Command, Ended, ErrorKind, Event, ProcessGroup, Signal, Stdio, Step};

/// The state letter of `/proc/<pid>/stat` (`T` when stopped), if alive.
fn state(pid: i32) -> Option<char> {
    stat(pid).map(|s| s.0)
}

/// Waits until `pid` is in the stopped state `T`.
fn wait_stopped(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while state(pid) != Some('T') {
        assert!(Instant::now() < deadline, "{pid} never stopped");
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ---- 2. Bugs ----

#[test]
fn stop_continues_a_suspended_child_instead_of_waiting_for_sigkill() {
    let _g = Guard::new();
    for group in [false, true] {
        let mut child = pt_cmd(["sleep", "100"])
            .stop_group(group)
            .stop_timeout(Duration::from_secs(30))
            .spawn()
            .unwrap();
        child.signal(Signal::STOP).unwrap();
        wait_stopped(child.pid() as i32);
        let start = Instant::now();
        let status = child.stop().unwrap();
        // Without SIGCONT the TERM stays pending until SIGKILL, 30 s later.
        assert!(start.elapsed() < Duration::from_secs(5), "group {group}");
        assert_eq!(status.signal(), Some(Signal::TERM), "group {group}");
        assert_eq!(status.ended(), Ended::Requested);
    }
}

#[test]
fn events_never_lose_the_exit_status_on_a_broken_input_pipe() {
    let _g = Guard::new();
    // Reported (ignore_epipe(false)): the error carries the status, and
    // Exit still comes last.
    let items: Vec<_> = Command::new("head")
        .args(["-c", "5"])
        .input(std::iter::repeat("data\n"))
        .ignore_epipe(false)
        .events()
        .unwrap()
        .collect();
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(
        items[0].as_ref().unwrap(),
        &Event::Stdout(Bytes::from("data\n"))
    );
    let err = items[1].as_ref().unwrap_err();
    assert_eq!(err.step(), Step::Write);
    assert_eq!(
        err.os_error().unwrap().kind(),
        std::io::ErrorKind::BrokenPipe
    );
    assert_eq!(err.exit_status().unwrap().code(), Some(0));
    assert!(matches!(items[2], Ok(Event::Exit(s)) if s.code() == Some(0)));

    // By default a child that stops reading is not an error.
    let mut events = Command::new("head")
        .args(["-c", "5"])
        .input(std::iter::repeat("data\n"))
        .events()
        .unwrap();
    let items: Vec<Event> = events.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(items[0], Event::Stdout(Bytes::from("data\n")));
    assert!(matches!(items[1], Event::Exit(s) if s.success()));
    assert_eq!(events.status().unwrap().code(), Some(0));
}

// ---- 3. Defaults: terminal and server ----

/// Runs `pt pty [opts] -- ptlib ARGS` and returns (exit code, output).
fn on_a_terminal(opts: &[&str], ptlib_args: &[&str]) -> (i32, String) {
    let out = StdCommand::new(pt())
        .arg("pty")
        .args(opts)
        .arg("--")
        .arg(ptlib())
        .args(ptlib_args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn in_a_terminal_a_child_that_reads_the_terminal_works() {
    let _g = Guard::new();
    // Before: the child led a background group and SIGTTIN stopped it
    // forever (pt gives up after its timeout with 124).
    let (code, out) = on_a_terminal(
        &["--timeout", "10", "--send", "hello\\n"],
        &["status", "read x; echo got:$x"],
    );
    assert!(out.contains("got:hello"), "{out:?}");
    assert!(out.contains("status: 0"), "{out:?}");
    assert_eq!(code, 0, "{out:?}");
}

#[test]
fn a_passing_failure_to_open_the_terminal_is_not_remembered_as_no_terminal() {
    let _g = Guard::new();
    // On a terminal, in its foreground: while no descriptor is free the
    // check cannot tell (false), but once one is, it must look again.
    let (code, out) = on_a_terminal(&["--timeout", "10"], &["foreground-after-emfile"]);
    assert!(out.contains("emfile: false after: true"), "{out:?}");
    assert_eq!(code, 0, "{out:?}");
}

#[test]
fn in_a_terminal_ctrl_c_reaches_the_child() {
    let _g = Guard::new();
    // Ctrl-C goes to the terminal's foreground group: the application
    // (ptlib) and, as with std, its child. Before: the child had its own
    // group and `sleep` ran on; the guard then finds it alive.
    let (code, out) = on_a_terminal(
        &["--timeout", "10", "--send-after-line", "ready", "\\x03"],
        &["status", "echo pid:$$ ready; exec sleep 300 2>/dev/null"],
    );
    let pid: i32 = out
        .split("pid:")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {out:?}"));
    assert_eq!(code, 128 + libc::SIGINT, "{out:?}");
    assert!(
        wait_dead(pid, Duration::from_secs(5)),
        "sleep {pid} survived Ctrl-C"
    );
}

/// Runs `ptlib ARGS` in a session of its own, without a controlling
/// terminal (a service, a CI job), and returns the grandchild's pid (its
/// first line) and everything it printed.
fn on_a_server(args: &[&str]) -> (i32, String) {
    let mut app = StdCommand::new(ptlib());
    app.args(args);
    // SAFETY: setsid is async-signal-safe; it detaches ptlib from any
    // controlling terminal the test runner may have.
    unsafe {
        app.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let out = app.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let grandchild = text.lines().next().unwrap().trim().parse().unwrap();
    (grandchild, text)
}

/// The line every server test runs: a grandchild in the background (its
/// pid on the first line), then the shell waits.
const WITH_GRANDCHILD: &str = "sleep 300 >/dev/null 2>&1 & echo $!; wait";

#[test]
fn on_a_server_stop_reaches_everything_the_child_started() {
    let _g = Guard::new();
    // No option needed for stop() to reach the grandchild.
    let (grandchild, text) = on_a_server(&["stop", WITH_GRANDCHILD]);
    assert!(text.contains("status: 143 ended: Requested"), "{text:?}");
    assert!(
        wait_dead(grandchild, Duration::from_secs(5)),
        "the grandchild {grandchild} survived stop()"
    );
}

#[test]
fn on_a_server_a_timeout_reaches_everything_the_child_started() {
    let _g = Guard::new();
    let (grandchild, text) = on_a_server(&["timeout", "200", WITH_GRANDCHILD]);
    assert!(text.contains("status: 143 ended: TimedOut"), "{text:?}");
    assert!(
        wait_dead(grandchild, Duration::from_secs(5)),
        "the grandchild {grandchild} survived the timeout"
    );
}

#[test]
fn on_a_server_dropping_the_handle_reaches_everything_the_child_started() {
    let _g = Guard::new();
    let (grandchild, text) = on_a_server(&["drop", WITH_GRANDCHILD]);
    assert!(text.ends_with("dropped\n"), "{text:?}");
    assert!(
        wait_dead(grandchild, Duration::from_secs(5)),
        "the grandchild {grandchild} survived the drop"
    );
}

#[test]
fn auto_group_is_new_without_a_terminal_and_stop_group_true_forces_a_new_group() {
    let _g = Guard::new();
    // The test runner may or may not give us a terminal; an explicit
    // stop_group(true) always means a group of the child's own.
    let mut child = pt_cmd(["pgid"])
        .stop_group(true)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.pid() as i32;
    let line = read_line(child.stdout.as_mut().unwrap());
    child.wait().unwrap();
    let pgid: i32 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(pgid, pid, "{line:?}");
    // Inherit + stop_group(true) is a conflict, named.
    let err = Command::new("true")
        .process_group(ProcessGroup::Inherit)
        .stop_group(true)
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("stop_group(true)"), "{err}");
    assert!(err.to_string().contains("Inherit"), "{err}");
}

// ---- 4. No silently ignored setting ----

#[test]
fn spawn_and_status_feed_the_input() {
    let _g = Guard::new();
    // Before: the input was ignored and the child read our stdin.
    let mut child = Command::new("cat")
        .input(["hello ", "world"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(child.stdin.is_none(), "the input thread owns stdin");
    let out = read_to_end_string(child.stdout.as_mut().unwrap());
    assert_eq!(out, "hello world");
    assert!(child.wait().unwrap().success());

    let status = Command::shell("read a; read b; test \"$a$b\" = onetwo")
        .input_bytes("one\ntwo\n")
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn input_and_stdin_together_are_refused() {
    let _g = Guard::new();
    let err = Command::new("cat")
        .input(["x"])
        .stdin(Stdio::null())
        .status()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let msg = err.to_string();
    assert!(msg.contains("`input`") && msg.contains("`stdin`"), "{msg}");
}

#[test]
fn stdout_file_is_honoured_by_output_and_events_and_refused_by_stream() {
    let _g = Guard::new();
    let dir = tempdir();
    let path = dir.join("out.txt");
    // output(): the file gets stdout; output.stdout is empty (as std).
    let out = Command::shell("echo to-file; echo to-err >&2")
        .stdout(Stdio::file(&path))
        .output()
        .unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "to-file\n");
    assert!(out.stdout.is_empty());
    assert_eq!(out.stderr, b"to-err\n");
    // events(): the same, and the exit still comes.
    let events: Vec<Event> = Command::shell("echo again")
        .stdout(Stdio::append(&path))
        .events()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        matches!(events[..], [Event::Exit(s)] if s.success()),
        "{events:?}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "to-file\nagain\n");
    // stream() reads stdout: another destination is a conflict, named.
    let err = Command::new("echo")
        .stdout(Stdio::file(&path))
        .stream()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("`stdout`"), "{err}");
    assert!(err.to_string().contains("stream()"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- 5. Surprises against std and peers ----

#[test]
fn output_keeps_what_was_collected_when_the_input_is_not_read() {
    let _g = Guard::new();
    // Default: like Python's communicate(), EPIPE on the input is not an error.
    let out = Command::new("head")
        .args(["-c", "5"])
        .input(std::iter::repeat("data\n"))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"data\n");
    assert!(out.status.success());
    // Asked to report it: the error carries everything collected.
    let err = Command::new("head")
        .args(["-c", "5"])
        .input(std::iter::repeat("data\n"))
        .ignore_epipe(false)
        .output()
        .unwrap_err();
    assert_eq!(err.step(), Step::Write);
    let collected = err.output().expect("collected output");
    assert_eq!(collected.stdout, b"data\n");
    assert!(collected.status.success());
}

#[test]
fn std_idioms_work_take_stdin_and_wait_with_output() {
    let _g = Guard::new();
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // std's `child.stdin.take()`: taking and dropping it closes stdin.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"piped through").unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.stdout, b"piped through");
    assert!(output.stderr.is_empty());
    assert!(output.status.success());
}

#[test]
fn run_is_checked_and_keeps_the_output() {
    let _g = Guard::new();
    let out = Command::new("echo").arg("fine").run().unwrap();
    assert_eq!(out.stdout, b"fine\n");
    let err = Command::shell("echo partial; echo why >&2; exit 3")
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exit);
    assert_eq!(err.exit_status().unwrap().code(), Some(3));
    assert_eq!(err.stderr_tail(), Some(&b"why\n"[..]));
    let output = err.into_output().unwrap();
    assert_eq!(output.stdout, b"partial\n");
    assert_eq!(output.stderr, b"why\n");
}

#[test]
fn which_finds_programs_like_spawn_does() {
    let _g = Guard::new();
    let sh = procession::which("sh").unwrap();
    assert!(sh.is_absolute(), "{sh:?}");
    let out = Command::new(&sh).args(["-c", "echo ok"]).run().unwrap();
    assert_eq!(out.stdout, b"ok\n");
    let err = procession::which("no-such-program-here").unwrap_err();
    assert_eq!(
        (err.kind(), err.step()),
        (ErrorKind::NotFound, Step::Resolve)
    );
    assert_eq!(
        procession::which("./x").unwrap(),
        std::path::Path::new("./x")
    );
}

#[test]
fn errors_name_the_command_so_shell_jobs_can_be_told_apart() {
    let _g = Guard::new();
    let a = Command::shell("exit 3").run().unwrap_err();
    let b = Command::shell("exit 4").run().unwrap_err();
    assert_eq!(a.command(), Some("/bin/sh -c 'exit 3'"));
    assert_eq!(
        a.to_string(),
        "`/bin/sh -c 'exit 3'`: did not succeed: exit code 3"
    );
    assert_ne!(a.to_string(), b.to_string());
    // Errors before the start name it too, and long lines are shortened.
    let long = "x".repeat(200);
    let err = Command::new("no-such-program-here")
        .arg(&long)
        .spawn()
        .unwrap_err();
    let shown = err.command().unwrap();
    assert!(shown.starts_with("no-such-program-here xxx"), "{shown}");
    assert_eq!(shown.chars().count(), 80);
    assert!(shown.ends_with('…'));
    // Errors from a running child's handle too.
    let child = Command::new("true").arg("--flag").spawn().unwrap();
    let mut child = child;
    child.wait().unwrap();
    let err = child.signal(Signal::TERM).unwrap_err();
    assert_eq!(err.command(), Some("true --flag"));
}

#[test]
fn debug_of_a_command_reads_like_std() {
    let mut cmd = Command::new("sort");
    cmd.arg("-u").current_dir("/tmp").env("LC_ALL", "C");
    assert_eq!(format!("{cmd:?}"), r#"cd "/tmp" && LC_ALL="C" "sort" "-u""#);
    let mut std_cmd = StdCommand::new("sort");
    std_cmd.arg("-u").current_dir("/tmp").env("LC_ALL", "C");
    assert_eq!(format!("{cmd:?}"), format!("{std_cmd:?}"));
    cmd.env_clear().env_remove("X");
    assert!(format!("{cmd:?}").contains("env -i -u \"X\""), "{cmd:?}");
    assert!(format!("{cmd:#?}").contains("stop_timeout"));
}

#[test]
fn shell_with_chooses_another_shell() {
    let _g = Guard::new();
    let cmd = Command::shell_with("bash", "echo $0");
    assert_eq!(cmd.get_program(), "bash");
    assert_eq!(cmd.run().unwrap().stdout, b"bash\n");
}

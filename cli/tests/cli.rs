//! The `procession` command-line tool, run as a real process.
//!
//! Each test drives the built binary with `std::process::Command` (the CLI
//! is the program under test, so it is not spawned through the library) and
//! checks exact bytes and exit codes. The CLI is always waited for, and the
//! Guard then checks that nothing it started is left behind: the test
//! process is a child subreaper, so anything the CLI orphaned would be
//! re-parented to it.
//!
//! The tests under `pt pty` run procession on a real pseudo-terminal, as the
//! foreground job of an emulated interactive shell, to check what a user at
//! a terminal sees (reading the terminal, Ctrl-C, Ctrl-\, and with `--pty`
//! raw mode, typing, window size changes and the settings restored).

#[path = "../../tests/support/mod.rs"]
mod support;
use support::*;

mod common;
use common::{Out, own_exit_code, procession, read_all, read_in_background, run_piped, wait_for};

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio as StdStdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// `pt`'s path as a string, to put in argument lists.
fn pt_path() -> String {
    pt().to_str().expect("UTF-8 path to pt").to_owned()
}

/// Runs the CLI with `args` and collects everything.
fn run(args: &[&str]) -> Out {
    run_cmd(procession().args(args))
}

/// Runs a prepared CLI command (stdout and stderr are captured). Unlike
/// `common::run_cmd`, procession killed by a signal fails the test rather
/// than showing as 128+N (see [`own_exit_code`]).
fn run_cmd(cmd: &mut StdCommand) -> Out {
    run_piped(cmd, None, own_exit_code)
}

/// Runs the CLI with `--timeout T` put in front of `args`, for a program
/// that prints `ready` once it has set itself up (installed a signal trap,
/// say) and only then may meet the timeout.
///
/// A timeout can fire before a slow machine has even started the shell, so
/// a fixed timeout would race the program's start-up. Instead the first
/// try uses a short timeout (quick on a normal machine), and a run whose
/// program never printed `ready` proves nothing either way: it is run again
/// with a longer one. The run returned is one where `ready` came first,
/// with the timeout it had.
fn run_timed_after_ready(args: &[&str]) -> (Out, Duration) {
    run_cmd_timed_after_ready(|timeout| {
        let mut cmd = procession();
        cmd.args(["run", "--timeout", timeout]).args(args);
        cmd
    })
}

/// [`run_timed_after_ready`] for a prepared command; `make` puts the given
/// timeout in the command line.
fn run_cmd_timed_after_ready(make: impl FnMut(&str) -> StdCommand) -> (Out, Duration) {
    // `ready\r\n` on a terminal (--pty).
    run_cmd_timed_after(make, "`ready`", |stdout| {
        stdout.starts_with(b"ready\n") || stdout.starts_with(b"ready\r\n")
    })
}

/// [`run_cmd_timed_after_ready`] for a program whose output shows it set
/// itself up in another way: `ready` says whether a run's stdout shows it
/// (`what` names it in messages).
fn run_cmd_timed_after(
    mut make: impl FnMut(&str) -> StdCommand,
    what: &str,
    ready: impl Fn(&[u8]) -> bool,
) -> (Out, Duration) {
    for (timeout, ms) in [("300ms", 300), ("1s", 1000), ("3s", 3000), ("10s", 10_000)] {
        let out = run_cmd(&mut make(timeout));
        if ready(&out.stdout) {
            return (out, Duration::from_millis(ms));
        }
        eprintln!("the program had not printed {what} within {timeout}; trying a longer timeout");
    }
    panic!("the program never printed {what} before the timeout fired, even with 10 s");
}

/// Reads one line and parses it as a pid.
fn read_pid(r: &mut impl BufRead) -> i32 {
    let mut line = String::new();
    r.read_line(&mut line).expect("read pid line");
    line.trim()
        .parse()
        .unwrap_or_else(|_| panic!("expected a pid line, got {line:?}"))
}

/// Sends `sig` to `pid`.
fn send(pid: u32, sig: i32) {
    let pid = i32::try_from(pid).expect("pid fits in pid_t");
    // SAFETY: kill(2) takes plain integers. `pid` is a process we started and
    // have not reaped yet, so the number cannot have been reused.
    let r = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        r,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

/// A fresh directory under the system temp dir, removed on drop. Its path is
/// canonical (the temp dir may be a symlink).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("procession-cli-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path.canonicalize().expect("canonicalize temp dir"))
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The path of `name` inside, as a string.
    fn file(&self, name: &str) -> String {
        self.join(name)
            .to_str()
            .expect("UTF-8 temp path")
            .to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// This process's umask, from /proc/self/status.
fn umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .expect("Umask line");
    u32::from_str_radix(line.trim(), 8).expect("octal umask")
}

fn mode_of(path: impl AsRef<Path>) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

// ---------------------------------------------------------------- exit codes

#[test]
fn exit_code_is_the_programs() {
    let _g = Guard::new();
    let pt = pt_path();
    run(&["run", "--", &pt, "exit", "0"]).expect_clean();
    let out = run(&["run", "--", &pt, "exit", "3"]);
    out.expect_code(3);
    assert_eq!(out.stderr, b"");
    run(&["run", "--", &pt, "exit", "255"]).expect_code(255);
}

#[test]
fn options_after_program_belong_to_the_program() {
    let _g = Guard::new();
    let pt = pt_path();
    // Without `--` too: everything from PROGRAM on is passed as it is.
    let out = run(&["run", &pt, "argv", "--timeout", "1s", "--", "-x"]);
    out.expect_clean();
    assert_eq!(
        out.stdout,
        format!("{pt}\0argv\0--timeout\01s\0--\0-x\0").as_bytes()
    );
}

#[test]
fn timeout_exits_124() {
    let _g = Guard::new();
    let out = run(&[
        "run",
        "--timeout",
        "200ms",
        "--",
        &pt_path(),
        "sleep",
        "100",
    ]);
    out.expect_code(124);
    assert_eq!(out.stderr, b"");
    assert!(
        out.elapsed >= Duration::from_millis(200),
        "{:?}",
        out.elapsed
    );
    assert!(out.elapsed < Duration::from_secs(4), "{:?}", out.elapsed);
}

#[test]
fn timeout_formats() {
    let _g = Guard::new();
    let pt = pt_path();
    for t in ["0.2", "0.2s", ".2s", "200ms"] {
        let out = run(&["run", "--timeout", t, "--", &pt, "sleep", "100"]);
        out.expect_code(124);
        assert!(
            out.elapsed < Duration::from_secs(4),
            "{t}: {:?}",
            out.elapsed
        );
    }
    // Long timeouts do not fire for a quick program; 0 means none.
    for t in ["1m", "1h", "1d", "30", "0"] {
        run(&["run", "--timeout", t, "--", &pt, "sleep", "0.1"]).expect_clean();
    }
}

#[test]
fn timeout_wins_over_the_programs_own_exit() {
    let _g = Guard::new();
    // The program exits 0 when the stop signal arrives: still 124, even with
    // 0 listed as a success code.
    let script = r#"trap "exit 0" TERM; echo ready; while :; do "$0" sleep 0.02; done"#;
    let (out, _) = run_timed_after_ready(&[
        "--success-exit-code",
        "0",
        "--",
        "sh",
        "-c",
        script,
        &pt_path(),
    ]);
    out.expect_code(124);
    assert_eq!(out.stdout, b"ready\n");
}

#[test]
fn cd_failure_exits_125() {
    let _g = Guard::new();
    let out = run(&["run", "--cd", "/nonexistent", "--", &pt_path(), "exit", "0"]);
    out.expect_code(125);
    let err = out.expect_one_error_line();
    assert!(err.contains("changing directory failed"), "{err:?}");
    assert!(err.contains("/nonexistent"), "{err:?}");
}

#[test]
fn unknown_flag_exits_125() {
    let _g = Guard::new();
    let out = run(&["run", "--bogus", "--", &pt_path(), "exit", "0"]);
    out.expect_code(125);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--bogus"), "{err:?}");
    assert_eq!(out.stdout, b"");
    // Also an unknown subcommand, and none at all.
    run(&["frobnicate"]).expect_code(125);
    run(&[]).expect_code(125);
}

#[test]
fn bad_values_exit_125() {
    let _g = Guard::new();
    let pt = pt_path();
    let cases: &[&[&str]] = &[
        &["--timeout", "abc"],
        &["--timeout", "-1s"],
        &["--timeout", "5x"],
        &["--stop-timeout", ""],
        &["--kill-after", ""],
        &["-k", "x"],
        &["--stop-signal", "NOPE"],
        &["--stop-signal", "0"],
        &["--env", "NOEQUALS"],
        &["--env", "=value"],
        &["--unset", "A=B"],
        &["--mode", "999"],
        &["--success-exit-code", "x"],
        &["--success-exit-code", "256"],
        &["-s", "NOPE"],
        // Gone: the whole group is always stopped; --foreground replaced
        // --no-group.
        &["--stop-group"],
        &["--no-group"],
        // Needs an output file.
        &["--append"],
        &["--mode", "0600"],
        &["--stdout", "stderr", "--stderr", "stdout"],
    ];
    for case in cases {
        let mut args = vec!["run"];
        args.extend_from_slice(case);
        args.extend_from_slice(&["--", &pt, "print", "ran"]);
        let out = run(&args);
        out.expect_code(125);
        assert_eq!(out.stdout, b"", "{case:?} ran the program");
        assert!(!out.stderr.is_empty(), "{case:?}: no message");
    }
    // Missing program.
    run(&["run"]).expect_code(125);
    run(&["run", "--"]).expect_code(125);
}

#[test]
fn redirection_failure_exits_125() {
    let _g = Guard::new();
    let pt = pt_path();
    for flag in ["--stdin", "--stdout", "--stderr"] {
        let out = run(&[
            "run",
            flag,
            "/nonexistent/dir/file",
            "--",
            &pt,
            "print",
            "ran",
        ]);
        out.expect_code(125);
        assert_eq!(out.stdout, b"");
        let err = out.expect_one_error_line();
        assert!(err.contains("/nonexistent/dir/file"), "{err:?}");
    }
}

#[test]
fn not_executable_exits_126() {
    let _g = Guard::new();
    let dir = TempDir::new("noexec");
    let script = dir.file("script.sh");
    fs::write(&script, "#!/bin/sh\necho ran\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&["run", "--", &script]);
    out.expect_code(126);
    assert_eq!(out.stdout, b"");
    let err = out.expect_one_error_line();
    assert!(err.contains(&script), "{err:?}");
    // A directory cannot be executed either.
    run(&["run", "--", dir.path().to_str().unwrap()]).expect_code(126);
    // Nor a file that is found in PATH but is not executable.
    let out = run_cmd(
        procession()
            .env("PATH", dir.path())
            .args(["run", "--", "script.sh"]),
    );
    out.expect_code(126);
}

#[test]
fn not_found_exits_127() {
    let _g = Guard::new();
    let out = run(&["run", "--", "no-such-program-xyz"]);
    out.expect_code(127);
    let err = out.expect_one_error_line();
    assert!(err.contains("no-such-program-xyz"), "{err:?}");
    run(&["run", "--", "/nonexistent/program"]).expect_code(127);
    // A script whose interpreter is missing.
    let dir = TempDir::new("nointerp");
    let script = dir.file("script");
    fs::write(&script, "#!/nonexistent/interpreter\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    run(&["run", "--", &script]).expect_code(127);
}

#[test]
fn killed_by_signal_exits_128_plus_n() {
    let _g = Guard::new();
    let pt = pt_path();
    run(&["run", "--", &pt, "kill-self", "9"]).expect_code(137);
    run(&["run", "--", &pt, "kill-self", "15"]).expect_code(143);
    run(&["run", "--", &pt, "kill-self", "2"]).expect_code(130);
}

// --------------------------------------------------------- signal forwarding

/// Sends `sig` to the CLI while its program runs; expects `code` and the
/// program gone.
fn forwarded(sig: i32, code: i32) {
    let _g = Guard::new();
    let mut cli = procession()
        .args([
            "run",
            "--",
            "sh",
            "-c",
            r#"echo $$; exec "$0" sleep 100"#,
            &pt_path(),
        ])
        .stdout(StdStdio::piped())
        .stderr(StdStdio::piped())
        .spawn()
        .expect("spawn procession");
    let mut stdout = BufReader::new(cli.stdout.take().expect("stdout"));
    // The program runs, so procession's handlers are installed.
    let program = read_pid(&mut stdout);
    send(cli.id(), sig);
    let status = wait_for(&mut cli);
    assert_eq!(own_exit_code(status), code);
    assert!(!alive(program), "the program survived");
    assert_eq!(read_all(stdout), b"");
    assert_eq!(read_all(cli.stderr.take().expect("stderr")), b"");
}

#[test]
fn sigterm_is_forwarded() {
    forwarded(libc::SIGTERM, 143);
}

#[test]
fn sigint_is_forwarded() {
    forwarded(libc::SIGINT, 130);
}

#[test]
fn sighup_is_forwarded() {
    forwarded(libc::SIGHUP, 129);
}

/// Runs `pt spawn-grandchild` under the CLI (with `extra` flags), sends
/// SIGTERM to the CLI, and returns (exit code, grandchild pid).
fn term_with_grandchild(extra: &[&str]) -> (i32, i32) {
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    let pt = pt_path();
    args.extend_from_slice(&["--", &pt, "spawn-grandchild"]);
    let mut cli = procession()
        .args(&args)
        .stdout(StdStdio::piped())
        .stderr(StdStdio::inherit())
        .spawn()
        .expect("spawn procession");
    let mut stdout = BufReader::new(cli.stdout.take().expect("stdout"));
    let grandchild = read_pid(&mut stdout);
    send(cli.id(), libc::SIGTERM);
    let code = own_exit_code(wait_for(&mut cli));
    (code, grandchild)
}

#[test]
fn forwarded_signals_reach_the_whole_group() {
    let _g = Guard::new();
    let (code, grandchild) = term_with_grandchild(&[]);
    assert_eq!(code, 143);
    assert!(
        wait_dead(grandchild, Duration::from_secs(5)),
        "the grandchild survived"
    );
}

#[test]
fn a_forwarded_signal_reaches_a_member_while_the_program_runs_on() {
    let _g = Guard::new();
    // The program catches USR1 and runs on; the member it started exits on
    // its first USR1. The member must get the signal from procession itself,
    // while the program still runs: the cleanup after the program's exit
    // cannot be what ends it here.
    let pt = pt_path();
    let script = format!("'{pt}' catch 1 10 & echo $!; exec '{pt}' catch 2 10");
    let mut cli = procession()
        .args(["run", "--", "sh", "-c", &script])
        .stdout(StdStdio::piped())
        .stderr(StdStdio::inherit())
        .spawn()
        .expect("spawn procession");
    let mut stdout = BufReader::new(cli.stdout.take().expect("stdout"));
    let (mut member, mut ready) = (None, 0);
    while member.is_none() || ready < 2 {
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read");
        match line.trim().parse::<i32>() {
            Ok(pid) => member = Some(pid),
            Err(_) => {
                assert_eq!(line, "ready\n");
                ready += 1;
            }
        }
    }
    let member = member.unwrap();
    send(cli.id(), libc::SIGUSR1);
    assert!(
        wait_dead(member, Duration::from_secs(5)),
        "the member did not get the forwarded signal"
    );
    for _ in 0..2 {
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read");
        assert_eq!(line, "caught 10\n");
    }
    assert!(cli.try_wait().unwrap().is_none(), "the program ended early");
    // The second USR1 ends the program (its second catch): exit 0.
    send(cli.id(), libc::SIGUSR1);
    assert_eq!(own_exit_code(wait_for(&mut cli)), 0);
}

#[test]
fn with_foreground_only_the_program_gets_the_signal() {
    let _g = Guard::new();
    let (code, grandchild) = term_with_grandchild(&["--foreground"]);
    assert_eq!(code, 143);
    let survived = alive(grandchild);
    // The orphan was re-parented to us (a subreaper) and is not reaped yet,
    // so its pid is still its own.
    send(grandchild as u32, libc::SIGKILL);
    // It is in our own process group (--foreground), where the leak guard
    // would take its zombie for an unreaped child: reap it here.
    // SAFETY: waiting for our own (re-parented) child by pid.
    let reaped = unsafe { libc::waitpid(grandchild, std::ptr::null_mut(), 0) };
    assert_eq!(reaped, grandchild);
    assert!(survived, "the grandchild was signalled with --foreground");
}

#[test]
fn the_rest_of_the_group_is_stopped_when_the_program_exits() {
    let _g = Guard::new();
    // sh starts a member that ignores SIGTERM, passes on its `ready` line and
    // exits 0. procession must stop that member (SIGTERM, then SIGKILL after
    // --stop-timeout) before it exits; the Guard would find it otherwise.
    let script = r#"{ "$0" ignore-term & } | head -n 1"#;
    let out = run(&[
        "run",
        "--stop-timeout",
        "300ms",
        "--",
        "sh",
        "-c",
        script,
        &pt_path(),
    ]);
    out.expect_clean();
    assert_eq!(out.stdout, b"ready\n");
    assert!(
        out.elapsed >= Duration::from_millis(300),
        "{:?}",
        out.elapsed
    );
    assert!(out.elapsed < Duration::from_secs(4), "{:?}", out.elapsed);
}

#[test]
fn process_group_is_procession_s_own_unless_foreground() {
    let _g = Guard::new();
    let pt = pt_path();
    // `pt pgid` prints `<pid> <pgid> <sid>`.
    let pgid_run = |extra: &[&str]| -> (u32, Vec<i32>) {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", &pt, "pgid"]);
        let mut cli = procession()
            .args(&args)
            .stdout(StdStdio::piped())
            .spawn()
            .expect("spawn procession");
        let out = read_all(cli.stdout.take().expect("stdout"));
        assert_eq!(own_exit_code(wait_for(&mut cli)), 0);
        let fields = String::from_utf8_lossy(&out)
            .split_whitespace()
            .map(|f| f.parse().expect("number"))
            .collect();
        (cli.id(), fields)
    };
    let (_, _, our_pgid) = stat(std::process::id() as i32).expect("own stat");

    // We do not lead our group, so procession makes one of its own and the
    // program joins it.
    let (cli, f) = pgid_run(&[]);
    assert_eq!(f[1], cli as i32, "the program is in procession's new group");
    assert_ne!(f[1], our_pgid);

    let (_, f) = pgid_run(&["--foreground"]);
    assert_eq!(f[1], our_pgid, "the program stays in the caller's group");
}

// ------------------------------------------------ terminal and group model

/// Runs `pt pty [pty_args] -- <procession> [args]`: procession as the
/// foreground job of a fresh pseudo-terminal.
fn pty(pty_args: &[&str], args: &[&str]) -> Out {
    let mut job = vec![env!("CARGO_BIN_EXE_procession")];
    job.extend_from_slice(args);
    pty_job(pty_args, &job)
}

/// Runs `pt pty [pty_args] -- [job]`.
fn pty_job(pty_args: &[&str], job: &[&str]) -> Out {
    run_cmd(&mut pty_job_cmd(pty_args, job))
}

/// The command `pt pty [pty_args] -- [job]`, not run yet.
fn pty_job_cmd(pty_args: &[&str], job: &[&str]) -> StdCommand {
    let mut cmd = StdCommand::new(pt());
    cmd.stdin(StdStdio::null())
        .args(["pty", "--timeout", "15"])
        .args(pty_args)
        .arg("--")
        .args(job);
    cmd
}

/// The pid in the first `pid:<pid>` of `out`.
fn pid_in(out: &[u8]) -> i32 {
    let text = String::from_utf8_lossy(out);
    let at = text
        .find("pid:")
        .unwrap_or_else(|| panic!("no pid: in {text:?}"))
        + 4;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("pid")
}

/// Asserts that `out` contains `want`.
fn assert_contains(out: &Out, want: &str) {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(want),
        "{want:?} not in the output {text:?}; stderr: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn program_reads_the_terminal() {
    let _g = Guard::new();
    // In a group outside the terminal's foreground, `read` would be stopped
    // by SIGTTIN and never finish.
    let out = pty(
        &["--send", "hello\\n"],
        &["run", "--", "sh", "-c", "read x; echo got:$x"],
    );
    out.expect_code(0);
    assert_contains(&out, "got:hello");
}

#[test]
fn ctrl_c_reaches_the_program_and_the_rest_is_stopped() {
    let _g = Guard::new();
    // Ctrl-C reaches the program (sh dies of SIGINT: 130). The background
    // sleep ignores SIGINT (sh's `&` does that) and SIGHUP (so that the
    // terminal's hang-up cannot stand in for procession): procession must
    // stop it, as what is left of its group, before it exits.
    let out = pty(
        &["--send-after-line", "ready", "\\x03"],
        &[
            "run",
            "--",
            "sh",
            "-c",
            r#"trap "" HUP; sleep 300 & echo pid:$!; echo ready; wait"#,
        ],
    );
    out.expect_code(130);
    let sleep = pid_in(&out.stdout);
    assert!(!alive(sleep), "the background sleep {sleep} survived");
}

#[test]
fn pipeline_siblings_are_left_alone() {
    let _g = Guard::new();
    // A job-control shell (sh -m) on a terminal runs a pipeline in one group
    // led by its first command, procession. The pipe's reader is in that
    // group but is the shell's child, not procession's: it must survive the
    // stop of what is left of the group. It reads to end of file, which
    // comes once procession has exited, and only then reports.
    let out = pty_job(
        &[],
        &[
            "sh",
            "-mc",
            r#""$0" run -- "$1" print x | { cat >/dev/null; echo survived; }"#,
            env!("CARGO_BIN_EXE_procession"),
            &pt_path(),
        ],
    );
    out.expect_code(0);
    assert_contains(&out, "survived");
}

/// `sh` with a background `sleep 31` (which reports its pid and ignores
/// SIGHUP) and a foreground one.
const TWO_SLEEPS: &str = r#"trap "" HUP; sleep 31 & echo pid:$!; sleep 31"#;

/// Whether `stdout` holds a whole `pid:<digits>` line (`\r\n` on a
/// terminal): [`TWO_SLEEPS`] started its background sleep and said so
/// before the timeout fired.
fn printed_pid(stdout: &[u8]) -> bool {
    let text = String::from_utf8_lossy(stdout);
    text.find("pid:").is_some_and(|at| {
        let rest = &text[at + 4..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        digits > 0 && (rest[digits..].starts_with('\n') || rest[digits..].starts_with("\r\n"))
    })
}

/// Runs [`TWO_SLEEPS`] under `procession run --timeout T [extra] -- sh -c`
/// (on a terminal when `on_pty`), with a timeout long enough for the shell
/// to have printed its background sleep's pid: the run and its timeout.
fn two_sleeps_timed_out(on_pty: bool, extra: &[&str]) -> (Out, Duration) {
    run_cmd_timed_after(
        |timeout| {
            let mut args = vec!["run", "--timeout", timeout];
            args.extend_from_slice(extra);
            args.extend_from_slice(&["--", "sh", "-c", TWO_SLEEPS]);
            if on_pty {
                let mut job = vec![env!("CARGO_BIN_EXE_procession")];
                job.extend_from_slice(&args);
                pty_job_cmd(&[], &job)
            } else {
                let mut cmd = procession();
                cmd.args(&args);
                cmd
            }
        },
        "its background sleep's pid",
        printed_pid,
    )
}

#[test]
fn timeout_stops_the_whole_group() {
    let _g = Guard::new();
    let (out, timeout) = two_sleeps_timed_out(false, &[]);
    out.expect_code(124);
    let limit = timeout + Duration::from_secs(4);
    assert!(out.elapsed < limit, "{:?}", out.elapsed);
    let sleep = pid_in(&out.stdout);
    assert_stdout(&out, &format!("pid:{sleep}\n"));
    assert!(!alive(sleep), "the background sleep {sleep} survived");
}

#[test]
fn timeout_stops_the_whole_group_on_a_terminal() {
    let _g = Guard::new();
    let (out, timeout) = two_sleeps_timed_out(true, &[]);
    out.expect_code(124);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "stderr");
    let limit = timeout + Duration::from_secs(4);
    assert!(out.elapsed < limit, "{:?}", out.elapsed);
    let sleep = pid_in(&out.stdout);
    assert!(!alive(sleep), "the background sleep {sleep} survived");
}

/// Runs `pt catch 1 SIGNUM` under the CLI, sends `sig` to the CLI once the
/// program is ready, and expects the program to report it and procession to
/// exit 0.
fn caught_by_the_program(sig: i32) {
    let mut cli = procession()
        .args(["run", "--", &pt_path(), "catch", "1", &sig.to_string()])
        .stdout(StdStdio::piped())
        .stderr(StdStdio::piped())
        .spawn()
        .expect("spawn procession");
    let mut stdout = BufReader::new(cli.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read ready");
    assert_eq!(line, "ready\n");
    send(cli.id(), sig);
    let code = own_exit_code(wait_for(&mut cli));
    let err = read_all(cli.stderr.take().expect("stderr"));
    assert_eq!(
        code,
        0,
        "signal {sig}; stderr: {:?}",
        String::from_utf8_lossy(&err)
    );
    assert_eq!(read_all(stdout), format!("caught {sig}\n").as_bytes());
}

#[test]
fn every_catchable_signal_is_forwarded() {
    let _g = Guard::new();
    for sig in [
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGQUIT,
        libc::SIGALRM,
        libc::SIGPIPE,
        libc::SIGWINCH,
        libc::SIGCONT,
        libc::SIGURG,
        libc::SIGABRT,
        libc::SIGPWR,
        libc::SIGRTMIN(),
        libc::SIGRTMIN() + 3,
        libc::SIGRTMAX(),
    ] {
        caught_by_the_program(sig);
    }
}

#[test]
fn usr1_reaches_a_shell_trap() {
    let _g = Guard::new();
    let mut cli = procession()
        .args([
            "run",
            "--",
            "sh",
            "-c",
            r#"trap "echo got-usr1; exit 7" USR1; echo ready; while :; do "$0" sleep 0.05; done"#,
            &pt_path(),
        ])
        .stdout(StdStdio::piped())
        .stderr(StdStdio::null())
        .spawn()
        .expect("spawn procession");
    let mut stdout = BufReader::new(cli.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read ready");
    assert_eq!(line, "ready\n");
    send(cli.id(), libc::SIGUSR1);
    assert_eq!(own_exit_code(wait_for(&mut cli)), 7);
    assert_eq!(read_all(stdout), b"got-usr1\n");
}

#[test]
fn terminal_signals_reach_the_program() {
    let _g = Guard::new();
    // Ctrl-C, then Ctrl-\ once the program has reported the SIGINT. Both
    // reach the program from the terminal, and procession survives both
    // (SIGQUIT would end it otherwise). procession must not forward them
    // again: a second SIGINT would be reported before the SIGQUIT, unless it
    // merged with the first while that was pending, which is likely, so this
    // cannot prove it; the unit test of the forwarding rule does.
    let out = pty(
        &[
            "--send-after-line",
            "ready",
            "\\x03",
            "--send-after-line",
            "caught 2",
            "\\x1c",
        ],
        &["run", "--", &pt_path(), "catch", "2", "2", "3"],
    );
    out.expect_code(0);
    // The terminal echoes ^C and ^\ in between: look at the reports only.
    let text = String::from_utf8_lossy(&out.stdout);
    let caught: Vec<&str> = text
        .split("caught ")
        .skip(1)
        .map(|rest| rest.split('\r').next().unwrap_or(rest))
        .collect();
    assert_eq!(caught, ["2", "3"], "output {text:?}");
}

// ------------------------------------------------------------- redirections

#[test]
fn stdin_file() {
    let _g = Guard::new();
    let dir = TempDir::new("stdin");
    let input = dir.file("input");
    fs::write(&input, "hello").unwrap();
    let out = run(&["run", "--stdin", &input, "--", &pt_path(), "stdin-state"]);
    out.expect_clean();
    assert_eq!(out.stdout, b"open 5\n");
}

#[test]
fn stdin_null_close_and_inherit() {
    let _g = Guard::new();
    let dir = TempDir::new("stdin");
    let input = dir.join("input");
    fs::write(&input, "0123456789").unwrap();
    let pt = pt_path();
    let with_input = |args: &[&str]| {
        run_cmd(
            procession()
                .stdin(fs::File::open(&input).expect("open input"))
                .args(args),
        )
    };
    let out = with_input(&["run", "--", &pt, "stdin-state"]);
    out.expect_clean();
    assert_eq!(out.stdout, b"open 10\n", "inherited");
    let out = with_input(&["run", "--stdin", "null", "--", &pt, "stdin-state"]);
    out.expect_clean();
    assert_eq!(out.stdout, b"open 0\n");
    let out = with_input(&["run", "--stdin", "close", "--", &pt, "stdin-state"]);
    out.expect_clean();
    assert_eq!(out.stdout, b"closed\n");
}

#[test]
fn stdout_file_is_truncated() {
    let _g = Guard::new();
    let dir = TempDir::new("stdout");
    let file = dir.file("out.log");
    fs::write(&file, "old content, longer than the new one\n").unwrap();
    let out = run(&["run", "--stdout", &file, "--", &pt_path(), "print", "new"]);
    out.expect_clean();
    assert_eq!(out.stdout, b"");
    assert_eq!(fs::read(&file).unwrap(), b"new\n");
}

#[test]
fn stdout_file_append() {
    let _g = Guard::new();
    let dir = TempDir::new("append");
    let file = dir.file("out.log");
    fs::write(&file, "old\n").unwrap();
    let pt = pt_path();
    run(&[
        "run", "--stdout", &file, "--append", "--", &pt, "print", "new",
    ])
    .expect_clean();
    run(&[
        "run", "--append", "--stdout", &file, "--", &pt, "print", "newer",
    ])
    .expect_clean();
    assert_eq!(fs::read(&file).unwrap(), b"old\nnew\nnewer\n");
    // Created when missing.
    let fresh = dir.file("fresh.log");
    run(&[
        "run", "--stdout", &fresh, "--append", "--", &pt, "print", "x",
    ])
    .expect_clean();
    assert_eq!(fs::read(&fresh).unwrap(), b"x\n");
}

#[test]
fn mode_of_created_files() {
    let _g = Guard::new();
    let dir = TempDir::new("mode");
    let pt = pt_path();
    let umask = umask();
    for (mode, bits) in [("0600", 0o600), ("640", 0o640), ("0o604", 0o604)] {
        let file = dir.file(&format!("out-{mode}"));
        run(&[
            "run", "--stdout", &file, "--mode", mode, "--", &pt, "print", "x",
        ])
        .expect_clean();
        assert_eq!(mode_of(&file), bits & !umask, "--mode {mode}");
        assert_eq!(fs::read(&file).unwrap(), b"x\n");
    }
    // Default: 0666 minus the umask.
    let file = dir.file("default");
    run(&["run", "--stdout", &file, "--", &pt, "print", "x"]).expect_clean();
    assert_eq!(mode_of(&file), 0o666 & !umask);
    // For --stderr too, with --append.
    let file = dir.file("err");
    run(&[
        "run", "--stderr", &file, "--append", "--mode", "0600", "--", &pt, "eprint", "e",
    ])
    .expect_clean();
    assert_eq!(mode_of(&file), 0o600 & !umask);
    assert_eq!(fs::read(&file).unwrap(), b"e\n");
    // An existing file keeps its mode.
    let file = dir.file("existing");
    fs::write(&file, "").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    run(&[
        "run", "--stdout", &file, "--mode", "0600", "--", &pt, "print", "x",
    ])
    .expect_clean();
    assert_eq!(mode_of(&file), 0o644);
}

#[test]
fn stdout_null_and_stderr() {
    let _g = Guard::new();
    let pt = pt_path();
    let out = run(&["run", "--stdout", "null", "--", &pt, "interleave", "2"]);
    out.expect_code(0);
    assert_eq!(out.stdout, b"");
    assert_eq!(out.stderr, b"err 0\nerr 1\n");
    let out = run(&["run", "--stdout", "stderr", "--", &pt, "interleave", "2"]);
    out.expect_code(0);
    assert_eq!(out.stdout, b"");
    assert_eq!(out.stderr, b"out 0\nerr 0\nout 1\nerr 1\n");
}

#[test]
fn stderr_file() {
    let _g = Guard::new();
    let dir = TempDir::new("stderr");
    let file = dir.file("err.log");
    fs::write(&file, "old content, longer than the new one\n").unwrap();
    let pt = pt_path();
    let out = run(&["run", "--stderr", &file, "--", &pt, "interleave", "2"]);
    out.expect_clean();
    assert_eq!(out.stdout, b"out 0\nout 1\n");
    assert_eq!(fs::read(&file).unwrap(), b"err 0\nerr 1\n");
    // --append applies to --stderr as well.
    run(&[
        "run", "--stderr", &file, "--append", "--", &pt, "eprint", "more",
    ])
    .expect_clean();
    assert_eq!(fs::read(&file).unwrap(), b"err 0\nerr 1\nmore\n");
}

#[test]
fn stderr_to_stdout_keeps_the_order() {
    let _g = Guard::new();
    let out = run(&[
        "run",
        "--stderr",
        "stdout",
        "--",
        &pt_path(),
        "interleave",
        "3",
    ]);
    out.expect_clean();
    assert_eq!(out.stdout, b"out 0\nerr 0\nout 1\nerr 1\nout 2\nerr 2\n");
}

#[test]
fn stderr_null() {
    let _g = Guard::new();
    let out = run(&[
        "run",
        "--stderr",
        "null",
        "--",
        &pt_path(),
        "interleave",
        "2",
    ]);
    out.expect_clean();
    assert_eq!(out.stdout, b"out 0\nout 1\n");
}

#[test]
fn both_streams_into_one_file() {
    let _g = Guard::new();
    let dir = TempDir::new("both");
    let pt = pt_path();
    // The same FILE twice shares one open file (2>&1), so nothing is overwritten.
    let file = dir.file("same.log");
    run(&[
        "run",
        "--stdout",
        &file,
        "--stderr",
        &file,
        "--",
        &pt,
        "interleave",
        "3",
    ])
    .expect_clean();
    assert_eq!(
        fs::read(&file).unwrap(),
        b"out 0\nerr 0\nout 1\nerr 1\nout 2\nerr 2\n"
    );
    let file = dir.file("redirected.log");
    run(&[
        "run",
        "--stdout",
        &file,
        "--stderr",
        "stdout",
        "--",
        &pt,
        "interleave",
        "2",
    ])
    .expect_clean();
    run(&[
        "run", "--stdout", &file, "--stderr", "stdout", "--append", "--", &pt, "print", "end",
    ])
    .expect_clean();
    assert_eq!(
        fs::read(&file).unwrap(),
        b"out 0\nerr 0\nout 1\nerr 1\nend\n"
    );
}

// ------------------------------------------------- environment, cwd, argv

/// The CLI with exactly A=1 and B=2 in its environment.
fn env_run(args: &[&str]) -> Vec<u8> {
    let out = run_cmd(
        procession()
            .env_clear()
            .env("A", "1")
            .env("B", "2")
            .args(args),
    );
    out.expect_clean();
    out.stdout
}

#[test]
fn env_sets_variables() {
    let _g = Guard::new();
    let pt = pt_path();
    assert_eq!(env_run(&["run", "--", &pt, "env"]), b"A=1\0B=2\0");
    assert_eq!(
        env_run(&[
            "run", "--env", "C=3", "--env", "A=x", "--env", "D=a=b", "--env", "E=", "--", &pt,
            "env"
        ]),
        b"A=x\0B=2\0C=3\0D=a=b\0E=\0"
    );
}

#[test]
fn unset_removes_variables() {
    let _g = Guard::new();
    let pt = pt_path();
    assert_eq!(
        env_run(&["run", "--unset", "A", "--", &pt, "env"]),
        b"B=2\0"
    );
    assert_eq!(
        env_run(&[
            "run", "--unset", "A", "--unset", "B", "--unset", "Z", "--", &pt, "env"
        ]),
        b""
    );
    // --env and --unset apply in command-line order.
    assert_eq!(
        env_run(&["run", "--env", "A=9", "--unset", "A", "--", &pt, "env"]),
        b"B=2\0"
    );
    assert_eq!(
        env_run(&["run", "--unset", "A", "--env", "A=9", "--", &pt, "env"]),
        b"B=2\0A=9\0"
    );
}

#[test]
fn env_clear_starts_empty() {
    let _g = Guard::new();
    let pt = pt_path();
    assert_eq!(env_run(&["run", "--env-clear", "--", &pt, "env"]), b"");
    assert_eq!(
        env_run(&[
            "run",
            "--env",
            "C=3",
            "--env-clear",
            "--env",
            "D=4",
            "--",
            &pt,
            "env"
        ]),
        b"C=3\0D=4\0"
    );
}

#[test]
fn cd_sets_the_working_directory() {
    let _g = Guard::new();
    let dir = TempDir::new("cwd");
    let out = run(&[
        "run",
        "--cd",
        dir.path().to_str().unwrap(),
        "--",
        &pt_path(),
        "cwd",
    ]);
    out.expect_clean();
    assert_eq!(out.stdout, format!("{}\n", dir.path().display()).as_bytes());
    // A relative PROGRAM path is found from there.
    let pt = pt();
    let pt_dir = pt.parent().unwrap().to_str().unwrap();
    let out = run(&["run", "--cd", pt_dir, "--", "./pt", "print", "relative"]);
    out.expect_clean();
    assert_eq!(out.stdout, b"relative\n");
}

#[test]
fn arg0_renames_the_program() {
    let _g = Guard::new();
    let pt = pt_path();
    let out = run(&["run", "--", &pt, "argv", "a b"]);
    out.expect_clean();
    assert_eq!(out.stdout, format!("{pt}\0argv\0a b\0").as_bytes());
    let out = run(&["run", "--arg0", "renamed", "--", &pt, "argv", "a b"]);
    out.expect_clean();
    assert_eq!(out.stdout, b"renamed\0argv\0a b\0");
}

// ------------------------------------------------------------ stop sequence

#[test]
fn stop_signal_int_with_timeout_exits_124() {
    let _g = Guard::new();
    let pt = pt_path();
    // The program dies of SIGINT, but the timeout fired: 124 wins over 130.
    let out = run(&[
        "run",
        "--timeout",
        "200ms",
        "--stop-signal",
        "INT",
        "--",
        &pt,
        "sleep",
        "100",
    ]);
    out.expect_code(124);
    assert!(out.elapsed < Duration::from_secs(4), "{:?}", out.elapsed);
    // Which signal arrived, as the program sees it; any spelling works.
    let script = r#"trap "echo INT; exit 0" INT; trap "echo TERM; exit 0" TERM; echo ready; while :; do "$0" sleep 0.02; done"#;
    for (sig, seen) in [
        ("INT", "INT"),
        ("SIGINT", "INT"),
        ("2", "INT"),
        ("term", "TERM"),
    ] {
        let (out, _) =
            run_timed_after_ready(&["--stop-signal", sig, "--", "sh", "-c", script, &pt]);
        out.expect_code(124);
        assert_eq!(
            out.stdout,
            format!("ready\n{seen}\n").as_bytes(),
            "--stop-signal {sig}"
        );
    }
}

#[test]
fn stop_timeout_sends_sigkill() {
    let _g = Guard::new();
    // SIGTERM is ignored; SIGKILL follows 300 ms later (not the default 5 s).
    let (out, timeout) =
        run_timed_after_ready(&["--stop-timeout", "300ms", "--", &pt_path(), "ignore-term"]);
    out.expect_code(124);
    // `ready` proves SIGTERM was ignored by then, so SIGKILL ended it.
    assert_eq!(out.stdout, b"ready\n");
    let sigkill_at = timeout + Duration::from_millis(300);
    assert!(out.elapsed >= sigkill_at, "{:?}", out.elapsed);
    assert!(
        out.elapsed < sigkill_at + Duration::from_secs(3),
        "{:?}",
        out.elapsed
    );
}

#[test]
fn stop_command_replaces_the_signal() {
    let _g = Guard::new();
    let pt = pt_path();
    let (out, timeout) = run_cmd_timed_after_ready(|timeout| {
        let mut cmd = procession();
        cmd.env("SHELL", "/bin/sh").args([
            "run",
            "--timeout",
            timeout,
            "--stop-command",
            r#"echo "stopping $CHILD_PID"; kill -INT $CHILD_PID"#,
            "--",
            "sh",
            "-c",
            r#"printf 'ready\n%s\n' $$; exec "$0" sleep 100"#,
            &pt,
        ]);
        cmd
    });
    out.expect_code(124);
    assert_eq!(out.stderr, b"");
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let pid = text.lines().nth(1).expect("pid line");
    assert_eq!(text, format!("ready\n{pid}\nstopping {pid}\n"));
    // SIGINT ended it, not SIGKILL after the default 5 s stop timeout.
    assert!(
        out.elapsed < timeout + Duration::from_secs(4),
        "{:?}",
        out.elapsed
    );
}

#[test]
fn stop_command_that_lingers_is_stopped_before_exit() {
    let _g = Guard::new();
    // The command signals the program, then lingers. procession kills it
    // after --stop-timeout (here by GNU's name -k); it must not exit
    // (orphaning it) before.
    let out = run_cmd(
        procession()
            .env("SHELL", "/bin/sh")
            .args([
                "run",
                "--timeout",
                "200ms",
                "-k",
                "500ms",
                "--stop-command",
                r#"kill -INT $CHILD_PID; exec "$PT" sleep 30"#,
                "--",
                &pt_path(),
                "sleep",
                "100",
            ])
            .env("PT", pt()),
    );
    out.expect_code(124);
    assert_eq!(out.stderr, b"");
    assert!(
        out.elapsed >= Duration::from_millis(700),
        "{:?}",
        out.elapsed
    );
    assert!(out.elapsed < Duration::from_secs(4), "{:?}", out.elapsed);
}

#[test]
fn success_exit_codes() {
    let _g = Guard::new();
    let pt = pt_path();
    let code = |codes: &[&str], args: &[&str]| {
        let mut v = vec!["run"];
        for c in codes {
            v.extend_from_slice(&["--success-exit-code", c]);
        }
        v.extend_from_slice(&["--", &pt]);
        v.extend_from_slice(args);
        let out = run(&v);
        assert_eq!(out.stderr, b"");
        out.code
    };
    // In the set: 0.
    assert_eq!(code(&["3"], &["exit", "3"]), 0);
    assert_eq!(code(&["0", "3"], &["exit", "3"]), 0);
    assert_eq!(code(&["0", "3"], &["exit", "0"]), 0);
    // Not in the set: the program's code, and 1 instead of 0.
    assert_eq!(code(&["3"], &["exit", "4"]), 4);
    assert_eq!(code(&["3"], &["exit", "0"]), 1);
    // A signal is never a success.
    assert_eq!(code(&["0"], &["kill-self", "15"]), 143);
    // Without the flag, the code passes through.
    assert_eq!(code(&[], &["exit", "3"]), 3);
}

// --------------------------------------------------------------------- help

#[test]
fn help_documents_every_flag() {
    let _g = Guard::new();
    let out = run(&["run", "--help"]);
    out.expect_clean();
    let help = String::from_utf8(out.stdout.clone()).unwrap();
    for flag in [
        "--timeout",
        "--stop-signal",
        "--stop-timeout",
        "--stop-command",
        "--foreground",
        "--cd",
        "--env",
        "--unset",
        "--env-clear",
        "--arg0",
        "--stdin",
        "--stdout",
        "--stderr",
        "--append",
        "--mode",
        "--success-exit-code",
        "--pty",
        "--pty-size",
    ] {
        assert!(
            help.contains(&format!("{flag} ")),
            "{flag} missing from --help"
        );
        let example = help
            .lines()
            .any(|l| l.contains("Example: procession run ") && l.contains(&format!("{flag} ")));
        assert!(example, "{flag}: no example in --help");
    }
    // GNU timeout's names are shown as aliases; the removed flags are gone.
    for alias in [
        "-s, --stop-signal",
        "--signal",
        "-k, --stop-timeout",
        "--kill-after",
    ] {
        assert!(help.contains(alias), "{alias} missing from --help");
    }
    for gone in ["--stop-group ", "--no-group "] {
        assert!(
            !help.lines().any(|l| l.trim_start().starts_with(gone)),
            "{gone} still documented"
        );
    }
    for section in [
        "PROCESS GROUP",
        "TERMINAL",
        "EXIT STATUS",
        "SIGNALS",
        "EXAMPLES",
        "124",
        "125",
        "126",
        "127",
        "128+N",
    ] {
        assert!(help.contains(section), "{section} missing from --help");
    }
    assert!(help.contains("procession run --timeout 2s -- sh -c 'echo hi; sleep 5'"));

    // Short help, the top level and the version also exit 0.
    let out = run(&["run", "-h"]);
    out.expect_clean();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--success-exit-code"));
    let out = run(&["--help"]);
    out.expect_clean();
    assert!(String::from_utf8_lossy(&out.stdout).contains("run"));
    let out = run(&["--version"]);
    out.expect_clean();
    assert_eq!(
        out.stdout,
        format!("procession {}\n", env!("CARGO_PKG_VERSION")).as_bytes()
    );
}

#[test]
fn non_utf8_arguments_pass_through() {
    let _g = Guard::new();
    use std::os::unix::ffi::OsStrExt;
    let arg = OsStr::from_bytes(b"caf\xe9");
    let out = run_cmd(
        procession()
            .args(["run", "--arg0"])
            .arg(arg)
            .arg("--")
            .arg(pt())
            .arg("argv")
            .arg(arg),
    );
    out.expect_clean();
    assert_eq!(out.stdout, b"caf\xe9\0argv\0caf\xe9\0");
}

/// procession is a child subreaper (so that what the program started stays
/// within reach): orphans that end while the program still runs must be
/// reaped then, not pile up as zombies until procession exits.
#[test]
fn orphans_that_end_during_the_run_are_reaped_at_once() {
    let _g = Guard::new();
    // The inner shell starts a short sleep and exits: the sleep is
    // re-parented to procession and ends 50 ms later. Its /proc entry
    // remains while it is an unreaped zombie.
    let script = r#"pid=$(sh -c 'sleep 0.05 >/dev/null 2>&1 & echo $!'); i=0
while [ -e /proc/$pid ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
if [ -e /proc/$pid ]; then echo "zombie left"; else echo reaped; fi"#;
    let out = run(&["run", "--", "sh", "-c", script]);
    out.expect_clean();
    assert_eq!(out.stdout, b"reaped\n");
}

// -------------------------------------------------------------------- --pty

/// Runs `sh -c SCRIPT <procession> ARGS...` (procession is `$0` in SCRIPT),
/// with stdin from /dev/null.
fn sh(script: &str, args: &[&str]) -> Out {
    let mut cmd = StdCommand::new("sh");
    cmd.stdin(StdStdio::null())
        .args(["-c", script, env!("CARGO_BIN_EXE_procession")])
        .args(args);
    run_cmd(&mut cmd)
}

/// Asserts that stdout is exactly `want` (shown as text with escapes).
fn assert_stdout(out: &Out, want: &str) {
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        want,
        "stdout; stderr: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pty_tty_names_the_terminal_and_without_pty_there_is_none() {
    let _g = Guard::new();
    let out = run(&["run", "--pty", "--", "tty"]);
    out.expect_clean();
    let text = String::from_utf8(out.stdout.clone()).expect("utf-8");
    let n = text
        .strip_prefix("/dev/pts/")
        .and_then(|rest| rest.strip_suffix("\r\n"))
        .unwrap_or_else(|| panic!("not a /dev/pts/N line: {text:?}"));
    assert!(
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
        "{text:?}"
    );
    // Without --pty, and with stdin from /dev/null, there is no terminal.
    let out = run(&["run", "--", "tty"]);
    out.expect_code(1);
    assert_stdout(&out, "not a tty\n");
}

#[test]
fn pty_size_is_24x80_without_a_terminal_or_as_given() {
    let _g = Guard::new();
    let out = run(&["run", "--pty", "--pty-size", "33x101", "--", "stty", "size"]);
    out.expect_clean();
    assert_stdout(&out, "33 101\r\n");
    // Neither stdin (/dev/null) nor stdout (a pipe) is a terminal.
    let out = run(&["run", "--pty", "--", "stty", "size"]);
    out.expect_clean();
    assert_stdout(&out, "24 80\r\n");
}

#[test]
fn pty_piped_input_is_not_echoed_and_its_end_types_ctrl_d() {
    let _g = Guard::new();
    // cat ends at the Ctrl-D typed when procession's stdin ends.
    let out = sh(r#"printf 'a\nb\n' | "$0" run --pty -- cat"#, &[]);
    out.expect_clean();
    assert_stdout(&out, "a\r\nb\r\n");
    // An unfinished last line: one Ctrl-D ends the line, the next the input.
    let out = sh(r#"printf 'abc' | "$0" run --pty -- cat"#, &[]);
    out.expect_clean();
    assert_stdout(&out, "abc");
    // No input at all.
    let out = run(&["run", "--pty", "--", "cat"]);
    out.expect_clean();
    assert_stdout(&out, "");
    // The terminal hands the input over line by line: `head -n 1` gets one.
    let out = sh(
        r#"printf 'one\ntwo\n' | "$0" run --pty -- sh -c 'head -n 1; echo next; cat'"#,
        &[],
    );
    out.expect_clean();
    assert_stdout(&out, "one\r\nnext\r\ntwo\r\n");
}

#[test]
fn pty_exit_codes_are_the_programs() {
    let _g = Guard::new();
    let out = run(&["run", "--pty", "--", "sh", "-c", "exit 3"]);
    out.expect_code(3);
    assert_stdout(&out, "");
    assert_eq!(out.stderr, b"");
    // Byte 3 on the terminal is Ctrl-C: cat dies of SIGINT. (No echo, so
    // no ^C in the output.)
    let out = sh(r#"printf '\003' | "$0" run --pty -- cat"#, &[]);
    out.expect_code(130);
    assert_stdout(&out, "");
    assert_eq!(out.stderr, b"");
    run(&["run", "--pty", "--", &pt_path(), "kill-self", "15"]).expect_code(143);
    run(&[
        "run",
        "--pty",
        "--success-exit-code",
        "3",
        "--",
        "sh",
        "-c",
        "exit 3",
    ])
    .expect_clean();
    let out = run(&["run", "--pty", "--", "/nonexistent/program"]);
    out.expect_code(127);
    out.expect_one_error_line();
}

#[test]
fn pty_timeout_stops_the_programs_group() {
    let _g = Guard::new();
    let (out, timeout) = two_sleeps_timed_out(false, &["--pty"]);
    out.expect_code(124);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "stderr");
    let limit = timeout + Duration::from_secs(4);
    assert!(out.elapsed < limit, "{:?}", out.elapsed);
    let sleep = pid_in(&out.stdout);
    assert_stdout(&out, &format!("pid:{sleep}\r\n"));
    assert!(!alive(sleep), "the background sleep {sleep} survived");
}

#[test]
fn pty_stop_signal_reaches_the_program_on_its_terminal() {
    let _g = Guard::new();
    let pt = pt_path();
    let (out, _) = run_cmd_timed_after_ready(|timeout| {
        let mut cmd = procession();
        cmd.args([
            "run",
            "--pty",
            "--timeout",
            timeout,
            "--stop-signal",
            "USR1",
            "--",
            &pt,
            "catch",
            "1",
            "10",
        ]);
        cmd
    });
    out.expect_code(124);
    assert_stdout(&out, "ready\r\ncaught 10\r\n");
    // The same signal from a stop command.
    let (out, _) = run_cmd_timed_after_ready(|timeout| {
        let mut cmd = procession();
        cmd.args([
            "run",
            "--pty",
            "--timeout",
            timeout,
            "--stop-command",
            "kill -USR1 $CHILD_PID",
            "--",
            &pt,
            "catch",
            "1",
            "10",
        ]);
        cmd
    });
    out.expect_code(124);
    assert_stdout(&out, "ready\r\ncaught 10\r\n");
}

#[test]
fn pty_forwarded_signals_reach_the_programs_group() {
    let _g = Guard::new();
    let (code, grandchild) = term_with_grandchild(&["--pty"]);
    assert_eq!(code, 143);
    assert!(
        wait_dead(grandchild, Duration::from_secs(5)),
        "the grandchild survived"
    );
}

#[test]
fn pty_stderr_env_and_cd() {
    let _g = Guard::new();
    let dir = TempDir::new("pty");
    let both = "echo out; echo err >&2";
    let out = run(&["run", "--pty", "--stderr", "stdout", "--", "sh", "-c", both]);
    out.expect_clean();
    assert_stdout(&out, "out\r\nerr\r\n");
    // FILE or null take stderr off the terminal.
    let err = dir.file("err");
    let out = run(&["run", "--pty", "--stderr", &err, "--", "sh", "-c", both]);
    out.expect_clean();
    assert_stdout(&out, "out\r\n");
    assert_eq!(fs::read(&err).unwrap(), b"err\n");
    let out = run(&["run", "--pty", "--stderr", "null", "--", "sh", "-c", both]);
    out.expect_clean();
    assert_stdout(&out, "out\r\n");
    let cd = dir.path().to_str().unwrap();
    let out = run(&[
        "run",
        "--pty",
        "--env",
        "X=1",
        "--cd",
        cd,
        "--",
        "sh",
        "-c",
        r#"echo "$X $PWD""#,
    ]);
    out.expect_clean();
    assert_stdout(&out, &format!("1 {cd}\r\n"));
}

#[test]
fn pty_conflicting_options_exit_125() {
    let _g = Guard::new();
    let pt = pt_path();
    for (case, named) in [
        (&["--pty", "--stdin", "null"][..], "--stdin"),
        (&["--pty", "--stdout", "null"][..], "--stdout"),
        (&["--pty", "--foreground"][..], "--foreground"),
    ] {
        let mut args = vec!["run"];
        args.extend_from_slice(case);
        args.extend_from_slice(&["--", &pt, "print", "ran"]);
        let out = run(&args);
        out.expect_code(125);
        assert_eq!(out.stdout, b"", "{case:?} ran the program");
        let err = out.expect_one_error_line();
        assert!(err.contains(named) && err.contains("--pty"), "{err:?}");
    }
    for case in [
        &["--pty-size", "24x80"][..],
        &["--pty", "--pty-size", "0x80"],
        &["--pty", "--pty-size", "24x"],
        &["--pty", "--pty-size", "24*80"],
        &["--pty", "--pty-size", "24x80x1"],
        &["--pty", "--pty-size", "65536x80"],
        &["--pty", "--pty-size", "+24x80"],
    ] {
        let mut args = vec!["run"];
        args.extend_from_slice(case);
        args.extend_from_slice(&["--", &pt, "print", "ran"]);
        let out = run(&args);
        out.expect_code(125);
        assert_eq!(out.stdout, b"", "{case:?} ran the program");
        assert!(!out.stderr.is_empty(), "{case:?}: no message");
    }
}

#[test]
fn pty_a_closed_stdout_hangs_the_program_up() {
    let _g = Guard::new();
    // head takes one line and exits; procession's next write fails, and the
    // program gets SIGHUP, as from a terminal that hung up.
    let out = sh(
        r#"{ "$0" run --pty -- yes; echo "rc=$?" >&2; } | head -n 1"#,
        &[],
    );
    out.expect_code(0);
    assert_stdout(&out, "y\r\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "rc=129\n");
}

#[test]
fn pty_size_comes_from_a_terminal_on_stdout_too() {
    let _g = Guard::new();
    // stdin is not a terminal: no raw mode, no echo; stdout is.
    let out = pty_job(
        &["--size", "30x90"],
        &[
            "sh",
            "-c",
            r#""$0" run --pty -- sh -c 'stty size; stty -a | grep -o -- "-echo " ' </dev/null"#,
            env!("CARGO_BIN_EXE_procession"),
        ],
    );
    out.expect_code(0);
    // procession's terminal is not raw: it turns the program's \r\n into
    // \r\r\n (onlcr), as it would with `script`.
    assert_stdout(&out, "30 90\r\r\n-echo \r\r\n");
}

/// Runs, as the foreground job of a fresh pseudo-terminal (`pt pty
/// PTY_ARGS`), a shell that prints the terminal's settings (`stty -g`),
/// runs `procession run --pty ARGS` and prints `rc=<its exit code>` and the
/// settings again. Asserts that they are the same and returns the output
/// in between, with the exit code line.
fn restored(pty_args: &[&str], args: &[&str]) -> String {
    let mut job = vec![
        "sh",
        "-c",
        r#"stty -g; "$0" run --pty "$@"; echo "rc=$?"; stty -g"#,
        env!("CARGO_BIN_EXE_procession"),
    ];
    job.extend_from_slice(args);
    let out = pty_job(pty_args, &job);
    out.expect_code(0);
    settings_kept(&out.stdout)
}

/// `stty -g`, the output in between, `stty -g` again (see [`restored`]):
/// asserts that the settings are the same and returns what is in between.
fn settings_kept(stdout: &[u8]) -> String {
    let text = String::from_utf8(stdout.to_vec()).expect("utf-8");
    let (before, rest) = text
        .split_once("\r\n")
        .unwrap_or_else(|| panic!("{text:?}"));
    let rest = rest
        .strip_suffix("\r\n")
        .unwrap_or_else(|| panic!("{text:?}"));
    let (middle, after) = rest.rsplit_once("\r\n").unwrap_or(("", rest));
    assert_eq!(before, after, "terminal settings changed; output {text:?}");
    assert!(before.contains(':'), "not stty -g output: {before:?}");
    middle.to_owned()
}

/// The words of `stty -a` output.
fn stty_words(text: &str) -> Vec<&str> {
    text.split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn pty_interactive_terminal_is_raw_while_the_program_runs() {
    let _g = Guard::new();
    // The program looks at procession's terminal (the one pt made), then at
    // its own.
    let out = pty_job(
        &["--size", "30x90"],
        &[
            "sh",
            "-c",
            r#"stty -g; "$0" run --pty -- sh -c 'stty -a <"$1"; echo =; stty -a' sh "$(tty)"; echo "rc=$?"; stty -g"#,
            env!("CARGO_BIN_EXE_procession"),
        ],
    );
    out.expect_code(0);
    let middle = settings_kept(&out.stdout);
    let (outer, rest) = middle
        .split_once("\r\n=\r\n")
        .unwrap_or_else(|| panic!("{middle:?}"));
    let (inner, rc) = rest
        .rsplit_once("\r\n")
        .unwrap_or_else(|| panic!("{rest:?}"));
    assert_eq!(rc, "rc=0");
    // cfmakeraw's settings on procession's terminal.
    let words = stty_words(outer);
    for flag in [
        "-isig", "-icanon", "-iexten", "-echo", "-opost", "-icrnl", "-ixon", "-brkint", "cs8",
    ] {
        assert!(words.contains(&flag), "{flag} not in {outer:?}");
    }
    // The program's own terminal edits lines and echoes (the user's terminal
    // does neither now), with procession's terminal's size.
    let words = stty_words(inner);
    for flag in ["isig", "icanon", "echo", "opost", "onlcr", "icrnl"] {
        assert!(words.contains(&flag), "{flag} not in {inner:?}");
    }
    assert!(inner.contains("rows 30; columns 90;"), "{inner:?}");
}

#[test]
fn pty_interactive_typing_reaches_a_shell() {
    let _g = Guard::new();
    // The terminal is raw: the Enter key's \r goes through as it is, and
    // the program's terminal echoes the line and turns \r into \n.
    let out = pty(
        &[
            "--send-after-line",
            "$ ",
            "echo hi\\r",
            "--send-after-line",
            "hi\\r\\n$ ",
            "exit 4\\r",
        ],
        &[
            "run", "--pty", "--unset", "ENV", "--env", "PS1=$ ", "--", "sh", "-i",
        ],
    );
    out.expect_code(4);
    assert_stdout(&out, "$ echo hi\r\nhi\r\n$ exit 4\r\n");
}

#[test]
fn pty_interactive_ctrl_c_interrupts_the_program_not_procession() {
    let _g = Guard::new();
    // The program dies of it and procession reports that (130). The shell
    // around procession, in the same foreground group of the outer terminal,
    // would die of a SIGINT of that terminal: it prints rc=130.
    let middle = restored(
        &["--send-after-line", "ready", "\\x03"],
        &["--", "sh", "-c", "echo ready; exec sleep 100"],
    );
    assert_eq!(middle, "ready\r\n^Crc=130");
    // A program that catches it goes on; procession exits with its code.
    let out = pty(
        &["--send-after-line", "ready", "\\x03"],
        &["run", "--pty", "--", &pt_path(), "catch", "1", "2"],
    );
    out.expect_code(0);
    assert_stdout(&out, "ready\r\n^Ccaught 2\r\n");
}

#[test]
fn pty_interactive_settings_are_restored_however_the_run_ends() {
    let _g = Guard::new();
    assert_eq!(restored(&[], &["--", "true"]), "rc=0");
    assert_eq!(restored(&[], &["--", "sh", "-c", "exit 3"]), "rc=3");
    assert_eq!(
        restored(&[], &["--timeout", "300ms", "--", "sleep", "100"]),
        "rc=124"
    );
    // procession itself fails: the program does not exist.
    let middle = restored(&[], &["--", "/nonexistent/program"]);
    assert!(
        middle.starts_with("procession: ") && middle.ends_with("\r\nrc=127"),
        "{middle:?}"
    );
}

#[test]
fn pty_interactive_settings_are_restored_after_a_forwarded_signal() {
    let _g = Guard::new();
    for (sig, code) in [(libc::SIGTERM, 143), (libc::SIGHUP, 129)] {
        let mut cmd = StdCommand::new(pt());
        cmd.stdin(StdStdio::null())
            .args(["pty", "--timeout", "15", "--", "sh", "-c"])
            .arg(r#"stty -g; "$0" run --pty -- sh -c "$1"; echo "rc=$?"; stty -g"#)
            .arg(env!("CARGO_BIN_EXE_procession"))
            .arg("echo pid:$PPID; echo ready; exec sleep 100")
            .stdout(StdStdio::piped())
            .stderr(StdStdio::piped());
        let mut job = cmd.spawn().expect("spawn pt pty");
        let mut stdout = job.stdout.take().expect("stdout");
        let stderr = read_in_background(job.stderr.take().expect("stderr"));
        // Up to `ready`: procession runs the program, which printed
        // procession's pid (its parent).
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("ready\r\n") {
            let n = stdout.read(&mut buf).expect("read pt pty");
            assert!(n > 0, "no ready: {:?}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
        let procession = pid_in(&seen);
        // SAFETY: kill(2) with plain integers. procession is a descendant
        // that cannot have been reaped: its parent, the shell, waits for it
        // and has not printed rc= yet.
        assert_eq!(unsafe { libc::kill(procession, sig) }, 0);
        seen.extend_from_slice(&read_all(stdout));
        let status = wait_for(&mut job);
        let err = stderr
            .recv_timeout(Duration::from_secs(10))
            .expect("stderr");
        assert_eq!(
            own_exit_code(status),
            0,
            "stderr: {:?}",
            String::from_utf8_lossy(&err)
        );
        let middle = settings_kept(&seen);
        assert_eq!(
            middle,
            format!("pid:{procession}\r\nready\r\nrc={code}"),
            "signal {sig}"
        );
    }
}

#[test]
fn pty_interactive_window_size_changes_reach_the_program() {
    let _g = Guard::new();
    // procession's terminal starts at 30x90 and becomes 50x132 once the
    // program is ready: the program gets SIGWINCH and the new size.
    let out = pty(
        &["--size", "30x90", "--resize-after-line", "ready", "50x132"],
        &[
            "run",
            "--pty",
            "--",
            "sh",
            "-c",
            "trap 'stty size; exit 0' WINCH; stty size; echo ready; sleep 100 & wait",
        ],
    );
    out.expect_code(0);
    assert_stdout(&out, "30 90\r\nready\r\n50 132\r\n");
}

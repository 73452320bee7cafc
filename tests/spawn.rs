//! Spawning: what the child receives (argv, environment, working
//! directory), the ways to build a command, exit statuses and waiting.

mod support;
use support::*;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::{Duration, Instant};

use procession::{Command, Ended, Signal, Stdio};

/// `bytes` split at the NUL terminators `pt argv` / `pt env` write.
fn nul_list(items: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in items {
        out.extend_from_slice(i);
        out.push(0);
    }
    out
}

fn pt_bytes() -> Vec<u8> {
    pt().into_os_string().into_vec()
}

/// This process's environment in `pt env` format.
fn env_bytes(vars: &[(OsString, OsString)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in vars {
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

#[test]
fn echo_output_is_exact() {
    let _g = Guard::new();
    let (out, status) = output(Command::new("echo").arg("Hello World!"));
    assert_eq!(out, b"Hello World!\n");
    assert!(status.success());
    assert_eq!(status.code(), Some(0));
    assert_eq!(status.ended(), Ended::OnItsOwn);
}

#[test]
fn argv_bytes_are_passed_exactly() {
    let _g = Guard::new();
    let non_utf8 = OsStr::from_bytes(b"\xff\xfe-\x80");
    let (out, status) = output(pt_cmd(["argv"]).args([
        OsStr::new("a b  c"),
        OsStr::new(""),
        OsStr::new("üñí €😀"),
        non_utf8,
        OsStr::new("'\"\\$HOME * ~"),
        OsStr::new("\ttab\nnewline"),
    ]));
    assert!(status.success());
    let pt = pt_bytes();
    let expected = nul_list(&[
        &pt,
        b"argv",
        b"a b  c",
        b"",
        "üñí €😀".as_bytes(),
        b"\xff\xfe-\x80",
        b"'\"\\$HOME * ~",
        b"\ttab\nnewline",
    ]);
    assert_eq!(out, expected);
}

#[test]
fn argv0_defaults_to_the_program_as_given() {
    let _g = Guard::new();
    let (out, _) = output(&mut pt_cmd(["argv", "x"]));
    assert_eq!(out, nul_list(&[&pt_bytes(), b"argv", b"x"]));
}

#[test]
fn arg0_replaces_argv0_only() {
    let _g = Guard::new();
    let (out, status) = output(pt_cmd(["argv", "y"]).arg0("x"));
    assert!(status.success());
    assert_eq!(out, nul_list(&[b"x", b"argv", b"y"]));
}

#[test]
fn program_name_is_looked_up_in_the_childs_path() {
    let _g = Guard::new();
    let dir = pt().parent().unwrap().to_owned();
    let mut path = OsString::from("/nonexistent-procession-dir:");
    path.push(&dir);
    let (out, status) = output(Command::new("pt").env("PATH", &path).arg("argv"));
    assert!(status.success());
    // argv[0] is the name as given, not the resolved path.
    assert_eq!(out, nul_list(&[b"pt", b"argv"]));
}

#[test]
fn relative_program_path_is_resolved_from_the_working_directory() {
    let _g = Guard::new();
    let dir = pt().parent().unwrap().canonicalize().unwrap();
    let (out, status) = output(Command::new("./pt").arg("cwd").current_dir(&dir));
    assert!(status.success());
    let mut expected = dir.into_os_string().into_vec();
    expected.push(b'\n');
    assert_eq!(out, expected);
}

#[test]
fn an_unchanged_environment_is_inherited_exactly() {
    let _g = Guard::new();
    // No env setting at all: the child gets this process's environment
    // as it is (passed to execve without a copy).
    let vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    assert!(!vars.is_empty(), "the test needs an inherited environment");
    let (out, status) = output(&mut pt_cmd(["env"]));
    assert!(status.success());
    assert_eq!(out, env_bytes(&vars));
}

#[test]
fn env_is_inherited_with_overrides_in_place_and_new_names_appended() {
    let _g = Guard::new();
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    assert!(vars.len() >= 2, "the test needs an inherited environment");
    // Override the first inherited variable, remove the second, add two.
    let first = vars[0].0.clone();
    let second = vars[1].0.clone();
    let (out, status) = output(
        pt_cmd(["env"])
            .env(&first, "overridden")
            .env_remove(&second)
            .env("PROCESSION_NEW_B", "b")
            .env("PROCESSION_NEW_A", OsStr::from_bytes(b"\xff=x y"))
            .env_remove("PROCESSION_NEVER_SET"),
    );
    assert!(status.success());
    vars[0].1 = "overridden".into();
    vars.remove(1);
    vars.push(("PROCESSION_NEW_B".into(), "b".into()));
    vars.push((
        "PROCESSION_NEW_A".into(),
        OsStr::from_bytes(b"\xff=x y").to_owned(),
    ));
    assert_eq!(out, env_bytes(&vars));
}

#[test]
fn env_clear_then_env_gives_exactly_that_variable() {
    let _g = Guard::new();
    let (out, status) = output(pt_cmd(["env"]).env_clear().env("A", "1"));
    assert!(status.success());
    assert_eq!(out, b"A=1\0");
}

#[test]
fn env_clear_keeps_variables_set_before_it_and_drops_removals() {
    let _g = Guard::new();
    let (out, _) = output(
        pt_cmd(["env"])
            .env("B", "2")
            .env_remove("C")
            .env_clear()
            .env("A", "ü"),
    );
    assert_eq!(out, "B=2\0A=ü\0".as_bytes());
}

#[test]
fn env_changes_apply_in_order() {
    let _g = Guard::new();
    let (out, _) = output(
        pt_cmd(["env"])
            .env_clear()
            .env("X", "1")
            .env("Y", "2")
            .env("X", "3")
            .env_remove("Y")
            .env("Z", ""),
    );
    assert_eq!(out, b"X=3\0Z=\0");
    let (out, _) = output(pt_cmd(["env"]).env_clear());
    assert_eq!(out, b"");
}

#[test]
fn env_remove_removes_an_inherited_variable() {
    let _g = Guard::new();
    let vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let name = vars[0].0.clone();
    let (out, _) = output(pt_cmd(["env"]).env_remove(&name));
    let expected: Vec<_> = vars.iter().filter(|(k, _)| *k != name).cloned().collect();
    assert_eq!(out, env_bytes(&expected));
}

#[test]
fn current_dir_is_exact_even_with_a_non_utf8_name() {
    let _g = Guard::new();
    let tmp = TempDir::new("cwd");
    let dir = tmp.join(OsStr::from_bytes(b"d \xff\xfe \xc3\xbc"));
    std::fs::create_dir(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    let (out, status) = output(pt_cmd(["cwd"]).current_dir(&dir));
    assert!(status.success());
    let mut expected = dir.into_os_string().into_vec();
    expected.push(b'\n');
    assert_eq!(out, expected);
}

#[test]
fn current_dir_is_inherited_by_default() {
    let _g = Guard::new();
    let (out, _) = output(&mut pt_cmd(["cwd"]));
    let mut expected = std::env::current_dir().unwrap().into_os_string().into_vec();
    expected.push(b'\n');
    assert_eq!(out, expected);
}

#[test]
fn shell_runs_the_line_through_bin_sh_whatever_shell_says() {
    let _g = Guard::new();
    let line = "echo $((6 * 7)) | tr 4 x; printf '%s\\n' \"a  b\"; exit 4";
    // SHELL names something that is not a POSIX shell: it must not matter.
    // (Read by Command::shell at construction; set here for the whole test
    // process, which runs this test alone under nextest.)
    // SAFETY: no other thread of this test process reads the environment now.
    unsafe { std::env::set_var("SHELL", pt()) };
    let mut cmd = Command::shell(line);
    assert_eq!(cmd.get_program(), "/bin/sh");
    assert_eq!(
        cmd.get_args().collect::<Vec<_>>(),
        [OsStr::new("-c"), OsStr::new(line)]
    );
    let (out, status) = output(&mut cmd);
    assert_eq!(out, b"x2\na  b\n");
    assert_eq!(status.code(), Some(4));
}

#[test]
fn parse_splits_with_quotes_and_expands_nothing() {
    let _g = Guard::new();
    let pt = pt();
    let pt_str = pt.to_str().expect("UTF-8 target path");
    assert!(!pt_str.contains('\''));
    let line = format!(r#"'{pt_str}' argv 'a b' "c  d" e\ f $HOME '*' ~ "it's""#);
    let mut cmd = Command::parse(&line).unwrap();
    assert_eq!(cmd.get_program(), pt.as_os_str());
    let (out, status) = output(&mut cmd);
    assert!(status.success());
    assert_eq!(
        out,
        nul_list(&[
            pt_str.as_bytes(),
            b"argv",
            b"a b",
            b"c  d",
            b"e f",
            b"$HOME",
            b"*",
            b"~",
            b"it's"
        ])
    );
}

#[test]
fn parse_rejects_empty_lines_and_unterminated_quotes() {
    for line in ["", "   ", "echo 'unterminated", "echo \"open"] {
        let err = Command::parse(line).unwrap_err();
        assert_eq!(err.kind(), procession::ErrorKind::InvalidInput, "{line:?}");
        assert_eq!(err.step(), procession::Step::Prepare, "{line:?}");
        assert_eq!(err.program(), line);
    }
}

#[test]
fn from_std_command_carries_program_args_env_and_cwd() {
    let _g = Guard::new();

    let mut std_cmd = std::process::Command::new(pt());
    std_cmd.args(["argv", "x y"]);
    let (out, status) = output(&mut Command::from_std_lossy(&std_cmd));
    assert!(status.success());
    assert_eq!(out, nul_list(&[&pt_bytes(), b"argv", b"x y"]));

    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let removed = vars.remove(0).0;
    let mut std_cmd = std::process::Command::new(pt());
    std_cmd
        .arg("env")
        .env("PROCESSION_FROM_STD", "1")
        .env_remove(&removed);
    let mut cmd = Command::from_std_lossy(&std_cmd);
    let (out, _) = output(&mut cmd);
    vars.push(("PROCESSION_FROM_STD".into(), "1".into()));
    assert_eq!(out, env_bytes(&vars));

    let mut std_cmd = std::process::Command::new(pt());
    std_cmd.arg("cwd").current_dir("/");
    let cmd = Command::from_std_lossy(&std_cmd);
    assert_eq!(cmd.get_current_dir(), Some(std::path::Path::new("/")));
    let (out, _) = output(&mut cmd.clone());
    assert_eq!(out, b"/\n");
}

#[test]
fn exit_code_is_reported() {
    let _g = Guard::new();
    let status = pt_cmd(["exit", "3"]).status().unwrap();
    assert_eq!(status.code(), Some(3));
    assert_eq!(status.signal(), None);
    assert!(!status.success());
    assert!(!status.core_dumped());
    assert_eq!(status.shell_code(), 3);
    assert_eq!(status.ended(), Ended::OnItsOwn);
    assert!(!status.timed_out());
    assert_eq!(status.to_string(), "exit code 3");
}

#[test]
fn a_core_dump_is_reported_as_std_sees_it() {
    let _g = Guard::new();
    // The same crash run twice in a scratch directory (the core file lands
    // there): once through std, whose view is the reference, once through
    // procession. Whether a core is written depends on the system
    // (core_pattern); the two must agree, and here (core_pattern "core")
    // both say it was.
    let dir = TempDir::new("core");
    let line = "ulimit -c unlimited; exec kill -SEGV $$";
    let std_status = std::process::Command::new("sh")
        .args(["-c", line])
        .current_dir(dir.path())
        .status()
        .unwrap();
    let dumped = std::os::unix::process::ExitStatusExt::core_dumped(&std_status);
    let status = Command::shell(line)
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert_eq!(status.signal(), Some(Signal::SEGV));
    assert_eq!(status.core_dumped(), dumped);
    if std::fs::read_to_string("/proc/sys/kernel/core_pattern").is_ok_and(|p| p.trim() == "core") {
        assert!(status.core_dumped());
        assert!(status.to_string().contains("core dumped"), "{status}");
    }
}

#[test]
fn death_by_signal_is_reported() {
    let _g = Guard::new();
    let status = pt_cmd(["kill-self", "9"]).status().unwrap();
    assert_eq!(status.signal(), Some(Signal::KILL));
    assert_eq!(status.code(), None);
    assert!(!status.success());
    assert!(!status.core_dumped());
    assert_eq!(status.shell_code(), 137);
    assert_eq!(status.ended(), Ended::OnItsOwn);
    assert_eq!(status.to_string(), "killed by SIGKILL");
}

#[test]
fn death_by_a_real_time_signal_is_reported() {
    let _g = Guard::new();
    let rt = libc::SIGRTMIN() + 4;
    let status = pt_cmd(["kill-self", &rt.to_string()]).status().unwrap();
    let signal = status.signal().expect("killed by a signal");
    assert_eq!(signal.as_raw(), rt);
    assert_eq!(signal.name(), None);
    assert_eq!(status.shell_code(), 128 + rt);
    assert_eq!(status.to_string(), format!("killed by signal {rt}"));
}

#[test]
fn success_exit_codes_decide_success() {
    let _g = Guard::new();
    let mut cmd = pt_cmd(["exit", "10"]);
    cmd.success_exit_codes([0, 10]);
    let status = cmd.status().unwrap();
    assert_eq!(status.code(), Some(10));
    assert!(status.success());
    for (code, success) in [("0", true), ("1", false), ("11", false)] {
        let status = pt_cmd(["exit", code])
            .success_exit_codes([0, 10])
            .status()
            .unwrap();
        assert_eq!(status.success(), success, "exit {code}");
    }
    // Only the listed codes: 0 no longer counts when absent.
    let status = pt_cmd(["exit", "0"])
        .success_exit_codes([10])
        .status()
        .unwrap();
    assert!(!status.success());
    // A signal is never a success.
    let status = pt_cmd(["kill-self", "15"])
        .success_exit_codes([0, 143])
        .status()
        .unwrap();
    assert!(!status.success());
}

#[test]
fn wait_timeout_returns_none_while_running_then_the_status() {
    let _g = Guard::new();
    // `pt echo` runs until its stdin is closed; wait_timeout leaves it open.
    let mut child = pt_cmd(["echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    assert_eq!(
        child.wait_timeout(Duration::from_millis(100)).unwrap(),
        None
    );
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert!(child.stdin.is_some(), "wait_timeout must not close stdin");
    child.close_stdin();
    let status = child
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("exited after EOF");
    assert_eq!(status.code(), Some(0));
    assert_eq!(status.ended(), Ended::OnItsOwn);
}

#[test]
fn try_wait_returns_none_while_running_then_the_same_status_as_wait() {
    let _g = Guard::new();
    let mut child = pt_cmd(["echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(child.try_wait().unwrap(), None);
    child.close_stdin();
    // EOF on stdout: the child is exiting; no event tells when it is done.
    let rest = read_to_end_bytes(child.stdout.as_mut().unwrap());
    assert!(rest.is_empty());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "try_wait never saw the exit");
        std::thread::sleep(Duration::from_millis(2));
    };
    assert_eq!(status.code(), Some(0));
    assert_eq!(child.try_wait().unwrap(), Some(status));
    assert_eq!(child.wait().unwrap(), status);
}

#[test]
fn wait_closes_stdin_so_a_reader_can_finish() {
    let _g = Guard::new();
    // The timeout only keeps a regression from hanging the suite.
    let mut child = pt_cmd(["stdin-state"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .timeout(Duration::from_secs(10))
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.ended(), Ended::OnItsOwn);
    assert_eq!(status.code(), Some(0));
    let out = read_to_end_string(child.stdout.as_mut().unwrap());
    assert_eq!(out, "open 0\n");
}

#[test]
fn many_sequential_spawns_leave_nothing_behind() {
    let _g = Guard::new();
    let cmd = pt_cmd(["exit", "0"]);
    for i in 0..200 {
        let mut child = cmd.spawn().unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "spawn {i}: {status}");
    }
    assert_eq!(procession::__test_support::unreaped_children(), 0);
}

#[test]
fn concurrent_spawns_from_several_threads() {
    let _g = Guard::new();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..25 {
                    let tag = format!("{t}-{i}");
                    let (out, status) = output(&mut pt_cmd(["print", &tag]));
                    assert!(status.success());
                    assert_eq!(out, format!("{tag}\n").into_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn child_handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<procession::Child>();
    check::<procession::Signaller>();
    check::<procession::Command>();
    check::<procession::Error>();
    let _g = Guard::new();
    // A child spawned on one thread can be waited for on another.
    let child = pt_cmd(["exit", "7"]).spawn().unwrap();
    let status = std::thread::spawn(move || {
        let mut child = child;
        child.wait().unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(status.code(), Some(7));
}

#[test]
fn parse_follows_the_documented_quoting_rules() {
    let cases: &[(&str, &[&str])] = &[
        // Blanks (spaces, tabs, newlines) separate words; runs of them count once.
        ("a  b\tc\nd", &["a", "b", "c", "d"]),
        // Empty quotes are an empty argument.
        ("a '' \"\" b", &["a", "", "", "b"]),
        // Single quotes keep everything, backslashes included.
        (r"a 'x\ny \$'", &["a", r"x\ny \$"]),
        // In double quotes a backslash escapes only $ ` " \ and newline.
        (r#"a "\$ \` \" \\ \n""#, &["a", r#"$ ` " \ \n"#]),
        // Outside quotes a backslash keeps the next character; before a
        // newline it joins the lines.
        ("a b\\\nc \\'d", &["a", "bc", "'d"]),
        // Quoted parts join with their neighbours into one word.
        (r#"a x'y z'"w"v"#, &["a", "xy zwv"]),
        // A # at the start of a word begins a comment; inside one it does not.
        ("a b#c # d e", &["a", "b#c"]),
        // Nothing is expanded.
        (
            "a $HOME ~ * $(x) `y`",
            &["a", "$HOME", "~", "*", "$(x)", "`y`"],
        ),
        // Any UTF-8.
        ("a 'ü ß' 日本", &["a", "ü ß", "日本"]),
    ];
    for (line, want) in cases {
        let cmd = Command::parse(line).unwrap();
        let mut got = vec![cmd.get_program().to_str().unwrap().to_owned()];
        got.extend(cmd.get_args().map(|a| a.to_str().unwrap().to_owned()));
        assert_eq!(&got, want, "{line:?}");
    }
    // arg0 (Port's {arg0, ...}) is kept apart from the program.
    let _g = Guard::new();
    let out = Command::parse("sh -c 'echo $0'")
        .unwrap()
        .arg0("renamed")
        .run()
        .unwrap();
    assert_eq!(out.stdout, b"renamed\n");
}

#[test]
fn a_directory_on_path_is_passed_over_as_execvp_does() {
    let _g = Guard::new();
    // dir_a/ptprog is a directory, dir_b/ptprog the program: the search goes
    // on past the directory to the program, as execvp's does.
    let tmp = TempDir::new("path-dir");
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    std::fs::create_dir_all(a.join("ptprog")).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::os::unix::fs::symlink(pt(), b.join("ptprog")).unwrap();
    let path = format!("{}:{}", a.display(), b.display());
    let out = Command::new("ptprog")
        .args(["print", "found"])
        .env("PATH", &path)
        .run()
        .unwrap();
    assert_eq!(out.stdout, b"found\n");
    // Only a directory of that name: not found, not "permission denied".
    let err = Command::new("ptprog")
        .env("PATH", a.as_os_str())
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), procession::ErrorKind::NotFound);
}

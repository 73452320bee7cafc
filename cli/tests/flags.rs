//! `procession run`'s flags for who the program runs as and under which
//! limits, `--events json`, `--summary`, the generated completions and man
//! page, and the errors of bad or conflicting flags: the built binary run
//! as a real process, each flag checked in the program's own /proc entry
//! (or by what it reports), with the leak Guard of every test.

#[path = "../../tests/support/mod.rs"]
mod support;
use support::*;

mod common;
use common::*;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio as StdStdio;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

/// The value fields of a `Name:\t...` line of /proc/self/status as printed.
fn status_field(out: &str, name: &str) -> Vec<String> {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name}: line in {out:?}"));
    line[name.len() + 1..]
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn user_group_and_groups() {
    let _g = Guard::new();
    if !is_root() {
        // Without root the spawn fails at setuid: 125, nothing ran.
        let out = run(&["run", "--user", "nobody", "--", "true"]);
        out.expect_code(125);
        assert!(out.stderr_str().contains("user"), "{}", out.stderr_str());
        return;
    }
    let out = run(&[
        "run",
        "--user",
        "nobody",
        "--group",
        "0",
        "--groups",
        "0,65534",
        "--",
        "cat",
        "/proc/self/status",
    ]);
    out.expect_code(0);
    let s = out.stdout_str();
    assert_eq!(status_field(&s, "Uid"), ["65534"; 4]);
    assert_eq!(status_field(&s, "Gid"), ["0"; 4]);
    assert_eq!(status_field(&s, "Groups"), ["0", "65534"]);
    // By uid, and with no supplementary group at all.
    let out = run(&[
        "run",
        "--user",
        "65534",
        "--group",
        "65534",
        "--groups",
        "",
        "--",
        "cat",
        "/proc/self/status",
    ]);
    out.expect_code(0);
    let s = out.stdout_str();
    assert_eq!(status_field(&s, "Uid"), ["65534"; 4]);
    assert_eq!(status_field(&s, "Gid"), ["65534"; 4]);
    assert!(status_field(&s, "Groups").is_empty());
    // An unknown user: 125 with a message naming it, nothing ran.
    let out = run(&["run", "--user", "no-such-user-x", "--", "true"]);
    out.expect_usage_error("no-such-user-x");
}

/// Field 19 of /proc/self/stat, the nice value.
fn nice_of(stat: &str) -> i32 {
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    after.split(' ').nth(16).expect("field 19").parse().unwrap()
}

#[test]
fn nice_value() {
    let _g = Guard::new();
    let out = run(&["run", "--nice", "7", "--", "cat", "/proc/self/stat"]);
    out.expect_code(0);
    assert_eq!(nice_of(&out.stdout_str()), 7);
    if is_root() {
        // Negative values are taken as numbers, not flags.
        let out = run(&["run", "--nice", "-3", "--", "cat", "/proc/self/stat"]);
        out.expect_code(0);
        assert_eq!(nice_of(&out.stdout_str()), -3);
    }
    run(&["run", "--nice", "20", "--", "true"]).expect_usage_error("--nice");
}

/// The soft and hard values of a row of /proc/self/limits.
fn limit_row(limits: &str, row: &str) -> (String, String) {
    let line = limits
        .lines()
        .find(|l| l.starts_with(row))
        .unwrap_or_else(|| panic!("no {row} in {limits}"));
    let mut f = line[row.len()..].split_whitespace();
    (f.next().unwrap().into(), f.next().unwrap().into())
}

#[test]
fn rlimits() {
    let _g = Guard::new();
    let out = run(&[
        "run",
        "--rlimit",
        "nofile=100:200",
        "--rlimit",
        "CORE=0",
        "--rlimit",
        "cpu=50:unlimited",
        "--rlimit",
        "fsize=4096:",
        "--",
        "cat",
        "/proc/self/limits",
    ]);
    out.expect_code(0);
    let l = out.stdout_str();
    assert_eq!(
        limit_row(&l, "Max open files"),
        ("100".into(), "200".into())
    );
    assert_eq!(
        limit_row(&l, "Max core file size"),
        ("0".into(), "0".into())
    );
    assert_eq!(
        limit_row(&l, "Max cpu time"),
        ("50".into(), "unlimited".into())
    );
    // SOFT: keeps procession's own hard limit (unlimited here).
    let own = fs::read_to_string("/proc/self/limits").unwrap();
    assert_eq!(
        limit_row(&l, "Max file size"),
        ("4096".into(), limit_row(&own, "Max file size").1)
    );
    // The limit holds: writing past fsize kills the writer with SIGXFSZ.
    let dir = tempdir();
    let file = dir.join("big");
    let out = run(&[
        "run",
        "--rlimit",
        "fsize=1000",
        "--stdout",
        file.to_str().unwrap(),
        "--",
        "head",
        "-c",
        "5000",
        "/dev/zero",
    ]);
    out.expect_code(128 + libc::SIGXFSZ);
    assert_eq!(fs::metadata(&file).unwrap().len(), 1000);
    let _ = fs::remove_dir_all(dir);
    for (bad, what) in [
        ("bogus=1", "unknown limit"),
        ("nofile", "NAME=SOFT[:HARD]"),
        ("nofile=5:3", "above its hard limit"),
        ("nofile=x", "invalid value"),
        ("nofile=:", "no value"),
    ] {
        run(&["run", "--rlimit", bad, "--", "true"]).expect_usage_error(what);
    }
}

#[test]
fn no_new_privs_and_umask() {
    let _g = Guard::new();
    let out = run(&[
        "run",
        "--no-new-privs",
        "--umask",
        "027",
        "--",
        "cat",
        "/proc/self/status",
    ]);
    out.expect_code(0);
    let s = out.stdout_str();
    assert_eq!(status_field(&s, "NoNewPrivs"), ["1"]);
    assert_eq!(status_field(&s, "Umask"), ["0027"]);
    // Without the flags: procession's own (no_new_privs is off here).
    let out = run(&["run", "--", "cat", "/proc/self/status"]);
    assert_eq!(status_field(&out.stdout_str(), "NoNewPrivs"), ["0"]);
    run(&["run", "--umask", "1777", "--", "true"]).expect_usage_error("umask");
    run(&["run", "--umask", "9", "--", "true"]).expect_usage_error("umask");
}

#[test]
fn cgroup_holds_what_left_the_group() {
    let _g = Guard::new();
    // A daemon that leaves the process group (setsid) and would outlive
    // procession without the cgroup.
    let out = run(&[
        "run",
        "--cgroup",
        "auto",
        "--",
        "sh",
        "-c",
        "cat /proc/self/cgroup; setsid sleep 100 & echo $!",
    ]);
    if out.code == 125 && out.stderr_str().contains("cgroup") {
        eprintln!("no usable cgroup v2 here: {}", out.stderr_str());
        return;
    }
    out.expect_code(0);
    let s = out.stdout_str();
    assert!(s.contains("0::/") && s.contains("/procession-"), "{s}");
    let daemon: i32 = s.lines().last().unwrap().trim().parse().unwrap();
    assert!(wait_dead(daemon, Duration::from_secs(5)), "daemon alive");
    // A parent outside any cgroup v2 hierarchy: 125, nothing ran.
    run(&["run", "--cgroup", "/proc", "--", "true"]).expect_usage_error("cgroup");
}

/// Starts `procession run --on-owner-death MODE -- sh` that prints its pid,
/// then waits for a line on its stdin; SIGKILLs procession once the pid is
/// read. Returns the program's pid, its stdin and its stdout.
fn owner_killed(
    mode: &str,
) -> (
    i32,
    std::process::ChildStdin,
    BufReader<std::process::ChildStdout>,
) {
    let mut child = procession()
        .args([
            "run",
            "--on-owner-death",
            mode,
            "--",
            "sh",
            "-c",
            "echo $$; read x; echo survived",
        ])
        .stdin(StdStdio::piped())
        .stdout(StdStdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let pid: i32 = line.trim().parse().unwrap();
    child.kill().unwrap();
    assert_eq!(code_of(child.wait().unwrap()), 137);
    (pid, stdin, stdout)
}

#[test]
fn on_owner_death_kill_and_keep() {
    let _g = Guard::new();
    let (pid, _stdin, _out) = owner_killed("kill");
    assert!(
        wait_dead(pid, Duration::from_secs(5)),
        "program outlived procession"
    );
    reap_orphan(pid);
    let (pid, mut stdin, mut out) = owner_killed("keep");
    stdin.write_all(b"go\n").unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "survived\n");
    assert!(wait_dead(pid, Duration::from_secs(5)));
    reap_orphan(pid);
}

/// Reaps `pid`, a dead program re-parented to the test (a subreaper) when
/// procession was killed.
fn reap_orphan(pid: i32) {
    if children().iter().any(|p| p.pid == pid) {
        // SAFETY: waitpid on a dead child of ours, without a status pointer.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    }
}

/// The events of a `--events json` run, parsed (each line must be one
/// JSON object).
fn events(out: &Out) -> Vec<Value> {
    out.stdout_str()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// The bytes of the `stream` events, decoded from `data` or `data_b64`.
fn bytes_of(events: &[Value], stream: &str) -> Vec<u8> {
    let mut all = Vec::new();
    for e in events.iter().filter(|e| e["event"] == stream) {
        match (&e["data"], &e["data_b64"]) {
            (Value::String(s), Value::Null) => all.extend_from_slice(s.as_bytes()),
            (Value::Null, Value::String(b)) => {
                let b = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
                assert!(std::str::from_utf8(&b).is_err(), "valid UTF-8 as base64");
                all.extend(b);
            }
            _ => panic!("bad event {e}"),
        }
    }
    all
}

#[test]
fn events_round_trip_every_byte() {
    let _g = Guard::new();
    let dir = tempdir();
    // Every byte value, many times: not UTF-8, and more than one chunk.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let file = dir.join("bytes");
    fs::write(&file, &data).unwrap();
    let f = file.to_str().unwrap();
    let script = format!("cat {f}; cat {f} >&2; printf 'h\\303\\251llo\\n'; exit 3");
    let out = run(&["run", "--events", "json", "--", "sh", "-c", &script]);
    out.expect_code(3);
    let ev = events(&out);
    assert_eq!(ev[0]["event"], "start");
    assert!(ev[0]["pid"].as_u64().unwrap() > 0);
    let mut want = data.clone();
    want.extend_from_slice("héllo\n".as_bytes());
    assert_eq!(bytes_of(&ev, "stdout"), want);
    assert_eq!(bytes_of(&ev, "stderr"), data);
    let exit = ev.last().unwrap();
    assert_eq!(exit["event"], "exit");
    assert_eq!(exit["code"], 3);
    assert_eq!(exit["signal"], Value::Null);
    assert_eq!(exit["ended"], "on_its_own");
    assert_eq!(exit["success"], false);
    assert_eq!(exit["exit_code"], 3);
    assert!(exit["usage"]["max_rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(ev.iter().filter(|e| e["event"] == "exit").count(), 1);
    // Valid UTF-8 comes as text.
    let out = run(&[
        "run",
        "--events",
        "json",
        "--",
        "printf",
        "h\\303\\251llo\\n",
    ]);
    out.expect_code(0);
    assert_eq!(
        events(&out)[1],
        serde_json::json!({"event": "stdout", "data": "héllo\n"})
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn events_exit_codes_follow_the_conventions() {
    let _g = Guard::new();
    let pt = pt().to_str().unwrap().to_owned();
    // Killed by a signal: 128+N, and the signal in the event.
    let out = run(&["run", "--events", "json", "--", &pt, "kill-self", "9"]);
    out.expect_code(137);
    let exit = events(&out).pop().unwrap();
    assert_eq!(
        (&exit["code"], &exit["signal"], &exit["signal_name"]),
        (&Value::Null, &Value::from(9), &Value::from("SIGKILL"))
    );
    assert_eq!(exit["exit_code"], 137);
    // The timeout: 124, ended timed_out.
    let out = run(&[
        "run",
        "--events",
        "json",
        "--timeout",
        "300ms",
        "--",
        &pt,
        "sleep",
        "30",
    ]);
    out.expect_code(124);
    let exit = events(&out).pop().unwrap();
    assert_eq!(
        (&exit["ended"], &exit["exit_code"]),
        (&"timed_out".into(), &124.into())
    );
    assert_eq!(exit["signal"], 15);
    // Not found and not executable: one error event, 127 and 126.
    let out = run(&["run", "--events", "json", "--", "/no/such/program"]);
    out.expect_code(127);
    let ev = events(&out);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (&ev[0]["event"], &ev[0]["exit_code"]),
        (&"error".into(), &127.into())
    );
    assert!(
        ev[0]["message"]
            .as_str()
            .unwrap()
            .contains("/no/such/program")
    );
    let out = run(&["run", "--events", "json", "--", "/etc/passwd"]);
    out.expect_code(126);
    assert_eq!(events(&out)[0]["exit_code"], 126);
}

#[test]
fn events_framing() {
    let _g = Guard::new();
    let out = run(&[
        "run",
        "--events",
        "json",
        "--framing",
        "lines:4",
        "--",
        "sh",
        "-c",
        "printf 'ab\\ncdefgh\\nlast'",
    ]);
    out.expect_code(0);
    let lines: Vec<(String, bool)> = events(&out)
        .iter()
        .filter(|e| e["event"] == "stdout")
        .map(|e| {
            (
                e["data"].as_str().unwrap().into(),
                e["complete"].as_bool().unwrap(),
            )
        })
        .collect();
    let want = [("ab", true), ("cdef", false), ("gh", true), ("last", false)];
    assert_eq!(lines, want.map(|(s, c)| (s.to_string(), c)));
    // Packets with a 2-byte length: one event per payload, any bytes.
    let out = run(&[
        "run",
        "--events",
        "json",
        "--framing",
        "packet:2",
        "--",
        "sh",
        "-c",
        "printf '\\000\\003abc\\000\\002\\377\\000'",
    ]);
    out.expect_code(0);
    let ev = events(&out);
    let packets: Vec<&Value> = ev.iter().filter(|e| e["event"] == "stdout").collect();
    assert_eq!(packets.len(), 2);
    assert_eq!(packets[0]["data"], "abc");
    assert_eq!(packets[1]["data_b64"], "/wA=");
    // A truncated packet: an error event for that stream, the exit last.
    let out = run(&[
        "run",
        "--events",
        "json",
        "--framing",
        "packet:4",
        "--",
        "sh",
        "-c",
        "printf '\\000\\000\\000\\011abc'",
    ]);
    out.expect_code(0);
    let ev = events(&out);
    assert!(
        ev.iter()
            .any(|e| e["event"] == "error" && e["stream"] == "stdout")
    );
    assert_eq!(ev.last().unwrap()["event"], "exit");
}

/// The `name: value` lines of a summary on stderr.
fn summary(out: &Out) -> std::collections::HashMap<String, String> {
    let err = out.stderr_str();
    let start = err.find("procession: summary\n").expect("a summary");
    err[start..]
        .lines()
        .skip(1)
        .filter_map(|l| l.trim().split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn seconds(v: &str) -> f64 {
    v.strip_suffix(" s").unwrap().parse().unwrap()
}

#[test]
fn summary_counts_time_memory_and_bytes() {
    let _g = Guard::new();
    let pt = pt().to_str().unwrap().to_owned();
    let script =
        format!("wc -c >&2; head -c 100000 /dev/zero; {pt} spin 300; {pt} touch-mib 40 >/dev/null");
    let out = run_piped(
        procession().args(["run", "--summary", "--", "sh", "-c", &script]),
        Some(&[7u8; 1234]),
        code_of,
    );
    out.expect_code(0);
    assert_eq!(out.stdout.len(), 100_000, "stdout passes through");
    assert!(out.stderr_str().starts_with("1234\n"));
    let s = summary(&out);
    assert_eq!(s["exit"], "exit code 0");
    assert_eq!(s["stdin bytes"], "1234");
    assert_eq!(s["stdout bytes"], "100000");
    assert_eq!(s["stderr bytes"], "5");
    let (wall, cpu) = (seconds(&s["wall time"]), seconds(&s["cpu time"]));
    assert!(cpu >= 0.25, "cpu {cpu}");
    assert!(wall >= cpu * 0.9, "wall {wall} cpu {cpu}");
    let user = seconds(&s["user time"]);
    let system = seconds(&s["system time"]);
    assert!((user + system - cpu).abs() < 0.0015, "{s:?}");
    let peak: u64 = s["peak memory"]
        .strip_suffix(" KiB")
        .unwrap()
        .parse()
        .unwrap();
    assert!(peak >= 40 * 1024, "peak {peak} KiB");
    // Redirected streams are not counted, and say why.
    let out = run(&["run", "--summary", "--stdout", "null", "--", "true"]);
    out.expect_code(0);
    let s = summary(&out);
    assert_eq!(s["stdout bytes"], "not counted (redirected)");
    assert_eq!(s["stdin bytes"], "0");
    // A signal, after a timeout.
    let out = run(&[
        "run",
        "--summary",
        "--timeout",
        "200ms",
        "--",
        &pt,
        "sleep",
        "30",
    ]);
    out.expect_code(124);
    assert_eq!(
        summary(&out)["exit"],
        "timed out, then killed by signal 15 (SIGTERM)"
    );
}

#[test]
fn completions_and_man_pages() {
    let _g = Guard::new();
    let out = run(&["completions", "bash"]);
    out.expect_code(0);
    assert!(out.stdout_str().contains("--rlimit") && out.stdout_str().contains("--events"));
    let dir = tempdir();
    let script = dir.join("procession.bash");
    fs::write(&script, &out.stdout).unwrap();
    let ok = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(ok.success(), "bash -n on the completion script");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = run(&["completions", shell]);
        out.expect_code(0);
        assert!(out.stdout_str().contains("no-new-privs"), "{shell}");
    }
    run(&["completions", "tcsh"]).expect_usage_error("tcsh");
    let out = run(&["man"]);
    out.expect_code(0);
    let page = out.stdout_str();
    assert!(page.contains(".TH procession 1"), "{page}");
    let out = run(&["man", "--out", dir.to_str().unwrap()]);
    out.expect_code(0);
    let run_page = fs::read_to_string(dir.join("procession-run.1")).unwrap();
    assert!(run_page.contains(".TH procession-run 1"));
    for flag in [
        "rlimit",
        "no\\-new\\-privs",
        "events",
        "summary",
        "subreaper",
    ] {
        assert!(run_page.contains(flag), "{flag} not in procession-run.1");
    }
    assert!(dir.join("procession.1").exists());
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn bad_and_conflicting_flags_exit_125() {
    let _g = Guard::new();
    for (args, what) in [
        (&["--events", "json", "--pty"][..], "cannot be used with"),
        (&["--events", "xml"], "xml"),
        (&["--framing", "lines"], "--events"),
        (
            &["--events", "json", "--framing", "packet:3"],
            "invalid framing",
        ),
        (
            &["--events", "json", "--framing", "lines:0"],
            "invalid framing",
        ),
        (&["--summary", "--pty"], "cannot be used with"),
        (&["--pty-mode", "echo=0"], "--pty"),
        (
            &["--pty", "--pty-mode", "nosuch=1"],
            "unknown terminal mode",
        ),
        (&["--pty", "--pty-mode", "echo"], "NAME=VALUE"),
        (&["--on-owner-death", "maybe"], "maybe"),
        (&["--cgroup", "/nonexistent/dir"], "cgroup"),
    ] {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--", "true"]);
        run(&all).expect_usage_error(what);
    }
}

#[test]
fn pty_mode_sets_a_terminal_mode() {
    let _g = Guard::new();
    // onlcr off: the terminal no longer turns \n into \r\n.
    for (extra, want) in [
        (&[][..], &b"a\r\nb\r\n"[..]),
        (&["--pty-mode", "onlcr=0"], b"a\nb\n"),
    ] {
        let mut args = vec!["run", "--pty"];
        args.extend_from_slice(extra);
        args.extend(["--", "cat"]);
        let out = run_piped(procession().args(&args), Some(b"a\nb\n"), code_of);
        assert_eq!(out.code, 0, "{}", out.stderr_str());
        assert_eq!(out.stdout, want, "{extra:?}");
    }
}

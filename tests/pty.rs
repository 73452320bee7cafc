//! Children on a pseudo-terminal (`Command::pty`): erlexec's pty tests
//! translated, and more. Output is checked byte for byte, with the
//! terminal's `\r\n` line endings.

mod support;

use std::time::{Duration, Instant};

use procession::{Command, ErrorKind, Pty, Signal, Stdio, Step, TerminalMode};
use support::*;

/// Reads from the child until `want` has appeared in the output (or EOF,
/// or 10 s); returns everything read.
fn read_until(child: &mut procession::Child, want: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while !seen.windows(want.len()).any(|w| w == want) {
        assert!(
            Instant::now() < deadline,
            "waited for {want:?}, got {seen:?}"
        );
        match child.read().unwrap() {
            Some(chunk) => seen.extend_from_slice(&chunk),
            None => break,
        }
    }
    seen
}

/// Reads everything until end-of-file.
fn read_all(child: &mut procession::Child) -> Vec<u8> {
    let mut seen = Vec::new();
    while let Some(chunk) = child.read().unwrap() {
        seen.extend_from_slice(&chunk);
    }
    seen
}

#[test]
fn tty_says_not_a_tty_without_a_pty_and_names_the_pty_with_one() {
    let _g = Guard::new();
    let out = Command::new("tty").stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.stdout, b"not a tty\n");
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new("tty").pty(Pty::new()).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("/dev/pts/") && text.ends_with("\r\n"),
        "{text:?}"
    );
    assert!(out.status.success());
}

#[test]
fn an_interactive_bash_answers_on_the_terminal() {
    let _g = Guard::new();
    let mut child = Command::new("bash")
        .args(["--norc", "--noprofile", "-i"])
        .env("PS1", "$ ")
        .pty(Pty::new())
        .spawn()
        .unwrap();
    read_until(&mut child, b"$ ");
    child.write_all(b"echo ok\n").unwrap();
    let seen = read_until(&mut child, b"ok\r\n");
    // Echo is off: the command line does not come back, only its output
    // (between bash's own terminal control sequences).
    assert!(seen.windows(5).any(|w| w == b"\nok\r\n"), "{seen:?}");
    assert!(!String::from_utf8_lossy(&seen).contains("echo"), "{seen:?}");
    child.write_all(b"exit 3\n").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(3));
}

#[test]
fn echo_is_off_by_default_and_on_when_asked() {
    let _g = Guard::new();
    for (pty, want) in [
        (Pty::new(), &b"hi\r\n"[..]),
        (Pty::new().echo(true), &b"hi\r\nhi\r\n"[..]),
    ] {
        let out = Command::new("head")
            .args(["-n", "1"])
            .pty(pty)
            .input(["hi\n"])
            .output()
            .unwrap();
        assert_eq!(out.stdout, want);
        assert!(out.status.success());
    }
}

#[test]
fn byte_3_interrupts_cat_and_is_echoed_as_caret_c_with_echo_on() {
    let _g = Guard::new();
    let mut child = Command::new("cat")
        .pty(Pty::new().echo(true))
        .spawn()
        .unwrap();
    child.write_all(b"a\n").unwrap();
    read_until(&mut child, b"a\r\na\r\n");
    child.write_all(&[3]).unwrap();
    let rest = read_all(&mut child);
    assert_eq!(rest, b"^C");
    assert_eq!(child.wait().unwrap().signal(), Some(Signal::INT));
}

#[test]
fn with_vintr_remapped_byte_3_is_data_and_byte_2_interrupts() {
    let _g = Guard::new();
    let mut child = Command::new("od")
        .args(["-An", "-c"])
        .pty(Pty::new().mode(TerminalMode::Vintr, 2))
        .spawn()
        .unwrap();
    // Byte 3 reaches od as data (it prints it once it has a line).
    child.write_all(&[3, b'\n']).unwrap();
    child.close_stdin(); // VEOF: od sees end-of-file and prints
    let out = String::from_utf8(read_all(&mut child)).unwrap();
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["003", "\\n"]);
    assert!(child.wait().unwrap().success());

    let mut child = Command::new("cat")
        .pty(Pty::new().mode(TerminalMode::Vintr, 2))
        .spawn()
        .unwrap();
    child.write_all(&[2]).unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(Signal::INT));
}

#[test]
fn echo_and_vintr_changed_at_run_time_take_effect() {
    let _g = Guard::new();
    let mut child = Command::new("cat").pty(Pty::new()).spawn().unwrap();
    child.write_all(b"one\n").unwrap();
    assert_eq!(read_until(&mut child, b"one\r\n"), b"one\r\n");
    child
        .set_terminal_modes([(TerminalMode::Echo, 1), (TerminalMode::Vintr, 2)])
        .unwrap();
    child.write_all(b"two\n").unwrap();
    assert_eq!(read_until(&mut child, b"two\r\ntwo\r\n"), b"two\r\ntwo\r\n");
    // Byte 3 is data now (echoed as ^C by ECHOCTL), byte 2 interrupts.
    child.write_all(&[3, b'\n']).unwrap();
    read_until(&mut child, b"^C\r\n\x03\r\n");
    child.write_all(&[2]).unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(Signal::INT));
}

#[test]
fn stty_size_shows_the_start_size_and_the_size_after_a_resize() {
    let _g = Guard::new();
    let out = Command::new("stty")
        .arg("size")
        .pty(Pty::new().size(33, 101))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"33 101\r\n");
    // A shell that prints its size on SIGWINCH.
    let mut child = Command::shell("trap 'stty size' WINCH; echo ready; while read x; do :; done")
        .pty(Pty::new().size(24, 80))
        .spawn()
        .unwrap();
    read_until(&mut child, b"ready\r\n");
    child.resize(50, 132).unwrap();
    assert_eq!(read_until(&mut child, b"50 132\r\n"), b"50 132\r\n");
    child.close_stdin();
    assert!(child.wait().unwrap().success());
}

#[test]
fn invalid_modes_give_one_error_naming_each_and_start_nothing() {
    let _g = Guard::new();
    let err = Command::new("true")
        .pty(Pty::new().modes([
            (TerminalMode::Vintr, 256),
            (TerminalMode::Echo, 7),
            (TerminalMode::Vstatus, 20),
            (TerminalMode::TtyOpOspeed, 9601),
        ]))
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let text = err.to_string();
    for bad in [
        "vintr = 256",
        "echo = 7",
        "vstatus = 20",
        "tty_op_ospeed = 9601",
    ] {
        assert!(text.contains(bad), "{bad} missing from: {text}");
    }
    // At run time: refused as a whole, nothing changed.
    let mut child = Command::new("cat").pty(Pty::new()).spawn().unwrap();
    let err = child
        .set_terminal_modes([(TerminalMode::Echo, 1), (TerminalMode::Isig, 3)])
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.step()),
        (ErrorKind::InvalidInput, Step::Terminal)
    );
    child.write_all(b"x\n").unwrap();
    assert_eq!(
        read_until(&mut child, b"x\r\n"),
        b"x\r\n",
        "echo must still be off"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn closing_the_input_types_end_of_file_and_hanging_up_sends_sighup() {
    let _g = Guard::new();
    let mut child = Command::new("cat").pty(Pty::new()).spawn().unwrap();
    child.write_all(b"last\n").unwrap();
    child.close_stdin();
    assert_eq!(read_all(&mut child), b"last\r\n");
    assert!(child.wait().unwrap().success());

    let mut child = Command::new("cat").pty(Pty::new()).spawn().unwrap();
    child.hang_up();
    assert_eq!(child.wait().unwrap().signal(), Some(Signal::HUP));
}

#[test]
fn a_chosen_subset_of_streams_is_on_the_terminal() {
    let _g = Guard::new();
    let out = Command::shell("[ -t 0 ] && echo in-tty; [ -t 2 ] || echo err-not-tty >&2; tty")
        .pty(Pty::new().stderr(false))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("in-tty\r\n/dev/pts/"), "{stdout:?}");
    assert_eq!(out.stderr, b"err-not-tty\n");
}

#[test]
fn the_stream_api_reads_a_pty_child_with_its_input() {
    let _g = Guard::new();
    let out = Command::new("cat")
        .pty(Pty::new())
        .input(["a\n", "b\n"])
        .stream()
        .unwrap()
        .collect_string()
        .unwrap();
    assert_eq!(out, "a\r\nb\r\n");
}

#[test]
fn a_pty_child_leads_its_session_and_group_and_other_groups_are_refused() {
    let _g = Guard::new();
    // Fields 5, 6 and 8 of its stat line: group, session, and the
    // terminal's foreground group.
    let out = Command::shell("cut -d' ' -f5,6,8 /proc/$$/stat")
        .pty(Pty::new())
        .spawn()
        .unwrap();
    let pid = out.pid();
    let mut out = out;
    let text = String::from_utf8(read_all(&mut out)).unwrap();
    let ids: Vec<u32> = text
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(ids, [pid, pid, pid]);
    assert!(out.wait().unwrap().success());
    let err = Command::new("true")
        .pty(Pty::new())
        .process_group(procession::ProcessGroup::Inherit)
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("pty"), "{err}");
}

#[test]
fn a_thousand_pty_children_started_and_dropped_leave_nothing() {
    let g = Guard::new();
    // A dropped child keeps its pidfd and a master copy until the reaper
    // has reaped it, and the drops outrun the reaping: more than the usual
    // soft limit of 1024 descriptors can be open at once.
    raise_fd_limit();
    for _ in 0..1000 {
        let child = Command::new("sleep")
            .arg("100")
            .pty(Pty::new())
            .spawn()
            .unwrap();
        drop(child);
    }
    // The guard checks (on drop) that every one is reaped, nothing runs,
    // and no descriptor (master, slave, copies) is left open.
    drop(g);
}

#[test]
fn a_reader_at_end_of_file_does_not_hang_up_a_child_still_exiting() {
    let _g = Guard::new();
    // Found while testing: GNU cat closes the terminal (its stdout and
    // stderr) before it exits; the stream then read end-of-file and closed
    // the last master descriptor, which hung the terminal up and killed cat
    // with SIGHUP in about one run in four. The process now holds a master
    // copy until the child is reaped.
    for round in 0..100 {
        let out = Command::new("cat")
            .pty(Pty::new())
            .input(["a\n"])
            .output()
            .unwrap();
        assert!(out.status.success(), "round {round}: {:?}", out.status);
        assert_eq!(out.stdout, b"a\r\n");
    }
}

#[test]
fn every_standard_speed_is_set_on_the_terminal_and_others_are_refused() {
    let _g = Guard::new();
    let speeds = [
        0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600,
        115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000,
        2500000, 3000000, 3500000, 4000000,
    ];
    for bps in speeds {
        // `stty speed` reports the terminal's speed as the kernel keeps it.
        let out = Command::new("stty")
            .arg("speed")
            .pty(
                Pty::new()
                    .mode(TerminalMode::TtyOpOspeed, bps)
                    .mode(TerminalMode::TtyOpIspeed, bps),
            )
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{bps}\r\n"),
            "speed {bps}"
        );
    }
    for bps in [1, 9601, 4000001] {
        let err = Command::new("true")
            .pty(Pty::new().mode(TerminalMode::TtyOpIspeed, bps))
            .spawn()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(
            err.to_string().contains(&format!("tty_op_ispeed = {bps}")),
            "{err}"
        );
    }
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "current_thread")]
async fn the_async_api_writes_reads_and_closes_a_pty_child() {
    let _g = Guard::new();
    let mut child = Command::new("cat").pty(Pty::new()).spawn_async().unwrap();
    child.write_all(b"async\n").await.unwrap();
    // Closing the async input types VEOF too: cat ends on its own.
    child.close_stdin();
    let mut seen = Vec::new();
    while let Some(chunk) = child.read().await.unwrap() {
        seen.extend_from_slice(&chunk);
    }
    assert_eq!(seen, b"async\r\n");
    assert!(child.wait().await.unwrap().success());
    // And a stream with an async input.
    let out = Command::new("cat")
        .pty(Pty::new())
        .input(["x\n"])
        .output_async()
        .await
        .unwrap();
    assert_eq!(out.stdout, b"x\r\n");
    assert!(out.status.success());
}

#[test]
fn echo_off_clears_every_echo_flag_and_echo_on_keeps_the_defaults() {
    let _g = Guard::new();
    let flags = |pty: Pty| {
        let out = Command::new("stty").arg("-a").pty(pty).output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        ["echo", "echoe", "echok", "echonl"].map(|f| {
            let on = text.split_whitespace().any(|w| w == f);
            let off = text.split_whitespace().any(|w| w == format!("-{f}"));
            assert!(on != off, "{f} in {text}");
            on
        })
    };
    assert_eq!(flags(Pty::new()), [false, false, false, false]);
    // The kernel's defaults: echo, echoe and echok on, echonl off.
    assert_eq!(flags(Pty::new().echo(true)), [true, true, true, false]);
    assert_eq!(
        flags(Pty::new().echo(true).mode(TerminalMode::Echonl, 1)),
        [true, true, true, true]
    );
}

#[test]
fn the_input_taken_as_a_descriptor_types_nothing_when_converted() {
    let _g = Guard::new();
    use std::io::Write;
    let mut child = Command::new("cat").pty(Pty::new()).spawn().unwrap();
    // The descriptor is the caller's now: converting it is not closing the
    // input, so no end-of-file is typed and cat keeps reading.
    let fd: std::os::fd::OwnedFd = child.stdin.take().unwrap().into();
    let mut input = std::fs::File::from(fd);
    input.write_all(b"still\n").unwrap();
    assert_eq!(read_until(&mut child, b"still\r\n"), b"still\r\n");
    drop(input);
    // Closing that descriptor alone is invisible through a terminal.
    assert_eq!(child.try_wait().unwrap(), None);
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(Signal::KILL));
}

#[test]
fn the_parents_terminal_descriptors_are_close_on_exec() {
    let _g = Guard::new();
    use std::os::fd::AsRawFd;
    let mut child = Command::new("cat").pty(Pty::new()).spawn().unwrap();
    for fd in [
        child.stdin.as_ref().unwrap().as_raw_fd(),
        child.stdout.as_ref().unwrap().as_raw_fd(),
    ] {
        // SAFETY: F_GETFD on a descriptor the handle owns.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC, "fd {fd}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

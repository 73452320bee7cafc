//! Framing (lines, packets), the reader adapters, the output cap, `info()`
//! and the list of live children, with real programs.

mod support;
use support::*;

use std::io::{BufRead, Read};
use std::sync::{Arc, Mutex};

use procession::{
    Bytes, ChildState, Command, Ended, ErrorKind, FrameError, Line, LineCodec, Newline,
    PacketCodec, PacketSize, Stdio, Supervisor,
};

/// `printf %s TEXT`: exactly TEXT on stdout.
fn printf_s(text: &str) -> Command {
    let mut cmd = Command::new("printf");
    cmd.args(["%s", text]);
    cmd
}

fn lines_of(cmd: &mut Command, codec: LineCodec) -> Vec<Line> {
    cmd.stream()
        .unwrap()
        .lines(codec)
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn port_line_semantics_with_a_maximum_of_8() {
    let _g = Guard::new();
    let want = [
        Line::complete("abc"),
        Line::incomplete("longlong"),
        Line::complete("line"),
        Line::incomplete("tail"),
    ];
    // Written in one piece, and byte by byte (each its own write).
    let mut whole = printf_s("abc\nlonglongline\ntail");
    assert_eq!(lines_of(&mut whole, LineCodec::new(8)), want);
    let mut bytes = Command::shell(
        r"for c in a b c '\n' l o n g l o n g l i n e '\n' t a i l; do printf $c; done",
    );
    assert_eq!(lines_of(&mut bytes, LineCodec::new(8)), want);
    // The handle and the event stream cut the same lines.
    let mut child = printf_s("abc\nlonglongline\ntail")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut codec = LineCodec::new(8);
    let mut got = Vec::new();
    while let Some(line) = child.read_frame(&mut codec).unwrap() {
        got.push(line);
    }
    assert_eq!(got, want);
    assert!(child.wait().unwrap().success());
}

#[test]
fn progress_lines_separated_by_cr_come_one_per_update() {
    let _g = Guard::new();
    let lines = lines_of(
        &mut pt_cmd(["progress", "5"]),
        LineCodec::new(80).newline(Newline::Any),
    );
    let got: Vec<Bytes> = lines.into_iter().map(|l| l.bytes).collect();
    assert_eq!(got, ["1/5", "2/5", "3/5", "4/5", "5/5", "done"]);
    // With \n alone the updates are one line, \r included.
    let lines = lines_of(&mut pt_cmd(["progress", "2"]), LineCodec::new(80));
    assert_eq!(lines, [Line::complete("1/2\r2/2\rdone")]);
    // CRLF text loses its \r.
    let lines = lines_of(
        &mut printf_s("a\r\nb\r\n"),
        LineCodec::new(80).newline(Newline::CrLf),
    );
    assert_eq!(lines, [Line::complete("a"), Line::complete("b")]);
}

#[test]
fn a_line_longer_than_the_maximum_never_grows_the_memory() {
    let _g = Guard::new();
    // 1 MiB without a newline: pieces of exactly 1000 bytes, then the rest.
    let mut lines = Command::new("head")
        .args(["-c", "1048576", "/dev/zero"])
        .stream()
        .unwrap()
        .lines(LineCodec::new(1000));
    let mut total = 0;
    let mut pieces = 0;
    for line in lines.by_ref() {
        let line = line.unwrap();
        assert!(!line.complete);
        assert!(
            line.len() == 1000 || total + line.len() == 1 << 20,
            "{}",
            line.len()
        );
        total += line.len();
        pieces += 1;
    }
    assert_eq!((total, pieces), (1 << 20, 1049));
}

/// Sends `payloads` as packets to `pt packet-echo`, which answers each
/// with its payload reversed; returns the answers.
fn echo_packets(size: PacketSize, payloads: &[Vec<u8>]) -> Vec<Bytes> {
    let n = size.header_len().to_string();
    let mut child = pt_cmd(["packet-echo", n.as_str()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut codec = PacketCodec::new(size);
    let mut answers = Vec::new();
    for p in payloads {
        child.write_packet(&codec, p).unwrap();
        answers.push(child.read_frame(&mut codec).unwrap().unwrap());
    }
    child.close_stdin();
    assert_eq!(child.read_frame(&mut codec).unwrap(), None);
    assert!(child.wait().unwrap().success());
    answers
}

#[test]
fn packets_of_1_2_and_4_bytes_round_trip_through_a_framing_child() {
    let _g = Guard::new();
    for size in [PacketSize::One, PacketSize::Two, PacketSize::Four] {
        let largest = PacketCodec::new(size).max().min(200_000);
        let payloads: Vec<Vec<u8>> = vec![
            b"hello".to_vec(),
            Vec::new(),
            (0..largest).map(|i| (i % 251) as u8).collect(),
            b"x".to_vec(),
        ];
        let answers = echo_packets(size, &payloads);
        for (p, a) in payloads.iter().zip(&answers) {
            let mut want = p.clone();
            want.reverse();
            assert_eq!(&a[..], &want[..], "{size:?}, {} bytes", p.len());
        }
    }
}

#[test]
fn the_largest_one_and_two_byte_packets_fit_and_one_more_byte_is_refused_unwritten() {
    let _g = Guard::new();
    for (size, max) in [(PacketSize::One, 255), (PacketSize::Two, 65535)] {
        let answers = echo_packets(size, &[vec![7; max]]);
        assert_eq!(answers[0].len(), max);
        let mut child = pt_cmd(["packet-echo", &size.header_len().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let codec = PacketCodec::new(size);
        let err = child.write_packet(&codec, &vec![7; max + 1]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            err.frame_error(),
            Some(&FrameError::TooLong { len: max + 1, max })
        );
        assert_eq!(child.info().stdin_written, 0);
        child.close_stdin();
        // Nothing reached the child: it saw a clean end of input.
        let out = child.wait_with_output().unwrap();
        assert_eq!((out.stdout, out.status.code()), (Vec::new(), Some(0)));
    }
}

#[test]
fn an_oversized_or_truncated_packet_from_the_child_is_an_error() {
    let _g = Guard::new();
    let err = Command::new("printf")
        .arg(r"\000\000\000\011abc")
        .stream()
        .unwrap()
        .packets(PacketCodec::new(PacketSize::Four).max_len(8))
        .collect::<Result<Vec<_>, _>>()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert_eq!(
        err.frame_error(),
        Some(&FrameError::TooLong { len: 9, max: 8 })
    );
    // A good packet, then a bad header in the same chunk: the packet, then
    // the error (found while cutting what was already read).
    let mut packets = Command::new("printf")
        .arg(r"\000\000\000\002ab\000\000\000\011abc")
        .stream()
        .unwrap()
        .packets(PacketCodec::new(PacketSize::Four).max_len(8));
    assert_eq!(packets.next().unwrap().unwrap(), "ab");
    let err = packets.next().unwrap().unwrap_err();
    assert_eq!(
        err.frame_error(),
        Some(&FrameError::TooLong { len: 9, max: 8 })
    );
    assert!(packets.next().is_none());
    let mut packets = Command::new("printf")
        .arg(r"\002ab\003ab")
        .stream()
        .unwrap()
        .packets(PacketCodec::new(PacketSize::One));
    assert_eq!(packets.next().unwrap().unwrap(), "ab");
    let err = packets.next().unwrap().unwrap_err();
    assert_eq!(
        err.frame_error(),
        Some(&FrameError::Truncated { have: 3, need: 4 })
    );
    assert!(packets.next().is_none());
}

#[test]
fn bufread_lines_over_a_child_equal_the_programs_lines() {
    let _g = Guard::new();
    let text: String = (0..2000)
        .map(|i| format!("line {i} {}\n", "x".repeat(i % 97)))
        .collect();
    let reader = printf_s(&text)
        .max_chunk_size(4096)
        .stream()
        .unwrap()
        .into_reader();
    let got: Vec<String> = reader.lines().collect::<Result<_, _>>().unwrap();
    let want: Vec<&str> = text.lines().collect();
    assert_eq!(got, want);
    // std::io::copy and read_to_end work the same way.
    let mut out = Vec::new();
    let mut reader = pt_cmd(["write", "300000"]).stream().unwrap().into_reader();
    std::io::copy(&mut reader, &mut out).unwrap();
    let want = pt_cmd(["write", "300000"]).run().unwrap().stdout;
    assert_eq!(out, want);
    // A failing child fails the read after its last byte.
    let mut reader = Command::shell("printf partial; exit 3")
        .stream()
        .unwrap()
        .into_reader();
    let mut got = Vec::new();
    let err = reader.read_to_end(&mut got).unwrap_err();
    assert_eq!(got, b"partial");
    let inner = procession::Error::from_io(&err).unwrap();
    assert_eq!(inner.exit_status().unwrap().code(), Some(3));
}

#[test]
fn framed_events_deliver_each_streams_lines_then_the_exit() {
    let _g = Guard::new();
    let events: Vec<_> = Command::shell("printf 'o1\\no2'; printf 'e1\\ne' >&2; exit 5")
        .stderr(Stdio::piped())
        .events()
        .unwrap()
        .lines(LineCodec::new(80))
        .collect::<Result<_, _>>()
        .unwrap();
    use procession::FramedEvent::*;
    let (out, err): (Vec<_>, Vec<_>) = events
        .iter()
        .filter(|e| !matches!(e, Exit(_)))
        .partition(|e| matches!(e, Stdout(_)));
    let lines = |v: Vec<&procession::FramedEvent<Line>>| -> Vec<Line> {
        v.into_iter()
            .map(|e| match e {
                Stdout(l) | Stderr(l) => l.clone(),
                Exit(_) => unreachable!("filtered out"),
            })
            .collect()
    };
    let (out, err) = (lines(out), lines(err));
    assert_eq!(out, [Line::complete("o1"), Line::incomplete("o2")]);
    assert_eq!(err, [Line::complete("e1"), Line::incomplete("e")]);
    assert!(matches!(events.last(), Some(Exit(s)) if s.code() == Some(5)));
    assert_eq!(events.len(), 5);
}

#[test]
fn a_supervised_childs_lines_reach_the_function_each_stream_on_its_own() {
    let _g = Guard::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sup = Supervisor::new();
    let mut children = Vec::new();
    for i in 0..4 {
        let sink = seen.clone();
        let script =
            format!("for k in 1 2 3; do printf 'c{i} '; printf \"$k\\n\"; done; printf 'end{i}'");
        children.push(
            sup.spawn(
                Command::shell(&script).stdout(Stdio::lines(LineCodec::new(80), move |l| {
                    sink.lock().unwrap().push((i, l))
                })),
            )
            .unwrap(),
        );
    }
    for c in &children {
        assert!(c.wait().unwrap().status().unwrap().success());
    }
    let seen = seen.lock().unwrap();
    for i in 0..4 {
        let mine: Vec<Line> = seen
            .iter()
            .filter(|(c, _)| *c == i)
            .map(|(_, l)| l.clone())
            .collect();
        let p = format!("c{i} ");
        assert_eq!(
            mine,
            [
                Line::complete(format!("{p}1")),
                Line::complete(format!("{p}2")),
                Line::complete(format!("{p}3")),
                Line::incomplete(format!("end{i}")),
            ]
        );
    }
}

#[test]
fn max_output_keeps_exactly_the_limit_and_stops_the_child() {
    let _g = Guard::new();
    // `write` would write 10 MiB; the cap keeps 1000 bytes of it.
    let mut cmd = pt_cmd(["write", "10485760"]);
    cmd.max_output(1000);
    let full = pt_cmd(["write", "1000"]).run().unwrap().stdout;
    let err = cmd.output().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutputLimit);
    let out = err.output().unwrap();
    assert_eq!(out.stdout, full);
    assert_eq!(out.status.ended(), Ended::OutputLimit);
    assert!(
        err.to_string()
            .contains("stdout went over the max_output limit of 1000 bytes"),
        "{err}"
    );
    // The same through the checked stream and the handle.
    let err = cmd.stream().unwrap().collect_bytes().unwrap_err();
    assert_eq!(
        (err.kind(), &err.output().unwrap().stdout),
        (ErrorKind::OutputLimit, &full)
    );
    let err = cmd
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
        .wait_with_output()
        .unwrap_err();
    assert_eq!(
        (err.kind(), &err.output().unwrap().stdout),
        (ErrorKind::OutputLimit, &full)
    );
    // Stderr has its own cap.
    let err = Command::shell("echo ok; yes err >&2")
        .max_output(8)
        .output()
        .unwrap_err();
    let out = err.output().unwrap();
    assert_eq!(
        (&out.stdout[..], &out.stderr[..]),
        (&b"ok\n"[..], &b"err\nerr\n"[..])
    );
    // Exactly at the limit is no error.
    let out = pt_cmd(["write", "1000"]).max_output(1000).run().unwrap();
    assert_eq!(out.stdout.len(), 1000);
}

#[test]
fn byte_counters_are_exact_after_a_known_exchange() {
    let _g = Guard::new();
    let mut child = pt_cmd(["echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.write_all(&[b'a'; 1000]).unwrap();
    let got = read_exact_or_eof(child.stdout.as_mut().unwrap(), 600);
    assert_eq!(got.len(), 600);
    // The pipe holds what was echoed and not read yet.
    let info = child.info();
    assert_eq!((info.stdin_written, info.stdout_read), (1000, 600));
    let queued_deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.info().stdout_queued != Some(400) {
        assert!(
            std::time::Instant::now() < queued_deadline,
            "{:?}",
            child.info()
        );
        std::thread::yield_now();
    }
    assert_eq!(child.info().stdin_queued, Some(0));
    child.close_stdin();
    let rest = child.read().unwrap().unwrap();
    assert_eq!(rest.len(), 400);
    let info = child.info();
    assert_eq!(
        (info.stdout_read, info.stdout_queued, info.stdin_queued),
        (1000, Some(0), None)
    );
    assert!(child.wait().unwrap().success());
    assert!(matches!(child.info().state, ChildState::Exited(s) if s.success()));
    // Streams count too.
    let mut chunks = pt_cmd(["write", "5000"]).stream().unwrap();
    let pid = chunks.pid();
    let mut n = 0;
    for c in chunks.by_ref() {
        n += c.unwrap().len();
        let listed = procession::children().into_iter().find(|c| c.pid == pid);
        if let Some(listed) = listed {
            assert_eq!(listed.stdout_read as usize, n);
        }
    }
    assert_eq!(n, 5000);
}

#[test]
fn the_live_list_grows_and_shrinks_as_children_start_and_are_reaped() {
    let _g = Guard::new();
    let mine = |pids: &[u32]| {
        procession::children()
            .into_iter()
            .filter(|c| pids.contains(&c.pid))
            .map(|c| (c.pid, c.command, c.state))
            .collect::<Vec<_>>()
    };
    let mut a = pt_cmd(["sleep", "100"]).spawn().unwrap();
    let mut b = Command::new("cat").stdin(Stdio::piped()).spawn().unwrap();
    let pids = [a.pid(), b.pid()];
    let listed = mine(&pids);
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|(_, _, s)| *s == ChildState::Running));
    assert!(listed.iter().any(|(p, c, _)| *p == b.pid() && c == "cat"));
    // Exited but not reaped: still listed, with its status.
    b.close_stdin();
    while !matches!(mine(&[b.pid()])[0].2, ChildState::Exited(_)) {
        std::thread::yield_now();
    }
    assert_eq!(mine(&pids).len(), 2);
    b.wait().unwrap();
    assert_eq!(mine(&pids).len(), 1);
    a.stop().unwrap();
    assert_eq!(mine(&pids).len(), 0);
    // A dropped child stays listed until the reaper has it.
    let c = pt_cmd(["sleep", "100"]).spawn().unwrap();
    let pid = c.pid();
    drop(c);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !mine(&[pid]).is_empty() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::yield_now();
    }
    assert!(!alive(pid as i32) || stat(pid as i32).is_none());
}

#[test]
fn for_each_line_gives_the_same_lines_as_lines_blocking_and_async() {
    #[cfg(feature = "tokio")]
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // After the runtime: tokio's process-wide state (its signal driver's
    // socket pair) lives as long as the process.
    let _g = Guard::new();
    // Lines of every length around the maximum, one over it, CRLF and a
    // last line without an ending, written in small pieces.
    let mut text = String::new();
    for n in 0..40 {
        text.push_str(&"y".repeat(n));
        text.push_str(if n % 3 == 0 { "\r\n" } else { "\n" });
    }
    text.push_str("end");
    for newline in [Newline::Lf, Newline::CrLf, Newline::Any] {
        let codec = LineCodec::new(16).newline(newline);
        let want = lines_of(&mut printf_s(&text), codec.clone());
        let mut got = Vec::new();
        let status = printf_s(&text)
            .max_chunk_size(7)
            .stream()
            .unwrap()
            .for_each_line(codec.clone(), |l, c| {
                got.push(Line {
                    bytes: Bytes::copy_from_slice(l),
                    complete: c,
                })
            })
            .unwrap();
        assert!(status.success());
        assert_eq!(got, want, "{newline:?}");
        #[cfg(feature = "tokio")]
        {
            let mut got = Vec::new();
            rt.block_on(async {
                printf_s(&text)
                    .stream_async()
                    .unwrap()
                    .for_each_line(codec, |l, c| {
                        got.push(Line {
                            bytes: Bytes::copy_from_slice(l),
                            complete: c,
                        })
                    })
                    .await
                    .unwrap();
            });
            assert_eq!(got, want, "async {newline:?}");
        }
    }
    // A failing child: every line first, then the error.
    let mut got = Vec::new();
    let err = Command::shell("printf 'a\\nb'; exit 4")
        .stream()
        .unwrap()
        .for_each_line(LineCodec::new(8), |l, c| got.push((l.to_vec(), c)))
        .unwrap_err();
    assert_eq!(got, [(b"a".to_vec(), true), (b"b".to_vec(), false)]);
    assert_eq!(err.exit_status().unwrap().code(), Some(4));
}

#[test]
fn framed_streams_and_readers_report_the_childs_pid_and_status() {
    #[cfg(feature = "tokio")]
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _g = Guard::new();
    // The shell prints its own pid: the child's, as the kernel knows it.
    let mut lines = Command::shell("echo $$; exit 3")
        .stream()
        .unwrap()
        .lines(LineCodec::new(80));
    let pid = lines.pid();
    assert_eq!(lines.next().unwrap().unwrap().bytes, pid.to_string());
    assert_eq!(lines.status(), None);
    assert!(lines.next().unwrap().is_err());
    assert_eq!(lines.status().unwrap().code(), Some(3));
    let mut events = Command::shell("echo $$")
        .events()
        .unwrap()
        .lines(LineCodec::new(80));
    let pid = events.pid();
    assert_eq!(
        events.next().unwrap().unwrap(),
        procession::FramedEvent::Stdout(Line::complete(pid.to_string()))
    );
    assert!(matches!(
        events.next(),
        Some(Ok(procession::FramedEvent::Exit(_)))
    ));
    let mut reader = Command::shell("echo $$; exit 4")
        .stream()
        .unwrap()
        .into_reader();
    let pid = reader.pid();
    let mut got = Vec::new();
    assert!(reader.read_to_end(&mut got).is_err());
    assert_eq!(got, format!("{pid}\n").as_bytes());
    assert_eq!(reader.status().unwrap().code(), Some(4));
    #[cfg(feature = "tokio")]
    rt.block_on(async {
        use tokio::io::AsyncReadExt;
        let mut lines = Command::shell("echo $$; exit 5")
            .stream_async()
            .unwrap()
            .lines(LineCodec::new(80));
        let pid = lines.pid();
        assert_eq!(
            lines.next_frame().await.unwrap().unwrap().bytes,
            pid.to_string()
        );
        assert_eq!(lines.status(), None);
        assert!(lines.next_frame().await.unwrap().is_err());
        assert_eq!(lines.status().unwrap().code(), Some(5));
        let mut reader = Command::shell("echo $$; exit 6")
            .stream_async()
            .unwrap()
            .into_async_read();
        let pid = reader.pid();
        let mut got = Vec::new();
        assert!(reader.read_to_end(&mut got).await.is_err());
        assert_eq!(got, format!("{pid}\n").as_bytes());
        assert_eq!(reader.status().unwrap().code(), Some(6));
    });
}

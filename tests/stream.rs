//! Streaming with back-pressure (exile parity): `stream`, `events`,
//! `output` and the handle's demand-driven reads and writes.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use procession::{Command, ErrorKind, Event, Stdio};
use support::*;

fn events_of(cmd: &Command) -> Vec<Event> {
    cmd.events().unwrap().collect::<Result<_, _>>().unwrap()
}

fn exit_code(ev: &Event) -> Option<i32> {
    match ev {
        Event::Exit(s) => s.code(),
        _ => None,
    }
}

// 1. exile's README examples.

#[test]
fn echo_hello_world() {
    let _g = Guard::new();
    let out = Command::new("echo")
        .args(["Hello", "World!"])
        .stream()
        .unwrap();
    assert_eq!(out.collect_string().unwrap(), "Hello World!\n");
}

#[test]
fn cat_with_list_input() {
    let _g = Guard::new();
    let out = Command::new("cat")
        .input(["Hello ", "Back!"])
        .stream()
        .unwrap();
    assert_eq!(out.collect_bytes().unwrap(), b"Hello Back!");
}

#[test]
fn cat_with_iterator_input() {
    let _g = Guard::new();
    let lines = (1..=10).map(|n| format!("{n}\n"));
    let out = Command::new("cat").input(lines).stream().unwrap();
    assert_eq!(
        out.collect_string().unwrap(),
        "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"
    );
}

#[test]
fn cat_with_callback_sink() {
    let _g = Guard::new();
    let out = Command::new("cat")
        .input_fn(|sink| {
            for line in std::iter::repeat_n("data\n", 2) {
                sink.write_all(line.as_bytes())?;
            }
            Ok(())
        })
        .stream()
        .unwrap();
    assert_eq!(out.collect_string().unwrap(), "data\ndata\n");
}

#[test]
fn base64_outputs_only_after_eof() {
    let _g = Guard::new();
    let out = Command::new("base64").input(["abcdef"]).stream().unwrap();
    assert_eq!(out.collect_string().unwrap(), "YWJjZGVm\n");
}

#[test]
fn input_bytes_is_reusable_and_reader_input_works() {
    let _g = Guard::new();
    let mut cmd = Command::new("sort");
    cmd.input_bytes("b\nc\na\n");
    assert_eq!(cmd.stream().unwrap().collect_string().unwrap(), "a\nb\nc\n");
    assert_eq!(cmd.stream().unwrap().collect_string().unwrap(), "a\nb\nc\n");
    let reader = std::io::Cursor::new(b"2\n1\n".to_vec());
    let out = Command::new("tac").input_reader(reader).stream().unwrap();
    assert_eq!(out.collect_string().unwrap(), "1\n2\n");
}

#[test]
fn one_shot_input_is_refused_on_second_run() {
    let _g = Guard::new();
    let mut cmd = Command::new("cat");
    cmd.input(["x"]);
    assert_eq!(cmd.stream().unwrap().collect_string().unwrap(), "x");
    let err = cmd.stream().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

// 2. No input, empty chunks.

#[test]
fn cat_without_input_ends_at_once() {
    let _g = Guard::new();
    // The test runner gives us /dev/null as stdin already, so make our own
    // stdin a pipe that never ends: a child that inherited it would block.
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array; dup/dup2 on descriptors we
    // own; fd 0 is restored below before anything else can use it.
    let saved = unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        let saved = libc::dup(0);
        assert!(saved >= 0);
        assert_eq!(libc::dup2(fds[0], 0), 0);
        saved
    };
    let start = Instant::now();
    let out = Command::new("cat").stream().unwrap().collect_bytes();
    let stdin_of_child = Command::new("readlink")
        .arg("/proc/self/fd/0")
        .stream()
        .unwrap()
        .collect_string();
    // SAFETY: restoring fd 0 and closing what this test opened.
    unsafe {
        libc::dup2(saved, 0);
        libc::close(saved);
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    assert!(out.unwrap().is_empty());
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(stdin_of_child.unwrap(), "/dev/null\n");
}

#[test]
fn empty_chunks_in_input_are_fine() {
    let _g = Guard::new();
    let out = Command::new("cat")
        .input(["", "a", "", "", "b", ""])
        .stream()
        .unwrap();
    assert_eq!(out.collect_string().unwrap(), "ab");
}

// 3, 4. stderr modes.

#[test]
fn stderr_consume_yields_tagged_events() {
    let _g = Guard::new();
    let evs = events_of(
        Command::new("sh")
            .args(["-c", "echo stdout && echo stderr >&2"])
            .stderr(Stdio::piped()),
    );
    assert_eq!(evs.len(), 3, "{evs:?}");
    assert_eq!(evs[0], Event::Stdout(Bytes::from("stdout\n")));
    assert_eq!(evs[1], Event::Stderr(Bytes::from("stderr\n")));
    assert_eq!(exit_code(&evs[2]), Some(0));
}

#[test]
fn stderr_merge_into_stdout() {
    let _g = Guard::new();
    let out = Command::new("sh")
        .args(["-c", "echo stdout && echo stderr >&2"])
        .stderr(Stdio::to_stdout())
        .stream()
        .unwrap();
    assert_eq!(out.collect_string().unwrap(), "stdout\nstderr\n");
}

#[test]
fn stderr_null_and_inherit() {
    let _g = Guard::new();
    let evs = events_of(
        Command::new("sh")
            .args(["-c", "echo stdout && echo stderr >&2"])
            .stderr(Stdio::null()),
    );
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0], Event::Stdout(Bytes::from("stdout\n")));
    // Inherit: stderr goes to the test's own stderr, not into the events.
    let evs =
        events_of(Command::new("sh").args(["-c", "echo stdout && echo inherited-stderr >&2"]));
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0], Event::Stdout(Bytes::from("stdout\n")));
}

#[test]
fn merge_keeps_write_order() {
    let _g = Guard::new();
    let out = pt_cmd(["interleave", "10"])
        .stderr(Stdio::to_stdout())
        .stream()
        .unwrap()
        .collect_string()
        .unwrap();
    let want: String = (0..10).map(|i| format!("out {i}\nerr {i}\n")).collect();
    assert_eq!(out, want);
}

// 5. Exit status.

#[test]
fn nonzero_exit_is_an_error_for_stream_and_an_event_for_events() {
    let _g = Guard::new();
    let err = Command::new("sh")
        .args(["-c", "echo partial; exit 10"])
        .stream()
        .unwrap()
        .collect_bytes()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exit);
    assert_eq!(err.exit_status().unwrap().code(), Some(10));

    let evs = events_of(Command::new("sh").args(["-c", "exit 10"]));
    assert_eq!(evs.len(), 1);
    assert_eq!(exit_code(&evs[0]), Some(10));
    let Event::Exit(status) = evs[0] else {
        unreachable!()
    };
    assert!(!status.success());
}

#[test]
fn success_exit_codes_make_10_a_success() {
    let _g = Guard::new();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "exit 10"]).success_exit_codes([0, 10]);
    assert!(cmd.stream().unwrap().collect_bytes().unwrap().is_empty());
    let evs = events_of(&cmd);
    let Event::Exit(status) = evs[0] else {
        panic!("{evs:?}")
    };
    assert!(status.success());
    assert_eq!(status.code(), Some(10));
}

#[test]
fn exit_error_carries_the_stderr_tail() {
    let _g = Guard::new();
    let err = Command::new("sh")
        .args(["-c", "echo 'something broke' >&2; exit 3"])
        .stderr(Stdio::piped())
        .stream()
        .unwrap()
        .collect_bytes()
        .unwrap_err();
    assert_eq!(err.stderr_tail(), Some(&b"something broke\n"[..]));
    assert!(err.to_string().contains("something broke"), "{err}");
}

#[test]
fn the_stderr_tail_is_exactly_the_last_8_kib() {
    let _g = Guard::new();
    // 20,000 bytes on stderr (byte i is i % 251), then a failing exit.
    let script = format!("'{}' write 20000 >&2; exit 3", pt().display());
    let want: Vec<u8> = (20_000 - 8192..20_000u32)
        .map(|i| (i % 251) as u8)
        .collect();
    for capacity in [None, Some(4096)] {
        // With a 4 KiB pipe, stderr comes in many reads.
        let err = Command::new("sh")
            .args(["-c", &script])
            .stderr(Stdio::piped())
            .pipe_capacity(capacity)
            .stream()
            .unwrap()
            .collect_bytes()
            .unwrap_err();
        assert!(err.stderr_tail() == Some(&want[..]), "stream: wrong tail");
    }
    // run() keeps all of stderr in the output, and the same tail.
    let err = Command::new("sh").args(["-c", &script]).run().unwrap_err();
    assert!(err.stderr_tail() == Some(&want[..]), "run: wrong tail");
    assert_eq!(err.output().unwrap().stderr.len(), 20_000);
}

// 6. Infinite input and broken pipes.

#[test]
fn infinite_input_take_three_with_ignore_epipe() {
    let _g = Guard::new();
    let start = Instant::now();
    let chunks: Vec<Bytes> = Command::new("cat")
        .input(std::iter::repeat("data\n"))
        .ignore_epipe(true)
        .stream()
        .unwrap()
        .take(3)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(chunks.len(), 3);
    let all: Vec<u8> = chunks.concat();
    assert!(all.len() >= 3, "got {} bytes", all.len());
    let pattern = b"data\n";
    let bad = all
        .iter()
        .enumerate()
        .position(|(i, &b)| b != pattern[i % 5]);
    assert_eq!(bad, None, "not a prefix of data\\n repeated");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn broken_pipe_is_reported_with_ignore_epipe_false() {
    let _g = Guard::new();
    let mut cmd = Command::new("head");
    cmd.args(["-c", "5"]);
    let results: Vec<_> = cmd
        .input(std::iter::repeat("data\n"))
        .ignore_epipe(false)
        .stream()
        .unwrap()
        .collect();
    let (ok, err): (Vec<_>, Vec<_>) = results.into_iter().partition(|r| r.is_ok());
    let out: Vec<u8> = ok
        .into_iter()
        .map(|r| r.unwrap())
        .collect::<Vec<_>>()
        .concat();
    assert_eq!(out, b"data\n");
    assert_eq!(err.len(), 1);
    let e = err.into_iter().next().unwrap().unwrap_err();
    assert_eq!(e.step(), procession::Step::Write);
    assert_eq!(e.os_error().unwrap().kind(), std::io::ErrorKind::BrokenPipe);
    // The error carries the exit status: head succeeded.
    assert_eq!(e.exit_status().and_then(|s| s.code()), Some(0));

    let out = cmd
        .input(std::iter::repeat("data\n"))
        .ignore_epipe(true)
        .stream()
        .unwrap()
        .collect_string()
        .unwrap();
    assert_eq!(out, "data\n");
}

// 7. Chunk size.

#[test]
fn urandom_with_small_chunks_take_five() {
    let _g = Guard::new();
    let stream = Command::new("cat")
        .arg("/dev/urandom")
        .max_chunk_size(100)
        .stream()
        .unwrap();
    let pid = stream.pid() as i32;
    let chunks: Vec<Bytes> = stream.take(5).collect::<Result<_, _>>().unwrap();
    assert_eq!(chunks.len(), 5);
    assert!(chunks.iter().all(|c| c.len() == 100));
    assert_eq!(chunks.iter().map(Bytes::len).sum::<usize>(), 500);
    assert!(wait_dead(pid, Duration::from_secs(5)), "cat still running");
}

// 8. Input and output at different rates.

#[test]
fn grep_over_a_thousand_lines() {
    let _g = Guard::new();
    let lines = (1..=1000).map(|n| format!("X {n} X\n"));
    let out = Command::new("grep")
        .arg("250")
        .input(lines)
        .stream()
        .unwrap()
        .collect_string()
        .unwrap();
    assert_eq!(out, "X 250 X\n");
}

// 9. Early stop.

#[test]
fn early_drop_of_a_term_ignoring_child_kills_it_after_drop_and_stop_timeouts() {
    let _g = Guard::new();
    let mut stream = pt_cmd(["ignore-term"])
        .drop_timeout(Duration::from_millis(200))
        .stop_timeout(Duration::from_millis(200))
        .stream()
        .unwrap();
    let pid = stream.pid() as i32;
    assert_eq!(stream.next().unwrap().unwrap(), Bytes::from("ready\n"));
    let dropped = Instant::now();
    drop(stream);
    assert!(
        dropped.elapsed() < Duration::from_millis(50),
        "drop blocked"
    );
    assert!(wait_dead(pid, Duration::from_secs(5)));
    let after = dropped.elapsed();
    // TERM is ignored, so only the SIGKILL at 200 + 200 ms ends it.
    assert!(after >= Duration::from_millis(380), "died after {after:?}");
    assert!(after < Duration::from_secs(3), "died after {after:?}");
}

/// The default drop timeout applies: a dropped stream's child (which
/// reports the SIGTERM it catches on a pipe of the test's) gets
/// `DEFAULT_DROP_TIMEOUT`, 5 s, to end by itself before the stop sequence.
#[test]
fn a_dropped_streams_child_gets_the_default_drop_timeout_before_sigterm() {
    let _g = Guard::new();
    assert_eq!(procession::DEFAULT_DROP_TIMEOUT, Duration::from_secs(5));
    let (reports_r, reports_w) = pipe();
    let stream = Command::shell(format!("exec '{}' catch 1 15 >&2", pt().display()))
        .stderr(reports_w)
        .stream()
        .unwrap();
    let mut reports = std::fs::File::from(reports_r);
    assert_eq!(read_line(&mut reports), "ready\n"); // SIGTERM is blocked, caught on arrival
    let dropped = Instant::now();
    drop(stream);
    assert_eq!(read_line(&mut reports), "caught 15\n");
    let after = dropped.elapsed();
    assert!(
        after >= procession::DEFAULT_DROP_TIMEOUT,
        "SIGTERM after {after:?}"
    );
    assert!(
        after < procession::DEFAULT_DROP_TIMEOUT + Duration::from_secs(3),
        "SIGTERM after {after:?}"
    );
    assert_eq!(read_to_end_string(&mut reports), "");
}

#[test]
fn early_drop_never_reports_an_error() {
    let _g = Guard::new();
    let mut stream = Command::new("cat").arg("/dev/zero").stream().unwrap();
    let pid = stream.pid() as i32;
    // The consumer takes three chunks and walks away: nothing it read is an
    // error, and the drop itself reports nothing (it cannot fail).
    let chunks: Vec<Bytes> = stream.by_ref().take(3).collect::<Result<_, _>>().unwrap();
    assert_eq!(chunks.len(), 3);
    assert!(
        chunks
            .iter()
            .all(|c| !c.is_empty() && c.iter().all(|&b| b == 0))
    );
    drop(stream);
    // ... and the child does not run on: cat dies of SIGPIPE (or the stop
    // sequence) in the background.
    assert!(wait_dead(pid, Duration::from_secs(10)), "cat {pid} runs on");
}

// 10. A grandchild keeps stdout open.

#[test]
fn grandchild_holding_stdout_does_not_hang_the_stream() {
    let _g = Guard::new();
    let start = Instant::now();
    let cpu = thread_cpu();
    let mut stream = pt_cmd(["hold-stdout"])
        .pipe_drain_timeout(Duration::from_millis(300))
        .stop_group(false) // the grandchild is meant to outlive the child
        .stream()
        .unwrap();
    let first = stream.next().unwrap().unwrap();
    let grandchild: i32 = std::str::from_utf8(&first).unwrap().trim().parse().unwrap();
    let rest: Vec<Bytes> = stream.by_ref().collect::<Result<_, _>>().unwrap();
    let elapsed = start.elapsed();
    // The 300 ms of draining were slept through, not spun (the stream
    // runs on this thread).
    let cpu = thread_cpu() - cpu;
    assert!(cpu < Duration::from_millis(100), "{cpu:?} of CPU");
    assert!(rest.is_empty());
    assert!(stream.status().unwrap().success());
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert!(
        alive(grandchild),
        "the grandchild was meant to outlive the stream"
    );
    // SAFETY: killing the helper's grandchild, which we own (subreaper).
    unsafe { libc::kill(grandchild, libc::SIGKILL) };
}

#[test]
fn grandchild_holding_stdout_default_drain_timeout() {
    let _g = Guard::new();
    let start = Instant::now();
    // Without group stop, only the default drain timeout (1 s) can end the
    // stream while the background sleep holds stdout.
    let mut stream = Command::new("sh")
        .args(["-c", "sleep 30 & echo $!"])
        .stop_group(false)
        .stream()
        .unwrap();
    let first = stream.next().unwrap().unwrap();
    let grandchild: i32 = std::str::from_utf8(&first).unwrap().trim().parse().unwrap();
    assert!(stream.next().is_none());
    let took = start.elapsed();
    assert_eq!(stream.status().unwrap().code(), Some(0));
    assert!(
        alive(grandchild),
        "the drain timeout ended it, not a signal"
    );
    assert!(took >= procession::DEFAULT_PIPE_DRAIN_TIMEOUT, "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // SAFETY: killing the leftover grandchild (re-parented to us).
    unsafe { libc::kill(grandchild, libc::SIGKILL) };
    assert!(wait_dead(grandchild, Duration::from_secs(5)));
}

// 11. Back-pressure.

#[test]
fn slow_consumer_blocks_the_child_and_memory_stays_one_chunk() {
    let _g = Guard::new();
    let mut stream = pt_cmd(["write", "67108864"]).stream().unwrap();
    let pid = stream.pid() as i32;
    let mut total = 0;
    for _ in 0..30 {
        total += stream.next().unwrap().unwrap().len();
        std::thread::sleep(Duration::from_millis(10)); // the consumer's pace
    }
    let held = stream.buffered_high_water();
    assert!(held <= procession::DEFAULT_MAX_CHUNK_SIZE, "{held}");
    // The writer is parked in write(2) on the full pipe.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap();
        let nr: i64 = syscall
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap_or(-1);
        let (state, _, _) = stat(pid).unwrap();
        if nr == libc::SYS_write && state == 'S' {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writer not blocked: {syscall} {state}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // The child's own progress, counted by the kernel (`wchar`: bytes its
    // completed writes moved): everything we consumed, plus at most what
    // the pipe (1 MiB) and the stream (one chunk) hold. A stream that read
    // ahead of its consumer, or a pipe larger than documented, lets the
    // writer get further.
    let written = written_by(pid);
    let bound = total + procession::DEFAULT_PIPE_CAPACITY + held;
    assert!(
        written >= total && written <= bound,
        "the child wrote {written} bytes; consumed {total}, at most {bound}"
    );
    drop(stream);
    assert!(wait_dead(pid, Duration::from_secs(5)));
}

// 12. The handle API.

#[test]
fn bc_conversation() {
    let _g = Guard::new();
    let mut child = Command::new("bc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.write_all(b"1 + 1\n").unwrap();
    assert_eq!(child.read().unwrap().unwrap(), Bytes::from("2\n"));
    child.write_all(b"2 * 10 + 1\n").unwrap();
    assert_eq!(child.read().unwrap().unwrap(), Bytes::from("21\n"));
    child.close_stdin();
    assert_eq!(child.read().unwrap(), None);
    assert!(child.wait().unwrap().success());
}

#[test]
fn read_any_returns_late_stdout_after_stderr_eof() {
    let _g = Guard::new();
    let mut child = Command::new("sh")
        .args(["-c", "echo e >&2; exec 2>&-; read x; echo late"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(
        child.read_any().unwrap(),
        Some(procession::OutputChunk::Stderr(Bytes::from("e\n")))
    );
    child.write_all(b"go\n").unwrap();
    assert_eq!(
        child.read_any().unwrap(),
        Some(procession::OutputChunk::Stdout(Bytes::from("late\n")))
    );
    assert_eq!(child.read_any().unwrap(), None);
    assert!(child.wait().unwrap().success());
}

#[test]
fn write_while_another_thread_reads_keeps_every_byte_in_order() {
    let _g = Guard::new();
    let mut child = pt_cmd(["echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut all).unwrap();
        all
    });
    let mut sent = Vec::new();
    for i in 0..5u8 {
        let block: Vec<u8> = (0..65_535u32)
            .map(|j| (j as u8).wrapping_add(i * 7))
            .collect();
        child.write_all(&block).unwrap();
        sent.extend_from_slice(&block);
    }
    child.close_stdin();
    let got = reader.join().unwrap();
    assert_eq!(got.len(), 5 * 65_535);
    assert!(got == sent);
    assert!(child.wait().unwrap().success());
}

#[test]
fn write_after_exit_is_a_broken_pipe_error() {
    let _g = Guard::new();
    let mut child = pt_cmd(["exit", "0"]).stdin(Stdio::piped()).spawn().unwrap();
    let status = child.wait_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert!(status.success());
    let err = child.write_all(b"too late").unwrap_err();
    assert_eq!(err.step(), procession::Step::Write);
    assert_eq!(
        err.os_error().unwrap().kind(),
        std::io::ErrorKind::BrokenPipe
    );
}

// 13. Many streams at once.

#[test]
fn many_concurrent_streams() {
    let _g = Guard::new();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..40 {
            s.spawn(|| {
                for _ in 0..4 {
                    let evs = events_of(
                        Command::new("head")
                            .args(["-c", "4096", "/dev/zero"])
                            .stderr(Stdio::piped())
                            .max_chunk_size(512),
                    );
                    let mut out = 0;
                    for ev in &evs {
                        match ev {
                            Event::Stdout(b) => {
                                assert!(b.len() <= 512);
                                assert!(b.iter().all(|&x| x == 0));
                                out += b.len();
                            }
                            Event::Stderr(b) => panic!("unexpected stderr {b:?}"),
                            Event::Exit(s) => assert!(s.success()),
                        }
                    }
                    assert_eq!(out, 4096);
                    assert!(matches!(evs.last(), Some(Event::Exit(_))));
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(counter.into_inner(), 160);
}

// output()

#[test]
fn output_collects_both_streams_of_any_size() {
    let _g = Guard::new();
    let pt = pt();
    let script = format!(
        "'{0}' write 3000000; '{0}' write 2000000 >&2; exit 4",
        pt.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(out.stdout.len(), 3_000_000);
    assert_eq!(out.stderr.len(), 2_000_000);
    assert!(
        out.stdout
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i % 251) as u8)
    );
    assert!(
        out.stderr
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i % 251) as u8)
    );
}

#[test]
fn stream_delivers_large_output_exactly() {
    let _g = Guard::new();
    let out = pt_cmd(["write", "10000000", "8192"])
        .stream()
        .unwrap()
        .collect_bytes()
        .unwrap();
    assert_eq!(out.len(), 10_000_000);
    assert!(out.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
}

#[test]
fn timeout_ends_a_stream_with_timed_out_status() {
    let _g = Guard::new();
    let err = pt_cmd(["sleep", "100"])
        .timeout(Duration::from_millis(200))
        .stream()
        .unwrap()
        .collect_bytes()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exit);
    assert!(err.exit_status().unwrap().timed_out());
}

#[test]
fn drain_timeout_never_cuts_output_already_in_the_pipe() {
    let _g = Guard::new();
    let dir = tempdir();
    let total = 900_000;
    // The shell writes everything (it fits in the 1 MiB pipe), leaves a
    // background `sleep` holding stdout and exits: no timing window, the
    // drain timer is what must end the stream, after every byte.
    let script = format!(
        "'{}' write {total}; sleep 30 & echo $! >&2; exit 0",
        pt().display()
    );
    let stream = Command::new("sh")
        .args(["-c", &script])
        .stderr(Stdio::file(dir.join("pid")))
        .pipe_drain_timeout(Duration::from_millis(300))
        .stop_group(false) // the sleep is meant to outlive the shell
        .max_chunk_size(100_000)
        .stream()
        .unwrap();
    let mut got = Vec::new();
    for chunk in stream {
        got.extend_from_slice(&chunk.unwrap());
        // The subject of the test: a consumer slower than the drain
        // timeout over the whole output (9 chunks x 60 ms).
        std::thread::sleep(Duration::from_millis(60));
    }
    assert_eq!(got.len(), total);
    assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    let sleep: i32 = std::fs::read_to_string(dir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(sleep), "the stream ended by the drain timer, not EOF");
    // SAFETY: killing the leftover background sleep (re-parented to us).
    unsafe { libc::kill(sleep, libc::SIGKILL) };
    assert!(wait_dead(sleep, Duration::from_secs(5)));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_input_source_is_dropped_once_used_up_not_at_the_end_of_the_run() {
    let _g = Guard::new();
    // A source holding resources (a file, a connection) is released when
    // the child has all of it, while the child runs on.
    struct Source {
        data: Option<Bytes>,
        dropped: std::sync::mpsc::Sender<()>,
    }
    impl Iterator for Source {
        type Item = Bytes;
        fn next(&mut self) -> Option<Bytes> {
            self.data.take()
        }
    }
    impl Drop for Source {
        fn drop(&mut self) {
            let _ = self.dropped.send(());
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let source = Source {
        data: Some(Bytes::from("abc")),
        dropped: tx,
    };
    let mut chunks = Command::new("sh")
        .args(["-c", "cat; echo; echo after-eof"])
        .input(source)
        .stream()
        .unwrap();
    let mut out = Vec::new();
    while !out.ends_with(b"after-eof\n") {
        out.extend_from_slice(&chunks.next().expect("more output").unwrap());
    }
    // The child saw end-of-file, so the source had ended: it is gone,
    // though the stream is not over.
    assert!(rx.try_recv().is_ok(), "the used-up source is still held");
    assert_eq!(out, b"abc\nafter-eof\n");
    assert!(chunks.next().is_none());
}

#[test]
fn buffered_high_water_counts_exactly_what_the_stream_held() {
    let _g = Guard::new();
    // One read of 3 bytes, nothing else held: 3.
    let mut chunks = Command::new("echo").arg("hi").stream().unwrap();
    assert_eq!(chunks.buffered_high_water(), 0);
    assert_eq!(chunks.next().unwrap().unwrap(), "hi\n");
    assert_eq!(chunks.buffered_high_water(), 3);
    assert!(chunks.next().is_none());
    assert_eq!(chunks.buffered_high_water(), 3);
    // A 300 kB input is held whole once taken from the source (it is one
    // chunk); nothing read back can add to it, as cat returns no more than
    // it was given.
    let mut chunks = Command::new("cat")
        .input_bytes(vec![b'x'; 300_000])
        .pipe_capacity(Some(4096))
        .stream()
        .unwrap();
    let mut total = 0;
    for chunk in chunks.by_ref() {
        total += chunk.unwrap().len();
    }
    assert_eq!(total, 300_000);
    assert_eq!(chunks.buffered_high_water(), 300_000);
}

#[test]
fn buffered_high_water_adds_the_stderr_tail_held_while_input_is_pending() {
    let _g = Guard::new();
    // The child writes 10,000 bytes to stderr through a 4 KiB pipe (so the
    // stream has read most of it into its tail before the child goes on),
    // then echoes its input. The first 4 KiB input chunk fills stdin; the
    // second, 100 kB, is taken only once cat reads, with the tail held.
    let script = format!("'{}' write 10000 >&2; exec cat", pt().display());
    let chunks = vec![
        Bytes::from(vec![b'a'; 4096]),
        Bytes::from(vec![b'b'; 100_000]),
    ];
    let mut stream = Command::new("sh")
        .args(["-c", &script])
        .stderr(Stdio::piped())
        .pipe_capacity(Some(4096))
        .input(chunks)
        .stream()
        .unwrap();
    let mut total = 0;
    for chunk in stream.by_ref() {
        total += chunk.unwrap().len();
    }
    assert_eq!(total, 104_096);
    // At most one input chunk, one read (64 KiB) and the 8 KiB tail; at
    // least the 100 kB chunk plus what the tail held then (over 5,900).
    let high = stream.buffered_high_water();
    assert!(high >= 100_000 + 5_904, "{high}");
    assert!(high <= 100_000 + 65_536 + 8_192, "{high}");
}

#[test]
fn a_host_whose_stdout_is_a_broken_pipe_still_waits_without_spinning() {
    let _g = Guard::new();
    // The stream's waits must not involve our fd 1, here a broken pipe.
    let (out, cpu) = with_broken_stdout(|| {
        let cpu = thread_cpu();
        // The child is quiet for 300 ms (the subject: an idle wait).
        let out = Command::new("sh")
            .args(["-c", "sleep 0.3; echo done"])
            .stream()
            .unwrap()
            .collect_string();
        (out, thread_cpu() - cpu)
    });
    assert_eq!(out.unwrap(), "done\n");
    assert!(cpu < Duration::from_millis(100), "{cpu:?} of CPU");
}

//! The async API (feature `tokio`): the streaming tests in async form, many
//! concurrent children, back-pressure under a busy runtime, cancel safety,
//! and dropping a runtime with children running.
#![cfg(feature = "tokio")]

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use procession::{Command, ErrorKind, Event, Stdio};
use support::*;

fn current() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn multi() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The leak guard, taken after tokio's process-wide state exists: with some
/// feature sets (its signal driver) the first runtime opens descriptors that
/// live as long as the process.
fn guard() -> Guard {
    drop(current());
    Guard::new()
}

async fn collect_string(cmd: &Command) -> String {
    String::from_utf8(cmd.stream_async().unwrap().collect_bytes().await.unwrap()).unwrap()
}

async fn events_of(cmd: &Command) -> Vec<Event> {
    let mut evs = cmd.events_async().unwrap();
    let mut out = Vec::new();
    while let Some(e) = evs.next_event().await {
        out.push(e.unwrap());
    }
    out
}

// Streaming test 1: exile's examples.
#[test]
fn exile_examples_async() {
    let _g = guard();
    for rt in [current(), multi()] {
        rt.block_on(async {
            assert_eq!(
                collect_string(Command::new("echo").args(["Hello", "World!"])).await,
                "Hello World!\n"
            );
            assert_eq!(
                collect_string(Command::new("cat").input(["Hello ", "Back!"])).await,
                "Hello Back!"
            );
            let lines = (1..=10).map(|n| format!("{n}\n"));
            assert_eq!(
                collect_string(Command::new("cat").input(lines)).await,
                "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"
            );
            let stream = futures_util::stream::iter((1..=10).map(|n| format!("{n}\n")));
            assert_eq!(
                collect_string(Command::new("cat").input_stream(stream)).await,
                "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"
            );
            let out = collect_string(Command::new("cat").input_async_fn(|mut sink| async move {
                use tokio::io::AsyncWriteExt;
                for _ in 0..2 {
                    sink.write_all(b"data\n").await?;
                }
                Ok(())
            }))
            .await;
            assert_eq!(out, "data\ndata\n");
            let out = collect_string(Command::new("cat").input_fn(|sink| {
                use std::io::Write;
                sink.write_all(b"sync sink\n")
            }))
            .await;
            assert_eq!(out, "sync sink\n");
            assert_eq!(
                collect_string(Command::new("base64").input(["abcdef"])).await,
                "YWJjZGVm\n"
            );
            let reader = std::io::Cursor::new(b"2\n1\n".to_vec());
            assert_eq!(
                collect_string(Command::new("sort").input_async_read(reader)).await,
                "1\n2\n"
            );
        });
    }
}

// Streaming test 2.
#[test]
fn no_input_and_empty_chunks_async() {
    let _g = guard();
    current().block_on(async {
        assert_eq!(collect_string(&Command::new("cat")).await, "");
        assert_eq!(
            collect_string(Command::new("cat").input(["", "a", "", "b"])).await,
            "ab"
        );
        let s = futures_util::stream::iter(["", "x", ""]);
        assert_eq!(
            collect_string(Command::new("cat").input_stream(s)).await,
            "x"
        );
    });
}

// Streaming tests 3 and 4.
#[test]
fn stderr_modes_async() {
    let _g = guard();
    current().block_on(async {
        let evs = events_of(
            Command::new("sh")
                .args(["-c", "echo stdout && echo stderr >&2"])
                .stderr(Stdio::piped()),
        )
        .await;
        assert_eq!(evs.len(), 3, "{evs:?}");
        assert_eq!(evs[0], Event::Stdout(Bytes::from("stdout\n")));
        assert_eq!(evs[1], Event::Stderr(Bytes::from("stderr\n")));
        assert!(matches!(evs[2], Event::Exit(s) if s.code() == Some(0)));
        let merged = Command::new("sh")
            .args(["-c", "echo stdout && echo stderr >&2"])
            .stderr(Stdio::to_stdout())
            .clone();
        assert_eq!(collect_string(&merged).await, "stdout\nstderr\n");
        let evs = events_of(
            Command::new("sh")
                .args(["-c", "echo o; echo e >&2"])
                .stderr(Stdio::null()),
        )
        .await;
        assert_eq!(evs.len(), 2);
        let out = collect_string(pt_cmd(["interleave", "10"]).stderr(Stdio::to_stdout())).await;
        let want: String = (0..10).map(|i| format!("out {i}\nerr {i}\n")).collect();
        assert_eq!(out, want);
    });
}

// Streaming test 5.
#[test]
fn exit_status_async() {
    let _g = guard();
    current().block_on(async {
        let err = Command::new("sh")
            .args(["-c", "exit 10"])
            .stream_async()
            .unwrap()
            .collect_bytes()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Exit);
        assert_eq!(err.exit_status().unwrap().code(), Some(10));
        // Through the futures Stream, the error is an io::Error carrying it.
        let mut s = Command::new("sh")
            .args(["-c", "exit 10"])
            .stream_async()
            .unwrap();
        let io_err = s.next().await.unwrap().unwrap_err();
        let inner = procession::Error::from_io(&io_err).unwrap();
        assert_eq!(inner.exit_status().unwrap().code(), Some(10));
        assert!(s.next().await.is_none());
        let evs = events_of(Command::new("sh").args(["-c", "exit 10"])).await;
        assert!(matches!(evs[..], [Event::Exit(s)] if s.code() == Some(10)));
        let mut ok = Command::new("sh");
        ok.args(["-c", "exit 10"]).success_exit_codes([0, 10]);
        assert_eq!(collect_string(&ok).await, "");
        let evs = events_of(&ok).await;
        assert!(matches!(evs[..], [Event::Exit(s)] if s.success()));
        let out = Command::shell("echo Test; echo ERR 1>&2; exit 4")
            .output_async()
            .await
            .unwrap();
        assert_eq!(
            (out.stdout, out.stderr, out.status.code()),
            (b"Test\n".to_vec(), b"ERR\n".to_vec(), Some(4))
        );
    });
}

// Streaming test 6.
#[test]
fn infinite_input_and_broken_pipe_async() {
    let _g = guard();
    current().block_on(async {
        let start = Instant::now();
        let s = Command::new("cat")
            .input(std::iter::repeat("data\n"))
            .ignore_epipe(true)
            .stream_async()
            .unwrap();
        let chunks: Vec<Bytes> = s.take(3).map(|r| r.unwrap()).collect().await;
        assert_eq!(chunks.len(), 3);
        assert!(start.elapsed() < Duration::from_secs(2));
        let forever = futures_util::stream::repeat("data\n");
        let out = collect_string(
            Command::new("head")
                .args(["-c", "5"])
                .input_stream(forever)
                .ignore_epipe(true),
        )
        .await;
        assert_eq!(out, "data\n");
        let forever = futures_util::stream::repeat("data\n");
        let err = Command::new("head")
            .args(["-c", "5"])
            .input_stream(forever)
            .ignore_epipe(false)
            .stream_async()
            .unwrap()
            .collect_bytes()
            .await
            .unwrap_err();
        assert_eq!(err.step(), procession::Step::Write);
        assert_eq!(
            err.os_error().unwrap().kind(),
            std::io::ErrorKind::BrokenPipe
        );
    });
}

// Streaming tests 7 and 8.
#[test]
fn chunk_size_and_rates_async() {
    let _g = guard();
    current().block_on(async {
        let s = Command::new("cat")
            .arg("/dev/urandom")
            .max_chunk_size(100)
            .stream_async()
            .unwrap();
        let pid = s.pid() as i32;
        let chunks: Vec<Bytes> = s.take(5).map(|r| r.unwrap()).collect().await;
        assert_eq!(chunks.iter().map(Bytes::len).sum::<usize>(), 500);
        assert!(chunks.iter().all(|c| c.len() == 100));
        assert!(wait_dead(pid, Duration::from_secs(5)));
        let lines = (1..=1000).map(|n| format!("X {n} X\n"));
        assert_eq!(
            collect_string(Command::new("grep").arg("250").input(lines)).await,
            "X 250 X\n"
        );
    });
}

// Streaming test 9.
#[test]
fn early_drop_async() {
    let _g = guard();
    current().block_on(async {
        let mut s = pt_cmd(["ignore-term"])
            .drop_timeout(Duration::from_millis(200))
            .stop_timeout(Duration::from_millis(200))
            .stream_async()
            .unwrap();
        let pid = s.pid() as i32;
        assert_eq!(s.next().await.unwrap().unwrap(), Bytes::from("ready\n"));
        let t = Instant::now();
        drop(s);
        assert!(t.elapsed() < Duration::from_millis(50));
        assert!(wait_dead(pid, Duration::from_secs(5)));
        let after = t.elapsed();
        assert!(
            after >= Duration::from_millis(380) && after < Duration::from_secs(3),
            "{after:?}"
        );
    });
}

// Streaming test 10.
#[test]
fn grandchild_holding_stdout_async() {
    let _g = guard();
    current().block_on(async {
        let start = Instant::now();
        let mut s = pt_cmd(["hold-stdout"])
            .pipe_drain_timeout(Duration::from_millis(300))
            .stop_group(false)
            .stream_async()
            .unwrap();
        let first = s.next().await.unwrap().unwrap();
        let grandchild: i32 = std::str::from_utf8(&first).unwrap().trim().parse().unwrap();
        assert!(s.next().await.is_none());
        assert!(s.status().unwrap().success());
        assert!(start.elapsed() < Duration::from_secs(3));
        // SAFETY: the helper's grandchild is ours to kill (subreaper).
        unsafe { libc::kill(grandchild, libc::SIGKILL) };
    });
}

// Streaming test 12: the handle API.
#[test]
fn handle_api_async() {
    let _g = guard();
    multi().block_on(async {
        let mut bc = Command::new("bc")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn_async()
            .unwrap();
        bc.write_all(b"1 + 1\n").await.unwrap();
        assert_eq!(bc.read().await.unwrap().unwrap(), Bytes::from("2\n"));
        bc.write_all(b"2 * 10 + 1\n").await.unwrap();
        assert_eq!(bc.read().await.unwrap().unwrap(), Bytes::from("21\n"));
        bc.close_stdin();
        assert_eq!(bc.read().await.unwrap(), None);
        assert!(bc.wait().await.unwrap().success());

        let mut sh = Command::new("sh")
            .args(["-c", "echo e >&2; exec 2>&-; read x; echo late"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn_async()
            .unwrap();
        assert_eq!(
            sh.read_any().await.unwrap(),
            Some(procession::OutputChunk::Stderr(Bytes::from("e\n")))
        );
        sh.write_all(b"go\n").await.unwrap();
        assert_eq!(
            sh.read_any().await.unwrap(),
            Some(procession::OutputChunk::Stdout(Bytes::from("late\n")))
        );
        assert_eq!(sh.read_any().await.unwrap(), None);
        assert!(sh.wait().await.unwrap().success());

        // 5 x 65,535 bytes written while another task reads them back.
        let mut echo = pt_cmd(["echo"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn_async()
            .unwrap();
        let mut stdout = echo.stdout.take().unwrap();
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut all)
                .await
                .unwrap();
            all
        });
        let mut sent = Vec::new();
        for i in 0..5u8 {
            let block: Vec<u8> = (0..65_535u32)
                .map(|j| (j as u8).wrapping_add(i * 7))
                .collect();
            echo.write_all(&block).await.unwrap();
            sent.extend_from_slice(&block);
        }
        echo.close_stdin();
        assert!(reader.await.unwrap() == sent);
        assert!(echo.wait().await.unwrap().success());

        // Writing after the child exited and was reaped is a broken pipe,
        // not a panic (`write_after_exit_is_broken_pipe_async` writes
        // before the wait). wait_timeout leaves stdin open, unlike wait.
        let mut done = pt_cmd(["exit", "0"])
            .stdin(Stdio::piped())
            .spawn_async()
            .unwrap();
        assert!(
            done.wait_timeout(Duration::from_secs(5))
                .await
                .unwrap()
                .unwrap()
                .success()
        );
        let err = done.write_all(b"too late").await.unwrap_err();
        assert_eq!(
            err.os_error().map(std::io::Error::kind),
            Some(std::io::ErrorKind::BrokenPipe),
            "{err}"
        );
    });
}

#[test]
fn write_after_exit_is_broken_pipe_async() {
    let _g = guard();
    current().block_on(async {
        let mut child = pt_cmd(["exit", "0"])
            .stdin(Stdio::piped())
            .spawn_async()
            .unwrap();
        let pid = child.pid() as i32;
        assert!(wait_dead(pid, Duration::from_secs(5)));
        let err = child.write_all(b"too late").await.unwrap_err();
        assert_eq!(
            err.os_error().unwrap().kind(),
            std::io::ErrorKind::BrokenPipe
        );
        assert!(child.wait().await.unwrap().success());
    });
}

#[test]
fn stop_timeout_and_signals_async() {
    let _g = guard();
    current().block_on(async {
        let mut c = pt_cmd(["sleep", "100"]).spawn_async().unwrap();
        let st = c.stop().await.unwrap();
        assert_eq!(st.signal(), Some(procession::Signal::TERM));
        assert_eq!(st.ended(), procession::Ended::Requested);
        let mut c = pt_cmd(["sleep", "100"])
            .timeout(Duration::from_millis(100))
            .spawn_async()
            .unwrap();
        assert!(c.wait().await.unwrap().timed_out());
        assert_eq!(
            c.signal(procession::Signal::USR1).unwrap_err().kind(),
            ErrorKind::AlreadyReaped
        );
        let mut c = Command::new("sh")
            .args(["-c", "sleep 100 & sleep 100"])
            .stop_group(true)
            .spawn_async()
            .unwrap();
        let pgid = c.pid() as i32;
        c.stop().await.unwrap();
        assert!(!group_alive(pgid));
    });
}

fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        e.file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
            .and_then(stat)
            .is_some_and(|(state, _, pgrp)| pgrp == pgid && state != 'Z')
    })
}

// Test 2: a thousand children at once on one thread.
#[test]
fn thousand_concurrent_cats_on_a_current_thread_runtime() {
    let _g = guard();
    raise_fd_limit(); // up to 4 descriptors per child; the usual soft limit is 1024
    current().block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..1000u32 {
            set.spawn(async move {
                let data: Vec<u8> = (0..65_536u32)
                    .map(|j| (j.wrapping_mul(31).wrapping_add(i)) as u8)
                    .collect();
                let out = Command::new("cat")
                    .input_bytes(data.clone())
                    .stream_async()
                    .unwrap()
                    .collect_bytes()
                    .await
                    .unwrap();
                if out != data {
                    let first = out.iter().zip(&data).position(|(a, b)| a != b);
                    panic!(
                        "child {i}: got {} bytes, want {}; first difference at {first:?}",
                        out.len(),
                        data.len()
                    );
                }
            });
        }
        let mut n = 0;
        while let Some(r) = set.join_next().await {
            r.unwrap();
            n += 1;
        }
        assert_eq!(n, 1000);
    });
}

#[test]
fn thousand_sleeping_children_dropped_together_are_reaped_within_two_seconds() {
    let _g = guard();
    raise_fd_limit(); // 2 descriptors per child; the usual soft limit is 1024
    current().block_on(async {
        let children: Vec<_> = (0..1000)
            .map(|_| {
                Command::new("sleep")
                    .arg("30")
                    .stdout(Stdio::piped())
                    .spawn_async()
                    .unwrap()
            })
            .collect();
        let pids: Vec<i32> = children.iter().map(|c| c.pid() as i32).collect();
        let me = std::process::id() as i32;
        let t = Instant::now();
        drop(children);
        // Judged by /proc, not by the library's count: a child is reaped
        // once its /proc entry is gone (or, reused already, no longer ours).
        // A zombie or a sleep still running is still our child.
        loop {
            let left: Vec<i32> = pids
                .iter()
                .copied()
                .filter(|&pid| stat(pid).is_some_and(|(_, ppid, _)| ppid == me))
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "{} not reaped, e.g. {:?}: {:?}",
                left.len(),
                left[0],
                stat(left[0])
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
}

// Test 3: a slow consumer does not slow the runtime down.
#[test]
fn slow_consumer_keeps_other_tasks_on_time() {
    let _g = guard();
    current().block_on(async {
        let ticker = tokio::spawn(async {
            let mut worst = Duration::ZERO;
            let mut next = Instant::now() + Duration::from_millis(10);
            let end = Instant::now() + Duration::from_secs(1);
            while Instant::now() < end {
                tokio::time::sleep_until(next.into()).await;
                worst = worst.max(Instant::now().saturating_duration_since(next));
                next += Duration::from_millis(10);
            }
            worst
        });
        let mut s = Command::new("cat").arg("/dev/zero").stream_async().unwrap();
        let pid = s.pid() as i32;
        let end = Instant::now() + Duration::from_secs(1);
        let mut chunks = 0;
        let mut total = 0;
        while Instant::now() < end {
            total += s.next().await.unwrap().unwrap().len();
            chunks += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(chunks >= 20);
        // Back-pressure, measured on the child (the kernel's count of what
        // cat's completed writes moved): what we consumed, plus at most a
        // full pipe and what the stream holds. A stream reading ahead of
        // this slow consumer would let cat write far more.
        let held = s.buffered_high_water();
        assert!(held <= procession::DEFAULT_MAX_CHUNK_SIZE, "{held}");
        let written = written_by(pid);
        let bound = total + procession::DEFAULT_PIPE_CAPACITY + held;
        assert!(
            written >= total && written <= bound,
            "cat wrote {written} bytes; consumed {total}, at most {bound}"
        );
        let worst = ticker.await.unwrap();
        assert!(
            worst < Duration::from_millis(50),
            "a tick was {worst:?} late"
        );
    });
}

// Test 4: cancel safety of read(). `select!` races each read() against a
// branch that is always ready, so every read that is pending when it is
// polled is cancelled: between our writes to `pt echo` there is nothing to
// read, which makes most of the 10,000 iterations cancellations (counted and
// asserted), while every byte echoed must still arrive exactly once.
#[test]
fn read_raced_with_a_timer_loses_and_duplicates_nothing() {
    let _g = guard();
    current().block_on(async {
        let mut child = pt_cmd(["echo"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .max_chunk_size(4096)
            .spawn_async()
            .unwrap();
        let mut sent = Vec::new();
        let mut got = Vec::new();
        let mut cancelled = 0;
        for i in 0..10_000usize {
            if i % 10 == 0 {
                // 997 bytes: one atomic pipe write, echoed back as at most
                // one chunk.
                let block: Vec<u8> = (0..997).map(|j| ((i * 997 + j) % 251) as u8).collect();
                child.write_all(&block).await.unwrap();
                sent.extend_from_slice(&block);
            }
            tokio::select! {
                biased;
                r = child.read() => got.extend_from_slice(&r.unwrap().unwrap()),
                _ = std::future::ready(()) => cancelled += 1,
            }
        }
        child.close_stdin();
        while let Some(b) = child.read().await.unwrap() {
            got.extend_from_slice(&b);
        }
        assert!(cancelled >= 9_000, "only {cancelled} reads were cancelled");
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "bytes lost, duplicated or reordered");
        assert!(child.wait().await.unwrap().success());
    });
}

#[test]
fn wait_future_dropped_does_not_leak_the_child() {
    let _g = guard();
    current().block_on(async {
        // The child reads its stdin (a pipe of the test's, not a piped
        // stdin that wait() would close) to the end: it cannot exit before
        // the test lets it, so the first wait is surely cut short.
        let (r, w) = pipe();
        let mut child = pt_cmd(["sink"])
            .stdin(r)
            .stdout(Stdio::null())
            .spawn_async()
            .unwrap();
        let pid = child.pid() as i32;
        assert!(
            tokio::time::timeout(Duration::from_millis(20), child.wait())
                .await
                .is_err()
        );
        assert!(alive(pid), "the cancelled wait ended the child");
        drop(w);
        assert!(child.wait().await.unwrap().success());
        assert!(stat(pid).is_none(), "reaped: {:?}", stat(pid));
    });
}

// Test 5: the runtime goes away with children running.
#[test]
fn dropping_the_runtime_stops_and_reaps_its_children() {
    let _g = guard();
    let pids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let rt = multi();
        for _ in 0..10 {
            let pids = pids.clone();
            rt.spawn(async move {
                let mut child = pt_cmd(["sleep", "100"])
                    .stdout(Stdio::piped())
                    .spawn_async()
                    .unwrap();
                pids.lock().unwrap().push(child.pid() as i32);
                let _ = child.wait().await;
            });
        }
        let mut s = rt.block_on(async { pt_cmd(["write", "100000000"]).stream_async().unwrap() });
        rt.block_on(async { s.next().await.unwrap().unwrap() });
        while pids.lock().unwrap().len() < 10 {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(rt);
        drop(s);
    }
    for pid in pids.lock().unwrap().iter() {
        assert!(
            wait_dead(*pid, Duration::from_secs(5)),
            "{pid} survived its runtime"
        );
    }
}

// Regression: a pushed chunk that the pipe took only after EAGAIN left the
// async source unpolled, and the stream hung with the child waiting for
// input.
#[test]
fn async_sources_larger_than_the_pipe_are_fed_completely() {
    let _g = guard();
    multi().block_on(async {
        let total = 8 * 1024 * 1024;
        let (mut w, r) = tokio::io::duplex(64 * 1024);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let block = vec![7u8; 64 * 1024];
            for _ in 0..total / block.len() {
                w.write_all(&block).await.unwrap();
            }
            w.shutdown().await.unwrap();
        });
        let out = collect_string(pt_cmd(["sink"]).input_async_read(r)).await;
        assert_eq!(out, format!("{total}\n"));
        writer.await.unwrap();
        let chunks = futures_util::stream::iter((0..128).map(|_| vec![1u8; 64 * 1024]));
        let out = collect_string(pt_cmd(["sink"]).input_stream(chunks)).await;
        assert_eq!(out, format!("{total}\n"));
    });
}

// The example program (examples/stream_to_tcp.rs) runs to its end: a slow
// client gets the whole gzip stream; a client that hangs up stops gzip.
#[test]
fn stream_to_tcp_example_runs() {
    let _g = guard();
    let exe = pt()
        .parent()
        .unwrap()
        .join("examples")
        .join("stream_to_tcp");
    assert!(
        exe.exists(),
        "{} is missing (build with --features tokio)",
        exe.display()
    );
    let out = Command::new(&exe)
        .stderr(Stdio::to_stdout())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("which unzip to"), "{text}");
    assert!(
        text.contains("of the 2 gzip processes, 0 still run"),
        "{text}"
    );
}

// Regression: past the drain deadline the async stream ended while output
// was still waiting in the pipe (its readiness had not been asked for in
// that step), losing what a slow consumer had not read yet. Here the shell
// writes 900 kB (all of it fits in the pipe) and exits, leaving a
// background sleep that holds stdout open: only the drain timer can end the
// stream, and it must not end it before the consumer has read every byte.
#[test]
fn drain_timeout_never_cuts_output_already_in_the_pipe_async() {
    let _g = guard();
    let dir = tempdir();
    current().block_on(async {
        let total = 900_000;
        // As the blocking twin: no timing window.
        let script = format!(
            "'{}' write {total}; sleep 30 & echo $! >&2; exit 0",
            pt().display()
        );
        let mut s = Command::new("sh")
            .args(["-c", &script])
            .stderr(Stdio::file(dir.join("pid")))
            .pipe_drain_timeout(Duration::from_millis(300))
            .stop_group(false)
            .max_chunk_size(100_000)
            .stream_async()
            .unwrap();
        let mut got = Vec::new();
        while let Some(chunk) = s.next().await {
            got.extend_from_slice(&chunk.unwrap());
            // Slower than the drain timeout over the whole output.
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        assert_eq!(got.len(), total);
        assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    });
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

/// A runtime built without its I/O or time driver used to make the async
/// API panic inside the library after the child had started (and leave it
/// running); now it is a clear error before anything is spawned.
#[test]
fn a_runtime_without_io_or_timers_is_an_error_before_anything_runs() {
    let _g = guard();
    let dir = tempdir();
    let marker = dir.join("started");
    let line = format!("touch '{}'; sleep 30", marker.display());
    let runtimes = [
        tokio::runtime::Builder::new_current_thread().build(),
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build(),
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build(),
    ];
    for rt in runtimes {
        rt.unwrap().block_on(async {
            let err = Command::shell(&line).output_async().await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.to_string().contains("enable_all"), "{err}");
            assert!(Command::shell(&line).spawn_async().is_err());
            assert!(Command::shell(&line).stream_async().is_err());
            assert!(Command::shell(&line).events_async().is_err());
        });
    }
    assert!(!marker.exists(), "a child was started");
    // Outside any runtime: the same kind of error.
    let err = Command::shell(&line).spawn_async().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    // With both drivers it runs.
    let out = current()
        .block_on(Command::new("echo").arg("ok").output_async())
        .unwrap();
    assert_eq!(out.stdout, b"ok\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn async_types_offer_the_blocking_types_methods() {
    let _g = guard();
    current().block_on(async {
        let mut events = Command::shell("echo out; exit 3").events_async().unwrap();
        assert!(events.pid() > 0);
        assert_eq!(events.status(), None);
        let mut seen = Vec::new();
        while let Some(ev) = events.next_event().await {
            seen.push(ev.unwrap());
        }
        assert_eq!(seen[0], Event::Stdout(Bytes::from("out\n")));
        assert_eq!(events.status().unwrap().code(), Some(3));
        let out = Command::shell("printf 'a\\nb'")
            .stream_async()
            .unwrap()
            .collect_string()
            .await
            .unwrap();
        assert_eq!(out, "a\nb");
        let output = Command::shell("echo x; echo y >&2")
            .stderr(Stdio::piped())
            .events_async()
            .unwrap()
            .collect_output()
            .await
            .unwrap();
        assert_eq!(
            (&output.stdout[..], &output.stderr[..]),
            (&b"x\n"[..], &b"y\n"[..])
        );
        let err = Command::shell("echo partial; exit 5")
            .run_async()
            .await
            .unwrap_err();
        assert_eq!(err.exit_status().unwrap().code(), Some(5));
        assert_eq!(err.output().unwrap().stdout, b"partial\n");
        // Events after a broken input pipe (reported): error with status, then Exit.
        let mut events = Command::new("head")
            .args(["-c", "5"])
            .input(std::iter::repeat("data\n"))
            .ignore_epipe(false)
            .events_async()
            .unwrap();
        let mut items = Vec::new();
        while let Some(ev) = events.next_event().await {
            items.push(ev);
        }
        assert_eq!(items.len(), 3);
        assert_eq!(
            items[1].as_ref().unwrap_err().exit_status().unwrap().code(),
            Some(0)
        );
        assert!(matches!(items[2], Ok(Event::Exit(s)) if s.success()));
    });
}

#[test]
fn spawn_async_refuses_an_input_it_would_not_feed() {
    let _g = guard();
    current().block_on(async {
        let err = Command::new("cat").input(["x"]).spawn_async().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("`input`"), "{err}");
    });
}

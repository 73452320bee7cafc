//! `AsyncChild`, method by method, and the async pipe types and streams
//! through the traits they implement (`AsyncRead`, `AsyncWrite`, `Stream`).
#![cfg(feature = "tokio")]

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use procession::{Command, ErrorKind, Event, Signal, Stdio, Step};
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `f` on a fresh runtime under the leak guard (taken after the
/// runtime exists: its process-wide state is not a leak).
fn check<F: std::future::Future<Output = ()>>(f: F) {
    let rt = rt();
    let _g = Guard::new();
    rt.block_on(f);
}

#[test]
fn signal_group_reaches_a_member_while_the_leader_runs_on() {
    check(async {
        let script = format!(
            "'{pt}' catch 1 10 & echo $!; exec '{pt}' catch 2 10",
            pt = pt().display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stop_group(true)
            .stdout(Stdio::piped())
            .spawn_async()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // The member's pid and two `ready` lines, in either order: both
        // block USR1 from then on.
        let (mut member, mut ready) = (None, 0);
        while member.is_none() || ready < 2 {
            let line = lines.next_line().await.unwrap().expect("a line");
            match line.parse::<i32>() {
                Ok(pid) => member = Some(pid),
                Err(_) => {
                    assert_eq!(line, "ready");
                    ready += 1;
                }
            }
        }
        child.signal_group(Signal::USR1).unwrap();
        let member = member.unwrap();
        assert!(
            wait_dead(member, Duration::from_secs(5)),
            "the member missed it"
        );
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "caught 10");
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "caught 10");
        // Only the group got it: the leader waits for a second one.
        assert_eq!(child.try_wait().unwrap(), None);
        child.kill().unwrap();
        assert_eq!(child.wait().await.unwrap().signal(), Some(Signal::KILL));
    });
}

#[test]
fn signaller_signals_from_another_task() {
    check(async {
        let mut child = pt_cmd(["sleep", "100"]).spawn_async().unwrap();
        let signaller = child.signaller();
        assert_eq!(signaller.pid(), child.pid());
        let task = tokio::spawn(async move { signaller.signal(Signal::INT) });
        task.await.unwrap().unwrap();
        assert_eq!(child.wait().await.unwrap().signal(), Some(Signal::INT));
    });
}

#[test]
fn try_wait_is_none_while_running_and_reaps_once_exited() {
    check(async {
        let mut child = pt_cmd(["exit", "3"])
            .stdin(Stdio::piped())
            .spawn_async()
            .unwrap();
        let mut running = pt_cmd(["sleep", "100"]).spawn_async().unwrap();
        assert_eq!(running.try_wait().unwrap(), None);
        running.kill().unwrap();
        // Dead (a zombie) by /proc, not yet reaped: try_wait reaps it.
        let pid = child.pid() as i32;
        assert!(wait_dead(pid, Duration::from_secs(5)));
        assert!(stat(pid).is_some(), "reaped before try_wait");
        assert_eq!(child.try_wait().unwrap().and_then(|s| s.code()), Some(3));
        assert!(stat(pid).is_none(), "try_wait did not reap it");
        assert_eq!(child.wait().await.unwrap().code(), Some(3));
        assert_eq!(running.wait().await.unwrap().signal(), Some(Signal::KILL));
    });
}

#[test]
fn start_stop_returns_at_once_and_the_sequence_goes_on() {
    check(async {
        let mut child = pt_cmd(["ignore-term"])
            .stop_timeout(Duration::from_millis(300))
            .stdout(Stdio::piped())
            .spawn_async()
            .unwrap();
        assert_eq!(
            child.read().await.unwrap().as_deref(),
            Some(&b"ready\n"[..])
        );
        let t = Instant::now();
        child.start_stop();
        assert!(t.elapsed() < Duration::from_millis(50), "{:?}", t.elapsed());
        assert!(alive(child.pid() as i32));
        // SIGTERM is ignored: SIGKILL after the stop timeout.
        let status = child.wait().await.unwrap();
        assert_eq!(status.signal(), Some(Signal::KILL));
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
    });
}

#[test]
fn read_stderr_gives_the_exact_bytes_then_end_of_file() {
    check(async {
        let mut child = pt_cmd(["eprint", "to", "stderr"])
            .stderr(Stdio::piped())
            .spawn_async()
            .unwrap();
        let mut got = Vec::new();
        while let Some(chunk) = child.read_stderr().await.unwrap() {
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, b"to stderr\n");
        assert!(child.wait().await.unwrap().success());
        // stdout was not piped.
        let err = child.read().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn write_returns_how_much_the_pipe_took() {
    check(async {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .pipe_capacity(Some(4096))
            .spawn_async()
            .unwrap();
        // More than the pipe holds: write takes a part, never all at once
        // unless cat keeps up, and never more than asked.
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut stdout = child.stdout.take().unwrap();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            stdout.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut sent = 0;
        let mut writes = 0;
        while sent < data.len() {
            let n = child.write(&data[sent..]).await.unwrap();
            assert!(n > 0 && n <= data.len() - sent);
            sent += n;
            writes += 1;
        }
        assert!(writes > 1, "a 4 KiB pipe took 200 kB in one write");
        child.close_stdin();
        assert!(reader.await.unwrap() == data);
        assert!(child.wait().await.unwrap().success());
        // stdin is closed now: writing is refused, not lost silently.
        let err = child.write(b"more").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn write_after_exit_is_a_broken_pipe_error() {
    check(async {
        let mut child = pt_cmd(["exit", "0"])
            .stdin(Stdio::piped())
            .spawn_async()
            .unwrap();
        let status = child.wait_timeout(Duration::from_secs(5)).await.unwrap();
        assert!(status.unwrap().success());
        // wait_timeout leaves stdin open, so the write reaches the pipe.
        let err = child.write(b"too late").await.unwrap_err();
        assert_eq!(err.step(), Step::Write);
        assert_eq!(
            err.os_error().unwrap().kind(),
            std::io::ErrorKind::BrokenPipe
        );
    });
}

#[test]
fn detach_lets_the_child_run_to_its_end() {
    check(async {
        let t = Instant::now();
        let child = pt_cmd(["sleep", "0.2"]).spawn_async().unwrap();
        let pid = child.pid() as i32;
        child.detach();
        assert!(wait_dead(pid, Duration::from_secs(5)));
        // It was not stopped: it slept its 200 ms. The Guard proves the
        // background reaper reaped it.
        assert!(
            t.elapsed() >= Duration::from_millis(190),
            "{:?}",
            t.elapsed()
        );
    });
}

#[test]
fn pipes_work_through_async_read_and_async_write() {
    check(async {
        let mut child = pt_cmd(["echo"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn_async()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        stdin.write_all(b"through the traits").await.unwrap();
        stdin.flush().await.unwrap();
        stdin.shutdown().await.unwrap();
        drop(stdin);
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"through the traits");
        let mut err = Vec::new();
        stderr.read_to_end(&mut err).await.unwrap();
        assert_eq!(err, b"");
        assert!(child.wait().await.unwrap().success());
    });
}

#[test]
fn next_chunk_gives_every_byte_then_none() {
    check(async {
        let mut chunks = pt_cmd(["write", "100000"]).stream_async().unwrap();
        let mut got = Vec::new();
        while let Some(chunk) = chunks.next_chunk().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        let want: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        assert!(got == want, "{} bytes, not the ones written", got.len());
        assert!(chunks.next_chunk().await.is_none());
        assert_eq!(chunks.status().map(|s| s.success()), Some(true));
    });
}

#[test]
fn async_events_as_a_futures_stream() {
    check(async {
        let evs = Command::new("sh")
            .args(["-c", "echo out; echo err >&2; exit 4"])
            .stderr(Stdio::piped())
            .events_async()
            .unwrap();
        let all: Vec<Event> = evs.map(|e| e.unwrap()).collect().await;
        let (last, data) = all.split_last().unwrap();
        assert!(
            matches!(last, Event::Exit(s) if s.code() == Some(4)),
            "{last:?}"
        );
        let (mut out, mut err) = (Vec::new(), Vec::new());
        for ev in data {
            match ev {
                Event::Stdout(b) => out.extend_from_slice(b),
                Event::Stderr(b) => err.extend_from_slice(b),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((&out[..], &err[..]), (&b"out\n"[..], &b"err\n"[..]));
    });
}

/// Regression guard for the edge-triggered readiness of the async driver:
/// a poll that finds nothing to read must clear the readiness it consumed
/// and return `Pending`. One that keeps a stale readiness polls again and
/// again (tokio's cooperative budget makes it yield now and then, so other
/// tasks still run, but the thread burns its CPU while the child is quiet).
/// The child here writes, is quiet for 300 ms, until another task of the
/// runtime gives it more input, and writes again: that wait must cost the
/// runtime's thread almost no CPU time. (The 300 ms sleep is the subject:
/// an idle period.)
#[test]
fn a_stream_waiting_for_output_lets_other_tasks_run_without_spinning() {
    let (got, cpu) = block_on_measuring_cpu(async {
        let (read_end, write_end) = pipe();
        let mut chunks = Command::new("cat").stdin(read_end).stream_async().unwrap();
        // The input comes from another task of this runtime, which runs
        // only if the stream's poll gives the thread back.
        tokio::spawn(async move {
            let mut w = std::fs::File::from(write_end);
            std::io::Write::write_all(&mut w, b"from the ").unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            std::io::Write::write_all(&mut w, b"other task").unwrap();
        });
        let mut got = Vec::new();
        while let Some(chunk) = chunks.next_chunk().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        got
    });
    assert_eq!(got, b"from the other task");
    assert!(
        cpu < Duration::from_millis(50),
        "{cpu:?} of CPU for a 300 ms wait"
    );
}

/// Runs `fut` on a current-thread runtime of a thread of its own, under
/// the leak guard; returns its output and the CPU time that thread used.
/// Fails if it does not end within 20 s (a poll that never returns).
fn block_on_measuring_cpu<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> (T, Duration) {
    // The guard after tokio's process-wide state exists (see `check`).
    drop(rt());
    let _g = Guard::new();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = rt();
        let cpu = thread_cpu();
        let out = rt.block_on(fut);
        done_tx.send((out, thread_cpu() - cpu)).unwrap();
    });
    done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the runtime's thread never finished")
}

/// As above, for the input side: while an async input source has nothing
/// to give (here for 300 ms), the stream must not wait on stdin being
/// writable (it always is), which would wake it again and again.
#[test]
fn a_stream_waiting_for_its_async_input_does_not_spin() {
    let (out, cpu) = block_on_measuring_cpu(async {
        let input = futures_util::stream::unfold(0, |n| async move {
            match n {
                0 => Some(("first ", 1)),
                1 => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Some(("second", 2))
                }
                _ => None,
            }
        });
        Command::new("cat")
            .input_stream(input)
            .stream_async()
            .unwrap()
            .collect_string()
            .await
            .unwrap()
    });
    assert_eq!(out, "first second");
    assert!(
        cpu < Duration::from_millis(50),
        "{cpu:?} of CPU for a 300 ms wait"
    );
}

//! An input that fails (a reader's error, a callback's error or panic, a
//! broken pipe the caller asked to hear about) is reported by every way of
//! running a command, once, with the exit status and the output collected
//! so far: nothing is lost.
//!
//! The failing input closes the child's stdin, `cat` then sees end-of-file
//! and exits at once: the exit races the input's report, which is why each
//! case is run many times.

mod support;
use support::*;

use std::io::{self, Read, Write};

use procession::{Command, Error, ErrorKind, Event, Step};

/// Runs of each racy case: the old, racy code lost the error in a few
/// percent of runs.
const RUNS: usize = 100;

/// A reader that gives `abc`, then fails.
struct FailingReader {
    sent: bool,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.sent {
            return Err(io::Error::other("the source went away"));
        }
        self.sent = true;
        buf[..3].copy_from_slice(b"abc");
        Ok(3)
    }
}

fn failing_reader() -> FailingReader {
    FailingReader { sent: false }
}

/// `cat` fed `abc` by a callback that then fails.
fn cat_with_failing_callback() -> Command {
    let mut cmd = Command::new("cat");
    cmd.input_fn(|sink| {
        sink.write_all(b"abc")?;
        Err(io::Error::new(io::ErrorKind::InvalidData, "bad record 7"))
    });
    cmd
}

/// The error of a failed input: about writing to `cat`, keeping the OS
/// error and the status (`cat` succeeded).
fn assert_input_error(err: &Error, kind: io::ErrorKind, message: &str) {
    assert_eq!(err.step(), Step::Write, "{err}");
    assert_eq!(err.program(), "cat");
    let os = err.os_error().expect("the source's own error is kept");
    assert_eq!(os.kind(), kind, "{err}");
    assert!(os.to_string().contains(message), "{os}");
    assert!(err.to_string().contains(message), "{err}");
    let status = err.exit_status().expect("the status is kept");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn stream_ends_with_the_readers_error_after_all_its_data() {
    let _g = Guard::new();
    for _ in 0..RUNS {
        let mut cmd = Command::new("cat");
        cmd.input_reader(failing_reader());
        let mut chunks = cmd.stream().unwrap();
        let mut out = Vec::new();
        let err = loop {
            match chunks.next().expect("an error before the end") {
                Ok(chunk) => out.extend_from_slice(&chunk),
                Err(e) => break e,
            }
        };
        assert_eq!(out, b"abc");
        assert_input_error(&err, io::ErrorKind::Other, "the source went away");
        assert!(chunks.next().is_none());
        assert_eq!(chunks.status().map(|s| s.code()), Some(Some(0)));
    }
}

#[test]
fn stream_ends_with_the_callbacks_error() {
    let _g = Guard::new();
    for _ in 0..RUNS {
        let results: Vec<_> = cat_with_failing_callback().stream().unwrap().collect();
        let (last, data) = results.split_last().unwrap();
        let data: Vec<u8> = data
            .iter()
            .flat_map(|r| r.as_ref().unwrap().to_vec())
            .collect();
        assert_eq!(data, b"abc");
        let err = last.as_ref().expect_err("the callback's error comes last");
        assert_input_error(err, io::ErrorKind::InvalidData, "bad record 7");
    }
}

#[test]
fn events_give_the_error_just_before_the_exit() {
    let _g = Guard::new();
    for _ in 0..RUNS {
        let results: Vec<_> = cat_with_failing_callback().events().unwrap().collect();
        let n = results.len();
        assert!(n >= 3, "{results:?}");
        let data: Vec<u8> = results[..n - 2]
            .iter()
            .flat_map(|r| match r {
                Ok(Event::Stdout(b)) => b.to_vec(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(data, b"abc");
        assert_input_error(
            results[n - 2].as_ref().unwrap_err(),
            io::ErrorKind::InvalidData,
            "bad record 7",
        );
        assert!(matches!(&results[n - 1], Ok(Event::Exit(s)) if s.code() == Some(0)));
    }
}

#[test]
fn output_and_run_fail_carrying_everything_collected() {
    let _g = Guard::new();
    for _ in 0..RUNS / 2 {
        let mut cmd = Command::new("cat");
        cmd.input_reader(failing_reader());
        let err = cmd.output().unwrap_err();
        assert_input_error(&err, io::ErrorKind::Other, "the source went away");
        let out = err.into_output().expect("the output is kept");
        assert_eq!((&out.stdout[..], &out.stderr[..]), (&b"abc"[..], &b""[..]));

        let err = cat_with_failing_callback().run().unwrap_err();
        assert_input_error(&err, io::ErrorKind::InvalidData, "bad record 7");
        assert_eq!(err.output().unwrap().stdout, b"abc");
    }
}

#[test]
fn status_and_wait_report_the_input_thread_s_error() {
    let _g = Guard::new();
    for _ in 0..RUNS / 2 {
        let mut cmd = Command::new("cat");
        cmd.input_reader(failing_reader())
            .stdout(procession::Stdio::null());
        let err = cmd.status().unwrap_err();
        assert_input_error(&err, io::ErrorKind::Other, "the source went away");

        // spawn(): the wait that sees the exit reports it, once.
        let mut child = cat_with_failing_callback()
            .stdout(procession::Stdio::null())
            .spawn()
            .unwrap();
        assert!(child.stdin.is_none(), "the input thread owns stdin");
        let err = child.wait().unwrap_err();
        assert_input_error(&err, io::ErrorKind::InvalidData, "bad record 7");
        assert_eq!(child.wait().unwrap().code(), Some(0));
    }
}

#[test]
fn try_wait_and_wait_timeout_report_it_too() {
    let _g = Guard::new();
    let mut child = cat_with_failing_callback()
        .stdout(procession::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.pid() as i32;
    assert!(wait_dead(pid, std::time::Duration::from_secs(10)));
    let err = child.try_wait().unwrap_err();
    assert_input_error(&err, io::ErrorKind::InvalidData, "bad record 7");
    assert_eq!(child.try_wait().unwrap().and_then(|s| s.code()), Some(0));

    let mut child = cat_with_failing_callback()
        .stdout(procession::Stdio::null())
        .spawn()
        .unwrap();
    let err = child
        .wait_timeout(std::time::Duration::from_secs(10))
        .unwrap_err();
    assert_input_error(&err, io::ErrorKind::InvalidData, "bad record 7");
}

#[test]
fn a_panicking_callback_is_an_error_not_a_crash() {
    let _g = Guard::new();
    let mut cmd = Command::new("cat");
    cmd.input_fn(|sink| {
        sink.write_all(b"abc")?;
        panic!("the callback broke");
    });
    let err = cmd.output().unwrap_err();
    assert_eq!(err.step(), Step::Write);
    assert!(err.to_string().contains("panicked"), "{err}");
    assert_eq!(err.exit_status().unwrap().code(), Some(0));
    assert_eq!(err.output().unwrap().stdout, b"abc");
}

#[test]
fn a_broken_pipe_is_an_error_only_when_asked_for() {
    let _g = Guard::new();
    // The callback writes until the pipe breaks (`head` stops reading
    // after 5 bytes) and returns that error.
    let endless = |cmd: &mut Command| {
        cmd.input_fn(|sink| {
            loop {
                sink.write_all(b"data\n")?;
            }
        });
    };
    let mut cmd = Command::new("head");
    cmd.args(["-c", "5"]);
    endless(&mut cmd);
    let out = cmd.output().unwrap();
    assert_eq!(out.stdout, b"data\n");

    let mut cmd = Command::new("head");
    cmd.args(["-c", "5"]).ignore_epipe(false);
    endless(&mut cmd);
    let err = cmd.output().unwrap_err();
    assert_eq!(err.step(), Step::Write);
    assert_eq!(err.os_error().unwrap().kind(), io::ErrorKind::BrokenPipe);
    assert_eq!(err.exit_status().unwrap().code(), Some(0));
    assert_eq!(err.output().unwrap().stdout, b"data\n");
}

#[test]
fn a_one_shot_input_is_refused_on_the_second_run() {
    let _g = Guard::new();
    let mut cmd = Command::new("cat");
    cmd.input(["once"]);
    assert_eq!(cmd.output().unwrap().stdout, b"once");
    let err = cmd.output().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(err.step(), Step::Prepare);
    // input_bytes is kept for every run.
    cmd.input_bytes("again");
    for _ in 0..2 {
        assert_eq!(cmd.output().unwrap().stdout, b"again");
    }
}

#[cfg(feature = "tokio")]
mod async_api {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A tokio reader that gives `abc`, then fails.
    struct FailingAsyncReader {
        sent: bool,
    }

    impl tokio::io::AsyncRead for FailingAsyncReader {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            if self.sent {
                return std::task::Poll::Ready(Err(io::Error::other("the source went away")));
            }
            self.sent = true;
            buf.put_slice(b"abc");
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn async_reader_error_is_reported_with_the_output() {
        let rt = rt();
        let _g = Guard::new();
        rt.block_on(async {
            for _ in 0..RUNS / 2 {
                let mut cmd = Command::new("cat");
                cmd.input_async_read(FailingAsyncReader { sent: false });
                let err = cmd.output_async().await.unwrap_err();
                assert_input_error(&err, io::ErrorKind::Other, "the source went away");
                assert_eq!(err.output().unwrap().stdout, b"abc");
            }
        });
    }

    /// The first stage of a pipeline fed by a failing async reader: its
    /// input error is the pipeline's, with what came through the link.
    #[test]
    fn async_reader_error_on_a_pipelines_first_stage_is_reported() {
        let rt = rt();
        let _g = Guard::new();
        rt.block_on(async {
            for _ in 0..RUNS / 2 {
                let mut first = Command::new("cat");
                first.input_async_read(FailingAsyncReader { sent: false });
                let err = first
                    .pipe(&Command::new("cat"))
                    .output_async()
                    .await
                    .unwrap_err();
                assert_input_error(&err, io::ErrorKind::Other, "the source went away");
                assert_eq!(err.output().unwrap().stdout, b"abc", "{err}");
            }
        });
    }

    #[test]
    fn async_callback_error_ends_the_stream() {
        let rt = rt();
        let _g = Guard::new();
        rt.block_on(async {
            for _ in 0..RUNS / 2 {
                let mut cmd = Command::new("cat");
                cmd.input_async_fn(|mut sink| async move {
                    use tokio::io::AsyncWriteExt;
                    sink.write_all(b"abc").await?;
                    Err(io::Error::new(io::ErrorKind::InvalidData, "bad record 7"))
                });
                let mut chunks = cmd.stream_async().unwrap();
                let mut out = Vec::new();
                let err = loop {
                    match chunks.next_chunk().await.expect("an error before the end") {
                        Ok(chunk) => out.extend_from_slice(&chunk),
                        Err(e) => break e,
                    }
                };
                assert_eq!(out, b"abc");
                assert_input_error(&err, io::ErrorKind::InvalidData, "bad record 7");
                assert!(chunks.next_chunk().await.is_none());
            }
        });
    }

    #[test]
    fn blocking_callback_error_under_the_async_api() {
        let rt = rt();
        let _g = Guard::new();
        rt.block_on(async {
            for _ in 0..RUNS / 2 {
                let mut evs = cat_with_failing_callback().events_async().unwrap();
                let mut seen = Vec::new();
                while let Some(ev) = evs.next_event().await {
                    seen.push(ev);
                }
                let n = seen.len();
                assert_input_error(
                    seen[n - 2].as_ref().unwrap_err(),
                    io::ErrorKind::InvalidData,
                    "bad record 7",
                );
                assert!(matches!(&seen[n - 1], Ok(Event::Exit(s)) if s.success()));
            }
        });
    }
}

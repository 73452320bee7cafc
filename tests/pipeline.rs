//! Pipelines: stages wired child to child (`a | b | c`), the pipefail rule,
//! every stage's status, early drop, the parent holding no link, per-stage
//! stderr, bad input; the async forms (feature `tokio`).

mod support;

use std::os::fd::OwnedFd;
use std::time::Duration;

use procession::{Command, ErrorKind, Event, Pipefail, Pipeline, Signal, Stdio};
use support::*;

fn codes(statuses: &[procession::ExitStatus]) -> Vec<Option<i32>> {
    statuses.iter().map(|s| s.code()).collect()
}

#[test]
fn printf_sort_head_gives_the_first_two_sorted_lines() {
    let _g = Guard::new();
    let p = Pipeline::new([
        Command::new("printf").arg(r"b\na\nc\n").clone(),
        Command::new("sort"),
        Command::new("head").args(["-n", "2"]).clone(),
    ]);
    let mut chunks = p.stream().unwrap();
    let mut out = Vec::new();
    for c in chunks.by_ref() {
        out.extend_from_slice(&c.unwrap());
    }
    assert_eq!(out, b"a\nb\n");
    assert_eq!(codes(chunks.stage_statuses()), [Some(0), Some(0), Some(0)]);
    assert!(chunks.status().unwrap().success());
    // The same through output, run, lines and events.
    assert_eq!(p.output().unwrap().stdout, b"a\nb\n");
    assert_eq!(p.run().unwrap().stdout, b"a\nb\n");
    let lines: Vec<String> = p
        .stream()
        .unwrap()
        .lines(procession::LineCodec::new(1024))
        .map(|l| String::from_utf8(l.unwrap().bytes.to_vec()).unwrap())
        .collect();
    assert_eq!(lines, ["a", "b"]);
    let events: Vec<Event> = p.events().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(events[0], Event::Stdout("a\nb\n".into()));
    assert!(matches!(events[1], Event::Exit(s) if s.success()));
}

#[test]
fn the_first_stage_takes_any_input_source() {
    let _g = Guard::new();
    let head = Command::new("head").args(["-n", "2"]).clone();
    // An iterator.
    let out = Command::new("sort")
        .input(["b\n", "a\n", "c\n"])
        .pipe(&head)
        .run()
        .unwrap();
    assert_eq!(out.stdout, b"a\nb\n");
    // A reader.
    let out = Command::new("sort")
        .input_reader(std::io::Cursor::new(b"z\ny\nx\n".to_vec()))
        .pipe(&head)
        .run()
        .unwrap();
    assert_eq!(out.stdout, b"x\ny\n");
    // A file, given to the first stage directly.
    let dir = TempDir::new("pipeline-input");
    let f = dir.join("in");
    std::fs::write(&f, "3\n1\n2\n").unwrap();
    let out = Command::new("sort")
        .input_file(&f)
        .pipe(&head)
        .run()
        .unwrap();
    assert_eq!(out.stdout, b"1\n2\n");
    // Nothing: /dev/null.
    let out = Command::new("cat")
        .pipe(Command::new("wc").arg("-c"))
        .run()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
}

#[test]
fn a_failing_middle_stage_is_reported_by_the_pipefail_rule() {
    let _g = Guard::new();
    let first = Command::new("printf").arg(r"x\n").clone();
    let middle = Command::shell("cat >/dev/null; exit 3");
    let last = Command::new("cat");
    let p = Pipeline::new([first.clone(), middle.clone(), last.clone()]);
    let mut chunks = p.stream().unwrap();
    let err = chunks.next().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exit);
    assert_eq!(err.exit_status().unwrap().code(), Some(3));
    assert_eq!(err.program(), "/bin/sh");
    assert!(err.to_string().contains("stage 2 of 3"), "{err}");
    assert!(chunks.next().is_none());
    assert_eq!(codes(chunks.stage_statuses()), [Some(0), Some(3), Some(0)]);
    assert_eq!(chunks.status().unwrap().code(), Some(3));

    // Plain sh: the last stage only.
    let mut last_only = p.clone();
    last_only.pipefail(Pipefail::Last);
    let mut chunks = last_only.stream().unwrap();
    assert!(chunks.next().is_none());
    assert!(chunks.status().unwrap().success());
    assert_eq!(codes(chunks.stage_statuses()), [Some(0), Some(3), Some(0)]);

    // Rightmost: of two failures, the later one; the last stage's own
    // failure wins over an earlier one.
    let two = Pipeline::new([
        Command::shell("exit 2"),
        Command::shell("cat; exit 3"),
        Command::new("cat"),
    ]);
    let out = two.output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let ends = Pipeline::new([
        Command::shell("exit 2"),
        Command::new("cat"),
        Command::shell("cat >/dev/null; exit 4"),
    ]);
    let err = ends.run().unwrap_err();
    assert_eq!(err.exit_status().unwrap().code(), Some(4));
    let mut events = two.events().unwrap();
    let evs: Vec<Event> = events.by_ref().collect::<Result<_, _>>().unwrap();
    assert!(matches!(evs.last(), Some(Event::Exit(s)) if s.code() == Some(3)));
    assert_eq!(codes(events.stage_statuses()), [Some(2), Some(3), Some(0)]);
    // run() names the middle stage and keeps the output.
    let err = Pipeline::new([first, Command::shell("cat; exit 3"), last])
        .run()
        .unwrap_err();
    assert_eq!(err.exit_status().unwrap().code(), Some(3));
    assert!(err.to_string().contains("stage 2 of 3"), "{err}");
    assert_eq!(err.output().unwrap().stdout, b"x\n");
}

#[test]
fn sigpipe_of_an_upstream_stage_counts_only_when_asked() {
    let _g = Guard::new();
    let mut p = Command::new("yes").pipe(Command::new("head").args(["-n", "1"]));
    // bash's pipefail: `yes` killed by SIGPIPE is a failure.
    let err = p.run().unwrap_err();
    assert_eq!(err.exit_status().unwrap().signal(), Some(Signal::PIPE));
    assert_eq!(err.output().unwrap().stdout, b"y\n");
    p.pipefail(Pipefail::RightmostIgnoringSigpipe);
    assert_eq!(p.output().unwrap().stdout, b"y\n");
    assert_eq!(p.status().unwrap().code(), Some(0));
    let mut chunks = p.stream().unwrap();
    assert_eq!(chunks.next().unwrap().unwrap(), "y\n");
    assert!(chunks.next().is_none());
    let statuses = chunks.stage_statuses();
    assert_eq!(statuses[0].signal(), Some(Signal::PIPE));
    assert!(statuses[1].success());
    // The last stage's own SIGPIPE still counts.
    let err = Command::new("true")
        .pipe(&Command::shell("kill -PIPE $$"))
        .pipefail(Pipefail::RightmostIgnoringSigpipe)
        .run()
        .unwrap_err();
    assert_eq!(err.exit_status().unwrap().signal(), Some(Signal::PIPE));
}

/// The pipe inode a stage reports for one of its descriptors
/// (`pipe:[N]`), and whether this process holds it.
fn we_hold(link: &str) -> bool {
    open_fds().values().any(|target| target == link)
}

#[test]
fn the_parent_holds_no_pipe_between_stages() {
    let _g = Guard::new();
    // Each of the first two stages reports its stdout's pipe and then keeps
    // running, so the links exist while we look.
    let (gate_r, gate_w) = std::io::pipe().unwrap();
    let first = Command::shell("readlink /proc/$$/fd/1; read x; exit 0")
        .stdin(OwnedFd::from(gate_r))
        .clone();
    let middle = Command::shell("readlink /proc/$$/fd/1; exec cat");
    let mut chunks = Pipeline::new([first, middle, Command::new("cat")])
        .stream()
        .unwrap();
    let mut got = Vec::new();
    while got.iter().filter(|&&b| b == b'\n').count() < 2 {
        got.extend_from_slice(&chunks.next().unwrap().unwrap());
    }
    let text = String::from_utf8(got).unwrap();
    let links: Vec<&str> = text.lines().collect();
    assert_eq!(links.len(), 2, "{text:?}");
    for link in &links {
        assert!(link.starts_with("pipe:["), "{link}");
        assert!(!we_hold(link), "this process holds the link {link}");
    }
    assert_ne!(links[0], links[1]);
    drop(gate_w); // the first stage's `read` ends
    assert!(chunks.next().is_none());
    assert_eq!(codes(chunks.stage_statuses()), [Some(0), Some(0), Some(0)]);
}

/// The two shapes of early drop: a writer that would be ended by the
/// broken pipes anyway, and stages that never write again (only the stop
/// ends them). In both, the stage that reports a pid has started a
/// descendant that holds its pipes.
fn early_drop_pipelines() -> Vec<Pipeline> {
    let pt = pt();
    let spawns_then = |then: &str| {
        Command::new("sh")
            .args([
                "-c",
                &format!(r#"P="$0"; "$P" sleep 1000 & echo "$!"; exec "$P" {then}"#),
            ])
            .arg(&pt)
            .clone()
    };
    let last = pt_cmd(["echo"])
        .drop_timeout(Duration::from_millis(50))
        .clone();
    vec![
        Pipeline::new([
            pt_cmd(["write", "100000000000"]),
            spawns_then("echo"),
            last.clone(),
        ]),
        Pipeline::new([spawns_then("sleep 1000"), pt_cmd(["echo"]), last]),
    ]
}

/// The pid on the first line, once it is complete.
fn first_pid(got: &[u8]) -> Option<i32> {
    let end = got.iter().position(|&b| b == b'\n')?;
    Some(std::str::from_utf8(&got[..end]).unwrap().parse().unwrap())
}

#[test]
fn early_drop_leaves_no_stage_and_no_descendant_alive() {
    let _g = Guard::new();
    for p in early_drop_pipelines() {
        let mut chunks = p.stream().unwrap();
        let mut got = Vec::new();
        let descendant = loop {
            if let Some(pid) = first_pid(&got) {
                break pid;
            }
            got.extend_from_slice(&chunks.next().unwrap().unwrap());
        };
        assert!(alive(descendant));
        drop(chunks);
        assert!(
            wait_dead(descendant, Duration::from_secs(10)),
            "a stage's descendant outlived the dropped pipeline"
        );
        // The guard checks that no stage is left, running or unreaped.
        assert!(procession::__test_support::wait_for_reaper());
    }
}

#[test]
fn a_timeout_stops_every_stage() {
    let _g = Guard::new();
    let mut chunks = Pipeline::new([
        pt_cmd(["sleep", "100"]),
        pt_cmd(["echo"]),
        pt_cmd(["sleep", "100"]),
    ])
    .timeout(Duration::from_millis(200))
    .stream()
    .unwrap();
    let err = chunks.next().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exit);
    let statuses = chunks.stage_statuses();
    assert!(
        statuses[0].timed_out() && statuses[2].timed_out(),
        "{statuses:?}"
    );
    assert!(chunks.status().unwrap().timed_out());
}

#[test]
fn each_stage_has_its_own_stderr() {
    let _g = Guard::new();
    let dir = TempDir::new("pipeline-stderr");
    let log = dir.join("first.err");
    let first = Command::shell("echo data; echo first-err >&2")
        .stderr(Stdio::file(&log))
        .clone();
    // 2>&1 of a middle stage goes into the next stage.
    let middle = Command::shell("cat; echo middle-err >&2")
        .stderr(Stdio::to_stdout())
        .clone();
    let last = Command::shell("cat; echo last-err >&2")
        .stderr(Stdio::piped())
        .clone();
    let out = Pipeline::new([first, middle, last]).output().unwrap();
    assert_eq!(out.stdout, b"data\nmiddle-err\n");
    assert_eq!(out.stderr, b"last-err\n");
    assert_eq!(std::fs::read(&log).unwrap(), b"first-err\n");
    // A piped stderr on a stage whose stderr nobody reads is refused.
    let err = Command::shell("true")
        .stderr(Stdio::piped())
        .pipe(&Command::new("cat"))
        .stream()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("stage 1 of 2"), "{err}");
}

#[test]
fn bad_input_is_refused_and_leaves_nothing_running() {
    let _g = Guard::new();
    // An empty pipeline.
    let err = Pipeline::new([]).stream().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("empty pipeline"), "{err}");
    assert_eq!(
        Pipeline::new([]).run().unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    // Settings the wiring overrides.
    let err = Command::new("echo")
        .stdout(Stdio::null())
        .pipe(&Command::new("cat"))
        .stream()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = Command::new("echo")
        .pipe(Command::new("cat").input(["x"]))
        .stream()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    // A stage that cannot start: the error names it; the stage already
    // started (it would write forever) is stopped and reaped.
    for missing_at in [1, 2] {
        let mut stages = vec![
            pt_cmd(["write", "100000000000"]),
            pt_cmd(["echo"]),
            pt_cmd(["echo"]),
        ];
        stages[missing_at] = Command::new("/no/such/program");
        let err = Pipeline::new(stages).stream().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.program(), "/no/such/program");
        assert!(procession::__test_support::wait_for_reaper());
    }
    // The first stage failing to start: nothing else was started.
    let err = Command::new("/no/such/program")
        .pipe(&Command::new("cat"))
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// Every wiring the pipeline refuses, with its whole message: each
/// refusal is the pipeline's own (naming the stage), not a later one of the
/// command's that would happen to have the same kind.
#[test]
fn each_refused_wiring_names_its_stage() {
    let _g = Guard::new();
    let refused = |p: &Pipeline| {
        let err = p.stream().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        err.to_string()
    };
    let cat = || Command::new("cat");
    let mut piped_stderr = cat();
    piped_stderr.stderr(Stdio::piped());
    let cases: Vec<(Pipeline, &str)> = vec![
        (
            Pipeline::new([]),
            "`pipeline`: preparing the command failed: an empty pipeline: give it at least one command",
        ),
        (
            Command::new("echo").stdout(Stdio::null()).pipe(&cat()),
            "`echo`: preparing the command failed: stage 1 of 2 of a pipeline: its stdout is the next stage's stdin; remove its stdout setting",
        ),
        (
            Command::new("echo").pipe(cat().input(["x"])),
            "`cat`: preparing the command failed: stage 2 of 2 of a pipeline: its stdin is the previous stage's stdout; remove its input/stdin setting",
        ),
        (
            Command::new("echo").pipe(cat().stdin(Stdio::null())),
            "`cat`: preparing the command failed: stage 2 of 2 of a pipeline: its stdin is the previous stage's stdout; remove its input/stdin setting",
        ),
        (
            Pipeline::new([Command::new("echo"), cat(), cat().input(["x"]).clone()]),
            "`cat`: preparing the command failed: stage 3 of 3 of a pipeline: its stdin is the previous stage's stdout; remove its input/stdin setting",
        ),
        (
            piped_stderr.pipe(&cat()),
            "`cat`: preparing the command failed: stage 1 of 2 of a pipeline: nobody would read its piped stderr; use Stdio::inherit(), Stdio::null(), a file, Stdio::to_stdout() (into the next stage) or the last stage's stderr",
        ),
    ];
    #[cfg(feature = "tokio")]
    let cases = {
        let mut cases = cases;
        let async_first = cat()
            .input_stream(futures_util::stream::iter(["x"]))
            .pipe(&cat());
        cases.push((
            async_first,
            "`cat`: preparing the command failed: stage 1 of a pipeline: an async input \
             (input_stream, input_async_read, input_async_fn) needs the async API (stream_async, \
             events_async, output_async, run_async, forward_stdout_async)",
        ));
        // A single stage is the command: its own refusal, not the pipeline's.
        let mut alone = cat();
        alone.input_stream(futures_util::stream::iter(["x"]));
        cases.push((
            Pipeline::new([alone]),
            "`cat`: preparing the command failed: an async input (input_stream, \
             input_async_read, input_async_fn) needs the async API (stream_async, events_async, \
             output_async, run_async)",
        ));
        cases
    };
    for (p, want) in cases {
        assert_eq!(refused(&p), want);
    }
}

/// The first stage gets `/dev/null` as stdin unless told otherwise, never
/// the caller's: checked from a program whose own stdin is a pipe (a test
/// runner's stdin is often `/dev/null` already, which would hide it).
#[test]
fn the_first_stage_does_not_inherit_the_callers_stdin() {
    let _g = Guard::new();
    let mut app = std::process::Command::new(ptlib())
        .arg("pipeline-stdin")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = app.stdout.take().unwrap();
    let got = std::io::read_to_string(out).unwrap();
    drop(app.stdin.take());
    assert!(app.wait().unwrap().success());
    assert_eq!(got, "stdin: /dev/null\n");
}

#[test]
fn a_single_stage_pipeline_is_the_command() {
    let _g = Guard::new();
    let mut chunks = Pipeline::new([Command::shell("echo one; exit 5")])
        .stream()
        .unwrap();
    assert_eq!(chunks.next().unwrap().unwrap(), "one\n");
    let err = chunks.next().unwrap().unwrap_err();
    assert_eq!(err.exit_status().unwrap().code(), Some(5));
    assert_eq!(codes(chunks.stage_statuses()), [Some(5)]);
    // A plain command's stream reports its one status too.
    let mut chunks = Command::new("true").stream().unwrap();
    assert!(chunks.next().is_none());
    assert_eq!(codes(chunks.stage_statuses()), [Some(0)]);
}

#[test]
fn status_waits_for_every_stage() {
    let _g = Guard::new();
    let status = Command::shell("exit 7")
        .pipe(Command::new("cat").stdout(Stdio::null()))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(7));
    let status = Command::shell("exit 7")
        .pipe(Command::new("cat").stdout(Stdio::null()))
        .pipefail(Pipefail::Last)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_large_stream_passes_every_byte_through_three_stages() {
    let _g = Guard::new();
    let n: u64 = 20_000_000;
    let mut chunks = Pipeline::new([
        pt_cmd(["write", &n.to_string()]),
        pt_cmd(["echo"]),
        pt_cmd(["echo"]),
    ])
    .stream()
    .unwrap();
    let mut off = 0u64;
    for c in chunks.by_ref() {
        let c = c.unwrap();
        for (i, &b) in c.iter().enumerate() {
            assert_eq!(b, ((off + i as u64) % 251) as u8, "byte {}", off + i as u64);
        }
        off += c.len() as u64;
    }
    assert_eq!(off, n);
    assert!(chunks.status().unwrap().success());
}

#[cfg(feature = "tokio")]
mod async_pipeline {
    use super::*;

    /// Whether the octal `flags:` of a /proc fdinfo has O_NONBLOCK.
    fn nonblocking(flags: &str) -> bool {
        u32::from_str_radix(flags.trim(), 8).unwrap() & libc::O_NONBLOCK as u32 != 0
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn printf_sort_head_async_and_a_failing_middle_stage() {
        let rt = rt();
        let _g = Guard::new();
        rt.block_on(async {
            let p = Pipeline::new([
                Command::new("printf").arg(r"b\na\nc\n").clone(),
                Command::new("sort"),
                Command::new("head").args(["-n", "2"]).clone(),
            ]);
            assert_eq!(
                p.stream_async().unwrap().collect_string().await.unwrap(),
                "a\nb\n"
            );
            assert_eq!(p.output_async().await.unwrap().stdout, b"a\nb\n");

            let p = Pipeline::new([
                Command::new("printf").arg(r"x\n").clone(),
                Command::shell("cat; exit 3"),
                Command::new("cat"),
            ]);
            let mut chunks = p.stream_async().unwrap();
            assert_eq!(chunks.next_chunk().await.unwrap().unwrap(), "x\n");
            let err = chunks.next_chunk().await.unwrap().unwrap_err();
            assert_eq!(err.exit_status().unwrap().code(), Some(3));
            assert!(err.to_string().contains("stage 2 of 3"), "{err}");
            assert_eq!(codes(chunks.stage_statuses()), [Some(0), Some(3), Some(0)]);
            let mut events = p.events_async().unwrap();
            let mut last = None;
            while let Some(e) = events.next_event().await {
                last = Some(e.unwrap());
            }
            assert!(matches!(last, Some(Event::Exit(s)) if s.code() == Some(3)));
            assert_eq!(codes(events.stage_statuses()), [Some(0), Some(3), Some(0)]);
            let err = p.run_async().await.unwrap_err();
            assert!(err.to_string().contains("stage 2 of 3"), "{err}");
            assert_eq!(err.output().unwrap().stdout, b"x\n");
            // `yes` ends by SIGPIPE only if this process holds no copy of
            // the link: output_async and run_async must not either.
            let mut p = Command::new("yes").pipe(Command::new("head").args(["-n", "1"]));
            p.pipefail(Pipefail::RightmostIgnoringSigpipe);
            assert_eq!(p.output_async().await.unwrap().stdout, b"y\n");
            assert_eq!(p.run_async().await.unwrap().stdout, b"y\n");
            // An async input on the first stage: a task drives that stage.
            let chunks = futures_util::stream::iter(["b\n", "a\n", "c\n"]);
            let out = Command::new("cat")
                .input_stream(chunks)
                .pipe(&Command::new("sort"))
                .pipe(Command::new("head").args(["-n", "2"]))
                .stream_async()
                .unwrap()
                .collect_string()
                .await
                .unwrap();
            assert_eq!(out, "a\nb\n");
            // Its failure is reported by the rule, with every status.
            let mut events = Command::shell("cat >/dev/null; exit 6")
                .input_stream(futures_util::stream::iter(["x"]))
                .pipe(&Command::new("cat"))
                .events_async()
                .unwrap();
            let mut last = None;
            while let Some(e) = events.next_event().await {
                last = Some(e.unwrap());
            }
            assert!(matches!(last, Some(Event::Exit(s)) if s.code() == Some(6)));
            assert_eq!(codes(events.stage_statuses()), [Some(6), Some(0)]);
            let err = Command::shell("cat >/dev/null; exit 6")
                .input_stream(futures_util::stream::iter(["x"]))
                .pipe(&Command::new("cat"))
                .run_async()
                .await
                .unwrap_err();
            assert!(err.to_string().contains("stage 1 of 2"), "{err}");
            // A single stage with an async input is the command itself.
            let mut alone = Command::new("cat");
            alone.input_stream(futures_util::stream::iter(["one ", "stage\n"]));
            let out = Pipeline::new([alone]).output_async().await.unwrap();
            assert_eq!(out.stdout, b"one stage\n");
            // With a fed first stage, a failing middle stage is named.
            let err = Command::new("cat")
                .input_stream(futures_util::stream::iter(["x\n"]))
                .pipe(&Command::shell("cat; exit 4"))
                .pipe(&Command::new("cat"))
                .run_async()
                .await
                .unwrap_err();
            assert_eq!(err.program(), "/bin/sh", "{err}");
            assert_eq!(err.exit_status().and_then(|s| s.code()), Some(4), "{err}");
            assert!(err.to_string().contains("stage 2 of 3"), "{err}");
            // The blocking API refuses it, naming the async one.
            let err = Command::new("cat")
                .input_stream(futures_util::stream::iter(["x"]))
                .pipe(&Command::new("cat"))
                .stream()
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.to_string().contains("async API"), "{err}");
        });
    }

    #[test]
    fn early_drop_async_leaves_nothing_alive() {
        let rt = rt();
        let _g = Guard::new();
        rt.block_on(async {
            for p in early_drop_pipelines() {
                let mut chunks = p.stream_async().unwrap();
                let mut got = Vec::new();
                let descendant = loop {
                    if let Some(pid) = first_pid(&got) {
                        break pid;
                    }
                    got.extend_from_slice(&chunks.next_chunk().await.unwrap().unwrap());
                };
                drop(chunks);
                assert!(wait_dead(descendant, Duration::from_secs(10)));
            }
        });
        assert!(procession::__test_support::wait_for_reaper());
    }

    #[test]
    fn early_drop_stops_a_first_stage_fed_by_an_async_input() {
        let rt = rt();
        let _g = Guard::new();
        rt.block_on(async {
            // The input never ends and the stage never writes again (it
            // would get EPIPE): only the stop ends it.
            let endless = futures_util::stream::repeat(bytes::Bytes::from_static(b"x"));
            let first = Command::new("sh")
                .args(["-c", r#"echo "$$"; exec "$0" sleep 1000"#])
                .arg(pt())
                .input_stream(endless)
                .drop_timeout(Duration::from_millis(50))
                .clone();
            let last = pt_cmd(["echo"])
                .drop_timeout(Duration::from_millis(50))
                .clone();
            let mut chunks = Pipeline::new([first, last]).stream_async().unwrap();
            let mut got = Vec::new();
            let pid = loop {
                if let Some(pid) = first_pid(&got) {
                    break pid;
                }
                got.extend_from_slice(&chunks.next_chunk().await.unwrap().unwrap());
            };
            assert!(alive(pid));
            drop(chunks);
            // The task that drives the first stage runs on this runtime.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while alive(pid) && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(!alive(pid), "the first stage outlived the dropped pipeline");
            // Its reaping is the task's (or, once aborted, the reaper's):
            // keep the runtime turning until it is done.
            while procession::__test_support::unreaped_children() > 0
                && std::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        assert!(procession::__test_support::wait_for_reaper());
    }

    #[test]
    fn an_async_stdout_becomes_the_next_stages_stdin() {
        let rt = rt();
        let _g = Guard::new();
        rt.block_on(async {
            let mut first = Command::new("printf")
                .arg(r"b\na\n")
                .stdout(Stdio::piped())
                .spawn_async()
                .unwrap();
            let link = OwnedFd::from(first.stdout.take().unwrap());
            // The descriptor is blocking again (O_NONBLOCK is a flag of the
            // open file description the next stage shares), and `sort`
            // reads it as usual.
            let out = Command::shell("sed -n 's/^flags:[[:space:]]*//p' /proc/$$/fdinfo/0; sort")
                .stdin(link)
                .output_async()
                .await
                .unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            let (flags, sorted) = text.split_once('\n').unwrap();
            assert!(
                !nonblocking(flags),
                "the next stage's stdin is non-blocking"
            );
            assert_eq!(sorted, "a\nb\n");
            assert!(first.wait().await.unwrap().success());
            // And an async stdin end becomes a stage's stdout.
            let mut last = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn_async()
                .unwrap();
            let into = OwnedFd::from(last.stdin.take().unwrap());
            let status =
                Command::shell("sed -n 's/^flags:[[:space:]]*//p' /proc/$$/fdinfo/1; echo via")
                    .stdout(into)
                    .status()
                    .unwrap();
            assert!(status.success());
            let mut got = Vec::new();
            while let Some(b) = last.read().await.unwrap() {
                got.extend_from_slice(&b);
            }
            let text = String::from_utf8(got).unwrap();
            let (flags, rest) = text.split_once('\n').unwrap();
            assert!(
                !nonblocking(flags),
                "the previous stage's stdout is non-blocking"
            );
            assert_eq!(rest, "via\n");
            assert!(last.wait().await.unwrap().success());
        });
    }
}

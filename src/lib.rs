//! procession runs and supervises external programs: it streams their
//! output with back-pressure, feeds their input, and controls their whole
//! life (signals, process groups, timeouts, a stop sequence) so that no
//! zombie, orphan or leaked file descriptor is left behind.
//!
//! # Quick start
//!
//! ```
//! use procession::{Command, Event, Signal, Stdio};
//! use std::time::Duration;
//!
//! // Run, collect, check (the one-shot form): an unsuccessful exit is an
//! // error that names the command and keeps the output and the status.
//! let out = Command::new("echo").arg("Hello World!").run()?;
//! assert_eq!(out.stdout, b"Hello World!\n");
//!
//! // Stream stdout with back-pressure; the input is pulled as the child reads.
//! let lines = (1..=1000).map(|n| format!("X {n} X\n"));
//! let found = Command::new("grep").arg("250").input(lines).stream()?.collect_string()?;
//! assert_eq!(found, "X 250 X\n");
//!
//! // Tagged stdout/stderr events, the exit status always last.
//! for event in Command::shell("echo out; echo err >&2; exit 3").stderr(Stdio::piped()).events()? {
//!     match event? {
//!         Event::Stdout(b) | Event::Stderr(b) => print!("{}", String::from_utf8_lossy(&b)),
//!         Event::Exit(status) => assert_eq!(status.code(), Some(3)),
//!     }
//! }
//!
//! // A handle, std-style: pipes are public fields.
//! let mut child = Command::new("sleep").arg("1000")
//!     .stop_timeout(Duration::from_secs(3)).spawn()?;
//! assert!(child.stdin.is_none()); // not piped
//! // The stop sequence: SIGTERM (+ SIGCONT), SIGKILL 3 s later if needed.
//! let status = child.stop()?;
//! assert_eq!(status.signal(), Some(Signal::TERM));
//!
//! // A deadline: the stop sequence starts after 100 ms.
//! let status = Command::shell("sleep 10").timeout(Duration::from_millis(100)).status()?;
//! assert!(status.timed_out());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Terms
//!
//! One word per concept, in the API, the CLI's flags and these docs:
//!
//! | term | meaning | where |
//! |---|---|---|
//! | **stop** | the graceful end: the *stop signal* (SIGTERM by default) or the *stop command*, then SIGCONT, then SIGKILL after the *stop timeout* | [`Child::stop`], [`Child::start_stop`], [`Command::stop_signal`], [`Command::stop_command`], [`Command::stop_timeout`] (CLI `--stop-signal`, `--stop-command`, `--stop-timeout`) |
//! | **kill** | SIGKILL, at once (std's and tokio's meaning) | [`Child::kill`] |
//! | **signal** | any signal, sent through the pidfd | [`Child::signal`], [`Child::signal_group`], [`Signal`] |
//! | **group stop** | the stop sequence reaches the child's whole process group, and the rest of the group is stopped when the child exits | [`Command::stop_group`], [`ProcessGroup`] |
//! | **timeout** | the longest the child may run; then it is stopped and its status says [`Ended::TimedOut`] | [`Command::timeout`] (CLI `--timeout`) |
//! | **stop timeout** | grace between the stop signal and SIGKILL | [`Command::stop_timeout`] |
//! | **drop timeout** | grace a dropped stream's child gets to exit by itself before it is stopped | [`Command::drop_timeout`], [`Command::stop_on_drop`] |
//! | **drain timeout** | how long a finished child's descendants may keep its pipes open before a stream ends (Go's `WaitDelay`) | [`Command::pipe_drain_timeout`] |
//! | **wait** | block until the child (and, with group stop, its group) is over; `wait_timeout` bounds the waiting, not the child | [`Child::wait`], [`Child::wait_timeout`], [`Child::try_wait`] |
//! | **requested** | the child ended because the caller stopped, killed or dropped it | [`Ended::Requested`] |
//! | **suspended** | the Unix *stopped* state (SIGSTOP, SIGTSTP, SIGTTIN); procession never says "stopped" for it | — |
//! | **run** | start, collect and check in one call (duct's `run`, Python's `check=True`) | [`Command::run`] |
//! | **stream** / **events** / **output** | checked stdout chunks / tagged stdout, stderr and exit / everything collected, unchecked | [`Command::stream`], [`Command::events`], [`Command::output`] |
//! | **pipeline** | commands whose stdout feeds the next one's stdin through a kernel pipe, like a shell pipeline; its status follows the *pipefail* rule | [`Pipeline`], [`Command::pipe`], [`Pipefail`] |
//! | **forward** | moving a child's stdout into a file or a socket inside the kernel (`splice`), with no copy through this process | [`Command::forward_stdout`], [`ChildStdout::forward`], [`Forwarded`] |
//! | **input** | data procession feeds to stdin for you (vs. [`Command::stdin`], where stdin is connected) | [`Command::input`] and its siblings |
//!
//! # Terminals and servers: the process-group rule
//!
//! The default [`ProcessGroup::Auto`] is decided at each spawn:
//!
//! - **In a terminal** (this process is in the foreground process group of
//!   its controlling terminal: started from a prompt), the child stays in
//!   this process's group, as with `std`: it can read the terminal, and
//!   Ctrl-C, Ctrl-\ and Ctrl-Z reach it with the rest of the job. The stop
//!   sequence reaches the child itself (the user's terminal controls the
//!   job as a whole).
//! - **Everywhere else** (a service, a CI job, a background job, no
//!   terminal), the child leads a new process group and *group stop* is on:
//!   [`stop`](Child::stop), a [`timeout`](Command::timeout), dropping the
//!   handle or stream, and [`kill`](Child::kill) reach everything the child
//!   started, and what is left of the group when the child exits is stopped
//!   too. No option is needed.
//!
//! Setting [`Command::process_group`] or [`Command::stop_group`] overrides
//! the rule (`stop_group(true)` always gives the child a group of its own).
//! The `procession` command-line tool follows GNU `timeout` instead: it
//! leads a group that is the terminal's foreground job when started from a
//! prompt, runs the program in it, and stops that whole group.
//!
//! # Differences from `std::process`
//!
//! - Every child gets only descriptors 0, 1 and 2, default signal
//!   dispositions and an empty signal mask, whatever the parent had; signals
//!   go through a pidfd, so a reused pid is never hit.
//! - Dropping a running [`Child`] stops it (the stop sequence, in the
//!   background; [`Command::stop_on_drop`]) and it is always reaped: no
//!   zombie. std lets it run and never reaps it.
//! - Outside a terminal a child leads its own process group (see above).
//! - [`Command::shell`] is `/bin/sh -c`; std has no shell helper.
//! - [`Command::output`] reads stdout and stderr with `poll`, on the
//!   caller's thread; a broken input pipe is not an error by default.
//! - Errors are one structured [`Error`]: the program, the command line,
//!   the [`Step`] that failed, the OS error, and for an unsuccessful run the
//!   status, the stderr tail and the collected output.
//! - [`Child::wait`] with group stop returns when the whole group is gone.
//! - There is no `From<std::process::Command>`: std hides some of its
//!   settings (`env_clear`, stdio, uid), so the conversion is
//!   [`Command::from_std_lossy`] and says what it loses.
//!
//! # Migrating from exile
//!
//! Every example of the README of [exile](https://github.com/akash-akya/exile)
//! (demand-driven streaming for Elixir), in procession form. exile's
//! `stream!` is [`Command::stream`] (checked), its `stream` is
//! [`Command::events`], `stderr: :consume` is `stderr(Stdio::piped())`,
//! `:redirect_to_stdout` is `stderr(Stdio::to_stdout())`, `:disable` is
//! `Stdio::null()`.
//!
//! ```
//! use procession::{Command, Event, ErrorKind, Stdio};
//! use bytes::Bytes;
//!
//! // Exile.stream!(~w(echo Hello World!)) |> Enum.into("")
//! let out = Command::new("echo").args(["Hello", "World!"]).stream()?.collect_string()?;
//! assert_eq!(out, "Hello World!\n");
//!
//! // Exile.stream!(~w(cat), input: ["Hello ", "Back!"]) |> Enum.into("")
//! let out = Command::new("cat").input(["Hello ", "Back!"]).stream()?.collect_string()?;
//! assert_eq!(out, "Hello Back!");
//!
//! // input_stream = Stream.map(1..10, fn num -> "#{num}\n" end)
//! let input = (1..=10).map(|n| format!("{n}\n"));
//! let out = Command::new("cat").input(input).stream()?.collect_string()?;
//! assert_eq!(out, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n");
//!
//! // Exile.stream!(["sh", "-c", "echo stdout && echo stderr >&2"], stderr: :consume)
//! let events: Vec<Event> = Command::new("sh").args(["-c", "echo stdout && echo stderr >&2"])
//!     .stderr(Stdio::piped()).events()?.collect::<Result<_, _>>()?;
//! assert_eq!(events[..2], [Event::Stdout(Bytes::from("stdout\n")), Event::Stderr(Bytes::from("stderr\n"))]);
//! assert!(matches!(events[2], Event::Exit(status) if status.success()));
//!
//! // stderr: :redirect_to_stdout
//! let out = Command::new("sh").args(["-c", "echo stdout && echo stderr >&2"])
//!     .stderr(Stdio::to_stdout()).stream()?.collect_string()?;
//! assert_eq!(out, "stdout\nstderr\n");
//!
//! // Stable memory when reading an endless producer: only what is asked for is read.
//! for chunk in Command::new("cat").arg("/dev/urandom").stream()?.take(100) {
//!     assert!(chunk?.len() <= 65536);
//! }
//!
//! // Handle infinite streams: the child stops reading when we stop consuming.
//! let chunks: Vec<Bytes> = Command::new("cat").input(std::iter::repeat("data\n"))
//!     .stream()?.take(3).collect::<Result<_, _>>()?;
//! assert!(chunks.concat().starts_with(b"data\ndata\n"));
//! # assert!(procession::__test_support::wait_for_reaper());
//!
//! // Exit status handling: stream! raises, stream returns {:exit, {:status, 10}}
//! let err = Command::new("sh").args(["-c", "exit 10"]).stream()?.collect_bytes().unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Exit);
//! assert_eq!(err.exit_status().unwrap().code(), Some(10));
//! let events: Vec<Event> = Command::new("sh").args(["-c", "exit 10"]).events()?.collect::<Result<_, _>>()?;
//! assert!(matches!(events.last(), Some(Event::Exit(s)) if s.code() == Some(10)));
//!
//! // base64 waits for input EOF before producing output
//! let out = Command::new("base64").input(["abcdef"]).stream()?.collect_string()?;
//! assert_eq!(out, "YWJjZGVm\n");
//!
//! // Collectable as input (a callback writing into a sink)
//! use std::io::Write;
//! let out = Command::new("cat")
//!     .input_fn(|sink| {
//!         for line in std::iter::repeat("data\n").take(2) {
//!             sink.write_all(line.as_bytes())?;
//!         }
//!         Ok(())
//!     })
//!     .stream()?
//!     .collect_string()?;
//! assert_eq!(out, "data\ndata\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Large data with a controlled chunk size (`cat huge_file.log`,
//! `max_chunk_size: 65536`, then a batch function on each chunk):
//!
//! ```
//! use procession::Command;
//! # let dir = std::env::temp_dir().join(format!("procession-doc-log-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let log = dir.join("huge_file.log");
//! std::fs::write(&log, "line\n".repeat(100_000))?;
//! let process_batch = |batch: &[u8]| batch.iter().filter(|&&b| b == b'\n').count();
//! let mut lines = 0;
//! for chunk in Command::new("cat").arg(&log).max_chunk_size(65536).stream()? {
//!     let chunk = chunk?;
//!     assert!(chunk.len() <= 65536);
//!     lines += process_batch(&chunk);
//! }
//! assert_eq!(lines, 100_000);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Media processing with `ffmpeg` (the test machines install it): extract the
//! audio of a video fed through stdin in 65,535-byte chunks, then convert a
//! video while showing ffmpeg's progress from stderr.
//!
//! ```
//! use procession::{Command, Event, Stdio};
//! use std::io::Write;
//! # let dir = std::env::temp_dir().join(format!("procession-doc-ffmpeg-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let video = dir.join("video.mkv");
//! # let made = Command::new("ffmpeg").args(["-loglevel", "error", "-f", "lavfi", "-i",
//! #     "testsrc=duration=1:size=64x64:rate=10", "-f", "lavfi", "-i", "sine=duration=1",
//! #     "-shortest", "-y"]).arg(&video).status()?;
//! # assert!(made.success());
//! // Exile.stream!(~w(ffmpeg -i pipe:0 -f mp3 pipe:1), input: File.stream!("video.mkv", [], 65_535))
//! // |> Stream.into(File.stream!("audio.mp3")) |> Stream.run()
//! let audio_path = dir.join("audio.mp3");
//! let mut audio = std::fs::File::create(&audio_path)?;
//! let video_file = std::fs::File::open(&video)?;
//! for chunk in Command::new("ffmpeg").args(["-loglevel", "error", "-i", "pipe:0", "-f", "mp3", "pipe:1"])
//!     .input_reader(video_file).max_chunk_size(65_535).stream()?
//! {
//!     audio.write_all(&chunk?)?;
//! }
//! assert!(std::fs::metadata(&audio_path)?.len() > 0);
//!
//! // ffmpeg -i input -c:v libx264 pipe:1, with stderr: :consume for the progress
//! let output_path = dir.join("output.mkv");
//! let mut output = std::fs::File::create(&output_path)?;
//! let mut progress = Vec::new();
//! for event in Command::new("ffmpeg").arg("-i").arg(&video)
//!     .args(["-c:v", "libx264", "-f", "matroska", "pipe:1"])
//!     .stderr(Stdio::piped()).events()?
//! {
//!     match event? {
//!         Event::Stdout(data) => output.write_all(&data)?,
//!         Event::Stderr(data) => progress.extend_from_slice(&data), // or show it
//!         Event::Exit(status) => assert!(status.success()),
//!     }
//! }
//! assert!(std::fs::metadata(&output_path)?.len() > 0);
//! assert!(String::from_utf8_lossy(&progress).contains("libx264"));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # erlexec, in procession
//!
//! A [`Supervisor`] is erlexec's `exec` server; Rust handles, monitors and
//! futures stand in for Erlang processes and messages.
//!
//! | erlexec / Erlang port | procession |
//! |---|---|
//! | `exec:run(Cmd, Opts)` | [`Supervisor::spawn`] (a [`Supervised`] handle: clone it to control the child from anywhere, as Port's `connect` hands a port to another owner) |
//! | `exec:run_link` | [`Supervisor::spawn`] + [`Supervised::link`]: a [`Link`] stops the child when dropped and is a future of its exit |
//! | `monitor`, `{'DOWN', …}` | [`Supervised::monitor`]: a [`Monitor`] blocks ([`Monitor::recv`]) or is awaited |
//! | `exec:run(…, [sync, stdout, stderr])` | [`Command::output`] / [`Command::run`] |
//! | `exec:manage(Pid, Opts)` | [`Supervisor::manage`], [`Supervisor::manage_with`] (exit seen through a pidfd at once; status [`Exit::Unknown`]) |
//! | `exec:which_children()`, `exec:pid(OsPid)` | [`Supervisor::children`], [`Supervisor::get`] |
//! | `exec:stop`, `exec:kill(I, Sig)` | [`Supervised::stop`] / [`start_stop`](Supervised::start_stop), [`Supervised::signal`] |
//! | `{kill_timeout, S}`, `{kill, Cmd}` | [`Command::stop_timeout`], [`Command::stop_command`] (with `CHILD_PID`) |
//! | `kill_group`, `{group, 0}` | [`Command::stop_group`], [`ProcessGroup::New`] (the default off a terminal) |
//! | `{stdout, Fun}`, `{stdout, self()}` | [`Stdio::callback`], [`Stdio::channel`] |
//! | `{stdout, File, [append, {mode, M}]}`, `{stderr, stdout}` | [`Stdio::append`] + [`Stdio::mode`], [`Stdio::to_stdout`] |
//! | `{env, [clear, {K, V}, {K, false}]}` | [`Command::env_clear`], [`Command::env`], [`Command::env_remove`] |
//! | `{user, U}`, `{limit_users, Us}`, `{nice, N}` | [`Command::user`], [`Supervisor::with_allowed_users`], [`Command::nice`] |
//! | `{success_exit_code, N}` | [`Command::success_exit_codes`] |
//! | `pty`, `pty_echo`, `{pty, [{vintr, 2}, …]}`, `{winsz, {R, C}}` | [`Command::pty`] with [`Pty::echo`], [`Pty::mode`] ([`TerminalMode`], every RFC 4254 mode), [`Pty::size`] |
//! | `winsz/3`, `pty_opts/2`, `send(I, eof)` on a pty | [`Child::resize`], [`Child::set_terminal_modes`], [`Child::hang_up`] ([`Child::close_stdin`] types Ctrl-D instead) |
//! | children killed when the owner dies (erlexec: about 10 s later, only those in the port program's reach) | the owner-death watchdog (milliseconds; [see below](#nothing-left-behind-three-strengths)); [`Command::cgroup`] for daemons that left their group |
//! | `exec:send(I, Data)`, `exec:send(I, eof)` | [`Child::write_all`], [`Child::close_stdin`] |
//!
//! erlexec's README, in procession form:
//!
//! ```
//! use procession::{Command, Ended, Exit, Signal, Stdio, Supervisor};
//! use std::time::Duration;
//! let sup = Supervisor::new();
//!
//! // run_link("sleep 1000"), then stop it.
//! let child = sup.spawn(&Command::shell("sleep 1000"))?;
//! let _link = child.link();
//! assert_eq!(child.stop()?.ended(), Ended::Requested);
//!
//! // exec:run("env", [sync, stdout, {env, [clear, {"TEST", "xxx"}]}])
//! let out = Command::new("env").env_clear().env("TEST", "xxx").output()?;
//! assert_eq!(out.stdout, b"TEST=xxx\n");
//! // {env, [{"EMU", false}]}: unset one variable.
//! let out = Command::new("env").env("EMU", "x").env_remove("EMU").output()?;
//! assert!(!String::from_utf8_lossy(&out.stdout).contains("EMU="));
//!
//! // exec:run("echo Test; echo Err 1>&2", [sync, stdout, stderr])
//! let out = Command::shell("echo Test; echo Err 1>&2").stderr(Stdio::piped()).output()?;
//! assert_eq!((&out.stdout[..], &out.stderr[..]), (&b"Test\n"[..], &b"Err\n"[..]));
//!
//! // exec:kill(I, 15), then the status.
//! let child = sup.spawn(&Command::shell("sleep 1000"))?;
//! child.signal(Signal::TERM)?;
//! assert_eq!(child.wait()?.status().unwrap().signal(), Some(Signal::TERM));
//!
//! // exec:run("echo ok", [{stdout, self()}, monitor]): output as messages.
//! let (tx, rx) = std::sync::mpsc::sync_channel(8);
//! let child = sup.spawn(Command::new("echo").arg("ok").stdout(Stdio::channel(tx)))?;
//! let exit = child.monitor().recv();
//! assert!(exit.status().unwrap().success());
//! assert_eq!(rx.recv().unwrap(), "ok\n");
//!
//! // A TERM-ignoring script with {kill_timeout, 1}: SIGKILL after the grace.
//! let (ready_tx, ready) = std::sync::mpsc::sync_channel(1);
//! let stubborn = sup.spawn(Command::new("sh").args(["-c", "trap '' TERM; echo; sleep 30"])
//!     .stop_timeout(Duration::from_millis(300)).stdout(Stdio::channel(ready_tx)))?;
//! ready.recv()?; // the trap is set
//! let exit = stubborn.stop()?;
//! assert_eq!((exit.status().unwrap().signal(), exit.ended()), (Some(Signal::KILL), Ended::Requested));
//!
//! // exec:run("trap '' SIGTERM; sleep 30", [{kill, "kill -n 2 ${CHILD_PID}"},
//! //     {kill_timeout, 2}, monitor]): a custom stop command (run by /bin/sh;
//! //     `exec` so that its SIGINT reaches the sleep itself).
//! let (ready_tx, ready) = std::sync::mpsc::sync_channel(1);
//! let child = sup.spawn(Command::new("sh").args(["-c", "trap '' TERM; echo; exec sleep 30"])
//!     .stop_command("kill -INT $CHILD_PID").stop_timeout(Duration::from_secs(2))
//!     .stdout(Stdio::channel(ready_tx)))?;
//! ready.recv()?; // the trap is set
//! // exec:kill(I, sigterm) does nothing: SIGTERM is ignored.
//! child.signal(Signal::TERM)?;
//! assert_eq!(child.wait_timeout(Duration::from_millis(100))?, None);
//! // exec:stop(I) runs the stop command: SIGINT ends it, long before SIGKILL.
//! let exit = child.stop()?;
//! assert_eq!((exit.status().unwrap().signal(), exit.ended()), (Some(Signal::INT), Ended::Requested));
//!
//! // exec:run("read x; echo \"Got: $x\"", [stdin, stdout]), exec:send(I, ...)
//! let mut child = Command::shell("read x; echo \"Got: $x\"")
//!     .stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
//! child.write_all(b"Test data\n")?;
//! assert_eq!(child.read()?.unwrap(), "Got: Test data\n");
//! child.wait()?;
//!
//! // tac, then exec:send(I, eof)
//! let out = Command::new("tac").input(["foo\n", "bar\n", "baz\n"]).output()?;
//! assert_eq!(out.stdout, b"baz\nbar\nfoo\n");
//!
//! // exec:run("echo Test 1>&2", [{stderr, stdout}, stdout, sync])
//! let out = Command::shell("echo Test 1>&2").stderr(Stdio::to_stdout()).output()?;
//! assert_eq!(out.stdout, b"Test\n");
//!
//! // exec:manage(Pid, [monitor]) of a process started elsewhere.
//! let mut other = std::process::Command::new("sleep").arg("0.1").spawn()?;
//! let exit = sup.manage(other.id())?.monitor().recv();
//! assert_eq!(exit, Exit::Unknown { ended: Ended::OnItsOwn });
//! other.wait()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Running synchronously, with and without a shell, the environment and
//! the success codes:
//!
//! ```
//! use procession::{Command, ErrorKind, Stdio};
//! // exec:run("sleep 1; echo Test", [sync]): the status only, output to
//! // /dev/null (a shorter sleep here).
//! let status = Command::shell("sleep 0.1; echo Test").stdout(Stdio::null()).status()?;
//! assert!(status.success());
//! // exec:run("sleep 1; echo Test", [stdout, sync]): the output too.
//! assert_eq!(Command::shell("sleep 0.1; echo Test").output()?.stdout, b"Test\n");
//!
//! // exec:run("echo1 Test", [sync, stdout, stderr]): through a shell, the
//! // shell reports it (exit 127)...
//! let out = Command::shell("echo1 Test").stderr(Stdio::piped()).output()?;
//! assert_eq!(out.status.code(), Some(127));
//! assert!(String::from_utf8_lossy(&out.stderr).contains("echo1: "));
//! // ...without one, nothing starts: a NotFound error.
//! let err = Command::new("echo1").arg("Test").output().unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::NotFound);
//!
//! // exec:run("echo ok", [sync, stdout]) runs a shell;
//! // exec:run(["/bin/echo", "ok"], [sync, stdout]) runs the program itself;
//! // exec:run(["/bin/bash", "-c", "echo ok"], [sync, stdout]) another shell.
//! assert_eq!(Command::shell("echo ok").output()?.stdout, b"ok\n");
//! assert_eq!(Command::new("/bin/echo").arg("ok").output()?.stdout, b"ok\n");
//! assert_eq!(Command::shell_with("bash", "echo ok").output()?.stdout, b"ok\n");
//!
//! // exec:run("env", [sync, stdout, {env, [clear]}]): no variable at all
//! // (erlexec's shell adds PWD, SHLVL and _; env alone adds nothing).
//! assert_eq!(Command::new("env").env_clear().output()?.stdout, b"");
//!
//! // exec:run_link("sleep 1", [{success_exit_code, 0}, sync]): fine;
//! // with {success_exit_code, 1}, exit 0 is a failure.
//! assert!(Command::new("sleep").arg("0.1").success_exit_codes([0]).run().is_ok());
//! let err = Command::new("sleep").arg("0.1").success_exit_codes([1]).run().unwrap_err();
//! assert_eq!((err.kind(), err.exit_status().unwrap().code()), (ErrorKind::Exit, Some(0)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Output to files, functions and messages:
//!
//! ```
//! use procession::{Command, Stdio, Supervisor};
//! use std::os::unix::fs::PermissionsExt;
//! use std::sync::{Arc, Mutex};
//! # let dir = std::env::temp_dir().join(format!("procession-doc-erlexec-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let sup = Supervisor::new();
//!
//! // exec:run_link("for i in 1 2 3; do echo \"Test$i\"; done", [{stdout, "/tmp/output"}])
//! let output = dir.join("output");
//! let child = sup.spawn(Command::shell(r#"for i in 1 2 3; do echo "Test$i"; done"#)
//!     .stdout(Stdio::file(&output)))?;
//! assert!(child.wait()?.status().unwrap().success());
//! assert_eq!(std::fs::read_to_string(&output)?, "Test1\nTest2\nTest3\n");
//!
//! // exec:run("for i in 1 2 3; do echo TEST$i; done",
//! //     [{stdout, "/tmp/out", [append, {mode, 8#600}]}, sync]), then "echo Test4" the same way.
//! let out = dir.join("out");
//! let append = || Stdio::append(&out).mode(0o600);
//! Command::shell("for i in 1 2 3; do echo TEST$i; done").stdout(append()).status()?;
//! Command::shell("echo Test4").stdout(append()).status()?;
//! assert_eq!(std::fs::read_to_string(&out)?, "TEST1\nTEST2\nTEST3\nTest4\n");
//! assert_eq!(std::fs::metadata(&out)?.permissions().mode() & 0o777, 0o600);
//!
//! // exec:run("for i in 1 2 3; do sleep 1; echo \"Iter$i\"; done",
//! //     [{stdout, fun(S, OsPid, D) -> io:format("Got ~w from ~w: ~p\n", [S, OsPid, D]) end}])
//! let got = Arc::new(Mutex::new(Vec::new()));
//! let sink = got.clone();
//! let child = sup.spawn(Command::shell(r#"for i in 1 2 3; do sleep 0.01; echo "Iter$i"; done"#)
//!     .stdout(Stdio::callback(move |data| sink.lock().unwrap().extend_from_slice(&data))))?;
//! child.wait()?; // reported once the function has had everything
//! assert_eq!(*got.lock().unwrap(), b"Iter1\nIter2\nIter3\n");
//!
//! // exec:run("echo Test", [{stdout, print}]): printed as it comes.
//! let printed = Arc::new(Mutex::new(0));
//! let count = printed.clone();
//! let child = sup.spawn(Command::new("echo").arg("Test").stdout(Stdio::callback(move |data| {
//!     print!("Got stdout: {}", String::from_utf8_lossy(&data));
//!     *count.lock().unwrap() += data.len();
//! })))?;
//! child.wait()?;
//! assert_eq!(*printed.lock().unwrap(), "Test\n".len());
//!
//! // exec:run("echo Hello World!; echo ERR!! 1>&2", [stdout, stderr]): tagged
//! // messages, here on one channel.
//! let (tx, rx) = std::sync::mpsc::channel();
//! let tx_err = tx.clone();
//! let child = sup.spawn(Command::shell("echo Hello World!; echo ERR!! 1>&2")
//!     .stdout(Stdio::callback(move |data| tx.send(("stdout", data)).unwrap()))
//!     .stderr(Stdio::callback(move |data| tx_err.send(("stderr", data)).unwrap())))?;
//! child.wait()?;
//! let mut messages: Vec<_> = rx.try_iter().collect();
//! messages.sort(); // the two streams are read apart, in no set order
//! assert_eq!(messages, [("stderr", "ERR!!\n".into()), ("stdout", "Hello World!\n".into())]);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Killing a process group at the leader's exit, and running as another user:
//!
//! ```
//! use procession::{Command, ErrorKind, ProcessGroup, Signal, Stdio, Step, Supervisor};
//! use std::io::Write;
//! # let root = unsafe { libc::geteuid() } == 0;
//! // exec:run("sleep 10", [{group, 0}, kill_group]), then twice
//! // exec:run("sleep 15", [{group, GID}, monitor]): as the leader exits, the
//! // members get SIGTERM. The leader here is a cat that ends when we close
//! // its input, rather than a sleep 10.
//! let sup = Supervisor::new();
//! let (mut input, leader_stdin) = std::os::unix::net::UnixStream::pair()?;
//! let leader = sup.spawn(Command::new("cat").stdin(std::os::fd::OwnedFd::from(leader_stdin))
//!     .stdout(Stdio::null()).stop_group(true))?;
//! let gid = leader.pid();
//! let members = (0..2)
//!     .map(|_| sup.spawn(Command::new("sleep").arg("15").process_group(ProcessGroup::Join(gid))))
//!     .collect::<Result<Vec<_>, _>>()?;
//! input.write_all(b"bye\n")?;
//! drop(input); // cat exits
//! assert!(leader.wait()?.status().unwrap().success());
//! for member in &members {
//!     assert_eq!(member.monitor().recv().status().unwrap().signal(), Some(Signal::TERM));
//! }
//!
//! // exec:start([{limit_users, ["nobody"]}]), then
//! // exec:run("id -un", [sync, stdout, {user, "nobody"}]).
//! let sup = Supervisor::with_allowed_users(["nobody"])?;
//! let (tx, rx) = std::sync::mpsc::sync_channel(4);
//! match sup.spawn(Command::new("id").arg("-un").user("nobody").stdout(Stdio::channel(tx))) {
//!     Ok(child) => {
//!         assert!(child.wait()?.status().unwrap().success());
//!         assert_eq!(rx.recv()?, "nobody\n");
//!     }
//!     // Changing user needs root (or CAP_SETUID): refused, nothing runs.
//!     Err(err) => {
//!         assert!(!root, "{err}");
//!         assert_eq!((err.step(), err.kind()), (Step::User, ErrorKind::PermissionDenied));
//!     }
//! }
//! // A user outside the list is refused before anything starts, root or not.
//! let err = sup.spawn(Command::new("id").user("root")).unwrap_err();
//! assert_eq!((err.step(), err.kind()), (Step::User, ErrorKind::PermissionDenied));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Nothing left behind: three strengths
//!
//! What stops a child's descendants, from the weakest to the strongest:
//!
//! | | **1. process group** | **2. owner death** | **3. cgroup** |
//! |---|---|---|---|
//! | on | by default off a terminal ([the rule above](#terminals-and-servers-the-process-group-rule)) | by default, everywhere | on request: [`Command::cgroup`] |
//! | what it does | [`stop`](Child::stop), a timeout, a drop and [`kill`](Child::kill) signal the child's whole group; what is left of it when the child exits is stopped | when this process ends, its watchdog SIGKILLs every child not yet reaped, with its group (strength 1's reach) or its cgroup (strength 3's) | the child and everything it starts live in a cgroup v2 of their own; stop ends with `cgroup.kill`; the cgroup is emptied after the child exits, read ([`ExitStatus::cgroup_usage`]) and removed |
//! | survives SIGKILL of this process | no | **yes** | with 2: **yes** |
//! | reaches a grandchild in the group | yes | yes | yes |
//! | reaches a `setsid` daemon, a double fork, a change of process group | no | no (only through 3) | **yes** |
//! | reaches grandchildren of a child kept in our group (a terminal) | no (the terminal's job control does) | no: only the child itself | yes |
//! | costs | nothing per spawn | one watchdog process per program (`/bin/sh`: 0.1 MiB of its own memory, 1.7 MiB resident with the shared shell and C library); per spawn a slot write and one `getppid` (see BENCHMARKS.md, scenario 4) | a cgroup directory made, joined and removed per child (see BENCHMARKS.md) |
//! | needs | — | `/bin/sh`, `memfd_create` (Linux 3.17) | a writable cgroup v2 hierarchy (root, or a delegated subtree); `cgroup.kill` (Linux 5.14; older kernels: each member is signalled) |
//!
//! **How owner death works.** At the first spawn, procession starts a
//! watchdog: `/bin/sh` running a fixed script, shown as
//! `procession-watchdog`, in a session of its own, deaf to the signals a
//! terminal or a group kill sends. It waits on a pipe only this process
//! holds open; the pipe ends when this process ends, however it ends
//! (return from `main`, `exit`, a panic that aborts, a crash, SIGKILL, an
//! `execve` of another program). The watchdog then reads a table in
//! shared memory where each running child recorded itself (between clone
//! and exec, before its program runs; a child whose owner died during its
//! spawn sees its new parent and exits instead of running unwatched) and
//! kills what it lists. A child leaves the table when it is reaped, so a
//! pid that could name another process by then is never killed. Measured
//! (tests/owner_death.rs): an owner with 100 children, each with a
//! grandchild, SIGKILLed: all 200 gone within milliseconds; the same for an
//! owner that exits without stopping its children, one whose spawning
//! thread ended first (where `PR_SET_PDEATHSIG` would have killed the
//! children too early), and one killed in the middle of a burst of spawns.
//!
//! **Limits.** A program that must keep running after this one is started
//! with [`Command::outlive_owner`]. A process adopted with
//! [`Supervisor::manage`] was not started here and is not covered. Killing
//! the watchdog itself (SIGKILL) removes the protection until the next
//! spawn starts a new one, which takes over every child still listed.
//! Without cgroups, a descendant that leaves its group (`setsid`, a daemon's
//! double fork) escapes strengths 1 and 2; in a terminal, where children
//! stay in our group, only the children themselves are covered.
//!
//! # Terminals: erlexec's pty examples
//!
//! ```
//! use procession::{Command, Pty, Signal, Stdio, TerminalMode};
//! # fn read_until(child: &mut procession::Child, want: &[u8]) -> Result<Vec<u8>, procession::Error> {
//! #     let mut seen = Vec::new();
//! #     while !seen.ends_with(want) { match child.read()? { Some(c) => seen.extend_from_slice(&c), None => break } }
//! #     Ok(seen)
//! # }
//! // exec:run("echo hello", [sync, stdout]) and the same with pty: the
//! // terminal turns "\n" into "\r\n".
//! assert_eq!(Command::new("echo").arg("hello").output()?.stdout, b"hello\n");
//! assert_eq!(Command::new("echo").arg("hello").pty(Pty::new()).output()?.stdout, b"hello\r\n");
//!
//! // exec:run("cat", [stdin, stdout, {stderr, stdout}, pty, pty_echo]), send
//! // "hello", then "\n", then byte 3.
//! let mut cat = Command::new("cat").pty(Pty::new().echo(true)).spawn()?;
//! cat.write_all(b"hello")?;
//! assert_eq!(read_until(&mut cat, b"hello")?, b"hello"); // the echo
//! cat.write_all(b"\n")?;
//! assert_eq!(read_until(&mut cat, b"hello\r\n")?, b"\r\nhello\r\n"); // echo, then cat
//! cat.write_all(&[3])?;
//! assert_eq!(read_until(&mut cat, b"^C")?, b"^C");
//! assert_eq!(cat.wait()?.signal(), Some(Signal::INT));
//!
//! // {pty, [{vintr, 2}]}: byte 3 is ordinary input now, byte 2 interrupts.
//! let mut cat = Command::new("cat").pty(Pty::new().mode(TerminalMode::Vintr, 2)).spawn()?;
//! cat.write_all(&[3])?;
//! cat.write_all(&[2])?;
//! assert_eq!(cat.wait()?.signal(), Some(Signal::INT));
//!
//! // {winsz, {Rows, Cols}}, then winsz/3 at run time.
//! let out = Command::new("stty").arg("size").pty(Pty::new().size(40, 100)).output()?;
//! assert_eq!(out.stdout, b"40 100\r\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Erlang ports, in procession
//!
//! | Port | procession |
//! |---|---|
//! | `{spawn, "cmd a b"}` | [`Command::parse`] (quoting rules there; no shell) |
//! | `{spawn_executable, F}`, `{args, A}`, `{arg0, S}` | [`Command::new`], [`Command::args`], [`Command::arg0`] |
//! | `{line, L}`: `{eol, Line}` / `{noeol, Line}` | [`LineCodec`], [`Line::complete`]; on a stream [`Chunks::lines`], on a handle [`Child::read_frame`], per line to a function [`Stdio::lines`] |
//! | `{packet, 1 \| 2 \| 4}` both ways | [`PacketCodec`], [`Chunks::packets`], [`Child::write_packet`] |
//! | `stream` (no framing) | [`Command::stream`], or a reader: [`Chunks::into_reader`] |
//! | `port_info(P)`: `os_pid`, `name`, `input`, `output`, `queue_size` | [`Child::info`] |
//! | `erlang:ports()` | [`children`] |
//!
//! ```
//! use procession::{Command, Line, LineCodec, PacketCodec, PacketSize, Stdio};
//! // {line, 8}
//! let lines: Vec<Line> = Command::new("printf").arg(r"abc\nlonglongline\ntail").stream()?
//!     .lines(LineCodec::new(8)).collect::<Result<_, _>>()?;
//! assert_eq!(lines, [Line::complete("abc"), Line::incomplete("longlong"),
//!                    Line::complete("line"), Line::incomplete("tail")]);
//!
//! // {packet, 2}, both ways, through cat; port_info's byte counts.
//! let mut cat = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
//! let mut codec = PacketCodec::new(PacketSize::Two);
//! cat.write_packet(&codec, b"ping")?;
//! assert_eq!(cat.read_frame(&mut codec)?.unwrap(), "ping");
//! assert_eq!((cat.info().stdin_written, cat.info().stdout_read), (6, 6));
//! assert!(procession::children().iter().any(|c| c.pid == cat.pid()));
//! cat.close_stdin();
//! cat.wait()?;
//! # Ok::<(), procession::Error>(())
//! ```
//!
//! # What every child gets
//!
//! - Only descriptors 0, 1 and 2 (everything else is closed at `execve`),
//!   default signal dispositions and an empty signal mask, whatever the
//!   parent had.
//! - A process group by [the rule above](#terminals-and-servers-the-process-group-rule).
//! - A pidfd, so signals never reach a process that reused its pid.
//! - A place in the owner-death watchdog's table (see above), unless
//!   [`Command::outlive_owner`].
//! - Reaping: by [`Child::wait`], or by a background thread once the handle
//!   is dropped. procession installs no SIGCHLD handler.
//!
//! # Linux versions
//!
//! Built and tested on Linux 6.x. Linux 5.3 or later gives every child a
//! pidfd (`CLONE_PIDFD`; 5.2 and older fall back to the pid, and waiting
//! polls every 5 ms); `close_range` needs 5.9 (older kernels mark each
//! descriptor close-on-exec one by one); `pidfd_send_signal` needs 5.1. The
//! owner-death watchdog needs `memfd_create` (3.17) and `/bin/sh`; cgroup
//! mode a cgroup v2 hierarchy, with `cgroup.kill` from 5.14 (older kernels:
//! each member is signalled); a pty's slave is opened with `TIOCGPTPEER`
//! (4.13; `ptsname_r` before). The async API needs tokio 1.38 or later with
//! `enable_all()` on the runtime.
//!
//! # Layout
//!
//! [`Command`] (plain data) → `engine` (spawn plan, per-child state machine,
//! background reaper, owner-death watchdog, cgroups) → `sys` (the only
//! `unsafe` code: clone, pidfd, pipes, signals, shared memory). See
//! `docs/ARCHITECTURE.md`.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!("procession supports Linux only for now; other Unix systems need a `sys` port");

mod cgroup;
mod child;
mod command;
mod engine;
mod error;
mod forward;
mod framed;
mod framing;
mod info;
mod input;
mod limits;
mod pipe;
mod pipeline;
mod pty;
mod signal;
mod status;
mod stdio;
mod stream;
mod supervisor;
mod sys;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

pub use bytes::Bytes;
pub use cgroup::{Cgroup, CgroupUsage};
pub use child::{Child, Signaller};
pub use command::{
    Command, DEFAULT_DROP_TIMEOUT, DEFAULT_MAX_CHUNK_SIZE, DEFAULT_PIPE_CAPACITY,
    DEFAULT_PIPE_DRAIN_TIMEOUT, DEFAULT_STOP_TIMEOUT, ProcessGroup, which,
};
pub use error::{Error, ErrorKind, Step};
pub use forward::Forwarded;
pub use framed::{ChunksReader, FramedEvent, FramedEvents, Frames};
pub use framing::{
    DEFAULT_MAX_LINE, DEFAULT_MAX_PACKET, Decode, FrameError, Line, LineCodec, Newline,
    PacketCodec, PacketSize,
};
pub use info::{ChildInfo, ChildState, children};
pub use input::InputSink;
pub use limits::{Limit, NameOrId};
pub use pipe::{ChildStderr, ChildStdin, ChildStdout};
pub use pipeline::{Pipefail, Pipeline};
pub use pty::{ParseTerminalModeError, Pty, TerminalMode};
pub use signal::{ParseSignalError, Signal};
pub use status::{Ended, ExitStatus, ResourceUsage};
pub use stdio::Stdio;
pub use stream::{Chunks, Event, Events, Output, OutputChunk};
pub use supervisor::{Exit, Link, Monitor, RunMany, Supervised, Supervisor};
#[cfg(feature = "tokio")]
pub use tokio::{
    AsyncChild, AsyncChunks, AsyncChunksReader, AsyncEvents, AsyncFrames, AsyncInputSink,
};

/// Support for procession's own test suite; not part of the public API.
#[doc(hidden)]
pub mod __test_support {
    pub use crate::sys::signal::Disposition;

    /// The pid of this process's owner-death watchdog, starting it if it
    /// is not running (`None` when none can run).
    ///
    /// ```
    /// let pid = procession::__test_support::watchdog_pid().expect("a watchdog runs");
    /// // It is a child of this process (field 4 of its stat line).
    /// let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    /// let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    /// assert_eq!(after_name.split(' ').nth(1), Some(std::process::id().to_string().as_str()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn watchdog_pid() -> Option<u32> {
        crate::engine::watchdog::pid()
    }

    /// Children spawned by this process and not yet reaped.
    ///
    /// ```
    /// use procession::__test_support::unreaped_children;
    /// let before = unreaped_children();
    /// let mut child = procession::Command::new("sleep").arg("100").spawn()?;
    /// assert_eq!(unreaped_children(), before + 1);
    /// child.kill()?;
    /// assert_eq!(unreaped_children(), before + 1); // dead, but not reaped yet
    /// child.wait()?;
    /// assert_eq!(unreaped_children(), before);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn unreaped_children() -> usize {
        crate::engine::process::unreaped()
    }

    /// Waits up to 10 s for the background reaper to finish with every
    /// child of this process (the count above reaching zero); `false` if it
    /// did not. For examples that end by dropping a running child: the
    /// stop sequence and the reaping run in the background, and a program
    /// that exits first leaves that work undone. The count has no event to
    /// wait on, so this looks every millisecond.
    ///
    /// ```
    /// use procession::__test_support::{unreaped_children, wait_for_reaper};
    /// let child = procession::Command::new("sleep").arg("100").spawn()?;
    /// drop(child); // SIGTERM now, reaped in the background
    /// assert!(wait_for_reaper());
    /// assert_eq!(unreaped_children(), 0);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn wait_for_reaper() -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while unreaped_children() > 0 {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        true
    }

    /// Starts the background reaper so that its descriptors exist before a
    /// test takes its descriptor snapshot.
    ///
    /// ```
    /// use procession::__test_support::start_reaper;
    /// let open_fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    /// assert!(start_reaper());
    /// // (The owner-death watchdog's pipe and tables, opened at the first
    /// // spawn, stay open too.)
    /// assert!(procession::__test_support::watchdog_pid().is_some());
    /// let fds = open_fds();
    /// // It starts once: a second call opens nothing, and neither does a
    /// // child's life from spawn to reaping.
    /// assert!(start_reaper());
    /// assert_eq!(open_fds(), fds);
    /// let mut child = procession::Command::new("true").spawn()?;
    /// assert!(child.wait()?.success());
    /// drop(child); // its pidfd closes with the handle
    /// assert_eq!(open_fds(), fds);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn start_reaper() -> bool {
        crate::engine::reaper::start()
    }

    /// Whether this process is in its terminal's foreground group: the
    /// check behind [`ProcessGroup::Auto`](crate::ProcessGroup::Auto).
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// // The same question asked by hand: is our group the foreground
    /// // group of our controlling terminal (if we have one)?
    /// let by_hand = std::fs::File::open("/dev/tty").is_ok_and(|tty| {
    ///     // SAFETY: tcgetpgrp and getpgrp only read ids.
    ///     unsafe { libc::tcgetpgrp(tty.as_raw_fd()) == libc::getpgrp() }
    /// });
    /// assert_eq!(procession::__test_support::in_foreground(), by_hand);
    /// ```
    pub fn in_foreground() -> bool {
        crate::sys::tty::in_foreground()
    }

    /// The disposition of signal `sig` in this process.
    ///
    /// ```
    /// use procession::__test_support::{Disposition, disposition};
    /// // SAFETY: no other thread of this example touches SIGUSR2.
    /// unsafe { libc::signal(libc::SIGUSR2, libc::SIG_IGN) };
    /// assert_eq!(disposition(libc::SIGUSR2)?, Disposition::Ignore);
    /// unsafe { libc::signal(libc::SIGUSR2, libc::SIG_DFL) };
    /// assert_eq!(disposition(libc::SIGUSR2)?, Disposition::Default);
    /// assert_eq!(disposition(0).unwrap_err().raw_os_error(), Some(libc::EINVAL));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn disposition(sig: i32) -> std::io::Result<Disposition> {
        crate::sys::signal::disposition(sig)
    }
}

/// The README's examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "tokio"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

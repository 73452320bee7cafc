//! Soak: random cycles of spawn / stream / early drop / stop / kill /
//! timeout, with random input sources and stderr modes, across the blocking
//! handle, the streams, the supervisor, pseudo-terminals, pipelines and the
//! async API.
//!
//! Every cycle checks its own result exactly (bytes, status, how it
//! ended). Every 1,000 cycles a fresh leak guard (`support::Guard`) checks,
//! from /proc only, that no child is left unreaped, no descendant
//! survives and the parent's descriptor table is what it was; a panic
//! hook counts panics on any thread (the library's background threads
//! included), and the test fails on the first one.
//!
//! `PROCESSION_SOAK_CYCLES` sets the number of cycles (5,000 by default:
//! the short form CI runs); `PROCESSION_SOAK_SEED` replays a run (the seed
//! is printed). The long form (100,000 cycles, release build) is
//! `bash .ci/reliability`; docs/RELIABILITY.md has its figures.

mod support;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use procession::{Command, Ended, Signal, Stdio};
use support::Guard;

/// xorshift64*: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, of: &[T]) -> T {
        of[self.below(of.len() as u64) as usize]
    }
}

/// `pt write`'s pattern: byte i is i mod 251.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn check_pattern(what: &str, got: &[u8], len: usize) {
    assert_eq!(got.len(), len, "{what}: length");
    if let Some(i) = got
        .iter()
        .enumerate()
        .position(|(i, &b)| b != (i % 251) as u8)
    {
        panic!("{what}: byte {i} is {} (want {})", got[i], i % 251);
    }
}

#[derive(Clone, Copy, Debug)]
enum Input {
    None,
    Bytes,
    Chunks,
    Reader,
    File,
}

#[derive(Clone, Copy, Debug)]
enum StderrMode {
    Null,
    Piped,
    ToStdout,
}

#[derive(Clone, Copy, Debug)]
enum End {
    ReadAll,
    EarlyDrop,
    Stop,
    Kill,
    Timeout,
}

const INPUTS: &[Input] = &[
    Input::None,
    Input::Bytes,
    Input::Chunks,
    Input::Reader,
    Input::File,
];
const STDERR: &[StderrMode] = &[StderrMode::Null, StderrMode::Piped, StderrMode::ToStdout];
const ENDS: &[End] = &[
    End::ReadAll,
    End::ReadAll,
    End::EarlyDrop,
    End::Stop,
    End::Kill,
    End::Timeout,
];

/// What one cycle does.
#[derive(Debug)]
struct Plan {
    api: Api,
    input: Input,
    stderr: StderrMode,
    end: End,
    /// Bytes the child writes (or echoes back).
    len: usize,
    /// Whether the child leaves a grandchild in its group.
    grandchild: bool,
}

#[derive(Clone, Copy, Debug)]
enum Api {
    Handle,
    Stream,
    Events,
    Output,
    Supervisor,
    Pty,
    Pipeline,
    #[cfg(feature = "tokio")]
    AsyncStream,
    #[cfg(feature = "tokio")]
    AsyncHandle,
}

const APIS: &[Api] = &[
    Api::Handle,
    Api::Stream,
    Api::Events,
    Api::Output,
    Api::Supervisor,
    Api::Pty,
    Api::Pipeline,
    #[cfg(feature = "tokio")]
    Api::AsyncStream,
    #[cfg(feature = "tokio")]
    Api::AsyncHandle,
];

struct Soak {
    rng: Rng,
    file: std::path::PathBuf,
    #[cfg(feature = "tokio")]
    rt: tokio::runtime::Runtime,
    sup: procession::Supervisor,
    /// `PROCESSION_SOAK_VERBOSE`: each cycle's plan on stderr.
    verbose: bool,
}

impl Soak {
    fn plan(&mut self) -> Plan {
        let api = self.rng.pick(APIS);
        let len = match self.rng.below(4) {
            0 => 0,
            1 => self.rng.below(100) as usize,
            2 => self.rng.below(70_000) as usize,
            _ => self.rng.below(600_000) as usize,
        };
        Plan {
            api,
            input: self.rng.pick(INPUTS),
            stderr: self.rng.pick(STDERR),
            end: self.rng.pick(ENDS),
            len,
            grandchild: self.rng.below(8) == 0,
        }
    }

    /// The command: it writes `len` bytes of the pattern (echoed from its
    /// input when it has one), a line to stderr, then, for the endings
    /// that interrupt it, blocks until stopped.
    fn command(&self, p: &Plan) -> Command {
        let block = matches!(p.end, End::Stop | End::Kill | End::Timeout);
        let mut line = String::new();
        if p.grandchild {
            line.push_str("sleep 100 & ");
        }
        if matches!(p.input, Input::None) {
            line.push_str(&format!("\"$PT\" write {} 65536; ", p.len));
        } else {
            line.push_str("cat; ");
        }
        line.push_str("echo done >&2; ");
        if block {
            line.push_str("exec sleep 100");
        } else if p.grandchild {
            line.push_str("kill $! 2>/dev/null; wait");
        }
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", &line]).env("PT", support::pt());
        match p.input {
            Input::None => {
                cmd.stdin(Stdio::null());
            }
            Input::Bytes => {
                cmd.input_bytes(pattern(p.len));
            }
            Input::Chunks => {
                let data = pattern(p.len);
                let chunks: Vec<Bytes> = data.chunks(7_001).map(Bytes::copy_from_slice).collect();
                cmd.input(chunks);
            }
            Input::Reader => {
                cmd.input_reader(std::io::Cursor::new(pattern(p.len)));
            }
            Input::File => {
                std::fs::write(&self.file, pattern(p.len)).unwrap();
                cmd.input_file(&self.file);
            }
        }
        match p.stderr {
            StderrMode::Null => cmd.stderr(Stdio::null()),
            StderrMode::Piped => cmd.stderr(Stdio::piped()),
            StderrMode::ToStdout => cmd.stderr(Stdio::to_stdout()),
        };
        if let End::Timeout = p.end {
            cmd.timeout(Duration::from_millis(20));
        }
        cmd.stop_timeout(Duration::from_secs(10));
        cmd
    }

    /// The output a full read must give: the pattern, then `done\n` when
    /// stderr goes to stdout.
    fn expected(p: &Plan, out: &[u8]) {
        let stdout = match p.stderr {
            StderrMode::ToStdout => {
                assert!(out.ends_with(b"done\n"), "{p:?}: no stderr line at the end");
                &out[..out.len() - 5]
            }
            _ => out,
        };
        check_pattern(&format!("{p:?}"), stdout, p.len);
    }

    fn check_status(p: &Plan, status: &procession::ExitStatus) {
        match p.end {
            End::ReadAll => assert!(status.success(), "{p:?}: {status}"),
            End::Stop => {
                assert_eq!(status.signal(), Some(Signal::TERM), "{p:?}: {status}");
                assert_eq!(status.ended(), Ended::Requested, "{p:?}");
            }
            End::Kill => assert_eq!(status.signal(), Some(Signal::KILL), "{p:?}: {status}"),
            End::Timeout => {
                assert_eq!(status.signal(), Some(Signal::TERM), "{p:?}: {status}");
                assert_eq!(status.ended(), Ended::TimedOut, "{p:?}");
            }
            End::EarlyDrop => {}
        }
    }

    fn cycle(&mut self) {
        let mut p = self.plan();
        // Combinations that mean nothing: a pty has no input pipe but its
        // own terminal; a supervised child has no reader for a pipe.
        if let Api::Pty | Api::Supervisor = p.api {
            p.input = Input::None;
            p.stderr = StderrMode::Null;
        }
        // A first stage's piped stderr would have no reader (refused).
        if let (Api::Pipeline, StderrMode::Piped) = (p.api, p.stderr) {
            p.stderr = StderrMode::Null;
        }
        // An async handle takes no input source (it has write_all).
        #[cfg(feature = "tokio")]
        if let Api::AsyncHandle = p.api {
            p.input = Input::None;
        }
        if self.verbose {
            eprintln!("{p:?}");
        }
        let cmd = self.command(&p);
        match p.api {
            Api::Handle => self.handle(&p, cmd),
            Api::Stream => self.stream(&p, cmd),
            Api::Events => self.events(&p, cmd),
            Api::Output => self.output(&p, cmd),
            Api::Supervisor => self.supervised(&p, cmd),
            Api::Pty => self.pty(&p, cmd),
            Api::Pipeline => self.pipeline(&p, cmd),
            #[cfg(feature = "tokio")]
            Api::AsyncStream => self.async_stream(&p, cmd),
            #[cfg(feature = "tokio")]
            Api::AsyncHandle => self.async_handle(&p, cmd),
        }
    }

    /// After the first chunk (or at once), the interrupting endings.
    fn interrupt(p: &Plan, child: &mut procession::Child) -> Option<procession::ExitStatus> {
        match p.end {
            End::Stop => Some(child.stop().unwrap()),
            End::Kill => {
                child.kill().unwrap();
                Some(child.wait().unwrap())
            }
            _ => None,
        }
    }

    fn handle(&mut self, p: &Plan, mut cmd: Command) {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let mut stderr = child.stderr.take();
        let stderr_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(e) = stderr.as_mut() {
                e.read_to_end(&mut s).unwrap();
            }
            s
        });
        if let Some(status) = Self::interrupt(p, &mut child) {
            Self::check_status(p, &status);
            drop(child);
            stderr_reader.join().unwrap();
            return;
        }
        let mut out = Vec::new();
        let stdout = child.stdout.as_mut().unwrap();
        match p.end {
            End::EarlyDrop => {
                let mut buf = [0u8; 1024];
                let _ = stdout.read(&mut buf).unwrap();
                drop(child);
                stderr_reader.join().unwrap();
                return;
            }
            End::Timeout => {
                stdout.read_to_end(&mut out).unwrap();
                let status = child.wait().unwrap();
                Self::check_status(p, &status);
                stderr_reader.join().unwrap();
                return;
            }
            _ => {}
        }
        stdout.read_to_end(&mut out).unwrap();
        let status = child.wait().unwrap();
        let err = stderr_reader.join().unwrap();
        Self::expected(p, &out);
        if let StderrMode::Piped = p.stderr {
            assert_eq!(err, b"done\n", "{p:?}");
        }
        Self::check_status(p, &status);
    }

    fn stream(&mut self, p: &Plan, cmd: Command) {
        let mut chunks = cmd.stream().unwrap();
        match p.end {
            End::EarlyDrop => {
                if p.len > 0 {
                    let _ = chunks.next();
                }
                drop(chunks);
            }
            End::Stop | End::Kill => {
                // A stream has no stop of its own: signal from outside, as
                // a user's `kill` would. Its own group stop still ends the
                // grandchild that holds stdout.
                let sig = match p.end {
                    End::Stop => libc::SIGTERM,
                    _ => libc::SIGKILL,
                };
                // SAFETY: kill(2) on our child, not reaped while its stream
                // is open.
                assert_eq!(unsafe { libc::kill(chunks.pid() as i32, sig) }, 0);
                for c in chunks.by_ref() {
                    let _ = c;
                }
                let status = chunks.status().expect("status after the end");
                assert_eq!(status.signal().map(|s| s.as_raw()), Some(sig), "{p:?}");
            }
            _ => {
                let out = chunks.by_ref().collect::<Result<Vec<_>, _>>();
                let status = chunks.status().expect("status after the end");
                Self::check_status(p, &status);
                if let End::ReadAll = p.end {
                    let out: Vec<u8> = out.unwrap().concat();
                    Self::expected(p, &out);
                }
            }
        }
    }

    fn events(&mut self, p: &Plan, cmd: Command) {
        let events = cmd.events().unwrap();
        match p.end {
            End::ReadAll => {
                let out = events.collect_output().unwrap();
                Self::expected(p, &out.stdout);
                if let StderrMode::Piped = p.stderr {
                    assert_eq!(out.stderr, b"done\n", "{p:?}");
                }
                Self::check_status(p, &out.status);
            }
            End::Timeout => {
                let err_or_out = events.collect_output();
                match err_or_out {
                    Ok(out) => Self::check_status(p, &out.status),
                    Err(e) => Self::check_status(p, &e.exit_status().expect("status")),
                }
            }
            _ => {
                // (One event first when one is sure to come.)
                let mut events = events;
                if p.len > 0 {
                    let _ = events.next();
                }
                drop(events);
            }
        }
    }

    fn output(&mut self, p: &Plan, cmd: Command) {
        match p.end {
            End::ReadAll => {
                let out = cmd.output().unwrap();
                Self::expected(p, &out.stdout);
                Self::check_status(p, &out.status);
            }
            End::Timeout => {
                let out = cmd.output().unwrap();
                Self::check_status(p, &out.status);
            }
            // Interrupting endings need a handle: spawn instead.
            _ => {
                let mut cmd = cmd;
                let mut child = cmd.stdout(Stdio::null()).spawn().unwrap();
                match Self::interrupt(p, &mut child) {
                    Some(status) => Self::check_status(p, &status),
                    None => drop(child),
                }
            }
        }
    }

    fn supervised(&mut self, p: &Plan, mut cmd: Command) {
        let child = self.sup.spawn(cmd.stdout(Stdio::null())).unwrap();
        let status = match p.end {
            End::Stop => child.stop().unwrap(),
            End::Kill => {
                child.signal(Signal::KILL).unwrap();
                child.wait().unwrap()
            }
            End::EarlyDrop => {
                child.start_stop();
                return;
            }
            _ => child.wait().unwrap(),
        };
        let status = status.status().expect("a spawned child's status");
        Self::check_status(p, &status);
    }

    fn pty(&mut self, p: &Plan, mut cmd: Command) {
        cmd.pty(procession::Pty::new());
        let mut child = cmd.spawn().unwrap();
        if let Some(status) = Self::interrupt(p, &mut child) {
            Self::check_status(p, &status);
            return;
        }
        match p.end {
            End::EarlyDrop => {
                let _ = child.read();
                drop(child);
            }
            _ => {
                let mut n = 0;
                while let Some(chunk) = child.read().unwrap() {
                    n += chunk.len();
                }
                let _ = n; // (a terminal rewrites bytes: only the status is checked)
                let status = child.wait().unwrap();
                Self::check_status(p, &status);
            }
        }
    }

    /// The command as the first stage of `… | cat | cat`.
    fn pipeline(&mut self, p: &Plan, cmd: Command) {
        let cat = Command::new("/bin/cat");
        let pipeline = cmd.pipe(&cat).pipe(&cat).clone();
        let mut chunks = pipeline.stream().unwrap();
        match p.end {
            End::ReadAll | End::Timeout => {
                let out = chunks.by_ref().collect::<Result<Vec<_>, _>>();
                let status = chunks.status().expect("status after the end");
                // The first stage's timeout is what the pipefail rule
                // reports; the two cats end on their own.
                Self::check_status(p, &status);
                if let End::ReadAll = p.end {
                    Self::expected(p, &out.unwrap().concat());
                }
            }
            // Dropping the stream stops every stage.
            _ => {
                if p.len > 0 {
                    let _ = chunks.next();
                }
                drop(chunks);
            }
        }
    }

    #[cfg(feature = "tokio")]
    fn async_stream(&mut self, p: &Plan, cmd: Command) {
        self.rt.block_on(async {
            let mut chunks = cmd.stream_async().unwrap();
            match p.end {
                End::ReadAll | End::Timeout => {
                    let mut out = Vec::new();
                    while let Some(c) = chunks.next_chunk().await {
                        match c {
                            Ok(c) => out.extend_from_slice(&c),
                            Err(e) => {
                                assert!(matches!(p.end, End::Timeout), "{p:?}: {e}");
                                break;
                            }
                        }
                    }
                    let status = chunks.status().expect("status after the end");
                    Self::check_status(p, &status);
                    if let End::ReadAll = p.end {
                        Self::expected(p, &out);
                    }
                }
                _ => {
                    if p.len > 0 {
                        let _ = chunks.next_chunk().await;
                    }
                    drop(chunks);
                }
            }
        });
    }

    #[cfg(feature = "tokio")]
    fn async_handle(&mut self, p: &Plan, mut cmd: Command) {
        let rt = &self.rt;
        rt.block_on(async {
            let mut child = cmd.stdout(Stdio::piped()).spawn_async().unwrap();
            let status = match p.end {
                End::Stop => child.stop().await.unwrap(),
                End::Kill => {
                    child.kill().unwrap();
                    child.wait().await.unwrap()
                }
                End::EarlyDrop => {
                    if p.len > 0 {
                        let _ = child.read().await;
                    }
                    drop(child);
                    return;
                }
                _ => {
                    let mut out = Vec::new();
                    while let Some(c) = child.read().await.unwrap() {
                        out.extend_from_slice(&c);
                    }
                    let status = child.wait().await.unwrap();
                    if let (End::ReadAll, StderrMode::Null | StderrMode::ToStdout) =
                        (p.end, p.stderr)
                    {
                        Self::expected(p, &out);
                    }
                    status
                }
            };
            Self::check_status(p, &status);
        });
    }
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn soak() {
    let cycles: usize = std::env::var("PROCESSION_SOAK_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000);
    let seed: u64 = std::env::var("PROCESSION_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("soak: {cycles} cycles, PROCESSION_SOAK_SEED={seed}");
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    #[cfg(feature = "tokio")]
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    support::raise_fd_limit();
    let dir = support::TempDir::new("soak");
    let mut soak = Soak {
        rng: Rng(seed),
        file: dir.join("input"),
        #[cfg(feature = "tokio")]
        rt,
        sup: procession::Supervisor::new(),
        verbose: std::env::var_os("PROCESSION_SOAK_VERBOSE").is_some(),
    };
    let started = Instant::now();
    let mut done = 0;
    while done < cycles {
        let block = (cycles - done).min(1_000);
        let guard = Guard::new();
        for _ in 0..block {
            soak.cycle();
            assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a panic (see above)");
        }
        soak.sup.shutdown();
        // Zombies, strays, descriptors: checked from /proc.
        drop(guard);
        done += block;
        println!(
            "soak: {done} cycles, {:.1} s, clean",
            started.elapsed().as_secs_f64()
        );
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
    let _ = std::io::stdout().flush();
}

//! Relaying the program's streams through procession, for `--events` (its
//! output becomes JSON events) and `--summary` (the bytes are counted).
//!
//! Without either flag the program inherits procession's descriptors and
//! nothing here runs. With them, the streams chosen by [`Plan`] are pipes:
//! an input thread copies procession's stdin to the program's, and output
//! threads copy the program's stdout and stderr to procession's (counting)
//! or turn them into events (one thread for both, so that the events keep
//! the order in which the output was read).
//!
//! Ending: once the program has been reaped and the rest of its group
//! stopped, [`Relays::finish`] waits for the output threads to reach the
//! end of their pipes, but at most the library's pipe drain timeout: a
//! descendant outside the group (with `--foreground`, or a daemon that
//! left it) may hold a pipe open forever. From then on the threads write
//! nothing more, so that the exit event or the summary comes last.

use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Instant;

use procession::{
    Bytes, Child, ChildStderr, ChildStdin, ChildStdout, Command, DEFAULT_PIPE_DRAIN_TIMEOUT, Stdio,
};

use crate::args::{Framing, Output, RunArgs, Stream};
use crate::events::{Json, StreamName};
use crate::sys::{self, PollFd, PollFlags};

/// The relays' buffer size.
const BUF: usize = 64 * 1024;

/// What becomes of one of the program's standard streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Left as it is (inherited or redirected): not counted, for this reason.
    Direct(&'static str),
    /// A pipe that procession relays.
    Relayed,
}

/// Which streams are relayed, decided from the flags before the spawn.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub stdin: Route,
    pub stdout: Route,
    pub stderr: Route,
    pub events: Option<Framing>,
}

impl Plan {
    /// `--events` relays stdout and stderr (unless redirected); `--summary`
    /// relays, to count them, the streams that are neither redirected nor a
    /// terminal (a program keeps its terminal, so that it behaves as it
    /// would without `--summary`).
    pub fn new(args: &RunArgs) -> Plan {
        let events = args.events.map(|_| args.framing.unwrap_or(Framing::Raw));
        let route = |redirected: Option<&'static str>, terminal: bool, by_events: bool| {
            if let Some(why) = redirected {
                Route::Direct(why)
            } else if by_events {
                Route::Relayed
            } else if !args.summary {
                Route::Direct("inherited")
            } else if terminal {
                Route::Direct("a terminal")
            } else {
                Route::Relayed
            }
        };
        let redirected = |o: &Option<Output>, other: Stream| match o {
            None => None,
            Some(Output::Other(s)) if *s == other => Some(match other {
                Stream::Stdout => "merged into stdout",
                Stream::Stderr => "merged into stderr",
            }),
            Some(_) => Some("redirected"),
        };
        Plan {
            stdin: route(
                args.stdin.as_ref().map(|_| "redirected"),
                io::stdin().is_terminal(),
                false,
            ),
            stdout: route(
                redirected(&args.stdout, Stream::Stderr),
                io::stdout().is_terminal(),
                events.is_some(),
            ),
            stderr: route(
                redirected(&args.stderr, Stream::Stdout),
                io::stderr().is_terminal(),
                events.is_some(),
            ),
            events,
        }
    }

    /// Pipes the relayed streams of `cmd`.
    pub fn apply(&self, cmd: &mut Command) {
        if self.stdin == Route::Relayed {
            cmd.stdin(Stdio::piped());
        }
        if self.stdout == Route::Relayed {
            cmd.stdout(Stdio::piped());
        }
        if self.stderr == Route::Relayed {
            cmd.stderr(Stdio::piped());
        }
    }

    /// Whether anything is relayed (else there is nothing to start).
    pub fn any(&self) -> bool {
        [self.stdin, self.stdout, self.stderr].contains(&Route::Relayed)
    }
}

/// The bytes relayed so far.
#[derive(Debug, Default)]
pub struct Counts {
    pub stdin: AtomicU64,
    pub stdout: AtomicU64,
    pub stderr: AtomicU64,
}

/// The running relays.
pub struct Relays {
    pub counts: Arc<Counts>,
    /// Set once the output relays may write no more.
    closed: Arc<AtomicBool>,
    /// Serialises the writes of the output relays with [`Relays::finish`].
    gate: Arc<Mutex<()>>,
    done: Vec<mpsc::Receiver<()>>,
    /// With `--events`: closed by [`Relays::finish`].
    json: Option<Json>,
}

impl Relays {
    /// Takes the program's relayed pipes and starts the threads; with
    /// `--events`, `json` gets the program's output.
    pub fn start(plan: &Plan, child: &mut Child, json: Option<&Json>) -> io::Result<Relays> {
        let mut relays = Relays {
            counts: Arc::default(),
            closed: Arc::default(),
            gate: Arc::default(),
            done: Vec::new(),
            json: json.cloned(),
        };
        if let Some(input) = child.stdin.take() {
            let counts = relays.counts.clone();
            thread::Builder::new()
                .name("input-relay".into())
                .spawn(move || relay_input(input, &counts.stdin))?;
        }
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        match (plan.events, json) {
            (Some(framing), Some(json)) => {
                let json = json.clone();
                let counts = relays.counts.clone();
                let (tx, rx) = mpsc::channel();
                thread::Builder::new()
                    .name("event-relay".into())
                    .spawn(move || {
                        relay_events(stdout, stderr, framing, &json, &counts);
                        let _ = tx.send(());
                    })?;
                relays.done.push(rx);
            }
            _ => {
                if let Some(out) = stdout {
                    let rx = relays.copy_out(out, Stream::Stdout)?;
                    relays.done.push(rx);
                }
                if let Some(err) = stderr {
                    let rx = relays.copy_out(err, Stream::Stderr)?;
                    relays.done.push(rx);
                }
            }
        }
        Ok(relays)
    }

    /// Starts a thread that copies `from` to procession's `to`, counting.
    fn copy_out(
        &self,
        from: impl Read + Send + 'static,
        to: Stream,
    ) -> io::Result<mpsc::Receiver<()>> {
        let counts = self.counts.clone();
        let closed = self.closed.clone();
        let gate = self.gate.clone();
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name("output-relay".into())
            .spawn(move || {
                let counter = match to {
                    Stream::Stdout => &counts.stdout,
                    Stream::Stderr => &counts.stderr,
                };
                copy_out(from, to, counter, &closed, &gate);
                let _ = tx.send(());
            })?;
        Ok(rx)
    }

    /// Waits until the output relays have reached the end of the
    /// program's output, or until the drain timeout; after it they write
    /// nothing more, and `last` writes what comes last (the exit event, the
    /// summary) with the final counts.
    pub fn finish_into(self, last: impl FnOnce(&Counts)) {
        let deadline = Instant::now() + DEFAULT_PIPE_DRAIN_TIMEOUT;
        for done in &self.done {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = done.recv_timeout(left);
        }
        let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        self.closed.store(true, Ordering::SeqCst);
        if let Some(json) = &self.json {
            json.close();
        }
        last(&self.counts);
    }
}

/// Copies procession's stdin to the program's, counting, then closes it.
fn relay_input(mut to: ChildStdin, counter: &AtomicU64) {
    copy_stdin(&mut to, |chunk| {
        counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    });
}

/// Copies procession's stdin into `to` until its end (or a read error),
/// showing `seen` each chunk once written. Returns false if it stopped
/// early because the program no longer reads (EPIPE: procession catches
/// SIGPIPE, so the write fails instead of killing it).
pub(crate) fn copy_stdin(to: &mut ChildStdin, mut seen: impl FnMut(&[u8])) -> bool {
    let mut stdin = io::stdin().lock();
    let mut buf = vec![0; BUF];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return false;
                }
                seen(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// Copies the program's output to procession's stdout or stderr, counting
/// what it read. Once procession's stream fails (its reader went away) it
/// reads on and discards, so that the program never blocks on a full pipe.
fn copy_out(
    mut from: impl Read,
    to: Stream,
    counter: &AtomicU64,
    closed: &AtomicBool,
    gate: &Mutex<()>,
) {
    let mut buf = vec![0; BUF];
    let mut broken = false;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        let _gate = gate.lock().unwrap_or_else(|p| p.into_inner());
        if broken || closed.load(Ordering::SeqCst) {
            continue;
        }
        let written = match to {
            Stream::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(&buf[..n]).and_then(|()| out.flush())
            }
            Stream::Stderr => io::stderr().lock().write_all(&buf[..n]),
        };
        broken = written.is_err();
    }
}

/// The per-stream framing state of `--events`.
enum Decoder {
    Raw,
    Lines(procession::LineCodec),
    Packets(procession::PacketCodec),
    /// A framing error ended this stream's events; the rest is discarded.
    Broken,
}

impl Decoder {
    fn new(framing: Framing) -> Decoder {
        match framing {
            Framing::Raw => Decoder::Raw,
            Framing::Lines(max) => Decoder::Lines(procession::LineCodec::new(max)),
            Framing::Packet(size) => Decoder::Packets(procession::PacketCodec::new(size)),
        }
    }

    /// Feeds `chunk` (None: the end of the stream) and writes the events
    /// of the frames it completes.
    fn feed(&mut self, chunk: Option<Bytes>, stream: StreamName, json: &Json) {
        match self {
            Decoder::Raw => {
                if let Some(chunk) = chunk {
                    json.output(stream, &chunk, None);
                }
            }
            Decoder::Lines(codec) => {
                match chunk {
                    Some(chunk) => codec.push(chunk),
                    None => codec.finish(),
                }
                while let Some(line) = codec.next_line() {
                    json.output(stream, &line.bytes, Some(line.complete));
                }
            }
            Decoder::Packets(codec) => {
                match chunk {
                    Some(chunk) => codec.push(chunk),
                    None => codec.finish(),
                }
                loop {
                    match codec.next_packet() {
                        Ok(Some(packet)) => json.output(stream, &packet, None),
                        Ok(None) => break,
                        Err(e) => {
                            json.framing_error(stream, &e.to_string());
                            *self = Decoder::Broken;
                            break;
                        }
                    }
                }
            }
            Decoder::Broken => {}
        }
    }
}

/// Reads the program's stdout and stderr as they come and writes their
/// events, framed, until both end (or the relays are closed).
fn relay_events(
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    framing: Framing,
    json: &Json,
    counts: &Counts,
) {
    let mut streams: Vec<(StreamName, Box<dyn ReadFd>, Decoder, &AtomicU64)> = Vec::new();
    if let Some(out) = stdout {
        streams.push((
            StreamName::Stdout,
            Box::new(out),
            Decoder::new(framing),
            &counts.stdout,
        ));
    }
    if let Some(err) = stderr {
        streams.push((
            StreamName::Stderr,
            Box::new(err),
            Decoder::new(framing),
            &counts.stderr,
        ));
    }
    let mut buf = vec![0; BUF];
    while !streams.is_empty() {
        let mut fds: Vec<PollFd<'_>> = streams
            .iter()
            .map(|(_, r, _, _)| PollFd::from_borrowed_fd(r.as_fd(), PollFlags::IN))
            .collect();
        if let Err(e) = sys::poll(&mut fds, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        let ready: Vec<bool> = fds.iter().map(|fd| !fd.revents().is_empty()).collect();
        // Ends the borrow of `streams`, which the reads below change.
        drop(fds);
        let mut ended = Vec::new();
        for (i, ready) in ready.into_iter().enumerate() {
            if !ready {
                continue;
            }
            let (name, reader, decoder, counter) = &mut streams[i];
            let chunk = match reader.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(0) | Err(_) => None,
                Ok(n) => Some(Bytes::copy_from_slice(&buf[..n])),
            };
            if let Some(c) = &chunk {
                counter.fetch_add(c.len() as u64, Ordering::Relaxed);
            }
            if chunk.is_none() {
                ended.push(i);
            }
            // After Relays::finish, the writer drops what comes.
            decoder.feed(chunk, *name, json);
        }
        for i in ended.into_iter().rev() {
            streams.remove(i);
        }
    }
}

/// A pipe end to read and poll.
trait ReadFd: Read + AsFd + Send {}

impl<T: Read + AsFd + Send> ReadFd for T {}

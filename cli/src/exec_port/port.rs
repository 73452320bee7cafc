//! The port's state and event loop.
//!
//! Three threads and one single-threaded tokio runtime:
//! - the *reader* thread reads frames from the VM (fd 0, or 3 with `-n`),
//!   decodes them and queues them for the runtime in arrival order;
//! - the runtime's main task handles requests one at a time, in order, so
//!   replies leave in request order; each child has a task of its own that
//!   relays its output, feeds its stdin and reports its exit after all of
//!   its output;
//! - the *writer* thread writes every frame to the VM (fd 1, or 4), many
//!   queued frames per `write`. Its queue is bounded: when the VM stops
//!   reading, the children's tasks stop reading their pipes too;
//! - a thread turns SIGTERM/SIGINT into a shutdown.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::rc::Rc;
use std::time::Duration;

use eetf::Term;
use procession::tokio::{AsyncChildStderr, AsyncChildStdin, AsyncChildStdout};
use procession::{
    AsyncChild, Ended, ErrorKind, Exit, ExitStatus, Signal, Signaller, Supervised, Supervisor,
    TerminalMode,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::options::{self, Defaults, Input, Instr, Relay, Request};
use super::term::{self, atom, int, list, string, tuple};

/// Output frames carry at most this many bytes of a child's output (as
/// erlexec's port does).
pub const CHUNK: usize = 4096;

/// One read from a child's pipe: up to this many bytes, sent as
/// `READ / CHUNK` frames in one batch.
const READ: usize = 64 * 1024;

/// Frames queued for the writer, in batches.
const OUT_QUEUE: usize = 64;

/// The writer writes up to this much per `write`.
const WRITE_BATCH: usize = 256 * 1024;

/// How the port was started.
#[derive(Debug, Clone)]
pub struct Config {
    /// `-n`: fds 3 and 4 instead of 0 and 1.
    pub fds34: bool,
    /// `-alarm N`: the longest a shutdown may take before what is left is
    /// killed.
    pub alarm: Duration,
    /// `-debug N`.
    pub debug: i64,
    /// What every run starts from.
    pub defaults: Defaults,
}

/// What the reader and signal threads tell the main task.
enum Incoming {
    Request(Request),
    /// A frame that is not a term: answered with `{0, {error, …}}`.
    Bad(String),
    /// The end: EOF, a read error, a truncated frame, a signal. The
    /// message is printed on stderr; the code is the exit code.
    End(Option<String>, i32),
}

/// What the main task tells a child's task.
enum Ctl {
    Stdin(Input),
    PtyOpts(
        Vec<(TerminalMode, u32)>,
        oneshot::Sender<Result<(), String>>,
    ),
    Ack(u64),
}

struct Running {
    signaller: Signaller,
    ctl: mpsc::UnboundedSender<Ctl>,
    pty: bool,
}

#[derive(Default)]
struct State {
    children: HashMap<u32, Running>,
    managed: HashMap<u32, Supervised>,
}

type Shared = Rc<RefCell<State>>;

/// Runs the port until shutdown; returns the exit code.
pub fn run(config: Config) -> i32 {
    let (input, output) = match open_fds(config.fds34) {
        Ok(io) => io,
        Err(e) => {
            eprintln!("exec-port: cannot open the VM's descriptors: {e}");
            return 3;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("exec-port: cannot start the runtime: {e}");
            return 3;
        }
    };
    enlarge_pipe(&output);
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(OUT_QUEUE);
    let gone_tx = in_tx.clone();
    let writer = std::thread::Builder::new()
        .name("exec-port-writer".into())
        .spawn(move || write_loop(output, out_rx, gone_tx));
    let reader_tx = in_tx.clone();
    let reader = std::thread::Builder::new()
        .name("exec-port-reader".into())
        .spawn(move || read_loop(input, reader_tx));
    let signals_tx = in_tx;
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ]);
    let (Ok(writer), Ok(_reader), Ok(mut signals)) = (writer, reader, signals) else {
        eprintln!("exec-port: cannot start its threads");
        return 3;
    };
    let _ = std::thread::Builder::new()
        .name("exec-port-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                // SIGHUP is only noted, as erlexec's port does.
                if sig == signal_hook::consts::SIGHUP {
                    eprintln!("exec-port: SIGHUP ignored");
                    continue;
                }
                let _ = signals_tx.send(Incoming::End(
                    Some(format!("exec-port: signal {sig}: shutting down")),
                    1,
                ));
                return;
            }
        });
    let local = tokio::task::LocalSet::new();
    let code = local.block_on(&runtime, main_loop(config, in_rx, out_tx));
    // Tasks cut short by the alarm hold senders until their set is gone.
    drop(local);
    drop(runtime);
    // Every sender is gone: the writer writes what is queued and ends.
    let _ = writer.join();
    code
}

/// Opens the VM's descriptors (duplicates, close-on-exec).
fn open_fds(fds34: bool) -> std::io::Result<(File, File)> {
    if fds34 {
        // Reopening the pipe through /proc needs no unsafe adoption of a
        // raw descriptor number.
        let input = File::open("/proc/self/fd/3")?;
        let output = std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/self/fd/4")?;
        Ok((input, output))
    } else {
        let input = File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
        let output = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
        Ok((input, output))
    }
}

/// Makes the pipe to the VM 1 MiB (best effort; a file or socket is left
/// alone): fewer, larger writes and reads on both sides of it. Measured in
/// bench scenario 15: with the default 64 KiB pipe, the relay spends more
/// CPU per GiB switching between the port's writer and its reader.
fn enlarge_pipe(output: &File) {
    let _ = rustix::pipe::fcntl_setpipe_size(output, 1 << 20);
}

fn read_loop(mut input: File, tx: mpsc::UnboundedSender<Incoming>) {
    loop {
        let incoming = match term::read_frame(&mut input) {
            Ok(None) => Incoming::End(None, 0),
            Ok(Some(payload)) => match term::decode(&payload) {
                Ok(t) => Incoming::Request(options::request(&t)),
                Err(e) => Incoming::Bad(e.0),
            },
            Err(e) => Incoming::End(Some(format!("exec-port: reading requests: {e}")), 1),
        };
        let end = matches!(incoming, Incoming::End(..));
        if tx.send(incoming).is_err() || end {
            return;
        }
    }
}

fn write_loop(
    mut output: File,
    mut rx: mpsc::Receiver<Vec<u8>>,
    gone: mpsc::UnboundedSender<Incoming>,
) {
    let mut broken = false;
    while let Some(first) = rx.blocking_recv() {
        // Whatever else is queued goes in the same write (no copying: one
        // slice per queued buffer).
        let mut size = first.len();
        let mut batch = vec![first];
        while size < WRITE_BATCH {
            match rx.try_recv() {
                Ok(more) => {
                    size += more.len();
                    batch.push(more);
                }
                Err(_) => break,
            }
        }
        if broken {
            continue;
        }
        let written = write_all_vectored(&mut output, &batch);
        batch.into_iter().for_each(recycle);
        if let Err(e) = written {
            // The VM is gone: shut down, and keep emptying the queue so
            // that nobody waits on it.
            broken = true;
            let _ = gone.send(Incoming::End(
                Some(format!("exec-port: writing to the VM: {e}")),
                1,
            ));
        }
    }
}

/// Writes every buffer, in order, with as few `writev`s as the pipe
/// allows.
fn write_all_vectored(output: &mut File, bufs: &[Vec<u8>]) -> std::io::Result<()> {
    let mut slices: Vec<std::io::IoSlice<'_>> =
        bufs.iter().map(|b| std::io::IoSlice::new(b)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match output.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => std::io::IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Output buffers the writer has written, kept for the relay to fill
/// again: a fresh 64 KiB buffer per read costs page faults on one thread
/// and unmapping on the other (seen in profiles of bench scenario 15).
static POOL: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// Buffers the pool keeps at most (the writer's queue holds 64).
const POOL_MAX: usize = 80;

fn pooled() -> Vec<u8> {
    POOL.lock()
        .ok()
        .and_then(|mut p| p.pop())
        .unwrap_or_default()
}

fn recycle(mut buf: Vec<u8>) {
    if buf.capacity() > 4 * READ {
        return;
    }
    buf.clear();
    if let Ok(mut p) = POOL.lock() {
        if p.len() < POOL_MAX {
            p.push(buf);
        }
    }
}

/// `data` as output frames of at most [`CHUNK`] bytes, in one buffer.
fn frames(template: &term::OutputFrames, data: &[u8]) -> Vec<u8> {
    let mut buf = pooled();
    buf.reserve(data.len() + data.len().div_ceil(CHUNK) * 32);
    for chunk in data.chunks(CHUNK) {
        template.push(&mut buf, chunk);
    }
    buf
}

async fn send(out: &mpsc::Sender<Vec<u8>>, t: &Term) {
    let mut buf = Vec::new();
    term::push_frame(&mut buf, t);
    let _ = out.send(buf).await;
}

struct Port {
    state: Shared,
    out: mpsc::Sender<Vec<u8>>,
    tasks: JoinSet<()>,
    supervisor: Supervisor,
    defaults: Defaults,
    debug: i64,
}

async fn main_loop(
    config: Config,
    mut rx: mpsc::UnboundedReceiver<Incoming>,
    out: mpsc::Sender<Vec<u8>>,
) -> i32 {
    let mut port = Port {
        state: Rc::default(),
        out,
        tasks: JoinSet::new(),
        supervisor: Supervisor::new(),
        defaults: config.defaults.clone(),
        debug: config.debug,
    };
    let code = loop {
        tokio::select! {
            biased;
            incoming = rx.recv() => match incoming {
                Some(Incoming::Request(r)) => {
                    if port.debug > 0 {
                        eprintln!("exec-port: request {} {:?}", r.trans, r.instr);
                    }
                    if port.handle(r).await {
                        break 0;
                    }
                }
                Some(Incoming::Bad(why)) => {
                    let reply = options::error_reply(0, tuple(vec![atom("bad_frame"), string(&why)]));
                    send(&port.out, &reply).await;
                }
                Some(Incoming::End(msg, code)) => {
                    if let Some(msg) = msg {
                        eprintln!("{msg}");
                    }
                    break code;
                }
                None => break 0,
            },
            Some(_) = port.tasks.join_next(), if !port.tasks.is_empty() => {}
        }
    };
    port.shutdown(config.alarm).await;
    code
}

impl Port {
    /// Handles one request; `true` for `{shutdown}`.
    async fn handle(&mut self, req: Request) -> bool {
        let trans = req.trans;
        let reply = match req.instr {
            Err(reason) => Some(term::error(reason)),
            Ok(Instr::Shutdown) => return true,
            Ok(Instr::Run(cmd, opts)) => match options::run_spec(&cmd, &opts, &self.defaults) {
                Err(reason) => Some(term::error(reason)),
                Ok(spec) => {
                    self.run(trans, spec).await;
                    None
                }
            },
            Ok(Instr::Manage(pid, opts)) => Some(self.manage(pid as u32, &opts)),
            Ok(Instr::List) => {
                let st = self.state.borrow();
                let mut pids: Vec<u32> = st
                    .children
                    .keys()
                    .chain(st.managed.keys())
                    .copied()
                    .collect();
                pids.sort_unstable();
                Some(list(pids.into_iter().map(|p| int(i64::from(p))).collect()))
            }
            Ok(Instr::Stop(pid)) => Some(self.stop(pid as u32)),
            Ok(Instr::Kill(pid, sig)) => Some(self.kill(pid as u32, sig)),
            Ok(Instr::Stdin(pid, input)) => {
                if let Some(c) = self.state.borrow().children.get(&(pid as u32)) {
                    let _ = c.ctl.send(Ctl::Stdin(input));
                }
                (trans != 0).then(|| atom("ok"))
            }
            Ok(Instr::Ack(pid, n)) => {
                if let Some(c) = self.state.borrow().children.get(&(pid as u32)) {
                    let _ = c.ctl.send(Ctl::Ack(n));
                }
                (trans != 0).then(|| atom("ok"))
            }
            Ok(Instr::Winsz(pid, rows, cols)) => {
                let signaller = self
                    .state
                    .borrow()
                    .children
                    .get(&(pid as u32))
                    .map(|c| (c.signaller.clone(), c.pty));
                Some(match signaller {
                    None => term::error(string("pid not alive")),
                    Some((_, false)) => term::error(string("not a pty")),
                    Some((s, true)) => match s.resize(rows, cols) {
                        Ok(()) => atom("ok"),
                        Err(e) => term::error(string(&e.to_string())),
                    },
                })
            }
            Ok(Instr::PtyOpts(pid, modes)) => {
                let ctl = self
                    .state
                    .borrow()
                    .children
                    .get(&(pid as u32))
                    .map(|c| (c.ctl.clone(), c.pty));
                Some(match ctl {
                    None => term::error(string("pid not alive")),
                    Some((_, false)) => term::error(string("not a pty")),
                    Some((ctl, true)) => {
                        let (tx, rx) = oneshot::channel();
                        let _ = ctl.send(Ctl::PtyOpts(modes, tx));
                        match rx.await {
                            Ok(Ok(())) => atom("ok"),
                            Ok(Err(e)) => term::error(string(&e)),
                            Err(_) => term::error(string("pid not alive")),
                        }
                    }
                })
            }
            Ok(Instr::Debug(level)) => {
                let old = std::mem::replace(&mut self.debug, level);
                Some(tuple(vec![atom("ok"), int(old)]))
            }
        };
        if let Some(reply) = reply {
            if trans != 0
                || matches!(&reply, Term::Tuple(t) if t.elements.first().and_then(term::as_atom) == Some("error"))
            {
                send(&self.out, &tuple(vec![int(trans), reply])).await;
            }
        }
        false
    }

    async fn run(&mut self, trans: i64, spec: options::RunSpec) {
        let mut child = match spec.command.spawn_async() {
            Ok(c) => c,
            Err(e) => {
                let reply = tuple(vec![
                    int(trans),
                    term::error(string(&format!("Couldn't start pid: {e}"))),
                ]);
                send(&self.out, &reply).await;
                return;
            }
        };
        let pid = child.pid();
        if self.debug > 0 || spec.debug > 0 {
            eprintln!("exec-port: started pid {pid}");
        }
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        self.state.borrow_mut().children.insert(
            pid,
            Running {
                signaller: child.signaller(),
                ctl: ctl_tx,
                pty: spec.pty,
            },
        );
        // The reply leaves before anything the child's task sends.
        send(
            &self.out,
            &tuple(vec![
                int(trans),
                tuple(vec![atom("pid"), int(i64::from(pid))]),
            ]),
        )
        .await;
        let relay = Relayed {
            pid,
            stdin: child.stdin.take(),
            stdout: if spec.stdout == Relay::Yes {
                child.stdout.take()
            } else {
                None
            },
            stderr: if spec.stderr == Relay::Yes {
                child.stderr.take()
            } else {
                None
            },
            pty: spec.pty,
            success_code: spec.success_code,
            window: spec.demand,
        };
        let task = relay.run(child, ctl_rx, self.out.clone(), self.state.clone());
        self.tasks.spawn_local(task);
    }

    fn manage(&mut self, pid: u32, opts: &[Term]) -> Term {
        let spec = match options::manage_spec(opts) {
            Ok(s) => s,
            Err(reason) => return term::error(reason),
        };
        let reply = tuple(vec![atom("pid"), int(i64::from(pid))]);
        if self.state.borrow().children.contains_key(&pid)
            || self.state.borrow().managed.contains_key(&pid)
        {
            return reply;
        }
        let managed = match self.supervisor.manage_with(pid, &spec.stop) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return term::error(atom("not_found")),
            Err(e) if e.kind() == ErrorKind::InvalidInput => return term::error(atom("badarg")),
            Err(e) => return term::error(string(&e.to_string())),
        };
        self.state.borrow_mut().managed.insert(pid, managed.clone());
        let out = self.out.clone();
        let state = self.state.clone();
        let success = spec.success_code;
        self.tasks.spawn_local(async move {
            let exit = managed.monitor().await;
            // Its parent has the status: -1 as erlexec reports it, 0 after
            // a stop we asked for.
            let raw = match exit {
                Exit::Status(s) => raw_status(&s, success),
                Exit::Unknown {
                    ended: Ended::Requested,
                } => success.unwrap_or(0),
                Exit::Unknown { .. } => -1,
            };
            state.borrow_mut().managed.remove(&pid);
            send(&out, &exit_status(pid, raw)).await;
        });
        reply
    }

    fn stop(&mut self, pid: u32) -> Term {
        let st = self.state.borrow();
        if let Some(c) = st.children.get(&pid) {
            c.signaller.start_stop();
            atom("ok")
        } else if let Some(m) = st.managed.get(&pid) {
            m.start_stop();
            atom("ok")
        } else {
            term::error(string("pid not alive"))
        }
    }

    fn kill(&mut self, pid: u32, sig: i32) -> Term {
        let st = self.state.borrow();
        let result = if let Some(c) = st.children.get(&pid) {
            match Signal::new(sig) {
                Some(s) => c.signaller.signal(s),
                None => Ok(()),
            }
        } else if let Some(m) = st.managed.get(&pid) {
            match Signal::new(sig) {
                Some(s) => m.signal(s),
                None => Ok(()),
            }
        } else {
            return term::error(string("Cannot kill a pid not managed by this application"));
        };
        match result {
            Ok(()) => atom("ok"),
            Err(e) if e.kind() == ErrorKind::AlreadyReaped => term::error(atom("esrch")),
            Err(e) => term::error(string(&e.to_string())),
        }
    }

    /// Every child's own stop sequence at once; returns when all are
    /// reported, or after `alarm` (then what is left gets SIGKILL).
    async fn shutdown(&mut self, alarm: Duration) {
        {
            let st = self.state.borrow();
            for c in st.children.values() {
                c.signaller.start_stop();
            }
            for m in st.managed.values() {
                m.start_stop();
            }
        }
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(alarm, all).await.is_err() {
            eprintln!("exec-port: shutdown took longer than {alarm:?}: killing what is left");
            {
                let st = self.state.borrow();
                for c in st.children.values() {
                    let _ = c.signaller.signal_group(Signal::KILL);
                    let _ = c.signaller.signal(Signal::KILL);
                }
                for m in st.managed.values() {
                    let _ = m.signal(Signal::KILL);
                }
            }
            let rest = async { while self.tasks.join_next().await.is_some() {} };
            let _ = tokio::time::timeout(Duration::from_secs(2), rest).await;
            self.tasks.abort_all();
        }
    }
}

/// The raw wait status erlexec reports: code << 8, or the signal (| 0x80
/// with a core dump); a stop we asked for is 0; a 0 becomes the
/// `success_exit_code`.
fn raw_status(s: &ExitStatus, success: Option<i64>) -> i64 {
    let mut raw = match (s.code(), s.signal()) {
        (Some(code), _) => i64::from(code & 0xff) << 8,
        (None, Some(sig)) => i64::from(sig.as_raw()) | if s.core_dumped() { 0x80 } else { 0 },
        (None, None) => -1,
    };
    if s.ended() == Ended::Requested {
        raw = 0;
    }
    if raw == 0 {
        if let Some(n) = success {
            raw = n;
        }
    }
    raw
}

fn exit_status(pid: u32, raw: i64) -> Term {
    tuple(vec![
        int(0),
        tuple(vec![atom("exit_status"), int(i64::from(pid)), int(raw)]),
    ])
}

/// One child's relay: its pipes (or pty master) and demand window.
struct Relayed {
    pid: u32,
    stdin: Option<AsyncChildStdin>,
    stdout: Option<AsyncChildStdout>,
    stderr: Option<AsyncChildStderr>,
    pty: bool,
    success_code: Option<i64>,
    window: Option<u64>,
}

async fn read_opt<R: AsyncRead + Unpin>(
    r: Option<&mut R>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match r {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn write_opt<W: AsyncWrite + Unpin>(w: Option<&mut W>, buf: &[u8]) -> std::io::Result<usize> {
    match (w, buf.is_empty()) {
        (Some(w), false) => w.write(buf).await,
        _ => std::future::pending().await,
    }
}

/// Everything readable on `fd` now, without waiting (the end of a child's
/// output after its exit).
fn drain_now(fd: std::os::fd::BorrowedFd<'_>) -> Vec<u8> {
    let mut all = Vec::new();
    let Ok(dup) = fd.try_clone_to_owned() else {
        return all;
    };
    let mut f = File::from(dup);
    let mut buf = vec![0u8; READ];
    // The pipe end is non-blocking: this stops at EAGAIN or end of file.
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
    }
    all
}

impl Relayed {
    async fn run(
        mut self,
        mut child: AsyncChild,
        mut ctl: mpsc::UnboundedReceiver<Ctl>,
        out: mpsc::Sender<Vec<u8>>,
        state: Shared,
    ) {
        let pid = self.pid;
        let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
        let mut offset = 0;
        let mut eof_after_queue = false;
        let mut out_buf = vec![0u8; READ];
        let mut err_buf = vec![0u8; READ];
        let mut inflight: u64 = 0;
        let out_frames = term::OutputFrames::new("stdout", pid);
        let err_frames = term::OutputFrames::new("stderr", pid);
        let forever = Duration::from_secs(365 * 24 * 3600);
        let status = loop {
            let room = match self.window {
                None => READ,
                Some(w) => (w.saturating_sub(inflight)).min(READ as u64) as usize,
            };
            let front: &[u8] = queue.front().map_or(&[], |f| &f[offset..]);
            tokio::select! {
                biased;
                Some(msg) = ctl.recv() => match msg {
                    Ctl::Stdin(Input::Data(d)) => {
                        if self.stdin.is_some() && !eof_after_queue && !d.is_empty() {
                            queue.push_back(d);
                        }
                    }
                    Ctl::Stdin(Input::Eof) => {
                        eof_after_queue = true;
                        if queue.is_empty() {
                            self.close_stdin(&mut child);
                        }
                    }
                    Ctl::PtyOpts(modes, reply) => {
                        let _ = reply.send(child.set_terminal_modes(modes).map_err(|e| e.to_string()));
                    }
                    Ctl::Ack(n) => inflight = inflight.saturating_sub(n),
                },
                written = write_opt(self.stdin.as_mut(), front) => match written {
                    Ok(n) => {
                        offset += n;
                        if queue.front().is_some_and(|f| offset >= f.len()) {
                            queue.pop_front();
                            offset = 0;
                        }
                        if queue.is_empty() && eof_after_queue {
                            self.close_stdin(&mut child);
                        }
                    }
                    // A write error closes stdin (the queue is dropped).
                    Err(_) => {
                        queue.clear();
                        offset = 0;
                        self.stdin = None;
                    }
                },
                got = read_opt(self.stdout.as_mut().filter(|_| room > 0), &mut out_buf[..room.max(1)]) => match got {
                    Ok(n) if n > 0 => {
                        inflight += n as u64;
                        let _ = out.send(frames(&out_frames, &out_buf[..n])).await;
                    }
                    // End of file, or EIO from a pty whose child is gone.
                    _ => self.stdout = None,
                },
                got = read_opt(self.stderr.as_mut().filter(|_| room > 0), &mut err_buf[..room.max(1)]) => match got {
                    Ok(n) if n > 0 => {
                        inflight += n as u64;
                        let _ = out.send(frames(&err_frames, &err_buf[..n])).await;
                    }
                    _ => self.stderr = None,
                },
                status = child.wait_timeout(forever) => match status {
                    Ok(Some(s)) => break Ok(s),
                    Ok(None) => {}
                    Err(e) => break Err(e),
                },
            }
        };
        // Whatever the child wrote before it ended, then the status.
        let mut rest: Vec<(&term::OutputFrames, Vec<u8>)> = Vec::new();
        if let Some(o) = &self.stdout {
            rest.push((&out_frames, drain_now(o.as_fd())));
        }
        if let Some(e) = &self.stderr {
            rest.push((&err_frames, drain_now(e.as_fd())));
        }
        for (template, data) in rest {
            for piece in data.chunks(CHUNK) {
                // Demand-driven: wait for room in the window first.
                while let Some(w) = self.window {
                    if inflight < w {
                        break;
                    }
                    match ctl.recv().await {
                        Some(Ctl::Ack(n)) => inflight = inflight.saturating_sub(n),
                        Some(Ctl::PtyOpts(_, reply)) => {
                            let _ = reply.send(Err("pid not alive".into()));
                        }
                        Some(Ctl::Stdin(_)) => {}
                        None => break,
                    }
                }
                inflight += piece.len() as u64;
                let _ = out.send(frames(template, piece)).await;
            }
        }
        let raw = match &status {
            Ok(s) => raw_status(s, self.success_code),
            Err(_) => -1,
        };
        state.borrow_mut().children.remove(&pid);
        send(&out, &exit_status(pid, raw)).await;
    }

    /// `eof`: closes stdin; on a pty, hangs the terminal up (erlexec closes
    /// the master: the child gets SIGHUP).
    fn close_stdin(&mut self, child: &mut AsyncChild) {
        if self.pty {
            // Handed back, so that hanging up closes it without typing the
            // end-of-file character first (which would let the child end
            // on its own before the hangup).
            child.stdin = self.stdin.take();
            self.stdout = None;
            self.stderr = None;
            child.hang_up();
        } else {
            self.stdin = None;
        }
    }
}

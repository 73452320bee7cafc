//! `procession run --pty`: the program on a pseudo-terminal of its own,
//! with procession's stdin relayed to the terminal's input and the
//! terminal's output to procession's stdout, as `script` does.
//!
//! The program leads a new session (and process group) whose controlling
//! terminal is the pty, so the library runs the timeout, the stop sequence
//! and the cleanup of the group itself (`stop_group(true)`), and the
//! forwarded signals go to the program's group. Three threads:
//!
//! - the input relay: procession's stdin to the terminal, then end-of-file
//!   (Ctrl-D) when that stdin ends;
//! - the output relay: the terminal's output to procession's stdout until
//!   it ends;
//! - the signal forwarder ([`signals::forward_pty`]), which also reports
//!   window size changes and SIGCONT to the main thread.
//!
//! The main thread waits for the program's exit (on SIGCHLD, without
//! reaping it), meanwhile resizing the terminal on SIGWINCH with
//! [`Child::resize`]; then it lets the library reap the program and stop
//! what is left of its group, and waits for the output relay to finish
//! (see [`relay_output`]). When procession's stdin is a terminal, that terminal is in raw
//! mode from before the spawn until the end ([`RawMode`]).

use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use rustix::stdio;

use procession::{
    Child, ChildStdin, ChildStdout, Command, DEFAULT_PIPE_DRAIN_TIMEOUT, Ended, Pty, Signal,
};

use crate::args::{Output, RunArgs};
use crate::run::{EXIT_FAILED, exit_code, spawn_error_code};
use crate::signals::{self, PtyEvent};
use crate::sys::{self, PollFd, PollFlags, Termios};

/// The pty's size when procession has no terminal to take it from.
const DEFAULT_SIZE: (u16, u16) = (24, 80);

/// The relays' buffer size.
const BUF: usize = 64 * 1024;

/// The terminal's end-of-file character (VEOF, Ctrl-D): procession does
/// not change the pty's modes, so it is the default one.
const CTRL_D: u8 = 4;

/// A failure to report once procession's terminal is restored: the exit
/// code and the message.
type Failure = (i32, String);

/// Runs `cmd` (built by [`crate::run::command`] for --pty) on a pty and
/// returns procession's exit code. Errors are printed.
pub fn run(args: &RunArgs, mut cmd: Command) -> i32 {
    let interactive = io::stdin().is_terminal();
    // The terminal whose size the pty has and follows: procession's stdin
    // or stdout, when one of them is a terminal and no size was given.
    let follow = match args.pty_size {
        Some(_) => None,
        None if interactive => Some(stdio::stdin()),
        None if io::stdout().is_terminal() => Some(stdio::stdout()),
        None => None,
    };
    let (rows, cols) = args
        .pty_size
        .or_else(|| follow.and_then(window_size))
        .unwrap_or(DEFAULT_SIZE);
    // --stderr FILE or null takes stderr off the terminal (see `command`).
    let stderr_on_pty = !matches!(args.stderr, Some(Output::Null | Output::File(_)));
    cmd.pty(
        Pty::new()
            .size(rows, cols)
            // Interactive: procession's terminal is raw, so the pty does the
            // echo and the line editing, as with `script`. Piped input must
            // not come back in the output.
            .echo(interactive)
            .modes(args.pty_mode.iter().copied())
            .stderr(stderr_on_pty),
    );

    // Raw before the spawn: nothing typed from now on is taken by the line
    // discipline of procession's terminal.
    let raw = if interactive {
        match RawMode::enter(stdio::stdin()) {
            Ok(raw) => Some(raw),
            Err(e) => {
                eprintln!("procession: cannot put the terminal in raw mode: {e}");
                return EXIT_FAILED;
            }
        }
    } else {
        None
    };
    let result = supervise(args, &cmd, follow, raw.as_ref());
    // Restored before anything is printed, and before procession exits.
    drop(raw);
    match result {
        Ok(code) => code,
        Err((code, msg)) => {
            eprintln!("procession: {msg}");
            code
        }
    }
}

/// Spawns the program and relays until it has ended; its exit code.
fn supervise(
    args: &RunArgs,
    cmd: &Command,
    follow: Option<BorrowedFd<'static>>,
    raw: Option<&RawMode>,
) -> Result<i32, Failure> {
    let failed = |what: &str, e: io::Error| (EXIT_FAILED, format!("{what}: {e}"));
    // All of it before the spawn: a signal sent as soon as the program runs
    // is forwarded rather than ending procession, and its exit is seen.
    let caught = signals::catch().map_err(|e| failed("cannot install the signal handlers", e))?;
    let (chld, chld_writer) =
        UnixStream::pair().map_err(|e| failed("cannot make a socket pair", e))?;
    let (events, events_writer) =
        UnixStream::pair().map_err(|e| failed("cannot make a socket pair", e))?;
    for end in [&chld, &events, &events_writer] {
        end.set_nonblocking(true)
            .map_err(|e| failed("cannot make a socket pair", e))?;
    }
    signal_hook::low_level::pipe::register(libc::SIGCHLD, chld_writer)
        .map_err(|e| failed("cannot install the SIGCHLD handler", e))?;

    if args.subreaper {
        crate::group::become_subreaper()
            .map_err(|e| failed("cannot become a child subreaper", e))?;
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| (spawn_error_code(&e), e.to_string()))?;
    // PID 1 and --subreaper: reap what is re-parented to procession (see
    // `run`). Not with --stop-command, whose child the library reaps.
    if (args.subreaper || crate::group::is_pid1()) && args.stop_command.is_none() {
        if let Err(e) = signals::reap_adopted_orphans(child.pid()) {
            let _ = child.stop();
            return Err(failed("cannot start the orphan reaper thread", e));
        }
    }
    let input = child.stdin.take();
    let output = child.stdout.take();
    let output_relay = match start_threads(&child, caught, input, output, events_writer) {
        Ok(relay) => relay,
        Err(e) => {
            // Without the forwarder or the relays the program would run
            // unsupervised or blocked: stop it.
            let _ = child.stop();
            return Err(failed("cannot start a thread", e));
        }
    };
    if let Err(e) = wait_for_exit(&child, &chld, &events, follow, raw) {
        let _ = child.stop();
        return Err(failed("waiting for the program", e));
    }
    // Reaps it and stops what is left of its group (the library's
    // stop_group), as the output relay goes on.
    let status = child.wait().map_err(|e| (EXIT_FAILED, e.to_string()))?;
    if let Some(relay) = output_relay {
        relay.finish();
    }
    Ok(exit_code(
        &status,
        !args.success_exit_code.is_empty(),
        status.ended() == Ended::TimedOut,
    ))
}

/// Starts the signal forwarder and the relays; the output relay's handle.
fn start_threads(
    child: &Child,
    caught: signals::Caught,
    input: Option<ChildStdin>,
    output: Option<ChildStdout>,
    events: UnixStream,
) -> io::Result<Option<OutputRelay>> {
    let broken = events.try_clone()?;
    signals::forward_pty(caught, child.signaller(), events)?;
    if let Some(input) = input {
        thread::Builder::new()
            .name("input-relay".into())
            .spawn(move || relay_input(input))?;
    }
    output
        .map(|output| OutputRelay::start(output, broken))
        .transpose()
}

/// Copies procession's stdin to the terminal's input; at its end (or on a
/// read error) types end-of-file: Ctrl-D, twice if the input did not end
/// with a line (the first one only ends that line). Ends early if the
/// terminal no longer takes input.
fn relay_input(mut to: ChildStdin) {
    let mut in_line = false;
    let ended = crate::relay::copy_stdin(&mut to, |chunk| {
        in_line = !matches!(chunk[chunk.len() - 1], b'\n' | b'\r');
    });
    if !ended {
        return;
    }
    if in_line {
        let _ = to.write_all(&[CTRL_D]);
    }
    // Dropping it types the terminal's VEOF (the library's close_stdin).
    drop(to);
}

/// The thread that copies the terminal's output to procession's stdout.
struct OutputRelay {
    /// Written to once the program and its group are gone.
    gone: UnixStream,
    done: mpsc::Receiver<()>,
}

impl OutputRelay {
    fn start(from: ChildStdout, events: UnixStream) -> io::Result<OutputRelay> {
        let (gone, gone_reader) = UnixStream::pair()?;
        let (done_sender, done) = mpsc::channel();
        thread::Builder::new()
            .name("output-relay".into())
            .spawn(move || {
                // Errors of poll (which cannot fail on valid descriptors)
                // end the relay as its end does.
                let _ = relay_output(from, &gone_reader, &events);
                let _ = done_sender.send(());
            })?;
        Ok(OutputRelay { gone, done })
    }

    /// Tells the relay that the program and its group are gone and waits
    /// until it is done (see [`relay_output`]).
    fn finish(self) {
        let _ = (&self.gone).write_all(b"x");
        let _ = self.done.recv();
    }
}

/// Copies the terminal's output to procession's stdout until it ends. If
/// procession's stdout fails (a reader that went away), tells the main
/// thread through `events` and reads on, discarding, so that the program
/// never blocks on a full terminal.
///
/// Once `gone` is readable (the program and its group are gone), the
/// output ends as soon as nothing holds the terminal any more and what it
/// holds is read; but something outside the group that still holds it
/// (a job of an interactive shell, a daemon) gets only the drain timeout,
/// as the library's streams give a finished child's leftovers. Nothing
/// read is ever dropped: writing to stdout may take as long as it takes.
fn relay_output(mut from: ChildStdout, gone: &UnixStream, events: &UnixStream) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    let mut buf = vec![0; BUF];
    let mut broken = false;
    let mut deadline: Option<Instant> = None;
    loop {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let mut fds = [
            PollFd::new(&from, PollFlags::IN),
            PollFd::new(gone, PollFlags::IN),
        ];
        // `gone` is left out once it has told: its events stay empty.
        let polled = if deadline.is_none() { 2 } else { 1 };
        if let Err(e) = sys::poll(&mut fds[..polled], timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if !fds[1].revents().is_empty() {
            deadline = Some(Instant::now() + DEFAULT_PIPE_DRAIN_TIMEOUT);
        }
        let terminal = fds[0].revents();
        // POLLHUP: no process holds the terminal any more, so what is left
        // to read is finite: read it all, whatever the deadline.
        let held = !terminal.contains(PollFlags::HUP);
        if held && deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(());
        }
        if terminal.is_empty() {
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                if !broken
                    && stdout
                        .write_all(&buf[..n])
                        .and_then(|()| stdout.flush())
                        .is_err()
                {
                    broken = true;
                    signals::post(events, PtyEvent::OutputBroken);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Ok(()),
        }
    }
}

/// Waits until the program has exited (without reaping it), handling the
/// forwarder's events meanwhile: a window size change resizes the pty to
/// the size of `follow`, SIGCONT puts procession's terminal in raw mode
/// again (a shell may have restored it while procession was stopped), a
/// broken stdout hangs the program up.
fn wait_for_exit(
    child: &Child,
    chld: &UnixStream,
    events: &UnixStream,
    follow: Option<BorrowedFd<'static>>,
    raw: Option<&RawMode>,
) -> io::Result<()> {
    loop {
        // Emptied before the look, so that a SIGCHLD after it wakes the poll.
        drain(chld)?;
        if exited(child.pid())? {
            return Ok(());
        }
        let mut fds = [
            PollFd::new(chld, PollFlags::IN),
            PollFd::new(events, PollFlags::IN),
        ];
        if let Err(e) = sys::poll(&mut fds, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in drain(events)? {
            match PtyEvent::from_byte(event) {
                Some(PtyEvent::WindowChanged) => {
                    if let Some((rows, cols)) = follow.and_then(window_size) {
                        // Fails only once the program is gone.
                        let _ = child.resize(rows, cols);
                    }
                }
                Some(PtyEvent::Continued) => {
                    if let Some(raw) = raw {
                        let _ = raw.apply();
                    }
                }
                Some(PtyEvent::OutputBroken) => {
                    // What a terminal whose reader went away does.
                    let _ = child.signal_group(Signal::HUP);
                }
                None => {}
            }
        }
    }
}

/// Reads everything there is from a non-blocking socket; the bytes.
fn drain(mut from: &UnixStream) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return Ok(all),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(all),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Whether the program has exited: it is a zombie (left for the library
/// to reap), or it has been reaped already (by the library's background
/// reaper, which enforces the timeout). `waitid` with `WNOWAIT` only looks.
fn exited(pid: u32) -> io::Result<bool> {
    loop {
        let e = match sys::waitid_exited(pid) {
            Ok(exited) => return Ok(exited),
            Err(e) => e,
        };
        match e.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::ECHILD) => return Ok(true),
            _ => return Err(e),
        }
    }
}

/// The window size of the terminal on `fd`: (rows, columns), or None if
/// it is not a terminal or has no size set.
fn window_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let (rows, cols) = sys::tcgetwinsize(fd).ok()?;
    (rows > 0 && cols > 0).then_some((rows, cols))
}

/// procession's terminal in raw mode (`cfmakeraw`): every byte typed is
/// passed on as it is, nothing is echoed, no signal is generated, output
/// is not processed. Dropping it restores the settings found.
struct RawMode {
    fd: BorrowedFd<'static>,
    saved: Termios,
}

impl RawMode {
    /// Saves the settings of the terminal on `fd` and makes it raw.
    fn enter(fd: BorrowedFd<'static>) -> io::Result<RawMode> {
        let saved = sys::tcgetattr(fd)?;
        let raw = RawMode { fd, saved };
        raw.apply()?;
        Ok(raw)
    }

    /// Makes the terminal raw (again).
    fn apply(&self) -> io::Result<()> {
        let mut t = self.saved.clone();
        t.make_raw();
        set_attr(self.fd, &t)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // At once, not after the output drains: a terminal that is not
        // read any more must not keep procession from exiting.
        let _ = set_attr(self.fd, &self.saved);
    }
}

/// `tcsetattr(fd, TCSANOW, t)`, again after a signal.
fn set_attr(fd: BorrowedFd<'_>, t: &Termios) -> io::Result<()> {
    loop {
        match sys::tcsetattr_now(fd, t) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

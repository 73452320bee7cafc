//! `pt`: the helper program that procession's integration tests run as a child.
//!
//! Usage: `pt <subcommand> [args]`. Each subcommand writes an exactly specified
//! byte format (see the doc comment of its `cmd_*` function) and flushes after
//! each logical message, because the tests synchronise on output. Bad usage
//! gives a message on stderr and exit code 2; a write that fails with EPIPE
//! ends the program with exit code 3; any other failure gives exit code 1.
//!
//! The crate is `#![no_main]` and `main` below is the C entry point, because
//! the Rust runtime's start-up code would reopen closed fds 0-2 on /dev/null
//! and install SIGSEGV/SIGBUS handlers, hiding the very state (inherited fds,
//! closed stdin, signal dispositions) that `fds`, `stdin-state` and `sigstate`
//! report. SIGPIPE is set to SIG_IGN by hand, as the runtime would do, for
//! every subcommand except `sigstate`, which reports the inherited state.
//!
//! `pt pty [OPTIONS] -- PROGRAM ARGS...` is different: it runs PROGRAM as the
//! foreground job of a fresh pseudo-terminal, as an interactive shell would,
//! relays the terminal's output to stdout, scripts its input and its window
//! size (a resize sends the job SIGWINCH), and exits with
//! PROGRAM's status (124 on its `--timeout`). See `pty::cmd_pty`.
#![no_main]

mod pty;

use std::ffi::{CStr, OsStr, OsString, c_char, c_int};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::process::{self, Command, Stdio};
use std::str::FromStr;
use std::time::Duration;
use std::{env, fs, thread};

/// Read buffer size and default `write` chunk size.
const BUF: usize = 65536;

/// C entry point: collects argv, checks the argument count, runs the subcommand.
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    let argc = usize::try_from(argc).unwrap_or(0);
    let args: Vec<OsString> = (0..argc)
        .map(|i| {
            // SAFETY: the C runtime passes `argc` valid NUL-terminated strings in `argv`.
            let arg = unsafe { CStr::from_ptr(*argv.add(i)) };
            OsString::from_vec(arg.to_bytes().to_vec())
        })
        .collect();
    let sub = match args.get(1) {
        Some(sub) => sub.to_string_lossy().into_owned(),
        None => usage("missing subcommand"),
    };
    if sub != "sigstate" {
        // SAFETY: changing SIGPIPE's disposition has no memory-safety preconditions.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    }
    let rest = &args[2..];
    let (min, max) = match sub.as_str() {
        "argv" | "print" | "eprint" => (0, usize::MAX),
        "catch" => (2, usize::MAX),
        "write" => (1, 2),
        "spawn-grandchild" => (0, 1),
        // At least `--` and PROGRAM; `pty` parses the rest itself.
        "pty" => (2, usize::MAX),
        "interleave" | "exit" | "kill-self" | "sleep" | "loop-print" | "spin" | "touch-mib"
        | "packet-echo" | "progress" => (1, 1),
        _ => (0, 0),
    };
    if rest.len() < min || rest.len() > max {
        usage(&format!("wrong number of arguments for {sub}"));
    }
    match sub.as_str() {
        "argv" => cmd_argv(&args),
        "env" => cmd_env(),
        "cwd" => cmd_cwd(),
        "fds" => cmd_fds(),
        "sigstate" => cmd_sigstate(),
        "write" => {
            let chunk = rest.get(1).map_or(BUF, |c| num(c, "CHUNK"));
            if chunk == 0 {
                usage("CHUNK must be positive");
            }
            cmd_write(num(&rest[0], "N"), chunk);
        }
        // `pt print TEXT...` / `pt eprint TEXT...`: the args joined by spaces, then `\n`.
        "print" => out(&join(rest)),
        "eprint" => err(&join(rest)),
        "interleave" => cmd_interleave(num(&rest[0], "N")),
        // `pt exit CODE`: exits with CODE.
        "exit" => process::exit(num(&rest[0], "CODE")),
        "kill-self" => cmd_kill_self(num(&rest[0], "SIGNUM")),
        "sleep" => cmd_sleep(num(&rest[0], "SECS")),
        "spin" => cmd_spin(num(&rest[0], "MS")),
        "touch-mib" => cmd_touch_mib(num(&rest[0], "MIB")),
        "ignore-term" => cmd_ignore_term(),
        "pgid" => cmd_pgid(),
        "catch" => {
            let signals: Vec<c_int> = rest[1..].iter().map(|s| num(s, "SIGNUM")).collect();
            cmd_catch(num(&rest[0], "COUNT"), &signals);
        }
        // `pt ppid`: `<ppid>\n`.
        "ppid" => {
            // SAFETY: getppid has no preconditions.
            let ppid = unsafe { libc::getppid() };
            out(format!("{ppid}\n").as_bytes());
        }
        "stdin-state" => cmd_stdin_state(),
        // `pt echo`: stdin to stdout, unbuffered. `pt sink`: `<bytes read>\n` at EOF.
        "echo" => drop(pump(true)),
        "sink" => out(format!("{}\n", pump(false)).as_bytes()),
        "spawn-grandchild" => {
            if rest.first().is_some_and(|flag| flag != "--setsid") {
                usage("usage: pt spawn-grandchild [--setsid]");
            }
            out(format!("{}\n", spawn_sleeper(!rest.is_empty(), false)).as_bytes());
            sleep_forever();
        }
        "hold-stdout" => out(format!("{}\n", spawn_sleeper(false, true)).as_bytes()),
        "loop-print" => cmd_loop_print(&rest[0]),
        "pty" => pty::cmd_pty(rest),
        "packet-echo" => cmd_packet_echo(num(&rest[0], "N")),
        "progress" => cmd_progress(num(&rest[0], "N")),
        _ => usage(&format!("unknown subcommand {sub:?}")),
    }
    0
}

/// `pt argv`: every argv element (`argv[0]` as received) as raw bytes, each followed by NUL.
fn cmd_argv(args: &[OsString]) {
    let mut buf = Vec::new();
    for arg in args {
        buf.extend_from_slice(arg.as_bytes());
        buf.push(0);
    }
    out(&buf);
}

/// `pt env`: every `KEY=VALUE` in `vars_os` order as raw bytes, each followed by NUL.
fn cmd_env() {
    let mut buf = Vec::new();
    for (key, value) in env::vars_os() {
        buf.extend_from_slice(key.as_bytes());
        buf.push(b'=');
        buf.extend_from_slice(value.as_bytes());
        buf.push(0);
    }
    out(&buf);
}

/// `pt cwd`: the current directory as raw bytes, then `\n`.
fn cmd_cwd() {
    let mut buf = env::current_dir()
        .unwrap_or_else(|e| fail("getcwd", e))
        .into_os_string()
        .into_vec();
    buf.push(b'\n');
    out(&buf);
}

/// `pt fds`: the open fds, ascending, decimal, space-separated, then `\n`
/// (the fd used to read /proc/self/fd is excluded).
fn cmd_fds() {
    // SAFETY: the path is a valid NUL-terminated string.
    let dir = unsafe { libc::opendir(c"/proc/self/fd".as_ptr()) };
    if dir.is_null() {
        fail("opendir /proc/self/fd", io::Error::last_os_error());
    }
    // SAFETY: `dir` is a valid open directory stream.
    let own = unsafe { libc::dirfd(dir) };
    let mut fds = Vec::new();
    loop {
        // SAFETY: `dir` is a valid open directory stream.
        let ent = unsafe { libc::readdir(dir) };
        if ent.is_null() {
            break;
        }
        // SAFETY: `ent` points to a valid dirent (until the next readdir) whose
        // `d_name` is NUL-terminated.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        if let Some(fd) = name.to_str().ok().and_then(|s| s.parse::<c_int>().ok())
            && fd != own
        {
            fds.push(fd);
        }
    }
    // SAFETY: `dir` was opened above and is closed exactly once.
    unsafe { libc::closedir(dir) };
    fds.sort_unstable();
    let line: Vec<String> = fds.iter().map(c_int::to_string).collect();
    out(format!("{}\n", line.join(" ")).as_bytes());
}

/// `pt sigstate`: `blocked <SigBlk>\nignored <SigIgn>\ncaught <SigCgt>\n`, the
/// hex masks exactly as in /proc/self/status.
fn cmd_sigstate() {
    let status =
        fs::read_to_string("/proc/self/status").unwrap_or_else(|e| fail("/proc/self/status", e));
    let field = |key: &str| {
        let value = status.lines().find_map(|l| l.strip_prefix(key));
        value
            .map(str::trim)
            .unwrap_or_else(|| fail(key, io::Error::other("missing in /proc/self/status")))
    };
    let text = format!(
        "blocked {}\nignored {}\ncaught {}\n",
        field("SigBlk:"),
        field("SigIgn:"),
        field("SigCgt:")
    );
    out(text.as_bytes());
}

/// `pt write N [CHUNK]`: N bytes to fd 1 with raw write(2) calls of at most
/// CHUNK bytes; byte at stream offset i is `i % 251`.
fn cmd_write(total: u64, chunk: usize) {
    let chunk = chunk.min(usize::try_from(total).unwrap_or(usize::MAX));
    let pattern: Vec<u8> = (0..chunk + 251).map(|i| (i % 251) as u8).collect();
    let mut off = 0u64;
    while off < total {
        let start = (off % 251) as usize;
        let len = chunk.min(usize::try_from(total - off).unwrap_or(usize::MAX));
        match raw_write(1, &pattern[start..start + len]) {
            Ok(n) => off += n as u64,
            Err(e) => check(Err(e)),
        }
    }
}

/// `pt interleave N`: for i in 0..N, `out i\n` to fd 1 then `err i\n` to fd 2,
/// each with one unbuffered write(2).
fn cmd_interleave(n: u64) {
    for i in 0..n {
        check(raw_write_all(1, format!("out {i}\n").as_bytes()));
        check(raw_write_all(2, format!("err {i}\n").as_bytes()));
    }
}

/// `pt kill-self SIGNUM`: resets the signal to SIG_DFL, unblocks and raises it;
/// exits 1 if still alive.
fn cmd_kill_self(sig: c_int) -> ! {
    // SAFETY: `set` is plain data initialised by sigemptyset before use; the
    // program is single-threaded, and signal/sigprocmask/raise have no
    // memory-safety preconditions.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
    }
    process::exit(1)
}

/// `pt sleep SECS`: sleeps SECS (fractional allowed) seconds, then exits 0.
fn cmd_sleep(secs: f64) {
    match Duration::try_from_secs_f64(secs) {
        Ok(d) => thread::sleep(d),
        Err(_) => usage("SECS must be a non-negative number"),
    }
}

/// `pt spin MS`: burns MS milliseconds of CPU time in user mode (measured
/// with `CLOCK_PROCESS_CPUTIME_ID`), then exits 0.
fn cmd_spin(ms: u64) {
    let cpu = || {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid out pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    };
    let end = cpu() + Duration::from_millis(ms);
    let mut x = 0u64;
    while cpu() < end {
        for i in 0..10_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }
    std::hint::black_box(x);
}

/// `pt touch-mib N`: allocates N MiB, writes every page (so that it is
/// resident), then exits 0.
fn cmd_touch_mib(mib: usize) {
    let mut v = vec![0u8; mib << 20];
    for page in v.chunks_mut(4096) {
        page[0] = 1;
    }
    std::hint::black_box(&v);
}

/// `pt ignore-term`: ignores SIGTERM, writes `ready\n`, then sleeps forever.
fn cmd_ignore_term() -> ! {
    // SAFETY: changing SIGTERM's disposition has no memory-safety preconditions.
    unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    out(b"ready\n");
    sleep_forever()
}

/// `pt catch COUNT SIGNUM...`: blocks those signals, writes `ready\n`, then
/// COUNT times waits for one of them and writes `caught <signum>\n` (of two
/// pending at once, the lower number first); exits 0.
fn cmd_catch(count: u32, signals: &[c_int]) {
    // SAFETY: `set` is plain data initialised by sigemptyset before use; the
    // program is single-threaded.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &sig in signals {
            if libc::sigaddset(&mut set, sig) != 0 {
                usage(&format!("bad SIGNUM {sig}"));
            }
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    out(b"ready\n");
    for _ in 0..count {
        let sig = loop {
            // SAFETY: `set` is a valid signal set; no siginfo is asked for.
            match unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) } {
                -1 => match io::Error::last_os_error() {
                    e if e.kind() == io::ErrorKind::Interrupted => {}
                    e => fail("sigwaitinfo", e),
                },
                sig => break sig,
            }
        };
        out(format!("caught {sig}\n").as_bytes());
    }
}

/// `pt pgid`: `<pid> <pgid> <sid>\n`.
fn cmd_pgid() {
    // SAFETY: getpid/getpgid/getsid have no memory-safety preconditions.
    let (pid, pgid, sid) = unsafe { (libc::getpid(), libc::getpgid(0), libc::getsid(0)) };
    out(format!("{pid} {pgid} {sid}\n").as_bytes());
}

/// `pt stdin-state`: `closed\n` if fd 0 is not open, otherwise reads stdin to
/// EOF and writes `open <bytes read>\n`.
fn cmd_stdin_state() {
    // SAFETY: F_GETFD only queries the descriptor's flags.
    let flags = unsafe { libc::fcntl(0, libc::F_GETFD) };
    if flags == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EBADF) {
        out(b"closed\n");
    } else {
        out(format!("open {}\n", pump(false)).as_bytes());
    }
}

/// `pt loop-print TEXT`: writes `TEXT\n` every 10 ms forever.
fn cmd_loop_print(text: &OsStr) -> ! {
    let mut line = text.as_bytes().to_vec();
    line.push(b'\n');
    loop {
        out(&line);
        thread::sleep(Duration::from_millis(10));
    }
}

/// `pt echo` (`echo` true) copies stdin to stdout with raw read/write; `pt sink`
/// (`echo` false) discards it. Returns the number of bytes read before EOF.
/// `packet-echo N`: reads packets framed by an N-byte big-endian length
/// (N = 1, 2 or 4) from stdin and answers each with a packet of the same
/// framing holding the payload reversed, written at once. Exits 0 at a
/// clean end of input, 2 when the input ends inside a packet.
fn cmd_packet_echo(n: usize) {
    use std::io::Read;
    if ![1, 2, 4].contains(&n) {
        usage("packet-echo takes 1, 2 or 4");
    }
    let mut stdin = io::stdin().lock();
    loop {
        let mut header = [0u8; 4];
        let mut got = 0;
        while got < n {
            match stdin.read(&mut header[got..n]) {
                Ok(0) if got == 0 => return,
                Ok(0) => {
                    err(b"packet-echo: input ended inside a header\n");
                    process::exit(2);
                }
                Ok(k) => got += k,
                Err(e) => fail("read stdin", e),
            }
        }
        let len = header[..n]
            .iter()
            .fold(0usize, |a, &b| (a << 8) | usize::from(b));
        let mut payload = vec![0u8; len];
        if let Err(e) = stdin.read_exact(&mut payload) {
            err(format!("packet-echo: input ended inside a packet: {e}\n").as_bytes());
            process::exit(2);
        }
        payload.reverse();
        let mut reply = header[..n].to_vec();
        reply.extend_from_slice(&payload);
        out(&reply);
    }
}

/// `progress N`: progress output as ffmpeg or curl write it: `i/N\r` for
/// i = 1..=N, each its own write, then `done\n`.
fn cmd_progress(n: usize) {
    for i in 1..=n {
        out(format!("{i}/{n}\r").as_bytes());
    }
    out(b"done\n");
}

fn pump(echo: bool) -> u64 {
    let mut buf = vec![0u8; BUF];
    let mut total = 0u64;
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        let n = match usize::try_from(n) {
            Ok(0) => return total,
            Ok(n) => n,
            Err(_) => match io::Error::last_os_error() {
                e if e.kind() == io::ErrorKind::Interrupted => continue,
                e => fail("read stdin", e),
            },
        };
        total += n as u64;
        if echo {
            check(raw_write_all(1, &buf[..n]));
        }
    }
}

/// `pt spawn-grandchild [--setsid]` / `pt hold-stdout`: starts `<current_exe>
/// sleep 1000` (in a new session with `setsid`; with stdout on /dev/null unless
/// `hold_stdout`) and returns its pid without waiting for it.
fn spawn_sleeper(setsid: bool, hold_stdout: bool) -> u32 {
    let exe = env::current_exe().unwrap_or_else(|e| fail("current_exe", e));
    let mut cmd = Command::new(exe);
    cmd.arg("sleep").arg("1000");
    if !hold_stdout {
        cmd.stdout(Stdio::null());
    }
    if setsid {
        // SAFETY: the hook only calls setsid(2), which is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| match libc::setsid() {
                -1 => Err(io::Error::last_os_error()),
                _ => Ok(()),
            })
        };
    }
    cmd.spawn()
        .unwrap_or_else(|e| fail("spawn grandchild", e))
        .id()
}

fn sleep_forever() -> ! {
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}

/// The arguments joined by single spaces, then `\n`.
fn join(args: &[OsString]) -> Vec<u8> {
    let mut buf = args.join(OsStr::new(" ")).into_vec();
    buf.push(b'\n');
    buf
}

fn num<T: FromStr>(arg: &OsStr, what: &str) -> T {
    match arg.to_str().and_then(|s| s.parse().ok()) {
        Some(value) => value,
        None => usage(&format!("bad {what}: {arg:?}")),
    }
}

/// Writes one message to stdout and flushes it.
fn out(bytes: &[u8]) {
    let mut stdout = io::stdout().lock();
    check(stdout.write_all(bytes).and_then(|()| stdout.flush()));
}

/// Writes one message to stderr.
fn err(bytes: &[u8]) {
    let mut stderr = io::stderr().lock();
    check(stderr.write_all(bytes).and_then(|()| stderr.flush()));
}

/// Exits 3 on EPIPE, 1 on any other error.
fn check(result: io::Result<()>) {
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => process::exit(3),
        Err(e) => fail("write", e),
    }
}

/// One write(2), retried on EINTR; returns how many bytes were written.
fn raw_write(fd: c_int, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        match usize::try_from(n) {
            Ok(0) if !buf.is_empty() => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => return Ok(n),
            Err(_) => match io::Error::last_os_error() {
                e if e.kind() == io::ErrorKind::Interrupted => {}
                e => return Err(e),
            },
        }
    }
}

fn raw_write_all(fd: c_int, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = raw_write(fd, buf)?;
        buf = &buf[n..];
    }
    Ok(())
}

fn usage(msg: &str) -> ! {
    let _ = writeln!(io::stderr(), "pt: {msg}\nusage: pt <subcommand> [args]");
    process::exit(2)
}

fn fail(what: &str, e: io::Error) -> ! {
    let _ = writeln!(io::stderr(), "pt: {what}: {e}");
    process::exit(1)
}

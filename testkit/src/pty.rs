//! `pt pty`: runs a program as the foreground job of a fresh pseudo-terminal,
//! the way an interactive job-control shell starts it, and relays the
//! terminal's output to stdout. See [`cmd_pty`].

use std::ffi::{CString, OsString, c_int};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::process;
use std::time::{Duration, Instant};

use crate::{check, fail, raw_write, raw_write_all, usage};

/// Exit code when the session outlives `--timeout`.
const EXIT_TIMEOUT: c_int = 124;

/// Parsed `pt pty` arguments.
struct PtyArgs {
    timeout: Duration,
    /// `--size`: the terminal's size at the start (rows, columns).
    size: (u16, u16),
    /// `--send` texts, unescaped, in order.
    sends: Vec<Vec<u8>>,
    /// `--send-after-line` and `--resize-after-line`: (pattern, what to do),
    /// patterns unescaped, in order.
    triggers: Vec<(Vec<u8>, Action)>,
    /// PROGRAM and ARGS, ready for execvp.
    argv: Vec<CString>,
}

/// What a trigger does once its pattern has appeared.
enum Action {
    /// Write the text to the terminal (`--send-after-line`).
    Send(Vec<u8>),
    /// Set the terminal's size (`--resize-after-line`): the kernel sends
    /// SIGWINCH to its foreground group.
    Resize(u16, u16),
}

/// `pt pty [--timeout SECS] [--size ROWSxCOLS] [--send TEXT]... [--send-after-line PATTERN TEXT]... [--resize-after-line PATTERN ROWSxCOLS]... -- PROGRAM ARGS...`
///
/// Emulates an interactive job-control shell on a fresh pseudo-terminal: a
/// session child S (setsid, the terminal as its controlling terminal) starts
/// PROGRAM as a job J that leads its own process group, which S makes the
/// terminal's foreground group; J gets the terminal as fds 0-2, only those
/// fds, default signal dispositions and an empty signal mask. S is not part
/// of the job (as with bash). Everything the terminal outputs goes to stdout,
/// raw, as it comes; the terminal echoes input, so sent text appears there too.
///
/// Input: each `--send TEXT` is written to the terminal at the start, in
/// order. Each `--send-after-line PATTERN TEXT` writes TEXT once the output
/// contains PATTERN; they fire once each, in order, and each PATTERN is
/// searched for only in the output after the previous one's match. TEXT and
/// PATTERN understand `\n`, `\r`, `\t`, `\\` and `\xHH` (`\x03` is Ctrl-C,
/// `\x1c` Ctrl-\, `\x1a` Ctrl-Z).
///
/// Size: the terminal is 24x80 unless `--size ROWSxCOLS` says otherwise.
/// `--resize-after-line PATTERN ROWSxCOLS` is a trigger like
/// `--send-after-line` (in the same sequence, in command-line order) that
/// sets the terminal's size instead of writing: the kernel sends SIGWINCH
/// to the terminal's foreground group, as when a window is resized.
///
/// Exit: once S has exited (it exits when J has) and the terminal's output is
/// drained, with J's status: its exit code N, or 128+N for signal N (127 if
/// PROGRAM is not found, 126 if it cannot be executed). If that has not
/// happened within `--timeout` SECS (default 20, fractional allowed), every
/// process of the session gets SIGKILL, `pt pty: timeout` goes to stderr and
/// the exit code is 124. The drain also waits for descendants of J that
/// still hold the terminal open; they count against the timeout too.
pub fn cmd_pty(rest: &[OsString]) -> ! {
    let args = parse(rest);
    let deadline = Instant::now() + args.timeout;

    let master = open_master();
    let slave_path = slave_name(master);
    // pt keeps a slave descriptor of its own until S has exited, so that the
    // master reports no hang-up before S opened the slave or while J's
    // descendants come and go; only then does EIO mean "drained".
    let own_slave = open_slave(&slave_path);
    set_size(master, args.size);

    // SAFETY: pt is single-threaded, so the child may run arbitrary code.
    let session = match unsafe { libc::fork() } {
        -1 => fail("fork", io::Error::last_os_error()),
        0 => session_child(master, own_slave, &slave_path, &args.argv),
        pid => pid,
    };
    let pidfd = pidfd_open(session).unwrap_or_else(|e| fail("pidfd_open", e));

    for text in &args.sends {
        write_master(master, text);
    }

    let mut output = Vec::new();
    // Start of the output that the next trigger's pattern is searched in.
    let mut search_from = 0;
    let mut triggers = args.triggers.iter();
    let mut next_trigger = triggers.next();
    let mut own_slave = Some(own_slave);
    let mut status: Option<c_int> = None;
    let mut buf = vec![0u8; crate::BUF];
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            timeout(session, status.is_none(), master, &mut buf);
        }
        let mut fds = [
            libc::pollfd {
                fd: master,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                // A negative fd is skipped: S is reaped already.
                fd: if status.is_none() { pidfd } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // Round up so that the last poll does not end just short of the deadline.
        let ms = c_int::try_from(remaining.as_micros().div_ceil(1000)).unwrap_or(c_int::MAX);
        // SAFETY: `fds` is a valid array of two pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if n == -1 {
            match io::Error::last_os_error() {
                e if e.kind() == io::ErrorKind::Interrupted => continue,
                e => fail("poll", e),
            }
        }
        if fds[0].revents != 0 {
            match read_master(master, &mut buf) {
                Some(chunk) => {
                    check(raw_write_all(1, chunk));
                    output.extend_from_slice(chunk);
                    while let Some((pattern, action)) = next_trigger {
                        let Some(at) = find(&output[search_from..], pattern) else {
                            break;
                        };
                        search_from += at + pattern.len();
                        match action {
                            Action::Send(text) => write_master(master, text),
                            Action::Resize(rows, cols) => set_size(master, (*rows, *cols)),
                        }
                        next_trigger = triggers.next();
                    }
                }
                // No slave descriptor is open any more: only possible once
                // pt has closed its own, i.e. after S exited.
                None => process::exit(status.unwrap_or(1)),
            }
        }
        if status.is_none() && fds[1].revents != 0 {
            status = Some(reap(session));
            // Drain: the master reports EIO once the last slave descriptor
            // (ours, and any that J's leftovers still hold) is closed.
            if let Some(fd) = own_slave.take() {
                // SAFETY: `fd` is our slave descriptor, closed exactly once.
                unsafe { libc::close(fd) };
            }
            // SAFETY: `pidfd` is ours and no longer used.
            unsafe { libc::close(pidfd) };
        }
    }
}

/// Parses the arguments after `pty`.
fn parse(rest: &[OsString]) -> PtyArgs {
    const USAGE: &str = "usage: pt pty [--timeout SECS] [--size ROWSxCOLS] [--send TEXT]... \
                         [--send-after-line PATTERN TEXT]... \
                         [--resize-after-line PATTERN ROWSxCOLS]... -- PROGRAM ARGS...";
    let mut args = PtyArgs {
        timeout: Duration::from_secs(20),
        size: (24, 80),
        sends: Vec::new(),
        triggers: Vec::new(),
        argv: Vec::new(),
    };
    let mut it = rest.iter();
    let value = |it: &mut std::slice::Iter<OsString>| match it.next() {
        Some(v) => unescape(v.as_bytes()),
        None => usage(USAGE),
    };
    loop {
        let Some(arg) = it.next() else {
            usage(USAGE);
        };
        match arg.as_bytes() {
            b"--" => break,
            b"--timeout" => {
                let secs: f64 = match it.next() {
                    Some(v) => crate::num(v, "SECS"),
                    None => usage(USAGE),
                };
                args.timeout = Duration::try_from_secs_f64(secs)
                    .unwrap_or_else(|_| usage("SECS must be a non-negative number"));
            }
            b"--send" => args.sends.push(value(&mut it)),
            b"--size" => args.size = size(&value(&mut it)),
            b"--send-after-line" | b"--resize-after-line" => {
                let pattern = value(&mut it);
                if pattern.is_empty() {
                    usage("PATTERN must not be empty");
                }
                let action = match arg.as_bytes() {
                    b"--send-after-line" => Action::Send(value(&mut it)),
                    _ => {
                        let (rows, cols) = size(&value(&mut it));
                        Action::Resize(rows, cols)
                    }
                };
                args.triggers.push((pattern, action));
            }
            _ => usage(USAGE),
        }
    }
    for arg in it {
        match CString::new(arg.as_bytes()) {
            Ok(c) => args.argv.push(c),
            Err(_) => usage("PROGRAM and ARGS must not contain NUL bytes"),
        }
    }
    if args.argv.is_empty() {
        usage(USAGE);
    }
    args
}

/// Parses `ROWSxCOLS` (each 1 to 65535); anything else is bad usage.
fn size(s: &[u8]) -> (u16, u16) {
    let parsed = std::str::from_utf8(s).ok().and_then(|s| {
        let (rows, cols) = s.split_once('x')?;
        let dim = |d: &str| d.parse::<u16>().ok().filter(|&n| n > 0);
        Some((dim(rows)?, dim(cols)?))
    });
    parsed.unwrap_or_else(|| usage("ROWSxCOLS must be two positive numbers, e.g. 24x80"))
}

/// Sets the terminal's size; the kernel sends SIGWINCH to its foreground
/// group when it changes.
fn set_size(master: c_int, (rows, cols): (u16, u16)) {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a `winsize` from the valid pointer.
    if unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &size) } == -1 {
        fail("TIOCSWINSZ", io::Error::last_os_error());
    }
}

/// Resolves `\n`, `\r`, `\t`, `\\` and `\xHH`; any other escape is bad usage.
fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            out.push(s[i]);
            i += 1;
            continue;
        }
        let (byte, len) = match s.get(i + 1) {
            Some(b'n') => (b'\n', 2),
            Some(b'r') => (b'\r', 2),
            Some(b't') => (b'\t', 2),
            Some(b'\\') => (b'\\', 2),
            Some(b'x') => {
                let hex = s
                    .get(i + 2..i + 4)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => (b, 4),
                    None => usage("\\x needs two hex digits"),
                }
            }
            _ => usage("unknown escape (known: \\n \\r \\t \\\\ \\xHH)"),
        };
        out.push(byte);
        i += len;
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A new pseudo-terminal master (close-on-exec, not our controlling terminal).
fn open_master() -> c_int {
    // SAFETY: posix_openpt/grantpt/unlockpt take plain integers.
    unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if fd == -1 {
            fail("posix_openpt", io::Error::last_os_error());
        }
        if libc::grantpt(fd) != 0 {
            fail("grantpt", io::Error::last_os_error());
        }
        if libc::unlockpt(fd) != 0 {
            fail("unlockpt", io::Error::last_os_error());
        }
        fd
    }
}

/// The slave's path, e.g. `/dev/pts/3`.
fn slave_name(master: c_int) -> CString {
    let mut buf = [0u8; 128];
    // SAFETY: `buf` is valid for writes of its length.
    let r = unsafe { libc::ptsname_r(master, buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        fail("ptsname_r", io::Error::from_raw_os_error(r));
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    CString::new(&buf[..len]).unwrap_or_else(|_| unreachable!("stops at the first NUL"))
}

/// Opens the slave without making it the controlling terminal.
fn open_slave(path: &CString) -> c_int {
    // SAFETY: `path` is a valid NUL-terminated string.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if fd == -1 {
        fail("open the pty slave", io::Error::last_os_error());
    }
    fd
}

/// The session child S: a new session with the terminal as its controlling
/// terminal; starts the job, waits for it and exits with its encoded status.
/// Runs in a forked copy of single-threaded pt; never returns.
fn session_child(master: c_int, own_slave: c_int, path: &CString, argv: &[CString]) -> ! {
    // SAFETY: plain system calls on descriptors this process owns; `path`
    // is a valid C string.
    let slave = unsafe {
        libc::close(master);
        libc::close(own_slave);
        if libc::setsid() == -1 {
            child_fail(b"setsid");
        }
        let slave = libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if slave == -1 {
            child_fail(b"open the pty slave");
        }
        if libc::ioctl(slave, libc::TIOCSCTTY, 0) == -1 {
            child_fail(b"TIOCSCTTY");
        }
        slave
    };
    // SAFETY: still single-threaded, so the job child may run arbitrary code.
    let job = match unsafe { libc::fork() } {
        -1 => child_fail(b"fork"),
        0 => job_child(slave, argv),
        pid => pid,
    };
    // SAFETY: setpgid/tcsetpgrp/sigprocmask with plain integers and a
    // sigset initialised by sigemptyset.
    unsafe {
        // Also done by the job itself: whichever runs first wins, the other
        // gets EACCES (the job has exec'd) or the same result.
        libc::setpgid(job, job);
        let old = block_ttou();
        libc::tcsetpgrp(slave, job);
        libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        libc::close(slave);
    }
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(job, &mut status, 0) };
        if r == job {
            break;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            child_fail(b"waitpid");
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    // SAFETY: _exit ends this forked process without running pt's exit path.
    unsafe { libc::_exit(code) }
}

/// The job J: its own process group, the terminal's foreground group, the
/// terminal as fds 0-2 and nothing else, default signal state; then PROGRAM.
fn job_child(slave: c_int, argv: &[CString]) -> ! {
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: plain system calls; `ptrs` is a NULL-terminated array of valid
    // C strings that outlive the execvp call.
    unsafe {
        libc::setpgid(0, 0);
        // As shells do: take the terminal ourselves too, so that PROGRAM
        // never runs before its group is in the foreground. A background
        // process may do so only with SIGTTOU blocked or ignored.
        block_ttou();
        libc::tcsetpgrp(slave, libc::getpid());
        for fd in 0..3 {
            if libc::dup2(slave, fd) == -1 {
                child_fail(b"dup2");
            }
        }
        // Everything else is close-on-exec, but close it anyway.
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
            for fd in 3..1024 {
                libc::close(fd);
            }
        }
        for sig in 1..=libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::execvp(ptrs[0], ptrs.as_ptr());
        let e = io::Error::last_os_error();
        let mut msg = b"pt pty: exec ".to_vec();
        msg.extend_from_slice(argv[0].as_bytes());
        msg.extend_from_slice(format!(": {e}\n").as_bytes());
        let _ = raw_write_all(2, &msg);
        libc::_exit(if e.kind() == io::ErrorKind::NotFound {
            127
        } else {
            126
        })
    }
}

/// Blocks SIGTTOU; returns the previous mask.
fn block_ttou() -> libc::sigset_t {
    // SAFETY: both sets are plain data initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigemptyset(&mut old);
        libc::sigaddset(&mut set, libc::SIGTTOU);
        libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

/// Reports a failed step of S or J on stderr and exits 1 without running
/// pt's exit path (these are forked copies).
fn child_fail(what: &[u8]) -> ! {
    let e = io::Error::last_os_error();
    let mut msg = b"pt pty: ".to_vec();
    msg.extend_from_slice(what);
    msg.extend_from_slice(format!(": {e}\n").as_bytes());
    let _ = raw_write_all(2, &msg);
    // SAFETY: _exit has no preconditions.
    unsafe { libc::_exit(1) }
}

/// One read from the master: the bytes, or None at EIO/EOF (no slave open).
fn read_master(master: c_int, buf: &mut [u8]) -> Option<&[u8]> {
    loop {
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::read(master, buf.as_mut_ptr().cast(), buf.len()) };
        match usize::try_from(n) {
            Ok(0) => return None,
            Ok(n) => return Some(&buf[..n]),
            Err(_) => match io::Error::last_os_error() {
                e if e.kind() == io::ErrorKind::Interrupted => {}
                // EIO: no slave descriptor open any more. EAGAIN: nothing
                // more for now, in the non-blocking drain after a timeout.
                e if e.raw_os_error() == Some(libc::EIO) => return None,
                e if e.kind() == io::ErrorKind::WouldBlock => return None,
                e => fail("read the pty master", e),
            },
        }
    }
}

/// Writes all of `text` to the terminal's input.
fn write_master(master: c_int, mut text: &[u8]) {
    while !text.is_empty() {
        match raw_write(master, text) {
            Ok(n) => text = &text[n..],
            Err(e) => fail("write the pty master", e),
        }
    }
}

fn pidfd_open(pid: libc::pid_t) -> io::Result<c_int> {
    // SAFETY: pidfd_open takes a pid and flags; the result is a new fd (always
    // close-on-exec) or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    match c_int::try_from(fd) {
        Ok(fd) if fd >= 0 => Ok(fd),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Reaps S (which has exited) and returns its exit code.
fn reap(session: libc::pid_t) -> c_int {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(session, &mut status, 0) };
        if r == session {
            break;
        }
        match io::Error::last_os_error() {
            e if e.kind() == io::ErrorKind::Interrupted => {}
            e => fail("waitpid", e),
        }
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// The timeout: SIGKILL every process of S's session (and S itself if
/// `session_alive`), relay what output is already there, report, exit 124.
fn timeout(session: libc::pid_t, session_alive: bool, master: c_int, buf: &mut [u8]) -> ! {
    // S is unreaped while `session_alive`, so its pid is still its own. Its
    // session id stays with the members after it exits.
    for _ in 0..20 {
        if kill_session_members(session) == 0 {
            break;
        }
    }
    if session_alive {
        // SAFETY: kill with plain integers on our unreaped child.
        unsafe { libc::kill(session, libc::SIGKILL) };
        reap(session);
    }
    // Relay what the terminal still holds, without waiting for more.
    // SAFETY: F_SETFL with O_NONBLOCK on our own descriptor.
    unsafe { libc::fcntl(master, libc::F_SETFL, libc::O_NONBLOCK) };
    while let Some(chunk) = read_master(master, buf) {
        let _ = raw_write_all(1, chunk);
    }
    let _ = writeln!(io::stderr(), "pt pty: timeout");
    process::exit(EXIT_TIMEOUT)
}

/// SIGKILLs the live processes whose session id is `sid` (through a pidfd,
/// re-checking the session after opening it, so a reused pid is never hit);
/// returns how many there were.
fn kill_session_members(sid: libc::pid_t) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        if pid == sid || session_of(pid) != Some(sid) {
            continue;
        }
        let Ok(fd) = pidfd_open(pid) else { continue };
        if session_of(pid) == Some(sid) {
            // SAFETY: pidfd_send_signal on our own pidfd, no siginfo.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd,
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            killed += 1;
        }
        // SAFETY: `fd` was opened above and is closed exactly once.
        unsafe { libc::close(fd) };
    }
    killed
}

/// The session id of a live (not zombie) process, from /proc/PID/stat.
fn session_of(pid: libc::pid_t) -> Option<libc::pid_t> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    // After the command name: state ppid pgrp session ...
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(2)?.parse().ok()
}

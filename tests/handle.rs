//! The blocking `Child` handle: what its methods report when used wrongly,
//! how it shows itself, and reads on a pipe someone else made non-blocking.

mod support;
use support::*;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use procession::{Bytes, Command, ErrorKind, Stdio, Step};

#[test]
fn using_a_stream_that_is_not_piped_names_the_stream_and_the_step() {
    let _g = Guard::new();
    let mut child = pt_cmd(["exit", "0"]).spawn().unwrap();
    let err = child.write_all(b"x").unwrap_err();
    assert_eq!(
        (err.kind(), err.step()),
        (ErrorKind::InvalidInput, Step::Write)
    );
    assert!(err.to_string().contains("stdin is not piped"), "{err}");
    let err = child.read().unwrap_err();
    assert_eq!(
        (err.kind(), err.step()),
        (ErrorKind::InvalidInput, Step::Read)
    );
    assert!(err.to_string().contains("stdout is not piped"), "{err}");
    let err = child.read_stderr().unwrap_err();
    assert_eq!(
        (err.kind(), err.step()),
        (ErrorKind::InvalidInput, Step::Read)
    );
    assert!(err.to_string().contains("stderr is not piped"), "{err}");
    assert!(child.wait().unwrap().success());
}

#[test]
fn debug_of_a_child_shows_its_pid_and_program() {
    let _g = Guard::new();
    let mut child = Command::new("sleep").arg("100").spawn().unwrap();
    let shown = format!("{child:?}");
    assert!(shown.contains(&format!("pid: {}", child.pid())), "{shown}");
    assert!(shown.contains("sleep"), "{shown}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The system call the thread `tid` of this process is blocked in, if any.
fn blocked_in(tid: i32) -> Option<i64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    text.split(' ').next()?.parse().ok()
}

#[test]
fn read_waits_even_when_the_pipe_was_made_non_blocking_elsewhere() {
    let _g = Guard::new();
    // The read end's file description is shared (a descendant, or code
    // that got the fd through as_fd, may set O_NONBLOCK on it): read()
    // must still wait for data rather than fail with WouldBlock.
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let fd = child.stdout.as_ref().unwrap().as_raw_fd();
    // SAFETY: fcntl on a descriptor the child handle keeps open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    assert_eq!(
        unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) },
        0
    );
    let (tid_tx, tid_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tid_tx.send(unsafe { libc::gettid() }).unwrap();
        let got = child.read();
        (child, got)
    });
    let tid = tid_rx.recv().unwrap();
    // Write only once the reader is blocked waiting (in poll), so the data
    // cannot already be there when it first reads. A reader that gave up
    // at once has finished instead.
    let waiting = [libc::SYS_poll, libc::SYS_ppoll];
    while !reader.is_finished() && !blocked_in(tid).is_some_and(|n| waiting.contains(&n)) {
        std::thread::sleep(Duration::from_millis(1));
    }
    stdin.write_all(b"late data").unwrap();
    drop(stdin);
    let (mut child, got) = reader.join().unwrap();
    assert_eq!(got.unwrap().as_deref(), Some(&b"late data"[..]));
    assert!(child.wait().unwrap().success());
}

#[test]
fn read_stderr_gives_the_exact_bytes_then_end_of_file() {
    let _g = Guard::new();
    let mut child = pt_cmd(["eprint", "to", "stderr"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = child.read_stderr().unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, b"to stderr\n");
    assert_eq!(child.read_stderr().unwrap(), None);
    assert!(child.wait().unwrap().success());
}

#[test]
fn read_any_reads_a_pipe_that_got_descriptor_0() {
    let _g = Guard::new();
    // A process that closed its stdin (a daemon) gets fd 0 for the next
    // pipe it makes: read_any must treat it as any other descriptor.
    // (nextest runs each test in a process of its own; fd 0 is restored
    // to /dev/null at the end.)
    // SAFETY: closing our own stdin; nothing in this test process reads it.
    assert_eq!(unsafe { libc::close(0) }, 0);
    let mut child = pt_cmd(["print", "on", "fd", "zero"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let on_zero = child.stdout.as_ref().unwrap().as_raw_fd() == 0;
    let mut out = Vec::new();
    while let Some(chunk) = child.read_any().unwrap() {
        match chunk {
            procession::OutputChunk::Stdout(b) => out.extend_from_slice(&b),
            procession::OutputChunk::Stderr(b) => panic!("stderr: {b:?}"),
        }
    }
    assert!(child.wait().unwrap().success());
    drop(child);
    let null = std::fs::File::open("/dev/null").unwrap();
    assert_eq!(null.as_raw_fd(), 0, "fd 0 restored");
    std::mem::forget(null);
    assert!(on_zero, "the test did not get fd 0 for the stdout pipe");
    assert_eq!(out, b"on fd zero\n");
}

#[test]
fn write_returns_how_much_the_pipe_took() {
    let _g = Guard::new();
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .pipe_capacity(Some(4096))
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || read_to_end_bytes(&mut stdout));
    // More than the pipe holds: each write takes at least a byte, never
    // more than asked, and the parts add up to the data, in order. (On a
    // blocking pipe the kernel usually takes it all in one write(2), waiting
    // as cat drains it; a signal can cut that short.)
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (mut sent, mut writes) = (0, 0);
    while sent < data.len() {
        let n = child.write(&data[sent..]).unwrap();
        assert!(n > 0 && n <= data.len() - sent, "write took {n}");
        sent += n;
        writes += 1;
    }
    assert!(writes >= 1);
    child.close_stdin();
    assert!(reader.join().unwrap() == data);
    assert!(child.wait().unwrap().success());
}

#[test]
fn signaller_start_stop_stops_the_child_a_waiter_waits_for() {
    let _g = Guard::new();
    let mut child = pt_cmd(["ignore-term"])
        .stdout(Stdio::piped())
        .stop_timeout(Duration::from_millis(200))
        .spawn()
        .unwrap();
    assert_eq!(child.read().unwrap().as_deref(), Some(&b"ready\n"[..]));
    let signaller = child.signaller();
    // Another thread starts the stop sequence while this one waits: TERM is
    // ignored, so it ends with SIGKILL after the stop timeout.
    std::thread::spawn(move || signaller.start_stop())
        .join()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(procession::Signal::KILL));
    assert_eq!(status.ended(), procession::Ended::Requested);
}

#[test]
fn read_any_with_one_stream_waits_without_spinning_on_a_broken_stdout() {
    let _g = Guard::new();
    // Only stdout is piped; the absent stderr must not be polled as our
    // fd 1, here a pipe with no reader (poll reports it at once).
    let (out, cpu) = with_broken_stdout(|| {
        let cpu = thread_cpu();
        let mut child = Command::new("sh")
            .args(["-c", "sleep 0.3; echo done"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = child.read_any().unwrap() {
            match chunk {
                procession::OutputChunk::Stdout(b) => out.extend_from_slice(&b),
                procession::OutputChunk::Stderr(b) => panic!("stderr: {b:?}"),
            }
        }
        assert!(child.wait().unwrap().success());
        (out, thread_cpu() - cpu)
    });
    assert_eq!(out, b"done\n");
    assert!(cpu < Duration::from_millis(100), "{cpu:?} of CPU");
}

#[test]
fn waits_sleep_rather_than_spin() {
    let _g = Guard::new();
    // wait() and wait_timeout() on a child that is quiet for 300 ms (the
    // subject: an idle period) must sleep in poll on the pidfd, costing this
    // thread almost no CPU time.
    let mut child = Command::new("sleep").arg("0.3").spawn().unwrap();
    let cpu = thread_cpu();
    assert!(child.wait().unwrap().success());
    let waited = thread_cpu() - cpu;
    let mut child = Command::new("sleep").arg("100").spawn().unwrap();
    let cpu = thread_cpu();
    assert_eq!(
        child.wait_timeout(Duration::from_millis(300)).unwrap(),
        None
    );
    let timed = thread_cpu() - cpu;
    child.kill().unwrap();
    child.wait().unwrap();
    for cpu in [waited, timed] {
        assert!(cpu < Duration::from_millis(50), "{cpu:?} of CPU");
    }
}

#[test]
fn an_empty_write_takes_nothing_and_is_not_an_error() {
    let _g = Guard::new();
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(child.write(b"").unwrap(), 0);
    child.write_all(b"").unwrap();
    child.write_all(b"x").unwrap();
    child.close_stdin();
    assert_eq!(child.read().unwrap().as_deref(), Some(&b"x"[..]));
    assert!(child.wait().unwrap().success());
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Installs a do-nothing SIGUSR1 handler without SA_RESTART, so that a
/// blocked system call it interrupts fails with EINTR. (nextest runs each
/// test in a process of its own, so the handler stays in this one.)
fn install_sigusr1_handler() {
    // SAFETY: installs a handler that does nothing, without SA_RESTART.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as usize;
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

/// SIGUSR1 to thread `tid` of this process.
fn tgkill_usr1(tid: i32) {
    // SAFETY: signals a thread of this process, which has a handler for it.
    assert_eq!(
        unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR1) },
        0
    );
}

/// Runs `work` on a thread, waits until that thread is blocked in poll,
/// interrupts the poll with a handled SIGUSR1, and waits until the thread
/// is back in poll: `work` must not have ended. Returns the thread.
fn interrupt_in_poll<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    interrupt_in(&[libc::SYS_poll, libc::SYS_ppoll], work)
}

/// As [`interrupt_in_poll`], for a thread blocked in one of `syscalls`.
fn interrupt_in<T: Send + 'static>(
    syscalls: &'static [i64],
    work: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    install_sigusr1_handler();
    let (tid_tx, tid_rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tid_tx.send(unsafe { libc::gettid() }).unwrap();
        work()
    });
    let tid = tid_rx.recv().unwrap();
    let in_poll = || blocked_in(tid).is_some_and(|n| syscalls.contains(&n));
    while !in_poll() {
        assert!(!worker.is_finished(), "the work ended early");
        std::thread::sleep(Duration::from_millis(1));
    }
    tgkill_usr1(tid);
    // The work goes on: back in the call (or, had the signal come just
    // before it entered it, never out of it).
    while !in_poll() {
        assert!(!worker.is_finished(), "the signal ended the work");
        std::thread::sleep(Duration::from_millis(1));
    }
    worker
}

#[test]
fn a_signal_handled_by_the_waiting_thread_does_not_end_the_wait() {
    let _g = Guard::new();
    // A host with signal handlers: a signal that lands on the thread blocked
    // in wait_timeout interrupts its poll (EINTR, never restarted). The
    // wait must go on, not fail.
    let mut child = Command::new("sleep").arg("100").spawn().unwrap();
    let signaller = child.signaller();
    let waiter = interrupt_in_poll(move || child.wait_timeout(Duration::from_secs(30)));
    signaller.signal(procession::Signal::KILL).unwrap();
    let status = waiter.join().unwrap().unwrap().expect("a status");
    assert_eq!(status.signal(), Some(procession::Signal::KILL));
}

#[test]
fn a_signal_handled_by_a_thread_reading_a_stream_does_not_end_the_stream() {
    let _g = Guard::new();
    // As above, for the streaming driver's poll.
    let (stdin_read, stdin_write) = pipe();
    let chunks = Command::new("sh")
        .args(["-c", "read go; echo after"])
        .stdin(stdin_read)
        .stream()
        .unwrap();
    let reader = interrupt_in_poll(move || chunks.collect_string());
    std::fs::File::from(stdin_write).write_all(b"go\n").unwrap();
    assert_eq!(reader.join().unwrap().unwrap(), "after\n");
}

#[test]
fn a_redirection_file_opened_on_descriptor_0_is_not_overwritten_by_stdin() {
    let _g = Guard::new();
    // A host that closed its stdin: the stdout file procession opens for
    // the child lands on fd 0, and the child's first step puts its stdin on
    // fd 0. The file must be moved out of 0..=2 first, or cat would write
    // into its own input. (nextest runs each test in a process of its own;
    // fd 0 is restored at the end.)
    let dir = TempDir::new("fd0");
    let input = dir.join("in");
    let output = dir.join("out");
    std::fs::write(&input, "INPUT").unwrap();
    let stdin = std::fs::File::open(&input).unwrap();
    // SAFETY: closing our own stdin; nothing in this test reads it.
    assert_eq!(unsafe { libc::close(0) }, 0);
    let status = Command::new("cat")
        .stdin(stdin)
        .stdout(Stdio::file(&output))
        .status();
    let null = std::fs::File::open("/dev/null").unwrap();
    assert_eq!(null.as_raw_fd(), 0, "fd 0 restored");
    std::mem::forget(null);
    assert!(status.unwrap().success());
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "INPUT");
}

#[test]
fn a_signal_handled_by_a_thread_blocked_in_read_does_not_end_the_read() {
    let _g = Guard::new();
    // Child::read on a blocking pipe sits in read(2); a handled signal
    // makes it fail with EINTR, which must be retried, not returned.
    let mut child = Command::shell("read x; echo got $x")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let reader = interrupt_in(&[libc::SYS_read], move || {
        let chunk = child.read();
        (chunk, child)
    });
    stdin.write_all(b"hi\n").unwrap();
    drop(stdin);
    let (chunk, mut child) = reader.join().unwrap();
    assert_eq!(chunk.unwrap().unwrap(), Bytes::from("got hi\n"));
    assert!(child.wait().unwrap().success());
}

/// The thread id of the background reaper, from /proc (the new thread
/// names itself as it starts: look until it has).
fn reaper_tid() -> i32 {
    let start = Instant::now();
    loop {
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end() == "procession-reap" {
                return task.file_name().to_str().unwrap().parse().unwrap();
            }
        }
        assert!(start.elapsed() < Duration::from_secs(5), "no reaper thread");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The reaper's thread id, once it waits in epoll_wait (its idle state).
fn reaper_in_epoll_wait() -> i32 {
    let tid = reaper_tid();
    let start = Instant::now();
    while blocked_in(tid) != Some(libc::SYS_epoll_wait) {
        assert!(start.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(1));
    }
    tid
}

/// How many times thread `tid` has gone to sleep (voluntary context
/// switches), from /proc.
fn sleeps_of(tid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_idle_reaper_sleeps_until_there_is_work() {
    let _g = Guard::new();
    // No child, no deadline: the reaper's epoll_wait has no timeout, so in
    // 300 ms it does not wake at all (a 1 ms timeout would wake it ~300
    // times).
    let tid = reaper_in_epoll_wait();
    let before = sleeps_of(tid);
    std::thread::sleep(Duration::from_millis(300)); // the subject: idle time
    assert!(
        sleeps_of(tid) - before <= 2,
        "{} wake-ups",
        sleeps_of(tid) - before
    );
}

#[test]
fn a_signal_handled_by_the_reaper_thread_does_not_stop_it() {
    let _g = Guard::new();
    // A host's handled signal can land on the reaper thread, in
    // epoll_wait (EINTR). It must go on reaping dropped children.
    install_sigusr1_handler();
    let tid = reaper_in_epoll_wait();
    tgkill_usr1(tid);
    let child = Command::new("sleep").arg("100").spawn().unwrap();
    let pid = child.pid() as i32;
    drop(child); // SIGTERM, then the reaper reaps it
    let start = Instant::now();
    while stat(pid).is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "never reaped: {:?}",
            stat(pid)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

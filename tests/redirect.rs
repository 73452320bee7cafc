//! Redirections (files, append, 2>&1, 1>&2, /dev/null, closed, open files)
//! and pipes (capacity, large transfers both ways, EOF and EPIPE).

mod support;
use support::*;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use procession::{Ended, Stdio};

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn umask() -> u32 {
    // SAFETY: umask only swaps an integer; it is set back at once, and no
    // other thread of this test creates files meanwhile.
    unsafe {
        let old = libc::umask(0o022);
        libc::umask(old);
        old as u32
    }
}

/// Checks that byte `i` of `data` is `i % 251`, the `pt write` pattern.
fn assert_pattern(data: &[u8], len: usize) {
    assert_eq!(data.len(), len);
    if let Some(i) = data
        .iter()
        .enumerate()
        .position(|(i, &b)| b != (i % 251) as u8)
    {
        panic!("byte {i} is {} instead of {}", data[i], i % 251);
    }
}

fn pipe_size(fd: &impl AsRawFd) -> i32 {
    // SAFETY: F_GETPIPE_SZ only queries the pipe behind a descriptor we own.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) }
}

#[test]
fn stdout_file_truncates_an_existing_file() {
    let _g = Guard::new();
    let tmp = TempDir::new("trunc");
    let path = tmp.join("out");
    std::fs::write(&path, "previous content, much longer than the new one\n").unwrap();
    let status = pt_cmd(["print", "new"])
        .stdout(Stdio::file(&path))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
}

#[test]
fn stdout_file_is_created_with_the_given_mode() {
    let _g = Guard::new();
    let tmp = TempDir::new("mode");
    // 0o600 is within the default umask (022); check the umask anyway.
    assert_eq!(umask() & 0o600, 0, "umask {:o} hides 0o600", umask());
    let path = tmp.join("out");
    let status = pt_cmd(["print", "x"])
        .stdout(Stdio::file(&path).mode(0o600))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&path).unwrap(), b"x\n");
    assert_eq!(mode_of(&path), 0o600);
}

#[test]
fn stdout_file_default_mode_is_0666_minus_the_umask() {
    let _g = Guard::new();
    let tmp = TempDir::new("defmode");
    let path = tmp.join("out");
    pt_cmd(["print", "x"])
        .stdout(Stdio::file(&path))
        .status()
        .unwrap();
    assert_eq!(mode_of(&path), 0o666 & !umask());
    // Appending creates with the given mode too.
    let path = tmp.join("appended");
    pt_cmd(["print", "x"])
        .stdout(Stdio::append(&path).mode(0o640))
        .status()
        .unwrap();
    assert_eq!(mode_of(&path), 0o640 & !umask());
}

#[test]
fn stdout_append_appends() {
    let _g = Guard::new();
    let tmp = TempDir::new("append");
    let path = tmp.join("log");
    std::fs::write(&path, "first\n").unwrap();
    let cmd = {
        let mut c = pt_cmd(["print", "second"]);
        c.stdout(Stdio::append(&path));
        c
    };
    assert!(cmd.status().unwrap().success());
    assert!(cmd.status().unwrap().success());
    assert_eq!(std::fs::read(&path).unwrap(), b"first\nsecond\nsecond\n");
}

#[test]
fn stderr_to_file_and_append() {
    let _g = Guard::new();
    let tmp = TempDir::new("stderr");
    let path = tmp.join("err");
    pt_cmd(["eprint", "one"])
        .stderr(Stdio::file(&path))
        .status()
        .unwrap();
    pt_cmd(["eprint", "two"])
        .stderr(Stdio::append(&path))
        .status()
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"one\ntwo\n");
}

#[test]
fn stderr_to_stdout_keeps_the_write_order() {
    let _g = Guard::new();
    let mut child = pt_cmd(["interleave", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::to_stdout())
        .spawn()
        .unwrap();
    assert!(child.stderr.is_none());
    let out = read_to_end_string(child.stdout.as_mut().unwrap());
    assert!(child.wait().unwrap().success());
    let expected: String = (0..10).map(|i| format!("out {i}\nerr {i}\n")).collect();
    assert_eq!(out, expected);
}

#[test]
fn stderr_to_stdout_follows_stdout_into_a_file() {
    let _g = Guard::new();
    let tmp = TempDir::new("2to1");
    let path = tmp.join("both");
    pt_cmd(["interleave", "3"])
        .stdout(Stdio::file(&path))
        .stderr(Stdio::to_stdout())
        .status()
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "out 0\nerr 0\nout 1\nerr 1\nout 2\nerr 2\n"
    );
}

#[test]
fn stdout_to_stderr_sends_both_to_the_stderr_pipe() {
    let _g = Guard::new();
    let mut child = pt_cmd(["interleave", "3"])
        .stdout(Stdio::to_stderr())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(child.stdout.is_none());
    let err = read_to_end_string(child.stderr.as_mut().unwrap());
    assert!(child.wait().unwrap().success());
    assert_eq!(err, "out 0\nerr 0\nout 1\nerr 1\nout 2\nerr 2\n");
}

#[test]
fn separate_stdout_and_stderr_pipes() {
    let _g = Guard::new();
    let mut child = pt_cmd(["interleave", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .as_mut()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(out, "out 0\nout 1\n");
    assert_eq!(err, "err 0\nerr 1\n");
}

#[test]
fn null_stdout_swallows_output() {
    let _g = Guard::new();
    let mut child = pt_cmd(["write", "1000"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(child.stdout.is_none());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn null_stdin_reads_eof_at_once() {
    let _g = Guard::new();
    let (out, status) = output(pt_cmd(["stdin-state"]).stdin(Stdio::null()));
    assert!(status.success());
    assert_eq!(out, b"open 0\n");
}

#[test]
fn closed_stdin_is_closed_in_the_child() {
    let _g = Guard::new();
    let (out, status) = output(pt_cmd(["stdin-state"]).stdin(Stdio::closed()));
    assert!(status.success());
    assert_eq!(out, b"closed\n");
}

#[test]
fn closed_stdout_makes_writes_fail_with_ebadf() {
    let _g = Guard::new();
    // `pt write` uses raw write(2) (Rust's stdout hides EBADF) and exits 1
    // on a write error other than EPIPE.
    let mut child = pt_cmd(["write", "10"])
        .stdout(Stdio::closed())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = read_to_end_string(child.stderr.as_mut().unwrap());
    assert_eq!(child.wait().unwrap().code(), Some(1));
    assert!(err.contains("Bad file descriptor"), "{err:?}");
}

#[test]
fn stdin_from_a_file() {
    let _g = Guard::new();
    let tmp = TempDir::new("stdin");
    let path = tmp.join("in");
    std::fs::write(&path, vec![b'z'; 12345]).unwrap();
    let (out, status) = output(pt_cmd(["stdin-state"]).stdin(Stdio::file(&path)));
    assert!(status.success());
    assert_eq!(out, b"open 12345\n");
    // Through `pt echo`, the exact bytes.
    std::fs::write(&path, b"line 1\n\xff\x00line 2").unwrap();
    let (out, _) = output(pt_cmd(["echo"]).stdin(Stdio::file(&path)));
    assert_eq!(out, b"line 1\n\xff\x00line 2");
}

#[test]
fn std_file_as_stdout() {
    let _g = Guard::new();
    let tmp = TempDir::new("stdfile");
    let path = tmp.join("out");
    let file = std::fs::File::create(&path).unwrap();
    let status = pt_cmd(["print", "via", "file"])
        .stdout(file)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&path).unwrap(), b"via file\n");
}

#[test]
fn one_open_file_shared_by_two_children_of_a_command() {
    let _g = Guard::new();
    let tmp = TempDir::new("shared");
    let path = tmp.join("out");
    let mut cmd = pt_cmd(["print", "again"]);
    cmd.stdout(std::fs::File::create(&path).unwrap());
    cmd.status().unwrap();
    cmd.status().unwrap();
    drop(cmd);
    // One descriptor, one file offset: the second write follows the first.
    assert_eq!(std::fs::read(&path).unwrap(), b"again\nagain\n");
}

#[test]
fn status_closes_a_piped_stdin_at_once() {
    let _g = Guard::new();
    let tmp = TempDir::new("status");
    let path = tmp.join("out");
    let status = pt_cmd(["stdin-state"])
        .stdin(Stdio::piped())
        .stdout(Stdio::file(&path))
        .timeout(Duration::from_secs(10))
        .status()
        .unwrap();
    assert_eq!(status.ended(), Ended::OnItsOwn);
    assert!(status.success());
    assert_eq!(std::fs::read(&path).unwrap(), b"open 0\n");
}

#[test]
fn stdin_pipe_carries_5_mib_exactly_through_echo() {
    let _g = Guard::new();
    let mut child = pt_cmd(["echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let data: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut stdin = child.stdin.take().unwrap();
    let to_write = data.clone();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&to_write).unwrap();
        // Dropping `stdin` closes the pipe: EOF for the child.
    });
    let out = read_to_end_bytes(child.stdout.as_mut().unwrap());
    writer.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(out.len(), data.len());
    assert!(out == data, "the echoed bytes differ");
}

#[test]
fn stdout_pipe_carries_10_mib_exactly() {
    let _g = Guard::new();
    let len = 10 * 1024 * 1024;
    let mut child = pt_cmd(["write", &len.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = read_to_end_bytes(child.stdout.as_mut().unwrap());
    assert!(child.wait().unwrap().success());
    assert_pattern(&out, len);
}

#[test]
fn small_writes_and_small_reads_keep_every_byte() {
    let _g = Guard::new();
    let len = 100_000;
    let mut child = pt_cmd(["write", &len.to_string(), "7"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.as_mut().unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 13];
    loop {
        let n = stdout.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert!(child.wait().unwrap().success());
    assert_pattern(&out, len);
}

#[test]
fn pipes_are_1_mib_by_default() {
    let _g = Guard::new();
    let max: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let expected = if max >= procession::DEFAULT_PIPE_CAPACITY {
        1_048_576
    } else {
        max as i32
    };
    let mut child = pt_cmd(["echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(pipe_size(child.stdin.as_mut().unwrap()), expected);
    assert_eq!(pipe_size(child.stdout.as_mut().unwrap()), expected);
    assert_eq!(pipe_size(child.stderr.as_mut().unwrap()), expected);
    assert!(child.wait().unwrap().success());
}

#[test]
fn pipe_capacity_none_keeps_the_kernel_default() {
    let _g = Guard::new();
    let mut child = pt_cmd(["echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .pipe_capacity(None)
        .spawn()
        .unwrap();
    assert_eq!(pipe_size(child.stdout.as_mut().unwrap()), 65536);
    assert_eq!(pipe_size(child.stdin.as_mut().unwrap()), 65536);
    assert!(child.wait().unwrap().success());
}

#[test]
fn pipe_capacity_is_set_as_asked() {
    let _g = Guard::new();
    let mut child = pt_cmd(["echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .pipe_capacity(Some(256 * 1024))
        .spawn()
        .unwrap();
    assert_eq!(pipe_size(child.stdout.as_mut().unwrap()), 256 * 1024);
    assert!(child.wait().unwrap().success());
}

#[test]
fn pipe_capacity_is_capped_at_pipe_max_size() {
    let _g = Guard::new();
    let max: i32 = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut child = pt_cmd(["echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .pipe_capacity(Some(1 << 30))
        .spawn()
        .unwrap();
    assert_eq!(pipe_size(child.stdout.as_mut().unwrap()), max);
    assert!(child.wait().unwrap().success());
}

#[test]
fn dropping_the_stdout_pipe_gives_the_writer_epipe() {
    let _g = Guard::new();
    let mut child = pt_cmd(["write", "100000000"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(first, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    drop(stdout);
    // pt exits 3 on EPIPE (it ignores SIGPIPE).
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    assert_eq!(status.ended(), Ended::OnItsOwn);
}

#[test]
fn writing_to_a_child_that_exited_fails_with_broken_pipe() {
    let _g = Guard::new();
    let mut child = pt_cmd(["exit", "0"]).stdin(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    assert!(child.wait().unwrap().success());
    let big = vec![0u8; 4 << 20];
    let err = stdin.write_all(&big).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
}

#[test]
fn owned_fd_of_a_pipe_as_stdout_gets_eof_when_the_child_and_command_are_gone() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let _g = Guard::new();
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors that nothing else owns.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut cmd = pt_cmd(["print", "through", "my", "pipe"]);
    cmd.stdout(write_end);
    assert!(cmd.status().unwrap().success());
    // The command holds the only write end left in this process.
    drop(cmd);
    let mut out = Vec::new();
    std::fs::File::from(read_end).read_to_end(&mut out).unwrap();
    assert_eq!(out, b"through my pipe\n");
}

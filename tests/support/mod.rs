//! Test support: the helper program and the leak checks every spawning test
//! runs.
//!
//! [`Guard`] is created at the start of a test and checked when it drops at
//! the end: no child left unreaped, no stray descendant still alive (the test
//! process is made a child subreaper, so orphaned grandchildren are
//! re-parented to it and become visible), and no new open descriptor.
//! Guards serialise on a process-wide lock, so the checks also hold when
//! `cargo test` runs tests on threads of one process.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Path of the `pt` helper program (the `procession-testkit` package),
/// built on first use into the target directory of the running test, so
/// that `cargo test` / `cargo nextest run` work on a fresh clone with
/// nothing built before.
///
/// cargo builds only the binaries of the package under test before its
/// integration tests, and `pt` lives in another package; so the first test
/// that needs it runs `cargo build -p procession-testkit --bin pt` (cargo
/// decides whether it is up to date). nextest runs every test in a process
/// of its own: a lock file serialises them and a stamp holding the run id
/// (`NEXTEST_RUN_ID`) makes that one build per run, not one per test.
pub fn pt() -> PathBuf {
    static PT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PT.get_or_init(build_pt).clone()
}

/// Path of the `ptlib` helper (built with `pt`): a program using the
/// library as an application would (see `testkit/src/ptlib.rs`).
pub fn ptlib() -> PathBuf {
    pt().with_file_name("ptlib")
}

fn build_pt() -> PathBuf {
    use std::io::Write as _;
    use std::os::fd::AsRawFd;
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test binary> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile> directory");
    let path = profile_dir.join("pt");
    let lock = std::fs::File::create(profile_dir.join(".pt-build.lock")).expect("pt build lock");
    // SAFETY: flock on a descriptor we own; released when `lock` closes.
    let r = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(r, 0, "flock: {}", std::io::Error::last_os_error());
    let run =
        std::env::var("NEXTEST_RUN_ID").unwrap_or_else(|_| format!("pid {}", std::process::id()));
    let stamp = profile_dir.join(".pt-built");
    if path.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == run) {
        return path;
    }
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let target_dir = profile_dir.parent().expect("target directory");
    let status = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--package",
            "procession-testkit",
            "--bins",
        ])
        .arg("--profile")
        .arg(&profile)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::null())
        .status()
        .expect("run cargo to build the pt helper");
    assert!(status.success(), "building the pt helper failed: {status}");
    assert!(
        path.exists(),
        "{} missing after building it",
        path.display()
    );
    let mut f = std::fs::File::create(&stamp).expect("pt build stamp");
    f.write_all(run.as_bytes()).expect("write pt build stamp");
    path
}

/// Spawns `cmd` (a `pt spawn-grandchild` command) with stdout piped and
/// returns the child and the pid of the grandchild it reports.
pub fn spawn_with_grandchild(cmd: &mut procession::Command) -> (procession::Child, i32) {
    let mut child = cmd.stdout(procession::Stdio::piped()).spawn().unwrap();
    let grandchild = read_line(child.stdout.as_mut().unwrap())
        .trim()
        .parse()
        .unwrap();
    (child, grandchild)
}

/// A `procession::Command` running `pt <args>`.
pub fn pt_cmd<I, S>(args: I) -> procession::Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = procession::Command::new(pt());
    cmd.args(args);
    cmd
}

/// Runs `ptlib SUBCOMMAND` (which becomes nobody, so it needs root, as in
/// CI) and returns its stdout once it exited 0; `None` when not root.
pub fn ptlib_as_nobody(subcommand: &str) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("note: skipped: needs root (ptlib {subcommand} becomes nobody)");
        return None;
    }
    let out = std::process::Command::new(ptlib())
        .arg(subcommand)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ptlib {subcommand}: {stderr}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Leak checks around one test; see the module docs.
pub struct Guard {
    fds: BTreeMap<i32, String>,
    _serial: MutexGuard<'static, ()>,
}

impl Guard {
    pub fn new() -> Guard {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        // Its epoll and eventfd descriptors live for the whole process, as
        // do the watchdog's tables and pipe.
        assert!(procession::__test_support::start_reaper());
        assert!(procession::__test_support::watchdog_pid().is_some());
        // SAFETY: prctl with integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(r, 0, "PR_SET_CHILD_SUBREAPER");
        // A cgroup named for this pid before the test began was made by an
        // earlier process that had the same pid (pids wrap) and left it; an
        // earlier test of this process would have failed its own check. It
        // is not this test's: remove it if empty, so that the check at the
        // end judges this test alone (one still holding a process stays,
        // and fails it).
        for stale in leftover_cgroups() {
            eprintln!("removing a cgroup left by an earlier process with this pid: {stale:?}");
            let _ = std::fs::remove_dir(&stale);
        }
        Guard {
            fds: open_fds(),
            _serial: serial,
        }
    }

    /// Takes the list of open descriptors again: for a test that replaces
    /// a process-wide one on purpose (the watchdog's pipe).
    pub fn snapshot_fds(&mut self) {
        self.fds = open_fds();
    }

    /// Runs every check now and panics with what leaked.
    ///
    /// The library's own count of unreaped children is used only to know
    /// when its background work (a stop sequence after a drop) is over and
    /// it is time to look; the verdict comes from /proc alone, so a library
    /// that miscounts, or never reaps, is caught.
    pub fn check(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while procession::__test_support::unreaped_children() != 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Every direct child of this process is now either a child the
        // library spawned, which must be gone (reaped), or a descendant
        // re-parented to us, the subreaper, when its own parent died. A
        // child the library spawned leads its own process group or stays in
        // ours; a re-parented descendant is in the group of the child that
        // started it.
        // SAFETY: getpgrp takes no arguments and cannot fail.
        let own_group = unsafe { libc::getpgrp() };
        // The watchdog of a program under test that has ended (the CLI, a
        // helper using the library) is re-parented to us like any orphan.
        let spawned_here = |k: &Proc| {
            (k.pgrp == k.pid || k.pgrp == own_group) && !k.comm.starts_with("procession-wat")
        };
        let zombies: Vec<_> = children()
            .into_iter()
            .filter(|k| k.state == 'Z' && spawned_here(k))
            .collect();
        assert!(
            zombies.is_empty(),
            "children left unreaped (zombies): {zombies:?}"
        );
        // Live descendants get a short moment: a member SIGKILLed at the
        // end of a group stop may not have run its exit yet. Anything
        // alive past that is a stray, whatever it is. The watchdog of a
        // program under test that has ended gets longer (5 s): it is doing
        // its own cleanup (a kill, then removing cgroups once empty), which
        // under a full parallel test run can take more than a moment.
        let start = Instant::now();
        let allowance = |k: &&Proc| {
            if k.comm.starts_with("procession-wat") {
                Duration::from_secs(5)
            } else {
                Duration::from_millis(500)
            }
        };
        loop {
            let kids = children();
            for k in kids.iter().filter(|k| k.state == 'Z' && !spawned_here(k)) {
                // A re-parented descendant that has ended: on a real system
                // init reaps it; here that is the subreaper's (our) job.
                // SAFETY: reaping a zombie child of ours by pid.
                unsafe { libc::waitpid(k.pid, std::ptr::null_mut(), libc::WNOHANG) };
            }
            let live: Vec<_> = kids.iter().filter(|k| k.state != 'Z').collect();
            if live.is_empty() {
                break;
            }
            if live.iter().any(|k| start.elapsed() >= allowance(k)) {
                for k in &live {
                    // SAFETY: killing our own stray descendants so that the
                    // failure does not leak them into later tests.
                    unsafe { libc::kill(k.pid, libc::SIGKILL) };
                }
                panic!("stray descendants still alive: {live:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // 3. No cgroup made for a child of this process is left.
        let cgroups = leftover_cgroups();
        assert!(cgroups.is_empty(), "cgroups left behind: {cgroups:?}");
        // 4. No descriptor opened during the test is still open. The reaper
        //    drops its reference to a child (and so its pidfd) just after
        //    reaping it, so allow it a moment.
        let fd_deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let now = open_fds();
            let extra: Vec<_> = now
                .iter()
                .filter(|(fd, target)| self.fds.get(fd) != Some(target))
                .collect();
            if extra.is_empty() {
                break;
            }
            assert!(
                Instant::now() < fd_deadline,
                "descriptors leaked: {extra:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.check();
            return;
        }
        // The test failed: report nothing more, but leave nothing running
        // on the machine (what the failing code left is re-parented to us).
        // Killing a child re-parents its own children to us: repeat until
        // none is left (bounded).
        for _ in 0..100 {
            let kids = children();
            if kids.is_empty() {
                break;
            }
            for k in kids {
                // SAFETY: killing and reaping our own children by pid.
                unsafe {
                    if k.state != 'Z' {
                        libc::kill(k.pid, libc::SIGKILL);
                    }
                    libc::waitpid(k.pid, std::ptr::null_mut(), 0);
                }
            }
        }
    }
}

/// The cgroup v2 directory this process is in (mount point from
/// /proc/self/mountinfo, path from /proc/self/cgroup), if there is one.
pub fn own_cgroup_dir() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = info.lines().find_map(|l| {
        let (before, after) = l.split_once(" - ")?;
        (after.split(' ').next()? == "cgroup2")
            .then(|| before.split(' ').nth(4).map(str::to_owned))?
    })?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?.to_owned();
    Some(PathBuf::from(mount).join(rel.trim_start_matches('/')))
}

/// Cgroups named for a child of this process (`procession-<pid>-<n>`)
/// still present in this process's own cgroup.
pub fn leftover_cgroups() -> Vec<PathBuf> {
    let Some(dir) = own_cgroup_dir() else {
        return Vec::new();
    };
    let prefix = format!("procession-{}-", std::process::id());
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// This process's open descriptors and what they point at.
pub fn open_fds() -> BTreeMap<i32, String> {
    let mut out = BTreeMap::new();
    let own_fd_dir = format!("/proc/{}/fd", std::process::id());
    let dir = std::fs::read_dir("/proc/self/fd").expect("read /proc/self/fd");
    for e in dir.flatten() {
        let Some(fd) = e.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // The directory's own descriptor is usually gone by the time we
        // look; when it is not, it is not counted.
        if let Ok(target) = std::fs::read_link(e.path()) {
            let target = target.to_string_lossy().into_owned();
            if target != own_fd_dir {
                out.insert(fd, target);
            }
        }
    }
    out
}

#[derive(Debug)]
pub struct Proc {
    pub pid: i32,
    pub state: char,
    pub pgrp: i32,
    pub cmdline: String,
    /// The command name (`/proc/<pid>/comm`), which a zombie keeps.
    pub comm: String,
}

/// Direct children of this process, from /proc/*/stat.
/// This process's own owner-death watchdog (started if need be) is not
/// counted: it lives as long as the process, by design.
pub fn children() -> Vec<Proc> {
    let me = std::process::id() as i32;
    let own_watchdog = procession::__test_support::watchdog_pid().map(|p| p as i32);
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Some((state, ppid, pgrp)) = stat(pid) else {
            continue;
        };
        if ppid == me && Some(pid) != own_watchdog {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .unwrap_or_default()
                .trim_end()
                .to_owned();
            out.push(Proc {
                pid,
                state,
                pgrp,
                cmdline,
                comm,
            });
        }
    }
    out
}

/// (state, ppid, pgrp) of a process, or None if it is gone.
pub fn stat(pid: i32) -> Option<(char, i32, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

/// Whether `pid` is alive (exists and is not a zombie).
pub fn alive(pid: i32) -> bool {
    matches!(stat(pid), Some((s, _, _)) if s != 'Z' && s != 'X')
}

/// Waits until `pid` is dead (gone or zombie), up to `limit`.
pub fn wait_dead(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// Reads from `r` until `want` bytes arrived or EOF.
pub fn read_exact_or_eof(r: &mut impl std::io::Read, want: usize) -> Vec<u8> {
    let mut out = vec![0u8; want];
    let mut got = 0;
    while got < want {
        match r.read(&mut out[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    out.truncate(got);
    out
}

/// A fresh, uniquely named directory under the system temp dir, removed
/// with its contents on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "procession-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    pub fn join(&self, name: impl AsRef<std::path::Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `cmd` with stdout piped: everything it wrote there, and its status.
pub fn output(cmd: &mut procession::Command) -> (Vec<u8>, procession::ExitStatus) {
    use std::io::Read;
    let mut child = cmd
        .stdout(procession::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = Vec::new();
    child
        .stdout
        .as_mut()
        .expect("stdout pipe")
        .read_to_end(&mut out)
        .expect("read stdout");
    let status = child.wait().expect("wait");
    (out, status)
}

/// Reads one `\n`-terminated line (without buffering past it) from `r`.
pub fn read_line(r: &mut impl std::io::Read) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match r.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    String::from_utf8(line).expect("utf-8 line")
}

/// A fresh directory for one test (removed by the test).
pub fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "procession-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create a test directory");
    dir
}

/// Raises this process's soft `RLIMIT_NOFILE` to the hard limit, for tests
/// that hold a thousand children at once (the usual soft limit is 1024).
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
}

/// Bytes `pid`'s completed `write(2)`s moved, as the kernel counts them
/// (`wchar` in `/proc/PID/io`): a child's progress measured without the
/// library, for back-pressure tests.
pub fn written_by(pid: i32) -> usize {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("read /proc/PID/io");
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .expect("wchar in /proc/PID/io")
        .parse()
        .expect("wchar is a number")
}

/// Everything left on a pipe end of the child, as text.
pub fn read_to_end_string(r: &mut impl std::io::Read) -> String {
    let mut out = String::new();
    r.read_to_string(&mut out).expect("read the child's output");
    out
}

/// Everything left on a pipe end of the child, as bytes.
pub fn read_to_end_bytes(r: &mut impl std::io::Read) -> Vec<u8> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).expect("read the child's output");
    out
}

/// CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`): for
/// tests that a wait sleeps rather than spins.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime: {}", std::io::Error::last_os_error());
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `f` with this process's fd 1 replaced by a pipe that has no reader
/// (as for `host | head -1` once head has exited: poll(2) reports such a
/// descriptor as an error whatever is asked), then restores fd 1. Only for
/// tests that run in a process of their own (nextest).
pub fn with_broken_stdout<T>(f: impl FnOnce() -> T) -> T {
    use std::os::fd::AsRawFd;
    // SAFETY: plain descriptor calls on descriptors owned here; fd 1 is
    // saved and put back.
    let saved = unsafe { libc::dup(1) };
    assert!(saved >= 0, "dup: {}", std::io::Error::last_os_error());
    let (read_end, write_end) = pipe();
    drop(read_end);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::dup2(write_end.as_raw_fd(), 1) }, 1);
    drop(write_end);
    let out = f();
    // SAFETY: as above.
    unsafe {
        assert_eq!(libc::dup2(saved, 1), 1);
        libc::close(saved);
    }
    out
}

/// A pipe (`pipe2` with `O_CLOEXEC`): the read end, then the write end.
pub fn pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by no one else.
    unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    }
}

/// Spawns `pt sleep 100` so that it gets pid `pid` (free again after a
/// reap), through `/proc/sys/kernel/ns_last_pid`. `None` when that file is
/// not writable (not root) or other processes keep taking the pid.
pub fn spawn_with_pid(pid: u32) -> Option<procession::Child> {
    for _ in 0..50 {
        if std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", pid - 1)).is_err() {
            return None;
        }
        let mut child = pt_cmd(["sleep", "100"]).spawn().unwrap();
        if child.pid() == pid {
            return Some(child);
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    None
}

/// Spawns `cmd` with every stream piped and returns the error it must give
/// (piped, so that a pipe end leaked on the error path would show).
#[track_caller]
pub fn spawn_err(cmd: &mut procession::Command) -> procession::Error {
    use procession::Stdio;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect_err("spawn must fail")
}

/// The raw OS error number an error carries.
pub fn raw_os(err: &procession::Error) -> Option<i32> {
    err.os_error().and_then(|e| e.raw_os_error())
}

/// Writes `content` to `path` and gives it permission bits `mode`.
pub fn write_file(path: &std::path::Path, content: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

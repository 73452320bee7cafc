//! Small system helpers: CPU pinning, memory and descriptor counts, pipe
//! sizes, resource limits, statistics, and locating the helper programs.

use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

/// Pins the calling thread (and the children it spawns afterwards, which
/// inherit the mask) to `cpus`.
pub fn set_affinity(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        // SAFETY: `set` is a valid cpu_set_t and `c` is a small CPU number
        // (below CPU_SETSIZE).
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: pid 0 is the calling thread; `set` is valid for its size.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Every online CPU.
pub fn all_cpus() -> Vec<usize> {
    (0..online_cpus()).collect()
}

/// The number of online CPUs.
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 { n as usize } else { 1 }
}

/// Unpins the calling thread (all CPUs).
pub fn unpin() {
    let _ = set_affinity(&all_cpus());
}

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`).
pub fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            let num: String = rest.chars().filter(|c| c.is_ascii_digit()).collect();
            return num.parse().unwrap_or(0);
        }
    }
    0
}

/// The parent's resident set size in KiB.
pub fn rss_kib() -> u64 {
    status_kib("VmRSS")
}

/// Open descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count().saturating_sub(1))
}

/// `F_SETPIPE_SZ`: best effort, returns the new capacity.
pub fn set_pipe_size(fd: RawFd, bytes: usize) -> io::Result<usize> {
    // SAFETY: fcntl on a descriptor we own; F_SETPIPE_SZ takes an int.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, bytes as libc::c_int) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

/// Raises RLIMIT_NOFILE (soft and, as root, hard) to at least `want`.
pub fn raise_nofile(want: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur >= want {
        return Ok(lim.rlim_cur);
    }
    let new = libc::rlimit {
        rlim_cur: want,
        rlim_max: lim.rlim_max.max(want),
    };
    // SAFETY: `new` is a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
        // Not root: go as high as the hard limit allows.
        let capped = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &capped) } != 0 {
            return Err(io::Error::last_os_error());
        }
        return Ok(lim.rlim_max);
    }
    Ok(want)
}

/// Median, min and max of `v` (which must not be empty).
pub fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let med = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (med, s[0], s[n - 1])
}

/// The program to re-execute for a worker process: this very binary, through
/// `/proc/self/exe`, so that a rebuild of the harness during the run (the
/// helper build at start recompiles it when the sources changed after
/// `cargo run` built it) neither breaks the worker's path nor runs
/// different code in the workers than in the parent.
pub fn worker_exe() -> io::Result<PathBuf> {
    let proc_exe = PathBuf::from("/proc/self/exe");
    if proc_exe.exists() {
        Ok(proc_exe)
    } else {
        std::env::current_exe()
    }
}

/// Runs this harness again as a worker (`args`: the worker subcommand and
/// its arguments), its stderr on ours, and parses the JSON report it prints.
/// `Ok(Err(..))` when the worker itself failed.
pub fn run_worker<R: serde::de::DeserializeOwned>(
    args: &[&std::ffi::OsStr],
) -> io::Result<Result<R, String>> {
    let out = std::process::Command::new(worker_exe()?)
        .args(args)
        .env("BENCH_SKIP_BUILD", "1")
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Ok(Err(format!("worker failed: {}", out.status)));
    }
    serde_json::from_slice(&out.stdout)
        .map(Ok)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Where the helper programs live: next to this executable.
#[derive(Clone, Debug)]
pub struct Helpers {
    pub writer: PathBuf,
    pub sink: PathBuf,
    pub echo: PathBuf,
    pub lines: PathBuf,
    pub tiny_true: PathBuf,
    pub tiny_pause: PathBuf,
    pub tiny_ignterm: PathBuf,
}

impl Helpers {
    /// Builds (if needed) the Rust helpers with cargo and the static C
    /// children with gcc, into the directory of this executable.
    pub fn prepare() -> io::Result<Helpers> {
        let exe = std::env::current_exe()?;
        let dir = exe
            .parent()
            .ok_or_else(|| io::Error::other("no exe dir"))?
            .to_owned();
        let h = Helpers {
            writer: dir.join("bench-writer"),
            sink: dir.join("bench-sink"),
            echo: dir.join("bench-echo"),
            lines: dir.join("bench-lines"),
            tiny_true: dir.join("bench-tiny-true"),
            tiny_pause: dir.join("bench-tiny-pause"),
            tiny_ignterm: dir.join("bench-tiny-ignterm"),
        };
        if std::env::var_os("BENCH_SKIP_BUILD").is_none() {
            // `cargo run` builds only the harness binary: build the helper
            // binaries too (a no-op when they are up to date).
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
            let release = !cfg!(debug_assertions);
            let mut c = std::process::Command::new(cargo);
            c.args(["build", "-q", "--bins", "--manifest-path"])
                .arg(&manifest);
            if release {
                c.arg("--release");
            }
            let st = c.status()?;
            if !st.success() {
                return Err(io::Error::other("building the helper programs failed"));
            }
        }
        let c_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("c");
        for (src, out) in [
            ("tiny_true.c", &h.tiny_true),
            ("tiny_pause.c", &h.tiny_pause),
            ("tiny_ignterm.c", &h.tiny_ignterm),
        ] {
            let st = std::process::Command::new("gcc")
                .args(["-static", "-nostdlib", "-O2", "-o"])
                .arg(out)
                .arg(c_dir.join(src))
                .status()?;
            if !st.success() {
                return Err(io::Error::other(format!("gcc failed on {src}")));
            }
        }
        for p in [
            &h.writer,
            &h.sink,
            &h.echo,
            &h.lines,
            &h.tiny_true,
            &h.tiny_pause,
            &h.tiny_ignterm,
        ] {
            if !p.exists() {
                return Err(io::Error::other(format!("missing helper {}", p.display())));
            }
        }
        Ok(h)
    }
}

/// Human-readable byte size.
pub fn fmt_bytes(b: u64) -> String {
    if b >= 1 << 30 && b.is_multiple_of(1 << 30) {
        format!("{} GiB", b >> 30)
    } else if b >= 1 << 20 {
        format!("{} MiB", b >> 20)
    } else {
        format!("{} KiB", b >> 10)
    }
}

/// CPU seconds (user + system) spent by `who` (`getrusage(2)`).
fn rusage_cpu(who: libc::c_int) -> f64 {
    // SAFETY: an all-zero rusage is a valid value for getrusage to fill.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, exclusively borrowed rusage.
    unsafe { libc::getrusage(who, &mut ru) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(ru.ru_utime) + s(ru.ru_stime)
}

/// CPU seconds of the calling thread (`RUSAGE_THREAD`).
pub fn thread_cpu() -> f64 {
    rusage_cpu(libc::RUSAGE_THREAD)
}

/// CPU seconds of the children this process has waited for
/// (`RUSAGE_CHILDREN`; procession's reaper thread waits for its children,
/// and a child that waited for its own counts them too).
pub fn children_cpu() -> f64 {
    rusage_cpu(libc::RUSAGE_CHILDREN)
}

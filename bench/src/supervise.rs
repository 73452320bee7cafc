//! Scenarios 9–11: the `Supervisor` API.
//!
//! - 9 (`supervise-many`): 10,000 supervised children alive at once. Each
//!   measurement runs in a fresh worker process (`__supervise MODE N`), as
//!   in scenario 6, so that the RSS and descriptor counts start from a clean
//!   parent: per child, `Supervisor::spawn` against bare `Command::spawn`
//!   `Child`ren; then the time `Supervisor::shutdown()` takes to stop them
//!   all (the bare children: dropped, until all are reaped).
//! - 10 (`supervise-ignore-term`): `shutdown()` of 200 children that ignore
//!   SIGTERM, with `stop_timeout(200 ms)`.
//! - 11 (`supervise-manage`): a process started with `std::process`, adopted
//!   with `Supervisor::manage`, killed with SIGKILL: the time until its
//!   monitor reports the exit.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use procession::{Exit, Signal, Supervisor};
use serde::{Deserialize, Serialize};

use crate::many::{hard_nofile, spawn_all, wait_unreaped_zero};
use crate::results::{Better, Outcome, Table, Target, fmt_num};
use crate::runner::{Ctx, Variant, interleave, ioe};

/// Scenario 9's rows.
const SUPERVISED: &str = "procession Supervisor::spawn (Supervised)";
const BARE: &str = "procession Command::spawn (bare Child)";
/// Worker mode and row, in run order.
const MODES: [(&str, &str); 2] = [("supervised", SUPERVISED), ("bare", BARE)];

/// Scenario 10's row.
const SHUTDOWN: &str = "procession Supervisor::shutdown()";
/// Scenario 10: how many TERM-ignoring children, and their grace period.
const IGNORING: usize = 200;
const GRACE: Duration = Duration::from_millis(200);

/// Scenario 11's rows.
const MANAGED: &str = "procession (manage + Monitor)";
const CALIBRATION: &str = "calibration: std, the parent's own wait() (no procession)";

/// erlexec's behaviour, for comparison (not measured here).
const ERLEXEC_SHUTDOWN: &str = "erlexec 2.3.4: its shutdown waits about 10 s whenever a child \
    existed, however quickly the children obey.";
const ERLEXEC_MANAGE: &str = "erlexec 2.3.4: a managed pid's exit is noticed by a poll every \
    5 s, so it is reported up to 5 s late.";

/// What one `__supervise` worker reports.
#[derive(Debug, Serialize, Deserialize)]
pub struct SupReport {
    pub mode: String,
    pub n: usize,
    pub spawn_s: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub fds_before: usize,
    pub fds_after: usize,
    /// Supervised: the `shutdown()` call. Bare: from the first drop until
    /// every child is reaped.
    pub stop_s: f64,
}

/// The worker: `n` children of `prog` (stdout to /dev/null), supervised or
/// bare; RSS and descriptors before and after; then stop them all.
pub fn worker(mode: &str, n: usize, prog: &Path) -> io::Result<()> {
    crate::util::raise_nofile((n + 1000) as u64)?;
    // The reaper's descriptors and thread, and an empty supervisor, exist
    // in every real program before the first child: count them in "before".
    procession::__test_support::start_reaper();
    let sup = Supervisor::new();
    let mut cmd = procession::Command::new(prog);
    cmd.stdout(procession::Stdio::null());
    let rss_before = crate::util::rss_kib();
    let fds_before = crate::util::open_fds();
    let t = Instant::now();
    let (spawn_s, rss_after, fds_after, stop_s);
    match mode {
        "supervised" => {
            let mut v = Vec::with_capacity(n);
            spawn_all(
                n,
                &mut v,
                || sup.spawn(&cmd).map_err(ioe),
                |c| {
                    let _ = c.signal(Signal::KILL);
                },
            )?;
            spawn_s = t.elapsed().as_secs_f64();
            rss_after = crate::util::rss_kib();
            fds_after = crate::util::open_fds();
            let t = Instant::now();
            sup.shutdown();
            stop_s = t.elapsed().as_secs_f64();
            // Checked after the clock: all gone, each ended by the SIGTERM.
            if !sup.children().is_empty() {
                return Err(io::Error::other(format!(
                    "{} children still listed after shutdown()",
                    sup.children().len()
                )));
            }
            let by_term = v
                .iter()
                .filter(|c| {
                    c.try_wait()
                        .and_then(|e| e.status())
                        .and_then(|s| s.signal())
                        == Some(Signal::TERM)
                })
                .count();
            if by_term != n {
                return Err(io::Error::other(format!(
                    "only {by_term} of {n} children ended by SIGTERM"
                )));
            }
        }
        "bare" => {
            let mut v = Vec::with_capacity(n);
            spawn_all(
                n,
                &mut v,
                || cmd.spawn().map_err(ioe),
                |c| {
                    let _ = c.kill();
                    let _ = c.wait();
                },
            )?;
            spawn_s = t.elapsed().as_secs_f64();
            rss_after = crate::util::rss_kib();
            fds_after = crate::util::open_fds();
            let t = Instant::now();
            drop(v);
            wait_unreaped_zero(Duration::from_secs(60))?;
            stop_s = t.elapsed().as_secs_f64();
        }
        other => return Err(io::Error::other(format!("unknown mode {other}"))),
    }
    let r = SupReport {
        mode: mode.into(),
        n,
        spawn_s,
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        fds_before,
        fds_after,
        stop_s,
    };
    println!("{}", serde_json::to_string(&r).map_err(ioe)?);
    Ok(())
}

/// `kernel.pid_max` (children need pids as well as descriptors).
fn pid_max() -> usize {
    std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(32768)
}

/// Scenario 9.
pub fn run_many(ctx: &Ctx) -> io::Result<Outcome> {
    let wanted: usize = if ctx.quick { 2_000 } else { 10_000 };
    // One descriptor per child (its pidfd), with stdout to /dev/null; the
    // rest of the limit is headroom for the worker's own.
    let _ = crate::util::raise_nofile((wanted + 1000) as u64);
    let hard = hard_nofile();
    let pids = pid_max();
    let n = wanted
        .min(hard.saturating_sub(1000) as usize)
        .min(pids.saturating_sub(4096));
    let mut out = Outcome::default();
    if n < wanted {
        let msg = format!(
            "**N = {n}, not {wanted}:** the hard RLIMIT_NOFILE here is {hard} and \
             `kernel.pid_max` is {pids}; each child needs a descriptor (its pidfd) and a pid, \
             with headroom left for the worker and the rest of the machine."
        );
        eprintln!("  [supervise-many] {msg}");
        out.text.push(msg);
    }
    let mut reports: Vec<Vec<SupReport>> = MODES.iter().map(|_| Vec::new()).collect();
    let mut failed: Vec<Option<String>> = vec![None; MODES.len()];
    for rep in 0..ctx.reps {
        for (mi, (mode, _)) in MODES.iter().enumerate() {
            if failed[mi].is_some() {
                continue;
            }
            let n_arg = n.to_string();
            let args = [
                "__supervise".as_ref(),
                mode.as_ref(),
                n_arg.as_ref(),
                ctx.helpers.tiny_pause.as_os_str(),
            ];
            let r: SupReport = match crate::util::run_worker(&args)? {
                Ok(r) => r,
                Err(why) => {
                    eprintln!("  [supervise-many] {mode}: {why}");
                    failed[mi] = Some(why);
                    continue;
                }
            };
            eprintln!(
                "  [supervise-many] rep {}/{} {:<10} spawn {:.2} s, RSS {:+} KiB ({:.3} KiB/child), fds {:+} ({:.2}/child), stop {:.3} s",
                rep + 1,
                ctx.reps,
                mode,
                r.spawn_s,
                r.rss_after_kib as i64 - r.rss_before_kib as i64,
                (r.rss_after_kib as f64 - r.rss_before_kib as f64) / n as f64,
                r.fds_after as i64 - r.fds_before as i64,
                (r.fds_after as f64 - r.fds_before as f64) / n as f64,
                r.stop_s
            );
            reports[mi].push(r);
        }
    }
    type Metric = (&'static str, String, &'static str, fn(&SupReport) -> f64);
    let metrics: [Metric; 4] = [
        (
            "supervise-rss",
            "parent RSS per child".into(),
            "KiB per child",
            |r| (r.rss_after_kib as f64 - r.rss_before_kib as f64) / r.n as f64,
        ),
        (
            "supervise-fds",
            "parent descriptors per child".into(),
            "fds per child",
            |r| (r.fds_after as f64 - r.fds_before as f64) / r.n as f64,
        ),
        (
            "supervise-spawn",
            "time to spawn all children".into(),
            "s",
            |r| r.spawn_s,
        ),
        (
            "supervise-stop",
            "time to stop all (`shutdown()` until it returns; bare: drop every `Child`, until all \
             are reaped)"
                .into(),
            "s",
            |r| r.stop_s,
        ),
    ];
    for (id, what, unit, f) in metrics {
        let mut t = Table::new(
            id,
            9,
            &format!("9. {n} children alive at once, stdout to /dev/null: {what}"),
            unit,
            Better::Lower,
        );
        t.reference = SUPERVISED.into();
        for (mi, (_, row)) in MODES.iter().enumerate() {
            if let (Some(e), true) = (&failed[mi], reports[mi].is_empty()) {
                t.push_na(row, e);
                continue;
            }
            t.push(row, reports[mi].iter().map(f).collect());
        }
        let mut t = t.finish();
        t.set_vs(SUPERVISED, &[("bare Child", BARE)]);
        out.tables.push(t);
    }
    out.text.push(format!(
        "Both rows spawn the static `bench-tiny-pause` with stdout to `/dev/null` (a supervised \
         child may not have a pipe, which would have no reader), and keep every handle. RSS and \
         descriptors are measured after all children are spawned, against the fresh worker \
         process before the first spawn (procession's reaper and an empty `Supervisor` already \
         exist), as in scenario 6. Stopping: `Supervisor::shutdown()` starts every child's stop \
         sequence (SIGTERM through its pidfd) and returns when all are gone (the worker then \
         checks that each ended by SIGTERM); the bare children are dropped (each drop sends \
         SIGTERM and hands the child to the background reaper) and the clock runs until the \
         reaper has reaped all. {ERLEXEC_SHUTDOWN}"
    ));
    let table = |id: &str| out.tables.iter().find(|t| t.id == id);
    let rss = table("supervise-rss");
    let (sup_rss, bare_rss) = (
        rss.and_then(|t| t.median(SUPERVISED)),
        rss.and_then(|t| t.median(BARE)),
    );
    let mut rss_target = Target::check(
        9,
        "parent RSS per child: Supervisor::spawn ≤ 1.5× a bare Child (Supervised ÷ Child)",
        sup_rss.zip(bare_rss).map(|(s, b)| s / b),
        1.5,
        true,
    );
    if let (Some(s), Some(b)) = (sup_rss, bare_rss) {
        rss_target = rss_target.with_measured(format!(
            "{:.2}× ({} vs {} KiB per child)",
            s / b,
            fmt_num(s),
            fmt_num(b)
        ));
    }
    let stop = table("supervise-stop").and_then(|t| t.median(SUPERVISED));
    let mut stop_target = Target::check(
        9,
        &format!(
            "Supervisor::shutdown() of all {n} TERM-obeying children < 1 s (erlexec 2.3.4: about \
             10 s)"
        ),
        stop,
        1.0,
        true,
    );
    if let Some(s) = stop {
        let range = table("supervise-stop")
            .and_then(|t| t.range(SUPERVISED))
            .map_or(String::new(), |(lo, hi)| {
                format!(" (min {}, max {})", fmt_num(lo), fmt_num(hi))
            });
        stop_target = stop_target.with_measured(format!("{} s{range}", fmt_num(s)));
    }
    out.targets.push(rss_target);
    out.targets.push(stop_target);
    Ok(out)
}

/// Reads `n` bytes from `r` (one per child), failing after `limit`.
fn read_ready(r: &mut os_pipe::PipeReader, n: usize, limit: Duration) -> io::Result<()> {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 256];
    let mut got = 0;
    while got < n {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::other(format!(
                "only {got} of {n} children said they ignore SIGTERM within {limit:?}"
            )));
        }
        let mut pfd = libc::pollfd {
            fd: r.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        // SAFETY: `pfd` is one valid pollfd for a descriptor we own.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if rc == 0 {
            continue;
        }
        let want = (n - got).min(buf.len());
        let k = r.read(&mut buf[..want])?;
        if k == 0 {
            return Err(io::Error::other(format!(
                "the ready pipe closed after {got} of {n} bytes"
            )));
        }
        got += k;
    }
    Ok(())
}

/// One measurement of scenario 10: `n` children of `prog` (which ignores
/// SIGTERM, then writes a byte to stdout), then the time `shutdown()` takes,
/// in ms.
fn shutdown_ignoring(prog: &Path, n: usize) -> io::Result<f64> {
    let (mut ready_r, ready_w) = os_pipe::pipe()?;
    let sup = Supervisor::new();
    let mut cmd = procession::Command::new(prog);
    cmd.stdout(OwnedFd::from(ready_w)).stop_timeout(GRACE);
    let mut monitors = Vec::with_capacity(n);
    for i in 0..n {
        match sup.spawn(&cmd) {
            Ok(c) => monitors.push(c.monitor()),
            Err(e) => {
                sup.shutdown();
                return Err(io::Error::other(format!(
                    "spawning child {} of {n}: {e}",
                    i + 1
                )));
            }
        }
    }
    // Our copy of the pipe's write end: only the children hold it now.
    drop(cmd);
    // Every child has set SIGTERM to SIG_IGN once its byte has arrived.
    if let Err(e) = read_ready(&mut ready_r, n, Duration::from_secs(30)) {
        sup.shutdown();
        return Err(e);
    }
    let t = Instant::now();
    sup.shutdown();
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let killed = monitors
        .iter()
        .filter(|m| {
            m.try_recv()
                .and_then(|e| e.status())
                .and_then(|s| s.signal())
                == Some(Signal::KILL)
        })
        .count();
    if killed != n {
        return Err(io::Error::other(format!(
            "only {killed} of {n} children ended by SIGKILL after shutdown()"
        )));
    }
    Ok(ms)
}

/// Scenario 10.
pub fn run_ignore_term(ctx: &Ctx) -> io::Result<Outcome> {
    let n = IGNORING;
    let grace_ms = GRACE.as_millis();
    let mut table = Table::new(
        "supervise-ignore-term",
        10,
        &format!(
            "10. Supervisor::shutdown() of {n} children that ignore SIGTERM, stop_timeout \
             {grace_ms} ms, unpinned"
        ),
        "ms",
        Better::Lower,
    );
    table.reference = SHUTDOWN.into();
    let prog = &ctx.helpers.tiny_ignterm;
    // Warm-up, not recorded.
    shutdown_ignoring(prog, n)?;
    let mut vs = vec![Variant::new(SHUTDOWN, || shutdown_ignoring(prog, n))];
    interleave(&mut table, ctx.reps, &mut vs);
    drop(vs);
    let table = table.finish();
    let mut out = Outcome::default();
    let med = table.median(SHUTDOWN);
    out.text.push(format!(
        "Each repetition spawns {n} supervised `bench-tiny-ignterm` children (static, no libc: \
         it sets SIGTERM to SIG_IGN, then writes one byte to its stdout, a pipe shared by all \
         {n}, then waits in `pause`) with `stop_timeout({grace_ms} ms)`, reads the {n} bytes so \
         that every child has ignored SIGTERM before the clock starts, then times \
         `shutdown()`: SIGTERM to all at once, SIGKILL {grace_ms} ms later, until all are gone \
         (each is then checked to have ended by SIGKILL). The grace period is the floor{}. \
         {ERLEXEC_SHUTDOWN}",
        med.map_or(String::new(), |m| format!(
            "; this run's median is {} ms above it",
            fmt_num(m - grace_ms as f64)
        ))
    ));
    let mut target = Target::check(
        10,
        &format!(
            "Supervisor::shutdown() of {n} TERM-ignoring children, stop_timeout {grace_ms} ms, \
             < 1 s (erlexec 2.3.4: about 10 s)"
        ),
        med.map(|m| m / 1e3),
        1.0,
        true,
    );
    if let (Some(m), Some((lo, hi))) = (med, table.range(SHUTDOWN)) {
        target = target.with_measured(format!(
            "{} ms (min {}, max {})",
            fmt_num(m),
            fmt_num(lo),
            fmt_num(hi)
        ));
    }
    out.targets.push(target);
    out.tables.push(table);
    Ok(out)
}

/// `sleep 100`, started by std: the external process to adopt.
fn sleeper() -> io::Result<std::process::Child> {
    std::process::Command::new("sleep")
        .arg("100")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// SIGKILL to `child`, which this process started and has not reaped (so
/// the pid names it).
fn sigkill(child: &std::process::Child) -> io::Result<()> {
    // SAFETY: kill(2) with a pid of our own unreaped child and a valid
    // signal number.
    if unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One sample of scenario 11: µs from just before the SIGKILL to the
/// adopted process's monitor reporting the exit.
fn managed_kill(sup: &Supervisor) -> io::Result<f64> {
    let mut child = sleeper()?;
    let monitor = match sup.manage(child.id()) {
        Ok(m) => m.monitor(),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ioe(e));
        }
    };
    let t = Instant::now();
    let killed = sigkill(&child);
    // `recv()` with a limit: a missed exit fails the run instead of
    // hanging it.
    let exit = monitor.recv_timeout(Duration::from_secs(10));
    let us = t.elapsed().as_secs_f64() * 1e6;
    // std started it, so std reaps it.
    if killed.is_err() {
        let _ = child.kill();
    }
    child.wait()?;
    killed?;
    match exit {
        Some(Exit::Unknown { .. }) => Ok(us),
        Some(other) => Err(io::Error::other(format!(
            "an adopted process reported {other:?}, not Exit::Unknown"
        ))),
        None => Err(io::Error::other("the exit was not reported within 10 s")),
    }
}

/// The calibration: the same kill, timed until the parent's own `wait()`
/// returns.
fn own_wait_kill() -> io::Result<f64> {
    let mut child = sleeper()?;
    let t = Instant::now();
    if let Err(e) = sigkill(&child) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    child.wait()?;
    Ok(t.elapsed().as_secs_f64() * 1e6)
}

/// Scenario 11.
pub fn run_manage(ctx: &Ctx) -> io::Result<Outcome> {
    let per_rep = if ctx.quick { 20 } else { 40 };
    let samples = per_rep * ctx.reps;
    let sup = Supervisor::new();
    let mut table = Table::new(
        "supervise-manage",
        11,
        &format!(
            "11. Adopted pid: from just before kill(pid, SIGKILL) to the exit reported \
             ({samples} kills, {per_rep} per repetition × {}), unpinned",
            ctx.reps
        ),
        "µs",
        Better::Lower,
    );
    table.reference = MANAGED.into();
    let mut vs = vec![
        Variant::new(MANAGED, || managed_kill(&sup)),
        Variant::new(CALIBRATION, own_wait_kill),
    ];
    // Warm-up, not recorded.
    for v in &mut vs {
        for _ in 0..5 {
            (v.run)()?;
        }
    }
    interleave(&mut table, samples, &mut vs);
    drop(vs);
    let table = table.finish();
    let mut out = Outcome::default();
    out.text.push(format!(
        "Each sample starts `sleep 100` with `std::process::Command`, adopts it with \
         `Supervisor::manage(pid)` (procession watches it through a pidfd), takes a \
         `monitor()`, then times from just before `kill(pid, SIGKILL)` until \
         `Monitor::recv_timeout` returns its `Exit::Unknown` (`recv` with a 10 s limit, so that a \
         missed exit fails the run instead of hanging it); std, its parent, reaps it afterwards \
         with `wait()`. The calibration row is the floor without procession: the same kill, \
         timed until the parent's own `wait()` returns. Samples of the two rows alternate; \
         min and max are single kills. {ERLEXEC_MANAGE}"
    ));
    let mut target = Target::check(
        11,
        &format!(
            "adopted pid: every exit reported ≤ 10 ms after SIGKILL (slowest of {samples}; \
             erlexec 2.3.4: by a poll every 5 s)"
        ),
        table.range(MANAGED).map(|(_, hi)| hi / 1e3),
        10.0,
        true,
    );
    if let (Some(m), Some((lo, hi))) = (table.median(MANAGED), table.range(MANAGED)) {
        target = target.with_measured(format!(
            "max {} µs (median {} µs, min {} µs)",
            fmt_num(hi),
            fmt_num(m),
            fmt_num(lo)
        ));
    }
    out.targets.push(target);
    out.tables.push(table);
    Ok(out)
}

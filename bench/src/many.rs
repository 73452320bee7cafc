//! Scenario 6: 10,000 concurrent children with stdout piped. Each
//! measurement runs in a fresh worker process (`__many LIB N`), so that the
//! RSS and descriptor counts start from a clean parent.
//!
//! The child is a static, libc-free program waiting in `pause(2)`; any
//! terminating signal ends it. Stopping: procession drops the handles (its
//! stop sequence sends SIGTERM; the background reaper reaps) and the clock
//! runs until `__test_support::unreaped_children() == 0`; the peers send
//! SIGKILL to every child, then wait for each.

use std::io;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::results::{Better, Outcome, Table, Target};
use crate::runner::{Ctx, ioe, tokio_rt};

pub const LIBS: [&str; 5] = ["procession", "std", "tokio", "duct", "subprocess"];

#[derive(Debug, Serialize, Deserialize)]
pub struct ManyReport {
    pub lib: String,
    pub n: usize,
    pub spawn_s: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub fds_before: usize,
    pub fds_after: usize,
    /// Time the caller is blocked in the stop call(s).
    pub stop_call_s: f64,
    /// Time until every child is reaped.
    pub stop_reap_s: f64,
}

/// Waits until procession has reaped every child it started, up to `limit`.
pub fn wait_unreaped_zero(limit: Duration) -> io::Result<()> {
    let t = Instant::now();
    while procession::__test_support::unreaped_children() > 0 {
        if t.elapsed() > limit {
            return Err(io::Error::other(format!(
                "{} children still unreaped after {limit:?}",
                procession::__test_support::unreaped_children()
            )));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(())
}

/// Spawns `n` children into `v`. On a failure, kills (and where possible
/// reaps) those already started before returning the error, so that a
/// failing worker leaves no child behind.
pub fn spawn_all<T>(
    n: usize,
    v: &mut Vec<T>,
    mut spawn: impl FnMut() -> io::Result<T>,
    kill: impl Fn(&mut T),
) -> io::Result<()> {
    for i in 0..n {
        match spawn() {
            Ok(c) => v.push(c),
            Err(e) => {
                for c in v.iter_mut() {
                    kill(c);
                }
                v.clear();
                return Err(io::Error::new(
                    e.kind(),
                    format!("spawning child {} of {n}: {e}", i + 1),
                ));
            }
        }
    }
    Ok(())
}

/// The worker.
pub fn worker(lib: &str, n: usize, prog: &Path) -> io::Result<()> {
    crate::util::raise_nofile((n * 2 + 1000) as u64)?;
    if lib == "procession" {
        // Its descriptors (epoll, eventfd) and thread exist in every real
        // program after the first dropped child: count them in "before".
        procession::__test_support::start_reaper();
    }
    let rt = tokio_rt()?;
    let rss_before = crate::util::rss_kib();
    let fds_before = crate::util::open_fds();
    let t = Instant::now();
    let (rss_after, fds_after, stop_call, stop_reap);
    let spawn_s;
    match lib {
        "procession" => {
            let mut cmd = procession::Command::new(prog);
            cmd.stdout(procession::Stdio::piped());
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
            stop_call = t.elapsed().as_secs_f64();
            wait_unreaped_zero(Duration::from_secs(60))?;
            stop_reap = t.elapsed().as_secs_f64();
        }
        "std" => {
            let mut cmd = std::process::Command::new(prog);
            cmd.stdout(Stdio::piped());
            let mut v = Vec::with_capacity(n);
            spawn_all(
                n,
                &mut v,
                || cmd.spawn(),
                |c| {
                    let _ = c.kill();
                    let _ = c.wait();
                },
            )?;
            spawn_s = t.elapsed().as_secs_f64();
            rss_after = crate::util::rss_kib();
            fds_after = crate::util::open_fds();
            let t = Instant::now();
            for c in &mut v {
                c.kill()?;
            }
            stop_call = t.elapsed().as_secs_f64();
            for c in &mut v {
                c.wait()?;
            }
            drop(v);
            stop_reap = t.elapsed().as_secs_f64();
        }
        "tokio" => {
            let r = rt.block_on(async {
                let mut cmd = tokio::process::Command::new(prog);
                cmd.stdout(Stdio::piped());
                let mut v = Vec::with_capacity(n);
                // (killed children become init's zombies when the worker exits)
                spawn_all(
                    n,
                    &mut v,
                    || cmd.spawn(),
                    |c| {
                        let _ = c.start_kill();
                    },
                )?;
                let spawn_s = t.elapsed().as_secs_f64();
                let rss_after = crate::util::rss_kib();
                let fds_after = crate::util::open_fds();
                let t = Instant::now();
                for c in &mut v {
                    c.start_kill()?;
                }
                let stop_call = t.elapsed().as_secs_f64();
                for c in &mut v {
                    c.wait().await?;
                }
                drop(v);
                let stop_reap = t.elapsed().as_secs_f64();
                Ok::<_, io::Error>((spawn_s, rss_after, fds_after, stop_call, stop_reap))
            })?;
            (spawn_s, rss_after, fds_after, stop_call, stop_reap) = r;
        }
        "duct" => {
            let e = duct::cmd(prog, Vec::<String>::new()).unchecked();
            let mut v = Vec::with_capacity(n);
            spawn_all(
                n,
                &mut v,
                || e.reader(),
                |c| {
                    let _ = c.kill();
                },
            )?;
            spawn_s = t.elapsed().as_secs_f64();
            rss_after = crate::util::rss_kib();
            fds_after = crate::util::open_fds();
            let t = Instant::now();
            for c in &v {
                c.kill()?;
            }
            stop_call = t.elapsed().as_secs_f64();
            // ReaderHandle has no blocking wait: poll try_wait.
            for c in &v {
                while c.try_wait()?.is_none() {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            drop(v);
            stop_reap = t.elapsed().as_secs_f64();
        }
        "subprocess" => {
            let mut v = Vec::with_capacity(n);
            spawn_all(
                n,
                &mut v,
                || {
                    subprocess::Exec::cmd(prog)
                        .stdout(subprocess::Redirection::Pipe)
                        .start()
                },
                |j| {
                    let _ = j.kill();
                    let _ = j.wait();
                },
            )?;
            spawn_s = t.elapsed().as_secs_f64();
            rss_after = crate::util::rss_kib();
            fds_after = crate::util::open_fds();
            let t = Instant::now();
            for j in &v {
                j.kill()?;
            }
            stop_call = t.elapsed().as_secs_f64();
            for j in &v {
                j.wait()?;
            }
            drop(v);
            stop_reap = t.elapsed().as_secs_f64();
        }
        other => return Err(io::Error::other(format!("unknown lib {other}"))),
    }
    let r = ManyReport {
        lib: lib.into(),
        n,
        spawn_s,
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        fds_before,
        fds_after,
        stop_call_s: stop_call,
        stop_reap_s: stop_reap,
    };
    println!("{}", serde_json::to_string(&r).map_err(ioe)?);
    Ok(())
}

/// The hard RLIMIT_NOFILE (raising it needs CAP_SYS_RESOURCE).
pub fn hard_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return u64::MAX;
    }
    lim.rlim_max
}

pub fn run(ctx: &Ctx) -> io::Result<Outcome> {
    let wanted: usize = if ctx.quick { 2_000 } else { 10_000 };
    // procession and tokio hold 2 descriptors per child (pipe + pidfd). Try
    // to raise the hard limit (root with CAP_SYS_RESOURCE); if that is not
    // allowed, run the largest count that fits for every library, so that
    // all of them are compared at the same N.
    let _ = crate::util::raise_nofile((wanted * 2 + 1000) as u64);
    let hard = hard_nofile();
    let n = wanted.min((hard.saturating_sub(200) / 2) as usize);
    let mut limit_note = None;
    if n < wanted {
        let msg = format!(
            "**N = {n}, not {wanted}:** the hard RLIMIT_NOFILE here is {hard} and cannot be raised \
             (`setrlimit` needs CAP_SYS_RESOURCE, which this sandbox does not grant). procession and \
             tokio hold 2 descriptors per piped child (the pipe and the pidfd), so {wanted} children \
             need {} descriptors plus the parent's own; {n} is the most that fits for every library.",
            wanted * 2
        );
        eprintln!("  [many] {msg}");
        limit_note = Some(msg);
    }
    let mut reports: Vec<Vec<ManyReport>> = LIBS.iter().map(|_| Vec::new()).collect();
    let mut failed: Vec<Option<String>> = vec![None; LIBS.len()];
    for rep in 0..ctx.reps {
        for (li, lib) in LIBS.iter().enumerate() {
            if failed[li].is_some() {
                continue;
            }
            let n_arg = n.to_string();
            let args = [
                "__many".as_ref(),
                lib.as_ref(),
                n_arg.as_ref(),
                ctx.helpers.tiny_pause.as_os_str(),
            ];
            let r: ManyReport = match crate::util::run_worker(&args)? {
                Ok(r) => r,
                Err(why) => {
                    eprintln!("  [many] {lib}: {why}");
                    failed[li] = Some(why);
                    continue;
                }
            };
            eprintln!(
                "  [many] rep {}/{} {:<11} spawn {:.2} s, RSS {:+} KiB ({:.2} KiB/child), fds {:+} ({:.2}/child), stop call {:.3} s, all reaped {:.3} s",
                rep + 1,
                ctx.reps,
                lib,
                r.spawn_s,
                r.rss_after_kib as i64 - r.rss_before_kib as i64,
                (r.rss_after_kib as f64 - r.rss_before_kib as f64) / n as f64,
                r.fds_after as i64 - r.fds_before as i64,
                (r.fds_after as f64 - r.fds_before as f64) / n as f64,
                r.stop_call_s,
                r.stop_reap_s
            );
            reports[li].push(r);
        }
    }
    type Metric = (
        &'static str,
        &'static str,
        &'static str,
        fn(&ManyReport) -> f64,
    );
    let metrics: [Metric; 5] = [
        ("many-spawn", "time to spawn all children", "s", |r| {
            r.spawn_s
        }),
        ("many-rss", "parent RSS per child", "KiB per child", |r| {
            (r.rss_after_kib as f64 - r.rss_before_kib as f64) / r.n as f64
        }),
        (
            "many-fds",
            "parent descriptors per child",
            "fds per child",
            |r| (r.fds_after as f64 - r.fds_before as f64) / r.n as f64,
        ),
        (
            "many-stop-call",
            "time the caller is blocked stopping all (drop / kill calls)",
            "s",
            |r| r.stop_call_s,
        ),
        ("many-stop-reap", "time to stop and reap all", "s", |r| {
            r.stop_reap_s
        }),
    ];
    let mut out = Outcome::default();
    if let Some(m) = limit_note {
        out.text.push(m);
    }
    for (id, what, unit, f) in metrics {
        let mut t = Table::new(
            id,
            6,
            &format!("6. {n} concurrent children, stdout piped: {what}"),
            unit,
            Better::Lower,
        );
        for (li, lib) in LIBS.iter().enumerate() {
            if let (Some(e), true) = (&failed[li], reports[li].is_empty()) {
                t.push_na(lib, e);
                continue;
            }
            t.push(lib, reports[li].iter().map(f).collect());
        }
        out.tables.push(t.finish());
    }
    out.text.push(
        "Stopping: procession drops every `Child` (each drop sends SIGTERM through the pidfd and \
         hands the child to the background reaper) and the clock runs until the reaper has reaped \
         all; std, tokio, duct and subprocess send SIGKILL to every child (`kill`/`start_kill`), then \
         wait for each. RSS and descriptors are measured after all children are spawned, against \
         the fresh worker process before the first spawn (procession's reaper already started)."
            .into(),
    );
    let med = |id: &str| {
        out.tables
            .iter()
            .find(|t| t.id == id)
            .and_then(|t| t.median("procession"))
    };
    let targets = vec![
        Target::check(
            6,
            "parent RSS per child ≤ 1.5 KiB",
            med("many-rss"),
            1.5,
            true,
        ),
        Target::check(
            6,
            "time to stop and reap all ≤ 1 s",
            med("many-stop-reap"),
            1.0,
            true,
        ),
        Target {
            scenario: 6,
            target: "descriptors per child (reported; no target)".into(),
            measured: med("many-fds").map_or("n/a".into(), crate::results::fmt_num),
            met: None,
            ceiling: None,
        },
    ];
    out.targets.extend(targets);
    Ok(out)
}

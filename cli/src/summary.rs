//! `--summary`: what the program used, printed to stderr once it has ended
//! (what `/usr/bin/time -v` users look for). One `name: value` line each,
//! after a `procession: summary` line, so that scripts can pick values out.

use std::sync::atomic::Ordering;
use std::time::Duration;

use procession::ExitStatus;

use crate::relay::{Counts, Plan, Route};

/// The summary's lines, without the trailing newline of the last one.
pub fn render(
    status: &ExitStatus,
    timed_out: bool,
    wall: Duration,
    plan: &Plan,
    counts: &Counts,
) -> String {
    let mut lines = vec!["procession: summary".to_string()];
    let mut line = |name: &str, value: String| lines.push(format!("  {name}: {value}"));
    let ended = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!(
            "killed by signal {} ({}){}",
            sig.as_raw(),
            sig.name()
                .map_or_else(|| sig.as_raw().to_string(), str::to_owned),
            if status.core_dumped() {
                ", core dumped"
            } else {
                ""
            }
        ),
        (None, None) => "unknown".into(),
    };
    line(
        "exit",
        if timed_out {
            format!("timed out, then {ended}")
        } else {
            ended
        },
    );
    line("wall time", secs(wall));
    match status.usage() {
        Some(u) => {
            line("user time", secs(u.user_time()));
            line("system time", secs(u.system_time()));
            line("cpu time", secs(u.cpu_time()));
            line("peak memory", format!("{} KiB", u.max_rss() / 1024));
        }
        None => line("cpu time", "not reported".into()),
    }
    if let Some(c) = status.cgroup_usage() {
        line("cgroup cpu time", secs(c.user_time + c.system_time));
        if let Some(peak) = c.memory_peak {
            line("cgroup peak memory", format!("{} KiB", peak / 1024));
        }
        if let Some(peak) = c.pids_peak {
            line("cgroup peak processes", peak.to_string());
        }
    }
    for (name, route, counter) in [
        ("stdin", plan.stdin, &counts.stdin),
        ("stdout", plan.stdout, &counts.stdout),
        ("stderr", plan.stderr, &counts.stderr),
    ] {
        line(
            &format!("{name} bytes"),
            match route {
                Route::Relayed => counter.load(Ordering::Relaxed).to_string(),
                Route::Direct(why) => format!("not counted ({why})"),
            },
        );
    }
    lines.join("\n")
}

/// Seconds with millisecond precision: `1.234 s`.
fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

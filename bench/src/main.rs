//! procession's benchmark harness: procession against std::process,
//! tokio::process, duct and subprocess. See `bench/README.md`.
//!
//! ```text
//! cargo run --release -p procession-bench -- all            # full run, writes BENCHMARKS.md
//! cargo run --release -p procession-bench -- --quick all    # smaller sizes, 3 repetitions
//! cargo run --release -p procession-bench -- throughput-stdout roundtrip
//! cargo run --release -p procession-bench -- --merge supervise-manage  # into BENCHMARKS.md
//! ```

mod early_drop;
mod exec_port;
mod latency;
mod lines;
mod many;
mod pipeline;
mod rawspawn;
mod results;
mod runner;
mod slow;
mod spawn;
mod supervise;
mod svg;
mod throughput;
mod util;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use results::Outcome;
use runner::Ctx;
use throughput::Placement;

const SCENARIOS: [(&str, &str); 15] = [
    (
        "throughput-stdout",
        "1. stdout throughput, 4 GiB from a writer child",
    ),
    (
        "throughput-stdin",
        "2. stdin throughput, 4 GiB into a sink child",
    ),
    ("roundtrip", "3. round-trip latency through an echo child"),
    (
        "spawn-rate",
        "4. spawn + wait rate, sequential and 2 in flight",
    ),
    ("spawn-memory", "5. spawn cost as the parent's memory grows"),
    (
        "many-children",
        "6. 10,000 concurrent children with stdout piped",
    ),
    (
        "slow-consumer",
        "7. slow consumer: RSS while reading 1 chunk/ms",
    ),
    (
        "early-drop",
        "8. stream early-drop: time until the consumer continues",
    ),
    (
        "supervise-many",
        "9. 10,000 supervised children: memory per child and shutdown()",
    ),
    (
        "supervise-ignore-term",
        "10. shutdown() of 200 children that ignore SIGTERM",
    ),
    (
        "supervise-manage",
        "11. adopted pid: time until a SIGKILL is reported",
    ),
    (
        "line-framing",
        "12. line framing: 1 GiB of 80-byte lines, framed against unframed and std",
    ),
    ("pipeline", "13. three-stage pipeline, 4 GiB child to child"),
    (
        "forward",
        "14. forwarding 4 GiB of a child's stdout into a file and a TCP socket",
    ),
    (
        "exec-port",
        "15. exec-port (erlexec's port program): relay, 900 children, shutdown",
    ),
];

const USAGE: &str = "usage: procession-bench [--quick] [--reps N] [--placements U,X,S] [--write-md | --merge] [all | SCENARIO...]

Scenarios:
  throughput-stdout  throughput-stdin  roundtrip  spawn-rate
  spawn-memory  many-children  slow-consumer  early-drop
  supervise-many  supervise-ignore-term  supervise-manage  line-framing
  pipeline  forward

`all` (the default) writes BENCHMARKS.md, bench/results/latest.json and
bench/results/*.svg at the repository root. A subset, or --quick, writes
bench/results/partial.{json,md} instead (unless --write-md, which writes
BENCHMARKS.md with only the scenarios run). --merge measures the scenarios
given and puts their results into bench/results/latest.json in place of
the stored ones, keeping every other scenario's, then rewrites
BENCHMARKS.md and the charts from it (not with --quick).";

struct Args {
    quick: bool,
    reps: Option<usize>,
    placements: Vec<Placement>,
    write_md: bool,
    merge: bool,
    scenarios: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        quick: false,
        reps: None,
        placements: vec![Placement::U, Placement::X],
        write_md: false,
        merge: false,
        scenarios: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--write-md" => a.write_md = true,
            "--merge" => a.merge = true,
            "--reps" => {
                a.reps = Some(
                    it.next()
                        .and_then(|s| s.parse().ok())
                        .filter(|&n: &usize| n > 0)
                        .ok_or("--reps needs a positive number")?,
                )
            }
            "--placements" => {
                let v = it.next().ok_or("--placements needs a list")?;
                a.placements = v
                    .split(',')
                    .map(|p| match p {
                        "U" => Ok(Placement::U),
                        "X" => Ok(Placement::X),
                        "S" => Ok(Placement::S),
                        _ => Err(format!("unknown placement {p}")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            "all" => a
                .scenarios
                .extend(SCENARIOS.iter().map(|s| s.0.to_string())),
            s if SCENARIOS.iter().any(|x| x.0 == s) => a.scenarios.push(s.into()),
            s => return Err(format!("unknown argument {s}\n\n{USAGE}")),
        }
    }
    if a.scenarios.is_empty() {
        a.scenarios
            .extend(SCENARIOS.iter().map(|s| s.0.to_string()));
    }
    a.scenarios.dedup();
    if a.merge && a.quick {
        return Err("--merge records reference numbers: it cannot be combined with --quick".into());
    }
    if a.merge && a.write_md {
        return Err("--merge and --write-md are exclusive".into());
    }
    Ok(a)
}

/// Internal worker processes (fresh parents for scenarios 5, 6, 7 and 9).
fn worker(args: &[String]) -> io::Result<()> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match args[0].as_str() {
        "__spawnmem" => spawn::mem_worker(
            arg(1).parse().map_err(runner::ioe)?,
            arg(2).parse().map_err(runner::ioe)?,
            arg(3).parse().map_err(runner::ioe)?,
            Path::new(&arg(4)),
        ),
        "__many" => many::worker(
            &arg(1),
            arg(2).parse().map_err(runner::ioe)?,
            Path::new(&arg(3)),
        ),
        "__slow" => slow::worker(&arg(1), arg(2).parse().map_err(runner::ioe)?),
        "__supervise" => supervise::worker(
            &arg(1),
            arg(2).parse().map_err(runner::ioe)?,
            Path::new(&arg(3)),
        ),
        // For profiling (strace -c -f, perf): one stdout transfer.
        "__stdout" => throughput::stdout_worker(
            &arg(1),
            arg(2).parse().map_err(runner::ioe)?,
            Path::new(&arg(3)),
        ),
        "__stdin" => throughput::stdin_worker(
            &arg(1),
            arg(2).parse().map_err(runner::ioe)?,
            Path::new(&arg(3)),
        ),
        // For profiling (perf): one transfer of lines, consumed as one row
        // of scenario 12 does.
        "__lines" => lines::worker(
            &arg(1),
            arg(2).parse().map_err(runner::ioe)?,
            Path::new(&arg(3)),
        ),
        // For profiling (strace -c -f, perf): N sequential spawn+wait.
        "__spawnloop" => spawn::loop_worker(
            &arg(1),
            arg(2).parse().map_err(runner::ioe)?,
            Path::new(&arg(3)),
        ),
        other => Err(io::Error::other(format!("unknown worker {other}"))),
    }
}

#[derive(Serialize, Deserialize)]
struct Machine {
    kernel: String,
    cpu: String,
    vcpus: usize,
    memory_gib: f64,
    rustc: String,
    pipe_max_size: String,
    /// RLIMIT_NOFILE (soft / hard) when the harness started.
    #[serde(default)]
    rlimit_nofile: String,
    thp: String,
    crates: Vec<(String, String)>,
    /// The procession source measured: commit, and whether the work tree
    /// had changes.
    source: String,
}

fn read_trim(p: &str) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// RLIMIT_NOFILE as "soft / hard".
fn rlimit_nofile() -> String {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return "?".into();
    }
    let fmt = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            "unlimited".to_string()
        } else {
            v.to_string()
        }
    };
    format!("{} soft / {} hard", fmt(lim.rlim_cur), fmt(lim.rlim_max))
}

fn machine(root: &Path, rlimit_nofile: String) -> Machine {
    let cpuinfo = read_trim("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_string();
    let mem_kib: f64 = read_trim("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    // Versions of the contenders, from the lock file.
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let mut crates = Vec::new();
    for name in ["procession", "tokio", "duct", "subprocess", "libc"] {
        let needle = format!("name = \"{name}\"\nversion = \"");
        if let Some(i) = lock.find(&needle) {
            let rest = &lock[i + needle.len()..];
            if let Some(end) = rest.find('"') {
                crates.push((name.to_string(), rest[..end].to_string()));
            }
        }
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = !git(&["status", "--porcelain", "--", "src", "Cargo.toml"]).is_empty();
    let source = format!(
        "commit {commit}{}",
        if dirty {
            " + uncommitted changes in src/"
        } else {
            ""
        }
    );
    Machine {
        source,
        kernel: read_trim("/proc/sys/kernel/osrelease"),
        cpu,
        vcpus: util::online_cpus(),
        memory_gib: mem_kib / (1024.0 * 1024.0),
        rustc,
        pipe_max_size: read_trim("/proc/sys/fs/pipe-max-size"),
        rlimit_nofile,
        thp: read_trim("/sys/kernel/mm/transparent_hugepage/enabled"),
        crates,
    }
}

#[derive(Serialize, Deserialize)]
struct Report {
    command: String,
    date: String,
    elapsed_s: f64,
    quick: bool,
    reps: usize,
    machine: Machine,
    outcomes: Vec<(String, Outcome)>,
    /// Later runs (`--merge`) whose scenarios replaced this run's, oldest
    /// first. The fields above describe the run that measured the rest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    merged: Vec<MergedRun>,
}

/// A run merged into a stored report with `--merge`.
#[derive(Serialize, Deserialize)]
struct MergedRun {
    command: String,
    date: String,
    elapsed_s: f64,
    reps: usize,
    /// The procession source measured (as [`Machine::source`]).
    source: String,
    /// The scenarios it provides in the report.
    scenarios: Vec<String>,
}

/// A scenario's number (its place in [`SCENARIOS`], from 1).
fn scenario_number(name: &str) -> String {
    SCENARIOS
        .iter()
        .position(|s| s.0 == name)
        .map_or_else(|| name.to_string(), |i| (i + 1).to_string())
}

fn date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn charts(outcomes: &[(String, Outcome)], dir: &Path) -> io::Result<Vec<(String, String)>> {
    let mut made = Vec::new();
    std::fs::create_dir_all(dir)?;
    let tables: Vec<&results::Table> = outcomes.iter().flat_map(|o| o.1.tables.iter()).collect();
    let find = |prefix: &str| -> Vec<&results::Table> {
        tables
            .iter()
            .copied()
            .filter(|t| t.id.starts_with(prefix))
            .collect()
    };
    let mut write = |file: &str, caption: &str, svg: String| -> io::Result<()> {
        if svg.is_empty() {
            return Ok(());
        }
        std::fs::write(dir.join(file), svg)?;
        made.push((file.to_string(), caption.to_string()));
        Ok(())
    };
    for (prefix, file, caption) in [
        (
            "stdout-",
            "throughput-stdout.svg",
            "Scenario 1: stdout throughput per library (GiB/s, median with min–max)",
        ),
        (
            "stdin-",
            "throughput-stdin.svg",
            "Scenario 2: stdin throughput per library (GiB/s, median with min–max)",
        ),
        (
            "lines-",
            "line-framing.svg",
            "Scenario 12: 1 GiB of 80-byte lines, unframed, framed and std (GiB/s, median with min–max)",
        ),
        (
            "spawn-static",
            "spawn-static.svg",
            "Scenario 4: spawn + wait rate with the static child (spawns/s)",
        ),
        (
            "roundtrip-",
            "roundtrip.svg",
            "Scenario 3: round-trip latency (µs per trip, lower is better)",
        ),
    ] {
        let ts = find(prefix);
        if !ts.is_empty() {
            let unit = ts[0].unit.clone();
            write(file, caption, svg::bar_chart(caption, &unit, &ts))?;
        }
    }
    for (_, o) in outcomes {
        for (id, series) in &o.series {
            match id.as_str() {
                "slow-rss" => write(
                    "slow-consumer-rss.svg",
                    "Scenario 7: parent RSS over time while reading `cat /dev/urandom` at 1 chunk/ms",
                    svg::line_chart(
                        "Slow consumer: parent RSS over time (first repetition)",
                        "seconds since spawn",
                        "VmRSS (MiB)",
                        series,
                        false,
                        false,
                    ),
                )?,
                "spawn-memory" => write(
                    "spawn-memory.svg",
                    "Scenario 5: spawn() cost against the parent's touched memory (log scales)",
                    svg::line_chart(
                        "spawn() cost vs parent memory (static child)",
                        "parent touched memory (MiB, log scale)",
                        "µs per spawn() (log scale)",
                        series,
                        true,
                        true,
                    ),
                )?,
                _ => {}
            }
        }
    }
    Ok(made)
}

fn markdown(report: &Report, chart_files: &[(String, String)], chart_rel: &str) -> String {
    let m = &report.machine;
    let mut s = String::new();
    s.push_str("# Benchmarks\n\n");
    s.push_str(&format!(
        "Generated by the benchmark harness (`bench/`) on {} in {:.1} min{}. Do not edit by hand: \
         re-run the command{} below. All numbers of a table come from one run, with the variants \
         interleaved (A B C … A B C …).\n\n",
        report.date,
        report.elapsed_s / 60.0,
        if report.quick {
            " — **quick mode: reduced sizes and repetitions, not the reference numbers**"
        } else {
            ""
        },
        if report.merged.is_empty() { "" } else { "s" }
    ));
    s.push_str("## How to run\n\n```sh\n");
    s.push_str(&report.command);
    s.push_str("\n```\n\n");
    if !report.merged.is_empty() {
        s.push_str(
            "Then measured again and merged in (`--merge`: the scenarios named replace the \
             stored ones in `bench/results/latest.json`, every other scenario is kept from the \
             run above):\n\n",
        );
        for m in &report.merged {
            let numbers: Vec<String> = m.scenarios.iter().map(|n| scenario_number(n)).collect();
            s.push_str(&format!(
                "- scenario{} {} on {} in {:.1} min, {} repetitions, procession {}:\n\n  ```sh\n  {}\n  ```\n\n",
                if numbers.len() == 1 { "" } else { "s" },
                numbers.join(", "),
                m.date,
                m.elapsed_s / 60.0,
                m.reps,
                m.source,
                m.command
            ));
        }
    }
    s.push_str(
        "It builds the harness and its helper children in release mode (gcc builds the static \
         children), runs every scenario for procession and each peer, and writes this file, \
         `bench/results/latest.json` (every sample) and `bench/results/*.svg`. One scenario: \
         `cargo run --release -p procession-bench -- throughput-stdout`; fast iteration: \
         `-- --quick all`; measure some scenarios again and keep the others' stored results: \
         `-- --merge SCENARIO...`. See `bench/README.md`.\n\n",
    );
    s.push_str("## Machine\n\n| item | value |\n|---|---|\n");
    s.push_str(&format!("| kernel | `{}` |\n", m.kernel));
    s.push_str(&format!("| CPU | {} × {} vCPU |\n", m.cpu, m.vcpus));
    s.push_str(&format!("| memory | {:.1} GiB |\n", m.memory_gib));
    s.push_str(&format!("| toolchain | {} |\n", m.rustc));
    s.push_str(&format!("| `fs.pipe-max-size` | {} |\n", m.pipe_max_size));
    if !m.rlimit_nofile.is_empty() {
        s.push_str(&format!(
            "| `RLIMIT_NOFILE` (at start) | {} |\n",
            m.rlimit_nofile
        ));
    }
    s.push_str(&format!("| transparent huge pages | `{}` |\n", m.thp));
    let crates: Vec<String> = m.crates.iter().map(|(n, v)| format!("{n} {v}")).collect();
    s.push_str(&format!("| crates | {} |\n", crates.join(", ")));
    s.push_str(&format!("| procession measured | {} |\n", m.source));
    s.push_str(&format!(
        "| repetitions | {} per variant |\n\n",
        report.reps
    ));
    // The cross-vCPU wakeup cost in this run, from the round-trip tables.
    let rt = |id: &str| {
        report
            .outcomes
            .iter()
            .flat_map(|o| o.1.tables.iter())
            .find(|t| t.id == id)
            .and_then(|t| t.median("std (blocking)"))
    };
    let wake = match (rt("roundtrip-S"), rt("roundtrip-X")) {
        (Some(s1), Some(x)) => format!(
            " In this run a 32-byte round trip with std took {s1:.1} µs on one vCPU and {x:.1} µs \
             across two, i.e. about {:.1} µs per cross-vCPU wakeup.",
            (x - s1) / 2.0
        ),
        _ => String::new(),
    };
    s.push_str(&format!(
        "Placement: **U** = unpinned; **X** = parent on vCPU 0, child on vCPU 1; **S** = parent \
         and child on vCPU 0. Pinning uses `sched_setaffinity` in the parent and, through \
         `BENCH_CPU`, in the helper child.{wake}\n\n"
    ));
    s.push_str(
        "## Targets\n\nEach target of the issue, from this run. For a target not met, the last \
         column gives the ceiling measured in the same run (the ceiling lines under the \
         scenario's tables explain them).\n\n\
         | scenario | target | measured (procession ÷ peer, or absolute) | met | measured ceiling (targets not met) |\n\
         |---|---|---|---|---|\n",
    );
    let (mut met_n, mut not_n) = (0, 0);
    for (_, o) in &report.outcomes {
        for t in &o.targets {
            let met = match t.met {
                Some(true) => {
                    met_n += 1;
                    "✅ yes"
                }
                Some(false) => {
                    not_n += 1;
                    "❌ no"
                }
                None => "— n/a",
            };
            let ceiling = match (t.met, &t.ceiling) {
                (Some(false), Some(c)) => c.as_str(),
                _ => "",
            };
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                t.scenario, t.target, t.measured, met, ceiling
            ));
        }
    }
    s.push_str(&format!("\n{met_n} met, {not_n} not met.\n\n"));
    if !chart_files.is_empty() {
        s.push_str("## Charts\n\n");
        for (file, caption) in chart_files {
            s.push_str(&format!(
                "**{caption}**\n\n![{caption}]({chart_rel}/{file})\n\n"
            ));
        }
    }
    s.push_str("## Results\n\n");
    for (name, o) in &report.outcomes {
        let title = SCENARIOS
            .iter()
            .find(|x| x.0 == name)
            .map_or(name.as_str(), |x| x.1);
        s.push_str(&format!("### {title}\n\n"));
        if let Some(m) = report.merged.iter().find(|m| m.scenarios.contains(name)) {
            s.push_str(&format!(
                "*Measured by the run merged in on {} ({} repetitions, procession {}; see How to \
                 run).*\n\n",
                m.date, m.reps, m.source
            ));
        }
        for t in &o.tables {
            s.push_str(&t.markdown());
            s.push('\n');
        }
        for txt in &o.text {
            s.push_str(txt);
            s.push_str("\n\n");
        }
    }
    s
}

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().is_some_and(|a| a.starts_with("__")) {
        if let Err(e) = worker(&raw) {
            eprintln!("worker {}: {e}", raw[0]);
            std::process::exit(1);
        }
        return;
    }
    if raw.first().is_some_and(|a| a == "--render") {
        // Re-render BENCHMARKS.md and the charts from bench/results/latest.json
        // (after a change to the report's layout), without measuring again.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("root");
        let r = std::fs::read(root.join("bench/results/latest.json"))
            .map_err(runner::ioe)
            .and_then(|b| serde_json::from_slice::<Report>(&b).map_err(runner::ioe))
            .and_then(|mut rep| {
                refresh_derived_text(&mut rep);
                write_report(root, &rep, true)
            });
        if let Err(e) = r {
            eprintln!("procession-bench --render: {e}");
            std::process::exit(1);
        }
        return;
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args, raw) {
        eprintln!("procession-bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args, raw: Vec<String>) -> io::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; use `cargo run --release -p procession-bench`");
    }
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_owned();
    let started = Instant::now();
    // Before any scenario raises the soft limit (scenario 6).
    let nofile = rlimit_nofile();
    let helpers = util::Helpers::prepare()?;
    util::unpin();
    // Start procession's reaper now, unpinned, so the thread does not inherit
    // a pinned mask from whichever scenario first needs it.
    procession::__test_support::start_reaper();
    let ctx = Ctx {
        quick: args.quick,
        reps: args.reps.unwrap_or(if args.quick { 3 } else { 5 }),
        helpers,
    };
    let mut outcomes: Vec<(String, Outcome)> = Vec::new();
    for sc in &args.scenarios {
        eprintln!("== {sc}");
        let t = Instant::now();
        let o = match sc.as_str() {
            "throughput-stdout" => throughput::run(&ctx, false, &args.placements),
            "throughput-stdin" => throughput::run(&ctx, true, &args.placements),
            "roundtrip" => latency::run(&ctx),
            "spawn-rate" => spawn::run_rate(&ctx),
            "spawn-memory" => spawn::run_mem(&ctx),
            "many-children" => many::run(&ctx),
            "slow-consumer" => slow::run(&ctx),
            "early-drop" => early_drop::run(&ctx),
            "supervise-many" => supervise::run_many(&ctx),
            "supervise-ignore-term" => supervise::run_ignore_term(&ctx),
            "supervise-manage" => supervise::run_manage(&ctx),
            "line-framing" => lines::run(&ctx, &args.placements),
            "pipeline" => pipeline::run_pipeline(&ctx),
            "forward" => pipeline::run_forward(&ctx),
            "exec-port" => exec_port::run(&ctx),
            _ => unreachable!(),
        };
        util::unpin();
        match o {
            Ok(o) => {
                eprintln!("== {sc} done in {:.1} s", t.elapsed().as_secs_f64());
                for t in &o.tables {
                    eprintln!("\n{}", t.markdown());
                }
                outcomes.push((sc.clone(), o));
            }
            Err(e) => {
                eprintln!("== {sc} FAILED: {e}");
                let mut o = Outcome::default();
                o.text
                    .push(format!("**This scenario failed in this run:** {e}"));
                outcomes.push((sc.clone(), o));
            }
        }
    }
    let all = args.scenarios.len() == SCENARIOS.len();
    let full = all && !args.quick;
    let mut command = String::from("cargo run --release -p procession-bench --");
    if raw.is_empty() {
        command.push_str(" all");
    }
    for a in &raw {
        command.push(' ');
        command.push_str(a);
    }
    let report = Report {
        command,
        date: date(),
        elapsed_s: started.elapsed().as_secs_f64(),
        quick: args.quick,
        reps: ctx.reps,
        machine: machine(&root, nofile),
        outcomes,
        merged: Vec::new(),
    };
    if args.merge {
        return merge_report(&root, report);
    }
    write_report(&root, &report, full || args.write_md)
}

/// `--merge`: puts the scenarios of `run` into the stored report
/// (`bench/results/latest.json`) in place of the stored ones, keeps every
/// other scenario as stored, records the run, and rewrites BENCHMARKS.md,
/// latest.json and the charts from the result.
fn merge_report(root: &Path, run: Report) -> io::Result<()> {
    let path = root.join("bench").join("results").join("latest.json");
    let bytes = std::fs::read(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("--merge needs bench/results/latest.json from a full run: {e}"),
        )
    })?;
    let mut base: Report = serde_json::from_slice(&bytes).map_err(runner::ioe)?;
    if base.quick {
        return Err(io::Error::other(
            "--merge: bench/results/latest.json is from a quick run",
        ));
    }
    let position = |name: &str| {
        SCENARIOS
            .iter()
            .position(|s| s.0 == name)
            .unwrap_or(SCENARIOS.len())
    };
    let mut names: Vec<String> = run.outcomes.iter().map(|(n, _)| n.clone()).collect();
    names.sort_by_key(|n| position(n));
    // An earlier merged run no longer provides the scenarios measured again.
    for m in &mut base.merged {
        m.scenarios.retain(|s| !names.contains(s));
    }
    base.merged.retain(|m| !m.scenarios.is_empty());
    base.merged.push(MergedRun {
        command: run.command,
        date: run.date,
        elapsed_s: run.elapsed_s,
        reps: run.reps,
        source: run.machine.source,
        scenarios: names,
    });
    for (name, o) in run.outcomes {
        match base.outcomes.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = o,
            None => base.outcomes.push((name, o)),
        }
    }
    // In the order of SCENARIOS (a stable sort: unknown names stay last).
    base.outcomes.sort_by_key(|(n, _)| position(n));
    write_report(root, &base, true)
}

/// Re-derives, from the stored numbers, the texts whose wording the harness
/// computes (so that `--render` picks up a change of wording): the
/// ceiling text of the "≥ 0.95× the raw loop" targets, the scenario-4 gap
/// note, the note on `clone3`, the note on what owner-death cleanup and
/// cgroup mode cost, the ceiling text of the owner-death targets and those
/// of the line-framing targets.
fn refresh_derived_text(report: &mut Report) {
    for (name, o) in &mut report.outcomes {
        if name == "line-framing" {
            for target in &mut o.targets {
                let Some((tag, rest)) = target
                    .target
                    .strip_prefix('[')
                    .and_then(|t| t.split_once(']'))
                    .map(|(tag, rest)| (tag.to_string(), rest.to_string()))
                else {
                    continue;
                };
                let id = format!("lines-{tag}");
                let Some(table) = o.tables.iter().find(|t| t.id == id) else {
                    continue;
                };
                if rest.contains("the unframed stream()") {
                    target.ceiling = lines::framing_ceiling(table);
                } else if rest.contains("std BufRead::lines") {
                    target.ceiling = lines::std_ceiling(table);
                }
            }
        }
        if name == "throughput-stdout" || name == "throughput-stdin" {
            let prefix = name.trim_start_matches("throughput-");
            for target in &mut o.targets {
                let Some(tag) = target
                    .target
                    .strip_prefix('[')
                    .and_then(|t| t.split_once(']'))
                    .filter(|(_, rest)| rest.contains("raw std loop"))
                    .map(|(tag, _)| tag.to_string())
                else {
                    continue;
                };
                let id = format!("{prefix}-{tag}");
                if let Some(table) = o.tables.iter().find(|t| t.id == id) {
                    target.ceiling = throughput::raw_loop_ceiling(table);
                }
            }
        }
        if name != "spawn-rate" {
            continue;
        }
        o.text.retain(|t| !t.starts_with(spawn::FEATURE_NOTE_START));
        o.text.extend(spawn::feature_note(&o.tables));
        for target in &mut o.targets {
            let Some(tag) = target
                .target
                .strip_prefix('[')
                .and_then(|t| t.split_once("] "))
                .filter(|(_, rest)| *rest == spawn::OWNER_DEATH_TARGET)
                .map(|(tag, _)| tag.to_string())
            else {
                continue;
            };
            // "static, C=1" is table spawn-static-c1.
            let id = format!("spawn-{}", tag.replace(", C=", "-c"));
            if let Some(table) = o.tables.iter().find(|t| t.id == id) {
                target.ceiling = spawn::owner_death_detail(table);
            }
        }
        let note = o
            .tables
            .iter()
            .find(|t| t.id == "spawn-static-c1")
            .and_then(spawn::gap_note);
        let clone3_start = &spawn::CLONE3_NOTE[..40];
        o.text
            .retain(|t| !t.starts_with(spawn::GAP_NOTE_START) && !t.starts_with(clone3_start));
        if let Some(note) = note {
            // After the table's own ceiling line, as in a measured run.
            let at = o
                .text
                .iter()
                .position(|t| t.starts_with("[static, C=1]"))
                .map_or(0, |i| i + 1);
            o.text.insert(at, note);
            o.text.insert(at + 1, spawn::CLONE3_NOTE.to_string());
        }
    }
}

/// Writes the report: BENCHMARKS.md + latest.json + charts (`main`), or the
/// partial files.
fn write_report(root: &Path, report: &Report, main: bool) -> io::Result<()> {
    let outcomes = &report.outcomes;
    let results_dir = root.join("bench").join("results");
    std::fs::create_dir_all(&results_dir)?;
    let json = serde_json::to_string_pretty(report).map_err(runner::ioe)?;
    if main {
        let chart_files = charts(outcomes, &results_dir)?;
        let md = markdown(report, &chart_files, "bench/results");
        std::fs::write(root.join("BENCHMARKS.md"), &md)?;
        std::fs::write(results_dir.join("latest.json"), json)?;
        println!("{md}");
        eprintln!(
            "wrote BENCHMARKS.md, bench/results/latest.json and {} charts",
            chart_files.len()
        );
    } else {
        let partial = results_dir.join("partial");
        let chart_files = charts(outcomes, &partial)?;
        let md = markdown(report, &chart_files, "partial");
        std::fs::write(results_dir.join("partial.md"), &md)?;
        std::fs::write(results_dir.join("partial.json"), json)?;
        println!("{md}");
        eprintln!("wrote bench/results/partial.md and partial.json (BENCHMARKS.md untouched)");
    }
    Ok(())
}

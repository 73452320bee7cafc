//! Scenarios 1 and 2: stdout and stdin throughput through a pipe.
//!
//! The clock runs from just before the spawn to after the child is reaped.
//! Children: `bench-writer N 65536` (stdout) and `bench-sink` (stdin). The
//! parent moves data in 64 KiB chunks (exile's chunk size) everywhere.
//!
//! The async rows run procession's tokio API on the same current-thread
//! runtime as the tokio rows: `stream_async()` consumed with
//! `StreamExt::next` (stdout), and `input_stream(..)` fed by a `futures`
//! stream of the same 64 KiB `Bytes` chunks (stdin).

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use futures_util::StreamExt;
use procession::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::results::{Better, Outcome, Table, Target};
use crate::runner::{Ctx, Variant, interleave, ioe, tokio_rt};
use crate::util::{all_cpus, fmt_bytes, set_affinity, set_pipe_size, unpin};

const CHUNK: usize = 64 * 1024;
const BIG_PIPE: usize = 1 << 20;

/// The async rows and the tokio rows they are compared with.
const ASYNC_STDOUT: &str = "procession async (stream_async)";
const ASYNC_STDIN: &str = "procession async (input_stream)";
const TOKIO_DEFAULT: &str = "tokio (default 64 KiB pipe)";
const TOKIO_BIG: &str = "tokio, 1 MiB pipe";

/// How parent and child are placed on the 2 vCPUs.
#[derive(Clone, Copy, Debug)]
pub enum Placement {
    /// Unpinned: the scheduler decides.
    U,
    /// Parent on vCPU 0, child on vCPU 1 (the cross-vCPU regime).
    X,
    /// Both on vCPU 0.
    S,
}

impl Placement {
    pub fn label(self) -> &'static str {
        match self {
            Placement::U => "unpinned",
            Placement::X => "parent vCPU 0, child vCPU 1",
            Placement::S => "parent and child on vCPU 0",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Placement::U => "U",
            Placement::X => "X",
            Placement::S => "S",
        }
    }

    /// Pins the parent; returns the CPU the child must pin itself to.
    pub fn apply(self) -> Option<usize> {
        match self {
            Placement::U => {
                unpin();
                None
            }
            Placement::X => {
                let _ = set_affinity(&[0]);
                Some(1.min(all_cpus().len() - 1))
            }
            Placement::S => {
                let _ = set_affinity(&[0]);
                None
            }
        }
    }
}

fn gibps(bytes: u64, t: Instant) -> f64 {
    bytes as f64 / (1u64 << 30) as f64 / t.elapsed().as_secs_f64()
}

fn drain(mut r: impl Read) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn check(got: u64, want: u64) -> io::Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "moved {got} bytes, expected {want}"
        )))
    }
}

fn std_cmd(prog: &Path, args: &[String], cpu: Option<usize>) -> std::process::Command {
    let mut c = std::process::Command::new(prog);
    c.args(args);
    if let Some(cpu) = cpu {
        c.env("BENCH_CPU", cpu.to_string());
    }
    c
}

fn tokio_cmd(prog: &Path, args: &[String], cpu: Option<usize>) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(prog);
    c.args(args);
    if let Some(cpu) = cpu {
        c.env("BENCH_CPU", cpu.to_string());
    }
    c
}

fn duct_expr(prog: &Path, args: &[String], cpu: Option<usize>) -> duct::Expression {
    let mut e = duct::cmd(prog, args);
    if let Some(cpu) = cpu {
        e = e.env("BENCH_CPU", cpu.to_string());
    }
    e
}

fn subprocess_exec(prog: &Path, args: &[String], cpu: Option<usize>) -> subprocess::Exec {
    let mut e = subprocess::Exec::cmd(prog).args(args);
    if let Some(cpu) = cpu {
        e = e.env("BENCH_CPU", cpu.to_string());
    }
    e
}

fn procession_cmd(prog: &Path, args: &[String], cpu: Option<usize>) -> procession::Command {
    let mut c = procession::Command::new(prog);
    c.args(args);
    if let Some(cpu) = cpu {
        c.env("BENCH_CPU", cpu.to_string());
    }
    c
}

/// The variants reading `bytes` from a writer child.
fn stdout_variants<'a>(
    w: &'a Path,
    bytes: u64,
    cpu: Option<usize>,
    rt: &'a tokio::runtime::Runtime,
) -> Vec<Variant<'a>> {
    let args = vec![bytes.to_string(), CHUNK.to_string()];
    let a = args.clone();
    let procession = Variant::new("procession", move || {
        let t = Instant::now();
        let mut total = 0u64;
        for chunk in procession_cmd(w, &a, cpu).stream().map_err(ioe)? {
            total += chunk.map_err(ioe)?.len() as u64;
        }
        check(total, bytes)?;
        Ok(gibps(bytes, t))
    });
    let std_raw = |name: &str, pipe: Option<usize>| {
        let a = args.clone();
        Variant::new(name, move || {
            let t = Instant::now();
            let mut child = std_cmd(w, &a, cpu).stdout(Stdio::piped()).spawn()?;
            let out = child.stdout.take().expect("piped");
            if let Some(p) = pipe {
                set_pipe_size(out.as_raw_fd(), p)?;
            }
            let total = drain(out)?;
            child.wait()?;
            check(total, bytes)?;
            Ok(gibps(bytes, t))
        })
    };
    let tokio_v = |name: &str, pipe: Option<usize>| {
        let a = args.clone();
        Variant::new(name, move || {
            rt.block_on(async {
                let t = Instant::now();
                let mut child = tokio_cmd(w, &a, cpu).stdout(Stdio::piped()).spawn()?;
                let mut out = child.stdout.take().expect("piped");
                if let Some(p) = pipe {
                    set_pipe_size(out.as_raw_fd(), p)?;
                }
                let mut buf = vec![0u8; CHUNK];
                let mut total = 0u64;
                loop {
                    let n = out.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
                child.wait().await?;
                check(total, bytes)?;
                Ok(gibps(bytes, t))
            })
        })
    };
    let a = args.clone();
    let procession_async = Variant::new(ASYNC_STDOUT, move || {
        rt.block_on(async {
            let t = Instant::now();
            let mut out = procession_cmd(w, &a, cpu).stream_async().map_err(ioe)?;
            let mut total = 0u64;
            while let Some(chunk) = out.next().await {
                total += chunk?.len() as u64;
            }
            check(total, bytes)?;
            Ok(gibps(bytes, t))
        })
    });
    let a = args.clone();
    let duct_v = Variant::new("duct (reader())", move || {
        let t = Instant::now();
        let reader = duct_expr(w, &a, cpu).reader()?;
        let total = drain(&reader)?;
        drop(reader);
        check(total, bytes)?;
        Ok(gibps(bytes, t))
    });
    let a = args.clone();
    let subprocess_v = Variant::new("subprocess (stream_stdout())", move || {
        let t = Instant::now();
        let reader = subprocess_exec(w, &a, cpu).stream_stdout()?;
        let total = drain(reader)?; // dropping the reader waits for the child
        check(total, bytes)?;
        Ok(gibps(bytes, t))
    });
    vec![
        procession,
        std_raw("std, 1 MiB pipe, raw read loop", Some(BIG_PIPE)),
        std_raw("std (default 64 KiB pipe)", None),
        tokio_v(TOKIO_DEFAULT, None),
        tokio_v(TOKIO_BIG, Some(BIG_PIPE)),
        procession_async,
        duct_v,
        subprocess_v,
    ]
}

/// The variants writing `bytes` into a sink child.
fn stdin_variants<'a>(
    sink: &'a Path,
    bytes: u64,
    cpu: Option<usize>,
    rt: &'a tokio::runtime::Runtime,
) -> Vec<Variant<'a>> {
    let block = Bytes::from(vec![b'a'; CHUNK]);
    let n_chunks = (bytes / CHUNK as u64) as usize;
    let args: Vec<String> = Vec::new();
    let b = block.clone();
    let a = args.clone();
    let procession = Variant::new("procession", move || {
        let t = Instant::now();
        let input = std::iter::repeat_n(b.clone(), n_chunks);
        for chunk in procession_cmd(sink, &a, cpu)
            .input(input)
            .stream()
            .map_err(ioe)?
        {
            chunk.map_err(ioe)?;
        }
        Ok(gibps(bytes, t))
    });
    let write_n = move |w: &mut dyn Write, data: &[u8]| -> io::Result<()> {
        for _ in 0..n_chunks {
            w.write_all(data)?;
        }
        Ok(())
    };
    let std_raw = |name: &str, pipe: Option<usize>| {
        let a = args.clone();
        let b = block.clone();
        Variant::new(name, move || {
            let t = Instant::now();
            let mut child = std_cmd(sink, &a, cpu).stdin(Stdio::piped()).spawn()?;
            let mut inp = child.stdin.take().expect("piped");
            if let Some(p) = pipe {
                set_pipe_size(inp.as_raw_fd(), p)?;
            }
            write_n(&mut inp, &b)?;
            drop(inp);
            child.wait()?;
            Ok(gibps(bytes, t))
        })
    };
    let tokio_v = |name: &str, pipe: Option<usize>| {
        let a = args.clone();
        let b = block.clone();
        Variant::new(name, move || {
            rt.block_on(async {
                let t = Instant::now();
                let mut child = tokio_cmd(sink, &a, cpu).stdin(Stdio::piped()).spawn()?;
                let mut inp = child.stdin.take().expect("piped");
                if let Some(p) = pipe {
                    set_pipe_size(inp.as_raw_fd(), p)?;
                }
                for _ in 0..n_chunks {
                    inp.write_all(&b).await?;
                }
                drop(inp);
                child.wait().await?;
                Ok(gibps(bytes, t))
            })
        })
    };
    let a = args.clone();
    let b = block.clone();
    let procession_async = Variant::new(ASYNC_STDIN, move || {
        rt.block_on(async {
            let t = Instant::now();
            let input = futures_util::stream::iter(std::iter::repeat_n(b.clone(), n_chunks));
            let mut out = procession_cmd(sink, &a, cpu)
                .input_stream(input)
                .stream_async()
                .map_err(ioe)?;
            while let Some(chunk) = out.next().await {
                chunk?;
            }
            Ok(gibps(bytes, t))
        })
    });
    let a = args.clone();
    let b = block.clone();
    let duct_v = Variant::new("duct (stdin_file(os_pipe))", move || {
        let t = Instant::now();
        let (r, mut wr) = os_pipe::pipe()?;
        let handle = duct_expr(sink, &a, cpu).stdin_file(r).start()?;
        write_n(&mut wr, &b)?;
        drop(wr);
        handle.wait()?;
        Ok(gibps(bytes, t))
    });
    let a = args.clone();
    let b = block.clone();
    let subprocess_v = Variant::new("subprocess (stdin Pipe)", move || {
        let t = Instant::now();
        let mut job = subprocess_exec(sink, &a, cpu)
            .stdin(subprocess::Redirection::Pipe)
            .start()?;
        let mut inp = job.stdin.take().expect("piped");
        write_n(&mut inp, &b)?;
        drop(inp);
        job.wait()?;
        Ok(gibps(bytes, t))
    });
    vec![
        procession,
        std_raw("std, 1 MiB pipe, raw write loop", Some(BIG_PIPE)),
        std_raw("std (default 64 KiB pipe)", None),
        tokio_v(TOKIO_DEFAULT, None),
        tokio_v(TOKIO_BIG, Some(BIG_PIPE)),
        procession_async,
        duct_v,
        subprocess_v,
    ]
}

/// `__stdout LIB BYTES WRITER`: one stdout transfer (LIB = procession or
/// std-1m), for profiling with `strace -c -f` or `perf`. Pin with `taskset`
/// and `BENCH_CPU` (inherited by the child).
pub fn stdout_worker(lib: &str, bytes: u64, writer: &Path) -> io::Result<()> {
    let args = vec![bytes.to_string(), CHUNK.to_string()];
    let t = Instant::now();
    let total = match lib {
        "procession" => {
            let mut total = 0u64;
            for chunk in procession_cmd(writer, &args, None).stream().map_err(ioe)? {
                total += chunk.map_err(ioe)?.len() as u64;
            }
            total
        }
        "std-1m" => {
            let mut child = std_cmd(writer, &args, None)
                .stdout(Stdio::piped())
                .spawn()?;
            let out = child.stdout.take().expect("piped");
            set_pipe_size(out.as_raw_fd(), BIG_PIPE)?;
            let total = drain(out)?;
            child.wait()?;
            total
        }
        other => return Err(io::Error::other(format!("unknown lib {other}"))),
    };
    check(total, bytes)?;
    println!("{lib}: {:.3} GiB/s", gibps(bytes, t));
    Ok(())
}

/// `__stdin LIB BYTES SINK`: one stdin transfer (LIB = procession or
/// std-1m), for profiling.
pub fn stdin_worker(lib: &str, bytes: u64, sink: &Path) -> io::Result<()> {
    let block = Bytes::from(vec![b'a'; CHUNK]);
    let n_chunks = (bytes / CHUNK as u64) as usize;
    let t = Instant::now();
    match lib {
        "procession" => {
            let input = std::iter::repeat_n(block, n_chunks);
            for chunk in procession_cmd(sink, &[], None)
                .input(input)
                .stream()
                .map_err(ioe)?
            {
                chunk.map_err(ioe)?;
            }
        }
        "std-1m" => {
            let mut child = std_cmd(sink, &[], None).stdin(Stdio::piped()).spawn()?;
            let mut inp = child.stdin.take().expect("piped");
            set_pipe_size(inp.as_raw_fd(), BIG_PIPE)?;
            for _ in 0..n_chunks {
                inp.write_all(&block)?;
            }
            drop(inp);
            child.wait()?;
        }
        other => return Err(io::Error::other(format!("unknown lib {other}"))),
    }
    println!("{lib}: {:.3} GiB/s", gibps(bytes, t));
    Ok(())
}

/// Runs scenario 1 (`stdin == false`) or 2.
pub fn run(ctx: &Ctx, stdin: bool, placements: &[Placement]) -> io::Result<Outcome> {
    let bytes: u64 = if ctx.quick { 512 << 20 } else { 4 << 30 };
    let scenario = if stdin { 2 } else { 1 };
    let rt = tokio_rt()?;
    let mut out = Outcome::default();
    for &pl in placements {
        let cpu = pl.apply();
        let (what, prog) = if stdin {
            ("stdin throughput into bench-sink", &ctx.helpers.sink)
        } else {
            ("stdout throughput from bench-writer", &ctx.helpers.writer)
        };
        let id = format!("{}-{}", if stdin { "stdin" } else { "stdout" }, pl.short());
        let mut table = Table::new(
            &id,
            scenario,
            &format!("{scenario}. {what}, {}, {}", fmt_bytes(bytes), pl.label()),
            "GiB/s",
            Better::Higher,
        );
        // Warm-up: every variant once with 64 MiB (page cache, allocator,
        // runtime), not recorded.
        {
            let mut warm = if stdin {
                stdin_variants(prog, 64 << 20, cpu, &rt)
            } else {
                stdout_variants(prog, 64 << 20, cpu, &rt)
            };
            for v in &mut warm {
                (v.run)()?;
            }
        }
        let mut variants = if stdin {
            stdin_variants(prog, bytes, cpu, &rt)
        } else {
            stdout_variants(prog, bytes, cpu, &rt)
        };
        interleave(&mut table, ctx.reps, &mut variants);
        drop(variants);
        let mut table = table.finish();
        let async_name = if stdin { ASYNC_STDIN } else { ASYNC_STDOUT };
        table.set_vs(
            async_name,
            &[
                ("tokio (default pipe)", TOKIO_DEFAULT),
                ("tokio 1 MiB", TOKIO_BIG),
            ],
        );
        let t = &table;
        let tag = pl.short();
        let raw = if stdin {
            "std, 1 MiB pipe, raw write loop"
        } else {
            "std, 1 MiB pipe, raw read loop"
        };
        let (vs_std, vs_tokio) = (
            t.ratio(raw, "std (default 64 KiB pipe)"),
            t.ratio(raw, TOKIO_DEFAULT),
        );
        if let (Some(a), Some(b), Some(c)) = (vs_std, vs_tokio, t.median(raw)) {
            out.text.push(format!(
                "[{tag}] Ceiling: the raw std loop with a 1 MiB pipe ({c:.2} GiB/s, two copies \
                 through the kernel, no library in the way) is itself only {a:.2}× std and \
                 {b:.2}× tokio with the default pipe in this run, so no read/write-based \
                 implementation can reach 2× them here; only fewer copies (splice/vmsplice) could."
            ));
        }
        if let (Some(m), Some(a), Some(b)) = (
            t.median(async_name),
            t.ratio(async_name, TOKIO_DEFAULT),
            t.ratio(async_name, TOKIO_BIG),
        ) {
            out.text.push(format!(
                "[{tag}] {async_name}: {m:.2} GiB/s, {a:.2}× tokio with the default pipe and \
                 {b:.2}× tokio with a 1 MiB pipe (the same runtime, current-thread)."
            ));
        }
        let ceiling = |peer: &str, r: Option<f64>| {
            r.map(|r| format!("raw std loop with a 1 MiB pipe = {r:.2}× {peer} (default pipe)"))
        };
        out.targets.push(
            Target::check(
                scenario,
                &format!("[{tag}] ≥ 0.95× raw std loop with a 1 MiB pipe"),
                t.ratio("procession", raw),
                0.95,
                false,
            )
            .with_ceiling(raw_loop_ceiling(t)),
        );
        out.targets.push(
            Target::check(
                scenario,
                &format!("[{tag}] ≥ 2× std with the default pipe"),
                t.ratio("procession", "std (default 64 KiB pipe)"),
                2.0,
                false,
            )
            .with_ceiling(ceiling("std", vs_std)),
        );
        out.targets.push(
            Target::check(
                scenario,
                &format!("[{tag}] ≥ 2× tokio::process with the default pipe"),
                t.ratio("procession", TOKIO_DEFAULT),
                2.0,
                false,
            )
            .with_ceiling(ceiling("tokio", vs_tokio)),
        );
        out.targets.push(
            Target::check(
                scenario,
                &format!(
                    "[{tag}] async ({}): ≥ 2× tokio::process with the default pipe",
                    if stdin {
                        "input_stream"
                    } else {
                        "stream_async"
                    }
                ),
                t.ratio(async_name, TOKIO_DEFAULT),
                2.0,
                false,
            )
            .with_ceiling(ceiling("tokio", vs_tokio)),
        );
        out.tables.push(table);
    }
    unpin();
    Ok(out)
}

/// The text shown for a missed "≥ 0.95× the raw loop" target: the raw
/// loop's rate and, when procession's and the raw loop's min–max ranges
/// overlap, that the miss is within this run's run-to-run spread.
pub fn raw_loop_ceiling(t: &Table) -> Option<String> {
    let raw = if t.id.starts_with("stdin") {
        "std, 1 MiB pipe, raw write loop"
    } else {
        "std, 1 MiB pipe, raw read loop"
    };
    let median = t.median(raw)?;
    let mut text = format!("raw loop: {median:.2} GiB/s");
    if let (Some((pmin, pmax)), Some((rmin, rmax))) = (t.range("procession"), t.range(raw))
        && pmax >= rmin
        && rmax >= pmin
    {
        text.push_str(&format!(
            "; the min–max ranges overlap (procession {pmin:.2}–{pmax:.2}, raw loop \
             {rmin:.2}–{rmax:.2} GiB/s): within this run's spread between repetitions"
        ));
    }
    Some(text)
}

//! Scenario 12: line framing. `bench-lines` writes 1 GiB (quick: 256 MiB)
//! of 80-byte lines (79 bytes and `\n`; the largest whole number of lines,
//! 64 bytes short of 1 GiB); the parent reads it unframed, framed into
//! lines by procession, and line by line with std's `BufRead`.
//!
//! The clock runs from just before the spawn to after the child is reaped,
//! as in scenario 1. The unframed row does what scenario 1's consumer does
//! (adds up the chunk lengths); the line rows count lines and bytes and
//! check both (and, where the API says so, that every line was complete).
//! procession keeps its default pipe (1 MiB) and chunk size (64 KiB); std
//! gets the default pipe, as a std user would.

use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use procession::{DEFAULT_MAX_LINE, LineCodec};

use crate::results::{Better, Outcome, Table, Target};
use crate::runner::{Ctx, Variant, interleave, ioe};
use crate::throughput::Placement;
use crate::util::{fmt_bytes, unpin};

/// Bytes per line, the `\n` included.
pub const LINE: u64 = 80;

pub const UNFRAMED: &str = "procession stream(), unframed";
pub const FRAMED: &str = "procession stream().lines(LineCodec::new(64 KiB))";
pub const FOR_EACH: &str =
    "procession stream().for_each_line(LineCodec::new(64 KiB), |line, complete| ..)";
pub const STD_LINES: &str = "std BufReader::new(stdout).lines()";
pub const STD_UNTIL: &str = "std BufReader 64 KiB, read_until(b'\\n') into a reused Vec";
pub const CAL_COUNT: &str = "calibration: stream() + SIMD count of \\n per chunk (memchr crate)";
pub const CAL_SPLIT: &str =
    "calibration: stream() + SIMD search + one Bytes::split_to per line (memchr crate)";

fn gibps(bytes: u64, t: Instant) -> f64 {
    bytes as f64 / (1u64 << 30) as f64 / t.elapsed().as_secs_f64()
}

/// What a consumer counted.
#[derive(Default)]
struct Count {
    lines: u64,
    bytes: u64,
    incomplete: u64,
}

impl Count {
    /// Every line there, whole, and nothing else.
    fn check(&self, lines: u64) -> io::Result<()> {
        if self.lines == lines && self.bytes == lines * LINE && self.incomplete == 0 {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "counted {} lines ({} incomplete) and {} bytes, expected {lines} lines and {} bytes",
                self.lines,
                self.incomplete,
                self.bytes,
                lines * LINE
            )))
        }
    }
}

fn args(lines: u64, cpu: Option<usize>) -> (Vec<String>, Option<String>) {
    (vec![lines.to_string()], cpu.map(|c| c.to_string()))
}

fn procession_cmd(prog: &Path, lines: u64, cpu: Option<usize>) -> procession::Command {
    let (a, cpu) = args(lines, cpu);
    let mut c = procession::Command::new(prog);
    c.args(a);
    if let Some(cpu) = cpu {
        c.env("BENCH_CPU", cpu);
    }
    c
}

fn std_child(prog: &Path, lines: u64, cpu: Option<usize>) -> io::Result<std::process::Child> {
    let (a, cpu) = args(lines, cpu);
    let mut c = std::process::Command::new(prog);
    c.args(a).stdout(Stdio::piped());
    if let Some(cpu) = cpu {
        c.env("BENCH_CPU", cpu);
    }
    c.spawn()
}

/// procession, unframed: every chunk's length added up (scenario 1's
/// consumer). Only the byte count can be checked.
fn unframed(prog: &Path, lines: u64, cpu: Option<usize>) -> io::Result<()> {
    let mut bytes = 0u64;
    for chunk in procession_cmd(prog, lines, cpu).stream().map_err(ioe)? {
        bytes += chunk.map_err(ioe)?.len() as u64;
    }
    if bytes == lines * LINE {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "moved {bytes} bytes, expected {}",
            lines * LINE
        )))
    }
}

/// procession, framed into lines with the default maximum.
fn framed(prog: &Path, lines: u64, cpu: Option<usize>) -> io::Result<()> {
    let mut n = Count::default();
    let stream = procession_cmd(prog, lines, cpu).stream().map_err(ioe)?;
    for line in stream.lines(LineCodec::new(DEFAULT_MAX_LINE)) {
        let line = line.map_err(ioe)?;
        n.lines += 1;
        n.bytes += line.len() as u64 + 1;
        n.incomplete += u64::from(!line.complete);
    }
    n.check(lines)
}

/// procession, framed into lines handed out as borrowed slices (no `Bytes`
/// per line).
fn for_each(prog: &Path, lines: u64, cpu: Option<usize>) -> io::Result<()> {
    let mut n = Count::default();
    let stream = procession_cmd(prog, lines, cpu).stream().map_err(ioe)?;
    stream
        .for_each_line(LineCodec::new(DEFAULT_MAX_LINE), |line, complete| {
            n.lines += 1;
            n.bytes += line.len() as u64 + 1;
            n.incomplete += u64::from(!complete);
        })
        .map_err(ioe)?;
    n.check(lines)
}

/// std, `BufRead::lines` over `ChildStdout` (a `String` per line, UTF-8
/// checked). It drops the line ending, so completeness is not known.
fn std_lines(prog: &Path, lines: u64, cpu: Option<usize>) -> io::Result<()> {
    let mut child = std_child(prog, lines, cpu)?;
    let out = child.stdout.take().expect("piped");
    let mut n = Count::default();
    for line in BufReader::new(out).lines() {
        n.lines += 1;
        n.bytes += line?.len() as u64 + 1;
    }
    child.wait()?;
    n.check(lines)
}

/// std, `read_until(b'\n')` into one reused `Vec` (no allocation, no UTF-8
/// check), through a 64 KiB `BufReader` (procession's chunk size).
fn std_read_until(prog: &Path, lines: u64, cpu: Option<usize>) -> io::Result<()> {
    let mut child = std_child(prog, lines, cpu)?;
    let out = child.stdout.take().expect("piped");
    let mut r = BufReader::with_capacity(64 * 1024, out);
    let mut buf = Vec::with_capacity(256);
    let mut n = Count::default();
    loop {
        buf.clear();
        let got = r.read_until(b'\n', &mut buf)?;
        if got == 0 {
            break;
        }
        n.lines += 1;
        n.bytes += got as u64;
        n.incomplete += u64::from(buf.last() != Some(&b'\n'));
    }
    child.wait()?;
    n.check(lines)
}

/// Calibration: the unframed stream and a SIMD count of the newlines in
/// each chunk, with no value per line: the least work any line framing
/// over the stream does.
fn cal_count(prog: &Path, lines: u64, cpu: Option<usize>) -> io::Result<()> {
    let mut n = Count::default();
    for chunk in procession_cmd(prog, lines, cpu).stream().map_err(ioe)? {
        let chunk = chunk.map_err(ioe)?;
        n.lines += memchr::memchr_iter(b'\n', &chunk).count() as u64;
        n.bytes += chunk.len() as u64;
    }
    n.check(lines)
}

/// Calibration: what a zero-copy line framing has to do per line at the
/// least, written out here: a SIMD search for the newline and a
/// `Bytes::split_to` (a shared handle on the chunk: one atomic increment,
/// and a decrement when it is dropped); a line cut by a chunk boundary is
/// copied once.
fn cal_split(prog: &Path, lines: u64, cpu: Option<usize>) -> io::Result<()> {
    let mut n = Count::default();
    let mut carry: Vec<u8> = Vec::new();
    let mut take = |line: &[u8]| {
        n.lines += 1;
        n.bytes += line.len() as u64;
        n.incomplete += u64::from(line.last() != Some(&b'\n'));
    };
    for chunk in procession_cmd(prog, lines, cpu).stream().map_err(ioe)? {
        let mut chunk = chunk.map_err(ioe)?;
        while let Some(i) = memchr::memchr(b'\n', &chunk) {
            let line = chunk.split_to(i + 1);
            if carry.is_empty() {
                take(&line);
            } else {
                carry.extend_from_slice(&line);
                take(&carry);
                carry.clear();
            }
        }
        carry.extend_from_slice(&chunk);
    }
    if !carry.is_empty() {
        take(&carry);
    }
    n.check(lines)
}

type Consumer = fn(&Path, u64, Option<usize>) -> io::Result<()>;

/// The rows, in run order.
const ROWS: [(&str, Consumer); 7] = [
    (UNFRAMED, unframed),
    (FRAMED, framed),
    (FOR_EACH, for_each),
    (STD_LINES, std_lines),
    (STD_UNTIL, std_read_until),
    (CAL_COUNT, cal_count),
    (CAL_SPLIT, cal_split),
];

/// The row names of `__lines`, in the order of [`ROWS`].
const WORKER_ROWS: [&str; 7] = [
    "unframed",
    "framed",
    "for-each-line",
    "std-lines",
    "std-read-until",
    "cal-count",
    "cal-split",
];

fn variants(prog: &Path, lines: u64, cpu: Option<usize>) -> Vec<Variant<'_>> {
    ROWS.iter()
        .map(|&(name, consume)| {
            Variant::new(name, move || {
                let t = Instant::now();
                consume(prog, lines, cpu)?;
                Ok(gibps(lines * LINE, t))
            })
        })
        .collect()
}

/// `__lines ROW LINES HELPER`: one transfer (ROW = unframed, framed,
/// std-lines, std-read-until, cal-count or cal-split), for profiling with
/// `perf`. Pin with
/// `taskset` and `BENCH_CPU` (inherited by the child).
pub fn worker(row: &str, lines: u64, helper: &Path) -> io::Result<()> {
    let i = WORKER_ROWS
        .iter()
        .position(|r| *r == row)
        .ok_or_else(|| io::Error::other(format!("unknown row {row}")))?;
    let t = Instant::now();
    (ROWS[i].1)(helper, lines, None)?;
    println!("{}: {:.3} GiB/s", ROWS[i].0, gibps(lines * LINE, t));
    Ok(())
}

/// Runs scenario 12.
pub fn run(ctx: &Ctx, placements: &[Placement]) -> io::Result<Outcome> {
    const SCENARIO: u32 = 12;
    let size: u64 = if ctx.quick { 256 << 20 } else { 1 << 30 };
    let lines = size / LINE;
    let prog = &ctx.helpers.lines;
    let mut out = Outcome::default();
    for &pl in placements {
        let cpu = pl.apply();
        let tag = pl.short();
        let mut table = Table::new(
            &format!("lines-{tag}"),
            SCENARIO,
            &format!(
                "12. {} lines of 80 bytes ({}, less {} bytes) from bench-lines, {}",
                lines,
                fmt_bytes(size),
                size - lines * LINE,
                pl.label()
            ),
            "GiB/s",
            Better::Higher,
        );
        // The ratios are the framed row's: it is what the targets are about.
        table.reference = FRAMED.into();
        // Warm-up: every variant once with 64 MiB of lines, not recorded.
        for v in &mut variants(prog, (64 << 20) / LINE, cpu) {
            (v.run)()?;
        }
        interleave(&mut table, ctx.reps, &mut variants(prog, lines, cpu));
        let mut table = table.finish();
        let vs_unframed = table.ratio(FRAMED, UNFRAMED);
        if let Some(row) = table.rows.iter_mut().find(|r| r.variant == UNFRAMED) {
            row.ratio = vs_unframed;
        }
        table.notes.push(
            "The ratio column is the framed row's median ÷ each row's (> 1: framing faster)."
                .into(),
        );
        let t = &table;
        out.targets.push(
            Target::check(
                SCENARIO,
                &format!("[{tag}] lines(LineCodec) ≥ 0.8× the unframed stream()"),
                vs_unframed,
                0.8,
                false,
            )
            .with_ceiling(framing_ceiling(t)),
        );
        let vs_std = t.ratio(FRAMED, STD_LINES);
        let mut beats_std = Target::check(
            SCENARIO,
            &format!("[{tag}] lines(LineCodec) > 1× std BufRead::lines over ChildStdout"),
            vs_std,
            1.0,
            false,
        );
        // Strictly faster, not merely as fast.
        beats_std.met = vs_std.filter(|v| v.is_finite()).map(|v| v > 1.0);
        out.targets.push(beats_std.with_ceiling(std_ceiling(t)));
        // The borrowing form: the same lines without a handle per line.
        out.targets.push(Target::check(
            SCENARIO,
            &format!("[{tag}] for_each_line(LineCodec) ≥ 0.8× the unframed stream()"),
            t.ratio(FOR_EACH, UNFRAMED),
            0.8,
            false,
        ));
        let each_std = t.ratio(FOR_EACH, STD_LINES);
        let mut each_vs_std = Target::check(
            SCENARIO,
            &format!("[{tag}] for_each_line(LineCodec) > 1× std BufRead::lines over ChildStdout"),
            each_std,
            1.0,
            false,
        );
        each_vs_std.met = each_std.filter(|v| v.is_finite()).map(|v| v > 1.0);
        out.targets.push(each_vs_std);
        if let (Some(f), Some(u), Some(s), Some(r)) = (
            t.median(FRAMED),
            t.median(UNFRAMED),
            t.median(STD_LINES),
            t.median(STD_UNTIL),
        ) {
            out.text.push(format!(
                "[{tag}] procession framed {f:.2} GiB/s = {:.2}× unframed ({u:.2}), {:.2}× std \
                 `lines()` ({s:.2}) and {:.2}× std `read_until` ({r:.2}).",
                f / u,
                f / s,
                f / r
            ));
        }
        out.tables.push(table);
    }
    unpin();
    Ok(out)
}

/// The text shown when framing misses "≥ 0.8× unframed": the unframed
/// stream's time per line, what framing adds to it and the budget 0.8×
/// leaves (a quarter of the unframed time), and how far the two
/// calibration rows (a SIMD search alone, and with a `Bytes` per line) get.
pub fn framing_ceiling(t: &Table) -> Option<String> {
    let (f, u) = (t.median(FRAMED)?, t.median(UNFRAMED)?);
    // ns per 80-byte line at a rate in GiB/s.
    let per_line = |gibps: f64| 1e9 * LINE as f64 / (gibps * (1u64 << 30) as f64);
    let mut text = format!(
        "unframed {u:.2} GiB/s = {:.1} ns per line; framing adds {:.1} ns per line, 0.8× \
         allows {:.1}",
        per_line(u),
        per_line(f) - per_line(u),
        per_line(u) * 0.25
    );
    if let (Some(c), Some(s)) = (t.median(CAL_COUNT), t.median(CAL_SPLIT)) {
        text.push_str(&format!(
            "; calibration: SIMD newline count {:.2}× unframed, SIMD search + a Bytes per line \
             {:.2}×",
            c / u,
            s / u
        ));
    }
    Some(text)
}

/// The text shown when framing is not faster than std's `lines()`: how the
/// calibration splitter (a SIMD search and a `Bytes` per line) compares
/// with it in the same run.
pub fn std_ceiling(t: &Table) -> Option<String> {
    let r = t.ratio(CAL_SPLIT, STD_LINES)?;
    Some(format!(
        "calibration (SIMD search + a Bytes per line) = {r:.2}× std lines() in this run"
    ))
}

//! Scenarios 13 and 14: a three-stage pipeline, and forwarding a child's
//! stdout into a file and a loopback TCP socket.
//!
//! Scenario 13: `bench-writer N 65536 | bench-echo | bench-sink`, 4 GiB
//! (quick: 1 GiB), the clock from just before the first spawn to after the
//! last stage is reaped. Rows: procession's `Pipeline` (1 MiB links, its
//! default, and 64 KiB links as the others get), `sh -c 'a | b | c'`, duct's
//! `pipe`, subprocess's `Exec | Exec | Exec`, std wired by hand
//! (`Stdio::from(ChildStdout)`), and a pipeline that copies through the
//! parent (std, a thread per link moving 64 KiB reads and writes: how a
//! library without child-to-child wiring chains stages).
//!
//! Scenario 14: `bench-writer N 1048576` (4 GiB, quick: 1 GiB) forwarded
//! into a file on tmpfs (page cache only: the CPU cost of the copy is what
//! is measured, not a disk; the file is filled once before the table and
//! every row rewrites it from offset 0, so no row allocates pages) and into a loopback TCP socket drained by a
//! thread of the harness with 1 MiB reads. Rows: `forward_stdout` (splice),
//! its read/write fallback (forced), a raw read/write loop with a 1 MiB pipe
//! and a 1 MiB buffer (the baseline), std's `io::copy` (which
//! itself uses splice on Linux when it can), and a calibration row: the same
//! writer forwarded into /dev/null, where splice moves nothing, so only the
//! writer's copy into the pipe is left (the ceiling of any forwarding).
//!
//! Both unpinned only: three processes (scenario 13) or a child, the parent
//! and a reader thread (14) on 2 vCPUs do not fit a placement.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use crate::results::{Better, Outcome, Table, Target};
use crate::runner::{Ctx, Variant, interleave, ioe};
use crate::util::{children_cpu, fmt_bytes, set_pipe_size, thread_cpu, unpin};

const LINK_CHUNK: usize = 64 * 1024;
const BIG: usize = 1 << 20;

/// One run's CPU seconds per GiB, by who spent them.
#[derive(Clone, Copy, Default)]
struct Cpu {
    /// The thread that forwards (the caller of `forward_stdout`, or the loop).
    forwarder: f64,
    /// The writer child (its copy into the pipe).
    writer: f64,
    /// For the socket: the thread that reads the other end.
    reader: f64,
}

impl Cpu {
    fn total(&self) -> f64 {
        self.forwarder + self.writer + self.reader
    }

    /// The best rate (GiB/s) this much work allows on `cpus` CPUs: no
    /// participant can go faster than its own CPU time allows, and all of
    /// them together cannot use more than `cpus`.
    fn bound(&self, cpus: f64) -> f64 {
        let slowest = self.forwarder.max(self.writer).max(self.reader);
        (1.0 / slowest).min(cpus / self.total())
    }
}

/// Per row of scenario 14: who spent how much CPU per GiB, per run.
type CpuLog = std::cell::RefCell<Vec<(&'static str, Cpu)>>;

fn gibps(bytes: u64, t: Instant) -> f64 {
    bytes as f64 / (1u64 << 30) as f64 / t.elapsed().as_secs_f64()
}

fn ok(status: std::process::ExitStatus) -> io::Result<()> {
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("a stage failed: {status}")))
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

/// Copies `from` into `to` with `buf`-sized reads and writes.
fn copy_loop(mut from: impl Read, mut to: impl Write, buf: usize) -> io::Result<u64> {
    let mut buf = vec![0u8; buf];
    let mut total = 0u64;
    loop {
        match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                to.write_all(&buf[..n])?;
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

struct Stages<'a> {
    writer: &'a Path,
    echo: &'a Path,
    sink: &'a Path,
    bytes: u64,
}

impl Stages<'_> {
    fn writer_args(&self) -> [String; 2] {
        [self.bytes.to_string(), LINK_CHUNK.to_string()]
    }
}

fn pipeline_variants<'a>(s: &'a Stages<'a>) -> Vec<Variant<'a>> {
    let bytes = s.bytes;
    let proc_row = |name: &str, cap: Option<usize>| {
        Variant::new(name, move || {
            let t = Instant::now();
            let mut w = procession::Command::new(s.writer);
            w.args(s.writer_args()).pipe_capacity(cap);
            let mut e = procession::Command::new(s.echo);
            e.pipe_capacity(cap);
            let status = procession::Pipeline::new([w, e, procession::Command::new(s.sink)])
                .status()
                .map_err(ioe)?;
            if !status.success() {
                return Err(io::Error::other(format!("a stage failed: {status}")));
            }
            Ok(gibps(bytes, t))
        })
    };
    let sh = Variant::new("sh -c 'a | b | c'", move || {
        let t = Instant::now();
        let [n, c] = s.writer_args();
        let line = format!(
            "'{}' {n} {c} | '{}' | '{}'",
            s.writer.display(),
            s.echo.display(),
            s.sink.display()
        );
        ok(std::process::Command::new("sh")
            .arg("-c")
            .arg(line)
            .status()?)?;
        Ok(gibps(bytes, t))
    });
    let duct = Variant::new("duct (pipe)", move || {
        let t = Instant::now();
        duct::cmd(s.writer, s.writer_args())
            .pipe(duct::cmd!(s.echo))
            .pipe(duct::cmd!(s.sink))
            .run()?;
        Ok(gibps(bytes, t))
    });
    let subprocess = Variant::new("subprocess (Exec | Exec | Exec)", move || {
        let t = Instant::now();
        let status = (subprocess::Exec::cmd(s.writer).args(&s.writer_args()[..])
            | subprocess::Exec::cmd(s.echo)
            | subprocess::Exec::cmd(s.sink))
        .join()
        .map_err(ioe)?;
        if !status.success() {
            return Err(io::Error::other(format!("a stage failed: {status:?}")));
        }
        Ok(gibps(bytes, t))
    });
    let std_wired = Variant::new("std, wired by hand (Stdio::from(ChildStdout))", move || {
        let t = Instant::now();
        let mut a = std::process::Command::new(s.writer)
            .args(s.writer_args())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut b = std::process::Command::new(s.echo)
            .stdin(Stdio::from(a.stdout.take().expect("piped")))
            .stdout(Stdio::piped())
            .spawn()?;
        let mut c = std::process::Command::new(s.sink)
            .stdin(Stdio::from(b.stdout.take().expect("piped")))
            .spawn()?;
        ok(c.wait()?)?;
        ok(b.wait()?)?;
        ok(a.wait()?)?;
        Ok(gibps(bytes, t))
    });
    let through_parent = Variant::new(
        "copy through the parent (std, 64 KiB read/write, a thread per link)",
        move || {
            let t = Instant::now();
            let mut a = std::process::Command::new(s.writer)
                .args(s.writer_args())
                .stdout(Stdio::piped())
                .spawn()?;
            let mut b = std::process::Command::new(s.echo)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let mut c = std::process::Command::new(s.sink)
                .stdin(Stdio::piped())
                .spawn()?;
            let (a_out, b_in) = (
                a.stdout.take().expect("piped"),
                b.stdin.take().expect("piped"),
            );
            let (b_out, c_in) = (
                b.stdout.take().expect("piped"),
                c.stdin.take().expect("piped"),
            );
            let first = std::thread::spawn(move || copy_loop(a_out, b_in, LINK_CHUNK));
            let moved = copy_loop(b_out, c_in, LINK_CHUNK)?;
            let first = first
                .join()
                .map_err(|_| io::Error::other("copy thread"))??;
            check(first, bytes)?;
            check(moved, bytes)?;
            ok(c.wait()?)?;
            ok(b.wait()?)?;
            ok(a.wait()?)?;
            Ok(gibps(bytes, t))
        },
    );
    vec![
        proc_row("procession", Some(BIG)),
        proc_row("procession, 64 KiB links", None),
        sh,
        duct,
        subprocess,
        std_wired,
        through_parent,
    ]
}

pub fn run_pipeline(ctx: &Ctx) -> io::Result<Outcome> {
    unpin();
    let bytes: u64 = if ctx.quick { 1 << 30 } else { 4 << 30 };
    let h = &ctx.helpers;
    let mut table = Table::new(
        "pipeline-U",
        13,
        &format!(
            "13. three-stage pipeline bench-writer | bench-echo | bench-sink, {}, unpinned",
            fmt_bytes(bytes)
        ),
        "GiB/s",
        Better::Higher,
    );
    {
        let warm = Stages {
            writer: &h.writer,
            echo: &h.echo,
            sink: &h.sink,
            bytes: 64 << 20,
        };
        for v in &mut pipeline_variants(&warm) {
            (v.run)()?;
        }
    }
    let stages = Stages {
        writer: &h.writer,
        echo: &h.echo,
        sink: &h.sink,
        bytes,
    };
    let mut variants = pipeline_variants(&stages);
    interleave(&mut table, ctx.reps, &mut variants);
    drop(variants);
    let mut table = table.finish();
    table.set_vs(
        "procession, 64 KiB links",
        &[("sh -c", "sh -c 'a | b | c'"), ("duct", "duct (pipe)")],
    );
    let mut out = Outcome::default();
    out.targets.push(Target::check(
        13,
        "≥ 1× `sh -c 'a | b | c'` (the kernel's own pipes)",
        table.ratio("procession", "sh -c 'a | b | c'"),
        1.0,
        false,
    ));
    out.targets.push(Target::check(
        13,
        "> 1× a pipeline that copies through the parent",
        table.ratio(
            "procession",
            "copy through the parent (std, 64 KiB read/write, a thread per link)",
        ),
        1.0,
        false,
    ));
    out.text.push(
        "Scenario 13: every row but the last moves the data child to child through kernel \
         pipes (duct, subprocess and sh too); the rows differ in the pipe capacity (procession \
         enlarges its links to 1 MiB; the second procession row keeps the default 64 KiB, as the \
         others do) and in the spawn and wait machinery. The last row copies every byte through \
         the parent, twice."
            .to_string(),
    );
    out.tables.push(table);
    Ok(out)
}

/// Where scenario 14 writes its file: tmpfs when there is one (no disk in
/// the measurement), else the temporary directory.
fn sink_file_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SinkKind {
    File,
    Tcp,
}

/// The file every file row of scenario 14 rewrites from offset 0: made
/// and filled once per table, so that no row pays for allocating the page
/// cache (that cost is the file system's, the same for every method, and
/// would hide the copies being compared).
fn sink_file_path() -> PathBuf {
    sink_file_dir().join(format!("procession-bench-forward-{}", std::process::id()))
}

fn prepare_sink_file(bytes: u64) -> io::Result<()> {
    let mut f = std::fs::File::create(sink_file_path())?;
    let block = vec![0x5au8; BIG];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(BIG as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// A sink opened for one measurement, and what checks it afterwards.
enum Sink {
    File(std::fs::File),
    Tcp(TcpStream, std::thread::JoinHandle<io::Result<(u64, f64)>>),
}

impl Sink {
    fn new(kind: SinkKind) -> io::Result<Sink> {
        match kind {
            // Opened for writing at offset 0, not truncated.
            SinkKind::File => Ok(Sink::File(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(sink_file_path())?,
            )),
            SinkKind::Tcp => {
                let listener = TcpListener::bind("127.0.0.1:0")?;
                let mut client = TcpStream::connect(listener.local_addr()?)?;
                let (server, _) = listener.accept()?;
                let reader = std::thread::spawn(move || {
                    let mut buf = vec![0u8; BIG];
                    let mut total = 0u64;
                    loop {
                        match client.read(&mut buf) {
                            Ok(0) => return Ok((total, thread_cpu())),
                            Ok(n) => total += n as u64,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                    }
                });
                Ok(Sink::Tcp(server, reader))
            }
        }
    }

    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match self {
            Sink::File(f) => f.as_fd(),
            Sink::Tcp(s, _) => s.as_fd(),
        }
    }

    /// Closes the sink, waits for the reader, and checks the byte count
    /// (the file's write position: it was not truncated). Returns the
    /// reading thread's CPU seconds (0 for a file: nobody reads it).
    fn finish(self, want: u64) -> io::Result<f64> {
        match self {
            Sink::File(mut f) => {
                use std::io::Seek;
                let at = f.stream_position()?;
                check(at, want)?;
                Ok(0.0)
            }
            Sink::Tcp(s, reader) => {
                drop(s);
                let (got, cpu) = reader.join().map_err(|_| io::Error::other("reader"))??;
                check(got, want)?;
                Ok(cpu)
            }
        }
    }
}

const SPLICE_ROW: &str = "procession forward_stdout (splice)";
const FALLBACK_ROW: &str = "procession forward_stdout, read/write fallback (forced)";
const IOCOPY_ROW: &str = "std io::copy (default pipe)";
const CEILING_ROW: &str = "calibration: forward_stdout into /dev/null (the writer's copy only)";

fn forward_variants<'a>(
    writer: &'a Path,
    bytes: u64,
    kind: SinkKind,
    cpu: &'a CpuLog,
) -> Vec<Variant<'a>> {
    let gib = bytes as f64 / (1u64 << 30) as f64;
    // Each run: (the forwarding thread's CPU, the waited-for children's)
    // at its start, and the reader's CPU from the sink.
    let start = || (thread_cpu(), children_cpu());
    let spent = |(f0, w0): (f64, f64)| (thread_cpu() - f0, children_cpu() - w0);
    let log = move |row: &'static str, (forwarder, writer): (f64, f64), reader: f64| {
        cpu.borrow_mut().push((
            row,
            Cpu {
                forwarder: forwarder / gib,
                writer: writer / gib,
                reader: reader / gib,
            },
        ))
    };
    let cmd = move || {
        let mut c = procession::Command::new(writer);
        c.args([bytes.to_string(), BIG.to_string()]);
        c
    };
    let spliced = Variant::new(SPLICE_ROW, move || {
        let sink = Sink::new(kind)?;
        let (t, c0) = (Instant::now(), start());
        let done = cmd().forward_stdout(sink.fd()).map_err(ioe)?;
        let rate = gibps(bytes, t);
        let used = spent(c0);
        check(done.spliced, bytes)?;
        let reader = sink.finish(bytes)?;
        log(SPLICE_ROW, used, reader);
        Ok(rate)
    });
    let copied = Variant::new(FALLBACK_ROW, move || {
        let sink = Sink::new(kind)?;
        let (t, c0) = (Instant::now(), start());
        let done = cmd().forward_stdout_copying(sink.fd()).map_err(ioe)?;
        let rate = gibps(bytes, t);
        let used = spent(c0);
        check(done.bytes, bytes)?;
        let reader = sink.finish(bytes)?;
        log(FALLBACK_ROW, used, reader);
        Ok(rate)
    });
    let args2 = [bytes.to_string(), BIG.to_string()];
    let raw = Variant::new(RAW, move || {
        let sink = Sink::new(kind)?;
        let (t, c0) = (Instant::now(), start());
        let mut child = std::process::Command::new(writer)
            .args(&args2)
            .stdout(Stdio::piped())
            .spawn()?;
        let out = child.stdout.take().expect("piped");
        set_pipe_size(out.as_raw_fd(), BIG)?;
        let moved = match &sink {
            Sink::File(f) => copy_loop(out, f, BIG)?,
            Sink::Tcp(s, _) => copy_loop(out, s, BIG)?,
        };
        ok(child.wait()?)?;
        let rate = gibps(bytes, t);
        let used = spent(c0);
        check(moved, bytes)?;
        let reader = sink.finish(bytes)?;
        log(RAW, used, reader);
        Ok(rate)
    });
    let args3 = [bytes.to_string(), BIG.to_string()];
    let std_copy = Variant::new(IOCOPY_ROW, move || {
        let sink = Sink::new(kind)?;
        let (t, c0) = (Instant::now(), start());
        let mut child = std::process::Command::new(writer)
            .args(&args3)
            .stdout(Stdio::piped())
            .spawn()?;
        let mut out = child.stdout.take().expect("piped");
        let moved = match &sink {
            Sink::File(f) => io::copy(&mut out, &mut &*f)?,
            Sink::Tcp(s, _) => io::copy(&mut out, &mut &*s)?,
        };
        ok(child.wait()?)?;
        let rate = gibps(bytes, t);
        let used = spent(c0);
        check(moved, bytes)?;
        let reader = sink.finish(bytes)?;
        log(IOCOPY_ROW, used, reader);
        Ok(rate)
    });
    // The ceiling of any forwarding of this writer through a pipe: the
    // writer's copy into the pipe and nothing after it (splice into
    // /dev/null moves no byte).
    let ceiling = Variant::new(CEILING_ROW, move || {
        let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
        let (t, c0) = (Instant::now(), start());
        let done = cmd().forward_stdout(&null).map_err(ioe)?;
        let rate = gibps(bytes, t);
        log(CEILING_ROW, spent(c0), 0.0);
        check(done.bytes, bytes)?;
        Ok(rate)
    });
    vec![spliced, copied, raw, std_copy, ceiling]
}

const RAW: &str = "read/write loop, 1 MiB pipe, 1 MiB buffer (std)";

pub fn run_forward(ctx: &Ctx) -> io::Result<Outcome> {
    unpin();
    let bytes: u64 = if ctx.quick { 1 << 30 } else { 4 << 30 };
    let mut out = Outcome::default();
    for (kind, id, what) in [
        (SinkKind::File, "forward-file", "a file on tmpfs"),
        (SinkKind::Tcp, "forward-tcp", "a loopback TCP socket"),
    ] {
        let mut table = Table::new(
            id,
            14,
            &format!(
                "14. bench-writer's stdout ({}, 1 MiB writes) forwarded into {what}, unpinned",
                fmt_bytes(bytes)
            ),
            "GiB/s",
            Better::Higher,
        );
        table.reference = "procession forward_stdout (splice)".into();
        if kind == SinkKind::File {
            prepare_sink_file(bytes)?;
        }
        let warm_log = CpuLog::default();
        for v in &mut forward_variants(&ctx.helpers.writer, 64 << 20, kind, &warm_log) {
            (v.run)()?;
        }
        let cpu = CpuLog::default();
        let mut variants = forward_variants(&ctx.helpers.writer, bytes, kind, &cpu);
        interleave(&mut table, ctx.reps, &mut variants);
        drop(variants);
        if kind == SinkKind::File {
            std::fs::remove_file(sink_file_path())?;
        }
        let mut table = table.finish();
        table.set_vs(
            "procession forward_stdout, read/write fallback (forced)",
            &[("the raw loop", RAW)],
        );
        let ratio = table.ratio(SPLICE_ROW, RAW);
        let cpu = cpu.into_inner();
        // The median of each participant's CPU per GiB over a row's runs.
        let cpu_of = |row: &str| {
            let runs: Vec<Cpu> = cpu
                .iter()
                .filter(|(r, _)| *r == row)
                .map(|(_, c)| *c)
                .collect();
            let median = |f: fn(&Cpu) -> f64| {
                let v: Vec<f64> = runs.iter().map(f).collect();
                crate::util::stats(&v).0
            };
            (!runs.is_empty()).then(|| Cpu {
                forwarder: median(|c| c.forwarder),
                writer: median(|c| c.writer),
                reader: median(|c| c.reader),
            })
        };
        let parts: Vec<String> = [SPLICE_ROW, FALLBACK_ROW, RAW, IOCOPY_ROW, CEILING_ROW]
            .iter()
            .filter_map(|row| {
                cpu_of(row).map(|c| {
                    let reader = match kind {
                        SinkKind::Tcp => format!(", reader {:.3}", c.reader),
                        SinkKind::File => String::new(),
                    };
                    format!(
                        "{row}: forwarder {:.3}, writer {:.3}{reader}, total {:.3} s \
                         (the most this work allows on 2 CPUs: {:.2} GiB/s)",
                        c.forwarder,
                        c.writer,
                        c.total(),
                        c.bound(2.0)
                    )
                })
            })
            .collect();
        out.text.push(format!(
            "[{what}] CPU seconds per GiB of each participant (medians; the writer child \
             from getrusage(RUSAGE_CHILDREN), the threads from RUSAGE_THREAD): {}.",
            parts.join("; ")
        ));
        let ceiling = match (table.median(RAW), cpu_of(SPLICE_ROW), cpu_of(RAW)) {
            (Some(raw), Some(cs), Some(cr)) => Some(format!(
                "the raw loop reaches {raw:.2} GiB/s here. CPU seconds per GiB, splice against \
                 the loop: forwarder {:.3} vs {:.3}, writer {:.3} vs {:.3}{}; in all {:.3} vs \
                 {:.3}. On 2 CPUs this work allows at most {:.2} GiB/s with splice and {:.2} \
                 with the loop, {:.2}×; stages taking turns (as they do through full and empty \
                 pipes) make it the ratio of the totals, {:.2}×",
                cs.forwarder,
                cr.forwarder,
                cs.writer,
                cr.writer,
                match kind {
                    SinkKind::Tcp => format!(", reader {:.3} vs {:.3}", cs.reader, cr.reader),
                    SinkKind::File => String::new(),
                },
                cs.total(),
                cr.total(),
                cs.bound(2.0),
                cr.bound(2.0),
                cs.bound(2.0) / cr.bound(2.0),
                cr.total() / cs.total(),
            )),
            _ => None,
        };
        out.targets.push(
            Target::check(
                14,
                &format!("[{what}] ≥ 1.2× a read/write loop with a 1 MiB pipe"),
                ratio,
                1.2,
                false,
            )
            .with_ceiling(ceiling),
        );
        out.tables.push(table);
    }
    Ok(out)
}

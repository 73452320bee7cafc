//! Scenario 15: `procession exec-port`, erlexec's port program, measured
//! on the port itself, driven through its stdin and stdout as the VM
//! drives it (2-byte length frames of external term format).
//!
//! - relay: `bench-writer` writes 1 GiB (64 KiB writes) to stdout; the port
//!   relays it as `{0, {stdout, OsPid, Bin}}` frames of at most 4096 bytes
//!   (erlexec's size) to a reader of the port's stdout, which parses every
//!   frame and counts the payload bytes. GiB/s from sending the `run`
//!   request to the `exit_status`. erlexec's own figure (0.31 GiB/s,
//!   `../shared/MEASUREMENTS.md`: 337 MB/s for 2 GiB from `head -c`) is
//!   not rerun here (no Erlang on this machine); the target is 3× it.
//! - 900 children: 900 `run` requests of `sh -c 'echo out N; echo err N >&2;
//!   exit 12'` with stdout and stderr relayed, written at once; the time
//!   until every reply, both lines of every child and all 900 exit
//!   statuses (768 × 4 = 3072) are in, each counted.
//! - shutdown: 100 children that obey SIGTERM (`bench-tiny-pause`), then
//!   `{0, {shutdown}}`: the time until the port has exited (erlexec: about
//!   10 s whenever a child existed).
//!
//! The request encoder and the reply parser here are the harness's own
//! few lines for the handful of terms used, not the port's code.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use crate::results::{Better, Outcome, Table, Target};
use crate::runner::{Ctx, Variant, interleave};
use crate::util::children_cpu;

/// erlexec's stdout relay (MEASUREMENTS.md: 337 MB/s).
const ERLEXEC_GIBPS: f64 = 337e6 / (1u64 << 30) as f64;

fn atom(s: &str) -> Vec<u8> {
    let mut v = vec![119, s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}
fn int(n: u32) -> Vec<u8> {
    if n < 256 {
        vec![97, n as u8]
    } else {
        let mut v = vec![98];
        v.extend_from_slice(&n.to_be_bytes());
        v
    }
}
fn binary(b: &[u8]) -> Vec<u8> {
    let mut v = vec![109];
    v.extend_from_slice(&(b.len() as u32).to_be_bytes());
    v.extend_from_slice(b);
    v
}
fn tuple(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![104, parts.len() as u8];
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}
fn list(parts: &[Vec<u8>]) -> Vec<u8> {
    if parts.is_empty() {
        return vec![106];
    }
    let mut v = vec![108];
    v.extend_from_slice(&(parts.len() as u32).to_be_bytes());
    for p in parts {
        v.extend_from_slice(p);
    }
    v.push(106);
    v
}
fn frame(term: Vec<u8>) -> Vec<u8> {
    let mut v = ((term.len() + 1) as u16).to_be_bytes().to_vec();
    v.push(131);
    v.extend(term);
    v
}
fn run_request(argv: &[&str], opts: &[&str]) -> Vec<u8> {
    let cmd = list(
        &argv
            .iter()
            .map(|a| binary(a.as_bytes()))
            .collect::<Vec<_>>(),
    );
    let opts = list(&opts.iter().map(|o| atom(o)).collect::<Vec<_>>());
    frame(tuple(&[int(1), tuple(&[atom("run"), cmd, opts])]))
}
fn shell_request(line: &str, opts: &[&str]) -> Vec<u8> {
    let opts = list(&opts.iter().map(|o| atom(o)).collect::<Vec<_>>());
    frame(tuple(&[
        int(1),
        tuple(&[atom("run"), binary(line.as_bytes()), opts]),
    ]))
}

/// What one frame from the port is.
#[derive(Debug, PartialEq)]
enum Msg {
    /// `{1, {pid, P}}`.
    Pid,
    /// `{0, {stdout|stderr, P, Bin}}`: which, and the payload's length.
    Out(bool, usize),
    /// `{0, {exit_status, P, S}}`.
    Exit(i64),
    Other,
}

/// A cursor over one payload.
struct P<'a>(&'a [u8], usize);
impl P<'_> {
    fn u8(&mut self) -> Option<u8> {
        let b = *self.0.get(self.1)?;
        self.1 += 1;
        Some(b)
    }
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.0.get(self.1..self.1 + n)?;
        self.1 += n;
        Some(s)
    }
    fn int(&mut self) -> Option<i64> {
        match self.u8()? {
            97 => Some(i64::from(self.u8()?)),
            98 => Some(i64::from(i32::from_be_bytes(
                self.take(4)?.try_into().ok()?,
            ))),
            _ => None,
        }
    }
    fn atom(&mut self) -> Option<String> {
        let n = match self.u8()? {
            100 | 118 => u16::from_be_bytes(self.take(2)?.try_into().ok()?) as usize,
            115 | 119 => self.u8()? as usize,
            _ => return None,
        };
        Some(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
}

fn classify(payload: &[u8]) -> Msg {
    let mut p = P(payload, 0);
    let parse = |p: &mut P| -> Option<Msg> {
        if p.u8()? != 131 || p.u8()? != 104 || p.u8()? != 2 {
            return None;
        }
        let trans = p.int()?;
        if p.u8()? != 104 {
            return None;
        }
        let _arity = p.u8()?;
        let tag = p.atom()?;
        Some(match (trans, tag.as_str()) {
            (1, "pid") => Msg::Pid,
            (0, "stdout") | (0, "stderr") => {
                p.int()?;
                if p.u8()? != 109 {
                    return None;
                }
                let n = u32::from_be_bytes(p.take(4)?.try_into().ok()?) as usize;
                Msg::Out(tag == "stdout", n)
            }
            (0, "exit_status") => {
                p.int()?;
                Msg::Exit(p.int()?)
            }
            _ => Msg::Other,
        })
    };
    parse(&mut p).unwrap_or(Msg::Other)
}

/// The port, started as `procession exec-port`.
struct Port {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: io::BufReader<ChildStdout>,
    buf: Vec<u8>,
}

impl Port {
    fn start(exe: &Path) -> io::Result<Port> {
        let mut child = Command::new(exe)
            .arg("exec-port")
            .env("SHELL", "/bin/sh")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("piped");
        let stdout = io::BufReader::with_capacity(1 << 20, out);
        Ok(Port {
            child,
            stdin,
            stdout,
            buf: vec![0; 65536],
        })
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stdin.as_mut().expect("open").write_all(bytes)
    }

    fn recv(&mut self) -> io::Result<Msg> {
        let mut len = [0u8; 2];
        self.stdout.read_exact(&mut len)?;
        let n = u16::from_be_bytes(len) as usize;
        self.stdout.read_exact(&mut self.buf[..n])?;
        Ok(classify(&self.buf[..n]))
    }

    fn shutdown(mut self) -> io::Result<()> {
        self.send(&frame(tuple(&[int(0), tuple(&[atom("shutdown")])])))?;
        drop(self.stdin.take());
        let st = self.child.wait()?;
        if !st.success() {
            return Err(io::Error::other(format!("exec-port exited with {st}")));
        }
        Ok(())
    }
}

/// Builds the `procession` binary (release when this harness is) and
/// returns its path.
fn port_exe() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or_else(|| io::Error::other("no exe dir"))?;
    if std::env::var_os("BENCH_SKIP_BUILD").is_none() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/Cargo.toml");
        let mut c = Command::new(cargo);
        c.args(["build", "-q", "--bin", "procession", "--manifest-path"])
            .arg(&manifest);
        if !cfg!(debug_assertions) {
            c.arg("--release");
        }
        if !c.status()?.success() {
            return Err(io::Error::other("building procession failed"));
        }
    }
    Ok(dir.join("procession"))
}

fn relay(
    exe: &Path,
    writer: &Path,
    bytes: u64,
    cpu: &std::cell::RefCell<Vec<f64>>,
) -> io::Result<f64> {
    let c0 = children_cpu();
    let mut port = Port::start(exe)?;
    let t = Instant::now();
    port.send(&run_request(
        &[
            writer.to_str().expect("UTF-8 path"),
            &bytes.to_string(),
            "65536",
        ],
        &["stdout"],
    ))?;
    let mut got = 0u64;
    let mut frames = 0u64;
    loop {
        match port.recv()? {
            Msg::Out(true, n) => {
                if n > 4096 {
                    return Err(io::Error::other(format!("a frame of {n} bytes")));
                }
                got += n as u64;
                frames += 1;
            }
            Msg::Exit(0) => break,
            Msg::Pid => {}
            other => return Err(io::Error::other(format!("unexpected {other:?}"))),
        }
    }
    let rate = bytes as f64 / (1u64 << 30) as f64 / t.elapsed().as_secs_f64();
    port.shutdown()?;
    cpu.borrow_mut()
        .push((children_cpu() - c0) / (bytes as f64 / (1u64 << 30) as f64));
    if got != bytes || frames < bytes / 4096 {
        return Err(io::Error::other(format!("relayed {got} of {bytes} bytes")));
    }
    Ok(rate)
}

fn many(exe: &Path, n: usize) -> io::Result<f64> {
    let mut port = Port::start(exe)?;
    let mut batch = Vec::new();
    for i in 0..n {
        batch.extend(shell_request(
            &format!("echo out {i}; echo err {i} >&2; exit 12"),
            &["stdout", "stderr"],
        ));
    }
    let t = Instant::now();
    port.send(&batch)?;
    let (mut pids, mut outs, mut errs, mut exits) = (0, 0, 0, 0);
    while exits < n {
        match port.recv()? {
            Msg::Pid => pids += 1,
            Msg::Out(true, _) => outs += 1,
            Msg::Out(false, _) => errs += 1,
            Msg::Exit(3072) => exits += 1,
            other => return Err(io::Error::other(format!("unexpected {other:?}"))),
        }
    }
    let ms = t.elapsed().as_secs_f64() * 1e3;
    port.shutdown()?;
    // One line per write: each arrives as one message.
    if (pids, outs, errs) != (n, n, n) {
        return Err(io::Error::other(format!(
            "{pids} replies, {outs} stdout and {errs} stderr messages for {n} children"
        )));
    }
    Ok(ms)
}

fn shutdown(exe: &Path, pause: &Path, n: usize) -> io::Result<f64> {
    let mut port = Port::start(exe)?;
    let mut batch = Vec::new();
    for _ in 0..n {
        batch.extend(run_request(&[pause.to_str().expect("UTF-8 path")], &[]));
    }
    port.send(&batch)?;
    for _ in 0..n {
        if port.recv()? != Msg::Pid {
            return Err(io::Error::other("a run failed"));
        }
    }
    let t = Instant::now();
    port.send(&frame(tuple(&[int(0), tuple(&[atom("shutdown")])])))?;
    let mut exits = 0;
    while let Ok(m) = port.recv() {
        if m == Msg::Exit(0) {
            exits += 1;
        }
    }
    port.child.wait()?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if exits != n {
        return Err(io::Error::other(format!("{exits} of {n} exit statuses")));
    }
    Ok(ms)
}

const RELAY_ROW: &str = "procession exec-port, 4 KiB frames";
const MANY_ROW: &str = "procession exec-port, 900 children";
const SHUTDOWN_ROW: &str = "procession exec-port, {shutdown} of 100";

pub fn run(ctx: &Ctx) -> io::Result<Outcome> {
    crate::util::unpin();
    let exe = port_exe()?;
    let bytes: u64 = 1 << 30;
    let mut out = Outcome::default();

    let mut table = Table::new(
        "exec-port-relay",
        15,
        "15. exec-port: 1 GiB of a child's stdout relayed as framed messages to a reader of the port's stdout",
        "GiB/s",
        Better::Higher,
    );
    table.reference = RELAY_ROW.into();
    let warm = std::cell::RefCell::new(Vec::new());
    relay(&exe, &ctx.helpers.writer, 64 << 20, &warm)?;
    let writer = ctx.helpers.writer.clone();
    let cpu = std::cell::RefCell::new(Vec::new());
    let mut variants = vec![Variant::new(RELAY_ROW, || {
        relay(&exe, &writer, bytes, &cpu)
    })];
    interleave(&mut table, ctx.reps, &mut variants);
    drop(variants);
    let table = table.finish();
    let ratio = table.median(RELAY_ROW).map(|r| r / ERLEXEC_GIBPS);
    out.targets.push(
        Target::check(15, "relay ≥ 3× erlexec's 0.31 GiB/s", ratio, 3.0, false).with_measured(
            format!(
                "{} GiB/s = {}× erlexec",
                table
                    .median(RELAY_ROW)
                    .map_or("n/a".into(), |m| format!("{m:.2}")),
                ratio.map_or("n/a".into(), |r| format!("{r:.2}"))
            ),
        ),
    );
    out.tables.push(table);
    let cpu = cpu.into_inner();
    if !cpu.is_empty() {
        out.text.push(format!(
            "Relay: CPU time of the port and the writer child per GiB (median of {}): {:.2} s; \
             the machine is 2 vCPUs shared with other work, so the wall-clock rate varies more \
             than this.",
            cpu.len(),
            crate::util::stats(&cpu).0
        ));
    }

    let mut table = Table::new(
        "exec-port-900",
        15,
        "15. exec-port: 900 shell children, each printing to stdout and stderr and exiting 12, all relayed",
        "ms",
        Better::Lower,
    );
    table.reference = MANY_ROW.into();
    let mut variants = vec![Variant::new(MANY_ROW, || many(&exe, 900))];
    interleave(&mut table, ctx.reps, &mut variants);
    drop(variants);
    out.tables.push(table.finish());

    let mut table = Table::new(
        "exec-port-shutdown",
        15,
        "15. exec-port: {shutdown} with 100 children that obey SIGTERM, until the port has exited",
        "ms",
        Better::Lower,
    );
    table.reference = SHUTDOWN_ROW.into();
    let pause = ctx.helpers.tiny_pause.clone();
    let mut variants = vec![Variant::new(SHUTDOWN_ROW, || shutdown(&exe, &pause, 100))];
    interleave(&mut table, ctx.reps, &mut variants);
    drop(variants);
    let table = table.finish();
    out.targets.push(Target::check(
        15,
        "{shutdown} with 100 TERM-obeying children < 200 ms",
        table.median(SHUTDOWN_ROW),
        200.0,
        true,
    ));
    out.tables.push(table);
    out.text.push(
        "erlexec was not rerun here: its figures are from `MEASUREMENTS.md` (0.31 GiB/s relay; a \
         shutdown of about 10 s once any child existed). Every relay run checks that exactly \
         1 GiB arrived in frames of at most 4096 bytes; every 900-children run counts 900 \
         replies, 900 stdout and 900 stderr messages and 900 statuses of 3072 (exit 12)."
            .into(),
    );
    Ok(out)
}

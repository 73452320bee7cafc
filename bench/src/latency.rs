//! Scenario 3: round-trip latency through `bench-echo`: write a 32-byte
//! message, wait until the 32 bytes have come back, repeat. 1,000 warm-up
//! trips, then the timed trips. The value is µs per trip.
//!
//! The async row drives procession's `AsyncChild` (`spawn_async`,
//! `write_all().await`, `read().await`) on the same current-thread runtime
//! as the raw tokio row, with the same message, warm-up and trip count.

use std::io::{self, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::results::{Better, Outcome, Table, Target};
use crate::runner::{Ctx, Variant, interleave, ioe, tokio_rt};
use crate::throughput::Placement;

const MSG: [u8; 32] = *b"0123456789abcdef0123456789abcde\n";
const WARMUP: usize = 1_000;

/// The row name of the async round trip (scenario 3's async target).
const ASYNC_NAME: &str = "procession async (spawn_async)";

/// Write the message and read until 32 bytes came back, `n` times; µs/trip
/// over the timed part.
fn trips_sync(
    trips: usize,
    mut write: impl FnMut(&[u8]) -> io::Result<()>,
    mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
) -> io::Result<f64> {
    let mut buf = [0u8; 64 * 1024];
    let mut one = || -> io::Result<()> {
        write(&MSG)?;
        let mut got = 0;
        while got < MSG.len() {
            let n = read(&mut buf)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "echo closed"));
            }
            got += n;
        }
        Ok(())
    };
    for _ in 0..WARMUP {
        one()?;
    }
    let t = Instant::now();
    for _ in 0..trips {
        one()?;
    }
    Ok(t.elapsed().as_secs_f64() * 1e6 / trips as f64)
}

fn variants<'a>(
    echo: &'a Path,
    trips: usize,
    cpu: Option<usize>,
    rt: &'a tokio::runtime::Runtime,
) -> Vec<Variant<'a>> {
    // The child pins itself when `BENCH_CPU` is set (placement X).
    let cpu_env: Vec<(String, String)> = cpu
        .map(|c| ("BENCH_CPU".to_string(), c.to_string()))
        .into_iter()
        .collect();
    let (e1, e2, e3, e4, e5, e6, e7) = (
        cpu_env.clone(),
        cpu_env.clone(),
        cpu_env.clone(),
        cpu_env.clone(),
        cpu_env.clone(),
        cpu_env.clone(),
        cpu_env,
    );
    let procession_read = Variant::new("procession", move || {
        let mut child = procession::Command::new(echo)
            .envs(e1.iter().cloned())
            .stdin(procession::Stdio::piped())
            .stdout(procession::Stdio::piped())
            .spawn()
            .map_err(ioe)?;
        let mut buf = [0u8; 64 * 1024];
        let mut one = |child: &mut procession::Child| -> io::Result<()> {
            child.write_all(&MSG).map_err(ioe)?;
            let mut got = 0;
            while got < MSG.len() {
                match child.read().map_err(ioe)? {
                    Some(b) => {
                        buf[..b.len()].copy_from_slice(&b);
                        got += b.len();
                    }
                    None => return Err(io::Error::other("echo closed")),
                }
            }
            Ok(())
        };
        for _ in 0..WARMUP {
            one(&mut child)?;
        }
        let t = Instant::now();
        for _ in 0..trips {
            one(&mut child)?;
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / trips as f64;
        child.close_stdin();
        child.wait().map_err(ioe)?;
        Ok(us)
    });
    let procession_std_io = Variant::new(
        "procession (ChildStdin/ChildStdout Read/Write)",
        move || {
            let mut child = procession::Command::new(echo)
                .envs(e2.iter().cloned())
                .stdin(procession::Stdio::piped())
                .stdout(procession::Stdio::piped())
                .spawn()
                .map_err(ioe)?;
            let mut inp = child.stdin.take().expect("piped");
            let mut out = child.stdout.take().expect("piped");
            let us = trips_sync(trips, |m| inp.write_all(m), |b| out.read(b))?;
            drop(inp);
            child.wait().map_err(ioe)?;
            Ok(us)
        },
    );
    let std_v = Variant::new("std (blocking)", move || {
        let mut child = std::process::Command::new(echo)
            .envs(e3.iter().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut inp = child.stdin.take().expect("piped");
        let mut out = child.stdout.take().expect("piped");
        let us = trips_sync(trips, |m| inp.write_all(m), |b| out.read(b))?;
        drop(inp);
        child.wait()?;
        Ok(us)
    });
    let tokio_v = Variant::new("tokio (current-thread)", move || {
        rt.block_on(async {
            let mut child = tokio::process::Command::new(echo)
                .envs(e4.iter().cloned())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let mut inp = child.stdin.take().expect("piped");
            let mut out = child.stdout.take().expect("piped");
            let mut buf = vec![0u8; 64 * 1024];
            let mut t = Instant::now();
            for i in 0..WARMUP + trips {
                if i == WARMUP {
                    t = Instant::now();
                }
                inp.write_all(&MSG).await?;
                let mut got = 0;
                while got < MSG.len() {
                    let n = out.read(&mut buf).await?;
                    if n == 0 {
                        return Err(io::Error::other("echo closed"));
                    }
                    got += n;
                }
            }
            let us = t.elapsed().as_secs_f64() * 1e6 / trips as f64;
            drop(inp);
            child.wait().await?;
            Ok(us)
        })
    });
    let procession_async = Variant::new(ASYNC_NAME, move || {
        rt.block_on(async {
            let mut child = procession::Command::new(echo)
                .envs(e7.iter().cloned())
                .stdin(procession::Stdio::piped())
                .stdout(procession::Stdio::piped())
                .spawn_async()
                .map_err(ioe)?;
            let mut t = Instant::now();
            for i in 0..WARMUP + trips {
                if i == WARMUP {
                    t = Instant::now();
                }
                child.write_all(&MSG).await.map_err(ioe)?;
                let mut got = 0;
                while got < MSG.len() {
                    match child.read().await.map_err(ioe)? {
                        Some(b) => got += b.len(),
                        None => return Err(io::Error::other("echo closed")),
                    }
                }
            }
            let us = t.elapsed().as_secs_f64() * 1e6 / trips as f64;
            child.close_stdin();
            child.wait().await.map_err(ioe)?;
            Ok(us)
        })
    });
    let duct_v = Variant::new("duct (stdin_file(os_pipe) + reader())", move || {
        let (r, mut w) = os_pipe::pipe()?;
        let mut expr = duct::cmd(echo, Vec::<String>::new()).stdin_file(r);
        for (k, v) in &e5 {
            expr = expr.env(k, v);
        }
        let reader = expr.reader()?;
        let mut rd = &reader;
        let us = trips_sync(trips, |m| w.write_all(m), |b| rd.read(b))?;
        drop(w);
        let mut rest = Vec::new();
        rd.read_to_end(&mut rest)?; // EOF waits for the child
        Ok(us)
    });
    let subprocess_v = Variant::new("subprocess (Job stdin/stdout)", move || {
        let mut job = subprocess::Exec::cmd(echo)
            .env_extend(e6.iter().cloned())
            .stdin(subprocess::Redirection::Pipe)
            .stdout(subprocess::Redirection::Pipe)
            .start()?;
        let mut inp = job.stdin.take().expect("piped");
        let mut out = job.stdout.take().expect("piped");
        let us = trips_sync(trips, |m| inp.write_all(m), |b| out.read(b))?;
        drop(inp);
        job.wait()?;
        Ok(us)
    });
    vec![
        procession_read,
        procession_std_io,
        std_v,
        tokio_v,
        procession_async,
        duct_v,
        subprocess_v,
    ]
}

pub fn run(ctx: &Ctx) -> io::Result<Outcome> {
    let rt = tokio_rt()?;
    let mut out = Outcome::default();
    let pinned_trips = if ctx.quick { 20_000 } else { 100_000 };
    let unpinned_trips = if ctx.quick { 5_000 } else { 20_000 };
    for (pl, trips) in [
        (Placement::S, pinned_trips),
        (Placement::U, unpinned_trips),
        (Placement::X, unpinned_trips),
    ] {
        let child_cpu = pl.apply();
        let mut table = Table::new(
            &format!("roundtrip-{}", pl.short()),
            3,
            &format!(
                "3. Round trip of 32 bytes through bench-echo, {trips} trips, {}",
                pl.label()
            ),
            "µs per trip",
            Better::Lower,
        );
        let mut vs = variants(&ctx.helpers.echo, trips, child_cpu, &rt);
        interleave(&mut table, ctx.reps, &mut vs);
        drop(vs);
        let mut table = table.finish();
        table.set_vs(
            ASYNC_NAME,
            &[
                ("tokio (current-thread)", "tokio (current-thread)"),
                ("std (blocking)", "std (blocking)"),
            ],
        );
        let tag = pl.short();
        out.targets.push(Target::check(
            3,
            &format!("[{tag}] blocking: ≤ 1.1× raw std blocking (procession ÷ std time)"),
            table.ratio("procession", "std (blocking)"),
            1.1,
            true,
        ));
        out.targets.push(Target::check(
            3,
            &format!("[{tag}] blocking, Read/Write on the pipe ends: ≤ 1.1× raw std blocking"),
            table.ratio(
                "procession (ChildStdin/ChildStdout Read/Write)",
                "std (blocking)",
            ),
            1.1,
            true,
        ));
        out.targets.push(Target::check(
            3,
            &format!("[{tag}] async: ≤ 1.1× raw tokio"),
            table.ratio(ASYNC_NAME, "tokio (current-thread)"),
            1.1,
            true,
        ));
        out.tables.push(table);
    }
    crate::util::unpin();
    Ok(out)
}

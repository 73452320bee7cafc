//! Scenario 7: a slow consumer. `cat /dev/urandom` is read one chunk (at
//! most 64 KiB) per millisecond for 10 s; the parent's VmRSS is sampled
//! every 100 ms. Each run is a fresh worker process (`__slow LIB SECS`).

use std::io::{self, Read};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::results::{Better, Outcome, Series, Table, Target};
use crate::runner::{Ctx, ioe, tokio_rt};

pub const LIBS: [&str; 5] = ["procession", "std", "tokio", "duct", "subprocess"];
const CHUNK: usize = 64 * 1024;
const TOKIO_NOTE: &str = "tokio consumes about half as much because `tokio::time::sleep(1 ms)` \
    sleeps about 2 ms (the timer's millisecond granularity rounds up); the others sleep with \
    `std::thread::sleep`. Every library leaves the data in the kernel pipe and the producer \
    blocked in `write`, so none of them grows.";

#[derive(Debug, Serialize, Deserialize)]
pub struct SlowReport {
    pub lib: String,
    pub rss_before_kib: u64,
    /// (seconds since the spawn, VmRSS KiB)
    pub samples: Vec<(f64, u64)>,
    pub bytes: u64,
    pub chunks: u64,
}

struct Sampler {
    start: Instant,
    next: Instant,
    samples: Vec<(f64, u64)>,
}

impl Sampler {
    fn new() -> Sampler {
        let now = Instant::now();
        Sampler {
            start: now,
            next: now,
            samples: Vec::new(),
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        if now >= self.next {
            self.samples.push((
                now.duration_since(self.start).as_secs_f64(),
                crate::util::rss_kib(),
            ));
            self.next += Duration::from_millis(100);
        }
    }
}

fn read_loop(mut r: impl Read, secs: f64, s: &mut Sampler) -> io::Result<(u64, u64)> {
    let mut buf = vec![0u8; CHUNK];
    let (mut bytes, mut chunks) = (0u64, 0u64);
    while s.start.elapsed().as_secs_f64() < secs {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        chunks += 1;
        std::thread::sleep(Duration::from_millis(1));
        s.tick();
    }
    Ok((bytes, chunks))
}

pub fn worker(lib: &str, secs: f64) -> io::Result<()> {
    let rt = tokio_rt()?;
    let rss_before = crate::util::rss_kib();
    let mut s = Sampler::new();
    s.tick();
    let (bytes, chunks) = match lib {
        "procession" => {
            let mut stream = procession::Command::new("cat")
                .arg("/dev/urandom")
                .stream()
                .map_err(ioe)?;
            let (mut bytes, mut chunks) = (0u64, 0u64);
            while s.start.elapsed().as_secs_f64() < secs {
                match stream.next() {
                    Some(c) => bytes += c.map_err(ioe)?.len() as u64,
                    None => break,
                }
                chunks += 1;
                std::thread::sleep(Duration::from_millis(1));
                s.tick();
            }
            drop(stream);
            (bytes, chunks)
        }
        "std" => {
            let mut child = std::process::Command::new("cat")
                .arg("/dev/urandom")
                .stdout(Stdio::piped())
                .spawn()?;
            let out = child.stdout.take().expect("piped");
            let r = read_loop(out, secs, &mut s)?;
            child.kill()?;
            child.wait()?;
            r
        }
        "tokio" => rt.block_on(async {
            let mut child = tokio::process::Command::new("cat")
                .arg("/dev/urandom")
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()?;
            let mut out = child.stdout.take().expect("piped");
            let mut buf = vec![0u8; CHUNK];
            let (mut bytes, mut chunks) = (0u64, 0u64);
            while s.start.elapsed().as_secs_f64() < secs {
                let n = out.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                bytes += n as u64;
                chunks += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
                s.tick();
            }
            child.start_kill()?;
            child.wait().await?;
            Ok::<_, io::Error>((bytes, chunks))
        })?,
        "duct" => {
            let reader = duct::cmd("cat", ["/dev/urandom"]).unchecked().reader()?;
            let r = read_loop(&reader, secs, &mut s)?;
            reader.kill()?;
            r
        }
        "subprocess" => {
            let mut job = subprocess::Exec::cmd("cat")
                .arg("/dev/urandom")
                .stdout(subprocess::Redirection::Pipe)
                .start()?;
            let out = job.stdout.take().expect("piped");
            let r = read_loop(out, secs, &mut s)?;
            job.kill()?;
            job.wait()?;
            r
        }
        other => return Err(io::Error::other(format!("unknown lib {other}"))),
    };
    let rep = SlowReport {
        lib: lib.into(),
        rss_before_kib: rss_before,
        samples: s.samples,
        bytes,
        chunks,
    };
    println!("{}", serde_json::to_string(&rep).map_err(ioe)?);
    Ok(())
}

pub fn run(ctx: &Ctx) -> io::Result<Outcome> {
    let secs: f64 = if ctx.quick { 2.0 } else { 10.0 };
    let mut reports: Vec<Vec<SlowReport>> = LIBS.iter().map(|_| Vec::new()).collect();
    for rep in 0..ctx.reps {
        for (li, lib) in LIBS.iter().enumerate() {
            let secs = secs.to_string();
            let args = ["__slow".as_ref(), lib.as_ref(), secs.as_ref()];
            let r: SlowReport = crate::util::run_worker(&args)?
                .map_err(|why| io::Error::other(format!("__slow {lib}: {why}")))?;
            let peak = r.samples.iter().map(|s| s.1).max().unwrap_or(0);
            eprintln!(
                "  [slow] rep {}/{} {:<11} RSS {} → peak {} KiB (+{} KiB), {} chunks, {:.1} MiB read",
                rep + 1,
                ctx.reps,
                lib,
                r.rss_before_kib,
                peak,
                peak as i64 - r.rss_before_kib as i64,
                r.chunks,
                r.bytes as f64 / (1 << 20) as f64
            );
            reports[li].push(r);
        }
    }
    let growth = |r: &SlowReport| {
        let peak = r.samples.iter().map(|s| s.1).max().unwrap_or(0);
        peak as f64 - r.rss_before_kib as f64
    };
    let mut t = Table::new(
        "slow-growth",
        7,
        &format!(
            "7. Slow consumer, `cat /dev/urandom` read at 1 chunk/ms for {secs} s: peak parent RSS growth over the RSS before the spawn"
        ),
        "KiB",
        Better::Lower,
    );
    let mut rate = Table::new(
        "slow-rate",
        7,
        "7. Slow consumer: data actually consumed",
        "MiB/s",
        Better::Higher,
    );
    for (li, lib) in LIBS.iter().enumerate() {
        t.push(lib, reports[li].iter().map(growth).collect());
        rate.push(
            lib,
            reports[li]
                .iter()
                .map(|r| r.bytes as f64 / (1 << 20) as f64 / secs)
                .collect(),
        );
    }
    let t = t.finish();
    let mut out = Outcome::default();
    out.text.push(TOKIO_NOTE.into());
    out.targets.push(
        Target::check(
            7,
            "parent RSS growth ≤ 1 MiB",
            t.median("procession").map(|k| k / 1024.0),
            1.0,
            true,
        )
        .with_measured(format!(
            "{:.0} KiB (max {:.0} KiB)",
            t.median("procession").unwrap_or(f64::NAN),
            t.rows
                .iter()
                .find(|r| r.variant == "procession")
                .map_or(f64::NAN, |r| r.max)
        )),
    );
    out.tables.push(t);
    out.tables.push(rate.finish());
    // RSS over time, first repetition of each library.
    let series = LIBS
        .iter()
        .enumerate()
        .filter_map(|(li, lib)| {
            reports[li].first().map(|r| Series {
                name: lib.to_string(),
                points: r
                    .samples
                    .iter()
                    .map(|&(t, k)| (t, k as f64 / 1024.0))
                    .collect(),
            })
        })
        .collect();
    out.series.push(("slow-rss".into(), series));
    Ok(out)
}

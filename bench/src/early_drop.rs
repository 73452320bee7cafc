//! Scenario 8: stream early-drop. Start `cat /dev/zero`, read one chunk,
//! then time how long dropping the stream (or what a peer needs to give up
//! on the child without leaking it) keeps the consumer from continuing.
//! Each repetition does K drops; its value is the median of the K.

use std::io::{self, Read};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use crate::results::{Better, Outcome, Table, Target};
use crate::runner::{Ctx, Variant, interleave, ioe, tokio_rt};
use crate::util::stats;

fn wait_unreaped_zero() -> io::Result<()> {
    let t = Instant::now();
    while procession::__test_support::unreaped_children() > 0 {
        if t.elapsed() > Duration::from_secs(30) {
            return Err(io::Error::other("children left unreaped"));
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    Ok(())
}

fn read_one(mut r: impl Read) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    if r.read(&mut buf)? == 0 {
        return Err(io::Error::other("no data"));
    }
    Ok(())
}

/// Median µs of `k` timed drops.
fn median_of(k: usize, mut one: impl FnMut() -> io::Result<Duration>) -> io::Result<f64> {
    let mut v = Vec::with_capacity(k);
    for _ in 0..k {
        v.push(one()?.as_secs_f64() * 1e6);
    }
    Ok(stats(&v).0)
}

fn variants(k: usize, rt: &tokio::runtime::Runtime) -> Vec<Variant<'_>> {
    vec![
        Variant::new("procession (drop(stream))", move || {
            median_of(k, || {
                let mut s = procession::Command::new("cat")
                    .arg("/dev/zero")
                    .stream()
                    .map_err(ioe)?;
                s.next()
                    .ok_or_else(|| io::Error::other("no data"))?
                    .map_err(ioe)?;
                let t = Instant::now();
                drop(s);
                let d = t.elapsed();
                wait_unreaped_zero()?;
                Ok(d)
            })
        }),
        Variant::new("std (drop stdout + kill + wait)", move || {
            median_of(k, || {
                let mut c = std::process::Command::new("cat")
                    .arg("/dev/zero")
                    .stdout(Stdio::piped())
                    .spawn()?;
                let mut out = c.stdout.take().expect("piped");
                read_one(&mut out)?;
                let t = Instant::now();
                drop(out);
                c.kill()?;
                c.wait()?;
                Ok(t.elapsed())
            })
        }),
        Variant::new("tokio (kill_on_drop, drop child)", move || {
            rt.block_on(async {
                let mut v = Vec::with_capacity(k);
                for _ in 0..k {
                    let mut c = tokio::process::Command::new("cat")
                        .arg("/dev/zero")
                        .stdout(Stdio::piped())
                        .kill_on_drop(true)
                        .spawn()?;
                    let mut out = c.stdout.take().expect("piped");
                    let mut buf = vec![0u8; 64 * 1024];
                    if out.read(&mut buf).await? == 0 {
                        return Err(io::Error::other("no data"));
                    }
                    let t = Instant::now();
                    drop(out);
                    drop(c);
                    v.push(t.elapsed().as_secs_f64() * 1e6);
                    // Let the runtime reap the orphan before the next round.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Ok(stats(&v).0)
            })
        }),
        Variant::new("duct (drop ReaderHandle)", move || {
            median_of(k, || {
                let r = duct::cmd("cat", ["/dev/zero"]).unchecked().reader()?;
                read_one(&r)?;
                let t = Instant::now();
                drop(r);
                Ok(t.elapsed())
            })
        }),
        Variant::new("subprocess (drop Job: closes stdout, waits)", move || {
            median_of(k, || {
                let job = subprocess::Exec::cmd("cat")
                    .arg("/dev/zero")
                    .stdout(subprocess::Redirection::Pipe)
                    .start()?;
                read_one(job.stdout.as_ref().expect("piped"))?;
                let t = Instant::now();
                drop(job);
                Ok(t.elapsed())
            })
        }),
    ]
}

pub fn run(ctx: &Ctx) -> io::Result<Outcome> {
    let k = if ctx.quick { 30 } else { 200 };
    let rt = tokio_rt()?;
    crate::util::unpin();
    let mut table = Table::new(
        "early-drop",
        8,
        &format!(
            "8. Early drop of a `cat /dev/zero` stream after one chunk (median of {k} drops per repetition), unpinned"
        ),
        "µs the consumer is blocked",
        Better::Lower,
    );
    table.reference = "procession (drop(stream))".into();
    for v in &mut variants(3, &rt) {
        (v.run)()?;
    }
    let mut vs = variants(k, &rt);
    interleave(&mut table, ctx.reps, &mut vs);
    drop(vs);
    let table = table.finish();
    let mut out = Outcome::default();
    out.targets.push(Target::check(
        8,
        "time from drop to the consumer continuing < 100 µs",
        table.median("procession (drop(stream))"),
        100.0,
        true,
    ));
    out.text.push(
        "std and subprocess must block until the child is gone to avoid a zombie; tokio \
         (`kill_on_drop`) and duct hand the child to a background or later reaping; \
         procession closes the pipes and hands the child to its reaper (the stop sequence \
         follows after `exit_timeout` if it does not exit on its own; `cat` dies of SIGPIPE)."
            .into(),
    );
    out.tables.push(table);
    Ok(out)
}

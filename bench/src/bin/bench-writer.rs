//! `bench-writer N CHUNK`: writes N bytes of `a` to stdout in CHUNK-sized
//! `write(2)`s (unbuffered), then exits. The producer of the throughput
//! scenarios: it does nothing but write, so it is never the bottleneck.

use std::io::Write;
use std::os::fd::FromRawFd;

include!("../helpers/pin.rs");

fn main() {
    pin_from_env();
    let mut args = std::env::args().skip(1);
    let total: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: bench-writer N CHUNK");
    let chunk: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(64 * 1024);
    let buf = vec![b'a'; chunk];
    // SAFETY: fd 1 is open for the life of the process; ManuallyDrop keeps
    // it from being closed twice.
    let mut out = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(1) });
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk as u64) as usize;
        if out.write_all(&buf[..n]).is_err() {
            std::process::exit(1);
        }
        left -= n as u64;
    }
}

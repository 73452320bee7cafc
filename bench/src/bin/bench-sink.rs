//! `bench-sink [BUF]`: reads stdin into a BUF-byte buffer (64 KiB by
//! default) until end of file and discards it. The consumer of the stdin
//! throughput scenario.

use std::io::Read;
use std::os::fd::FromRawFd;

include!("../helpers/pin.rs");

fn main() {
    pin_from_env();
    let size: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(64 * 1024);
    let mut buf = vec![0u8; size];
    // SAFETY: fd 0 is open for the life of the process; ManuallyDrop keeps
    // it from being closed twice.
    let mut input = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(0) });
    let mut total: u64 = 0;
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => std::process::exit(1),
        }
    }
    std::hint::black_box(total);
}

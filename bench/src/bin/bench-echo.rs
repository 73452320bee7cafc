//! `bench-echo`: reads stdin into a 64 KiB buffer and writes exactly what
//! each `read(2)` returned back to stdout, unbuffered, until end of file.
//! The peer of the round-trip scenario.

use std::io::{Read, Write};
use std::os::fd::FromRawFd;

include!("../helpers/pin.rs");

fn main() {
    pin_from_env();
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: fds 0 and 1 are open for the life of the process; ManuallyDrop
    // keeps them from being closed twice.
    let mut input = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(0) });
    // SAFETY: as above.
    let mut output = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(1) });
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if output.write_all(&buf[..n]).is_err() {
                    std::process::exit(1);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => std::process::exit(1),
        }
    }
}

//! `bench-lines LINES [LEN]`: writes LINES lines of LEN bytes each (80 by
//! default: LEN - 1 printable bytes and `\n`) to stdout, then exits. The
//! producer of the line-framing scenario: one block of whole lines (about
//! 64 KiB) is made once and written again and again in unbuffered
//! `write(2)`s, so producing the lines costs no more than the bench-writer's
//! bytes do.

use std::io::Write;
use std::os::fd::FromRawFd;

include!("../helpers/pin.rs");

fn main() {
    pin_from_env();
    let mut args = std::env::args().skip(1);
    let lines: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: bench-lines LINES [LEN]");
    let len: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .filter(|&n: &usize| n >= 1)
        .unwrap_or(80);
    // As many whole lines as fit in 64 KiB (at least one).
    let per_block = (64 * 1024 / len).max(1);
    let mut block = Vec::with_capacity(per_block * len);
    for i in 0..per_block {
        // Printable bytes that differ from line to line, never a newline.
        block.extend((0..len - 1).map(|j| b'!' + ((i + j) % 94) as u8));
        block.push(b'\n');
    }
    // SAFETY: fd 1 is open for the life of the process; ManuallyDrop keeps
    // it from being closed twice.
    let mut out = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(1) });
    let mut left = lines;
    while left > 0 {
        let n = left.min(per_block as u64) as usize;
        if out.write_all(&block[..n * len]).is_err() {
            std::process::exit(1);
        }
        left -= n as u64;
    }
}

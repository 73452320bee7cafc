//! LineCodec against the plain statement of the line semantics: the
//! input is cut into chunks where the fuzzer says, every piece is at most
//! the maximum, the bytes come out in order with only the line endings
//! removed, and an incomplete piece is followed by the rest of its line.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use procession::{LineCodec, Newline};

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else { return };
    let Some((&cuts, input)) = rest.split_first() else { return };
    let max = 1 + usize::from(head & 0x0f);
    let newline = [Newline::Lf, Newline::CrLf, Newline::Any][usize::from(head >> 4) % 3];
    let mut codec = LineCodec::new(max).newline(newline);
    let mut out: Vec<u8> = Vec::new();
    let mut check = |line: procession::Line, out: &mut Vec<u8>| {
        assert!(line.bytes.len() <= max);
        out.extend_from_slice(&line.bytes);
        if line.complete {
            out.push(b'\n');
        }
    };
    let step = 1 + usize::from(cuts);
    for chunk in input.chunks(step) {
        codec.push(Bytes::copy_from_slice(chunk));
        while let Some(line) = codec.next_line() {
            check(line, &mut out);
        }
    }
    codec.finish();
    while let Some(line) = codec.next_line() {
        check(line, &mut out);
    }
    // The same bytes with every ending written as \n.
    let mut want = Vec::new();
    let mut i = 0;
    while i < input.len() {
        let crlf = newline != Newline::Lf && input[i..].starts_with(b"\r\n");
        if crlf || input[i] == b'\n' || (newline == Newline::Any && input[i] == b'\r') {
            want.push(b'\n');
            i += if crlf { 2 } else { 1 };
        } else {
            want.push(input[i]);
            i += 1;
        }
    }
    assert_eq!(out, want);
});

//! PacketCodec on arbitrary bytes cut anywhere: never a panic, never a
//! packet over the maximum, and what comes out re-encodes to exactly the
//! bytes consumed (an error only for a header over the maximum or a
//! stream that ends inside a packet).
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use procession::{FrameError, PacketCodec, PacketSize};

fuzz_target!(|data: &[u8]| {
    let Some((&head, input)) = data.split_first() else { return };
    let size = [PacketSize::One, PacketSize::Two, PacketSize::Four][usize::from(head & 3) % 3];
    let max = 1 + usize::from(head >> 2) * 97;
    let mut codec = PacketCodec::new(size).max_len(max);
    let encoder = codec.clone();
    let mut again = BytesMut::new();
    let step = 1 + usize::from(head % 7);
    let mut failed = None;
    'outer: for chunk in input.chunks(step) {
        codec.push(Bytes::copy_from_slice(chunk));
        loop {
            match codec.next_packet() {
                Ok(Some(p)) => {
                    assert!(p.len() <= codec.max());
                    encoder.encode(&p, &mut again).unwrap();
                }
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e);
                    break 'outer;
                }
            }
        }
    }
    if failed.is_none() {
        codec.finish();
        loop {
            match codec.next_packet() {
                Ok(Some(p)) => encoder.encode(&p, &mut again).unwrap(),
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
    }
    match failed {
        None => assert_eq!(&again[..], input),
        Some(FrameError::TooLong { len, max: m }) => assert!(len > m && m == codec.max()),
        Some(FrameError::Truncated { have, need }) => assert!(have < need),
        Some(e) => panic!("unexpected {e}"),
    }
    // Nothing more after an error.
    assert_eq!(codec.next_packet(), Ok(None));
});

//! Placeholders for procession's async API (feature "tokio"), which is
//! being written. Each returns `ErrorKind::Unsupported`, which the runner
//! reports as "n/a (pending procession async API)" instead of a failure.
//!
//! # When the API lands
//!
//! 1. In `bench/Cargo.toml`, enable it: `procession = { path = "..",
//!    default-features = false, features = ["tokio"] }`.
//! 2. Replace the body of [`roundtrip_variant`] by the planned code below
//!    (names as announced: `Command::spawn_async() -> AsyncChild`,
//!    `write_all(&[u8]).await`, `read().await -> Option<Bytes>`,
//!    `wait().await`):
//!
//! ```text
//! Variant::new(ROUNDTRIP_NAME, move || {
//!     rt.block_on(async {
//!         let mut child = procession::Command::new(echo)
//!             .stdin(procession::Stdio::piped())
//!             .stdout(procession::Stdio::piped())
//!             .spawn_async()
//!             .map_err(ioe)?;
//!         let mut t = Instant::now();
//!         for i in 0..WARMUP + trips {
//!             if i == WARMUP { t = Instant::now(); }
//!             child.write_all(&MSG).await.map_err(ioe)?;
//!             let mut got = 0;
//!             while got < MSG.len() {
//!                 match child.read().await.map_err(ioe)? {
//!                     Some(b) => got += b.len(),
//!                     None => return Err(io::Error::other("echo closed")),
//!                 }
//!             }
//!         }
//!         let us = t.elapsed().as_secs_f64() * 1e6 / trips as f64;
//!         child.close_stdin();
//!         child.wait().await.map_err(ioe)?;
//!         Ok(us)
//!     })
//! })
//! ```
//!
//! 3. Optionally add async rows to scenarios 1 and 2 the same way
//!    (`Command::stream_async()` is a `futures::Stream` of
//!    `io::Result<Bytes>`; consume it with `StreamExt::next`), next to the
//!    "tokio" rows of `throughput.rs`.

use std::io;
use std::path::Path;

use crate::runner::Variant;

/// The row name of the async round trip (scenario 3's async target).
pub const ROUNDTRIP_NAME: &str = "procession async (spawn_async)";

/// Why the async rows are empty.
pub const PENDING: &str = "n/a (pending procession async API)";

/// Scenario 3, async: procession's `AsyncChild` against raw tokio.
/// PLACEHOLDER until `Command::spawn_async` exists.
pub fn roundtrip_variant<'a>(
    _echo: &'a Path,
    _trips: usize,
    _rt: &'a tokio::runtime::Runtime,
) -> Variant<'a> {
    Variant::new(ROUNDTRIP_NAME, || {
        Err(io::Error::new(io::ErrorKind::Unsupported, PENDING))
    })
}

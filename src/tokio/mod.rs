//! The async API on tokio (feature `tokio`): the same semantics as the
//! blocking API, without a thread per child.
//!
//! - [`Command::spawn_async`](crate::Command::spawn_async) gives an
//!   [`AsyncChild`]: `wait`, `stop`, `read`, `read_stderr`, `read_any`,
//!   `write_all` as futures; pipes implement `AsyncRead`/`AsyncWrite`.
//! - [`Command::stream_async`](crate::Command::stream_async),
//!   [`events_async`](crate::Command::events_async) and
//!   [`output_async`](crate::Command::output_async) run the engine's
//!   streaming state machine (the one behind [`Stream`](crate::Stream)),
//!   waiting on the runtime's readiness instead of `poll(2)`.
//! - Waiting uses the child's pidfd registered with the runtime: no SIGCHLD
//!   handler, no blocking thread per child.
//!
//! Everything here must be created inside a tokio runtime (current-thread or
//! multi-thread); a child dropped with its runtime is stopped and reaped by
//! the background reaper, which does not depend on the runtime.
//!
//! # Serving a child's output to a slow client
//!
//! The ffmpeg-to-HTTP pattern: the client's pace sets the child's pace, and
//! when the client goes away the child is stopped. See
//! `examples/stream_to_tcp.rs` for a complete program.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use futures_util::StreamExt;
//! use procession::Command;
//! use tokio::io::AsyncWriteExt;
//!
//! let (mut client, mut server_side) = tokio::io::duplex(64 * 1024);
//! let mut out = Command::new("seq").arg("100000").stream_async()?;
//! tokio::spawn(async move {
//!     while let Some(chunk) = out.next().await {
//!         // Back-pressure: a slow client makes this await, the pipe fills,
//!         // and `seq` blocks in write(2).
//!         if server_side.write_all(&chunk?).await.is_err() {
//!             break; // client gone: dropping `out` stops the child
//!         }
//!     }
//!     Ok::<_, std::io::Error>(())
//! });
//! let mut received = Vec::new();
//! tokio::io::AsyncReadExt::read_to_end(&mut client, &mut received).await?;
//! assert!(received.ends_with(b"99999\n100000\n"));
//! # Ok(())
//! # }
//! ```

mod child;
mod pipe;
mod stream;
mod wait;

pub use child::AsyncChild;
pub use pipe::{AsyncChildStderr, AsyncChildStdin, AsyncChildStdout};
pub use stream::{AsyncEvents, AsyncInputSink, AsyncStream};

use crate::Error;
use crate::error::{ErrorKind, Step};

/// The error when an async method is called outside a tokio runtime.
fn no_runtime(program: &std::ffi::OsStr) -> Error {
    Error::new(
        program,
        Step::Spawn,
        ErrorKind::InvalidInput,
        Some("the async API must be used inside a tokio runtime".into()),
        None,
    )
}

/// Checks that a runtime (with its I/O driver) is current.
fn check_runtime(program: &std::ffi::OsStr) -> Result<(), Error> {
    tokio::runtime::Handle::try_current()
        .map(|_| ())
        .map_err(|_| no_runtime(program))
}

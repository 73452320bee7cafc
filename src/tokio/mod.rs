//! The async API on tokio (feature `tokio`): the same semantics as the
//! blocking API, without a thread per child.
//!
//! - [`Command::spawn_async`](crate::Command::spawn_async) gives an
//!   [`AsyncChild`]: `wait`, `stop`, `read`, `read_stderr`, `read_any`,
//!   `write_all` as futures; pipes implement `AsyncRead`/`AsyncWrite`.
//! - [`Command::stream_async`](crate::Command::stream_async),
//!   [`events_async`](crate::Command::events_async) and
//!   [`output_async`](crate::Command::output_async) run the engine's
//!   streaming state machine (the one behind [`Chunks`](crate::Chunks)),
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
mod forward;
mod framed;
mod pipe;
mod stream;
pub(crate) mod wait;

pub use child::AsyncChild;
pub use framed::{AsyncChunksReader, AsyncFrames};
pub use pipe::{AsyncChildStderr, AsyncChildStdin, AsyncChildStdout};
pub use stream::{AsyncChunks, AsyncEvents, AsyncInputSink};

use std::sync::Mutex;

use crate::Error;
use crate::error::{ErrorKind, Step, Subject};

/// The error when the async API cannot run on the current thread's runtime.
fn runtime_error(program: impl Subject, why: &str) -> Error {
    Error::new(
        program,
        Step::Spawn,
        ErrorKind::InvalidInput,
        Some(why.into()),
        None,
    )
}

/// Runtimes already checked by [`check_runtime`], by id, with the result
/// (a program makes few runtimes; the list is bounded all the same).
static CHECKED: Mutex<Vec<(tokio::runtime::Id, bool)>> = Mutex::new(Vec::new());

/// Checks, before anything is spawned, that a tokio runtime is current and
/// that it has its I/O and time drivers (`enable_io`, `enable_time`, or
/// `enable_all`): the async API registers pipes and pidfds with the reactor
/// and sets timers, and tokio panics on a runtime without them. A child
/// started before such a panic would be left running, so the check comes
/// first.
///
/// tokio has no way to ask a runtime which drivers it has, so the first
/// call on each runtime tries them (a timer and a registered eventfd)
/// inside `catch_unwind`; tokio's panic message is then printed once by the
/// panic hook, and this returns a clear error instead of panicking.
fn check_runtime(program: &std::ffi::OsStr) -> Result<(), Error> {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return Err(runtime_error(
            program,
            "the async API must be used inside a tokio runtime",
        ));
    };
    let id = handle.id();
    let known = {
        let checked = CHECKED.lock().unwrap_or_else(|p| p.into_inner());
        checked.iter().find(|(i, _)| *i == id).map(|(_, ok)| *ok)
    };
    let ok = match known {
        Some(ok) => ok,
        None => {
            // The probe's eventfd is made outside `catch_unwind`: a full
            // descriptor table is a passing shortage to report, not a
            // runtime without drivers to remember.
            let probe = crate::sys::fd::eventfd().map_err(|e| {
                Error::os(program, Step::Spawn, e)
                    .with_detail("cannot make the descriptor that probes the tokio runtime")
            })?;
            let registered = std::panic::catch_unwind(|| {
                let _timer = tokio::time::sleep(std::time::Duration::ZERO);
                pipe::Registered::new(probe).map(drop)
            });
            let ok = match registered {
                Ok(Ok(())) => true,
                // An I/O error registering (not a missing driver, which
                // panics): report it, remember nothing.
                Ok(Err(e)) => {
                    return Err(Error::os(program, Step::Spawn, e)
                        .with_detail("cannot register with the tokio runtime's reactor"));
                }
                Err(_) => false,
            };
            let mut checked = CHECKED.lock().unwrap_or_else(|p| p.into_inner());
            if checked.len() >= 64 {
                checked.remove(0);
            }
            checked.push((id, ok));
            ok
        }
    };
    if ok {
        Ok(())
    } else {
        Err(runtime_error(
            program,
            "the tokio runtime has no I/O or time driver: build it with \
             enable_all() (or enable_io() and enable_time())",
        ))
    }
}

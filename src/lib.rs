//! procession runs and supervises external programs: it streams their
//! output with back-pressure, feeds their input, and controls their whole
//! life (signals, process groups, timeouts, a stop sequence) so that no
//! zombie, orphan or leaked file descriptor is left behind.
//!
//! # Quick start
//!
//! ```
//! use procession::{Command, Signal, Stdio};
//! use std::io::Read;
//! use std::time::Duration;
//!
//! // Run a program and read its output.
//! let mut child = Command::new("echo").arg("Hello World!").stdout(Stdio::piped()).spawn()?;
//! let mut out = String::new();
//! child.stdout().unwrap().read_to_string(&mut out)?;
//! assert_eq!(out, "Hello World!\n");
//! assert!(child.wait()?.success());
//!
//! // Stop a program: SIGTERM to its whole group, SIGKILL 3 s later if needed.
//! let mut child = Command::new("sleep").arg("1000")
//!     .kill_timeout(Duration::from_secs(3)).kill_group(true).spawn()?;
//! let status = child.stop()?;
//! assert_eq!(status.signal(), Some(Signal::TERM));
//!
//! // A deadline: the stop sequence starts after 100 ms.
//! let status = Command::shell("sleep 10").timeout(Duration::from_millis(100)).status()?;
//! assert!(status.timed_out());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What every child gets
//!
//! - Only descriptors 0, 1 and 2 (everything else is closed at `execve`),
//!   default signal dispositions and an empty signal mask, whatever the
//!   parent had.
//! - Its own process group, unless [`Command::process_group`] says otherwise.
//! - A pidfd, so signals never reach a process that reused its pid.
//! - Reaping: by [`Child::wait`], or by a background thread once the handle
//!   is dropped. procession installs no SIGCHLD handler.
//!
//! # Layout
//!
//! [`Command`] (plain data) → `engine` (spawn plan, per-child state machine,
//! background reaper) → `sys` (the only `unsafe` code: clone, pidfd, pipes,
//! signals). See `docs/ARCHITECTURE.md`.

#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!("procession supports Linux only for now; other Unix systems need a `sys` port");

mod child;
mod command;
mod engine;
mod error;
mod pipe;
mod signal;
mod status;
mod stdio;
mod sys;

pub use child::{Child, Signaller};
pub use command::{Command, DEFAULT_KILL_TIMEOUT, DEFAULT_PIPE_CAPACITY, ProcessGroup};
pub use error::{Error, ErrorKind, Step};
pub use pipe::{ChildStderr, ChildStdin, ChildStdout};
pub use signal::{ParseSignalError, Signal};
pub use status::{Ended, ExitStatus};
pub use stdio::Stdio;

/// Support for procession's own test suite; not part of the public API.
#[doc(hidden)]
pub mod __test_support {
    pub use crate::sys::signal::Disposition;

    /// Children spawned by this process and not yet reaped.
    pub fn unreaped_children() -> usize {
        crate::engine::process::unreaped()
    }

    /// Starts the background reaper so that its descriptors exist before a
    /// test takes its descriptor snapshot.
    pub fn start_reaper() -> bool {
        crate::engine::reaper::start()
    }

    /// The disposition of signal `sig` in this process.
    pub fn disposition(sig: i32) -> std::io::Result<Disposition> {
        crate::sys::signal::disposition(sig)
    }
}

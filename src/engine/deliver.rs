//! Delivery threads: one per stream handed to a function
//! ([`Stdio::callback`](crate::Stdio::callback), [`Stdio::channel`](crate::Stdio::channel)).
//!
//! The thread reads the pipe and calls the function with each chunk; while
//! the function runs nothing is read, so the child's writes block on the
//! full pipe (back-pressure). It ends at end-of-file, when the function
//! wants no more, or, once the child has exited (an eventfd says so), when
//! the drain timeout has passed (a grandchild may keep the pipe open).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::stdio::{Callback, Sink};
use crate::sys::fd;

/// Starts the thread. `done` runs when it ends, whatever the reason.
pub(crate) fn start(
    pipe: OwnedFd,
    exited: Arc<OwnedFd>,
    sink: Callback,
    max_chunk: usize,
    drain: Duration,
    done: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("procession-out".into())
        .spawn(move || {
            let mut sink = sink.sink();
            if run(&pipe, &exited, &mut sink, max_chunk, drain) {
                // The end of the stream: a line codec hands out its last,
                // unterminated line.
                let _ = std::panic::catch_unwind(AssertUnwindSafe(|| sink(None)));
            }
            // The read end closes here, before `done`: a child still
            // writing gets EPIPE rather than blocking forever.
            drop(pipe);
            done();
        })
        .map(|_| ())
}

/// Delivers the stream; whether the function still wants the end (it
/// neither refused more nor panicked).
fn run(
    pipe: &OwnedFd,
    exited: &OwnedFd,
    sink: &mut Sink,
    max_chunk: usize,
    drain: Duration,
) -> bool {
    let mut deadline: Option<Instant> = None;
    let mut buf = BytesMut::new();
    loop {
        // Checked on every pass, not only when the pipe is empty: a
        // grandchild that keeps the pipe full (a slow function) must not
        // hold the exit back past the drain timeout.
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return true;
        }
        let mut fds = [
            libc::pollfd {
                fd: pipe.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: exited.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // The eventfd stays readable once written (nobody drains it, so
        // every stream of the child sees it); it is watched until seen.
        let watched = if deadline.is_some() { 1 } else { 2 };
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if fd::poll_many(&mut fds[..watched], timeout).is_err() {
            return true;
        }
        if watched == 2 && fds[1].revents != 0 {
            deadline = Some(super::after(Instant::now(), drain));
        }
        if fds[0].revents != 0 {
            match fd::read_buf(pipe.as_fd(), &mut buf, max_chunk) {
                Ok(0) | Err(_) => return true,
                Ok(_) => {
                    let chunk = buf.split().freeze();
                    let more = std::panic::catch_unwind(AssertUnwindSafe(|| sink(Some(chunk))));
                    // A function that panicked gets nothing more.
                    if !matches!(more, Ok(true)) {
                        return false;
                    }
                }
            }
        }
    }
}

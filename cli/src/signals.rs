//! Forwarding SIGINT, SIGTERM and SIGHUP from procession to the program.

use std::io;

use procession::{Signal, Signaller};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The signals procession forwards.
pub const FORWARDED: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// Installs the handlers. Call it before spawning the program: from then on a
/// signal no longer ends procession, and one that arrives before the
/// forwarding thread runs is kept and forwarded once it does. (The program
/// itself starts with default dispositions: the library resets them.)
pub fn catch() -> io::Result<Signals> {
    Signals::new(FORWARDED)
}

/// Forwards every signal caught by `signals` to the program (to its process
/// group when `group`), on a background thread that never ends on its own;
/// procession ends it by exiting.
pub fn forward(mut signals: Signals, to: Signaller, group: bool) -> io::Result<()> {
    std::thread::Builder::new()
        .name("signal-forwarder".into())
        .spawn(move || {
            for raw in signals.forever() {
                let Some(signal) = Signal::new(raw) else {
                    continue;
                };
                // Fails only once the program has been reaped (nothing left
                // to signal) or if the kernel refuses; neither is worth more
                // than a dropped signal.
                let _ = if group {
                    to.signal_group(signal)
                } else {
                    to.signal(signal)
                };
            }
        })
        .map(drop)
}

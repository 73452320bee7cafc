//! Forwarding the signals procession receives to the program (and, unless
//! `--foreground`, to the rest of procession's process group).

use std::io::{self, Write};
use std::os::unix::net::UnixStream;

use libc::{
    SIGABRT, SIGALRM, SIGCONT, SIGHUP, SIGINT, SIGIO, SIGPIPE, SIGPROF, SIGPWR, SIGQUIT, SIGSTKFLT,
    SIGSYS, SIGTERM, SIGURG, SIGUSR1, SIGUSR2, SIGVTALRM, SIGWINCH, SIGXCPU, SIGXFSZ,
};
use procession::{Signal, Signaller};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;

use crate::group::{Group, Reached};

/// The signals procession catches and forwards: every catchable one except
///
/// - SIGCHLD (the library's business),
/// - SIGTSTP, SIGTTIN and SIGTTOU, which keep their default action so that
///   Ctrl-Z stops procession together with its job, as with GNU `timeout`,
/// - SIGBUS and SIGTRAP, and SIGILL, SIGFPE and SIGSEGV (which signal-hook
///   refuses): a real fault or breakpoint in procession must not be caught,
/// - SIGKILL and SIGSTOP, which cannot be.
pub fn forwarded() -> Vec<i32> {
    let mut signals = vec![
        SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGSTKFLT,
        SIGCONT, SIGURG, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPWR, SIGSYS,
    ];
    signals.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    signals.retain(|s| !signal_hook::consts::FORBIDDEN.contains(s));
    signals
}

/// The caught signals, with who sent each.
pub type Caught = SignalsInfo<WithOrigin>;

/// Installs the handlers. Call it before spawning the program: from then on a
/// signal no longer ends procession, and one that arrives before the
/// forwarding thread runs is kept and forwarded once it does. (The program
/// itself starts with default dispositions: the library resets them.)
pub fn catch() -> io::Result<Caught> {
    SignalsInfo::<WithOrigin>::new(forwarded())
}

/// Whether a caught signal is forwarded: only when a process other than
/// procession sent it (`kill`, `sigqueue`, ...). One the kernel generated is
/// not: a terminal's Ctrl-C, Ctrl-\, SIGWINCH or hang-up went to its whole
/// foreground group, the program included, already; and one that procession
/// caused itself (SIGPIPE from a write of its own) is nobody else's business.
fn should_forward(cause: Cause, sender: Option<i32>, me: i32) -> bool {
    matches!(cause, Cause::Sent(_)) && sender.is_some_and(|pid| pid != me)
}

/// Forwards every signal caught by `caught` that [`should_forward`] to the
/// program, and with `group` to every other member of procession's group,
/// on a background thread that never ends on its own; procession ends it by
/// exiting.
pub fn forward(mut caught: Caught, to: Signaller, group: Option<Group>) -> io::Result<()> {
    let me = crate::sys::getpid();
    std::thread::Builder::new()
        .name("signal-forwarder".into())
        .spawn(move || {
            for origin in caught.forever() {
                if !should_forward(origin.cause, origin.process.map(|p| p.pid), me) {
                    continue;
                }
                let Some(signal) = Signal::new(origin.signal) else {
                    continue;
                };
                // Fails only once the program has been reaped (nothing left
                // to signal) or if the kernel refuses; neither is worth more
                // than a dropped signal.
                let _ = to.signal(signal);
                if let Some(group) = group {
                    group.signal(&[signal], Some(to.pid()), &mut Reached::default());
                }
            }
        })
        .map(drop)
}

/// What the `--pty` forwarder tells the main thread, one byte each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtyEvent {
    /// procession got SIGWINCH: its terminal's size may have changed.
    WindowChanged = b'W' as isize,
    /// procession got SIGCONT: it was stopped, and its terminal may have
    /// been set back to cooked mode meanwhile.
    Continued = b'C' as isize,
    /// procession's stdout failed (from the output relay).
    OutputBroken = b'P' as isize,
}

impl PtyEvent {
    pub fn from_byte(b: u8) -> Option<PtyEvent> {
        [
            PtyEvent::WindowChanged,
            PtyEvent::Continued,
            PtyEvent::OutputBroken,
        ]
        .into_iter()
        .find(|e| *e as u8 == b)
    }
}

/// Sends `event` to the main thread's non-blocking socket. Should the
/// socket be full, the main thread has events to read anyway; a lost one
/// is never more than a repeat.
pub fn post(events: &UnixStream, event: PtyEvent) {
    let mut events = events;
    let _ = events.write(&[event as u8]);
}

/// What the `--pty` forwarder does with a caught signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PtyAction {
    /// To the program's group.
    Forward,
    /// Not forwarded; the main thread resizes the pty instead.
    Resize,
    /// SIGCONT: the main thread makes procession's terminal raw again; the
    /// signal is forwarded as any other when another process sent it.
    Continued {
        forward: bool,
    },
    Ignore,
}

/// With `--pty` the program is in a session of its own: procession's
/// terminal signals never reach it on their own. So besides what
/// [`should_forward`] passes (signals sent by other processes), the ones
/// that procession's terminal generates (SIGINT, SIGQUIT, SIGHUP: Ctrl-C,
/// Ctrl-\ and a hang-up, when it is not in raw mode) are forwarded too.
/// SIGWINCH never is: the pty's size change sends the program its own.
fn pty_action(signal: i32, cause: Cause, sender: Option<i32>, me: i32) -> PtyAction {
    let from_me = sender == Some(me);
    match signal {
        SIGWINCH => PtyAction::Resize,
        SIGCONT => PtyAction::Continued {
            forward: should_forward(cause, sender, me),
        },
        SIGINT | SIGQUIT | SIGHUP if !from_me => PtyAction::Forward,
        _ if should_forward(cause, sender, me) => PtyAction::Forward,
        _ => PtyAction::Ignore,
    }
}

/// The `--pty` forwarder: as [`forward`], to the program's group (it leads
/// one), by [`pty_action`]'s rule, and telling the main thread through
/// `events` about SIGWINCH and SIGCONT.
pub fn forward_pty(mut caught: Caught, to: Signaller, events: UnixStream) -> io::Result<()> {
    let me = crate::sys::getpid();
    std::thread::Builder::new()
        .name("signal-forwarder".into())
        .spawn(move || {
            for origin in caught.forever() {
                let action = pty_action(
                    origin.signal,
                    origin.cause,
                    origin.process.map(|p| p.pid),
                    me,
                );
                let forward = match action {
                    PtyAction::Forward => true,
                    PtyAction::Continued { forward } => {
                        post(&events, PtyEvent::Continued);
                        forward
                    }
                    PtyAction::Resize => {
                        post(&events, PtyEvent::WindowChanged);
                        false
                    }
                    PtyAction::Ignore => false,
                };
                if let (true, Some(signal)) = (forward, Signal::new(origin.signal)) {
                    // As in `forward`: only fails once nothing is left.
                    let _ = to.signal_group(signal);
                }
            }
        })
        .map(drop)
}

/// Reaps, on every SIGCHLD, the zombies re-parented to procession while
/// the program runs (see [`crate::group::reap_adopted`]), on a background
/// thread that never ends on its own. Without it they would pile up until
/// procession exits.
pub fn reap_adopted_orphans(program: u32) -> io::Result<()> {
    let mut chld = signal_hook::iterator::Signals::new([libc::SIGCHLD])?;
    std::thread::Builder::new()
        .name("orphan-reaper".into())
        .spawn(move || {
            for _ in chld.forever() {
                crate::group::reap_adopted(program);
            }
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use signal_hook::low_level::siginfo::Sent;

    #[test]
    fn only_signals_from_other_processes_are_forwarded() {
        let me = 100;
        // kill(2), tgkill(2), sigqueue(3) from another process.
        assert!(should_forward(Cause::Sent(Sent::User), Some(7), me));
        assert!(should_forward(Cause::Sent(Sent::TKill), Some(7), me));
        assert!(should_forward(Cause::Sent(Sent::Queue), Some(7), me));
        // The terminal (Ctrl-C, Ctrl-\, SIGWINCH, hang-up): the kernel.
        assert!(!should_forward(Cause::Kernel, None, me));
        assert!(!should_forward(Cause::Unknown, None, me));
        // procession's own doing, e.g. SIGPIPE from one of its writes.
        assert!(!should_forward(Cause::Sent(Sent::User), Some(me), me));
    }

    #[test]
    fn with_a_pty_terminal_signals_are_forwarded_and_sigwinch_resizes() {
        use PtyAction::*;
        let me = 100;
        let sent = Cause::Sent(Sent::User);
        // From another process: as without a pty.
        assert_eq!(pty_action(SIGTERM, sent, Some(7), me), Forward);
        assert_eq!(pty_action(SIGUSR1, sent, Some(7), me), Forward);
        // From procession's terminal: the program does not share it.
        for sig in [SIGINT, SIGQUIT, SIGHUP] {
            assert_eq!(pty_action(sig, Cause::Kernel, None, me), Forward);
            assert_eq!(pty_action(sig, sent, Some(me), me), Ignore);
        }
        // Other signals of the kernel's own are procession's business
        // (SIGPIPE from its own write, say).
        assert_eq!(pty_action(SIGPIPE, Cause::Kernel, None, me), Ignore);
        assert_eq!(pty_action(SIGPIPE, sent, Some(me), me), Ignore);
        // A window size change becomes a resize, whoever sent it.
        assert_eq!(pty_action(SIGWINCH, Cause::Kernel, None, me), Resize);
        assert_eq!(pty_action(SIGWINCH, sent, Some(7), me), Resize);
        // SIGCONT: raw mode again, forwarded when someone else sent it.
        assert_eq!(
            pty_action(SIGCONT, sent, Some(7), me),
            Continued { forward: true }
        );
        assert_eq!(
            pty_action(SIGCONT, Cause::Kernel, None, me),
            Continued { forward: false }
        );
        for event in [
            PtyEvent::WindowChanged,
            PtyEvent::Continued,
            PtyEvent::OutputBroken,
        ] {
            assert_eq!(PtyEvent::from_byte(event as u8), Some(event));
        }
        assert_eq!(PtyEvent::from_byte(0), None);
    }

    #[test]
    fn the_caught_set() {
        let caught = forwarded();
        for sig in [
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGWINCH,
            libc::SIGCONT,
            libc::SIGRTMIN(),
            libc::SIGRTMAX(),
        ] {
            assert!(caught.contains(&sig), "{sig} not caught");
        }
        for sig in [
            libc::SIGCHLD,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGTRAP,
        ] {
            assert!(!caught.contains(&sig), "{sig} caught");
        }
    }
}

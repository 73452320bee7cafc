//! The engine: spawn plans, the per-child state machine and the background
//! reaper. It sits between the public API (`Command`, `Child`) and `sys`.

use std::time::{Duration, Instant};

/// `at + d`, saturating: a duration too long to add (`Duration::MAX`) gives
/// an instant a century away, which never comes. Every deadline is made
/// with it, so that no duration the API takes can overflow.
pub(crate) fn after(at: Instant, d: Duration) -> Instant {
    const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    at.checked_add(d.min(NEVER))
        .or_else(|| at.checked_add(NEVER))
        .unwrap_or(at)
}

pub(crate) mod cgroup;
pub(crate) mod credentials;
pub(crate) mod deliver;
pub(crate) mod driver;
pub(crate) mod forward;
pub(crate) mod live;
pub(crate) mod plan;
pub(crate) mod process;
pub(crate) mod reaper;
pub(crate) mod spawn;
pub(crate) mod terminal;
pub(crate) mod trace;
pub(crate) mod watchdog;

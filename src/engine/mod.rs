//! The engine: spawn plans, the per-child state machine and the background
//! reaper. It sits between the public API (`Command`, `Child`) and `sys`.

pub(crate) mod cgroup;
pub(crate) mod credentials;
pub(crate) mod deliver;
pub(crate) mod driver;
pub(crate) mod live;
pub(crate) mod plan;
pub(crate) mod process;
pub(crate) mod reaper;
pub(crate) mod spawn;
pub(crate) mod terminal;
pub(crate) mod trace;
pub(crate) mod watchdog;

//! The live children of this process: every child procession spawned and
//! has not reaped yet (Erlang's `erlang:ports()`), for [`children`](crate::children).
//!
//! A map from pid to a weak reference: entering and leaving it costs one
//! uncontended lock at the spawn and at the reap; it keeps no child alive.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::process::Process;

static LIVE: Mutex<Option<HashMap<libc::pid_t, Weak<Process>>>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<HashMap<libc::pid_t, Weak<Process>>>> {
    // Every update is one insert or remove: a panic cannot leave it torn.
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Lists a child just spawned.
pub(crate) fn add(process: &Arc<Process>) {
    lock()
        .get_or_insert_with(HashMap::new)
        .insert(process.pid(), Arc::downgrade(process));
}

/// Takes a reaped child off the list (only its own entry: the pid may
/// already name a newer child, listed after this one was reaped elsewhere).
pub(crate) fn remove(process: &Process) {
    let mut live = lock();
    let Some(map) = live.as_mut() else { return };
    if map
        .get(&process.pid())
        .is_some_and(|w| std::ptr::eq(w.as_ptr(), process))
    {
        map.remove(&process.pid());
    }
}

/// The listed children, in pid order.
pub(crate) fn all() -> Vec<Arc<Process>> {
    let mut all: Vec<Arc<Process>> = lock()
        .iter()
        .flat_map(|m| m.values())
        .filter_map(Weak::upgrade)
        .collect();
    all.sort_by_key(|p| p.pid());
    all
}

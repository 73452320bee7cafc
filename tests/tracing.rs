//! Feature `tracing`: every child gets a span `child` with its program and
//! pid, and its spawn, signals, stop steps and exit are events in it. A
//! minimal subscriber records them (global: the reaper thread emits too).

mod support;
use support::*;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use procession::{Stdio, Supervisor};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// The fields of a span or an event, as `name=value` pairs in order.
#[derive(Default)]
struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

#[derive(Default)]
struct Recorder {
    next: AtomicU64,
    spans: Mutex<HashMap<u64, String>>,
    /// (the event's span's fields, the event's fields)
    events: Mutex<Vec<(String, String)>>,
}

impl Subscriber for &'static Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let mut f = Fields::default();
        attrs.record(&mut f);
        let text = format!("{} {}", attrs.metadata().name(), f.0.trim_end());
        self.spans.lock().unwrap().insert(id, text);
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let span = event
            .parent()
            .and_then(|id| self.spans.lock().unwrap().get(&id.into_u64()).cloned())
            .unwrap_or_default();
        self.events
            .lock()
            .unwrap()
            .push((span, f.0.trim_end().to_string()));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn recorder() -> &'static Recorder {
    static R: OnceLock<&'static Recorder> = OnceLock::new();
    R.get_or_init(|| {
        let r: &'static Recorder = Box::leak(Box::default());
        tracing::subscriber::set_global_default(r).unwrap();
        r
    })
}

/// The events recorded in the span of child `pid`, message first.
fn events_of(pid: u32) -> Vec<String> {
    let want = format!("pid={pid} ");
    recorder()
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|(span, _)| format!("{span} ").contains(&want))
        .map(|(_, e)| e.clone())
        .collect()
}

#[test]
fn a_child_span_holds_its_spawn_stop_steps_and_exit() {
    let _g = Guard::new();
    let r = recorder();
    let mut child = pt_cmd(["ignore-term"])
        .stdout(Stdio::piped())
        .stop_timeout(Duration::from_millis(100))
        .spawn()
        .unwrap();
    assert_eq!(read_line(child.stdout.as_mut().unwrap()), "ready\n");
    let pid = child.pid();
    child.stop().unwrap();
    let spans = r
        .spans
        .lock()
        .unwrap()
        .values()
        .cloned()
        .collect::<Vec<_>>();
    let span = spans
        .iter()
        .find(|s| s.contains(&format!("pid={pid} ")) || s.ends_with(&format!("pid={pid}")))
        .expect("a span for the child")
        .clone();
    assert!(span.starts_with("child program="), "{span}");
    assert!(span.contains("pt"), "{span}");
    let events = events_of(pid);
    let joined = events.join("\n");
    assert!(joined.contains("message=spawned"), "{joined}");
    assert!(joined.contains("message=stop sequence started"), "{joined}");
    assert!(joined.contains("signal=SIGTERM"), "{joined}");
    assert!(
        joined.contains("message=stop: grace period over"),
        "{joined}"
    );
    assert!(joined.contains("signal=SIGKILL"), "{joined}");
    assert!(joined.contains("message=exited"), "{joined}");
    // In that order: spawned first, exited last.
    assert!(events.first().unwrap().contains("spawned"), "{joined}");
    assert!(events.last().unwrap().contains("exited"), "{joined}");
}

#[test]
fn an_adopted_process_has_its_own_span() {
    let _g = Guard::new();
    recorder();
    let mut external = std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .unwrap();
    let sup = Supervisor::new();
    let managed = sup.manage(external.id()).unwrap();
    managed.stop().unwrap();
    external.wait().unwrap();
    let joined = events_of(external.id()).join("\n");
    assert!(joined.contains("message=adopted"), "{joined}");
    assert!(
        joined.contains("message=exited (status unknown"),
        "{joined}"
    );
}

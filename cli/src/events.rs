//! `--events json`: one JSON object a line on procession's stdout.
//!
//! The schema (documented for users in docs/CLI.md):
//!
//! - `{"event":"start","pid":N}` once the program runs;
//! - `{"event":"stdout","data":"..."}` or `{"event":"stdout","data_b64":"..."}`
//!   per chunk or frame of its stdout: `data` when the bytes are valid
//!   UTF-8, `data_b64` (standard base64 with padding) otherwise, so that
//!   every byte comes through exactly; with `--framing lines` also
//!   `"complete":true|false`; the same with `"event":"stderr"`;
//! - `{"event":"error","stream":"stdout","message":"..."}` when the output
//!   breaks the `--framing packet:N` framing (that stream has no more events);
//! - `{"event":"exit",...}` last: see [`Exit`];
//! - `{"event":"error","message":"...","step":"...","exit_code":N}` instead
//!   of all of them when the program could not be started.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use procession::{Ended, Error, ExitStatus};
use serde::Serialize;

/// The output stream of a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamName {
    Stdout,
    Stderr,
}

/// The bytes of a chunk: text when they are valid UTF-8, else base64.
#[derive(Serialize)]
enum Data<'a> {
    #[serde(rename = "data")]
    Text(&'a str),
    #[serde(rename = "data_b64")]
    Base64(String),
}

impl Data<'_> {
    fn of(bytes: &[u8]) -> Data<'_> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Data::Text(text),
            Err(_) => Data::Base64(base64::engine::general_purpose::STANDARD.encode(bytes)),
        }
    }
}

/// One line of output.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event<'a> {
    Start {
        pid: u32,
    },
    Stdout {
        #[serde(flatten)]
        data: Data<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        complete: Option<bool>,
    },
    Stderr {
        #[serde(flatten)]
        data: Data<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        complete: Option<bool>,
    },
    Exit(Exit),
    Error {
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        stream: Option<StreamName>,
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
    },
}

/// The last event: how the program ended.
#[derive(Serialize)]
pub struct Exit {
    /// The exit code, or null when a signal ended the program.
    code: Option<i32>,
    /// The signal number that ended it, or null.
    signal: Option<i32>,
    /// The signal's name (`"SIGKILL"`), or null.
    signal_name: Option<&'static str>,
    /// Whether it dumped core.
    core_dumped: bool,
    /// `"on_its_own"`, `"timed_out"` (the --timeout fired) or
    /// `"requested"` (the library stopped it).
    ended: &'static str,
    /// Whether the program's exit counts as success (exit code 0 or one of
    /// --success-exit-code).
    success: bool,
    /// procession's own exit code, as it is about to exit.
    exit_code: i32,
    /// From the start of procession to the program's end, in microseconds.
    wall_time_us: u64,
    /// What the kernel counted for the program (and the children it
    /// waited for), or null.
    usage: Option<Usage>,
    /// What the --cgroup counted for the program and all its descendants,
    /// or null without --cgroup.
    cgroup_usage: Option<CgroupUsage>,
}

#[derive(Serialize)]
struct Usage {
    user_time_us: u64,
    system_time_us: u64,
    max_rss_bytes: u64,
}

#[derive(Serialize)]
struct CgroupUsage {
    user_time_us: u64,
    system_time_us: u64,
    memory_peak_bytes: Option<u64>,
    pids_peak: Option<u64>,
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Exit {
    pub fn new(status: &ExitStatus, timed_out: bool, exit_code: i32, wall: Duration) -> Exit {
        let signal = status.signal();
        Exit {
            code: status.code(),
            signal: signal.map(|s| s.as_raw()),
            signal_name: signal.and_then(|s| s.name()),
            core_dumped: status.core_dumped(),
            ended: if timed_out {
                "timed_out"
            } else {
                match status.ended() {
                    Ended::TimedOut => "timed_out",
                    Ended::OnItsOwn => "on_its_own",
                    _ => "requested",
                }
            },
            success: status.success() && !timed_out,
            exit_code,
            wall_time_us: us(wall),
            usage: status.usage().map(|u| Usage {
                user_time_us: us(u.user_time()),
                system_time_us: us(u.system_time()),
                max_rss_bytes: u.max_rss(),
            }),
            cgroup_usage: status.cgroup_usage().map(|c| CgroupUsage {
                user_time_us: us(c.user_time),
                system_time_us: us(c.system_time),
                memory_peak_bytes: c.memory_peak,
                pids_peak: c.pids_peak,
            }),
        }
    }
}

/// The events' writer, shared by the relay thread and the main thread.
#[derive(Clone)]
pub struct Json {
    inner: Arc<Mutex<Writer>>,
}

struct Writer {
    /// Set once no more output events may be written (the exit comes next).
    closed: bool,
    /// Set once procession's stdout failed: nothing more is written.
    broken: bool,
}

impl Json {
    pub fn new() -> Json {
        Json {
            inner: Arc::new(Mutex::new(Writer {
                closed: false,
                broken: false,
            })),
        }
    }

    /// Writes one event as a line, unless stdout failed before or (for
    /// output events) the events are closed.
    fn write(&self, event: &Event<'_>, after_close: bool) {
        let mut w = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if w.broken || (w.closed && !after_close) {
            return;
        }
        // Serialising these types cannot fail (string keys, no maps).
        let Ok(mut line) = serde_json::to_vec(event) else {
            return;
        };
        line.push(b'\n');
        let mut out = io::stdout().lock();
        if out.write_all(&line).and_then(|()| out.flush()).is_err() {
            w.broken = true;
        }
    }

    pub fn start(&self, pid: u32) {
        self.write(&Event::Start { pid }, false);
    }

    /// A chunk or frame of output; `complete` for lines.
    pub fn output(&self, stream: StreamName, bytes: &[u8], complete: Option<bool>) {
        let data = Data::of(bytes);
        let event = match stream {
            StreamName::Stdout => Event::Stdout { data, complete },
            StreamName::Stderr => Event::Stderr { data, complete },
        };
        self.write(&event, false);
    }

    /// The output of `stream` broke the packet framing.
    pub fn framing_error(&self, stream: StreamName, message: &str) {
        self.write(
            &Event::Error {
                message,
                stream: Some(stream),
                step: None,
                exit_code: None,
            },
            false,
        );
    }

    /// No output event is written after this.
    pub fn close(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
    }

    /// The last event.
    pub fn exit(&self, exit: Exit) {
        self.close();
        self.write(&Event::Exit(exit), true);
    }

    /// The program could not be started: the only event.
    pub fn spawn_error(&self, e: &Error, exit_code: i32) {
        let message = e.to_string();
        self.write(
            &Event::Error {
                message: &message,
                stream: None,
                step: Some(format!("{:?}", e.step()).to_lowercase()),
                exit_code: Some(exit_code),
            },
            true,
        );
    }
}

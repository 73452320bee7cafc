//! Tracing (feature `tracing`): a span per child, named `child`, with the
//! program and pid, and events for its spawn, signals, stop steps and exit.
//! Without the feature every item here compiles to nothing.

/// A child's span (a zero-sized stand-in without the feature).
#[cfg(feature = "tracing")]
#[derive(Clone, Debug)]
pub(crate) struct Span(pub(crate) tracing::Span);

#[cfg(not(feature = "tracing"))]
#[derive(Clone, Debug)]
pub(crate) struct Span;

impl Span {
    /// The span of a child (`adopted`: a process watched by pid).
    #[allow(unused_variables)]
    pub(crate) fn child(program: &std::ffi::OsStr, pid: libc::pid_t, adopted: bool) -> Span {
        #[cfg(feature = "tracing")]
        {
            Span(tracing::info_span!(
                "child",
                program = %program.to_string_lossy(),
                pid,
                adopted
            ))
        }
        #[cfg(not(feature = "tracing"))]
        Span
    }
}

/// An event in a child's span: `event!(span, "message", key = value, …)`,
/// at INFO level.
macro_rules! event {
    ($span:expr, $msg:literal $(, $($field:tt)*)?) => {{
        #[cfg(feature = "tracing")]
        {
            tracing::info!(parent: &$span.0, $($($field)*,)? $msg);
        }
        #[cfg(not(feature = "tracing"))]
        {
            let _ = &$span;
        }
    }};
}
pub(crate) use event;

//! [`Signal`]: a Unix signal number with a name.

use std::fmt;
use std::str::FromStr;

/// A Unix signal, such as [`Signal::TERM`].
///
/// ```
/// use procession::Signal;
/// assert_eq!("TERM".parse::<Signal>().unwrap(), Signal::TERM);
/// assert_eq!("SIGKILL".parse::<Signal>().unwrap().as_raw(), 9);
/// assert_eq!("15".parse::<Signal>().unwrap().name(), Some("SIGTERM"));
/// assert_eq!(Signal::INT.to_string(), "SIGINT");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

macro_rules! signals {
    ($($konst:ident = $libc:ident, $name:literal;)*) => {
        impl Signal {
            $(
                #[doc = concat!("`", $name, "`.")]
                pub const $konst: Signal = Signal(libc::$libc);
            )*
        }
        const NAMES: &[(i32, &str)] = &[$((libc::$libc, $name),)*];
    };
}

signals! {
    HUP = SIGHUP, "SIGHUP";
    INT = SIGINT, "SIGINT";
    QUIT = SIGQUIT, "SIGQUIT";
    ILL = SIGILL, "SIGILL";
    TRAP = SIGTRAP, "SIGTRAP";
    ABRT = SIGABRT, "SIGABRT";
    BUS = SIGBUS, "SIGBUS";
    FPE = SIGFPE, "SIGFPE";
    KILL = SIGKILL, "SIGKILL";
    USR1 = SIGUSR1, "SIGUSR1";
    SEGV = SIGSEGV, "SIGSEGV";
    USR2 = SIGUSR2, "SIGUSR2";
    PIPE = SIGPIPE, "SIGPIPE";
    ALRM = SIGALRM, "SIGALRM";
    TERM = SIGTERM, "SIGTERM";
    CHLD = SIGCHLD, "SIGCHLD";
    CONT = SIGCONT, "SIGCONT";
    STOP = SIGSTOP, "SIGSTOP";
    TSTP = SIGTSTP, "SIGTSTP";
    TTIN = SIGTTIN, "SIGTTIN";
    TTOU = SIGTTOU, "SIGTTOU";
    URG = SIGURG, "SIGURG";
    XCPU = SIGXCPU, "SIGXCPU";
    XFSZ = SIGXFSZ, "SIGXFSZ";
    VTALRM = SIGVTALRM, "SIGVTALRM";
    PROF = SIGPROF, "SIGPROF";
    WINCH = SIGWINCH, "SIGWINCH";
    IO = SIGIO, "SIGIO";
    PWR = SIGPWR, "SIGPWR";
    SYS = SIGSYS, "SIGSYS";
}

impl Signal {
    /// The signal with number `n`, or `None` outside `1..=SIGRTMAX`.
    ///
    /// ```
    /// use procession::Signal;
    /// assert_eq!(Signal::new(9), Some(Signal::KILL));
    /// assert_eq!(Signal::new(0), None);
    /// ```
    pub fn new(n: i32) -> Option<Signal> {
        (1..=libc::SIGRTMAX()).contains(&n).then_some(Signal(n))
    }

    /// The signal number.
    ///
    /// ```
    /// assert_eq!(procession::Signal::TERM.as_raw(), 15);
    /// ```
    pub fn as_raw(self) -> i32 {
        self.0
    }

    /// The conventional name (`"SIGTERM"`), or `None` for real-time signals.
    ///
    /// ```
    /// assert_eq!(procession::Signal::HUP.name(), Some("SIGHUP"));
    /// ```
    pub fn name(self) -> Option<&'static str> {
        NAMES.iter().find(|(n, _)| *n == self.0).map(|(_, s)| *s)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "signal {}", self.0),
        }
    }
}

/// The error from parsing a [`Signal`] name or number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown signal {0:?} (expected a name such as TERM or SIGKILL, or a number)")]
pub struct ParseSignalError(String);

impl FromStr for Signal {
    type Err = ParseSignalError;

    /// Accepts `"TERM"`, `"SIGTERM"`, `"sigterm"` or `"15"`.
    fn from_str(s: &str) -> Result<Signal, ParseSignalError> {
        if let Ok(n) = s.parse::<i32>() {
            return Signal::new(n).ok_or_else(|| ParseSignalError(s.to_owned()));
        }
        let upper = s.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        NAMES
            .iter()
            .find(|(_, name)| &name[3..] == bare)
            .map(|(n, _)| Signal(*n))
            .ok_or_else(|| ParseSignalError(s.to_owned()))
    }
}

//! Running a child on a pseudo-terminal: [`Pty`] and the RFC 4254 terminal
//! modes ([`TerminalMode`]).

use std::fmt;
use std::str::FromStr;

/// A pseudo-terminal for a child ([`Command::pty`](crate::Command::pty)),
/// erlexec's `pty` option.
///
/// The child leads a new session whose controlling terminal is the pty,
/// connected to its stdin, stdout and stderr (or the ones chosen with
/// [`stdin`](Pty::stdin), [`stdout`](Pty::stdout) and
/// [`stderr`](Pty::stderr); the others follow the command's
/// [`Stdio`](crate::Stdio) settings). The parent reads and writes the
/// terminal's master side through the usual handle, streaming and async
/// APIs, with back-pressure. The terminal is configured before the child
/// starts: the size, echo (off by default, as in erlexec) and any
/// [`TerminalMode`].
///
/// **End of input.** Closing the child's input
/// ([`Child::close_stdin`](crate::Child::close_stdin), the end of an
/// [`input`](crate::Command::input) in a stream) types the terminal's end-
/// of-file character ([`TerminalMode::Veof`], Ctrl-D unless changed), as a
/// user at the keyboard does: a program reading lines sees end-of-file at
/// the start of a line. [`Child::hang_up`](crate::Child::hang_up) hangs the
/// terminal up instead (erlexec's `eof` on a pty): the child gets SIGHUP and
/// its reads end.
///
/// ```
/// use procession::{Command, Pty};
/// let out = Command::new("tty").pty(Pty::new()).output()?;
/// assert!(String::from_utf8_lossy(&out.stdout).starts_with("/dev/pts/"));
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pty {
    pub(crate) rows: u16,
    pub(crate) cols: u16,
    pub(crate) echo: bool,
    pub(crate) modes: Vec<(TerminalMode, u32)>,
    pub(crate) stdin: bool,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
}

impl Default for Pty {
    fn default() -> Pty {
        Pty::new()
    }
}

impl Pty {
    /// A 24×80 terminal, echo off, on stdin, stdout and stderr.
    pub fn new() -> Pty {
        Pty {
            rows: 24,
            cols: 80,
            echo: false,
            modes: Vec::new(),
            stdin: true,
            stdout: true,
            stderr: true,
        }
    }

    /// The window size at start (erlexec's `{winsz, {Rows, Cols}}`); change
    /// it later with [`Child::resize`](crate::Child::resize).
    ///
    /// ```
    /// use procession::{Command, Pty};
    /// let out = Command::new("stty").arg("size").pty(Pty::new().size(40, 120)).output()?;
    /// assert_eq!(out.stdout, b"40 120\r\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn size(mut self, rows: u16, cols: u16) -> Pty {
        self.rows = rows;
        self.cols = cols;
        self
    }

    /// Whether the terminal echoes its input (`false` by default, erlexec's
    /// default; `true` is erlexec's `pty_echo`). Off clears ECHO, ECHOE,
    /// ECHOK and ECHONL; explicit [`mode`](Pty::mode)s apply after it.
    ///
    /// ```
    /// use procession::{Command, Pty};
    /// let out = Command::new("head").args(["-n", "1"]).pty(Pty::new().echo(true)).input(["hi\n"]).output()?;
    /// // Echoed by the terminal, then written by head.
    /// assert_eq!(out.stdout, b"hi\r\nhi\r\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn echo(mut self, on: bool) -> Pty {
        self.echo = on;
        self
    }

    /// Sets one RFC 4254 terminal mode before the child starts: a
    /// character (0–255; 255 disables it) for the `V…` modes, 0 or 1 for
    /// the flags, bits per second for the speeds. Checked at spawn: every
    /// bad mode or value is named in one
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) error.
    ///
    /// ```
    /// use procession::{Command, Pty, TerminalMode};
    /// // Ctrl-B interrupts instead of Ctrl-C.
    /// let pty = Pty::new().mode(TerminalMode::Vintr, 2);
    /// let out = Command::new("stty").arg("-a").pty(pty).output()?;
    /// assert!(String::from_utf8_lossy(&out.stdout).contains("intr = ^B"));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn mode(mut self, mode: TerminalMode, value: u32) -> Pty {
        self.modes.push((mode, value));
        self
    }

    /// [`mode`](Pty::mode) for each pair, in order.
    ///
    /// ```
    /// use procession::{Pty, TerminalMode};
    /// let pty = Pty::new().modes([(TerminalMode::Isig, 0), (TerminalMode::Icanon, 0)]);
    /// # let _ = pty;
    /// ```
    pub fn modes(mut self, modes: impl IntoIterator<Item = (TerminalMode, u32)>) -> Pty {
        self.modes.extend(modes);
        self
    }

    /// Whether the child's stdin is the terminal (`true` by default).
    ///
    /// ```
    /// use procession::{Command, Pty, Stdio};
    /// // stdout on the terminal, stderr a separate pipe.
    /// let out = Command::shell("echo out; echo err >&2").pty(Pty::new().stderr(false))
    ///     .stderr(Stdio::piped()).output()?;
    /// assert_eq!((&out.stdout[..], &out.stderr[..]), (&b"out\r\n"[..], &b"err\n"[..]));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn stdin(mut self, on: bool) -> Pty {
        self.stdin = on;
        self
    }

    /// Whether the child's stdout is the terminal (`true` by default).
    pub fn stdout(mut self, on: bool) -> Pty {
        self.stdout = on;
        self
    }

    /// Whether the child's stderr is the terminal (`true` by default).
    /// When stdout is the terminal too, both arrive as stdout, mixed as
    /// the child wrote them.
    pub fn stderr(mut self, on: bool) -> Pty {
        self.stderr = on;
        self
    }
}

macro_rules! modes {
    ($($(#[$doc:meta])* $variant:ident = $code:literal, $name:literal;)*) => {
        /// A terminal mode of RFC 4254 §8 (the SSH "encoded terminal modes"),
        /// with its opcode; erlexec's `{pty, [{Name, Value}]}` names.
        ///
        /// ```
        /// use procession::TerminalMode;
        /// let m: TerminalMode = "vintr".parse().unwrap();
        /// assert_eq!((m, m.opcode(), m.name()), (TerminalMode::Vintr, 1, "vintr"));
        /// assert_eq!(TerminalMode::from_opcode(53), Some(TerminalMode::Echo));
        /// assert!("nonsense".parse::<TerminalMode>().is_err());
        /// ```
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum TerminalMode {
            $($(#[$doc])* $variant = $code,)*
        }

        impl TerminalMode {
            /// Every mode, in opcode order.
            pub const ALL: &'static [TerminalMode] = &[$(TerminalMode::$variant,)*];

            /// The RFC 4254 opcode.
            pub fn opcode(self) -> u8 {
                self as u8
            }

            /// The mode with this opcode.
            pub fn from_opcode(code: u8) -> Option<TerminalMode> {
                match code {
                    $($code => Some(TerminalMode::$variant),)*
                    _ => None,
                }
            }

            /// The RFC's name in lower case (`"vintr"`, `"tty_op_ispeed"`).
            pub fn name(self) -> &'static str {
                match self {
                    $(TerminalMode::$variant => $name,)*
                }
            }
        }
    };
}

modes! {
    /// Interrupt character (sends SIGINT with ISIG).
    Vintr = 1, "vintr";
    /// Quit character (SIGQUIT with ISIG).
    Vquit = 2, "vquit";
    /// Erase the character to the left.
    Verase = 3, "verase";
    /// Kill the current line.
    Vkill = 4, "vkill";
    /// End-of-file character.
    Veof = 5, "veof";
    /// End-of-line character, in addition to newline.
    Veol = 6, "veol";
    /// Another end-of-line character.
    Veol2 = 7, "veol2";
    /// Continue paused output (Ctrl-Q).
    Vstart = 8, "vstart";
    /// Pause output (Ctrl-S).
    Vstop = 9, "vstop";
    /// Suspend the program (SIGTSTP with ISIG).
    Vsusp = 10, "vsusp";
    /// Delayed suspend (not on Linux: refused).
    Vdsusp = 11, "vdsusp";
    /// Reprint the current line.
    Vreprint = 12, "vreprint";
    /// Erase the word to the left.
    Vwerase = 13, "vwerase";
    /// Enter the next character literally.
    Vlnext = 14, "vlnext";
    /// Flush output (not on Linux: refused).
    Vflush = 15, "vflush";
    /// Switch to another shell layer (Linux `VSWTC`).
    Vswtch = 16, "vswtch";
    /// Print a status line (not on Linux: refused).
    Vstatus = 17, "vstatus";
    /// Toggle the discarding of output.
    Vdiscard = 18, "vdiscard";
    /// Ignore parity errors.
    Ignpar = 30, "ignpar";
    /// Mark parity and framing errors.
    Parmrk = 31, "parmrk";
    /// Check parity.
    Inpck = 32, "inpck";
    /// Strip the 8th bit.
    Istrip = 33, "istrip";
    /// Map NL to CR on input.
    Inlcr = 34, "inlcr";
    /// Ignore CR on input.
    Igncr = 35, "igncr";
    /// Map CR to NL on input.
    Icrnl = 36, "icrnl";
    /// Map upper case to lower case on input.
    Iuclc = 37, "iuclc";
    /// Output flow control (Ctrl-S / Ctrl-Q).
    Ixon = 38, "ixon";
    /// Any character restarts stopped output.
    Ixany = 39, "ixany";
    /// Input flow control.
    Ixoff = 40, "ixoff";
    /// Ring the bell when the input queue is full.
    Imaxbel = 41, "imaxbel";
    /// The input is UTF-8 (RFC 8160).
    Iutf8 = 42, "iutf8";
    /// Signal characters (INTR, QUIT, SUSP) send signals.
    Isig = 50, "isig";
    /// Canonical (line by line) input.
    Icanon = 51, "icanon";
    /// Canonical upper/lower case presentation.
    Xcase = 52, "xcase";
    /// Echo input characters.
    Echo = 53, "echo";
    /// Echo ERASE as erasing the character.
    Echoe = 54, "echoe";
    /// Echo a newline after KILL.
    Echok = 55, "echok";
    /// Echo NL even without ECHO.
    Echonl = 56, "echonl";
    /// Do not flush the queues on a signal character.
    Noflsh = 57, "noflsh";
    /// Stop background jobs that write to the terminal.
    Tostop = 58, "tostop";
    /// Extended input processing (LNEXT, WERASE, …).
    Iexten = 59, "iexten";
    /// Echo control characters as `^X`.
    Echoctl = 60, "echoctl";
    /// Erase the line visually on KILL.
    Echoke = 61, "echoke";
    /// Retype pending input.
    Pendin = 62, "pendin";
    /// Output processing.
    Opost = 70, "opost";
    /// Map lower case to upper case on output.
    Olcuc = 71, "olcuc";
    /// Map NL to CR-NL on output.
    Onlcr = 72, "onlcr";
    /// Map CR to NL on output.
    Ocrnl = 73, "ocrnl";
    /// No CR output at column 0.
    Onocr = 74, "onocr";
    /// NL does the CR function.
    Onlret = 75, "onlret";
    /// 7-bit characters.
    Cs7 = 90, "cs7";
    /// 8-bit characters.
    Cs8 = 91, "cs8";
    /// Parity generation and checking.
    Parenb = 92, "parenb";
    /// Odd parity (else even).
    Parodd = 93, "parodd";
    /// Input speed in bits per second.
    TtyOpIspeed = 128, "tty_op_ispeed";
    /// Output speed in bits per second.
    TtyOpOspeed = 129, "tty_op_ospeed";
}

impl fmt::Display for TerminalMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing a [`TerminalMode`] name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseTerminalModeError(String);

impl fmt::Display for ParseTerminalModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown terminal mode {:?}", self.0)
    }
}

impl std::error::Error for ParseTerminalModeError {}

impl FromStr for TerminalMode {
    type Err = ParseTerminalModeError;

    /// The RFC name, in any case (`"vintr"`, `"ECHO"`, `"tty_op_ispeed"`).
    fn from_str(s: &str) -> Result<TerminalMode, ParseTerminalModeError> {
        TerminalMode::ALL
            .iter()
            .copied()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseTerminalModeError(s.to_string()))
    }
}

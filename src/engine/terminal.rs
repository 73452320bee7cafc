//! RFC 4254 terminal modes onto a Linux `termios`.

use crate::pty::TerminalMode;

/// Where a mode lives in a `termios`.
enum Target {
    /// `c_cc[index]`.
    Char(usize),
    Input(libc::tcflag_t),
    Local(libc::tcflag_t),
    Output(libc::tcflag_t),
    /// A `CSIZE` value.
    Size(libc::tcflag_t),
    Control(libc::tcflag_t),
    InputSpeed,
    OutputSpeed,
    /// The RFC names it; Linux has no such setting.
    Missing,
}

fn target(mode: TerminalMode) -> Target {
    use Target::*;
    use TerminalMode as M;
    match mode {
        M::Vintr => Char(libc::VINTR),
        M::Vquit => Char(libc::VQUIT),
        M::Verase => Char(libc::VERASE),
        M::Vkill => Char(libc::VKILL),
        M::Veof => Char(libc::VEOF),
        M::Veol => Char(libc::VEOL),
        M::Veol2 => Char(libc::VEOL2),
        M::Vstart => Char(libc::VSTART),
        M::Vstop => Char(libc::VSTOP),
        M::Vsusp => Char(libc::VSUSP),
        M::Vreprint => Char(libc::VREPRINT),
        M::Vwerase => Char(libc::VWERASE),
        M::Vlnext => Char(libc::VLNEXT),
        M::Vswtch => Char(libc::VSWTC),
        M::Vdiscard => Char(libc::VDISCARD),
        M::Vdsusp | M::Vflush | M::Vstatus => Missing,
        M::Ignpar => Input(libc::IGNPAR),
        M::Parmrk => Input(libc::PARMRK),
        M::Inpck => Input(libc::INPCK),
        M::Istrip => Input(libc::ISTRIP),
        M::Inlcr => Input(libc::INLCR),
        M::Igncr => Input(libc::IGNCR),
        M::Icrnl => Input(libc::ICRNL),
        M::Iuclc => Input(libc::IUCLC),
        M::Ixon => Input(libc::IXON),
        M::Ixany => Input(libc::IXANY),
        M::Ixoff => Input(libc::IXOFF),
        M::Imaxbel => Input(libc::IMAXBEL),
        M::Iutf8 => Input(libc::IUTF8),
        M::Isig => Local(libc::ISIG),
        M::Icanon => Local(libc::ICANON),
        M::Xcase => Local(libc::XCASE),
        M::Echo => Local(libc::ECHO),
        M::Echoe => Local(libc::ECHOE),
        M::Echok => Local(libc::ECHOK),
        M::Echonl => Local(libc::ECHONL),
        M::Noflsh => Local(libc::NOFLSH),
        M::Tostop => Local(libc::TOSTOP),
        M::Iexten => Local(libc::IEXTEN),
        M::Echoctl => Local(libc::ECHOCTL),
        M::Echoke => Local(libc::ECHOKE),
        M::Pendin => Local(libc::PENDIN),
        M::Opost => Output(libc::OPOST),
        M::Olcuc => Output(libc::OLCUC),
        M::Onlcr => Output(libc::ONLCR),
        M::Ocrnl => Output(libc::OCRNL),
        M::Onocr => Output(libc::ONOCR),
        M::Onlret => Output(libc::ONLRET),
        M::Cs7 => Size(libc::CS7),
        M::Cs8 => Size(libc::CS8),
        M::Parenb => Control(libc::PARENB),
        M::Parodd => Control(libc::PARODD),
        M::TtyOpIspeed => InputSpeed,
        M::TtyOpOspeed => OutputSpeed,
    }
}

/// The `B…` constant for a speed in bits per second.
fn baud(bps: u32) -> Option<libc::speed_t> {
    Some(match bps {
        0 => libc::B0,
        50 => libc::B50,
        75 => libc::B75,
        110 => libc::B110,
        134 => libc::B134,
        150 => libc::B150,
        200 => libc::B200,
        300 => libc::B300,
        600 => libc::B600,
        1200 => libc::B1200,
        1800 => libc::B1800,
        2400 => libc::B2400,
        4800 => libc::B4800,
        9600 => libc::B9600,
        19200 => libc::B19200,
        38400 => libc::B38400,
        57600 => libc::B57600,
        115200 => libc::B115200,
        230400 => libc::B230400,
        460800 => libc::B460800,
        500000 => libc::B500000,
        576000 => libc::B576000,
        921600 => libc::B921600,
        1000000 => libc::B1000000,
        1152000 => libc::B1152000,
        1500000 => libc::B1500000,
        2000000 => libc::B2000000,
        2500000 => libc::B2500000,
        3000000 => libc::B3000000,
        3500000 => libc::B3500000,
        4000000 => libc::B4000000,
        _ => return None,
    })
}

/// What is wrong with one mode's value, if anything.
fn problem(mode: TerminalMode, value: u32) -> Option<&'static str> {
    match target(mode) {
        Target::Missing => Some("not available on Linux"),
        Target::Char(_) if value > 255 => Some("a character is 0 to 255"),
        Target::InputSpeed | Target::OutputSpeed if baud(value).is_none() => {
            Some("not a standard speed in bits per second")
        }
        Target::Input(_)
        | Target::Local(_)
        | Target::Output(_)
        | Target::Size(_)
        | Target::Control(_)
            if value > 1 =>
        {
            Some("a flag is 0 or 1")
        }
        _ => None,
    }
}

/// Checks every mode; the error names each bad one.
pub(crate) fn check(modes: &[(TerminalMode, u32)]) -> Result<(), String> {
    let bad: Vec<String> = modes
        .iter()
        .filter_map(|&(m, v)| problem(m, v).map(|why| format!("{m} = {v} ({why})")))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("invalid terminal modes: {}", bad.join(", ")))
    }
}

/// Clears the echo flags (erlexec's default without `pty_echo`).
pub(crate) fn echo_off(t: &mut libc::termios) {
    t.c_lflag &= !(libc::ECHO | libc::ECHOE | libc::ECHOK | libc::ECHONL);
}

/// Applies checked `modes` to `t`, in order.
pub(crate) fn apply(t: &mut libc::termios, modes: &[(TerminalMode, u32)]) -> Result<(), String> {
    check(modes)?;
    let set = |flags: &mut libc::tcflag_t, bit: libc::tcflag_t, on: bool| {
        if on {
            *flags |= bit;
        } else {
            *flags &= !bit;
        }
    };
    let (mut ispeed, mut ospeed) = (None, None);
    for &(mode, value) in modes {
        let on = value == 1;
        match target(mode) {
            // RFC 4254: 255 disables the character (_POSIX_VDISABLE is 0).
            Target::Char(i) => t.c_cc[i] = if value == 255 { 0 } else { value as libc::cc_t },
            Target::Input(b) => set(&mut t.c_iflag, b, on),
            Target::Local(b) => set(&mut t.c_lflag, b, on),
            Target::Output(b) => set(&mut t.c_oflag, b, on),
            Target::Control(b) => set(&mut t.c_cflag, b, on),
            Target::Size(size) => {
                let current = t.c_cflag & libc::CSIZE;
                let new = match (on, size == libc::CS8) {
                    (true, _) => size,
                    // Turning a size off picks the other one.
                    (false, true) if current == libc::CS8 => libc::CS7,
                    (false, false) if current == libc::CS7 => libc::CS8,
                    (false, _) => current,
                };
                t.c_cflag = (t.c_cflag & !libc::CSIZE) | new;
            }
            Target::InputSpeed => ispeed = baud(value),
            Target::OutputSpeed => ospeed = baud(value),
            Target::Missing => {}
        }
    }
    crate::sys::pty::set_speeds(t, ispeed, ospeed).map_err(|e| format!("terminal speed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_mode_is_named_once_with_why() {
        let err = check(&[
            (TerminalMode::Vintr, 300),
            (TerminalMode::Isig, 2),
            (TerminalMode::Vstatus, 1),
            (TerminalMode::Echo, 1),
            (TerminalMode::TtyOpIspeed, 12345),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            "invalid terminal modes: vintr = 300 (a character is 0 to 255), isig = 2 (a flag is \
             0 or 1), vstatus = 1 (not available on Linux), tty_op_ispeed = 12345 (not a \
             standard speed in bits per second)"
        );
    }

    #[test]
    fn every_mode_has_a_linux_place_but_the_three_linux_lacks() {
        let missing: Vec<_> = TerminalMode::ALL
            .iter()
            .filter(|&&m| matches!(target(m), Target::Missing))
            .map(|m| m.name())
            .collect();
        assert_eq!(missing, ["vdsusp", "vflush", "vstatus"]);
        for &m in TerminalMode::ALL {
            assert_eq!(TerminalMode::from_opcode(m.opcode()), Some(m));
            assert_eq!(m.name().parse::<TerminalMode>(), Ok(m));
        }
    }

    #[test]
    fn character_size_flags_switch_csize() {
        let mut t = crate::sys::pty::zeroed_termios();
        let size = |t: &libc::termios| t.c_cflag & libc::CSIZE;
        t.c_cflag = libc::CS8 | libc::PARENB;
        apply(&mut t, &[(TerminalMode::Cs8, 0)]).unwrap();
        assert_eq!(
            (size(&t), t.c_cflag & libc::PARENB),
            (libc::CS7, libc::PARENB)
        );
        // Turning off a size that is not the current one changes nothing.
        apply(&mut t, &[(TerminalMode::Cs8, 0)]).unwrap();
        assert_eq!(size(&t), libc::CS7);
        apply(&mut t, &[(TerminalMode::Cs7, 0)]).unwrap();
        assert_eq!(size(&t), libc::CS8);
        apply(&mut t, &[(TerminalMode::Cs7, 0)]).unwrap();
        assert_eq!(size(&t), libc::CS8);
        apply(&mut t, &[(TerminalMode::Cs7, 1)]).unwrap();
        assert_eq!(size(&t), libc::CS7);
        apply(&mut t, &[(TerminalMode::Cs8, 1)]).unwrap();
        assert_eq!(
            (size(&t), t.c_cflag & libc::PARENB),
            (libc::CS8, libc::PARENB)
        );
    }

    #[test]
    fn a_flag_set_to_0_clears_only_that_flag_and_255_disables_a_character() {
        let mut t = crate::sys::pty::zeroed_termios();
        t.c_lflag = libc::ISIG | libc::ICANON;
        t.c_iflag = libc::ICRNL | libc::IXON;
        apply(&mut t, &[(TerminalMode::Isig, 0), (TerminalMode::Ixon, 0)]).unwrap();
        assert_eq!((t.c_lflag, t.c_iflag), (libc::ICANON, libc::ICRNL));
        apply(&mut t, &[(TerminalMode::Isig, 1), (TerminalMode::Onlcr, 1)]).unwrap();
        assert_eq!(
            (t.c_lflag, t.c_oflag),
            (libc::ISIG | libc::ICANON, libc::ONLCR)
        );
        t.c_cc[libc::VINTR] = 3;
        apply(&mut t, &[(TerminalMode::Vintr, 255)]).unwrap();
        assert_eq!(t.c_cc[libc::VINTR], 0);
    }
}

/// Types the terminal's end-of-file character when dropped: what closing
/// a pty child's input means (see [`Pty`](crate::Pty)). Holds its own
/// descriptor of the master, so it works whichever end is closed first.
#[derive(Debug)]
pub(crate) struct EofOnClose {
    master: std::os::fd::OwnedFd,
    byte: u8,
}

impl EofOnClose {
    /// `byte` is the terminal's VEOF character; `None` when it is disabled.
    pub(crate) fn new(master: std::os::fd::OwnedFd, byte: u8) -> Option<EofOnClose> {
        (byte != 0).then_some(EofOnClose { master, byte })
    }

    /// Gives up on typing it (the end is handed over as a descriptor).
    pub(crate) fn disarm(mut self) {
        self.byte = 0;
    }
}

impl Drop for EofOnClose {
    fn drop(&mut self) {
        if self.byte != 0 {
            use std::os::fd::AsFd;
            // Best effort: a terminal whose input queue is full (a child
            // that never reads) does not get it.
            let _ = crate::sys::fd::write(self.master.as_fd(), &[self.byte]);
        }
    }
}

/// A pty child's terminal, as its handle keeps it: the master, and which
/// of the child's streams are on it.
#[derive(Debug)]
pub(crate) struct Terminal {
    master: std::os::fd::OwnedFd,
    /// stdin, stdout, stderr.
    pub(crate) streams: [bool; 3],
}

impl Terminal {
    pub(crate) fn new(master: std::os::fd::OwnedFd, streams: [bool; 3]) -> Terminal {
        Terminal { master, streams }
    }

    /// `TIOCSWINSZ`: the child's foreground group gets SIGWINCH.
    pub(crate) fn resize(
        &self,
        who: &crate::error::Who,
        rows: u16,
        cols: u16,
    ) -> Result<(), crate::Error> {
        use std::os::fd::AsFd;
        crate::sys::pty::set_window_size(self.master.as_fd(), rows, cols)
            .map_err(|e| crate::Error::os(who, crate::Step::Terminal, e))
    }

    /// Applies `modes` now (checked first; nothing changes on a bad one).
    pub(crate) fn set_modes(
        &self,
        who: &crate::error::Who,
        modes: &[(TerminalMode, u32)],
    ) -> Result<(), crate::Error> {
        use std::os::fd::AsFd;
        let invalid = |why| {
            crate::Error::new(
                who,
                crate::Step::Terminal,
                crate::ErrorKind::InvalidInput,
                Some(why),
                None,
            )
        };
        check(modes).map_err(invalid)?;
        let fd = self.master.as_fd();
        let os = |e| crate::Error::os(who, crate::Step::Terminal, e);
        let mut t = crate::sys::pty::get_attr(fd).map_err(os)?;
        apply(&mut t, modes).map_err(invalid)?;
        crate::sys::pty::set_attr(fd, &t).map_err(os)
    }
}

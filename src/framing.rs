//! Framing: a child's byte stream cut into lines ([`LineCodec`]) or
//! length-prefixed packets ([`PacketCodec`]), Erlang Port's `{line, L}` and
//! `{packet, N}`.
//!
//! A codec is plain state: bytes go in with `push` as they arrive (in
//! chunks of any size, cut anywhere), frames come out with `next_line` /
//! `next_packet`, and `finish` says the stream has ended. Memory is
//! bounded by the codec's maximum, whatever the child writes: a line longer
//! than the maximum comes out in pieces marked incomplete, and a packet
//! longer than its maximum is an error before any of it is buffered.
//!
//! The streams and handles use them for you ([`Chunks::lines`](crate::Chunks::lines),
//! [`Chunks::packets`](crate::Chunks::packets), [`Chunks::for_each_line`](crate::Chunks::for_each_line),
//! [`Child::read_frame`](crate::Child::read_frame), [`Child::write_packet`](crate::Child::write_packet),
//! [`Events::lines`](crate::Events::lines), the async forms, and
//! [`Stdio::lines`](crate::Stdio::lines) for a supervised child). With the
//! `tokio` feature both are `tokio_util::codec::Decoder`s and `PacketCodec`
//! is also an `Encoder` (lines are written as they are).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The default maximum line length of [`LineCodec::new`]: 64 KiB.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// The default maximum packet length with a 4-byte header: 64 MiB (a 1- or
/// 2-byte header allows 255 or 65,535 bytes and that is the default there).
pub const DEFAULT_MAX_PACKET: usize = 64 * 1024 * 1024;

/// A framing: bytes in, frames out. [`LineCodec`] and [`PacketCodec`]
/// implement it; the framed streams and [`Child::read_frame`](crate::Child::read_frame)
/// take any implementation, so a framing of your own plugs in the same way.
///
/// The contract: [`push`](Decode::push) adds the next bytes; [`next_frame`](Decode::next_frame)
/// is called until it returns `Ok(None)` before the next push;
/// [`finish`](Decode::finish) says the stream has ended, after which
/// `next_frame` gives what is left and then `Ok(None)`.
///
/// ```
/// use bytes::Bytes;
/// use procession::{Decode, LineCodec};
/// fn count<D: Decode>(mut d: D, input: &'static [u8]) -> usize {
///     d.push(Bytes::from_static(input));
///     d.finish();
///     std::iter::from_fn(|| d.next_frame().unwrap()).count()
/// }
/// assert_eq!(count(LineCodec::new(80), b"a\nb\nc"), 3);
/// ```
pub trait Decode {
    /// What comes out: a [`Line`], a packet's `Bytes`.
    type Frame;
    /// Adds the next bytes of the stream.
    fn push(&mut self, chunk: Bytes);
    /// Says the stream has ended.
    fn finish(&mut self);
    /// The next frame, `Ok(None)` when more bytes are needed or all is out.
    ///
    /// # Errors
    ///
    /// The bytes do not follow the framing.
    fn next_frame(&mut self) -> Result<Option<Self::Frame>, FrameError>;
}

impl Decode for LineCodec {
    type Frame = Line;
    fn push(&mut self, chunk: Bytes) {
        LineCodec::push(self, chunk);
    }
    fn finish(&mut self) {
        LineCodec::finish(self);
    }
    fn next_frame(&mut self) -> Result<Option<Line>, FrameError> {
        Ok(self.next_line())
    }
}

impl Decode for PacketCodec {
    type Frame = Bytes;
    fn push(&mut self, chunk: Bytes) {
        PacketCodec::push(self, chunk);
    }
    fn finish(&mut self) {
        PacketCodec::finish(self);
    }
    fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        self.next_packet()
    }
}

/// What ends a line ([`LineCodec::newline`]).
///
/// ```
/// use bytes::Bytes;
/// use procession::{LineCodec, Newline};
/// let lines = |newline| {
///     let mut codec = LineCodec::new(100).newline(newline);
///     codec.push(Bytes::from_static(b"a\r\nb\rc\n"));
///     codec.finish();
///     std::iter::from_fn(|| codec.next_line()).map(|l| l.bytes).collect::<Vec<_>>()
/// };
/// assert_eq!(lines(Newline::Lf), ["a\r", "b\rc"]);
/// assert_eq!(lines(Newline::CrLf), ["a", "b\rc"]);
/// assert_eq!(lines(Newline::Any), ["a", "b", "c"]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Newline {
    /// `\n` ends a line; a `\r` is part of the line (the default, as Port).
    #[default]
    Lf,
    /// `\n` ends a line, and a `\r` just before it is dropped with it (text
    /// from Windows programs and network protocols). A lone `\r` is part of
    /// the line.
    CrLf,
    /// `\n`, `\r\n` and `\r` each end a line: progress output that rewrites
    /// its line with `\r` (ffmpeg, curl, rsync) comes as a line per update.
    /// A line ending in `\r` is delivered at once, without waiting to see
    /// whether a `\n` follows (a following `\n` is then skipped).
    Any,
}

/// One line from a [`LineCodec`], without its line ending: Port's
/// `{eol, Line}` (`complete`) or `{noeol, Line}`.
///
/// A line is incomplete when it was longer than the maximum (every piece
/// but the last is incomplete) or when the stream ended without a line
/// ending after it.
///
/// ```
/// use procession::Line;
/// let line = Line::complete("abc");
/// assert_eq!((&line[..], line.complete), (&b"abc"[..], true));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Line {
    /// The bytes of the line (or of this piece of it), without the line
    /// ending.
    pub bytes: Bytes,
    /// Whether a line ending came right after these bytes.
    pub complete: bool,
}

impl Line {
    /// A complete line (`{eol, …}`).
    ///
    /// ```
    /// assert!(procession::Line::complete("x").complete);
    /// ```
    pub fn complete(bytes: impl Into<Bytes>) -> Line {
        Line {
            bytes: bytes.into(),
            complete: true,
        }
    }

    /// An incomplete line or piece (`{noeol, …}`).
    ///
    /// ```
    /// assert!(!procession::Line::incomplete("x").complete);
    /// ```
    pub fn incomplete(bytes: impl Into<Bytes>) -> Line {
        Line {
            bytes: bytes.into(),
            complete: false,
        }
    }
}

impl std::ops::Deref for Line {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Cuts a byte stream into lines of at most a maximum length (Port's
/// `{line, L}`).
///
/// A line longer than the maximum comes out in pieces of exactly the
/// maximum, each [incomplete](Line::complete), then the rest; a final line
/// without a line ending comes out incomplete at [`finish`](LineCodec::finish).
/// The codec never holds more than the maximum plus one byte. Lines that
/// arrive inside one pushed chunk are handed out without a copy (they share
/// the chunk's memory).
///
/// ```
/// use bytes::Bytes;
/// use procession::{Line, LineCodec};
/// let mut codec = LineCodec::new(8);
/// codec.push(Bytes::from_static(b"abc\nlonglongline\nta"));
/// codec.push(Bytes::from_static(b"il"));
/// codec.finish();
/// let lines: Vec<Line> = std::iter::from_fn(|| codec.next_line()).collect();
/// assert_eq!(lines, [
///     Line::complete("abc"),
///     Line::incomplete("longlong"),
///     Line::complete("line"),
///     Line::incomplete("tail"),
/// ]);
/// ```
#[derive(Clone, Debug)]
pub struct LineCodec {
    max: usize,
    newline: Newline,
    /// Bytes of the line being assembled across pushes (at most
    /// `max + extra() - 1`).
    partial: BytesMut,
    /// The rest of the last pushed chunk, not looked at yet.
    current: Bytes,
    /// `Newline::Any`: the last line ended with `\r`, so a `\n` right after
    /// it belongs to that line ending.
    skip_lf: bool,
    /// The stream has ended: what is left comes out incomplete.
    ended: bool,
}

impl LineCodec {
    /// A codec for lines of at most `max` bytes (without the line ending),
    /// ended by `\n`. A `max` of 0 is taken as 1 (every byte its own piece):
    /// a line cannot be shorter than its first byte.
    ///
    /// ```
    /// use bytes::Bytes;
    /// let mut codec = procession::LineCodec::new(1024);
    /// codec.push(Bytes::from_static(b"hello\n"));
    /// assert_eq!(codec.next_line().unwrap().bytes, "hello");
    /// assert_eq!(codec.next_line(), None);
    /// ```
    pub fn new(max: usize) -> LineCodec {
        LineCodec {
            max: max.max(1),
            newline: Newline::Lf,
            partial: BytesMut::new(),
            current: Bytes::new(),
            skip_lf: false,
            ended: false,
        }
    }

    /// Sets what ends a line (`\n` by default): see [`Newline`].
    ///
    /// ```
    /// use bytes::Bytes;
    /// use procession::{LineCodec, Newline};
    /// let mut codec = LineCodec::new(80).newline(Newline::Any);
    /// codec.push(Bytes::from_static(b"10%\r20%\r"));
    /// assert_eq!(codec.next_line().unwrap().bytes, "10%");
    /// assert_eq!(codec.next_line().unwrap().bytes, "20%");
    /// ```
    pub fn newline(mut self, newline: Newline) -> LineCodec {
        self.newline = newline;
        self
    }

    /// The maximum line length.
    ///
    /// ```
    /// assert_eq!(procession::LineCodec::new(0).max_len(), 1);
    /// ```
    pub fn max_len(&self) -> usize {
        self.max
    }

    /// How many bytes past the maximum must be seen to know that no line
    /// ending follows within it: the ending itself, plus a `\r` before a
    /// `\n` with `CrLf`.
    fn extra(&self) -> usize {
        if self.newline == Newline::CrLf { 2 } else { 1 }
    }

    /// Adds the next bytes of the stream. Take the lines out with
    /// [`next_line`](LineCodec::next_line) until it returns `None` before
    /// pushing more: the codec holds at most one pushed chunk unexamined.
    ///
    /// ```
    /// use bytes::Bytes;
    /// let mut codec = procession::LineCodec::new(80);
    /// codec.push(Bytes::from_static(b"par"));
    /// assert_eq!(codec.next_line(), None);
    /// codec.push(Bytes::from_static(b"t\n"));
    /// assert_eq!(codec.next_line().unwrap().bytes, "part");
    /// ```
    pub fn push(&mut self, chunk: Bytes) {
        append(&mut self.current, chunk);
    }

    /// Says the stream has ended: what is left comes out of
    /// [`next_line`](LineCodec::next_line) as incomplete lines.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use procession::{Line, LineCodec};
    /// let mut codec = LineCodec::new(80);
    /// codec.push(Bytes::from_static(b"no newline"));
    /// assert_eq!(codec.next_line(), None);
    /// codec.finish();
    /// assert_eq!(codec.next_line(), Some(Line::incomplete("no newline")));
    /// assert_eq!(codec.next_line(), None);
    /// ```
    pub fn finish(&mut self) {
        self.ended = true;
    }

    /// The next line, or `None` when more bytes are needed (or, after
    /// [`finish`](LineCodec::finish), when everything has come out).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use procession::{Line, LineCodec};
    /// let mut codec = LineCodec::new(4);
    /// codec.push(Bytes::from_static(b"abcdef\n"));
    /// assert_eq!(codec.next_line(), Some(Line::incomplete("abcd")));
    /// assert_eq!(codec.next_line(), Some(Line::complete("ef")));
    /// ```
    pub fn next_line(&mut self) -> Option<Line> {
        if self.newline == Newline::Lf && self.partial.is_empty() {
            // The common case: a whole `\n` line inside the current chunk.
            let window = (self.max + 1).min(self.current.len());
            if let Some(i) = memchr::memchr(b'\n', &self.current[..window]) {
                let line = self.current.split_to(i);
                self.current.advance(1);
                return Some(Line::complete(line));
            }
        }
        if self.skip_lf && !self.current.is_empty() {
            if self.current[0] == b'\n' {
                self.current.advance(1);
            }
            self.skip_lf = false;
        }
        let extra = self.extra();
        // Only the bytes that could still end a line within the maximum
        // are searched.
        let window = (self.max + extra)
            .saturating_sub(self.partial.len())
            .min(self.current.len());
        let found = match self.newline {
            Newline::Any => memchr::memchr2(b'\n', b'\r', &self.current[..window]),
            _ => memchr::memchr(b'\n', &self.current[..window]),
        };
        if let Some(i) = found {
            let ending = self.current[i];
            // With CrLf, a `\r` just before the `\n` (in this chunk, or the
            // last byte held from the previous one) is part of the ending.
            let (cr_here, cr_held) = if self.newline == Newline::CrLf {
                if i > 0 {
                    (self.current[i - 1] == b'\r', false)
                } else {
                    (false, self.partial.last() == Some(&b'\r'))
                }
            } else {
                (false, false)
            };
            let len = self.partial.len() + i - usize::from(cr_here) - usize::from(cr_held);
            if len <= self.max {
                let line = if self.partial.is_empty() {
                    let line = self.current.split_to(i - usize::from(cr_here));
                    self.current.advance(1 + usize::from(cr_here));
                    line
                } else {
                    self.partial
                        .extend_from_slice(&self.current[..i - usize::from(cr_here)]);
                    self.current.advance(i + 1);
                    if cr_held {
                        self.partial.truncate(self.partial.len() - 1);
                    }
                    self.partial.split().freeze()
                };
                self.skip_lf = ending == b'\r';
                return Some(Line::complete(line));
            }
        }
        let total = self.partial.len() + self.current.len();
        if total >= self.max + extra || (self.ended && total > self.max) {
            // No ending within reach: the first `max` bytes are a piece.
            return Some(Line::incomplete(self.take(self.max)));
        }
        if self.ended {
            if total == 0 {
                return None;
            }
            return Some(Line::incomplete(self.take(total)));
        }
        // Not enough to tell yet: keep the rest (at most max + extra - 1
        // bytes in all) until more arrives.
        self.partial.extend_from_slice(&self.current);
        self.current = Bytes::new();
        None
    }

    /// Hands every line that can come out now to `f`, as a borrowed slice
    /// and whether it is complete: the same lines as calling
    /// [`next_line`](LineCodec::next_line) until `None`, without a `Bytes`
    /// handle per line. The fastest way through many short lines (what
    /// [`Chunks::for_each_line`](crate::Chunks::for_each_line) uses).
    ///
    /// ```
    /// use bytes::Bytes;
    /// let mut codec = procession::LineCodec::new(80);
    /// codec.push(Bytes::from_static(b"a\nbb\nc"));
    /// let mut seen = Vec::new();
    /// codec.take_lines(|line, complete| seen.push((line.to_vec(), complete)));
    /// assert_eq!(seen, [(b"a".to_vec(), true), (b"bb".to_vec(), true)]);
    /// codec.finish();
    /// codec.take_lines(|line, complete| seen.push((line.to_vec(), complete)));
    /// assert_eq!(seen[2], (b"c".to_vec(), false));
    /// ```
    pub fn take_lines(&mut self, mut f: impl FnMut(&[u8], bool)) {
        loop {
            if self.partial.is_empty() && !self.skip_lf {
                // Lines wholly inside the current chunk, found in place.
                let (max, extra, newline) = (self.max, self.extra(), self.newline);
                let cur = &self.current[..];
                let mut start = 0;
                if newline == Newline::Lf {
                    // One pass over the chunk for every `\n` in it.
                    for i in memchr::memchr_iter(b'\n', cur) {
                        if i - start > max {
                            break;
                        }
                        f(&cur[start..i], true);
                        start = i + 1;
                    }
                }
                while newline != Newline::Lf && start < cur.len() {
                    let hay = &cur[start..(start + max + extra).min(cur.len())];
                    let found = match newline {
                        Newline::Any => memchr::memchr2(b'\n', b'\r', hay),
                        _ => memchr::memchr(b'\n', hay),
                    };
                    let Some(i) = found else { break };
                    let cr = newline == Newline::CrLf && i > 0 && hay[i - 1] == b'\r';
                    let len = i - usize::from(cr);
                    if len > max {
                        break;
                    }
                    f(&hay[..len], true);
                    start += i + 1;
                    if hay[i] == b'\r' {
                        // Newline::Any: a `\n` right after is part of the ending.
                        match cur.get(start) {
                            Some(b'\n') => start += 1,
                            Some(_) => {}
                            None => self.skip_lf = true,
                        }
                    }
                }
                self.current.advance(start);
            }
            // The rest (a line across chunks, a piece, the end): the general
            // path, one line at a time.
            match self.next_line() {
                Some(line) => f(&line.bytes, line.complete),
                None => return,
            }
        }
    }

    /// The first `n` bytes of what is held (`partial`, then `current`).
    fn take(&mut self, n: usize) -> Bytes {
        if self.partial.is_empty() {
            return self.current.split_to(n);
        }
        if self.partial.len() >= n {
            return self.partial.split_to(n).freeze();
        }
        let need = n - self.partial.len();
        self.partial.extend_from_slice(&self.current[..need]);
        self.current.advance(need);
        self.partial.split().freeze()
    }
}

/// The size of a packet's length header ([`PacketCodec`]): Port's
/// `{packet, 1 | 2 | 4}`.
///
/// ```
/// use procession::PacketSize;
/// assert_eq!(PacketSize::try_from(2), Ok(PacketSize::Two));
/// assert!(PacketSize::try_from(3).is_err());
/// assert_eq!(PacketSize::Four.max_len(), u32::MAX as usize);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketSize {
    /// One byte: packets of up to 255 bytes.
    One,
    /// Two bytes, big-endian: up to 65,535 bytes.
    Two,
    /// Four bytes, big-endian: up to 4 GiB - 1.
    Four,
}

impl PacketSize {
    /// The number of header bytes.
    ///
    /// ```
    /// assert_eq!(procession::PacketSize::Four.header_len(), 4);
    /// ```
    pub fn header_len(self) -> usize {
        match self {
            PacketSize::One => 1,
            PacketSize::Two => 2,
            PacketSize::Four => 4,
        }
    }

    /// The longest payload the header can describe.
    ///
    /// ```
    /// assert_eq!(procession::PacketSize::One.max_len(), 255);
    /// ```
    pub fn max_len(self) -> usize {
        match self {
            PacketSize::One => 0xff,
            PacketSize::Two => 0xffff,
            PacketSize::Four => u32::MAX as usize,
        }
    }
}

impl TryFrom<u8> for PacketSize {
    type Error = FrameError;

    /// 1, 2 or 4; anything else is [`FrameError::BadHeaderSize`].
    fn try_from(n: u8) -> Result<PacketSize, FrameError> {
        match n {
            1 => Ok(PacketSize::One),
            2 => Ok(PacketSize::Two),
            4 => Ok(PacketSize::Four),
            n => Err(FrameError::BadHeaderSize(n)),
        }
    }
}

/// A framing error: the bytes do not follow the framing, or a packet does
/// not fit it.
///
/// ```
/// use procession::{FrameError, PacketCodec, PacketSize};
/// let err = PacketCodec::new(PacketSize::One).encode(&[0; 256], &mut Default::default()).unwrap_err();
/// assert_eq!(err, FrameError::TooLong { len: 256, max: 255 });
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A packet is longer than the header allows or the codec's maximum
    /// (on input it is refused before anything is written; on output it is
    /// refused before any of it is buffered).
    #[error("a packet of {len} bytes is longer than the maximum of {max}")]
    TooLong {
        /// The packet's length.
        len: usize,
        /// The largest allowed.
        max: usize,
    },
    /// The stream ended inside a packet (in its header or its payload).
    #[error("the stream ended inside a packet: {have} of {need} bytes arrived")]
    Truncated {
        /// The bytes of the packet (header included) that arrived.
        have: usize,
        /// The bytes the packet needed (header included; the header's own
        /// size while the header itself is incomplete).
        need: usize,
    },
    /// A header size other than 1, 2 or 4.
    #[error("a packet header has 1, 2 or 4 bytes, not {0}")]
    BadHeaderSize(u8),
}

/// Cuts a byte stream into length-prefixed packets and frames packets for
/// writing (Port's `{packet, N}`): each packet is a 1-, 2- or 4-byte
/// big-endian length, then that many bytes.
///
/// A packet longer than the codec's maximum is an error, never a
/// truncation: when reading, before any of it is buffered; when writing,
/// before anything is written. A stream that ends inside a packet is an
/// error at [`finish`](PacketCodec::finish).
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use procession::{PacketCodec, PacketSize};
/// let codec = PacketCodec::new(PacketSize::Two);
/// let mut wire = BytesMut::new();
/// codec.encode(b"hi", &mut wire)?;
/// codec.encode(b"", &mut wire)?;
/// assert_eq!(&wire[..], b"\x00\x02hi\x00\x00");
///
/// let mut codec = PacketCodec::new(PacketSize::Two);
/// codec.push(wire.freeze());
/// assert_eq!(codec.next_packet()?, Some(Bytes::from("hi")));
/// assert_eq!(codec.next_packet()?, Some(Bytes::new()));
/// assert_eq!(codec.next_packet()?, None);
/// # Ok::<(), procession::FrameError>(())
/// ```
#[derive(Clone, Debug)]
pub struct PacketCodec {
    size: PacketSize,
    max: usize,
    /// The header (while incomplete) or the payload being assembled.
    partial: BytesMut,
    /// The payload length, once its header is complete.
    need: Option<usize>,
    current: Bytes,
    ended: bool,
    /// A framing error was reported: nothing more comes out.
    failed: bool,
}

impl PacketCodec {
    /// A codec for packets with a `size`-byte header. The maximum is what
    /// the header allows, but at most [`DEFAULT_MAX_PACKET`] (64 MiB) with a
    /// 4-byte header: set [`max_len`](PacketCodec::max_len) for more.
    ///
    /// ```
    /// use procession::{PacketCodec, PacketSize};
    /// assert_eq!(PacketCodec::new(PacketSize::Two).max(), 65535);
    /// assert_eq!(PacketCodec::new(PacketSize::Four).max(), 64 << 20);
    /// ```
    pub fn new(size: PacketSize) -> PacketCodec {
        PacketCodec {
            size,
            max: size.max_len().min(DEFAULT_MAX_PACKET),
            partial: BytesMut::new(),
            need: None,
            current: Bytes::new(),
            ended: false,
            failed: false,
        }
    }

    /// Sets the longest packet accepted, in either direction (capped at
    /// what the header can describe).
    ///
    /// ```
    /// use procession::{PacketCodec, PacketSize};
    /// assert_eq!(PacketCodec::new(PacketSize::Four).max_len(1 << 30).max(), 1 << 30);
    /// assert_eq!(PacketCodec::new(PacketSize::One).max_len(1000).max(), 255);
    /// ```
    pub fn max_len(mut self, max: usize) -> PacketCodec {
        self.max = max.min(self.size.max_len());
        self
    }

    /// The longest packet accepted.
    ///
    /// ```
    /// use procession::{PacketCodec, PacketSize};
    /// assert_eq!(PacketCodec::new(PacketSize::One).max(), 255);
    /// ```
    pub fn max(&self) -> usize {
        self.max
    }

    /// The header size.
    ///
    /// ```
    /// use procession::{PacketCodec, PacketSize};
    /// assert_eq!(PacketCodec::new(PacketSize::One).size(), PacketSize::One);
    /// ```
    pub fn size(&self) -> PacketSize {
        self.size
    }

    /// Appends `data` as one packet (header, then the bytes) to `out`.
    ///
    /// # Errors
    ///
    /// [`FrameError::TooLong`] when `data` is longer than the maximum;
    /// nothing is appended then.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use procession::{PacketCodec, PacketSize};
    /// let mut out = BytesMut::new();
    /// PacketCodec::new(PacketSize::Four).encode(b"abc", &mut out)?;
    /// assert_eq!(&out[..], b"\0\0\0\x03abc");
    /// # Ok::<(), procession::FrameError>(())
    /// ```
    pub fn encode(&self, data: &[u8], out: &mut BytesMut) -> Result<(), FrameError> {
        let header = self.header(data.len())?;
        out.reserve(header.len() + data.len());
        out.put_slice(&header);
        out.put_slice(data);
        Ok(())
    }

    /// The header for a packet of `len` bytes.
    ///
    /// # Errors
    ///
    /// [`FrameError::TooLong`] when `len` is more than the maximum.
    ///
    /// ```
    /// use procession::{PacketCodec, PacketSize};
    /// assert_eq!(PacketCodec::new(PacketSize::Two).header(258)?, [1, 2]);
    /// # Ok::<(), procession::FrameError>(())
    /// ```
    pub fn header(&self, len: usize) -> Result<Vec<u8>, FrameError> {
        if len > self.max {
            return Err(FrameError::TooLong { len, max: self.max });
        }
        let be = (len as u32).to_be_bytes();
        Ok(be[4 - self.size.header_len()..].to_vec())
    }

    /// Adds the next bytes of the stream; take the packets out with
    /// [`next_packet`](PacketCodec::next_packet) until it returns
    /// `Ok(None)` before pushing more.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use procession::{PacketCodec, PacketSize};
    /// let mut codec = PacketCodec::new(PacketSize::One);
    /// codec.push(Bytes::from_static(b"\x03a"));
    /// assert_eq!(codec.next_packet()?, None);
    /// codec.push(Bytes::from_static(b"bc"));
    /// assert_eq!(codec.next_packet()?.unwrap(), "abc");
    /// # Ok::<(), procession::FrameError>(())
    /// ```
    pub fn push(&mut self, chunk: Bytes) {
        append(&mut self.current, chunk);
    }

    /// Says the stream has ended; [`next_packet`](PacketCodec::next_packet)
    /// then reports a packet cut short as [`FrameError::Truncated`].
    ///
    /// ```
    /// use bytes::Bytes;
    /// use procession::{FrameError, PacketCodec, PacketSize};
    /// let mut codec = PacketCodec::new(PacketSize::Two);
    /// codec.push(Bytes::from_static(b"\0\x05abc"));
    /// codec.finish();
    /// assert_eq!(codec.next_packet(), Err(FrameError::Truncated { have: 5, need: 7 }));
    /// ```
    pub fn finish(&mut self) {
        self.ended = true;
    }

    /// The next packet, `Ok(None)` when more bytes are needed (or, after
    /// [`finish`](PacketCodec::finish), when everything has come out).
    ///
    /// # Errors
    ///
    /// [`FrameError::TooLong`] for a header announcing more than the
    /// maximum; [`FrameError::Truncated`] after `finish` when the stream
    /// ended inside a packet. Either leaves the codec at the end: it gives
    /// nothing more (the bytes after a bad header cannot be framed).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use procession::{FrameError, PacketCodec, PacketSize};
    /// let mut codec = PacketCodec::new(PacketSize::Four).max_len(10);
    /// codec.push(Bytes::from_static(b"\0\0\0\x0b"));
    /// assert_eq!(codec.next_packet(), Err(FrameError::TooLong { len: 11, max: 10 }));
    /// ```
    pub fn next_packet(&mut self) -> Result<Option<Bytes>, FrameError> {
        if self.failed {
            return Ok(None);
        }
        let header = self.size.header_len();
        let need = match self.need {
            Some(n) => n,
            None => {
                let missing = header - self.partial.len();
                if self.partial.is_empty() && self.current.len() >= header {
                    let len = be_len(&self.current[..header]);
                    self.current.advance(header);
                    self.start(len)?
                } else if self.current.len() >= missing {
                    self.partial.extend_from_slice(&self.current[..missing]);
                    self.current.advance(missing);
                    let len = be_len(&self.partial);
                    self.partial.clear();
                    self.start(len)?
                } else {
                    self.partial.extend_from_slice(&self.current);
                    self.current = Bytes::new();
                    return self.end_check(header);
                }
            }
        };
        if self.partial.is_empty() && self.current.len() >= need {
            self.need = None;
            return Ok(Some(self.current.split_to(need)));
        }
        let missing = need - self.partial.len();
        if self.current.len() >= missing {
            self.partial.extend_from_slice(&self.current[..missing]);
            self.current.advance(missing);
            self.need = None;
            return Ok(Some(self.partial.split().freeze()));
        }
        self.partial.extend_from_slice(&self.current);
        self.current = Bytes::new();
        self.end_check(header + need)
    }

    /// A header announcing `len` bytes was read: check it, remember it.
    fn start(&mut self, len: usize) -> Result<usize, FrameError> {
        if len > self.max {
            self.poison();
            return Err(FrameError::TooLong { len, max: self.max });
        }
        self.need = Some(len);
        self.partial
            .reserve(len.min(self.current.len().max(64 * 1024)));
        Ok(len)
    }

    /// Out of bytes, `need` in all for this packet: an error if the stream
    /// has ended with part of a packet held.
    fn end_check(&mut self, need: usize) -> Result<Option<Bytes>, FrameError> {
        if !self.ended || (self.partial.is_empty() && self.need.is_none()) {
            return Ok(None);
        }
        let header = self.size.header_len();
        let have = match self.need {
            Some(_) => header + self.partial.len(),
            None => self.partial.len(),
        };
        self.poison();
        Err(FrameError::Truncated { have, need })
    }

    /// After an error nothing more comes out.
    fn poison(&mut self) {
        self.partial = BytesMut::new();
        self.current = Bytes::new();
        self.need = None;
        self.ended = true;
        self.failed = true;
    }
}

/// `chunk` after what is left of `current` (usually nothing: the caller
/// took every frame out before pushing; if not, the bytes stay in order).
fn append(current: &mut Bytes, chunk: Bytes) {
    if current.is_empty() {
        *current = chunk;
    } else {
        let mut joined = BytesMut::with_capacity(current.len() + chunk.len());
        joined.extend_from_slice(current);
        joined.extend_from_slice(&chunk);
        *current = joined.freeze();
    }
}

fn be_len(header: &[u8]) -> usize {
    header
        .iter()
        .fold(0usize, |n, &b| (n << 8) | usize::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `input` pushed in chunks of `step` bytes.
    fn lines(mut codec: LineCodec, input: &[u8], step: usize) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        for chunk in input.chunks(step.max(1)) {
            codec.push(Bytes::copy_from_slice(chunk));
            while let Some(l) = codec.next_line() {
                out.push((String::from_utf8_lossy(&l.bytes).into_owned(), l.complete));
            }
        }
        codec.finish();
        while let Some(l) = codec.next_line() {
            out.push((String::from_utf8_lossy(&l.bytes).into_owned(), l.complete));
        }
        out
    }

    fn owned(v: &[(&str, bool)]) -> Vec<(String, bool)> {
        v.iter().map(|(s, c)| (s.to_string(), *c)).collect()
    }

    #[test]
    fn port_line_semantics_whatever_the_chunking() {
        let want = owned(&[
            ("abc", true),
            ("longlong", false),
            ("line", true),
            ("tail", false),
        ]);
        for step in 1..=25 {
            let got = lines(LineCodec::new(8), b"abc\nlonglongline\ntail", step);
            assert_eq!(got, want, "step {step}");
        }
    }

    #[test]
    fn a_line_of_exactly_the_maximum_is_complete() {
        for step in 1..=10 {
            assert_eq!(
                lines(LineCodec::new(4), b"abcd\nabcde\n\n", step),
                owned(&[("abcd", true), ("abcd", false), ("e", true), ("", true)]),
                "step {step}"
            );
            assert_eq!(
                lines(
                    LineCodec::new(4).newline(Newline::CrLf),
                    b"abcd\r\nabc\r\r\n",
                    step
                ),
                owned(&[("abcd", true), ("abc\r", true)]),
                "step {step}"
            );
            assert_eq!(
                lines(LineCodec::new(4).newline(Newline::CrLf), b"abcd\rx\n", step),
                owned(&[("abcd", false), ("\rx", true)]),
                "step {step}"
            );
        }
    }

    #[test]
    fn crlf_and_any_endings() {
        for step in 1..=12 {
            assert_eq!(
                lines(
                    LineCodec::new(100).newline(Newline::CrLf),
                    b"a\r\nb\rc\n\r\nd\r",
                    step
                ),
                owned(&[("a", true), ("b\rc", true), ("", true), ("d\r", false)]),
            );
            assert_eq!(
                lines(
                    LineCodec::new(100).newline(Newline::Any),
                    b"a\r\nb\rc\n\r\rd",
                    step
                ),
                owned(&[
                    ("a", true),
                    ("b", true),
                    ("c", true),
                    ("", true),
                    ("", true),
                    ("d", false)
                ]),
            );
            assert_eq!(
                lines(LineCodec::new(100), b"a\r\nb\r", step),
                owned(&[("a\r", true), ("b\r", false)]),
            );
        }
    }

    #[test]
    fn the_documented_defaults_and_maximums() {
        assert_eq!((DEFAULT_MAX_LINE, DEFAULT_MAX_PACKET), (65_536, 67_108_864));
        assert_eq!(LineCodec::new(80).max_len(), 80);
        assert_eq!(LineCodec::new(0).max_len(), 1);
        let four = PacketCodec::new(PacketSize::Four);
        assert_eq!(
            (four.max(), four.size()),
            (DEFAULT_MAX_PACKET, PacketSize::Four)
        );
        assert_eq!(PacketCodec::new(PacketSize::One).max_len(1000).max(), 255);
        assert_eq!(four.max_len(usize::MAX).max(), u32::MAX as usize);
    }

    #[test]
    fn a_line_ending_in_cr_comes_out_before_the_next_byte() {
        let mut codec = LineCodec::new(80).newline(Newline::Any);
        codec.push(Bytes::from_static(b"50%\r"));
        assert_eq!(codec.next_line(), Some(Line::complete("50%")));
        assert_eq!(codec.next_line(), None);
        codec.push(Bytes::from_static(b"\n"));
        assert_eq!(codec.next_line(), None);
        codec.finish();
        assert_eq!(codec.next_line(), None);
    }

    #[test]
    fn memory_stays_within_the_maximum() {
        let mut codec = LineCodec::new(16).newline(Newline::CrLf);
        let mut held_max = 0;
        for _ in 0..1000 {
            codec.push(Bytes::from_static(b"0123456789abc"));
            while codec.next_line().is_some() {}
            held_max = held_max.max(codec.partial.len() + codec.current.len());
        }
        assert_eq!(held_max, 17);
    }

    #[test]
    fn a_push_before_the_lines_are_taken_keeps_the_order() {
        let mut codec = LineCodec::new(80);
        codec.push(Bytes::from_static(b"a\nb"));
        codec.push(Bytes::from_static(b"\nc\n"));
        let got: Vec<_> = std::iter::from_fn(|| codec.next_line()).collect();
        assert_eq!(
            got,
            [
                Line::complete("a"),
                Line::complete("b"),
                Line::complete("c")
            ]
        );
    }

    /// The line semantics stated plainly, over the whole input at once:
    /// the input as tokens (a line ending, or one byte), a piece cut when
    /// `max` bytes are held and the next token is not an ending.
    pub(crate) fn reference_lines(input: &[u8], max: usize, newline: Newline) -> Vec<Line> {
        let max = max.max(1);
        let (mut out, mut content, mut i) = (Vec::new(), Vec::new(), 0);
        while i < input.len() {
            let crlf = input[i..].starts_with(b"\r\n") && newline != Newline::Lf;
            let ending =
                crlf || input[i] == b'\n' || (input[i] == b'\r' && newline == Newline::Any);
            if ending {
                out.push(Line::complete(std::mem::take(&mut content)));
                i += if crlf { 2 } else { 1 };
                continue;
            }
            if content.len() == max {
                out.push(Line::incomplete(std::mem::take(&mut content)));
            }
            content.push(input[i]);
            i += 1;
        }
        if !content.is_empty() {
            out.push(Line::incomplete(content));
        }
        out
    }

    /// A small deterministic generator (xorshift), so that a failure names
    /// its case.
    pub(crate) struct Rng(pub u64);
    impl Rng {
        pub(crate) fn next(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    #[test]
    fn lines_match_the_reference_for_random_inputs_and_cuts() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for case in 0..20_000 {
            let len = rng.next(40);
            let input: Vec<u8> = (0..len).map(|_| b"ab\r\n"[rng.next(4)]).collect();
            let max = 1 + rng.next(6);
            let newline = [Newline::Lf, Newline::CrLf, Newline::Any][rng.next(3)];
            let mut codec = LineCodec::new(max).newline(newline);
            let mut got = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = 1 + rng.next(rest.len());
                codec.push(Bytes::copy_from_slice(&rest[..n]));
                rest = &rest[n..];
                got.extend(std::iter::from_fn(|| codec.next_line()));
                assert!(
                    codec.partial.len() + codec.current.len() <= max + 1,
                    "case {case}"
                );
            }
            codec.finish();
            got.extend(std::iter::from_fn(|| codec.next_line()));
            let want = reference_lines(&input, max, newline);
            assert_eq!(got, want, "case {case}: {input:?} max {max} {newline:?}");
            // The borrowing form gives the same lines for the same cuts.
            let mut codec = LineCodec::new(max).newline(newline);
            let mut borrowed = Vec::new();
            let mut rest = &input[..];
            let mut take = |codec: &mut LineCodec| {
                codec.take_lines(|l, c| {
                    borrowed.push(Line {
                        bytes: Bytes::copy_from_slice(l),
                        complete: c,
                    })
                })
            };
            while !rest.is_empty() {
                let n = 1 + rng.next(rest.len());
                codec.push(Bytes::copy_from_slice(&rest[..n]));
                rest = &rest[n..];
                take(&mut codec);
            }
            codec.finish();
            take(&mut codec);
            assert_eq!(
                borrowed, want,
                "take_lines, case {case}: {input:?} max {max} {newline:?}"
            );
        }
    }

    fn packets(
        mut codec: PacketCodec,
        input: &[u8],
        step: usize,
    ) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut out = Vec::new();
        for chunk in input.chunks(step.max(1)) {
            codec.push(Bytes::copy_from_slice(chunk));
            while let Some(p) = codec.next_packet()? {
                out.push(p.to_vec());
            }
        }
        codec.finish();
        while let Some(p) = codec.next_packet()? {
            out.push(p.to_vec());
        }
        Ok(out)
    }

    #[test]
    fn packets_round_trip_whatever_the_chunking() {
        for size in [PacketSize::One, PacketSize::Two, PacketSize::Four] {
            let codec = PacketCodec::new(size);
            let payloads: Vec<Vec<u8>> =
                vec![vec![], b"x".to_vec(), (0..=254u8).collect(), vec![7; 255]];
            let mut wire = BytesMut::new();
            for p in &payloads {
                codec.encode(p, &mut wire).unwrap();
            }
            for step in [1, 2, 3, 5, 255, 256, 1000] {
                assert_eq!(packets(codec.clone(), &wire, step).unwrap(), payloads);
            }
        }
    }

    #[test]
    fn the_largest_packet_fits_and_one_more_byte_is_an_error() {
        let one = PacketCodec::new(PacketSize::One);
        let mut wire = BytesMut::new();
        one.encode(&[1; 255], &mut wire).unwrap();
        assert_eq!(wire[0], 255);
        assert_eq!(
            one.encode(&[1; 256], &mut wire),
            Err(FrameError::TooLong { len: 256, max: 255 })
        );
        assert_eq!(wire.len(), 256, "nothing appended on error");
        let two = PacketCodec::new(PacketSize::Two);
        two.encode(&vec![2; 65535], &mut wire).unwrap();
        assert_eq!(
            two.header(65536),
            Err(FrameError::TooLong {
                len: 65536,
                max: 65535
            })
        );
    }

    #[test]
    fn an_announced_packet_over_the_maximum_is_refused_before_buffering() {
        let codec = PacketCodec::new(PacketSize::Four).max_len(100);
        let got = packets(codec, b"\0\0\0\x65", 1);
        assert_eq!(got, Err(FrameError::TooLong { len: 101, max: 100 }));
        let mut codec = PacketCodec::new(PacketSize::Four);
        codec.push(Bytes::from_static(b"\xff\xff\xff\xff"));
        assert!(matches!(
            codec.next_packet(),
            Err(FrameError::TooLong { .. })
        ));
        assert_eq!(codec.next_packet(), Ok(None), "nothing after the error");
        // Bytes after a refused header are not read as packets either.
        let mut codec = PacketCodec::new(PacketSize::One).max_len(2);
        codec.push(Bytes::from_static(b"\x03abc\x01x"));
        assert_eq!(
            codec.next_packet(),
            Err(FrameError::TooLong { len: 3, max: 2 })
        );
        assert_eq!(codec.next_packet(), Ok(None));
        codec.push(Bytes::from_static(b"\x01y"));
        codec.finish();
        assert_eq!(codec.next_packet(), Ok(None));
    }

    #[test]
    fn truncated_streams_are_errors() {
        let codec = PacketCodec::new(PacketSize::Four);
        assert_eq!(
            packets(codec.clone(), b"\0\0", 1),
            Err(FrameError::Truncated { have: 2, need: 4 })
        );
        assert_eq!(
            packets(codec.clone(), b"\0\0\0\x03ab", 1),
            Err(FrameError::Truncated { have: 6, need: 7 })
        );
        assert_eq!(packets(codec, b"", 1), Ok(vec![]));
    }
}

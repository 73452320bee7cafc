//! The blocking streams, framed and as readers: [`Frames`] (lines or
//! packets of a child's stdout), [`FramedEvents`] (framed stdout and
//! stderr, then the exit) and [`ChunksReader`] (`Read` + `BufRead`).
//!
//! Each wraps the demand-driven stream and keeps its pace: a frame is cut
//! from the chunks already read, and the next chunk is read only when no
//! whole frame is left, so back-pressure and the memory bound hold.

use std::io::{self, BufRead, Read};

use bytes::{Buf, Bytes};

use crate::framing::{Decode, LineCodec, PacketCodec};
use crate::stream::{Chunks, Event, Events};
use crate::{Error, ExitStatus};

impl Chunks {
    /// Frames the stream with `decoder`: an iterator of its frames, checked
    /// like the stream itself (a child that does not succeed ends it with
    /// an error of kind [`Exit`](crate::ErrorKind::Exit), after every
    /// frame of its output).
    ///
    /// Use [`lines`](Chunks::lines) and [`packets`](Chunks::packets) for
    /// the two framings procession has; this takes any [`Decode`].
    ///
    /// # Errors
    ///
    /// The items are `Err` as the stream's are, and with an error of kind
    /// [`InvalidData`](crate::ErrorKind::InvalidData) when the output
    /// breaks the framing ([`Error::frame_error`]); the iterator ends after
    /// an error.
    ///
    /// ```
    /// use procession::{Command, Line, LineCodec};
    /// let lines: Vec<Line> = Command::new("printf").arg("a\nb")
    ///     .stream()?.frames(LineCodec::new(80)).collect::<Result<_, _>>()?;
    /// assert_eq!(lines, [Line::complete("a"), Line::incomplete("b")]);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn frames<D: Decode>(self, decoder: D) -> Frames<D> {
        Frames {
            chunks: self,
            decoder,
            end: None,
            over: false,
        }
    }

    /// The stream as lines of at most the codec's maximum length (Erlang
    /// Port's `{line, L}`): see [`LineCodec`] for what a line is, and
    /// [`frames`](Chunks::frames) for errors.
    ///
    /// ```
    /// use procession::{Command, Line, LineCodec, Newline};
    /// // Progress output rewrites its line with \r: a line per update.
    /// let progress = Command::new("printf").arg(r"10%%\r55%%\r100%%\ndone\n").stream()?
    ///     .lines(LineCodec::new(80).newline(Newline::Any))
    ///     .map(|line| line.map(|l| l.bytes))
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// assert_eq!(progress, ["10%", "55%", "100%", "done"]);
    ///
    /// // Port's example: lines of at most 8 bytes.
    /// let lines: Vec<Line> = Command::new("printf").arg(r"abc\nlonglongline\ntail").stream()?
    ///     .lines(LineCodec::new(8)).collect::<Result<_, _>>()?;
    /// assert_eq!(lines, [
    ///     Line::complete("abc"), Line::incomplete("longlong"),
    ///     Line::complete("line"), Line::incomplete("tail"),
    /// ]);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn lines(self, codec: LineCodec) -> Frames<LineCodec> {
        self.frames(codec)
    }

    /// Runs the stream to its end, handing each line to `f` as a borrowed
    /// slice and whether it is complete: the lines of
    /// [`lines`](Chunks::lines) without a `Bytes` handle per line, for the
    /// most lines per second (the line-framing benchmark's fast form). `f`
    /// sets the pace, as a consumer of the stream does.
    ///
    /// # Errors
    ///
    /// As the stream's: a child that does not succeed gives an error of
    /// kind [`Exit`](crate::ErrorKind::Exit) once `f` has had every line.
    ///
    /// ```
    /// use procession::{Command, LineCodec};
    /// let mut longest = 0;
    /// let status = Command::new("seq").arg("1000").stream()?
    ///     .for_each_line(LineCodec::new(80), |line, _complete| longest = longest.max(line.len()))?;
    /// assert_eq!((longest, status.success()), (4, true));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn for_each_line(
        mut self,
        mut codec: LineCodec,
        mut f: impl FnMut(&[u8], bool),
    ) -> Result<ExitStatus, Error> {
        for chunk in self.by_ref() {
            match chunk {
                Ok(chunk) => {
                    codec.push(chunk);
                    codec.take_lines(&mut f);
                }
                Err(e) => {
                    codec.finish();
                    codec.take_lines(&mut f);
                    return Err(e);
                }
            }
        }
        codec.finish();
        codec.take_lines(&mut f);
        Ok(self.status().expect("a stream that ended has a status"))
    }

    /// The stream as length-prefixed packets (Erlang Port's
    /// `{packet, N}`): see [`PacketCodec`], and [`frames`](Chunks::frames)
    /// for errors.
    ///
    /// ```
    /// use procession::{Command, PacketCodec, PacketSize};
    /// let packets = Command::new("printf").arg(r"\000\002hi\000\000").stream()?
    ///     .packets(PacketCodec::new(PacketSize::Two)).collect::<Result<Vec<_>, _>>()?;
    /// assert_eq!(packets, ["hi", ""]);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn packets(self, codec: PacketCodec) -> Frames<PacketCodec> {
        self.frames(codec)
    }

    /// The stream as a reader: `Read` and `BufRead` over the chunks, so
    /// [`std::io::copy`], [`BufRead::lines`] and every API that takes a
    /// reader work on a child's output. `fill_buf` hands out the chunk
    /// read from the pipe, without a copy.
    ///
    /// The stream's errors come out as `io::Error`s that carry the
    /// procession [`Error`] ([`Error::from_io`]): a child that does not
    /// succeed makes the read after its last byte fail.
    ///
    /// ```
    /// use std::io::BufRead;
    /// let reader = procession::Command::new("printf").arg("one\ntwo\n").stream()?.into_reader();
    /// let lines = reader.lines().collect::<Result<Vec<_>, _>>()?;
    /// assert_eq!(lines, ["one", "two"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_reader(self) -> ChunksReader {
        ChunksReader {
            chunks: self,
            buf: Bytes::new(),
            over: false,
        }
    }
}

/// A framed [`Chunks`] stream: see [`Chunks::frames`].
///
/// `Iterator<Item = Result<D::Frame, Error>>`; it ends after an error.
///
/// ```
/// use procession::{Command, LineCodec};
/// let mut lines = Command::new("echo").arg("hi").stream()?.lines(LineCodec::new(80));
/// assert!(lines.pid() > 0);
/// assert_eq!(lines.next().unwrap()?.bytes, "hi");
/// assert!(lines.next().is_none());
/// assert!(lines.status().unwrap().success());
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Debug)]
pub struct Frames<D> {
    chunks: Chunks,
    decoder: D,
    /// Set once the stream has ended: the error it ended with, yielded
    /// after the last frame.
    end: Option<Option<Error>>,
    /// Nothing more comes out.
    over: bool,
}

impl<D> Frames<D> {
    /// The child's pid.
    ///
    /// ```
    /// let lines = procession::Command::shell("echo $$").stream()?
    ///     .lines(procession::LineCodec::new(80));
    /// let pid = lines.pid();
    /// assert_eq!(lines.map(|l| l.unwrap().bytes).collect::<Vec<_>>(), [pid.to_string()]);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.chunks.pid()
    }

    /// The exit status, once the stream has ended.
    ///
    /// ```
    /// let mut lines = procession::Command::shell("exit 3").stream()?
    ///     .lines(procession::LineCodec::new(80));
    /// assert!(lines.next().unwrap().is_err());
    /// assert_eq!(lines.status().unwrap().code(), Some(3));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn status(&self) -> Option<ExitStatus> {
        self.chunks.status()
    }
}

impl<D: Decode> Iterator for Frames<D> {
    type Item = Result<D::Frame, Error>;

    #[inline]
    fn next(&mut self) -> Option<Result<D::Frame, Error>> {
        // One decoder call per frame: a frame already cut from what was
        // read comes out at once; the next chunk is read only when none is.
        while !self.over {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => return Some(Ok(frame)),
                Ok(None) => {}
                Err(e) => {
                    self.over = true;
                    return Some(Err(Error::framing(self.chunks.who(), e)));
                }
            }
            if let Some(end) = &mut self.end {
                self.over = true;
                return end.take().map(Err);
            }
            self.refill();
        }
        None
    }
}

impl<D: Decode> Frames<D> {
    /// Pushes the next chunk, or records how the stream ended.
    #[cold]
    fn refill(&mut self) {
        match self.chunks.next() {
            Some(Ok(chunk)) => self.decoder.push(chunk),
            other => {
                self.decoder.finish();
                self.end = Some(other.and_then(Result::err));
            }
        }
    }
}

/// An item of [`FramedEvents`]: a frame of stdout or stderr, or the exit.
///
/// ```
/// use procession::{FramedEvent, Line};
/// let ev: FramedEvent<Line> = FramedEvent::Stdout(Line::complete("x"));
/// assert!(matches!(ev, FramedEvent::Stdout(l) if l.complete));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FramedEvent<F> {
    /// A frame of stdout.
    Stdout(F),
    /// A frame of stderr (when it is piped).
    Stderr(F),
    /// The child's exit status: always the last event, after every frame.
    Exit(ExitStatus),
}

impl Events {
    /// Frames stdout and stderr, each with its own copy of `decoder`: the
    /// events become frames of either stream, then the exit (after every
    /// frame, an unterminated last line included).
    ///
    /// # Errors
    ///
    /// The items are `Err` as the events' are, and with an error of kind
    /// [`InvalidData`](crate::ErrorKind::InvalidData) when an output breaks
    /// the framing; the iterator ends after a framing error.
    ///
    /// ```
    /// use procession::{Command, FramedEvent, Line, LineCodec, Stdio};
    /// let events: Vec<_> = Command::shell("echo out; printf 'err' >&2; exit 2")
    ///     .stderr(Stdio::piped()).events()?
    ///     .frames(LineCodec::new(80)).collect::<Result<_, _>>()?;
    /// assert!(events.contains(&FramedEvent::Stdout(Line::complete("out"))));
    /// assert!(events.contains(&FramedEvent::Stderr(Line::incomplete("err"))));
    /// assert!(matches!(events.last(), Some(FramedEvent::Exit(s)) if s.code() == Some(2)));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn frames<D: Decode + Clone>(self, decoder: D) -> FramedEvents<D> {
        FramedEvents {
            events: self,
            stdout: decoder.clone(),
            stderr: decoder,
            exit: None,
            over: false,
        }
    }

    /// [`frames`](Events::frames) with a [`LineCodec`]: the events as
    /// lines of stdout and stderr, then the exit.
    ///
    /// ```
    /// use procession::{Command, FramedEvent, Line, LineCodec, Stdio};
    /// let events: Vec<_> = Command::shell("echo a; echo b >&2").stderr(Stdio::piped())
    ///     .events()?.lines(LineCodec::new(80)).collect::<Result<_, _>>()?;
    /// assert_eq!(events.len(), 3);
    /// assert!(events.contains(&FramedEvent::Stderr(Line::complete("b"))));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn lines(self, codec: LineCodec) -> FramedEvents<LineCodec> {
        self.frames(codec)
    }
}

/// Framed [`Events`]: see [`Events::frames`].
///
/// ```
/// use procession::{Command, FramedEvent, LineCodec};
/// let mut events = Command::new("true").events()?.lines(LineCodec::new(80));
/// assert!(events.pid() > 0);
/// assert!(matches!(events.next(), Some(Ok(FramedEvent::Exit(s))) if s.success()));
/// assert!(events.next().is_none());
/// # Ok::<(), procession::Error>(())
/// ```
#[derive(Debug)]
pub struct FramedEvents<D> {
    events: Events,
    stdout: D,
    stderr: D,
    /// The exit, once seen: yielded after the decoders' last frames.
    exit: Option<ExitStatus>,
    over: bool,
}

impl<D> FramedEvents<D> {
    /// The child's pid.
    ///
    /// ```
    /// let events = procession::Command::new("true").events()?.lines(procession::LineCodec::new(8));
    /// assert!(events.pid() > 0);
    /// drop(events); // stopped and reaped in the background
    /// # assert!(procession::__test_support::wait_for_reaper());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.events.pid()
    }
}

impl<D: Decode> Iterator for FramedEvents<D> {
    type Item = Result<FramedEvent<D::Frame>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.over {
            // Only the decoder that was pushed last has frames, so the
            // order of the chunks is kept.
            for (decoder, stdout) in [(&mut self.stdout, true), (&mut self.stderr, false)] {
                match decoder.next_frame() {
                    Ok(Some(f)) if stdout => return Some(Ok(FramedEvent::Stdout(f))),
                    Ok(Some(f)) => return Some(Ok(FramedEvent::Stderr(f))),
                    Ok(None) => {}
                    Err(e) => {
                        self.over = true;
                        return Some(Err(Error::framing(self.events.who(), e)));
                    }
                }
            }
            if let Some(status) = self.exit.take() {
                self.over = true;
                return Some(Ok(FramedEvent::Exit(status)));
            }
            match self.events.next() {
                Some(Ok(Event::Stdout(b))) => self.stdout.push(b),
                Some(Ok(Event::Stderr(b))) => self.stderr.push(b),
                Some(Ok(Event::Exit(status))) => {
                    self.stdout.finish();
                    self.stderr.finish();
                    self.exit = Some(status);
                }
                // An input error: the exit still follows.
                Some(Err(e)) => return Some(Err(e)),
                None => {
                    self.stdout.finish();
                    self.stderr.finish();
                    self.over = true;
                    // A read error ended the events: the frames held are
                    // lost with it (the error was already yielded).
                }
            }
        }
        None
    }
}

/// A [`Chunks`] stream as `Read` + `BufRead`: see [`Chunks::into_reader`].
///
/// ```
/// use std::io::Read;
/// let mut reader = procession::Command::new("echo").arg("hi").stream()?.into_reader();
/// let mut out = String::new();
/// reader.read_to_string(&mut out)?;
/// assert_eq!(out, "hi\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ChunksReader {
    chunks: Chunks,
    /// The unread rest of the last chunk.
    buf: Bytes,
    over: bool,
}

impl ChunksReader {
    /// The child's pid.
    ///
    /// ```
    /// let reader = procession::Command::new("true").stream()?.into_reader();
    /// assert!(reader.pid() > 0);
    /// drop(reader); // stopped and reaped in the background
    /// # assert!(procession::__test_support::wait_for_reaper());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.chunks.pid()
    }

    /// The exit status, once the end has been read.
    ///
    /// ```
    /// use std::io::Read;
    /// let mut reader = procession::Command::new("true").stream()?.into_reader();
    /// reader.read_to_end(&mut Vec::new())?;
    /// assert!(reader.status().unwrap().success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status(&self) -> Option<ExitStatus> {
        self.chunks.status()
    }
}

impl BufRead for ChunksReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.buf.is_empty() && !self.over {
            match self.chunks.next() {
                Some(Ok(chunk)) => self.buf = chunk,
                Some(Err(e)) => {
                    self.over = true;
                    return Err(e.into());
                }
                None => self.over = true,
            }
        }
        Ok(&self.buf)
    }

    fn consume(&mut self, n: usize) {
        self.buf.advance(n.min(self.buf.len()));
    }
}

impl Read for ChunksReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

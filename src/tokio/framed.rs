//! The async streams, framed and as readers: [`AsyncFrames`] and
//! [`AsyncChunksReader`] (`AsyncRead` + `AsyncBufRead`), framed reads and
//! packet writes on [`AsyncChild`], and the codecs as `tokio_util`
//! codecs (both `Decoder`s, `PacketCodec` also an `Encoder`), the idiomatic form for framing
//! any `AsyncRead` (such as an [`AsyncChild`]'s pipe ends) with
//! `FramedRead`/`FramedWrite`.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_core::Stream;
use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};

use super::{AsyncChild, AsyncChunks};
use crate::framing::{Decode, FrameError, Line, LineCodec, PacketCodec};
use crate::{Error, ExitStatus};

impl AsyncChunks {
    /// Frames the stream with `decoder`: as
    /// [`Chunks::frames`](crate::Chunks::frames), as a `Stream` and with
    /// [`next_frame`](AsyncFrames::next_frame).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Line, LineCodec};
    /// let mut lines = Command::new("printf").arg("a\nb").stream_async()?.frames(LineCodec::new(80));
    /// assert_eq!(lines.next_frame().await.unwrap()?, Line::complete("a"));
    /// assert_eq!(lines.next_frame().await.unwrap()?, Line::incomplete("b"));
    /// assert!(lines.next_frame().await.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub fn frames<D: Decode>(self, decoder: D) -> AsyncFrames<D> {
        AsyncFrames {
            chunks: self,
            decoder,
            end: None,
            over: false,
        }
    }

    /// The stream as lines: see [`Chunks::lines`](crate::Chunks::lines).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use futures_util::TryStreamExt;
    /// use procession::{Command, LineCodec, Newline};
    /// let lines: Vec<_> = Command::new("printf").arg(r"1/3\r2/3\r3/3\n").stream_async()?
    ///     .lines(LineCodec::new(80).newline(Newline::Any))
    ///     .map_ok(|l| l.bytes).try_collect().await?;
    /// assert_eq!(lines, ["1/3", "2/3", "3/3"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn lines(self, codec: LineCodec) -> AsyncFrames<LineCodec> {
        self.frames(codec)
    }

    /// Runs the stream to its end, handing each line to `f` as a borrowed
    /// slice: as [`Chunks::for_each_line`](crate::Chunks::for_each_line).
    ///
    /// # Errors
    ///
    /// As [`Chunks::for_each_line`](crate::Chunks::for_each_line).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, LineCodec};
    /// let mut n = 0;
    /// Command::new("seq").arg("100").stream_async()?
    ///     .for_each_line(LineCodec::new(80), |_line, complete| n += usize::from(complete)).await?;
    /// assert_eq!(n, 100);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn for_each_line(
        mut self,
        mut codec: LineCodec,
        mut f: impl FnMut(&[u8], bool),
    ) -> Result<ExitStatus, Error> {
        while let Some(chunk) = self.next_chunk().await {
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

    /// The stream as length-prefixed packets: see
    /// [`Chunks::packets`](crate::Chunks::packets).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, PacketCodec, PacketSize};
    /// let mut packets = Command::new("printf").arg(r"\000\000\000\002hi").stream_async()?
    ///     .packets(PacketCodec::new(PacketSize::Four));
    /// assert_eq!(packets.next_frame().await.unwrap()?, "hi");
    /// assert!(packets.next_frame().await.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub fn packets(self, codec: PacketCodec) -> AsyncFrames<PacketCodec> {
        self.frames(codec)
    }

    /// The stream as `AsyncRead` + `AsyncBufRead`: see
    /// [`Chunks::into_reader`](crate::Chunks::into_reader).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use tokio::io::AsyncBufReadExt;
    /// let reader = procession::Command::new("printf").arg("one\ntwo\n").stream_async()?.into_async_read();
    /// let mut lines = reader.lines();
    /// assert_eq!(lines.next_line().await?.as_deref(), Some("one"));
    /// assert_eq!(lines.next_line().await?.as_deref(), Some("two"));
    /// assert_eq!(lines.next_line().await?, None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_async_read(self) -> AsyncChunksReader {
        AsyncChunksReader {
            chunks: self,
            buf: Bytes::new(),
            over: false,
        }
    }
}

/// A framed [`AsyncChunks`] stream: see [`AsyncChunks::frames`].
///
/// `Stream<Item = io::Result<D::Frame>>` (the `io::Error` carries the
/// procession [`Error`]: [`Error::from_io`]), or `next_frame` for the
/// procession error itself. Cancel-safe.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), procession::Error> {
/// let mut lines = procession::Command::new("echo").arg("hi").stream_async()?
///     .lines(procession::LineCodec::new(80));
/// assert!(lines.pid() > 0);
/// assert_eq!(lines.next_frame().await.unwrap()?.bytes, "hi");
/// assert!(lines.next_frame().await.is_none());
/// assert!(lines.status().unwrap().success());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct AsyncFrames<D> {
    chunks: AsyncChunks,
    decoder: D,
    end: Option<Option<Error>>,
    over: bool,
}

impl<D> AsyncFrames<D> {
    /// The child's pid.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// let lines = procession::Command::new("true").stream_async()?.lines(procession::LineCodec::new(8));
    /// assert!(lines.pid() > 0);
    /// drop(lines); // stopped and reaped in the background
    /// # assert!(procession::__test_support::wait_for_reaper());
    /// # Ok(())
    /// # }
    /// ```
    pub fn pid(&self) -> u32 {
        self.chunks.pid()
    }

    /// The exit status, once the stream has ended.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// let mut lines = procession::Command::shell("exit 4").stream_async()?.lines(procession::LineCodec::new(8));
    /// assert!(lines.next_frame().await.unwrap().is_err());
    /// assert_eq!(lines.status().unwrap().code(), Some(4));
    /// # Ok(())
    /// # }
    /// ```
    pub fn status(&self) -> Option<ExitStatus> {
        self.chunks.status()
    }
}

impl<D: Decode> AsyncFrames<D> {
    /// The next frame; `None` at the end. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`Chunks::frames`](crate::Chunks::frames).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, ErrorKind, LineCodec};
    /// let mut lines = Command::shell("echo last; exit 2").stream_async()?.lines(LineCodec::new(80));
    /// assert_eq!(lines.next_frame().await.unwrap()?.bytes, "last");
    /// assert_eq!(lines.next_frame().await.unwrap().unwrap_err().kind(), ErrorKind::Exit);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn next_frame(&mut self) -> Option<Result<D::Frame, Error>> {
        poll_fn(|cx| self.poll_item(cx)).await
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<D::Frame, Error>>> {
        while !self.over {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                Ok(None) => {}
                Err(e) => {
                    self.over = true;
                    return Poll::Ready(Some(Err(Error::framing(self.chunks.who(), e))));
                }
            }
            if let Some(end) = &mut self.end {
                self.over = true;
                return Poll::Ready(end.take().map(Err));
            }
            match std::task::ready!(self.chunks.poll_chunk(cx)) {
                Some(Ok(chunk)) => self.decoder.push(chunk),
                other => {
                    self.decoder.finish();
                    self.end = Some(other.and_then(Result::err));
                }
            }
        }
        Poll::Ready(None)
    }
}

impl<D: Decode + Unpin> Stream for AsyncFrames<D> {
    type Item = io::Result<D::Frame>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .poll_item(cx)
            .map(|o| o.map(|r| r.map_err(io::Error::from)))
    }
}

/// An [`AsyncChunks`] stream as `AsyncRead` + `AsyncBufRead`: see
/// [`AsyncChunks::into_async_read`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tokio::io::AsyncReadExt;
/// let mut reader = procession::Command::new("echo").arg("hi").stream_async()?.into_async_read();
/// assert!(reader.pid() > 0);
/// let mut out = String::new();
/// reader.read_to_string(&mut out).await?;
/// assert_eq!(out, "hi\n");
/// assert!(reader.status().unwrap().success());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct AsyncChunksReader {
    chunks: AsyncChunks,
    buf: Bytes,
    over: bool,
}

impl AsyncChunksReader {
    /// The child's pid.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// let reader = procession::Command::new("true").stream_async()?.into_async_read();
    /// assert!(reader.pid() > 0);
    /// drop(reader); // stopped and reaped in the background
    /// # assert!(procession::__test_support::wait_for_reaper());
    /// # Ok(())
    /// # }
    /// ```
    pub fn pid(&self) -> u32 {
        self.chunks.pid()
    }

    /// The exit status, once the end has been read.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use tokio::io::AsyncReadExt;
    /// let mut reader = procession::Command::new("false").stream_async()?.into_async_read();
    /// assert!(reader.read_to_end(&mut Vec::new()).await.is_err()); // checked, as the stream
    /// assert_eq!(reader.status().unwrap().code(), Some(1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn status(&self) -> Option<ExitStatus> {
        self.chunks.status()
    }
}

impl AsyncBufRead for AsyncChunksReader {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        while this.buf.is_empty() && !this.over {
            match std::task::ready!(this.chunks.poll_chunk(cx)) {
                Some(Ok(chunk)) => this.buf = chunk,
                Some(Err(e)) => {
                    this.over = true;
                    return Poll::Ready(Err(e.into()));
                }
                None => this.over = true,
            }
        }
        Poll::Ready(Ok(&this.buf))
    }

    fn consume(self: Pin<&mut Self>, n: usize) {
        let this = self.get_mut();
        this.buf.advance(n.min(this.buf.len()));
    }
}

impl AsyncRead for AsyncChunksReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let avail = std::task::ready!(self.as_mut().poll_fill_buf(cx))?;
        let n = avail.len().min(out.remaining());
        out.put_slice(&avail[..n]);
        self.consume(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncChild {
    /// Reads the next frame of stdout with `decoder`: as
    /// [`Child::read_frame`](crate::Child::read_frame). Cancel-safe (the
    /// decoder keeps what was read).
    ///
    /// # Errors
    ///
    /// As [`Child::read_frame`](crate::Child::read_frame).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, Line, LineCodec, Stdio};
    /// let mut child = Command::new("printf").arg("x\ny").stdout(Stdio::piped()).spawn_async()?;
    /// let mut lines = LineCodec::new(80);
    /// assert_eq!(child.read_frame(&mut lines).await?, Some(Line::complete("x")));
    /// assert_eq!(child.read_frame(&mut lines).await?, Some(Line::incomplete("y")));
    /// assert_eq!(child.read_frame(&mut lines).await?, None);
    /// child.wait().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn read_frame<D: Decode>(
        &mut self,
        decoder: &mut D,
    ) -> Result<Option<D::Frame>, Error> {
        loop {
            let frame = decoder
                .next_frame()
                .map_err(|e| Error::framing(self.process.program(), e))?;
            if frame.is_some() {
                return Ok(frame);
            }
            match self.read().await? {
                Some(chunk) => decoder.push(chunk),
                None => {
                    decoder.finish();
                    return decoder
                        .next_frame()
                        .map_err(|e| Error::framing(self.process.program(), e));
                }
            }
        }
    }

    /// Writes `data` to stdin as one packet: as
    /// [`Child::write_packet`](crate::Child::write_packet).
    ///
    /// # Errors
    ///
    /// As [`Child::write_packet`](crate::Child::write_packet).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), procession::Error> {
    /// use procession::{Command, PacketCodec, PacketSize, Stdio};
    /// let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn_async()?;
    /// let mut codec = PacketCodec::new(PacketSize::Two);
    /// child.write_packet(&codec, b"ping").await?;
    /// assert_eq!(child.read_frame(&mut codec).await?.unwrap(), "ping");
    /// child.close_stdin();
    /// child.wait().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn write_packet(&mut self, codec: &PacketCodec, data: &[u8]) -> Result<(), Error> {
        let mut framed = BytesMut::new();
        codec
            .encode(data, &mut framed)
            .map_err(|e| Error::unframable(self.process.program(), e))?;
        self.write_all(&framed).await
    }
}

fn invalid_data(e: FrameError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// `FramedRead` over any `AsyncRead`: lines as [`Line`]s.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use futures_util::StreamExt;
/// use procession::{Command, Line, LineCodec, Stdio};
/// use tokio_util::codec::FramedRead;
/// let mut child = Command::new("printf").arg("a\nb\n").stdout(Stdio::piped()).spawn_async()?;
/// let mut lines = FramedRead::new(child.stdout.take().unwrap(), LineCodec::new(80));
/// assert_eq!(lines.next().await.unwrap()?, Line::complete("a"));
/// assert_eq!(lines.next().await.unwrap()?, Line::complete("b"));
/// assert!(lines.next().await.is_none());
/// child.wait().await?;
/// # Ok(())
/// # }
/// ```
impl tokio_util::codec::Decoder for LineCodec {
    type Item = Line;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Line>> {
        if !src.is_empty() {
            self.push(src.split().freeze());
        }
        Ok(self.next_line())
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<Line>> {
        if !src.is_empty() {
            self.push(src.split().freeze());
        }
        self.finish();
        Ok(self.next_line())
    }
}

/// `FramedRead` over any `AsyncRead`: packets as `Bytes`; a framing error
/// is an `io::Error` of kind `InvalidData` carrying the [`FrameError`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use futures_util::{SinkExt, StreamExt};
/// use procession::{Command, PacketCodec, PacketSize, Stdio};
/// use tokio_util::codec::{FramedRead, FramedWrite};
/// let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn_async()?;
/// let codec = PacketCodec::new(PacketSize::Four);
/// let mut sink = FramedWrite::new(child.stdin.take().unwrap(), codec.clone());
/// let mut packets = FramedRead::new(child.stdout.take().unwrap(), codec);
/// sink.send(&b"first"[..]).await?;
/// sink.send(&b""[..]).await?;
/// drop(sink); // cat sees end-of-file
/// assert_eq!(packets.next().await.unwrap()?, "first");
/// assert_eq!(packets.next().await.unwrap()?, "");
/// assert!(packets.next().await.is_none());
/// child.wait().await?;
/// # Ok(())
/// # }
/// ```
impl tokio_util::codec::Decoder for PacketCodec {
    type Item = Bytes;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Bytes>> {
        if !src.is_empty() {
            self.push(src.split().freeze());
        }
        self.next_packet().map_err(invalid_data)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<Bytes>> {
        if !src.is_empty() {
            self.push(src.split().freeze());
        }
        self.finish();
        self.next_packet().map_err(invalid_data)
    }
}

/// `FramedWrite` to any `AsyncWrite`: each item is one packet; one longer
/// than the maximum is an `io::Error` of kind `InvalidInput` and nothing
/// of it is written.
impl<T: AsRef<[u8]>> tokio_util::codec::Encoder<T> for PacketCodec {
    type Error = io::Error;

    fn encode(&mut self, item: T, dst: &mut BytesMut) -> io::Result<()> {
        PacketCodec::encode(self, item.as_ref(), dst)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }
}

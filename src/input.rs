//! Input for a child's stdin: bytes, an iterator of chunks, a reader, a
//! file, or a callback that writes into an [`InputSink`].

use std::fmt;
use std::io::{self, Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use bytes::Bytes;

use crate::ChildStdin;

/// The writer a [`Command::input_fn`](crate::Command::input_fn) callback
/// writes the child's input into.
///
/// Writes block until the child has taken the data (back-pressure through
/// the pipe). When the child stops reading, writes fail with
/// `ErrorKind::BrokenPipe`: return that error (or `Ok`) from the callback.
/// The child's stdin is closed when the callback returns.
#[derive(Debug)]
pub struct InputSink {
    stdin: ChildStdin,
}

impl InputSink {
    pub(crate) fn new(stdin: ChildStdin) -> InputSink {
        InputSink { stdin }
    }
}

impl Write for InputSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stdin.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(crate) type Callback = Box<dyn FnOnce(&mut InputSink) -> io::Result<()> + Send>;

/// A helper thread feeding a child's stdin with blocking writes: a
/// callback in every API, any source for [`spawn`](crate::Command::spawn).
///
/// The thread hands over its result *before* it closes stdin. The child
/// can see end-of-file, and exit because of it, only after that, so whoever
/// notices the exit and then asks for the result finds it there: an input
/// that failed is never lost to the race between the thread's end and the
/// exit. (Joining the thread instead would miss a result whose thread had
/// closed stdin but not yet finished.)
#[derive(Debug)]
pub(crate) struct InputThread {
    /// In a mutex only to make the handles that hold it `Sync`.
    result: Mutex<mpsc::Receiver<io::Result<()>>>,
}

impl InputThread {
    /// Starts the thread; it owns `stdin` and closes it when it is done.
    pub(crate) fn start(
        source: Source,
        stdin: ChildStdin,
        max_chunk: usize,
    ) -> io::Result<InputThread> {
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("procession-input".into())
            .spawn(move || {
                let mut sink = InputSink::new(stdin);
                let result =
                    panic::catch_unwind(AssertUnwindSafe(|| feed(source, &mut sink, max_chunk)))
                        .unwrap_or_else(|_| Err(io::Error::other("the input callback panicked")));
                // The receiver may be gone (the run is over): nothing to tell.
                let _ = tx.send(result);
                drop(sink);
            })?;
        Ok(InputThread {
            result: Mutex::new(rx),
        })
    }

    /// The feeding's result once it has ended, `None` while the thread still
    /// feeds (it holds the only stdin end, so it ends on a broken pipe once
    /// nobody reads) or after the result was taken.
    pub(crate) fn result(&self) -> Option<io::Result<()>> {
        self.receiver().try_recv().ok()
    }

    /// [`result`](InputThread::result), waiting for it at most `limit`.
    /// For after the child's exit: once its stdin has no reader left, a
    /// thread blocked writing to it is woken at once with a broken pipe, so
    /// this normally returns in microseconds; `limit` bounds the wait for a
    /// callback busy with something else (its own source, say).
    pub(crate) fn wait_result(&self, limit: Duration) -> Option<io::Result<()>> {
        self.receiver().recv_timeout(limit).ok()
    }

    fn receiver(&self) -> std::sync::MutexGuard<'_, mpsc::Receiver<io::Result<()>>> {
        self.result.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes `source` into the sink (a callback writes for itself).
fn feed(source: Source, sink: &mut InputSink, max_chunk: usize) -> io::Result<()> {
    let mut source = match source {
        Source::Callback(f) => return f(sink),
        other => other,
    };
    while let Some(chunk) = source.next_chunk(max_chunk) {
        sink.write_all(&chunk?)?;
    }
    Ok(())
}

/// An async input callback: given the sink, returns the future that feeds it.
#[cfg(feature = "tokio")]
pub(crate) type AsyncCallback = Box<
    dyn FnOnce(
            crate::tokio::AsyncInputSink,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<()>> + Send>>
        + Send,
>;

/// A source the driver pulls from, one chunk at a time.
pub(crate) enum Source {
    Bytes(Bytes),
    Chunks(Box<dyn Iterator<Item = Bytes> + Send>),
    Reader(Box<dyn Read + Send>),
    Callback(Callback),
    /// A `futures` stream of chunks (async API only).
    #[cfg(feature = "tokio")]
    Stream(std::pin::Pin<Box<dyn futures_core::Stream<Item = Bytes> + Send>>),
    /// A tokio `AsyncRead` (async API only).
    #[cfg(feature = "tokio")]
    AsyncRead(std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>),
    /// An async callback writing into an `AsyncInputSink` (async API only).
    #[cfg(feature = "tokio")]
    AsyncCallback(AsyncCallback),
}

impl Source {
    /// The next chunk: `None` at the end. Empty chunks are skipped (up to a
    /// bound, so an iterator of nothing but empty chunks cannot spin forever
    /// without the driver looking at its other streams).
    pub(crate) fn next_chunk(&mut self, max: usize) -> Option<io::Result<Bytes>> {
        match self {
            Source::Bytes(b) => {
                if b.is_empty() {
                    None
                } else {
                    Some(Ok(std::mem::take(b)))
                }
            }
            Source::Chunks(it) => {
                for chunk in it.by_ref() {
                    if !chunk.is_empty() {
                        return Some(Ok(chunk));
                    }
                }
                None
            }
            Source::Reader(r) => {
                let mut buf = vec![0u8; max];
                loop {
                    match r.read(&mut buf) {
                        Ok(0) => return None,
                        Ok(n) => {
                            buf.truncate(n);
                            return Some(Ok(Bytes::from(buf)));
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Some(Err(e)),
                    }
                }
            }
            Source::Callback(_) => None,
            #[cfg(feature = "tokio")]
            Source::Stream(_) | Source::AsyncRead(_) | Source::AsyncCallback(_) => None,
        }
    }

    /// Whether only the async API can feed this source.
    pub(crate) fn is_async(&self) -> bool {
        #[cfg(feature = "tokio")]
        if matches!(
            self,
            Source::Stream(_) | Source::AsyncRead(_) | Source::AsyncCallback(_)
        ) {
            return true;
        }
        false
    }
}

/// What a [`Command`](crate::Command) holds as input. Bytes and files can be
/// used by every run of the command; iterators, readers and callbacks are
/// consumed by the first run.
#[derive(Clone)]
pub(crate) enum InputSpec {
    Bytes(Bytes),
    File(PathBuf),
    Once(Arc<Mutex<Option<Source>>>),
}

impl InputSpec {
    pub(crate) fn once(source: Source) -> InputSpec {
        InputSpec::Once(Arc::new(Mutex::new(Some(source))))
    }

    /// Whether only the async API can feed it (an unused async source).
    pub(crate) fn is_async(&self) -> bool {
        match self {
            InputSpec::Once(slot) => slot
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_some_and(Source::is_async),
            _ => false,
        }
    }
}

impl fmt::Debug for InputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputSpec::Bytes(b) => f.debug_tuple("Bytes").field(&b.len()).finish(),
            InputSpec::File(p) => f.debug_tuple("File").field(p).finish(),
            InputSpec::Once(_) => f.write_str("Once(..)"),
        }
    }
}

impl crate::Command {
    /// Feeds the child's stdin from an iterator of chunks, pulled one chunk at
    /// a time and only while the child's stdin can take more. When the
    /// iterator ends, stdin is closed, so programs that wait for end-of-file
    /// (`sort`, `base64`, `tac`) finish. Empty chunks are skipped.
    ///
    /// Every way of running the command feeds it:
    /// [`stream`](crate::Command::stream), [`events`](crate::Command::events),
    /// [`output`](crate::Command::output) and [`run`](crate::Command::run)
    /// from the consumer's thread; [`spawn`](crate::Command::spawn) and
    /// [`status`](crate::Command::status) from a helper thread (the
    /// handle's `stdin` is then `None`, and [`Child::wait`](crate::Child::wait)
    /// reports a failed input); the async API refuses it for
    /// `spawn_async`. Setting [`stdin`](crate::Command::stdin) as well is
    /// refused. A one-shot input (iterator, reader, callback) is consumed
    /// by the first run (a second run gets
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput));
    /// [`input_bytes`](crate::Command::input_bytes) is kept for every run.
    ///
    /// ```
    /// use procession::Command;
    /// let out = Command::new("cat").input(["Hello ", "Back!"]).stream()?.collect_string()?;
    /// assert_eq!(out, "Hello Back!");
    ///
    /// let lines = (1..=10).map(|n| format!("{n}\n"));
    /// let out = Command::new("cat").input(lines).stream()?.collect_string()?;
    /// assert_eq!(out, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn input<I>(&mut self, chunks: I) -> &mut crate::Command
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Into<Bytes> + 'static,
    {
        let it = chunks.into_iter().map(Into::into);
        self.input = Some(InputSpec::once(Source::Chunks(Box::new(it))));
        self
    }

    /// Feeds the child's stdin with these bytes, then closes it. Unlike the
    /// other inputs, it is kept for every run of the command.
    ///
    /// ```
    /// use procession::Command;
    /// let out = Command::new("base64").input_bytes("abcdef").stream()?.collect_string()?;
    /// assert_eq!(out, "YWJjZGVm\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn input_bytes(&mut self, bytes: impl Into<Bytes>) -> &mut crate::Command {
        self.input = Some(InputSpec::Bytes(bytes.into()));
        self
    }

    /// Feeds the child's stdin from a reader, read one chunk at a time
    /// (at most [`max_chunk_size`](crate::Command::max_chunk_size)) when the
    /// child can take more.
    ///
    /// ```
    /// use procession::Command;
    /// let reader = std::io::Cursor::new(b"b\na\n".to_vec());
    /// let out = Command::new("sort").input_reader(reader).stream()?.collect_string()?;
    /// assert_eq!(out, "a\nb\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn input_reader(&mut self, reader: impl Read + Send + 'static) -> &mut crate::Command {
        self.input = Some(InputSpec::once(Source::Reader(Box::new(reader))));
        self
    }

    /// Gives the child this file as its stdin (opened for reading; no data
    /// passes through the parent).
    ///
    /// ```
    /// use procession::Command;
    /// # let dir = std::env::temp_dir().join(format!("procession-doc-input-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("words.txt");
    /// std::fs::write(&path, "b\na\n")?;
    /// let out = Command::new("sort").input_file(&path).stream()?.collect_string()?;
    /// assert_eq!(out, "a\nb\n");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn input_file(&mut self, path: impl Into<PathBuf>) -> &mut crate::Command {
        self.input = Some(InputSpec::File(path.into()));
        self
    }

    /// Feeds the child's stdin from a callback that writes into an
    /// [`InputSink`]. It runs on a helper thread;
    /// its writes block while the child is not reading. Stdin is closed when
    /// it returns. An error it returns is reported at the end of the stream
    /// (a broken pipe only with [`ignore_epipe(false)`](crate::Command::ignore_epipe)).
    ///
    /// ```
    /// use procession::Command;
    /// use std::io::Write;
    /// let out = Command::new("cat")
    ///     .input_fn(|sink| {
    ///         for _ in 0..2 {
    ///             sink.write_all(b"data\n")?;
    ///         }
    ///         Ok(())
    ///     })
    ///     .stream()?
    ///     .collect_string()?;
    /// assert_eq!(out, "data\ndata\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn input_fn<F>(&mut self, callback: F) -> &mut crate::Command
    where
        F: FnOnce(&mut InputSink) -> io::Result<()> + Send + 'static,
    {
        self.input = Some(InputSpec::once(Source::Callback(Box::new(callback))));
        self
    }
}

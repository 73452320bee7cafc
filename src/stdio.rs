//! [`Stdio`]: where a child's stdin, stdout or stderr goes.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::framing::{Line, LineCodec};
use bytes::Bytes;

/// Where one of a child's standard streams is connected.
///
/// ```
/// use procession::{Command, Stdio};
/// let dir = std::env::temp_dir().join(format!("procession-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let log = dir.join("out.log");
/// Command::new("echo").arg("one").stdout(Stdio::file(&log).mode(0o600)).status()?;
/// Command::new("echo").arg("two").stdout(Stdio::append(&log)).status()?;
/// assert_eq!(std::fs::read_to_string(&log)?, "one\ntwo\n");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Stdio(pub(crate) Kind);

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Inherit,
    Null,
    Piped,
    Closed,
    File {
        path: PathBuf,
        append: bool,
        mode: u32,
    },
    ToStdout,
    ToStderr,
    Fd(Arc<OwnedFd>),
    /// Each chunk handed to a function (by a [`Supervisor`](crate::Supervisor)).
    Callback(Callback),
}

/// A function that takes a stream (by a delivery thread of the
/// [`Supervisor`](crate::Supervisor)).
#[derive(Clone)]
pub(crate) enum Callback {
    /// Each chunk; `false` means "no more".
    Chunks(Arc<Mutex<dyn FnMut(Bytes) -> bool + Send>>),
    /// Each line, cut by a copy of the codec made for each stream.
    Lines(LineCodec, Arc<Mutex<dyn FnMut(Line) + Send>>),
}

/// What a delivery thread calls: with each chunk, then with `None` at the
/// end; `false` means "no more".
pub(crate) type Sink = Box<dyn FnMut(Option<Bytes>) -> bool + Send>;

impl Callback {
    /// A sink for one stream (its own line codec).
    pub(crate) fn sink(&self) -> Sink {
        fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
            m.lock().unwrap_or_else(|p| p.into_inner())
        }
        match self {
            Callback::Chunks(f) => {
                let f = f.clone();
                Box::new(move |chunk| chunk.is_none_or(|b| lock(&f)(b)))
            }
            Callback::Lines(codec, f) => {
                let (mut codec, f) = (codec.clone(), f.clone());
                Box::new(move |chunk| {
                    match chunk {
                        Some(b) => codec.push(b),
                        None => codec.finish(),
                    }
                    while let Some(line) = codec.next_line() {
                        lock(&f)(line);
                    }
                    true
                })
            }
        }
    }
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Callback")
    }
}

impl Stdio {
    /// The child shares the parent's stream (the default for [`Command::spawn`](crate::Command::spawn)).
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// // The child writes straight to our stderr.
    /// Command::shell("echo to-our-stderr >&2").stderr(Stdio::inherit()).status()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn inherit() -> Stdio {
        Stdio(Kind::Inherit)
    }

    /// `/dev/null`.
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// let out = Command::shell("echo gone >&2").stderr(Stdio::null()).output()?;
    /// assert!(out.stderr.is_empty());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn null() -> Stdio {
        Stdio(Kind::Null)
    }

    /// A pipe to the parent: take its end from the [`Child`](crate::Child).
    /// The parent's end is close-on-exec (and non-blocking where a stream or
    /// the async API multiplexes it); its capacity is
    /// [`Command::pipe_capacity`](crate::Command::pipe_capacity).
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// let mut child = Command::new("echo").arg("hi").stdout(Stdio::piped()).spawn()?;
    /// assert_eq!(child.read()?.as_deref(), Some(&b"hi\n"[..]));
    /// child.wait()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn piped() -> Stdio {
        Stdio(Kind::Piped)
    }

    /// The descriptor is closed in the child: reads and writes there fail
    /// with `EBADF`, and the next file the child opens takes the number.
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// // Writing to a closed stdout fails in the child.
    /// let status = Command::shell("echo x").stdout(Stdio::closed()).stderr(Stdio::null()).status()?;
    /// assert!(!status.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn closed() -> Stdio {
        Stdio(Kind::Closed)
    }

    /// A file. As stdin it is opened for reading; as stdout or stderr it is
    /// created if missing (with [`mode`](Stdio::mode), `0o666` minus the
    /// umask by default) and truncated.
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// let dir = std::env::temp_dir().join(format!("procession-doc-file-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("out.txt");
    /// std::fs::write(&path, "old contents, longer than the new ones\n")?;
    /// let status = Command::new("echo").arg("new").stdout(Stdio::file(&path)).status()?;
    /// assert!(status.success());
    /// assert_eq!(std::fs::read_to_string(&path)?, "new\n"); // truncated first
    /// // As stdin, the file is read.
    /// let out = Command::new("cat").stdin(Stdio::file(&path)).run()?;
    /// assert_eq!(out.stdout, b"new\n");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn file(path: impl Into<PathBuf>) -> Stdio {
        Stdio(Kind::File {
            path: path.into(),
            append: false,
            mode: 0o666,
        })
    }

    /// A file opened for appending (created if missing), for stdout or stderr.
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// let dir = std::env::temp_dir().join(format!("procession-doc-append-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let log = dir.join("app.log");
    /// std::fs::write(&log, "kept\n")?;
    /// // stdout and stderr both append: neither overwrites the other.
    /// let status = Command::shell("echo out; echo err >&2")
    ///     .stdout(Stdio::append(&log)).stderr(Stdio::append(&log)).status()?;
    /// assert!(status.success());
    /// assert_eq!(std::fs::read_to_string(&log)?, "kept\nout\nerr\n");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append(path: impl Into<PathBuf>) -> Stdio {
        Stdio(Kind::File {
            path: path.into(),
            append: true,
            mode: 0o666,
        })
    }

    /// Sets the permission bits a [`file`](Stdio::file) or
    /// [`append`](Stdio::append) target is created with (the umask still
    /// applies); no effect on other kinds.
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// use std::os::unix::fs::PermissionsExt;
    /// let dir = std::env::temp_dir().join(format!("procession-doc-mode-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let secret = dir.join("secret.txt");
    /// let status = Command::new("echo").arg("s3cr3t")
    ///     .stdout(Stdio::file(&secret).mode(0o600)).status()?;
    /// assert!(status.success());
    /// assert_eq!(std::fs::metadata(&secret)?.permissions().mode() & 0o777, 0o600);
    /// assert_eq!(std::fs::read_to_string(&secret)?, "s3cr3t\n");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mode(mut self, mode: u32) -> Stdio {
        if let Kind::File { mode: m, .. } = &mut self.0 {
            *m = mode;
        }
        self
    }

    /// For stderr: the same place as stdout (`2>&1`).
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// let out = Command::shell("echo out; echo err >&2").stderr(Stdio::to_stdout()).run()?;
    /// assert_eq!(out.stdout, b"out\nerr\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn to_stdout() -> Stdio {
        Stdio(Kind::ToStdout)
    }

    /// For stdout: the same place as stderr (`1>&2`).
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// let out = Command::shell("echo to-err").stdout(Stdio::to_stderr()).stderr(Stdio::piped()).output()?;
    /// assert_eq!(out.stderr, b"to-err\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn to_stderr() -> Stdio {
        Stdio(Kind::ToStderr)
    }
}

impl Stdio {
    /// Hands each chunk the child writes to `f` (erlexec's `{stdout, Fun}`),
    /// for stdout or stderr of a child started by
    /// [`Supervisor::spawn`](crate::Supervisor::spawn).
    ///
    /// `f` runs on a thread of its own per stream (named
    /// `procession-out`), one chunk at a time, in order. It sets the pace:
    /// while it runs nothing more is read, so a child that writes faster
    /// than `f` takes its output blocks on the full pipe (back-pressure),
    /// and memory stays bounded. The child's [`Exit`](crate::Exit) is
    /// reported only once `f` has had everything (or, when a grandchild
    /// keeps the pipe open, once [`pipe_drain_timeout`](crate::Command::pipe_drain_timeout)
    /// has passed after the exit).
    ///
    /// # Errors
    ///
    /// Other ways of running a command ([`Command::spawn`](crate::Command::spawn),
    /// [`output`](crate::Command::output), the streams) read their pipes
    /// themselves and refuse it with an
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) error.
    ///
    /// ```
    /// use procession::{Command, Stdio, Supervisor};
    /// use std::sync::{Arc, Mutex};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(Command::new("echo").arg("hello")
    ///     .stdout(Stdio::callback(move |chunk| sink.lock().unwrap().extend_from_slice(&chunk))))?;
    /// child.wait()?;
    /// assert_eq!(*seen.lock().unwrap(), b"hello\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn callback(mut f: impl FnMut(Bytes) + Send + 'static) -> Stdio {
        Stdio(Kind::Callback(Callback::Chunks(Arc::new(Mutex::new(
            move |b| {
                f(b);
                true
            },
        )))))
    }

    /// Hands each line of the stream to `f`, for a child started by
    /// [`Supervisor::spawn`](crate::Supervisor::spawn): the per-line form of
    /// [`callback`](Stdio::callback), with the same thread and
    /// back-pressure. Each stream of each child gets its own copy of
    /// `codec`, so lines never mix; a last line without a line ending comes
    /// at the end, [incomplete](crate::Line::complete), before the child's
    /// [`Exit`](crate::Exit) is reported.
    ///
    /// # Errors
    ///
    /// As [`callback`](Stdio::callback): other ways of running a command
    /// refuse it.
    ///
    /// ```
    /// use procession::{Command, Line, LineCodec, Stdio, Supervisor};
    /// use std::sync::{Arc, Mutex};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(Command::new("printf").arg("one\ntwo")
    ///     .stdout(Stdio::lines(LineCodec::new(80), move |line| sink.lock().unwrap().push(line))))?;
    /// child.wait()?;
    /// assert_eq!(*seen.lock().unwrap(), [Line::complete("one"), Line::incomplete("two")]);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn lines(codec: LineCodec, f: impl FnMut(Line) + Send + 'static) -> Stdio {
        Stdio(Kind::Callback(Callback::Lines(
            codec,
            Arc::new(Mutex::new(f)),
        )))
    }

    /// Sends each chunk into `sender`, for a child started by
    /// [`Supervisor::spawn`](crate::Supervisor::spawn). A bounded channel
    /// gives back-pressure: while it is full, nothing more is read and the
    /// child blocks on its full pipe. When the receiver is gone, the pipe's
    /// read end is closed, as if a reader had hung up: the child's next
    /// write fails with `EPIPE` (or SIGPIPE kills it). Otherwise as
    /// [`callback`](Stdio::callback).
    ///
    /// ```
    /// use procession::{Command, Stdio, Supervisor};
    /// let (tx, rx) = std::sync::mpsc::sync_channel(16);
    /// let sup = Supervisor::new();
    /// let child = sup.spawn(Command::shell("echo one; echo two >&2")
    ///     .stdout(Stdio::channel(tx.clone())).stderr(Stdio::channel(tx)))?;
    /// child.wait()?;
    /// let mut all: Vec<u8> = rx.iter().flat_map(|b| b.to_vec()).collect();
    /// all.sort();
    /// assert_eq!(all, b"\n\nenootw"); // "one\ntwo\n", sorted
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn channel(sender: std::sync::mpsc::SyncSender<Bytes>) -> Stdio {
        Stdio(Kind::Callback(Callback::Chunks(Arc::new(Mutex::new(
            move |b| sender.send(b).is_ok(),
        )))))
    }
}

impl Stdio {
    /// Whether this is [`Stdio::piped()`].
    pub(crate) fn is_piped(&self) -> bool {
        matches!(self.0, Kind::Piped)
    }
}

impl From<OwnedFd> for Stdio {
    /// An open descriptor (a file, a socket, one end of a pipe), shared by
    /// every child spawned from the command.
    fn from(fd: OwnedFd) -> Stdio {
        Stdio(Kind::Fd(Arc::new(fd)))
    }
}

impl From<std::fs::File> for Stdio {
    fn from(f: std::fs::File) -> Stdio {
        Stdio::from(OwnedFd::from(f))
    }
}

//! [`Command`]: plain data describing what to run and how to supervise it.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::engine::spawn::Ends;
use crate::input::InputSpec;
use crate::stdio::Stdio;
use crate::{Child, Error, ExitStatus, Signal};

/// Which process group a child runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ProcessGroup {
    /// The child leads a new group whose id is its pid (the default), so the
    /// whole group can be signalled and a terminal's Ctrl-C does not reach it
    /// directly.
    #[default]
    New,
    /// The child joins the existing group with this id.
    Join(u32),
    /// The child stays in the parent's group.
    Inherit,
}

/// Default for [`Command::kill_timeout`].
pub const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// Default for [`Command::max_chunk_size`]: 64 KiB.
pub const DEFAULT_MAX_CHUNK_SIZE: usize = 64 * 1024;

/// Default for [`Command::exit_timeout`]: 5 s.
pub const DEFAULT_EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default for [`Command::pipe_drain_timeout`]: 1 s. See there for why.
pub const DEFAULT_PIPE_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Default for [`Command::pipe_capacity`]: 1 MiB (capped by
/// `/proc/sys/fs/pipe-max-size`).
pub const DEFAULT_PIPE_CAPACITY: usize = 1 << 20;

/// A program to run, with its arguments, environment, stdio and the policy
/// that stops it.
///
/// Builder methods take `&mut self` and return `&mut Self`, as in
/// `std::process::Command`. A command can be spawned many times.
///
/// ```
/// use procession::{Command, Stdio};
/// use std::io::Read;
/// let mut child = Command::new("echo").arg("Hello World!").stdout(Stdio::piped()).spawn()?;
/// let mut out = String::new();
/// child.stdout().unwrap().read_to_string(&mut out)?;
/// assert_eq!(out, "Hello World!\n");
/// assert!(child.wait()?.success());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Command {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    pub(crate) arg0: Option<OsString>,
    pub(crate) env_clear: bool,
    /// Changes to the environment, in order; `None` removes the name.
    pub(crate) env: Vec<(OsString, Option<OsString>)>,
    pub(crate) cwd: Option<PathBuf>,
    /// `None`: the default of the method that runs the command (inherit for
    /// `spawn`, nothing for the streaming methods).
    pub(crate) stdin: Option<Stdio>,
    pub(crate) stdout: Option<Stdio>,
    pub(crate) stderr: Option<Stdio>,
    pub(crate) input: Option<InputSpec>,
    pub(crate) ignore_epipe: bool,
    pub(crate) max_chunk: usize,
    pub(crate) exit_timeout: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) group: ProcessGroup,
    pub(crate) kill_group: bool,
    pub(crate) kill_signal: Signal,
    pub(crate) kill_command: Option<OsString>,
    pub(crate) kill_timeout: Duration,
    pub(crate) timeout: Option<Duration>,
    pub(crate) kill_on_drop: bool,
    pub(crate) success_codes: Vec<i32>,
    pub(crate) pipe_capacity: Option<usize>,
}

impl Command {
    /// Runs `program` with no arguments. A name without `/` is looked up in
    /// `PATH` (the child's `PATH` when [`env`](Command::env) sets one), as
    /// `std::process::Command` does.
    ///
    /// ```
    /// let status = procession::Command::new("true").status()?;
    /// assert!(status.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            arg0: None,
            env_clear: false,
            env: Vec::new(),
            cwd: None,
            stdin: None,
            stdout: None,
            stderr: None,
            input: None,
            ignore_epipe: false,
            max_chunk: DEFAULT_MAX_CHUNK_SIZE,
            exit_timeout: DEFAULT_EXIT_TIMEOUT,
            drain_timeout: DEFAULT_PIPE_DRAIN_TIMEOUT,
            group: ProcessGroup::New,
            kill_group: false,
            kill_signal: Signal::TERM,
            kill_command: None,
            kill_timeout: DEFAULT_KILL_TIMEOUT,
            timeout: None,
            kill_on_drop: true,
            success_codes: vec![0],
            pipe_capacity: Some(DEFAULT_PIPE_CAPACITY),
        }
    }

    /// Runs `line` through the user's shell: `$SHELL -c line`, or
    /// `/bin/sh -c line` when `SHELL` is unset or empty. The shell expands
    /// variables, globs and pipes in `line`; use [`Command::new`] or
    /// [`Command::parse`] when nothing should be expanded.
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// use std::io::Read;
    /// let mut child = Command::shell("echo $((6 * 7))").stdout(Stdio::piped()).spawn()?;
    /// let mut out = String::new();
    /// child.stdout().unwrap().read_to_string(&mut out)?;
    /// assert_eq!(out, "42\n");
    /// # child.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shell(line: impl AsRef<OsStr>) -> Command {
        let shell = std::env::var_os("SHELL")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/bin/sh".into());
        let mut cmd = Command::new(shell);
        cmd.arg("-c").arg(line);
        cmd
    }

    /// Splits a plain command line into a program and arguments with the
    /// shell's quoting rules (`'…'`, `"…"`, `\`) but without running a shell:
    /// nothing is expanded (`$HOME`, `*` and `~` stay as they are).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an
    /// empty line or an unterminated quote.
    ///
    /// ```
    /// use procession::Command;
    /// let cmd = Command::parse(r#"printf '%s|' "a b" c\ d $HOME"#)?;
    /// assert_eq!(cmd.get_program(), "printf");
    /// let args: Vec<_> = cmd.get_args().collect();
    /// assert_eq!(args, ["%s|", "a b", "c d", "$HOME"]);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn parse(line: &str) -> Result<Command, Error> {
        let words = shell_words::split(line)
            .map_err(|e| Error::invalid(OsStr::new(line), e.to_string()))?;
        let mut words = words.into_iter();
        let program = words
            .next()
            .ok_or_else(|| Error::invalid(OsStr::new(line), "the command line is empty"))?;
        let mut cmd = Command::new(program);
        cmd.args(words);
        Ok(cmd)
    }

    /// Adds one argument, passed to the program exactly as given (spaces,
    /// quotes, unicode and non-UTF-8 bytes included).
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// use std::io::Read;
    /// let mut child = Command::new("printf").args(["%s,", "a b", "ü"]).stdout(Stdio::piped()).spawn()?;
    /// let mut out = String::new();
    /// child.stdout().unwrap().read_to_string(&mut out)?;
    /// assert_eq!(out, "a b,ü,");
    /// # child.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets `argv[0]`, the name the program sees for itself (by default the
    /// program as given to [`Command::new`]).
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// use std::io::Read;
    /// let mut child = Command::new("sh").arg0("renamed").args(["-c", "echo $0"])
    ///     .stdout(Stdio::piped()).spawn()?;
    /// let mut out = String::new();
    /// child.stdout().unwrap().read_to_string(&mut out)?;
    /// assert_eq!(out, "renamed\n");
    /// # child.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn arg0(&mut self, arg0: impl AsRef<OsStr>) -> &mut Command {
        self.arg0 = Some(arg0.as_ref().to_owned());
        self
    }

    /// Sets an environment variable for the child.
    ///
    /// ```
    /// use procession::Command;
    /// let status = Command::new("sh").args(["-c", "test \"$GREETING\" = hi"])
    ///     .env("GREETING", "hi").status()?;
    /// assert!(status.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self.env(k, v);
        }
        self
    }

    /// Removes a variable from the child's environment.
    ///
    /// ```
    /// use procession::Command;
    /// let status = Command::new("sh").args(["-c", "test -z \"${HOME+set}\""])
    ///     .env_remove("HOME").status()?;
    /// assert!(status.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Starts the child with an empty environment plus what
    /// [`env`](Command::env) sets (before or after this call).
    ///
    /// ```
    /// use procession::Command;
    /// let status = Command::new("/usr/bin/env").env_clear().env("ONLY", "1").status()?;
    /// assert!(status.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn env_clear(&mut self) -> &mut Command {
        self.env_clear = true;
        self.env.retain(|(_, v)| v.is_some());
        self
    }

    /// Sets the child's working directory. A relative program path (one with
    /// a `/`) is then resolved from this directory.
    ///
    /// ```
    /// use procession::Command;
    /// let status = Command::new("sh").args(["-c", "test \"$(pwd)\" = /"]).current_dir("/").status()?;
    /// assert!(status.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Where the child's stdin comes from ([`Stdio::inherit`] by default).
    pub fn stdin(&mut self, stdio: impl Into<Stdio>) -> &mut Command {
        self.stdin = Some(stdio.into());
        self
    }

    /// Where the child's stdout goes ([`Stdio::inherit`] by default).
    pub fn stdout(&mut self, stdio: impl Into<Stdio>) -> &mut Command {
        self.stdout = Some(stdio.into());
        self
    }

    /// Where the child's stderr goes ([`Stdio::inherit`] by default).
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// use std::io::Read;
    /// let mut child = Command::shell("echo out; echo err >&2")
    ///     .stdout(Stdio::piped()).stderr(Stdio::to_stdout()).spawn()?;
    /// let mut out = String::new();
    /// child.stdout().unwrap().read_to_string(&mut out)?;
    /// assert_eq!(out, "out\nerr\n");
    /// # child.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stderr(&mut self, stdio: impl Into<Stdio>) -> &mut Command {
        self.stderr = Some(stdio.into());
        self
    }

    /// Chooses the child's process group ([`ProcessGroup::New`] by default).
    ///
    /// ```
    /// use procession::{Command, ProcessGroup};
    /// let mut child = Command::new("sleep").arg("10").process_group(ProcessGroup::New).spawn()?;
    /// child.kill()?;
    /// # child.wait()?;
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn process_group(&mut self, group: ProcessGroup) -> &mut Command {
        self.group = group;
        self
    }

    /// Sends the stop sequence's signals to the child's whole process group
    /// instead of the child alone, and stops the rest of the group when the
    /// child (the group's leader) exits: `kill_signal` at once, SIGKILL after
    /// `kill_timeout` to what remains. Off by default. Requires the child to
    /// lead or join a group ([`ProcessGroup::Inherit`] is refused at spawn,
    /// as it would stop the caller's own group).
    ///
    /// # Caveats
    ///
    /// To make sure the group id still names the same group when it is
    /// signalled, the leader stays a zombie until the rest of its group is
    /// gone (at most `kill_timeout` after it exited). [`Child::wait`] returns
    /// then, when the whole group is over; a dropped child's group is cleaned
    /// up by the background reaper.
    ///
    /// ```
    /// use procession::Command;
    /// let mut child = Command::shell("sleep 100 & sleep 100").kill_group(true).spawn()?;
    /// let status = child.stop()?; // both sleeps get SIGTERM
    /// assert!(!status.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn kill_group(&mut self, on: bool) -> &mut Command {
        self.kill_group = on;
        self
    }

    /// The first signal of the stop sequence (SIGTERM by default).
    pub fn kill_signal(&mut self, signal: Signal) -> &mut Command {
        self.kill_signal = signal;
        self
    }

    /// Replaces the stop sequence's first signal by a shell command, run as
    /// [`Command::shell`] with `CHILD_PID=<pid>` added to its environment and
    /// stdin from `/dev/null`. SIGKILL still follows after `kill_timeout`.
    /// The command runs in a process group of its own and may not outlive
    /// the sequence: whatever of its group still runs when it exits, or when
    /// `kill_timeout` expires, gets SIGKILL.
    ///
    /// ```
    /// use procession::{Command, Signal};
    /// let mut child = Command::new("sleep").arg("100")
    ///     .kill_command("kill -INT $CHILD_PID").spawn()?;
    /// let status = child.stop()?;
    /// assert_eq!(status.signal(), Some(Signal::INT));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn kill_command(&mut self, line: impl AsRef<OsStr>) -> &mut Command {
        self.kill_command = Some(line.as_ref().to_owned());
        self
    }

    /// How long the stop sequence waits after the first signal (or kill
    /// command) before sending SIGKILL. [`DEFAULT_KILL_TIMEOUT`] (5 s) by default.
    ///
    /// ```
    /// use procession::{Command, Signal};
    /// use std::time::Duration;
    /// use procession::Stdio;
    /// let mut child = Command::shell("trap '' TERM; echo ready; exec sleep 100")
    ///     .stdout(Stdio::piped()).kill_timeout(Duration::from_millis(100)).spawn()?;
    /// assert_eq!(child.read()?.as_deref(), Some(&b"ready\n"[..])); // the trap is set
    /// assert_eq!(child.stop()?.signal(), Some(Signal::KILL));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn kill_timeout(&mut self, timeout: Duration) -> &mut Command {
        self.kill_timeout = timeout;
        self
    }

    /// Starts the stop sequence when the child has run this long. The status
    /// then reports [`Ended::TimedOut`](crate::Ended::TimedOut). The deadline
    /// holds whether or not anyone is waiting (the background reaper enforces
    /// it).
    pub fn timeout(&mut self, timeout: Duration) -> &mut Command {
        self.timeout = Some(timeout);
        self
    }

    /// Whether dropping a running [`Child`] starts its stop sequence (`true`
    /// by default). Either way the child is reaped in the background and the
    /// drop does not block.
    pub fn kill_on_drop(&mut self, on: bool) -> &mut Command {
        self.kill_on_drop = on;
        self
    }

    /// The exit codes that count as success (`[0]` by default).
    pub fn success_exit_codes(&mut self, codes: impl IntoIterator<Item = i32>) -> &mut Command {
        self.success_codes = codes.into_iter().collect();
        self
    }

    /// The capacity asked for each pipe ([`DEFAULT_PIPE_CAPACITY`], 1 MiB, by
    /// default; `None` keeps the kernel's 64 KiB). A larger pipe means fewer
    /// wakeups: on a 2-vCPU VM a 1 MiB pipe streams about 3 times faster
    /// than the default one. Best effort: the kernel caps it at
    /// `fs.pipe-max-size`, and an unprivileged user over
    /// `fs.pipe-user-pages-soft` keeps the default size; a spawn never fails
    /// because of it.
    pub fn pipe_capacity(&mut self, bytes: Option<usize>) -> &mut Command {
        self.pipe_capacity = bytes;
        self
    }

    /// The program, as given.
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments (without `argv[0]`).
    pub fn get_args(&self) -> impl ExactSizeIterator<Item = &OsStr> {
        self.args.iter().map(|a| a.as_os_str())
    }

    /// The working directory, if set.
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }

    /// Starts the child.
    ///
    /// # Errors
    ///
    /// An [`Error`] naming the program and the [`Step`](crate::Step) that
    /// failed: the program was not found or is not executable, a file could
    /// not be opened, the working directory does not exist, an argument
    /// contains a NUL byte… When the failure happens in the child (after the
    /// clone), the child has been reaped before this returns.
    ///
    /// ```
    /// use procession::{Command, ErrorKind, Step};
    /// let err = Command::new("true").current_dir("/no/such/dir").spawn().unwrap_err();
    /// assert_eq!((err.step(), err.kind()), (Step::Chdir, ErrorKind::NotFound));
    /// ```
    pub fn spawn(&self) -> Result<Child, Error> {
        let inherit = Stdio::inherit();
        let stdio = [
            self.stdin.as_ref().unwrap_or(&inherit),
            self.stdout.as_ref().unwrap_or(&inherit),
            self.stderr.as_ref().unwrap_or(&inherit),
        ];
        let spawned = crate::engine::spawn::spawn_with_ends(self, stdio, Ends::Blocking)?;
        Ok(Child::new(spawned, self.kill_on_drop, self.max_chunk))
    }

    /// Runs the child to the end and returns its status. Stdio is as
    /// configured (inherited by default); stdin is closed in the parent right
    /// away if it was piped.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Command::spawn); a non-zero exit is not an error here.
    ///
    /// ```
    /// assert_eq!(procession::Command::new("false").status()?.code(), Some(1));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn status(&self) -> Result<ExitStatus, Error> {
        self.spawn()?.wait()
    }
}

impl From<std::process::Command> for Command {
    /// Carries over the program, the arguments, the environment changes and
    /// the working directory. `std` does not expose `env_clear`, stdio,
    /// `arg0`, `pre_exec`, user or group settings, so those are not carried
    /// over: set them on the result.
    ///
    /// ```
    /// let mut std_cmd = std::process::Command::new("sh");
    /// std_cmd.args(["-c", "test \"$X\" = 1"]).env("X", "1");
    /// let status = procession::Command::from(std_cmd).status()?;
    /// assert!(status.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    fn from(std_cmd: std::process::Command) -> Command {
        let mut cmd = Command::new(std_cmd.get_program());
        cmd.args(std_cmd.get_args());
        for (k, v) in std_cmd.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(dir) = std_cmd.get_current_dir() {
            cmd.current_dir(dir);
        }
        cmd
    }
}

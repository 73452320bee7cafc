//! [`Command`]: plain data describing what to run and how to supervise it.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cgroup::Cgroup;
use crate::engine::spawn::Ends;
use crate::error::{Step, Who};
use crate::input::{InputSpec, InputThread, Source};
use crate::limits::{Limit, NameOrId, RunAs};
use crate::pty::Pty;
use crate::stdio::Stdio;
use crate::{Child, Error, ExitStatus, Signal};

/// Which process group a child runs in.
///
/// See [the rule for terminals and servers](crate#terminals-and-servers-the-process-group-rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ProcessGroup {
    /// Decided at each spawn (the default): [`Inherit`](ProcessGroup::Inherit)
    /// when this process is in the foreground of its controlling terminal
    /// (started from a prompt), so the child can read the terminal and
    /// Ctrl-C reaches it as with `std`; [`New`](ProcessGroup::New) otherwise
    /// (a service, a CI job, a background job), so that stopping the child
    /// stops everything it started. An explicit
    /// [`stop_group(true)`](Command::stop_group) always means `New`.
    #[default]
    Auto,
    /// The child leads a new group whose id is its pid, so the whole group
    /// can be signalled. A terminal's Ctrl-C does not reach it, and if it
    /// reads the terminal it is stopped by `SIGTTIN`.
    New,
    /// The child joins the existing group with this id.
    Join(u32),
    /// The child stays in the parent's group.
    Inherit,
}

/// Default for [`Command::stop_timeout`]: 5 s.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Default for [`Command::max_chunk_size`]: 64 KiB.
pub const DEFAULT_MAX_CHUNK_SIZE: usize = 64 * 1024;

/// Default for [`Command::drop_timeout`]: 5 s.
pub const DEFAULT_DROP_TIMEOUT: Duration = Duration::from_secs(5);

/// Default for [`Command::pipe_drain_timeout`]: 1 s. See there for why.
pub const DEFAULT_PIPE_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Default for [`Command::pipe_capacity`]: 1 MiB (capped by
/// `/proc/sys/fs/pipe-max-size`).
pub const DEFAULT_PIPE_CAPACITY: usize = 1 << 20;

/// A program to run, with its arguments, environment, stdio and the policy
/// that stops it.
///
/// Builder methods take `&mut self` and return `&mut Self`, as in
/// `std::process::Command`. A command can be spawned many times (a one-shot
/// input, such as an iterator, is used by the first run only).
///
/// `Debug` prints the command as a shell would run it, like `std`'s:
/// `cd "/tmp" && LC_ALL="C" "sort" "-u"` (`{:#?}` shows every setting).
///
/// ```
/// use procession::{Command, Stdio};
/// use std::io::Read;
/// let mut child = Command::new("echo").arg("Hello World!").stdout(Stdio::piped()).spawn()?;
/// let mut out = String::new();
/// child.stdout.as_mut().unwrap().read_to_string(&mut out)?;
/// assert_eq!(out, "Hello World!\n");
/// assert!(child.wait()?.success());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
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
    pub(crate) drop_timeout: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) max_output: Option<usize>,
    pub(crate) group: ProcessGroup,
    /// `None`: decided by the group (on unless the child stays in ours).
    pub(crate) stop_group: Option<bool>,
    pub(crate) stop_signal: Signal,
    pub(crate) stop_command: Option<OsString>,
    pub(crate) stop_timeout: Duration,
    pub(crate) timeout: Option<Duration>,
    pub(crate) stop_on_drop: bool,
    pub(crate) outlive_owner: bool,
    pub(crate) cgroup: Option<Cgroup>,
    pub(crate) pty: Option<Pty>,
    pub(crate) success_codes: Vec<i32>,
    pub(crate) pipe_capacity: Option<usize>,
    /// User, groups, limits, nice, umask, `no_new_privs` (rarely set).
    pub(crate) run_as: Option<Box<RunAs>>,
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
            ignore_epipe: true,
            max_chunk: DEFAULT_MAX_CHUNK_SIZE,
            drop_timeout: DEFAULT_DROP_TIMEOUT,
            drain_timeout: DEFAULT_PIPE_DRAIN_TIMEOUT,
            max_output: None,
            group: ProcessGroup::Auto,
            stop_group: None,
            stop_signal: Signal::TERM,
            stop_command: None,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            timeout: None,
            stop_on_drop: true,
            outlive_owner: false,
            cgroup: None,
            pty: None,
            success_codes: vec![0],
            pipe_capacity: Some(DEFAULT_PIPE_CAPACITY),
            run_as: None,
        }
    }

    /// Runs `line` through the POSIX shell: `/bin/sh -c line`, whatever the
    /// `SHELL` variable says (as `std` users and Python's `shell=True`
    /// expect), so the same code behaves the same under cron, systemd and
    /// in containers. The shell expands variables, globs and pipes in
    /// `line`; use [`Command::new`] or [`Command::parse`] when nothing should
    /// be expanded, and [`Command::shell_with`] for another shell.
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// use std::io::Read;
    /// let mut child = Command::shell("echo $((6 * 7))").stdout(Stdio::piped()).spawn()?;
    /// let mut out = String::new();
    /// child.stdout.as_mut().unwrap().read_to_string(&mut out)?;
    /// assert_eq!(out, "42\n");
    /// # child.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shell(line: impl AsRef<OsStr>) -> Command {
        Command::shell_with(DEFAULT_SHELL, line)
    }

    /// Runs `line` through another shell: `shell -c line` (`shell` is looked
    /// up on `PATH` like any program).
    ///
    /// ```
    /// use procession::Command;
    /// let out = Command::shell_with("bash", "echo ${BASH_VERSION:+bash}").run()?;
    /// assert_eq!(out.stdout, b"bash\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn shell_with(shell: impl AsRef<OsStr>, line: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(shell);
        cmd.arg("-c").arg(line);
        cmd
    }

    /// Splits a plain command line into a program and arguments with the
    /// shell's quoting rules (`'…'`, `"…"`, `\`) but without running a shell:
    /// nothing is expanded (`$HOME`, `*` and `~` stay as they are). This is
    /// Erlang Port's `{spawn, "cmd a b"}` without its `/bin/sh -c exec`:
    /// quoting works, and a program path with spaces can be quoted.
    ///
    /// The rules, all of POSIX word splitting and quoting but no expansion:
    /// - blanks (spaces, tabs, newlines) separate words;
    /// - `'…'` keeps every character as it is, backslashes included;
    /// - `"…"` keeps every character, except that a backslash escapes `$`,
    ///   `` ` ``, `"`, `\` and a newline (other backslashes stay);
    /// - outside quotes, a backslash keeps the next character, and a
    ///   backslash before a newline joins the two lines;
    /// - quoted and unquoted parts next to each other make one word, and
    ///   `''` or `""` alone is an empty argument;
    /// - a `#` at the start of a word begins a comment to the end of the line.
    ///
    /// `argv[0]` is the program as written; [`arg0`](Command::arg0) sets
    /// another (Port's `{arg0, …}`).
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
    ///
    /// ```
    /// let out = procession::Command::new("echo").arg("a b").arg("c").run()?;
    /// assert_eq!(out.stdout, b"a b c\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
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
    /// child.stdout.as_mut().unwrap().read_to_string(&mut out)?;
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
    /// child.stdout.as_mut().unwrap().read_to_string(&mut out)?;
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
    ///
    /// ```
    /// let out = procession::Command::shell("echo $A$B").envs([("A", "1"), ("B", "2")]).run()?;
    /// assert_eq!(out.stdout, b"12\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
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
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// // cat reads /dev/null: end of file at once.
    /// let out = Command::new("cat").stdin(Stdio::null()).run()?;
    /// assert!(out.stdout.is_empty());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn stdin(&mut self, stdio: impl Into<Stdio>) -> &mut Command {
        self.stdin = Some(stdio.into());
        self
    }

    /// Where the child's stdout goes ([`Stdio::inherit`] by default).
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// let status = Command::new("echo").arg("hidden").stdout(Stdio::null()).status()?;
    /// assert!(status.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
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
    /// child.stdout.as_mut().unwrap().read_to_string(&mut out)?;
    /// assert_eq!(out, "out\nerr\n");
    /// # child.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stderr(&mut self, stdio: impl Into<Stdio>) -> &mut Command {
        self.stderr = Some(stdio.into());
        self
    }

    /// Chooses the child's process group ([`ProcessGroup::Auto`] by
    /// default: see [the rule](crate#terminals-and-servers-the-process-group-rule)).
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

    /// Sends the stop sequence's signals ([`stop`](Child::stop), the
    /// [`timeout`](Command::timeout), a drop, [`kill`](Child::kill)) to the
    /// child's whole process group instead of the child alone, and stops
    /// the rest of the group when the child (the group's leader) exits:
    /// `stop_signal` at once, SIGKILL after `stop_timeout` to what remains.
    ///
    /// By default it is on whenever the child leads a group of its own
    /// ([`ProcessGroup::New`]), which [`ProcessGroup::Auto`] chooses unless
    /// this process runs in a terminal's foreground, and off for a joined
    /// group (which belongs to someone else): see [the rule](crate#terminals-and-servers-the-process-group-rule).
    /// `stop_group(true)` with the default [`ProcessGroup::Auto`] always
    /// gives the child a new group; with [`ProcessGroup::Inherit`] it is
    /// refused at spawn, as it would stop the caller's own group.
    ///
    /// # Caveats
    ///
    /// Once the leader is reaped, its group id stays allocated as long as a
    /// member is alive, so procession signals the group only after checking
    /// it still answers (see `docs/INTERNALS.md` for the one theoretical
    /// race left). [`Child::wait`] returns when the whole group is over; a dropped
    /// child's group is cleaned up by the background reaper. A child that
    /// exited while nobody waited has its group cleaned up at the next
    /// [`try_wait`](Child::try_wait), [`wait`](Child::wait) or drop.
    ///
    /// The case that matters: a leader that ignores SIGTERM and waits for a
    /// member it started. Only a signal to the whole group reaches the
    /// member (which reports it); the leader then exits by itself.
    ///
    /// ```
    /// use procession::{Command, Stdio};
    /// let mut child = Command::shell(
    ///     "trap '' TERM; \
    ///      (trap 'echo member: TERM; exit 0' TERM; sleep 100 & echo ready; wait) & wait")
    ///     .stop_group(true).stdout(Stdio::piped()).spawn()?;
    /// assert_eq!(child.read()?.as_deref(), Some(&b"ready\n"[..])); // the member's trap is set
    /// let status = child.stop()?; // SIGTERM to the leader, the member and its sleep
    /// assert_eq!(child.read()?.as_deref(), Some(&b"member: TERM\n"[..]));
    /// assert_eq!(status.code(), Some(0)); // the leader's wait returned: its member was gone
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn stop_group(&mut self, on: bool) -> &mut Command {
        self.stop_group = Some(on);
        self
    }

    /// The first signal of the stop sequence (SIGTERM by default). SIGCONT
    /// follows it at once, so that a suspended child (SIGSTOP, or SIGTTIN
    /// from a terminal) can act on it, as GNU `timeout` and systemd do.
    ///
    /// ```
    /// use procession::{Command, Signal};
    /// let mut child = Command::new("sleep").arg("100").stop_signal(Signal::INT).spawn()?;
    /// assert_eq!(child.stop()?.signal(), Some(Signal::INT));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn stop_signal(&mut self, signal: Signal) -> &mut Command {
        self.stop_signal = signal;
        self
    }

    /// Replaces the stop sequence's first signal by a shell command, run as
    /// [`Command::shell`] (`/bin/sh -c`) with `CHILD_PID=<pid>` added to its environment and
    /// stdin from `/dev/null`. SIGKILL still follows after `stop_timeout`.
    /// The command runs in a process group of its own and may not outlive
    /// the sequence: whatever of its group still runs when it exits, or when
    /// `stop_timeout` expires, gets SIGKILL.
    ///
    /// ```
    /// use procession::{Command, Signal};
    /// let mut child = Command::new("sleep").arg("100")
    ///     .stop_command("kill -INT $CHILD_PID").spawn()?;
    /// let status = child.stop()?;
    /// assert_eq!(status.signal(), Some(Signal::INT));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn stop_command(&mut self, line: impl AsRef<OsStr>) -> &mut Command {
        self.stop_command = Some(line.as_ref().to_owned());
        self
    }

    /// How long the stop sequence waits after the first signal (or kill
    /// command) before sending SIGKILL. [`DEFAULT_STOP_TIMEOUT`] (5 s) by default.
    ///
    /// ```
    /// use procession::{Command, Signal};
    /// use std::time::Duration;
    /// use procession::Stdio;
    /// let mut child = Command::shell("trap '' TERM; echo ready; exec sleep 100")
    ///     .stdout(Stdio::piped()).stop_timeout(Duration::from_millis(100)).spawn()?;
    /// assert_eq!(child.read()?.as_deref(), Some(&b"ready\n"[..])); // the trap is set
    /// assert_eq!(child.stop()?.signal(), Some(Signal::KILL));
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn stop_timeout(&mut self, timeout: Duration) -> &mut Command {
        self.stop_timeout = timeout;
        self
    }

    /// Starts the stop sequence when the child has run this long. The status
    /// then reports [`Ended::TimedOut`](crate::Ended::TimedOut). The deadline
    /// holds whether or not anyone is waiting (the background reaper enforces
    /// it).
    ///
    /// ```
    /// use procession::{Command, Ended};
    /// use std::time::Duration;
    /// let status = Command::new("sleep").arg("10").timeout(Duration::from_millis(50)).status()?;
    /// assert_eq!(status.ended(), Ended::TimedOut);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn timeout(&mut self, timeout: Duration) -> &mut Command {
        self.timeout = Some(timeout);
        self
    }

    /// Whether dropping a running [`Child`] starts its stop sequence (`true`
    /// by default; a stream's drop starts it after
    /// [`drop_timeout`](Command::drop_timeout)). Either way the child is
    /// reaped in the background and the drop does not block. (tokio's
    /// `kill_on_drop` sends SIGKILL; this runs the graceful stop sequence.)
    ///
    /// ```
    /// use procession::Command;
    /// let child = Command::new("sleep").arg("0.05").stop_on_drop(false).spawn()?;
    /// drop(child); // sleep runs to its end, then is reaped in the background
    /// # assert!(procession::__test_support::wait_for_reaper());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn stop_on_drop(&mut self, on: bool) -> &mut Command {
        self.stop_on_drop = on;
        self
    }

    /// Whether the child may outlive this process (`false` by default).
    ///
    /// By default, when this process ends, however it ends (a return from
    /// `main`, a panic, `exit`, a crash, SIGKILL, `execve`), every child it
    /// started and has not reaped yet is killed with SIGKILL within
    /// milliseconds, with its process group when it leads one, and its
    /// cgroup with [`cgroup`](Command::cgroup). A watchdog process started
    /// at the first spawn does it; see the crate docs' section *Nothing
    /// left behind* for what each strength of cleanup covers. `true` leaves
    /// this child out: a daemon meant to keep running.
    ///
    /// ```
    /// use procession::Command;
    /// // Keeps running after this program exits (as long as it sleeps).
    /// let child = Command::new("sleep").arg("0.05").outlive_owner(true).stop_on_drop(false).spawn()?;
    /// # drop(child);
    /// # assert!(procession::__test_support::wait_for_reaper());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn outlive_owner(&mut self, on: bool) -> &mut Command {
        self.outlive_owner = on;
        self
    }

    /// Runs the child on a pseudo-terminal (erlexec's `pty`): it leads a
    /// new session whose controlling terminal is the pty, on its stdin,
    /// stdout and stderr unless [`Pty`] says otherwise. Read and write it
    /// as usual ([`Child::read`], [`Child::write_all`], a stream, the async
    /// API); [`Child::resize`], [`Child::set_terminal_modes`] and
    /// [`Child::hang_up`] act on the terminal. Output comes with the
    /// terminal's line endings (`\r\n`, the `onlcr` mode).
    ///
    /// The child leads its own process group (the session's), so
    /// [`ProcessGroup::Inherit`] and [`ProcessGroup::Join`] are refused
    /// with it.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) naming every bad
    /// terminal mode, or for a process group setting that conflicts; the
    /// OS error when no pty can be opened (step
    /// [`Terminal`](crate::Step::Terminal)).
    ///
    /// ```
    /// use procession::{Command, Pty};
    /// let out = Command::shell("[ -t 0 ] && [ -t 1 ] && echo on a terminal").pty(Pty::new()).output()?;
    /// assert_eq!(out.stdout, b"on a terminal\r\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn pty(&mut self, pty: Pty) -> &mut Command {
        self.pty = Some(pty);
        self
    }

    /// Runs the child in a cgroup v2 of its own, made under `cgroup`'s
    /// parent before the spawn and joined by the child before `execve`.
    ///
    /// Everything the child starts stays in the cgroup, including
    /// descendants that leave its process group (`setsid`, a double fork),
    /// so the cgroup reaches all of them: the stop sequence sends the stop
    /// signal to every member and ends with `cgroup.kill`; once the child
    /// has exited, what is left of the cgroup gets the same sequence; the
    /// cgroup is removed when it is empty, after its accounting is read
    /// into [`ExitStatus::cgroup_usage`]. If this process dies, its
    /// watchdog kills the cgroup too (see
    /// [`outlive_owner`](Command::outlive_owner)).
    ///
    /// # Errors
    ///
    /// The spawn fails, and starts nothing, when the cgroup cannot be made:
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) without a
    /// cgroup v2 hierarchy or for a parent outside one,
    /// [`ErrorKind::PermissionDenied`](crate::ErrorKind::PermissionDenied)
    /// for a parent this process may not write to (or a read-only mount),
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) for a missing
    /// parent; the step is [`Step::Cgroup`](crate::Step::Cgroup). There is
    /// never a silent fallback to a weaker cleanup.
    ///
    /// ```
    /// use procession::{Cgroup, Command, ErrorKind, Step};
    /// let err = Command::new("true").cgroup(Cgroup::under("/proc")).spawn().unwrap_err();
    /// assert_eq!((err.kind(), err.step()), (ErrorKind::Unsupported, Step::Cgroup));
    /// ```
    pub fn cgroup(&mut self, cgroup: Cgroup) -> &mut Command {
        self.cgroup = Some(cgroup);
        self
    }

    /// The exit codes that count as success (`[0]` by default). An empty
    /// list is refused when the command is run (no exit could succeed).
    ///
    /// # Errors
    ///
    /// Running the command with an empty list gives an
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) error.
    ///
    /// ```
    /// // grep exits 1 when nothing matched: not a failure here.
    /// let out = procession::Command::new("grep").arg("x").input(["abc\n"])
    ///     .success_exit_codes([0, 1]).run()?;
    /// assert!(out.stdout.is_empty());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn success_exit_codes(&mut self, codes: impl IntoIterator<Item = i32>) -> &mut Command {
        self.success_codes = codes.into_iter().collect();
        self
    }

    /// The capacity asked for each pipe ([`DEFAULT_PIPE_CAPACITY`], 1 MiB, by
    /// default; `None` keeps the kernel's 64 KiB). A larger pipe means fewer
    /// wakeups: on the 2-vCPU VM of BENCHMARKS.md (scenario 1) a read loop
    /// on a 1 MiB pipe moves 1.2 to 1.5 times as much per second as on the
    /// default one. Best effort: the kernel caps it at
    /// `fs.pipe-max-size`, and an unprivileged user over
    /// `fs.pipe-user-pages-soft` keeps the default size; a spawn never fails
    /// because of it.
    ///
    /// ```
    /// let out = procession::Command::new("echo").arg("hi").pipe_capacity(None).run()?;
    /// assert_eq!(out.stdout, b"hi\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn pipe_capacity(&mut self, bytes: Option<usize>) -> &mut Command {
        self.pipe_capacity = bytes;
        self
    }

    fn run_as_mut(&mut self) -> &mut RunAs {
        self.run_as.get_or_insert_with(Box::default)
    }

    /// Runs the child as another user (`setresuid`; by name or uid). Unless
    /// [`primary_group`](Command::primary_group) and
    /// [`supplementary_groups`](Command::supplementary_groups) say
    /// otherwise, the child gets the user's group and supplementary groups
    /// from the system's databases, as `su` and `sudo` do (a uid with no
    /// entry there needs `primary_group`). Names are looked up before the
    /// spawn; the child makes only the system calls, in the order
    /// `setgroups`, `setresgid`, `setresuid`, then changes directory, so
    /// [`current_dir`](Command::current_dir) is entered as the new user.
    ///
    /// # Errors
    ///
    /// An unknown name is an [`InvalidInput`](crate::ErrorKind::InvalidInput)
    /// error and nothing is started, as is the id 4294967295 (`(uid_t)-1`,
    /// which the kernel takes for "leave unchanged"). Changing user needs root (or
    /// `CAP_SETUID`/`CAP_SETGID`): without it the spawn fails at
    /// [`Step::User`](crate::Step::User) with
    /// [`PermissionDenied`](crate::ErrorKind::PermissionDenied), and the
    /// program never runs.
    ///
    /// ```
    /// use procession::{Command, ErrorKind, Step};
    /// match Command::new("id").arg("-u").user("nobody").run() {
    ///     Ok(out) => assert_eq!(out.stdout, b"65534\n"),
    ///     // Not running as root:
    ///     Err(e) => assert_eq!((e.step(), e.kind()), (Step::User, ErrorKind::PermissionDenied)),
    /// }
    /// ```
    pub fn user(&mut self, user: impl Into<NameOrId>) -> &mut Command {
        self.run_as_mut().user = Some(user.into());
        self
    }

    /// The child's group (`setresgid`; by name or gid), instead of the
    /// [`user`](Command::user)'s own. Needs the same rights as `user`. As
    /// there, an unknown name and the id 4294967295 (`(gid_t)-1`) are
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) errors.
    ///
    /// ```
    /// use procession::Command;
    /// # if unsafe { libc::geteuid() } != 0 { return Ok(()) }
    /// let out = Command::shell("id -u; id -g").user(65534).primary_group("root")
    ///     .run()?;
    /// assert_eq!(out.stdout, b"65534\n0\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn primary_group(&mut self, group: impl Into<NameOrId>) -> &mut Command {
        self.run_as_mut().primary_group = Some(group.into());
        self
    }

    /// The child's supplementary groups (`setgroups`; names or gids), instead
    /// of the [`user`](Command::user)'s own. An empty list leaves it with
    /// none. Needs root or `CAP_SETGID`.
    ///
    /// ```
    /// use procession::Command;
    /// # if unsafe { libc::geteuid() } != 0 { return Ok(()) }
    /// let out = Command::new("sh").args(["-c", "id -u; id -G"]).user("nobody")
    ///     .supplementary_groups(["root"]).run()?;
    /// assert_eq!(out.stdout, b"65534\n65534 0\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn supplementary_groups<I, G>(&mut self, groups: I) -> &mut Command
    where
        I: IntoIterator<Item = G>,
        G: Into<NameOrId>,
    {
        self.run_as_mut().groups = Some(groups.into_iter().map(Into::into).collect());
        self
    }

    /// Sets a resource limit in the child (`setrlimit`): `soft` is what the
    /// child gets, `hard` the ceiling it may raise it to
    /// ([`Limit::UNLIMITED`] for none). Raising a hard limit above the
    /// caller's needs root (`CAP_SYS_RESOURCE`).
    ///
    /// # Errors
    ///
    /// `soft` above `hard` is an [`InvalidInput`](crate::ErrorKind::InvalidInput)
    /// error before anything starts; a limit the kernel refuses fails the
    /// spawn at [`Step::Limit`](crate::Step::Limit) and the program never runs.
    ///
    /// ```
    /// use procession::{Command, Limit};
    /// let out = Command::shell("ulimit -n").limit(Limit::OpenFiles, 100, 100).run()?;
    /// assert_eq!(out.stdout, b"100\n");
    /// let err = Command::new("true").limit(Limit::OpenFiles, 200, 100).run().unwrap_err();
    /// assert_eq!(err.kind(), procession::ErrorKind::InvalidInput);
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn limit(&mut self, limit: Limit, soft: u64, hard: u64) -> &mut Command {
        let limits = &mut self.run_as_mut().limits;
        limits.retain(|(l, _, _)| *l != limit);
        limits.push((limit, soft, hard));
        self
    }

    /// The child's nice value, -20 (most favoured) to 19 (`setpriority`;
    /// erlexec's `nice`). Below the caller's own needs root
    /// (`CAP_SYS_NICE`).
    ///
    /// # Errors
    ///
    /// A value outside -20..=19 is an
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) error before anything
    /// starts; a refused one fails the spawn at [`Step::Nice`](crate::Step::Nice).
    ///
    /// ```
    /// let out = procession::Command::new("nice").nice(10).run()?;
    /// assert_eq!(out.stdout, b"10\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn nice(&mut self, nice: i32) -> &mut Command {
        self.run_as_mut().nice = Some(nice);
        self
    }

    /// The child's file-creation mask (`umask`), such as `0o077`.
    ///
    /// # Errors
    ///
    /// A mask above `0o777` is an [`InvalidInput`](crate::ErrorKind::InvalidInput)
    /// error before anything starts.
    ///
    /// ```
    /// let out = procession::Command::shell("umask").umask(0o027).run()?;
    /// assert_eq!(out.stdout, b"0027\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn umask(&mut self, mask: u32) -> &mut Command {
        self.run_as_mut().umask = Some(mask);
        self
    }

    /// Sets `no_new_privs` in the child (`prctl(PR_SET_NO_NEW_PRIVS)`): it
    /// and everything it starts can never gain privileges through set-user-id
    /// programs or file capabilities. It cannot be undone.
    ///
    /// ```
    /// let out = procession::Command::new("grep").args(["NoNewPrivs", "/proc/self/status"])
    ///     .no_new_privs(true).run()?;
    /// assert_eq!(out.stdout, b"NoNewPrivs:\t1\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn no_new_privs(&mut self, on: bool) -> &mut Command {
        self.run_as_mut().no_new_privs = on;
        self
    }

    /// The program, as given.
    ///
    /// ```
    /// let cmd = procession::Command::shell("true");
    /// assert_eq!(cmd.get_program(), "/bin/sh");
    /// assert_eq!(cmd.get_args().collect::<Vec<_>>(), ["-c", "true"]);
    /// assert_eq!(cmd.get_current_dir(), None);
    /// ```
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments (without `argv[0]`).
    ///
    /// ```
    /// let mut cmd = procession::Command::new("printf");
    /// cmd.arg("%s|").args(["a b", "c"]);
    /// assert_eq!(cmd.get_args().len(), 3);
    /// assert_eq!(cmd.get_args().collect::<Vec<_>>(), ["%s|", "a b", "c"]);
    /// assert_eq!(cmd.run()?.stdout, b"a b|c|");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn get_args(&self) -> impl ExactSizeIterator<Item = &OsStr> {
        self.args.iter().map(|a| a.as_os_str())
    }

    /// The working directory, if set.
    ///
    /// ```
    /// use procession::Command;
    /// use std::path::Path;
    /// let mut cmd = Command::new("pwd");
    /// assert_eq!(cmd.get_current_dir(), None); // the child starts in ours
    /// cmd.current_dir("/");
    /// assert_eq!(cmd.get_current_dir(), Some(Path::new("/")));
    /// assert_eq!(cmd.run()?.stdout, b"/\n");
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }

    /// Starts the child.
    ///
    /// stdio is as configured, inherited by default. An
    /// [`input`](Command::input) is honoured: stdin is then a pipe that a
    /// helper thread feeds from the input (so [`Child::stdin`] is `None`);
    /// [`input_file`](Command::input_file) is given to the child directly.
    /// The thread ends when the input does or when the child stops reading;
    /// an input that fails (a reader's error) just ends early here, and
    /// [`status`](Command::status) reports it.
    ///
    /// # Errors
    ///
    /// An [`Error`] naming the program and the [`Step`](crate::Step) that
    /// failed: the program was not found or is not executable, a file could
    /// not be opened, the working directory does not exist, an argument
    /// contains a NUL byte, two settings conflict (`input` and `stdin`)…
    /// When the failure happens in the child (after the clone), the child
    /// has been reaped before this returns.
    ///
    /// ```
    /// use procession::{Command, ErrorKind, Step};
    /// let err = Command::new("true").current_dir("/no/such/dir").spawn().unwrap_err();
    /// assert_eq!((err.step(), err.kind()), (Step::Chdir, ErrorKind::NotFound));
    /// ```
    pub fn spawn(&self) -> Result<Child, Error> {
        self.refuse_async_input()?;
        let (stdin, source) = self.stdin_and_source(Stdio::inherit())?;
        let inherit = Stdio::inherit();
        let stdio = [
            &stdin,
            self.stdout.as_ref().unwrap_or(&inherit),
            self.stderr.as_ref().unwrap_or(&inherit),
        ];
        let spawned = crate::engine::spawn::spawn_with_ends(self, stdio, Ends::Blocking)?;
        let mut child =
            Child::new(spawned, self.stop_on_drop, self.max_chunk).with_max_output(self.max_output);
        let Some(source) = source else {
            return Ok(child);
        };
        let Some(pipe) = child.stdin.take() else {
            return Ok(child);
        };
        match InputThread::start(source, pipe, self.max_chunk) {
            Ok(thread) => Ok(child.fed_by(thread, self.ignore_epipe, self.drain_timeout)),
            // Dropping `child` runs its stop sequence in the background.
            Err(e) => Err(Error::os(self.program.as_os_str(), Step::Write, e)
                .with_detail("cannot start the input thread")
                .with_who(&self.who())),
        }
    }

    /// Runs the child to the end and returns its status. stdio is as
    /// configured (inherited by default); an [`input`](Command::input) is fed
    /// to it as with [`spawn`](Command::spawn).
    ///
    /// # Errors
    ///
    /// As [`spawn`](Command::spawn); a non-zero exit is not an error here
    /// (see [`run`](Command::run) for a checked run). A failing input (a
    /// reader that returned an error; a broken pipe with
    /// [`ignore_epipe(false)`](Command::ignore_epipe)) is an error carrying
    /// the exit status.
    ///
    /// ```
    /// use procession::Command;
    /// assert_eq!(Command::new("false").status()?.code(), Some(1));
    /// let status = Command::shell("read line; test \"$line\" = hello").input(["hello\n"]).status()?;
    /// assert!(status.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn status(&self) -> Result<ExitStatus, Error> {
        self.spawn()?.wait()
    }

    /// stdin for a run: a pipe plus the source to feed it from when an
    /// input is set, the input file, else the `stdin` setting, else
    /// `default`. Setting both is refused.
    pub(crate) fn stdin_and_source(
        &self,
        default: Stdio,
    ) -> Result<(Stdio, Option<Source>), Error> {
        if self.input.is_some() && self.stdin.is_some() {
            return Err(self.invalid(
                "`input` and `stdin` both set the child's stdin: keep one \
                 (input_file(path) is stdin(Stdio::file(path)) with the input's error handling)",
            ));
        }
        Ok(match &self.input {
            Some(InputSpec::Bytes(b)) => (Stdio::piped(), Some(Source::Bytes(b.clone()))),
            Some(InputSpec::File(p)) => (Stdio::file(p.clone()), None),
            Some(InputSpec::Once(slot)) => {
                let taken = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                match taken {
                    Some(s) => (Stdio::piped(), Some(s)),
                    None => {
                        return Err(self.invalid(
                            "the input (an iterator, reader or callback) was used by an earlier run",
                        ));
                    }
                }
            }
            None => (self.stdin.clone().unwrap_or(default), None),
        })
    }

    /// Refuses an input only the async API can feed, before anything is
    /// spawned and without using the input up.
    pub(crate) fn refuse_async_input(&self) -> Result<(), Error> {
        if self.input.as_ref().is_some_and(InputSpec::is_async) {
            return Err(self.async_input_refused());
        }
        Ok(())
    }

    /// The error for an async input given to the blocking API.
    pub(crate) fn async_input_refused(&self) -> Error {
        self.invalid(
            "an async input (input_stream, input_async_read, input_async_fn) needs the \
             async API (stream_async, events_async, output_async, run_async)",
        )
    }

    /// Who errors about this command are about.
    pub(crate) fn who(&self) -> Who {
        Who::new(&self.program, self.args.iter().map(|a| a.as_os_str()))
    }

    /// An [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error
    /// about this command.
    pub(crate) fn invalid(&self, detail: impl Into<String>) -> Error {
        Error::invalid(&self.who(), detail)
    }

    /// The process group and whether the stop sequence reaches it, as
    /// decided for a spawn now (see [`ProcessGroup::Auto`]).
    pub(crate) fn resolved_group(&self) -> (ProcessGroup, bool) {
        let group = match self.group {
            ProcessGroup::Auto if self.stop_group == Some(true) => ProcessGroup::New,
            // A pty child leads a session, hence a group of its own.
            ProcessGroup::Auto if self.pty.is_some() => ProcessGroup::New,
            ProcessGroup::Auto if crate::sys::tty::in_foreground() => ProcessGroup::Inherit,
            ProcessGroup::Auto => ProcessGroup::New,
            other => other,
        };
        // A joined group belongs to someone else: stopping all of it is
        // asked for, never assumed.
        let stop_group = self.stop_group.unwrap_or(group == ProcessGroup::New);
        (group, stop_group)
    }

    /// Copies the program, the arguments, the environment changes and the
    /// working directory of a `std::process::Command`, and nothing else.
    ///
    /// `std` offers no way to read its other settings, so they are lost:
    /// **`env_clear()`** (the child would get this process's whole
    /// environment: call [`env_clear`](Command::env_clear) again on the
    /// result), stdio, `arg0`, `process_group`, `uid`/`gid`/`groups` and
    /// `pre_exec`. The name says so, so that a conversion cannot silently
    /// drop a security-relevant setting.
    ///
    /// ```
    /// let mut std_cmd = std::process::Command::new("sh");
    /// std_cmd.args(["-c", "test \"$X\" = 1"]).env("X", "1");
    /// let status = procession::Command::from_std_lossy(&std_cmd).status()?;
    /// assert!(status.success());
    /// # Ok::<(), procession::Error>(())
    /// ```
    pub fn from_std_lossy(std_cmd: &std::process::Command) -> Command {
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

/// Finds `program` as [`Command::new`] would run it: a name with a `/` is
/// returned as is; a bare name is looked up in this process's `PATH` (or
/// `/usr/local/bin:/usr/bin:/bin` without one), and the first executable
/// regular file wins.
///
/// # Errors
///
/// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) when nothing matches,
/// [`ErrorKind::PermissionDenied`](crate::ErrorKind::PermissionDenied) when
/// only non-executable files do ([`Step::Resolve`](crate::Step::Resolve)).
///
/// ```
/// let sh = procession::which("sh")?;
/// assert!(sh.is_absolute() && sh.ends_with("sh"));
/// assert!(procession::which("no-such-program-here").is_err());
/// # Ok::<(), procession::Error>(())
/// ```
pub fn which(program: impl AsRef<OsStr>) -> Result<PathBuf, Error> {
    let program = program.as_ref();
    crate::engine::plan::resolve(program, std::env::var_os("PATH").as_deref())
}

/// The shell of [`Command::shell`] and of stop commands.
pub(crate) const DEFAULT_SHELL: &str = "/bin/sh";

/// Writes `s` quoted the way `std`'s `Debug` for `Command` does.
fn quoted(f: &mut fmt::Formatter<'_>, s: &OsStr) -> fmt::Result {
    write!(f, "{:?}", s)
}

impl fmt::Debug for Command {
    /// `cd "/tmp" && LC_ALL="C" "sort" "-u"`, as `std` prints a command;
    /// `{:#?}` lists every setting.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return f
                .debug_struct("Command")
                .field("program", &self.program)
                .field("args", &self.args)
                .field("arg0", &self.arg0)
                .field("env_clear", &self.env_clear)
                .field("env", &self.env)
                .field("cwd", &self.cwd)
                .field("stdin", &self.stdin)
                .field("stdout", &self.stdout)
                .field("stderr", &self.stderr)
                .field("input", &self.input)
                .field("group", &self.group)
                .field("stop_group", &self.stop_group)
                .field("stop_signal", &self.stop_signal)
                .field("stop_command", &self.stop_command)
                .field("stop_timeout", &self.stop_timeout)
                .field("timeout", &self.timeout)
                .field("stop_on_drop", &self.stop_on_drop)
                .field("outlive_owner", &self.outlive_owner)
                .field("cgroup", &self.cgroup)
                .field("pty", &self.pty)
                .field("drop_timeout", &self.drop_timeout)
                .field("drain_timeout", &self.drain_timeout)
                .field("ignore_epipe", &self.ignore_epipe)
                .field("max_chunk", &self.max_chunk)
                .field("success_codes", &self.success_codes)
                .field("pipe_capacity", &self.pipe_capacity)
                .field("run_as", &self.run_as)
                .finish();
        }
        if let Some(dir) = &self.cwd {
            f.write_str("cd ")?;
            quoted(f, dir.as_os_str())?;
            f.write_str(" && ")?;
        }
        let removed = self.env.iter().filter(|(_, v)| v.is_none());
        if self.env_clear || removed.clone().next().is_some() {
            f.write_str("env ")?;
            if self.env_clear {
                f.write_str("-i ")?;
            }
            for (k, _) in removed {
                f.write_str("-u ")?;
                quoted(f, k)?;
                f.write_str(" ")?;
            }
        }
        for (k, v) in &self.env {
            if let Some(v) = v {
                write!(f, "{}=", k.to_string_lossy())?;
                quoted(f, v)?;
                f.write_str(" ")?;
            }
        }
        if let Some(arg0) = &self.arg0 {
            f.write_str("[")?;
            quoted(f, arg0)?;
            f.write_str("] ")?;
        }
        quoted(f, &self.program)?;
        for a in &self.args {
            f.write_str(" ")?;
            quoted(f, a)?;
        }
        Ok(())
    }
}

//! The command line: clap definitions, value parsers and help texts.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{OsStringValueParser, TypedValueParser};
use clap::{ArgAction, ArgMatches, Args, Parser, Subcommand, ValueEnum};
use procession::{Limit, NameOrId, PacketSize, Signal, TerminalMode};

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "procession",
    version,
    about = "Run and supervise programs: timeouts, stop sequences, process groups, redirections, users and limits, JSON events",
    long_about = "Run and supervise programs: timeouts, stop sequences, process groups, \
                  redirections and signal forwarding.\n\n\
                  See `procession run --help` for the options and exit codes.",
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

/// The subcommands.
// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run PROGRAM under supervision and exit with its status.
    #[command(
        long_about = RUN_ABOUT,
        after_help = "Exit codes: the program's code; 124 timeout; 125 procession failed; \
                      126 not executable; 127 not found; 128+N killed by signal N.\n\
                      See --help for details and examples.",
        after_long_help = RUN_AFTER_HELP
    )]
    Run(RunArgs),

    /// Print a shell completion script for procession to stdout.
    #[command(long_about = "\
Print the completion script for SHELL to stdout, generated from the same
definitions as the options themselves.

Examples:
  procession completions bash > /etc/bash_completion.d/procession
  procession completions zsh > ~/.zfunc/_procession
  procession completions fish > ~/.config/fish/completions/procession.fish")]
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print procession's manual page (roff) to stdout, or write them all.
    #[command(long_about = "\
Print the manual page procession(1) in roff to stdout, generated from the
same definitions as the options and their help, or with --out DIR write
procession.1 and one page per subcommand (procession-run.1, ...) into DIR.

Examples:
  procession man | man -l -
  procession man --out /usr/local/share/man/man1")]
    Man {
        /// Write procession.1 and a page per subcommand into DIR.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

const RUN_ABOUT: &str = "\
Run PROGRAM with ARGS under supervision and exit with its status.

The program inherits procession's stdin, stdout and stderr unless redirected,
or runs on a pseudo-terminal of its own with --pty (see TERMINAL below). It
starts with default signal dispositions, an empty signal mask and only
descriptors 0, 1 and 2 open, in procession's process group (see PROCESS
GROUP below), or with --pty in a session and a group of its own.
Everything from PROGRAM on belongs to the program; put `--` before PROGRAM
so that it is never taken for an option of procession.";

const RUN_AFTER_HELP: &str = "\
PROCESS GROUP:
  As GNU timeout does, procession makes itself the leader of a process group
  (unless it leads one already) and runs the program in that group, so that
  everything the program starts is in it too. Started from an interactive
  shell, procession leads its job's group already, which is the terminal's
  foreground group: the program can read the terminal, and Ctrl-C, Ctrl-\\
  and Ctrl-Z reach it (Ctrl-Z stops procession along with it). Started from
  a script or a service, procession gets a new group, outside the terminal's
  foreground.

  The stop sequence goes to the whole group except procession: when the
  --timeout fires, --stop-signal and SIGCONT (or --stop-command instead),
  then SIGKILL to whatever is left after --stop-timeout. When the program
  ends on its own, what it left in the group is stopped the same way
  (--stop-signal and SIGCONT, SIGKILL after --stop-timeout) before
  procession exits, so that nothing outlives it. (There is no --stop-group
  any more: the whole group is always stopped; --foreground replaces
  --no-group.)

  --foreground leaves procession and the program in the caller's process
  group instead, e.g. for a program run from a script that must read the
  terminal or get its Ctrl-C: then only the program itself is signalled, and
  what it starts may outlive it.

TERMINAL (--pty):
  The program runs on a new pseudo-terminal, as the leader of a session (and
  process group) of its own with that terminal as its controlling terminal;
  procession relays its stdin to the terminal and the terminal's output to
  its stdout.

  Interactive use: when procession's stdin is a terminal, procession puts
  that terminal in raw mode while the program runs, as `script` does, and
  restores its settings before it exits, however the run ends. Every key
  then goes to the program's terminal, which echoes and edits the line:
  Ctrl-C and Ctrl-\\ reach the program through its terminal, not
  procession (Ctrl-C that kills the program: procession exits with 130).
  Ctrl-Z stops the jobs of a shell run this way, but not the program
  itself, whose parent is outside its session (as under `script`). A
  window size change of procession's terminal is passed on to the
  program's (it gets SIGWINCH), unless --pty-size fixed the size. If
  procession's stdout fails (its reader went away), the program's group
  gets SIGHUP, as from a terminal that hung up.

  Piped input: when procession's stdin is not a terminal, the program's
  terminal does not echo, so the input does not come back in the output.
  The terminal still handles the input as typed: line by line, with ^C
  (byte 3) interrupting and ^D (byte 4) meaning end-of-file, unless the
  program changes its modes; \\n comes out as \\r\\n. When procession's
  stdin ends, procession types end-of-file (Ctrl-D) on the terminal (twice
  when the input did not end with a newline: once to finish the line), so
  that a program reading to end-of-file ends, e.g.
  printf 'a\\nb\\n' | procession run --pty -- cat   prints a\\r\\nb\\r\\n.
  (`script` types nothing there.)

  --stdin and --stdout cannot be used with --pty (those streams are the
  terminal), nor can --foreground. --stderr FILE or null takes stderr off
  the terminal; --stderr stdout leaves it there. --timeout and the stop
  sequence apply to the program's group, as does the cleanup of what is
  left of it once the program has exited.

PID 1 (a container's entrypoint):
  Run as PID 1, procession does the duties of an init such as tini or
  dumb-init: it reaps every zombie re-parented to it (orphans of the
  program, daemons' double forks), forwards every catchable signal sent to
  it (docker stop's SIGTERM) to the program's group, and exits with the
  program's status. In a Dockerfile:
    ENTRYPOINT [\"procession\", \"run\", \"--\"]
    CMD [\"myserver\", \"--port\", \"8080\"]
  --subreaper gives the same reaping elsewhere (implied unless --foreground).

EVENTS AND SUMMARY:
  --events json writes the program's output and exit as JSON lines on
  stdout (schema: docs/CLI.md); --summary prints wall and CPU time, peak
  memory and bytes in and out to stderr at the end.

EXIT STATUS:
  N      the program's exit code (but see --success-exit-code)
  124    the --timeout fired, however the program then ended (on its own,
         by the stop signal or command, or by the final SIGKILL)
  125    procession itself failed: bad usage, a redirection file could not be
         opened, --cd failed, --user, a limit, --nice or --cgroup was refused,
         the command was invalid
  126    PROGRAM was found but could not be executed (no permission, not an
         executable format)
  127    PROGRAM was not found (or its #! interpreter or loader is missing)
  128+N  the program was killed by signal N (130 SIGINT, 137 SIGKILL,
         143 SIGTERM)

  Precedence: 125/126/127 (nothing ran), then 124 (the timeout fired), then
  128+N (a signal), then the exit code.

SIGNALS:
  A signal that another process sends to procession (kill, a supervisor) is
  forwarded as it is, once, to the program and, unless --foreground, to the
  rest of the group. That holds for every signal that can be caught except
  SIGCHLD; SIGTSTP, SIGTTIN and SIGTTOU (they keep their default action:
  they stop procession itself); and the fault signals SIGBUS, SIGTRAP,
  SIGILL, SIGFPE and SIGSEGV. SIGTERM, SIGINT, SIGHUP and SIGQUIT do not
  start the stop sequence (nor does SIGKILL follow them): as with GNU
  timeout, they are passed on and procession keeps waiting, then exits as
  above, e.g. with 143 when the program dies of a forwarded SIGTERM. A
  signal from the terminal (Ctrl-C, Ctrl-\\, a window size change, a
  hang-up) has reached the whole foreground group, the program included,
  already, and is not sent again.

  With --pty the program is in a group of its own, which gets the forwarded
  signals, and it does not share procession's terminal: Ctrl-C, Ctrl-\\ or a
  hang-up of procession's terminal (when it is not in raw mode) are
  forwarded too. SIGWINCH is not: procession's window size is passed on to
  the program's terminal instead (see TERMINAL).

EXAMPLES:
  # Stop a program after 2 s: prints hi, then exits with 124.
  procession run --timeout 2s -- sh -c 'echo hi; sleep 5'

  # Ask with SIGINT first, SIGKILL 10 s later if it is still running.
  procession run --timeout 1m --stop-signal INT --stop-timeout 10s -- ./server

  # The same with GNU timeout's option names.
  procession run --timeout 1m -s INT -k 10s -- ./server

  # The whole group is stopped, including what the program started.
  procession run --timeout 30s -- make -j8

  # Log both streams to one file, appending, created with mode 0600.
  procession run --stdout build.log --stderr stdout --append --mode 0600 -- make

  # A clean environment with one variable, in another directory.
  procession run --env-clear --env PATH=/usr/bin:/bin --cd /tmp -- env

  # An interactive shell on a terminal of its own, typed into as usual.
  procession run --pty --timeout 1h -- bash

  # A program that wants a terminal, fed from a pipe: prints a\\r\\nb\\r\\n.
  printf 'a\\nb\\n' | procession run --pty -- cat

  # grep exits 1 when nothing matched: count that as success too.
  procession run --success-exit-code 0 --success-exit-code 1 -- grep -q x file

  # As nobody, niced, with at most 256 open files and no core dumps.
  procession run --user nobody --nice 10 --rlimit nofile=256 --rlimit core=0 -- ./job

  # Output and exit as JSON lines, one event per line of output.
  procession run --events json --framing lines -- make

  # How long, how much CPU and memory, how many bytes out.
  procession run --summary -- gzip -9 big.tar";

/// Options of `procession run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Stop the program when it has run this long; exit code 124.
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = parse_duration,
        long_help = "\
Start the stop sequence when the program has run this long (--stop-signal or
--stop-command, then SIGKILL after --stop-timeout, to the whole process
group); procession then exits with 124. DURATION: a number with an optional
unit ms, s (the default), m, h or d, e.g. 500ms, 2s, 1.5s, 1m or 10. 0 means
no timeout.
Example: procession run --timeout 1.5s -- sleep 10"
    )]
    pub timeout: Option<Duration>,

    /// First signal of the stop sequence [default: TERM].
    #[arg(
        long,
        short = 's',
        visible_alias = "signal",
        value_name = "SIG",
        long_help = "\
The first signal of the stop sequence (default TERM): a name with or without
SIG (INT, SIGINT, sigint) or a number (2). SIGCONT follows it, so that a
suspended program can act on it. It also goes to what is left of the group
once the program has ended. -s and --signal are GNU timeout's names for it.
Example: procession run --timeout 5s --stop-signal INT -- ./server"
    )]
    pub stop_signal: Option<Signal>,

    /// Grace period before SIGKILL in the stop sequence [default: 5s].
    #[arg(
        long,
        short = 'k',
        visible_alias = "kill-after",
        value_name = "DURATION",
        value_parser = parse_duration,
        long_help = "\
How long the stop sequence waits after the first signal (or the stop
command) before it sends SIGKILL to what is left (default 5s). DURATION as
for --timeout. -k and --kill-after are GNU timeout's names for it.
Example: procession run --timeout 2s --stop-timeout 500ms -- ./stubborn"
    )]
    pub stop_timeout: Option<Duration>,

    /// Shell command that replaces the stop sequence's first signal.
    #[arg(
        long,
        value_name = "CMDLINE",
        long_help = "\
Run CMDLINE with /bin/sh -c instead of sending the first signal of the stop
sequence when the --timeout fires. It gets CHILD_PID=<the program's pid> in
its environment, stdin from /dev/null, procession's stdout and stderr, and a
process group of its own. SIGKILL still follows after --stop-timeout, for
the program and the rest of procession's group; the command (with its
group) is killed too if it still runs then, and procession exits only once
it has ended. What is left of procession's group once the program has ended
gets --stop-signal.
Example: procession run --timeout 10s --stop-command 'kill -USR1 $CHILD_PID' -- ./server"
    )]
    pub stop_command: Option<OsString>,

    /// Stay in the caller's process group; signal only the program.
    #[arg(
        long,
        long_help = "\
Do not make a process group: procession and the program stay in the
caller's group (GNU timeout's --foreground). For a program run from a
script (not straight from an interactive shell) that must read the terminal
or be reached by its Ctrl-C. The stop sequence and forwarded signals then go
to the program alone, and what the program starts may outlive it. Not with
--pty.
Example: procession run --foreground -- vi notes.txt"
    )]
    pub foreground: bool,

    /// Working directory of the program.
    #[arg(
        long,
        value_name = "DIR",
        long_help = "\
Run the program in DIR. A PROGRAM given as a relative path (with a /) is then
found from DIR. procession exits with 125 if DIR cannot be entered.
Example: procession run --cd /tmp -- pwd"
    )]
    pub cd: Option<PathBuf>,

    /// Set an environment variable (repeatable).
    #[arg(
        long,
        value_name = "K=V",
        action = ArgAction::Append,
        value_parser = OsStringValueParser::new().try_map(parse_env),
        long_help = "\
Set the variable K to V in the program's environment (repeatable). --env and
--unset apply in the order given. An error without '='.
Example: procession run --env LANG=C --env TZ=UTC -- date"
    )]
    pub env: Vec<(OsString, OsString)>,

    /// Remove an environment variable (repeatable).
    #[arg(
        long,
        value_name = "K",
        action = ArgAction::Append,
        value_parser = OsStringValueParser::new().try_map(parse_env_name),
        long_help = "\
Remove the variable K from the program's environment (repeatable).
Example: procession run --unset DISPLAY -- xclock"
    )]
    pub unset: Vec<OsString>,

    /// Start from an empty environment.
    #[arg(
        long,
        long_help = "\
Start the program with an empty environment plus what --env sets. PROGRAM is
then looked up in the PATH set with --env, or in /usr/local/bin:/usr/bin:/bin.
Example: procession run --env-clear --env HOME=/tmp -- env"
    )]
    pub env_clear: bool,

    /// The name the program sees as `argv[0]`.
    #[arg(
        long,
        value_name = "NAME",
        long_help = "\
Pass NAME as argv[0] (by default PROGRAM as given).
Example: procession run --arg0 -bash -- /bin/bash"
    )]
    pub arg0: Option<OsString>,

    /// Program's stdin: FILE, null or close [default: inherit].
    #[arg(
        long,
        value_name = "FILE|null|close",
        value_parser = OsStringValueParser::new().map(Input::from_arg),
        long_help = "\
Where the program's stdin comes from: FILE (opened for reading), null
(/dev/null) or close (descriptor 0 closed). By default procession's stdin.
Write ./null or ./close for a file of that name. Not with --pty.
Example: procession run --stdin input.txt -- sort"
    )]
    pub stdin: Option<Input>,

    /// Program's stdout: FILE, null or stderr [default: inherit].
    #[arg(
        long,
        value_name = "FILE|null|stderr",
        value_parser = OsStringValueParser::new().map(Output::from_arg),
        long_help = "\
Where the program's stdout goes: FILE (created if missing, truncated unless
--append, see --mode), null (/dev/null) or stderr (the program's stderr, as
1>&2). By default procession's stdout. Write ./null or ./stderr for a file of
that name. Not with --pty.
Example: procession run --stdout out.log -- make"
    )]
    pub stdout: Option<Output>,

    /// Program's stderr: FILE, null or stdout [default: inherit].
    #[arg(
        long,
        value_name = "FILE|null|stdout",
        value_parser = OsStringValueParser::new().map(Output::from_arg),
        long_help = "\
Where the program's stderr goes: FILE (created if missing, truncated unless
--append, see --mode), null (/dev/null) or stdout (wherever the program's
stdout goes, as 2>&1). The same FILE as --stdout also means 2>&1 (one open
file, so the two streams do not overwrite each other). By default
procession's stderr. Write ./null or ./stdout for a file of that name. With
--pty, stderr is on the terminal (stdout leaves it there; FILE or null takes
it off).
Example: procession run --stdout all.log --stderr stdout -- make"
    )]
    pub stderr: Option<Output>,

    /// Append to the --stdout/--stderr FILE instead of truncating it.
    #[arg(
        long,
        long_help = "\
Open the FILE given to --stdout and the one given to --stderr for appending
instead of truncating them (one flag for both). An error without an output
FILE.
Example: procession run --stdout build.log --append -- make"
    )]
    pub append: bool,

    /// Permission bits of a created --stdout/--stderr FILE (octal).
    #[arg(
        long,
        value_name = "OCTAL",
        value_parser = parse_mode,
        long_help = "\
The permission bits, in octal (0600, 600 or 0o600), of the FILE given to
--stdout and the one given to --stderr when they are created (the umask
still applies; an existing file keeps its mode). Default 0666 minus the
umask. An error without an output FILE.
Example: procession run --stdout secret.log --mode 0600 -- ./job"
    )]
    pub mode: Option<u32>,

    /// Run the program on a pseudo-terminal; relay procession's stdin and stdout to it.
    #[arg(
        long,
        long_help = "\
Run the program on a new pseudo-terminal (pty), in a session of its own
whose controlling terminal it is, as `script` does: its stdin, stdout and
stderr are the terminal (see --stderr to take stderr off it). procession
copies its own stdin to the terminal's input and the terminal's output to
its own stdout, byte for byte (with the terminal's \\r\\n line endings),
until that output ends: once the program, and whatever else holds the
terminal, is gone (at most 1 s after the program and its group). See
TERMINAL below for interactive use, echo and end of input.
Example: procession run --pty -- tty"
    )]
    pub pty: bool,

    /// The --pty terminal's size [default: procession's terminal's, else 24x80].
    #[arg(
        long,
        value_name = "ROWSxCOLS",
        value_parser = parse_size,
        requires = "pty",
        long_help = "\
The size of the --pty terminal, ROWSxCOLS (1 to 65535 each), e.g. 24x80. By
default the size of procession's own terminal (its stdin's, else its
stdout's), which the pty then follows when that window is resized; 24x80
when neither is a terminal. With --pty-size the size stays as given.
Example: procession run --pty --pty-size 50x132 -- stty size"
    )]
    pub pty_size: Option<(u16, u16)>,

    /// Exit code that counts as success: procession then exits 0 (repeatable).
    #[arg(
        long,
        value_name = "N",
        action = ArgAction::Append,
        value_parser = clap::value_parser!(i32).range(0..=255),
        long_help = "\
An exit code of the program that counts as success (repeatable; list 0 too if
it still counts). When given, procession exits with 0 if the program's exit
code is one of them, otherwise with the program's code, or with 1 if that
code was 0 (a failure never looks like success). A timeout (124) or a signal
(128+N) is never a success.
Example: procession run --success-exit-code 0 --success-exit-code 1 -- grep -q x file"
    )]
    pub success_exit_code: Vec<i32>,

    /// Run the program as this user (name or uid), with its groups.
    #[arg(
        long,
        value_name = "NAME|UID",
        value_parser = OsStringValueParser::new().map(name_or_id),
        long_help = "\
Run the program as USER, a name from the user database or a numeric uid
(setresuid). Unless --group and --groups say otherwise, the program gets
the user's primary group and supplementary groups from the databases, as
su and sudo do (a uid without an entry there needs --group). Needs root
(CAP_SETUID and CAP_SETGID); otherwise nothing runs and procession exits
with 125. As with setpriv(1) and runuser(1), --cd is entered as the new
user.
Example: procession run --user nobody -- id"
    )]
    pub user: Option<NameOrId>,

    /// Run the program with this group (name or gid) as its primary group.
    #[arg(
        long,
        value_name = "NAME|GID",
        value_parser = OsStringValueParser::new().map(name_or_id),
        long_help = "\
The program's primary group (setresgid), a name from the group database or
a numeric gid, instead of the --user's own. Needs root (CAP_SETGID).
Example: procession run --user nobody --group nogroup -- id -g"
    )]
    pub group: Option<NameOrId>,

    /// The program's supplementary groups, comma-separated ('' for none).
    #[arg(
        long,
        value_name = "G,G,...",
        value_parser = OsStringValueParser::new().map(group_list),
        long_help = "\
The program's supplementary groups (setgroups): names or gids separated by
commas, instead of the --user's own; an empty list ('') leaves it with none.
Needs root (CAP_SETGID).
Example: procession run --user nobody --groups '' -- id -G"
    )]
    pub groups: Option<GroupList>,

    /// The program's nice value, -20 (most favoured) to 19.
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i32).range(-20..=19),
        long_help = "\
The program's nice value (setpriority), from -20 (most favoured) to 19
(least), as an absolute value, not added to procession's own as nice(1)
does. Below procession's own value needs root (CAP_SYS_NICE), else 125.
Example: procession run --nice 10 -- make -j8"
    )]
    pub nice: Option<i32>,

    /// A resource limit NAME=SOFT[:HARD] (repeatable; names as prlimit's).
    #[arg(
        long,
        value_name = "NAME=SOFT[:HARD]",
        action = ArgAction::Append,
        value_parser = parse_rlimit,
        long_help = "\
Set a resource limit of the program (setrlimit), repeatable. NAME is one of
prlimit(1)'s: as, core, cpu, data, fsize, memlock, msgqueue, nice, nofile,
nproc, rtprio, rttime, sigpending, stack (case does not matter). A single
value sets both the soft and the hard limit; SOFT:HARD sets both; SOFT: and
:HARD change one and keep procession's own value of the other. A value is a
number (bytes, seconds or a count, as the limit counts) or unlimited. Raising
a hard limit above procession's needs root; a refused limit exits 125.
Example: procession run --rlimit nofile=1024 --rlimit core=0 --rlimit cpu=60:70 -- ./job"
    )]
    pub rlimit: Vec<RlimitArg>,

    /// Set no_new_privs: the program can never gain privileges (setuid, file caps).
    #[arg(
        long,
        long_help = "\
Set the no_new_privs bit (prctl PR_SET_NO_NEW_PRIVS) in the program: neither
it nor anything it starts can gain privileges through set-user-id programs
or file capabilities (setpriv --no-new-privs). It cannot be undone. Visible as
NoNewPrivs: 1 in /proc/PID/status.
Example: procession run --no-new-privs -- grep NoNewPrivs /proc/self/status"
    )]
    pub no_new_privs: bool,

    /// The program's file-creation mask, in octal (e.g. 027).
    #[arg(
        long,
        value_name = "OCTAL",
        value_parser = parse_umask,
        long_help = "\
The program's file-creation mask (umask), in octal: 027, 0027 or 0o027, at
most 0777. umask(1) in the program prints it.
Example: procession run --umask 077 -- sh -c 'umask; touch private'"
    )]
    pub umask: Option<u32>,

    /// Run the program in a cgroup v2 of its own: auto, or under DIR.
    #[arg(
        long,
        value_name = "auto|DIR",
        value_parser = OsStringValueParser::new().map(CgroupArg::from_arg),
        long_help = "\
Run the program in a new cgroup v2 of its own, made under procession's own
cgroup (auto) or under DIR (a directory of a cgroup v2 file system that
procession may create cgroups in: a delegated subtree, or any as root). The
cgroup holds everything the program starts, even what leaves the process
group (setsid, a double fork): once the program has ended, what is left of
the cgroup is stopped as the group is (--stop-signal, then SIGKILL with
cgroup.kill after --stop-timeout), and the cgroup is removed; its CPU
accounting is in --summary and the exit event of --events. Without a usable
cgroup v2 hierarchy procession exits with 125 and runs nothing: there is no
silent fallback to a weaker cleanup.
Example: procession run --cgroup auto -- sh -c 'setsid sleep 100 & echo started'"
    )]
    pub cgroup: Option<CgroupArg>,

    /// What happens to the program if procession is killed [default: kill].
    #[arg(
        long,
        value_name = "kill|keep",
        value_enum,
        default_value_t = OwnerDeath::Kill,
        hide_default_value = true,
        long_help = "\
What happens to the program if procession dies without stopping it (SIGKILL,
a crash): kill (the default) SIGKILLs it within milliseconds (with --pty
its process group, with --cgroup its whole cgroup), through the watchdog
process that procession starts; keep leaves it running, e.g. for a daemon
that must outlive its launcher.
Example: procession run --on-owner-death keep -- ./daemon"
    )]
    pub on_owner_death: OwnerDeath,

    /// Write the program's output and exit as JSON events on stdout, one a line.
    #[arg(
        long,
        value_name = "json",
        value_enum,
        conflicts_with = "pty",
        long_help = "\
Instead of passing the program's stdout and stderr through, write one JSON
object a line on procession's stdout: a start event with the pid, an event
per chunk (or per --framing frame) of the program's stdout and stderr, with
the bytes as text when they are valid UTF-8 (\"data\") or base64 otherwise
(\"data_b64\"), then an exit event with the exit code or signal, whether the
timeout fired, procession's own exit code and the resource usage. If the
program cannot be started, an error event instead. procession's exit code
is still the program's (124-127, 128+N as usual). A stream redirected with
--stdout or --stderr has no events. The schema is in docs/CLI.md.
Example: procession run --events json -- sh -c 'echo out; echo err >&2; exit 3'"
    )]
    pub events: Option<EventsFormat>,

    /// How --events cuts the output: raw, lines[:MAX] or packet:1|2|4.
    #[arg(
        long,
        value_name = "raw|lines[:MAX]|packet:N",
        value_parser = parse_framing,
        requires = "events",
        long_help = "\
How --events cuts the program's output into events: raw (the default) gives
the chunks as read, at most 64 KiB each; lines gives one event per line
without its \\n, with \"complete\": false for a piece of a line longer than
MAX bytes (default 65536) or a last line without \\n; packet:N reads
packets with an N-byte (1, 2 or 4) big-endian length prefix, one event per
packet payload (a broken packet ends the events with an error event).
Example: procession run --events json --framing lines -- ls -l"
    )]
    pub framing: Option<Framing>,

    /// On exit, print wall and CPU time, peak memory and bytes in/out to stderr.
    #[arg(
        long,
        conflicts_with = "pty",
        long_help = "\
When the program has ended, print a summary to procession's stderr (its
stdout stays the program's): the exit, the wall time, the user, system and
total CPU time and the peak resident memory of the program (and of the
children it waited for), and the bytes it read on stdin and wrote on stdout
and stderr. To count those bytes procession relays the streams through
pipes: stdin, stdout and stderr that are not terminals and not redirected
with --stdin/--stdout/--stderr are relayed; the others are reported as not
counted (the program keeps its terminal, so that it behaves as without
--summary). A relayed stdin is read ahead of the program, so in a
`while read` loop give it --stdin null. With --cgroup, the cgroup's CPU
time and peak memory for the program and all its descendants are shown too.
Example: procession run --summary -- sh -c 'head -c 1000000 /dev/zero | gzip >/dev/null'"
    )]
    pub summary: bool,

    /// Reap orphaned descendants (child subreaper); automatic as PID 1.
    #[arg(
        long,
        long_help = "\
Make procession a child subreaper (prctl PR_SET_CHILD_SUBREAPER): the
program's descendants whose parent dies are re-parented to procession, which
reaps them as they exit, so that no zombie is left. This is already so
unless --foreground; --subreaper adds it to --foreground. When procession
runs as PID 1 (the entrypoint of a container) it reaps every adopted zombie
on its own, as tini and dumb-init do; signals sent to it are forwarded to
the program's group (see SIGNALS) and it exits with the program's status.
Example: procession run --foreground --subreaper -- ./spawns-daemons"
    )]
    pub subreaper: bool,

    /// A terminal mode of the --pty terminal, NAME=VALUE (repeatable).
    #[arg(
        long,
        value_name = "NAME=VALUE",
        action = ArgAction::Append,
        value_parser = parse_pty_mode,
        requires = "pty",
        long_help = "\
Set a mode of the --pty terminal at start (repeatable): an RFC 4254 name
(case does not matter) such as echo, icanon, isig, onlcr, opost (0 off,
1 on), vintr, veof (the character's code, 255 for none) or tty_op_ospeed
(bits per second). It applies after procession's own choice of echo.
Example: procession run --pty --pty-mode onlcr=0 -- printf 'a\\nb\\n'"
    )]
    pub pty_mode: Vec<(TerminalMode, u32)>,

    /// The program to run (looked up in PATH unless it contains a /) and its arguments.
    #[arg(
        value_name = "PROGRAM",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        long_help = "\
The program to run, looked up in PATH unless it contains a /, then its
arguments, passed as they are. Everything from PROGRAM on belongs to the
program; put `--` before PROGRAM."
    )]
    pub command: Vec<OsString>,
}

impl RunArgs {
    /// PROGRAM.
    pub fn program(&self) -> &OsStr {
        &self.command[0]
    }

    /// ARGS.
    pub fn program_args(&self) -> &[OsString] {
        &self.command[1..]
    }
}

/// A user or group argument: all digits is an id, anything else a name.
fn name_or_id(s: OsString) -> NameOrId {
    match s.to_str().map(str::parse::<u32>) {
        Some(Ok(id)) if s.as_bytes().iter().all(u8::is_ascii_digit) => NameOrId::Id(id),
        _ => NameOrId::Name(s),
    }
}

/// The groups of `--groups` (a type of its own: clap takes an
/// `Option<Vec<_>>` field for an option with many values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupList(pub Vec<NameOrId>);

/// `--groups`: comma-separated names or ids; empty means none.
fn group_list(s: OsString) -> GroupList {
    if s.is_empty() {
        return GroupList(Vec::new());
    }
    GroupList(
        s.as_bytes()
            .split(|&b| b == b',')
            .map(|g| name_or_id(OsStr::from_bytes(g).to_owned()))
            .collect(),
    )
}

/// One `--rlimit`: the limit and the values given (None: keep procession's own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RlimitArg {
    pub limit: Limit,
    /// The `RLIMIT_` constant, to read procession's own value.
    pub resource: i32,
    /// prlimit's name, for messages.
    pub name: &'static str,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// The limits by prlimit(1)'s names.
pub const RLIMITS: &[(&str, Limit, i32)] = &[
    ("as", Limit::AddressSpace, libc::RLIMIT_AS as i32),
    ("core", Limit::CoreSize, libc::RLIMIT_CORE as i32),
    ("cpu", Limit::CpuTime, libc::RLIMIT_CPU as i32),
    ("data", Limit::Data, libc::RLIMIT_DATA as i32),
    ("fsize", Limit::FileSize, libc::RLIMIT_FSIZE as i32),
    ("memlock", Limit::LockedMemory, libc::RLIMIT_MEMLOCK as i32),
    (
        "msgqueue",
        Limit::MessageQueues,
        libc::RLIMIT_MSGQUEUE as i32,
    ),
    ("nice", Limit::Nice, libc::RLIMIT_NICE as i32),
    ("nofile", Limit::OpenFiles, libc::RLIMIT_NOFILE as i32),
    ("nproc", Limit::Processes, libc::RLIMIT_NPROC as i32),
    (
        "rtprio",
        Limit::RealtimePriority,
        libc::RLIMIT_RTPRIO as i32,
    ),
    ("rttime", Limit::RealtimeTime, libc::RLIMIT_RTTIME as i32),
    (
        "sigpending",
        Limit::PendingSignals,
        libc::RLIMIT_SIGPENDING as i32,
    ),
    ("stack", Limit::Stack, libc::RLIMIT_STACK as i32),
];

/// Parses `NAME=SOFT[:HARD]`, `NAME=SOFT:` or `NAME=:HARD`.
pub fn parse_rlimit(s: &str) -> Result<RlimitArg, String> {
    let names = || {
        RLIMITS
            .iter()
            .map(|(n, _, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (name, values) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=SOFT[:HARD], got {s:?} (no '=')"))?;
    let (name, limit, resource) = RLIMITS
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
        .copied()
        .ok_or_else(|| format!("unknown limit {name:?} (expected one of {})", names()))?;
    let value = |v: &str| -> Result<u64, String> {
        if v.eq_ignore_ascii_case("unlimited") || v.eq_ignore_ascii_case("infinity") {
            return Ok(Limit::UNLIMITED);
        }
        match v.parse::<u64>() {
            Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(format!(
                "invalid value {v:?} for limit {name} (expected a number or unlimited)"
            )),
        }
    };
    let (soft, hard) = match values.split_once(':') {
        None => {
            let v = value(values)?;
            (Some(v), Some(v))
        }
        Some(("", "")) => return Err(format!("no value for limit {name} in {s:?}")),
        Some((soft, hard)) => (
            (!soft.is_empty()).then(|| value(soft)).transpose()?,
            (!hard.is_empty()).then(|| value(hard)).transpose()?,
        ),
    };
    if let (Some(soft), Some(hard)) = (soft, hard)
        && soft > hard
    {
        return Err(format!(
            "the soft limit of {name} is above its hard limit in {s:?}"
        ));
    }
    Ok(RlimitArg {
        limit,
        resource,
        name,
        soft,
        hard,
    })
}

/// Parses a umask: octal, at most 0777.
pub fn parse_umask(s: &str) -> Result<u32, String> {
    match parse_mode(s) {
        Ok(mask) if mask <= 0o777 => Ok(mask),
        _ => Err(format!(
            "invalid umask {s:?} (expected octal from 0 to 0777, such as 022 or 0o077)"
        )),
    }
}

/// `--cgroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupArg {
    Auto,
    Under(PathBuf),
}

impl CgroupArg {
    fn from_arg(s: OsString) -> CgroupArg {
        match s.as_bytes() {
            b"auto" => CgroupArg::Auto,
            _ => CgroupArg::Under(s.into()),
        }
    }
}

/// `--on-owner-death`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OwnerDeath {
    /// SIGKILL the program (and its group or cgroup).
    Kill,
    /// Leave it running.
    Keep,
}

/// `--events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EventsFormat {
    /// One JSON object a line.
    Json,
}

/// `--framing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Raw,
    Lines(usize),
    Packet(PacketSize),
}

/// The longest line of `--framing lines` without `:MAX`.
pub const DEFAULT_MAX_LINE: usize = 65536;

/// Parses `raw`, `lines`, `lines:MAX` or `packet:N`.
pub fn parse_framing(s: &str) -> Result<Framing, String> {
    let bad = || {
        format!(
            "invalid framing {s:?} (expected raw, lines, lines:MAX or packet:1, packet:2, packet:4)"
        )
    };
    match s.split_once(':') {
        None if s == "raw" => Ok(Framing::Raw),
        None if s == "lines" => Ok(Framing::Lines(DEFAULT_MAX_LINE)),
        Some(("lines", max)) => match max.parse::<usize>() {
            Ok(n) if n > 0 && max.bytes().all(|b| b.is_ascii_digit()) => Ok(Framing::Lines(n)),
            _ => Err(bad()),
        },
        Some(("packet", n)) => match n {
            "1" | "2" | "4" => Ok(Framing::Packet(
                PacketSize::try_from(n.as_bytes()[0] - b'0').map_err(|_| bad())?,
            )),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// Parses a terminal mode `NAME=VALUE`.
pub fn parse_pty_mode(s: &str) -> Result<(TerminalMode, u32), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got {s:?} (no '=')"))?;
    let mode: TerminalMode = name.parse().map_err(|e| format!("{e}"))?;
    let value = value.parse::<u32>().map_err(|_| {
        format!("invalid value {value:?} for terminal mode {mode} (expected a number)")
    })?;
    Ok((mode, value))
}

/// `--stdin`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Null,
    Close,
    File(PathBuf),
}

impl Input {
    fn from_arg(s: OsString) -> Input {
        match s.as_bytes() {
            b"null" => Input::Null,
            b"close" => Input::Close,
            _ => Input::File(s.into()),
        }
    }
}

/// `--stdout` and `--stderr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Null,
    /// `stdout` for --stderr, `stderr` for --stdout: the other stream.
    Other(Stream),
    File(PathBuf),
}

/// A standard output stream, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Output {
    fn from_arg(s: OsString) -> Output {
        match s.as_bytes() {
            b"null" => Output::Null,
            b"stdout" => Output::Other(Stream::Stdout),
            b"stderr" => Output::Other(Stream::Stderr),
            _ => Output::File(s.into()),
        }
    }
}

/// One change to the environment, in command-line order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvChange {
    Set(OsString, OsString),
    Unset(OsString),
}

/// The `--env` and `--unset` changes in the order they were given (clap keeps
/// each option's values apart; their indices tell the order).
pub fn env_changes(run: &RunArgs, matches: &ArgMatches) -> Vec<EnvChange> {
    let mut changes: Vec<(usize, EnvChange)> = Vec::new();
    if let Some(idx) = matches.indices_of("env") {
        changes.extend(
            idx.zip(&run.env)
                .map(|(i, (k, v))| (i, EnvChange::Set(k.clone(), v.clone()))),
        );
    }
    if let Some(idx) = matches.indices_of("unset") {
        changes.extend(
            idx.zip(&run.unset)
                .map(|(i, k)| (i, EnvChange::Unset(k.clone()))),
        );
    }
    changes.sort_by_key(|(i, _)| *i);
    changes.into_iter().map(|(_, c)| c).collect()
}

/// Parses `500ms`, `2s`, `1.5s`, `1m`, `1h`, `1d` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration {s:?} (expected a number with an optional unit ms, s, m, h or d, e.g. 500ms, 2s, 1.5s, 1m)"
        )
    };
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    if !number.bytes().any(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("duration {s:?} is too long"))
}

/// Parses a terminal size `ROWSxCOLS` (`24x80`).
pub fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("invalid terminal size {s:?} (expected ROWSxCOLS, e.g. 24x80)");
    let (rows, cols) = s.split_once('x').ok_or_else(bad)?;
    let dim = |d: &str| match d.parse::<u16>() {
        Ok(n) if n > 0 && d.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(bad()),
    };
    Ok((dim(rows)?, dim(cols)?))
}

/// Parses an octal permission mode: `0644`, `644` or `0o644`.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    let bad = || format!("invalid mode {s:?} (expected octal permission bits such as 0644 or 600)");
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(bad());
    }
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o7777 => Ok(mode),
        _ => Err(bad()),
    }
}

/// Parses `K=V` (split at the first `=`; V may be empty or contain `=`).
fn parse_env(s: OsString) -> Result<(OsString, OsString), String> {
    let bytes = s.as_bytes();
    let Some(eq) = bytes.iter().position(|&b| b == b'=') else {
        return Err(format!("expected K=V, got {s:?} (no '=')"));
    };
    if eq == 0 {
        return Err(format!("expected K=V, got {s:?} (empty variable name)"));
    }
    Ok((
        OsStr::from_bytes(&bytes[..eq]).to_owned(),
        OsStr::from_bytes(&bytes[eq + 1..]).to_owned(),
    ))
}

/// Checks a variable name for `--unset`: non-empty, no `=`.
fn parse_env_name(s: OsString) -> Result<OsString, String> {
    if s.is_empty() || s.as_bytes().contains(&b'=') {
        return Err(format!("invalid variable name {s:?}"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("2s"), Ok(ms(2000)));
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration("1m"), Ok(ms(60_000)));
        assert_eq!(parse_duration("2h"), Ok(ms(7_200_000)));
        assert_eq!(parse_duration("1d"), Ok(ms(86_400_000)));
        assert_eq!(parse_duration("10"), Ok(ms(10_000)));
        assert_eq!(parse_duration("0.25"), Ok(ms(250)));
        assert_eq!(parse_duration(".5"), Ok(ms(500)));
        assert_eq!(parse_duration("0"), Ok(ms(0)));
        for bad in [
            "",
            "s",
            ".",
            "-1",
            "1x",
            "1.2.3s",
            "1 s",
            "1e3",
            "abc",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0644"), Ok(0o644));
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert_eq!(parse_mode("0o755"), Ok(0o755));
        assert_eq!(parse_mode("4755"), Ok(0o4755));
        for bad in ["", "0o", "8", "0x1", "-644", "77777", "rw"] {
            assert!(parse_mode(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("24x80"), Ok((24, 80)));
        assert_eq!(parse_size("1x65535"), Ok((1, 65535)));
        for bad in [
            "", "x", "24", "24x", "x80", "0x80", "24x0", "24X80", "24*80", "24x80x1", "+24x80",
            "24x-80", "65536x80", " 24x80",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
        let (run, _) =
            parse(&["procession", "run", "--pty", "--pty-size", "3x4", "--", "x"]).unwrap();
        assert!(run.pty);
        assert_eq!(run.pty_size, Some((3, 4)));
        // --pty-size needs --pty.
        assert!(parse(&["procession", "run", "--pty-size", "3x4", "--", "x"]).is_err());
    }

    #[test]
    fn env_pairs() {
        let pair = |k: &str, v: &str| (OsString::from(k), OsString::from(v));
        assert_eq!(parse_env("A=1".into()), Ok(pair("A", "1")));
        assert_eq!(parse_env("A=".into()), Ok(pair("A", "")));
        assert_eq!(parse_env("A=b=c".into()), Ok(pair("A", "b=c")));
        assert!(parse_env("A".into()).is_err());
        assert!(parse_env("=1".into()).is_err());
        assert!(parse_env_name("A".into()).is_ok());
        assert!(parse_env_name("A=1".into()).is_err());
        assert!(parse_env_name("".into()).is_err());
    }

    fn parse(args: &[&str]) -> Result<(RunArgs, Vec<EnvChange>), clap::Error> {
        let matches = Cli::command().try_get_matches_from(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        let Cmd::Run(run) = cli.command else {
            panic!("not run");
        };
        let (_, sub) = matches.subcommand().expect("subcommand");
        let changes = env_changes(&run, sub);
        Ok((run, changes))
    }

    #[test]
    fn program_and_arguments() {
        let (run, _) = parse(&[
            "procession",
            "run",
            "--timeout",
            "1s",
            "--",
            "ls",
            "-l",
            "--all",
        ])
        .unwrap();
        assert_eq!(run.command, ["ls", "-l", "--all"]);
        assert_eq!(run.timeout, Some(Duration::from_secs(1)));
        // Without `--`, everything from PROGRAM on belongs to the program.
        let (run, _) = parse(&["procession", "run", "ls", "--timeout", "1s"]).unwrap();
        assert_eq!(run.command, ["ls", "--timeout", "1s"]);
        assert_eq!(run.timeout, None);
        let (run, _) = parse(&["procession", "run", "--", "--weird"]).unwrap();
        assert_eq!(run.command, ["--weird"]);
        assert!(parse(&["procession", "run"]).is_err());
        assert!(parse(&["procession", "run", "--"]).is_err());
    }

    #[test]
    fn env_order_is_kept() {
        let (_, changes) = parse(&[
            "procession",
            "run",
            "--unset",
            "A",
            "--env",
            "A=1",
            "--env",
            "B=2",
            "--unset",
            "B",
            "--",
            "env",
        ])
        .unwrap();
        assert_eq!(
            changes,
            [
                EnvChange::Unset("A".into()),
                EnvChange::Set("A".into(), "1".into()),
                EnvChange::Set("B".into(), "2".into()),
                EnvChange::Unset("B".into()),
            ]
        );
    }

    #[test]
    fn redirection_keywords() {
        let (run, _) = parse(&[
            "procession",
            "run",
            "--stdin",
            "close",
            "--stdout",
            "stderr",
            "--stderr",
            "null",
            "--",
            "x",
        ])
        .unwrap();
        assert_eq!(run.stdin, Some(Input::Close));
        assert_eq!(run.stdout, Some(Output::Other(Stream::Stderr)));
        assert_eq!(run.stderr, Some(Output::Null));
        let (run, _) = parse(&[
            "procession",
            "run",
            "--stdin",
            "./null",
            "--stderr",
            "stdout",
            "--",
            "x",
        ])
        .unwrap();
        assert_eq!(run.stdin, Some(Input::File("./null".into())));
        assert_eq!(run.stderr, Some(Output::Other(Stream::Stdout)));
    }

    #[test]
    fn conflicts_and_bad_values() {
        // Gone: the whole group is always stopped; --foreground replaced --no-group.
        assert!(parse(&["procession", "run", "--stop-group", "--", "x"]).is_err());
        assert!(parse(&["procession", "run", "--no-group", "--", "x"]).is_err());
        assert!(parse(&["procession", "run", "--stop-signal", "NOPE", "--", "x"]).is_err());
        assert!(parse(&["procession", "run", "--success-exit-code", "256", "--", "x"]).is_err());
        let (run, _) = parse(&["procession", "run", "--stop-signal", "sigint", "--", "x"]).unwrap();
        assert_eq!(run.stop_signal, Some(Signal::INT));
    }

    #[test]
    fn gnu_timeout_names() {
        let (run, _) = parse(&["procession", "run", "-s", "INT", "-k", "2s", "--", "x"]).unwrap();
        assert_eq!(run.stop_signal, Some(Signal::INT));
        assert_eq!(run.stop_timeout, Some(Duration::from_secs(2)));
        let (run, _) = parse(&[
            "procession",
            "run",
            "--signal",
            "HUP",
            "--kill-after",
            "1s",
            "--",
            "x",
        ])
        .unwrap();
        assert_eq!(run.stop_signal, Some(Signal::HUP));
        assert_eq!(run.stop_timeout, Some(Duration::from_secs(1)));
    }

    #[test]
    fn every_run_option_has_an_example() {
        let cli = Cli::command();
        let run = cli.find_subcommand("run").expect("run");
        for arg in run.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || arg.is_positional() {
                continue;
            }
            let help = arg
                .get_long_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.contains("\nExample: procession run "),
                "--{id} has no example in its long help"
            );
        }
    }

    #[test]
    fn new_option_values() {
        assert_eq!(
            parse_rlimit("nofile=10:20").unwrap(),
            RlimitArg {
                limit: Limit::OpenFiles,
                resource: libc::RLIMIT_NOFILE as i32,
                name: "nofile",
                soft: Some(10),
                hard: Some(20)
            }
        );
        let r = parse_rlimit("AS=unlimited").unwrap();
        assert_eq!(
            (r.soft, r.hard),
            (Some(Limit::UNLIMITED), Some(Limit::UNLIMITED))
        );
        let r = parse_rlimit("core=:5").unwrap();
        assert_eq!((r.soft, r.hard), (None, Some(5)));
        for bad in [
            "",
            "=1",
            "nofile=",
            "nofile=-1",
            "nofile=1:2:3",
            "nofile=+1",
        ] {
            assert!(parse_rlimit(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_umask("027"), Ok(0o27));
        assert!(parse_umask("1000").is_err());
        assert_eq!(parse_framing("lines:10"), Ok(Framing::Lines(10)));
        assert_eq!(
            parse_framing("packet:4"),
            Ok(Framing::Packet(PacketSize::Four))
        );
        for bad in [
            "", "line", "lines:", "lines:x", "packet", "packet:0", "packet:8", "raw:1",
        ] {
            assert!(parse_framing(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(name_or_id("65534".into()), NameOrId::Id(65534));
        assert_eq!(name_or_id("nobody".into()), NameOrId::Name("nobody".into()));
        assert_eq!(name_or_id("+1".into()), NameOrId::Name("+1".into()));
        assert_eq!(group_list("".into()), GroupList(vec![]));
        assert_eq!(
            group_list("0,wheel".into()),
            GroupList(vec![NameOrId::Id(0), NameOrId::Name("wheel".into())])
        );
        assert_eq!(parse_pty_mode("ECHO=0"), Ok((TerminalMode::Echo, 0)));
        assert!(parse_pty_mode("echo=x").is_err());
        let (run, _) = parse(&["procession", "run", "--nice", "-5", "--", "x"]).unwrap();
        assert_eq!(run.nice, Some(-5));
    }

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }
}

//! `procession run`: build the command, spawn it, forward signals, wait, and
//! turn the outcome into procession's exit code.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use procession::{
    Cgroup, Child, Command, DEFAULT_STOP_TIMEOUT, Error, ErrorKind, ExitStatus, Limit,
    ProcessGroup, Signal, Stdio, Step,
};

use crate::args::{CgroupArg, EnvChange, Input, Output, OwnerDeath, RlimitArg, RunArgs, Stream};
use crate::events::{Exit, Json};
use crate::group::{self, Group, Reached};
use crate::relay::{Plan, Relays};
use crate::signals;

/// The timeout fired.
pub const EXIT_TIMED_OUT: i32 = 124;
/// procession itself failed.
pub const EXIT_FAILED: i32 = 125;
/// The program was found but could not be executed.
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
/// The program was not found.
pub const EXIT_NOT_FOUND: i32 = 127;

/// Runs the program and returns procession's exit code. Errors are printed.
pub fn run(args: &RunArgs, env: &[EnvChange]) -> i32 {
    let started = Instant::now();
    let mut cmd = match command(args, env) {
        Ok(cmd) => cmd,
        Err(msg) => {
            eprintln!("procession: {msg}");
            return EXIT_FAILED;
        }
    };
    if args.pty {
        return crate::pty::run(args, cmd);
    }
    let plan = Plan::new(args);
    plan.apply(&mut cmd);
    let json = args.events.map(|_| Json::new());
    // Before the spawn, so that the program starts in the group.
    let group = if args.foreground {
        None
    } else {
        match Group::lead() {
            Ok(group) => Some(group),
            Err(e) => {
                eprintln!("procession: cannot make a process group of its own: {e}");
                return EXIT_FAILED;
            }
        }
    };
    // Before the spawn, so that nothing the program starts escapes. In
    // group mode, Group::lead has done it already.
    if group.is_none() && args.subreaper {
        if let Err(e) = group::become_subreaper() {
            eprintln!("procession: cannot become a child subreaper: {e}");
            return EXIT_FAILED;
        }
    }
    // Before the spawn, so that a signal sent as soon as the program runs is
    // forwarded rather than ending procession.
    let caught = match signals::catch() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("procession: cannot install the signal handlers: {e}");
            return EXIT_FAILED;
        }
    };
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("procession: {e}");
            let code = spawn_error_code(&e);
            if let Some(json) = &json {
                json.spawn_error(&e, code);
            }
            return code;
        }
    };
    if let Some(json) = &json {
        json.start(child.pid());
    }
    let stop = Stop {
        signal: args.stop_signal.unwrap_or(Signal::TERM),
        timeout: args.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT),
        command: args.stop_command.as_deref(),
        group,
    };
    let relays = if plan.any() {
        match Relays::start(&plan, &mut child, json.as_ref()) {
            Ok(relays) => Some(relays),
            Err(e) => {
                eprintln!("procession: cannot start the relay threads: {e}");
                let _ = stop.run(&mut child);
                return EXIT_FAILED;
            }
        }
    } else {
        None
    };
    // PID 1 (a container's entrypoint) and --subreaper reap what is
    // re-parented to procession even with --foreground.
    if group.is_some() || args.subreaper || group::is_pid1() {
        if let Err(e) = signals::reap_adopted_orphans(child.pid()) {
            eprintln!("procession: cannot start the orphan reaper thread: {e}");
            let _ = stop.run(&mut child);
            return EXIT_FAILED;
        }
    }
    if let Err(e) = signals::forward(caught, child.signaller(), group) {
        // Without a forwarder the caught signals would be swallowed: stop
        // the program rather than leave it running unsupervised.
        eprintln!("procession: cannot start the signal forwarding thread: {e}");
        let _ = stop.run(&mut child);
        return EXIT_FAILED;
    }
    let timeout = args.timeout.filter(|t| !t.is_zero());
    let waited = match timeout {
        Some(t) => child.wait_timeout(t),
        None => child.wait().map(Some),
    };
    let (status, timed_out) = match waited {
        Ok(Some(status)) => {
            // The program is gone; what it left in the group is not.
            if let Some(group) = group {
                group.stop(
                    stop.signal,
                    Instant::now() + stop.timeout,
                    Reached::default(),
                );
            }
            (status, false)
        }
        Ok(None) => match stop.run(&mut child) {
            Ok(status) => (status, true),
            Err(e) => {
                eprintln!("procession: {e}");
                return EXIT_FAILED;
            }
        },
        Err(e) => {
            eprintln!("procession: {e}");
            let _ = stop.run(&mut child);
            return EXIT_FAILED;
        }
    };
    // Nothing the program started (unless --foreground) and no stop command
    // is left by now.
    let wall = started.elapsed();
    let code = exit_code(&status, !args.success_exit_code.is_empty(), timed_out);
    if let Some(relays) = relays {
        relays.finish_into(|counts| {
            if let Some(json) = &json {
                json.exit(Exit::new(&status, timed_out, code, wall));
            }
            if args.summary {
                eprintln!(
                    "{}",
                    crate::summary::render(&status, timed_out, wall, &plan, counts)
                );
            }
        });
    } else if args.summary {
        let counts = crate::relay::Counts::default();
        eprintln!(
            "{}",
            crate::summary::render(&status, timed_out, wall, &plan, &counts)
        );
    }
    code
}

/// The stop sequence, which procession runs itself (not the library) so
/// that it reaches the whole group.
struct Stop<'a> {
    signal: Signal,
    timeout: Duration,
    command: Option<&'a OsStr>,
    /// procession's group, unless --foreground.
    group: Option<Group>,
}

impl Stop<'_> {
    /// Stops the program and, in group mode, every other member of the
    /// group: the stop signal and SIGCONT (or the stop command instead),
    /// then SIGKILL to what is left after the stop timeout. Returns the
    /// program's status once it, the rest of the group and the stop command
    /// are all gone.
    fn run(&self, child: &mut Child) -> Result<ExitStatus, procession::Error> {
        let deadline = Instant::now() + self.timeout;
        let pid = child.pid();
        let mut reached = Reached::default();
        // The stop command is the library's child: the orphan reaper must
        // not take its status. (Never cleared: procession exits after this.)
        group::HOLD_REAPING.store(self.command.is_some(), std::sync::atomic::Ordering::SeqCst);
        let command = self.command.and_then(|line| match stop_command(line, pid) {
            Ok(command) => Some(command),
            Err(e) => {
                eprintln!(
                    "procession: cannot run the stop command, sending the stop signal instead: {e}"
                );
                None
            }
        });
        if command.is_none() {
            for signal in group::stop_sequence(self.signal) {
                let _ = child.signal(signal);
            }
            if let Some(group) = self.group {
                group.signal(&group::stop_sequence(self.signal), Some(pid), &mut reached);
            }
        }
        let status = match child.wait_timeout(left(deadline))? {
            Some(status) => status,
            None => {
                let _ = child.kill();
                if let Some(group) = self.group {
                    group.kill(Some(pid));
                }
                child.wait()?
            }
        };
        if let Some(group) = self.group {
            group.stop(self.signal, deadline, reached);
        }
        if let Some(mut command) = command
            && command.wait_timeout(left(deadline))?.is_none()
        {
            // Its group, as it runs in one of its own.
            let _ = command.kill();
            command.wait()?;
        }
        Ok(status)
    }
}

/// Starts the stop command: `/bin/sh -c LINE` with CHILD_PID=<pid>, stdin
/// from /dev/null, in a process group of its own, all of which gets SIGKILL
/// when it is killed or once the command has exited.
fn stop_command(line: &OsStr, pid: u32) -> Result<Child, procession::Error> {
    Command::shell(line)
        .env("CHILD_PID", pid.to_string())
        .stdin(Stdio::null())
        .process_group(ProcessGroup::New)
        .stop_group(true)
        .stop_signal(Signal::KILL)
        .spawn()
}

/// The time left until `deadline`.
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The library command for `args`, or a usage message. With --pty, all but
/// the pty itself (see [`crate::pty::run`]).
fn command(args: &RunArgs, env: &[EnvChange]) -> Result<Command, String> {
    let mut cmd = Command::new(args.program());
    cmd.args(args.program_args());
    if args.pty {
        if args.stdin.is_some() {
            return Err(
                "--stdin cannot be used with --pty: the program's stdin is the terminal".into(),
            );
        }
        if args.stdout.is_some() {
            return Err(
                "--stdout cannot be used with --pty: the program's stdout is the terminal".into(),
            );
        }
        if args.foreground {
            return Err("--foreground cannot be used with --pty: the program leads a session and a process group of its own".into());
        }
        // The program leads a session, hence a group, of its own: the
        // library runs the timeout and the stop sequence for that group,
        // and stops what is left of it once the program has exited.
        cmd.process_group(ProcessGroup::New);
        cmd.stop_group(true);
        cmd.stop_signal(args.stop_signal.unwrap_or(Signal::TERM));
        cmd.stop_timeout(args.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT));
        if let Some(line) = &args.stop_command {
            cmd.stop_command(line);
        }
        if let Some(t) = args.timeout.filter(|t| !t.is_zero()) {
            cmd.timeout(t);
        }
    } else {
        // In procession's group; procession runs the timeout and the stop
        // sequence itself, for the whole group (see `Stop`).
        cmd.process_group(ProcessGroup::Inherit);
        cmd.stop_group(false);
    }
    if let Some(dir) = &args.cd {
        cmd.current_dir(dir);
    }
    if args.env_clear {
        cmd.env_clear();
    }
    for change in env {
        match change {
            EnvChange::Set(k, v) => cmd.env(k, v),
            EnvChange::Unset(k) => cmd.env_remove(k),
        };
    }
    if let Some(arg0) = &args.arg0 {
        cmd.arg0(arg0);
    }
    if let Some(input) = &args.stdin {
        cmd.stdin(match input {
            Input::Null => Stdio::null(),
            Input::Close => Stdio::closed(),
            Input::File(path) => Stdio::file(path),
        });
    }

    let out_file = |o: &Option<Output>| match o {
        Some(Output::File(p)) => Some(p.clone()),
        _ => None,
    };
    let (stdout_file, stderr_file) = (out_file(&args.stdout), out_file(&args.stderr));
    if stdout_file.is_none() && stderr_file.is_none() {
        if args.append {
            return Err("--append needs --stdout FILE or --stderr FILE".into());
        }
        if args.mode.is_some() {
            return Err("--mode needs --stdout FILE or --stderr FILE".into());
        }
    }
    let file = |path| {
        let stdio = if args.append {
            Stdio::append(path)
        } else {
            Stdio::file(path)
        };
        match args.mode {
            Some(mode) => stdio.mode(mode),
            None => stdio,
        }
    };
    if let Some(out) = &args.stdout {
        cmd.stdout(match out {
            Output::Null => Stdio::null(),
            Output::Other(Stream::Stderr) => Stdio::to_stderr(),
            Output::Other(Stream::Stdout) => return Err("--stdout cannot be stdout itself".into()),
            Output::File(path) => file(path.clone()),
        });
    }
    // With --pty, `--stderr stdout` means the terminal, where stderr is
    // already (see `crate::pty::run`).
    let stderr_to_pty = args.pty && args.stderr == Some(Output::Other(Stream::Stdout));
    if let Some(err) = args.stderr.as_ref().filter(|_| !stderr_to_pty) {
        cmd.stderr(match err {
            Output::Null => Stdio::null(),
            Output::Other(Stream::Stdout) => Stdio::to_stdout(),
            Output::Other(Stream::Stderr) => return Err("--stderr cannot be stderr itself".into()),
            // Two opens of one file would each have their own offset and
            // overwrite each other: share stdout's instead (2>&1).
            Output::File(path) if stdout_file.as_ref() == Some(path) => Stdio::to_stdout(),
            Output::File(path) => file(path.clone()),
        });
    }
    if args.stdout == Some(Output::Other(Stream::Stderr))
        && args.stderr == Some(Output::Other(Stream::Stdout))
    {
        return Err("--stdout stderr and --stderr stdout point at each other".into());
    }
    if !args.success_exit_code.is_empty() {
        cmd.success_exit_codes(args.success_exit_code.iter().copied());
    }
    if let Some(user) = &args.user {
        cmd.user(user.clone());
    }
    if let Some(group) = &args.group {
        cmd.primary_group(group.clone());
    }
    if let Some(groups) = &args.groups {
        cmd.supplementary_groups(groups.0.iter().cloned());
    }
    if let Some(nice) = args.nice {
        cmd.nice(nice);
    }
    for limit in &args.rlimit {
        let (soft, hard) = limit_values(limit)?;
        cmd.limit(limit.limit, soft, hard);
    }
    if args.no_new_privs {
        cmd.no_new_privs(true);
    }
    if let Some(mask) = args.umask {
        cmd.umask(mask);
    }
    if let Some(cgroup) = &args.cgroup {
        cmd.cgroup(match cgroup {
            CgroupArg::Auto => Cgroup::auto(),
            CgroupArg::Under(dir) => Cgroup::under(dir),
        });
    }
    cmd.outlive_owner(args.on_owner_death == OwnerDeath::Keep);
    Ok(cmd)
}

/// The soft and hard values of a `--rlimit`, the missing one taken from
/// procession's own limit (which the program would inherit), as prlimit
/// does.
fn limit_values(arg: &RlimitArg) -> Result<(u64, u64), String> {
    let own = || {
        group::own_limit(arg.resource)
            .map_err(|e| format!("cannot read procession's own {} limit: {e}", arg.name))
    };
    let (soft, hard) = match (arg.soft, arg.hard) {
        (Some(soft), Some(hard)) => (soft, hard),
        (Some(soft), None) => (soft, own()?.1),
        (None, Some(hard)) => (own()?.0.min(hard), hard),
        (None, None) => own()?,
    };
    if soft > hard {
        return Err(format!(
            "--rlimit {}: the soft limit {} is above the hard limit {}",
            arg.name,
            show_limit(soft),
            show_limit(hard)
        ));
    }
    Ok((soft, hard))
}

fn show_limit(v: u64) -> String {
    if v == Limit::UNLIMITED {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

/// 127 when the program does not exist, 126 when it cannot be executed, 125
/// for any other failure (a redirection, the working directory, …).
pub fn spawn_error_code(e: &Error) -> i32 {
    match (e.step(), e.kind()) {
        (Step::Resolve | Step::Exec, ErrorKind::NotFound) => EXIT_NOT_FOUND,
        (Step::Resolve | Step::Exec, ErrorKind::PermissionDenied) => EXIT_CANNOT_EXECUTE,
        _ => EXIT_FAILED,
    }
}

/// procession's exit code for the program's status: 124 when the timeout
/// fired, 128+N for signal N, else the exit code (mapped by
/// `--success-exit-code` when `custom_success`).
pub fn exit_code(status: &ExitStatus, custom_success: bool, timed_out: bool) -> i32 {
    if timed_out {
        return EXIT_TIMED_OUT;
    }
    match status.code() {
        None => status.shell_code(),
        Some(_) if custom_success && status.success() => 0,
        // Not a success: never report it as 0.
        Some(0) if custom_success => 1,
        Some(code) => code,
    }
}

//! `procession run`: build the command, spawn it, forward signals, wait, and
//! turn the outcome into procession's exit code.

use procession::{Command, Error, ErrorKind, ExitStatus, ProcessGroup, Stdio, Step};

use crate::args::{EnvChange, Input, Output, RunArgs, Stream};
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
    let cmd = match command(args, env) {
        Ok(cmd) => cmd,
        Err(msg) => {
            eprintln!("procession: {msg}");
            return EXIT_FAILED;
        }
    };
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
            return spawn_error_code(&e);
        }
    };
    if let Err(e) = signals::forward(caught, child.signaller(), args.kill_group) {
        // Without a forwarder the caught signals would be swallowed: stop
        // the program rather than leave it running unsupervised.
        eprintln!("procession: cannot start the signal forwarding thread: {e}");
        let _ = child.stop();
        return EXIT_FAILED;
    }
    let status = match child.wait() {
        Ok(status) => status,
        Err(e) => {
            eprintln!("procession: {e}");
            return EXIT_FAILED;
        }
    };
    // `wait` returned: the program, the rest of its group (--kill-group)
    // and the kill command, if one ran, are all gone.
    exit_code(&status, !args.success_exit_code.is_empty())
}

/// The library command for `args`, or a usage message.
fn command(args: &RunArgs, env: &[EnvChange]) -> Result<Command, String> {
    let mut cmd = Command::new(args.program());
    cmd.args(args.program_args());
    if let Some(t) = args.timeout.filter(|t| !t.is_zero()) {
        cmd.timeout(t);
    }
    if let Some(sig) = args.kill_signal {
        cmd.kill_signal(sig);
    }
    if let Some(d) = args.kill_after {
        cmd.kill_timeout(d);
    }
    if let Some(line) = &args.kill_command {
        cmd.kill_command(line);
    }
    cmd.kill_group(args.kill_group);
    if args.no_group {
        cmd.process_group(ProcessGroup::Inherit);
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
    if let Some(err) = &args.stderr {
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
    Ok(cmd)
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
pub fn exit_code(status: &ExitStatus, custom_success: bool) -> i32 {
    if status.timed_out() {
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

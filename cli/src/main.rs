//! `procession`: the command-line tool.
//!
//! `procession run [OPTIONS] -- PROGRAM [ARGS...]` runs a program under
//! supervision (timeout, stop sequence, process group, redirections, signal
//! forwarding) and exits with its status, with GNU `timeout(1)`'s process
//! group model (see `group`) and `timeout(1)`'s and `env(1)`'s
//! conventions: 124 timeout, 125 procession failed, 126 not executable,
//! 127 not found, 128+N killed by signal N. With `--pty` the program runs
//! on a pseudo-terminal of its own that procession relays (see `pty`). See
//! `procession run --help`. `run` also sets who the program runs as and
//! its limits, writes `--events json` (see `events`), prints a `--summary`,
//! and as PID 1 reaps adopted zombies (see `group::reap_adopted`);
//! `completions` and `man` are generated from the flag definitions.

#![deny(unsafe_code)]

mod args;
mod events;
mod generate;
mod group;
mod pty;
mod relay;
mod run;
mod signals;
mod summary;
#[allow(unsafe_code)]
mod sys;

use clap::{CommandFactory, FromArgMatches};

use args::{Cli, Cmd};

fn main() {
    // Run as `exec-port` (erlexec's port program) or `procession exec-port`.
    if let Some(code) = procession_cli::exec_port::dispatch() {
        std::process::exit(code);
    }
    let code = match parse() {
        Ok((Cmd::Run(run_args), env)) => run::run(&run_args, &env),
        Ok((Cmd::Completions { shell }, _)) => generate::completions(shell),
        Ok((Cmd::Man { out }, _)) => generate::man(out.as_deref()),
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr
            // with 125 (procession's own failure), not clap's usual 2.
            let _ = e.print();
            if e.use_stderr() { run::EXIT_FAILED } else { 0 }
        }
    };
    // Exit at once: the signal forwarding thread must not keep procession
    // alive. The program has been waited for (and, unless --foreground, the
    // rest of procession's process group stopped) by now.
    std::process::exit(code);
}

/// The parsed command line, with the `--env`/`--unset` changes in order.
fn parse() -> Result<(Cmd, Vec<args::EnvChange>), clap::Error> {
    let matches = Cli::command().try_get_matches()?;
    let cli = Cli::from_arg_matches(&matches)?;
    let env = match (&cli.command, matches.subcommand()) {
        (Cmd::Run(run_args), Some(("run", sub))) => args::env_changes(run_args, sub),
        _ => Vec::new(),
    };
    Ok((cli.command, env))
}

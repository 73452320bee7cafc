//! `procession completions SHELL` and `procession man`: generated from the
//! clap definitions of `args`, so they always list the options there are.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use clap::CommandFactory;

use crate::args::Cli;
use crate::run::EXIT_FAILED;

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> i32 {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "procession", &mut out);
    write_stdout(&out)
}

/// Prints procession(1), or writes it and a page per subcommand to `dir`.
pub fn man(dir: Option<&Path>) -> i32 {
    let cmd = Cli::command();
    match dir {
        None => {
            let mut out = Vec::new();
            if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
                eprintln!("procession: cannot render the manual page: {e}");
                return EXIT_FAILED;
            }
            write_stdout(&out)
        }
        Some(dir) => match write_pages(cmd, dir) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!(
                    "procession: cannot write the manual pages into {}: {e}",
                    dir.display()
                );
                EXIT_FAILED
            }
        },
    }
}

/// procession.1, then procession-SUB.1 for each subcommand.
fn write_pages(cmd: clap::Command, dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut cmd = cmd;
    cmd.build();
    let page = |name: String, cmd: clap::Command| -> io::Result<()> {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .title(name.clone())
            .render(&mut out)?;
        fs::write(dir.join(format!("{name}.1")), out)
    };
    // Not clap's `help` subcommand: `procession help run` is `run --help`.
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("procession-{}", sub.get_name());
        page(name, sub.clone())?;
    }
    page("procession".into(), cmd)
}

fn write_stdout(bytes: &[u8]) -> i32 {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("procession: cannot write to stdout: {e}");
            EXIT_FAILED
        }
    }
}

//! Spawning: plan, clone, and wrap the result in a [`Process`].

use std::sync::Arc;

use super::plan::{ParentEnds, Plan};
use super::process::{Containment, Policy, Process};
use crate::error::{Error, Step, Who};
use crate::sys::spawn::{self as sys_spawn, SpawnError};
use crate::{Command, Stdio};

/// A started child and the parent's ends of its pipes.
pub(crate) struct Spawned {
    pub process: Arc<Process>,
    pub ends: ParentEnds,
}

/// How the parent's pipe ends are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ends {
    /// Blocking, like `std`: a `read` or `write` on the handle is one system
    /// call. For [`Child`](crate::Child).
    Blocking,
    /// `O_NONBLOCK`, for a driver that multiplexes them (streams, async).
    NonBlocking,
}

/// Starts `cmd`'s child with `stdio` for fds 0, 1, 2. On success the child
/// has called `execve`; on a failure in the child, it has been reaped and
/// the error names the step.
pub(crate) fn spawn_with_ends(
    cmd: &Command,
    stdio: [&Stdio; 3],
    ends: Ends,
) -> Result<Spawned, Error> {
    let program = cmd.program.as_os_str();
    let mut plan =
        Plan::new(cmd, stdio, ends == Ends::NonBlocking).map_err(|e| e.with_who(&cmd.who()))?;
    let result = sys_spawn::spawn(&plan.child_plan());
    // The child has its copies (or is gone): close ours at once, so EOF on
    // the pipes depends only on the child.
    plan.child_fds.clear();
    let child = match result {
        Ok(c) => c,
        Err(SpawnError::Clone(e)) => {
            return Err(Error::os(program, Step::Spawn, e).with_who(&cmd.who()));
        }
        Err(SpawnError::Child { action, error }) => {
            let step = plan.step_of(action);
            let mut err = Error::os(program, step, error);
            if step == Step::Chdir {
                if let Some(dir) = &cmd.cwd {
                    err = err.with_detail(dir.display().to_string());
                }
            }
            if step == Step::User {
                if let Some(c) = &plan.credentials {
                    let mut ids = Vec::new();
                    if let Some(uid) = c.uid {
                        ids.push(format!("uid {uid}"));
                    }
                    if let Some(gid) = c.gid {
                        ids.push(format!("gid {gid}"));
                    }
                    if let Some(groups) = &c.groups {
                        ids.push(format!("groups {groups:?}"));
                    }
                    let mut detail = ids.join(", ");
                    if err.kind() == crate::ErrorKind::PermissionDenied {
                        detail.push_str(": changing user needs root (CAP_SETUID, CAP_SETGID)");
                    }
                    err = err.with_detail(detail);
                }
            }
            if step == Step::Exec && err.kind() == crate::ErrorKind::NotFound {
                // The file was there when we looked (or was named by a path):
                // ENOENT from execve then also means a missing interpreter
                // (`#!` line) or dynamic loader.
                err = err.with_detail(
                    "the program or its interpreter (#! line) or dynamic loader does not exist",
                );
            }
            return Err(err.with_who(&cmd.who()));
        }
    };
    let pgid = match plan.pgid {
        Some(0) => Some(child.pid),
        other => other,
    };
    let process = Arc::new(Process::new(
        child.pid,
        child.pidfd,
        Who::new(program, cmd.args.iter().map(|a| a.as_os_str())),
        pgid,
        Policy {
            stop_signal: cmd.stop_signal,
            stop_command: cmd.stop_command.clone(),
            stop_timeout: cmd.stop_timeout,
            stop_group: plan.stop_group,
            success_codes: cmd.success_codes.clone(),
        },
        cmd.timeout,
        Containment {
            watch: plan.watch.take(),
            cgroup: plan.cgroup.take(),
            terminal: plan.terminal.take(),
        },
    ));
    super::live::add(&process);
    if process.needs_watching() {
        if let Err(e) = super::reaper::try_adopt(&process) {
            // Its timeout or group stop could not be enforced: stop it now
            // (and reap it) rather than let it run unwatched, and say so.
            super::reaper::adopt(process.clone());
            return Err(Error::os(program, Step::Spawn, e)
                .with_detail(
                    "cannot start the background reaper that enforces its timeout or group stop",
                )
                .with_who(&cmd.who()));
        }
    }
    Ok(Spawned {
        process,
        ends: std::mem::take(&mut plan.parent),
    })
}

/// Starts a child nobody talks to (the stop command): only the process.
pub(crate) fn spawn(cmd: &Command) -> Result<Arc<Process>, Error> {
    let inherit = Stdio::inherit();
    let stdio = [
        cmd.stdin.as_ref().unwrap_or(&inherit),
        cmd.stdout.as_ref().unwrap_or(&inherit),
        cmd.stderr.as_ref().unwrap_or(&inherit),
    ];
    spawn_with_ends(cmd, stdio, Ends::Blocking).map(|s| s.process)
}

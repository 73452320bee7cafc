//! The spawn plan: everything the child needs, computed before the clone.
//!
//! [`Plan::new`] turns a [`Command`] into C strings, opened files, pipes and
//! a list of child-side [`Action`]s. The child then only has to follow the
//! list (see `sys::spawn`), which keeps the code between clone and exec free
//! of allocation, locks and panics.

use std::ffi::{CString, OsStr, OsString, c_char};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::cgroup::ChildCgroup;
use super::credentials::{self, Credentials};
use super::terminal::{self, EofOnClose, Terminal};
use super::watchdog::{self, Slot};
use crate::command::{Command, ProcessGroup};
use crate::error::{Error, Step};
use crate::limits::RunAs;
use crate::stdio::{Kind, Stdio};
use crate::sys::fd;
use crate::sys::pipe;
use crate::sys::spawn::{Action, ChildPlan};

/// The parent's ends of the pipes it created, in stdin, stdout, stderr order.
#[derive(Default)]
pub(crate) struct ParentEnds {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// With a pty on stdin: what closing the input types.
    pub stdin_eof: Option<EofOnClose>,
}

/// A command made ready to clone: it owns every buffer the child's plan
/// points into, so the pointers stay valid until it is dropped.
pub(crate) struct Plan {
    path: CString,
    _args: Vec<CString>,
    argv: Vec<*const c_char>,
    _env: Vec<CString>,
    envp: Vec<*const c_char>,
    _cwd: Option<CString>,
    /// The supplementary groups `SetGroups` points into.
    _groups: Vec<libc::gid_t>,
    /// The ids the child switches to (for errors).
    pub credentials: Option<Credentials>,
    actions: Vec<Action>,
    /// The public step of each action, for errors.
    steps: Vec<Step>,
    /// Descriptors the child takes over (its pipe ends, opened files); the
    /// parent closes them right after the clone.
    pub child_fds: Vec<OwnedFd>,
    pub parent: ParentEnds,
    /// The process group the child joins or creates (0: its own pid).
    pub pgid: Option<libc::pid_t>,
    /// Whether the stop sequence reaches the child's group (resolved).
    pub stop_group: bool,
    /// Whether the parent's pipe ends are made non-blocking.
    nonblocking: bool,
    /// The child's owner-death watchdog slot (it records itself there).
    pub watch: Option<Slot>,
    /// The child's own cgroup (it joins it).
    pub cgroup: Option<ChildCgroup>,
    /// With a pty: a copy of the master, kept by the process until it is
    /// reaped (closing the last one hangs the terminal up), for resizing
    /// and terminal modes.
    pub terminal: Option<Terminal>,
}

fn cstring(program: &OsStr, what: &str, s: impl Into<Vec<u8>>) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error::invalid(program, format!("{what} contains a NUL byte")))
}

impl Plan {
    /// Prepares `cmd`. Opens files and creates pipes, so errors name the
    /// stream that failed.
    pub(crate) fn new(cmd: &Command, stdio: [&Stdio; 3], nonblocking: bool) -> Result<Plan, Error> {
        let program = cmd.program.as_os_str();
        if program.is_empty() {
            return Err(Error::invalid(program, "the program name is empty"));
        }
        // Checked before the PATH search, which would report "not found".
        if program.as_bytes().contains(&0) {
            return Err(Error::invalid(
                program,
                "the program name contains a NUL byte",
            ));
        }
        if cmd.success_codes.is_empty() {
            return Err(cmd.invalid(
                "success_exit_codes is empty: no exit could succeed (give at least one code)",
            ));
        }
        // The stop command runs only at stop time, through a shell: refused
        // now, like every other NUL, rather than replaced by SIGTERM then.
        if cmd
            .stop_command
            .as_ref()
            .is_some_and(|c| c.as_bytes().contains(&0))
        {
            return Err(cmd.invalid("the stop command contains a NUL byte"));
        }
        let (group, stop_group) = cmd.resolved_group();
        if stop_group && group == ProcessGroup::Inherit {
            return Err(cmd.invalid(
                "stop_group(true) and process_group(ProcessGroup::Inherit) conflict: \
                 stopping the group would stop the caller's own group",
            ));
        }
        let [stdin, stdout, stderr] = stdio.map(|s| &s.0);
        if matches!(stdout, Kind::ToStderr) && matches!(stderr, Kind::ToStdout) {
            return Err(Error::invalid(
                program,
                "stdout and stderr each point at the other",
            ));
        }

        // argv
        let mut args = Vec::with_capacity(cmd.args.len() + 1);
        let arg0 = cmd.arg0.as_deref().unwrap_or(program);
        args.push(cstring(program, "argument 0", arg0.as_bytes())?);
        for a in &cmd.args {
            args.push(cstring(program, "an argument", a.as_bytes())?);
        }
        let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());

        // envp: the parent's own environment when the command changes
        // nothing (no copy), else a prepared one.
        let (env, envp, path_var) = if !cmd.env_clear && cmd.env.is_empty() {
            // PATH is only looked up for a bare program name.
            let path_var = if program.as_bytes().contains(&b'/') {
                None
            } else {
                std::env::var_os("PATH")
            };
            (Vec::new(), Vec::new(), path_var)
        } else {
            let vars = environment(cmd)?;
            let path_var = vars
                .iter()
                .find(|(k, _)| k.as_bytes() == b"PATH")
                .map(|(_, v)| v.clone());
            let mut env = Vec::with_capacity(vars.len());
            for (k, v) in vars {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                env.push(cstring(program, "an environment variable", kv)?);
            }
            let mut envp: Vec<*const c_char> = env.iter().map(|e| e.as_ptr()).collect();
            envp.push(std::ptr::null());
            (env, envp, path_var)
        };

        let cwd = match &cmd.cwd {
            Some(d) => Some(cstring(
                program,
                "the working directory",
                d.as_os_str().as_bytes(),
            )?),
            None => None,
        };
        let path = resolve(program, path_var.as_deref())?;
        let path = cstring(
            program,
            "the program path",
            path.into_os_string().into_vec(),
        )?;

        let mut plan = Plan {
            nonblocking,
            path,
            _args: args,
            argv,
            _env: env,
            envp,
            actions: Vec::with_capacity(10),
            steps: Vec::with_capacity(10),
            _cwd: None,
            _groups: Vec::new(),
            credentials: None,
            child_fds: Vec::new(),
            parent: ParentEnds::default(),
            pgid: None,
            stop_group: false,
            watch: None,
            cgroup: None,
            terminal: None,
        };

        plan.push(Action::ResetSignalDispositions, Step::Signals);
        plan.stop_group = stop_group;
        let pgid = match group {
            ProcessGroup::Auto | ProcessGroup::New => Some(0),
            ProcessGroup::Join(g) => Some(g as libc::pid_t),
            ProcessGroup::Inherit => None,
        };
        let terminal = match &cmd.pty {
            Some(pty) => {
                if group != ProcessGroup::New {
                    return Err(cmd.invalid(
                        "a pty child leads a session of its own: process_group(Inherit) \
                         and process_group(Join(..)) conflict with pty()",
                    ));
                }
                Some(open_terminal(cmd, pty)?)
            }
            None => None,
        };
        match (&terminal, pgid) {
            (Some(t), _) => {
                // setsid makes the group too (pgid = pid); then the pty
                // becomes the controlling terminal.
                plan.push(Action::NewSession, Step::ProcessGroup);
                plan.push(
                    Action::ControllingTerminal(t.slave.as_raw_fd()),
                    Step::Terminal,
                );
            }
            (None, Some(g)) => plan.push(Action::SetProcessGroup(g), Step::ProcessGroup),
            (None, None) => {}
        }
        plan.pgid = pgid;
        if let Some(cfg) = &cmd.cgroup {
            let cg = ChildCgroup::create(program, cfg)?;
            plan.push(Action::JoinCgroup(cg.procs_fd()), Step::Cgroup);
            plan.cgroup = Some(cg);
        }
        if !cmd.outlive_owner {
            // After setpgid: the child records the group it leads. A group
            // it joins belongs to someone else and is not recorded.
            if let Some((slot, ptr)) = watchdog::slot() {
                plan.watch = Some(slot);
                plan.push(
                    Action::RecordSelf {
                        slot: ptr,
                        group: pgid == Some(0),
                        owner: std::process::id() as libc::pid_t,
                    },
                    Step::Spawn,
                );
            }
        }
        if let Some(run_as) = cmd.run_as.as_deref() {
            plan.run_as(program, run_as)?;
        }
        // After the user change: the directory is entered as the new user.
        if let Some(c) = &cwd {
            plan.push(Action::Chdir(c.as_ptr()), Step::Chdir);
        }
        plan._cwd = cwd;

        // stdin first, then whichever of stdout/stderr is not a redirect into
        // the other, then the redirect (which copies an already installed fd).
        let on_pty = cmd
            .pty
            .as_ref()
            .map_or([false; 3], |p| [p.stdin, p.stdout, p.stderr]);
        let [stdin, stdout, stderr] = [(stdin, 0), (stdout, 1), (stderr, 2)]
            .map(|(k, i)| if on_pty[i] { &Kind::Inherit } else { k });
        plan.stdio(cmd, 0, stdin)?;
        if matches!(stdout, Kind::ToStderr) {
            plan.stdio(cmd, 2, stderr)?;
            plan.stdio(cmd, 1, stdout)?;
        } else {
            plan.stdio(cmd, 1, stdout)?;
            plan.stdio(cmd, 2, stderr)?;
        }
        if let Some(t) = terminal {
            plan.terminal_ends(cmd, t, on_pty)?;
        }

        plan.push(
            Action::CloseOthers {
                max_fd: fd::max_fd(),
            },
            Step::CloseFds,
        );
        plan.push(Action::UnblockSignals, Step::Signals);
        Ok(plan)
    }

    /// Limits, nice, umask and `no_new_privs` while the child still has the
    /// caller's rights (a raised hard limit or a negative nice needs them),
    /// then the groups and the user, the user last.
    fn run_as(&mut self, program: &OsStr, run_as: &RunAs) -> Result<(), Error> {
        credentials::check(program, run_as)?;
        for &(limit, soft, hard) in &run_as.limits {
            self.push(
                Action::SetLimit {
                    resource: limit.resource(),
                    soft,
                    hard,
                },
                Step::Limit,
            );
        }
        if let Some(n) = run_as.nice {
            self.push(Action::Nice(n), Step::Nice);
        }
        if let Some(m) = run_as.umask {
            // umask cannot fail: the step is never reported.
            self.push(Action::Umask(m as libc::mode_t), Step::Prepare);
        }
        if run_as.no_new_privs {
            self.push(Action::NoNewPrivs, Step::NoNewPrivs);
        }
        let creds = credentials::resolve(program, run_as)?;
        if let Some(groups) = &creds.groups {
            self._groups = groups.clone();
            self.push(
                Action::SetGroups {
                    list: self._groups.as_ptr(),
                    len: self._groups.len(),
                },
                Step::User,
            );
        }
        if let Some(gid) = creds.gid {
            self.push(Action::SetGid(gid), Step::User);
        }
        if let Some(uid) = creds.uid {
            self.push(Action::SetUid(uid), Step::User);
        }
        self.credentials = Some(creds);
        Ok(())
    }

    /// Installs the pty's slave on the chosen streams and hands the master
    /// to the parent: stdout (or stderr) reads it, stdin writes a copy.
    fn terminal_ends(
        &mut self,
        cmd: &Command,
        t: OpenTerminal,
        on: [bool; 3],
    ) -> Result<(), Error> {
        let program = cmd.program.as_os_str();
        let os = |e| Error::os(program, Step::Terminal, e);
        for (target, _) in on.iter().enumerate().filter(|(_, on)| **on) {
            self.push(
                Action::Dup2 {
                    from: t.slave.as_raw_fd(),
                    to: target as RawFd,
                },
                Step::Stdio,
            );
        }
        if self.nonblocking {
            fd::set_nonblocking(t.master.as_fd()).map_err(os)?;
        }
        if on[0] {
            let input = fd::dup_at_least(t.master.as_fd(), 3).map_err(os)?;
            let eof_end = fd::dup_at_least(t.master.as_fd(), 3).map_err(os)?;
            self.parent.stdin = Some(input);
            self.parent.stdin_eof = EofOnClose::new(eof_end, t.veof);
        }
        let control = fd::dup_at_least(t.master.as_fd(), 3).map_err(os)?;
        self.terminal = Some(Terminal::new(control, on));
        if on[1] {
            self.parent.stdout = Some(t.master);
        } else if on[2] {
            self.parent.stderr = Some(t.master);
        }
        self.child_fds.push(t.slave);
        Ok(())
    }

    fn push(&mut self, action: Action, step: Step) {
        self.actions.push(action);
        self.steps.push(step);
    }

    /// Prepares child descriptor `target` (0, 1 or 2) from `kind`.
    fn stdio(&mut self, cmd: &Command, target: RawFd, kind: &Kind) -> Result<(), Error> {
        let program = cmd.program.as_os_str();
        let open_step = match target {
            0 => Step::OpenStdin,
            1 => Step::OpenStdout,
            _ => Step::OpenStderr,
        };
        let child_end: OwnedFd = match kind {
            Kind::Inherit => return Ok(()),
            Kind::Callback(_) => {
                return Err(Error::invalid(
                    program,
                    "Stdio::callback and Stdio::channel are delivered by a Supervisor: \
                     use Supervisor::spawn, or read the pipe (Stdio::piped)",
                ));
            }
            Kind::Closed => {
                self.push(Action::Close(target), Step::Stdio);
                return Ok(());
            }
            Kind::ToStdout | Kind::ToStderr => {
                let from = if matches!(kind, Kind::ToStdout) { 1 } else { 2 };
                if from == target {
                    return Err(Error::invalid(
                        program,
                        "a stream cannot be redirected into itself",
                    ));
                }
                self.push(Action::Dup2 { from, to: target }, Step::Stdio);
                return Ok(());
            }
            Kind::Null => {
                let flags = if target == 0 {
                    libc::O_RDONLY
                } else {
                    libc::O_WRONLY
                };
                fd::open(c"/dev/null", flags, 0).map_err(|e| Error::os(program, open_step, e))?
            }
            Kind::File { path, append, mode } => {
                let flags = if target == 0 {
                    libc::O_RDONLY
                } else if *append {
                    libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND
                } else {
                    libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC
                };
                let c = cstring(program, "a file name", path.as_os_str().as_bytes())?;
                fd::open(&c, flags, *mode as libc::mode_t).map_err(|e| {
                    Error::os(program, open_step, e).with_detail(path.display().to_string())
                })?
            }
            Kind::Fd(f) => {
                fd::dup_at_least(f.as_fd(), 3).map_err(|e| Error::os(program, open_step, e))?
            }
            Kind::Piped => {
                let (r, w) = pipe::pipe().map_err(|e| Error::os(program, Step::Pipe, e))?;
                let (parent, child) = if target == 0 { (w, r) } else { (r, w) };
                if let Some(cap) = cmd.pipe_capacity {
                    // Best effort: a refusal keeps the default capacity.
                    let _ = pipe::set_pipe_size(parent.as_fd(), cap);
                }
                if self.nonblocking {
                    fd::set_nonblocking(parent.as_fd())
                        .map_err(|e| Error::os(program, Step::Pipe, e))?;
                }
                match target {
                    0 => self.parent.stdin = Some(parent),
                    1 => self.parent.stdout = Some(parent),
                    _ => self.parent.stderr = Some(parent),
                }
                child
            }
        };
        // The child's dup2 sources must not be 0..=2, or an earlier dup2
        // could overwrite one before it is used.
        let child_end = if child_end.as_raw_fd() < 3 {
            fd::dup_at_least(child_end.as_fd(), 3).map_err(|e| Error::os(program, Step::Pipe, e))?
        } else {
            child_end
        };
        self.push(
            Action::Dup2 {
                from: child_end.as_raw_fd(),
                to: target,
            },
            Step::Stdio,
        );
        self.child_fds.push(child_end);
        Ok(())
    }

    /// The plan in the form the spawn path runs.
    pub(crate) fn child_plan(&self) -> ChildPlan<'_> {
        ChildPlan {
            path: &self.path,
            argv: &self.argv,
            envp: if self.envp.is_empty() {
                crate::sys::spawn::inherited_environ()
            } else {
                self.envp.as_ptr()
            },
            actions: &self.actions,
        }
    }

    /// The public step for action `index` (`actions.len()` is `execve`).
    pub(crate) fn step_of(&self, index: usize) -> Step {
        self.steps.get(index).copied().unwrap_or(Step::Exec)
    }
}

/// A pty opened and configured for a child, before the spawn.
struct OpenTerminal {
    master: OwnedFd,
    slave: OwnedFd,
    /// The VEOF character (0: disabled).
    veof: u8,
}

/// Opens the pty and configures it (modes, echo, size) before the child
/// exists, so nothing it reads or writes races the settings.
fn open_terminal(cmd: &Command, pty: &crate::pty::Pty) -> Result<OpenTerminal, Error> {
    use crate::sys::pty as sys_pty;
    let program = cmd.program.as_os_str();
    terminal::check(&pty.modes).map_err(|why| cmd.invalid(why))?;
    let os = |e| Error::os(program, Step::Terminal, e);
    let (master, slave) = sys_pty::open().map_err(os)?;
    let mut t = sys_pty::get_attr(slave.as_fd()).map_err(os)?;
    if !pty.echo {
        terminal::echo_off(&mut t);
    }
    terminal::apply(&mut t, &pty.modes).map_err(|why| cmd.invalid(why))?;
    sys_pty::set_attr(slave.as_fd(), &t).map_err(os)?;
    sys_pty::set_window_size(master.as_fd(), pty.rows, pty.cols).map_err(os)?;
    // The slave is dup'ed onto 0..=2 in the child: keep it above them.
    let slave = if slave.as_raw_fd() < 3 {
        fd::dup_at_least(slave.as_fd(), 3).map_err(os)?
    } else {
        slave
    };
    Ok(OpenTerminal {
        master,
        slave,
        veof: t.c_cc[libc::VEOF],
    })
}

/// The child's environment: ours (unless cleared) with the command's changes
/// applied in order; new names keep the order in which they were set.
fn environment(cmd: &Command) -> Result<Vec<(OsString, OsString)>, Error> {
    let program = cmd.program.as_os_str();
    let mut vars: Vec<(OsString, OsString)> = if cmd.env_clear {
        Vec::new()
    } else {
        std::env::vars_os().collect()
    };
    for (k, v) in &cmd.env {
        if k.is_empty() || k.as_bytes().contains(&b'=') {
            return Err(Error::invalid(
                program,
                format!("invalid environment variable name {:?}", k),
            ));
        }
        let pos = vars.iter().position(|(name, _)| name == k);
        match (pos, v) {
            (Some(i), Some(v)) => vars[i].1 = v.clone(),
            (Some(i), None) => {
                vars.remove(i);
            }
            (None, Some(v)) => vars.push((k.clone(), v.clone())),
            (None, None) => {}
        }
    }
    Ok(vars)
}

/// Finds the file to execute, as `execvp` would but in the parent: a name
/// with a `/` is used as is (relative to the child's working directory);
/// otherwise the first executable regular file named so in `PATH`.
pub(crate) fn resolve(program: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, Error> {
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let default = OsStr::new("/usr/local/bin:/usr/bin:/bin");
    let search = path_var.unwrap_or(default);
    let mut denied = None;
    for dir in search.as_bytes().split(|&b| b == b':') {
        // An empty entry means the current directory.
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(program);
        match std::fs::metadata(&candidate) {
            Ok(m) if m.is_file() => {
                use std::os::unix::fs::PermissionsExt;
                if m.permissions().mode() & 0o111 != 0 {
                    return Ok(candidate);
                }
                denied.get_or_insert(candidate);
            }
            _ => {}
        }
    }
    let errno = if denied.is_some() {
        libc::EACCES
    } else {
        libc::ENOENT
    };
    Err(Error::new(
        program,
        Step::Resolve,
        if denied.is_some() {
            crate::ErrorKind::PermissionDenied
        } else {
            crate::ErrorKind::NotFound
        },
        Some(match denied {
            Some(p) => format!("{} is not executable", p.display()),
            None => "not found in PATH".to_string(),
        }),
        Some(std::io::Error::from_raw_os_error(errno)),
    ))
}

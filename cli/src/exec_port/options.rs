//! Requests and erlexec's run options, from terms to procession's
//! [`Command`]. Nothing here starts a process: the fuzz target runs all of
//! it on arbitrary bytes.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::Duration;

use eetf::Term;
use procession::{Command, ProcessGroup, Pty, Signal, Stdio, TerminalMode};

use super::term::{
    as_atom, as_bytes, as_int, as_list, atom, error, int, list, show, string, tuple,
};

/// The command of a `run` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// A string: run as `$SHELL -c Cmd`.
    Shell(Vec<u8>),
    /// A list: `execve(argv[0], argv)`.
    Argv(Vec<Vec<u8>>),
}

/// What `{stdin, OsPid, Data}` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Bytes to write.
    Data(Vec<u8>),
    /// `eof`: close stdin once the queued data is written.
    Eof,
}

/// One decoded instruction.
#[derive(Debug, Clone)]
pub enum Instr {
    /// `{run, Cmd, Opts}`.
    Run(Cmd, Vec<Term>),
    /// `{manage, OsPid, Opts}`.
    Manage(i64, Vec<Term>),
    /// `{list}`.
    List,
    /// `{stop, OsPid}`.
    Stop(i64),
    /// `{kill, OsPid, Sig}` (a number, or an atom such as `sigterm`).
    Kill(i64, i32),
    /// `{stdin, OsPid, Bin | eof}`.
    Stdin(i64, Input),
    /// `{winsz, OsPid, Rows, Cols}`.
    Winsz(i64, u16, u16),
    /// `{pty_opts, OsPid, Opts}`.
    PtyOpts(i64, Vec<(TerminalMode, u32)>),
    /// `{debug, Level}`.
    Debug(i64),
    /// `{shutdown}`.
    Shutdown,
    /// `{ack, OsPid, Bytes}` (our extension: demand-driven output).
    Ack(i64, u64),
}

/// A request: the transaction id to echo and the instruction, or the error
/// reason to answer with.
#[derive(Debug, Clone)]
pub struct Request {
    /// The id the reply echoes (0: no reply wanted).
    pub trans: i64,
    /// The instruction, or why it was refused.
    pub instr: Result<Instr, Term>,
}

/// Decodes `{TransId, Instruction}`. A term of another shape is answered
/// with TransId 0 (the id cannot be known).
pub fn request(t: &Term) -> Request {
    let bad = |reason: Term| Request {
        trans: 0,
        instr: Err(reason),
    };
    let Term::Tuple(top) = t else {
        return bad(tuple(vec![atom("badarg"), string(&show(t))]));
    };
    let [trans, instr] = &top.elements[..] else {
        return bad(tuple(vec![atom("badarg"), string(&show(t))]));
    };
    let Some(trans) = as_int(trans) else {
        return bad(tuple(vec![atom("badarg"), string(&show(t))]));
    };
    Request {
        trans,
        instr: instruction(instr),
    }
}

fn instruction(t: &Term) -> Result<Instr, Term> {
    let badarg = || tuple(vec![atom("badarg"), string(&show(t))]);
    let Term::Tuple(tup) = t else {
        return Err(badarg());
    };
    let Some((head, args)) = tup.elements.split_first() else {
        return Err(badarg());
    };
    let Some(name) = as_atom(head) else {
        return Err(badarg());
    };
    let pid = |t: &Term| as_int(t).filter(|&p| p > 0 && p <= i64::from(i32::MAX));
    Ok(match (name, args) {
        ("run", [cmd, opts]) => {
            let cmd = command(cmd)?;
            let opts = as_list(opts).ok_or_else(badarg)?;
            Instr::Run(cmd, opts)
        }
        ("manage", [p, opts]) => {
            let p = pid(p).ok_or_else(|| atom("badarg"))?;
            Instr::Manage(p, as_list(opts).ok_or_else(badarg)?)
        }
        ("list", []) => Instr::List,
        ("stop", [p]) => Instr::Stop(pid(p).ok_or_else(badarg)?),
        ("kill", [p, sig]) => {
            let p = pid(p).ok_or_else(badarg)?;
            Instr::Kill(p, signal(sig).ok_or_else(badarg)?)
        }
        ("stdin", [p, data]) => {
            let p = pid(p).ok_or_else(badarg)?;
            let input = match data {
                Term::Atom(a) if a.name == "eof" => Input::Eof,
                other => Input::Data(as_bytes(other).ok_or_else(badarg)?),
            };
            Instr::Stdin(p, input)
        }
        ("winsz", [p, rows, cols]) => {
            let p = pid(p).ok_or_else(badarg)?;
            let dim = |t: &Term| as_int(t).and_then(|v| u16::try_from(v).ok());
            Instr::Winsz(
                p,
                dim(rows).ok_or_else(badarg)?,
                dim(cols).ok_or_else(badarg)?,
            )
        }
        ("pty_opts", [p, opts]) => {
            let p = pid(p).ok_or_else(badarg)?;
            let opts = as_list(opts).ok_or_else(badarg)?;
            Instr::PtyOpts(p, pty_modes(&opts)?)
        }
        ("debug", [level]) => Instr::Debug(
            as_int(level)
                .filter(|l| (0..=10).contains(l))
                .ok_or_else(badarg)?,
        ),
        ("shutdown", []) => Instr::Shutdown,
        ("ack", [p, n]) => {
            let p = pid(p).ok_or_else(badarg)?;
            let n = as_int(n)
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(badarg)?;
            Instr::Ack(p, n)
        }
        (
            "run" | "manage" | "list" | "stop" | "kill" | "stdin" | "winsz" | "pty_opts" | "debug"
            | "shutdown" | "ack",
            _,
        ) => return Err(badarg()),
        (other, _) => return Err(tuple(vec![atom("unknown_command"), atom(other)])),
    })
}

fn command(t: &Term) -> Result<Cmd, Term> {
    let empty = || string("empty command provided");
    // A string (binary, byte string, or a list of character codes)...
    if let Some(bytes) = as_bytes(t) {
        if let Term::List(l) = t {
            // ...unless it is a list of strings: the argv form.
            if l.elements.iter().any(|e| !matches!(e, Term::FixInteger(_))) {
                return argv(&l.elements);
            }
        }
        if bytes.is_empty() {
            return Err(empty());
        }
        return Ok(Cmd::Shell(bytes));
    }
    match t {
        Term::List(l) => argv(&l.elements),
        _ => Err(tuple(vec![atom("badarg"), string(&show(t))])),
    }
}

fn argv(elements: &[Term]) -> Result<Cmd, Term> {
    let argv = elements
        .iter()
        .map(|e| as_bytes(e).ok_or_else(|| tuple(vec![atom("badarg"), string(&show(e))])))
        .collect::<Result<Vec<_>, _>>()?;
    if argv.first().is_none_or(|a| a.is_empty()) {
        return Err(string("empty command provided"));
    }
    Ok(Cmd::Argv(argv))
}

/// A signal number or name (`sigterm`, `term`, `'SIGTERM'`).
fn signal(t: &Term) -> Option<i32> {
    if let Some(n) = as_int(t) {
        return i32::try_from(n).ok().filter(|n| (0..=64).contains(n));
    }
    let name = as_atom(t)?;
    name.parse::<Signal>().ok().map(Signal::as_raw)
}

/// `{Mode, Value}` pairs of `pty` and `pty_opts`. Every bad one is named in
/// `{invalid_pty_value, [Bad]}`.
pub fn pty_modes(opts: &[Term]) -> Result<Vec<(TerminalMode, u32)>, Term> {
    let mut modes = Vec::new();
    let mut bad = Vec::new();
    for opt in opts {
        let parsed = match opt {
            Term::Tuple(t) if t.elements.len() == 2 => {
                let mode = as_atom(&t.elements[0]).and_then(|n| n.parse::<TerminalMode>().ok());
                let value = match &t.elements[1] {
                    Term::Atom(a) if a.name == "true" => Some(1),
                    Term::Atom(a) if a.name == "false" => Some(0),
                    v => as_int(v).and_then(|v| u32::try_from(v).ok()),
                };
                mode.zip(value).filter(|&(m, v)| valid_mode(m, v))
            }
            _ => None,
        };
        match parsed {
            Some(m) => modes.push(m),
            None => bad.push(opt.clone()),
        }
    }
    if bad.is_empty() {
        Ok(modes)
    } else {
        Err(tuple(vec![atom("invalid_pty_value"), list(bad)]))
    }
}

/// Characters (opcodes 1..=29) are 0..=255, flags (30..=127) 0 or 1;
/// speeds are any number.
fn valid_mode(mode: TerminalMode, value: u32) -> bool {
    match mode.opcode() {
        1..=29 => value <= 255,
        30..=127 => value <= 1,
        _ => true,
    }
}

/// Settings from the port's command line that every `run` starts from.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    /// `$SHELL` (checked non-empty at startup).
    pub shell: OsString,
    /// `-user U`: the user children run as unless a run says otherwise.
    pub user: Option<String>,
    /// `-demand N`: every run is demand-driven with this window.
    pub demand: Option<u64>,
}

/// Where a child's stream goes, as far as the port is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Relay {
    /// Not relayed (null, a file, closed, merged into the other stream).
    #[default]
    No,
    /// Relayed to the VM as `{stdout|stderr, OsPid, Bin}` messages.
    Yes,
}

/// A `run` request made ready to spawn.
#[derive(Debug)]
pub struct RunSpec {
    /// What to start.
    pub command: Command,
    /// `stdin`: the VM writes to it.
    pub stdin: bool,
    /// Whether stdout and stderr are relayed.
    pub stdout: Relay,
    /// See `stdout`.
    pub stderr: Relay,
    /// The child runs on a pty (output and input go through its master).
    pub pty: bool,
    /// `{success_exit_code, N}`: a raw status 0 is reported as N.
    pub success_code: Option<i64>,
    /// `{demand, N}`: at most N bytes of output unacknowledged.
    pub demand: Option<u64>,
    /// `{debug, N}`.
    pub debug: i64,
}

/// The stop settings of a `manage` request.
#[derive(Debug)]
pub struct ManageSpec {
    /// Only the stop command, stop timeout (and stop signal) are used.
    pub stop: Command,
    /// `{success_exit_code, N}`.
    pub success_code: Option<i64>,
}

/// A parsed stdio option before it becomes a [`Stdio`].
#[derive(Debug, Clone)]
enum Dest {
    Relay,
    Null,
    Close,
    Other,
    File(Vec<u8>, bool, Option<u32>),
}

#[derive(Default)]
struct Parsed {
    cd: Option<Vec<u8>>,
    env: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    env_clear: bool,
    kill: Option<Vec<u8>>,
    kill_timeout: Option<u64>,
    kill_group: bool,
    group: Option<i64>,
    user: Option<Vec<u8>>,
    nice: Option<i64>,
    success: Option<i64>,
    stdin: Option<Dest>,
    stdout: Option<Dest>,
    stderr: Option<Dest>,
    pty: Option<Vec<(TerminalMode, u32)>>,
    pty_echo: bool,
    winsz: Option<(u16, u16)>,
    executable: Option<Vec<u8>>,
    debug: Option<i64>,
    demand: Option<u64>,
}

fn invalid(opt: &Term) -> Term {
    tuple(vec![atom("invalid_option"), opt.clone()])
}

fn parse(opts: &[Term]) -> Result<Parsed, Term> {
    let mut p = Parsed::default();
    let mut seen: Vec<&str> = Vec::new();
    for opt in opts {
        let (name, args): (&str, &[Term]) = match opt {
            Term::Atom(a) => (&a.name, &[]),
            Term::Tuple(t) => match t.elements.split_first() {
                Some((Term::Atom(a), rest)) => (&a.name, rest),
                _ => return Err(invalid(opt)),
            },
            _ => return Err(invalid(opt)),
        };
        let bad = || invalid(opt);
        let str_arg = |i: usize| args.get(i).and_then(as_bytes).ok_or_else(bad);
        let int_arg = |i: usize| args.get(i).and_then(as_int).ok_or_else(bad);
        // The flags of erlexec's Erlang side, when they reach the port.
        if matches!(name, "monitor" | "link" | "sync" | "capabilities") {
            continue;
        }
        if seen.contains(&name) {
            return Err(string(&format!("duplicate {name} option specified")));
        }
        match (name, args.len()) {
            ("cd", 1) => p.cd = Some(str_arg(0)?),
            ("env", 1) => {
                for e in as_list(&args[0]).ok_or_else(bad)? {
                    match &e {
                        Term::Atom(a) if a.name == "clear" => {
                            p.env_clear = true;
                            p.env.clear();
                        }
                        Term::Tuple(kv) if kv.elements.len() == 2 => {
                            let k = as_bytes(&kv.elements[0]).ok_or_else(bad)?;
                            let v = match &kv.elements[1] {
                                Term::Atom(a) if a.name == "false" => None,
                                v => Some(as_bytes(v).ok_or_else(bad)?),
                            };
                            p.env.push((k, v));
                        }
                        other => {
                            let s = as_bytes(other).ok_or_else(bad)?;
                            let eq = s.iter().position(|&b| b == b'=').ok_or_else(bad)?;
                            p.env.push((s[..eq].to_vec(), Some(s[eq + 1..].to_vec())));
                        }
                    }
                }
                if p.env.iter().any(|(k, _)| k.is_empty() || k.contains(&b'=')) {
                    return Err(bad());
                }
            }
            ("kill", 1) => p.kill = Some(str_arg(0)?),
            ("kill_timeout", 1) => {
                p.kill_timeout = Some(u64::try_from(int_arg(0)?).map_err(|_| bad())?);
            }
            ("kill_group", 0) => p.kill_group = true,
            ("group", 1) => {
                let g = int_arg(0).map_err(|_| {
                    string("{group, Name}: a group name is not a process group id; give a number")
                })?;
                if !(0..=i64::from(i32::MAX)).contains(&g) {
                    return Err(bad());
                }
                p.group = Some(g);
            }
            ("user", 1) => p.user = Some(str_arg(0)?),
            ("nice", 1) => {
                let n = int_arg(0)?;
                if !(-20..=20).contains(&n) {
                    return Err(bad());
                }
                p.nice = Some(n);
            }
            ("success_exit_code", 1) => {
                let n = int_arg(0)?;
                if !(0..=255).contains(&n) {
                    return Err(bad());
                }
                p.success = Some(n);
            }
            ("stdin" | "stdout" | "stderr", _) => {
                let dest = dest(name, args).ok_or_else(bad)?;
                match name {
                    "stdin" => p.stdin = Some(dest),
                    "stdout" => p.stdout = Some(dest),
                    _ => p.stderr = Some(dest),
                }
            }
            ("pty", 0) => p.pty = Some(Vec::new()),
            ("pty", 1) => p.pty = Some(pty_modes(&as_list(&args[0]).ok_or_else(bad)?)?),
            ("pty_echo", 0) => p.pty_echo = true,
            ("winsz", 1) => {
                let Term::Tuple(rc) = &args[0] else {
                    return Err(bad());
                };
                let dim = |t: &Term| as_int(t).and_then(|v| u16::try_from(v).ok());
                match &rc.elements[..] {
                    [r, c] => p.winsz = Some((dim(r).ok_or_else(bad)?, dim(c).ok_or_else(bad)?)),
                    _ => return Err(bad()),
                }
            }
            ("executable", 1) => p.executable = Some(str_arg(0)?),
            ("debug", 0) => p.debug = Some(1),
            ("debug", 1) => {
                let n = int_arg(0)?;
                if !(0..=10).contains(&n) {
                    return Err(bad());
                }
                p.debug = Some(n);
            }
            ("demand", 1) => {
                let n = int_arg(0)?;
                if n < 1 {
                    return Err(bad());
                }
                p.demand = Some(n as u64);
            }
            _ => return Err(bad()),
        }
        seen.push(name);
    }
    // A stream merged into itself, or both into each other.
    if matches!(p.stdout, Some(Dest::Other)) && matches!(p.stderr, Some(Dest::Other)) {
        return Err(string("circular reference of stdout and stderr"));
    }
    Ok(p)
}

/// `stdin`, `{stdin, null|close|File}`, `stdout`, `{stdout, Dev}`,
/// `{stdout, File, [append | {mode, M}]}` and the same for stderr.
fn dest(name: &str, args: &[Term]) -> Option<Dest> {
    let other = match name {
        "stdout" => "stderr",
        "stderr" => "stdout",
        _ => "",
    };
    match args {
        [] => Some(Dest::Relay),
        [Term::Atom(a)] => match a.name.as_str() {
            "null" => Some(Dest::Null),
            "close" => Some(Dest::Close),
            // `{stdout, print}` etc. arrive as the bare atom; accept them too.
            "print" => Some(Dest::Relay),
            n if !other.is_empty() && n == other => Some(Dest::Other),
            _ => None,
        },
        [file] => {
            let f = as_bytes(file).filter(|f| !f.is_empty())?;
            Some(Dest::File(f, false, None))
        }
        [file, opts] if name != "stdin" => {
            let f = as_bytes(file).filter(|f| !f.is_empty())?;
            let mut append = false;
            let mut mode = None;
            for o in as_list(opts)? {
                match &o {
                    Term::Atom(a) if a.name == "append" => append = true,
                    Term::Tuple(t)
                        if t.elements.len() == 2 && as_atom(&t.elements[0]) == Some("mode") =>
                    {
                        mode = Some(
                            as_int(&t.elements[1])
                                .and_then(|m| u32::try_from(m).ok())
                                .filter(|&m| m <= 0o7777)?,
                        );
                    }
                    _ => return None,
                }
            }
            Some(Dest::File(f, append, mode))
        }
        _ => None,
    }
}

/// A kill command with its output on /dev/null, as erlexec runs it: it
/// would otherwise inherit the port's stdout, the VM's pipe, and corrupt
/// the stream of frames.
fn kill_command(line: &[u8]) -> OsString {
    let mut s = b"exec >/dev/null 2>&1\n".to_vec();
    s.extend_from_slice(line);
    OsString::from_vec(s)
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

fn stdio(d: &Dest, stream: &str) -> Stdio {
    match d {
        Dest::Relay => Stdio::piped(),
        Dest::Null => Stdio::null(),
        Dest::Close => Stdio::closed(),
        Dest::Other if stream == "stdout" => Stdio::to_stderr(),
        Dest::Other => Stdio::to_stdout(),
        Dest::File(f, append, mode) => {
            let s = if *append {
                Stdio::append(os(f))
            } else {
                Stdio::file(os(f))
            };
            s.mode(mode.unwrap_or(0o644))
        }
    }
}

/// Turns a `run` request into a [`RunSpec`].
///
/// # Errors
///
/// The reason to answer `{error, Reason}` with.
pub fn run_spec(cmd: &Cmd, opts: &[Term], defaults: &Defaults) -> Result<RunSpec, Term> {
    let p = parse(opts)?;
    let shell = defaults.shell.as_os_str();
    let mut command = match cmd {
        Cmd::Shell(line) => {
            let mut c = Command::new(p.executable.as_deref().map_or(shell, os));
            c.arg0(shell).arg("-c").arg(os(line));
            c
        }
        Cmd::Argv(argv) => {
            let mut c = Command::new(os(p.executable.as_deref().unwrap_or(&argv[0])));
            c.arg0(os(&argv[0])).args(argv[1..].iter().map(|a| os(a)));
            c
        }
    };
    if let Some(cd) = &p.cd {
        command.current_dir(os(cd));
    }
    if p.env_clear {
        command.env_clear();
    }
    for (k, v) in &p.env {
        match v {
            Some(v) => command.env(os(k), os(v)),
            None => command.env_remove(os(k)),
        };
    }
    if let Some(kill) = &p.kill {
        command.stop_command(kill_command(kill));
    }
    if let Some(t) = p.kill_timeout {
        command.stop_timeout(Duration::from_secs(t));
    }
    let pty = p.pty.is_some();
    match (p.group, pty) {
        (Some(g), true) if g != 0 => {
            return Err(string(
                "a pty's child leads its own session and group: {group, G} needs G = 0 with pty",
            ));
        }
        (Some(g), false) if g > 0 => {
            command.process_group(ProcessGroup::Join(g as u32));
            command.stop_group(p.kill_group);
        }
        (_, false) => {
            // Every child leads a group of its own, and its stop sequence
            // (and the end of its leader) reaches the whole group.
            command.process_group(ProcessGroup::New);
            command.stop_group(true);
        }
        (_, true) => {}
    }
    match (&p.user, &defaults.user) {
        (Some(u), _) => {
            command.user(String::from_utf8_lossy(u).into_owned());
        }
        (None, Some(u)) => {
            command.user(u.clone());
        }
        _ => {}
    }
    if let Some(n) = p.nice {
        command.nice(n as i32);
    }
    let null = Dest::Null;
    let (din, dout, derr) = (
        p.stdin.as_ref().unwrap_or(&null),
        p.stdout.as_ref().unwrap_or(&null),
        p.stderr.as_ref().unwrap_or(&null),
    );
    if matches!(din, Dest::Other) {
        return Err(invalid(&atom("stdin")));
    }
    let relay = |d: &Dest| matches!(d, Dest::Relay);
    command.stdin(stdio(din, "stdin"));
    command.stdout(stdio(dout, "stdout"));
    command.stderr(stdio(derr, "stderr"));
    if let Some(modes) = &p.pty {
        let mut t = Pty::new()
            .echo(p.pty_echo)
            .modes(modes.iter().copied())
            .stdin(relay(din))
            .stdout(relay(dout))
            .stderr(relay(derr));
        if let Some((r, c)) = p.winsz {
            t = t.size(r, c);
        }
        command.pty(t);
    }
    let demand = p.demand.or(defaults.demand);
    Ok(RunSpec {
        command,
        stdin: relay(din),
        stdout: if relay(dout) { Relay::Yes } else { Relay::No },
        stderr: if relay(derr) { Relay::Yes } else { Relay::No },
        pty,
        success_code: p.success,
        demand,
        debug: p.debug.unwrap_or(0),
    })
}

/// Turns a `manage` request's options into stop settings.
///
/// # Errors
///
/// The reason to answer `{error, Reason}` with.
pub fn manage_spec(opts: &[Term]) -> Result<ManageSpec, Term> {
    let p = parse(opts)?;
    let mut stop = Command::new("-");
    if let Some(kill) = &p.kill {
        stop.stop_command(kill_command(kill));
    }
    if let Some(t) = p.kill_timeout {
        stop.stop_timeout(Duration::from_secs(t));
    }
    Ok(ManageSpec {
        stop,
        success_code: p.success,
    })
}

/// `{error, Reason}` as a term, for replies.
pub fn error_reply(trans: i64, reason: Term) -> Term {
    tuple(vec![int(trans), error(reason)])
}

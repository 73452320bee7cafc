//! `procession exec-port`, driven as erlexec's Erlang side drives its port
//! program: 2-byte length frames of external term format on the port's
//! stdin and stdout. Requests are encoded and replies decoded with `eetf`
//! (a codec that is not the port's own framing code); every test checks
//! exact bytes and raw wait statuses, and the Guard checks that nothing
//! the port started is left behind.

#[path = "../../tests/support/mod.rs"]
mod support;
use support::*;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child as StdChild, ChildStdin, Command as StdCommand, Stdio as StdStdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use eetf::{Atom, Binary, FixInteger, List, Term, Tuple};

/// How long any one expected message may take.
const LIMIT: Duration = Duration::from_secs(20);

fn atom(s: &str) -> Term {
    Term::from(Atom::from(s))
}
fn int(v: i64) -> Term {
    Term::from(FixInteger::from(v as i32))
}
fn bin(b: &[u8]) -> Term {
    Term::from(Binary::from(b))
}
fn tuple(v: Vec<Term>) -> Term {
    Term::from(Tuple::from(v))
}
fn list(v: Vec<Term>) -> Term {
    Term::from(List::from(v))
}
fn s(x: &str) -> Term {
    bin(x.as_bytes())
}

fn encode(t: &Term) -> Vec<u8> {
    let mut payload = Vec::new();
    t.encode(&mut payload).expect("encode");
    let mut frame = (payload.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(&payload);
    frame
}

/// A message from the port, decoded.
#[derive(Debug, Clone, PartialEq)]
enum Msg {
    Reply(i64, Term),
    Out(&'static str, u32, Vec<u8>),
    Exit(u32, i64),
    Other(Term),
}

fn as_i64(t: &Term) -> Option<i64> {
    match t {
        Term::FixInteger(i) => Some(i64::from(i.value)),
        _ => None,
    }
}

fn classify(t: Term) -> Msg {
    if let Term::Tuple(top) = &t {
        if let [trans, body] = &top.elements[..] {
            let trans = as_i64(trans).expect("integer TransId");
            if trans != 0 {
                return Msg::Reply(trans, body.clone());
            }
            if let Term::Tuple(b) = body {
                match &b.elements[..] {
                    [Term::Atom(a), pid, Term::Binary(data)]
                        if a.name == "stdout" || a.name == "stderr" =>
                    {
                        let tag = if a.name == "stdout" {
                            "stdout"
                        } else {
                            "stderr"
                        };
                        return Msg::Out(tag, as_i64(pid).unwrap() as u32, data.bytes.clone());
                    }
                    [Term::Atom(a), pid, status] if a.name == "exit_status" => {
                        return Msg::Exit(as_i64(pid).unwrap() as u32, as_i64(status).unwrap());
                    }
                    _ => {}
                }
            }
            return Msg::Reply(0, body.clone());
        }
    }
    Msg::Other(t)
}

/// The port under test, with a thread decoding what it writes.
struct Port {
    child: StdChild,
    stdin: Option<ChildStdin>,
    rx: mpsc::Receiver<Result<Term, String>>,
    /// Messages read but not yet taken.
    seen: VecDeque<Msg>,
    next_trans: i64,
}

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_procession")
}

impl Port {
    fn start() -> Port {
        Port::start_with(&[])
    }

    fn start_with(args: &[&str]) -> Port {
        let mut cmd = StdCommand::new(exe());
        cmd.arg("exec-port").args(args);
        Port::spawn(cmd)
    }

    fn spawn(mut cmd: StdCommand) -> Port {
        cmd.stdin(StdStdio::piped())
            .stdout(StdStdio::piped())
            .stderr(StdStdio::inherit());
        if std::env::var_os("SHELL").is_none() {
            cmd.env("SHELL", "/bin/sh");
        }
        let mut child = cmd.spawn().expect("start exec-port");
        let stdin = child.stdin.take();
        let mut out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            loop {
                let mut len = [0u8; 2];
                if out.read_exact(&mut len).is_err() {
                    return;
                }
                let mut payload = vec![0u8; u16::from_be_bytes(len) as usize];
                if out.read_exact(&mut payload).is_err() {
                    let _ = tx.send(Err("truncated frame from the port".into()));
                    return;
                }
                let decoded = Term::decode(&payload[..]).map_err(|e| e.to_string());
                if tx.send(decoded).is_err() {
                    return;
                }
            }
        });
        Port {
            child,
            stdin,
            rx,
            seen: VecDeque::new(),
            next_trans: 1,
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.stdin.as_mut().unwrap().write_all(bytes).unwrap();
    }

    fn send(&mut self, trans: i64, instr: Term) {
        let frame = encode(&tuple(vec![int(trans), instr]));
        self.send_raw(&frame);
    }

    /// The next message from the port, waiting up to LIMIT.
    fn recv(&mut self) -> Msg {
        if let Some(m) = self.seen.pop_front() {
            return m;
        }
        self.recv_new(LIMIT)
            .unwrap_or_else(|| panic!("no message from the port within {LIMIT:?}"))
    }

    fn recv_new(&mut self, limit: Duration) -> Option<Msg> {
        match self.rx.recv_timeout(limit) {
            Ok(Ok(t)) => Some(classify(t)),
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => None,
        }
    }

    /// Sends a request and returns its reply; async messages met on the
    /// way are kept for later.
    fn call(&mut self, instr: Term) -> Term {
        let trans = self.next_trans;
        self.next_trans += 1;
        self.send(trans, instr);
        self.reply(trans)
    }

    fn reply(&mut self, trans: i64) -> Term {
        if let Some(i) = self
            .seen
            .iter()
            .position(|m| matches!(m, Msg::Reply(t, _) if *t == trans))
        {
            let Msg::Reply(_, body) = self.seen.remove(i).unwrap() else {
                unreachable!()
            };
            return body;
        }
        loop {
            match self.recv_new(LIMIT) {
                Some(Msg::Reply(t, body)) if t == trans => return body,
                Some(other) => self.seen.push_back(other),
                None => panic!("no reply to {trans} within {LIMIT:?}; seen {:?}", self.seen),
            }
        }
    }

    /// `{run, Cmd, Opts}`: the child's pid.
    fn run(&mut self, cmd: Term, opts: Vec<Term>) -> u32 {
        let reply = self.call(tuple(vec![atom("run"), cmd, list(opts)]));
        match &reply {
            Term::Tuple(t) if t.elements.len() == 2 && t.elements[0] == atom("pid") => {
                as_i64(&t.elements[1]).unwrap() as u32
            }
            other => panic!("run failed: {other}"),
        }
    }

    /// Everything `pid` sent up to its exit status: (stdout, stderr, status,
    /// messages in order).
    fn until_exit(&mut self, pid: u32) -> (Vec<u8>, Vec<u8>, i64) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut kept = VecDeque::new();
        loop {
            let m = match self.seen.pop_front() {
                Some(m) => m,
                None => self
                    .recv_new(LIMIT)
                    .unwrap_or_else(|| panic!("no exit_status of {pid} within {LIMIT:?}")),
            };
            match m {
                Msg::Out("stdout", p, d) if p == pid => out.extend(d),
                Msg::Out(_, p, d) if p == pid => err.extend(d),
                Msg::Exit(p, st) if p == pid => {
                    kept.extend(self.seen.drain(..));
                    self.seen = kept;
                    return (out, err, st);
                }
                other => kept.push_back(other),
            }
        }
    }

    /// Closes stdin (the VM went away) and returns the exit status.
    fn close(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        self.wait()
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "exec-port did not exit");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// `{0, {shutdown}}`, then the exit status; the messages sent meanwhile.
    fn shutdown(&mut self) -> (std::process::ExitStatus, Vec<Msg>) {
        self.send(0, tuple(vec![atom("shutdown")]));
        let st = self.wait();
        let mut msgs: Vec<Msg> = self.seen.drain(..).collect();
        while let Some(m) = self.recv_new(Duration::from_millis(500)) {
            msgs.push(m);
        }
        (st, msgs)
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn ok() -> Term {
    atom("ok")
}

fn err_string(t: &Term) -> String {
    match t {
        Term::Tuple(e) if e.elements.len() == 2 && e.elements[0] == atom("error") => {
            match &e.elements[1] {
                Term::ByteList(b) => String::from_utf8_lossy(&b.bytes).into_owned(),
                other => other.to_string(),
            }
        }
        other => panic!("not an error: {other}"),
    }
}

fn pt_s() -> String {
    pt().to_str().unwrap().to_owned()
}

fn argv(args: &[&str]) -> Term {
    list(args.iter().map(|a| s(a)).collect())
}

// ---------------------------------------------------------------------------

#[test]
fn run_relays_output_then_exit_status_with_raw_statuses() {
    let _g = Guard::new();
    let mut port = Port::start();
    // exit 3 → 768, stdout and stderr apart.
    let pid = port.run(
        s("echo out; echo err >&2; exit 3"),
        vec![atom("stdout"), atom("stderr")],
    );
    let (out, err, st) = port.until_exit(pid);
    assert_eq!(
        (&out[..], &err[..], st),
        (&b"out\n"[..], &b"err\n"[..], 768)
    );
    // A list command is exec'd directly; SIGKILL → 9.
    let pid = port.run(argv(&[&pt_s(), "kill-self", "9"]), vec![]);
    assert_eq!(port.until_exit(pid).2, 9);
    // exit 0 → 0; list form with arguments.
    let pid = port.run(argv(&[&pt_s(), "print", "a", "b"]), vec![atom("stdout")]);
    assert_eq!(port.until_exit(pid), (b"a b\n".to_vec(), vec![], 0));
    let (st, _) = port.shutdown();
    assert_eq!(st.code(), Some(0));
}

#[test]
fn all_output_arrives_before_the_exit_status() {
    let _g = Guard::new();
    let mut port = Port::start();
    // 1 MiB written just before exiting: every byte precedes the status.
    let pid = port.run(
        s("head -c 1048576 /dev/zero; printf end; exit 5"),
        vec![atom("stdout")],
    );
    let mut total = 0;
    let mut max_chunk = 0;
    loop {
        match port.recv() {
            Msg::Out("stdout", p, d) if p == pid => {
                total += d.len();
                max_chunk = max_chunk.max(d.len());
            }
            Msg::Exit(p, st) if p == pid => {
                assert_eq!(st, 5 << 8);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(total, 1048576 + 3);
    assert!(
        max_chunk <= 4096,
        "chunks of at most 4096 bytes, got {max_chunk}"
    );
    port.shutdown();
}

#[test]
fn replies_come_in_request_order_with_many_in_flight() {
    let _g = Guard::new();
    let mut port = Port::start();
    // 200 requests written in one go, mixing kinds; TransId 1 on all of
    // them, as erlexec really sends: only the order tells them apart.
    let mut batch = Vec::new();
    let mut kinds = Vec::new();
    for i in 0..200 {
        let (instr, kind) = match i % 4 {
            0 => (tuple(vec![atom("run"), s("exit 0"), list(vec![])]), "pid"),
            1 => (tuple(vec![atom("list")]), "list"),
            2 => (tuple(vec![atom("stop"), int(1)]), "error"),
            _ => (tuple(vec![atom("debug"), int(0)]), "ok"),
        };
        batch.extend(encode(&tuple(vec![int(1), instr])));
        kinds.push(kind);
    }
    port.send_raw(&batch);
    let mut pids = Vec::new();
    for kind in kinds {
        let body = loop {
            match port.recv() {
                Msg::Reply(1, body) => break body,
                Msg::Exit(p, 0) => pids.retain(|&x| x != p),
                other => panic!("unexpected {other:?}"),
            }
        };
        let shape = match &body {
            Term::Tuple(t) if t.elements[0] == atom("pid") => {
                pids.push(as_i64(&t.elements[1]).unwrap() as u32);
                "pid"
            }
            Term::List(_) | Term::ByteList(_) => "list",
            Term::Tuple(t) if t.elements[0] == atom("error") => "error",
            Term::Tuple(t) if t.elements[0] == atom("ok") => "ok",
            other => panic!("unexpected reply {other}"),
        };
        assert_eq!(shape, kind, "reply {body}");
    }
    for pid in pids {
        assert_eq!(port.until_exit(pid).2, 0);
    }
    port.shutdown();
}

#[test]
fn stop_reports_status_zero_and_kill_reports_the_signal() {
    let _g = Guard::new();
    let mut port = Port::start();
    let pid = port.run(argv(&[&pt_s(), "sleep", "100"]), vec![]);
    assert_eq!(port.call(tuple(vec![atom("stop"), int(pid as i64)])), ok());
    assert_eq!(port.until_exit(pid).2, 0);
    // A TERM-ignoring child: SIGKILL after kill_timeout, still reported 0.
    let pid = port.run(
        s("trap '' TERM; echo ready; while :; do sleep 0.05; done"),
        vec![atom("stdout"), tuple(vec![atom("kill_timeout"), int(1)])],
    );
    assert_eq!(port.recv(), Msg::Out("stdout", pid, b"ready\n".to_vec()));
    let start = Instant::now();
    assert_eq!(port.call(tuple(vec![atom("stop"), int(pid as i64)])), ok());
    assert_eq!(port.until_exit(pid).2, 0);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // kill: a raw signal, no override; atoms too.
    let pid = port.run(argv(&[&pt_s(), "sleep", "100"]), vec![]);
    assert_eq!(
        port.call(tuple(vec![atom("kill"), int(pid as i64), int(15)])),
        ok()
    );
    assert_eq!(port.until_exit(pid).2, 15);
    let pid = port.run(argv(&[&pt_s(), "sleep", "100"]), vec![]);
    assert_eq!(
        port.call(tuple(vec![atom("kill"), int(pid as i64), atom("sigint")])),
        ok()
    );
    assert_eq!(port.until_exit(pid).2, 2);
    // Unknown pids.
    let e = port.call(tuple(vec![atom("stop"), int(999_999)]));
    assert_eq!(err_string(&e), "pid not alive");
    let e = port.call(tuple(vec![atom("kill"), int(999_999), int(9)]));
    assert_eq!(
        err_string(&e),
        "Cannot kill a pid not managed by this application"
    );
    port.shutdown();
}

#[test]
fn custom_kill_command_gets_child_pid() {
    let _g = Guard::new();
    let dir = TempDir::new("exec-port-kill");
    let log = dir.join("killed");
    let mut port = Port::start();
    let pid = port.run(
        s("trap 'exit 7' INT; echo ready; while :; do sleep 0.05; done"),
        vec![
            atom("stdout"),
            tuple(vec![
                atom("kill"),
                s(&format!(
                    "echo noise; echo noise >&2; echo $CHILD_PID > {}; kill -INT $CHILD_PID",
                    log.display()
                )),
            ]),
        ],
    );
    assert_eq!(port.recv(), Msg::Out("stdout", pid, b"ready\n".to_vec()));
    assert_eq!(port.call(tuple(vec![atom("stop"), int(pid as i64)])), ok());
    // Stopped on request: 0 (see EXEC-PORT.md on the kill-command path).
    assert_eq!(port.until_exit(pid).2, 0);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), format!("{pid}\n"));
    port.shutdown();
}

#[test]
fn kill_group_with_and_without_a_group_never_hits_the_port() {
    let _g = Guard::new();
    let mut port = Port::start();
    // Without {group,_}: erlexec signals its own group (the port dies).
    // Here the child leads its own group: the grandchild is stopped too,
    // and the port and a sibling live on.
    let sibling = port.run(argv(&[&pt_s(), "sleep", "100"]), vec![]);
    let pid = port.run(
        s("sleep 100 & echo $!; wait"),
        vec![atom("stdout"), atom("kill_group")],
    );
    let Msg::Out(_, _, line) = port.recv() else {
        panic!()
    };
    let grandchild: i32 = String::from_utf8(line).unwrap().trim().parse().unwrap();
    assert!(alive(grandchild));
    assert_eq!(port.call(tuple(vec![atom("stop"), int(pid as i64)])), ok());
    assert_eq!(port.until_exit(pid).2, 0);
    assert!(
        wait_dead(grandchild, Duration::from_secs(5)),
        "grandchild stopped with the group"
    );
    assert_eq!(
        port.call(tuple(vec![atom("list")])),
        list(vec![int(sibling as i64)])
    );
    // With {group, 0}: the same, explicitly. The group is the child's pid.
    let pid = port.run(
        argv(&[&pt_s(), "pgid"]),
        vec![
            atom("stdout"),
            tuple(vec![atom("group"), int(0)]),
            atom("kill_group"),
        ],
    );
    let (out, _, st) = port.until_exit(pid);
    let out = String::from_utf8(out).unwrap();
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        (&fields[..2], st),
        (&[&*pid.to_string(), &*pid.to_string()][..], 0),
        "{out}"
    );
    // With {group, G} joining the sibling's group: kill_group stops -G.
    let member = port.run(
        argv(&[&pt_s(), "sleep", "100"]),
        vec![
            tuple(vec![atom("group"), int(sibling as i64)]),
            atom("kill_group"),
        ],
    );
    assert_eq!(
        port.call(tuple(vec![atom("stop"), int(member as i64)])),
        ok()
    );
    let mut statuses = vec![];
    while statuses.len() < 2 {
        if let Msg::Exit(p, st) = port.recv() {
            statuses.push((p, st));
        }
    }
    statuses.sort();
    let mut want = vec![(member, 0), (sibling, 15)];
    want.sort();
    assert_eq!(statuses, want, "the whole group -G got SIGTERM");
    let (st, _) = port.shutdown();
    assert_eq!(st.code(), Some(0));
}

#[test]
fn stdin_data_and_eof() {
    let _g = Guard::new();
    let mut port = Port::start();
    let pid = port.run(argv(&["/bin/cat"]), vec![atom("stdin"), atom("stdout")]);
    port.send(0, tuple(vec![atom("stdin"), int(pid as i64), s("hello ")]));
    port.send(0, tuple(vec![atom("stdin"), int(pid as i64), s("world")]));
    port.send(0, tuple(vec![atom("stdin"), int(pid as i64), atom("eof")]));
    assert_eq!(port.until_exit(pid), (b"hello world".to_vec(), vec![], 0));
    // Data for an unknown pid is dropped without a reply.
    port.send(0, tuple(vec![atom("stdin"), int(999_999), s("x")]));
    assert_eq!(port.call(tuple(vec![atom("list")])), list(vec![]));
    port.shutdown();
}

#[test]
fn options_cd_env_executable_success_code_nice_files() {
    let _g = Guard::new();
    let dir = TempDir::new("exec-port-opts");
    let mut port = Port::start();
    // cd
    let pid = port.run(
        s("pwd"),
        vec![
            atom("stdout"),
            tuple(vec![atom("cd"), s(dir.path().to_str().unwrap())]),
        ],
    );
    let (out, _, _) = port.until_exit(pid);
    assert_eq!(
        String::from_utf8(out).unwrap().trim(),
        dir.path().to_str().unwrap()
    );
    // env: clear, set, set empty, unset, "K=V" (not K=K=V as erlexec does).
    let pid = port.run(
        argv(&[&pt_s(), "env"]),
        vec![
            atom("stdout"),
            tuple(vec![
                atom("env"),
                list(vec![
                    atom("clear"),
                    tuple(vec![s("A"), s("1")]),
                    tuple(vec![s("E"), s("")]),
                    tuple(vec![s("GONE"), s("x")]),
                    tuple(vec![s("GONE"), atom("false")]),
                    s("K=V"),
                ]),
            ]),
        ],
    );
    let (out, _, st) = port.until_exit(pid);
    assert_eq!(
        (String::from_utf8(out).unwrap(), st),
        ("A=1\0E=\0K=V\0".into(), 0)
    );
    // executable: argv[0] stays, the program is another.
    let pid = port.run(
        argv(&["name-only", "x"]),
        vec![
            atom("stdout"),
            tuple(vec![atom("executable"), s("/bin/echo")]),
        ],
    );
    assert_eq!(port.until_exit(pid).0, b"x\n");
    // success_exit_code: a raw 0 is reported as N; a non-zero code as is.
    let pid = port.run(
        s("exit 0"),
        vec![tuple(vec![atom("success_exit_code"), int(3)])],
    );
    assert_eq!(port.until_exit(pid).2, 3);
    let pid = port.run(
        s("exit 3"),
        vec![tuple(vec![atom("success_exit_code"), int(3)])],
    );
    assert_eq!(port.until_exit(pid).2, 768);
    // nice
    let pid = port.run(
        s("cut -d' ' -f19 /proc/self/stat"),
        vec![atom("stdout"), tuple(vec![atom("nice"), int(7)])],
    );
    assert_eq!(port.until_exit(pid).0, b"7\n");
    // stdout to a file (truncate), then append with a mode; stderr → stdout.
    let file = dir.join("out");
    let f = s(file.to_str().unwrap());
    let pid = port.run(s("echo one"), vec![tuple(vec![atom("stdout"), f.clone()])]);
    assert_eq!(port.until_exit(pid).2, 0);
    let pid = port.run(
        s("echo two; echo err >&2"),
        vec![
            tuple(vec![atom("stdout"), f.clone(), list(vec![atom("append")])]),
            tuple(vec![atom("stderr"), atom("stdout")]),
        ],
    );
    assert_eq!(port.until_exit(pid).2, 0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "one\ntwo\nerr\n");
    let file2 = dir.join("moded");
    let pid = port.run(
        s("echo x"),
        vec![tuple(vec![
            atom("stdout"),
            s(file2.to_str().unwrap()),
            list(vec![tuple(vec![atom("mode"), int(0o600)])]),
        ])],
    );
    assert_eq!(port.until_exit(pid).2, 0);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file2).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // stdin from a file; {stdout, stderr} merges into the relayed stderr.
    let pid = port.run(
        argv(&["/bin/cat"]),
        vec![
            tuple(vec![atom("stdin"), f.clone()]),
            tuple(vec![atom("stdout"), atom("stderr")]),
            atom("stderr"),
        ],
    );
    assert_eq!(
        port.until_exit(pid),
        (vec![], b"one\ntwo\nerr\n".to_vec(), 0)
    );
    // {stdin, close} and {stdout, null}: nothing relayed.
    let pid = port.run(
        argv(&[&pt_s(), "stdin-state"]),
        vec![
            tuple(vec![atom("stdin"), atom("close")]),
            tuple(vec![atom("stderr"), atom("null")]),
        ],
    );
    assert_eq!(port.until_exit(pid).0, b"");
    // A failing cd is an error reply, not a child.
    let e = port.call(tuple(vec![
        atom("run"),
        s("true"),
        list(vec![tuple(vec![atom("cd"), s("/nonexistent-dir")])]),
    ]));
    assert!(err_string(&e).starts_with("Couldn't start pid: "), "{e}");
    port.shutdown();
}

#[test]
fn user_option_runs_as_that_user() {
    let _g = Guard::new();
    let mut port = Port::start();
    let opts = vec![atom("stdout"), tuple(vec![atom("user"), s("nobody")])];
    if libc_geteuid() == 0 {
        let pid = port.run(s("id -u"), opts);
        let (out, _, st) = port.until_exit(pid);
        assert_eq!((String::from_utf8(out).unwrap(), st), ("65534\n".into(), 0));
    } else {
        // Not root: the switch is refused before anything runs.
        let e = port.call(tuple(vec![atom("run"), s("id -u"), list(opts)]));
        assert!(err_string(&e).starts_with("Couldn't start pid: "), "{e}");
    }
    port.shutdown();
}

fn libc_geteuid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid()
}

#[test]
fn pty_with_vintr_remapped_and_winsz() {
    let _g = Guard::new();
    let mut port = Port::start();
    // Ctrl-A (1) as the interrupt character: typing it interrupts.
    let pid = port.run(
        s("trap 'echo INT; exit 9' INT; stty size; echo ready; while :; do sleep 0.05; done"),
        vec![
            atom("stdin"),
            atom("stdout"),
            tuple(vec![
                atom("pty"),
                list(vec![tuple(vec![atom("vintr"), int(1)])]),
            ]),
            tuple(vec![atom("winsz"), tuple(vec![int(30), int(100)])]),
        ],
    );
    let mut seen = Vec::new();
    while !seen.ends_with(b"ready\r\n") {
        match port.recv() {
            Msg::Out("stdout", p, d) if p == pid => seen.extend(d),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, b"30 100\r\nready\r\n");
    // Resize at run time; pty_opts at run time (a bad value is refused).
    assert_eq!(
        port.call(tuple(vec![
            atom("winsz"),
            int(pid as i64),
            int(40),
            int(120)
        ])),
        ok()
    );
    assert_eq!(
        port.call(tuple(vec![
            atom("pty_opts"),
            int(pid as i64),
            list(vec![tuple(vec![atom("echo"), int(0)])])
        ])),
        ok()
    );
    let bad = port.call(tuple(vec![
        atom("pty_opts"),
        int(pid as i64),
        list(vec![tuple(vec![atom("vintr"), int(300)])]),
    ]));
    assert!(err_string(&bad).contains("invalid_pty_value"), "{bad}");
    port.send(0, tuple(vec![atom("stdin"), int(pid as i64), bin(&[1])]));
    let (out, _, st) = port.until_exit(pid);
    assert_eq!((out, st), (b"INT\r\n".to_vec(), 9 << 8));
    // winsz on a child without a pty is an error.
    let other = port.run(argv(&[&pt_s(), "sleep", "100"]), vec![]);
    let e = port.call(tuple(vec![
        atom("winsz"),
        int(other as i64),
        int(1),
        int(1),
    ]));
    assert_eq!(err_string(&e), "not a pty");
    // eof on a pty hangs it up: SIGHUP (1), as erlexec's closed master.
    let cat = port.run(
        argv(&["/bin/cat"]),
        vec![atom("stdin"), atom("stdout"), atom("pty")],
    );
    port.send(0, tuple(vec![atom("stdin"), int(cat as i64), atom("eof")]));
    assert_eq!(port.until_exit(cat).2, 1);
    port.shutdown();
}

#[test]
fn manage_adopts_a_pid_and_sees_its_end_at_once() {
    let _g = Guard::new();
    let mut port = Port::start();
    let mut sleeper = StdCommand::new(pt())
        .args(["sleep", "100"])
        .spawn()
        .unwrap();
    let pid = sleeper.id();
    let reply = port.call(tuple(vec![atom("manage"), int(pid as i64), list(vec![])]));
    assert_eq!(reply, tuple(vec![atom("pid"), int(pid as i64)]));
    assert_eq!(
        port.call(tuple(vec![atom("list")])),
        list(vec![int(pid as i64)])
    );
    // Killed from outside: noticed at once (erlexec polls every 5 s), -1.
    let start = Instant::now();
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert_eq!(port.until_exit(pid).2, -1);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // Stopped through the port: 0.
    let mut sleeper = StdCommand::new(pt())
        .args(["sleep", "100"])
        .spawn()
        .unwrap();
    let pid = sleeper.id();
    port.call(tuple(vec![atom("manage"), int(pid as i64), list(vec![])]));
    assert_eq!(port.call(tuple(vec![atom("stop"), int(pid as i64)])), ok());
    assert_eq!(port.until_exit(pid).2, 0);
    assert_eq!(sleeper.wait().unwrap().signal(), Some(15));
    // A dead pid.
    let e = port.call(tuple(vec![atom("manage"), int(999_999), list(vec![])]));
    assert_eq!(e, tuple(vec![atom("error"), atom("not_found")]));
    port.shutdown();
}

#[test]
fn many_shell_children_printing_and_exiting_12() {
    let _g = Guard::new();
    raise_fd_limit();
    let mut port = Port::start();
    let n = 900;
    let mut batch = Vec::new();
    for i in 0..n {
        let cmd = s(&format!("echo out{i}; echo err{i} >&2; exit 12"));
        batch.extend(encode(&tuple(vec![
            int(1),
            tuple(vec![
                atom("run"),
                cmd,
                list(vec![atom("stdout"), atom("stderr")]),
            ]),
        ])));
    }
    port.send_raw(&batch);
    let mut pids = std::collections::HashMap::new();
    let mut outs: std::collections::HashMap<u32, (Vec<u8>, Vec<u8>)> = Default::default();
    let mut exits = 0;
    let mut replies = 0;
    while exits < n {
        match port.recv() {
            Msg::Reply(1, body) => {
                let Term::Tuple(t) = &body else {
                    panic!("{body}")
                };
                assert_eq!(t.elements[0], atom("pid"), "{body}");
                pids.insert(as_i64(&t.elements[1]).unwrap() as u32, replies);
                replies += 1;
            }
            Msg::Out(tag, p, d) => {
                assert!(pids.contains_key(&p), "output before the pid reply");
                let e = outs.entry(p).or_default();
                if tag == "stdout" {
                    e.0.extend(d)
                } else {
                    e.1.extend(d)
                }
            }
            Msg::Exit(p, st) => {
                assert_eq!(st, 12 << 8);
                let i = pids[&p];
                let (o, e) = outs.remove(&p).unwrap_or_default();
                assert_eq!(o, format!("out{i}\n").into_bytes());
                assert_eq!(e, format!("err{i}\n").into_bytes());
                exits += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(replies, n);
    port.shutdown();
}

/// Pids of `pid`'s descendants from /proc (children of children...).
fn descendants(pid: i32) -> Vec<i32> {
    let mut all = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(k) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if stat(k).is_some_and(|(state, ppid, _)| ppid == p && state != 'Z') {
                all.push(k);
                frontier.push(k);
            }
        }
    }
    all
}

#[test]
fn shutdown_stops_every_child_with_its_sequence_at_once() {
    let _g = Guard::new();
    let mut port = Port::start();
    let mut pids = Vec::new();
    for _ in 0..20 {
        pids.push(port.run(argv(&[&pt_s(), "sleep", "100"]), vec![]));
    }
    // A shell with a grandchild, and a TERM-ignoring one with kill_timeout 1.
    let sh = port.run(s("sleep 100 & echo $!; wait"), vec![atom("stdout")]);
    let Msg::Out(_, _, line) = port.recv() else {
        panic!()
    };
    let grandchild: i32 = String::from_utf8(line).unwrap().trim().parse().unwrap();
    let stubborn = port.run(
        s("trap '' TERM; echo ready; while :; do sleep 0.05; done"),
        vec![atom("stdout"), tuple(vec![atom("kill_timeout"), int(1)])],
    );
    assert_eq!(
        port.recv(),
        Msg::Out("stdout", stubborn, b"ready\n".to_vec())
    );
    let start = Instant::now();
    let (st, msgs) = port.shutdown();
    let took = start.elapsed();
    assert_eq!(st.code(), Some(0));
    // The stubborn child sets the pace: ~1 s, not erlexec's 10 s.
    assert!(took < Duration::from_secs(4), "{took:?}");
    let exited: Vec<u32> = msgs
        .iter()
        .filter_map(|m| {
            if let Msg::Exit(p, 0) = m {
                Some(*p)
            } else {
                None
            }
        })
        .collect();
    for p in pids.iter().chain([&sh, &stubborn]) {
        assert!(
            exited.contains(p),
            "exit_status of {p} during shutdown: {msgs:?}"
        );
    }
    assert!(!alive(grandchild));
}

#[test]
fn shutdown_of_term_obeying_children_is_quick() {
    let _g = Guard::new();
    let mut port = Port::start();
    for _ in 0..100 {
        port.run(argv(&["/bin/sleep", "100"]), vec![]);
    }
    let start = Instant::now();
    let (st, msgs) = port.shutdown();
    let took = start.elapsed();
    assert_eq!(st.code(), Some(0));
    assert_eq!(
        msgs.iter().filter(|m| matches!(m, Msg::Exit(_, 0))).count(),
        100
    );
    // The benchmark measures it; here a generous bound, far below 10 s.
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn stdin_eof_from_the_vm_is_a_shutdown() {
    let _g = Guard::new();
    let mut port = Port::start();
    let sh = port.run(s("sleep 100 & echo $!; wait"), vec![atom("stdout")]);
    let Msg::Out(_, _, line) = port.recv() else {
        panic!()
    };
    let grandchild: i32 = String::from_utf8(line).unwrap().trim().parse().unwrap();
    let _ = sh;
    let start = Instant::now();
    let st = port.close();
    assert_eq!(st.code(), Some(0));
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(!alive(grandchild));
}

#[test]
fn owner_sigkilled_leaves_nothing_behind() {
    let _g = Guard::new();
    let mut port = Port::start();
    let port_pid = port.child.id() as i32;
    port.run(argv(&[&pt_s(), "sleep", "100"]), vec![]);
    port.run(s("sleep 100 & sleep 100 & wait"), vec![]);
    port.run(
        s("trap '' TERM; sleep 100 & wait"),
        vec![tuple(vec![atom("kill_timeout"), int(1)])],
    );
    port.run(
        argv(&["/bin/cat"]),
        vec![atom("stdin"), atom("stdout"), atom("pty")],
    );
    // Wait until the shells have started their sleeps.
    let deadline = Instant::now() + LIMIT;
    while descendants(port_pid)
        .iter()
        .filter(|&&p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sleep")
        })
        .count()
        < 3
    {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(10));
    }
    let all = descendants(port_pid);
    assert!(all.len() >= 7, "{all:?}");
    port.child.kill().unwrap();
    port.child.wait().unwrap();
    for p in &all {
        assert!(
            wait_dead(*p, Duration::from_secs(10)),
            "pid {p} survived its owner"
        );
    }
    // The port's children were re-parented to this test (a subreaper):
    // reap them, as init would.
    for p in &all {
        if stat(*p).is_some_and(|(_, ppid, _)| ppid == std::process::id() as i32) {
            // SAFETY: waitpid on a pid that is our child, with no status pointer.
            unsafe { libc::waitpid(*p, std::ptr::null_mut(), 0) };
        }
    }
}

#[test]
fn malformed_frames_and_unknown_atoms_get_errors_not_crashes() {
    let _g = Guard::new();
    let mut port = Port::start();
    let reason = |port: &mut Port| match port.recv() {
        Msg::Reply(0, body) => body,
        other => panic!("{other:?}"),
    };
    // Unknown instruction atom (erlexec: SIGSEGV), and exec:setpgid/2.
    let e = port.call(tuple(vec![atom("bogus")]));
    assert_eq!(
        e,
        tuple(vec![
            atom("error"),
            tuple(vec![atom("unknown_command"), atom("bogus")])
        ])
    );
    let e = port.call(tuple(vec![atom("setpgid"), int(1), int(2)]));
    assert_eq!(
        e,
        tuple(vec![
            atom("error"),
            tuple(vec![atom("unknown_command"), atom("setpgid")])
        ])
    );
    // Unknown option (erlexec: SIGSEGV).
    let e = port.call(tuple(vec![
        atom("run"),
        s("true"),
        list(vec![tuple(vec![atom("foo"), int(1)])]),
    ]));
    assert_eq!(
        e,
        tuple(vec![
            atom("error"),
            tuple(vec![
                atom("invalid_option"),
                tuple(vec![atom("foo"), int(1)])
            ])
        ])
    );
    // Duplicate option, bad values.
    let e = port.call(tuple(vec![
        atom("run"),
        s("true"),
        list(vec![atom("stdout"), atom("stdout")]),
    ]));
    assert_eq!(err_string(&e), "duplicate stdout option specified");
    let e = port.call(tuple(vec![
        atom("run"),
        s("true"),
        list(vec![tuple(vec![atom("nice"), int(99)])]),
    ]));
    assert!(err_string(&e).contains("invalid_option"));
    let e = port.call(tuple(vec![atom("run"), s(""), list(vec![])]));
    assert_eq!(err_string(&e), "empty command provided");
    let e = port.call(tuple(vec![atom("stop"), s("x")]));
    assert!(err_string(&e).contains("badarg"));
    // Not ETF: wrong version byte; truncated term; trailing bytes; a
    // hostile length; deep nesting; a bare integer; a distribution header.
    let mut bad_frames: Vec<Vec<u8>> = vec![
        vec![0, 3, 130, 97, 1],
        vec![0, 4, 131, 104, 2, 97],
        vec![0, 4, 131, 97, 1, 0],
        vec![0, 6, 131, 108, 0xff, 0xff, 0xff, 0xff],
        vec![0, 2, 131, 68],
        vec![0, 3, 131, 97, 7],
    ];
    let mut deep = vec![131];
    for _ in 0..10_000 {
        deep.extend([104, 1]);
    }
    deep.push(106);
    let mut frame = (deep.len() as u16).to_be_bytes().to_vec();
    frame.extend(deep);
    bad_frames.push(frame);
    for f in &bad_frames {
        port.send_raw(f);
        let body = reason(&mut port);
        assert!(err_string(&body).len() > 3, "{body}");
    }
    // Still alive and answering.
    assert_eq!(
        port.call(tuple(vec![atom("debug"), int(2)])),
        tuple(vec![atom("ok"), int(0)])
    );
    assert_eq!(
        port.call(tuple(vec![atom("debug"), int(0)])),
        tuple(vec![atom("ok"), int(2)])
    );
    // A frame cut short by the end of input: a clean exit with a message.
    port.send_raw(&[0, 10, 131]);
    let st = port.close();
    assert_eq!(st.code(), Some(1));
}

#[test]
fn command_line_startup_checks() {
    let _g = Guard::new();
    // SHELL unset: exit 4 with a message.
    let out = StdCommand::new(exe())
        .arg("exec-port")
        .env_remove("SHELL")
        .stdin(StdStdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SHELL"));
    // --whoami
    let out = StdCommand::new(exe())
        .args(["exec-port", "--whoami"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!out.stdout.is_empty());
    // Unknown user: 3.
    let out = StdCommand::new(exe())
        .args(["exec-port", "-user", "no-such-user-here"])
        .env("SHELL", "/bin/sh")
        .stdin(StdStdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    // What exec.erl passes is tolerated: -verbose, -cap, " - ARGS", -debug N.
    let mut port = Port::start_with(&["-verbose", "-cap", "all", "-debug", "0", "-", "-root"]);
    assert_eq!(port.call(tuple(vec![atom("list")])), list(vec![]));
    assert_eq!(port.close().code(), Some(0));
}

#[test]
fn runs_under_the_name_exec_port_and_with_fds_3_and_4() {
    let _g = Guard::new();
    let dir = TempDir::new("exec-port-name");
    let link = dir.join("exec-port");
    std::os::unix::fs::symlink(exe(), &link).unwrap();
    let mut port = Port::spawn(StdCommand::new(&link));
    let pid = port.run(s("echo hi"), vec![atom("stdout")]);
    assert_eq!(port.until_exit(pid), (b"hi\n".to_vec(), vec![], 0));
    port.shutdown();
    // -n: requests on fd 3, replies on fd 4 (as with nouse_stdio).
    let (req_r, req_w) = pipe();
    let (rep_r, rep_w) = pipe();
    let mut cmd = StdCommand::new(exe());
    cmd.args(["exec-port", "-n"])
        .env("SHELL", "/bin/sh")
        .stdin(StdStdio::null())
        .stdout(StdStdio::null());
    let (r3, w4) = (req_r, rep_w);
    use std::os::fd::AsRawFd;
    let (fd_r, fd_w) = (r3.as_raw_fd(), w4.as_raw_fd());
    use std::os::unix::process::CommandExt;
    // SAFETY: dup2 onto 3 and 4 in the child before exec; no allocation.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd_r, 3) < 0 || libc::dup2(fd_w, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop((r3, w4));
    let mut w = std::fs::File::from(req_w);
    let mut r = std::fs::File::from(rep_r);
    w.write_all(&encode(&tuple(vec![int(5), tuple(vec![atom("list")])])))
        .unwrap();
    let mut len = [0u8; 2];
    r.read_exact(&mut len).unwrap();
    let mut payload = vec![0; u16::from_be_bytes(len) as usize];
    r.read_exact(&mut payload).unwrap();
    assert_eq!(
        Term::decode(&payload[..]).unwrap(),
        tuple(vec![int(5), list(vec![])])
    );
    drop(w);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn demand_mode_sends_output_only_as_acknowledged() {
    let _g = Guard::new();
    let mut port = Port::start();
    // 64 KiB of output, a window of 8 KiB: 8 KiB arrive, then nothing
    // until acknowledged.
    let pid = port.run(
        s("head -c 65536 /dev/zero; exit 2"),
        vec![atom("stdout"), tuple(vec![atom("demand"), int(8192)])],
    );
    let mut got = 0;
    while got < 8192 {
        match port.recv() {
            Msg::Out("stdout", p, d) if p == pid => got += d.len(),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, 8192);
    // No more without an ack (the child is blocked on its full pipe...
    // or has exited; either way nothing is sent).
    assert_eq!(port.recv_new(Duration::from_millis(300)), None);
    let mut total = got;
    let mut status = None;
    while status.is_none() {
        port.send(0, tuple(vec![atom("ack"), int(pid as i64), int(8192)]));
        let mut chunk = 0;
        while chunk < 8192 {
            match port.recv() {
                Msg::Out("stdout", p, d) if p == pid => chunk += d.len(),
                Msg::Exit(p, st) if p == pid => {
                    status = Some(st);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        total += chunk;
        assert!(chunk <= 8192);
        if total == 65536 && status.is_none() {
            port.send(0, tuple(vec![atom("ack"), int(pid as i64), int(8192)]));
            match port.recv() {
                Msg::Exit(p, st) if p == pid => status = Some(st),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!((total, status), (65536, Some(2 << 8)));
    port.shutdown();
}

#[test]
fn soak_random_cycles_through_one_port() {
    let _g = Guard::new();
    let mut port = Port::start();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for i in 0..200 {
        match rand(4) {
            0 => {
                let pid = port.run(argv(&["/bin/cat"]), vec![atom("stdin"), atom("stdout")]);
                let data = format!("cycle {i}");
                port.send(0, tuple(vec![atom("stdin"), int(pid as i64), s(&data)]));
                port.send(0, tuple(vec![atom("stdin"), int(pid as i64), atom("eof")]));
                assert_eq!(port.until_exit(pid), (data.into_bytes(), vec![], 0));
            }
            1 => {
                let pid = port.run(argv(&[&pt_s(), "sleep", "100"]), vec![]);
                assert_eq!(port.call(tuple(vec![atom("stop"), int(pid as i64)])), ok());
                assert_eq!(port.until_exit(pid).2, 0);
            }
            2 => {
                let pid = port.run(s("sleep 100 & wait"), vec![]);
                assert_eq!(
                    port.call(tuple(vec![atom("kill"), int(pid as i64), int(9)])),
                    ok()
                );
                assert_eq!(port.until_exit(pid).2, 9);
            }
            _ => {
                let pid = port.run(
                    s(&format!("echo {i}; exit {}", i % 7)),
                    vec![atom("stdout")],
                );
                assert_eq!(
                    port.until_exit(pid),
                    (format!("{i}\n").into_bytes(), vec![], (i % 7) << 8)
                );
            }
        }
    }
    assert_eq!(port.call(tuple(vec![atom("list")])), list(vec![]));
    let (st, _) = port.shutdown();
    assert_eq!(st.code(), Some(0));
}

#[test]
fn sigterm_to_the_port_stops_its_children_and_sighup_is_ignored() {
    let _g = Guard::new();
    let mut port = Port::start();
    let pid = port.run(argv(&[&pt_s(), "sleep", "100"]), vec![]);
    let port_pid = port.child.id() as i32;
    let signal = |sig: &str| {
        let st = StdCommand::new("kill")
            .args([sig, &port_pid.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    };
    signal("-HUP");
    assert_eq!(
        port.call(tuple(vec![atom("list")])),
        list(vec![int(pid as i64)])
    );
    signal("-TERM");
    let st = port.wait();
    assert_eq!(st.code(), Some(1));
    assert_eq!(port.until_exit(pid).2, 0);
}

#[test]
fn frames_of_the_maximum_size_both_ways() {
    let _g = Guard::new();
    let mut port = Port::start();
    // A request of exactly 65535 bytes whose error reply, echoing the bad
    // option, would be larger: the reply is shortened, never oversized.
    let request = |len: usize| {
        tuple(vec![
            int(1),
            tuple(vec![
                atom("run"),
                s("true"),
                list(vec![tuple(vec![atom("foo"), bin(&vec![b'x'; len])])]),
            ]),
        ])
    };
    let overhead = encode(&request(0)).len() - 2;
    let frame = encode(&request(65535 - overhead));
    assert_eq!(frame.len(), 2 + 65535);
    port.send_raw(&frame);
    match port.recv() {
        Msg::Reply(1, body) => {
            assert_eq!(body, tuple(vec![atom("error"), atom("reply_too_large")]))
        }
        other => panic!("{other:?}"),
    }
    // 65,000 bytes of stdin in one request come back through cat in
    // frames of at most 4096 bytes.
    let pid = port.run(argv(&["/bin/cat"]), vec![atom("stdin"), atom("stdout")]);
    let data: Vec<u8> = (0..65000u32).map(|i| (i % 251) as u8).collect();
    port.send(0, tuple(vec![atom("stdin"), int(pid as i64), bin(&data)]));
    port.send(0, tuple(vec![atom("stdin"), int(pid as i64), atom("eof")]));
    assert_eq!(port.until_exit(pid), (data, vec![], 0));
    port.shutdown();
}

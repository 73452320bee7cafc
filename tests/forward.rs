//! Forwarding a child's stdout into a file, a socket or a pipe: every byte
//! arrives (checked against the writer's pattern), by splice and by the
//! read/write fallback; a closed sink is an error that stops the child;
//! the async form (feature `tokio`).

mod support;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use procession::{Command, ErrorKind, Pipeline, Step};
use support::*;

/// `pt write N` writes byte i as `i % 251`.
fn check_pattern(bytes: &[u8], n: u64) {
    assert_eq!(bytes.len() as u64, n);
    if let Some(i) = bytes
        .iter()
        .enumerate()
        .position(|(i, &b)| b != (i % 251) as u8)
    {
        panic!("byte {i} is {} instead of {}", bytes[i], i % 251);
    }
}

/// A connected pair of loopback TCP sockets: (the side we forward into,
/// the side that reads).
fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (server, client)
}

/// Reads `client` to the end on a thread.
fn read_all(mut client: TcpStream) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        got
    })
}

const N: u64 = 30_000_000;

#[test]
fn forwarding_to_a_file_preserves_every_byte_by_splice() {
    let _g = Guard::new();
    let dir = TempDir::new("forward-file");
    let path = dir.join("out");
    let file = std::fs::File::create(&path).unwrap();
    let done = pt_cmd(["write", &N.to_string()])
        .forward_stdout(&file)
        .unwrap();
    assert_eq!((done.bytes, done.spliced), (N, N));
    assert!(done.status.success());
    check_pattern(&std::fs::read(&path).unwrap(), N);
}

#[test]
fn forwarding_to_a_file_that_refuses_splice_copies_every_byte() {
    let _g = Guard::new();
    let dir = TempDir::new("forward-append");
    let path = dir.join("out");
    std::fs::write(&path, b"").unwrap();
    // The kernel refuses splice into a file opened for appending (EINVAL).
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let done = pt_cmd(["write", &N.to_string()])
        .forward_stdout(&file)
        .unwrap();
    assert_eq!((done.bytes, done.spliced), (N, 0));
    check_pattern(&std::fs::read(&path).unwrap(), N);
    // The fallback forced on a sink that takes splice.
    let path = dir.join("out2");
    let file = std::fs::File::create(&path).unwrap();
    let done = pt_cmd(["write", &N.to_string()])
        .forward_stdout_copying(&file)
        .unwrap();
    assert_eq!((done.bytes, done.spliced), (N, 0));
    check_pattern(&std::fs::read(&path).unwrap(), N);
}

#[test]
fn forwarding_to_a_socket_preserves_every_byte_blocking_and_non_blocking() {
    let _g = Guard::new();
    for (nonblocking, copying) in [(false, false), (true, false), (false, true), (true, true)] {
        let (server, client) = socket_pair();
        server.set_nonblocking(nonblocking).unwrap();
        let reader = read_all(client);
        let cmd = pt_cmd(["write", &N.to_string()]);
        let done = if copying {
            cmd.forward_stdout_copying(&server).unwrap()
        } else {
            cmd.forward_stdout(&server).unwrap()
        };
        drop(server);
        let got = reader.join().unwrap();
        assert_eq!(done.bytes, N);
        assert_eq!(done.spliced, if copying { 0 } else { N });
        check_pattern(&got, N);
    }
}

#[test]
fn a_closed_sink_is_a_write_error_and_stops_the_child() {
    let _g = Guard::new();
    let (server, client) = socket_pair();
    drop(client);
    // An endless writer: only the stop can end it.
    let err = pt_cmd(["write", "100000000000"])
        .forward_stdout(&server)
        .unwrap_err();
    assert_eq!(err.step(), Step::Write, "{err}");
    assert!(err.to_string().contains("forwarding"), "{err}");
    // A pipe whose reader is gone: EPIPE, not a signal.
    let (r, w) = std::io::pipe().unwrap();
    drop(r);
    let err = pt_cmd(["write", "100000000000"])
        .forward_stdout_copying(&w)
        .unwrap_err();
    assert_eq!(err.step(), Step::Write);
    assert!(procession::__test_support::wait_for_reaper());
}

#[test]
fn a_pipeline_forwards_its_last_stage_and_reports_every_stage() {
    let _g = Guard::new();
    let dir = TempDir::new("forward-pipeline");
    let path = dir.join("out");
    let file = std::fs::File::create(&path).unwrap();
    let done = Pipeline::new([
        pt_cmd(["write", &N.to_string()]),
        pt_cmd(["echo"]),
        pt_cmd(["echo"]),
    ])
    .forward_stdout(&file)
    .unwrap();
    assert_eq!((done.bytes, done.spliced), (N, N));
    assert_eq!(done.stages.len(), 3);
    check_pattern(&std::fs::read(&path).unwrap(), N);
    // A failing middle stage: the exit error names it.
    let file = std::fs::File::create(dir.join("out2")).unwrap();
    let err = Command::new("echo")
        .arg("x")
        .pipe(&Command::shell("cat; exit 9"))
        .pipe(&Command::new("cat"))
        .forward_stdout(&file)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exit);
    assert_eq!(err.exit_status().unwrap().code(), Some(9));
    assert_eq!(std::fs::read(dir.join("out2")).unwrap(), b"x\n");
}

#[test]
fn stdin_from_a_file_and_a_stdout_setting_refused() {
    let _g = Guard::new();
    let dir = TempDir::new("forward-stdin");
    let input = dir.join("in");
    std::fs::write(&input, b"from a file\n").unwrap();
    let (server, client) = socket_pair();
    let reader = read_all(client);
    let done = Command::new("cat")
        .input_file(&input)
        .forward_stdout(&server)
        .unwrap();
    drop(server);
    assert_eq!(reader.join().unwrap(), b"from a file\n");
    assert_eq!(done.bytes, 12);
    let file = std::fs::File::create(dir.join("x")).unwrap();
    let err = Command::new("echo")
        .stdout(procession::Stdio::null())
        .forward_stdout(&file)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    // A child that fails: checked.
    let err = Command::shell("echo partial; exit 4")
        .forward_stdout(&file)
        .unwrap_err();
    assert_eq!(err.exit_status().unwrap().code(), Some(4));
    let _ = Duration::ZERO;
}

#[test]
fn child_stdout_forward_after_a_header() {
    let _g = Guard::new();
    let (server, client) = socket_pair();
    let reader = read_all(client);
    let mut child = pt_cmd(["write", &N.to_string()])
        .stdout(procession::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    (&server).write_all(b"HEADER").unwrap();
    let n = child.stdout.as_mut().unwrap().forward(&server).unwrap();
    drop(server);
    assert_eq!(n, N);
    assert!(child.wait().unwrap().success());
    let got = reader.join().unwrap();
    assert_eq!(&got[..6], b"HEADER");
    check_pattern(&got[6..], N);
}

#[cfg(feature = "tokio")]
mod async_forward {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    async fn tokio_pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    #[test]
    fn forwarding_to_a_tokio_socket_preserves_every_byte() {
        let rt = rt();
        let _g = Guard::new();
        rt.block_on(async {
            for copying in [false, true] {
                let (server, mut client) = tokio_pair().await;
                let reader = tokio::spawn(async move {
                    let mut got = Vec::new();
                    client.read_to_end(&mut got).await.unwrap();
                    got
                });
                let cmd = pt_cmd(["write", &N.to_string()]);
                let done = if copying {
                    cmd.forward_stdout_async_copying(&server).await.unwrap()
                } else {
                    cmd.forward_stdout_async(&server).await.unwrap()
                };
                drop(server);
                assert_eq!(done.bytes, N);
                assert_eq!(done.spliced, if copying { 0 } else { N });
                check_pattern(&reader.await.unwrap(), N);
            }
            // A pipeline into a file (not pollable: written directly).
            let dir = TempDir::new("forward-async-file");
            let path = dir.join("out");
            let file = std::fs::File::create(&path).unwrap();
            let done = Pipeline::new([pt_cmd(["write", &N.to_string()]), pt_cmd(["echo"])])
                .forward_stdout_async(&file)
                .await
                .unwrap();
            assert_eq!(done.bytes, N);
            check_pattern(&std::fs::read(&path).unwrap(), N);
        });
    }

    #[test]
    fn a_client_that_goes_away_ends_the_async_forwarding_and_stops_the_child() {
        let rt = rt();
        let _g = Guard::new();
        rt.block_on(async {
            let (server, client) = tokio_pair().await;
            drop(client);
            let err = pt_cmd(["write", "100000000000"])
                .forward_stdout_async(&server)
                .await
                .unwrap_err();
            assert_eq!(err.step(), Step::Write, "{err}");
            // The async pipe end's own forward.
            let (server, mut client) = tokio_pair().await;
            let mut child = pt_cmd(["write", "100000000000"])
                .stdout(procession::Stdio::piped())
                .spawn_async()
                .unwrap();
            let mut first = [0u8; 1000];
            let fwd = tokio::spawn(async move {
                let r = child.stdout.as_mut().unwrap().forward(&server).await;
                (r, child)
            });
            client.read_exact(&mut first).await.unwrap();
            check_pattern(&first, 1000);
            drop(client);
            let (r, child) = fwd.await.unwrap();
            assert!(r.is_err());
            drop(child);
        });
        assert!(procession::__test_support::wait_for_reaper());
    }
}

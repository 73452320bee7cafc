//! The "pipe an upload through a program and stream the result to a slow
//! client" pattern, on loopback: a tiny HTTP-like server runs `gzip -c` on
//! each request's body and streams gzip's output back as it is produced.
//!
//! - The upload is fed to gzip's stdin only as fast as gzip takes it.
//! - gzip's output is read only as fast as the client takes it: a slow
//!   client slows gzip down; the server's memory stays flat.
//! - A client that hangs up early makes the server drop the stream, which
//!   stops gzip (and reaps it) in the background.
//!
//! Run: `cargo run --example stream_to_tcp --features tokio`

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use procession::Command;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Serves one connection: headers, then the body through `gzip -c`.
async fn serve(socket: TcpStream) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    let (read_half, mut write_half) = socket.into_split();
    let mut body = BufReader::new(read_half);
    // The request line and headers, up to the blank line.
    let mut line = String::new();
    loop {
        line.clear();
        if body.read_line(&mut line).await? == 0 || line == "\r\n" {
            break;
        }
    }
    // What is left of `body` (buffered bytes included) is the upload.
    let mut out = Command::new("gzip")
        .arg("-c")
        .input_async_read(body)
        .stream_async()?;
    let pid = out.pid();
    let header = b"HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\n\r\n";
    if write_half.write_all(header).await.is_ok() {
        while let Some(chunk) = out.next().await {
            let Ok(chunk) = chunk else { break };
            if write_half.write_all(&chunk).await.is_err() {
                // The client is gone: dropping `out` stops gzip.
                break;
            }
        }
    }
    Ok(pid)
}

fn alive(pid: u32) -> bool {
    // A zombie counts: it is gone only once its parent (this program's
    // reaper) has collected it. Leaving before that would hand our
    // zombies to whoever adopts them.
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let mut pids = Vec::new();
        for _ in 0..2 {
            let (socket, _) = listener.accept().await?;
            pids.push(tokio::spawn(serve(socket)));
        }
        Ok::<_, std::io::Error>(pids)
    });

    // Client 1: uploads 8 MiB of text, reads the compressed result slowly.
    let upload: Vec<u8> = (0..200_000)
        .flat_map(|i| format!("line {i} of the upload\n").into_bytes())
        .collect();
    let mut client = TcpStream::connect(addr).await?;
    client.write_all(b"POST /gzip HTTP/1.1\r\n\r\n").await?;
    let (mut rd, mut wr) = client.into_split();
    let sent = upload.len();
    let writer = tokio::spawn(async move {
        wr.write_all(&upload).await?;
        wr.shutdown().await // end of the upload: gzip sees end-of-file
    });
    let start = Instant::now();
    let mut response = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = rd.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
        tokio::time::sleep(Duration::from_millis(1)).await; // a slow client
    }
    writer.await??;
    let header_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no header")?
        + 4;
    let gz = &response[header_end..];
    let unzipped = Command::new("gunzip")
        .arg("-c")
        .input_bytes(gz.to_vec())
        .stream()?
        .collect_bytes()?;
    println!(
        "client 1: uploaded {sent} bytes, received {} gzip bytes in {:?}, which unzip to {} bytes",
        gz.len(),
        start.elapsed(),
        unzipped.len()
    );
    assert_eq!(unzipped.len(), sent);

    // Client 2: starts an endless upload and hangs up after the first bytes.
    let mut client = TcpStream::connect(addr).await?;
    client.write_all(b"POST /gzip HTTP/1.1\r\n\r\n").await?;
    let (mut rd, mut wr) = client.into_split();
    let feeder = tokio::spawn(async move {
        let block = vec![b'x'; 64 * 1024];
        while wr.write_all(&block).await.is_ok() {}
    });
    let mut first = [0u8; 64];
    rd.read_exact(&mut first).await?;
    drop(rd);
    feeder.abort();

    let handles = server.await??;
    let mut pids = Vec::new();
    for h in handles {
        // Client 2's server side ends with an error (the hang-up) or Ok.
        if let Ok(Ok(pid)) = h.await {
            pids.push(pid);
        }
    }
    // Give the background stop sequence a moment, then check.
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "client 2 hung up early; of the {} gzip processes, {} still run",
        pids.len(),
        pids.iter().filter(|&&p| alive(p)).count()
    );
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|&p| !alive(p)));
    Ok(())
}

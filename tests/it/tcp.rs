//! Behaviour that needs a real listener: early 413 on Content-Length, 413 mid-stream on a
//! chunked body, and the embedded console files.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::common::*;

async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..pos]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|n| n.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= pos + 4 + len {
                        break;
                    }
                }
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn content_length_above_cap_is_refused_before_the_body_is_read() {
    let app = start().await;
    app.create_tenant("acme").await;
    let src = app
        .create_source(
            "acme",
            json!({"provider": "github", "secret": "tcp-test-secret-value", "max_payload_bytes": 1024}),
        )
        .await;
    let addr = app.serve_tcp().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let path = src["ingest_url"].as_str().unwrap();
    // Announce 10 MiB, send only the headers: the answer must come without the body.
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 10485760\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let resp = read_response(&mut stream).await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(resp.contains("PAYLOAD_TOO_LARGE"));
    assert!(
        resp.to_ascii_lowercase()
            .contains("application/problem+json")
    );
}

#[tokio::test]
async fn chunked_body_is_cut_off_at_the_cap() {
    let app = start().await;
    app.create_tenant("acme").await;
    let src = app
        .create_source(
            "acme",
            json!({"provider": "github", "secret": "tcp-test-secret-value", "max_payload_bytes": 65536}),
        )
        .await;
    let addr = app.serve_tcp().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let path = src["ingest_url"].as_str().unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nX-Hub-Signature-256: sha256=00\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Stream 16 KiB chunks without end; stop as soon as the server answers or closes.
    let chunk = vec![b'a'; 16 * 1024];
    let mut sent = 0usize;
    for _ in 0..64 {
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if stream.write_all(&frame).await.is_err() {
            break;
        }
        sent += chunk.len();
        let mut peek = [0u8; 1];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(20), stream.peek(&mut peek)).await
            && n > 0
        {
            break;
        }
    }
    let resp = read_response(&mut stream).await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(resp.contains("PAYLOAD_TOO_LARGE"));
    assert!(
        sent < 1024 * 1024,
        "the server stopped reading near the cap (sent {sent})"
    );
    // Rejected, so nothing stored and the rejection audited.
    assert!(app.events("acme").await.is_empty());
    assert!(
        app.audit("acme")
            .await
            .iter()
            .any(|a| a["code"] == "PAYLOAD_TOO_LARGE")
    );
}

#[tokio::test]
async fn console_and_docs_are_served_embedded_with_a_strict_csp() {
    let app = start().await;
    let addr = app.serve_tcp().await;
    let client = reqwest::Client::new();
    let index = client.get(format!("http://{addr}/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    let csp = index.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"));
    let html = index.text().await.unwrap();
    assert!(html.contains("/console/console.js"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
    let js = client
        .get(format!("http://{addr}/console/console.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    let docs = client
        .get(format!("http://{addr}/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    let docs_html = docs.text().await.unwrap();
    assert!(docs_html.contains("swagger"), "Swagger UI is served");
}

/// A connection from `local` (any 127.0.0.0/8 address) to `addr`.
async fn connect_from(local: &str, addr: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{local}:0").parse().expect("local address"))
        .expect("bind");
    socket.connect(addr).await.expect("connect")
}

/// Whether the server closed `stream` within `within` (EOF or reset).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn partial_headers_are_cut_off_by_the_header_read_timeout() {
    let app = start_with(|c| c.server.header_read_timeout_secs = 1).await;
    let addr = app.serve_tcp().await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    // Dribbling more bytes does not extend it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = slow.write_all(b"a").await;
    assert!(
        closed_within(&mut slow, Duration::from_secs(3)).await,
        "a connection with partial headers stayed open"
    );
}

#[tokio::test]
async fn connections_are_capped_per_peer_without_starving_other_peers() {
    let app = start_with(|c| c.server.max_connections_per_peer = 3).await;
    let addr = app.serve_tcp().await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = connect_from("127.0.0.2", addr).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    // Give the server a moment to admit them, then the fourth is closed at once.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = connect_from("127.0.0.2", addr).await;
    assert!(closed_within(&mut extra, Duration::from_secs(2)).await);
    // Another peer is served, promptly.
    let started = std::time::Instant::now();
    let mut ok = connect_from("127.0.0.1", addr).await;
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let text = read_response(&mut ok).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(started.elapsed() < Duration::from_millis(1000));
    let metrics = app.get("/metrics", &app.admin).await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("event=\"refused_peer\""),
        "refusals are counted: {}",
        text.lines()
            .filter(|l| l.contains("connections"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(held);
}

#[tokio::test]
async fn oversized_headers_missing_host_and_foreign_transfer_codings_are_refused() {
    let app = start().await;
    let addr = app.serve_tcp().await;
    // Headers above 64 KiB: 431, counted as a transport-level refusal.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let _ = s.write_all(big.as_bytes()).await;
    let text = read_response(&mut s).await;
    assert!(
        text.starts_with("HTTP/1.1 431"),
        "{}",
        &text[..text.len().min(80)]
    );
    let metrics = app.get("/metrics", &app.admin).await;
    assert!(
        String::from_utf8_lossy(&metrics.body).contains("event=\"transport_error\""),
        "transport refusals are counted"
    );
    // HTTP/1.1 without Host: 400 problem.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /api/keys HTTP/1.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let text = read_response(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("BAD_REQUEST"), "{text}");
    // `gzip, chunked`: refused, not taken raw.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /api/tenants HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    )
    .await
    .unwrap();
    let text = read_response(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 501"), "{text}");
    assert!(text.contains("TRANSFER_ENCODING_UNSUPPORTED"), "{text}");
}

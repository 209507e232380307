//! The global memory budget (`limits.memory`), attacked over real sockets:
//! stalled uploads hold the budget, and then every way in — a new HTTP
//! upload, a small gzip bomb, a gRPC export — is refused with 503 /
//! `UNAVAILABLE` instead of growing the daemon; once the attackers go, the
//! budget is free again and requests go through.

mod common;

use std::time::Duration;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;

const LIMIT: f64 = 8.0 * 1024.0 * 1024.0;

const RECEIVER: &str = r#"max_request_bytes = 1048576
grpc_max_message_bytes = 1048576
request_timeout = "30s"
[limits]
memory = 8388608
"#;

fn held(d: &TestDaemon) -> f64 {
    metric(&d.metrics(), "tracebridge_memory_bytes{part=\"requests\"}")
}

/// Starts an upload of `declared` bytes and sends `sent` of them, then
/// stalls. Returns the socket, and the status if the daemon answered at once.
async fn stalled_upload(d: &TestDaemon, declared: usize, sent: usize) -> (TcpStream, Option<u16>) {
    let addr = d.running().http_addr;
    let mut sock = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-protobuf\r\ncontent-length: {declared}\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.expect("head");
    // Whatever the bytes are: the daemon must not get to decoding them.
    let _ = sock.write_all(&vec![0x0a; sent]).await;
    let mut buf = [0u8; 64];
    let status = match tokio::time::timeout(Duration::from_millis(300), sock.read(&mut buf)).await {
        Ok(Ok(n)) if n >= 12 => std::str::from_utf8(&buf[9..12])
            .ok()
            .and_then(|s| s.parse().ok()),
        _ => None,
    };
    (sock, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_cannot_make_the_daemon_hold_more_than_its_budget() {
    let mut d = TestDaemon::start(RECEIVER, "").await;
    // Stalled uploads, 700 kB each, until the budget turns one away.
    let mut stalled = Vec::new();
    let mut refused_at = None;
    for i in 0..30 {
        let (sock, status) = stalled_upload(&d, 1_000_000, 700_000).await;
        match status {
            None => stalled.push(sock),
            Some(503) => {
                refused_at = Some(i);
                break;
            }
            Some(other) => panic!("upload {i}: unexpected {other}"),
        }
    }
    let refused_at = refused_at.expect("the budget must turn uploads away");
    assert!(
        refused_at >= 8,
        "about 8 MiB / 700 kB uploads fit, only {refused_at} did"
    );
    assert!(held(&d) <= LIMIT, "held {} > limits.memory", held(&d));

    // A small gzip bomb passes the door but cannot decompress into the budget.
    let bomb = gzip(&vec![0u8; 1_000_000]);
    let r = reqwest::Client::new()
        .post(d.http_url())
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));

    // gRPC: refused with UNAVAILABLE and RetryInfo, the request never decoded.
    let mut client = TraceServiceClient::connect(d.grpc_url())
        .await
        .expect("connect");
    let spans = (0..400)
        .map(|i| span(1, (i % 250) as u8, &"x".repeat(500)))
        .collect();
    let err = client
        .export(request(spans))
        .await
        .expect_err("over budget");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("limits.memory"), "{}", err.message());
    assert!(held(&d) <= LIMIT);
    let refused = metric(
        &d.metrics(),
        "tracebridge_receiver_refused_requests_total{transport=\"http\",reason=\"memory_budget\"}",
    );
    assert!(refused >= 2.0, "refusals are counted: {refused}");

    // The attackers leave: what they held is released, and a request goes through.
    drop(stalled);
    wait_until("the stalled uploads' memory is released", || {
        held(&d) == 0.0
    })
    .await;
    d.post_spans(vec![span(2, 1, "after")]).await;
    d.wait_for_spans(1).await;
    wait_until("the request's memory is released", || held(&d) == 0.0).await;
    d.stop().await;
}

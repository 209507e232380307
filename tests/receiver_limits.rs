//! Connection limits and timeouts of the receivers, attacked over real
//! sockets: slowloris, idle and half-open connections, more connections
//! than allowed, and a shutdown that no client can hold up.

mod common;

use std::time::Duration;

use common::fake_opik::FakeOpik;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SHORT: &str = "header_read_timeout = \"300ms\"\nidle_timeout = \"500ms\"\n";

/// Reads until the peer closes (or errors); `false` if it is still open after `within`.
async fn closed_within(sock: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(within, async {
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    read.await.is_ok()
}

fn open_connections(d: &TestDaemon, transport: &str) -> f64 {
    metric(
        &d.metrics(),
        &format!("tracebridge_receiver_open_connections{{transport=\"{transport}\"}}"),
    )
}

#[tokio::test]
async fn slowloris_and_idle_connections_are_closed() {
    let mut d = TestDaemon::start(SHORT, "").await;
    // Half a request head, never finished.
    let mut slow = TcpStream::connect(d.running().http_addr).await.unwrap();
    slow.write_all(b"POST /v1/traces HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // Connected, never a byte, on both receivers.
    let mut idle_http = TcpStream::connect(d.running().http_addr).await.unwrap();
    let mut idle_grpc = TcpStream::connect(d.running().grpc_addr).await.unwrap();
    for (what, sock) in [
        ("slowloris", &mut slow),
        ("idle HTTP", &mut idle_http),
        ("idle gRPC", &mut idle_grpc),
    ] {
        assert!(
            closed_within(sock, Duration::from_secs(15)).await,
            "{what} connection was never closed"
        );
    }
    wait_until("every connection to be closed", || {
        open_connections(&d, "http") == 0.0 && open_connections(&d, "grpc") == 0.0
    })
    .await;
    // The receiver still serves.
    d.post_spans(vec![span(1, 1, "after")]).await;
    assert_eq!(d.wait_for_spans(1).await.len(), 1);
    d.stop().await;
}

#[tokio::test]
async fn past_max_connections_newcomers_wait_and_the_admin_server_still_answers() {
    let mut d = TestDaemon::start("max_connections = 3\nidle_timeout = \"1m\"\n", "").await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(d.running().http_addr).await.unwrap());
    }
    wait_until("3 open connections", || open_connections(&d, "http") == 3.0).await;
    // A fourth client gets through the kernel's backlog but is not served.
    let url = d.http_url();
    let fourth = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .header("content-type", "application/x-protobuf")
            .body(prost::Message::encode_to_vec(&request(vec![span(
                2, 2, "fourth",
            )])))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!fourth.is_finished(), "served beyond max_connections");
    assert_eq!(open_connections(&d, "http"), 3.0);
    let health = reqwest::get(d.admin_url("/healthz")).await.unwrap();
    assert_eq!(
        health.status(),
        200,
        "the admin server has its own listener"
    );
    // One leaves: the fourth is served.
    held.pop();
    let status = tokio::time::timeout(Duration::from_secs(15), fourth)
        .await
        .expect("served once a slot freed")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    drop(held);
    d.stop().await;
}

#[tokio::test]
async fn a_half_open_client_does_not_hold_up_shutdown_and_open_traces_are_finalised() {
    let fake = FakeOpik::start(Some("key-1"), "team-ws").await;
    let opik = format!(
        "[destinations.opik]\ntype = \"opik\"\nurl = \"{}\"\napi_key = \"key-1\"\nworkspace = \"team-ws\"\nstale_trace_timeout = \"1h\"\nbatch.flush_interval = \"50ms\"\n",
        fake.url()
    );
    // Long timeouts: only the shutdown itself may close the half-open peers.
    // With shutdown_timeout = 40s, waiting for them would take the 20 s grace.
    let mut d = TestDaemon::start_with(
        "40s",
        "idle_timeout = \"5m\"\nheader_read_timeout = \"5m\"\n",
        &opik,
    )
    .await;
    // Five traces whose root never arrives.
    let spans: Vec<_> = (1..=5u8)
        .map(|t| {
            let mut s = span(t, 2, "child");
            s.parent_span_id = vec![9; 8];
            s
        })
        .collect();
    d.post_spans(spans).await;
    wait_until("the five early trace rows", || fake.traces().len() == 5).await;
    let mut half_open = TcpStream::connect(d.running().http_addr).await.unwrap();
    half_open
        .write_all(b"POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-le")
        .await
        .unwrap();
    let mut grpc_half_open = TcpStream::connect(d.running().grpc_addr).await.unwrap();
    grpc_half_open
        .write_all(b"PRI * HTTP/2.0\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    d.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "shutdown waited for half-open clients: {:?}",
        started.elapsed()
    );
    let finalised = fake
        .traces()
        .iter()
        .filter(|t| t.get("end_time").is_some())
        .count();
    assert_eq!(finalised, 5, "{:#?}", fake.traces());
}

//! Receiver authentication (and, below, TLS) over real sockets.

mod common;

use std::time::Duration;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const AUTH: &str = "[receiver.auth]\nbearer_tokens = [\"s3cret-one\", \"s3cret-two\"]\n";

#[tokio::test]
async fn http_requires_a_matching_bearer_token() {
    let mut d = TestDaemon::start(AUTH, "").await;
    let client = reqwest::Client::new();
    let body = request(vec![span(1, 1, "x")]).encode_to_vec();
    for (auth, status) in [
        (None, 401),
        (Some("Bearer wrong"), 401),
        (Some("s3cret-one"), 401),
        (Some("Bearer s3cret-two"), 200),
    ] {
        let mut req = client
            .post(d.http_url())
            .header("content-type", "application/x-protobuf")
            .body(body.clone());
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), status, "{auth:?}");
        if status == 401 {
            assert_eq!(r.headers()["www-authenticate"], "Bearer");
        }
    }
    assert_eq!(d.wait_for_spans(1).await.len(), 1);
    let m = d.metrics();
    assert_eq!(
        metric(
            &m,
            "tracebridge_receiver_refused_requests_total{transport=\"http\",reason=\"unauthenticated\"}"
        ),
        3.0,
        "{m}"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_huge_body_with_a_bad_token_is_never_read() {
    let mut d = TestDaemon::start(AUTH, "").await;
    let mut sock = tokio::net::TcpStream::connect(d.running().http_addr)
        .await
        .unwrap();
    sock.write_all(
        b"POST /v1/traces HTTP/1.1\r\nhost: x\r\nauthorization: Bearer nope\r\ncontent-type: application/x-protobuf\r\ncontent-length: 10737418240\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf))
        .await
        .expect("answered before any body byte was sent")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    d.stop().await;
}

#[tokio::test]
async fn grpc_requires_a_matching_bearer_token() {
    let mut d = TestDaemon::start(AUTH, "").await;
    let mut c = TraceServiceClient::connect(d.grpc_url()).await.unwrap();
    let err = c.export(request(vec![span(2, 1, "x")])).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let mut wrong = tonic::Request::new(request(vec![span(2, 2, "x")]));
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    assert_eq!(
        c.export(wrong).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    let mut right = tonic::Request::new(request(vec![span(2, 3, "x")]));
    right
        .metadata_mut()
        .insert("authorization", "Bearer s3cret-one".parse().unwrap());
    c.export(right).await.expect("authorised");
    let ids = d.wait_for_spans(1).await;
    assert_eq!(ids.into_iter().collect::<Vec<_>>(), vec![hex(&[3; 8])]);
    d.stop().await;
}

// ---- TLS: tracebridge exporting to tracebridge ----

use common::pki::Ca;
use std::time::Instant;

const FAST: &str = "batch.flush_interval = \"30ms\"\nretry.initial_interval = \"50ms\"\nretry.max_interval = \"200ms\"\n";

fn tls_receiver(cert: &std::path::Path, key: &std::path::Path, extra: &str) -> String {
    format!(
        "[receiver.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nreload_interval = \"200ms\"\n{extra}",
        cert.display(),
        key.display()
    )
}

/// A daemon whose only non-file destination forwards to `receiver` over TLS.
async fn exporter(receiver: &TestDaemon, protocol: &str, tls: &str) -> TestDaemon {
    let (addr, protocol) = match protocol {
        "grpc" => (receiver.running().grpc_addr, "grpc"),
        _ => (receiver.running().http_addr, "http/protobuf"),
    };
    TestDaemon::start(
        "",
        &format!(
            "[destinations.forward]\ntype = \"otlp\"\nprotocol = \"{protocol}\"\nendpoint = \"https://{addr}\"\n{FAST}{tls}\n"
        ),
    )
    .await
}

async fn send(d: &TestDaemon, id: u8) {
    let r = reqwest::Client::new()
        .post(d.http_url())
        .header("content-type", "application/x-protobuf")
        .body(request(vec![span(40, id, "tls")]).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn arrives(d: &TestDaemon, id: u8, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if d.written_span_ids().contains(&hex(&[id; 8])) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

#[tokio::test]
async fn tls_receivers_serve_grpc_and_http_to_exporters_that_trust_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let (cert, key) = ca.write_leaf(dir.path(), "server", &["127.0.0.1", "localhost"]);
    let ca_file = ca.write(dir.path(), "ca.pem");
    let mut receiver = TestDaemon::start(&tls_receiver(&cert, &key, ""), "").await;
    let trust = format!("tls.ca_file = \"{}\"\n", ca_file.display());
    let mut over_grpc = exporter(&receiver, "grpc", &trust).await;
    let mut over_http = exporter(&receiver, "http", &trust).await;
    send(&over_grpc, 1).await;
    send(&over_http, 2).await;
    assert!(
        arrives(&receiver, 1, Duration::from_secs(10)).await,
        "gRPC over TLS"
    );
    assert!(
        arrives(&receiver, 2, Duration::from_secs(10)).await,
        "HTTP over TLS"
    );

    // An exporter that does not trust the CA gets nowhere...
    let mut untrusting = exporter(&receiver, "grpc", "").await;
    send(&untrusting, 3).await;
    assert!(!arrives(&receiver, 3, Duration::from_millis(800)).await);
    let m = untrusting.metrics();
    assert!(
        metric(
            &m,
            "tracebridge_exporter_retries_total{destination=\"forward\",reason=\"connection_error\"}"
        ) > 0.0,
        "{m}"
    );
    // ...unless told to skip verification (local tests only).
    let mut insecure = exporter(&receiver, "http", "tls.insecure_skip_verify = true\n").await;
    send(&insecure, 4).await;
    assert!(
        arrives(&receiver, 4, Duration::from_secs(10)).await,
        "insecure_skip_verify"
    );
    for d in [
        &mut over_grpc,
        &mut over_http,
        &mut untrusting,
        &mut insecure,
        &mut receiver,
    ] {
        d.stop().await;
    }
}

#[tokio::test]
async fn mtls_refuses_clients_without_a_certificate_from_the_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("server CA");
    let clients = Ca::new("client CA");
    let (cert, key) = ca.write_leaf(dir.path(), "server", &["127.0.0.1"]);
    let (client_cert, client_key) = clients.write_leaf(dir.path(), "client", &["exporter"]);
    let (rogue_cert, rogue_key) = Ca::new("rogue").write_leaf(dir.path(), "rogue", &["exporter"]);
    let ca_file = ca.write(dir.path(), "ca.pem");
    let client_ca = clients.write(dir.path(), "clients.pem");
    let mut receiver = TestDaemon::start(
        &tls_receiver(
            &cert,
            &key,
            &format!("client_ca_file = \"{}\"\n", client_ca.display()),
        ),
        "",
    )
    .await;
    let trust = format!("tls.ca_file = \"{}\"\n", ca_file.display());
    let mut anonymous = exporter(&receiver, "grpc", &trust).await;
    let mut rogue = exporter(
        &receiver,
        "http",
        &format!(
            "{trust}tls.client_cert_file = \"{}\"\ntls.client_key_file = \"{}\"\n",
            rogue_cert.display(),
            rogue_key.display()
        ),
    )
    .await;
    let mut known = exporter(
        &receiver,
        "grpc",
        &format!(
            "{trust}tls.client_cert_file = \"{}\"\ntls.client_key_file = \"{}\"\n",
            client_cert.display(),
            client_key.display()
        ),
    )
    .await;
    send(&anonymous, 1).await;
    send(&rogue, 2).await;
    send(&known, 3).await;
    assert!(
        arrives(&receiver, 3, Duration::from_secs(10)).await,
        "a client certificate from the client CA passes"
    );
    assert!(
        !arrives(&receiver, 1, Duration::from_millis(500)).await,
        "no client certificate"
    );
    assert!(
        !arrives(&receiver, 2, Duration::from_millis(100)).await,
        "a certificate from another CA"
    );
    for d in [&mut anonymous, &mut rogue, &mut known, &mut receiver] {
        d.stop().await;
    }
}

#[tokio::test]
async fn a_replaced_certificate_is_picked_up_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let old_ca = Ca::new("old CA");
    let new_ca = Ca::new("new CA");
    let (cert, key) = old_ca.write_leaf(dir.path(), "server", &["127.0.0.1"]);
    let new_ca_file = new_ca.write(dir.path(), "new-ca.pem");
    let mut receiver = TestDaemon::start(&tls_receiver(&cert, &key, ""), "").await;
    let mut client = exporter(
        &receiver,
        "grpc",
        &format!("tls.ca_file = \"{}\"\n", new_ca_file.display()),
    )
    .await;
    send(&client, 1).await;
    assert!(
        !arrives(&receiver, 1, Duration::from_millis(500)).await,
        "the old certificate is not trusted"
    );
    // Rotate: write the new pair (as a cert-manager would), then wait for the reload.
    let (new_cert, new_key) = new_ca.leaf(&["127.0.0.1"]);
    std::fs::write(&key, new_key).unwrap();
    std::fs::write(&cert, new_cert).unwrap();
    assert!(
        arrives(&receiver, 1, Duration::from_secs(10)).await,
        "delivered once the new certificate is served"
    );
    client.stop().await;
    receiver.stop().await;
}

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

//! OTLP/gRPC receiver over a real loopback socket, driven by a tonic client.

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tonic::Code;
use tonic::codec::CompressionEncoding;

const LIMIT: usize = 256 * 1024;

async fn daemon() -> TestDaemon {
    TestDaemon::start(&format!("grpc_max_message_bytes = {LIMIT}"), "").await
}

async fn client(d: &TestDaemon) -> TraceServiceClient<tonic::transport::Channel> {
    TraceServiceClient::connect(d.grpc_url())
        .await
        .expect("connect")
        .max_encoding_message_size(64 * 1024 * 1024)
}

#[tokio::test]
async fn exports_plain_and_gzip_and_keeps_good_spans_of_a_bad_request() {
    let mut d = daemon().await;
    let mut c = client(&d).await;
    let reply = c
        .export(request(vec![span(1, 1, "plain")]))
        .await
        .expect("export");
    assert!(reply.into_inner().partial_success.is_none());

    let mut gz = client(&d).await.send_compressed(CompressionEncoding::Gzip);
    gz.export(request(vec![span(1, 2, "gzip")]))
        .await
        .expect("gzip export");

    let mut bad = span(1, 3, "bad");
    bad.trace_id = vec![1; 8];
    let reply = c
        .export(request(vec![span(1, 4, "good"), bad]))
        .await
        .expect("partial")
        .into_inner();
    let partial = reply.partial_success.expect("partial_success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial
            .error_message
            .contains("trace_id must be 16 bytes (32 hex digits), got 8"),
        "{}",
        partial.error_message
    );

    let ids = d.wait_for_spans(3).await;
    assert_eq!(ids.len(), 3);
    for id in [1u8, 2, 4] {
        assert!(ids.contains(&hex(&[id; 8])));
    }
    let m = d.metrics();
    assert_eq!(
        metric(
            &m,
            "tracebridge_receiver_accepted_spans_total{transport=\"grpc\"}"
        ),
        3.0,
        "{m}"
    );
    d.stop().await;
}

#[tokio::test]
async fn the_project_name_metadata_reaches_the_pipeline() {
    let mut d = daemon().await;
    let mut c = client(&d).await;
    let mut req = tonic::Request::new(request(vec![span(2, 1, "p")]));
    req.metadata_mut()
        .insert("projectname", "my-project".parse().unwrap());
    c.export(req).await.expect("export with projectName");
    c.export(request(vec![span(2, 2, "no project")]))
        .await
        .expect("export");
    assert_eq!(d.wait_for_spans(2).await.len(), 2);
    let records = d.records();
    let project_of = |id: u8| {
        records
            .iter()
            .find(|r| r["span_id"] == hex(&[id; 8]))
            .map(|r| (r["project_name"].clone(), r["transport"].clone()))
    };
    assert_eq!(project_of(1), Some(("my-project".into(), "grpc".into())));
    assert_eq!(
        project_of(2),
        Some((serde_json::Value::Null, "grpc".into()))
    );
    d.stop().await;
}

#[tokio::test]
async fn a_message_over_the_limit_gets_resource_exhausted_naming_the_limit() {
    let mut d = daemon().await;
    let mut big = span(3, 1, "big");
    big.name = "x".repeat(LIMIT + 1);
    let mut c = client(&d).await;
    let err = c.export(request(vec![big.clone()])).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains(&LIMIT.to_string()),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("receiver.grpc_max_message_bytes"),
        "{}",
        err.message()
    );

    // Compressed, it fits on the wire but not once decompressed.
    let mut gz = client(&d).await.send_compressed(CompressionEncoding::Gzip);
    let err = gz.export(request(vec![big])).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains(&LIMIT.to_string()),
        "{}",
        err.message()
    );

    // Still serving.
    c.export(request(vec![span(3, 2, "small")]))
        .await
        .expect("export after refusal");
    assert_eq!(d.wait_for_spans(1).await.len(), 1);
    d.stop().await;
}

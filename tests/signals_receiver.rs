//! OTLP logs and metrics on both receivers: accepted, counted and
//! acknowledged (never 404 / UNIMPLEMENTED), with the traces receivers'
//! encodings, compression, limits and authentication. Logs and metrics go
//! through the spool to the destinations that take them (tests/logs_join.rs,
//! tests/signals_forwarding.rs); a signal none takes is counted and never
//! spooled.

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric::Data,
};
use prost::Message as _;

fn logs(n: usize) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: (0..n)
                    .map(|i| LogRecord {
                        event_name: "gen_ai.client.inference.operation.details".into(),
                        trace_id: vec![1; 16],
                        span_id: vec![i as u8 + 1; 8],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metrics(points: usize) -> ExportMetricsServiceRequest {
    let point = NumberDataPoint::default();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    Metric {
                        name: "gen_ai.client.token.usage".into(),
                        data: Some(Data::Sum(Sum {
                            data_points: vec![point.clone(); points - 1],
                            ..Default::default()
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "up".into(),
                        data: Some(Data::Gauge(Gauge {
                            data_points: vec![point],
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn post(d: &TestDaemon, path: &str, content_type: &str, body: Vec<u8>) -> u16 {
    let url = d.http_url().replace("/v1/traces", path);
    reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .header("content-encoding", "gzip")
        .body(gzip(&body))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Bytes in the spool's segment files.
fn spool_bytes(d: &TestDaemon) -> u64 {
    std::fs::read_dir(d.dir.path().join("state").join("spool"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn logs_and_metrics_over_http_are_acknowledged_and_counted() {
    let mut d = TestDaemon::start("", "").await;
    let pb = "application/x-protobuf";
    assert_eq!(post(&d, "/v1/logs", pb, logs(3).encode_to_vec()).await, 200);
    assert_eq!(
        post(&d, "/v1/metrics", pb, metrics(4).encode_to_vec()).await,
        200
    );
    let json = serde_json::to_vec(&logs(2)).unwrap();
    assert_eq!(post(&d, "/v1/logs", "application/json", json).await, 200);
    assert_eq!(
        post(&d, "/v1/logs", pb, b"not protobuf".to_vec()).await,
        400,
        "undecodable bodies are refused as for traces"
    );
    let m = d.metrics();
    let series = |s: &str| metric(&m, s);
    assert_eq!(
        series("tracebridge_receiver_accepted_log_records_total{transport=\"http\"}"),
        5.0
    );
    assert_eq!(
        series("tracebridge_receiver_accepted_metric_points_total{transport=\"http\"}"),
        4.0
    );
    // The file destination takes neither: nothing is spooled, both are
    // counted as unforwarded at the receiver.
    assert_eq!(
        series("tracebridge_receiver_unforwarded_items_total{transport=\"http\",signal=\"logs\"}"),
        5.0
    );
    assert_eq!(
        spool_bytes(&d),
        0,
        "no destination takes logs or metrics: nothing spooled"
    );
    assert!(
        !m.contains("outcome=\"not_taken\""),
        "no destination was given them"
    );
    assert_eq!(
        series(
            "tracebridge_receiver_unforwarded_items_total{transport=\"http\",signal=\"metrics\"}"
        ),
        4.0
    );
    d.stop().await;
}

#[tokio::test]
async fn logs_and_metrics_over_grpc_are_acknowledged_and_counted() {
    let mut d = TestDaemon::start("", "").await;
    let mut logs_client = LogsServiceClient::connect(d.grpc_url()).await.unwrap();
    let reply = logs_client.export(logs(2)).await.unwrap().into_inner();
    assert!(reply.partial_success.is_none());
    let mut metrics_client = MetricsServiceClient::connect(d.grpc_url()).await.unwrap();
    metrics_client.export(metrics(3)).await.unwrap();
    let m = d.metrics();
    assert_eq!(
        metric(
            &m,
            "tracebridge_receiver_accepted_log_records_total{transport=\"grpc\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(
            &m,
            "tracebridge_receiver_accepted_metric_points_total{transport=\"grpc\"}"
        ),
        3.0
    );
    d.stop().await;
}

#[tokio::test]
async fn logs_need_the_bearer_token_too() {
    let mut d = TestDaemon::start("[receiver.auth]\nbearer_tokens = [\"t0k\"]\n", "").await;
    assert_eq!(
        post(
            &d,
            "/v1/logs",
            "application/x-protobuf",
            logs(1).encode_to_vec()
        )
        .await,
        401
    );
    let mut client = LogsServiceClient::connect(d.grpc_url()).await.unwrap();
    let status = client.export(logs(1)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    d.stop().await;
}

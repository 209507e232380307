//! Logs and metrics forwarded to an OTLP destination that opts in
//! (`signals = [...]`), through the whole daemon, over gRPC and HTTP: the
//! destination's headers and gzip, `partial_success` counted, privacy mode
//! applied to log records; a destination that does not opt in gets none.

mod common;

use common::otlp_sink::{OtlpSink, Reply};
use common::*;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data,
};
use prost::Message as _;
use tracebridge::pdata::key_value;

const FAST: &str = "batch.flush_interval = \"30ms\"\nretry.initial_interval = \"50ms\"\nretry.max_interval = \"200ms\"\n";

fn text(s: &str) -> Value {
    Value::StringValue(s.into())
}

fn logs(n: usize) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: vec![key_value("service.name", text("chat-app"))],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: (0..n)
                    .map(|i| LogRecord {
                        event_name: "gen_ai.client.inference.operation.details".into(),
                        trace_id: vec![1; 16],
                        span_id: vec![i as u8 + 1; 8],
                        body: Some(AnyValue {
                            value: Some(text("the secret prompt")),
                        }),
                        attributes: vec![
                            key_value("gen_ai.request.model", text("gpt-4o")),
                            key_value(
                                "gen_ai.input.messages",
                                text(r#"[{"role":"user","parts":[{"type":"text","content":"the secret prompt"}]}]"#),
                            ),
                        ],
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
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "gen_ai.client.token.usage".into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint::default(); points],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn post(d: &TestDaemon, path: &str, body: Vec<u8>) {
    let status = reqwest::Client::new()
        .post(d.http_url().replace("/v1/traces", path))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "{path}");
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

/// A destination's outcome count; 0 before the series exists.
fn outcome(d: &TestDaemon, family: &str, outcome: &str) -> f64 {
    let series = format!(
        "tracebridge_exporter_{family}_total{{destination=\"sink\",outcome=\"{outcome}\"}} "
    );
    d.metrics()
        .lines()
        .find_map(|l| l.strip_prefix(&series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Sends 3 log records, 4 metric points and 2 spans; the sink answers the
/// first logs request with a partial success rejecting one record.
async fn forward_all_three(protocol: &str, privacy: bool) -> (OtlpSink, TestDaemon) {
    let sink = OtlpSink::start().await;
    let endpoint = match protocol {
        "grpc" => format!("http://{}", sink.grpc_addr),
        _ => format!("http://{}", sink.http_addr),
    };
    let d = TestDaemon::start(
        "",
        &format!(
            "[destinations.sink]\ntype = \"otlp\"\nprotocol = \"{protocol}\"\nendpoint = \"{endpoint}\"\nsignals = [\"traces\", \"logs\", \"metrics\"]\nheaders = {{ \"x-team\" = \"llm\" }}\nproject_name = \"p1\"\nprivacy_mode = {privacy}\n{FAST}"
        ),
    )
    .await;
    sink.script([Reply::PartialSuccess {
        rejected: 1,
        message: "one record too old".into(),
    }]);
    post(&d, "/v1/logs", logs(3).encode_to_vec()).await;
    wait_until("3 log records at the sink", || {
        sink.received()
            .iter()
            .map(|r| r.log_record_count())
            .sum::<usize>()
            == 3
    })
    .await;
    post(&d, "/v1/metrics", metrics(4).encode_to_vec()).await;
    d.post_spans(spans(2)).await;
    wait_until("the metric and 2 spans at the sink", || {
        sink.accepted_metrics() == 1 && sink.accepted_spans() == 2
    })
    .await;
    wait_until("the outcomes counted", || {
        outcome(&d, "log_records", "forwarded") == 2.0
            && outcome(&d, "metric_points", "forwarded") == 4.0
    })
    .await;
    (sink, d)
}

fn check_received(sink: &OtlpSink, transport: &str) {
    let got = sink.received();
    let logs = got.iter().find(|r| r.logs.is_some()).unwrap();
    assert_eq!(logs.transport, transport);
    assert_eq!(logs.header("x-team"), Some("llm"));
    let metrics = got.iter().find(|r| r.metrics.is_some()).unwrap();
    assert_eq!(metrics.header("x-team"), Some("llm"));
    let gzip = match transport {
        "grpc" => logs.header("grpc-encoding"),
        _ => logs.content_encoding.as_deref(),
    };
    assert_eq!(gzip, Some("gzip"));
    let rl = &logs.logs.as_ref().unwrap().resource_logs[0];
    let resource = &rl.resource.as_ref().unwrap().attributes;
    assert_eq!(attr(resource, "service.name"), Some(&text("chat-app")));
    assert_eq!(
        attr(resource, "openinference.project.name"),
        Some(&text("p1"))
    );
    let metric = &metrics.metrics.as_ref().unwrap().resource_metrics[0].scope_metrics[0].metrics[0];
    assert_eq!(metric.name, "gen_ai.client.token.usage");
}

/// The first log record the sink received.
fn first_record(sink: &OtlpSink) -> LogRecord {
    let logs = sink.received().iter().find_map(|r| r.logs.clone()).unwrap();
    logs.resource_logs[0].scope_logs[0].log_records[0].clone()
}

#[tokio::test]
async fn logs_and_metrics_are_forwarded_over_grpc() {
    let (sink, mut d) = forward_all_three("grpc", false).await;
    check_received(&sink, "grpc");
    let record = first_record(&sink);
    assert_eq!(
        record.body.as_ref().and_then(|b| b.value.as_ref()),
        Some(&text("the secret prompt")),
        "forwarded as received"
    );
    assert_eq!(outcome(&d, "log_records", "rejected"), 1.0);
    d.stop().await;
}

#[tokio::test]
async fn logs_and_metrics_are_forwarded_over_http_and_privacy_strips_records() {
    let (sink, mut d) = forward_all_three("http/protobuf", true).await;
    check_received(&sink, "http");
    assert_eq!(outcome(&d, "log_records", "rejected"), 1.0);
    let plain: Vec<u8> = sink
        .received()
        .iter()
        .filter_map(|r| r.logs.as_ref())
        .flat_map(|l| l.encode_to_vec())
        .collect();
    assert!(!plain.is_empty());
    let secret = b"the secret prompt";
    assert!(
        !plain.windows(secret.len()).any(|w| w == secret),
        "no content under privacy mode"
    );
    let record = first_record(&sink);
    assert!(record.body.is_none());
    assert_eq!(
        attr(&record.attributes, "gen_ai.request.model"),
        Some(&text("gpt-4o"))
    );
    assert_eq!(record.trace_id, vec![1; 16]);
    d.stop().await;
}

#[tokio::test]
async fn a_destination_without_logs_in_signals_gets_none() {
    let sink = OtlpSink::start().await;
    let mut d = TestDaemon::start(
        "",
        &format!(
            "[destinations.sink]\ntype = \"otlp\"\nprotocol = \"grpc\"\nendpoint = \"http://{}\"\nsignals = [\"traces\", \"metrics\"]\n{FAST}",
            sink.grpc_addr
        ),
    )
    .await;
    post(&d, "/v1/logs", logs(2).encode_to_vec()).await;
    post(&d, "/v1/metrics", metrics(3).encode_to_vec()).await;
    wait_until("the metric at the sink", || sink.accepted_metrics() == 1).await;
    assert_eq!(
        metric(
            &d.metrics(),
            "tracebridge_receiver_unforwarded_items_total{transport=\"http\",signal=\"logs\"}"
        ),
        2.0,
        "no destination takes logs: acknowledged and counted, not spooled"
    );
    assert!(sink.received().iter().all(|r| r.logs.is_none()));
    wait_until("the file destination counts the points it does not take", || {
        metric(
            &d.metrics(),
            "tracebridge_exporter_metric_points_total{destination=\"out\",outcome=\"not_taken\"}",
        ) == 3.0
    })
    .await;
    d.stop().await;
}

/// An LLM span of OTel GenAI event mode (no messages), trace 1, span `id`.
fn chat_span(id: u8) -> opentelemetry_proto::tonic::trace::v1::Span {
    let mut s = span(1, id, "chat gpt-4o");
    s.attributes = vec![
        key_value("gen_ai.operation.name", text("chat")),
        key_value("gen_ai.request.model", text("gpt-4o")),
        key_value("gen_ai.usage.input_tokens", Value::IntValue(9)),
    ];
    s
}

/// The inference-details record of span `id`.
fn details(id: u8, question: &str) -> ExportLogsServiceRequest {
    let mut req = logs(1);
    let record = &mut req.resource_logs[0].scope_logs[0].log_records[0];
    record.span_id = vec![id; 8];
    record.body = None;
    record.attributes = vec![
        key_value(
            "gen_ai.input.messages",
            text(&format!(
                r#"[{{"role":"user","parts":[{{"type":"text","content":"{question}"}}]}}]"#
            )),
        ),
        key_value(
            "gen_ai.output.messages",
            text(r#"[{"role":"assistant","parts":[{"type":"text","content":"an answer"}]}]"#),
        ),
    ];
    req
}

fn forwarded_attr(sink: &OtlpSink, id: u8, key: &str) -> Option<Value> {
    sink.received()
        .iter()
        .filter_map(|r| r.request.as_ref())
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .find(|s| s.span_id == vec![id; 8])
        .and_then(|s| attr(&s.attributes, key).cloned())
}

#[tokio::test]
async fn genai_log_records_enrich_openinference_spans_in_either_order() {
    let sink = OtlpSink::start().await;
    let mut d = TestDaemon::start(
        "",
        &format!(
            "[destinations.phoenix]\ntype = \"otlp\"\nprotocol = \"http/protobuf\"\nendpoint = \"http://{}\"\nsemconv = \"openinference\"\nlog_join_span_wait = \"3s\"\n{FAST}",
            sink.http_addr
        ),
    )
    .await;
    let input = "llm.input_messages.0.message.content";
    // Logs, then spans: the record waits, the span takes it.
    post(&d, "/v1/logs", details(1, "first question").encode_to_vec()).await;
    d.post_spans(vec![chat_span(1)]).await;
    wait_until("span 1 at the sink", || {
        forwarded_attr(&sink, 1, "openinference.span.kind").is_some()
    })
    .await;
    assert_eq!(
        forwarded_attr(&sink, 1, input),
        Some(text("first question"))
    );
    // Spans, then logs within the wait: the span waits for its record.
    d.post_spans(vec![chat_span(2)]).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        forwarded_attr(&sink, 2, "openinference.span.kind").is_none(),
        "held for its records"
    );
    post(
        &d,
        "/v1/logs",
        details(2, "second question").encode_to_vec(),
    )
    .await;
    wait_until("span 2 at the sink", || {
        forwarded_attr(&sink, 2, "openinference.span.kind").is_some()
    })
    .await;
    assert_eq!(
        forwarded_attr(&sink, 2, input),
        Some(text("second question"))
    );
    assert_eq!(
        metric(
            &d.metrics(),
            "tracebridge_exporter_log_records_total{destination=\"phoenix\",outcome=\"joined\"}"
        ),
        2.0
    );
    assert!(
        sink.received().iter().all(|r| r.logs.is_none()),
        "joined, not forwarded (signals has no logs)"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_backend_without_a_logs_service_fails_the_logs_counted_with_the_fix() {
    let sink = OtlpSink::start().await;
    let mut d = TestDaemon::start(
        "",
        &format!(
            "[destinations.sink]\ntype = \"otlp\"\nprotocol = \"grpc\"\nendpoint = \"http://{}\"\nsignals = [\"traces\", \"logs\"]\n{FAST}",
            sink.grpc_addr
        ),
    )
    .await;
    sink.script([Reply::Grpc(tonic::Code::Unimplemented, None)]);
    post(&d, "/v1/logs", logs(2).encode_to_vec()).await;
    wait_until("the records counted as failed", || {
        outcome(&d, "log_records", "failed") == 2.0
    })
    .await;
    let status = d.admin_text("/status").await;
    assert!(
        status.contains("remove \\\"logs\\\" from destinations.sink.signals"),
        "{status}"
    );
    d.stop().await;
}

//! The whole daemon forwarding to an in-process OTLP sink.

mod common;

use std::time::{Duration, Instant};

use common::fake_opik::{FakeOpik, Scripted};
use common::otlp_sink::{OtlpSink, Reply};
use common::*;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn attr_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attrs, key)? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/dialects/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

const FAST: &str = "batch.flush_interval = \"30ms\"\nretry.initial_interval = \"50ms\"\nretry.max_interval = \"200ms\"\n";

#[tokio::test]
async fn arize_over_grpc_sends_its_headers_project_and_openinference() {
    let sink = OtlpSink::start().await;
    let mut d = TestDaemon::start(
        "",
        &format!(
            "[destinations.arize]\ntype = \"arize\"\nendpoint = \"http://{}\"\nspace_id = \"space-9\"\napi_key = \"ak-9\"\nproject_name = \"llm-prod\"\n{FAST}",
            sink.grpc_addr
        ),
    )
    .await;
    d.post_json(fixture("genai_legacy")).await;
    wait_until("2 spans at the sink", || sink.accepted_spans() == 2).await;
    let got = sink.received();
    let r = &got[0];
    assert_eq!(r.transport, "grpc");
    assert_eq!(r.header("authorization"), Some("ak-9"));
    assert_eq!(r.header("arize-space-id"), Some("space-9"));
    assert_eq!(r.header("space_id"), Some("space-9"));
    assert_eq!(r.header("api_key"), Some("ak-9"));
    assert_eq!(r.header("arize-interface"), Some("otel"));
    assert_eq!(r.content_encoding.as_deref(), Some("gzip"));
    let req = r.request.as_ref().unwrap();
    let resource = &req.resource_spans[0].resource.as_ref().unwrap().attributes;
    assert_eq!(
        attr_str(resource, "openinference.project.name"),
        Some("llm-prod")
    );
    assert_eq!(attr_str(resource, "model_id"), Some("llm-prod"));
    assert_eq!(attr_str(resource, "service.name"), Some("support-bot"));
    let span = &req.resource_spans[0].scope_spans[0].spans[0];
    // A v1.36 span Phoenix cannot convert: enriched on the way.
    assert_eq!(
        attr_str(&span.attributes, "openinference.span.kind"),
        Some("LLM")
    );
    assert_eq!(
        attr_str(&span.attributes, "llm.model_name"),
        Some("gpt-4o-mini-2024-07-18")
    );
    assert_eq!(
        attr(&span.attributes, "llm.token_count.prompt"),
        Some(&Value::IntValue(55))
    );
    assert_eq!(
        attr_str(&span.attributes, "llm.input_messages.1.message.content"),
        Some("Where is my order 42?")
    );
    assert_eq!(
        attr_str(&span.attributes, "gen_ai.system"),
        Some("openai"),
        "originals stay"
    );
    d.stop().await;
}

#[tokio::test]
async fn json_in_protobuf_out_over_http_with_gzip() {
    let sink = OtlpSink::start().await;
    let mut d = TestDaemon::start(
        "",
        &format!(
            "[destinations.phoenix]\ntype = \"otlp\"\nprotocol = \"http/protobuf\"\nendpoint = \"http://{}\"\nheaders = {{ \"x-project-name\" = \"p1\" }}\n{FAST}",
            sink.http_addr
        ),
    )
    .await;
    d.post_json(fixture("openrouter")).await;
    wait_until("1 span at the sink", || sink.accepted_spans() == 1).await;
    let r = &sink.received()[0];
    assert_eq!(r.transport, "http");
    assert_eq!(r.content_type.as_deref(), Some("application/x-protobuf"));
    assert_eq!(r.content_encoding.as_deref(), Some("gzip"));
    assert_eq!(r.header("x-project-name"), Some("p1"));
    let span = &r.request.as_ref().unwrap().resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(hex(&span.trace_id), "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb");
    assert_eq!(
        attr(&span.attributes, "gen_ai.usage.input_tokens"),
        Some(&Value::IntValue(29))
    );
    assert!(
        attr(&span.attributes, "openinference.span.kind").is_none(),
        "passthrough by default"
    );
    d.stop().await;
}

#[tokio::test]
async fn rebatching_respects_max_items_and_keeps_resource_grouping() {
    let sink = OtlpSink::start().await;
    let mut d = TestDaemon::start(
        "",
        &format!(
            "[destinations.o]\ntype = \"otlp\"\nendpoint = \"http://{}\"\nbatch.max_items = 10\nbatch.flush_interval = \"100ms\"\n",
            sink.grpc_addr
        ),
    )
    .await;
    d.post_spans(spans(35)).await;
    wait_until("35 spans", || sink.accepted_spans() == 35).await;
    let got = sink.received();
    assert_eq!(
        got.len(),
        4,
        "{:?}",
        got.iter().map(|r| r.span_count()).collect::<Vec<_>>()
    );
    for r in &got {
        assert!(r.span_count() <= 10);
        let req = r.request.as_ref().unwrap();
        assert_eq!(req.resource_spans.len(), 1);
        assert_eq!(
            attr_str(
                &req.resource_spans[0].resource.as_ref().unwrap().attributes,
                "service.name"
            ),
            Some("tests")
        );
    }
    d.stop().await;
}

#[tokio::test]
async fn http_retries_honour_retry_after_and_grpc_honours_retry_info() {
    let sink = OtlpSink::start().await;
    sink.script([Reply::Http {
        status: 503,
        headers: vec![("retry-after", "1".into())],
    }]);
    let mut d = TestDaemon::start(
        "",
        &format!("[destinations.o]\ntype = \"otlp\"\nprotocol = \"http/protobuf\"\nendpoint = \"http://{}\"\n{FAST}", sink.http_addr),
    )
    .await;
    d.post_spans(spans(3)).await;
    wait_until("3 spans", || sink.accepted_spans() == 3).await;
    let got = sink.received();
    assert_eq!(got.len(), 2);
    assert!(
        got[1].at.duration_since(got[0].at) >= Duration::from_millis(950),
        "Retry-After ignored"
    );
    d.stop().await;

    let sink = OtlpSink::start().await;
    sink.script([
        Reply::Grpc(tonic::Code::Unavailable, None),
        Reply::Grpc(tonic::Code::ResourceExhausted, Some(Duration::from_secs(1))),
    ]);
    let mut d = TestDaemon::start(
        "",
        &format!(
            "[destinations.o]\ntype = \"otlp\"\nendpoint = \"http://{}\"\n{FAST}",
            sink.grpc_addr
        ),
    )
    .await;
    d.post_spans(spans(2)).await;
    wait_until("2 spans", || sink.accepted_spans() == 2).await;
    let got = sink.received();
    assert_eq!(got.len(), 3);
    assert!(
        got[2].at.duration_since(got[1].at) >= Duration::from_millis(950),
        "RetryInfo ignored"
    );
    d.stop().await;
}

#[tokio::test]
async fn resource_exhausted_without_retry_info_is_not_retried_and_partial_success_is_counted() {
    let sink = OtlpSink::start().await;
    sink.script([
        Reply::Grpc(tonic::Code::ResourceExhausted, None),
        Reply::PartialSuccess {
            rejected: 1,
            message: "span too old".into(),
        },
    ]);
    let mut d = TestDaemon::start(
        "",
        &format!("[destinations.o]\ntype = \"otlp\"\nendpoint = \"http://{}\"\nbatch.flush_interval = \"30ms\"\n", sink.grpc_addr),
    )
    .await;
    d.post_spans(spans(2)).await;
    wait_until("a refusal", || sink.received().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 1, "not retried");
    d.post_spans(vec![span(8, 1, "a"), span(8, 2, "b")]).await;
    wait_until("the partial success", || sink.received().len() == 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let m = d.metrics();
    assert_eq!(
        metric(
            &m,
            "tracebridge_exporter_send_failed_spans_total{destination=\"o\",reason=\"resource_exhausted\"}"
        ),
        2.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "tracebridge_exporter_rejected_spans_total{destination=\"o\"}"
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "tracebridge_exporter_sent_spans_total{destination=\"o\"}"
        ),
        1.0,
        "{m}"
    );
    d.stop().await;
}

#[tokio::test]
async fn the_project_header_selects_the_project_per_trace() {
    let sink = OtlpSink::start().await;
    let mut d = TestDaemon::start(
        "",
        &format!("[destinations.o]\ntype = \"otlp\"\nendpoint = \"http://{}\"\nproject_name = \"fallback\"\n{FAST}", sink.grpc_addr),
    )
    .await;
    let body = request(vec![span(1, 1, "with header")]).encode_to_vec();
    reqwest::Client::new()
        .post(d.http_url())
        .header("content-type", "application/x-protobuf")
        .header("projectName", "chosen")
        .body(body)
        .send()
        .await
        .unwrap();
    d.post_spans(vec![span(2, 1, "without")]).await;
    wait_until("2 spans", || sink.accepted_spans() == 2).await;
    let mut projects = Vec::new();
    for r in sink.received() {
        for rs in &r.request.unwrap().resource_spans {
            let p = attr_str(
                &rs.resource.as_ref().unwrap().attributes,
                "openinference.project.name",
            )
            .unwrap()
            .to_string();
            projects.push((p, rs.scope_spans[0].spans[0].name.clone()));
        }
    }
    projects.sort();
    assert_eq!(
        projects,
        vec![
            ("chosen".to_string(), "with header".to_string()),
            ("fallback".into(), "without".into())
        ]
    );
    d.stop().await;
}

#[tokio::test]
async fn an_opik_outage_does_not_delay_the_otlp_destination() {
    let fake = FakeOpik::start(Some("k"), "ws").await;
    fake.script((0..1000).map(|_| Scripted {
        status: 503,
        headers: vec![],
    }));
    let sink = OtlpSink::start().await;
    let mut d = TestDaemon::start(
        "",
        &format!(
            "[destinations.opik]\ntype = \"opik\"\nurl = \"{}\"\napi_key = \"k\"\nworkspace = \"ws\"\nqueue.max_batches = 2\n{FAST}\n[destinations.arize]\ntype = \"otlp\"\nendpoint = \"http://{}\"\nbatch.flush_interval = \"30ms\"\n",
            fake.url(),
            sink.grpc_addr
        ),
    )
    .await;
    for i in 0..20u8 {
        let started = Instant::now();
        d.post_spans(vec![span(i + 1, 1, "fan-out")]).await;
        let want = usize::from(i) + 1;
        wait_until("the healthy destination", || sink.accepted_spans() == want).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "span {i} took {:?}",
            started.elapsed()
        );
    }
    assert!(
        fake.requests().iter().all(|r| r.status == 503),
        "Opik stayed down"
    );
    assert!(fake.spans().is_empty());
    let m = d.metrics();
    assert!(
        metric(
            &m,
            "tracebridge_exporter_retries_total{destination=\"opik\",reason=\"server_error\"}"
        ) > 0.0,
        "{m}"
    );
    d.stop().await;
}

//! OTLP logs through the whole daemon to a fake Opik: GenAI content that
//! real producers put in log records lands on its spans, whichever of
//! spans and records arrives first; Claude Code without spans becomes one
//! trace per prompt; privacy mode lets none of it out.

mod common;

use common::fake_opik::FakeOpik;
use common::*;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use serde_json::Value as Json;

fn opik(fake: &FakeOpik, extra: &str) -> String {
    format!(
        r#"
[destinations.opik]
type = "opik"
url = "{}"
api_key = "key-1"
workspace = "team-ws"
project_name = "logs"
stale_trace_timeout = "300ms"
batch.flush_interval = "20ms"
{extra}
"#,
        fake.url()
    )
}

async fn post(d: &TestDaemon, path: &str, body: Vec<u8>) {
    post_as(d, path, "application/x-protobuf", body).await;
}

async fn post_as(d: &TestDaemon, path: &str, content_type: &str, body: Vec<u8>) {
    d.post_to(path, content_type, &[], body).await;
}

fn logs_of(name: &str) -> Vec<u8> {
    let logs = producer_logs(name).expect("a logs capture");
    ExportLogsServiceRequest {
        resource_logs: logs.resource_logs,
    }
    .encode_to_vec()
}

fn traces_of(name: &str) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: producer_fixture(name).resource_spans,
    }
    .encode_to_vec()
}

fn text(rows: &[Json]) -> String {
    rows.iter().map(Json::to_string).collect()
}

/// Waits for the trace's output (the last LLM answer) in the fake Opik.
async fn wait_for_answer(fake: &FakeOpik) {
    wait_until("the trace's output in Opik", || {
        text(&fake.traces()).contains("The weather in Paris is sunny")
    })
    .await;
}

#[tokio::test]
async fn event_mode_content_joins_its_spans_whether_records_or_spans_come_first() {
    for records_first in [true, false] {
        let fake = FakeOpik::start(Some("key-1"), "team-ws").await;
        let mut d = TestDaemon::start("", &opik(&fake, "")).await;
        let (logs, traces) = (logs_of("openai-v2-event"), traces_of("openai-v2-event"));
        if records_first {
            post(&d, "/v1/logs", logs).await;
            post(&d, "/v1/traces", traces).await;
        } else {
            post(&d, "/v1/traces", traces).await;
            post(&d, "/v1/logs", logs).await;
        }
        wait_for_answer(&fake).await;
        let llm_with_prompt = || {
            fake.spans()
                .iter()
                .filter(|s| s["type"] == "llm")
                .filter(|s| {
                    s["input"]
                        .to_string()
                        .contains("What is the weather in Paris?")
                })
                .count()
        };
        wait_until("both LLM spans with their prompt", || {
            llm_with_prompt() == 2
        })
        .await;
        // The tool span records nothing; its LLM calls' records name its call.
        wait_until("the tool span with its arguments and result", || {
            fake.spans().iter().any(|s| {
                s["type"] == "tool"
                    && s["input"]["city"] == "Paris"
                    && s["output"]["output"] == "sunny, 22°C"
            })
        })
        .await;
        assert!(fake.duplicate_ids().is_empty());
        let joined =
            "tracebridge_exporter_log_records_total{destination=\"opik\",outcome=\"joined\"}";
        assert_eq!(metric(&d.metrics(), joined), 2.0);
        d.stop().await;
    }
}

#[tokio::test]
async fn claude_code_without_spans_is_one_trace_per_prompt_and_nothing_under_privacy_mode() {
    for privacy in [false, true] {
        let fake = FakeOpik::start(Some("key-1"), "team-ws").await;
        let extra = format!("privacy_mode = {privacy}");
        let mut d = TestDaemon::start("", &opik(&fake, &extra)).await;
        // As captured: OTLP/JSON with empty arrays written `{"arrayValue": {}}`.
        let capture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/producers/claude-code-logs.logs.json");
        let json = std::fs::read(capture).unwrap();
        post_as(&d, "/v1/logs", "application/json", json).await;
        wait_until("the Claude Code trace and its spans", || {
            fake.traces().len() == 1 && fake.spans().len() == 4
        })
        .await;
        let traces = fake.traces();
        let spans = fake.spans();
        assert_eq!(traces[0]["name"], "claude-code");
        assert_eq!(
            traces[0]["thread_id"],
            "24920b3a-6319-47ff-b23f-0d114b18a386"
        );
        let llm: Vec<&Json> = spans.iter().filter(|s| s["type"] == "llm").collect();
        assert_eq!(llm.len(), 2);
        assert!(llm.iter().all(|s| s["total_estimated_cost"] == 0.000524));
        assert!(llm.iter().all(|s| s["usage"]["prompt_tokens"] == 50));
        let all = text(&traces) + &text(&spans);
        if privacy {
            for secret in PRODUCER_CONTENT.iter().chain(&["You are Claude Code"]) {
                assert!(!all.contains(secret), "{secret:?} left under privacy mode");
            }
        } else {
            wait_for_answer(&fake).await;
            let all = text(&fake.traces()) + &text(&fake.spans());
            assert!(all.contains("What is the weather in Paris?"));
            assert!(all.contains("echo sunny, 22C"), "the tool's input");
            // OTEL_LOG_RAW_API_BODIES=1: each request body is its call's input.
            wait_until("both LLM spans with their request as input", || {
                let spans = fake.spans();
                let with_input = spans
                    .iter()
                    .filter(|s| s["type"] == "llm")
                    .filter(|s| s["input"].to_string().contains("You are Claude Code"))
                    .count();
                with_input == 2
            })
            .await;
        }
        d.stop().await;
    }
}

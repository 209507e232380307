//! Shared helpers for whole-daemon tests: start the real daemon in-process
//! on ephemeral loopback ports with a file destination, build OTLP
//! requests, and read what came out.

#![allow(dead_code)]

pub mod binary;
pub mod fake_opik;
pub mod otlp_sink;
pub mod pki;
pub mod targets;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tracebridge::app::{self, Running};
use tracebridge::pdata::key_value;

pub struct TestDaemon {
    pub running: Option<Running>,
    pub dir: tempfile::TempDir,
    pub out: PathBuf,
}

impl TestDaemon {
    /// Starts a daemon whose only destination appends spans to a file.
    /// `extra` is appended to the config (e.g. receiver limits).
    pub async fn start(extra_receiver: &str, extra_destination: &str) -> Self {
        Self::start_with("5s", extra_receiver, extra_destination).await
    }

    /// As [`TestDaemon::start`], with its own `shutdown_timeout`.
    pub async fn start_with(
        shutdown_timeout: &str,
        extra_receiver: &str,
        extra_destination: &str,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("spans.jsonl");
        let config = format!(
            r#"
shutdown_timeout = "{shutdown_timeout}"
state_dir = "{}"
[receiver]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
{extra_receiver}
[admin]
listen = "127.0.0.1:0"
[log]
level = "warn"
[destinations.out]
type = "file"
path = "{}"
batch.flush_interval = "20ms"
{extra_destination}
"#,
            dir.path().join("state").display(),
            out.display()
        );
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).expect("write config");
        let settings = tracebridge::config::load(Some(&path))
            .and_then(|l| l.settings())
            .expect("valid config");
        let running = app::start(settings).await.expect("daemon starts");
        Self {
            running: Some(running),
            dir,
            out,
        }
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("daemon running")
    }

    pub fn http_url(&self) -> String {
        format!("http://{}/v1/traces", self.running().http_addr)
    }

    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.running().grpc_addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running().admin_addr)
    }

    pub fn metrics(&self) -> String {
        self.running().metrics.encode()
    }

    /// The admin server's answer to `GET path`, as text.
    pub async fn admin_text(&self, path: &str) -> String {
        reqwest::get(self.admin_url(path))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Span ids written to the file destination so far.
    pub fn written_span_ids(&self) -> BTreeSet<String> {
        read_span_ids(&self.out)
    }

    /// Every record written to the file destination so far.
    pub fn records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits (bounded) until the file holds `n` spans, and returns their ids.
    pub async fn wait_for_spans(&self, n: usize) -> BTreeSet<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ids = self.written_span_ids();
            if ids.len() >= n || Instant::now() > deadline {
                return ids;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// POSTs spans as OTLP/protobuf to the HTTP receiver; expects 200.
    pub async fn post_spans(&self, spans: Vec<Span>) {
        self.post(
            "application/x-protobuf",
            prost::Message::encode_to_vec(&request(spans)),
        )
        .await;
    }

    /// POSTs an OTLP/JSON body to the HTTP receiver; expects 200.
    pub async fn post_json(&self, body: Vec<u8>) {
        self.post("application/json", body).await;
    }

    async fn post(&self, content_type: &str, body: Vec<u8>) {
        self.post_to("/v1/traces", content_type, &[], body).await;
    }

    /// POSTs `body` to `path` of the HTTP receiver (`/v1/traces`,
    /// `/v1/logs`) with extra `headers`; expects 200.
    pub async fn post_to(
        &self,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) {
        let mut req = reqwest::Client::new()
            .post(format!("http://{}{path}", self.running().http_addr))
            .header("content-type", content_type);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req
            .body(body)
            .send()
            .await
            .expect("the HTTP receiver answers");
        assert_eq!(r.status(), 200, "{path}");
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
            r.stopped().await;
        }
    }
}

pub fn read_span_ids(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["span_id"].as_str().map(str::to_string))
        .collect()
}

/// A valid span: trace `trace`, span id `id` (both repeated bytes).
pub fn span(trace: u8, id: u8, name: &str) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        name: name.into(),
        start_time_unix_nano: 1_767_225_600_000_000_000,
        end_time_unix_nano: 1_767_225_601_000_000_000,
        attributes: vec![key_value(
            "gen_ai.operation.name",
            Value::StringValue("chat".into()),
        )],
        ..Default::default()
    }
}

pub fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![key_value(
                    "service.name",
                    Value::StringValue("tests".into()),
                )],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// `n` spans with distinct ids in one trace.
pub fn spans(n: usize) -> Vec<Span> {
    (0..n)
        .map(|i| {
            let mut s = span(7, 1, &format!("span-{i}"));
            s.span_id = (i as u64 + 1).to_be_bytes().to_vec();
            s
        })
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    tracebridge::pdata::hex_id(bytes)
}

/// A metric's value from Prometheus text (0 when absent).
/// Polls `done` until it holds; fails the test after 20 s.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Content strings of the dialect fixtures (prompts, answers, system
/// instructions): none may leave under privacy mode.
pub const FIXTURE_CONTENT: &[&str] = &[
    "Find me a flight to Lisbon",
    "TP123 on Friday",
    "You plan trips",
    "Where is my order 42",
    "Order 42 has shipped",
    "Summarise the ticket",
    "Ingredients for paella",
    "Paella needs rice",
    "What is our refund policy",
    "Refunds within 30 days",
    "Weather in Oslo",
    "snowing in Oslo",
    "How do I reset my password",
    "Forgot password",
    "What is 17 * 23",
    "17 * 23 = 391",
];

/// A fixture of `tests/fixtures/dialects/`, as the HTTP receiver passes it on.
pub fn dialect_fixture(name: &str) -> tracebridge::route::ReceivedTraces {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/dialects/{name}.json"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let req = tracebridge::pdata::json::decode_request(&bytes).expect("fixture decodes");
    let mut traces = tracebridge::route::ReceivedTraces::new(req.resource_spans);
    traces.context.transport = "http";
    traces
}

/// The value of one series in a Prometheus text exposition. Panics when the
/// series is not there, so a typo in a name or label cannot pass as "0".
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .filter(|rest| rest.starts_with(' '))
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no series {series} in the metrics:\n{text}"))
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// The captures of `tests/fixtures/producers/`, by name (`claude-code-logs`
/// has logs only).
pub const PRODUCERS: &[&str] = &[
    "adk-schema1",
    "adk-schema2",
    "ai-sdk-6",
    "ai-sdk-7-legacy",
    "ai-sdk-7",
    "claude-code-logs",
    "claude-code-spans",
    "langfuse-sdk",
    "langsmith-langchain",
    "livekit-agents",
    "mlflow-native",
    "openai-v2-event",
    "openai-v2-span",
    "openinference-openai",
    "pipecat",
    "pydantic-ai",
    "strands-default",
    "strands-latest",
];

/// Content the real producers were given or answered (the fake model's
/// answer, the tool's argument and result, Claude Code's prompt): none may
/// leave under privacy mode.
pub const PRODUCER_CONTENT: &[&str] = &[
    "What is the weather in Paris?",
    "weather in Paris",
    "The weather in Paris is sunny",
    "Paris",
    "sunny, 22",
    "sunny",
    "echo sunny",
];

/// A capture of `tests/fixtures/producers/<name>.traces.json` (or of
/// `$PRODUCER_FIXTURES`, where tests/interop/producers.sh puts fresh ones),
/// as the HTTP receiver passes it on.
pub fn producer_fixture(name: &str) -> tracebridge::route::ReceivedTraces {
    let path = producer_dir().join(format!("{name}.traces.json"));
    if !path.exists() && producer_dir().join(format!("{name}.logs.json")).exists() {
        // A logs-only capture: no spans.
        return tracebridge::route::ReceivedTraces::default();
    }
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let req = tracebridge::pdata::json::decode_request(&bytes).expect("fixture decodes");
    let mut traces = tracebridge::route::ReceivedTraces::new(req.resource_spans);
    traces.context.transport = "http";
    traces
}

/// The raw OTLP/JSON files of a capture: its spans and its log records,
/// each if it has them.
pub fn producer_files(name: &str) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let read = |kind: &str| std::fs::read(producer_dir().join(format!("{name}.{kind}.json"))).ok();
    (read("traces"), read("logs"))
}

fn producer_dir() -> PathBuf {
    std::env::var_os("PRODUCER_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/producers"))
}

/// The log records of a capture (`<name>.logs.json`), if it has any, as
/// the receiver passes them on.
pub fn producer_logs(name: &str) -> Option<tracebridge::route::ReceivedTraces> {
    let path = producer_dir().join(format!("{name}.logs.json"));
    let bytes = std::fs::read(&path).ok()?;
    let req: opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest =
        tracebridge::pdata::json::decode_message(&bytes, "logs request")
            .expect("logs fixture decodes");
    let mut logs = tracebridge::route::ReceivedTraces::from_logs(req.resource_logs);
    logs.context.transport = "http";
    Some(logs)
}

/// A capture's requests as a receiver would pass them on: its spans, then
/// its log records.
pub fn producer_requests(name: &str) -> Vec<tracebridge::route::ReceivedTraces> {
    let mut requests = vec![producer_fixture(name)];
    requests.extend(producer_logs(name));
    requests
}

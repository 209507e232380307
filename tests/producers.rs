//! The captures of real producers (tests/fixtures/producers): what reaches
//! Opik — through the daemon, as rows in the fake Opik — and the OTLP and
//! file destinations.

mod common;

use common::fake_opik::FakeOpik;
use common::{
    PRODUCER_CONTENT, PRODUCERS, TestDaemon, producer_files, producer_fixture, producer_requests,
    targets,
};
use prost::Message as _;
use serde_json::{Value as Json, json};
use tracebridge::destination::file::SpanRecords;
use tracebridge::destination::otlp::config::SemconvMode;
use tracebridge::destination::otlp::request;
use tracebridge::export::ItemMapper;
use tracebridge::semconv::privacy::Privacy;
use tracebridge::telemetry::{DestinationTelemetry, Metrics};

/// Every capture through the daemon — its spans, then its log records, as
/// the OTLP/JSON the producer's exporter sent — to the fake Opik, each in
/// a project of its own (the `projectName` header). The daemon is stopped
/// at the end, which finalises every trace.
async fn through_the_daemon(privacy: bool) -> FakeOpik {
    let fake = FakeOpik::start(None, "default").await;
    let opik = format!(
        r#"
[destinations.opik]
type = "opik"
url = "{}"
workspace = "default"
project_name = "producers"
privacy_mode = {privacy}
batch.flush_interval = "20ms"
"#,
        fake.url()
    );
    let mut d = TestDaemon::start("", &opik).await;
    for name in PRODUCERS {
        let (traces, logs) = producer_files(name);
        for (path, body) in [("/v1/traces", traces), ("/v1/logs", logs)] {
            if let Some(body) = body {
                let project = [("projectName", *name)];
                d.post_to(path, "application/json", &project, body).await;
            }
        }
    }
    d.stop().await;
    fake
}

/// The rows Opik holds for one capture (its project), after upsert.
fn rows_of(fake: &FakeOpik, name: &str) -> Json {
    let mine = |rows: Vec<Json>| -> Vec<Json> {
        rows.into_iter()
            .filter(|r| r["project_name"] == *name)
            .collect()
    };
    json!({"traces": mine(fake.traces()), "spans": mine(fake.spans())})
}

/// What privacy mode lets out of the OTLP (passthrough and enriched) and
/// file destinations for one capture.
fn forwarded_under_privacy(name: &str) -> String {
    let traces = producer_fixture(name);
    let privacy = || Some(Privacy::default());
    let mut all = String::new();
    for semconv in [SemconvMode::Passthrough, SemconvMode::Openinference] {
        let items = targets::otlp_items(&traces, semconv, privacy());
        let bytes = request::build(&items).encode_to_vec();
        all.push_str(&String::from_utf8_lossy(&bytes));
        all.push('\n');
    }
    let telemetry = DestinationTelemetry::new(&Metrics::new(), "file");
    let mut lines = Vec::new();
    SpanRecords::new(privacy(), telemetry).map(&traces, &mut lines);
    for l in &lines {
        all.push_str(l.as_str());
    }
    all
}

fn leaks_in(name: &str, all: &str, leaks: &mut Vec<String>) {
    for secret in PRODUCER_CONTENT {
        if let Some(at) = all.find(secret) {
            let boundary = |i: &usize| all.is_char_boundary(*i);
            let from = (0..=at.saturating_sub(120))
                .rev()
                .find(boundary)
                .unwrap_or(0);
            let to = ((at + 60).min(all.len())..=all.len())
                .find(boundary)
                .unwrap_or(all.len());
            leaks.push(format!("{name}: {secret:?} in …{}…", &all[from..to]));
        }
    }
}

#[tokio::test]
async fn privacy_mode_lets_no_producer_content_out_of_any_destination() {
    let mut leaks = Vec::new();
    // Opik: every body the daemon sent, rows and scores.
    let fake = through_the_daemon(true).await;
    let sent: String = fake
        .requests()
        .iter()
        .filter_map(|r| r.body.as_ref().map(Json::to_string))
        .collect();
    assert!(!sent.is_empty(), "the daemon sent nothing");
    leaks_in("opik (all captures)", &sent, &mut leaks);
    for name in PRODUCERS {
        leaks_in(name, &forwarded_under_privacy(name), &mut leaks);
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n\n"));
}

#[tokio::test]
async fn without_privacy_mode_the_producer_content_is_there() {
    // The test above can fail: the strings are in the captures (for
    // openai-v2 in event mode and Claude Code, in their logs).
    let fake = through_the_daemon(false).await;
    for name in PRODUCERS {
        assert!(rows_of(&fake, name).to_string().contains("Paris"), "{name}");
    }
}

#[test]
fn what_privacy_mode_removes_is_counted() {
    let requests = [
        producer_fixture("openinference-openai"),
        producer_fixture("pydantic-ai"),
    ];
    let (_, metrics) = targets::opik_rows(&requests, Some(Privacy::default()));
    let text = metrics.encode();
    for reason in ["content", "unclaimed_attribute"] {
        let series = format!(
            "tracebridge_privacy_redacted_total{{destination=\"opik\",reason=\"{reason}\"}}"
        );
        assert!(common::metric(&text, &series) > 0.0, "{series}");
    }
}

/// For every capture, the exact Opik rows after upsert. Regenerate with
/// `UPDATE_GOLDEN=1 cargo test --test producers` and review the diff by eye.
#[test]
fn every_producer_maps_to_the_reviewed_rows() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for name in PRODUCERS {
        let (items, _) = targets::opik_rows(&producer_requests(name), None);
        let got = targets::final_view(&items);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/golden/opik/producers/{name}.json"));
        let pretty = serde_json::to_string_pretty(&got).unwrap_or_default() + "\n";
        if update {
            std::fs::create_dir_all(path.parent().unwrap_or(&path)).ok();
            std::fs::write(&path, &pretty).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if want != pretty {
            failures.push(format!("{name}: rows differ from {}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What a user expects in Opik from each producer, as the interop suite
/// asserts it: one trace; LLM spans with the prompt in and the answer out,
/// a provider Opik prices, and the run's usage counted once; a tool span
/// with the arguments and the result; the trace's input and output.
struct Expect {
    traces: usize,
    /// Whether the LLM spans carry the conversation (Claude Code's do not:
    /// its request bodies name no request id to join them by).
    llm_content: bool,
    /// The run's prompt tokens: 42 per model call (Claude Code: 42 + 5
    /// cache read + 3 cache creation).
    prompt_tokens: i64,
}

fn expected(name: &str) -> Expect {
    match name {
        "ai-sdk-6" | "ai-sdk-7" | "ai-sdk-7-legacy" => Expect {
            traces: 2,
            llm_content: true,
            prompt_tokens: 168,
        },
        "claude-code-spans" | "claude-code-logs" => Expect {
            traces: 1,
            llm_content: false,
            prompt_tokens: 100,
        },
        _ => Expect {
            traces: 1,
            llm_content: true,
            prompt_tokens: 84,
        },
    }
}

fn expectations_failed(name: &str, view: &Json) -> Vec<String> {
    let want = expected(name);
    let mut failed = Vec::new();
    let mut check = |ok: bool, what: &str| {
        if !ok {
            failed.push(what.to_string());
        }
    };
    let text = |v: &Json| v.to_string();
    let traces = view["traces"].as_array().cloned().unwrap_or_default();
    check(traces.len() == want.traces, "one trace per run");
    let spans = view["spans"].as_array().cloned().unwrap_or_default();
    let llm: Vec<&Json> = spans.iter().filter(|s| s["type"] == "llm").collect();
    if want.llm_content {
        check(
            llm.iter()
                .any(|s| text(&s["input"]).contains("What is the weather in Paris?")),
            "an llm span with the prompt in its input",
        );
        check(
            llm.iter()
                .any(|s| text(&s["output"]).contains("The weather in Paris is sunny")),
            "an llm span with the answer in its output",
        );
    }
    let priced = [
        "openai",
        "anthropic",
        "google_ai",
        "google_vertexai",
        "bedrock",
    ];
    check(
        !llm.is_empty()
            && llm.iter().all(|s| {
                priced.contains(&s["provider"].as_str().unwrap_or(""))
                    && s["model"].as_str().is_some_and(|m| !m.contains('/'))
            }),
        "every llm span has a model and a provider Opik prices",
    );
    let prompt_tokens: i64 = spans
        .iter()
        .filter_map(|s| s["usage"]["prompt_tokens"].as_i64())
        .sum();
    check(
        prompt_tokens == want.prompt_tokens,
        "usage counted once per model call",
    );
    let tools: Vec<&Json> = spans.iter().filter(|s| s["type"] == "tool").collect();
    check(
        tools.len() == want.traces
            && tools.iter().all(|t| {
                let (i, o) = (text(&t["input"]), text(&t["output"]));
                (i.contains("Paris") || i.contains("echo sunny")) && o.contains("sunny")
            }),
        "one tool span per run with the arguments and the result",
    );
    for trace in &traces {
        check(text(&trace["input"]).contains("Paris"), "the trace input");
        check(text(&trace["output"]).contains("sunny"), "the trace output");
    }
    failed
}

/// Expectations not met yet, per capture (the list only shrinks).
/// openai-v2 in event mode, whose tool span records neither arguments nor
/// result, has them filled from the tool call and the tool message of its
/// LLM calls' log records (`destination/opik/tool_rows.rs`). Pipecat
/// (pipecat-ai 1.14.0) traces no function call: its only service spans are
/// `llm`, `tts` and `stt` (`utils/tracing/service_decorators.py`), and
/// `LLMService._run_function_call` runs the handler outside any span, so the
/// call and its result exist only as messages in the next `llm` span's
/// input — there is no span to make the tool row of.
const KNOWN_GAPS: &[(&str, &str)] = &[(
    "pipecat",
    "one tool span per run with the arguments and the result",
)];

#[tokio::test]
async fn every_producer_lands_as_a_user_expects() {
    let fake = through_the_daemon(false).await;
    let mut report = Vec::new();
    for name in PRODUCERS {
        for what in expectations_failed(name, &rows_of(&fake, name)) {
            let known = KNOWN_GAPS.contains(&(*name, what.as_str()));
            report.push(format!(
                "{}{name}: {what}",
                if known { "(known) " } else { "" }
            ));
        }
    }
    let unexpected: Vec<&String> = report
        .iter()
        .filter(|r| !r.starts_with("(known)"))
        .collect();
    assert!(unexpected.is_empty(), "{}", report.join("\n"));
    // A gap that closed must leave the list.
    for (name, what) in KNOWN_GAPS {
        assert!(
            report.contains(&format!("(known) {name}: {what}")),
            "{name}: {what:?} is met now: remove it from KNOWN_GAPS"
        );
    }
}

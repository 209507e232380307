//! The captures of real producers (tests/fixtures/producers): what reaches
//! Opik and the OTLP and file destinations.

mod common;

use common::{PRODUCER_CONTENT, PRODUCERS, producer_fixture, producer_requests, targets};
use prost::Message as _;
use tracebridge::destination::file::SpanRecords;
use tracebridge::destination::otlp::config::SemconvMode;
use tracebridge::destination::otlp::request;
use tracebridge::export::ItemMapper;
use tracebridge::semconv::privacy::Privacy;
use tracebridge::telemetry::{DestinationTelemetry, Metrics};

/// Everything privacy mode lets out of every destination for one capture:
/// Opik rows, OTLP bytes (passthrough and enriched), file lines.
fn exported_under_privacy(name: &str) -> String {
    let traces = producer_fixture(name);
    let privacy = || Some(Privacy::default());
    let mut all = String::new();
    let (rows, _) = targets::opik_rows(&producer_requests(name), privacy());
    for r in &rows {
        all.push_str(&r.json);
        all.push('\n');
    }
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

#[test]
fn privacy_mode_lets_no_producer_content_out_of_any_destination() {
    let mut leaks = Vec::new();
    for name in PRODUCERS {
        let all = exported_under_privacy(name);
        for secret in PRODUCER_CONTENT {
            if let Some(at) = all.find(secret) {
                let from = all.floor_char_boundary(at.saturating_sub(120));
                let to = all.ceil_char_boundary((at + 60).min(all.len()));
                leaks.push(format!("{name}: {secret:?} in …{}…", &all[from..to]));
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n\n"));
}

#[test]
fn without_privacy_mode_the_producer_content_is_there() {
    // The test above can fail: the strings are in the captures (for
    // openai-v2 in event mode and Claude Code, in their logs).
    for name in PRODUCERS {
        let (rows, _) = targets::opik_rows(&producer_requests(name), None);
        let all: String = rows.iter().map(|r| r.json.as_str()).collect();
        assert!(all.contains("Paris"), "{name}");
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

fn expectations_failed(name: &str) -> Vec<String> {
    let want = expected(name);
    let (items, _) = targets::opik_rows(&producer_requests(name), None);
    let view = targets::final_view(&items);
    let mut failed = Vec::new();
    let mut check = |ok: bool, what: &str| {
        if !ok {
            failed.push(what.to_string());
        }
    };
    let text = |v: &serde_json::Value| v.to_string();
    let traces = view["traces"].as_array().cloned().unwrap_or_default();
    check(traces.len() == want.traces, "one trace per run");
    let spans = view["spans"].as_array().cloned().unwrap_or_default();
    let llm: Vec<&serde_json::Value> = spans.iter().filter(|s| s["type"] == "llm").collect();
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
    let tools: Vec<&serde_json::Value> = spans.iter().filter(|s| s["type"] == "tool").collect();
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
/// openai-v2 in event mode logs nothing about its tool call.
const KNOWN_GAPS: &[(&str, &str)] = &[(
    "openai-v2-event",
    "one tool span per run with the arguments and the result",
)];

#[test]
fn every_producer_lands_as_a_user_expects() {
    let mut report = Vec::new();
    for name in PRODUCERS {
        for what in expectations_failed(name) {
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

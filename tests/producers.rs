//! The captures of real producers (tests/fixtures/producers): what reaches
//! Opik and the OTLP and file destinations.

mod common;

use common::{PRODUCER_CONTENT, PRODUCERS, producer_fixture, targets};
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
    let (rows, _) = targets::opik_rows(std::slice::from_ref(&traces), privacy());
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
    // The test above can fail: the strings are in the captures (but for
    // openai-v2 in event mode, whose content is in logs only).
    for name in PRODUCERS.iter().filter(|n| **n != "openai-v2-event") {
        let (rows, _) = targets::opik_rows(&[producer_fixture(name)], None);
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
        let (items, _) = targets::opik_rows(&[producer_fixture(name)], None);
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

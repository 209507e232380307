//! Destination targets and mappers as the fixture tests use them: no
//! network, the mapper alone.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value as Json, json};

use tracebridge::destination::opik::{OpikItem, OpikTarget, RowKind, TraceAssembler};
use tracebridge::destination::otlp::config::{OtlpProtocol, OtlpTarget, SemconvMode, TlsSettings};
use tracebridge::destination::otlp::{OtlpItem, OtlpMapper};
use tracebridge::export::ItemMapper;
use tracebridge::route::ReceivedTraces;
use tracebridge::semconv::privacy::Privacy;
use tracebridge::telemetry::{DestinationTelemetry, Metrics};

pub fn opik_target() -> OpikTarget {
    OpikTarget {
        url: "http://opik.invalid/api".into(),
        api_key: None,
        workspace: "default".into(),
        project_name: "Default Project".into(),
        tags: vec!["tracebridge".into()],
        trace_ttl: Duration::from_secs(3 * 3600),
        stale_trace_timeout: Duration::from_secs(300),
        max_open_traces: 1000,
        logs: Default::default(),
        state: Default::default(),
        resource_attributes_in: Default::default(),
        tenants: Vec::new(),
    }
}

pub fn otlp_target(semconv: SemconvMode) -> OtlpTarget {
    OtlpTarget {
        url: "http://sink.invalid:4317".into(),
        signals: tracebridge::route::Signals::TRACES,
        logs_url: None,
        metrics_url: None,
        log_join: Default::default(),
        protocol: OtlpProtocol::Grpc,
        headers: vec![],
        gzip: true,
        tls: TlsSettings::default(),
        semconv,
        resource_attributes: vec![("deployment.environment.name".into(), "test".into())],
        project_name: Some("fixtures".into()),
        project_as_model_id: false,
        flavour: "otlp",
    }
}

/// Every Opik row the assembler writes for `requests`, shutdown included.
pub fn opik_rows(
    requests: &[ReceivedTraces],
    privacy: Option<Privacy>,
) -> (Vec<OpikItem>, Metrics) {
    let metrics = Metrics::new();
    let mut asm = TraceAssembler::new(
        opik_target(),
        privacy,
        4 << 20,
        DestinationTelemetry::new(&metrics, "opik"),
    );
    let mut out = Vec::new();
    for r in requests {
        asm.map(r, &mut out);
    }
    asm.on_shutdown(&mut out);
    (out, metrics)
}

/// The spans the OTLP mapper forwards for `traces`.
pub fn otlp_items(
    traces: &ReceivedTraces,
    semconv: SemconvMode,
    privacy: Option<Privacy>,
) -> Vec<OtlpItem> {
    let mut m = OtlpMapper::new(
        otlp_target(semconv),
        privacy,
        DestinationTelemetry::new(&Metrics::new(), "o"),
    );
    let mut out = Vec::new();
    m.map(traces, &mut out);
    out
}

/// Opik's view after upsert: the last write per id, `last_updated_at` removed.
pub fn final_view(items: &[OpikItem]) -> Json {
    let mut traces = BTreeMap::new();
    let mut spans = Vec::new();
    let mut trace_writes = 0;
    let mut stamps = Vec::new();
    let mut scores = Vec::new();
    for item in items {
        let mut row: Json = serde_json::from_str(&item.json).unwrap();
        if matches!(item.kind, RowKind::TraceScore | RowKind::SpanScore) {
            scores.push(row);
            continue;
        }
        if item.kind == RowKind::TraceUpdate {
            // Opik rewrites only the fields an update gives.
            trace_writes += 1;
            let id = item.id.to_string();
            let stored = traces
                .entry(id.clone())
                .or_insert_with(|| json!({"id": id}));
            for (k, v) in row.as_object().unwrap() {
                stored[k] = v.clone();
            }
            continue;
        }
        stamps.push(row["last_updated_at"].as_str().unwrap().to_string());
        row.as_object_mut().unwrap().remove("last_updated_at");
        match item.kind {
            RowKind::Trace => {
                trace_writes += 1;
                traces.insert(row["id"].as_str().unwrap().to_string(), row);
            }
            // Opik upserts by id: a span written again replaces its row.
            RowKind::Span => match spans.iter().position(|s: &Json| s["id"] == row["id"]) {
                Some(i) => spans[i] = row,
                None => spans.push(row),
            },
            RowKind::TraceScore | RowKind::SpanScore | RowKind::TraceUpdate => {}
        }
    }
    let mut sorted = stamps.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        stamps.len(),
        "last_updated_at strictly increases"
    );
    let mut view = json!({"traces": traces.into_values().collect::<Vec<_>>(), "trace_row_writes": trace_writes, "spans": spans});
    if !scores.is_empty() {
        view["feedback_scores"] = Json::Array(scores);
    }
    view
}

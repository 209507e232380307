//! What the trace table holds per trace, where resource attributes go, and
//! how an oversized row is cut (issue 11: bounded under any input).

use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue};
use opentelemetry_proto::tonic::resource::v1::Resource as OtelResource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use serde_json::Value as Json;
use tokio::time::Instant;

use super::tests::{assembler, llm, received, target, traces_of};
use super::*;
use crate::destination::opik::trace_table::unix_ms;
use crate::pdata::key_value;
use crate::telemetry::Metrics;

const TID: [u8; 16] = [1; 16];

fn rows_of(items: &[OpikItem], kind: RowKind) -> Vec<Json> {
    items
        .iter()
        .filter(|i| i.kind == kind)
        .map(|i| serde_json::from_str(&i.json).unwrap())
        .collect()
}

async fn finalise(a: &mut TraceAssembler, out: &mut Vec<OpikItem>) {
    tokio::time::advance(Duration::from_secs(61)).await;
    a.on_tick(Instant::now(), out);
}

fn entry_bytes(a: &TraceAssembler) -> (usize, usize) {
    let t = a.traces.get(&TID).unwrap();
    let mut buf = Vec::new();
    t.encode(Instant::now(), unix_ms(), &mut buf).unwrap();
    (t.approx_bytes(), buf.len())
}

#[tokio::test(start_paused = true)]
async fn a_finalised_trace_keeps_a_few_hundred_bytes_whatever_its_content() {
    let telemetry = DestinationTelemetry::new(&Metrics::new(), "opik");
    let mut a = TraceAssembler::new(target(100), None, 8 << 20, telemetry);
    let mut out = Vec::new();
    let mib = "x".repeat(1 << 20);
    let spans = vec![llm(1, 2, Some(7), 1, &mib), llm(1, 7, None, 0, &mib)];
    a.map(&received(spans), &mut out);
    assert!(a.table_bytes() > 4 << 20, "while open the content is held");
    finalise(&mut a, &mut out).await;
    let t = traces_of(&out).pop().unwrap();
    assert_eq!(t["input"]["messages"][0]["content"], format!("in {mib}"));
    let (in_memory, stored) = entry_bytes(&a);
    assert!(in_memory <= 1024, "{in_memory} bytes in memory");
    assert!(stored <= 768, "{stored} bytes stored");
    assert_eq!(a.table_bytes(), in_memory, "the table's counter follows");
}

#[tokio::test(start_paused = true)]
async fn a_span_after_release_updates_the_row_and_leaves_its_content_alone() {
    let mut a = assembler(100);
    let mut out = Vec::new();
    let spans = vec![llm(1, 2, Some(7), 1, "child"), llm(1, 7, None, 0, "root")];
    a.map(&received(spans), &mut out);
    finalise(&mut a, &mut out).await;
    out.clear();
    a.map(&received(vec![llm(1, 3, Some(7), 30, "late")]), &mut out);
    finalise(&mut a, &mut out).await;
    assert!(rows_of(&out, RowKind::Trace).is_empty());
    let updates = rows_of(&out, RowKind::TraceUpdate);
    assert_eq!(updates.len(), 1);
    let u = &updates[0];
    assert!(u.get("input").is_none() && u.get("output").is_none());
    assert!(u.get("id").is_none() && u.get("last_updated_at").is_none());
    assert_eq!(
        u["end_time"], "2026-01-01T00:00:31.000000Z",
        "the late span's end"
    );
    assert_eq!(u["project_name"], "p");
}

#[tokio::test(start_paused = true)]
async fn a_late_llm_output_of_a_rootless_trace_still_reaches_the_row() {
    let mut a = assembler(100);
    let mut out = Vec::new();
    a.map(&received(vec![llm(1, 2, Some(7), 0, "first")]), &mut out);
    finalise(&mut a, &mut out).await;
    out.clear();
    a.map(&received(vec![llm(1, 3, Some(7), 30, "later")]), &mut out);
    finalise(&mut a, &mut out).await;
    let u = rows_of(&out, RowKind::TraceUpdate).pop().unwrap();
    assert!(u.get("input").is_none(), "the first input stays as written");
    assert_eq!(u["output"]["choices"][0]["message"]["content"], "out later");
}

#[tokio::test(start_paused = true)]
async fn an_entry_stored_before_release_existed_still_loads() {
    let mut a = assembler(100);
    let mut out = Vec::new();
    a.map(&received(vec![llm(1, 2, Some(7), 0, "old")]), &mut out);
    let t = a.traces.get(&TID).unwrap();
    let mut buf = Vec::new();
    t.encode(Instant::now(), unix_ms(), &mut buf).unwrap();
    let mut old: serde_json::Map<String, Json> = serde_json::from_slice(&buf[8..]).unwrap();
    old.remove("released");
    old.remove("resource_fingerprint");
    let mut bytes = buf[..8].to_vec();
    bytes.extend(serde_json::to_vec(&old).unwrap());
    let back = OpenTrace::decode(&bytes, Instant::now(), unix_ms()).unwrap();
    assert_eq!(back.released.0, 0);
    let (row, partial) = trace_row(&back, false, String::new());
    assert!(!partial);
    assert_eq!(
        row.fields.input.unwrap().to_value()["messages"][0]["content"],
        "in old"
    );
}

fn with_resource(service: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(OtelResource {
            attributes: vec![key_value(
                "service.name",
                Value::StringValue(service.into()),
            )],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn span_resources(a: &mut TraceAssembler, requests: Vec<ResourceSpans>) -> Vec<Json> {
    let mut out = Vec::new();
    a.map(&ReceivedTraces::new(requests), &mut out);
    let trace = traces_of(&out).pop().unwrap();
    assert_eq!(trace["metadata"]["resource"]["service.name"], "api");
    rows_of(&out, RowKind::Span)
        .into_iter()
        .map(|s| s["metadata"]["otel"]["resource"].clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn resource_attributes_go_once_per_trace_unless_they_differ() {
    let mut a = assembler(100);
    let got = span_resources(
        &mut a,
        vec![
            with_resource(
                "api",
                vec![llm(1, 7, None, 0, "a"), llm(1, 2, Some(7), 1, "b")],
            ),
            with_resource("worker", vec![llm(1, 3, Some(7), 2, "c")]),
        ],
    );
    assert_eq!(got[0], Json::Null);
    assert_eq!(got[1], Json::Null);
    assert_eq!(
        got[2]["service.name"], "worker",
        "another service's span keeps its own"
    );
}

#[tokio::test(start_paused = true)]
async fn every_span_puts_the_resource_on_every_span_row() {
    let mut t = target(100);
    t.resource_attributes_in = crate::destination::opik::config::ResourceIn::EverySpan;
    let telemetry = DestinationTelemetry::new(&Metrics::new(), "opik");
    let mut a = TraceAssembler::new(t, None, 1 << 20, telemetry);
    let got = span_resources(
        &mut a,
        vec![with_resource("api", vec![llm(1, 7, None, 0, "a")])],
    );
    assert_eq!(got[0]["service.name"], "api");
}

#[tokio::test(start_paused = true)]
async fn a_huge_unclaimed_attribute_is_cut_and_the_conversation_kept() {
    let metrics = Metrics::new();
    let telemetry = DestinationTelemetry::new(&metrics, "opik");
    let mut a = TraceAssembler::new(target(100), None, 1 << 20, telemetry);
    // 10 MiB in 40 strings: each under the normaliser's 256 KiB cap.
    let mut span = llm(1, 7, None, 0, "kept");
    let parts = (0..40)
        .map(|_| AnyValue {
            value: Some(Value::StringValue("b".repeat(256 << 10))),
        })
        .collect();
    span.attributes.push(key_value(
        "app.blob",
        Value::ArrayValue(ArrayValue { values: parts }),
    ));
    let mut out = Vec::new();
    a.map(&received(vec![span]), &mut out);
    let item = out.iter().find(|i| i.kind == RowKind::Span).unwrap();
    assert!(item.json.len() <= 1 << 20, "{} bytes", item.json.len());
    let row: Json = serde_json::from_str(&item.json).unwrap();
    assert_eq!(row["input"]["messages"][0]["content"], "in kept");
    let blob = &row["metadata"]["attributes"]["app.blob"];
    assert_eq!(blob["tracebridge_truncated"], true);
    assert!(blob["original_bytes"].as_u64().unwrap() > 10 << 20);
    assert_eq!(
        row["metadata"]["tracebridge_truncated"][0],
        "metadata.attributes.app.blob"
    );
    assert!(
        metrics
            .encode()
            .contains("tracebridge_mapping_warnings_total{reason=\"truncated_oversized_item\"} 1")
    );
}

#[tokio::test(start_paused = true)]
async fn a_huge_input_is_cut_and_the_metadata_kept() {
    let telemetry = DestinationTelemetry::new(&Metrics::new(), "opik");
    let mut a = TraceAssembler::new(target(100), None, 1 << 20, telemetry);
    let mut span = llm(1, 7, None, 0, "small");
    let huge = format!(r#"[{{"role":"user","content":"{}"}}]"#, "i".repeat(3 << 20));
    span.attributes[2] = key_value("gen_ai.input.messages", Value::StringValue(huge));
    span.attributes
        .push(key_value("app.note", Value::StringValue("n".repeat(500))));
    let mut out = Vec::new();
    a.map(&received(vec![span]), &mut out);
    let row = rows_of(&out, RowKind::Span).pop().unwrap();
    assert_eq!(row["input"]["tracebridge_truncated"], true);
    assert_eq!(
        row["output"]["choices"][0]["message"]["content"],
        "out small"
    );
    assert_eq!(row["metadata"]["attributes"]["app.note"], "n".repeat(500));
}

#[tokio::test(start_paused = true)]
async fn a_request_of_many_traces_is_mapped_in_linear_work() {
    let n: u32 = 5_000;
    let mut a = assembler(1000);
    let spans: Vec<Span> = (0..n)
        .map(|i| {
            let mut s = llm(1, 2, Some(7), 0, "x");
            s.trace_id = [i.to_be_bytes().as_slice(), &[1; 12]].concat();
            s
        })
        .collect();
    let mut out = Vec::new();
    a.map(&received(spans), &mut out);
    assert_eq!(a.open_traces(), 1000);
    assert_eq!(rows_of(&out, RowKind::Span).len(), n as usize);
    // Each eviction visits the table once and evicts 1 % of it.
    assert!(
        a.traces.visited <= 200 * n as usize,
        "{} entries visited",
        a.traces.visited
    );
}

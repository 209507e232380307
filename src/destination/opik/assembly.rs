//! Trace assembly: OTel spans arrive in any order and over many requests;
//! Opik wants one trace row per trace and one span row per span, written as
//! complete rows (it replaces whole rows on upsert, the newest
//! `last_updated_at` winning).
//!
//! The trace table remembers, per OTel trace id, the Opik id (so every later
//! batch, retry and span agrees), the project (the first choice sticks) and
//! what the trace row needs. A trace row is written
//! - when the trace is first seen, so it shows up early;
//! - again, complete, when its root span arrives;
//! - when it goes quiet for `stale_trace_timeout` (finalised: `end_time` is
//!   the latest end seen), at shutdown, or when evicted from a full table,
//!   if anything changed since it was last written.
//!
//! Entries are forgotten `trace_ttl` after their last span. The table holds at
//! most `max_open_traces` entries; when full, the least recently seen are
//! finalised and forgotten.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::trace::v1::Span;
use serde::Serialize;
use serde_json::{Map, Value as Json, json};
use tokio::time::Instant;
use uuid::Uuid;

use super::ids;
use super::mapping::{self, OtelContext};
use super::rows::{ErrorInfoRow, SpanRow, TraceRow};
use crate::config::OpikTarget;
use crate::export::{ExportItem, ItemMapper};
use crate::otlp::{attributes_to_json, hex_id};
use crate::route::ReceivedTraces;
use crate::semconv::{self, GenAiSpan, Kind, SpanContext};
use crate::telemetry::{DestinationTelemetry, RateLimitedLog};

/// Opik allows at most 50 tags per item.
pub const MAX_TAGS: usize = 50;

/// OTLP span flags: the parent span context is known to be remote.
const PARENT_IS_REMOTE: u32 = 0x300;

/// Which endpoint a row goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Trace,
    Span,
}

/// One encoded Opik row.
#[derive(Debug, Clone, PartialEq)]
pub struct OpikItem {
    pub kind: RowKind,
    pub id: Uuid,
    /// The row as JSON, encoded once when mapped.
    pub json: String,
    /// The OTel id it came from (hex), for logs.
    pub otel_id: String,
}

impl ExportItem for OpikItem {
    fn encoded_size(&self) -> usize {
        self.json.len() + 1
    }
    fn span_count(&self) -> usize {
        usize::from(self.kind == RowKind::Span)
    }
    fn describe(&self) -> String {
        match self.kind {
            RowKind::Trace => format!("trace {} (OTel trace {})", self.id, self.otel_id),
            RowKind::Span => format!("span {} (OTel span {})", self.id, self.otel_id),
        }
    }
}

/// What the trace row takes from its root span.
#[derive(Debug, Clone)]
struct Root {
    name: String,
    input: Option<Json>,
    output: Option<Json>,
    error: Option<ErrorInfoRow>,
    /// A true root (no parent), rather than a span whose parent is remote.
    parentless: bool,
}

#[derive(Debug)]
struct OpenTrace {
    id: Uuid,
    timestamp_ms: u64,
    project: String,
    otel_id: [u8; 16],
    root: Option<Root>,
    trace_name: Option<String>,
    first_span_name: String,
    start_ns: u64,
    end_ns: u64,
    /// (start, input) of the earliest LLM span and (end, output) of the latest.
    first_llm: Option<(u64, Json)>,
    last_llm: Option<(u64, Json)>,
    trace_input: Option<Json>,
    trace_output: Option<Json>,
    thread_id: Option<String>,
    user_id: Option<String>,
    tags: BTreeSet<String>,
    metadata: Map<String, Json>,
    resource: Json,
    last_seen: Instant,
    /// Changed since the trace row was last written.
    dirty: bool,
    /// Write the row at the end of the current request (new trace, root arrived).
    write_now: bool,
    finalised: bool,
}

/// What is known about a trace when a request first shows it.
#[derive(Clone, Copy)]
struct FirstSight<'a> {
    /// Earliest span start of the trace in this request (0 if none).
    earliest_start_ns: u64,
    /// The request's `projectName` header.
    request_project: Option<&'a str>,
    resource: &'a Json,
    now: Instant,
}

/// The Opik destination's [`ItemMapper`].
pub struct TraceAssembler {
    target: OpikTarget,
    privacy: bool,
    max_item_bytes: usize,
    traces: HashMap<[u8; 16], OpenTrace>,
    last_stamp_us: u64,
    telemetry: DestinationTelemetry,
    eviction_log: RateLimitedLog,
}

impl TraceAssembler {
    pub fn new(
        target: OpikTarget,
        privacy: bool,
        max_item_bytes: usize,
        telemetry: DestinationTelemetry,
    ) -> Self {
        Self {
            target,
            privacy,
            max_item_bytes,
            traces: HashMap::new(),
            last_stamp_us: 0,
            telemetry,
            eviction_log: RateLimitedLog::per_second(),
        }
    }

    /// Open traces (for tests and status).
    pub fn open_traces(&self) -> usize {
        self.traces.len()
    }

    /// A strictly increasing `last_updated_at`, so a newer write always wins.
    fn stamp(&mut self) -> String {
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        self.last_stamp_us = now_us.max(self.last_stamp_us + 1);
        mapping::timestamp(self.last_stamp_us * 1000)
    }

    fn ensure_trace(
        &mut self,
        tid: [u8; 16],
        g: &GenAiSpan,
        seen: &FirstSight<'_>,
        out: &mut Vec<OpikItem>,
    ) {
        let FirstSight {
            earliest_start_ns,
            request_project,
            resource,
            now,
        } = *seen;
        if self.traces.contains_key(&tid) {
            return;
        }
        if self.traces.len() >= self.target.max_open_traces {
            self.evict_oldest(out);
        }
        let timestamp_ms = match earliest_start_ns / 1_000_000 {
            0 => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            ms => ms,
        };
        let id = g
            .opik_trace_id
            .as_deref()
            .and_then(ids::parse_v7)
            .unwrap_or_else(|| ids::from_otel_id(&tid, timestamp_ms));
        let project = g
            .project_name
            .clone()
            .or_else(|| request_project.map(str::to_string))
            .unwrap_or_else(|| self.target.project_name.clone());
        let trace = OpenTrace {
            id,
            timestamp_ms,
            project,
            otel_id: tid,
            root: None,
            trace_name: None,
            first_span_name: String::new(),
            start_ns: u64::MAX,
            end_ns: 0,
            first_llm: None,
            last_llm: None,
            trace_input: None,
            trace_output: None,
            thread_id: None,
            user_id: None,
            tags: self.target.tags.iter().cloned().collect(),
            metadata: Map::new(),
            resource: resource.clone(),
            last_seen: now,
            dirty: true,
            write_now: true,
            finalised: false,
        };
        self.traces.insert(tid, trace);
    }

    /// Finalises and forgets the least recently seen 1 % (at least one).
    fn evict_oldest(&mut self, out: &mut Vec<OpikItem>) {
        let n = (self.traces.len() / 100).max(1);
        let mut by_age: Vec<([u8; 16], Instant)> =
            self.traces.iter().map(|(k, t)| (*k, t.last_seen)).collect();
        by_age.sort_by_key(|(_, seen)| *seen);
        for (tid, _) in by_age.into_iter().take(n) {
            if let Some(mut t) = self.traces.remove(&tid) {
                t.finalised = true;
                if t.dirty {
                    self.write_trace(&mut t, out);
                }
            }
        }
        if let Some(held_back) = self.eviction_log.check(std::time::Instant::now()) {
            tracing::warn!(
                destination = %self.telemetry.name(),
                max_open_traces = self.target.max_open_traces,
                evicted = n,
                similar_since_last_log = held_back,
                "trace table full: finalised and forgot the least recently seen traces; later spans of them start a new Opik trace"
            );
        }
        self.telemetry.mapping_warning("trace_table_full");
    }

    fn write_trace(&mut self, t: &mut OpenTrace, out: &mut Vec<OpikItem>) {
        let row = self.trace_row(t);
        // A row without an end time (no root yet, not finalised) still has
        // to be written once more when the trace is finalised.
        t.dirty = row.end_time.is_none();
        t.write_now = false;
        let otel_id = hex_id(&t.otel_id);
        out.push(self.encode(RowKind::Trace, row.id, otel_id, row));
    }

    fn trace_row(&mut self, t: &OpenTrace) -> TraceRow {
        let root = t.root.as_ref();
        let name = t
            .trace_name
            .clone()
            .or_else(|| root.map(|r| r.name.clone()))
            .unwrap_or_else(|| t.first_span_name.clone());
        let (input, output) = if self.privacy {
            (None, None)
        } else {
            (
                t.trace_input
                    .clone()
                    .or_else(|| root.and_then(|r| r.input.clone()))
                    .or_else(|| t.first_llm.as_ref().map(|(_, v)| v.clone())),
                t.trace_output
                    .clone()
                    .or_else(|| root.and_then(|r| r.output.clone()))
                    .or_else(|| t.last_llm.as_ref().map(|(_, v)| v.clone())),
            )
        };
        let mut metadata = t.metadata.clone();
        metadata.insert(
            "openrouter_trace_id".into(),
            Json::String(hex_id(&t.otel_id)),
        );
        if let Some(u) = &t.user_id {
            metadata.insert("user_id".into(), Json::String(u.clone()));
        }
        metadata.insert("resource".into(), t.resource.clone());
        let end_time =
            (t.root.is_some() || t.finalised).then(|| mapping::timestamp(t.end_ns.max(t.start_ns)));
        TraceRow {
            id: t.id,
            project_name: t.project.clone(),
            name,
            start_time: mapping::timestamp(if t.start_ns == u64::MAX {
                0
            } else {
                t.start_ns
            }),
            end_time,
            input,
            output,
            metadata: Json::Object(metadata),
            tags: t.tags.iter().take(MAX_TAGS).cloned().collect(),
            error_info: root.and_then(|r| r.error.clone()),
            thread_id: t.thread_id.clone(),
            last_updated_at: self.stamp(),
        }
    }

    fn encode<T: Serialize + HasIo>(
        &mut self,
        kind: RowKind,
        id: Uuid,
        otel_id: String,
        mut row: T,
    ) -> OpikItem {
        // Rows hold only strings, numbers and JSON values, so serialising
        // cannot fail; were it to, the empty item would be rejected by Opik,
        // isolated by bisection and counted, not lost silently.
        let mut json = serde_json::to_string(&row).unwrap_or_default();
        if json.len() > self.max_item_bytes {
            let (input, output) = row.io_mut();
            for field in [input, output] {
                if let Some(v) = field.as_ref() {
                    let original_bytes = serde_json::to_string(v).map(|s| s.len()).unwrap_or(0);
                    *field = Some(
                        json!({"tracebridge_truncated": true, "original_bytes": original_bytes}),
                    );
                }
            }
            json = serde_json::to_string(&row).unwrap_or_default();
            self.telemetry.mapping_warning("truncated_oversized_item");
        }
        OpikItem {
            kind,
            id,
            json,
            otel_id,
        }
    }

    fn map_span(
        &mut self,
        span: &Span,
        g: &GenAiSpan,
        otel: &OtelContext<'_>,
        now: Instant,
    ) -> Option<(SpanRow, String)> {
        let tid: [u8; 16] = span.trace_id.as_slice().try_into().ok()?;
        let privacy = self.privacy;
        let t = self.traces.get_mut(&tid)?;
        // The receiver already turned a parent id equal to the trace id into "no parent".
        let top_level =
            span.parent_span_id.is_empty() || span.flags & PARENT_IS_REMOTE == PARENT_IS_REMOTE;
        let input = if privacy {
            None
        } else {
            semconv::render::span_input(g)
        };
        let output = if privacy {
            None
        } else {
            semconv::render::span_output(g)
        };
        let error = mapping::error_info(g);
        // Only LLM spans carry `usage`: agent and workflow spans often repeat
        // the sum of their children, which Opik would count twice in the
        // trace totals. Their usage goes to metadata instead.
        let llm = matches!(g.kind, Kind::Llm | Kind::Embedding);
        let name = g.span_name.clone().unwrap_or_else(|| span.name.clone());

        // Trace state.
        t.last_seen = now;
        t.dirty = true;
        t.finalised = false;
        if t.first_span_name.is_empty() {
            t.first_span_name = name.clone();
        }
        if span.start_time_unix_nano > 0 {
            t.start_ns = t.start_ns.min(span.start_time_unix_nano);
        }
        t.end_ns = t.end_ns.max(span.end_time_unix_nano);
        let parentless = span.parent_span_id.is_empty();
        let replaces_root = match &t.root {
            None => top_level,
            Some(r) => top_level && parentless && !r.parentless,
        };
        if replaces_root {
            t.root = Some(Root {
                name: name.clone(),
                input: input.clone(),
                output: output.clone(),
                error: error.clone(),
                parentless,
            });
            t.write_now = true;
        }
        if matches!(g.kind, Kind::Llm) {
            if let Some(i) = &input {
                if t.first_llm
                    .as_ref()
                    .is_none_or(|(s, _)| span.start_time_unix_nano < *s)
                {
                    t.first_llm = Some((span.start_time_unix_nano, i.clone()));
                }
            }
            if let Some(o) = &output {
                if t.last_llm
                    .as_ref()
                    .is_none_or(|(e, _)| span.end_time_unix_nano >= *e)
                {
                    t.last_llm = Some((span.end_time_unix_nano, o.clone()));
                }
            }
        }
        if t.trace_name.is_none() {
            t.trace_name = g.trace_name.clone();
        }
        if t.trace_input.is_none() {
            t.trace_input = g.trace_input.clone();
        }
        if t.trace_output.is_none() {
            t.trace_output = g.trace_output.clone();
        }
        if t.thread_id.is_none() {
            t.thread_id = g.conversation_id.clone();
        }
        if t.user_id.is_none() {
            t.user_id = g.user_id.clone();
        }
        for tag in &g.tags {
            if t.tags.len() < MAX_TAGS {
                t.tags.insert(tag.clone());
            }
        }
        for (k, v) in &g.custom_metadata {
            t.metadata.entry(k.clone()).or_insert_with(|| v.clone());
        }

        // Span row.
        let id = g
            .opik_span_id
            .as_deref()
            .and_then(ids::parse_v7)
            .unwrap_or_else(|| ids::from_otel_id(&span.span_id, t.timestamp_ms));
        let explicit_parent = g
            .opik_trace_id
            .as_ref()
            .and(g.opik_parent_span_id.as_deref())
            .and_then(ids::parse_v7);
        let parent_span_id = match explicit_parent {
            Some(p) => Some(p),
            None if top_level => None,
            None => Some(ids::from_otel_id(&span.parent_span_id, t.timestamp_ms)),
        };
        let row = SpanRow {
            id,
            project_name: t.project.clone(),
            trace_id: t.id,
            parent_span_id,
            name,
            span_type: mapping::span_type(g.kind),
            start_time: mapping::timestamp(span.start_time_unix_nano),
            end_time: (span.end_time_unix_nano > 0)
                .then(|| mapping::timestamp(span.end_time_unix_nano)),
            input,
            output,
            metadata: mapping::span_metadata(g, otel, privacy),
            model: g.response_model.clone().or_else(|| g.request_model.clone()),
            provider: g.provider.clone(),
            tags: g.tags.iter().take(MAX_TAGS).cloned().collect(),
            usage: llm.then(|| mapping::usage(g)).flatten(),
            error_info: error,
            total_estimated_cost: g.cost.total_usd().filter(|c| *c >= 0.0),
            last_updated_at: String::new(),
        };
        Some((row, hex_id(&span.span_id)))
    }
}

/// Rows whose `input`/`output` can be truncated.
trait HasIo {
    fn io_mut(&mut self) -> (&mut Option<Json>, &mut Option<Json>);
}

impl HasIo for TraceRow {
    fn io_mut(&mut self) -> (&mut Option<Json>, &mut Option<Json>) {
        (&mut self.input, &mut self.output)
    }
}

impl HasIo for SpanRow {
    fn io_mut(&mut self) -> (&mut Option<Json>, &mut Option<Json>) {
        (&mut self.input, &mut self.output)
    }
}

impl ItemMapper for TraceAssembler {
    type Item = OpikItem;

    fn map(&mut self, traces: &ReceivedTraces, out: &mut Vec<OpikItem>) {
        let now = Instant::now();
        let mut earliest: HashMap<&[u8], u64> = HashMap::new();
        for span in traces
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
        {
            let e = earliest.entry(span.trace_id.as_slice()).or_insert(u64::MAX);
            if span.start_time_unix_nano > 0 {
                *e = (*e).min(span.start_time_unix_nano);
            }
        }
        let mut touched: Vec<[u8; 16]> = Vec::new();
        for rs in &traces.resource_spans {
            let resource_attrs = rs
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or(&[]);
            let resource = Json::Object(attributes_to_json(resource_attrs));
            for ss in &rs.scope_spans {
                let scope_name = ss.scope.as_ref().map(|s| s.name.as_str()).unwrap_or("");
                for span in &ss.spans {
                    let g = semconv::normalise(
                        span,
                        SpanContext {
                            resource_attributes: resource_attrs,
                            scope_name,
                        },
                    );
                    for w in &g.warnings {
                        self.telemetry.mapping_warning(w);
                    }
                    let Ok(tid) = <[u8; 16]>::try_from(span.trace_id.as_slice()) else {
                        continue;
                    };
                    let start = earliest.get(span.trace_id.as_slice()).copied().unwrap_or(0);
                    let start = if start == u64::MAX { 0 } else { start };
                    let seen = FirstSight {
                        earliest_start_ns: start,
                        request_project: traces.context.project_name.as_deref(),
                        resource: &resource,
                        now,
                    };
                    self.ensure_trace(tid, &g, &seen, out);
                    if !touched.contains(&tid) {
                        touched.push(tid);
                    }
                    let otel = OtelContext {
                        span,
                        scope: ss.scope.as_ref(),
                        resource: &resource,
                    };
                    if let Some((mut row, otel_id)) = self.map_span(span, &g, &otel, now) {
                        row.last_updated_at = self.stamp();
                        let id = row.id;
                        out.push(self.encode(RowKind::Span, id, otel_id, row));
                    }
                }
            }
        }
        for tid in touched {
            if let Some(mut t) = self.traces.remove(&tid) {
                if t.write_now {
                    self.write_trace(&mut t, out);
                }
                self.traces.insert(tid, t);
            }
        }
    }

    fn tick_interval(&self) -> Option<Duration> {
        let every = (self.target.stale_trace_timeout / 5)
            .clamp(Duration::from_millis(100), Duration::from_secs(30));
        Some(every)
    }

    fn on_tick(&mut self, now: Instant, out: &mut Vec<OpikItem>) {
        let stale = self.target.stale_trace_timeout;
        let ttl = self.target.trace_ttl;
        let due: Vec<[u8; 16]> = self
            .traces
            .iter()
            .filter(|(_, t)| {
                let quiet = now.saturating_duration_since(t.last_seen);
                (!t.finalised && quiet >= stale) || quiet >= ttl
            })
            .map(|(k, _)| *k)
            .collect();
        for tid in due {
            let Some(mut t) = self.traces.remove(&tid) else {
                continue;
            };
            let expired = now.saturating_duration_since(t.last_seen) >= ttl;
            t.finalised = true;
            if t.dirty {
                self.write_trace(&mut t, out);
            }
            if !expired {
                self.traces.insert(tid, t);
            }
        }
    }

    fn on_shutdown(&mut self, out: &mut Vec<OpikItem>) {
        let all: Vec<[u8; 16]> = self.traces.keys().copied().collect();
        for tid in all {
            if let Some(mut t) = self.traces.remove(&tid) {
                t.finalised = true;
                if t.dirty {
                    self.write_trace(&mut t, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::key_value;
    use crate::telemetry::Metrics;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

    fn target(max_open_traces: usize) -> OpikTarget {
        OpikTarget {
            url: "http://x/api".into(),
            api_key: None,
            workspace: "default".into(),
            project_name: "p".into(),
            tags: vec![],
            trace_ttl: Duration::from_secs(3600),
            stale_trace_timeout: Duration::from_secs(60),
            max_open_traces,
        }
    }

    fn llm(trace: u8, id: u8, parent: Option<u8>, start_s: u64, text: &str) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: format!("chat {id}"),
            start_time_unix_nano: (1_767_225_600 + start_s) * 1_000_000_000,
            end_time_unix_nano: (1_767_225_601 + start_s) * 1_000_000_000,
            attributes: vec![
                key_value("gen_ai.operation.name", Value::StringValue("chat".into())),
                key_value("gen_ai.request.model", Value::StringValue("m".into())),
                key_value(
                    "gen_ai.input.messages",
                    Value::StringValue(format!(r#"[{{"role":"user","content":"in {text}"}}]"#)),
                ),
                key_value(
                    "gen_ai.output.messages",
                    Value::StringValue(format!(
                        r#"[{{"role":"assistant","content":"out {text}"}}]"#
                    )),
                ),
            ],
            ..Default::default()
        }
    }

    fn received(spans: Vec<Span>) -> ReceivedTraces {
        ReceivedTraces {
            span_count: spans.len(),
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn traces_of(items: &[OpikItem]) -> Vec<Json> {
        items
            .iter()
            .filter(|i| i.kind == RowKind::Trace)
            .map(|i| serde_json::from_str(&i.json).unwrap())
            .collect()
    }

    fn assembler(max: usize) -> TraceAssembler {
        TraceAssembler::new(
            target(max),
            false,
            1 << 20,
            DestinationTelemetry::new(&Metrics::new(), "opik"),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_rootless_trace_is_written_early_then_finalised_when_it_goes_quiet() {
        let mut a = assembler(100);
        let mut out = Vec::new();
        a.map(
            &received(vec![
                llm(1, 2, Some(7), 0, "first"),
                llm(1, 3, Some(7), 5, "last"),
            ]),
            &mut out,
        );
        let early = traces_of(&out);
        assert_eq!(early.len(), 1, "written on first sight");
        assert!(early[0].get("end_time").is_none());
        out.clear();
        tokio::time::advance(Duration::from_secs(30)).await;
        a.on_tick(Instant::now(), &mut out);
        assert!(out.is_empty(), "not stale yet");
        tokio::time::advance(Duration::from_secs(31)).await;
        a.on_tick(Instant::now(), &mut out);
        let done = traces_of(&out);
        assert_eq!(done.len(), 1);
        let t = &done[0];
        assert_eq!(t["id"], early[0]["id"]);
        assert_eq!(t["end_time"], "2026-01-01T00:00:06.000000Z");
        assert_eq!(t["input"]["messages"][0]["content"], "in first");
        assert_eq!(t["output"]["choices"][0]["message"]["content"], "out last");
        assert!(t["last_updated_at"].as_str() > early[0]["last_updated_at"].as_str());
        out.clear();
        tokio::time::advance(Duration::from_secs(120)).await;
        a.on_tick(Instant::now(), &mut out);
        assert!(out.is_empty(), "written once when finalised, not again");
        assert_eq!(a.open_traces(), 1, "the id is remembered until trace_ttl");
        tokio::time::advance(Duration::from_secs(3600)).await;
        a.on_tick(Instant::now(), &mut out);
        assert_eq!(a.open_traces(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_root_arriving_rewrites_the_trace_with_its_name_and_io() {
        let mut a = assembler(100);
        let mut out = Vec::new();
        a.map(&received(vec![llm(1, 2, Some(7), 1, "child")]), &mut out);
        out.clear();
        let mut root = llm(1, 7, None, 0, "root");
        root.name = "agent".into();
        a.map(&received(vec![root]), &mut out);
        let t = traces_of(&out);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0]["name"], "agent");
        assert_eq!(t[0]["input"]["messages"][0]["content"], "in root");
        assert!(t[0].get("end_time").is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_table_finalises_the_least_recently_seen_trace() {
        let mut a = assembler(2);
        let mut out = Vec::new();
        for (trace, at) in [(1u8, 0u64), (2, 1), (3, 2)] {
            a.map(&received(vec![llm(trace, 9, Some(8), at, "x")]), &mut out);
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!(a.open_traces(), 2);
        let writes = traces_of(&out);
        let first_id = writes[0]["id"].clone();
        let finals: Vec<&Json> = writes.iter().filter(|t| t["id"] == first_id).collect();
        assert_eq!(
            finals.len(),
            2,
            "trace 1 written on sight and again, finalised, when evicted"
        );
        assert!(finals[1].get("end_time").is_some());
    }
}

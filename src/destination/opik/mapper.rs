//! Trace assembly, the Opik destination's [`ItemMapper`]: OTel spans arrive
//! in any order and over many requests; Opik wants one trace row per trace
//! and one span row per span, written as complete rows (it replaces whole
//! rows on upsert, the newest `last_updated_at` winning).
//!
//! A trace row is written
//! - when the trace is first seen, so it shows up early;
//! - again, complete, when its root span arrives;
//! - when it goes quiet for `stale_trace_timeout` (finalised: `end_time` is
//!   the latest end seen), at shutdown, or when evicted from a full table,
//!   if anything changed since it was last written.
//!
//! Once finalised, the trace's content (input and output candidates) is
//! released from the table ([`OpenTrace::release`]); a row written after
//! that whose input or output was released goes as Opik's `TraceUpdate`
//! (PATCH), which keeps what Opik holds for the fields it leaves out.
//!
//! With a persistent store ([`super::trace_store`]) every trace a request
//! touched is written back at the next durable commit (every second, once
//! however many requests touched it; the spool is held until then), the
//! table is reloaded at start, and a trace missing from memory (evicted, or
//! seen before a restart) is looked up there before it gets a new Opik id.
//!
//! The jobs are split by file: [`super::trace_table`] (what is remembered
//! per trace), [`super::trace_store`] / [`super::redis_store`] (its stores)
//! and `table_state.rs` (the assembler's side of them), [`super::span_row`] (one span → its row and what it tells its
//! trace), [`super::trace_row`] (the trace row), [`super::encode`] (rows →
//! items). GenAI log records join their spans in [`logs`] (with
//! [`super::log_join`]).

#[cfg(test)]
mod bounded_tests;
mod logs;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::Value as Json;
use tokio::time::Instant;

use super::config::{OpikTarget, ResourceIn};
use super::encode::{Encoder, OpikItem, RowKind};
use super::fields::{OtelContext, Resource};
use super::redis_store::RedisStore;
use super::span_row::{SpanView, span_row};
use super::state::TraceState;
use super::table_state::{Durable, SWEEP_EVERY};
use super::tenants;
use super::tool_rows::{ToolRows, lacks_content};
use super::trace_row::trace_row;
use super::trace_store::{COMMIT_EVERY, TraceStore};
use super::trace_table::{FirstSight, OpenTrace, TraceTable};
use super::wrapper_rows::WrapperRows;
use crate::control::{self, ControlStage, Step};
use crate::export::ItemMapper;
use crate::pdata::{hex_id, resource_attributes};
use crate::route::ReceivedTraces;
use crate::semconv::logs::join::LogJoin;
use crate::semconv::privacy::Privacy;
use crate::semconv::{self, SpanContext};
use crate::telemetry::reason::MappingWarning;
use crate::telemetry::{DestinationTelemetry, RateLimitedLog};
use opentelemetry_proto::tonic::trace::v1::Span;

/// The Opik destination's [`ItemMapper`].
pub struct TraceAssembler {
    pub(super) target: OpikTarget,
    privacy: Option<Privacy>,
    pub(super) traces: TraceTable,
    encoder: Encoder,
    pub(super) telemetry: DestinationTelemetry,
    eviction_log: RateLimitedLog,
    logs: LogJoin<logs::SpanOrigin>,
    pub(super) durable: Durable,
    controls: Option<ControlStage>,
    wrappers: WrapperRows,
    tool_calls: ToolRows,
}

impl TraceAssembler {
    pub fn new(
        target: OpikTarget,
        privacy: Option<Privacy>,
        max_item_bytes: usize,
        telemetry: DestinationTelemetry,
    ) -> Self {
        let store = match &target.state {
            TraceState::Disk(path) => TraceStore::open(path, telemetry.clone()),
            TraceState::Memory | TraceState::Redis(_) => TraceStore::memory(telemetry.clone()),
        };
        let redis = match &target.state {
            TraceState::Redis(r) => Some(RedisStore::new(r, target.trace_ttl, telemetry.clone())),
            _ => None,
        };
        let now = Instant::now();
        let mut a = Self {
            logs: LogJoin::new(target.logs),
            target,
            privacy,
            traces: TraceTable::default(),
            encoder: Encoder::new(max_item_bytes, telemetry.clone()),
            telemetry,
            eviction_log: RateLimitedLog::per_second(),
            controls: None,
            wrappers: WrapperRows::default(),
            tool_calls: ToolRows::default(),
            durable: Durable {
                store,
                redis,
                replay_from: None,
                pending: false,
                last_commit: now,
                unwritten: HashSet::new(),
                next_scan: now,
                next_sweep: now + SWEEP_EVERY,
                buf: Vec::new(),
            },
        };
        a.restore();
        a
    }

    /// Applies the destination's controls (sampling, filters) first.
    pub fn with_controls(mut self, controls: Option<ControlStage>) -> Self {
        self.controls = controls;
        self
    }

    /// Open traces (for tests and status).
    pub fn open_traces(&self) -> usize {
        self.traces.len()
    }

    /// Approximate bytes the trace table takes in memory (a counter kept
    /// as entries change; see [`TraceTable::approx_bytes`]).
    pub fn table_bytes(&self) -> usize {
        self.traces.approx_bytes()
    }

    /// Finalises and forgets (in memory; the store still answers for them)
    /// the least recently seen traces of a full table.
    fn evict_oldest(&mut self, out: &mut Vec<OpikItem>) {
        let evicted = self.traces.take_oldest();
        let n = evicted.len();
        self.write_out(&evicted);
        for (_, mut t) in evicted {
            t.finalised = true;
            if t.dirty {
                self.write_trace(&mut t, out);
            }
        }
        if let Some(held_back) = self.eviction_log.check(std::time::Instant::now()) {
            tracing::warn!(
                destination = %self.telemetry.name(),
                max_open_traces = self.target.max_open_traces,
                evicted = n,
                similar_since_last_log = held_back,
                persistent = self.durable.store.is_persistent(),
                "trace table full: finalised and forgot the least recently seen traces; later spans of them start a new Opik trace unless the store still holds them"
            );
        }
        self.telemetry
            .mapping_warning(MappingWarning::TraceTableFull);
    }

    fn write_trace(&mut self, t: &mut OpenTrace, out: &mut Vec<OpikItem>) {
        if t.attached {
            t.dirty = false;
            t.write_now = false;
            return;
        }
        let stamp = match self.durable.redis {
            // Later for every update of the shared entry, whichever replica made it.
            Some(_) => super::fields::timestamp(t.stamp_us * 1000),
            None => self.encoder.stamp(),
        };
        let (row, partial) = trace_row(t, self.privacy.is_some(), stamp);
        // A row without an end time (no root yet, not finalised) still has
        // to be written once more when the trace is finalised.
        t.dirty = row.fields.end_time.is_none();
        t.write_now = false;
        let otel_id = hex_id(&t.otel_id);
        let (id, e) = (row.id, &mut self.encoder);
        let mut item = if partial {
            e.encode(RowKind::TraceUpdate, id, otel_id, row.fields)
        } else {
            e.encode(RowKind::Trace, id, otel_id, row)
        };
        item.route = self.target.route(t.tenant.as_deref()).index;
        out.push(item);
    }

    /// A normalised span after privacy mode, its warnings counted.
    fn checked(&self, mut g: semconv::GenAiSpan, span: &Span) -> semconv::GenAiSpan {
        if let Some(p) = &self.privacy {
            let removed = p.redact_view(&mut g, span);
            self.telemetry.privacy_removed(removed.by_reason());
        }
        for w in &g.warnings {
            self.telemetry.mapping_warning(*w);
        }
        g
    }

    /// Maps one span: makes sure its trace is in the table, records what it
    /// tells the trace, and writes its row.
    fn map_span(
        &mut self,
        tid: [u8; 16],
        g: &mut semconv::GenAiSpan,
        seen: &FirstSight<'_>,
        otel: &OtelContext<'_>,
        out: &mut Vec<OpikItem>,
    ) {
        if !self.traces.contains(&tid) {
            if self.traces.len() >= self.target.max_open_traces {
                self.evict_oldest(out);
            }
            let mut t = self.open_trace(tid, g, seen);
            if let Ok(otel_id) = <[u8; 16]>::try_from(otel.span.trace_id.as_slice()) {
                // `tid` is the table key, derived from the tenant too.
                t.otel_id = otel_id;
            }
            self.traces.insert(tid, t);
        }
        let privacy = self.privacy.is_some();
        let Some(t) = self.traces.get_mut(&tid) else {
            return;
        };
        let before = t.approx_bytes();
        let view = SpanView::new(otel.span, g, privacy);
        t.observe(otel.span, g, &view, seen.now);
        let after = t.approx_bytes();
        let on_root = view.top_level && otel.span.parent_span_id.is_empty();
        // The resource goes once, into the trace row, unless the span's
        // differs from its trace's or no trace row is written for it.
        let with_resource = self.target.resource_attributes_in == ResourceIn::EverySpan
            || t.attached
            || t.resource_fingerprint != otel.resource.fingerprint;
        let mut row = span_row(t, otel.span, g, view, otel, privacy, with_resource);
        row.last_updated_at = self.encoder.stamp();
        let id = row.id;
        let otel_id = hex_id(&otel.span.span_id);
        let (trace_id, project) = (t.id, t.project.clone());
        self.traces.resized(before, after);
        let first = out.len();
        let with_usage = row.usage.is_some();
        let item = self.encoder.encode(RowKind::Span, id, otel_id.clone(), row);
        // Rows this span changes: a wrapper's, tool rows it completes.
        let wrapper = self.track_wrappers(tid, otel.span, g, with_usage.then_some(&item), seen.now);
        let mut again = self.track_tool_calls(tid, g, &item, seen.now);
        again.extend(wrapper);
        out.push(item);
        self.write_again(again, out);
        for e in &g.evaluations {
            if e.value.abs() > MAX_SCORE {
                self.telemetry
                    .mapping_warning(MappingWarning::ScoreOutOfRange);
                continue;
            }
            // Scores follow their rows; one on the root scores the trace too.
            let targets = [
                (RowKind::SpanScore, id, true),
                (RowKind::TraceScore, trace_id, on_root),
            ];
            for (kind, target, wanted) in targets {
                if wanted {
                    out.push(feedback_score(kind, target, &project, e, &otel_id));
                }
            }
        }
        for item in &mut out[first..] {
            item.route = seen.route;
        }
    }
}

impl TraceAssembler {
    /// Only the leaf of an LLM span wrapping an LLM call with the same usage
    /// carries Opik `usage` (see [`super::wrapper_rows`]): an LLM row just
    /// written with usage is remembered; an LLM span with usage rewrites
    /// its parent's remembered row without it.
    fn track_wrappers(
        &mut self,
        tid: [u8; 16],
        span: &Span,
        g: &semconv::GenAiSpan,
        written: Option<&OpikItem>,
        now: Instant,
    ) -> Option<Json> {
        if !matches!(g.kind, semconv::Kind::Llm | semconv::Kind::Embedding) || g.usage.is_empty() {
            return None;
        }
        if let (Some(item), Ok(id)) = (written, <[u8; 8]>::try_from(span.span_id.as_slice())) {
            self.wrappers.remember((tid, id), &g.usage, &item.json, now);
        }
        let parent = <[u8; 8]>::try_from(span.parent_span_id.as_slice()).ok()?;
        self.wrappers.take_wrapper((tid, parent), &g.usage)
    }

    /// Tool spans without arguments or result are completed from the LLM
    /// calls of their trace (see [`super::tool_rows`]): returns the tool
    /// rows to write again. Nothing under privacy mode.
    fn track_tool_calls(
        &mut self,
        tid: [u8; 16],
        g: &semconv::GenAiSpan,
        written: &OpikItem,
        now: Instant,
    ) -> Vec<Json> {
        if self.privacy.is_some() {
            return Vec::new();
        }
        match (g.kind, g.tool.call_id.as_deref()) {
            (semconv::Kind::Llm, _) => self.tool_calls.learn(tid, g, now),
            (semconv::Kind::Tool, Some(id)) if lacks_content(g) => self
                .tool_calls
                .await_content(tid, id, &written.json, now)
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Span rows written before, changed since: stamped later, so they
    /// replace what Opik holds. Rows of the trace of the span being mapped:
    /// [`Self::map_span`] gives them that trace's route.
    fn write_again(&mut self, rows: Vec<Json>, out: &mut Vec<OpikItem>) {
        for mut row in rows {
            let Some(id) = row["id"].as_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            row["last_updated_at"] = Json::String(self.encoder.stamp());
            let otel_id = row["metadata"]["openrouter_observation_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            out.push(OpikItem {
                kind: RowKind::Span,
                id,
                json: row.to_string().into(),
                otel_id,
                route: 0,
            });
        }
    }

    /// Maps one request; returns the traces it touched.
    fn map_request(&mut self, traces: &ReceivedTraces, out: &mut Vec<OpikItem>) -> Vec<[u8; 16]> {
        let now = Instant::now();
        let earliest = earliest_starts(traces);
        // Traces of this request, in first-seen order (a set too, so that a
        // request of many traces stays linear).
        let mut touched: Vec<[u8; 16]> = Vec::new();
        let mut seen_here: HashSet<[u8; 16]> = HashSet::new();
        let default_project = self.target.project_name.clone();
        let default_tags = self.target.tags.clone();
        let mut plan = self.controls.as_mut().map(|c| c.plan(traces));
        let tenant = traces.context.tenant.as_deref();
        let route = self.target.route(tenant);
        let (route, tenant_project) = (route.index, route.project.map(str::to_string));
        let mut index = 0;
        for rs in &traces.resource_spans {
            let resource = Resource::new(resource_attributes(rs));
            for ss in &rs.scope_spans {
                let ctx = SpanContext::of(rs, ss);
                for span in &ss.spans {
                    index += 1;
                    let (span, view, reason) = match control::step(plan.as_mut(), index - 1, span) {
                        Step::Skip => continue,
                        Step::Map { span, view, reason } => (span, view, reason),
                    };
                    let span = span.as_ref();
                    let g = self.normalise_joining(
                        span,
                        view.map(|v| *v),
                        ctx,
                        ss.scope.as_ref(),
                        &traces.context,
                        Vec::new(),
                        now,
                    );
                    let mut g = self.checked(g, span);
                    let Ok(tid) = <[u8; 16]>::try_from(span.trace_id.as_slice()) else {
                        continue;
                    };
                    let tid = tenants::table_key(&tid, tenant);
                    let start = earliest.get(span.trace_id.as_slice()).copied().unwrap_or(0);
                    let seen = FirstSight {
                        earliest_start_ns: if start == u64::MAX { 0 } else { start },
                        request_project: traces.context.project_name.as_deref(),
                        tenant,
                        route,
                        tenant_project: tenant_project.as_deref(),
                        default_project: &default_project,
                        default_tags: &default_tags,
                        resource: &resource,
                        now,
                    };
                    if seen_here.insert(tid) {
                        touched.push(tid);
                    }
                    let otel = OtelContext {
                        span,
                        scope: ss.scope.as_ref(),
                        resource: &resource,
                    };
                    self.map_span(tid, &mut g, &seen, &otel, out);
                    if let Some(reason) = reason {
                        self.note_sampling_reason(&tid, reason);
                    }
                }
            }
        }
        // Spans `sampling.always_keep` held until now, their trace kept.
        if let Some(released) = plan.as_mut().and_then(control::Plan::take_released) {
            for tid in self.map_request(&released, out) {
                if seen_here.insert(tid) {
                    touched.push(tid);
                }
            }
        }
        for tid in self.map_logs(traces, now, out) {
            if seen_here.insert(tid) {
                touched.push(tid);
            }
        }
        touched
    }

    /// `metadata.sampling_reason` on the trace row of a trace
    /// `sampling.always_keep` kept (written again with the request's rows).
    fn note_sampling_reason(&mut self, tid: &[u8; 16], reason: control::keep::KeepReason) {
        let Some(t) = self.traces.get_mut(tid) else {
            return;
        };
        if !t.metadata.contains_key("sampling_reason") {
            t.metadata.insert(
                "sampling_reason".into(),
                Json::String(reason.as_str().into()),
            );
            t.dirty = true;
            t.write_now = true;
        }
    }

    /// Writes the rows of the touched traces that asked for it (new, or
    /// their root arrived).
    fn write_touched(&mut self, touched: &[[u8; 16]], out: &mut Vec<OpikItem>) {
        for tid in touched {
            if let Some(mut t) = self.traces.remove(tid) {
                if t.write_now {
                    self.write_trace(&mut t, out);
                }
                self.traces.insert(*tid, t);
            }
        }
    }

    /// How often quiet traces are looked for.
    fn scan_every(&self) -> Duration {
        (self.target.stale_trace_timeout / 5)
            .clamp(Duration::from_millis(100), Duration::from_secs(30))
    }

    /// Finalises quiet traces (their complete row written, their content
    /// released: the entry keeps ids, times, names and small facts) and
    /// forgets expired ones.
    fn scan(&mut self, now: Instant, out: &mut Vec<OpikItem>) {
        let ttl = self.target.trace_ttl;
        let mut expired_ids = Vec::new();
        let mut released = Vec::new();
        let due = self.traces.due(now, self.target.stale_trace_timeout, ttl);
        self.sync(&due);
        for tid in due {
            let Some(mut t) = self.traces.remove(&tid) else {
                continue;
            };
            let expired = now.saturating_duration_since(t.last_seen) >= ttl;
            t.finalised = true;
            if t.dirty {
                self.write_trace(&mut t, out);
            }
            if expired {
                expired_ids.push(tid);
            } else {
                t.release();
                released.push(tid);
                self.traces.insert(tid, t);
            }
        }
        self.persist(&released, &expired_ids, None);
    }
}

impl ItemMapper for TraceAssembler {
    type Item = OpikItem;

    fn map(&mut self, traces: &ReceivedTraces, out: &mut Vec<OpikItem>) {
        self.map_record(traces, None, out);
    }

    fn held_bytes(&self) -> usize {
        self.table_bytes()
    }

    fn map_record(
        &mut self,
        traces: &ReceivedTraces,
        record: Option<(u64, u64)>,
        out: &mut Vec<OpikItem>,
    ) {
        let touched = self.map_request(traces, out);
        self.persist(&touched, &[], record);
        self.write_touched(&touched, out);
    }

    fn replay_from(&self) -> Option<u64> {
        self.durable.replay_from
    }

    fn takes_logs(&self) -> bool {
        true
    }

    fn tick_interval(&self) -> Option<Duration> {
        let scan = self
            .scan_every()
            .min((self.target.logs.window / 2).max(Duration::from_millis(100)));
        Some(if self.durable.store.is_persistent() {
            scan.min(COMMIT_EVERY)
        } else {
            scan
        })
    }

    fn on_tick(&mut self, now: Instant, out: &mut Vec<OpikItem>) {
        self.expire_logs(now);
        self.wrappers.expire(now);
        self.tool_calls.expire(now);
        if now >= self.durable.next_scan {
            self.durable.next_scan = now + self.scan_every();
            self.scan(now, out);
        }
        self.sweep(now);
        if now.saturating_duration_since(self.durable.last_commit) >= COMMIT_EVERY {
            self.commit();
        }
    }

    fn on_shutdown(&mut self, out: &mut Vec<OpikItem>) {
        self.drain_logs();
        if let Some(r) = self.durable.redis.as_mut() {
            r.stop_waiting();
        }
        let all: Vec<[u8; 16]> = self.traces.ids().copied().collect();
        self.sync(&all);
        // What waits for the store is read from the table, which empties now.
        self.commit();
        let all: Vec<OpenTrace> = self.traces.drain().collect();
        for mut t in all {
            t.finalised = true;
            if t.dirty {
                self.write_trace(&mut t, out);
            }
        }
        self.commit();
    }
}

/// The largest score Opik stores (`MAX_FEEDBACK_SCORE_VALUE`); it answers
/// 422 beyond, which would fail the batch.
const MAX_SCORE: f64 = 999_999_999.999_999_999;

/// One Opik `FeedbackScoreBatchItem` (`PUT …/feedback-scores`).
fn feedback_score(
    kind: RowKind,
    id: uuid::Uuid,
    project: &str,
    e: &semconv::Evaluation,
    otel_id: &str,
) -> OpikItem {
    let mut score = serde_json::json!({
        "id": id,
        "project_name": project,
        "name": e.name,
        "value": e.value,
        "source": "sdk",
    });
    if let Some(o) = score.as_object_mut() {
        if let Some(label) = &e.label {
            o.insert("category_name".into(), Json::String(label.clone()));
        }
        if let Some(reason) = &e.explanation {
            o.insert("reason".into(), Json::String(reason.clone()));
        }
    }
    OpikItem {
        kind,
        id,
        json: score.to_string().into(),
        otel_id: otel_id.to_string(),
        route: 0,
    }
}

/// The earliest span start of each trace in a request (`u64::MAX` if none
/// has a start), which stamps the Opik id of a trace first seen here.
fn earliest_starts(traces: &ReceivedTraces) -> HashMap<&[u8], u64> {
    let mut earliest: HashMap<&[u8], u64> = HashMap::new();
    for span in traces.spans() {
        let e = earliest.entry(span.trace_id.as_slice()).or_insert(u64::MAX);
        if span.start_time_unix_nano > 0 {
            *e = (*e).min(span.start_time_unix_nano);
        }
    }
    earliest
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::pdata::key_value;
    use crate::telemetry::Metrics;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::trace::v1::Span;

    pub(super) fn target(max_open_traces: usize) -> OpikTarget {
        super::super::config::test_target(max_open_traces)
    }

    pub(super) fn llm(trace: u8, id: u8, parent: Option<u8>, start_s: u64, text: &str) -> Span {
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

    pub(super) fn received(spans: Vec<Span>) -> ReceivedTraces {
        ReceivedTraces::from_spans(spans)
    }

    pub(super) fn traces_of(items: &[OpikItem]) -> Vec<Json> {
        items
            .iter()
            .filter(|i| i.kind == RowKind::Trace)
            .map(|i| serde_json::from_str(&i.json).unwrap())
            .collect()
    }

    pub(super) fn assembler(max: usize) -> TraceAssembler {
        TraceAssembler::new(
            target(max),
            None,
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
    async fn spans_attached_to_an_opik_sdk_trace_write_no_trace_row() {
        let mut a = assembler(100);
        let mut out = Vec::new();
        let sdk_trace = "0192d7a1-0000-7000-8000-000000000001";
        let mut s = llm(1, 2, Some(7), 0, "x");
        s.attributes.push(key_value(
            "opik.trace_id",
            Value::StringValue(sdk_trace.into()),
        ));
        a.map(&received(vec![s]), &mut out);
        a.on_shutdown(&mut out);
        assert!(
            traces_of(&out).is_empty(),
            "the SDK's trace row is left alone"
        );
        let spans: Vec<Json> = out
            .iter()
            .filter(|i| i.kind == RowKind::Span)
            .map(|i| serde_json::from_str(&i.json).unwrap())
            .collect();
        assert_eq!(spans[0]["trace_id"], sdk_trace);
        assert!(spans[0].get("parent_span_id").is_none_or(Json::is_null));
    }

    #[tokio::test(start_paused = true)]
    async fn evaluation_results_become_feedback_scores_on_the_span_and_the_root_trace() {
        use opentelemetry_proto::tonic::trace::v1::span::Event;
        let mut a = assembler(100);
        let mut out = Vec::new();
        let mut root = llm(1, 7, None, 0, "x");
        root.events.push(Event {
            name: "gen_ai.evaluation.result".into(),
            attributes: vec![
                key_value(
                    "gen_ai.evaluation.name",
                    Value::StringValue("relevance".into()),
                ),
                key_value("gen_ai.evaluation.score.value", Value::DoubleValue(0.8)),
                key_value(
                    "gen_ai.evaluation.score.label",
                    Value::StringValue("good".into()),
                ),
                key_value(
                    "gen_ai.evaluation.explanation",
                    Value::StringValue("fine".into()),
                ),
            ],
            ..Default::default()
        });
        a.map(&received(vec![root]), &mut out);
        let scores: Vec<(RowKind, Json)> = out
            .iter()
            .filter(|i| matches!(i.kind, RowKind::SpanScore | RowKind::TraceScore))
            .map(|i| (i.kind, serde_json::from_str(&i.json).unwrap()))
            .collect();
        assert_eq!(scores.len(), 2);
        assert_eq!(scores[0].1["name"], "relevance");
        assert_eq!(scores[0].1["value"], 0.8);
        assert_eq!(scores[0].1["category_name"], "good");
        assert_eq!(scores[0].1["reason"], "fine");
        assert_eq!(scores[0].1["source"], "sdk");
        let trace = &traces_of(&out)[0];
        assert_eq!(scores[1].0, RowKind::TraceScore);
        assert_eq!(scores[1].1["id"], trace["id"]);
    }

    fn with_usage(mut s: Span, input: i64, output: i64) -> Span {
        s.attributes.extend([
            key_value("gen_ai.usage.input_tokens", Value::IntValue(input)),
            key_value("gen_ai.usage.output_tokens", Value::IntValue(output)),
        ]);
        s
    }

    /// Opik's view after upsert: the newest row per span name.
    fn final_spans(items: &[OpikItem]) -> HashMap<String, Json> {
        let mut rows: HashMap<String, Json> = HashMap::new();
        for i in items.iter().filter(|i| i.kind == RowKind::Span) {
            let row: Json = serde_json::from_str(&i.json).unwrap();
            let name = row["name"].as_str().unwrap().to_string();
            let newer = rows.get(&name).is_none_or(|old| {
                row["last_updated_at"].as_str() > old["last_updated_at"].as_str()
            });
            if newer {
                rows.insert(name, row);
            }
        }
        rows
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_leaf_of_a_wrapped_llm_call_carries_usage_whatever_the_order() {
        // `chat 2` wraps `chat 3` (same usage); `chat 4`, a later child with
        // the same usage, finds nothing left to rewrite.
        let wrapper = || with_usage(llm(1, 2, Some(1), 0, "w"), 42, 17);
        let leaf = || with_usage(llm(1, 3, Some(2), 0, "l"), 42, 17);
        let other = || with_usage(llm(1, 4, Some(2), 1, "o"), 42, 17);
        let orders: [Vec<Vec<Span>>; 4] = [
            vec![vec![leaf(), wrapper()]],
            vec![vec![wrapper(), leaf()]],
            vec![vec![leaf()], vec![wrapper()]],
            vec![vec![wrapper()], vec![leaf()]],
        ];
        for (n, requests) in orders.into_iter().enumerate() {
            let mut a = assembler(100);
            let mut out = Vec::new();
            for r in requests {
                a.map(&received(r), &mut out);
                tokio::time::advance(Duration::from_millis(10)).await;
            }
            let rows = final_spans(&out);
            assert_eq!(rows["chat 3"]["usage"]["prompt_tokens"], 42, "order {n}");
            assert!(
                rows["chat 2"].get("usage").is_none(),
                "order {n}: {:#}",
                rows["chat 2"]
            );
            assert_eq!(
                rows["chat 2"]["metadata"]["usage"]["prompt_tokens"], 42,
                "order {n}"
            );
            assert_eq!(
                rows["chat 2"]["output"]["choices"][0]["message"]["content"], "out w",
                "order {n}: the row stays whole"
            );
        }
        // The wrapper's row is rewritten once.
        let mut a = assembler(100);
        let mut out = Vec::new();
        a.map(&received(vec![wrapper()]), &mut out);
        a.map(&received(vec![leaf()]), &mut out);
        a.map(&received(vec![other()]), &mut out);
        let wrapper_writes = out
            .iter()
            .filter(|i| i.kind == RowKind::Span && i.otel_id == hex_id(&[2; 8]))
            .count();
        assert_eq!(wrapper_writes, 2);
        let rows = final_spans(&out);
        assert!(rows["chat 2"].get("usage").is_none());
        assert_eq!(
            rows["chat 2"]["input"]["messages"][0]["content"], "in w",
            "the row stays whole"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_trace_ttft_runs_from_its_start_to_the_first_token_of_its_first_llm_call() {
        let ttft = |mut s: Span, ms: f64| {
            s.attributes.push(key_value(
                "gen_ai.response.time_to_first_chunk",
                Value::DoubleValue(ms / 1000.0),
            ));
            s
        };
        let mut a = assembler(100);
        let mut out = Vec::new();
        // The later call comes first; the earlier one, 2 s into the trace, wins.
        a.map(
            &received(vec![ttft(llm(1, 3, Some(1), 5, "b"), 90.0)]),
            &mut out,
        );
        a.map(
            &received(vec![ttft(llm(1, 2, Some(1), 2, "a"), 250.0)]),
            &mut out,
        );
        let mut root = llm(1, 1, None, 0, "root");
        root.attributes.clear();
        a.map(&received(vec![root]), &mut out);
        let last = traces_of(&out).pop().unwrap();
        assert_eq!(last["ttft"], 2250.0, "{last:#}");
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

    fn on_disk(max: usize, path: &std::path::Path) -> TraceAssembler {
        let mut t = target(max);
        t.state = TraceState::Disk(path.to_path_buf());
        TraceAssembler::new(
            t,
            None,
            1 << 20,
            DestinationTelemetry::new(&Metrics::new(), "opik"),
        )
    }

    fn span_trace_ids(items: &[OpikItem]) -> Vec<String> {
        items
            .iter()
            .filter(|i| i.kind == RowKind::Span)
            .map(|i| serde_json::from_str::<Json>(&i.json).unwrap()["trace_id"].to_string())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_restarted_assembler_finds_the_trace_in_its_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opik.redb");
        let mut out = Vec::new();
        {
            let mut a = on_disk(100, &path);
            a.map(&received(vec![llm(1, 2, Some(7), 0, "first")]), &mut out);
            a.on_shutdown(&mut out);
        }
        let mut b = on_disk(100, &path);
        assert_eq!(b.open_traces(), 1, "restored at start");
        b.map(&received(vec![llm(1, 3, Some(7), 9, "later")]), &mut out);
        let ids = span_trace_ids(&out);
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0], ids[1], "one Opik trace across the restart");
        out.clear();
        tokio::time::advance(Duration::from_secs(61)).await;
        b.on_tick(Instant::now(), &mut out);
        let t = traces_of(&out);
        assert_eq!(t.len(), 1, "finalised once quiet");
        assert_eq!(
            t[0]["input"]["messages"][0]["content"], "in first",
            "state kept"
        );
        assert_eq!(
            t[0]["output"]["choices"][0]["message"]["content"],
            "out later"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_evicted_trace_keeps_its_id_when_the_store_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = on_disk(1, &dir.path().join("opik.redb"));
        let mut out = Vec::new();
        a.map(&received(vec![llm(1, 2, Some(7), 0, "a")]), &mut out);
        a.map(&received(vec![llm(2, 2, Some(7), 1, "b")]), &mut out);
        a.map(&received(vec![llm(1, 3, Some(7), 5, "c")]), &mut out);
        let ids = span_trace_ids(&out);
        assert_eq!(ids[0], ids[2], "trace 1 came back under its id");
        assert_ne!(ids[0], ids[1]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_spool_is_held_at_the_first_record_not_yet_durable() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = on_disk(100, &dir.path().join("opik.redb"));
        let mut out = Vec::new();
        a.map_record(
            &received(vec![llm(1, 2, Some(7), 0, "a")]),
            Some((10, 20)),
            &mut out,
        );
        a.map_record(
            &received(vec![llm(1, 3, Some(7), 1, "b")]),
            Some((20, 30)),
            &mut out,
        );
        assert_eq!(a.replay_from(), Some(10));
        tokio::time::advance(COMMIT_EVERY).await;
        a.on_tick(Instant::now(), &mut out);
        assert_eq!(a.replay_from(), None, "a durable commit releases the hold");
        a.map_record(
            &received(vec![llm(1, 4, Some(7), 2, "c")]),
            Some((30, 40)),
            &mut out,
        );
        assert_eq!(a.replay_from(), Some(30));
    }
}

//! The trace assembler's side of GenAI log records: a span takes the
//! records held for it; a record finds its remembered span (and rewrites
//! its row) or is held; Claude Code's events without spans become spans.
//! What is held and remembered, and for how long, is [`LogJoin`]'s.

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use serde_json::Value as Json;
use tokio::time::Instant;

use super::TraceAssembler;
use crate::destination::opik::encode::OpikItem;
use crate::destination::opik::fields::OtelContext;
use crate::destination::opik::log_join::{LogJoin, RecentSpan};
use crate::destination::opik::trace_table::FirstSight;
use crate::pdata::attributes_to_json;
use crate::route::{ReceivedTraces, RequestContext};
use crate::semconv::logs::{GenAiRecord, Reading, claude_code, read_record, span_keys};
use crate::semconv::{self, GenAiSpan, Kind, SpanContext};
use crate::telemetry::reason::LogOutcome;

/// Where a span comes from, for writing its row outside the request that
/// brought it.
struct Origin<'a> {
    resource_attributes: &'a [KeyValue],
    scope: Option<&'a InstrumentationScope>,
    project: Option<&'a str>,
}

impl TraceAssembler {
    /// Normalises a span with the records held for it (and `own`, the
    /// record a synthesised span is made from); remembers it if records
    /// may still come.
    pub(super) fn normalise_joining(
        &mut self,
        span: &Span,
        ctx: SpanContext<'_>,
        scope: Option<&InstrumentationScope>,
        context: &RequestContext,
        own: Vec<Event>,
        now: Instant,
    ) -> GenAiSpan {
        let g = semconv::normalise(span, ctx);
        let (by_span, by_response) = span_keys(span, &g);
        let mut joined = own;
        let taken = self.logs.take_for([by_span.as_ref(), by_response.as_ref()]);
        self.telemetry.log_records(LogOutcome::Joined, taken.len());
        joined.extend(taken);
        let g = if joined.is_empty() {
            g
        } else {
            semconv::normalise_joined(span, &joined, ctx)
        };
        if awaits_records(&g) {
            let mut recent = RecentSpan::new(span.clone(), joined, by_response);
            recent.scope = scope.cloned();
            recent.scope_name = ctx.scope_name.to_string();
            recent.resource_attributes = ctx.resource_attributes.to_vec();
            recent.project = context.project_name.clone();
            self.logs.remember(recent, now);
        }
        g
    }

    /// Maps the log records of a request; returns the traces it touched.
    pub(super) fn map_logs(
        &mut self,
        traces: &ReceivedTraces,
        now: Instant,
        out: &mut Vec<OpikItem>,
    ) -> Vec<[u8; 16]> {
        let mut touched = Vec::new();
        let mut unused = 0;
        for rl in &traces.resource_logs {
            let resource_attributes = rl
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default();
            for sl in &rl.scope_logs {
                let scope_name = sl.scope.as_ref().map_or("", |s| s.name.as_str());
                let origin = Origin {
                    resource_attributes,
                    scope: sl.scope.as_ref(),
                    project: traces.context.project_name.as_deref(),
                };
                for record in &sl.log_records {
                    let tid = match read_record(record, scope_name) {
                        Reading::Unused => {
                            unused += 1;
                            None
                        }
                        Reading::Join(r) => self.join_record(r, now, out),
                        Reading::Synthesise { span, record } => {
                            self.telemetry.log_records(LogOutcome::Synthesised, 1);
                            let ctx = SpanContext {
                                resource_attributes,
                                scope_name: claude_code::TRACING_SCOPE,
                            };
                            let own = vec![record.event];
                            let g = self.normalise_joining(
                                &span,
                                ctx,
                                origin.scope,
                                &traces.context,
                                own,
                                now,
                            );
                            self.write_span(&span, g, &origin, now, out)
                        }
                    };
                    touched.extend(tid);
                }
            }
        }
        self.telemetry.log_records(LogOutcome::Unused, unused);
        touched
    }

    /// A record meets its remembered span (whose row is written again) or
    /// is held for it.
    fn join_record(
        &mut self,
        r: GenAiRecord,
        now: Instant,
        out: &mut Vec<OpikItem>,
    ) -> Option<[u8; 16]> {
        let Some(mut recent) = self.logs.take_recent(&r.key) else {
            let released = self.logs.hold(r, now);
            self.telemetry
                .log_records(LogOutcome::HoldFull, released.hold_full);
            return None;
        };
        self.telemetry.log_records(LogOutcome::Joined, 1);
        recent.joined.push(r.event);
        let ctx = SpanContext {
            resource_attributes: &recent.resource_attributes,
            scope_name: &recent.scope_name,
        };
        let g = semconv::normalise_joined(&recent.span, &recent.joined, ctx);
        let origin = Origin {
            resource_attributes: &recent.resource_attributes,
            scope: recent.scope.as_ref(),
            project: recent.project.as_deref(),
        };
        let tid = self.write_span(&recent.span, g, &origin, now, out);
        self.logs.put_back(recent);
        tid
    }

    /// Writes the row of a span met outside the request loop.
    fn write_span(
        &mut self,
        span: &Span,
        g: GenAiSpan,
        origin: &Origin<'_>,
        now: Instant,
        out: &mut Vec<OpikItem>,
    ) -> Option<[u8; 16]> {
        let g = self.checked(g, span);
        let tid = <[u8; 16]>::try_from(span.trace_id.as_slice()).ok()?;
        let resource = Json::Object(attributes_to_json(origin.resource_attributes));
        let (default_project, default_tags) =
            (self.target.project_name.clone(), self.target.tags.clone());
        let seen = FirstSight {
            earliest_start_ns: span.start_time_unix_nano,
            request_project: origin.project,
            default_project: &default_project,
            default_tags: &default_tags,
            resource: &resource,
            now,
        };
        let otel = OtelContext {
            span,
            scope: origin.scope,
            resource: &resource,
        };
        self.map_span(tid, &g, &seen, &otel, out);
        Some(tid)
    }

    /// Records held past the window are forgotten, counted.
    pub(super) fn expire_logs(&mut self, now: Instant) {
        let expired = self.logs.expire(now);
        self.telemetry.log_records(LogOutcome::Expired, expired);
    }

    /// The daemon stops: what is still held is lost, counted.
    pub(super) fn drain_logs(&mut self) {
        let held = self.logs.drain();
        self.telemetry.log_records(LogOutcome::Shutdown, held);
    }

    /// The join state (for tests).
    pub fn log_join(&self) -> &LogJoin {
        &self.logs
    }
}

/// An LLM span without messages: its content may come in log records.
fn awaits_records(g: &GenAiSpan) -> bool {
    matches!(g.kind, Kind::Llm) && (g.input_messages.is_empty() || g.output_messages.is_empty())
}

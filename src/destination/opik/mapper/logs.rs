//! The trace assembler's side of GenAI log records: a span takes the
//! records held for it; a record finds its remembered span (and rewrites
//! its row) or is held; Claude Code's events without spans become spans.
//! What is held and remembered, and for how long, is [`LogJoin`]'s
//! (`semconv::logs::join`, shared with the OTLP destination).

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use tokio::time::Instant;

use super::TraceAssembler;
use crate::destination::opik::encode::OpikItem;
use crate::destination::opik::fields::{OtelContext, Resource};
use crate::destination::opik::tenants::{scoped, table_key};
use crate::destination::opik::trace_table::FirstSight;
use crate::route::{ReceivedTraces, RequestContext};
use crate::semconv::logs::join::{Admitted, LogJoin, RecentSpan};
use crate::semconv::logs::{
    GenAiRecord, Reading, awaits_records, key_of_span, read_record, span_keys, synthesised_context,
};
use crate::semconv::{self, GenAiSpan, Kind, SpanContext};
use crate::telemetry::reason::LogOutcome;

/// What a remembered span's row needs besides the span.
pub struct SpanOrigin {
    scope: Option<InstrumentationScope>,
    scope_name: String,
    resource_attributes: Vec<KeyValue>,
    project: Option<String>,
}

/// Where a span comes from, for writing its row outside the request that
/// brought it.
struct Origin<'a> {
    resource_attributes: &'a [KeyValue],
    scope: Option<&'a InstrumentationScope>,
    project: Option<&'a str>,
    tenant: Option<&'a str>,
}

impl TraceAssembler {
    /// Normalises a span with the records held for it (and `own`, the
    /// record a synthesised span is made from); remembers it if records
    /// may still come. `view`: the span already normalised (by the
    /// destination's controls), if it was.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn normalise_joining(
        &mut self,
        span: &Span,
        view: Option<GenAiSpan>,
        ctx: SpanContext<'_>,
        scope: Option<&InstrumentationScope>,
        context: &RequestContext,
        own: Vec<Event>,
        now: Instant,
    ) -> GenAiSpan {
        let g = view.unwrap_or_else(|| semconv::normalise(span, ctx));
        let awaits = awaits_records(&g, ctx);
        let tenant = context.tenant.as_deref();
        if !awaits && matches!(g.kind, Kind::Llm) {
            // Complete: a record for it that comes later has nothing to add.
            if let Some(key) = key_of_span(span) {
                self.logs.saw_complete(scoped(key, tenant), now);
            }
        }
        if !awaits && own.is_empty() && self.logs.holds_nothing() {
            // The common case (no log records in flight): no lookup.
            return g;
        }
        let (by_span, by_response) = span_keys(span, &g);
        let by_span = by_span.map(|k| scoped(k, tenant));
        let by_response = by_response.map(|k| scoped(k, tenant));
        let mut joined = own;
        let taken = self.logs.take_for([by_span.as_ref(), by_response.as_ref()]);
        self.telemetry.log_records(LogOutcome::Joined, taken.len());
        joined.extend(taken);
        let g = if joined.is_empty() {
            g
        } else {
            semconv::normalise_joined(span, &joined, ctx)
        };
        if awaits_records(&g, ctx) {
            let origin = SpanOrigin {
                scope: scope.cloned(),
                scope_name: ctx.scope_name.to_string(),
                resource_attributes: ctx.resource_attributes.to_vec(),
                project: context.project_name.clone(),
            };
            let bytes = origin
                .resource_attributes
                .iter()
                .map(prost::Message::encoded_len)
                .sum();
            let mut recent = RecentSpan::new(span.clone(), joined, by_response, origin, bytes);
            recent.tenant = context.tenant.clone();
            // Opik has written these rows already: nothing to do with the
            // spans a full memory lets go.
            let _ = self.logs.remember(recent, now);
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
                    tenant: traces.context.tenant.as_deref(),
                };
                for record in &sl.log_records {
                    let tid = match read_record(record, scope_name) {
                        Reading::Unused => {
                            unused += 1;
                            None
                        }
                        Reading::Join(r) => self.join_record(r, origin.tenant, now, out),
                        Reading::JoinEach(rs) => {
                            for r in rs {
                                touched.extend(self.join_record(r, origin.tenant, now, out));
                            }
                            None
                        }
                        Reading::Synthesise { span, record } => {
                            self.telemetry.log_records(LogOutcome::Synthesised, 1);
                            let ctx = synthesised_context(resource_attributes);
                            let own = vec![record.event];
                            let g = self.normalise_joining(
                                &span,
                                None,
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
        tenant: Option<&str>,
        now: Instant,
        out: &mut Vec<OpikItem>,
    ) -> Option<[u8; 16]> {
        let recent = match self.logs.admit(r, tenant, now) {
            Admitted::Unused => {
                self.telemetry.log_records(LogOutcome::Unused, 1);
                return None;
            }
            Admitted::Held(released) => {
                self.telemetry
                    .log_records(LogOutcome::HoldFull, released.hold_full);
                return None;
            }
            Admitted::Joined { recent, joined } => {
                self.telemetry.log_records(LogOutcome::Joined, joined);
                recent
            }
        };
        let o = &recent.origin;
        let ctx = SpanContext {
            resource_attributes: &o.resource_attributes,
            scope_name: &o.scope_name,
        };
        let g = semconv::normalise_joined(&recent.span, &recent.joined, ctx);
        let origin = Origin {
            resource_attributes: &o.resource_attributes,
            scope: o.scope.as_ref(),
            project: o.project.as_deref(),
            tenant: recent.tenant.as_deref(),
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
        let mut g = self.checked(g, span);
        let tid = <[u8; 16]>::try_from(span.trace_id.as_slice()).ok()?;
        let tid = table_key(&tid, origin.tenant);
        let resource = Resource::new(origin.resource_attributes);
        let (default_project, default_tags) =
            (self.target.project_name.clone(), self.target.tags.clone());
        let route = self.target.route(origin.tenant);
        let (route, tenant_project) = (route.index, route.project.map(str::to_string));
        let seen = FirstSight {
            earliest_start_ns: span.start_time_unix_nano,
            request_project: origin.project,
            tenant: origin.tenant,
            route,
            tenant_project: tenant_project.as_deref(),
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
        self.map_span(tid, &mut g, &seen, &otel, out);
        Some(tid)
    }

    /// Records held past the window are forgotten, counted (the spans
    /// remembered were written already).
    pub(super) fn expire_logs(&mut self, now: Instant) {
        let window = self.logs.window();
        let released = self.logs.expire(now, window);
        self.telemetry
            .log_records(LogOutcome::Expired, released.expired);
    }

    /// The daemon stops: what is still held is lost, counted.
    pub(super) fn drain_logs(&mut self) {
        let held = self.logs.drain().expired;
        self.telemetry.log_records(LogOutcome::Shutdown, held);
    }

    /// The join state (for tests).
    pub fn log_join(&self) -> &LogJoin<SpanOrigin> {
        &self.logs
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

    use super::*;
    use crate::destination::opik::config::{LogJoinSettings, OpikTarget};
    use crate::destination::opik::encode::RowKind;
    use crate::export::ItemMapper;
    use crate::pdata::key_value;
    use crate::telemetry::{DestinationTelemetry, Metrics};
    use serde_json::Value as Json;

    fn assembler(max_records: usize) -> (TraceAssembler, Metrics) {
        let metrics = Metrics::new();
        let target = OpikTarget {
            logs: LogJoinSettings {
                window: Duration::from_secs(30),
                max_records,
                max_bytes: 1 << 20,
            },
            ..crate::destination::opik::config::test_target(100)
        };
        let telemetry = DestinationTelemetry::new(&metrics, "opik");
        (
            TraceAssembler::new(target, None, 1 << 20, telemetry),
            metrics,
        )
    }

    /// An LLM span of event mode: model and usage, no messages.
    fn chat_span(span: u8) -> ReceivedTraces {
        ReceivedTraces::from_spans(vec![Span {
            trace_id: vec![7; 16],
            span_id: vec![span; 8],
            name: "chat m".into(),
            start_time_unix_nano: 1_767_225_600_000_000_000,
            end_time_unix_nano: 1_767_225_601_000_000_000,
            attributes: vec![
                key_value("gen_ai.operation.name", Value::StringValue("chat".into())),
                key_value("gen_ai.request.model", Value::StringValue("m".into())),
                key_value("gen_ai.usage.input_tokens", Value::IntValue(3)),
            ],
            ..Default::default()
        }])
    }

    /// `n` inference-details records naming span `span` (from `first_span` on).
    fn details(span: u8, n: usize) -> ReceivedTraces {
        let records = (0..n)
            .map(|i| LogRecord {
                event_name: "gen_ai.client.inference.operation.details".into(),
                trace_id: vec![7; 16],
                span_id: vec![span.wrapping_add(i as u8); 8],
                attributes: vec![key_value(
                    "gen_ai.input.messages",
                    Value::StringValue(r#"[{"role":"user","content":"hello"}]"#.into()),
                )],
                ..Default::default()
            })
            .collect();
        ReceivedTraces::from_logs(vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }])
    }

    fn span_rows(items: &[OpikItem]) -> Vec<Json> {
        items
            .iter()
            .filter(|i| i.kind == RowKind::Span)
            .map(|i| serde_json::from_str(&i.json).unwrap())
            .collect()
    }

    fn count(metrics: &Metrics, outcome: &str) -> String {
        let text = metrics.encode();
        let series = format!(
            "tracebridge_exporter_log_records_total{{destination=\"opik\",outcome=\"{outcome}\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .unwrap_or("0")
            .to_string()
    }

    #[test]
    fn a_record_before_its_span_waits_and_joins_it() {
        let (mut a, metrics) = assembler(10);
        let mut out = Vec::new();
        a.map(&details(1, 1), &mut out);
        assert!(span_rows(&out).is_empty(), "nothing to write yet");
        a.map(&chat_span(1), &mut out);
        let rows = span_rows(&out);
        assert_eq!(rows.len(), 1);
        assert!(
            rows[0]["input"].to_string().contains("hello"),
            "{}",
            rows[0]
        );
        assert_eq!(count(&metrics, "joined"), "1");
        assert_eq!(a.log_join().sizes().0, 0);
    }

    #[test]
    fn a_late_record_rewrites_the_exported_row() {
        let (mut a, metrics) = assembler(10);
        let mut out = Vec::new();
        a.map(&chat_span(1), &mut out);
        a.map(&details(1, 1), &mut out);
        let rows = span_rows(&out);
        assert_eq!(rows.len(), 2, "written, then rewritten");
        assert_eq!(rows[0]["id"], rows[1]["id"]);
        assert!(rows[0]["input"].is_null());
        assert!(rows[1]["input"].to_string().contains("hello"));
        assert!(
            rows[1]["last_updated_at"].as_str() > rows[0]["last_updated_at"].as_str(),
            "the newer row wins the upsert"
        );
        assert_eq!(count(&metrics, "joined"), "1");
    }

    #[test]
    fn a_late_record_for_a_span_written_complete_is_not_held() {
        let (mut a, metrics) = assembler(10);
        let mut out = Vec::new();
        let mut span = chat_span(1);
        span.resource_spans[0].scope_spans[0].spans[0]
            .attributes
            .extend([
                key_value(
                    "gen_ai.input.messages",
                    Value::StringValue(r#"[{"role":"user","content":"q"}]"#.into()),
                ),
                key_value(
                    "gen_ai.output.messages",
                    Value::StringValue(r#"[{"role":"assistant","content":"a"}]"#.into()),
                ),
            ]);
        a.map(&span, &mut out);
        a.map(&details(1, 1), &mut out);
        assert_eq!(span_rows(&out).len(), 1, "not rewritten");
        assert_eq!(a.log_join().sizes().0, 0, "not held");
        assert_eq!(count(&metrics, "unused"), "1");
    }

    #[test]
    fn a_record_never_joined_expires_counted() {
        let (mut a, metrics) = assembler(10);
        let mut out = Vec::new();
        a.map(&details(9, 1), &mut out);
        a.on_tick(Instant::now() + Duration::from_secs(31), &mut out);
        assert_eq!(count(&metrics, "expired"), "1");
        assert_eq!(a.log_join().sizes(), (0, 0, 0));
    }

    #[test]
    fn a_flood_of_unjoinable_records_stays_within_the_bound() {
        let (mut a, metrics) = assembler(100);
        let mut out = Vec::new();
        for _ in 0..40 {
            a.map(&details(1, 250), &mut out);
        }
        assert_eq!(a.log_join().sizes().0, 100);
        assert_eq!(count(&metrics, "hold_full"), "9900");
        a.on_shutdown(&mut out);
        assert_eq!(count(&metrics, "shutdown"), "100");
    }
}

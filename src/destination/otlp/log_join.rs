//! The OTLP mapper's side of GenAI log records in `semconv =
//! "openinference"` mode: GenAI content that an instrumentation sends as log
//! records (OTel GenAI event mode, per-message events) joins its span, so
//! the span's OpenInference attributes carry the messages.
//!
//! - A record that comes **before** its span is held ([`LogJoin`], bounded by
//!   `log_join_window`, `log_max_held_records`, `log_max_held_bytes`) and
//!   joins the span when it comes; the span is not delayed.
//! - A span that comes **first** and awaits its content (an LLM span
//!   without messages) is held back for `log_join_span_wait` (zero by
//!   default: it is forwarded at once): a record that comes within the
//!   wait joins it and it is forwarded then; otherwise it goes when the wait
//!   ends, as it came. OTLP backends keep the first copy of a span, so a
//!   span cannot be rewritten after it left, as an Opik row can. While a
//!   span is held, the spool's cursor is held before its request
//!   ([`ItemMapper::replay_from`](crate::export::ItemMapper::replay_from)),
//!   and once it goes, its batch holds the cursor there until it is sent
//!   ([`ExportItem::origin`](crate::export::ExportItem::origin)), so a crash
//!   replays it.
//! - Claude Code's events without spans are not made into spans here (that
//!   is the Opik destination's): they are counted `unused`.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use tokio::time::Instant;

use super::config::LogJoin as JoinSettings;
use super::mapper::{OtlpItem, OtlpMapper, ResourceGroup, ScopeGroup};
use crate::route::ReceivedTraces;
use crate::semconv::logs::join::{Admitted, LogJoin, RecentSpan, Released};
use crate::semconv::logs::{
    GenAiRecord, Reading, awaits_records, key_of_span, read_record, span_keys,
};
use crate::semconv::{self, GenAiSpan, Kind, SpanContext};
use crate::telemetry::reason::LogOutcome;

/// How often held records and spans are checked for expiry.
pub const TICK: Duration = Duration::from_millis(250);

/// What a held span needs to be forwarded later.
pub struct HeldSpan {
    resource: Arc<ResourceGroup>,
    scope: Arc<ScopeGroup>,
    resource_attributes: Vec<KeyValue>,
    scope_name: String,
    estimated: Option<Vec<(String, Value)>>,
    /// The spool record it came from (its first log position).
    from: Option<u64>,
}

/// Records and spans waiting for each other.
pub struct Joiner {
    join: LogJoin<HeldSpan>,
    span_wait: Duration,
}

impl Joiner {
    pub fn new(settings: JoinSettings) -> Self {
        Self {
            join: LogJoin::new(settings.hold),
            span_wait: settings.span_wait,
        }
    }

    /// The first spool position a held span came from.
    pub fn replay_from(&self) -> Option<u64> {
        self.join.remembered().filter_map(|r| r.origin.from).min()
    }
}

/// A span met in a request, with what forwarding it later needs.
pub struct SpanAt<'a> {
    pub span: &'a Span,
    pub ctx: SpanContext<'a>,
    pub resource: &'a Arc<ResourceGroup>,
    pub scope: &'a Arc<ScopeGroup>,
    pub estimated: Option<Vec<(String, Value)>>,
    pub from: Option<u64>,
    /// The request's tenant: only its records join the span.
    pub tenant: Option<&'a Arc<str>>,
}

impl OtlpMapper {
    /// A span's view with the records held for it; `None` when the span is
    /// held back for records still to come (it is forwarded later).
    pub(super) fn join_span(
        &mut self,
        at: SpanAt<'_>,
        g: GenAiSpan,
        out: &mut Vec<OtlpItem>,
    ) -> Option<GenAiSpan> {
        let telemetry = self.telemetry.clone();
        let j = self.joiner.as_mut()?;
        let now = Instant::now();
        let awaits = awaits_records(&g, at.ctx);
        let tenant = at.tenant.map(|t| &**t);
        if !awaits && matches!(g.kind, Kind::Llm) {
            if let Some(key) = key_of_span(at.span) {
                j.join.saw_complete(key.scoped(tenant), now);
            }
        }
        if !awaits && j.join.holds_nothing() {
            return Some(g);
        }
        let (by_span, by_response) = span_keys(at.span, &g);
        let (by_span, by_response) = (
            by_span.map(|k| k.scoped(tenant)),
            by_response.map(|k| k.scoped(tenant)),
        );
        let taken = j.join.take_for([by_span.as_ref(), by_response.as_ref()]);
        telemetry.log_records(LogOutcome::Joined, taken.len());
        let g = if taken.is_empty() {
            g
        } else {
            semconv::normalise_joined(at.span, &taken, at.ctx)
        };
        if j.span_wait.is_zero() || !awaits_records(&g, at.ctx) {
            return Some(g);
        }
        let held = HeldSpan {
            resource: at.resource.clone(),
            scope: at.scope.clone(),
            resource_attributes: at.ctx.resource_attributes.to_vec(),
            scope_name: at.ctx.scope_name.to_string(),
            estimated: at.estimated,
            from: at.from,
        };
        let bytes = held
            .resource_attributes
            .iter()
            .map(|kv| kv.encoded_len())
            .sum();
        let mut recent = RecentSpan::new(at.span.clone(), taken, by_response, held, bytes);
        recent.tenant = at.tenant.cloned();
        let pushed_out = j.join.remember(recent, now);
        self.forward_all(pushed_out, out);
        None
    }

    /// The GenAI records of a request: each joins its held span (forwarded
    /// once it has its content) or is held for it.
    pub(super) fn join_logs(&mut self, traces: &ReceivedTraces, out: &mut Vec<OtlpItem>) {
        if self.joiner.is_none() {
            return;
        }
        let mut unused = 0;
        let tenant = traces.context.tenant.as_deref();
        for rl in &traces.resource_logs {
            for sl in &rl.scope_logs {
                let scope_name = sl.scope.as_ref().map_or("", |s| s.name.as_str());
                for record in &sl.log_records {
                    match read_record(record, scope_name) {
                        Reading::Join(r) => self.join_record(r, tenant, out),
                        Reading::JoinEach(rs) => {
                            for r in rs {
                                self.join_record(r, tenant, out);
                            }
                        }
                        Reading::Synthesise { .. } | Reading::Unused => unused += 1,
                    }
                }
            }
        }
        self.telemetry.log_records(LogOutcome::Unused, unused);
    }

    fn join_record(&mut self, r: GenAiRecord, tenant: Option<&str>, out: &mut Vec<OtlpItem>) {
        let Some(j) = self.joiner.as_mut() else {
            return;
        };
        let recent = match j.join.admit(r, tenant, Instant::now()) {
            Admitted::Unused => {
                self.telemetry.log_records(LogOutcome::Unused, 1);
                return;
            }
            Admitted::Held(released) => {
                self.telemetry
                    .log_records(LogOutcome::HoldFull, released.hold_full);
                self.forward_all(released.spans, out);
                return;
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
        if awaits_records(&g, ctx) {
            j.join.put_back(recent);
        } else {
            self.forward(recent, Some(g), out);
        }
    }

    /// Held records and spans past their time: records counted, spans
    /// forwarded as they are.
    pub(super) fn expire_joins(&mut self, now: Instant, out: &mut Vec<OtlpItem>) {
        let Some(j) = self.joiner.as_mut() else {
            return;
        };
        let released = j.join.expire(now, j.span_wait);
        self.telemetry
            .log_records(LogOutcome::Expired, released.expired);
        self.forward_all(released.spans, out);
    }

    /// The daemon stops: held records are lost (counted), held spans go.
    pub(super) fn drain_joins(&mut self, out: &mut Vec<OtlpItem>) {
        let Some(j) = self.joiner.as_mut() else {
            return;
        };
        let Released { expired, spans, .. } = j.join.drain();
        self.telemetry.log_records(LogOutcome::Shutdown, expired);
        self.forward_all(spans, out);
    }

    fn forward_all(&mut self, spans: Vec<RecentSpan<HeldSpan>>, out: &mut Vec<OtlpItem>) {
        for recent in spans {
            self.forward(recent, None, out);
        }
    }

    /// Encodes a held span (enriched with what joined it) into `out`.
    fn forward(
        &mut self,
        recent: RecentSpan<HeldSpan>,
        g: Option<GenAiSpan>,
        out: &mut Vec<OtlpItem>,
    ) {
        let RecentSpan {
            span,
            joined,
            origin,
            ..
        } = recent;
        let ctx = SpanContext {
            resource_attributes: &origin.resource_attributes,
            scope_name: &origin.scope_name,
        };
        let g = g.unwrap_or_else(|| semconv::normalise_joined(&span, &joined, ctx));
        let bytes = self.encode_span(&span, Some(&g), ctx, origin.estimated);
        let mut item = OtlpItem::encoded(origin.resource, origin.scope, bytes::Bytes::from(bytes));
        // Its batch holds the spool cursor before the request it came in.
        item.origin = origin.from;
        out.push(item);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

    use super::*;
    use crate::destination::otlp::config::{OtlpProtocol, OtlpTarget, SemconvMode};
    use crate::export::ItemMapper;
    use crate::pdata::key_value;
    use crate::semconv::logs::join::LogJoinSettings;
    use crate::semconv::privacy::Privacy;
    use crate::telemetry::{DestinationTelemetry, Metrics};

    fn mapper(span_wait: Duration, privacy: bool) -> (OtlpMapper, Metrics) {
        let metrics = Metrics::new();
        let target = OtlpTarget {
            url: "http://sink.invalid:4317".into(),
            signals: crate::route::Signals::TRACES,
            logs_url: None,
            metrics_url: None,
            protocol: OtlpProtocol::Grpc,
            headers: vec![],
            gzip: true,
            tls: Default::default(),
            semconv: SemconvMode::Openinference,
            resource_attributes: vec![],
            project_name: None,
            project_as_model_id: false,
            flavour: "otlp",
            log_join: JoinSettings {
                hold: LogJoinSettings {
                    window: Duration::from_secs(30),
                    ..Default::default()
                },
                span_wait,
            },
        };
        let telemetry = DestinationTelemetry::new(&metrics, "phoenix");
        let privacy = privacy.then(Privacy::default);
        (OtlpMapper::new(target, privacy, telemetry), metrics)
    }

    /// An LLM span of event mode: model and usage, no messages.
    fn chat_span() -> ReceivedTraces {
        ReceivedTraces::from_spans(vec![Span {
            trace_id: vec![7; 16],
            span_id: vec![1; 8],
            name: "chat m".into(),
            attributes: vec![
                key_value("gen_ai.operation.name", Value::StringValue("chat".into())),
                key_value("gen_ai.request.model", Value::StringValue("m".into())),
                key_value("gen_ai.usage.input_tokens", Value::IntValue(3)),
            ],
            ..Default::default()
        }])
    }

    /// The inference-details record of that span.
    fn details() -> ReceivedTraces {
        let messages = |key: &str, json: &str| key_value(key, Value::StringValue(json.into()));
        ReceivedTraces::from_logs(vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    event_name: "gen_ai.client.inference.operation.details".into(),
                    trace_id: vec![7; 16],
                    span_id: vec![1; 8],
                    attributes: vec![
                        messages(
                            "gen_ai.input.messages",
                            r#"[{"role":"user","parts":[{"type":"text","content":"hello"}]}]"#,
                        ),
                        messages(
                            "gen_ai.output.messages",
                            r#"[{"role":"assistant","parts":[{"type":"text","content":"hi there"}]}]"#,
                        ),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }])
    }

    fn attribute(item: &OtlpItem, key: &str) -> Option<String> {
        item.decoded_span()
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => Some(s.clone()),
                _ => None,
            })
    }

    fn count(metrics: &Metrics, outcome: &str) -> String {
        let series = format!(
            "tracebridge_exporter_log_records_total{{destination=\"phoenix\",outcome=\"{outcome}\"}} "
        );
        metrics
            .encode()
            .lines()
            .find_map(|l| l.strip_prefix(&series).map(str::to_string))
            .unwrap_or_else(|| "0".into())
    }

    const INPUT: &str = "llm.input_messages.0.message.content";
    const OUTPUT: &str = "llm.output_messages.0.message.content";

    #[test]
    fn a_record_before_its_span_enriches_it_without_delay() {
        let (mut m, metrics) = mapper(Duration::ZERO, false);
        let mut out = Vec::new();
        m.map(&details(), &mut out);
        assert!(out.is_empty());
        m.map(&chat_span(), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(attribute(&out[0], INPUT).as_deref(), Some("hello"));
        assert_eq!(attribute(&out[0], OUTPUT).as_deref(), Some("hi there"));
        assert!(attribute(&out[0], "output.value").is_some_and(|v| v.contains("hi there")));
        assert_eq!(count(&metrics, "joined"), "1");
    }

    #[test]
    fn a_span_before_its_record_waits_within_the_bound_and_is_enriched() {
        let (mut m, metrics) = mapper(Duration::from_secs(5), false);
        let mut out = Vec::new();
        m.map_record(&chat_span(), Some((100, 200)), &mut out);
        assert!(out.is_empty(), "held for its records");
        assert_eq!(m.replay_from(), Some(100), "the spool keeps its request");
        m.map_record(&details(), Some((200, 300)), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(attribute(&out[0], INPUT).as_deref(), Some("hello"));
        assert_eq!(m.replay_from(), None);
        assert_eq!(
            crate::export::ExportItem::origin(&out[0]),
            Some(100),
            "its batch keeps the cursor before its request until it is sent"
        );
        assert_eq!(count(&metrics, "joined"), "1");
    }

    #[test]
    fn a_span_whose_records_do_not_come_goes_when_its_wait_ends() {
        let (mut m, metrics) = mapper(Duration::from_secs(5), false);
        let mut out = Vec::new();
        m.map(&chat_span(), &mut out);
        m.on_tick(Instant::now() + Duration::from_secs(4), &mut out);
        assert!(out.is_empty());
        m.on_tick(Instant::now() + Duration::from_secs(6), &mut out);
        assert_eq!(out.len(), 1, "forwarded as it came");
        assert_eq!(attribute(&out[0], INPUT), None);
        // A record after that finds nothing; it expires, counted.
        m.map(&details(), &mut out);
        m.on_tick(Instant::now() + Duration::from_secs(31), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(count(&metrics, "expired"), "1");
    }

    #[test]
    fn without_a_span_wait_spans_are_never_delayed_and_held_spans_go_at_shutdown() {
        let (mut m, _) = mapper(Duration::ZERO, false);
        let mut out = Vec::new();
        m.map(&chat_span(), &mut out);
        assert_eq!(out.len(), 1);
        let (mut m, _) = mapper(Duration::from_secs(5), false);
        let mut out = Vec::new();
        m.map(&chat_span(), &mut out);
        m.on_shutdown(&mut out);
        assert_eq!(out.len(), 1, "not lost at shutdown");
    }

    #[test]
    fn privacy_mode_joins_no_content() {
        let (mut m, _) = mapper(Duration::ZERO, true);
        let mut out = Vec::new();
        m.map(&details(), &mut out);
        m.map(&chat_span(), &mut out);
        assert_eq!(out.len(), 1);
        let span = out[0].decoded_span();
        let text = format!("{span:?}");
        assert!(
            !text.contains("hello") && !text.contains("hi there"),
            "{text}"
        );
        assert_eq!(
            attribute(&out[0], "openinference.span.kind").as_deref(),
            Some("LLM")
        );
    }
}

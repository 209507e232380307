//! OTLP log records that carry GenAI content, read into what the
//! destinations join to their spans.
//!
//! A GenAI log record becomes the span event the readers already know
//! (same name, its attributes plus the fields of a map body), keyed by the
//! span it belongs to: [`JoinKey::Span`] (its trace and span ids) or, for
//! Claude Code's API events, [`JoinKey::Response`] (the `llm_request` span
//! whose `gen_ai.response.id` is the record's `request_id`). Folded into the
//! span's events (`normalise_joined`), it is read exactly as a span event
//! would be, content claims included, so privacy mode treats it the same.
//!
//! Claude Code without its span beta sends no spans at all: [`claude_code`]
//! makes the spans its beta would have sent from the events.

pub mod claude_code;
pub mod join;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use prost::Message as _;

use super::GenAiSpan;

/// Event names of the GenAI log records joined to their span (OTel GenAI
/// v1.37+ inference details; the per-message events of v1.28–v1.36).
const GENAI_EVENTS: &[&str] = &[
    "gen_ai.client.inference.operation.details",
    "gen_ai.system.message",
    "gen_ai.user.message",
    "gen_ai.assistant.message",
    "gen_ai.tool.message",
    "gen_ai.choice",
    "gen_ai.content.prompt",
    "gen_ai.content.completion",
];

/// Which span a record belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JoinKey {
    /// The span with these ids.
    Span { trace: [u8; 16], span: [u8; 8] },
    /// The span of this trace whose response id is `id`.
    Response { trace: [u8; 16], id: String },
    /// Claude Code's request body `request_body_id` = `id`: it joins the
    /// span its response body joins (the response body links to it).
    RequestBody { trace: [u8; 16], id: String },
}

impl JoinKey {
    /// This key within `tenant`'s traces: a record of one tenant never
    /// joins another's span, even when it names the other's ids (see
    /// `control::tenants::scoped_trace`).
    pub fn scoped(self, tenant: Option<&str>) -> Self {
        let Some(tenant) = tenant else {
            return self;
        };
        let scope = |trace: [u8; 16]| crate::control::tenants::scoped_trace(&trace, Some(tenant));
        match self {
            Self::Span { trace, span } => Self::Span {
                trace: scope(trace),
                span,
            },
            Self::Response { trace, id } => Self::Response {
                trace: scope(trace),
                id,
            },
            Self::RequestBody { trace, id } => Self::RequestBody {
                trace: scope(trace),
                id,
            },
        }
    }
}

/// A GenAI record, ready to join its span.
#[derive(Debug, Clone, PartialEq)]
pub struct GenAiRecord {
    pub key: JoinKey,
    /// The record as the span event the readers know.
    pub event: Event,
    /// Records held under this key join the span this record joins
    /// (Claude Code's response body names its request body).
    pub link: Option<JoinKey>,
}

impl GenAiRecord {
    /// Its keys within `tenant`'s traces (see [`JoinKey::scoped`]).
    pub fn scope_to(&mut self, tenant: Option<&str>) {
        if tenant.is_some() {
            self.key = self.key.clone().scoped(tenant);
            self.link = self.link.take().map(|k| k.scoped(tenant));
        }
    }
}

impl GenAiRecord {
    /// Bytes this record holds (its encoded size).
    pub fn size(&self) -> usize {
        self.event.encoded_len()
    }
}

/// What a log record is to the normaliser.
#[derive(Debug)]
pub enum Reading {
    /// Content for a span: hold it until the span is seen.
    Join(GenAiRecord),
    /// Content for several spans (Claude Code's tool results in a request body).
    JoinEach(Vec<GenAiRecord>),
    /// A span made from the record (Claude Code without spans), and the
    /// record itself, which joins it.
    Synthesise {
        span: Box<Span>,
        record: GenAiRecord,
    },
    /// Nothing a destination reads (not a GenAI event, or one that names
    /// no span).
    Unused,
}

/// Reads one record of scope `scope_name`.
pub fn read_record(record: &LogRecord, scope_name: &str) -> Reading {
    if scope_name == claude_code::EVENTS_SCOPE {
        return claude_code::read(record);
    }
    let name = event_name(record);
    if !GENAI_EVENTS.contains(&name) {
        return Reading::Unused;
    }
    match span_key(record) {
        Some(key) => Reading::Join(GenAiRecord {
            key,
            event: as_event(record, name.to_string()),
            link: None,
        }),
        None => Reading::Unused,
    }
}

/// The context a span made from log records is read in (its records'
/// resource, the scope such spans have when the producer sends them).
pub fn synthesised_context(resource_attributes: &[KeyValue]) -> super::SpanContext<'_> {
    super::SpanContext {
        resource_attributes,
        scope_name: claude_code::TRACING_SCOPE,
    }
}

/// The key of a span by its ids.
pub fn key_of_span(span: &Span) -> Option<JoinKey> {
    Some(JoinKey::Span {
        trace: <[u8; 16]>::try_from(span.trace_id.as_slice()).ok()?,
        span: <[u8; 8]>::try_from(span.span_id.as_slice()).ok()?,
    })
}

/// The keys a normalised span is found under: its ids, and its response id.
pub fn span_keys(span: &Span, g: &GenAiSpan) -> (Option<JoinKey>, Option<JoinKey>) {
    let trace = <[u8; 16]>::try_from(span.trace_id.as_slice()).ok();
    let by_response = trace
        .zip(g.response_id.clone())
        .map(|(trace, id)| JoinKey::Response { trace, id });
    (key_of_span(span), by_response)
}

/// Whether a span's content may still come in log records, so it is worth
/// remembering for late ones: an LLM span without its messages, or a
/// Claude Code tool span without its result.
pub fn awaits_records(g: &GenAiSpan, ctx: super::SpanContext<'_>) -> bool {
    match g.kind {
        super::Kind::Llm => g.input_messages.is_empty() || g.output_messages.is_empty(),
        super::Kind::Tool => {
            ctx.scope_name == claude_code::TRACING_SCOPE && g.tool.result.is_none()
        }
        _ => false,
    }
}

/// The record's event name: `event_name` (OTLP 1.5+), else the
/// `event.name` attribute (older SDKs).
pub fn event_name(record: &LogRecord) -> &str {
    if !record.event_name.is_empty() {
        return &record.event_name;
    }
    crate::pdata::string_attribute(&record.attributes, "event.name").unwrap_or("")
}

fn span_key(record: &LogRecord) -> Option<JoinKey> {
    let trace = <[u8; 16]>::try_from(record.trace_id.as_slice()).ok()?;
    let span = <[u8; 8]>::try_from(record.span_id.as_slice()).ok()?;
    (trace != [0; 16] && span != [0; 8]).then_some(JoinKey::Span { trace, span })
}

/// The record as a span event: its attributes, then the fields of a map
/// body (per-message events carry `content`, `role`, `tool_calls` there).
fn as_event(record: &LogRecord, name: String) -> Event {
    let body = match &record.body {
        Some(AnyValue {
            value: Some(Value::KvlistValue(kv)),
        }) => kv.values.as_slice(),
        _ => &[],
    };
    let mut attributes: Vec<KeyValue> = Vec::with_capacity(record.attributes.len() + body.len());
    attributes.extend(record.attributes.iter().cloned());
    attributes.extend(body.iter().cloned());
    Event {
        time_unix_nano: timestamp(record),
        name,
        attributes,
        dropped_attributes_count: 0,
    }
}

/// When the record happened (its time, else when it was observed).
fn timestamp(record: &LogRecord) -> u64 {
    if record.time_unix_nano > 0 {
        record.time_unix_nano
    } else {
        record.observed_time_unix_nano
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::key_value;

    fn record(name: &str, span: u8) -> LogRecord {
        LogRecord {
            event_name: name.into(),
            trace_id: vec![1; 16],
            span_id: vec![span; 8],
            body: Some(AnyValue {
                value: Some(Value::KvlistValue(
                    opentelemetry_proto::tonic::common::v1::KeyValueList {
                        values: vec![key_value("content", Value::StringValue("hi".into()))],
                    },
                )),
            }),
            attributes: vec![key_value("gen_ai.system", Value::StringValue("x".into()))],
            time_unix_nano: 5,
            ..Default::default()
        }
    }

    #[test]
    fn a_genai_record_with_ids_joins_its_span_with_its_body_fields() {
        let Reading::Join(r) = read_record(&record("gen_ai.user.message", 2), "any") else {
            panic!("not joined")
        };
        assert_eq!(
            r.key,
            JoinKey::Span {
                trace: [1; 16],
                span: [2; 8]
            }
        );
        assert_eq!(r.event.name, "gen_ai.user.message");
        assert_eq!(r.event.time_unix_nano, 5);
        let keys: Vec<&str> = r.event.attributes.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(keys, ["gen_ai.system", "content"]);
    }

    #[test]
    fn other_records_and_records_without_a_span_are_unused() {
        assert!(matches!(
            read_record(&record("app.started", 2), "any"),
            Reading::Unused
        ));
        assert!(matches!(
            read_record(&record("gen_ai.choice", 0), "any"),
            Reading::Unused
        ));
    }
}

//! Privacy mode: one redaction step, derived from what the readers claimed,
//! applied the same way by every destination.
//!
//! The normaliser marks every attribute and span event of a span ([`Claims`]):
//! read as content (prompts, completions, messages, tool arguments and
//! results), read as a fact (ids, model, provider, usage, cost, parameters,
//! finish reasons, custom metadata a dialect defines as metadata…), read as
//! an error, or not read at all. Privacy mode keeps only facts, errors
//! without their stack trace, and what the operator's allow-list names: it
//! *fails closed*, so an attribute of a dialect nobody reads yet never leaves.
//!
//! - [`Privacy::redact_span`] strips an OTel span in place (otlp, arize, file);
//! - [`Privacy::redact_view`] strips the normalised view (Opik);
//! - [`Privacy::redact_record`] strips a log record forwarded as is (otlp).

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::{GenAiSpan, SpanContext};
use crate::telemetry::reason::Redaction;

/// How the readers used one attribute or event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Claim {
    /// No reader knows it.
    #[default]
    Unclaimed,
    /// Read as a fact that privacy mode keeps.
    Fact,
    /// Read as content (or a malformed value of a content key).
    Content,
    /// An event of which only some attributes are facts: an exception
    /// (type and message stay, the stack trace goes), an evaluation result
    /// (name, score and label stay, the explanation goes).
    Error,
}

impl Claim {
    /// The stronger of two claims: content beats error beats fact.
    pub fn join(self, other: Claim) -> Claim {
        use Claim::*;
        match (self, other) {
            (Content, _) | (_, Content) => Content,
            (Error, _) | (_, Error) => Error,
            (Fact, _) | (_, Fact) => Fact,
            _ => Unclaimed,
        }
    }
}

/// The claim on each attribute and event of a span, by index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Claims {
    pub attributes: Vec<Claim>,
    pub events: Vec<Claim>,
}

impl Claims {
    /// The claim on attribute `key` of `span` (the last one on duplicates).
    pub fn of_attribute(&self, span: &Span, key: &str) -> Claim {
        span.attributes
            .iter()
            .rposition(|kv| kv.key == key)
            .and_then(|i| self.attributes.get(i).copied())
            .unwrap_or_default()
    }
}

/// Attributes of partly-factual events kept under privacy mode: an
/// exception's type and message (the stack trace can quote the prompt), an
/// evaluation's name, score and label (the explanation can quote it too).
const KEPT_EVENT_KEYS: &[&str] = &[
    "exception.type",
    "exception.message",
    "exception.escaped",
    "gen_ai.evaluation.name",
    "gen_ai.evaluation.score.value",
    "gen_ai.evaluation.score.label",
];

/// An operator's allow-list: attribute keys and event names that privacy
/// mode keeps although no reader claims them. An entry ending in `*` is a
/// prefix. Content a reader claimed is never kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    pub attributes: Vec<String>,
    pub events: Vec<String>,
}

fn matches(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

/// What a redaction removed, per reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Removed {
    pub content: usize,
    pub unclaimed_attributes: usize,
    pub unclaimed_events: usize,
    pub stacktraces: usize,
}

impl Removed {
    /// Each non-zero count with its metric reason.
    pub fn by_reason(&self) -> [(Redaction, usize); 4] {
        [
            (Redaction::Content, self.content),
            (Redaction::UnclaimedAttribute, self.unclaimed_attributes),
            (Redaction::UnclaimedEvent, self.unclaimed_events),
            (Redaction::Stacktrace, self.stacktraces),
        ]
    }
}

/// Privacy mode as configured for one destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Privacy {
    pub allow: AllowList,
}

impl Privacy {
    fn keeps_attribute(&self, claim: Claim, key: &str) -> bool {
        match claim {
            Claim::Fact | Claim::Error => true,
            Claim::Content => false,
            Claim::Unclaimed => matches(&self.allow.attributes, key),
        }
    }

    /// Strips `span` in place from what the readers said of it (`claims`
    /// must come from normalising this very span, before any change).
    pub fn redact_span(&self, span: &mut Span, claims: &Claims) -> Removed {
        let mut removed = Removed::default();
        self.retain_attributes(&mut span.attributes, &claims.attributes, &mut removed);
        let mut i = 0;
        span.events.retain_mut(|e| {
            let claim = claims.events.get(i).copied().unwrap_or_default();
            i += 1;
            match claim {
                Claim::Fact => true,
                Claim::Error => {
                    let before = e.attributes.len();
                    e.attributes
                        .retain(|kv| KEPT_EVENT_KEYS.contains(&kv.key.as_str()));
                    removed.stacktraces += before - e.attributes.len();
                    true
                }
                Claim::Unclaimed if matches(&self.allow.events, &e.name) => true,
                other => {
                    count(&mut removed, other, true);
                    false
                }
            }
        });
        // Links carry attributes nobody reads.
        for link in &mut span.links {
            removed.unclaimed_attributes += link.attributes.len();
            link.attributes.clear();
        }
        removed
    }

    /// Strips a log record forwarded as is (an OTLP destination's `logs`):
    /// its body goes (free text, or a GenAI event's messages) unless
    /// `privacy_allow_events` names its event; of its attributes, those the
    /// readers claim as facts when read as span attributes stay, and those
    /// `privacy_allow_attributes` names. Content and anything unknown go.
    pub fn redact_record(&self, record: &mut LogRecord) -> Removed {
        let mut removed = Removed::default();
        let event = super::logs::event_name(record);
        if record.body.is_some() && !matches(&self.allow.events, event) {
            record.body = None;
            removed.content += 1;
        }
        let probe = Span {
            attributes: std::mem::take(&mut record.attributes),
            ..Default::default()
        };
        let claims = super::normalise(&probe, SpanContext::default()).claims;
        record.attributes = probe.attributes;
        self.retain_attributes(&mut record.attributes, &claims.attributes, &mut removed);
        removed
    }

    /// Keeps the attributes privacy mode keeps, by their claims (by index).
    fn retain_attributes(
        &self,
        attributes: &mut Vec<KeyValue>,
        claims: &[Claim],
        removed: &mut Removed,
    ) {
        let mut i = 0;
        attributes.retain(|kv| {
            let claim = claims.get(i).copied().unwrap_or_default();
            i += 1;
            let keep = self.keeps_attribute(claim, &kv.key);
            if !keep {
                count(removed, claim, false);
            }
            keep
        });
    }

    /// A redacted copy of `span` (normalised here to learn the claims).
    pub fn redacted_copy(&self, span: &Span, ctx: SpanContext<'_>) -> (Span, Removed) {
        let claims = super::normalise(span, ctx).claims;
        let mut copy = span.clone();
        let removed = self.redact_span(&mut copy, &claims);
        (copy, removed)
    }

    /// Strips the normalised view of `span`: every content field, the
    /// attributes and events no reader claimed (unless allowed), malformed
    /// values of content keys, and the error's stack trace.
    pub fn redact_view(&self, g: &mut GenAiSpan, span: &Span) -> Removed {
        let mut removed = Removed::default();
        g.system_instructions.clear();
        g.input_messages.clear();
        g.output_messages.clear();
        g.tool_definitions.clear();
        g.prompts.clear();
        g.completions.clear();
        g.tool.arguments = None;
        g.tool.result = None;
        g.input = None;
        g.output = None;
        g.trace_input = None;
        g.trace_output = None;
        let claims = &g.claims;
        // Every content attribute and event is left out of the view.
        removed.content = claims
            .attributes
            .iter()
            .chain(&claims.events)
            .filter(|c| **c == Claim::Content)
            .count();
        g.other_attributes.retain(|key, _| {
            let claim = claims.of_attribute(span, key);
            let keep = self.keeps_attribute(claim, key);
            if !keep && claim == Claim::Unclaimed {
                removed.unclaimed_attributes += 1;
            }
            keep
        });
        g.other_events.retain(|e| {
            let name = e.get("name").and_then(|n| n.as_str()).unwrap_or("");
            let keep = matches(&self.allow.events, name);
            if !keep {
                removed.unclaimed_events += 1;
            }
            keep
        });
        for e in &mut g.evaluations {
            if e.explanation.take().is_some() {
                removed.stacktraces += 1;
            }
        }
        if let Some(e) = &mut g.error {
            let fallback = e.message.as_deref().unwrap_or(&e.exception_type);
            if e.traceback != fallback {
                removed.stacktraces += 1;
            }
            e.traceback = fallback.to_string();
        }
        removed
    }
}

fn count(removed: &mut Removed, claim: Claim, event: bool) {
    match (claim, event) {
        (Claim::Content, _) => removed.content += 1,
        (_, false) => removed.unclaimed_attributes += 1,
        (_, true) => removed.unclaimed_events += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::key_value;
    use crate::semconv::{SpanContext, normalise};
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::trace::v1::span::Event;

    fn s(v: &str) -> Value {
        Value::StringValue(v.into())
    }

    fn span() -> Span {
        Span {
            name: "chat".into(),
            attributes: vec![
                key_value("gen_ai.operation.name", s("chat")),
                key_value("gen_ai.request.model", s("gpt-4o")),
                key_value(
                    "gen_ai.input.messages",
                    s(r#"[{"role":"user","content":"secret prompt"}]"#),
                ),
                key_value("gen_ai.output.messages", s("not json: secret answer")),
                key_value("gen_ai.usage.input_tokens", Value::IntValue(3)),
                key_value("someone.new.dialect.prompt", s("secret new")),
                key_value("deployment.region", s("eu")),
            ],
            events: vec![
                Event {
                    name: "gen_ai.user.message".into(),
                    attributes: vec![key_value("content", s("secret event"))],
                    ..Default::default()
                },
                Event {
                    name: "exception".into(),
                    attributes: vec![
                        key_value("exception.type", s("ValueError")),
                        key_value("exception.message", s("bad")),
                        key_value("exception.stacktrace", s("File x: prompt='secret trace'")),
                    ],
                    ..Default::default()
                },
                Event {
                    name: "custom.checkpoint".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn privacy() -> Privacy {
        Privacy {
            allow: AllowList {
                attributes: vec!["deployment.*".into()],
                events: vec![],
            },
        }
    }

    #[test]
    fn a_span_keeps_facts_errors_and_the_allowed_only() {
        let original = span();
        let g = normalise(&original, SpanContext::default());
        let mut redacted = original.clone();
        let removed = privacy().redact_span(&mut redacted, &g.claims);
        let keys: Vec<&str> = redacted
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "gen_ai.operation.name",
                "gen_ai.request.model",
                "gen_ai.usage.input_tokens",
                "deployment.region"
            ]
        );
        let events: Vec<&str> = redacted.events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(events, ["exception"]);
        assert_eq!(redacted.events[0].attributes.len(), 2);
        assert!(!format!("{redacted:?}").contains("secret"));
        assert_eq!(
            removed,
            Removed {
                content: 3,
                unclaimed_attributes: 1,
                unclaimed_events: 1,
                stacktraces: 1
            }
        );
    }

    #[test]
    fn the_view_loses_content_unclaimed_keys_malformed_content_and_the_traceback() {
        let original = span();
        let mut g = normalise(&original, SpanContext::default());
        assert!(
            g.other_attributes.contains_key("gen_ai.output.messages"),
            "malformed kept raw"
        );
        let removed = privacy().redact_view(&mut g, &original);
        assert!(!format!("{g:?}").contains("secret"), "{g:?}");
        assert_eq!(g.other_attributes.len(), 1);
        assert!(g.other_attributes.contains_key("deployment.region"));
        assert_eq!(
            g.error.as_ref().map(|e| e.exception_type.as_str()),
            Some("ValueError")
        );
        assert_eq!(removed.unclaimed_events, 1);
        assert_eq!(removed.stacktraces, 1);
    }

    #[test]
    fn a_log_record_keeps_its_ids_and_facts_and_loses_body_and_content() {
        use opentelemetry_proto::tonic::common::v1::AnyValue;
        let mut record = LogRecord {
            event_name: "gen_ai.client.inference.operation.details".into(),
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            body: Some(AnyValue {
                value: Some(s("the secret prompt")),
            }),
            attributes: vec![
                key_value("gen_ai.request.model", s("gpt-4o")),
                key_value("gen_ai.input.messages", s("[{\"role\":\"user\"}]")),
                key_value("mystery.key", s("?")),
                key_value("deployment.zone", s("kept")),
            ],
            ..Default::default()
        };
        let removed = privacy().redact_record(&mut record);
        assert!(record.body.is_none());
        let keys: Vec<&str> = record.attributes.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(keys, ["gen_ai.request.model", "deployment.zone"]);
        assert_eq!((removed.content, removed.unclaimed_attributes), (2, 1));
        assert_eq!(record.trace_id, vec![1; 16]);
    }

    #[test]
    fn an_evaluation_keeps_its_score_and_loses_its_explanation() {
        let original = Span {
            events: vec![Event {
                name: "gen_ai.evaluation.result".into(),
                attributes: vec![
                    key_value("gen_ai.evaluation.name", s("relevance")),
                    key_value("gen_ai.evaluation.score.value", Value::DoubleValue(0.5)),
                    key_value("gen_ai.evaluation.explanation", s("it said secret")),
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut g = normalise(&original, SpanContext::default());
        let mut redacted = original.clone();
        Privacy::default().redact_span(&mut redacted, &g.claims);
        assert_eq!(redacted.events[0].attributes.len(), 2);
        Privacy::default().redact_view(&mut g, &original);
        assert_eq!(g.evaluations[0].value, 0.5);
        assert!(!format!("{redacted:?}{g:?}").contains("secret"));
    }
}

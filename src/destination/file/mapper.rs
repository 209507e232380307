//! The file mapper: one JSON object per span, one per line.
//!
//! Record shape (stable; keys only added, never renamed):
//! ```json
//! {"trace_id":"…32 hex…","span_id":"…16 hex…","parent_span_id":"…or null…",
//!  "name":"chat gpt-4o","kind":"client","start_time":"2025-01-02T03:04:05.678901234Z",
//!  "end_time":"…","duration_ms":412.5,"status":{"code":"ok","message":""},
//!  "attributes":{…},"events":[{"name":"…","time":"…","attributes":{…}}],
//!  "links":[{"trace_id":"…","span_id":"…","attributes":{…}}],
//!  "resource":{"service.name":"…"},"scope":{"name":"…","version":"…"},
//!  "transport":"grpc","project_name":null}
//! ```
//! `project_name` is the request's `projectName` header or gRPC metadata, if any.

use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Map, Value, json};

use crate::control::{self, ControlStage, Step};
use crate::destination::line_sink::Line;
use crate::export::{ExportItem, ItemMapper};
use crate::pdata::{attributes_to_json, hex_id, span_kind_name, status_name};
use crate::route::{ReceivedTraces, RequestContext};
use crate::semconv::SpanContext;
use crate::semconv::privacy::Privacy;
use crate::telemetry::DestinationTelemetry;

/// One encoded line (with its trailing newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanLine {
    line: String,
    span_id: String,
}

impl SpanLine {
    /// The encoded line, newline included.
    pub fn as_str(&self) -> &str {
        &self.line
    }
}

impl ExportItem for SpanLine {
    fn encoded_size(&self) -> usize {
        self.line.len()
    }
    fn describe(&self) -> String {
        format!("span {}", self.span_id)
    }
}

/// Encodes every span as a JSON line. With `privacy`, the span is
/// redacted first (see [`crate::semconv::privacy`]).
#[derive(Default)]
pub struct SpanRecords {
    privacy: Option<Privacy>,
    telemetry: Option<DestinationTelemetry>,
    controls: Option<ControlStage>,
}

impl SpanRecords {
    pub fn new(privacy: Option<Privacy>, telemetry: DestinationTelemetry) -> Self {
        Self {
            privacy,
            telemetry: Some(telemetry),
            controls: None,
        }
    }

    /// Applies the destination's controls (sampling, filters) first.
    pub fn with_controls(mut self, controls: Option<ControlStage>) -> Self {
        self.controls = controls;
        self
    }
}

impl ItemMapper for SpanRecords {
    type Item = SpanLine;

    fn map(&mut self, traces: &ReceivedTraces, out: &mut Vec<SpanLine>) {
        out.reserve(traces.span_count);
        let mut plan = self.controls.as_mut().map(|c| c.plan(traces));
        let mut index = 0;
        for rs in &traces.resource_spans {
            let resource = rs
                .resource
                .as_ref()
                .map(|r| Value::Object(attributes_to_json(&r.attributes)))
                .unwrap_or_else(|| Value::Object(Map::new()));
            for ss in &rs.scope_spans {
                let scope = scope_json(ss.scope.as_ref());
                let ctx = SpanContext::of(rs, ss);
                for span in &ss.spans {
                    index += 1;
                    let span = match control::step(plan.as_mut(), index - 1, span) {
                        Step::Skip => continue,
                        Step::Map { span, .. } => span,
                    };
                    let span = span.as_ref();
                    let record = if let Some(privacy) = &self.privacy {
                        let (stripped, removed) = privacy.redacted_copy(span, ctx);
                        if let Some(t) = &self.telemetry {
                            t.privacy_removed(removed.by_reason());
                        }
                        record(&stripped, &resource, &scope, &traces.context)
                    } else {
                        record(span, &resource, &scope, &traces.context)
                    };
                    let mut line = record.to_string();
                    line.push('\n');
                    out.push(SpanLine {
                        line,
                        span_id: hex_id(&span.span_id),
                    });
                }
            }
        }
        // Spans `sampling.always_keep` held until now, their trace kept.
        if let Some(released) = plan.as_mut().and_then(control::Plan::take_released) {
            self.map(&released, out);
        }
    }
}

fn scope_json(scope: Option<&InstrumentationScope>) -> Value {
    match scope {
        Some(s) => json!({"name": s.name, "version": s.version}),
        None => json!({"name": "", "version": ""}),
    }
}

fn record(span: &Span, resource: &Value, scope: &Value, context: &RequestContext) -> Value {
    let parent = (!span.parent_span_id.is_empty()).then(|| hex_id(&span.parent_span_id));
    let duration_ms = span
        .end_time_unix_nano
        .saturating_sub(span.start_time_unix_nano) as f64
        / 1e6;
    let status = span.status.as_ref();
    let events: Vec<Value> = span
        .events
        .iter()
        .map(|e| {
            json!({"name": e.name, "time": timestamp(e.time_unix_nano),
                   "attributes": attributes_to_json(&e.attributes)})
        })
        .collect();
    let links: Vec<Value> = span
        .links
        .iter()
        .map(|l| {
            json!({"trace_id": hex_id(&l.trace_id), "span_id": hex_id(&l.span_id),
                   "attributes": attributes_to_json(&l.attributes)})
        })
        .collect();
    json!({
        "trace_id": hex_id(&span.trace_id),
        "span_id": hex_id(&span.span_id),
        "parent_span_id": parent,
        "name": span.name,
        "kind": span_kind_name(span.kind),
        "start_time": timestamp(span.start_time_unix_nano),
        "end_time": timestamp(span.end_time_unix_nano),
        "duration_ms": duration_ms,
        "status": {
            "code": status_name(status.map_or(0, |s| s.code)),
            "message": status.map_or("", |s| s.message.as_str()),
        },
        "attributes": attributes_to_json(&span.attributes),
        "events": events,
        "links": links,
        "resource": resource,
        "scope": scope,
        "transport": context.transport,
        "project_name": context.project_name,
    })
}

fn timestamp(unix_nanos: u64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_nanos(unix_nanos);
    humantime::format_rfc3339_nanos(t).to_string()
}

impl Line for SpanLine {
    fn line(&self) -> &str {
        &self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::key_value;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_proto::tonic::trace::v1::span::Event;

    #[test]
    fn a_span_becomes_one_self_describing_json_line() {
        let span = Span {
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            name: "chat".into(),
            kind: opentelemetry_proto::tonic::trace::v1::span::SpanKind::Client as i32,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_500_000_000,
            attributes: vec![key_value("gen_ai.usage.input_tokens", Any::IntValue(12))],
            events: vec![Event {
                name: "exception".into(),
                time_unix_nano: 1_700_000_000_100_000_000,
                ..Default::default()
            }],
            ..Default::default()
        };
        let traces = ReceivedTraces::from_spans(vec![span]);
        let mut out = Vec::new();
        SpanRecords::default().map(&traces, &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].line.ends_with('\n'));
        let v: Value = serde_json::from_str(&out[0].line).unwrap();
        assert_eq!(v["trace_id"], "abababababababababababababababab");
        assert_eq!(v["span_id"], "cdcdcdcdcdcdcdcd");
        assert_eq!(v["parent_span_id"], Value::Null);
        assert_eq!(v["kind"], "client");
        assert_eq!(v["start_time"], "2023-11-14T22:13:20.000000000Z");
        assert_eq!(v["duration_ms"], 500.0);
        assert_eq!(v["status"]["code"], "unset");
        assert_eq!(v["attributes"]["gen_ai.usage.input_tokens"], 12);
        assert_eq!(v["events"][0]["name"], "exception");
        assert_eq!(out[0].describe(), "span cdcdcdcdcdcdcdcd");
    }

    #[test]
    fn privacy_mode_leaves_content_out_of_the_file() {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            attributes: vec![
                key_value(
                    "gen_ai.input.messages",
                    Any::StringValue("[{\"role\":\"user\",\"content\":\"my secret\"}]".into()),
                ),
                key_value("gen_ai.usage.input_tokens", Any::IntValue(7)),
            ],
            events: vec![Event {
                name: "gen_ai.user.message".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let traces = ReceivedTraces::from_spans(vec![span]);
        let mut out = Vec::new();
        SpanRecords {
            privacy: Some(Privacy::default()),
            telemetry: None,
            controls: None,
        }
        .map(&traces, &mut out);
        assert!(!out[0].line.contains("my secret"));
        assert!(!out[0].line.contains("gen_ai.user.message"));
        assert!(out[0].line.contains("gen_ai.usage.input_tokens"));
        out.clear();
        SpanRecords::default().map(&traces, &mut out);
        assert!(out[0].line.contains("my secret"));
    }
}

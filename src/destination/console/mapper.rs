//! The console mapper: one human line per trace in each request.

use std::collections::BTreeMap;

use crate::control::{self, ControlStage, Step};
use crate::destination::line_sink::Line;
use crate::destination::opik;
use crate::export::{ExportItem, ItemMapper};
use crate::pdata::{hex_id, resource_attributes, string_attribute};
use crate::route::ReceivedTraces;
use crate::semconv::{self, Kind, SpanContext};

/// One printed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceLine {
    pub text: String,
    pub spans: usize,
}

impl ExportItem for TraceLine {
    fn encoded_size(&self) -> usize {
        self.text.len()
    }
    fn span_count(&self) -> usize {
        self.spans
    }
    fn describe(&self) -> String {
        self.text.clone()
    }
}

/// Summarises each trace of a request into one line, as Opik would show it:
/// `trace <opik uuid> "<name>" N spans, <tokens> tokens, $<cost>`.
///
/// The uuid is the one the Opik destination gives the trace when this
/// request is the first to show it (Opik's algorithm over the earliest
/// start in the request). Tokens and cost add up the LLM spans.
#[derive(Default)]
pub struct TraceLines {
    controls: Option<ControlStage>,
}

impl TraceLines {
    /// Applies the destination's controls (sampling, filters) first.
    pub fn with_controls(controls: Option<ControlStage>) -> Self {
        Self { controls }
    }
}

struct Summary<'a> {
    root: Option<String>,
    first: Option<String>,
    trace_name: Option<String>,
    service: Option<&'a str>,
    spans: usize,
    errors: usize,
    start: u64,
    end: u64,
    tokens: i64,
    cost: Option<f64>,
}

impl Default for Summary<'_> {
    fn default() -> Self {
        Self {
            root: None,
            first: None,
            trace_name: None,
            service: None,
            spans: 0,
            errors: 0,
            start: u64::MAX,
            end: 0,
            tokens: 0,
            cost: None,
        }
    }
}

impl ItemMapper for TraceLines {
    type Item = TraceLine;

    fn map(&mut self, traces: &ReceivedTraces, out: &mut Vec<TraceLine>) {
        let mut by_trace: BTreeMap<&[u8], Summary<'_>> = BTreeMap::new();
        let mut plan = self.controls.as_mut().map(|c| c.plan(traces));
        let mut index = 0;
        for rs in &traces.resource_spans {
            let service = string_attribute(resource_attributes(rs), "service.name");
            for ss in &rs.scope_spans {
                let ctx = SpanContext::of(rs, ss);
                for span in &ss.spans {
                    index += 1;
                    let (root, view) = match control::step(plan.as_mut(), index - 1, span) {
                        Step::Skip => continue,
                        Step::Map { span, view, .. } => (span.parent_span_id.is_empty(), view),
                    };
                    let g = view.map_or_else(|| semconv::normalise(span, ctx), |v| *v);
                    let s = by_trace.entry(span.trace_id.as_slice()).or_default();
                    s.spans += 1;
                    let name = g.span_name.clone().unwrap_or_else(|| span.name.clone());
                    if s.first.is_none() {
                        s.first = Some(name.clone());
                    }
                    if root {
                        s.root = Some(name);
                    }
                    if s.trace_name.is_none() {
                        s.trace_name = g.trace_name.clone();
                    }
                    s.service = s.service.or(service);
                    if g.error.is_some() {
                        s.errors += 1;
                    }
                    if span.start_time_unix_nano > 0 {
                        s.start = s.start.min(span.start_time_unix_nano);
                    }
                    s.end = s.end.max(span.end_time_unix_nano);
                    if matches!(g.kind, Kind::Llm | Kind::Embedding) {
                        s.tokens += g.usage.total_tokens().unwrap_or(0);
                        if let Some(c) = g.cost.total_usd() {
                            s.cost = Some(s.cost.unwrap_or(0.0) + c);
                        }
                    }
                }
            }
        }
        out.extend(by_trace.into_iter().map(|(id, s)| line(id, &s)));
        // Spans `sampling.always_keep` held until now, their trace kept.
        if let Some(released) = plan.as_mut().and_then(control::Plan::take_released) {
            self.map(&released, out);
        }
    }
}

fn line(trace_id: &[u8], s: &Summary<'_>) -> TraceLine {
    let start_ms = if s.start == u64::MAX {
        0
    } else {
        s.start / 1_000_000
    };
    let opik_id = opik::trace_id(trace_id, start_ms);
    let name = s
        .trace_name
        .as_deref()
        .or(s.root.as_deref())
        .or(s.first.as_deref())
        .unwrap_or("");
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut text = format!(
        "trace {opik_id} {name:?} {} span{}, {} tokens",
        s.spans,
        plural(s.spans),
        s.tokens
    );
    match s.cost {
        Some(c) => text.push_str(&format!(", ${c:.6}")),
        None => text.push_str(", cost n/a"),
    }
    if s.errors > 0 {
        text.push_str(&format!(", {} error{}", s.errors, plural(s.errors)));
    }
    if s.root.is_none() {
        text.push_str(" (no root yet)");
    }
    text.push_str(&format!(" | otel {}", hex_id(trace_id)));
    if let Some(service) = s.service {
        text.push_str(&format!(" service={service}"));
    }
    if s.end > s.start && s.start != u64::MAX {
        text.push_str(&format!(" {:.0} ms", (s.end - s.start) as f64 / 1e6));
    }
    text.push('\n');
    TraceLine {
        text,
        spans: s.spans,
    }
}

impl Line for TraceLine {
    fn line(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::key_value;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

    fn span(trace: u8, id: u8, parent: Option<u8>, name: &str, start_ms: u64, end_ms: u64) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: name.into(),
            start_time_unix_nano: 1_767_225_600_000_000_000 + start_ms * 1_000_000,
            end_time_unix_nano: 1_767_225_600_000_000_000 + end_ms * 1_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn one_line_per_trace_in_the_opik_view() {
        let mut chat = span(1, 2, Some(1), "chat gpt-4o", 1000, 1500);
        chat.attributes = vec![
            key_value("gen_ai.operation.name", Value::StringValue("chat".into())),
            key_value("gen_ai.usage.input_tokens", Value::IntValue(182)),
            key_value("gen_ai.usage.output_tokens", Value::IntValue(24)),
            key_value("gen_ai.usage.cost", Value::DoubleValue(0.0012)),
        ];
        let mut failing = span(2, 9, Some(7), "lonely", 0, 0);
        failing.status = Some(Status {
            code: StatusCode::Error as i32,
            message: "x".into(),
        });
        let traces = ReceivedTraces {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![key_value(
                        "service.name",
                        Value::StringValue("agent-app".into()),
                    )],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![
                        chat,
                        span(1, 1, None, "invoke_agent weather", 900, 2100),
                        span(1, 3, Some(1), "execute_tool get_weather", 1600, 1700),
                        failing,
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            span_count: 4,
            ..Default::default()
        };
        let mut out = Vec::new();
        TraceLines::default().map(&traces, &mut out);
        let id1 = opik::trace_id(&[1; 16], 1_767_225_600_900);
        let id2 = opik::trace_id(&[2; 16], 1_767_225_600_000);
        let lines: Vec<_> = out.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            lines,
            [
                format!(
                    "trace {id1} \"invoke_agent weather\" 3 spans, 206 tokens, $0.001200 | otel 01010101010101010101010101010101 service=agent-app 1200 ms\n"
                ),
                format!(
                    "trace {id2} \"lonely\" 1 span, 0 tokens, cost n/a, 1 error (no root yet) | otel 02020202020202020202020202020202 service=agent-app\n"
                ),
            ]
        );
        assert_eq!(out.iter().map(ExportItem::span_count).sum::<usize>(), 4);
    }
}

//! The console destination: one human line per trace in each request, on stdout.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use tokio::io::AsyncWriteExt as _;

use crate::export::{Delivered, ExportItem, ItemMapper, RequestSender, SendError};
use crate::otlp::{hex_id, string_attribute};
use crate::route::ReceivedTraces;

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

/// Summarises each trace of a request into one line.
#[derive(Debug, Default)]
pub struct TraceLines;

#[derive(Default)]
struct Summary<'a> {
    root: Option<&'a str>,
    first: Option<&'a str>,
    service: Option<&'a str>,
    spans: usize,
    errors: usize,
    start: u64,
    end: u64,
}

impl ItemMapper for TraceLines {
    type Item = TraceLine;

    fn map(&mut self, traces: &ReceivedTraces, out: &mut Vec<TraceLine>) {
        let mut by_trace: BTreeMap<&[u8], Summary<'_>> = BTreeMap::new();
        for rs in &traces.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| string_attribute(&r.attributes, "service.name"));
            for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                let s = by_trace.entry(span.trace_id.as_slice()).or_default();
                s.spans += 1;
                s.first.get_or_insert(span.name.as_str());
                if span.parent_span_id.is_empty() {
                    s.root = Some(span.name.as_str());
                }
                if s.service.is_none() {
                    s.service = service;
                }
                if span
                    .status
                    .as_ref()
                    .is_some_and(|st| st.code == StatusCode::Error as i32)
                {
                    s.errors += 1;
                }
                if s.start == 0
                    || (span.start_time_unix_nano > 0 && span.start_time_unix_nano < s.start)
                {
                    s.start = span.start_time_unix_nano;
                }
                s.end = s.end.max(span.end_time_unix_nano);
            }
        }
        out.extend(by_trace.into_iter().map(|(id, s)| line(id, &s)));
    }
}

fn line(trace_id: &[u8], s: &Summary<'_>) -> TraceLine {
    let name = s.root.or(s.first).unwrap_or("");
    let mut text = format!(
        "trace {} {name:?} {} span{}",
        hex_id(trace_id),
        s.spans,
        if s.spans == 1 { "" } else { "s" }
    );
    if s.root.is_none() {
        text.push_str(" (no root yet)");
    }
    if s.end > s.start && s.start > 0 {
        let ms = (s.end - s.start) as f64 / 1e6;
        text.push_str(&format!(", {ms:.1} ms"));
    }
    if s.errors > 0 {
        text.push_str(&format!(
            ", {} error{}",
            s.errors,
            if s.errors == 1 { "" } else { "s" }
        ));
    }
    if let Some(service) = s.service {
        text.push_str(&format!(", service={service}"));
    }
    text.push('\n');
    TraceLine {
        text,
        spans: s.spans,
    }
}

/// Writes batches of lines to standard output.
#[derive(Debug, Default)]
pub struct Stdout {
    lock: tokio::sync::Mutex<()>,
}

impl RequestSender for Stdout {
    type Item = TraceLine;
    type Request = String;

    fn build(&self, items: &[TraceLine]) -> Result<String, SendError> {
        Ok(items.iter().map(|l| l.text.as_str()).collect())
    }

    async fn send(&self, request: &String) -> Result<Delivered, SendError> {
        let _guard = self.lock.lock().await;
        let mut out = tokio::io::stdout();
        let written = async {
            out.write_all(request.as_bytes()).await?;
            out.flush().await
        }
        .await;
        written
            .map(|()| Delivered::default())
            .map_err(|e| SendError::Retryable {
                reason: "io_error",
                detail: format!("cannot write to stdout: {e}"),
                retry_after: None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::key_value;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

    fn span(trace: u8, id: u8, parent: Option<u8>, name: &str, start_ms: u64, end_ms: u64) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: name.into(),
            start_time_unix_nano: start_ms * 1_000_000,
            end_time_unix_nano: end_ms * 1_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn one_line_per_trace_named_after_its_root() {
        let mut failing = span(2, 9, None, "lonely", 0, 0);
        failing.parent_span_id = vec![7; 8];
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
                        span(1, 2, Some(1), "chat gpt-4o", 1000, 1500),
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
        TraceLines.map(&traces, &mut out);
        let lines: Vec<_> = out.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            lines,
            [
                "trace 01010101010101010101010101010101 \"invoke_agent weather\" 3 spans, 1200.0 ms, service=agent-app\n",
                "trace 02020202020202020202020202020202 \"lonely\" 1 span (no root yet), 1 error, service=agent-app\n",
            ]
        );
        assert_eq!(out.iter().map(ExportItem::span_count).sum::<usize>(), 4);
    }
}

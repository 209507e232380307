//! Per-span validation. A request with some bad spans keeps its good ones;
//! the bad ones are removed and reported through OTLP `partial_success`.

use std::fmt::Write as _;

use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};

/// How many problems are spelled out in the `partial_success` message.
const EXAMPLES: usize = 3;

/// The latest time any destination can store: 2262-04-11T23:47:16Z, the end
/// of signed 64-bit nanoseconds (Opik's ClickHouse `DateTime64(9)`, Java and
/// most OTLP backends). A later time would be accepted here and refused at
/// export, after the client was told it was delivered.
pub const MAX_TIME_UNIX_NANO: u64 = i64::MAX as u64;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Validation {
    pub accepted: usize,
    pub rejected: usize,
    /// Spans kept but changed (a parent id that means "no parent" cleared):
    /// the request is no longer byte for byte what was received.
    pub fixed: usize,
    /// Human summary of the rejections (empty when none).
    pub message: String,
}

/// Removes invalid spans (and the scopes and resources left empty) in place.
pub fn retain_valid(resource_spans: &mut Vec<ResourceSpans>) -> Validation {
    let mut report = Validation::default();
    let mut examples = Vec::new();
    for rs in resource_spans.iter_mut() {
        for ss in rs.scope_spans.iter_mut() {
            ss.spans.retain_mut(|span| match problem(span) {
                None if fix(span) => {
                    report.accepted += 1;
                    report.fixed += 1;
                    true
                }
                None => {
                    report.accepted += 1;
                    true
                }
                Some(p) => {
                    report.rejected += 1;
                    if examples.len() < EXAMPLES {
                        examples.push(format!("span {:?}: {p}", truncate(&span.name, 64)));
                    }
                    false
                }
            });
        }
        rs.scope_spans.retain(|ss| !ss.spans.is_empty());
    }
    resource_spans.retain(|rs| !rs.scope_spans.is_empty());
    if report.rejected > 0 {
        let total = report.accepted + report.rejected;
        let _ = write!(
            report.message,
            "rejected {} of {total} spans: {}",
            report.rejected,
            examples.join("; ")
        );
        if report.rejected > examples.len() {
            let _ = write!(
                report.message,
                "; and {} more",
                report.rejected - examples.len()
            );
        }
    }
    report
}

/// Fixes what can be fixed without guessing: an all-zero parent id, or
/// one equal to the trace id, means "no parent". True when it changed the span.
fn fix(span: &mut Span) -> bool {
    let no_parent = match span.parent_span_id.len() {
        8 => span.parent_span_id.iter().all(|b| *b == 0),
        // Some SDKs put the trace id in the parent field of a root span
        // (comet-ml/opik#7497): that span has no parent.
        16 => span.parent_span_id == span.trace_id,
        _ => false,
    };
    if no_parent {
        span.parent_span_id.clear();
    }
    no_parent
}

/// What is wrong with a span, if anything.
fn problem(span: &Span) -> Option<String> {
    if span.trace_id.len() != 16 {
        return Some(format!(
            "trace_id must be 16 bytes (32 hex digits), got {}",
            span.trace_id.len()
        ));
    }
    if span.trace_id.iter().all(|b| *b == 0) {
        return Some("trace_id is all zeros".into());
    }
    if span.span_id.len() != 8 {
        return Some(format!(
            "span_id must be 8 bytes (16 hex digits), got {}",
            span.span_id.len()
        ));
    }
    if span.span_id.iter().all(|b| *b == 0) {
        return Some("span_id is all zeros".into());
    }
    for (field, t) in [
        ("start_time_unix_nano", span.start_time_unix_nano),
        ("end_time_unix_nano", span.end_time_unix_nano),
    ] {
        if t > MAX_TIME_UNIX_NANO {
            return Some(format!(
                "{field} = {t} is after 2262-04-11T23:47:16Z, which no destination can store"
            ));
        }
    }
    match span.parent_span_id.len() {
        0 | 8 => {}
        16 if span.parent_span_id == span.trace_id => {}
        n => {
            return Some(format!(
                "parent_span_id must be empty or 8 bytes (16 hex digits), got {n}"
            ));
        }
    }
    None
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::ScopeSpans;

    fn span(name: &str, trace_len: usize, span_len: usize, parent: Vec<u8>) -> Span {
        Span {
            name: name.into(),
            trace_id: vec![1; trace_len],
            span_id: vec![2; span_len],
            parent_span_id: parent,
            ..Default::default()
        }
    }

    fn request(spans: Vec<Span>) -> Vec<ResourceSpans> {
        vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }]
    }

    #[test]
    fn bad_spans_go_and_good_ones_stay() {
        let mut rs = request(vec![
            span("good", 16, 8, vec![]),
            span("short-trace", 15, 8, vec![]),
            span("child", 16, 8, vec![3; 8]),
            span("bad-parent", 16, 8, vec![3; 4]),
            span("zero-parent", 16, 8, vec![0; 8]),
            span("trace-id-parent", 16, 8, vec![1; 16]),
        ]);
        let report = retain_valid(&mut rs);
        assert_eq!((report.accepted, report.rejected), (4, 2));
        assert!(
            report.message.starts_with("rejected 2 of 6 spans"),
            "{}",
            report.message
        );
        assert!(
            report
                .message
                .contains("\"short-trace\": trace_id must be 16 bytes"),
            "{}",
            report.message
        );
        assert!(
            report.message.contains("\"bad-parent\": parent_span_id"),
            "{}",
            report.message
        );
        let kept: Vec<_> = rs[0].scope_spans[0]
            .spans
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(kept, ["good", "child", "zero-parent", "trace-id-parent"]);
        assert!(rs[0].scope_spans[0].spans[2].parent_span_id.is_empty());
        assert!(rs[0].scope_spans[0].spans[3].parent_span_id.is_empty());
    }

    #[test]
    fn times_no_destination_can_store_are_refused_up_front() {
        let mut late_end = span("late-end", 16, 8, vec![]);
        late_end.start_time_unix_nano = 1_767_225_600_000_000_000;
        late_end.end_time_unix_nano = MAX_TIME_UNIX_NANO + 1;
        let mut late_start = span("late-start", 16, 8, vec![]);
        late_start.start_time_unix_nano = u64::MAX;
        let mut last_ok = span("last-ok", 16, 8, vec![]);
        last_ok.start_time_unix_nano = MAX_TIME_UNIX_NANO;
        last_ok.end_time_unix_nano = MAX_TIME_UNIX_NANO;
        let mut rs = request(vec![late_end, late_start, last_ok]);
        let report = retain_valid(&mut rs);
        assert_eq!((report.accepted, report.rejected), (1, 2));
        assert!(
            report.message.contains(
                "\"late-end\": end_time_unix_nano = 9223372036854775808 is after 2262-04-11T23:47:16Z"
            ),
            "{}",
            report.message
        );
        assert!(
            report
                .message
                .contains("\"late-start\": start_time_unix_nano")
        );
    }

    #[test]
    fn all_zero_ids_are_invalid_and_empty_containers_are_pruned() {
        let mut zero = span("zero", 16, 8, vec![]);
        zero.trace_id = vec![0; 16];
        let mut rs = request(vec![zero, span("s", 16, 0, vec![])]);
        let report = retain_valid(&mut rs);
        assert_eq!((report.accepted, report.rejected), (0, 2));
        assert!(rs.is_empty());
    }

    #[test]
    fn the_message_lists_a_few_examples_and_counts_the_rest() {
        let mut rs = request(
            (0..10)
                .map(|i| span(&format!("s{i}"), 3, 8, vec![]))
                .collect(),
        );
        let report = retain_valid(&mut rs);
        assert!(
            report.message.ends_with("; and 7 more"),
            "{}",
            report.message
        );
    }
}

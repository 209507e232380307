//! The trace row: built whole from the trace table's entry every time it is
//! written, because Opik replaces whole rows.

use serde_json::Value as Json;

use super::config::MAX_TAGS;
use super::fields;
use super::rows::{TraceRow, TraceUpdate};
use super::trace_table::{OpenTrace, Released};
use crate::pdata::hex_id;
use crate::semconv::write::doc::JsonDoc;

/// The row for `t`. Input and output come from the flow (when the producer
/// names them), else the root span, else the first LLM input and the last
/// LLM output; none under privacy mode. `partial` when the chosen input or
/// output was released ([`OpenTrace::release`]): the row leaves them out and
/// goes to Opik as an update, which keeps what Opik holds for them.
pub fn trace_row(t: &OpenTrace, privacy: bool, last_updated_at: String) -> (TraceRow, bool) {
    let root = t.root.as_ref();
    let name = t
        .trace_name
        .clone()
        .or_else(|| root.map(|r| r.name.clone()))
        .unwrap_or_else(|| t.first_span_name.clone());
    let r = t.released;
    let pick = |candidates: [(Option<&JsonDoc>, u8); 3]| -> (Option<JsonDoc>, bool) {
        match candidates.into_iter().find(|(v, _)| v.is_some()) {
            Some((_, slot)) if r.has(slot) => (None, true),
            Some((v, _)) => (v.cloned(), false),
            None => (None, false),
        }
    };
    let ((input, in_released), (output, out_released)) = if privacy {
        ((None, false), (None, false))
    } else {
        (
            pick([
                (t.trace_input.as_ref(), Released::TRACE_INPUT),
                (root.and_then(|r| r.input.as_ref()), Released::ROOT_INPUT),
                (t.first_llm.as_ref().map(|(_, v)| v), Released::FIRST_LLM),
            ]),
            pick([
                (t.trace_output.as_ref(), Released::TRACE_OUTPUT),
                (root.and_then(|r| r.output.as_ref()), Released::ROOT_OUTPUT),
                (t.last_llm.as_ref().map(|(_, v)| v), Released::LAST_LLM),
            ]),
        )
    };
    let mut metadata = t.metadata.clone();
    metadata.insert(
        "openrouter_trace_id".into(),
        Json::String(hex_id(&t.otel_id)),
    );
    if let Some(u) = &t.user_id {
        metadata.insert("user_id".into(), Json::String(u.clone()));
    }
    metadata.insert("resource".into(), t.resource.clone());
    let end_time =
        (t.root.is_some() || t.finalised).then(|| fields::timestamp(t.end_ns.max(t.start_ns)));
    let row = TraceRow {
        id: t.id,
        start_time: fields::timestamp(if t.start_ns == u64::MAX {
            0
        } else {
            t.start_ns
        }),
        fields: TraceUpdate {
            project_name: t.project.clone(),
            name,
            end_time,
            input,
            output,
            metadata: Json::Object(metadata),
            tags: t.tags.iter().take(MAX_TAGS).cloned().collect(),
            error_info: root.and_then(|r| r.error.clone()),
            thread_id: t.thread_id.clone(),
            ttft: t.ttft_ms(),
            environment: t.environment.clone(),
        },
        last_updated_at,
    };
    (row, in_released || out_released)
}

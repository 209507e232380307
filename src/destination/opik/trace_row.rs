//! The trace row: built whole from the trace table's entry every time it is
//! written, because Opik replaces whole rows.

use serde_json::Value as Json;

use super::config::MAX_TAGS;
use super::fields;
use super::rows::TraceRow;
use super::trace_table::OpenTrace;
use crate::pdata::hex_id;

/// The row for `t`. Input and output come from the flow (when the producer
/// names them), else the root span, else the first LLM input and the last
/// LLM output; none under privacy mode.
pub fn trace_row(t: &OpenTrace, privacy: bool, last_updated_at: String) -> TraceRow {
    let root = t.root.as_ref();
    let name = t
        .trace_name
        .clone()
        .or_else(|| root.map(|r| r.name.clone()))
        .unwrap_or_else(|| t.first_span_name.clone());
    let (input, output) = if privacy {
        (None, None)
    } else {
        (
            t.trace_input
                .clone()
                .or_else(|| root.and_then(|r| r.input.clone()))
                .or_else(|| t.first_llm.as_ref().map(|(_, v)| v.clone())),
            t.trace_output
                .clone()
                .or_else(|| root.and_then(|r| r.output.clone()))
                .or_else(|| t.last_llm.as_ref().map(|(_, v)| v.clone())),
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
    TraceRow {
        id: t.id,
        project_name: t.project.clone(),
        name,
        start_time: fields::timestamp(if t.start_ns == u64::MAX {
            0
        } else {
            t.start_ns
        }),
        end_time,
        input,
        output,
        metadata: Json::Object(metadata),
        tags: t.tags.iter().take(MAX_TAGS).cloned().collect(),
        error_info: root.and_then(|r| r.error.clone()),
        thread_id: t.thread_id.clone(),
        ttft: t.ttft_ms(),
        environment: t.environment.clone(),
        last_updated_at,
    }
}

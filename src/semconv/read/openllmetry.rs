//! OpenLLMetry / Traceloop: flattened `gen_ai.prompt.{i}.*` and
//! `gen_ai.completion.{i}.*` (with tool calls), `traceloop.*` entity I/O and
//! association properties, `llm.*` request and usage keys, and the
//! underscore cache keys.

use serde_json::Value as Json;

use super::messages::{openllmetry_message, take_flattened};
use super::{Reader, fill};

/// OpenLLMetry for Node records a workflow called without arguments as
/// `{"args":[],"kwargs":{}}`: no input, so the trace falls back to the first
/// LLM input.
fn is_empty_call(v: &Json) -> bool {
    let empty = |k: &str| match v.get(k) {
        Some(Json::Array(a)) => a.is_empty(),
        Some(Json::Object(o)) => o.is_empty(),
        None | Some(Json::Null) => true,
        Some(_) => false,
    };
    v.as_object()
        .is_some_and(|o| o.keys().all(|k| k == "args" || k == "kwargs"))
        && empty("args")
        && empty("kwargs")
}

pub(super) fn read(r: &mut Reader<'_>) {
    let a = &mut r.attrs;
    let o = &mut r.out;
    fill(&mut r.hints.traceloop, a.take_string("traceloop.span.kind"));
    fill(
        &mut r.hints.llm_request_type,
        a.take_string("llm.request.type"),
    );
    let (input, output) = a.content(|a| {
        (
            a.take_json_document("traceloop.entity.input")
                .filter(|v| !is_empty_call(v)),
            a.take_json_document("traceloop.entity.output"),
        )
    });
    match r.hints.traceloop.as_deref() {
        // A tool entity's input and output are the call's arguments and result.
        Some("tool") => {
            r.hints.tool_attributes = true;
            fill(&mut o.tool.name, a.take_string("traceloop.entity.name"));
            fill(&mut o.tool.arguments, input);
            fill(&mut o.tool.result, output);
        }
        kind => {
            if kind == Some("agent") {
                fill(
                    &mut o.agent_name,
                    a.peek_str("traceloop.entity.name").map(str::to_string),
                );
            }
            fill(&mut o.input, input);
            fill(&mut o.output, output);
        }
    }
    fill(&mut o.trace_name, a.take_string("traceloop.workflow.name"));
    for key in a.keys_with_prefix("traceloop.association.properties.") {
        let name = &key["traceloop.association.properties.".len()..];
        match name {
            "session_id" | "sessionId" | "thread_id" => {
                fill(&mut o.conversation_id, a.take_string(key))
            }
            "user_id" | "userId" => fill(&mut o.user_id, a.take_string(key)),
            _ => {
                if let Some(v) = a.take_json(key) {
                    o.custom_metadata.entry(name.to_string()).or_insert(v);
                }
            }
        }
    }

    let prompts = a.content(|a| take_flattened(a, "gen_ai.prompt."));
    if o.input_messages.is_empty() {
        o.input_messages = prompts
            .iter()
            .map(|f| openllmetry_message(f, "user"))
            .collect();
    }
    let completions = a.content(|a| take_flattened(a, "gen_ai.completion."));
    if o.output_messages.is_empty() {
        o.output_messages = completions
            .iter()
            .map(|f| openllmetry_message(f, "assistant"))
            .collect();
    }
    let functions: Vec<Json> = take_flattened(a, "llm.request.functions.")
        .into_iter()
        .map(|f| {
            let mut function = serde_json::Map::new();
            for (k, v) in f {
                let v = match (k.as_str(), v) {
                    ("parameters", Json::String(s)) => {
                        serde_json::from_str(&s).unwrap_or(Json::String(s))
                    }
                    (_, v) => v,
                };
                function.insert(k, v);
            }
            serde_json::json!({"type": "function", "function": function})
        })
        .collect();
    if o.tool_definitions.is_empty() {
        o.tool_definitions = functions;
    }

    fill(&mut o.request_model, a.take_string("llm.request.model"));
    fill(&mut o.response_model, a.take_string("llm.response.model"));
    for (key, param) in [
        ("llm.request.max_tokens", "max_tokens"),
        ("llm.request.temperature", "temperature"),
        ("llm.temperature", "temperature"),
        ("llm.request.top_p", "top_p"),
        ("llm.top_p", "top_p"),
        ("llm.top_k", "top_k"),
        ("llm.frequency_penalty", "frequency_penalty"),
        ("llm.presence_penalty", "presence_penalty"),
        ("llm.chat.stop_sequences", "stop_sequences"),
        ("llm.is_streaming", "stream"),
    ] {
        if let Some(v) = a.take_json(key) {
            o.request_params.entry(param).or_insert(v);
        }
    }
    for key in ["llm.response.finish_reason", "llm.response.stop_reason"] {
        if let Some(reason) = a.take_string(key) {
            if o.finish_reasons.is_empty() {
                o.finish_reasons = vec![reason];
            }
        }
    }
    let u = &mut o.usage;
    fill(&mut u.input, a.take_i64("llm.usage.prompt_tokens"));
    fill(&mut u.output, a.take_i64("llm.usage.completion_tokens"));
    fill(&mut u.total, a.take_i64("llm.usage.total_tokens"));
    fill(
        &mut u.cache_read,
        a.take_i64("gen_ai.usage.cache_read_input_tokens"),
    );
    fill(
        &mut u.cache_creation,
        a.take_i64("gen_ai.usage.cache_creation_input_tokens"),
    );
}

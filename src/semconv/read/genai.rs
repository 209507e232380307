//! OTel GenAI semantic conventions v1.37 and later.
//!
//! Content comes from `gen_ai.system_instructions`, `gen_ai.input.messages`
//! and `gen_ai.output.messages` — each a JSON string or a structured
//! AnyValue — or from the same three attributes on the
//! `gen_ai.client.inference.operation.details` span event.

use serde_json::Value as Json;

use super::attrs::{Attrs, Value};
use super::genai_messages::genai_messages_from_str;
use super::messages::{messages_from_json, system_parts_from_json};
use super::model::Message;
use super::{Reader, fill, openai_tool_definition};

/// Request parameters: (`gen_ai.request.<name>`, the name in `model_parameters`).
const REQUEST_PARAMS: &[(&str, &str)] = &[
    ("gen_ai.request.temperature", "temperature"),
    ("gen_ai.request.max_tokens", "max_tokens"),
    ("gen_ai.request.top_p", "top_p"),
    ("gen_ai.request.top_k", "top_k"),
    ("gen_ai.request.frequency_penalty", "frequency_penalty"),
    ("gen_ai.request.presence_penalty", "presence_penalty"),
    ("gen_ai.request.seed", "seed"),
    ("gen_ai.request.stop_sequences", "stop_sequences"),
    ("gen_ai.request.choice.count", "choice_count"),
    ("gen_ai.request.stream", "stream"),
    ("gen_ai.request.encoding_formats", "encoding_formats"),
];

pub(super) fn read(r: &mut Reader<'_>) {
    let a = &mut r.attrs;
    let o = &mut r.out;
    fill(&mut o.operation, a.take_string("gen_ai.operation.name"));
    fill(&mut o.provider, a.take_string("gen_ai.provider.name"));
    fill(&mut o.request_model, a.take_string("gen_ai.request.model"));
    fill(
        &mut o.response_model,
        a.take_string("gen_ai.response.model"),
    );
    a.content(|a| read_content(a, o));
    for event in r
        .events
        .take_named("gen_ai.client.inference.operation.details")
    {
        let mut ea = Attrs::new(&event.attributes);
        read_content(&mut ea, o);
        o.warnings.append(&mut ea.warnings);
    }
    if let Some(Json::Array(defs)) = a.take_structured("gen_ai.tool.definitions") {
        if o.tool_definitions.is_empty() {
            o.tool_definitions = defs.iter().map(openai_tool_definition).collect();
        }
    }

    // Tools.
    let tool_keys = [
        "gen_ai.tool.name",
        "gen_ai.tool.call.id",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
    ];
    if tool_keys.iter().any(|k| a.has(k)) {
        r.hints.tool_attributes = true;
    }
    fill(&mut o.tool.name, a.take_string("gen_ai.tool.name"));
    fill(&mut o.tool.call_id, a.take_string("gen_ai.tool.call.id"));
    fill(
        &mut o.tool.description,
        a.take_string("gen_ai.tool.description"),
    );
    a.claim("gen_ai.tool.type");
    a.content(|a| {
        fill(
            &mut o.tool.arguments,
            a.take_json("gen_ai.tool.call.arguments"),
        );
        // JSON-encoded, even a plain string (AI SDK 7, LiveKit 1.8:
        // `"\"sunny\""`); text that is not JSON stays as it is.
        fill(
            &mut o.tool.result,
            a.take_json_document("gen_ai.tool.call.result")
                .map(super::messages::content_blocks_value),
        );
    });

    // Usage.
    let u = &mut o.usage;
    fill(&mut u.input, a.take_i64("gen_ai.usage.input_tokens"));
    fill(&mut u.output, a.take_i64("gen_ai.usage.output_tokens"));
    fill(&mut u.total, a.take_i64("gen_ai.usage.total_tokens"));
    fill(
        &mut u.cache_read,
        a.take_i64("gen_ai.usage.cache_read.input_tokens"),
    );
    fill(
        &mut u.cache_creation,
        a.take_i64("gen_ai.usage.cache_creation.input_tokens"),
    );
    // Claude Code's spelling.
    fill(
        &mut u.cache_creation,
        a.take_i64("gen_ai.usage.cache_write.input_tokens"),
    );
    fill(
        &mut u.reasoning,
        a.take_i64("gen_ai.usage.reasoning.output_tokens"),
    );

    // Request and response.
    for (key, name) in REQUEST_PARAMS {
        if let Some(v) = a.take_json(key) {
            o.request_params.entry(*name).or_insert(v);
        }
    }
    if let Some(v) = a.take_json("gen_ai.output.type") {
        o.request_params.entry("output_type").or_insert(v);
    }
    fill(&mut o.response_id, a.take_string("gen_ai.response.id"));
    if let Some(reasons) = a.take_string_list("gen_ai.response.finish_reasons") {
        if o.finish_reasons.is_empty() {
            o.finish_reasons = reasons;
        }
    }
    if let Some(reason) = a.take_string("gen_ai.response.finish_reason") {
        if o.finish_reasons.is_empty() {
            o.finish_reasons = vec![reason];
        }
    }

    // Context.
    fill(
        &mut o.conversation_id,
        a.take_string("gen_ai.conversation.id"),
    );
    fill(&mut o.agent_name, a.take_string("gen_ai.agent.name"));
    a.content(|a| {
        if let Some(q) = a.take_json("gen_ai.retrieval.query.text") {
            fill(&mut o.input, Some(serde_json::json!({"query": q})));
        }
        if let Some(docs) = a.take_json("gen_ai.retrieval.documents") {
            fill(&mut o.output, Some(serde_json::json!({"documents": docs})));
        }
    });
}

/// `gen_ai.system_instructions`: semconv parts as JSON, or (Pipecat) the
/// instructions as plain text, which is one text part rather than
/// malformed JSON.
fn system_instructions(a: &mut Attrs<'_>) -> Option<Json> {
    const KEY: &str = "gen_ai.system_instructions";
    match a.peek(KEY) {
        Some(Value::StringValue(t)) if !t.trim_start().starts_with(['[', '{', '"']) => {
            a.take_string(KEY).map(Json::String)
        }
        _ => a.take_structured(KEY),
    }
}

fn read_content(a: &mut Attrs<'_>, o: &mut super::GenAiSpan) {
    if let Some(v) = system_instructions(a) {
        if o.system_instructions.is_empty() {
            o.system_instructions = system_parts_from_json(&v);
        }
    }
    if let Some(m) = take_messages(a, "gen_ai.input.messages", "user") {
        if o.input_messages.is_empty() {
            o.input_messages = m;
        }
    }
    if let Some(m) = take_messages(a, "gen_ai.output.messages", "assistant") {
        if o.output_messages.is_empty() {
            o.output_messages = m;
        }
    }
}

/// A message list: read straight from its JSON text when it is in the
/// common GenAI parts shape, else through the general reader.
fn take_messages(a: &mut Attrs<'_>, key: &str, default_role: &str) -> Option<Vec<Message>> {
    if let Some(Value::StringValue(text)) = a.peek(key) {
        if let Some(messages) = genai_messages_from_str(text, default_role) {
            a.claim(key);
            return Some(messages);
        }
    }
    a.take_structured(key)
        .map(|v| messages_from_json(&v, default_role))
}

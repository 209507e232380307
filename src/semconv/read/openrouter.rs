//! OpenRouter Broadcast (OTLP/JSON from `service.name = openrouter`):
//! its own usage and cost keys, `trace.*` / `span.*` keys, name overrides,
//! and content in the `gen_ai.prompt` / `gen_ai.completion` JSON blobs.

use serde_json::Value as Json;

use super::messages::messages_from_json;
use super::model::{Message, Part};
use super::opik_attributes::split_comma_tags;
use super::{Reader, fill};

pub(super) fn read(r: &mut Reader<'_>) {
    let a = &mut r.attrs;
    let o = &mut r.out;
    let c = &mut o.cost;
    fill(&mut c.input, a.take_f64("gen_ai.usage.input_cost"));
    fill(&mut c.output, a.take_f64("gen_ai.usage.output_cost"));
    fill(&mut c.total, a.take_f64("gen_ai.usage.total_cost"));
    fill(&mut c.total, a.take_f64("gen_ai.usage.cost"));
    let u = &mut o.usage;
    fill(
        &mut u.cache_read,
        a.take_i64("gen_ai.usage.input_tokens.cached"),
    );
    fill(
        &mut u.reasoning,
        a.take_i64("gen_ai.usage.output_tokens.reasoning"),
    );
    fill(
        &mut u.cache_creation,
        a.take_i64("gen_ai.usage.input_tokens.cache_write"),
    );

    fill(
        &mut r.hints.openrouter_span_type,
        a.take_string("span.type"),
    );
    fill(&mut o.trace_name, a.take_string("trace.name"));
    fill(&mut o.trace_name, a.take_string("trace_name"));
    fill(&mut o.span_name, a.take_string("generation_name"));
    fill(&mut o.span_name, a.take_string("span_name"));
    a.content(|a| {
        fill(&mut o.trace_input, a.take_json("trace.input"));
        fill(&mut o.trace_output, a.take_json("trace.output"));
        fill(&mut o.input, a.take_json("span.input"));
        fill(&mut o.output, a.take_json("span.output"));
    });
    if let Some(tags) = a.take_string_list("trace.tags") {
        o.tags.extend(tags.into_iter().flat_map(split_comma_tags));
    }
    fill(&mut o.conversation_id, a.take_string("session_id"));

    for prefix in ["trace.metadata.", "span.metadata."] {
        for key in a.keys_with_prefix(prefix) {
            let name = &key[prefix.len()..];
            match name {
                "trace_name" => fill(&mut o.trace_name, a.take_string(key)),
                "generation_name" | "span_name" => fill(&mut o.span_name, a.take_string(key)),
                "session_id" => fill(&mut o.conversation_id, a.take_string(key)),
                "user" | "user_id" => fill(&mut o.user_id, a.take_string(key)),
                _ => {
                    if let Some(v) = a.take_json(key) {
                        o.custom_metadata.entry(name.to_string()).or_insert(v);
                    }
                }
            }
        }
    }

    // Content blobs: gen_ai.prompt = {"messages":[…]}, gen_ai.completion = {"completion":"…","reasoning":…}.
    a.content(|a| read_blobs(a, o));
}

/// `gen_ai.prompt` / `gen_ai.completion`: content.
fn read_blobs(a: &mut super::attrs::Attrs<'_>, o: &mut super::GenAiSpan) {
    if let Some(prompt) = a.take_json("gen_ai.prompt") {
        let messages = match &prompt {
            Json::Object(p) if p.contains_key("messages") => messages_from_json(&prompt, "user"),
            Json::Array(_) => messages_from_json(&prompt, "user"),
            _ => Vec::new(),
        };
        if !messages.is_empty() && o.input_messages.is_empty() {
            o.input_messages = messages;
        } else if messages.is_empty() {
            fill(&mut o.input, Some(prompt));
        }
    }
    if let Some(completion) = a.take_json("gen_ai.completion") {
        match completion_message(&completion) {
            Some(m) if o.output_messages.is_empty() => o.output_messages = vec![m],
            Some(_) => {}
            None => fill(&mut o.output, Some(completion)),
        }
    }
}

/// OpenRouter's `{"completion": "...", "reasoning": "..."}`, or a chat
/// completion response `{"choices":[{"message":…}]}`.
pub(super) fn completion_message(v: &Json) -> Option<Message> {
    if let Some(choices) = v.get("choices").and_then(Json::as_array) {
        let first = choices.first()?;
        let mut m = messages_from_json(first.get("message")?, "assistant")
            .into_iter()
            .next()?;
        m.finish_reason = first
            .get("finish_reason")
            .and_then(Json::as_str)
            .map(str::to_string);
        return Some(m);
    }
    let text = v.get("completion")?;
    let mut m = Message {
        role: "assistant".into(),
        ..Default::default()
    };
    if let Some(reasoning) = v
        .get("reasoning")
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty())
    {
        m.parts.push(Part::Reasoning(reasoning.to_string()));
    }
    match text {
        Json::String(s) => m.parts.push(Part::Text(s.clone())),
        Json::Null => {}
        other => m.parts.push(Part::Other(other.clone())),
    }
    Some(m)
}

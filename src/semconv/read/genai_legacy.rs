//! OTel GenAI v1.36 and older: `gen_ai.system`, `prompt_tokens` /
//! `completion_tokens`, the per-message span events of v1.28–v1.36
//! (`gen_ai.{system,user,assistant,tool}.message`, `gen_ai.choice`) and
//! the v1.26 events `gen_ai.content.prompt` / `gen_ai.content.completion`.

use crate::telemetry::reason::MappingWarning;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use serde_json::Value as Json;

use super::attrs::{Attrs, parse_json_string};
use super::messages::{content_blocks_value, message_from_json, messages_from_json};
use super::model::{Message, Part};
use super::{Reader, fill};

pub(super) fn read(r: &mut Reader<'_>) {
    let a = &mut r.attrs;
    let o = &mut r.out;
    fill(&mut o.provider, a.take_string("gen_ai.system"));
    fill(&mut o.usage.input, a.take_i64("gen_ai.usage.prompt_tokens"));
    fill(
        &mut o.usage.output,
        a.take_i64("gen_ai.usage.completion_tokens"),
    );
    for (key, param) in [
        ("gen_ai.openai.request.seed", "seed"),
        ("gen_ai.openai.request.response_format", "response_format"),
    ] {
        if let Some(v) = a.take_json(key) {
            o.request_params.entry(param).or_insert(v);
        }
    }

    if o.operation.as_deref() == Some("execute_tool") {
        read_tool_events(r);
        return;
    }
    let per_message = r.events.take_any(&[
        "gen_ai.system.message",
        "gen_ai.user.message",
        "gen_ai.assistant.message",
        "gen_ai.tool.message",
    ]);
    let choices = r.events.take_named("gen_ai.choice");
    let inputs: Vec<Message> = per_message
        .iter()
        .map(|e| event_message(e, &mut o.warnings))
        .collect();
    if o.input_messages.is_empty() {
        o.input_messages = inputs;
    }
    let outputs: Vec<Message> = choices
        .iter()
        .map(|e| choice_message(e, &mut o.warnings))
        .collect();
    if o.output_messages.is_empty() {
        o.output_messages = outputs;
    }

    for e in r.events.take_named("gen_ai.content.prompt") {
        let mut ea = Attrs::new(&e.attributes);
        if let Some(v) = ea.take_json("gen_ai.prompt") {
            if o.input_messages.is_empty() {
                o.input_messages = content_messages(&v, "user");
            }
        }
    }
    for e in r.events.take_named("gen_ai.content.completion") {
        let mut ea = Attrs::new(&e.attributes);
        if let Some(v) = ea.take_json("gen_ai.completion") {
            if o.output_messages.is_empty() {
                o.output_messages = content_messages(&v, "assistant");
            }
        }
    }
}

/// A tool span's events (AWS Strands Agents): `gen_ai.tool.message` holds
/// the call's arguments in `content`, `gen_ai.choice` the result in `message`
/// (content blocks).
fn read_tool_events(r: &mut Reader<'_>) {
    let o = &mut r.out;
    for e in r.events.take_named("gen_ai.tool.message") {
        let body = event_body(e, &mut o.warnings);
        fill(&mut o.tool.arguments, body.get("content").cloned());
        fill(
            &mut o.tool.call_id,
            body.get("id").and_then(Json::as_str).map(str::to_string),
        );
    }
    for e in r.events.take_named("gen_ai.choice") {
        let body = event_body(e, &mut o.warnings);
        fill(
            &mut o.tool.result,
            body.get("message").cloned().map(content_blocks_value),
        );
    }
}

/// `gen_ai.user.message` etc.: the role comes from the event name, the
/// body fields (`content`, `tool_calls`, `id`) from its attributes.
fn event_message(e: &Event, warnings: &mut Vec<MappingWarning>) -> Message {
    let role = e
        .name
        .strip_prefix("gen_ai.")
        .and_then(|n| n.strip_suffix(".message"))
        .unwrap_or("user");
    let body = event_body(e, warnings);
    // google-genai logs a `Content` (`{role, parts}`) as the content.
    if let Some(m) = gemini_content(body.get("content"), role) {
        return m;
    }
    let mut m = message_from_json(&body, role).unwrap_or_else(|| Message {
        role: role.to_string(),
        ..Default::default()
    });
    m.role = body
        .get("role")
        .and_then(Json::as_str)
        .unwrap_or(role)
        .to_string();
    if role == "tool" {
        if let Some(id) = body.get("id").and_then(Json::as_str) {
            let result = match m.parts.as_slice() {
                [Part::Text(t)] => parse_json_string(t),
                _ => body.get("content").cloned().unwrap_or(Json::Null),
            };
            m.parts = vec![Part::ToolResult {
                id: Some(id.to_string()),
                result,
            }];
        }
    }
    m
}

/// `gen_ai.choice`: `{index, finish_reason, message:{role?, content?, tool_calls?}}`.
fn choice_message(e: &Event, warnings: &mut Vec<MappingWarning>) -> Message {
    let body = event_body(e, warnings);
    let inner = match body.get("message") {
        // Strands: a JSON list of content blocks, or the plain final text.
        Some(m @ (Json::Array(_) | Json::String(_))) => serde_json::json!({"content": m}),
        Some(m) => m.clone(),
        None => body.clone(),
    };
    let mut m = gemini_content(inner.get("content"), "assistant")
        .or_else(|| message_from_json(&inner, "assistant"))
        .unwrap_or_default();
    if m.role.is_empty() {
        m.role = "assistant".into();
    }
    m.finish_reason = body
        .get("finish_reason")
        .and_then(Json::as_str)
        .map(str::to_string);
    m
}

/// A google-genai `Content` object (ADK's per-message log records).
fn gemini_content(content: Option<&Json>, role: &str) -> Option<Message> {
    match content {
        Some(c @ Json::Object(o)) if o.contains_key("parts") => super::adk::gemini_message(c, role),
        _ => None,
    }
}

/// The event's attributes as one JSON object, with JSON-looking strings parsed.
fn event_body(e: &Event, warnings: &mut Vec<MappingWarning>) -> Json {
    let mut a = Attrs::new(&e.attributes);
    let mut body = serde_json::Map::new();
    for kv in &e.attributes {
        if let Some(v) = a.take_json(&kv.key) {
            body.insert(kv.key.clone(), v);
        }
    }
    warnings.append(&mut a.warnings);
    Json::Object(body)
}

/// v1.26 content: JSON messages, or OpenLIT's `"user: …\nassistant: …"` text.
fn content_messages(v: &Json, default_role: &str) -> Vec<Message> {
    match v {
        Json::String(text) => {
            let lines: Vec<Message> = text
                .lines()
                .filter_map(|line| {
                    let (role, rest) = line.split_once(": ")?;
                    matches!(role, "system" | "user" | "assistant" | "tool")
                        .then(|| Message::text(role, rest.to_string()))
                })
                .collect();
            if lines.is_empty() {
                vec![Message::text(default_role, text.clone())]
            } else {
                lines
            }
        }
        other => messages_from_json(other, default_role),
    }
}

//! LiveKit Agents (`lk.*`; content keys gained a `pii.` segment in 1.7):
//! the chat context, instructions and user input, the response text and
//! function calls, `function_tool` spans, the agent name and TTFT.
//!
//! Since 1.8 the model call itself, `llm_request`, carries GenAI semconv
//! attributes (read by [`super::genai`]); older releases put its messages in
//! v1.28 span events (read by [`super::genai_legacy`]). The `llm_node` around
//! it and the retry attempt `llm_request_run` under it name the same model
//! and provider without being the call: see [`stand_down_wrapper`].

use serde_json::{Value as Json, json};

use super::attrs::Attrs;
use super::model::{GenAiSpan, Message, Part};
use super::{Reader, fill};

pub(super) fn read(r: &mut Reader<'_>) {
    let a = &mut r.attrs;
    if !a.has_prefix("lk.") {
        return;
    }
    let o = &mut r.out;
    let wraps_a_call = WRAPPER_KEYS.iter().any(|k| a.has(k));
    fill(&mut o.agent_name, a.take_string("lk.agent_name"));
    if a.has("lk.function_tool.name") {
        r.hints.tool_attributes = true;
    }
    fill(&mut o.tool.name, a.take_string("lk.function_tool.name"));
    fill(&mut o.tool.call_id, a.take_string("lk.function_tool.id"));
    if let Some(s) = a.take_f64("lk.response.ttft") {
        fill(&mut o.ttft_ms, Some(s * 1000.0));
    }
    a.content(|a| read_content(a, o));
    if wraps_a_call {
        stand_down_wrapper(o);
    }
}

/// Keys of the spans around a model call: `llm_node` (its chat context)
/// and the attempts of a request (`llm_request_run`, `tts_request_run`).
const WRAPPER_KEYS: [&str; 3] = ["lk.pii.chat_ctx", "lk.chat_ctx", "lk.retry_count"];

/// A wrapper that names a model but states no operation and no usage is
/// not the call (`llm_node` records the request identity of the
/// `llm_request` it spawns, `llm_request_run` is one attempt of it): the
/// model and provider stay on the call, so the wrapper is no LLM span. A
/// custom `llm_node` that does the inference itself states the operation.
fn stand_down_wrapper(o: &mut GenAiSpan) {
    if o.operation.is_none() && o.usage.is_empty() {
        o.request_model = None;
        o.response_model = None;
        o.provider = None;
    }
}

/// The 1.7+ key, else the older one.
fn take(a: &mut Attrs<'_>, name: &str) -> Option<Json> {
    let new = a.take_json_document(&format!("lk.pii.{name}"));
    let old = a.take_json_document(&format!("lk.{name}"));
    new.or(old)
}

fn read_content(a: &mut Attrs<'_>, o: &mut GenAiSpan) {
    if let Some(Json::String(s)) = take(a, "instructions") {
        if o.system_instructions.is_empty() {
            o.system_instructions = vec![Part::Text(s)];
        }
    }
    if let Some(ctx) = take(a, "chat_ctx") {
        if o.input_messages.is_empty() {
            o.input_messages = chat_context(&ctx);
        }
    }
    for name in ["user_input", "user_transcript", "input_text"] {
        fill(&mut o.input, take(a, name));
    }
    let text = take(a, "response.text");
    let calls = take(a, "response.function_calls");
    if (text.is_some() || calls.is_some()) && o.output_messages.is_empty() {
        let mut m = Message {
            role: "assistant".into(),
            ..Default::default()
        };
        if let Some(Json::String(t)) = text.filter(|t| t != "") {
            m.parts.push(Part::Text(t));
        }
        if let Some(Json::Array(calls)) = calls {
            m.parts.extend(calls.iter().filter_map(function_call));
        }
        o.output_messages = vec![m];
    }
    fill(&mut o.tool.arguments, take(a, "function_tool.arguments"));
    fill(&mut o.tool.result, take(a, "function_tool.output"));
}

/// `ChatContext.to_dict()`: `{"items": [{type: "message", role, content:
/// [str…]}, {type: "function_call", call_id, name, arguments},
/// {type: "function_call_output", call_id, output}]}`.
fn chat_context(ctx: &Json) -> Vec<Message> {
    let items = ctx
        .get("items")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    items
        .iter()
        .filter_map(|item| match item.get("type").and_then(Json::as_str) {
            Some("message") => {
                let role = item.get("role").and_then(Json::as_str).unwrap_or("user");
                let parts = match item.get("content") {
                    Some(Json::Array(c)) => c.iter().filter_map(content_part).collect(),
                    Some(Json::String(s)) => vec![Part::Text(s.clone())],
                    _ => Vec::new(),
                };
                Some(Message {
                    role: if role == "developer" { "system" } else { role }.to_string(),
                    parts,
                    ..Default::default()
                })
            }
            Some("function_call") => Some(Message {
                role: "assistant".into(),
                parts: function_call(item).into_iter().collect(),
                ..Default::default()
            }),
            Some("function_call_output") => Some(Message {
                role: "tool".into(),
                parts: vec![Part::ToolResult {
                    id: item
                        .get("call_id")
                        .and_then(Json::as_str)
                        .map(str::to_string),
                    result: item.get("output").cloned().unwrap_or(Json::Null),
                }],
                ..Default::default()
            }),
            _ => None,
        })
        .collect()
}

/// One entry of a message's `content`: text, or an image/audio object;
/// `{"type": "cache_breakpoint"}` (1.8: where the prompt cache may end) is
/// a marker, not content.
fn content_part(p: &Json) -> Option<Part> {
    match p {
        Json::String(s) => Some(Part::Text(s.clone())),
        other if other.get("type").and_then(Json::as_str) == Some("cache_breakpoint") => None,
        other => Some(Part::Other(other.clone())),
    }
}

fn function_call(c: &Json) -> Option<Part> {
    let c = match c {
        Json::String(s) => serde_json::from_str::<Json>(s).ok()?,
        other => other.clone(),
    };
    Some(Part::ToolCall {
        id: c.get("call_id").and_then(Json::as_str).map(str::to_string),
        name: c.get("name")?.as_str()?.to_string(),
        arguments: match c.get("arguments") {
            Some(Json::String(s)) => super::attrs::parse_json_string(s),
            Some(v) => v.clone(),
            None => json!({}),
        },
    })
}

//! Google ADK, telemetry schema 1 (`gcp.vertex.agent.*`): the google-genai
//! request and response of a `call_llm` span as JSON (`llm_request`,
//! `llm_response`), a tool's `tool_call_args` / `tool_response`, and the
//! ADK `session_id` (the thread). Schema 2 uses the OTel GenAI attributes,
//! read by [`super::genai`]. The `gcp.vertex.agent` provider is a framework
//! name; the provider is resolved from the model.

use serde_json::{Map, Value as Json, json};

use super::attrs::Attrs;
use super::model::{GenAiSpan, Message, Part};
use super::{Reader, fill, openai_tool_definition};

const PREFIX: &str = "gcp.vertex.agent.";

pub(super) fn read(r: &mut Reader<'_>) {
    let a = &mut r.attrs;
    if !a.has_prefix(PREFIX) {
        return;
    }
    let o = &mut r.out;
    fill(
        &mut o.conversation_id,
        a.take_string("gcp.vertex.agent.session_id"),
    );
    if let Some(id) = a.take_string("gcp.vertex.agent.invocation_id") {
        o.custom_metadata
            .entry("adk_invocation_id")
            .or_insert(Json::String(id));
    }
    a.content(|a| read_content(a, o));
}

fn read_content(a: &mut Attrs<'_>, o: &mut GenAiSpan) {
    if let Some(Json::Object(req)) = a.take_json("gcp.vertex.agent.llm_request") {
        read_request(&req, o);
    }
    if let Some(Json::Object(resp)) = a.take_json("gcp.vertex.agent.llm_response") {
        read_response(&resp, o);
    }
    fill(
        &mut o.tool.arguments,
        a.take_json("gcp.vertex.agent.tool_call_args"),
    );
    fill(
        &mut o.tool.result,
        a.take_json("gcp.vertex.agent.tool_response"),
    );
}

/// A google-genai `GenerateContentRequest` as ADK logs it (snake_case).
fn read_request(req: &Map<String, Json>, o: &mut GenAiSpan) {
    let config = req.get("config").and_then(Json::as_object);
    if o.system_instructions.is_empty() {
        if let Some(si) = config.and_then(|c| c.get("system_instruction")) {
            o.system_instructions = match si {
                Json::String(s) => vec![Part::Text(s.clone())],
                other => gemini_message(other, "system")
                    .map(|m| m.parts)
                    .unwrap_or_default(),
            };
        }
    }
    if o.input_messages.is_empty() {
        if let Some(Json::Array(contents)) = req.get("contents") {
            o.input_messages = contents
                .iter()
                .filter_map(|c| gemini_message(c, "user"))
                .collect();
        }
    }
    if o.tool_definitions.is_empty() {
        o.tool_definitions = config
            .and_then(|c| c.get("tools"))
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.get("function_declarations")?.as_array())
            .flatten()
            .map(|d| {
                let mut d = d.clone();
                if let Some(obj) = d.as_object_mut() {
                    if let Some(schema) = obj.remove("parameters_json_schema") {
                        obj.entry("parameters").or_insert(schema);
                    }
                }
                openai_tool_definition(&d)
            })
            .collect();
    }
    for key in ["temperature", "top_p", "top_k", "max_output_tokens", "seed"] {
        if let Some(v) = config.and_then(|c| c.get(key)) {
            o.request_params.entry(key).or_insert(v.clone());
        }
    }
}

/// An ADK `LlmResponse`: `content`, `finish_reason`, `usage_metadata`.
fn read_response(resp: &Map<String, Json>, o: &mut GenAiSpan) {
    if o.output_messages.is_empty() {
        if let Some(mut m) = resp
            .get("content")
            .and_then(|c| gemini_message(c, "assistant"))
        {
            m.finish_reason = resp
                .get("finish_reason")
                .and_then(Json::as_str)
                .map(str::to_ascii_lowercase);
            o.output_messages = vec![m];
        }
    }
    fill(
        &mut o.response_model,
        resp.get("model_version")
            .and_then(Json::as_str)
            .map(str::to_string),
    );
    if let Some(u) = resp.get("usage_metadata").and_then(Json::as_object) {
        let n = |k: &str| u.get(k).and_then(Json::as_i64);
        fill(&mut o.usage.input, n("prompt_token_count"));
        fill(&mut o.usage.output, n("candidates_token_count"));
        fill(&mut o.usage.total, n("total_token_count"));
        fill(&mut o.usage.cache_read, n("cached_content_token_count"));
        fill(&mut o.usage.reasoning, n("thoughts_token_count"));
    }
}

/// A google-genai `Content` (`{role, parts}`), snake_case or camelCase.
pub(super) fn gemini_message(v: &Json, default_role: &str) -> Option<Message> {
    let o = v.as_object()?;
    let role = match o.get("role").and_then(Json::as_str) {
        Some("model") => "assistant",
        Some(r) => r,
        None => default_role,
    };
    let parts = o
        .get("parts")?
        .as_array()?
        .iter()
        .map(gemini_part)
        .collect();
    Some(Message {
        role: role.to_string(),
        parts,
        ..Default::default()
    })
}

fn gemini_part(p: &Json) -> Part {
    // A full pydantic dump (ADK's log records) lists absent fields as null.
    let present = |key: &str| p.get(key).filter(|v| !v.is_null());
    let field = |snake: &str, camel: &str| present(snake).or_else(|| present(camel));
    if let Some(text) = p.get("text").and_then(Json::as_str) {
        return if p.get("thought").and_then(Json::as_bool) == Some(true) {
            Part::Reasoning(text.to_string())
        } else {
            Part::Text(text.to_string())
        };
    }
    let id = |c: &Json| c.get("id").and_then(Json::as_str).map(str::to_string);
    if let Some(call) = field("function_call", "functionCall") {
        return Part::ToolCall {
            id: id(call),
            name: call
                .get("name")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string(),
            arguments: call.get("args").cloned().unwrap_or_else(|| json!({})),
        };
    }
    if let Some(resp) = field("function_response", "functionResponse") {
        return Part::ToolResult {
            id: id(resp),
            result: resp.get("response").cloned().unwrap_or(Json::Null),
        };
    }
    Part::Other(p.clone())
}

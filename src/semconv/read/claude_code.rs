//! Claude Code's spans (`CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1`, scope
//! `com.anthropic.claude_code.tracing`): `claude_code.interaction` (the
//! user's prompt in `user_prompt`) → `claude_code.llm_request` (read by the
//! GenAI dialect) and `claude_code.tool` (`full_command`, the `tool.output`
//! event) → `tool.blocked_on_user` / `tool.execution`, which are phases of
//! the tool span, not tool calls of their own. The answer itself is only in
//! Claude Code's log events, joined to these spans as `claude_code.<event>`
//! events (see `semconv::logs::claude_code`): `user_prompt` on the
//! interaction; `api_request` (cost), `assistant_response`,
//! `api_response_body` (the model's turn, tool calls included),
//! `api_request_body` (its input: the system prompt and the messages) and
//! `api_error` on the `llm_request`; `tool_result` (the tool's input) and
//! `tool_output` (its result, from the next request body) on the tool.

use serde_json::{Value as Json, json};

use super::attrs::Attrs;
use super::messages::{messages_from_json, system_parts_from_json};
use super::model::{ErrorInfo, Message};
use super::{Reader, fill};
use crate::semconv::privacy::Claim;

const SCOPE: &str = "com.anthropic.claude_code.tracing";

pub(super) fn read(r: &mut Reader<'_>) {
    let a = &mut r.attrs;
    if r.ctx.scope_name != SCOPE && !a.has("user_prompt") {
        return;
    }
    let Some(span_type) = a.peek_str("span.type").map(str::to_string) else {
        return;
    };
    a.claim("span.type");
    r.hints.claude_code = Some(span_type.clone());
    let o = &mut r.out;
    fill(&mut o.provider, Some("anthropic".to_string()));
    fill(&mut o.ttft_ms, a.take_f64("ttft_ms"));
    match span_type.as_str() {
        "interaction" => {
            a.content(|a| {
                fill(&mut o.input, a.take_string("user_prompt").map(Json::String));
            });
            for e in r.events.take_named("claude_code.user_prompt") {
                let mut ea = Attrs::new(&e.attributes);
                fill(&mut o.input, ea.take_string("prompt").map(Json::String));
            }
        }
        "llm_request" => read_api_events(r),
        "tool" => {
            fill(&mut o.tool.name, a.take_string("tool_name"));
            a.content(|a| {
                let command = a.take_string("full_command");
                a.claim("bash_argv0");
                fill(
                    &mut o.tool.arguments,
                    command.map(|c| json!({"command": c})),
                );
            });
            for e in r.events.take_named("tool.output") {
                let mut ea = Attrs::new(&e.attributes);
                fill(&mut o.tool.result, ea.take_json_document("output"));
            }
            for e in r.events.take_named("claude_code.tool_output") {
                let mut ea = Attrs::new(&e.attributes);
                fill(&mut o.tool.result, ea.take_json_document("output"));
            }
            for e in r.events.take_named("claude_code.tool_result") {
                let mut ea = Attrs::new(&e.attributes);
                fill(&mut o.tool.arguments, ea.take_json_document("tool_input"));
            }
        }
        _ => {}
    }
}

/// The API call's events on its `llm_request` span.
fn read_api_events(r: &mut Reader<'_>) {
    let o = &mut r.out;
    for e in r.events.take(&["claude_code.api_request"], Claim::Fact) {
        let mut ea = Attrs::new(&e.attributes);
        fill(&mut o.cost.total, ea.take_f64("cost_usd"));
    }
    for e in r.events.take(&["claude_code.api_error"], Claim::Error) {
        let mut ea = Attrs::new(&e.attributes);
        let message = ea.take_string("error");
        fill(
            &mut o.error,
            Some(ErrorInfo {
                exception_type: "api_error".into(),
                traceback: message.clone().unwrap_or_else(|| "api_error".into()),
                message,
            }),
        );
    }
    for e in r.events.take_named("claude_code.assistant_response") {
        let mut ea = Attrs::new(&e.attributes);
        if let (true, Some(text)) = (o.output_messages.is_empty(), ea.take_string("response")) {
            o.output_messages = vec![Message::text("assistant", text)];
        }
    }
    for e in r.events.take_named("claude_code.api_request_body") {
        let mut ea = Attrs::new(&e.attributes);
        let Some(body) = ea.take_json_document("body") else {
            continue;
        };
        if let (true, Some(system)) = (o.system_instructions.is_empty(), body.get("system")) {
            o.system_instructions = system_parts_from_json(system);
        }
        if let (true, Some(messages)) = (o.input_messages.is_empty(), body.get("messages")) {
            o.input_messages = messages_from_json(messages, "user");
        }
    }
    for e in r.events.take_named("claude_code.api_response_body") {
        let mut ea = Attrs::new(&e.attributes);
        if let (true, Some(body)) = (o.output_messages.is_empty(), ea.take_json_document("body")) {
            o.output_messages = messages_from_json(&Json::Array(vec![body]), "assistant");
        }
    }
}

//! Claude Code's spans (`CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1`, scope
//! `com.anthropic.claude_code.tracing`): `claude_code.interaction` (the
//! user's prompt in `user_prompt`) → `claude_code.llm_request` (read by the
//! GenAI dialect) and `claude_code.tool` (`full_command`, the `tool.output`
//! event) → `tool.blocked_on_user` / `tool.execution`, which are phases of
//! the tool span, not tool calls of their own. The answer itself is only in
//! Claude Code's log events.

use serde_json::{Value as Json, json};

use super::attrs::Attrs;
use super::{Reader, fill};

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
        "interaction" => a.content(|a| {
            fill(&mut o.input, a.take_string("user_prompt").map(Json::String));
        }),
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
        }
        _ => {}
    }
}

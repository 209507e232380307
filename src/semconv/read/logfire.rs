//! Logfire and pydantic-ai: `all_messages` / `pydantic_ai.all_messages`,
//! `final_result`, `prompt`, tool arguments and responses, `agent_name`,
//! `model_name`, `usage`, and the `events` JSON array. pydantic-ai's
//! `gen_ai.*` attributes are read by the GenAI dialect.

use serde_json::Value as Json;

use super::attrs::Attrs;
use super::messages::messages_from_json;
use super::model::Message;
use super::{GenAiSpan, Reader, fill};

pub(super) fn read(r: &mut Reader<'_>) {
    let a = &mut r.attrs;
    let o = &mut r.out;
    if let Some(name) = a.take_string("agent_name") {
        r.hints.logfire_agent =
            a.has("all_messages") || a.has("pydantic_ai.all_messages") || a.has("final_result");
        fill(&mut o.agent_name, Some(name));
    }
    fill(&mut o.request_model, a.take_string("model_name"));
    if a.has("tool_arguments") {
        r.hints.tool_attributes = true;
    }
    a.content(|a| read_content(a, o));
    if let Some(Json::Object(usage)) = a.take_json("usage") {
        let n = |k: &str| usage.get(k).and_then(Json::as_i64);
        let u = &mut o.usage;
        fill(&mut u.input, n("input_tokens").or(n("request_tokens")));
        fill(&mut u.output, n("output_tokens").or(n("response_tokens")));
        fill(&mut u.total, n("total_tokens"));
        fill(&mut u.cache_read, n("cache_read_tokens"));
        fill(&mut u.cache_creation, n("cache_write_tokens"));
    }
    if let Some(Json::Array(events)) = a.content(|a| a.take_structured("events")) {
        let (mut input, mut output): (Vec<Message>, Vec<Message>) = (Vec::new(), Vec::new());
        for e in &events {
            let name = e.get("event.name").and_then(Json::as_str).unwrap_or("");
            if name == "gen_ai.choice" {
                let inner = e.get("message").unwrap_or(e);
                let mut ms = messages_from_json(inner, "assistant");
                for m in &mut ms {
                    m.finish_reason = e
                        .get("finish_reason")
                        .and_then(Json::as_str)
                        .map(str::to_string);
                }
                output.extend(ms);
            } else {
                let role = name
                    .strip_prefix("gen_ai.")
                    .and_then(|n| n.strip_suffix(".message"))
                    .unwrap_or("user");
                input.extend(messages_from_json(e, role));
            }
        }
        if o.input_messages.is_empty() {
            o.input_messages = input;
        }
        if o.output_messages.is_empty() {
            o.output_messages = output;
        }
    }
}

/// Messages, prompt, result, tool arguments and responses: content.
fn read_content(a: &mut Attrs<'_>, o: &mut GenAiSpan) {
    for key in ["pydantic_ai.all_messages", "all_messages"] {
        if let Some(v) = a.take_structured(key) {
            if o.input_messages.is_empty() {
                o.input_messages = messages_from_json(&v, "user");
            }
        }
    }
    fill(&mut o.output, a.take_json("final_result"));
    fill(&mut o.input, a.take_json("prompt"));
    fill(&mut o.tool.arguments, a.take_json("tool_arguments"));
    fill(&mut o.tool.result, a.take_json_document("tool_response"));
    fill(&mut o.tool.result, a.take_json_document("tool_responses"));
    fill(&mut o.output, a.take_json("response"));
    fill(&mut o.output, a.take_json("result"));
}

//! Rendering the normalised view as JSON documents in the shapes UIs know:
//! LLM input `{"messages": [...], "tools": [...]}` in the OpenAI chat shape,
//! LLM output `{"choices": [{"index", "message", "finish_reason"}]}`,
//! completions as `{"prompt"}` / `{"choices":[{"index","text"}]}`, tool
//! arguments and results as objects. Used by the Opik rows and by the
//! OpenInference `input.value` / `output.value`.

use serde_json::{Map, Value as Json, json};

use crate::semconv::{GenAiSpan, Kind, Message, Part, json_text};

/// The span's input as a JSON document.
pub fn span_input(g: &GenAiSpan) -> Option<Json> {
    match g.kind {
        Kind::Llm | Kind::Embedding => llm_input(g).or_else(|| wrap(g.input.clone(), "input")),
        Kind::Tool => match &g.tool.arguments {
            Some(args) => wrap(Some(args.clone()), "arguments"),
            None => wrap(g.input.clone(), "input"),
        },
        _ if !g.input_messages.is_empty() && g.input.is_none() => Some(json!({
            "messages": chat_messages(&g.system_instructions, &g.input_messages)
        })),
        _ => wrap(g.input.clone(), "input"),
    }
}

/// The span's output as a JSON document.
pub fn span_output(g: &GenAiSpan) -> Option<Json> {
    match g.kind {
        Kind::Llm | Kind::Embedding => llm_output(g).or_else(|| wrap(g.output.clone(), "output")),
        Kind::Tool => match &g.tool.result {
            Some(result) => wrap(Some(result.clone()), "output"),
            None => wrap(g.output.clone(), "output"),
        },
        _ if !g.output_messages.is_empty() && g.output.is_none() => llm_output(g),
        _ => wrap(g.output.clone(), "output"),
    }
}

/// Objects pass; other values are wrapped under `key` so the UI shows a field.
fn wrap(v: Option<Json>, key: &str) -> Option<Json> {
    match v? {
        Json::Object(o) => Some(Json::Object(o)),
        Json::Null => None,
        other => Some(json!({ key: other })),
    }
}

fn llm_input(g: &GenAiSpan) -> Option<Json> {
    let mut input = Map::new();
    if !g.input_messages.is_empty() || !g.system_instructions.is_empty() {
        input.insert(
            "messages".into(),
            Json::Array(chat_messages(&g.system_instructions, &g.input_messages)),
        );
    } else if !g.prompts.is_empty() {
        let prompt = match g.prompts.as_slice() {
            [one] => Json::String(one.clone()),
            many => json!(many),
        };
        input.insert("prompt".into(), prompt);
    } else {
        return None;
    }
    if !g.tool_definitions.is_empty() {
        input.insert("tools".into(), Json::Array(g.tool_definitions.clone()));
    }
    Some(Json::Object(input))
}

fn llm_output(g: &GenAiSpan) -> Option<Json> {
    if !g.output_messages.is_empty() {
        let choices: Vec<Json> = g
            .output_messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let finish = m
                    .finish_reason
                    .clone()
                    .or_else(|| g.finish_reasons.get(i).cloned());
                let message = chat_message(&m.role, &m.parts, m.name.as_deref())
                    .into_iter()
                    .next()
                    .unwrap_or(Json::Null);
                json!({"index": i, "message": message, "finish_reason": finish})
            })
            .collect();
        return Some(json!({ "choices": choices }));
    }
    if !g.completions.is_empty() {
        let choices: Vec<Json> = g
            .completions
            .iter()
            .enumerate()
            .map(|(i, text)| json!({"index": i, "text": text, "finish_reason": g.finish_reasons.get(i)}))
            .collect();
        return Some(json!({ "choices": choices }));
    }
    None
}

/// System instructions first, then the history, in the OpenAI chat shape.
pub fn chat_messages(system: &[Part], history: &[Message]) -> Vec<Json> {
    let mut out = Vec::with_capacity(history.len() + 1);
    if !system.is_empty() {
        out.extend(chat_message("system", system, None));
    }
    for m in history {
        out.extend(chat_message(&m.role, &m.parts, m.name.as_deref()));
    }
    out
}

/// One message in the OpenAI chat shape. A message carrying tool results
/// becomes one `tool` message per result, as OpenAI requires. Its content
/// is its text, or a list of blocks when it has parts other than text.
fn chat_message(role: &str, parts: &[Part], name: Option<&str>) -> Vec<Json> {
    let has_other = parts.iter().any(|p| matches!(p, Part::Other(_)));
    let mut text = Vec::new();
    let mut blocks = Vec::new();
    let mut tool_calls = Vec::new();
    let mut tool_results = Vec::new();
    let mut reasoning = Vec::new();
    for p in parts {
        match p {
            Part::Text(t) if has_other => blocks.push(json!({"type": "text", "text": t})),
            Part::Text(t) => text.push(t.as_str()),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => tool_calls.push(json!({
                "id": id,
                "type": "function",
                // OpenAI sends tool arguments as a JSON string.
                "function": {"name": name, "arguments": json_text(arguments)},
            })),
            Part::ToolResult { id, result } => tool_results.push((id, result)),
            Part::Reasoning(r) => reasoning.push(r.as_str()),
            Part::Other(v) => blocks.push(v.clone()),
        }
    }
    let mut out = Vec::new();
    for (id, result) in tool_results {
        out.push(json!({
            "role": "tool",
            "tool_call_id": id,
            "content": match result { Json::String(s) => s.clone(), other => other.to_string() },
        }));
    }
    if !out.is_empty() && text.is_empty() && tool_calls.is_empty() && !has_other {
        return out;
    }
    let mut msg = Map::new();
    msg.insert("role".into(), Json::String(role.to_string()));
    let content = if has_other {
        Json::Array(blocks)
    } else if text.is_empty() {
        Json::Null
    } else {
        Json::String(text.concat())
    };
    msg.insert("content".into(), content);
    if let Some(name) = name {
        msg.insert("name".into(), Json::String(name.to_string()));
    }
    if !tool_calls.is_empty() {
        msg.insert("tool_calls".into(), Json::Array(tool_calls));
    }
    if !reasoning.is_empty() {
        msg.insert(
            "reasoning_content".into(),
            Json::String(reasoning.join("\n")),
        );
    }
    out.insert(0, Json::Object(msg));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_results_become_tool_messages_and_calls_stringify_arguments() {
        let history = vec![
            Message {
                role: "assistant".into(),
                parts: vec![Part::ToolCall {
                    id: Some("c1".into()),
                    name: "f".into(),
                    arguments: json!({"a": 1}),
                }],
                ..Default::default()
            },
            Message {
                role: "tool".into(),
                parts: vec![Part::ToolResult {
                    id: Some("c1".into()),
                    result: json!({"ok": true}),
                }],
                ..Default::default()
            },
        ];
        let out = chat_messages(&[Part::Text("Be brief".into())], &history);
        assert_eq!(
            Json::Array(out),
            json!([
                {"role": "system", "content": "Be brief"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "{\"ok\":true}"}
            ])
        );
    }
}

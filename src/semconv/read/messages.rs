//! Message shapes seen in the wild, all read into [`Message`]:
//! - GenAI v1.37+: `{role, parts:[{type:"text"|"tool_call"|"tool_call_response"|"reasoning",…}], finish_reason?}`
//! - OpenAI chat: `{role, content: string|[{type:"text",text}], tool_calls:[{id,function:{name,arguments}}], tool_call_id}`
//! - Anthropic content blocks: `{type:"text"|"tool_use"|"tool_result",…}`
//! - Vercel AI SDK: `{role, content:[{type:"text"|"tool-call"|"tool-result",…}]}`
//! - flattened attributes: `<prefix>.<i>.<field>` (OpenLLMetry, OpenInference).

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use super::attrs::{Attrs, json_text, parse_json_string, value_as_json};
use super::model::{Message, Part};

/// A list of messages in any of the JSON shapes above. A bare string
/// becomes one message with `default_role`.
pub fn messages_from_json(v: &Json, default_role: &str) -> Vec<Message> {
    match v {
        Json::Array(items) => items
            .iter()
            .filter_map(|m| message_from_json(m, default_role))
            .collect(),
        Json::Object(o) if o.contains_key("messages") => o
            .get("messages")
            .map(|m| messages_from_json(m, default_role))
            .unwrap_or_default(),
        Json::Object(_) => message_from_json(v, default_role).into_iter().collect(),
        Json::String(s) if !s.is_empty() => vec![Message::text(default_role, s.clone())],
        _ => Vec::new(),
    }
}

/// One message object.
pub fn message_from_json(v: &Json, default_role: &str) -> Option<Message> {
    let o = v.as_object()?;
    let role = o
        .get("role")
        .and_then(Json::as_str)
        .unwrap_or(default_role)
        .to_string();
    let mut m = Message {
        role,
        name: o.get("name").and_then(Json::as_str).map(str::to_string),
        finish_reason: o
            .get("finish_reason")
            .or_else(|| o.get("finishReason"))
            .and_then(Json::as_str)
            .map(str::to_string),
        parts: Vec::new(),
    };
    if let Some(parts) = o.get("parts").and_then(Json::as_array) {
        m.parts = parts.iter().map(part_from_json).collect();
        return Some(m);
    }
    match o.get("content") {
        Some(Json::String(s)) => m.parts.push(Part::Text(s.clone())),
        Some(Json::Array(blocks)) => m.parts.extend(blocks.iter().map(part_from_json)),
        Some(Json::Null) | None => {}
        Some(other) => m.parts.push(Part::Other(other.clone())),
    }
    if let Some(calls) = o.get("tool_calls").and_then(Json::as_array) {
        m.parts.extend(calls.iter().filter_map(openai_tool_call));
    }
    if let Some(call) = o.get("function_call") {
        m.parts
            .extend(openai_tool_call(&serde_json::json!({"function": call})));
    }
    if let Some(id) = o.get("tool_call_id").and_then(Json::as_str) {
        // An OpenAI tool message: its content is the tool's result.
        let result = match m.parts.as_slice() {
            [Part::Text(t)] => parse_json_string(t),
            [] => Json::Null,
            _ => Json::String(m.joined_text().unwrap_or_default()),
        };
        m.parts = vec![Part::ToolResult {
            id: Some(id.to_string()),
            result,
        }];
    }
    if let Some(r) = o
        .get("reasoning")
        .and_then(Json::as_str)
        .filter(|r| !r.is_empty())
    {
        m.parts.insert(0, Part::Reasoning(r.to_string()));
    }
    Some(m)
}

/// `{id, type:"function", function:{name, arguments:"{…}"}}`
fn openai_tool_call(v: &Json) -> Option<Part> {
    let f = v.get("function")?;
    Some(Part::ToolCall {
        id: v.get("id").and_then(Json::as_str).map(str::to_string),
        name: f
            .get("name")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string(),
        arguments: arguments_value(f.get("arguments")),
    })
}

/// Tool arguments are often a JSON string; parse them when they are.
fn arguments_value(v: Option<&Json>) -> Json {
    match v {
        Some(Json::String(s)) => parse_json_string(s),
        Some(other) => other.clone(),
        None => Json::Object(Map::new()),
    }
}

fn str_field(o: &Map<String, Json>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| o.get(*k).and_then(Json::as_str))
        .map(str::to_string)
}

/// One part or content block.
pub fn part_from_json(v: &Json) -> Part {
    let Some(o) = v.as_object() else {
        return match v {
            Json::String(s) => Part::Text(s.clone()),
            other => Part::Other(other.clone()),
        };
    };
    if !o.contains_key("type") {
        if let Some(part) = bedrock_block(o) {
            return part;
        }
    }
    let kind = o.get("type").and_then(Json::as_str).unwrap_or("text");
    match kind {
        "text" | "input_text" | "output_text" => match str_field(o, &["content", "text"]) {
            Some(t) => Part::Text(t),
            None => Part::Other(v.clone()),
        },
        "reasoning" | "thinking" => match str_field(o, &["content", "text", "thinking"]) {
            Some(t) => Part::Reasoning(t),
            None => Part::Other(v.clone()),
        },
        "tool_call" | "tool_use" | "tool-call" | "function_call" => Part::ToolCall {
            id: str_field(o, &["id", "toolCallId", "call_id"]),
            name: str_field(o, &["name", "toolName"]).unwrap_or_default(),
            arguments: arguments_value(
                o.get("arguments")
                    .or_else(|| o.get("input"))
                    .or_else(|| o.get("args")),
            ),
        },
        "blob" | "uri" | "file" => media_part(o).unwrap_or_else(|| Part::Other(v.clone())),
        "tool_call_response" | "tool_result" | "tool-result" | "function_call_output" => {
            let result = o
                .get("response")
                .or_else(|| o.get("result"))
                .or_else(|| o.get("output"))
                .or_else(|| o.get("content"))
                .cloned()
                .unwrap_or(Json::Null);
            let result = content_blocks_value(result);
            Part::ToolResult {
                id: str_field(o, &["id", "tool_use_id", "toolCallId", "call_id"]),
                result,
            }
        }
        _ => Part::Other(v.clone()),
    }
}

/// LangChain-serialised messages (`{"lc":1,"type":"constructor","id":[…,
/// "HumanMessage"],"kwargs":{content, tool_calls, tool_call_id}}`), in a
/// list or a list of lists (one per prompt). Plain message objects pass
/// through [`message_from_json`].
pub fn langchain_messages(v: &Json) -> Vec<Message> {
    let Json::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .flat_map(|m| match m {
            Json::Array(_) => langchain_messages(m),
            _ => langchain_message(m).into_iter().collect(),
        })
        .collect()
}

fn langchain_message(v: &Json) -> Option<Message> {
    let Some(kwargs) = v.get("kwargs").filter(|_| v.get("lc").is_some()) else {
        return message_from_json(v, "user");
    };
    let class = v
        .get("id")
        .and_then(Json::as_array)
        .and_then(|id| id.last())
        .and_then(Json::as_str)
        .unwrap_or("");
    let role = match class {
        "SystemMessage" => "system",
        "AIMessage" | "AIMessageChunk" => "assistant",
        "ToolMessage" => "tool",
        _ => "user",
    };
    let mut m = message_from_json(kwargs, role)?;
    m.role = role.to_string();
    if let Some(calls) = kwargs.get("tool_calls").and_then(Json::as_array) {
        // LangChain's own shape: {name, args, id}.
        m.parts.retain(|p| !matches!(p, Part::ToolCall { .. }));
        m.parts.extend(calls.iter().map(|c| {
            Part::ToolCall {
                id: c.get("id").and_then(Json::as_str).map(str::to_string),
                name: c
                    .get("name")
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_string(),
                arguments: c
                    .get("args")
                    .cloned()
                    .unwrap_or_else(|| Json::Object(Map::new())),
            }
        }));
    }
    m.parts
        .retain(|p| !matches!(p, Part::Text(t) if t.is_empty()));
    Some(m)
}

/// An OpenAI-style `image_url` content block, which Opik renders.
fn image_url(url: &str) -> Part {
    Part::Other(serde_json::json!({"type": "image_url", "image_url": {"url": url}}))
}

/// GenAI `blob` (inline base64 `content`), `uri` and `file` parts of an
/// image: an `image_url` block (a data URL for a blob). Other media and
/// file ids without a URL stay as given.
fn media_part(o: &Map<String, Json>) -> Option<Part> {
    let mime = str_field(o, &["mime_type", "mimeType"]);
    let is_image = str_field(o, &["modality"]).as_deref() == Some("image")
        || mime.as_deref().is_some_and(|m| m.starts_with("image/"));
    if !is_image {
        return None;
    }
    if let Some(uri) = str_field(o, &["uri", "url"]) {
        return Some(image_url(&uri));
    }
    let data = str_field(o, &["content", "data"])?;
    let mime = mime.unwrap_or_else(|| "image/png".into());
    Some(image_url(&format!("data:{mime};base64,{data}")))
}

/// A Bedrock Converse content block (AWS Strands Agents): `{"toolUse":
/// {toolUseId, name, input}}`, `{"toolResult": {toolUseId, status,
/// content:[blocks]}}`, `{"reasoningContent": {"reasoningText": {text}}}`.
/// `{"text": …}` is read as a plain text part by the caller.
fn bedrock_block(o: &Map<String, Json>) -> Option<Part> {
    if let Some(u) = o.get("toolUse").and_then(Json::as_object) {
        return Some(Part::ToolCall {
            id: str_field(u, &["toolUseId"]),
            name: str_field(u, &["name"]).unwrap_or_default(),
            arguments: arguments_value(u.get("input")),
        });
    }
    if let Some(r) = o.get("toolResult").and_then(Json::as_object) {
        return Some(Part::ToolResult {
            id: str_field(r, &["toolUseId"]),
            result: content_blocks_value(r.get("content").cloned().unwrap_or(Json::Null)),
        });
    }
    let reasoning = o.get("reasoningContent")?;
    let text = reasoning
        .pointer("/reasoningText/text")
        .and_then(Json::as_str)?;
    Some(Part::Reasoning(text.to_string()))
}

/// A tool result given as content blocks (`[{"text": "…"}]`, Strands,
/// Bedrock, MCP): text-only blocks become their text (parsed when it is
/// JSON); anything else is kept as given.
pub fn content_blocks_value(v: Json) -> Json {
    let Json::Array(blocks) = &v else {
        return match v {
            Json::String(s) => parse_json_string(&s),
            other => other,
        };
    };
    let texts: Option<Vec<&str>> = blocks
        .iter()
        .map(|b| match b.as_object() {
            Some(o) if o.len() <= 2 && o.get("type").is_none_or(|t| t == "text") => {
                o.get("text").and_then(Json::as_str)
            }
            _ => None,
        })
        .collect();
    match texts {
        Some(t) if !t.is_empty() => parse_json_string(&t.concat()),
        _ => v,
    }
}

/// System instructions: a list of parts, a list of messages, or a string.
pub fn system_parts_from_json(v: &Json) -> Vec<Part> {
    match v {
        Json::String(s) if !s.is_empty() => vec![Part::Text(s.clone())],
        Json::Array(items) => items
            .iter()
            .flat_map(|p| match p.get("role") {
                Some(_) => message_from_json(p, "system")
                    .map(|m| m.parts)
                    .unwrap_or_default(),
                None => vec![part_from_json(p)],
            })
            .collect(),
        Json::Object(_) => vec![part_from_json(v)],
        _ => Vec::new(),
    }
}

/// Groups flattened attributes `<prefix><i>.<rest>` by index, claiming them.
/// Returns, per index in ascending order, `rest → value`.
pub fn take_flattened(attrs: &mut Attrs<'_>, prefix: &str) -> Vec<BTreeMap<String, Json>> {
    let mut by_index: BTreeMap<usize, BTreeMap<String, Json>> = BTreeMap::new();
    for key in attrs.keys_with_prefix(prefix) {
        let rest = &key[prefix.len()..];
        let Some((index, field)) = rest.split_once('.') else {
            continue;
        };
        let Ok(index) = index.parse::<usize>() else {
            continue;
        };
        if let Some(v) = attrs.take(key) {
            by_index
                .entry(index)
                .or_default()
                .insert(field.to_string(), value_as_json(v));
        }
    }
    by_index.into_values().collect()
}

/// Groups `fields` (already without the message prefix) that share a
/// `<sub>.<j>.` prefix, e.g. `tool_calls.0.name`.
fn sub_list(fields: &BTreeMap<String, Json>, sub: &str) -> Vec<BTreeMap<String, Json>> {
    let mut by_index: BTreeMap<usize, BTreeMap<String, Json>> = BTreeMap::new();
    for (k, v) in fields {
        let Some(rest) = k.strip_prefix(sub) else {
            continue;
        };
        let Some((index, field)) = rest.split_once('.') else {
            continue;
        };
        if let Ok(i) = index.parse::<usize>() {
            by_index
                .entry(i)
                .or_default()
                .insert(field.to_string(), v.clone());
        }
    }
    by_index.into_values().collect()
}

fn text_of(fields: &BTreeMap<String, Json>, key: &str) -> Option<String> {
    fields.get(key).map(json_text)
}

/// OpenLLMetry's `gen_ai.prompt.{i}.*` / `gen_ai.completion.{i}.*`.
pub fn openllmetry_message(fields: &BTreeMap<String, Json>, default_role: &str) -> Message {
    let mut m = Message {
        role: text_of(fields, "role").unwrap_or_else(|| default_role.to_string()),
        finish_reason: text_of(fields, "finish_reason"),
        name: text_of(fields, "name"),
        parts: Vec::new(),
    };
    match fields.get("content") {
        // Multimodal content is a JSON array of content blocks.
        Some(Json::Array(blocks)) => m.parts.extend(blocks.iter().map(part_from_json)),
        Some(v) => m.parts.push(Part::Text(json_text(v))),
        None => {}
    }
    for call in sub_list(fields, "tool_calls.") {
        m.parts.push(Part::ToolCall {
            id: text_of(&call, "id"),
            name: text_of(&call, "name").unwrap_or_default(),
            arguments: arguments_value(call.get("arguments")),
        });
    }
    if let Some(id) = text_of(fields, "tool_call_id") {
        into_tool_result(&mut m, id);
    }
    m
}

/// OpenInference's `llm.{input,output}_messages.{i}.message.*`.
pub fn openinference_message(fields: &BTreeMap<String, Json>) -> Message {
    let f = |k: &str| text_of(fields, &format!("message.{k}"));
    let mut m = Message {
        role: f("role").unwrap_or_else(|| "user".into()),
        name: f("name"),
        finish_reason: f("finish_reason"),
        parts: Vec::new(),
    };
    if let Some(text) = f("content") {
        m.parts.push(Part::Text(text));
    }
    for c in sub_list(fields, "message.contents.") {
        let kind = text_of(&c, "message_content.type").unwrap_or_else(|| "text".into());
        match kind.as_str() {
            "text" => m
                .parts
                .extend(text_of(&c, "message_content.text").map(Part::Text)),
            "reasoning" => m
                .parts
                .extend(text_of(&c, "message_content.text").map(Part::Reasoning)),
            "image" => m
                .parts
                .extend(text_of(&c, "message_content.image.image.url").map(|url| image_url(&url))),
            _ => {
                let obj: Map<String, Json> = c.into_iter().collect();
                m.parts.push(Part::Other(Json::Object(obj)));
            }
        }
    }
    for call in sub_list(fields, "message.tool_calls.") {
        m.parts.push(Part::ToolCall {
            id: text_of(&call, "tool_call.id"),
            name: text_of(&call, "tool_call.function.name").unwrap_or_default(),
            arguments: arguments_value(call.get("tool_call.function.arguments")),
        });
    }
    if let Some(id) = f("tool_call_id") {
        into_tool_result(&mut m, id);
    }
    m
}

/// A message answering tool call `id`: its text (parsed when it is JSON)
/// becomes the call's result.
fn into_tool_result(m: &mut Message, id: String) {
    let result = match m.parts.as_slice() {
        [Part::Text(t)] => parse_json_string(t),
        _ => Json::Null,
    };
    m.parts = vec![Part::ToolResult {
        id: Some(id),
        result,
    }];
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn genai_parts_messages() {
        let v = json!([
            {"role":"user","parts":[{"type":"text","content":"Weather in Paris?"}]},
            {"role":"assistant","parts":[{"type":"tool_call","id":"call_1","name":"get_weather","arguments":{"location":"Paris"}}]},
            {"role":"tool","parts":[{"type":"tool_call_response","id":"call_1","result":"rainy"}]}
        ]);
        let m = messages_from_json(&v, "user");
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].parts, vec![Part::Text("Weather in Paris?".into())]);
        assert_eq!(
            m[1].parts,
            vec![Part::ToolCall {
                id: Some("call_1".into()),
                name: "get_weather".into(),
                arguments: json!({"location":"Paris"})
            }]
        );
        assert_eq!(
            m[2].parts,
            vec![Part::ToolResult {
                id: Some("call_1".into()),
                result: json!("rainy")
            }]
        );
    }

    #[test]
    fn openai_chat_messages() {
        let v = json!({"messages":[
            {"role":"system","content":"Be brief"},
            {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"{\"ok\":true}"},
            {"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"x"}}]}
        ]});
        let m = messages_from_json(&v, "user");
        assert_eq!(m[0], Message::text("system", "Be brief"));
        assert_eq!(
            m[1].parts,
            vec![Part::ToolCall {
                id: Some("c1".into()),
                name: "f".into(),
                arguments: json!({"a":1})
            }]
        );
        assert_eq!(
            m[2].parts,
            vec![Part::ToolResult {
                id: Some("c1".into()),
                result: json!({"ok":true})
            }]
        );
        assert_eq!(m[3].parts[0], Part::Text("hi".into()));
        assert!(matches!(m[3].parts[1], Part::Other(_)));
    }
}

//! The GenAI v1.37+ message list, `[{role, parts:[{type:"text", content}],
//! finish_reason?}]` — the shape most producers send now — read straight
//! from its JSON text into [`Message`]s, without building a `Value` tree
//! first and copying out of it (that was most of the normaliser's time on
//! chat spans).
//!
//! Only what this reads exactly as [`super::messages::messages_from_json`]
//! would is read here: messages with a `parts` array whose parts are text or
//! reasoning. Anything else (another shape, a tool call, a field of another
//! type, a duplicate key) gives `None`, and the caller reads the text the
//! general way.

use serde::{Deserialize, Deserializer};
use serde_json::Value as Json;

use super::model::{Message, Part};

#[derive(Deserialize)]
struct GenAiMessage {
    role: Option<Json>,
    name: Option<Json>,
    /// Present (even `null`) wins over `finishReason`, as in the general reader.
    #[serde(default, deserialize_with = "present")]
    finish_reason: Option<Json>,
    #[serde(rename = "finishReason")]
    finish_reason_camel: Option<Json>,
    parts: Vec<GenAiPart>,
}

#[derive(Deserialize)]
struct GenAiPart {
    #[serde(rename = "type")]
    kind: Option<String>,
    content: Option<Json>,
    text: Option<Json>,
    thinking: Option<Json>,
}

/// A field that is there, whatever its value (`null` included).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Json>, D::Error> {
    Json::deserialize(d).map(Some)
}

/// The messages in `text`, when it is a GenAI parts list of text and
/// reasoning only; `None` otherwise.
pub fn genai_messages_from_str(text: &str, default_role: &str) -> Option<Vec<Message>> {
    if !text.trim_start().starts_with('[') {
        return None;
    }
    let list: Vec<GenAiMessage> = serde_json::from_str(text).ok()?;
    list.into_iter().map(|m| message(m, default_role)).collect()
}

fn message(m: GenAiMessage, default_role: &str) -> Option<Message> {
    let finish = match m.finish_reason {
        Some(f) => Some(f),
        None => m.finish_reason_camel,
    };
    Some(Message {
        role: string(m.role).unwrap_or_else(|| default_role.to_string()),
        name: string(m.name),
        finish_reason: string(finish),
        parts: m.parts.into_iter().map(part).collect::<Option<_>>()?,
    })
}

/// A text or reasoning part; `None` for any other.
fn part(p: GenAiPart) -> Option<Part> {
    match p.kind.as_deref()? {
        "text" | "input_text" | "output_text" => {
            first_string([p.content, p.text, None]).map(Part::Text)
        }
        "reasoning" | "thinking" => {
            first_string([p.content, p.text, p.thinking]).map(Part::Reasoning)
        }
        _ => None,
    }
}

fn string(v: Option<Json>) -> Option<String> {
    match v? {
        Json::String(s) => Some(s),
        _ => None,
    }
}

/// The first of the fields that holds a string, in order.
fn first_string(fields: [Option<Json>; 3]) -> Option<String> {
    fields.into_iter().find_map(string)
}

#[cfg(test)]
mod tests {
    use super::super::messages::messages_from_json;
    use super::*;

    /// The fast reader gives what the general one gives, or declines.
    fn same_or_declined(text: &str) -> bool {
        let general = serde_json::from_str::<Json>(text)
            .map(|v| messages_from_json(&v, "user"))
            .ok();
        match genai_messages_from_str(text, "user") {
            Some(fast) => Some(fast) == general,
            None => true,
        }
    }

    #[test]
    fn text_and_reasoning_parts_are_read_as_the_general_reader_reads_them() {
        let text = r#"[{"role":"system","parts":[{"type":"text","content":"be brief"}]},
            {"role":"assistant","parts":[{"type":"reasoning","content":"hm"},{"type":"text","content":"hi","x":1}],"finish_reason":"stop"},
            {"parts":[{"type":"text","text":"no role"}],"finishReason":"length"},
            {"role":3,"name":"n","parts":[],"finish_reason":null,"finishReason":"stop"}]"#;
        let fast = genai_messages_from_str(text, "user").expect("read fast");
        assert_eq!(fast.len(), 4);
        assert_eq!(fast[1].parts[0], Part::Reasoning("hm".into()));
        assert_eq!(fast[2].role, "user");
        assert_eq!(fast[2].finish_reason.as_deref(), Some("length"));
        assert_eq!(fast[3].finish_reason, None, "a present null wins");
        assert!(same_or_declined(text));
    }

    #[test]
    fn other_shapes_and_parts_are_declined() {
        for text in [
            r#"[{"role":"user","content":"openai shape"}]"#,
            r#"[{"role":"assistant","parts":[{"type":"tool_call","id":"c","name":"f","arguments":{}}]}]"#,
            r#"[{"role":"user","parts":[{"content":"no type"}]}]"#,
            r#"[{"role":"user","parts":[{"type":"text","content":["not","text"]}]}]"#,
            r#"[{"role":"user","role":"user","parts":[]}]"#,
            r#"["not an object"]"#,
            r#"{"messages":[]}"#,
            "not json",
        ] {
            assert!(
                genai_messages_from_str(text, "user").is_none(),
                "{text} should be declined"
            );
            assert!(same_or_declined(text));
        }
    }
}

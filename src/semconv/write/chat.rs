//! Rendering the normalised view as JSON documents in the shapes UIs know:
//! LLM input `{"messages": [...], "tools": [...]}` in the OpenAI chat shape,
//! LLM output `{"choices": [{"index", "message", "finish_reason"}]}`,
//! completions as `{"prompt"}` / `{"choices":[{"index","text"}]}`, tool
//! arguments and results as objects. Used by the Opik rows and by the
//! OpenInference `input.value` / `output.value`.
//!
//! Each document is written straight to its text ([`JsonDoc`]) from views
//! borrowing the model; object keys come in sorted order, as a
//! `serde_json::Value` object writes them.

use std::borrow::Cow;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::Value as Json;

use super::doc::JsonDoc;
use crate::semconv::{GenAiSpan, Kind, Message, Part};

/// The span's input as a JSON document.
pub fn span_input(g: &GenAiSpan) -> Option<JsonDoc> {
    match g.kind {
        Kind::Llm | Kind::Embedding => llm_input(g).or_else(|| wrap(g.input.as_ref(), "input")),
        Kind::Tool => match &g.tool.arguments {
            Some(args) => wrap(Some(args), "arguments"),
            None => wrap(g.input.as_ref(), "input"),
        },
        _ if !g.input_messages.is_empty() && g.input.is_none() => {
            Some(JsonDoc::render(&LlmInput {
                messages: Some(ChatMessages::new(&g.system_instructions, &g.input_messages)),
                prompt: None,
                tools: &[],
            }))
        }
        _ => wrap(g.input.as_ref(), "input"),
    }
}

/// The span's output as a JSON document.
pub fn span_output(g: &GenAiSpan) -> Option<JsonDoc> {
    match g.kind {
        Kind::Llm | Kind::Embedding => llm_output(g).or_else(|| wrap(g.output.as_ref(), "output")),
        Kind::Tool => match &g.tool.result {
            Some(result) => wrap(Some(result), "output"),
            None => wrap(g.output.as_ref(), "output"),
        },
        _ if !g.output_messages.is_empty() && g.output.is_none() => llm_output(g),
        _ => wrap(g.output.as_ref(), "output"),
    }
}

/// Objects pass; other values are wrapped under `key` so the UI shows a field.
fn wrap(v: Option<&Json>, key: &'static str) -> Option<JsonDoc> {
    match v? {
        Json::Null => None,
        object @ Json::Object(_) => Some(JsonDoc::render(object)),
        other => Some(JsonDoc::render(&Entry(key, other))),
    }
}

/// `{key: value}`.
struct Entry<'a>(&'static str, &'a Json);

impl Serialize for Entry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.0, self.1)?;
        m.end()
    }
}

#[derive(Serialize)]
struct LlmInput<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<ChatMessages<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt: Option<Prompt<'a>>,
    #[serde(skip_serializing_if = "<[Json]>::is_empty")]
    tools: &'a [Json],
}

#[derive(Serialize)]
#[serde(untagged)]
enum Prompt<'a> {
    One(&'a str),
    Many(&'a [String]),
}

fn llm_input(g: &GenAiSpan) -> Option<JsonDoc> {
    let (messages, prompt) = if !g.input_messages.is_empty() || !g.system_instructions.is_empty() {
        let messages = ChatMessages::new(&g.system_instructions, &g.input_messages);
        (Some(messages), None)
    } else if !g.prompts.is_empty() {
        let prompt = match g.prompts.as_slice() {
            [one] => Prompt::One(one),
            many => Prompt::Many(many),
        };
        (None, Some(prompt))
    } else {
        return None;
    };
    Some(JsonDoc::render(&LlmInput {
        messages,
        prompt,
        tools: &g.tool_definitions,
    }))
}

#[derive(Serialize)]
struct Choices<T> {
    choices: Vec<T>,
}

#[derive(Serialize)]
struct MessageChoice<'a> {
    finish_reason: Option<&'a str>,
    index: usize,
    message: ChatMessage<'a>,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    finish_reason: Option<&'a str>,
    index: usize,
    text: &'a str,
}

fn llm_output(g: &GenAiSpan) -> Option<JsonDoc> {
    if !g.output_messages.is_empty() {
        let choices = g
            .output_messages
            .iter()
            .enumerate()
            .map(|(i, m)| MessageChoice {
                finish_reason: finish(g, i, m.finish_reason.as_deref()),
                index: i,
                message: ChatMessage::of(m),
            })
            .collect();
        return Some(JsonDoc::render(&Choices { choices }));
    }
    if !g.completions.is_empty() {
        let choices = g
            .completions
            .iter()
            .enumerate()
            .map(|(i, text)| TextChoice {
                finish_reason: finish(g, i, None),
                index: i,
                text,
            })
            .collect();
        return Some(JsonDoc::render(&Choices { choices }));
    }
    None
}

/// A choice's own finish reason, else the span's `i`-th.
fn finish<'a>(g: &'a GenAiSpan, i: usize, own: Option<&'a str>) -> Option<&'a str> {
    own.or_else(|| g.finish_reasons.get(i).map(String::as_str))
}

/// System instructions first, then the history, in the OpenAI chat shape
/// (a message may become several, see [`ChatMessage`]).
struct ChatMessages<'a> {
    system: &'a [Part],
    history: &'a [Message],
}

impl<'a> ChatMessages<'a> {
    fn new(system: &'a [Part], history: &'a [Message]) -> Self {
        Self { system, history }
    }
}

impl Serialize for ChatMessages<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        let system =
            (!self.system.is_empty()).then(|| ChatMessage::new("system", self.system, None));
        for m in system
            .into_iter()
            .chain(self.history.iter().map(ChatMessage::of))
        {
            if let Some(main) = m.main() {
                seq.serialize_element(&main)?;
            }
            for result in m.tool_results() {
                seq.serialize_element(&result)?;
            }
        }
        seq.end()
    }
}

/// One message of the model in the OpenAI chat shape: its main message
/// (text, content blocks, tool calls, reasoning), then one `tool` message
/// per tool result, as OpenAI requires; a message of tool results only is
/// those `tool` messages alone. Its content is its text, or a list of
/// blocks when it has parts other than text.
#[derive(Clone, Copy)]
struct ChatMessage<'a> {
    role: &'a str,
    parts: &'a [Part],
    name: Option<&'a str>,
}

impl<'a> ChatMessage<'a> {
    fn new(role: &'a str, parts: &'a [Part], name: Option<&'a str>) -> Self {
        Self { role, parts, name }
    }

    fn of(m: &'a Message) -> Self {
        Self::new(&m.role, &m.parts, m.name.as_deref())
    }

    fn has_other(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Other(_)))
    }

    /// The main message, unless the message is tool results alone.
    fn main(self) -> Option<Main<'a>> {
        let mut results = false;
        let mut rest = false;
        for p in self.parts {
            match p {
                Part::ToolResult { .. } => results = true,
                Part::Reasoning(_) => {}
                _ => rest = true,
            }
        }
        (!results || rest).then_some(Main(self))
    }

    fn tool_results(self) -> impl Iterator<Item = ToolMessage<'a>> {
        self.parts.iter().filter_map(|p| match p {
            Part::ToolResult { id, result } => Some(ToolMessage {
                content: TextOf(result),
                role: "tool",
                tool_call_id: id.as_deref(),
            }),
            _ => None,
        })
    }
}

/// A choice's message: the first of what the message renders as (the
/// main message, else its first tool message).
impl Serialize for ChatMessage<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.main(), self.tool_results().next()) {
            (Some(main), _) => main.serialize(s),
            (None, Some(result)) => result.serialize(s),
            (None, None) => s.serialize_unit(),
        }
    }
}

/// `{"content", "name"?, "reasoning_content"?, "role", "tool_calls"?}`.
struct Main<'a>(ChatMessage<'a>);

impl Serialize for Main<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let has_other = m.has_other();
        let mut map = s.serialize_map(None)?;
        if has_other {
            map.serialize_entry("content", &Blocks(m.parts))?;
        } else {
            map.serialize_entry("content", &text(m.parts))?;
        }
        if let Some(name) = m.name {
            map.serialize_entry("name", name)?;
        }
        let mut reasoning = m.parts.iter().filter_map(|p| match p {
            Part::Reasoning(r) => Some(r.as_str()),
            _ => None,
        });
        if let Some(first) = reasoning.next() {
            let mut joined = first.to_string();
            for r in reasoning {
                joined.push('\n');
                joined.push_str(r);
            }
            map.serialize_entry("reasoning_content", &joined)?;
        }
        map.serialize_entry("role", m.role)?;
        if m.parts.iter().any(|p| matches!(p, Part::ToolCall { .. })) {
            map.serialize_entry("tool_calls", &ToolCalls(m.parts))?;
        }
        map.end()
    }
}

/// The message's text parts as one string, or `None` (`null`).
fn text(parts: &[Part]) -> Option<Cow<'_, str>> {
    let mut texts = parts.iter().filter_map(|p| match p {
        Part::Text(t) => Some(t.as_str()),
        _ => None,
    });
    let first = texts.next()?;
    match texts.next() {
        None => Some(Cow::Borrowed(first)),
        Some(second) => {
            let mut all = String::from(first);
            all.push_str(second);
            texts.for_each(|t| all.push_str(t));
            Some(Cow::Owned(all))
        }
    }
}

/// Content blocks: text parts as `{"text", "type": "text"}`, other parts
/// as given.
struct Blocks<'a>(&'a [Part]);

impl Serialize for Blocks<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for p in self.0 {
            match p {
                Part::Text(t) => seq.serialize_element(&TextBlock {
                    text: t,
                    kind: "text",
                })?,
                Part::Other(v) => seq.serialize_element(v)?,
                _ => {}
            }
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct TextBlock<'a> {
    text: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// The message's tool calls in OpenAI's shape.
struct ToolCalls<'a>(&'a [Part]);

impl Serialize for ToolCalls<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for p in self.0 {
            if let Part::ToolCall {
                id,
                name,
                arguments,
            } = p
            {
                seq.serialize_element(&ToolCallOut {
                    // OpenAI sends tool arguments as a JSON string.
                    function: Function {
                        arguments: TextOf(arguments),
                        name,
                    },
                    id: id.as_deref(),
                    kind: "function",
                })?;
            }
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct ToolCallOut<'a> {
    function: Function<'a>,
    id: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Function<'a> {
    arguments: TextOf<'a>,
    name: &'a str,
}

#[derive(Serialize)]
struct ToolMessage<'a> {
    content: TextOf<'a>,
    role: &'static str,
    tool_call_id: Option<&'a str>,
}

/// A JSON value as a string: a string as it is, anything else as its JSON text.
struct TextOf<'a>(&'a Json);

impl Serialize for TextOf<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Json::String(text) => s.serialize_str(text),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_results_become_tool_messages_and_calls_stringify_arguments() {
        let g = GenAiSpan {
            kind: Kind::Llm,
            system_instructions: vec![Part::Text("Be brief".into())],
            input_messages: vec![
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
            ],
            ..Default::default()
        };
        let doc = span_input(&g).unwrap();
        assert_eq!(
            doc.as_str(),
            json!({"messages": [
                {"role": "system", "content": "Be brief"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "{\"ok\":true}"}
            ]})
            .to_string()
        );
    }

    #[test]
    fn other_parts_make_content_blocks_and_reasoning_is_joined() {
        let g = GenAiSpan {
            kind: Kind::Llm,
            output_messages: vec![Message {
                role: "assistant".into(),
                name: Some("bot".into()),
                parts: vec![
                    Part::Reasoning("think".into()),
                    Part::Text("see".into()),
                    Part::Other(json!({"type": "image_url", "image_url": {"url": "u"}})),
                    Part::Reasoning("again".into()),
                    Part::ToolResult {
                        id: None,
                        result: json!("r"),
                    },
                ],
                finish_reason: None,
            }],
            finish_reasons: vec!["stop".into()],
            ..Default::default()
        };
        assert_eq!(
            span_output(&g).unwrap().as_str(),
            json!({"choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant",
                "name": "bot",
                "content": [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": "u"}}],
                "reasoning_content": "think\nagain",
            }}]})
            .to_string()
        );
    }

    #[test]
    fn prompts_completions_and_wrapped_values() {
        let g = GenAiSpan {
            kind: Kind::Llm,
            prompts: vec!["a".into(), "b".into()],
            completions: vec!["c".into()],
            tool_definitions: vec![json!({"name": "t"})],
            ..Default::default()
        };
        assert_eq!(
            span_input(&g).unwrap().as_str(),
            r#"{"prompt":["a","b"],"tools":[{"name":"t"}]}"#
        );
        assert_eq!(
            span_output(&g).unwrap().as_str(),
            r#"{"choices":[{"finish_reason":null,"index":0,"text":"c"}]}"#
        );
        let tool = GenAiSpan {
            kind: Kind::Tool,
            input: Some(json!(3)),
            output: Some(Json::Null),
            ..Default::default()
        };
        assert_eq!(span_input(&tool).unwrap().as_str(), r#"{"input":3}"#);
        assert_eq!(span_output(&tool), None);
    }
}

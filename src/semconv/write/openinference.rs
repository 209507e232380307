//! Writing the normalised view as OpenInference attributes, for Arize and
//! Phoenix, whatever dialect the span arrived in.
//!
//! Choices where converters disagree:
//! - `llm.model_name` is the response model when known, else the request
//!   model (the OpenInference spec's rule; Phoenix's own converter writes the
//!   request model). `llm.request.model_name` / `llm.response.model_name` are
//!   added when the two differ.
//! - `llm.invocation_parameters` keeps parameter names as recorded
//!   (`max_tokens` stays `max_tokens`; OpenInference-JS renames it
//!   `max_completion_tokens`).
//! - `invoke_workflow` spans are `CHAIN` (Phoenix leaves them `UNKNOWN`).
//! - System instructions become input message 0 with role `system`.
//! - Reasoning and image parts are also listed as `message.contents`.

use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, any_value::Value};
use serde_json::Value as Json;

use super::chat;
use super::doc::JsonDoc;
use crate::semconv::{GenAiSpan, Kind, Message, Part};

/// OpenInference's span kind for the normalised kind.
pub fn span_kind(kind: Kind) -> &'static str {
    match kind {
        Kind::Llm => "LLM",
        Kind::Embedding => "EMBEDDING",
        Kind::Tool => "TOOL",
        Kind::Agent => "AGENT",
        Kind::Retrieval => "RETRIEVER",
        Kind::Guardrail => "GUARDRAIL",
        Kind::General => "CHAIN",
    }
}

/// `(llm.provider, llm.system)` in OpenInference's value sets, from Opik's provider name.
pub fn provider_and_system(provider: &str) -> (Option<&str>, Option<&str>) {
    match provider {
        "openai" => (Some("openai"), Some("openai")),
        "anthropic" => (Some("anthropic"), Some("anthropic")),
        "google_vertexai" => (Some("google"), Some("vertexai")),
        "google_ai" => (Some("google"), None),
        "azure" => (Some("azure"), Some("openai")),
        "bedrock" => (Some("aws"), None),
        "mistral" => (Some("mistralai"), Some("mistralai")),
        "cohere" => (Some("cohere"), Some("cohere")),
        "xai" => (Some("xai"), Some("xai")),
        "deepseek" => (Some("deepseek"), Some("deepseek")),
        "groq" => (Some("groq"), None),
        "perplexity" => (Some("perplexity"), None),
        "moonshot" => (Some("moonshot"), None),
        "ollama" => (Some("ollama"), None),
        "" => (None, None),
        other => (Some(other), None),
    }
}

/// Whether a general span carries anything GenAI (an operation, a model,
/// I/O, usage, an agent…): a plain HTTP or database span does not, and gets
/// no `openinference.span.kind` (Phoenix shows it as a plain span, not a
/// `CHAIN`).
fn says_anything_genai(g: &GenAiSpan) -> bool {
    g.operation.is_some()
        || g.request_model.is_some()
        || g.response_model.is_some()
        || g.provider.is_some()
        || !g.input_messages.is_empty()
        || !g.output_messages.is_empty()
        || g.input.is_some()
        || g.output.is_some()
        || !g.usage.is_empty()
        || g.agent_name.is_some()
        || g.conversation_id.is_some()
        || !g.custom_metadata.is_empty()
}

/// The cost tracebridge estimated from its price table (the span carried
/// none), for OTLP destinations in any semconv mode: `gen_ai.usage.cost`
/// and `llm.cost.*`. Nothing when the cost was reported.
pub fn estimated_cost(g: &GenAiSpan) -> Vec<(String, Value)> {
    let mut a = Attributes(Vec::new());
    if g.cost_estimated {
        a.f("gen_ai.usage.cost", g.cost.total_usd());
        a.f("llm.cost.prompt", g.cost.input);
        a.f("llm.cost.completion", g.cost.output);
        a.f("llm.cost.total", g.cost.total_usd());
    }
    a.0
}

/// Builds attributes; the caller adds only those not already on the span.
pub struct Attributes(pub Vec<(String, Value)>);

impl Attributes {
    fn s(&mut self, k: impl Into<String>, v: impl Into<String>) {
        self.0.push((k.into(), Value::StringValue(v.into())));
    }
    fn i(&mut self, k: &str, v: Option<i64>) {
        if let Some(v) = v {
            self.0.push((k.into(), Value::IntValue(v)));
        }
    }
    fn f(&mut self, k: &str, v: Option<f64>) {
        if let Some(v) = v {
            self.0.push((k.into(), Value::DoubleValue(v)));
        }
    }
    fn opt(&mut self, k: &str, v: &Option<String>) {
        if let Some(v) = v {
            self.s(k, v.clone());
        }
    }
    fn json(&mut self, k: &str, v: &Json) {
        self.s(k, v.to_string());
    }
}

/// Every OpenInference attribute the normalised view supports. With
/// `privacy`, nothing that carries content is produced.
pub fn attributes(g: &GenAiSpan, privacy: bool) -> Vec<(String, Value)> {
    let mut a = Attributes(Vec::new());
    if g.kind != Kind::General || says_anything_genai(g) {
        a.s("openinference.span.kind", span_kind(g.kind));
    }
    let model = g.response_model.clone().or_else(|| g.request_model.clone());
    if g.kind == Kind::Embedding {
        a.opt("embedding.model_name", &model);
    } else {
        a.opt("llm.model_name", &model);
    }
    if g.request_model.is_some()
        && g.response_model.is_some()
        && g.request_model != g.response_model
    {
        a.opt("llm.request.model_name", &g.request_model);
        a.opt("llm.response.model_name", &g.response_model);
    }
    if let Some(p) = g.provider.as_deref() {
        let (provider, system) = provider_and_system(p);
        if let Some(p) = provider {
            a.s("llm.provider", p);
        }
        if let Some(s) = system {
            a.s("llm.system", s);
        }
    }
    if !g.request_params.is_empty() {
        a.json(
            "llm.invocation_parameters",
            &Json::Object(g.request_params.clone()),
        );
    }
    tokens(&mut a, g);
    a.f("llm.cost.prompt", g.cost.input);
    a.f("llm.cost.completion", g.cost.output);
    a.f("llm.cost.total", g.cost.total_usd());
    if let [one] = g.finish_reasons.as_slice() {
        a.s("llm.finish_reason", one.clone());
    }
    for (i, tool) in g.tool_definitions.iter().enumerate() {
        a.json(&format!("llm.tools.{i}.tool.json_schema"), tool);
    }
    a.opt("tool.name", &g.tool.name);
    a.opt("tool.description", &g.tool.description);
    if let Some(p) = &g.tool.parameters {
        a.json("tool.parameters", p);
    }
    a.opt("tool_call.id", &g.tool.call_id);
    a.opt("session.id", &g.conversation_id);
    a.opt("user.id", &g.user_id);
    a.opt("agent.name", &g.agent_name);
    if !g.custom_metadata.is_empty() {
        a.json("metadata", &Json::Object(g.custom_metadata.clone()));
    }
    if !g.tags.is_empty() {
        let tags = g
            .tags
            .iter()
            .map(|t| AnyValue {
                value: Some(Value::StringValue(t.clone())),
            })
            .collect();
        a.0.push((
            "tag.tags".into(),
            Value::ArrayValue(ArrayValue { values: tags }),
        ));
    }
    if !privacy {
        content(&mut a, g);
    }
    a.0
}

fn tokens(a: &mut Attributes, g: &GenAiSpan) {
    let u = &g.usage;
    a.i("llm.token_count.prompt", u.input);
    a.i("llm.token_count.completion", u.output);
    if !u.is_empty() {
        a.i("llm.token_count.total", u.total_tokens());
    }
    a.i("llm.token_count.prompt_details.cache_read", u.cache_read);
    a.i(
        "llm.token_count.prompt_details.cache_write",
        u.cache_creation,
    );
    a.i("llm.token_count.completion_details.reasoning", u.reasoning);
}

fn content(a: &mut Attributes, g: &GenAiSpan) {
    let mut i = 0;
    if !g.system_instructions.is_empty() {
        let system = Message {
            role: "system".into(),
            parts: g.system_instructions.clone(),
            ..Default::default()
        };
        i = message(a, "llm.input_messages", i, &system);
    }
    for m in &g.input_messages {
        i = message(a, "llm.input_messages", i, m);
    }
    let mut o = 0;
    for m in &g.output_messages {
        o = message(a, "llm.output_messages", o, m);
    }
    for (k, p) in g.prompts.iter().enumerate() {
        a.s(format!("llm.prompts.{k}.prompt.text"), p.clone());
    }
    for (k, c) in g.completions.iter().enumerate() {
        a.s(format!("llm.choices.{k}.completion.text"), c.clone());
    }
    if let Some(args) = &g.tool.arguments {
        a.json("tool.parameters", args);
    }
    io(a, "input", chat::span_input(g));
    io(a, "output", chat::span_output(g));
}

/// `input.value` / `output.value` with their mime type (the documents
/// are JSON objects, see [`chat::span_input`]).
fn io(a: &mut Attributes, which: &str, v: Option<JsonDoc>) {
    if let Some(doc) = v {
        a.s(format!("{which}.value"), doc.as_str().to_string());
        a.s(format!("{which}.mime_type"), "application/json");
    }
}

/// The URL of an image part (GenAI `blob`/`uri`/`file` images and
/// OpenInference images are read as OpenAI `image_url` blocks).
fn image_url(p: &Part) -> Option<&str> {
    match p {
        Part::Other(v) if v["type"] == "image_url" => v["image_url"]["url"].as_str(),
        _ => None,
    }
}

/// A message with reasoning or images also lists its parts as
/// `message.contents`: reasoning as `message_content.type = "reasoning"`,
/// images as `"image"` with `message_content.image.image.url` (a data URL
/// for a blob), as Phoenix renders them.
fn contents(a: &mut Attributes, base: &str, m: &Message) {
    let listed = |p: &Part| matches!(p, Part::Reasoning(_)) || image_url(p).is_some();
    if !m.parts.iter().any(listed) {
        return;
    }
    let mut k = 0;
    for p in &m.parts {
        let c = format!("{base}.contents.{k}.message_content");
        match (p, image_url(p)) {
            (Part::Reasoning(t), _) | (Part::Text(t), _) => {
                let kind = if matches!(p, Part::Reasoning(_)) {
                    "reasoning"
                } else {
                    "text"
                };
                a.s(format!("{c}.type"), kind);
                a.s(format!("{c}.text"), t.clone());
            }
            (_, Some(url)) => {
                a.s(format!("{c}.type"), "image");
                a.s(format!("{c}.image.image.url"), url);
            }
            _ => continue,
        }
        k += 1;
    }
}

/// Writes one message at `index` (tool results become their own `tool`
/// messages); returns the next free index.
fn message(a: &mut Attributes, prefix: &str, mut index: usize, m: &Message) -> usize {
    let mut text = Vec::new();
    let mut calls = Vec::new();
    for p in &m.parts {
        match p {
            Part::Text(t) => text.push(t.as_str()),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => calls.push((id, name, arguments)),
            Part::ToolResult { id, result } => {
                let base = format!("{prefix}.{index}.message");
                a.s(format!("{base}.role"), "tool");
                if let Some(id) = id {
                    a.s(format!("{base}.tool_call_id"), id.clone());
                }
                a.s(
                    format!("{base}.content"),
                    match result {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                );
                index += 1;
            }
            Part::Reasoning(_) | Part::Other(_) => {}
        }
    }
    let listed = m
        .parts
        .iter()
        .any(|p| matches!(p, Part::Reasoning(_)) || image_url(p).is_some());
    if text.is_empty()
        && calls.is_empty()
        && !listed
        && m.parts.iter().all(|p| matches!(p, Part::ToolResult { .. }))
        && !m.parts.is_empty()
    {
        return index;
    }
    let base = format!("{prefix}.{index}.message");
    a.s(format!("{base}.role"), m.role.clone());
    if !text.is_empty() {
        a.s(format!("{base}.content"), text.concat());
    }
    if let Some(name) = &m.name {
        a.s(format!("{base}.name"), name.clone());
    }
    for (j, (id, name, arguments)) in calls.into_iter().enumerate() {
        let call = format!("{base}.tool_calls.{j}.tool_call");
        if let Some(id) = id {
            a.s(format!("{call}.id"), id.clone());
        }
        a.s(format!("{call}.function.name"), name.clone());
        a.s(
            format!("{call}.function.arguments"),
            match arguments {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            },
        );
    }
    contents(a, &base, m);
    if let Some(reason) = &m.finish_reason {
        a.s(format!("{base}.finish_reason"), reason.clone());
    }
    index + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(a: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
        a.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    #[test]
    fn reasoning_parts_are_reasoning_contents_and_plain_spans_get_no_kind() {
        let g = GenAiSpan {
            kind: Kind::Llm,
            output_messages: vec![Message {
                role: "assistant".into(),
                parts: vec![Part::Reasoning("think".into()), Part::Text("answer".into())],
                ..Default::default()
            }],
            ..Default::default()
        };
        let a = attributes(&g, false);
        let base = "llm.output_messages.0.message.contents";
        assert_eq!(
            get(&a, &format!("{base}.0.message_content.type")),
            Some(&Value::StringValue("reasoning".into()))
        );
        assert_eq!(
            get(&a, &format!("{base}.1.message_content.text")),
            Some(&Value::StringValue("answer".into()))
        );
        let plain = attributes(&GenAiSpan::default(), false);
        assert!(get(&plain, "openinference.span.kind").is_none());
    }

    #[test]
    fn image_parts_are_image_contents_and_not_under_privacy() {
        let image = serde_json::json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}});
        let g = GenAiSpan {
            kind: Kind::Llm,
            input_messages: vec![Message {
                role: "user".into(),
                parts: vec![Part::Text("what is this?".into()), Part::Other(image)],
                ..Default::default()
            }],
            ..Default::default()
        };
        let a = attributes(&g, false);
        let base = "llm.input_messages.0.message";
        let s = |v: &str| Some(Value::StringValue(v.into()));
        assert_eq!(
            get(&a, &format!("{base}.content")).cloned(),
            s("what is this?")
        );
        let c = format!("{base}.contents");
        assert_eq!(
            get(&a, &format!("{c}.0.message_content.type")).cloned(),
            s("text")
        );
        assert_eq!(
            get(&a, &format!("{c}.1.message_content.type")).cloned(),
            s("image")
        );
        assert_eq!(
            get(&a, &format!("{c}.1.message_content.image.image.url")).cloned(),
            s("data:image/png;base64,AAAA")
        );
        let private = attributes(&g, true);
        assert!(private.iter().all(|(k, _)| !k.contains("message_content")));
    }
}

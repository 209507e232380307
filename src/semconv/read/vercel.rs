//! Vercel AI SDK (`ai.*`, instrumentation scope `ai`).

use serde_json::{Value as Json, json};

use super::attrs::parse_json_string;
use super::messages::messages_from_json;
use super::model::{Message, Part};
use super::{GenAiSpan, Reader, fill, openai_tool_definition};

/// AI SDK 7's runtime context, included in telemetry (`includeRuntimeContext`).
const CONTEXT: &str = "ai.settings.context.";

pub(super) fn read(r: &mut Reader<'_>) {
    let a = &mut r.attrs;
    if !a.has_prefix("ai.") {
        return;
    }
    let o = &mut r.out;
    fill(
        &mut r.hints.vercel_operation,
        a.take_string("ai.operationId"),
    );
    fill(&mut o.request_model, a.take_string("ai.model.id"));
    fill(&mut o.provider, a.take_string("ai.model.provider"));
    fill(&mut o.response_model, a.take_string("ai.response.model"));
    fill(&mut o.response_id, a.take_string("ai.response.id"));

    a.content(|a| read_prompt(a, o));
    if let Some(tools) = a.take_string_list("ai.prompt.tools") {
        if o.tool_definitions.is_empty() {
            o.tool_definitions = tools
                .iter()
                .map(|t| openai_tool_definition(&parse_json_string(t)))
                .collect();
        }
    }
    if let Some(choice) = a.take_json("ai.prompt.toolChoice") {
        o.request_params.entry("tool_choice").or_insert(choice);
    }

    // Output: text and tool calls make an assistant message.
    let (text, calls) = a.content(|a| {
        let text = a
            .take_string("ai.response.text")
            .or_else(|| a.take_string("ai.result.text"));
        let calls = a
            .take_structured("ai.response.toolCalls")
            .or_else(|| a.take_structured("ai.result.toolCalls"));
        (text, calls)
    });
    let finish = a
        .take_string("ai.response.finishReason")
        .or_else(|| a.take_string("ai.finishReason"));
    if text.is_some() || calls.is_some() {
        let mut m = Message {
            role: "assistant".into(),
            finish_reason: finish.clone(),
            ..Default::default()
        };
        m.parts.extend(text.map(Part::Text));
        if let Some(Json::Array(calls)) = calls {
            m.parts.extend(calls.iter().map(|c| {
                Part::ToolCall {
                    id: c
                        .get("toolCallId")
                        .and_then(Json::as_str)
                        .map(str::to_string),
                    name: c
                        .get("toolName")
                        .and_then(Json::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    arguments: match c.get("args").or_else(|| c.get("input")) {
                        Some(Json::String(s)) => parse_json_string(s),
                        Some(v) => v.clone(),
                        None => json!({}),
                    },
                }
            }));
        }
        if o.output_messages.is_empty() {
            o.output_messages = vec![m];
        }
    }
    if let Some(reason) = finish {
        if o.finish_reasons.is_empty() {
            o.finish_reasons = vec![reason];
        }
    }
    let object = a.content(|a| {
        a.take_json("ai.response.object")
            .or_else(|| a.take_json("ai.result.object"))
    });
    fill(&mut o.output, object);

    // Tool spans.
    if a.has("ai.toolCall.name") {
        r.hints.tool_attributes = true;
    }
    fill(&mut o.tool.name, a.take_string("ai.toolCall.name"));
    fill(&mut o.tool.call_id, a.take_string("ai.toolCall.id"));
    a.content(|a| {
        fill(&mut o.tool.arguments, a.take_json("ai.toolCall.args"));
        fill(&mut o.tool.result, a.take_json("ai.toolCall.result"));
    });

    // Usage (names changed in AI SDK 5: input/output instead of prompt/completion).
    let u = &mut o.usage;
    fill(&mut u.input, a.take_i64("ai.usage.inputTokens"));
    fill(&mut u.input, a.take_i64("ai.usage.promptTokens"));
    fill(&mut u.output, a.take_i64("ai.usage.outputTokens"));
    fill(&mut u.output, a.take_i64("ai.usage.completionTokens"));
    fill(&mut u.total, a.take_i64("ai.usage.totalTokens"));
    fill(&mut u.total, a.take_i64("ai.usage.tokens"));
    fill(&mut u.cache_read, a.take_i64("ai.usage.cachedInputTokens"));
    fill(&mut u.reasoning, a.take_i64("ai.usage.reasoningTokens"));
    if let Some(meta) = a.take_json("ai.response.providerMetadata") {
        read_provider_usage(&meta, u);
        o.custom_metadata.entry("provider_metadata").or_insert(meta);
    }

    for key in a.keys_with_prefix("ai.settings.") {
        if key.starts_with(CONTEXT) {
            continue;
        }
        if let Some(v) = a.take_json(key) {
            o.request_params
                .entry(key["ai.settings.".len()..].to_string())
                .or_insert(v);
        }
    }
    // The flow's name: the trace's name.
    fill(&mut o.trace_name, a.take_string("ai.telemetry.functionId"));
    // AI SDK 6 metadata, and AI SDK 7's runtime context (`ai.settings.context.*`).
    let metadata = a.keys_with_prefix("ai.telemetry.metadata.");
    let context = a.keys_with_prefix(CONTEXT);
    for key in metadata.into_iter().chain(context) {
        let name = key
            .strip_prefix("ai.telemetry.metadata.")
            .or_else(|| key.strip_prefix(CONTEXT))
            .unwrap_or(key);
        match name {
            "userId" => fill(&mut o.user_id, a.take_string(key)),
            "sessionId" | "threadId" => fill(&mut o.conversation_id, a.take_string(key)),
            "tags" => {
                if let Some(tags) = a.take_string_list(key) {
                    o.tags.extend(tags);
                }
            }
            _ => {
                if let Some(v) = a.take_json(key) {
                    o.custom_metadata.entry(name.to_string()).or_insert(v);
                }
            }
        }
    }
}

/// Cache and reasoning tokens hidden in provider metadata.
fn read_provider_usage(meta: &Json, u: &mut super::Usage) {
    let n = |v: Option<&Json>| v.and_then(Json::as_i64);
    if let Some(openai) = meta.get("openai") {
        fill(&mut u.cache_read, n(openai.get("cachedPromptTokens")));
        fill(&mut u.reasoning, n(openai.get("reasoningTokens")));
    }
    if let Some(anthropic) = meta.get("anthropic") {
        let usage = anthropic.get("usage").unwrap_or(anthropic);
        fill(
            &mut u.cache_read,
            n(usage.get("cache_read_input_tokens")).or(n(anthropic.get("cacheReadInputTokens"))),
        );
        fill(
            &mut u.cache_creation,
            n(usage.get("cache_creation_input_tokens"))
                .or(n(anthropic.get("cacheCreationInputTokens"))),
        );
    }
    if let Some(bedrock) = meta.get("bedrock").and_then(|b| b.get("usage")) {
        fill(&mut u.cache_read, n(bedrock.get("cacheReadInputTokens")));
        fill(
            &mut u.cache_creation,
            n(bedrock.get("cacheWriteInputTokens")),
        );
    }
}

/// `ai.prompt.messages` and `ai.prompt`: content.
fn read_prompt(a: &mut super::attrs::Attrs<'_>, o: &mut GenAiSpan) {
    if let Some(messages) = a.take_structured("ai.prompt.messages") {
        let mut list = messages_from_json(&messages, "user");
        // The system prompt is a message here; keep it with the history.
        if o.input_messages.is_empty() {
            o.input_messages = std::mem::take(&mut list);
        }
    }
    if let Some(prompt) = a.take_json("ai.prompt") {
        // {system?, prompt?, messages?} on the outer ai.generateText span.
        let from_messages = prompt
            .get("messages")
            .map(|m| messages_from_json(m, "user"));
        match from_messages {
            Some(msgs) if !msgs.is_empty() && o.input_messages.is_empty() => {
                if let Some(system) = prompt.get("system").and_then(Json::as_str) {
                    o.input_messages.push(Message::text("system", system));
                }
                o.input_messages.extend(msgs);
            }
            _ => fill(&mut o.input, Some(prompt)),
        }
    }
}

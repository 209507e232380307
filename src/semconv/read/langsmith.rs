//! LangSmith's OTel export (`LANGSMITH_OTEL_ENABLED`): `langsmith.trace.name`
//! (the run's name; the trace's on the root), `langsmith.span.kind`,
//! `langsmith.trace.session_id` / `session_name`, `langsmith.metadata.*`
//! (thread and user ids, `ls_provider`, `ls_model_name`, `usage_metadata`,
//! the rest custom metadata), `langsmith.span.tags` (comma-joined), and the
//! run's inputs and outputs in `gen_ai.prompt` / `gen_ai.completion`, with
//! LangChain-serialised messages (`{"lc":1,"type":"constructor",…}`).

use serde_json::{Map, Value as Json};

use super::attrs::Attrs;
use super::messages::langchain_messages;
use super::model::{GenAiSpan, Message};
use super::opik_attributes::split_comma_tags;
use super::{Reader, fill};

const METADATA: &str = "langsmith.metadata.";

pub(super) fn read(r: &mut Reader<'_>) {
    let a = &mut r.attrs;
    if !a.has("langsmith.span.kind") {
        return;
    }
    let o = &mut r.out;
    let kind = a.take_string("langsmith.span.kind");
    let name = a.take_string("langsmith.trace.name");
    if r.root {
        fill(&mut o.trace_name, name);
    }
    fill(
        &mut o.conversation_id,
        a.take_string("langsmith.trace.session_id"),
    );
    if let Some(project) = a.take_string("langsmith.trace.session_name") {
        o.custom_metadata
            .entry("langsmith_project")
            .or_insert(Json::String(project));
    }
    if let Some(tags) = a.take_string_list("langsmith.span.tags") {
        o.tags.extend(tags.into_iter().flat_map(split_comma_tags));
    }
    read_metadata(a, o);
    let kind = kind.as_deref().unwrap_or("");
    a.content(|a| read_io(a, o, kind));
}

fn read_metadata(a: &mut Attrs<'_>, o: &mut GenAiSpan) {
    for key in a.keys_with_prefix(METADATA) {
        let name = &key[METADATA.len()..];
        match name {
            "thread_id" | "session_id" | "conversation_id" => {
                fill(&mut o.conversation_id, a.take_string(key))
            }
            "user_id" => fill(&mut o.user_id, a.take_string(key)),
            "ls_provider" => fill(&mut o.provider, a.take_string(key)),
            "ls_model_name" => fill(&mut o.request_model, a.take_string(key)),
            "usage_metadata" => {
                if let Some(Json::Object(u)) = a.take_json(key) {
                    read_usage(&u, o);
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

/// LangChain's `usage_metadata` (input includes cache reads).
fn read_usage(u: &Map<String, Json>, o: &mut GenAiSpan) {
    let n = |v: Option<&Json>| v.and_then(Json::as_i64);
    fill(&mut o.usage.input, n(u.get("input_tokens")));
    fill(&mut o.usage.output, n(u.get("output_tokens")));
    fill(&mut o.usage.total, n(u.get("total_tokens")));
    let details = u.get("input_token_details");
    fill(
        &mut o.usage.cache_read,
        n(details.and_then(|d| d.get("cache_read"))),
    );
    fill(
        &mut o.usage.cache_creation,
        n(details.and_then(|d| d.get("cache_creation"))),
    );
    fill(
        &mut o.usage.reasoning,
        n(u.get("output_token_details")
            .and_then(|d| d.get("reasoning"))),
    );
}

/// The run's inputs and outputs: messages and generations for a chat
/// model, arguments and the ToolMessage's content for a tool, the rest as
/// generic I/O.
fn read_io(a: &mut Attrs<'_>, o: &mut GenAiSpan, kind: &str) {
    let inputs = a.take_json("gen_ai.prompt");
    let outputs = a.take_json("gen_ai.completion");
    match kind {
        "llm" => {
            let messages = inputs
                .as_ref()
                .and_then(|i| i.get("messages"))
                .map(langchain_messages)
                .unwrap_or_default();
            if o.input_messages.is_empty() {
                o.input_messages = messages;
            }
            if o.output_messages.is_empty() {
                o.output_messages = outputs.as_ref().map(generations).unwrap_or_default();
            }
        }
        "tool" => {
            fill(&mut o.tool.arguments, inputs);
            let result = outputs.map(|out| {
                let inner = out.get("output").cloned().unwrap_or(out);
                match inner.get("content") {
                    Some(c) if inner.get("type").and_then(Json::as_str) == Some("tool") => {
                        c.clone()
                    }
                    _ => inner,
                }
            });
            fill(&mut o.tool.result, result);
        }
        _ => {
            fill(&mut o.input, inputs);
            fill(&mut o.output, outputs);
        }
    }
}

/// `{"generations": [[{text, generation_info:{finish_reason}, message}]]}`.
fn generations(v: &Json) -> Vec<Message> {
    let Some(Json::Array(outer)) = v.get("generations") else {
        return Vec::new();
    };
    outer
        .iter()
        .flat_map(|g| g.as_array().cloned().unwrap_or_default())
        .filter_map(|g| {
            let mut m = g
                .get("message")
                .map(|m| langchain_messages(&Json::Array(vec![m.clone()])))
                .and_then(|ms| ms.into_iter().next())
                .or_else(|| {
                    let text = g.get("text")?.as_str()?;
                    Some(Message::text("assistant", text))
                })?;
            m.finish_reason = g
                .pointer("/generation_info/finish_reason")
                .and_then(Json::as_str)
                .map(str::to_string);
            Some(m)
        })
        .collect()
}

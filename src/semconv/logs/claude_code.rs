//! Claude Code's log events (scope `com.anthropic.claude_code.events`).
//!
//! With its span beta (`CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1`) the records
//! carry trace and span ids: the API events (`api_request`, `api_error`,
//! `assistant_response`, `api_response_body`) join the `llm_request` span
//! whose `gen_ai.response.id` is their `request_id`, the others the span
//! they name.
//!
//! Without it (the default) there are no spans, and the events are made
//! into the spans the beta would have sent, with ids derived from
//! `prompt.id` (so a retried or replayed export writes the same rows): an
//! `interaction` per `user_prompt` (one Opik trace per prompt, thread =
//! `session.id`), an `llm_request` per `api_request` / `api_error` (model,
//! usage, timing from the record's time and `duration_ms`; the record
//! itself joins it for the cost) and a `tool` per `tool_result`.
//! `assistant_response` and `api_response_body` join their `llm_request` by
//! `request_id`.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{Span, Status, status::StatusCode};
use sha2::{Digest, Sha256};

use super::{GenAiRecord, JoinKey, Reading, as_event, span_key, timestamp};
use crate::pdata::key_value;

/// The instrumentation scope of Claude Code's log events.
pub const EVENTS_SCOPE: &str = "com.anthropic.claude_code.events";
/// The scope of its spans (the synthesised ones say the same).
pub const TRACING_SCOPE: &str = "com.anthropic.claude_code.tracing";

/// Events that belong to one API call (`request_id`).
const API_EVENTS: &[&str] = &[
    "api_request",
    "api_error",
    "assistant_response",
    "api_response_body",
];

pub(super) fn read(record: &LogRecord) -> Reading {
    let Some(name) = str_attr(record, "event.name") else {
        return Reading::Unused;
    };
    let event = || as_event(record, format!("claude_code.{name}"));
    let request_id = str_attr(record, "request_id");
    if let Some(JoinKey::Span { trace, span }) = span_key(record) {
        let key = match request_id {
            Some(id) if API_EVENTS.contains(&name) => JoinKey::Response {
                trace,
                id: id.to_string(),
            },
            _ => JoinKey::Span { trace, span },
        };
        return Reading::Join(GenAiRecord {
            key,
            event: event(),
        });
    }
    let Some(prompt) = str_attr(record, "prompt.id") else {
        return Reading::Unused;
    };
    let trace = trace_id(prompt);
    let span = match name {
        "user_prompt" => interaction(record, prompt),
        "api_request" | "api_error" => llm_request(record, prompt, name == "api_error"),
        "tool_result" => tool(record, prompt),
        "assistant_response" | "api_response_body" => {
            return match request_id {
                Some(id) => Reading::Join(GenAiRecord {
                    key: JoinKey::Response {
                        trace,
                        id: id.to_string(),
                    },
                    event: event(),
                }),
                None => Reading::Unused,
            };
        }
        _ => return Reading::Unused,
    };
    let key = JoinKey::Span {
        trace,
        span: <[u8; 8]>::try_from(span.span_id.as_slice()).unwrap_or_default(),
    };
    Reading::Synthesise {
        span: Box::new(span),
        record: GenAiRecord {
            key,
            event: event(),
        },
    }
}

/// The trace of a prompt: derived from `prompt.id`, the same on every export.
fn trace_id(prompt: &str) -> [u8; 16] {
    let digest = Sha256::digest(format!("claude-code/prompt/{prompt}").as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

/// A span of a prompt, derived from the prompt and what it stands for.
fn span_id(prompt: &str, what: &str) -> Vec<u8> {
    let digest = Sha256::digest(format!("claude-code/span/{prompt}/{what}").as_bytes());
    digest[..8].to_vec()
}

/// What every synthesised span carries: ids, the session, the span type.
fn base(record: &LogRecord, prompt: &str, what: &str, span_type: &str) -> Span {
    let end = timestamp(record);
    let start =
        end.saturating_sub(int_attr(record, "duration_ms").unwrap_or(0).max(0) as u64 * 1_000_000);
    let mut attributes = vec![
        string("span.type", span_type),
        string("gen_ai.provider.name", "anthropic"),
    ];
    for key in ["session.id", "user.id"] {
        if let Some(v) = str_attr(record, key) {
            attributes.push(string(key, v));
        }
    }
    Span {
        trace_id: trace_id(prompt).to_vec(),
        span_id: span_id(prompt, what),
        parent_span_id: if span_type == "interaction" {
            Vec::new()
        } else {
            span_id(prompt, "interaction")
        },
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        ..Default::default()
    }
}

fn interaction(record: &LogRecord, prompt: &str) -> Span {
    let mut s = base(record, prompt, "interaction", "interaction");
    // Never the prompt's words: under privacy mode the name stays.
    s.name = "claude-code".into();
    s.attributes
        .push(string("gen_ai.operation.name", "invoke_agent"));
    if let Some(session) = str_attr(record, "session.id") {
        s.attributes.push(string("gen_ai.conversation.id", session));
    }
    if let Some(text) = str_attr(record, "prompt") {
        s.attributes.push(string("user_prompt", text));
    }
    s
}

fn llm_request(record: &LogRecord, prompt: &str, failed: bool) -> Span {
    let request = str_attr(record, "request_id");
    let what = match request {
        Some(id) => format!("request/{id}"),
        None => format!("event/{}", int_attr(record, "event.sequence").unwrap_or(0)),
    };
    let mut s = base(record, prompt, &what, "llm_request");
    s.name = "claude_code.llm_request".into();
    s.kind = SpanKind::Client as i32;
    let a = &mut s.attributes;
    a.push(string("gen_ai.operation.name", "chat"));
    if let Some(model) = str_attr(record, "model") {
        a.push(string("gen_ai.request.model", model));
        a.push(string("gen_ai.response.model", model));
    }
    if let Some(id) = request {
        a.push(string("gen_ai.response.id", id));
    }
    let tokens = |k| int_attr(record, k).unwrap_or(0);
    let (cache_read, cache_write) = (tokens("cache_read_tokens"), tokens("cache_creation_tokens"));
    if int_attr(record, "input_tokens").is_some() {
        // Input includes the cached tokens (as the beta's spans say).
        let input = tokens("input_tokens") + cache_read + cache_write;
        a.push(int("gen_ai.usage.input_tokens", input));
        a.push(int("gen_ai.usage.output_tokens", tokens("output_tokens")));
        a.push(int("gen_ai.usage.cache_read.input_tokens", cache_read));
        a.push(int("gen_ai.usage.cache_write.input_tokens", cache_write));
    }
    if let Some(ttft) = int_attr(record, "ttft_ms") {
        a.push(int("ttft_ms", ttft));
    }
    if failed {
        s.status = Some(Status {
            code: StatusCode::Error as i32,
            message: "api_error".into(),
        });
    }
    s
}

fn tool(record: &LogRecord, prompt: &str) -> Span {
    let call = str_attr(record, "tool_use_id");
    let what = match call {
        Some(id) => format!("tool/{id}"),
        None => format!("event/{}", int_attr(record, "event.sequence").unwrap_or(0)),
    };
    let mut s = base(record, prompt, &what, "tool");
    s.name = "claude_code.tool".into();
    s.attributes
        .push(string("gen_ai.operation.name", "execute_tool"));
    if let Some(name) = str_attr(record, "tool_name") {
        s.attributes.push(string("tool_name", name));
        s.attributes.push(string("gen_ai.tool.name", name));
    }
    if let Some(id) = call {
        s.attributes.push(string("gen_ai.tool.call.id", id));
    }
    if str_attr(record, "success") == Some("false") {
        s.status = Some(Status {
            code: StatusCode::Error as i32,
            message: "tool_result: success = false".into(),
        });
    }
    s
}

fn attr<'a>(record: &'a LogRecord, key: &str) -> Option<&'a Value> {
    record
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn str_attr<'a>(record: &'a LogRecord, key: &str) -> Option<&'a str> {
    match attr(record, key)? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

/// An integer, sent as an int, a double or a decimal string.
fn int_attr(record: &LogRecord, key: &str) -> Option<i64> {
    match attr(record, key)? {
        Value::IntValue(i) => Some(*i),
        Value::DoubleValue(d) => Some(*d as i64),
        Value::StringValue(s) => s.parse().ok(),
        _ => None,
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    key_value(key, Value::StringValue(value.to_string()))
}

fn int(key: &str, value: i64) -> KeyValue {
    key_value(key, Value::IntValue(value))
}

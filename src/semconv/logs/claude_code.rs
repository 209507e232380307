//! Claude Code's log events (scope `com.anthropic.claude_code.events`).
//!
//! With its span beta (`CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1`) the records
//! carry trace and span ids: the API events (`api_request`, `api_error`,
//! `assistant_response`, `api_response_body`) join the `llm_request` span
//! whose `gen_ai.response.id` is their `request_id`; the others repeat what
//! the spans say and are not used.
//!
//! Without it (the default) there are no spans, and the events are made
//! into the spans the beta would have sent, with ids derived from
//! `prompt.id` (so a retried or replayed export writes the same rows): an
//! `interaction` per `user_prompt` (one Opik trace per prompt, thread =
//! `session.id`), an `llm_request` per `api_request` / `api_error` (model,
//! usage, timing from the record's time and `duration_ms`; the record
//! itself joins it for the cost) and a `tool` per `tool_result`.
//! `assistant_response` and `api_response_body` join their `llm_request` by
//! `request_id`. The tool's output is in no event of its own: the tool
//! results of the last user message of the next `api_request_body`
//! (`OTEL_LOG_RAW_API_BODIES=1`) join their tool spans by `tool_use_id`.
//!
//! The request body itself (the call's input: system prompt and messages)
//! names no request: it is held under its `request_body_id`
//! ([`JoinKey::RequestBody`]), and joins the `llm_request` span together
//! with the `api_response_body` that names both ids (with or without spans).

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
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
    let body_key = |trace| {
        str_attr(record, "request_body_id").map(|id| JoinKey::RequestBody {
            trace,
            id: id.to_string(),
        })
    };
    if let Some(JoinKey::Span { trace, .. }) = span_key(record) {
        if name == "api_request_body" {
            return match body_key(trace) {
                Some(key) => Reading::Join(GenAiRecord {
                    key,
                    event: event(),
                    link: None,
                }),
                None => Reading::Unused,
            };
        }
        // With spans, only the API events add to them; the others name the
        // interaction, which already carries the prompt (and the tool spans
        // their input and output), and which ends last: held for it, they
        // would expire in any session longer than the join window.
        return match request_id {
            Some(id) if API_EVENTS.contains(&name) => Reading::Join(GenAiRecord {
                key: JoinKey::Response {
                    trace,
                    id: id.to_string(),
                },
                event: event(),
                link: body_key(trace),
            }),
            _ => Reading::Unused,
        };
    }
    let Some(prompt) = str_attr(record, "prompt.id") else {
        return Reading::Unused;
    };
    let trace = trace_id(prompt);
    let span = match name {
        "user_prompt" => interaction(record, prompt),
        "api_request" | "api_error" => llm_request(record, prompt, name == "api_error"),
        "tool_result" => tool(record, prompt),
        "api_request_body" => {
            let mut records = tool_outputs(record, prompt, trace);
            records.extend(body_key(trace).map(|key| GenAiRecord {
                key,
                event: event(),
                link: None,
            }));
            return match records.is_empty() {
                true => Reading::Unused,
                false => Reading::JoinEach(records),
            };
        }
        "assistant_response" | "api_response_body" => {
            return match request_id {
                Some(id) => Reading::Join(GenAiRecord {
                    key: JoinKey::Response {
                        trace,
                        id: id.to_string(),
                    },
                    event: event(),
                    link: body_key(trace),
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
            link: None,
        },
    }
}

/// The `tool_result` blocks of the request's last user message, each for
/// the tool span of its `tool_use_id` (`claude_code.tool_output`, `output`).
fn tool_outputs(record: &LogRecord, prompt: &str, trace: [u8; 16]) -> Vec<GenAiRecord> {
    let Some(body) =
        str_attr(record, "body").and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
    else {
        return Vec::new();
    };
    let last_user = body
        .get("messages")
        .and_then(serde_json::Value::as_array)
        .and_then(|m| {
            m.iter()
                .rev()
                .find(|m| m.get("role").and_then(|r| r.as_str()) == Some("user"))
        });
    let blocks = last_user
        .and_then(|m| m.get("content"))
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let records: Vec<GenAiRecord> = blocks
        .iter()
        .filter(|b| b.get("type").and_then(|t| t.as_str()) == Some("tool_result"))
        .filter_map(|b| {
            let id = b.get("tool_use_id")?.as_str()?;
            let output = match b.get("content")? {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some(GenAiRecord {
                key: JoinKey::Span {
                    trace,
                    span: span_bytes(prompt, &format!("tool/{id}")),
                },
                event: Event {
                    time_unix_nano: timestamp(record),
                    name: "claude_code.tool_output".into(),
                    attributes: vec![string("output", &output)],
                    dropped_attributes_count: 0,
                },
                link: None,
            })
        })
        .collect();
    records
}

fn span_bytes(prompt: &str, what: &str) -> [u8; 8] {
    <[u8; 8]>::try_from(span_id(prompt, what).as_slice()).unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, extra: &[(&str, Value)]) -> LogRecord {
        let mut attributes = vec![
            string("event.name", name),
            string("prompt.id", "p-1"),
            string("session.id", "s-1"),
        ];
        attributes.extend(extra.iter().map(|(k, v)| key_value(*k, v.clone())));
        LogRecord {
            time_unix_nano: 2_000_000_000,
            attributes,
            ..Default::default()
        }
    }

    fn synthesised(r: Reading) -> (Span, GenAiRecord) {
        match r {
            Reading::Synthesise { span, record } => (*span, record),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_api_request_becomes_the_same_llm_span_every_time_under_its_prompt() {
        let api = event(
            "api_request",
            &[
                ("request_id", Value::StringValue("req_1".into())),
                ("duration_ms", Value::IntValue(500)),
                ("input_tokens", Value::IntValue(10)),
                ("cache_read_tokens", Value::IntValue(5)),
            ],
        );
        let (a, rec) = synthesised(read(&api));
        let (b, _) = synthesised(read(&api));
        assert_eq!((&a.trace_id, &a.span_id), (&b.trace_id, &b.span_id));
        let (root, _) = synthesised(read(&event("user_prompt", &[])));
        assert_eq!(a.trace_id, root.trace_id, "one trace per prompt");
        assert_eq!(a.parent_span_id, root.span_id);
        assert_eq!(a.start_time_unix_nano, 1_500_000_000);
        assert_eq!(rec.event.name, "claude_code.api_request");
        let input = a
            .attributes
            .iter()
            .find(|kv| kv.key == "gen_ai.usage.input_tokens");
        assert_eq!(
            input.and_then(|kv| kv.value.clone()).and_then(|v| v.value),
            Some(Value::IntValue(15))
        );
    }

    #[test]
    fn the_request_body_waits_under_its_id_and_the_response_body_links_it() {
        let text = |v: &str| Value::StringValue(v.into());
        let request = event(
            "api_request_body",
            &[
                ("request_body_id", text("b-1")),
                (
                    "body",
                    text(r#"{"messages":[{"role":"user","content":"hi"}]}"#),
                ),
            ],
        );
        let body = JoinKey::RequestBody {
            trace: trace_id("p-1"),
            id: "b-1".into(),
        };
        let Reading::JoinEach(records) = read(&request) else {
            panic!("not joined")
        };
        assert_eq!(records.len(), 1, "no tool results in it");
        assert_eq!(records[0].key, body);
        assert_eq!(records[0].event.name, "claude_code.api_request_body");
        let response = event(
            "api_response_body",
            &[
                ("request_id", text("req_1")),
                ("request_body_id", text("b-1")),
            ],
        );
        let Reading::Join(r) = read(&response) else {
            panic!("not joined")
        };
        assert_eq!(r.link, Some(body));
        // With the span beta the same holds, in the record's trace.
        let mut with_ids = request.clone();
        with_ids.trace_id = vec![3; 16];
        with_ids.span_id = vec![4; 8];
        let Reading::Join(r) = read(&with_ids) else {
            panic!("not joined")
        };
        assert_eq!(
            r.key,
            JoinKey::RequestBody {
                trace: [3; 16],
                id: "b-1".into()
            }
        );
    }

    #[test]
    fn the_answer_joins_its_request_and_other_events_are_unused() {
        let answer = event(
            "assistant_response",
            &[("request_id", Value::StringValue("req_1".into()))],
        );
        let Reading::Join(r) = read(&answer) else {
            panic!("not joined")
        };
        assert_eq!(
            r.key,
            JoinKey::Response {
                trace: trace_id("p-1"),
                id: "req_1".into()
            }
        );
        assert!(matches!(
            read(&event("plugin_loaded", &[])),
            Reading::Unused
        ));
    }
}

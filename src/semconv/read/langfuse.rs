//! The Langfuse SDK's attributes (`langfuse.*`, also set by Strands and
//! LiveKit): observation type, input/output, model and parameters,
//! `usage_details`, `cost_details`, `completion_start_time`, prompt; trace
//! name, input/output, tags, metadata, session, user, environment.

use serde_json::{Map, Value as Json};

use super::attrs::Attrs;
use super::messages::messages_from_json;
use super::model::GenAiSpan;
use super::{Reader, fill};

const OBS: &str = "langfuse.observation.";

pub(super) fn read(r: &mut Reader<'_>) {
    let a = &mut r.attrs;
    if !a.has_prefix("langfuse.") {
        return;
    }
    let o = &mut r.out;
    let kind = a.take_string("langfuse.observation.type");
    fill(&mut r.hints.langfuse, kind.clone());
    fill(&mut o.trace_name, a.take_string("langfuse.trace.name"));
    fill(&mut o.user_id, a.take_string("langfuse.user.id"));
    fill(&mut o.conversation_id, a.take_string("langfuse.session.id"));
    fill(&mut o.environment, a.take_string("langfuse.environment"));
    if let Some(tags) = a.take_string_list("langfuse.trace.tags") {
        o.tags.extend(tags);
    }
    fill(
        &mut o.request_model,
        a.take_string("langfuse.observation.model.name"),
    );
    if let Some(Json::Object(p)) = a.take_json("langfuse.observation.model.parameters") {
        for (k, v) in p {
            o.request_params.entry(k).or_insert(v);
        }
    }
    if let Some(Json::Object(u)) = a.take_json("langfuse.observation.usage_details") {
        read_usage(&u, o);
    }
    if let Some(Json::Object(c)) = a.take_json("langfuse.observation.cost_details") {
        let n = |k: &str| c.get(k).and_then(Json::as_f64);
        fill(&mut o.cost.input, n("input"));
        fill(&mut o.cost.output, n("output"));
        fill(&mut o.cost.total, n("total"));
    }
    if let Some(start) = a.take_json_document("langfuse.observation.completion_start_time") {
        fill(&mut o.ttft_ms, ttft_ms(&start, r.start_ns));
    }
    read_metadata(a, o);
    let tool = kind.as_deref() == Some("tool");
    a.content(|a| read_io(a, o, tool));
}

fn read_usage(u: &Map<String, Json>, o: &mut GenAiSpan) {
    let n = |keys: &[&str]| keys.iter().find_map(|k| u.get(*k).and_then(Json::as_i64));
    fill(
        &mut o.usage.input,
        n(&["input", "prompt_tokens", "input_tokens"]),
    );
    fill(
        &mut o.usage.output,
        n(&["output", "completion_tokens", "output_tokens"]),
    );
    fill(&mut o.usage.total, n(&["total", "total_tokens"]));
    fill(
        &mut o.usage.cache_read,
        n(&[
            "cache_read_input_tokens",
            "input_cached_tokens",
            "cache_read",
        ]),
    );
    fill(
        &mut o.usage.cache_creation,
        n(&["cache_creation_input_tokens", "cache_write"]),
    );
    fill(
        &mut o.usage.reasoning,
        n(&["reasoning_tokens", "output_reasoning_tokens"]),
    );
}

/// Trace and observation metadata (a JSON object, or `.<key>` attributes
/// whose values the SDK JSON-encodes one by one: `"\"weather\""`), release,
/// version, level, status message and prompt. The OpenAI integration's
/// `finish_reason` metadata is the finish reason.
fn read_metadata(a: &mut Attrs<'_>, o: &mut GenAiSpan) {
    for base in ["langfuse.trace.metadata", "langfuse.observation.metadata"] {
        if let Some(Json::Object(m)) = a.take_json(base) {
            for (k, v) in m {
                o.custom_metadata.entry(k).or_insert(v);
            }
        }
        let prefix = format!("{base}.");
        for key in a.keys_with_prefix(&prefix) {
            let name = &key[prefix.len()..];
            match a.take_json_document(key) {
                Some(Json::String(reason))
                    if name == "finish_reason" && o.finish_reasons.is_empty() =>
                {
                    o.finish_reasons.push(reason);
                }
                Some(v) => {
                    o.custom_metadata.entry(name.to_string()).or_insert(v);
                }
                None => {}
            }
        }
    }
    // The SDK's marker of the application's root span: nothing to show.
    a.claim("langfuse.internal.is_app_root");
    for (key, name) in [
        ("langfuse.release", "release"),
        ("langfuse.version", "version"),
        ("langfuse.observation.level", "level"),
        ("langfuse.observation.status_message", "status_message"),
        ("langfuse.observation.prompt.name", "prompt_name"),
        ("langfuse.observation.prompt.version", "prompt_version"),
    ] {
        if let Some(v) = a.take_json(key) {
            o.custom_metadata.entry(name).or_insert(v);
        }
    }
}

fn read_io(a: &mut Attrs<'_>, o: &mut GenAiSpan, tool: bool) {
    fill(&mut o.trace_input, a.take_json("langfuse.trace.input"));
    fill(&mut o.trace_output, a.take_json("langfuse.trace.output"));
    let input = a.take_json(&format!("{OBS}input"));
    let output = a.take_json(&format!("{OBS}output"));
    if tool {
        fill(&mut o.tool.arguments, input);
        fill(&mut o.tool.result, output);
        return;
    }
    // A generation's input is often a chat message list.
    match input {
        Some(Json::Array(items))
            if o.input_messages.is_empty() && items.iter().all(|m| m.get("role").is_some()) =>
        {
            o.input_messages = messages_from_json(&Json::Array(items), "user");
        }
        other => fill(&mut o.input, other),
    }
    fill(&mut o.output, output);
}

/// `completion_start_time` (an ISO timestamp) minus the span's start, in ms.
fn ttft_ms(start: &Json, span_start_ns: u64) -> Option<f64> {
    let t = humantime::parse_rfc3339_weak(start.as_str()?.trim_end_matches('Z')).ok()?;
    let ns = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos() as i128;
    let ms = (ns - i128::from(span_start_ns)) as f64 / 1e6;
    (span_start_ns > 0 && ms >= 0.0).then_some(ms)
}

//! Pipecat's own tracing (pipecat-ai 1.14, `utils/tracing`): service spans
//! in scope `pipecat` (`llm`, `tts`, `stt`), the `conversation` → `turn`
//! spans in scope `pipecat.turn`.
//!
//! An `llm` span has GenAI semconv model, provider, usage and
//! `gen_ai.system_instructions` (read by [`super::genai`]) and Pipecat's own
//! keys: `input` (the provider-native message list, read by the generic
//! reader), `output` (the streamed text only, none for a tool-call turn),
//! `tools` (the provider-native definitions), `tool_count`, `tool_choice`,
//! `stream`, `param.<setting>` and `metrics.ttfb`. A setting left unset is
//! the string `NOT_GIVEN`, also under `gen_ai.request.*`. Function calls
//! get no span of their own: a call and its result appear only as messages
//! in the next `llm` span's input.

use serde_json::Value as Json;

use super::attrs::{Attrs, parse_json_string};
use super::model::{GenAiSpan, Message, Part};
use super::{Reader, fill, openai_tool_definition};

/// The scope of the service spans.
const SERVICE_SCOPE: &str = "pipecat";
/// The scope of the conversation and turn spans.
const TURN_SCOPE: &str = "pipecat.turn";
/// What Pipecat writes for a setting left unset.
const UNSET: &str = "NOT_GIVEN";

pub(super) fn read(r: &mut Reader<'_>) {
    match r.ctx.scope_name {
        SERVICE_SCOPE => read_service(&mut r.attrs, &mut r.out),
        // `PipelineWorker(conversation_id=…)`, else a generated UUID: the thread.
        TURN_SCOPE => fill(
            &mut r.out.conversation_id,
            r.attrs.take_string("conversation.id"),
        ),
        _ => {}
    }
}

fn read_service(a: &mut Attrs<'_>, o: &mut GenAiSpan) {
    // Seconds to the first byte of the service's answer.
    let ttfb = a.take_f64("metrics.ttfb").filter(|s| *s >= 0.0);
    fill(&mut o.ttft_ms, ttfb.map(|s| s * 1000.0));
    match o.operation.as_deref() {
        // The text a `tts` span speaks, the transcript an `stt` span hears.
        Some("tts") => a.content(|a| fill(&mut o.input, a.take_string("text").map(Json::String))),
        Some("stt") => {
            fill(&mut o.user_id, a.take_string("user_id"));
            a.content(|a| fill(&mut o.output, a.take_string("transcript").map(Json::String)));
        }
        Some("chat") => read_llm(a, o),
        _ => {}
    }
}

fn read_llm(a: &mut Attrs<'_>, o: &mut GenAiSpan) {
    a.content(|a| {
        let text = a.take_string("output").filter(|t| !t.is_empty());
        if let Some(text) = text.filter(|_| o.output_messages.is_empty()) {
            o.output_messages = vec![Message {
                role: "assistant".into(),
                parts: vec![Part::Text(text)],
                ..Default::default()
            }];
        }
    });
    if let Some(Json::Array(defs)) = a.take_structured("tools") {
        if o.tool_definitions.is_empty() {
            o.tool_definitions = defs.iter().map(openai_tool_definition).collect();
        }
    }
    a.claim("tool_count");
    read_settings(a, o);
}

/// `stream`, `tool_choice` and the `param.*` settings as request
/// parameters; `param.model` repeats the request model. Unset ones
/// (`NOT_GIVEN`) are left out, `gen_ai.request.*` ones included.
fn read_settings(a: &mut Attrs<'_>, o: &mut GenAiSpan) {
    let p = &mut o.request_params;
    if let Some(v) = a.take_json("stream") {
        p.entry("stream").or_insert(v);
    }
    if let Some(v) = a.take_string("tool_choice") {
        p.entry("tool_choice").or_insert(parse_json_string(&v));
    }
    for key in a.keys_with_prefix("param.") {
        let value = a.take_json(key);
        let name = &key["param.".len()..];
        if let Some(v) = value.filter(|_| name != "model") {
            p.entry(name).or_insert(v);
        }
    }
    p.retain(|_, v| v != UNSET);
}

//! The GenAI normaliser: every span, whatever convention its instrumentation
//! used, is read into one [`GenAiSpan`]. This module is the only place that
//! knows attribute keys; destinations map from the normalised view.
//!
//! Dialects are read in a fixed order and the **first dialect to set a fact
//! wins** (later ones only fill gaps). Every key a dialect recognises is
//! claimed even when the fact was already set, so it does not reappear as
//! metadata. The order, most specific and most recent first:
//!
//! 1. [`opik`] — explicit `opik.*` routing and id overrides;
//! 2. [`genai`] — OTel GenAI v1.37+ (attributes and the inference-details event);
//! 3. [`openinference`] — Arize OpenInference;
//! 4. [`openrouter`] — OpenRouter Broadcast (cost keys, `trace.*`, content blobs);
//! 5. [`vercel`] — Vercel AI SDK `ai.*`;
//! 6. [`openllmetry`] — Traceloop/OpenLLMetry flattened keys;
//! 7. [`genai_legacy`] — OTel GenAI v1.36 and older (`gen_ai.system`, per-message and v1.26 events);
//! 8. [`logfire`] — Logfire / pydantic-ai.
//!
//! Whatever no dialect claims lands in [`GenAiSpan::other_attributes`]
//! (metadata), never in the span's input.

mod attrs;
mod genai;
mod genai_legacy;
mod logfire;
pub mod messages;
mod model;
mod openinference;
pub mod openinference_out;
mod openllmetry;
mod openrouter;
mod opik;
pub mod privacy;
pub mod provider;
pub mod render;
mod vercel;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use serde_json::json;

pub use attrs::{json_text, parse_json_string};
pub use model::*;

use attrs::Attrs;

/// What the normaliser knows about a span's surroundings.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpanContext<'a> {
    pub resource_attributes: &'a [KeyValue],
    pub scope_name: &'a str,
}

/// Span kinds as each dialect states them, resolved in [`resolve_kind`].
#[derive(Debug, Default)]
struct KindHints {
    openinference: Option<String>,
    traceloop: Option<String>,
    llm_request_type: Option<String>,
    vercel_operation: Option<String>,
    openrouter_span_type: Option<String>,
    logfire_agent: bool,
    tool_attributes: bool,
}

/// The events of a span, with a "consumed" mark per event.
struct Events<'a> {
    list: &'a [Event],
    consumed: Vec<bool>,
}

impl<'a> Events<'a> {
    fn new(list: &'a [Event]) -> Self {
        Self {
            list,
            consumed: vec![false; list.len()],
        }
    }

    /// Events with this name, marked consumed.
    fn take_named(&mut self, name: &str) -> Vec<&'a Event> {
        let mut out = Vec::new();
        for (i, e) in self.list.iter().enumerate() {
            if e.name == name {
                self.consumed[i] = true;
                out.push(e);
            }
        }
        out
    }

    /// Events whose name is in `names`, in order, marked consumed.
    fn take_any(&mut self, names: &[&str]) -> Vec<&'a Event> {
        let mut out = Vec::new();
        for (i, e) in self.list.iter().enumerate() {
            if names.contains(&e.name.as_str()) {
                self.consumed[i] = true;
                out.push(e);
            }
        }
        out
    }

    fn unconsumed(&self) -> impl Iterator<Item = &'a Event> + '_ {
        self.list
            .iter()
            .zip(&self.consumed)
            .filter(|(_, c)| !**c)
            .map(|(e, _)| e)
    }
}

/// State shared by the dialect readers.
struct Reader<'a> {
    attrs: Attrs<'a>,
    events: Events<'a>,
    out: GenAiSpan,
    hints: KindHints,
    ctx: SpanContext<'a>,
}

/// Sets `slot` unless an earlier dialect already did.
fn fill<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// The project a span asks to be routed to, in the normaliser's order
/// (`opik.project_name` on the span, then the resource; then
/// `openinference.project.name` on the span, then the resource), without
/// normalising the rest of the span: the cheap path for pass-through
/// forwarding.
pub fn routing_project(span: &Span, ctx: SpanContext<'_>) -> Option<String> {
    let on_span =
        |key| crate::otlp::string_attribute(&span.attributes, key).filter(|s| !s.is_empty());
    let on_resource =
        |key| crate::otlp::string_attribute(ctx.resource_attributes, key).filter(|s| !s.is_empty());
    on_span(opik::PROJECT_KEY)
        .or_else(|| on_resource(opik::PROJECT_KEY))
        .or_else(|| on_span(openinference::PROJECT_KEY))
        .or_else(|| on_resource(openinference::PROJECT_KEY))
        .map(str::to_string)
}

/// Reads one span into the normalised model.
pub fn normalise(span: &Span, ctx: SpanContext<'_>) -> GenAiSpan {
    let mut r = Reader {
        attrs: Attrs::new(&span.attributes),
        events: Events::new(&span.events),
        out: GenAiSpan::default(),
        hints: KindHints::default(),
        ctx,
    };
    opik::read(&mut r);
    genai::read(&mut r);
    openinference::read(&mut r);
    openrouter::read(&mut r);
    vercel::read(&mut r);
    openllmetry::read(&mut r);
    genai_legacy::read(&mut r);
    logfire::read(&mut r);
    read_error(&mut r, span);
    finish(r)
}

fn finish(mut r: Reader<'_>) -> GenAiSpan {
    let server_address = r.attrs.peek_str("server.address");
    if let Some(raw) = r.out.provider.take() {
        r.out.provider = Some(provider::to_opik(&raw, server_address));
    }
    r.out.kind = resolve_kind(&r.out, &r.hints);
    if r.out.finish_reasons.is_empty() {
        r.out.finish_reasons = r
            .out
            .output_messages
            .iter()
            .filter_map(|m| m.finish_reason.clone())
            .collect();
    }
    r.out.tags.sort();
    r.out.tags.dedup();
    let mut other = r.attrs.unclaimed();
    for (k, v) in std::mem::take(&mut r.attrs.malformed) {
        other.insert(k, v);
    }
    r.out.other_attributes = other;
    r.out.warnings.append(&mut r.attrs.warnings);
    r.out.other_events = r
        .events
        .unconsumed()
        .map(|e| {
            json!({
                "name": e.name,
                "time_unix_nano": e.time_unix_nano,
                "attributes": crate::otlp::attributes_to_json(&e.attributes),
            })
        })
        .collect();
    r.out
}

/// The kind, from the most explicit statement to the weakest evidence.
fn resolve_kind(g: &GenAiSpan, h: &KindHints) -> Kind {
    if let Some(k) = h.openinference.as_deref() {
        match k.to_ascii_uppercase().as_str() {
            "LLM" => return Kind::Llm,
            "EMBEDDING" => return Kind::Embedding,
            "TOOL" => return Kind::Tool,
            "AGENT" => return Kind::Agent,
            "RETRIEVER" | "RERANKER" => return Kind::Retrieval,
            "GUARDRAIL" => return Kind::Guardrail,
            "CHAIN" | "EVALUATOR" | "PROMPT" | "UNKNOWN" => return Kind::General,
            _ => {}
        }
    }
    if let Some(op) = g.operation.as_deref() {
        match op {
            "chat" | "text_completion" | "generate_content" | "completion" | "generate"
            | "llm_request" | "responses" => return Kind::Llm,
            "embeddings" | "embedding" => return Kind::Embedding,
            "execute_tool" => return Kind::Tool,
            "invoke_agent" | "create_agent" | "agent_step" | "plan" => return Kind::Agent,
            "retrieval" | "rerank" | "vector_db_retrieve" | "search_memory" => {
                return Kind::Retrieval;
            }
            "invoke_workflow" => return Kind::General,
            _ => {}
        }
    }
    if let Some(k) = h.traceloop.as_deref() {
        match k {
            "agent" => return Kind::Agent,
            "tool" => return Kind::Tool,
            "llm" => return Kind::Llm,
            "workflow" | "task" => return Kind::General,
            _ => {}
        }
    }
    if let Some(t) = h.llm_request_type.as_deref() {
        match t {
            "chat" | "completion" => return Kind::Llm,
            "embedding" => return Kind::Embedding,
            "rerank" => return Kind::Retrieval,
            _ => {}
        }
    }
    if let Some(op) = h.vercel_operation.as_deref() {
        if op.ends_with(".doGenerate") || op.ends_with(".doStream") {
            return if op.starts_with("ai.embed") {
                Kind::Embedding
            } else {
                Kind::Llm
            };
        }
        if op == "ai.toolCall" {
            return Kind::Tool;
        }
        if op.starts_with("ai.embed") {
            return Kind::Embedding;
        }
        return Kind::General;
    }
    if h.openrouter_span_type.as_deref() == Some("generation") {
        return Kind::Llm;
    }
    if h.tool_attributes {
        return Kind::Tool;
    }
    if h.logfire_agent {
        return Kind::Agent;
    }
    let has_messages = !g.input_messages.is_empty() || !g.output_messages.is_empty();
    if (g.request_model.is_some() || g.response_model.is_some())
        && (has_messages || !g.usage.is_empty() || !g.prompts.is_empty())
    {
        return Kind::Llm;
    }
    Kind::General
}

/// `exception` events (the last one wins), else an ERROR status.
fn read_error(r: &mut Reader<'_>, span: &Span) {
    let error_type = r.attrs.take_string("error.type");
    let exceptions = r
        .events
        .take_any(&["exception", "gen_ai.client.operation.exception"]);
    if let Some(e) = exceptions.last() {
        let mut a = Attrs::new(&e.attributes);
        let message = a.take_string("exception.message");
        let exception_type = a
            .take_string("exception.type")
            .or(error_type)
            .unwrap_or_else(|| "Error".into());
        let traceback = a
            .take_string("exception.stacktrace")
            .or_else(|| message.clone())
            .unwrap_or_else(|| exception_type.clone());
        r.out.error = Some(ErrorInfo {
            exception_type,
            message,
            traceback,
        });
        return;
    }
    let status = span.status.as_ref();
    if status.is_some_and(|s| s.code == StatusCode::Error as i32) {
        let message = status.map(|s| s.message.clone()).filter(|m| !m.is_empty());
        let exception_type = error_type.unwrap_or_else(|| "Error".into());
        let traceback = message.clone().unwrap_or_else(|| exception_type.clone());
        r.out.error = Some(ErrorInfo {
            exception_type,
            message,
            traceback,
        });
    }
}

/// Flat `gen_ai.tool.definitions` entries and OpenAI-shaped ones, all as
/// `{type:"function", function:{name, description, parameters}}`.
fn openai_tool_definition(v: &serde_json::Value) -> serde_json::Value {
    if v.get("function").is_some() {
        return v.clone();
    }
    let mut function = serde_json::Map::new();
    for key in ["name", "description", "parameters"] {
        if let Some(x) = v.get(key) {
            function.insert(key.into(), x.clone());
        }
    }
    if function.is_empty() {
        return v.clone();
    }
    json!({"type": v.get("type").and_then(|t| t.as_str()).unwrap_or("function"), "function": function})
}

#[cfg(test)]
mod tests;

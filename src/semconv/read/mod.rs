//! The dialect readers. Each module reads one convention's attributes and
//! events into the normalised [`GenAiSpan`], *claiming* every key it knows.
//!
//! Dialects are read in a fixed order and the **first dialect to set a fact
//! wins** (later ones only fill gaps). Every key a dialect recognises is
//! claimed even when the fact was already set, so it does not reappear as
//! metadata. The order, most specific and most recent first:
//!
//! 1. [`opik_attributes`] — explicit `opik.*` routing and id overrides;
//! 2. [`genai`] — OTel GenAI v1.37+ (attributes and the inference-details event);
//!    then [`adk`] — Google ADK schema 1 (`gcp.vertex.agent.*`) and
//!    [`mlflow`] — MLflow native (`mlflow.*`) and [`claude_code`] — Claude
//!    Code's spans, [`langsmith`] — LangSmith's OTel export, [`langfuse`] —
//!    the Langfuse SDK's `langfuse.*`, [`livekit`] — LiveKit Agents' `lk.*`,
//!    [`pipecat`] — Pipecat's own keys (scopes `pipecat`, `pipecat.turn`);
//! 3. [`openinference`] — Arize OpenInference;
//! 4. [`openrouter`] — OpenRouter Broadcast (cost keys, `trace.*`, content blobs);
//! 5. [`vercel`] — Vercel AI SDK `ai.*`;
//! 6. [`openllmetry`] — Traceloop/OpenLLMetry flattened keys;
//! 7. [`genai_legacy`] — OTel GenAI v1.36 and older (`gen_ai.system`, per-message and v1.26 events);
//! 8. [`logfire`] — Logfire / pydantic-ai;
//! 9. the generic `input` / `output` attributes (Pipecat's `input`, custom tracers).
//!
//! Infrastructure shared by the readers: [`attrs`] (reading and claiming
//! attributes), [`messages`] (every message shape into one model; the
//! common GenAI parts list is read straight from its text by
//! `genai_messages`), `kind`
//! (resolving the span kind) and `error` (exceptions and error status).

mod adk;
mod attrs;
mod claude_code;
mod error;
mod genai;
mod genai_legacy;
mod genai_messages;
mod kind;
mod langfuse;
mod langsmith;
mod livekit;
mod logfire;
pub mod messages;
mod mlflow;
mod openinference;
mod openllmetry;
mod openrouter;
mod opik_attributes;
mod pipecat;
mod vercel;

use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use serde_json::{Value as Json, json};

pub use attrs::{json_text, parse_json_string};

use super::SpanContext;
use super::model;
use super::model::*;
use super::privacy::{Claim, Claims};
use super::write::opik_provider;

use attrs::Attrs;
use kind::{KindHints, resolve_kind};

/// The events of a span (then those joined from its log records), with a
/// claim per event.
struct Events<'a> {
    list: Vec<&'a Event>,
    consumed: Vec<Claim>,
}

impl<'a> Events<'a> {
    fn new(own: &'a [Event], joined: &'a [Event]) -> Self {
        let list: Vec<&'a Event> = own.iter().chain(joined).collect();
        Self {
            consumed: vec![Claim::Unclaimed; list.len()],
            list,
        }
    }

    /// Content events with this name, marked consumed.
    fn take_named(&mut self, name: &str) -> Vec<&'a Event> {
        self.take(&[name], Claim::Content)
    }

    /// Content events whose name is in `names`, in order, marked consumed.
    fn take_any(&mut self, names: &[&str]) -> Vec<&'a Event> {
        self.take(names, Claim::Content)
    }

    /// Events whose name is in `names`, in order, marked with `claim`.
    fn take(&mut self, names: &[&str], claim: Claim) -> Vec<&'a Event> {
        let mut out = Vec::new();
        for (i, e) in self.list.iter().copied().enumerate() {
            if names.contains(&e.name.as_str()) {
                self.consumed[i] = self.consumed[i].join(claim);
                out.push(e);
            }
        }
        out
    }

    fn unconsumed(&self) -> impl Iterator<Item = &'a Event> + '_ {
        self.list
            .iter()
            .copied()
            .zip(&self.consumed)
            .filter(|(_, c)| **c == Claim::Unclaimed)
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
    /// The span has no parent: the root of its trace.
    root: bool,
    start_ns: u64,
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
        |key| crate::pdata::string_attribute(&span.attributes, key).filter(|s| !s.is_empty());
    let on_resource = |key| {
        crate::pdata::string_attribute(ctx.resource_attributes, key).filter(|s| !s.is_empty())
    };
    on_span(opik_attributes::PROJECT_KEY)
        .or_else(|| on_resource(opik_attributes::PROJECT_KEY))
        .or_else(|| on_span(openinference::PROJECT_KEY))
        .or_else(|| on_resource(openinference::PROJECT_KEY))
        .map(str::to_string)
}

/// Reads one span into the normalised model.
pub fn normalise(span: &Span, ctx: SpanContext<'_>) -> GenAiSpan {
    normalise_joined(span, &[], ctx)
}

/// Reads one span and the events of the log records joined to it (see
/// [`crate::semconv::logs`]), read as if they were the span's own, after
/// them: claims of `joined` follow the span's in `claims.events`.
pub fn normalise_joined(span: &Span, joined: &[Event], ctx: SpanContext<'_>) -> GenAiSpan {
    let mut r = Reader {
        attrs: Attrs::new(&span.attributes),
        events: Events::new(&span.events, joined),
        out: GenAiSpan::default(),
        hints: KindHints::default(),
        ctx,
        root: span.parent_span_id.is_empty(),
        start_ns: span.start_time_unix_nano,
    };
    opik_attributes::read(&mut r);
    genai::read(&mut r);
    adk::read(&mut r);
    mlflow::read(&mut r);
    claude_code::read(&mut r);
    langsmith::read(&mut r);
    langfuse::read(&mut r);
    livekit::read(&mut r);
    pipecat::read(&mut r);
    openinference::read(&mut r);
    openrouter::read(&mut r);
    vercel::read(&mut r);
    openllmetry::read(&mut r);
    genai_legacy::read(&mut r);
    logfire::read(&mut r);
    read_generic_io(&mut r);
    read_common(&mut r);
    error::read_error(&mut r, span);
    error::read_evaluations(&mut r);
    finish(r, span)
}

fn finish(mut r: Reader<'_>, span: &Span) -> GenAiSpan {
    resolve_provider(&mut r);
    r.out.kind = resolve_kind(&r.out, &r.hints);
    if r.out.kind == Kind::Agent && span.parent_span_id.is_empty() {
        // The agent a root span runs names the flow (AI SDK 7: the functionId).
        fill(&mut r.out.trace_name, r.out.agent_name.clone());
    }
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
                "attributes": crate::pdata::attributes_to_json(&e.attributes),
            })
        })
        .collect();
    // Last: the marks are moved out.
    r.out.claims = Claims {
        attributes: r.attrs.take_claims(),
        events: std::mem::take(&mut r.events.consumed),
    };
    r.out
}

/// `input` / `output`, as Pipecat and hand-written tracers set them:
/// content. A list of chat messages (Pipecat's LLM spans serialise the
/// context so) is the conversation.
fn read_generic_io(r: &mut Reader<'_>) {
    let o = &mut r.out;
    r.attrs.content(|a| {
        match a.take_json_document("input") {
            Some(Json::Array(items))
                if o.input_messages.is_empty()
                    && !items.is_empty()
                    && items.iter().all(|m| m.get("role").is_some()) =>
            {
                o.input_messages = messages::messages_from_json(&Json::Array(items), "user");
            }
            other => fill(&mut o.input, other),
        }
        fill(&mut o.output, a.take_json_document("output"));
    });
}

/// Keys every dialect shares: the environment, the time to the first token
/// (seconds as a double, milliseconds as an integer or `…ms…` key), the end
/// user.
fn read_common(r: &mut Reader<'_>) {
    let a = &mut r.attrs;
    let o = &mut r.out;
    for key in ["deployment.environment.name", "deployment.environment"] {
        fill(&mut o.environment, a.take_string(key));
    }
    for key in ["deployment.environment.name", "deployment.environment"] {
        fill(
            &mut o.environment,
            opik_attributes::resource_string(r.ctx.resource_attributes, key),
        );
    }
    for key in [
        "gen_ai.response.time_to_first_chunk",
        "gen_ai.client.operation.time_to_first_chunk",
        "gen_ai.server.time_to_first_token",
    ] {
        let ms = match a.peek(key) {
            Some(attrs::Value::DoubleValue(s)) => Some(s * 1000.0),
            Some(_) => a.take_f64(key),
            None => None,
        };
        a.claim(key);
        fill(&mut o.ttft_ms, ms.filter(|v| *v >= 0.0));
    }
    fill(&mut o.ttft_ms, a.take_f64("ai.response.msToFirstChunk"));
    // Ours (see `control::keep`): a fact, kept under privacy mode.
    a.claim(super::SAMPLING_REASON);
    for key in ["enduser.id", "gen_ai.request.user", "llm.user"] {
        fill(&mut o.user_id, a.take_string(key));
    }
}

/// The provider and models Opik can price (see [`opik_provider::resolve`]);
/// the provider as stated goes to metadata when it differs.
fn resolve_provider(r: &mut Reader<'_>) {
    let o = &mut r.out;
    let is_model_call = o.request_model.is_some() || o.response_model.is_some();
    if o.provider.is_none() && !is_model_call {
        return;
    }
    let server_address = r.attrs.peek_str("server.address");
    let raw = o.provider.take();
    let model = o.response_model.as_deref().or(o.request_model.as_deref());
    let (mut provider, _) = opik_provider::resolve(raw.as_deref(), model, server_address);
    if !is_model_call && !provider.as_deref().is_some_and(opik_provider::is_priced) {
        // A framework's name on a span that calls no model prices nothing.
        provider = None;
    }
    for m in [&mut o.request_model, &mut o.response_model] {
        if let Some(name) = m.as_deref() {
            let (_, stripped) = opik_provider::resolve(raw.as_deref(), Some(name), server_address);
            *m = stripped;
        }
    }
    if let Some(raw) = raw {
        if provider.as_deref() != Some(opik_provider::to_opik(&raw, server_address).as_str()) {
            o.stated_provider = Some(raw);
        }
    }
    o.provider = provider;
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

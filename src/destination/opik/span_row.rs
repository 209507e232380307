//! One OTel span: what it tells its trace (root, times, first and last LLM
//! I/O, thread, user, tags) and its own Opik span row.

use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::Value as Json;
use tokio::time::Instant;

use super::config::MAX_TAGS;
use super::fields::{self, OtelContext};
use super::ids;
use super::rows::{ErrorInfoRow, SpanRow};
use super::trace_table::{OpenTrace, Released, Root, opt_len};
use super::truncate::json_len;
use crate::semconv::write::{chat, doc::JsonDoc};
use crate::semconv::{GenAiSpan, Kind};

/// LLM spans with usage remembered per trace, to find wrappers.
pub const MAX_LLM_USAGE: usize = 256;

/// OTLP span flags: the parent span context is known to be remote.
const PARENT_IS_REMOTE: u32 = 0x300;

/// What the span row and the trace both take from a span.
pub struct SpanView {
    pub name: String,
    pub input: Option<JsonDoc>,
    pub output: Option<JsonDoc>,
    pub error: Option<ErrorInfoRow>,
    /// No parent, or a remote one: a top-level span in Opik.
    pub top_level: bool,
}

impl SpanView {
    pub fn new(span: &Span, g: &GenAiSpan, privacy: bool) -> Self {
        // The receiver already turned a parent id equal to the trace id into "no parent".
        let top_level =
            span.parent_span_id.is_empty() || span.flags & PARENT_IS_REMOTE == PARENT_IS_REMOTE;
        Self {
            name: g.span_name.clone().unwrap_or_else(|| span.name.clone()),
            input: (!privacy).then(|| chat::span_input(g)).flatten(),
            output: (!privacy).then(|| chat::span_output(g)).flatten(),
            error: fields::error_info(g),
            top_level,
        }
    }
}

impl OpenTrace {
    /// Records what span `g` tells about its trace.
    pub fn observe(&mut self, span: &Span, g: &GenAiSpan, v: &SpanView, now: Instant) {
        self.last_seen = now;
        self.dirty = true;
        self.finalised = false;
        if self.first_span_name.is_empty() {
            self.first_span_name = v.name.clone();
        }
        if span.start_time_unix_nano > 0 {
            self.start_ns = self.start_ns.min(span.start_time_unix_nano);
        }
        self.end_ns = self.end_ns.max(span.end_time_unix_nano);
        self.observe_root(span, v);
        if matches!(g.kind, Kind::Llm) {
            self.observe_llm_io(span, v);
            if let Some(ttft) = g.ttft_ms {
                self.observe_ttft(span.start_time_unix_nano, ttft);
            }
        }
        self.observe_llm_usage(span, g);
        self.observe_trace_facts(g);
    }

    fn observe_root(&mut self, span: &Span, v: &SpanView) {
        let parentless = span.parent_span_id.is_empty();
        let replaces_root = match &self.root {
            None => v.top_level,
            Some(r) => v.top_level && parentless && !r.parentless,
        };
        if replaces_root {
            let new = Root {
                name: v.name.clone(),
                input: v.input.clone(),
                output: v.output.clone(),
                error: v.error.clone(),
                parentless,
            };
            self.held += opt_len(new.input.as_ref()) + opt_len(new.output.as_ref());
            if let Some(old) = self.root.replace(new) {
                self.unhold(opt_len(old.input.as_ref()) + opt_len(old.output.as_ref()));
            }
            self.released
                .refill(Released::ROOT_INPUT | Released::ROOT_OUTPUT);
            self.write_now = true;
        }
    }

    fn observe_llm_io(&mut self, span: &Span, v: &SpanView) {
        if let Some(i) = &v.input {
            if self
                .first_llm
                .as_ref()
                .is_none_or(|(s, _)| span.start_time_unix_nano < *s)
            {
                self.held += i.len();
                let old = self
                    .first_llm
                    .replace((span.start_time_unix_nano, i.clone()));
                self.unhold(opt_len(old.as_ref().map(|(_, v)| v)));
                self.released.refill(Released::FIRST_LLM);
            }
        }
        if let Some(o) = &v.output {
            if self
                .last_llm
                .as_ref()
                .is_none_or(|(e, _)| span.end_time_unix_nano >= *e)
            {
                self.held += o.len();
                let old = self.last_llm.replace((span.end_time_unix_nano, o.clone()));
                self.unhold(opt_len(old.as_ref().map(|(_, v)| v)));
                self.released.refill(Released::LAST_LLM);
            }
        }
    }

    fn observe_llm_usage(&mut self, span: &Span, g: &GenAiSpan) {
        let llm = matches!(g.kind, Kind::Llm | Kind::Embedding);
        let Ok(parent) = <[u8; 8]>::try_from(span.parent_span_id.as_slice()) else {
            return;
        };
        if llm && !g.usage.is_empty() && self.llm_usage.len() < MAX_LLM_USAGE {
            self.llm_usage.push((parent, g.usage));
        }
    }

    /// Whether an LLM child of `span` already reported the same usage: then
    /// `span` wraps that call (ADK's `call_llm` over `generate_content`) and
    /// only the leaf counts in Opik.
    fn usage_reported_by_child(&self, span: &Span, g: &GenAiSpan) -> bool {
        let Ok(id) = <[u8; 8]>::try_from(span.span_id.as_slice()) else {
            return false;
        };
        self.llm_usage.iter().any(|(parent, u)| {
            *parent == id && u.input == g.usage.input && u.output == g.usage.output
        })
    }

    fn observe_trace_facts(&mut self, g: &GenAiSpan) {
        fill(&mut self.trace_name, &g.trace_name);
        for (slot, value) in [
            (&mut self.trace_input, &g.trace_input),
            (&mut self.trace_output, &g.trace_output),
        ] {
            if let (None, Some(value)) = (&slot, value) {
                let doc = JsonDoc::render(value);
                self.held += doc.len();
                *slot = Some(doc);
            }
        }
        fill(&mut self.thread_id, &g.conversation_id);
        fill(&mut self.user_id, &g.user_id);
        fill(&mut self.environment, &g.environment);
        for tag in &g.tags {
            if self.tags.len() < MAX_TAGS {
                self.tags.insert(tag.clone());
            }
        }
        for (k, v) in &g.custom_metadata {
            if !self.metadata.contains_key(k) {
                self.held += k.len() + json_len(v);
                self.metadata.insert(k.clone(), v.clone());
            }
        }
    }

    fn unhold(&mut self, bytes: usize) {
        self.held = self.held.saturating_sub(bytes);
    }
}

fn fill<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
    if slot.is_none() {
        slot.clone_from(value);
    }
}

/// The span's Opik row (`last_updated_at` is stamped by the encoder);
/// what goes to metadata as it is is moved out of `g`.
pub fn span_row(
    t: &OpenTrace,
    span: &Span,
    g: &mut GenAiSpan,
    v: SpanView,
    otel: &OtelContext<'_>,
    privacy: bool,
    with_resource: bool,
) -> SpanRow {
    let id = g
        .opik_span_id
        .as_deref()
        .and_then(ids::parse_v7)
        .unwrap_or_else(|| ids::from_otel_id(&span.span_id, t.timestamp_ms));
    let explicit_parent = g
        .opik_trace_id
        .as_ref()
        .and(g.opik_parent_span_id.as_deref())
        .and_then(ids::parse_v7);
    // Attached to an Opik SDK trace without a parent: a top-level span of it.
    let attached_top = g.opik_trace_id.is_some() && g.opik_parent_span_id.is_none();
    let parent_span_id = match explicit_parent {
        Some(p) => Some(p),
        None if v.top_level || attached_top => None,
        None => Some(ids::from_otel_id(&span.parent_span_id, t.timestamp_ms)),
    };
    // Only LLM spans carry `usage`: agent and workflow spans often repeat
    // the sum of their children, which Opik would count twice in the trace
    // totals, and so does an LLM span wrapping an LLM call that reports the
    // same usage (children end, and are exported, first). Their usage goes
    // to metadata instead.
    let llm = matches!(g.kind, Kind::Llm | Kind::Embedding) && !t.usage_reported_by_child(span, g);
    let mut metadata = fields::span_metadata(g, otel, privacy, with_resource);
    if !llm {
        if let (Some(u), Json::Object(m)) = (fields::usage(g), &mut metadata) {
            m.insert("usage".into(), serde_json::json!(u));
        }
    }
    SpanRow {
        id,
        project_name: t.project.clone(),
        trace_id: t.id,
        parent_span_id,
        name: v.name,
        span_type: fields::span_type(g.kind),
        start_time: fields::timestamp(span.start_time_unix_nano),
        end_time: (span.end_time_unix_nano > 0).then(|| fields::timestamp(span.end_time_unix_nano)),
        input: v.input,
        output: v.output,
        metadata,
        model: g.response_model.clone().or_else(|| g.request_model.clone()),
        provider: g.provider.clone(),
        tags: g.tags.iter().take(MAX_TAGS).cloned().collect(),
        usage: llm.then(|| fields::usage(g)).flatten(),
        error_info: v.error,
        total_estimated_cost: g.cost.total_usd().filter(|c| *c >= 0.0),
        ttft: g.ttft_ms,
        environment: g.environment.clone(),
        last_updated_at: String::new(),
    }
}

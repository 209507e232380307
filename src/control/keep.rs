//! `sampling.always_keep`: a trace the rate drops is kept all the same when
//! it has an error, a span slower than a threshold, or a total cost or token
//! count above one.
//!
//! The spans of a trace the rate drops are held (cloned, with their resource
//! and scope) until one of them triggers a keep, which releases the held
//! spans and keeps every later span of the trace, or until `window` has
//! passed since the trace's first held span: then the trace is decided by
//! the rate (its held spans are dropped, counted `sampled_out`, and later
//! spans are dropped without being held). At most `max_held_spans` spans
//! are held; beyond that the oldest held traces are decided by the rate.
//! A kept trace's spans carry `tracebridge.sampling_reason` (the Opik trace
//! row: `metadata.sampling_reason`).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, status};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::route::{ReceivedTraces, RequestContext};
use crate::semconv::{GenAiSpan, SpanContext};

/// The attribute a kept trace's spans carry.
pub const REASON_ATTRIBUTE: &str = crate::semconv::SAMPLING_REASON;

/// `sampling.always_keep` as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlwaysKeepConfig {
    /// A span with an error status keeps its trace.
    #[serde(default)]
    pub errors: bool,
    /// A span lasting longer keeps its trace.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde::option"
    )]
    pub latency_above: Option<Duration>,
    /// The trace's cost (USD, summed over its spans) above this keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_above: Option<f64>,
    /// The trace's tokens (summed over its spans) above this keep it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_above: Option<u64>,
    /// How long the spans of an undecided trace are held.
    #[serde(default = "default_window", with = "humantime_serde")]
    pub window: Duration,
    /// Spans held at once (of every undecided trace).
    #[serde(default = "default_max_held")]
    pub max_held_spans: usize,
}

fn default_window() -> Duration {
    Duration::from_secs(30)
}

fn default_max_held() -> usize {
    10_000
}

/// Why a trace the rate dropped was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepReason {
    Error,
    Latency,
    Cost,
    Tokens,
}

impl KeepReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Latency => "latency",
            Self::Cost => "cost",
            Self::Tokens => "tokens",
        }
    }
}

/// `sampling.always_keep`, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlwaysKeep {
    pub errors: bool,
    pub latency_above_ns: Option<u64>,
    pub cost_above: Option<f64>,
    pub tokens_above: Option<u64>,
    pub window: Duration,
    pub max_held_spans: usize,
}

impl AlwaysKeepConfig {
    pub fn validate(&self) -> Result<AlwaysKeep, String> {
        if !self.errors
            && self.latency_above.is_none()
            && self.cost_above.is_none()
            && self.tokens_above.is_none()
        {
            return Err(
                "give at least one of errors = true, latency_above, cost_above, tokens_above"
                    .into(),
            );
        }
        if self.window.is_zero() || self.max_held_spans == 0 {
            return Err("window and max_held_spans must be greater than zero".into());
        }
        if self.cost_above.is_some_and(|c| !c.is_finite() || c < 0.0) {
            return Err("cost_above must be a number of USD, 0 or more".into());
        }
        Ok(AlwaysKeep {
            errors: self.errors,
            latency_above_ns: self
                .latency_above
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            cost_above: self.cost_above,
            tokens_above: self.tokens_above,
            window: self.window,
            max_held_spans: self.max_held_spans,
        })
    }
}

/// What a trace's spans added up to so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    cost: f64,
    tokens: u64,
}

impl AlwaysKeep {
    /// Whether deciding needs the normalised view (cost, tokens).
    pub fn needs_view(&self) -> bool {
        self.cost_above.is_some() || self.tokens_above.is_some()
    }

    /// Adds one span to its trace's summary; the reason to keep the trace,
    /// if the span (or the sum) gives one.
    pub fn check(
        &self,
        span: &Span,
        view: Option<&GenAiSpan>,
        sum: &mut Summary,
    ) -> Option<KeepReason> {
        let error = span
            .status
            .as_ref()
            .is_some_and(|s| s.code == status::StatusCode::Error as i32);
        if self.errors && (error || view.is_some_and(|g| g.error.is_some())) {
            return Some(KeepReason::Error);
        }
        let took = span
            .end_time_unix_nano
            .saturating_sub(span.start_time_unix_nano);
        if self.latency_above_ns.is_some_and(|t| took > t) {
            return Some(KeepReason::Latency);
        }
        if let Some(g) = view {
            sum.cost += g.cost.total_usd().unwrap_or(0.0);
            let tokens = g.usage.total_tokens().unwrap_or(0);
            sum.tokens = sum
                .tokens
                .saturating_add(u64::try_from(tokens).unwrap_or(0));
        }
        if self.cost_above.is_some_and(|t| sum.cost > t) {
            return Some(KeepReason::Cost);
        }
        if self.tokens_above.is_some_and(|t| sum.tokens > t) {
            return Some(KeepReason::Tokens);
        }
        None
    }
}

/// The spans of one undecided trace.
struct HeldTrace {
    since: Instant,
    summary: Summary,
    context: RequestContext,
    spans: Vec<ResourceSpans>,
}

/// The spans of undecided traces, bounded in count and time.
#[derive(Default)]
pub struct Hold {
    traces: HashMap<[u8; 16], HeldTrace>,
    order: VecDeque<[u8; 16]>,
    spans: usize,
}

impl Hold {
    /// The summary of a held trace so far (empty for a trace not held).
    pub fn summary(&self, trace: &[u8; 16]) -> Summary {
        self.traces
            .get(trace)
            .map(|t| t.summary)
            .unwrap_or_default()
    }

    /// Holds `span` (with its resource and scope from `ctx`); returns the
    /// traces pushed out to make room (decided by the rate) and their span
    /// count.
    #[allow(clippy::too_many_arguments)]
    pub fn hold(
        &mut self,
        k: &AlwaysKeep,
        trace: [u8; 16],
        span: &Span,
        at: (&ResourceSpans, &ScopeSpans),
        summary: Summary,
        context: &RequestContext,
        now: Instant,
    ) -> (Vec<[u8; 16]>, usize) {
        let entry = self.traces.entry(trace).or_insert_with(|| {
            self.order.push_back(trace);
            HeldTrace {
                since: now,
                summary,
                context: RequestContext {
                    transport: context.transport,
                    project_name: context.project_name.clone(),
                    tenant: context.tenant.clone(),
                },
                spans: Vec::new(),
            }
        });
        entry.summary = summary;
        entry.spans.push(ResourceSpans {
            resource: at.0.resource.clone(),
            schema_url: at.0.schema_url.clone(),
            scope_spans: vec![ScopeSpans {
                scope: at.1.scope.clone(),
                spans: vec![span.clone()],
                schema_url: at.1.schema_url.clone(),
            }],
        });
        self.spans += 1;
        let mut out = (Vec::new(), 0);
        while self.spans > k.max_held_spans {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(t) = self.traces.remove(&oldest) {
                self.spans -= t.spans.len();
                out.0.push(oldest);
                out.1 += t.spans.len();
            }
        }
        out
    }

    /// The held spans of a trace now kept, as one request.
    pub fn release(&mut self, trace: &[u8; 16]) -> Option<ReceivedTraces> {
        let t = self.traces.remove(trace)?;
        self.order.retain(|o| o != trace);
        self.spans -= t.spans.len();
        let mut r = ReceivedTraces::new(t.spans);
        r.context = t.context;
        Some(r)
    }

    /// Traces held for `window` or longer, removed: decided by the rate.
    pub fn expire(&mut self, now: Instant, window: Duration) -> (Vec<[u8; 16]>, usize) {
        let mut out = (Vec::new(), 0);
        while let Some(oldest) = self.order.front().copied() {
            let Some(t) = self.traces.get(&oldest) else {
                self.order.pop_front();
                continue;
            };
            if now.saturating_duration_since(t.since) < window {
                break;
            }
            self.order.pop_front();
            if let Some(t) = self.traces.remove(&oldest) {
                self.spans -= t.spans.len();
                out.0.push(oldest);
                out.1 += t.spans.len();
            }
        }
        out
    }
}

/// Joins held requests released in one plan into one.
pub fn merge(into: &mut Option<ReceivedTraces>, more: ReceivedTraces) {
    match into {
        None => *into = Some(more),
        Some(r) => {
            r.span_count += more.span_count;
            r.resource_spans.extend(more.resource_spans);
        }
    }
}

/// The view of a span as the keep check needs it.
pub fn view_for(k: &AlwaysKeep, span: &Span, ctx: SpanContext<'_>) -> Option<GenAiSpan> {
    k.needs_view().then(|| crate::semconv::normalise(span, ctx))
}

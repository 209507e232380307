//! Per-destination controls: sampling and filters (and, by the same road,
//! prices), applied in the destination's mapper over the normalised view.
//!
//! A destination's [`Controls`] come from the shared part of its table
//! (`sampling`, `filter`); [`Controls::stage`] gives the mapper a
//! [`ControlStage`] only when something is configured, so a destination
//! without controls pays nothing. The stage runs once per request:
//! [`ControlStage::plan`] decides every span (see [`plan`]), counts what it
//! drops in `tracebridge_control_dropped_spans_total{reason}`, and the
//! mapper takes each span's [`Verdict`] through [`step`].

pub mod config;
mod filter;
pub mod keep;
mod memory;
mod plan;
pub mod prices;
pub mod redact;
mod sampling;
pub mod tenants;

use std::borrow::Cow;

use opentelemetry_proto::tonic::trace::v1::Span;

pub use config::{ControlTables, CostConfig, FilterConfig, RedactConfig, SamplingConfig};
pub use filter::glob;
pub use plan::{Plan, Verdict};
pub use sampling::{Sampling, hash};
pub use tenants::{Gate, TenantFilter, TenantPolicy, TenantsConfig};

use crate::route::ReceivedTraces;
use crate::semconv::GenAiSpan;
use crate::telemetry::DestinationTelemetry;
use crate::telemetry::reason::ControlDrop;

/// A destination's validated controls.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Controls {
    pub sampling: Option<Sampling>,
    pub drop_non_genai: bool,
    pub rules: Vec<filter::Rule>,
    pub cost: Option<CostControl>,
    pub redact: Option<redact::Redactor>,
    /// `tenants`: the tenants whose requests this destination takes (all
    /// when `None`); applied by [`Controls::gate`], not by the stage.
    pub tenants: Option<TenantFilter>,
}

/// `cost.compute = true`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct CostControl {
    pub table: std::sync::Arc<prices::PriceTable>,
    /// Calls under these providers are left to the destination's own pricing.
    pub skip_providers: Vec<String>,
}

impl CostControl {
    /// Fills the cost of an LLM or embedding call that carries usage but
    /// no cost, when the table knows its model.
    fn estimate(&self, g: &mut GenAiSpan, started_unix_ns: u64) {
        use crate::semconv::Kind;
        if !g.cost.is_empty()
            || !matches!(g.kind, Kind::Llm | Kind::Embedding)
            || g.usage.is_empty()
        {
            return;
        }
        let provider = g.provider.as_deref();
        if provider.is_some_and(|p| self.skip_providers.iter().any(|s| s == p)) {
            return;
        }
        let Some(model) = g.response_model.as_deref().or(g.request_model.as_deref()) else {
            return;
        };
        let at = started_unix_ns / 1_000_000_000;
        if let Some(cost) = self
            .table
            .find(provider, model, at)
            .and_then(|p| p.cost(&g.usage))
        {
            g.cost = cost;
            g.cost_estimated = true;
        }
    }
}

impl Controls {
    /// Nothing configured: the mapper skips the stage entirely.
    pub fn is_empty(&self) -> bool {
        self.sampling.is_none()
            && !self.drop_non_genai
            && self.rules.is_empty()
            && self.cost.is_none()
            && self.redact.is_none()
    }

    /// Whether deciding needs the normalised view.
    fn needs_view(&self) -> bool {
        self.drop_non_genai
            || !self.rules.is_empty()
            || self.cost.is_some()
            || self
                .sampling
                .is_some_and(|s| s.key == config::SamplingKey::Session)
    }

    /// `mapper` behind this destination's `tenants` (a pass-through
    /// without them).
    pub fn gate<M: crate::export::ItemMapper>(
        &self,
        mapper: M,
        telemetry: DestinationTelemetry,
    ) -> Gate<M> {
        Gate::new(mapper, self.tenants.clone(), telemetry)
    }

    /// The stage a mapper runs, if anything is configured.
    pub fn stage(&self, telemetry: DestinationTelemetry) -> Option<ControlStage> {
        (!self.is_empty()).then(|| ControlStage {
            controls: self.clone(),
            memory: memory::Memory::new(memory::REMEMBERED),
            hold: keep::Hold::default(),
            telemetry,
        })
    }
}

/// The controls of one destination, with what they remember between requests.
pub struct ControlStage {
    controls: Controls,
    memory: memory::Memory,
    /// Spans `sampling.always_keep` holds until their trace is decided.
    hold: keep::Hold,
    telemetry: DestinationTelemetry,
}

impl ControlStage {
    /// Decides every span of one request and counts the drops.
    pub fn plan(&mut self, traces: &ReceivedTraces) -> Plan {
        let plan = plan::plan(
            &self.controls,
            &mut self.memory,
            &mut self.hold,
            traces,
            tokio::time::Instant::now(),
        );
        for reason in ControlDrop::ALL {
            self.telemetry
                .control_dropped(*reason, plan.dropped[reason.index()]);
        }
        if let Some(r) = &self.controls.redact {
            for (rule, n) in r.rules.iter().zip(&plan.redacted) {
                self.telemetry.redaction_matches(&rule.name, *n, r.dry_run);
            }
        }
        plan
    }
}

/// What a mapper does with the `i`-th span of a request.
// Lives on the stack for one span; boxing the large variant would allocate per span.
#[allow(clippy::large_enum_variant)]
pub enum Step<'a> {
    /// Dropped by the controls.
    Skip,
    /// Map this span (re-parented if its parent was dropped), with the
    /// normalised view when the controls already made it.
    Map {
        span: Cow<'a, Span>,
        view: Option<Box<GenAiSpan>>,
        /// Why `sampling.always_keep` kept its trace the rate dropped.
        reason: Option<keep::KeepReason>,
    },
}

/// The step for the `i`-th span of a request (`plan` is `None` when the
/// destination has no controls).
pub fn step<'a>(plan: Option<&mut Plan>, i: usize, span: &'a Span) -> Step<'a> {
    let Some(plan) = plan else {
        return Step::Map {
            span: Cow::Borrowed(span),
            view: None,
            reason: None,
        };
    };
    match plan.take(i) {
        Verdict::Drop => Step::Skip,
        Verdict::Unchanged => Step::Map {
            span: Cow::Borrowed(span),
            view: None,
            reason: None,
        },
        Verdict::Keep {
            view,
            parent,
            redacted,
            reason,
        } => {
            let mut span = match redacted {
                Some(r) => Cow::Owned(*r),
                None => Cow::Borrowed(span),
            };
            if let Some(parent_span_id) = parent {
                span.to_mut().parent_span_id = parent_span_id;
            }
            Step::Map { span, view, reason }
        }
    }
}

#[cfg(test)]
mod tests;

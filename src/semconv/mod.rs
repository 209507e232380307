//! The GenAI normaliser: every span, whatever convention its instrumentation
//! used, is read into one [`GenAiSpan`]. This module is the only place that
//! knows attribute keys; destinations map from the normalised view.
//!
//! - [`read`]: one module per dialect, run in a fixed order into the model;
//! - [`model`]: the normalised view ([`GenAiSpan`], messages, usage, cost);
//! - [`write`]: renderings of the model for destinations (chat-shaped
//!   input/output, OpenInference attributes, Opik provider names);
//! - [`privacy`]: privacy mode, from what the readers claimed as content.
//!
//! Whatever no dialect claims lands in [`GenAiSpan::other_attributes`]
//! (metadata), never in the span's input.

pub mod logs;
mod model;
pub mod privacy;
pub mod read;
pub mod write;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

pub use model::*;

/// The attribute tracebridge adds to the spans of a trace
/// `sampling.always_keep` kept (a fact: privacy mode keeps it).
pub const SAMPLING_REASON: &str = "tracebridge.sampling_reason";
pub use read::{json_text, normalise, normalise_joined, parse_json_string, routing_project};

/// What the normaliser knows about a span's surroundings.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpanContext<'a> {
    pub resource_attributes: &'a [KeyValue],
    pub scope_name: &'a str,
}

impl<'a> SpanContext<'a> {
    /// The context of the spans of `ss`, inside `rs`.
    pub fn of(rs: &'a ResourceSpans, ss: &'a ScopeSpans) -> Self {
        Self {
            resource_attributes: crate::pdata::resource_attributes(rs),
            scope_name: crate::pdata::scope_name(ss),
        }
    }

    /// The resource's `service.name`, if any.
    pub fn service_name(&self) -> Option<&'a str> {
        crate::pdata::string_attribute(self.resource_attributes, "service.name")
    }
}

#[cfg(test)]
mod tests;

//! The OTLP mapper: per-trace project, OpenInference enrichment, privacy,
//! resource grouping.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

use super::config::{OtlpTarget, SemconvMode};
use crate::export::{ExportItem, ItemMapper};
use crate::pdata::hex_id;
use crate::route::ReceivedTraces;
use crate::semconv::privacy::Privacy;
use crate::semconv::{self, SpanContext};
use crate::telemetry::DestinationTelemetry;

/// Traces whose project choice is remembered (the first choice sticks).
const REMEMBERED_TRACES: usize = 100_000;

/// A resource as it will be exported (with the project and extra
/// attributes), with its fields of `ResourceSpans` already encoded.
#[derive(Debug)]
pub struct ResourceGroup {
    pub resource: Resource,
    pub schema_url: String,
    /// `resource` (field 1) and `schema_url` (field 3), encoded once.
    pub(super) encoded: Vec<u8>,
}

impl ResourceGroup {
    pub fn new(resource: Resource, schema_url: String) -> Self {
        let mut encoded = Vec::new();
        prost::encoding::message::encode(1, &resource, &mut encoded);
        if !schema_url.is_empty() {
            prost::encoding::string::encode(3, &schema_url, &mut encoded);
        }
        Self {
            resource,
            schema_url,
            encoded,
        }
    }
}

impl PartialEq for ResourceGroup {
    fn eq(&self, other: &Self) -> bool {
        self.encoded == other.encoded
    }
}

/// A scope as it will be exported, with its fields of `ScopeSpans` encoded.
#[derive(Debug)]
pub struct ScopeGroup {
    pub scope: Option<InstrumentationScope>,
    pub schema_url: String,
    /// `scope` (field 1) and `schema_url` (field 3), encoded once.
    pub(super) encoded: Vec<u8>,
}

impl ScopeGroup {
    pub fn new(scope: Option<InstrumentationScope>, schema_url: String) -> Self {
        let mut encoded = Vec::new();
        if let Some(scope) = &scope {
            prost::encoding::message::encode(1, scope, &mut encoded);
        }
        if !schema_url.is_empty() {
            prost::encoding::string::encode(3, &schema_url, &mut encoded);
        }
        Self {
            scope,
            schema_url,
            encoded,
        }
    }
}

impl PartialEq for ScopeGroup {
    fn eq(&self, other: &Self) -> bool {
        self.encoded == other.encoded
    }
}

/// One span to forward, already encoded, with the resource and scope it
/// belongs to (shared by the spans of one request, so re-batching keeps the
/// grouping). Encoding here, on the destination's mapping task, is the only
/// time the span is encoded: batches are written by concatenation
/// ([`super::request`]).
#[derive(Debug)]
pub struct OtlpItem {
    pub resource: Arc<ResourceGroup>,
    pub scope: Arc<ScopeGroup>,
    /// The `Span` message, encoded.
    pub span: Bytes,
}

impl OtlpItem {
    pub fn new(resource: Arc<ResourceGroup>, scope: Arc<ScopeGroup>, span: &Span) -> Self {
        Self::encoded(resource, scope, span.encode_to_vec())
    }

    fn encoded(resource: Arc<ResourceGroup>, scope: Arc<ScopeGroup>, span: Vec<u8>) -> Self {
        Self {
            resource,
            scope,
            span: Bytes::from(span),
        }
    }

    /// The span as a message again (tests and tools; the export path never
    /// decodes).
    pub fn decoded_span(&self) -> Span {
        Span::decode(self.span.clone()).unwrap_or_default()
    }
}

impl ExportItem for OtlpItem {
    fn encoded_size(&self) -> usize {
        self.span.len() + 8
    }
    fn describe(&self) -> String {
        let span = self.decoded_span();
        format!(
            "span {} of trace {}",
            hex_id(&span.span_id),
            hex_id(&span.trace_id)
        )
    }
}

/// Remembers the project each trace was first routed to.
#[derive(Default)]
struct ProjectMemory {
    by_trace: HashMap<Vec<u8>, Arc<str>>,
    order: VecDeque<Vec<u8>>,
}

impl ProjectMemory {
    fn get_or_choose(
        &mut self,
        trace_id: &[u8],
        choose: impl FnOnce() -> Option<Arc<str>>,
    ) -> Option<Arc<str>> {
        if let Some(p) = self.by_trace.get(trace_id) {
            return Some(p.clone());
        }
        let chosen = choose()?;
        if self.order.len() >= REMEMBERED_TRACES {
            if let Some(old) = self.order.pop_front() {
                self.by_trace.remove(&old);
            }
        }
        self.order.push_back(trace_id.to_vec());
        self.by_trace.insert(trace_id.to_vec(), chosen.clone());
        Some(chosen)
    }
}

pub struct OtlpMapper {
    target: OtlpTarget,
    privacy: Option<Privacy>,
    projects: ProjectMemory,
    telemetry: DestinationTelemetry,
}

impl OtlpMapper {
    pub fn new(
        target: OtlpTarget,
        privacy: Option<Privacy>,
        telemetry: DestinationTelemetry,
    ) -> Self {
        Self {
            target,
            privacy,
            projects: ProjectMemory::default(),
            telemetry,
        }
    }

    /// The resource to export: the original attributes, the configured extra
    /// ones where absent, and the routing project (which wins).
    fn resource_for(
        &self,
        original: Option<&Resource>,
        schema_url: &str,
        project: Option<&str>,
    ) -> ResourceGroup {
        let mut resource = original.cloned().unwrap_or_default();
        for (k, v) in &self.target.resource_attributes {
            if !resource.attributes.iter().any(|kv| &kv.key == k) {
                resource.attributes.push(string_kv(k, v));
            }
        }
        if let Some(p) = project {
            let mut set = |key: &str| {
                resource.attributes.retain(|kv| kv.key != key);
                resource.attributes.push(string_kv(key, p));
            };
            set("openinference.project.name");
            if self.target.project_as_model_id {
                set("model_id");
            }
        }
        ResourceGroup::new(resource, schema_url.to_string())
    }

    /// The span to export, encoded: redacted under privacy mode (before
    /// enrichment, so the readers' claims still match its attributes), then
    /// enriched. Without privacy mode the span is encoded straight from the
    /// request (no copy); enrichment appends its attributes to the encoded
    /// span, which protobuf reads as more entries of the repeated field.
    fn encode_span(
        &self,
        span: &Span,
        g: Option<&semconv::GenAiSpan>,
        ctx: SpanContext<'_>,
    ) -> Vec<u8> {
        let redacted = match (&self.privacy, g) {
            (None, _) => None,
            (Some(p), Some(g)) => {
                let mut copy = span.clone();
                let removed = p.redact_span(&mut copy, &g.claims);
                self.telemetry.privacy_removed(removed.by_reason());
                Some(copy)
            }
            (Some(p), None) => {
                let (copy, removed) = p.redacted_copy(span, ctx);
                self.telemetry.privacy_removed(removed.by_reason());
                Some(copy)
            }
        };
        let span = redacted.as_ref().unwrap_or(span);
        let mut out = span.encode_to_vec();
        if let Some(g) = g {
            let privacy = self.privacy.is_some();
            for (key, value) in semconv::write::openinference::attributes(g, privacy) {
                if !span.attributes.iter().any(|kv| kv.key == key) {
                    let kv = KeyValue {
                        key,
                        value: Some(AnyValue { value: Some(value) }),
                        ..Default::default()
                    };
                    prost::encoding::message::encode(SPAN_ATTRIBUTES, &kv, &mut out);
                }
            }
        }
        out
    }
}

/// `Span.attributes`' field number.
const SPAN_ATTRIBUTES: u32 = 9;

fn string_kv(k: &str, v: &str) -> KeyValue {
    crate::pdata::key_value(k, Value::StringValue(v.to_string()))
}

impl ItemMapper for OtlpMapper {
    type Item = OtlpItem;

    fn map(&mut self, traces: &ReceivedTraces, out: &mut Vec<OtlpItem>) {
        for rs in &traces.resource_spans {
            let mut groups: HashMap<Option<Arc<str>>, Arc<ResourceGroup>> = HashMap::new();
            for ss in &rs.scope_spans {
                let scope = Arc::new(ScopeGroup::new(ss.scope.clone(), ss.schema_url.clone()));
                let ctx = SpanContext::of(rs, ss);
                for span in &ss.spans {
                    // Only enrichment needs the whole normalised view; routing
                    // needs just the project.
                    let g = (self.target.semconv == SemconvMode::Openinference)
                        .then(|| semconv::normalise(span, ctx));
                    for w in g.iter().flat_map(|g| &g.warnings) {
                        self.telemetry.mapping_warning(*w);
                    }
                    let default = &self.target.project_name;
                    let header = &traces.context.project_name;
                    let project = self.projects.get_or_choose(&span.trace_id, || {
                        let asked = match &g {
                            Some(g) => g.project_name.clone(),
                            None => semconv::routing_project(span, ctx),
                        };
                        asked
                            .as_deref()
                            .or(header.as_deref())
                            .or(default.as_deref())
                            .map(Arc::from)
                    });
                    let resource = match groups.get(&project) {
                        Some(r) => r.clone(),
                        None => {
                            let r = Arc::new(self.resource_for(
                                rs.resource.as_ref(),
                                &rs.schema_url,
                                project.as_deref(),
                            ));
                            groups.insert(project.clone(), r.clone());
                            r
                        }
                    };
                    let span = self.encode_span(span, g.as_ref(), ctx);
                    out.push(OtlpItem::encoded(resource, scope.clone(), span));
                }
            }
        }
    }
}

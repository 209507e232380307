//! The OTLP mapper: per-trace project, OpenInference enrichment, privacy,
//! resource grouping.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

use super::config::{OtlpTarget, SemconvMode};
use crate::control::{self, ControlStage, Step};
use crate::export::{ExportItem, ItemMapper};
use crate::pdata::hex_id;
use crate::route::ReceivedTraces;
use crate::semconv::privacy::Privacy;
use crate::semconv::{self, SpanContext};
use crate::telemetry::DestinationTelemetry;

/// Traces whose project choice is remembered (the first choice sticks).
const REMEMBERED_TRACES: usize = 100_000;

/// A resource as it will be exported (with the project and extra attributes).
#[derive(Debug, PartialEq)]
pub struct ResourceGroup {
    pub resource: Resource,
    pub schema_url: String,
}

#[derive(Debug, PartialEq)]
pub struct ScopeGroup {
    pub scope: Option<InstrumentationScope>,
    pub schema_url: String,
}

/// One span to forward, with the resource and scope it belongs to (shared
/// by the spans of one request, so re-batching keeps the grouping).
#[derive(Debug)]
pub struct OtlpItem {
    pub resource: Arc<ResourceGroup>,
    pub scope: Arc<ScopeGroup>,
    pub span: Span,
    size: usize,
}

impl ExportItem for OtlpItem {
    fn encoded_size(&self) -> usize {
        self.size
    }
    fn describe(&self) -> String {
        format!(
            "span {} of trace {}",
            hex_id(&self.span.span_id),
            hex_id(&self.span.trace_id)
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
    controls: Option<ControlStage>,
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
            controls: None,
        }
    }

    /// Applies the destination's controls (sampling, filters) first.
    pub fn with_controls(mut self, controls: Option<ControlStage>) -> Self {
        self.controls = controls;
        self
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
        ResourceGroup {
            resource,
            schema_url: schema_url.to_string(),
        }
    }

    /// The span to export: redacted under privacy mode (before enrichment,
    /// so the readers' claims still match its attributes), then enriched.
    fn prepare_span(
        &self,
        span: &Span,
        g: Option<&semconv::GenAiSpan>,
        ctx: SpanContext<'_>,
    ) -> Span {
        let mut span = match (&self.privacy, g) {
            (None, _) => span.clone(),
            (Some(p), Some(g)) => {
                let mut copy = span.clone();
                let removed = p.redact_span(&mut copy, &g.claims);
                self.telemetry.privacy_removed(removed.by_reason());
                copy
            }
            (Some(p), None) => {
                let (copy, removed) = p.redacted_copy(span, ctx);
                self.telemetry.privacy_removed(removed.by_reason());
                copy
            }
        };
        if let Some(g) = g {
            let privacy = self.privacy.is_some();
            add_absent(
                &mut span,
                semconv::write::openinference::attributes(g, privacy),
            );
        }
        span
    }
}

/// Adds each attribute the span does not already carry.
fn add_absent(span: &mut Span, attributes: Vec<(String, Value)>) {
    for (key, value) in attributes {
        if !span.attributes.iter().any(|kv| kv.key == key) {
            span.attributes.push(KeyValue {
                key,
                value: Some(AnyValue { value: Some(value) }),
                ..Default::default()
            });
        }
    }
}

fn string_kv(k: &str, v: &str) -> KeyValue {
    crate::pdata::key_value(k, Value::StringValue(v.to_string()))
}

impl ItemMapper for OtlpMapper {
    type Item = OtlpItem;

    fn map(&mut self, traces: &ReceivedTraces, out: &mut Vec<OtlpItem>) {
        let mut plan = self.controls.as_mut().map(|c| c.plan(traces));
        let mut index = 0;
        for rs in &traces.resource_spans {
            let mut groups: HashMap<Option<Arc<str>>, Arc<ResourceGroup>> = HashMap::new();
            for ss in &rs.scope_spans {
                let scope = Arc::new(ScopeGroup {
                    scope: ss.scope.clone(),
                    schema_url: ss.schema_url.clone(),
                });
                let ctx = SpanContext::of(rs, ss);
                for span in &ss.spans {
                    index += 1;
                    let (span, view) = match control::step(plan.as_mut(), index - 1, span) {
                        Step::Skip => continue,
                        Step::Map { span, view } => (span, view),
                    };
                    let span = span.as_ref();
                    // Only enrichment needs the whole normalised view; routing
                    // needs just the project.
                    // A cost the controls estimated is written in every mode.
                    let estimated = view
                        .as_deref()
                        .filter(|v| v.cost_estimated)
                        .map(semconv::write::openinference::estimated_cost);
                    let g = (self.target.semconv == SemconvMode::Openinference)
                        .then(|| view.map_or_else(|| semconv::normalise(span, ctx), |v| *v));
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
                    let mut span = self.prepare_span(span, g.as_ref(), ctx);
                    if let Some(cost) = estimated {
                        add_absent(&mut span, cost);
                    }
                    let size = span.encoded_len() + 8;
                    out.push(OtlpItem {
                        resource,
                        scope: scope.clone(),
                        span,
                        size,
                    });
                }
            }
        }
    }
}

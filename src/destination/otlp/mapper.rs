//! The OTLP mapper: per-trace project, OpenInference enrichment, privacy,
//! resource grouping; log records and metrics forwarded when the
//! destination's `signals` name them.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

use super::config::{OtlpTarget, SemconvMode};
use super::log_join::{Joiner, SpanAt, TICK};
use crate::control::{self, ControlStage, Step};
use crate::export::{ExportItem, ItemMapper};
use crate::pdata::hex_id;
use crate::route::ReceivedTraces;
use crate::semconv::privacy::Privacy;
use crate::semconv::{self, SpanContext};
use crate::telemetry::DestinationTelemetry;
use crate::telemetry::reason::Signal;

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

/// One span, log record or metric to forward, already encoded, with the
/// resource and scope it belongs to (shared by the items of one request, so
/// re-batching keeps the grouping). Encoding here, on the destination's
/// mapping task, is the only time it is encoded: batches are written by
/// concatenation ([`super::request`]).
#[derive(Debug)]
pub struct OtlpItem {
    pub resource: Arc<ResourceGroup>,
    pub scope: Arc<ScopeGroup>,
    pub signal: Signal,
    /// The `Span`, `LogRecord` or `Metric` message, encoded.
    pub message: Bytes,
    /// Spans or log records: 1; a metric: its data points.
    pub count: usize,
    /// The spool record a span held back for its log records came from.
    pub origin: Option<u64>,
}

impl OtlpItem {
    pub fn new(resource: Arc<ResourceGroup>, scope: Arc<ScopeGroup>, span: &Span) -> Self {
        Self::encoded(resource, scope, Bytes::from(span.encode_to_vec()))
    }

    pub(super) fn encoded(
        resource: Arc<ResourceGroup>,
        scope: Arc<ScopeGroup>,
        span: Bytes,
    ) -> Self {
        Self {
            resource,
            scope,
            signal: Signal::Traces,
            message: span,
            count: 1,
            origin: None,
        }
    }

    /// The span as a message again (tests and tools; the export path never
    /// decodes).
    pub fn decoded_span(&self) -> Span {
        Span::decode(self.message.clone()).unwrap_or_default()
    }
}

impl ExportItem for OtlpItem {
    fn encoded_size(&self) -> usize {
        self.message.len() + 8
    }
    fn span_count(&self) -> usize {
        if self.signal == Signal::Traces {
            self.count
        } else {
            0
        }
    }
    fn signal(&self) -> Signal {
        self.signal
    }
    fn origin(&self) -> Option<u64> {
        self.origin
    }
    fn signal_items(&self) -> usize {
        if self.signal == Signal::Traces {
            0
        } else {
            self.count
        }
    }
    fn describe(&self) -> String {
        match self.signal {
            Signal::Traces => {
                let span = self.decoded_span();
                format!(
                    "span {} of trace {}",
                    hex_id(&span.span_id),
                    hex_id(&span.trace_id)
                )
            }
            Signal::Logs => {
                let record = LogRecord::decode(self.message.clone()).unwrap_or_default();
                format!(
                    "log record {:?} of trace {}",
                    record.event_name,
                    hex_id(&record.trace_id)
                )
            }
            Signal::Metrics => {
                let metric = Metric::decode(self.message.clone()).unwrap_or_default();
                format!("metric {:?} ({} data points)", metric.name, self.count)
            }
        }
    }
}

/// Remembers the project each trace was first routed to.
#[derive(Default)]
struct ProjectMemory {
    by_trace: HashMap<Vec<u8>, Arc<str>>,
    order: VecDeque<Vec<u8>>,
}

impl ProjectMemory {
    /// The project a trace was routed to, if it was.
    fn get(&self, trace_id: &[u8]) -> Option<Arc<str>> {
        self.by_trace.get(trace_id).cloned()
    }

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
    pub(super) telemetry: DestinationTelemetry,
    controls: Option<ControlStage>,
    /// `openinference` mode: GenAI log records joining their spans.
    pub(super) joiner: Option<Joiner>,
    /// The first log position of the spool record being mapped.
    record: Option<u64>,
}

impl OtlpMapper {
    pub fn new(
        target: OtlpTarget,
        privacy: Option<Privacy>,
        telemetry: DestinationTelemetry,
    ) -> Self {
        let joiner =
            (target.semconv == SemconvMode::Openinference).then(|| Joiner::new(target.log_join));
        Self {
            target,
            privacy,
            projects: ProjectMemory::default(),
            telemetry,
            controls: None,
            joiner,
            record: None,
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
        ResourceGroup::new(resource, schema_url.to_string())
    }

    /// The span to export, encoded: redacted under privacy mode (before
    /// enrichment, so the readers' claims still match its attributes), then
    /// enriched. Without privacy mode the span is encoded straight from the
    /// request (no copy); enrichment appends its attributes to the encoded
    /// span, which protobuf reads as more entries of the repeated field.
    pub(super) fn encode_span(
        &self,
        span: &Span,
        g: Option<&semconv::GenAiSpan>,
        ctx: SpanContext<'_>,
        estimated_cost: Option<Vec<(String, Value)>>,
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
        let mut extra = match g {
            Some(g) => semconv::write::openinference::attributes(g, self.privacy.is_some()),
            None => Vec::new(),
        };
        extra.extend(estimated_cost.into_iter().flatten());
        append_absent(&mut out, span, extra);
        out
    }
}

impl OtlpMapper {
    /// Each span's bytes as received, when they are forwarded unchanged
    /// (pass-through, no privacy mode) and the receiver kept the request's
    /// bytes: slices of them, in the order the spans are visited.
    fn unchanged_spans(&self, traces: &ReceivedTraces) -> Option<Vec<Bytes>> {
        if self.target.semconv != SemconvMode::Passthrough || self.privacy.is_some() {
            return None;
        }
        let slices = crate::pdata::wire::span_slices(traces.raw.as_ref()?)?;
        (slices.len() == traces.spans().count()).then_some(slices)
    }
}

/// `Span.attributes`' field number.
const SPAN_ATTRIBUTES: u32 = 9;

/// Appends to the encoded `span` (`out`) each attribute it does not already
/// carry, first one of a key wins: protobuf reads fields appended to a
/// message as more entries of its repeated `attributes`.
fn append_absent(out: &mut Vec<u8>, span: &Span, attributes: Vec<(String, Value)>) {
    let mut added: Vec<String> = Vec::new();
    for (key, value) in attributes {
        if span.attributes.iter().any(|kv| kv.key == key) || added.contains(&key) {
            continue;
        }
        let kv = KeyValue {
            key,
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        };
        prost::encoding::message::encode(SPAN_ATTRIBUTES, &kv, out);
        added.push(kv.key);
    }
}

fn string_kv(k: &str, v: &str) -> KeyValue {
    crate::pdata::key_value(k, Value::StringValue(v.to_string()))
}

impl ItemMapper for OtlpMapper {
    type Item = OtlpItem;

    fn takes_logs(&self) -> bool {
        self.target.signals.logs || self.joiner.is_some()
    }

    fn map_record(
        &mut self,
        traces: &ReceivedTraces,
        record: Option<(u64, u64)>,
        out: &mut Vec<OtlpItem>,
    ) {
        self.record = record.map(|(start, _)| start);
        self.map(traces, out);
    }

    fn replay_from(&self) -> Option<u64> {
        self.joiner.as_ref().and_then(Joiner::replay_from)
    }

    fn tick_interval(&self) -> Option<std::time::Duration> {
        self.joiner.as_ref().map(|_| TICK)
    }

    fn on_tick(&mut self, now: tokio::time::Instant, out: &mut Vec<OtlpItem>) {
        self.expire_joins(now, out);
    }

    fn on_shutdown(&mut self, out: &mut Vec<OtlpItem>) {
        self.drain_joins(out);
    }

    fn takes_metrics(&self) -> bool {
        self.target.signals.metrics
    }

    fn map(&mut self, traces: &ReceivedTraces, out: &mut Vec<OtlpItem>) {
        if self.target.signals.logs {
            self.map_logs(traces, out);
        }
        self.join_logs(traces, out);
        if self.target.signals.metrics {
            self.map_metrics(traces, out);
        }
        let unchanged = self.unchanged_spans(traces);
        let mut plan = self.controls.as_mut().map(|c| c.plan(traces));
        let mut index = 0;
        for rs in &traces.resource_spans {
            let mut groups: HashMap<Option<Arc<str>>, Arc<ResourceGroup>> = HashMap::new();
            for ss in &rs.scope_spans {
                let scope = Arc::new(ScopeGroup::new(ss.scope.clone(), ss.schema_url.clone()));
                let ctx = SpanContext::of(rs, ss);
                for span in &ss.spans {
                    index += 1;
                    let (cow, view) = match control::step(plan.as_mut(), index - 1, span) {
                        Step::Skip => continue,
                        Step::Map { span, view, .. } => (span, view),
                    };
                    let span = cow.as_ref();
                    // Only enrichment needs the whole normalised view; routing
                    // needs just the project.
                    // A cost the controls estimated is written in every mode.
                    let estimated = view
                        .as_deref()
                        .filter(|v| v.cost_estimated)
                        .map(semconv::write::openinference::estimated_cost);
                    let mut g = (self.target.semconv == SemconvMode::Openinference)
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
                    if let Some(view) = g.take() {
                        let at = SpanAt {
                            span,
                            ctx,
                            resource: &resource,
                            scope: &scope,
                            estimated: estimated.clone(),
                            from: self.record,
                            tenant: traces.context.tenant.as_ref(),
                        };
                        match self.join_span(at, view, out) {
                            Some(joined) => g = Some(joined),
                            None => continue, // held for its log records
                        }
                    }
                    // The bytes as received, when the span is forwarded as it
                    // came (not re-parented or redacted by the controls).
                    let as_received = match (&unchanged, &cow, &estimated) {
                        (Some(slices), Cow::Borrowed(_), None) => slices.get(index - 1).cloned(),
                        _ => None,
                    };
                    let span = match as_received {
                        Some(bytes) => bytes,
                        None => Bytes::from(self.encode_span(span, g.as_ref(), ctx, estimated)),
                    };
                    out.push(OtlpItem::encoded(resource, scope.clone(), span));
                }
            }
        }
        // Spans `sampling.always_keep` held until now, their trace kept.
        if let Some(released) = plan.as_mut().and_then(control::Plan::take_released) {
            self.map(&released, out);
        }
    }
}

impl OtlpMapper {
    /// The project of a log record or metric: its trace's, when the trace
    /// was routed here, else the request's `projectName`, else the
    /// destination's (never chosen for the trace: its spans choose).
    fn project_of(&self, trace_id: &[u8], traces: &ReceivedTraces) -> Option<Arc<str>> {
        self.projects.get(trace_id).or_else(|| {
            traces
                .context
                .project_name
                .as_deref()
                .or(self.target.project_name.as_deref())
                .map(Arc::from)
        })
    }

    /// Log records, forwarded one item each, grouped as they came; under
    /// privacy mode each is redacted first ([`Privacy::redact_record`]).
    fn map_logs(&mut self, traces: &ReceivedTraces, out: &mut Vec<OtlpItem>) {
        for rl in &traces.resource_logs {
            let mut groups: HashMap<Option<Arc<str>>, Arc<ResourceGroup>> = HashMap::new();
            for sl in &rl.scope_logs {
                let scope = Arc::new(ScopeGroup::new(sl.scope.clone(), sl.schema_url.clone()));
                for record in &sl.log_records {
                    let project = self.project_of(&record.trace_id, traces);
                    let resource = groups
                        .entry(project.clone())
                        .or_insert_with(|| {
                            Arc::new(self.resource_for(
                                rl.resource.as_ref(),
                                &rl.schema_url,
                                project.as_deref(),
                            ))
                        })
                        .clone();
                    let message = match &self.privacy {
                        None => record.encode_to_vec(),
                        Some(p) => {
                            let mut copy = record.clone();
                            let removed = p.redact_record(&mut copy);
                            self.telemetry.privacy_removed(removed.by_reason());
                            copy.encode_to_vec()
                        }
                    };
                    out.push(OtlpItem {
                        resource,
                        scope: scope.clone(),
                        signal: Signal::Logs,
                        message: Bytes::from(message),
                        count: 1,
                        origin: None,
                    });
                }
            }
        }
    }

    /// Metrics, forwarded one item per metric (with its data points),
    /// unchanged: they carry measurements, not content.
    fn map_metrics(&mut self, traces: &ReceivedTraces, out: &mut Vec<OtlpItem>) {
        for rm in &traces.resource_metrics {
            let project = self.project_of(&[], traces);
            let resource = Arc::new(self.resource_for(
                rm.resource.as_ref(),
                &rm.schema_url,
                project.as_deref(),
            ));
            for sm in &rm.scope_metrics {
                let scope = Arc::new(ScopeGroup::new(sm.scope.clone(), sm.schema_url.clone()));
                for metric in &sm.metrics {
                    out.push(OtlpItem {
                        resource: resource.clone(),
                        scope: scope.clone(),
                        signal: Signal::Metrics,
                        message: Bytes::from(metric.encode_to_vec()),
                        count: crate::pdata::data_points(metric),
                        origin: None,
                    });
                }
            }
        }
    }
}

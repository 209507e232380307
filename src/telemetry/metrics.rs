//! The daemon's own Prometheus metrics, named like the OpenTelemetry
//! Collector's (`otelcol_receiver_accepted_spans` → `tracebridge_receiver_accepted_spans_total`)
//! so that users who know one know the other.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::reason::{
    ControlDrop, DropReason, LogOutcome, MappingWarning, MetricOutcome, Redaction, Refusal,
    SendFailure, Signal, StateError, ValueCut,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabels {
    pub transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportReasonLabels {
    pub transport: &'static str,
    pub reason: Refusal,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportCutLabels {
    pub transport: &'static str,
    pub reason: ValueCut,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportSignalLabels {
    pub transport: &'static str,
    pub signal: Signal,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartLabels {
    pub part: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: MappingWarning,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationLabels {
    pub destination: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationLogLabels {
    pub destination: String,
    pub outcome: LogOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationMetricLabels {
    pub destination: String,
    pub outcome: MetricOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationDropLabels {
    pub destination: String,
    pub reason: DropReason,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationRedactionLabels {
    pub destination: String,
    pub reason: Redaction,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationStateLabels {
    pub destination: String,
    pub reason: StateError,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationControlLabels {
    pub destination: String,
    pub reason: ControlDrop,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationRuleLabels {
    pub destination: String,
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
    pub commit: &'static str,
}

/// The git commit the binary was built from (`unknown` outside a checkout).
pub const COMMIT: &str = env!("TB_GIT_COMMIT");

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationSendLabels {
    pub destination: String,
    pub reason: SendFailure,
}

fn request_duration_histogram() -> Histogram {
    // 1 ms … ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric the daemon exports. Cheap to clone (all handles are `Arc`s inside).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// `process_*`, without our prefix (the names every client library uses).
    process: Arc<Registry>,
    pub receiver_accepted_spans: Family<TransportLabels, Counter>,
    pub receiver_refused_spans: Family<TransportReasonLabels, Counter>,
    pub receiver_refused_requests: Family<TransportReasonLabels, Counter>,
    pub receiver_cut_values: Family<TransportCutLabels, Counter>,
    pub receiver_request_duration: HistogramFamily<TransportLabels>,
    pub receiver_open_connections: Family<TransportLabels, Gauge>,
    pub receiver_accept_errors: Family<TransportLabels, Counter>,
    pub receiver_accepted_log_records: Family<TransportLabels, Counter>,
    pub receiver_accepted_metric_points: Family<TransportLabels, Counter>,
    pub receiver_unforwarded_items: Family<TransportSignalLabels, Counter>,
    pub exporter_sent_spans: Family<DestinationLabels, Counter>,
    pub exporter_send_failed_spans: Family<DestinationSendLabels, Counter>,
    pub exporter_dropped_spans: Family<DestinationDropLabels, Counter>,
    pub exporter_log_records: Family<DestinationLogLabels, Counter>,
    pub exporter_metric_points: Family<DestinationMetricLabels, Counter>,
    pub exporter_retries: Family<DestinationSendLabels, Counter>,
    pub exporter_queue_size: Family<DestinationLabels, Gauge>,
    pub exporter_queue_capacity: Family<DestinationLabels, Gauge>,
    pub exporter_request_duration: HistogramFamily<DestinationLabels>,
    pub mapping_warnings: Family<ReasonLabels, Counter>,
    pub exporter_rejected_spans: Family<DestinationLabels, Counter>,
    pub privacy_redacted: Family<DestinationRedactionLabels, Counter>,
    pub trace_state_errors: Family<DestinationStateLabels, Counter>,
    pub control_dropped_spans: Family<DestinationControlLabels, Counter>,
    pub redacted_values: Family<DestinationRuleLabels, Counter>,
    pub spool: SpoolMetrics,
    /// Bytes held against `limits.memory`, by part (see `crate::budget`).
    pub memory: Family<PartLabels, Gauge>,
    pub memory_limit: Gauge,
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// The durable spool's metrics (`tracebridge_spool_*`).
#[derive(Clone, Default)]
pub struct SpoolMetrics {
    pub bytes: Family<DestinationLabels, Gauge>,
    pub records: Family<DestinationLabels, Gauge>,
    pub oldest_age: Family<DestinationLabels, FloatGauge>,
    pub replayed_spans: Family<DestinationLabels, Counter>,
    pub segments: Gauge,
    pub torn_records: Counter,
    pub corrupt_records: Counter,
}

impl SpoolMetrics {
    fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("spool");
        r.register(
            "bytes",
            "Bytes of spooled requests a destination has not finished",
            self.bytes.clone(),
        );
        r.register(
            "records",
            "Spooled requests a destination has not finished (estimated per segment)",
            self.records.clone(),
        );
        r.register(
            "oldest_record_age_seconds",
            "Age of the oldest spooled request a destination has not finished (segment precision)",
            self.oldest_age.clone(),
        );
        r.register(
            "replayed_spans",
            "Spans read again from the spool after a restart (at-least-once: some were delivered before)",
            self.replayed_spans.clone(),
        );
        r.register(
            "segments",
            "Spool segment files on disk",
            self.segments.clone(),
        );
        r.register(
            "torn_records",
            "Torn records cut off the end of a segment at start-up (an interrupted write)",
            self.torn_records.clone(),
        );
        r.register(
            "corrupt_records",
            "Spooled records skipped because their CRC or contents were bad",
            self.corrupt_records.clone(),
        );
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tracebridge");
        let receiver_accepted_spans = Family::<TransportLabels, Counter>::default();
        registry.register(
            "receiver_accepted_spans",
            "Spans accepted by a receiver and handed to the destinations",
            receiver_accepted_spans.clone(),
        );
        let receiver_refused_spans = Family::<TransportReasonLabels, Counter>::default();
        registry.register(
            "receiver_refused_spans",
            "Spans a receiver refused: invalid spans, or every destination full",
            receiver_refused_spans.clone(),
        );
        let receiver_refused_requests = Family::<TransportReasonLabels, Counter>::default();
        registry.register(
            "receiver_refused_requests",
            "Requests refused before their spans could be counted (bad encoding, too large, ...)",
            receiver_refused_requests.clone(),
        );
        let receiver_cut_values = Family::<TransportCutLabels, Counter>::default();
        registry.register(
            "receiver_cut_values",
            "Attribute values a receiver cut (too deeply nested) in requests it took",
            receiver_cut_values.clone(),
        );
        let receiver_request_duration: HistogramFamily<TransportLabels> =
            Family::new_with_constructor(request_duration_histogram);
        registry.register(
            "receiver_request_duration_seconds",
            "Time to read, decode and dispatch one export request",
            receiver_request_duration.clone(),
        );
        let receiver_open_connections = Family::<TransportLabels, Gauge>::default();
        registry.register(
            "receiver_open_connections",
            "Client connections open at a receiver (bounded by receiver.max_connections)",
            receiver_open_connections.clone(),
        );
        let receiver_accept_errors = Family::<TransportLabels, Counter>::default();
        registry.register(
            "receiver_accept_errors",
            "Failed accepts at a receiver (e.g. out of file descriptors)",
            receiver_accept_errors.clone(),
        );
        let receiver_accepted_log_records = Family::<TransportLabels, Counter>::default();
        registry.register(
            "receiver_accepted_log_records",
            "OTLP log records accepted by a receiver",
            receiver_accepted_log_records.clone(),
        );
        let receiver_accepted_metric_points = Family::<TransportLabels, Counter>::default();
        registry.register(
            "receiver_accepted_metric_points",
            "OTLP metric data points accepted by a receiver",
            receiver_accepted_metric_points.clone(),
        );
        let receiver_unforwarded_items = Family::<TransportSignalLabels, Counter>::default();
        registry.register(
            "receiver_unforwarded_items",
            "Log records and metric points acknowledged but not forwarded: no destination takes that signal (not spooled)",
            receiver_unforwarded_items.clone(),
        );
        let exporter_sent_spans = Family::<DestinationLabels, Counter>::default();
        registry.register(
            "exporter_sent_spans",
            "Spans delivered to a destination",
            exporter_sent_spans.clone(),
        );
        let exporter_send_failed_spans = Family::<DestinationSendLabels, Counter>::default();
        registry.register(
            "exporter_send_failed_spans",
            "Spans a destination gave up on: rejected permanently or retries exhausted",
            exporter_send_failed_spans.clone(),
        );
        let exporter_dropped_spans = Family::<DestinationDropLabels, Counter>::default();
        registry.register(
            "exporter_dropped_spans",
            "Spans dropped before sending: queue full or shutdown deadline",
            exporter_dropped_spans.clone(),
        );
        let exporter_log_records = Family::<DestinationLogLabels, Counter>::default();
        registry.register(
            "exporter_log_records",
            "OTLP log records a destination was given, by what became of them",
            exporter_log_records.clone(),
        );
        let exporter_metric_points = Family::<DestinationMetricLabels, Counter>::default();
        registry.register(
            "exporter_metric_points",
            "OTLP metric data points a destination was given, by what became of them",
            exporter_metric_points.clone(),
        );
        let exporter_retries = Family::<DestinationSendLabels, Counter>::default();
        registry.register(
            "exporter_retries",
            "Export attempts that failed with a retryable error and were retried",
            exporter_retries.clone(),
        );
        let exporter_queue_size = Family::<DestinationLabels, Gauge>::default();
        registry.register(
            "exporter_queue_size",
            "Batches waiting in a destination's queue",
            exporter_queue_size.clone(),
        );
        let exporter_queue_capacity = Family::<DestinationLabels, Gauge>::default();
        registry.register(
            "exporter_queue_capacity",
            "Capacity of a destination's queue, in batches",
            exporter_queue_capacity.clone(),
        );
        let exporter_request_duration: HistogramFamily<DestinationLabels> =
            Family::new_with_constructor(request_duration_histogram);
        registry.register(
            "exporter_request_duration_seconds",
            "Duration of one export attempt to a destination",
            exporter_request_duration.clone(),
        );
        let mapping_warnings = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "mapping_warnings",
            "Problems met while mapping spans (malformed attributes kept raw in metadata, truncated items, a full trace table)",
            mapping_warnings.clone(),
        );
        let exporter_rejected_spans = Family::<DestinationLabels, Counter>::default();
        registry.register(
            "exporter_rejected_spans",
            "Spans a destination accepted a request for but reported as rejected (OTLP partial_success)",
            exporter_rejected_spans.clone(),
        );
        let privacy_redacted = Family::<DestinationRedactionLabels, Counter>::default();
        registry.register(
            "privacy_redacted",
            "Attributes and events privacy mode removed before export (content, unclaimed, stack traces)",
            privacy_redacted.clone(),
        );
        let trace_state_errors = Family::<DestinationStateLabels, Counter>::default();
        registry.register(
            "trace_state_errors",
            "Failures of the store behind the Opik trace table (disk or Redis), by what failed",
            trace_state_errors.clone(),
        );
        let control_dropped_spans = Family::<DestinationControlLabels, Counter>::default();
        registry.register(
            "control_dropped_spans",
            "Spans a destination's controls left out on purpose (sampling, filter rules, drop_non_genai)",
            control_dropped_spans.clone(),
        );
        let redacted_values = Family::<DestinationRuleLabels, Counter>::default();
        registry.register(
            "redacted_values",
            "Matches a destination's redaction rules replaced (or, with redact.dry_run, would have), by rule",
            redacted_values.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                commit: COMMIT,
            })
            .set(1);
        registry.register(
            "build_info",
            "Always 1; the labels say which tracebridge is running",
            build_info,
        );
        let memory = Family::<PartLabels, Gauge>::default();
        registry.register_with_unit(
            "memory",
            "Bytes of data in flight held against limits.memory, by part (requests: bodies, decompression and decoded requests; queues: batches; state: Opik trace tables)",
            prometheus_client::registry::Unit::Bytes,
            memory.clone(),
        );
        let memory_limit = Gauge::default();
        registry.register_with_unit(
            "memory_limit",
            "limits.memory: beyond it the receivers refuse (503 / UNAVAILABLE)",
            prometheus_client::registry::Unit::Bytes,
            memory_limit.clone(),
        );
        let mut process = Registry::default();
        process.register_collector(Box::new(super::process::ProcessCollector));
        let spool = SpoolMetrics::default();
        spool.register(&mut registry);
        Self {
            registry: Arc::new(registry),
            process: Arc::new(process),
            receiver_accepted_spans,
            receiver_refused_spans,
            receiver_refused_requests,
            receiver_cut_values,
            receiver_request_duration,
            receiver_open_connections,
            receiver_accept_errors,
            receiver_accepted_log_records,
            receiver_accepted_metric_points,
            receiver_unforwarded_items,
            exporter_sent_spans,
            exporter_send_failed_spans,
            exporter_dropped_spans,
            exporter_log_records,
            exporter_metric_points,
            exporter_retries,
            exporter_queue_size,
            exporter_queue_capacity,
            exporter_request_duration,
            mapping_warnings,
            exporter_rejected_spans,
            privacy_redacted,
            trace_state_errors,
            control_dropped_spans,
            redacted_values,
            spool,
            memory,
            memory_limit,
        }
    }

    /// Prometheus/OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        let encoded = encode_registry(&mut out, &self.registry)
            .and_then(|()| encode_registry(&mut out, &self.process))
            .and_then(|()| encode_eof(&mut out));
        if let Err(e) = encoded {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_collector_with_our_prefix() {
        let m = Metrics::new();
        m.receiver_accepted_spans
            .get_or_create(&TransportLabels { transport: "grpc" })
            .inc_by(3);
        m.exporter_dropped_spans
            .get_or_create(&DestinationDropLabels {
                destination: "opik".into(),
                reason: DropReason::QueueFull,
            })
            .inc();
        let text = m.encode();
        assert!(
            text.contains("tracebridge_receiver_accepted_spans_total{transport=\"grpc\"} 3"),
            "{text}"
        );
        assert!(
            text.contains(
                "tracebridge_exporter_dropped_spans_total{destination=\"opik\",reason=\"queue_full\"} 1"
            ),
            "{text}"
        );
    }
}

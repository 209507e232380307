//! Typed events: each method counts and logs one thing that happened.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::metrics::{
    DestinationControlLabels, DestinationDropLabels, DestinationLabels, DestinationLogLabels,
    DestinationMetricLabels, DestinationRedactionLabels, DestinationRuleLabels,
    DestinationSendLabels, DestinationStateLabels, Metrics, ReasonLabels, TransportCutLabels,
    TransportLabels, TransportReasonLabels, TransportSignalLabels,
};
use super::ratelimit::RateLimitedLog;
use super::reason::{
    ControlDrop, DropReason, Forwarding, LogOutcome, MappingWarning, MetricOutcome, Redaction,
    Refusal, SendFailure, Signal, StateError, ValueCut,
};

/// Telemetry of one receiver (`grpc` or `http`).
#[derive(Clone)]
pub struct ReceiverTelemetry {
    transport: &'static str,
    metrics: Metrics,
    accepted: Counter,
    duration: Histogram,
    open_connections: Gauge,
    accept_errors: Counter,
    refusal_log: Arc<RateLimitedLog>,
    accept_error_log: Arc<RateLimitedLog>,
    unforwarded_log: Arc<RateLimitedLog>,
}

impl ReceiverTelemetry {
    pub fn new(metrics: &Metrics, transport: &'static str) -> Self {
        let labels = TransportLabels { transport };
        // Expose the common series at zero from the start, so dashboards and
        // alerts see 0 rather than "no data".
        for reason in [Refusal::InvalidSpan, Refusal::DestinationsFull] {
            drop(
                metrics
                    .receiver_refused_spans
                    .get_or_create(&TransportReasonLabels { transport, reason }),
            );
        }
        for reason in [
            Refusal::TooLarge,
            Refusal::DecodeError,
            Refusal::UnsupportedMediaType,
            Refusal::Unauthenticated,
        ] {
            drop(
                metrics
                    .receiver_refused_requests
                    .get_or_create(&TransportReasonLabels { transport, reason }),
            );
        }
        Self {
            transport,
            accepted: metrics
                .receiver_accepted_spans
                .get_or_create(&labels)
                .clone(),
            duration: metrics
                .receiver_request_duration
                .get_or_create(&labels)
                .clone(),
            open_connections: metrics
                .receiver_open_connections
                .get_or_create(&labels)
                .clone(),
            accept_errors: metrics
                .receiver_accept_errors
                .get_or_create(&labels)
                .clone(),
            metrics: metrics.clone(),
            refusal_log: Arc::new(RateLimitedLog::per_second()),
            accept_error_log: Arc::new(RateLimitedLog::per_second()),
            unforwarded_log: Arc::new(RateLimitedLog::new(Duration::from_secs(60))),
        }
    }

    pub fn transport(&self) -> &'static str {
        self.transport
    }

    pub fn accepted(&self, spans: usize) {
        self.accepted.inc_by(spans as u64);
    }

    /// Log records taken into the spool (or offered to the destinations).
    /// A logs or metrics request was accepted (and routed): its `items`
    /// (log records, metric points) are counted.
    pub fn accepted_items(&self, signal: Signal, items: usize) {
        match signal {
            Signal::Logs => &self.metrics.receiver_accepted_log_records,
            Signal::Metrics => &self.metrics.receiver_accepted_metric_points,
            Signal::Traces => return self.accepted(items),
        }
        .get_or_create(&TransportLabels {
            transport: self.transport,
        })
        .inc_by(items as u64);
    }

    /// Spans refused inside a request that was otherwise read (invalid ids,
    /// or every destination full).
    pub fn refused_spans(&self, reason: Refusal, spans: usize, detail: &str) {
        if spans == 0 {
            return;
        }
        self.metrics
            .receiver_refused_spans
            .get_or_create(&TransportReasonLabels {
                transport: self.transport,
                reason,
            })
            .inc_by(spans as u64);
        if let Some(held_back) = self.refusal_log.check(Instant::now()) {
            tracing::warn!(
                transport = self.transport,
                reason = reason.as_str(),
                spans,
                similar_since_last_log = held_back,
                "refused spans: {detail}"
            );
        }
    }

    /// `values` attribute values of a request were cut (`reason`); the
    /// request itself was taken. Counted always, logged at most once a second.
    pub fn cut_values(&self, reason: ValueCut, values: usize, detail: &str) {
        if values == 0 {
            return;
        }
        self.metrics
            .receiver_cut_values
            .get_or_create(&TransportCutLabels {
                transport: self.transport,
                reason,
            })
            .inc_by(values as u64);
        if let Some(held_back) = self.refusal_log.check(Instant::now()) {
            tracing::warn!(
                transport = self.transport,
                reason = reason.as_str(),
                values,
                similar_since_last_log = held_back,
                "cut attribute values: {detail}"
            );
        }
    }

    /// A request refused as a whole before its spans could be counted.
    pub fn refused_request(&self, reason: Refusal, detail: &str) {
        self.metrics
            .receiver_refused_requests
            .get_or_create(&TransportReasonLabels {
                transport: self.transport,
                reason,
            })
            .inc();
        if let Some(held_back) = self.refusal_log.check(Instant::now()) {
            tracing::warn!(
                transport = self.transport,
                reason = reason.as_str(),
                similar_since_last_log = held_back,
                "refused request: {detail}"
            );
        }
    }

    pub fn connection_opened(&self) {
        self.open_connections.inc();
    }

    pub fn connection_closed(&self) {
        self.open_connections.dec();
    }

    /// A logs or metrics request was accepted; its `items` (log records,
    /// metric points) are not forwarded (no destination takes that signal):
    /// counted, neither spooled nor routed, and said in the log once a minute.
    pub fn unforwarded(&self, signal: Signal, items: usize) {
        self.accepted_items(signal, items);
        self.metrics
            .receiver_unforwarded_items
            .get_or_create(&TransportSignalLabels {
                transport: self.transport,
                signal,
            })
            .inc_by(items as u64);
        if let Some(held_back) = self.unforwarded_log.check(Instant::now()) {
            tracing::info!(
                transport = self.transport,
                signal = signal.as_str(),
                items,
                similar_since_last_log = held_back,
                "accepted OTLP {signal} but no destination takes them (an otlp destination forwards them with signals = [\"traces\", \"{signal}\"]); counted in tracebridge_receiver_unforwarded_items_total"
            );
        }
    }

    /// Accepting a connection failed (e.g. out of file descriptors).
    pub fn accept_error(&self, error: &std::io::Error) {
        self.accept_errors.inc();
        if let Some(held_back) = self.accept_error_log.check(Instant::now()) {
            tracing::warn!(
                transport = self.transport,
                similar_since_last_log = held_back,
                "cannot accept a connection: {error} (raise the open-files limit, e.g. LimitNOFILE, or lower receiver.max_connections)"
            );
        }
    }

    pub fn request_finished(&self, elapsed: Duration) {
        self.duration.observe(elapsed.as_secs_f64());
    }
}

/// Telemetry of one destination, with its counters bound to its name.
#[derive(Clone)]
pub struct DestinationTelemetry {
    name: Arc<str>,
    metrics: Metrics,
    sent: Counter,
    queue_size: Gauge,
    request_duration: Histogram,
    drop_log: Arc<RateLimitedLog>,
    /// Log records lost (expired, hold full…): one line a second.
    lost_log_records_log: Arc<RateLimitedLog>,
    /// Log records left out by choice (not taken, not GenAI): one line a minute.
    skipped_log_records_log: Arc<RateLimitedLog>,
    state_log: Arc<RateLimitedLog>,
    truncation_log: Arc<RateLimitedLog>,
    /// Spans dropped but not yet in a log line, per [`DropReason`], so that
    /// the log lines add up to the metric even when rate-limited.
    unlogged_drops: Arc<[AtomicU64; DropReason::ALL.len()]>,
    status: Arc<DestinationStatus>,
}

/// Running totals and the last error of one destination, for `/status`.
#[derive(Debug, Default)]
pub struct DestinationStatus {
    pub sent_spans: AtomicU64,
    pub failed_spans: AtomicU64,
    pub dropped_spans: AtomicU64,
    pub queue_size: AtomicU64,
    pub queue_capacity: AtomicU64,
    /// What waits in the durable spool (kept by the spool's writer).
    pub spool: SpoolStatus,
    last_error: std::sync::Mutex<Option<(SystemTime, String)>>,
}

/// One destination's spool backlog, for `/status`.
#[derive(Debug, Default)]
pub struct SpoolStatus {
    /// False with `spool.mode = "memory"`.
    pub enabled: std::sync::atomic::AtomicBool,
    pub bytes: AtomicU64,
    pub records: AtomicU64,
    pub oldest_age_ms: AtomicU64,
}

impl DestinationStatus {
    fn error(&self, message: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((SystemTime::now(), message));
    }

    /// When the last error happened, and what it was.
    pub fn last_error(&self) -> Option<(SystemTime, String)> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl DestinationTelemetry {
    pub fn new(metrics: &Metrics, name: &str) -> Self {
        let labels = DestinationLabels {
            destination: name.to_string(),
        };
        // Common series exist at zero from the start (see ReceiverTelemetry::new).
        let dropped = |reason| DestinationDropLabels {
            destination: name.to_string(),
            reason,
        };
        let failed = |reason| DestinationSendLabels {
            destination: name.to_string(),
            reason,
        };
        for reason in [DropReason::QueueFull, DropReason::Shutdown] {
            drop(
                metrics
                    .exporter_dropped_spans
                    .get_or_create(&dropped(reason)),
            );
        }
        for reason in [SendFailure::Rejected, SendFailure::RetriesExhausted] {
            drop(
                metrics
                    .exporter_send_failed_spans
                    .get_or_create(&failed(reason)),
            );
        }
        drop(
            metrics
                .exporter_retries
                .get_or_create(&failed(SendFailure::Timeout)),
        );
        drop(metrics.exporter_rejected_spans.get_or_create(&labels));
        let invalid_json = ReasonLabels {
            reason: MappingWarning::InvalidJson,
        };
        drop(metrics.mapping_warnings.get_or_create(&invalid_json));
        drop(
            metrics
                .trace_state_errors
                .get_or_create(&DestinationStateLabels {
                    destination: name.to_string(),
                    reason: StateError::Write,
                }),
        );
        Self {
            name: Arc::from(name),
            sent: metrics.exporter_sent_spans.get_or_create(&labels).clone(),
            queue_size: metrics.exporter_queue_size.get_or_create(&labels).clone(),
            request_duration: metrics
                .exporter_request_duration
                .get_or_create(&labels)
                .clone(),
            metrics: metrics.clone(),
            drop_log: Arc::new(RateLimitedLog::per_second()),
            lost_log_records_log: Arc::new(RateLimitedLog::per_second()),
            skipped_log_records_log: Arc::new(RateLimitedLog::new(Duration::from_secs(60))),
            state_log: Arc::new(RateLimitedLog::per_second()),
            truncation_log: Arc::new(RateLimitedLog::per_second()),
            unlogged_drops: Arc::default(),
            status: Arc::default(),
        }
    }

    pub fn status(&self) -> &DestinationStatus {
        &self.status
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn drop_labels(&self, reason: DropReason) -> DestinationDropLabels {
        DestinationDropLabels {
            destination: self.name.to_string(),
            reason,
        }
    }

    fn send_labels(&self, reason: SendFailure) -> DestinationSendLabels {
        DestinationSendLabels {
            destination: self.name.to_string(),
            reason,
        }
    }

    pub fn queue_capacity(&self, batches: usize) {
        self.metrics
            .exporter_queue_capacity
            .get_or_create(&DestinationLabels {
                destination: self.name.to_string(),
            })
            .set(batches as i64);
        self.status.queue_capacity.store(batches as u64, Relaxed);
    }

    pub fn queue_size(&self, batches: usize) {
        self.queue_size.set(batches as i64);
        self.status.queue_size.store(batches as u64, Relaxed);
    }

    pub fn sent(&self, spans: usize) {
        self.sent.inc_by(spans as u64);
        self.status.sent_spans.fetch_add(spans as u64, Relaxed);
    }

    pub fn request_finished(&self, elapsed: Duration) {
        self.request_duration.observe(elapsed.as_secs_f64());
    }

    /// Spans this destination did not take (its input is full, or shutdown
    /// cut the drain short). Logged at most once a second.
    pub fn dropped(&self, reason: DropReason, spans: usize) {
        if spans == 0 {
            return;
        }
        self.metrics
            .exporter_dropped_spans
            .get_or_create(&self.drop_labels(reason))
            .inc_by(spans as u64);
        self.status.dropped_spans.fetch_add(spans as u64, Relaxed);
        self.status
            .error(format!("dropped {spans} spans ({reason})"));
        self.unlogged_drops[reason.index()].fetch_add(spans as u64, Relaxed);
        if let Some(held_back) = self.drop_log.check(Instant::now()) {
            self.log_drops(reason, held_back);
        }
    }

    /// `n` log records ended as `outcome`: counted; losses are logged
    /// (once a second), records left out by choice once a minute.
    pub fn log_records(&self, outcome: LogOutcome, n: usize) {
        if n == 0 {
            return;
        }
        self.metrics
            .exporter_log_records
            .get_or_create(&DestinationLogLabels {
                destination: self.name.to_string(),
                outcome,
            })
            .inc_by(n as u64);
        let now = Instant::now();
        match outcome {
            LogOutcome::Joined | LogOutcome::Synthesised | LogOutcome::Forwarded => {}
            LogOutcome::Unused | LogOutcome::NotTaken | LogOutcome::OtherTenant => {
                if let Some(held_back) = self.skipped_log_records_log.check(now) {
                    tracing::info!(
                        destination = %self.name,
                        outcome = outcome.as_str(),
                        log_records = n,
                        similar_since_last_log = held_back,
                        "log records left out (counted in tracebridge_exporter_log_records_total)"
                    );
                }
            }
            _ => {
                if let Some(held_back) = self.lost_log_records_log.check(now) {
                    tracing::warn!(
                        destination = %self.name,
                        outcome = outcome.as_str(),
                        log_records = n,
                        similar_since_last_log = held_back,
                        "dropped log records"
                    );
                }
            }
        }
    }

    /// `n` metric data points ended as `outcome`: counted; losses are
    /// logged (once a second), points left out by choice once a minute.
    pub fn metric_points(&self, outcome: MetricOutcome, n: usize) {
        if n == 0 {
            return;
        }
        self.metrics
            .exporter_metric_points
            .get_or_create(&DestinationMetricLabels {
                destination: self.name.to_string(),
                outcome,
            })
            .inc_by(n as u64);
        let (limiter, lost) = match outcome {
            MetricOutcome::Forwarded => return,
            MetricOutcome::NotTaken => (&self.skipped_log_records_log, false),
            _ => (&self.lost_log_records_log, true),
        };
        if let Some(held_back) = limiter.check(Instant::now()) {
            let outcome = outcome.as_str();
            let message =
                "metric points not delivered (counted in tracebridge_exporter_metric_points_total)";
            if lost {
                tracing::warn!(destination = %self.name, outcome, metric_points = n, similar_since_last_log = held_back, "{message}");
            } else {
                tracing::info!(destination = %self.name, outcome, metric_points = n, similar_since_last_log = held_back, "{message}");
            }
        }
    }

    /// `n` log records or metric points of a forwarded `signal` ended as
    /// `how` (spans are counted by [`Self::sent`] and its siblings).
    pub fn forwarded(&self, signal: Signal, how: Forwarding, n: usize) {
        match signal {
            Signal::Logs => self.log_records(how.into(), n),
            Signal::Metrics => self.metric_points(how.into(), n),
            Signal::Traces => {}
        }
    }

    /// Logs the spans dropped for `reason` since its last line.
    fn log_drops(&self, reason: DropReason, held_back: u64) {
        let spans = self.unlogged_drops[reason.index()].swap(0, Relaxed);
        if spans > 0 {
            let name = &self.name;
            let why = match reason {
                DropReason::QueueFull => format!(
                    "the destination is slower than the intake and its queue is full: raise destinations.{name}.queue.max_batches or queue.concurrency, check its export errors, or use the disk spool (spool.mode = \"disk\")"
                ),
                DropReason::DestinationStopped => {
                    "the destination had stopped (see the errors before this line)".to_string()
                }
                DropReason::Shutdown => {
                    "shutdown_timeout passed before they were sent; raise it, or use the disk spool, which keeps them for the next start".to_string()
                }
                DropReason::SpoolFull => {
                    "this destination is spool.max_bytes behind; its oldest spooled segments were dropped: check its export errors, or raise spool.max_bytes".to_string()
                }
            };
            tracing::warn!(
                destination = %self.name,
                reason = reason.as_str(),
                spans,
                similar_since_last_log = held_back,
                "dropped spans: {why}"
            );
        }
    }

    /// Logs every drop still held back by the rate limit (when the
    /// destination stops), so the log lines add up to the metric.
    pub fn flush_logs(&self) {
        for reason in DropReason::ALL {
            self.log_drops(*reason, 0);
        }
    }

    /// Spans given up on after sending: rejected for good, or retried too long.
    pub fn send_failed(&self, reason: SendFailure, spans: usize, detail: &str) {
        self.metrics
            .exporter_send_failed_spans
            .get_or_create(&self.send_labels(reason))
            .inc_by(spans as u64);
        self.status.failed_spans.fetch_add(spans as u64, Relaxed);
        self.status.error(format!("{reason}: {detail}"));
        tracing::error!(destination = %self.name, reason = reason.as_str(), spans, "export failed: {detail}");
    }

    /// The destination took the request but rejected `items` of its
    /// `signal` (OTLP `partial_success`): rejected spans are counted here,
    /// log records and metric points by [`Self::forwarded`].
    pub fn partially_rejected(&self, signal: Signal, items: usize, message: &str) {
        if signal == Signal::Traces {
            self.metrics
                .exporter_rejected_spans
                .get_or_create(&DestinationLabels {
                    destination: self.name.to_string(),
                })
                .inc_by(items as u64);
        }
        if let Some(held_back) = self.drop_log.check(Instant::now()) {
            tracing::warn!(
                destination = %self.name,
                signal = signal.as_str(),
                items,
                similar_since_last_log = held_back,
                "destination rejected part of a request: {message}"
            );
        }
    }

    /// A span was mapped with a problem: a malformed attribute (kept raw in
    /// metadata), a truncated item, a full trace table.
    pub fn mapping_warning(&self, reason: MappingWarning) {
        self.metrics
            .mapping_warnings
            .get_or_create(&ReasonLabels { reason })
            .inc();
        let drops = matches!(
            reason,
            MappingWarning::AttributesOverLimit | MappingWarning::ValueOverLimit
        );
        match (
            drops,
            drops
                .then(|| self.truncation_log.check(Instant::now()))
                .flatten(),
        ) {
            (true, Some(held_back)) => tracing::warn!(
                destination = %self.name,
                reason = reason.as_str(),
                similar_since_last_log = held_back,
                "a span's unclaimed attributes passed the normaliser's bounds (count or string length): the rest were dropped or cut"
            ),
            (true, None) => {}
            (false, _) => {
                tracing::debug!(destination = %self.name, reason = reason.as_str(), "mapping warning")
            }
        }
    }

    /// A row too large for a batch had its largest `fields` replaced by
    /// markers (`truncated_oversized_item`). Counted always, logged at most
    /// once a second.
    pub fn truncated_item(&self, row: &str, fields: &[String], bytes: usize, kept: usize) {
        self.mapping_warning(MappingWarning::TruncatedOversizedItem);
        if let Some(held_back) = self.truncation_log.check(Instant::now()) {
            tracing::warn!(
                destination = %self.name,
                row,
                bytes,
                kept,
                fields = %fields.join(", "),
                similar_since_last_log = held_back,
                "row larger than batch.max_bytes: its largest fields were replaced by a tracebridge_truncated marker"
            );
        }
    }

    /// The store behind the trace table failed (`detail` says how). Counted
    /// always, logged at most once a second.
    pub fn state_error(&self, reason: StateError, detail: &str) {
        self.metrics
            .trace_state_errors
            .get_or_create(&DestinationStateLabels {
                destination: self.name.to_string(),
                reason,
            })
            .inc();
        self.status.error(format!("trace state {reason}: {detail}"));
        if let Some(held_back) = self.state_log.check(Instant::now()) {
            tracing::warn!(
                destination = %self.name,
                reason = reason.as_str(),
                similar_since_last_log = held_back,
                "trace state store: {detail}"
            );
        }
    }

    /// Privacy mode removed attributes or events: `n` per reason. Logged at
    /// debug level only: the names could hint at content.
    pub fn privacy_removed(&self, counts: impl IntoIterator<Item = (Redaction, usize)>) {
        for (reason, n) in counts {
            self.redacted(reason, n);
        }
    }

    fn redacted(&self, reason: Redaction, n: usize) {
        if n == 0 {
            return;
        }
        self.metrics
            .privacy_redacted
            .get_or_create(&DestinationRedactionLabels {
                destination: self.name.to_string(),
                reason,
            })
            .inc_by(n as u64);
        tracing::debug!(destination = %self.name, reason = reason.as_str(), removed = n, "privacy mode removed attributes or events");
    }

    /// The destination's controls left spans out on purpose: counted, and
    /// logged at debug level (sampling drops most spans by design).
    pub fn control_dropped(&self, reason: ControlDrop, spans: usize) {
        if spans == 0 {
            return;
        }
        self.metrics
            .control_dropped_spans
            .get_or_create(&DestinationControlLabels {
                destination: self.name.to_string(),
                reason,
            })
            .inc_by(spans as u64);
        tracing::debug!(destination = %self.name, reason = reason.as_str(), spans, "controls left spans out");
    }

    /// A redaction rule matched `n` values (replaced, or counted only under
    /// `dry_run`). Logged at debug level, without the values.
    pub fn redaction_matches(&self, rule: &str, n: usize, dry_run: bool) {
        if n == 0 {
            return;
        }
        self.metrics
            .redacted_values
            .get_or_create(&DestinationRuleLabels {
                destination: self.name.to_string(),
                rule: rule.to_string(),
            })
            .inc_by(n as u64);
        tracing::debug!(destination = %self.name, rule, matches = n, dry_run, "redaction rule matched");
    }

    pub fn retrying(&self, reason: SendFailure, attempt: u32, delay: Duration, detail: &str) {
        self.metrics
            .exporter_retries
            .get_or_create(&self.send_labels(reason))
            .inc();
        self.status.error(format!("{reason} (retrying): {detail}"));
        tracing::warn!(
            destination = %self.name,
            reason = reason.as_str(),
            attempt,
            retry_in_ms = delay.as_millis() as u64,
            "export attempt failed, will retry: {detail}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn rate_limited_drop_lines_add_up_to_the_metric() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let metrics = Metrics::new();
        tracing::subscriber::with_default(subscriber, || {
            let t = DestinationTelemetry::new(&metrics, "d");
            for _ in 0..100 {
                t.dropped(DropReason::Shutdown, 10);
            }
            t.dropped(DropReason::QueueFull, 7);
            t.flush_logs();
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let logged = |reason: &str| -> u64 {
            text.lines()
                .filter(|l| {
                    l.contains(&format!("reason=\"{reason}\""))
                        || l.contains(&format!("reason={reason}"))
                })
                .filter_map(|l| l.split("spans=").nth(1))
                .filter_map(|rest| rest.split_whitespace().next())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum()
        };
        assert_eq!(logged("shutdown"), 1000, "{text}");
        assert_eq!(logged("queue_full"), 7, "{text}");
        assert!(text.lines().count() <= 3, "still rate-limited: {text}");
    }
}

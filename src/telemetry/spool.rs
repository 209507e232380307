//! The durable spool's events: each counts and logs together.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::metrics::{DestinationLabels, Metrics};
use super::ratelimit::RateLimitedLog;
use crate::spool::{DestCursor, SegMeta};

#[derive(Clone)]
pub struct SpoolTelemetry {
    metrics: Metrics,
    drop_log: Arc<RateLimitedLog>,
}

fn labels(name: &str) -> DestinationLabels {
    DestinationLabels {
        destination: name.to_string(),
    }
}

impl SpoolTelemetry {
    pub fn new(metrics: &Metrics, destinations: &[String]) -> Self {
        for name in destinations {
            drop(metrics.spool.replayed_spans.get_or_create(&labels(name)));
            drop(metrics.spool.bytes.get_or_create(&labels(name)));
        }
        Self {
            metrics: metrics.clone(),
            drop_log: Arc::new(RateLimitedLog::per_second()),
        }
    }

    /// A destination added by a config reload: its series start at zero.
    pub fn register(&self, destination: &str) {
        let l = labels(destination);
        drop(self.metrics.spool.replayed_spans.get_or_create(&l));
        drop(self.metrics.spool.bytes.get_or_create(&l));
    }

    /// A destination removed by a config reload: its gauges go (its
    /// counters stay, as counters do).
    pub fn forget(&self, destination: &str) {
        let l = labels(destination);
        self.metrics.spool.bytes.remove(&l);
        self.metrics.spool.records.remove(&l);
        self.metrics.spool.oldest_age.remove(&l);
    }

    /// What the start-up scan found (each case was logged by the scan).
    pub fn scanned(&self, torn: u64, corrupt: u64) {
        self.metrics.spool.torn_records.inc_by(torn);
        self.metrics.spool.corrupt_records.inc_by(corrupt);
    }

    pub fn corrupt_record(&self) {
        self.metrics.spool.corrupt_records.inc();
    }

    pub fn replayed(&self, destination: &str, spans: u64) {
        self.metrics
            .spool
            .replayed_spans
            .get_or_create(&labels(destination))
            .inc_by(spans);
    }

    /// A destination fell `spool.max_bytes` behind (its spans are counted
    /// as dropped by its reader when it skips them).
    pub fn segments_dropped(&self, destination: &str, segments: usize) {
        if let Some(held_back) = self.drop_log.check(Instant::now()) {
            tracing::warn!(
                destination,
                segments,
                similar_since_last_log = held_back,
                "spool.max_bytes reached: dropping this destination's oldest spooled segments (counted in tracebridge_exporter_dropped_spans_total{{reason=\"spool_full\"}})"
            );
        }
    }

    /// Refreshes the per-destination gauges.
    pub fn refresh(&self, dests: &[Arc<DestCursor>], segments: &BTreeMap<u64, SegMeta>, head: u64) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        self.metrics.spool.segments.set(segments.len() as i64);
        for d in dests {
            let from = d.committed();
            let bytes = head.saturating_sub(from);
            let l = labels(&d.name);
            self.metrics.spool.bytes.get_or_create(&l).set(bytes as i64);
            let mut records = 0.0;
            let mut oldest = None;
            for m in segments.values().filter(|m| m.end > from && m.records > 0) {
                oldest.get_or_insert(m.first_unix_nano);
                let share = if m.start >= from {
                    1.0
                } else {
                    (m.end - from) as f64 / (m.end - m.start).max(1) as f64
                };
                records += m.records as f64 * share;
            }
            self.metrics
                .spool
                .records
                .get_or_create(&l)
                .set(records.round() as i64);
            let age = oldest.map_or(0.0, |t| now.saturating_sub(t) as f64 / 1e9);
            self.metrics.spool.oldest_age.get_or_create(&l).set(age);
            d.with_telemetry(|t| {
                let s = &t.status().spool;
                s.enabled.store(true, Relaxed);
                s.bytes.store(bytes, Relaxed);
                s.records.store(records.round() as u64, Relaxed);
                s.oldest_age_ms.store((age * 1000.0) as u64, Relaxed);
            });
        }
    }
}

//! Size- and time-bounded batching.

use std::time::Duration;

use tokio::time::Instant;

use super::ExportItem;
use crate::config::BatchConfig;

/// Collects items into batches of at most `max_items` items and about
/// `max_bytes` bytes, all of one [`ExportItem::partition`]. A batch is also
/// due `flush_interval` after its first item.
#[derive(Debug)]
pub struct Batcher<T> {
    limits: BatchConfig,
    items: Vec<T>,
    bytes: usize,
    opened_at: Option<Instant>,
    /// The partition of the open batch's items.
    partition: u16,
}

impl<T: ExportItem> Batcher<T> {
    pub fn new(limits: BatchConfig) -> Self {
        Self {
            limits,
            items: Vec::new(),
            bytes: 0,
            opened_at: None,
            partition: 0,
        }
    }

    /// Adds an item. Returns the batches that became full, in order: the
    /// current batch if this item would push it past `max_bytes` or is of
    /// another signal or partition, and the batch holding the item if it
    /// reached `max_items`. An item larger than `max_bytes` on its own
    /// travels alone; the sender decides what to do with it.
    pub fn push(&mut self, item: T, now: Instant, full: &mut Vec<Vec<T>>) {
        let size = item.encoded_size();
        let partition = item.partition();
        let other_signal = self
            .items
            .first()
            .is_some_and(|first| first.signal() != item.signal());
        if !self.items.is_empty()
            && (self.bytes + size > self.limits.max_bytes
                || partition != self.partition
                || other_signal)
        {
            full.push(self.take());
        }
        if self.items.is_empty() {
            self.opened_at = Some(now);
            self.partition = partition;
        }
        self.bytes += size;
        self.items.push(item);
        if self.items.len() >= self.limits.max_items || self.bytes >= self.limits.max_bytes {
            full.push(self.take());
        }
    }

    /// When the open batch becomes due, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        self.opened_at.map(|t| t + self.limits.flush_interval)
    }

    /// The open batch, if it is due at `now`.
    pub fn take_due(&mut self, now: Instant) -> Option<Vec<T>> {
        match self.deadline() {
            Some(deadline) if deadline <= now => Some(self.take()),
            _ => None,
        }
    }

    /// The open batch regardless of age (shutdown).
    pub fn take_all(&mut self) -> Option<Vec<T>> {
        (!self.items.is_empty()).then(|| self.take())
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn pending_spans(&self) -> usize {
        self.items.iter().map(ExportItem::span_count).sum()
    }

    pub fn flush_interval(&self) -> Duration {
        self.limits.flush_interval
    }

    fn take(&mut self) -> Vec<T> {
        self.bytes = 0;
        self.opened_at = None;
        std::mem::replace(
            &mut self.items,
            Vec::with_capacity(self.limits.max_items.min(1024)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Sized(usize);
    impl ExportItem for Sized {
        fn encoded_size(&self) -> usize {
            self.0
        }
        fn describe(&self) -> String {
            format!("item of {} bytes", self.0)
        }
    }

    fn limits(max_items: usize, max_bytes: usize) -> BatchConfig {
        BatchConfig {
            max_items,
            max_bytes,
            flush_interval: Duration::from_millis(100),
        }
    }

    #[test]
    fn closes_a_batch_at_max_items() {
        let mut b = Batcher::new(limits(3, 1 << 20));
        let now = Instant::now();
        let mut full = Vec::new();
        for i in 0..7 {
            b.push(Sized(i), now, &mut full);
        }
        assert_eq!(full.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3]);
        assert_eq!(b.take_all().map(|v| v.len()), Some(1));
    }

    #[test]
    fn closes_a_batch_before_it_passes_max_bytes() {
        let mut b = Batcher::new(limits(100, 100));
        let now = Instant::now();
        let mut full = Vec::new();
        b.push(Sized(60), now, &mut full);
        b.push(Sized(30), now, &mut full);
        assert!(full.is_empty());
        b.push(Sized(30), now, &mut full); // 120 > 100: the first two leave
        assert_eq!(full, vec![vec![Sized(60), Sized(30)]]);
        full.clear();
        b.push(Sized(500), now, &mut full); // oversized: closes the open one, then travels alone
        assert_eq!(full, vec![vec![Sized(30)], vec![Sized(500)]]);
        assert!(b.take_all().is_none());
    }

    #[derive(Debug, PartialEq)]
    struct Of(u16);
    impl ExportItem for Of {
        fn encoded_size(&self) -> usize {
            1
        }
        fn describe(&self) -> String {
            format!("item of partition {}", self.0)
        }
        fn partition(&self) -> u16 {
            self.0
        }
    }

    #[test]
    fn items_of_another_partition_start_a_new_batch() {
        let mut b = Batcher::new(limits(100, 1 << 20));
        let now = Instant::now();
        let mut full = Vec::new();
        for p in [1, 1, 2, 2, 1] {
            b.push(Of(p), now, &mut full);
        }
        assert_eq!(full, vec![vec![Of(1), Of(1)], vec![Of(2), Of(2)]]);
        assert_eq!(b.take_all(), Some(vec![Of(1)]));
    }

    #[derive(Debug, PartialEq)]
    struct Sig(crate::telemetry::reason::Signal);
    impl ExportItem for Sig {
        fn encoded_size(&self) -> usize {
            1
        }
        fn signal(&self) -> crate::telemetry::reason::Signal {
            self.0
        }
        fn describe(&self) -> String {
            String::new()
        }
    }
    #[test]
    fn a_batch_holds_one_signal() {
        use crate::telemetry::reason::Signal::{Logs, Metrics, Traces};
        let mut b = Batcher::new(limits(100, 1 << 20));
        let now = Instant::now();
        let mut full = Vec::new();
        for s in [Traces, Traces, Logs, Logs, Metrics] {
            b.push(Sig(s), now, &mut full);
        }
        assert_eq!(
            full,
            vec![vec![Sig(Traces), Sig(Traces)], vec![Sig(Logs), Sig(Logs)]]
        );
        assert_eq!(b.take_all(), Some(vec![Sig(Metrics)]));
    }

    #[test]
    fn a_batch_is_due_flush_interval_after_its_first_item() {
        let mut b = Batcher::new(limits(100, 1 << 20));
        let t0 = Instant::now();
        let mut full = Vec::new();
        assert!(b.deadline().is_none());
        b.push(Sized(1), t0, &mut full);
        b.push(Sized(1), t0 + Duration::from_millis(90), &mut full);
        assert_eq!(b.deadline(), Some(t0 + Duration::from_millis(100)));
        assert!(b.take_due(t0 + Duration::from_millis(99)).is_none());
        assert_eq!(
            b.take_due(t0 + Duration::from_millis(100)).map(|v| v.len()),
            Some(2)
        );
        assert!(b.deadline().is_none());
    }
}

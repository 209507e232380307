//! Which spooled records a destination has finished with.
//!
//! A record (a span of log positions `start..end`) is finished once every
//! batch holding one of its items has been delivered, rejected or given up.
//! Records are mapped in log order and batches hold items of consecutive
//! records, so each batch is tagged with the start of its first record
//! (`lo`), and the *frontier* — everything before it is finished — is the
//! smallest `lo` still open (in the batcher, the queue or a sender), or the
//! end of the last record mapped when nothing is open. The spool reads the
//! frontier to move the destination's cursor and remove segments.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Shared between a destination's batching task, its senders and the spool.
#[derive(Debug, Default)]
pub struct Progress {
    state: Mutex<State>,
    /// Frontier + 1; 0 until the first record is mapped.
    frontier: AtomicU64,
    /// Replay point + 1 the mapper asks for (its own store has not made
    /// records from there durable yet); 0 for none.
    hold: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    mapped_end: Option<u64>,
    open_lo: Option<u64>,
    outstanding: BTreeMap<u64, usize>,
}

impl State {
    fn frontier(&self) -> Option<u64> {
        let first = self.outstanding.keys().next().copied();
        match (self.open_lo, first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b).or(self.mapped_end),
        }
    }
}

impl Progress {
    /// Everything before this log position is finished (`None`: nothing mapped yet).
    pub fn frontier(&self) -> Option<u64> {
        let done = self.frontier.load(Ordering::Acquire).checked_sub(1);
        match self.hold.load(Ordering::Acquire).checked_sub(1) {
            Some(hold) => done.map(|d| d.min(hold)),
            None => done,
        }
    }

    /// The mapper's state depends on records from `from` on that its own
    /// store has not made durable: the frontier stays at or below it, so a
    /// crash replays them (`None` releases the hold).
    pub fn hold(&self, from: Option<u64>) {
        self.hold
            .store(from.map_or(0, |p| p.saturating_add(1)), Ordering::Release);
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s);
        if let Some(pos) = s.frontier() {
            self.frontier.fetch_max(pos + 1, Ordering::AcqRel);
        }
    }

    /// Batches left the batcher (tagged `closed`), and the open batch now
    /// starts at `open_lo`; `mapped_end` is set once a record is fully mapped.
    pub fn batched(&self, closed: &[Option<u64>], open_lo: Option<u64>, mapped_end: Option<u64>) {
        self.update(|s| {
            for lo in closed.iter().flatten() {
                *s.outstanding.entry(*lo).or_default() += 1;
            }
            s.open_lo = open_lo;
            if mapped_end.is_some() {
                s.mapped_end = mapped_end;
            }
        });
    }

    /// A batch tagged `lo` was delivered, rejected or given up.
    pub fn finished(&self, lo: Option<u64>) {
        let Some(lo) = lo else { return };
        self.update(|s| {
            if let Some(n) = s.outstanding.get_mut(&lo) {
                *n -= 1;
                if *n == 0 {
                    s.outstanding.remove(&lo);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frontier_waits_for_the_oldest_open_batch() {
        let p = Progress::default();
        assert_eq!(p.frontier(), None);
        // Record 0..10 mapped into the open batch.
        p.batched(&[], Some(0), Some(10));
        assert_eq!(p.frontier(), Some(0));
        // Record 10..20: the open batch (from 0) closes, a new one opens at 10.
        p.batched(&[Some(0)], Some(10), Some(20));
        assert_eq!(p.frontier(), Some(0));
        // The batch from 10 closes too; both are in flight.
        p.batched(&[Some(10)], None, None);
        p.finished(Some(10));
        assert_eq!(p.frontier(), Some(0), "the older batch is still out");
        p.finished(Some(0));
        assert_eq!(p.frontier(), Some(20));
        p.finished(None);
        assert_eq!(p.frontier(), Some(20));
    }

    #[test]
    fn a_hold_keeps_the_frontier_at_the_first_record_not_yet_durable() {
        let p = Progress::default();
        p.batched(&[Some(0)], None, Some(10));
        p.finished(Some(0));
        assert_eq!(p.frontier(), Some(10));
        p.hold(Some(5));
        assert_eq!(p.frontier(), Some(5));
        p.hold(None);
        assert_eq!(p.frontier(), Some(10));
    }
}

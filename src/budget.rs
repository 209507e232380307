//! The global memory budget (`limits.memory`): one count of the bytes the
//! daemon holds for data in flight, shared by every stage.
//!
//! - **Receivers ask** before they read more ([`MemoryBudget::try_charge`],
//!   [`Charge::try_grow`]): a body as it arrives, its decompressed bytes as
//!   they come out, the decoded request's estimated size. When the budget
//!   would be passed they refuse (503 `Retry-After` / `UNAVAILABLE`), so a
//!   client's behaviour can never make the daemon hold more.
//! - **Stages downstream account** what they already hold
//!   ([`MemoryBudget::charge`], never refused): decoded requests the spool
//!   readers hand on, batches in the destinations' queues. They make the
//!   receivers push back sooner; a spool reader with work in flight also
//!   waits for room ([`MemoryBudget::has_room`]) before it decodes more.
//! - A [`Charge`] is released when dropped: the accounting follows the data
//!   (a decoded request's charge travels inside it, shared by every
//!   destination it goes to).
//!
//! The count is of payload bytes (estimates for decoded structures), not of
//! the allocator's view; `docs/ARCHITECTURE.md` gives the formula from the
//! budget to a container's memory limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus_client::metrics::gauge::Gauge;

use crate::telemetry::{Metrics, PartLabels};

/// Bytes a decoded OTLP request takes in memory per byte of its protobuf
/// encoding (strings and byte fields own heap buffers; every attribute,
/// span and event is a struct of its own). Measured on the benchmark's
/// requests and on the dialect fixtures: 2.6–4.1; the larger is used.
pub const DECODED_PER_ENCODED: usize = 4;

/// What a charge is for (`tracebridge_memory_bytes{part}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Request bodies being read, decompressed and decoded, and decoded
    /// requests on their way to the spool or the destinations.
    Requests,
    /// Batches waiting in destination queues or being sent.
    Queues,
    /// What destinations remember between requests (the Opik trace table).
    State,
}

impl Part {
    pub const ALL: [Self; 3] = [Self::Requests, Self::Queues, Self::State];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Queues => "queues",
            Self::State => "state",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The daemon's budget. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    parts: [Gauge; 3],
}

impl MemoryBudget {
    /// A budget of `limit` bytes, shown in `metrics`.
    pub fn new(limit: usize, metrics: &Metrics) -> Arc<Self> {
        metrics.memory_limit.set(saturating_i64(limit));
        let part = |p: Part| {
            metrics
                .memory
                .get_or_create(&PartLabels { part: p.as_str() })
                .clone()
        };
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
            parts: Part::ALL.map(part),
        })
    }

    /// A budget nothing can exhaust and no metric shows (tests, tools).
    pub fn unlimited() -> Arc<Self> {
        Self::detached(usize::MAX)
    }

    /// A budget of `limit` bytes outside any metrics registry.
    pub fn detached(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
            parts: Default::default(),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Whether anything is left.
    pub fn has_room(&self) -> bool {
        self.used() < self.limit
    }

    /// Whether the spool readers may hand on more: at most half the budget
    /// is theirs (with what they fill, the queues), so the receivers keep
    /// the other half and a destination's backlog waits on disk rather than
    /// in memory.
    pub fn readers_have_room(&self) -> bool {
        self.used() < self.limit / 2
    }

    /// The gauge of one part (shown in `/metrics`).
    #[cfg(test)]
    fn gauge(&self, part: Part) -> Gauge {
        self.parts[part.index()].clone()
    }

    /// `bytes` for `part` if they fit; `None` when they would pass the limit.
    pub fn try_charge(self: &Arc<Self>, part: Part, bytes: usize) -> Option<Charge> {
        let mut charge = Charge::empty(self, part);
        charge.try_grow(bytes).then_some(charge)
    }

    /// Accounts `bytes` already held (never refused).
    pub fn charge(self: &Arc<Self>, part: Part, bytes: usize) -> Charge {
        let mut charge = Charge::empty(self, part);
        charge.grow(bytes);
        charge
    }

    fn add(&self, part: Part, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
        self.parts[part.index()].inc_by(saturating_i64(bytes));
    }

    /// Adds `bytes` to a charge already holding `own` if the total fits,
    /// or if that charge is all that is held: one request larger than the
    /// whole budget still goes through when the daemon holds nothing else,
    /// so no request the receivers' size limits allow waits for ever.
    fn try_add(&self, part: Part, bytes: usize, own: usize) -> bool {
        let taken = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes)
                    .filter(|&total| total <= self.limit || used == own)
            })
            .is_ok();
        if taken {
            self.parts[part.index()].inc_by(saturating_i64(bytes));
        }
        taken
    }

    fn release(&self, part: Part, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        self.parts[part.index()].dec_by(saturating_i64(bytes));
    }
}

fn saturating_i64(bytes: usize) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// Bytes held against the budget; released when dropped.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<MemoryBudget>,
    part: Part,
    bytes: usize,
}

impl Charge {
    fn empty(budget: &Arc<MemoryBudget>, part: Part) -> Self {
        Self {
            budget: budget.clone(),
            part,
            bytes: 0,
        }
    }

    /// Grows this charge to `total` bytes if that fits in the budget (a
    /// smaller `total` releases the difference).
    pub fn try_grow_to(&mut self, total: usize) -> bool {
        match total.checked_sub(self.bytes) {
            Some(more) => self.try_grow(more),
            None => {
                self.shrink_to(total);
                true
            }
        }
    }

    /// Adds `more` bytes if they fit in the budget.
    pub fn try_grow(&mut self, more: usize) -> bool {
        let taken = more == 0 || self.budget.try_add(self.part, more, self.bytes);
        if taken {
            self.bytes += more;
        }
        taken
    }

    /// Adds `more` bytes whatever the budget says (data already held).
    pub fn grow(&mut self, more: usize) {
        self.budget.add(self.part, more);
        self.bytes += more;
    }

    /// Sets this charge to `total` bytes whatever the budget says (what a
    /// stage holds now).
    pub fn set(&mut self, total: usize) {
        match total.checked_sub(self.bytes) {
            Some(more) if more > 0 => self.grow(more),
            _ => self.shrink_to(total),
        }
    }

    /// Releases what is above `total`.
    pub fn shrink_to(&mut self, total: usize) {
        if let Some(less) = self.bytes.checked_sub(total).filter(|&l| l > 0) {
            self.budget.release(self.part, less);
            self.bytes = total;
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.release(self.part, self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_fit_or_are_refused_and_dropping_releases() {
        let budget = MemoryBudget::detached(100);
        let a = budget.try_charge(Part::Requests, 60).expect("fits");
        assert!(budget.try_charge(Part::Requests, 50).is_none());
        let mut b = budget.try_charge(Part::Requests, 40).expect("fits exactly");
        assert!(!budget.has_room());
        assert!(!b.try_grow(1));
        drop(a);
        assert_eq!(budget.used(), 40);
        assert!(b.try_grow_to(90));
        assert!(b.try_grow_to(10), "shrinking always works");
        assert_eq!(budget.used(), 10);
        assert_eq!(budget.gauge(Part::Requests).get(), 10);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_charge_larger_than_the_budget_goes_through_only_alone() {
        let budget = MemoryBudget::detached(100);
        let mut big = budget.try_charge(Part::Requests, 0).expect("empty");
        assert!(big.try_grow(60));
        assert!(big.try_grow(90), "alone: may pass the limit");
        assert!(budget.try_charge(Part::Requests, 1).is_none());
        drop(big);
        let small = budget.try_charge(Part::Requests, 10).expect("fits");
        assert!(
            budget.try_charge(Part::Requests, 150).is_none(),
            "not alone"
        );
        drop(small);
        assert!(
            budget.try_charge(Part::Requests, 150).is_some(),
            "alone again"
        );
    }

    #[test]
    fn accounting_what_is_held_passes_the_limit_and_blocks_new_requests() {
        let budget = MemoryBudget::detached(100);
        let queued = budget.charge(Part::Queues, 150);
        assert_eq!(budget.used(), 150);
        assert!(budget.try_charge(Part::Requests, 1).is_none());
        assert_eq!(budget.gauge(Part::Queues).get(), 150);
        drop(queued);
        assert!(budget.try_charge(Part::Requests, 100).is_some());
    }
}

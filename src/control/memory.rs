//! What the controls remember between requests of one destination, each
//! map bounded (oldest first out), so memory follows the limit, not traffic.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Entries each map keeps (about 40 bytes each: a few MB at most).
pub const REMEMBERED: usize = 65_536;

/// A map that forgets its oldest key when full.
#[derive(Debug)]
pub struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Eq + Hash + Copy, V> Bounded<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k)
    }

    pub fn contains(&self, k: &K) -> bool {
        self.map.contains_key(k)
    }

    /// Inserts or replaces (a replaced key keeps its age).
    pub fn insert(&mut self, k: K, v: V) {
        if self.map.insert(k, v).is_some() {
            return;
        }
        self.order.push_back(k);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

/// What a trace's rules and sampling decided so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceMark {
    /// Sampling's decision (session-keyed sampling decides per trace once).
    pub sampled: Option<bool>,
    /// A span of the trace matched an `include` rule of scope `trace`.
    pub included: bool,
    /// A span of the trace matched an `exclude` rule of scope `trace`.
    pub excluded: bool,
    /// `sampling.always_keep` kept the trace the rate dropped, for this reason.
    pub kept: Option<super::keep::KeepReason>,
    /// `sampling.always_keep` stopped waiting: the rate decides the trace.
    pub by_rate: bool,
}

/// A span id within its trace.
pub type SpanKey = [u8; 24];

pub fn span_key(trace: &[u8; 16], span_id: &[u8]) -> SpanKey {
    let mut k = [0u8; 24];
    k[..16].copy_from_slice(trace);
    let n = span_id.len().min(8);
    k[16..16 + n].copy_from_slice(&span_id[..n]);
    k
}

/// The controls' memory across requests.
#[derive(Debug)]
pub struct Memory {
    pub traces: Bounded<[u8; 16], TraceMark>,
    /// Dropped spans → their parent (all zero: a root), to re-parent children
    /// that arrive in later requests.
    pub dropped: Bounded<SpanKey, [u8; 8]>,
    /// Ancestors of kept GenAI spans not seen yet (`drop_non_genai`).
    pub wanted: Bounded<SpanKey, ()>,
}

impl Memory {
    pub fn new(capacity: usize) -> Self {
        Self {
            traces: Bounded::new(capacity),
            dropped: Bounded::new(capacity),
            wanted: Bounded::new(capacity),
        }
    }

    /// Updates what is remembered of `trace`.
    pub fn mark(&mut self, trace: [u8; 16], f: impl FnOnce(&mut TraceMark)) {
        let mut mark = self.traces.get(&trace).copied().unwrap_or_default();
        f(&mut mark);
        self.traces.insert(trace, mark);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_forgets_its_oldest_key() {
        let mut b = Bounded::new(2);
        b.insert(1, "a");
        b.insert(2, "b");
        b.insert(1, "again");
        b.insert(3, "c");
        assert!(!b.contains(&1));
        assert_eq!(b.get(&2), Some(&"b"));
        assert!(b.contains(&3));
    }
}

//! A small map of what was seen recently, bounded in entries, bytes and
//! time (oldest first out): the Opik mapper's memory of rows it may have to
//! write again ([`super::wrapper_rows`], [`super::tool_rows`]).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// The bounds of a [`Recent`] map.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub window: Duration,
    pub max_entries: usize,
    pub max_bytes: usize,
}

struct Slot<V> {
    value: V,
    bytes: usize,
    at: Instant,
}

/// Entries by key, with their arrival order for expiry and eviction.
pub struct Recent<K, V> {
    bounds: Bounds,
    entries: HashMap<K, Slot<V>>,
    /// Arrival order; an entry replaced or taken since is skipped.
    order: VecDeque<(Instant, K)>,
    bytes: usize,
}

impl<K: Hash + Eq + Clone, V> Recent<K, V> {
    pub fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            entries: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
        }
    }

    /// Keeps `value` (about `bytes` large) under `key`, replacing what was
    /// there; the oldest entries leave while the map is over its bounds. A
    /// value larger than an eighth of the byte bound is not kept.
    pub fn put(&mut self, key: K, value: V, bytes: usize, now: Instant) {
        self.take(&key);
        if bytes > self.bounds.max_bytes / 8 {
            return;
        }
        self.bytes += bytes;
        self.entries.insert(
            key.clone(),
            Slot {
                value,
                bytes,
                at: now,
            },
        );
        self.order.push_back((now, key));
        while self.entries.len() > self.bounds.max_entries || self.bytes > self.bounds.max_bytes {
            if !self.pop_oldest() {
                break;
            }
        }
        if self.order.len() > 2 * self.bounds.max_entries {
            let entries = &self.entries;
            self.order
                .retain(|(at, k)| entries.get(k).is_some_and(|s| s.at == *at));
        }
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|s| &s.value)
    }

    /// Removes and returns the entry under `key`.
    pub fn take(&mut self, key: &K) -> Option<V> {
        let s = self.entries.remove(key)?;
        self.bytes -= s.bytes;
        Some(s.value)
    }

    /// Forgets entries older than the window.
    pub fn expire(&mut self, now: Instant) {
        while let Some((at, key)) = self.order.pop_front() {
            let live = self.entries.get(&key).is_some_and(|s| s.at == at);
            if live && now.saturating_duration_since(at) < self.bounds.window {
                self.order.push_front((at, key));
                break;
            }
            if live {
                self.take(&key);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes kept now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops the oldest live entry; false when there is none.
    fn pop_oldest(&mut self) -> bool {
        while let Some((at, key)) = self.order.pop_front() {
            if self.entries.get(&key).is_some_and(|s| s.at == at) {
                self.take(&key);
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds {
        window: Duration::from_secs(60),
        max_entries: 16,
        max_bytes: 800,
    };

    #[test]
    fn entries_are_bounded_in_count_bytes_and_time() {
        let mut r = Recent::new(BOUNDS);
        let now = Instant::now();
        for i in 0..100u32 {
            r.put(i, (), 1, now);
        }
        assert_eq!(r.len(), 16);
        assert!(r.get(&99).is_some() && r.get(&0).is_none(), "oldest out");
        assert!(r.order.len() <= 2 * 16 + 1);
        for i in 0..20u32 {
            r.put(1000 + i, (), 99, now);
        }
        assert!(r.bytes() <= 800, "{}", r.bytes());
        r.put(7, (), 101, now);
        assert!(r.get(&7).is_none(), "too large to keep");
        r.expire(now + BOUNDS.window);
        assert!(r.is_empty());
        assert_eq!(r.bytes(), 0);
    }

    #[test]
    fn a_replaced_entry_keeps_its_new_value_and_age() {
        let mut r = Recent::new(BOUNDS);
        let now = Instant::now();
        r.put("a", 1, 10, now);
        r.put("a", 2, 20, now + Duration::from_secs(30));
        r.expire(now + BOUNDS.window);
        assert_eq!(r.get(&"a"), Some(&2));
        assert_eq!(r.bytes(), 20);
        assert_eq!(r.take(&"a"), Some(2));
        assert!(r.is_empty());
    }
}

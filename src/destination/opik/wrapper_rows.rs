//! LLM span rows written with `usage`, remembered for a short while.
//!
//! An LLM span whose LLM child reports the same usage wraps that call
//! (ADK's `call_llm` over `generate_content`): only the leaf may carry Opik
//! `usage`, or Opik counts the call twice. When the child comes first, the
//! trace table already knows it as the parent's row is made
//! (`OpenTrace::llm_usage`). When the parent comes first — another request,
//! or earlier in the same one — its row went out with `usage`; the child's
//! arrival finds it here, and the row is written again with its usage moved
//! to `metadata.usage`. Opik replaces whole rows (the newest
//! `last_updated_at` wins), so the row is kept whole, as it was sent.
//!
//! Bounded: at most [`MAX_ROWS`] rows and [`MAX_BYTES`] bytes, each for
//! [`WINDOW`] (oldest first out). A child later than that leaves the
//! parent's usage in place (both counted), as before this existed.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde_json::Value as Json;
use tokio::time::Instant;

use crate::semconv::Usage;

/// How long a row waits for a child reporting the same usage.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Rows remembered at most.
pub const MAX_ROWS: usize = 1024;
/// Bytes of rows remembered at most; a larger row is not remembered.
pub const MAX_BYTES: usize = 8 << 20;

/// (OTel trace id, OTel span id).
type Key = ([u8; 16], [u8; 8]);

struct Remembered {
    /// (input, output) tokens: what "the same usage" compares.
    usage: (Option<i64>, Option<i64>),
    json: String,
    at: Instant,
}

/// The remembered rows, with their arrival order for expiry and eviction.
#[derive(Default)]
pub struct WrapperRows {
    rows: HashMap<Key, Remembered>,
    /// Arrival order; an entry whose row was replaced or taken is skipped.
    order: VecDeque<(Instant, Key)>,
    bytes: usize,
}

fn tokens(u: &Usage) -> (Option<i64>, Option<i64>) {
    (u.input, u.output)
}

impl WrapperRows {
    /// Remembers the row of an LLM span just written with `usage`.
    pub fn remember(&mut self, key: Key, usage: &Usage, json: &str, now: Instant) {
        if json.len() > MAX_BYTES / 8 {
            return;
        }
        self.forget(&key);
        self.bytes += json.len();
        self.rows.insert(
            key,
            Remembered {
                usage: tokens(usage),
                json: json.to_string(),
                at: now,
            },
        );
        self.order.push_back((now, key));
        while self.rows.len() > MAX_ROWS || self.bytes > MAX_BYTES {
            if !self.pop_oldest() {
                break;
            }
        }
        if self.order.len() > 2 * MAX_ROWS {
            let rows = &self.rows;
            self.order
                .retain(|(at, k)| rows.get(k).is_some_and(|r| r.at == *at));
        }
    }

    /// The row of span `key`, taken, if it was written with the same input
    /// and output tokens as `usage`: re-made without `usage` (moved to
    /// `metadata.usage`), to be stamped with a later `last_updated_at`.
    pub fn take_wrapper(&mut self, key: Key, usage: &Usage) -> Option<Json> {
        if self.rows.get(&key)?.usage != tokens(usage) {
            return None;
        }
        let r = self.forget(&key)?;
        let mut row: Json = serde_json::from_str(&r.json).ok()?;
        let o = row.as_object_mut()?;
        let moved = o.remove("usage")?;
        if let Some(Json::Object(m)) = o.get_mut("metadata") {
            m.insert("usage".into(), moved);
        }
        Some(row)
    }

    /// Forgets rows older than [`WINDOW`].
    pub fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < WINDOW {
                break;
            }
            self.pop_oldest();
        }
    }

    /// Rows remembered now (for tests).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn forget(&mut self, key: &Key) -> Option<Remembered> {
        let r = self.rows.remove(key)?;
        self.bytes -= r.json.len();
        Some(r)
    }

    /// Drops the oldest live row; false when there is none.
    fn pop_oldest(&mut self) -> bool {
        while let Some((at, key)) = self.order.pop_front() {
            if self.rows.get(&key).is_some_and(|r| r.at == at) {
                self.forget(&key);
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: i64, output: i64) -> Usage {
        Usage {
            input: Some(input),
            output: Some(output),
            ..Default::default()
        }
    }

    const ROW: &str =
        r#"{"id":"x","usage":{"prompt_tokens":42},"metadata":{"a":1},"last_updated_at":"t0"}"#;

    #[test]
    fn a_row_with_the_same_usage_comes_back_without_it() {
        let mut w = WrapperRows::default();
        let now = Instant::now();
        w.remember(([1; 16], [2; 8]), &usage(42, 17), ROW, now);
        assert!(
            w.take_wrapper(([1; 16], [2; 8]), &usage(42, 18)).is_none(),
            "other usage: not a wrapper"
        );
        let row = w.take_wrapper(([1; 16], [2; 8]), &usage(42, 17)).unwrap();
        assert!(row.get("usage").is_none());
        assert_eq!(row["metadata"]["usage"]["prompt_tokens"], 42);
        assert_eq!(row["metadata"]["a"], 1);
        assert!(w.is_empty(), "taken once");
    }

    #[test]
    fn rows_are_bounded_in_count_bytes_and_time() {
        let mut w = WrapperRows::default();
        let now = Instant::now();
        for i in 0..(MAX_ROWS as u32 * 3) {
            let mut key = ([0; 16], [0; 8]);
            key.0[..4].copy_from_slice(&i.to_be_bytes());
            w.remember(key, &usage(1, 1), ROW, now);
        }
        assert_eq!(w.len(), MAX_ROWS);
        assert!(w.order.len() <= 2 * MAX_ROWS + 1);
        let big = "x".repeat(MAX_BYTES / 8 - 1);
        for i in 0..20u8 {
            w.remember(([9; 16], [i; 8]), &usage(1, 1), &big, now);
        }
        assert!(w.bytes <= MAX_BYTES, "{}", w.bytes);
        w.expire(now + WINDOW);
        assert!(w.is_empty());
        assert_eq!(w.bytes, 0);
    }
}

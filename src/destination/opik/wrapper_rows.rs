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
//! Bounded by [`BOUNDS`]. A child later than that leaves the
//! parent's usage in place (both counted), as before this existed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::time::Instant;

use super::recent::{Bounds, Recent};
use crate::semconv::Usage;

/// Kept for a minute, at most 1024 entries and 8 MiB (oldest first out).
pub const BOUNDS: Bounds = Bounds {
    window: Duration::from_secs(60),
    max_entries: 1024,
    max_bytes: 8 << 20,
};

/// (OTel trace id, OTel span id).
type Key = ([u8; 16], [u8; 8]);

struct Remembered {
    /// (input, output) tokens: what "the same usage" compares.
    usage: (Option<i64>, Option<i64>),
    json: Arc<str>,
}

/// The remembered rows.
pub struct WrapperRows(Recent<Key, Remembered>);

impl Default for WrapperRows {
    fn default() -> Self {
        Self(Recent::new(BOUNDS))
    }
}

fn tokens(u: &Usage) -> (Option<i64>, Option<i64>) {
    (u.input, u.output)
}

impl WrapperRows {
    /// Remembers the row of an LLM span just written with `usage`.
    pub fn remember(&mut self, key: Key, usage: &Usage, json: &Arc<str>, now: Instant) {
        let r = Remembered {
            usage: tokens(usage),
            json: Arc::clone(json),
        };
        self.0.put(key, r, json.len(), now);
    }

    /// The row of span `key`, taken, if it was written with the same input
    /// and output tokens as `usage`: re-made without `usage` (moved to
    /// `metadata.usage`), to be stamped with a later `last_updated_at`.
    pub fn take_wrapper(&mut self, key: Key, usage: &Usage) -> Option<Json> {
        if self.0.get(&key)?.usage != tokens(usage) {
            return None;
        }
        let r = self.0.take(&key)?;
        let mut row: Json = serde_json::from_str(&r.json).ok()?;
        let o = row.as_object_mut()?;
        let moved = o.remove("usage")?;
        if let Some(Json::Object(m)) = o.get_mut("metadata") {
            m.insert("usage".into(), moved);
        }
        Some(row)
    }

    /// Forgets rows older than the window.
    pub fn expire(&mut self, now: Instant) {
        self.0.expire(now);
    }

    /// Rows remembered now (for tests).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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
        w.remember(([1; 16], [2; 8]), &usage(42, 17), &Arc::from(ROW), now);
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
}

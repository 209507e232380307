//! Where GenAI log records meet their spans (see `semconv::logs`).
//!
//! - A record whose span has not been seen is **held** (bounded in count,
//!   bytes and time: `log_max_held_records`, `log_max_held_bytes`,
//!   `log_join_window`); its span takes it when it arrives.
//! - A span whose content may still come in records (an LLM span without
//!   messages) is **remembered** for the same window, within the same
//!   bounds: a record arriving later is folded in and the span's row
//!   written again (Opik upserts rows by id; the newest `last_updated_at`
//!   wins). Spans are never delayed: a held span would let the spool's
//!   cursor pass a request whose rows were not written.
//! - What outlives the window is forgotten: records counted as `expired`,
//!   records pushed out of a full hold as `hold_full`.
//!
//! Both maps keep an arrival-order queue for expiry and eviction; entries of
//! records or spans already gone are skipped, and the queue is compacted
//! when it grows past twice the bound, so memory follows the limits, never
//! the traffic.

use std::collections::{HashMap, VecDeque};

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use prost::Message as _;
use tokio::time::Instant;

use super::config::LogJoinSettings;
use crate::semconv::logs::{GenAiRecord, JoinKey, key_of_span};

/// Records and spans waiting for each other.
pub struct LogJoin {
    settings: LogJoinSettings,
    held: HashMap<JoinKey, Vec<Held>>,
    held_order: VecDeque<(Instant, JoinKey)>,
    held_count: usize,
    recent: HashMap<JoinKey, RecentSpan>,
    recent_order: VecDeque<(Instant, JoinKey)>,
    /// `JoinKey::Response` → the remembered span's `JoinKey::Span`.
    responses: HashMap<JoinKey, JoinKey>,
    /// LLM spans written complete (no records awaited) within the window:
    /// a record for one of them is not held, it has nothing to add.
    complete: HashMap<JoinKey, Instant>,
    complete_order: VecDeque<(Instant, JoinKey)>,
    /// Bytes of held records and remembered spans.
    bytes: usize,
}

struct Held {
    event: Event,
    bytes: usize,
    at: Instant,
}

/// A span kept for records that arrive after it, with what its row needs
/// to be written again.
pub struct RecentSpan {
    pub span: Span,
    pub scope: Option<InstrumentationScope>,
    pub scope_name: String,
    pub resource_attributes: Vec<KeyValue>,
    pub project: Option<String>,
    /// The tenant of the request that brought it: only records of the same
    /// tenant join it (its keys are scoped by it).
    pub tenant: Option<std::sync::Arc<str>>,
    /// The records joined so far, as events.
    pub joined: Vec<Event>,
    pub by_response: Option<JoinKey>,
    bytes: usize,
    at: Instant,
}

impl RecentSpan {
    pub fn new(span: Span, joined: Vec<Event>, by_response: Option<JoinKey>) -> Self {
        Self {
            span,
            scope: None,
            scope_name: String::new(),
            resource_attributes: Vec::new(),
            project: None,
            tenant: None,
            joined,
            by_response,
            bytes: 0,
            at: Instant::now(),
        }
    }

    /// Its key, within its tenant's traces.
    fn key(&self) -> Option<JoinKey> {
        let key = key_of_span(&self.span)?;
        Some(super::tenants::scoped(key, self.tenant.as_deref()))
    }

    fn size(&self) -> usize {
        self.span.encoded_len()
            + self.joined.iter().map(|e| e.encoded_len()).sum::<usize>()
            + self
                .resource_attributes
                .iter()
                .map(|kv| kv.encoded_len())
                .sum::<usize>()
    }
}

/// How many held records a call let go of, and why.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    pub expired: usize,
    pub hold_full: usize,
}

impl LogJoin {
    pub fn new(settings: LogJoinSettings) -> Self {
        Self {
            settings,
            held: HashMap::new(),
            held_order: VecDeque::new(),
            held_count: 0,
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
            responses: HashMap::new(),
            complete: HashMap::new(),
            complete_order: VecDeque::new(),
            bytes: 0,
        }
    }

    /// Notes an LLM span written with all its content (bounded like the
    /// rest; only its key is kept).
    pub fn saw_complete(&mut self, key: JoinKey, now: Instant) {
        self.complete_order.push_back((now, key.clone()));
        self.complete.insert(key, now);
        while self.complete.len() > self.settings.max_records {
            let Some((at, key)) = self.complete_order.pop_front() else {
                break;
            };
            if self.complete.get(&key) == Some(&at) {
                self.complete.remove(&key);
            }
        }
        if self.complete_order.len() > 2 * self.settings.max_records + 16 {
            let complete = &self.complete;
            self.complete_order
                .retain(|(at, key)| complete.get(key) == Some(at));
        }
    }

    /// Whether the span a record names was written complete lately.
    pub fn was_complete(&self, key: &JoinKey) -> bool {
        self.complete.contains_key(key)
    }

    /// Records held, spans remembered, bytes of both.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.held_count, self.recent.len(), self.bytes)
    }

    /// No record is held.
    pub fn holds_nothing(&self) -> bool {
        self.held_count == 0
    }

    /// The held records of the span found under these keys, as events.
    pub fn take_for(&mut self, keys: [Option<&JoinKey>; 2]) -> Vec<Event> {
        let mut events = Vec::new();
        for key in keys.into_iter().flatten() {
            if let Some(list) = self.held.remove(key) {
                for h in list {
                    self.held_count -= 1;
                    self.bytes -= h.bytes;
                    events.push(h.event);
                }
            }
        }
        events
    }

    /// Holds a record until its span comes; may push older ones out.
    pub fn hold(&mut self, record: GenAiRecord, now: Instant) -> Released {
        let bytes = record.size();
        self.held_order.push_back((now, record.key.clone()));
        self.held.entry(record.key).or_default().push(Held {
            event: record.event,
            bytes,
            at: now,
        });
        self.held_count += 1;
        self.bytes += bytes;
        let mut released = Released::default();
        while self.held_count > self.settings.max_records || self.over_bytes() {
            if self.evict_oldest_record() {
                released.hold_full += 1;
            } else if !self.forget_oldest_span() {
                break;
            }
        }
        self.compact();
        released
    }

    /// Remembers a span for records that arrive after it.
    pub fn remember(&mut self, mut recent: RecentSpan, now: Instant) {
        let Some(key) = recent.key() else {
            return;
        };
        recent.at = now;
        recent.bytes = recent.size();
        self.put(key, recent);
        while self.recent.len() > self.settings.max_records || self.over_bytes() {
            if !self.forget_oldest_span() {
                break;
            }
        }
        self.compact();
    }

    /// Takes the remembered span a record names, if any (give it back with
    /// [`LogJoin::put_back`]).
    pub fn take_recent(&mut self, key: &JoinKey) -> Option<RecentSpan> {
        let span_key = match key {
            JoinKey::Span { .. } => key.clone(),
            JoinKey::Response { .. } => self.responses.get(key)?.clone(),
        };
        let recent = self.recent.remove(&span_key)?;
        self.bytes -= recent.bytes;
        if let Some(r) = &recent.by_response {
            self.responses.remove(r);
        }
        Some(recent)
    }

    /// Gives back a span taken with [`LogJoin::take_recent`] (its window
    /// is not extended).
    pub fn put_back(&mut self, mut recent: RecentSpan) {
        if let Some(key) = recent.key() {
            recent.bytes = recent.size();
            self.put(key, recent);
        }
    }

    fn put(&mut self, key: JoinKey, recent: RecentSpan) {
        if let Some(old) = self.recent.remove(&key) {
            self.bytes -= old.bytes;
        }
        if let Some(r) = &recent.by_response {
            self.responses.insert(r.clone(), key.clone());
        }
        self.recent_order.push_back((recent.at, key.clone()));
        self.bytes += recent.bytes;
        self.recent.insert(key, recent);
    }

    /// Lets go of what is older than the window; returns the records that
    /// expired unjoined.
    pub fn expire(&mut self, now: Instant) -> usize {
        let window = self.settings.window;
        let mut expired = 0;
        while let Some((at, _)) = self.held_order.front() {
            if now.saturating_duration_since(*at) < window {
                break;
            }
            if self.evict_oldest_record() {
                expired += 1;
            }
        }
        while let Some((at, _)) = self.recent_order.front() {
            if now.saturating_duration_since(*at) < window {
                break;
            }
            self.forget_oldest_span();
        }
        while let Some((at, key)) = self.complete_order.front() {
            if now.saturating_duration_since(*at) < window {
                break;
            }
            if self.complete.get(key) == Some(at) {
                self.complete.remove(key);
            }
            self.complete_order.pop_front();
        }
        expired
    }

    /// Everything held, at shutdown: the number of records let go.
    pub fn drain(&mut self) -> usize {
        let n = self.held_count;
        *self = Self::new(self.settings);
        n
    }

    fn over_bytes(&self) -> bool {
        self.bytes > self.settings.max_bytes
    }

    /// Drops the oldest held record. False when none is held.
    fn evict_oldest_record(&mut self) -> bool {
        while let Some((at, key)) = self.held_order.pop_front() {
            let Some(list) = self.held.get_mut(&key) else {
                continue; // joined since
            };
            let Some(i) = list.iter().position(|h| h.at == at) else {
                continue;
            };
            let h = list.remove(i);
            if list.is_empty() {
                self.held.remove(&key);
            }
            self.held_count -= 1;
            self.bytes -= h.bytes;
            return true;
        }
        false
    }

    /// Forgets the oldest remembered span. False when none is left.
    fn forget_oldest_span(&mut self) -> bool {
        while let Some((at, key)) = self.recent_order.pop_front() {
            if self.recent.get(&key).is_none_or(|r| r.at != at) {
                continue; // taken or replaced since
            }
            if let Some(r) = self.recent.remove(&key) {
                self.bytes -= r.bytes;
                if let Some(resp) = &r.by_response {
                    self.responses.remove(resp);
                }
            }
            return true;
        }
        false
    }

    /// Drops queue entries of records and spans that are gone, once the
    /// queues hold twice what the maps may.
    fn compact(&mut self) {
        let bound = 2 * self.settings.max_records + 16;
        if self.held_order.len() > bound {
            let held = &self.held;
            self.held_order.retain(|(at, key)| {
                held.get(key)
                    .is_some_and(|list| list.iter().any(|h| h.at == *at))
            });
        }
        if self.recent_order.len() > bound {
            let recent = &self.recent;
            self.recent_order
                .retain(|(at, key)| recent.get(key).is_some_and(|r| r.at == *at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(max_records: usize) -> LogJoinSettings {
        LogJoinSettings {
            window: Duration::from_secs(10),
            max_records,
            max_bytes: 1 << 20,
        }
    }

    fn key(span: u8) -> JoinKey {
        JoinKey::Span {
            trace: [1; 16],
            span: [span; 8],
        }
    }

    fn record(span: u8) -> GenAiRecord {
        GenAiRecord {
            key: key(span),
            event: Event {
                name: "gen_ai.choice".into(),
                ..Default::default()
            },
        }
    }

    fn span(id: u8) -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![id; 8],
            ..Default::default()
        }
    }

    #[test]
    fn a_held_record_is_taken_by_its_span_once() {
        let mut j = LogJoin::new(settings(10));
        let now = Instant::now();
        assert_eq!(j.hold(record(2), now), Released::default());
        assert!(j.take_for([Some(&key(3)), None]).is_empty());
        assert_eq!(j.take_for([Some(&key(2)), None]).len(), 1);
        assert!(j.take_for([Some(&key(2)), None]).is_empty());
        assert_eq!(j.sizes(), (0, 0, 0));
    }

    #[test]
    fn a_record_never_joined_expires_after_the_window() {
        let mut j = LogJoin::new(settings(10));
        let now = Instant::now();
        j.hold(record(2), now);
        assert_eq!(j.expire(now + Duration::from_secs(9)), 0);
        assert_eq!(j.expire(now + Duration::from_secs(10)), 1);
        assert_eq!(j.sizes(), (0, 0, 0));
    }

    #[test]
    fn a_remembered_span_is_found_by_span_and_by_response_until_the_window_ends() {
        let mut j = LogJoin::new(settings(10));
        let now = Instant::now();
        let resp = JoinKey::Response {
            trace: [1; 16],
            id: "req_1".into(),
        };
        j.remember(RecentSpan::new(span(4), vec![], Some(resp.clone())), now);
        let r = j.take_recent(&resp).expect("found by response id");
        assert!(j.take_recent(&key(4)).is_none(), "taken");
        j.put_back(r);
        assert!(j.take_recent(&key(4)).is_some());
        j.remember(RecentSpan::new(span(5), vec![], None), now);
        j.expire(now + Duration::from_secs(10));
        assert!(j.take_recent(&key(5)).is_none(), "forgotten");
        assert_eq!(j.sizes(), (0, 0, 0));
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_unjoinable_records() {
        let mut j = LogJoin::new(settings(100));
        let now = Instant::now();
        let mut pushed_out = 0;
        for i in 0..50_000u32 {
            let mut r = record((i % 251) as u8);
            r.event.time_unix_nano = u64::from(i);
            pushed_out += j
                .hold(r, now + Duration::from_micros(u64::from(i)))
                .hold_full;
            j.remember(
                RecentSpan::new(span((i % 7) as u8), vec![], None),
                now + Duration::from_micros(u64::from(i)),
            );
        }
        let (held, spans, _) = j.sizes();
        assert_eq!(held, 100);
        assert!(spans <= 7);
        assert_eq!(pushed_out, 50_000 - 100);
        assert!(j.held_order.len() <= 2 * 100 + 16);
        assert!(j.recent_order.len() <= 2 * 100 + 16);
        for i in 0..50_000u32 {
            let key = JoinKey::Span {
                trace: [2; 16],
                span: [(i % 200) as u8, (i / 200) as u8, 0, 0, 0, 0, 0, 1],
            };
            j.saw_complete(key, now + Duration::from_micros(u64::from(i)));
        }
        assert!(j.complete.len() <= 100);
        assert!(j.complete_order.len() <= 2 * 100 + 16);
        assert_eq!(j.drain(), 100);
    }

    #[test]
    fn the_byte_bound_pushes_records_out_too() {
        let mut j = LogJoin::new(LogJoinSettings {
            window: Duration::from_secs(10),
            max_records: 1000,
            max_bytes: 100,
        });
        let now = Instant::now();
        let mut out = 0;
        for _ in 0..100 {
            out += j.hold(record(1), now).hold_full;
        }
        assert!(j.sizes().2 <= 100);
        assert!(out > 0);
    }
}

//! Where GenAI log records meet their spans (see [`super`]), for every
//! destination that joins them (Opik rows, OTLP's OpenInference
//! attributes).
//!
//! - A record whose span has not been seen is **held** (bounded in count,
//!   bytes and time: `log_max_held_records`, `log_max_held_bytes`,
//!   `log_join_window`); its span takes it when it arrives.
//! - A span whose content may still come in records (an LLM span without
//!   messages) is **remembered** for a window, within the same bounds, with
//!   what the destination needs to write it again (`T`, its origin): a
//!   record arriving later is folded in. Opik writes the span at once and
//!   rewrites its row (Opik upserts rows by id); an OTLP destination, whose
//!   backends keep the first copy of a span, forwards it only then, or when
//!   its wait ends (the spans a call lets go are handed back).
//! - What outlives the window is let go: records counted as `expired`,
//!   records pushed out of a full hold as `hold_full`.
//!
//! Both maps keep an arrival-order queue for expiry and eviction; entries of
//! records or spans already gone are skipped, and the queue is compacted
//! when it grows past twice the bound, so memory follows the limits, never
//! the traffic.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use prost::Message as _;
use tokio::time::Instant;

use super::{GenAiRecord, JoinKey, key_of_span};

/// How GenAI log records are joined to their spans
/// (`log_join_window`, `log_max_held_records`, `log_max_held_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogJoinSettings {
    pub window: Duration,
    pub max_records: usize,
    pub max_bytes: usize,
}

impl Default for LogJoinSettings {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(30),
            max_records: 10_000,
            max_bytes: 32 << 20,
        }
    }
}

/// Records and spans waiting for each other; `T` is what a destination
/// keeps with a remembered span to write it again.
pub struct LogJoin<T> {
    settings: LogJoinSettings,
    held: HashMap<JoinKey, Vec<Held>>,
    held_order: VecDeque<(Instant, JoinKey)>,
    held_count: usize,
    recent: HashMap<JoinKey, RecentSpan<T>>,
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
    link: Option<JoinKey>,
    bytes: usize,
    at: Instant,
}

/// A span kept for records that arrive after it, with what the destination
/// needs to write it again (`origin`, of `origin_bytes`).
pub struct RecentSpan<T> {
    pub span: Span,
    /// The tenant of the request that brought it: only records of the same
    /// tenant join it (its keys are scoped by it).
    pub tenant: Option<std::sync::Arc<str>>,
    /// The records joined so far, as events.
    pub joined: Vec<Event>,
    pub by_response: Option<JoinKey>,
    pub origin: T,
    origin_bytes: usize,
    bytes: usize,
    at: Instant,
}

impl<T> RecentSpan<T> {
    pub fn new(
        span: Span,
        joined: Vec<Event>,
        by_response: Option<JoinKey>,
        origin: T,
        origin_bytes: usize,
    ) -> Self {
        Self {
            span,
            tenant: None,
            joined,
            by_response,
            origin,
            origin_bytes,
            bytes: 0,
            at: Instant::now(),
        }
    }

    /// Its key, within its tenant's traces.
    fn key(&self) -> Option<JoinKey> {
        let key = key_of_span(&self.span)?;
        Some(key.scoped(self.tenant.as_deref()))
    }

    fn size(&self) -> usize {
        self.span.encoded_len()
            + self.joined.iter().map(|e| e.encoded_len()).sum::<usize>()
            + self.origin_bytes
    }
}

/// What became of a record ([`LogJoin::admit`]). Returned and taken apart
/// at once, so the span moves as it did out of the map (no box, no
/// allocation per record).
#[allow(clippy::large_enum_variant)]
pub enum Admitted<T> {
    /// Its span was written complete: it has nothing to add.
    Unused,
    /// Held for its span; what holding it let go of.
    Held(Released<T>),
    /// Folded into its remembered span with `joined` records in all (the
    /// held ones it links to too).
    Joined {
        recent: RecentSpan<T>,
        joined: usize,
    },
}

/// What a call let go of: held records (counted, and why), and remembered
/// spans (handed back, for a destination that has not written them yet).
pub struct Released<T> {
    pub expired: usize,
    pub hold_full: usize,
    pub spans: Vec<RecentSpan<T>>,
}

impl<T> Default for Released<T> {
    fn default() -> Self {
        Self {
            expired: 0,
            hold_full: 0,
            spans: Vec::new(),
        }
    }
}

impl<T> LogJoin<T> {
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
    fn was_complete(&self, key: &JoinKey) -> bool {
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

    /// The held records of the span found under these keys, as events,
    /// and the records those link to ([`GenAiRecord::link`]).
    pub fn take_for(&mut self, keys: [Option<&JoinKey>; 2]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut pending: Vec<JoinKey> = keys.into_iter().flatten().cloned().collect();
        while let Some(key) = pending.pop() {
            if let Some(list) = self.held.remove(&key) {
                for h in list {
                    self.held_count -= 1;
                    self.bytes -= h.bytes;
                    pending.extend(h.link);
                    events.push(h.event);
                }
            }
        }
        events
    }

    /// Holds a record until its span comes; may push older records (and
    /// remembered spans) out.
    pub fn hold(&mut self, record: GenAiRecord, now: Instant) -> Released<T> {
        let bytes = record.size();
        self.held_order.push_back((now, record.key.clone()));
        self.held.entry(record.key).or_default().push(Held {
            event: record.event,
            link: record.link,
            bytes,
            at: now,
        });
        self.held_count += 1;
        self.bytes += bytes;
        let mut released = Released::default();
        while self.held_count > self.settings.max_records || self.over_bytes() {
            if self.evict_oldest_record() {
                released.hold_full += 1;
            } else if let Some(span) = self.forget_oldest_span() {
                released.spans.push(span);
            } else {
                break;
            }
        }
        self.compact();
        released
    }

    /// Remembers a span for records that arrive after it. Returns the
    /// spans pushed out of a full memory (or `recent` itself, when it has
    /// no span id to be found by).
    pub fn remember(&mut self, mut recent: RecentSpan<T>, now: Instant) -> Vec<RecentSpan<T>> {
        let Some(key) = recent.key() else {
            return vec![recent];
        };
        recent.at = now;
        recent.bytes = recent.size();
        self.put(key, recent);
        let mut out = Vec::new();
        while self.recent.len() > self.settings.max_records || self.over_bytes() {
            match self.forget_oldest_span() {
                Some(span) => out.push(span),
                None => break,
            }
        }
        self.compact();
        out
    }

    /// The spans remembered now.
    pub fn remembered(&self) -> impl Iterator<Item = &RecentSpan<T>> {
        self.recent.values()
    }

    /// A record of `tenant`'s traces meets the span it names: joined to the
    /// remembered span (taken out: write it again, then
    /// [`LogJoin::put_back`]), not needed (the span was written complete),
    /// or held until its span comes.
    pub fn admit(
        &mut self,
        mut record: GenAiRecord,
        tenant: Option<&str>,
        now: Instant,
    ) -> Admitted<T> {
        record.scope_to(tenant);
        let Some(mut recent) = self.take_recent(&record.key) else {
            if self.was_complete(&record.key) {
                return Admitted::Unused;
            }
            return Admitted::Held(self.hold(record, now));
        };
        let joined = self.fold(&mut recent, record);
        Admitted::Joined { recent, joined }
    }

    /// Takes the remembered span a record names, if any (give it back with
    /// [`LogJoin::put_back`]).
    fn take_recent(&mut self, key: &JoinKey) -> Option<RecentSpan<T>> {
        let span_key = match key {
            JoinKey::Span { .. } => key.clone(),
            JoinKey::Response { .. } => self.responses.get(key)?.clone(),
            // A request body is found through the response body that names
            // it (it comes first); one that comes later waits and expires.
            JoinKey::RequestBody { .. } => return None,
        };
        let recent = self.recent.remove(&span_key)?;
        self.bytes -= recent.bytes;
        if let Some(r) = &recent.by_response {
            self.responses.remove(r);
        }
        Some(recent)
    }

    /// Folds `record` into a span taken with [`LogJoin::take_recent`], with
    /// the held records it links to; returns how many records joined.
    fn fold(&mut self, recent: &mut RecentSpan<T>, record: GenAiRecord) -> usize {
        let linked = self.take_for([record.link.as_ref(), None]);
        let joined = 1 + linked.len();
        recent.joined.push(record.event);
        recent.joined.extend(linked);
        joined
    }

    /// Gives back a span taken with [`LogJoin::take_recent`] (its window
    /// is not extended).
    pub fn put_back(&mut self, mut recent: RecentSpan<T>) {
        if let Some(key) = recent.key() {
            recent.bytes = recent.size();
            self.put(key, recent);
        }
    }

    fn put(&mut self, key: JoinKey, recent: RecentSpan<T>) {
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

    /// Lets go of what is older than the window (remembered spans: older
    /// than `span_window`): the records that expired unjoined are counted,
    /// the spans handed back.
    pub fn expire(&mut self, now: Instant, span_window: Duration) -> Released<T> {
        let window = self.settings.window;
        let mut released = Released::default();
        while let Some((at, _)) = self.held_order.front() {
            if now.saturating_duration_since(*at) < window {
                break;
            }
            if self.evict_oldest_record() {
                released.expired += 1;
            }
        }
        while let Some((at, _)) = self.recent_order.front() {
            if now.saturating_duration_since(*at) < span_window {
                break;
            }
            released.spans.extend(self.forget_oldest_span());
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
        released
    }

    /// The window records are held for.
    pub fn window(&self) -> Duration {
        self.settings.window
    }

    /// Everything held, at shutdown: the records let go are counted
    /// (`expired`), the remembered spans handed back.
    pub fn drain(&mut self) -> Released<T> {
        let expired = self.held_count;
        let spans = std::mem::take(&mut self.recent).into_values().collect();
        *self = Self::new(self.settings);
        Released {
            expired,
            hold_full: 0,
            spans,
        }
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

    /// Lets go of the oldest remembered span. None when none is left.
    fn forget_oldest_span(&mut self) -> Option<RecentSpan<T>> {
        while let Some((at, key)) = self.recent_order.pop_front() {
            if self.recent.get(&key).is_none_or(|r| r.at != at) {
                continue; // taken or replaced since
            }
            let r = self.recent.remove(&key)?;
            self.bytes -= r.bytes;
            if let Some(resp) = &r.by_response {
                self.responses.remove(resp);
            }
            return Some(r);
        }
        None
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

    const WINDOW: Duration = Duration::from_secs(10);

    fn recent(span: Span, by_response: Option<JoinKey>) -> RecentSpan<()> {
        RecentSpan::new(span, vec![], by_response, (), 0)
    }

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
            link: None,
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
        let mut j = LogJoin::<()>::new(settings(10));
        let now = Instant::now();
        let released = j.hold(record(2), now);
        assert_eq!((released.expired, released.hold_full), (0, 0));
        assert!(j.take_for([Some(&key(3)), None]).is_empty());
        assert_eq!(j.take_for([Some(&key(2)), None]).len(), 1);
        assert!(j.take_for([Some(&key(2)), None]).is_empty());
        assert_eq!(j.sizes(), (0, 0, 0));
    }

    #[test]
    fn a_span_takes_the_records_its_records_link_to() {
        let mut j = LogJoin::<()>::new(settings(10));
        let now = Instant::now();
        let body = JoinKey::RequestBody {
            trace: [1; 16],
            id: "b1".into(),
        };
        let mut request_body = record(9);
        request_body.key = body.clone();
        j.hold(request_body, now);
        let mut response = record(2);
        response.link = Some(body);
        j.hold(response, now);
        assert_eq!(j.take_for([Some(&key(2)), None]).len(), 2);
        assert_eq!(j.sizes(), (0, 0, 0));
    }

    #[test]
    fn a_record_never_joined_expires_after_the_window() {
        let mut j = LogJoin::<()>::new(settings(10));
        let now = Instant::now();
        j.hold(record(2), now);
        assert_eq!(j.expire(now + Duration::from_secs(9), WINDOW).expired, 0);
        assert_eq!(j.expire(now + Duration::from_secs(10), WINDOW).expired, 1);
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
        j.remember(recent(span(4), Some(resp.clone())), now);
        let r = j.take_recent(&resp).expect("found by response id");
        assert!(j.take_recent(&key(4)).is_none(), "taken");
        j.put_back(r);
        assert!(j.take_recent(&key(4)).is_some());
        j.remember(recent(span(5), None), now);
        let released = j.expire(now + Duration::from_secs(10), WINDOW);
        assert_eq!(released.spans.len(), 1, "handed back");
        assert!(j.take_recent(&key(5)).is_none(), "forgotten");
        assert_eq!(j.sizes(), (0, 0, 0));
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_unjoinable_records() {
        let mut j = LogJoin::<()>::new(settings(100));
        let now = Instant::now();
        let mut pushed_out = 0;
        for i in 0..50_000u32 {
            let mut r = record((i % 251) as u8);
            r.event.time_unix_nano = u64::from(i);
            pushed_out += j
                .hold(r, now + Duration::from_micros(u64::from(i)))
                .hold_full;
            j.remember(
                recent(span((i % 7) as u8), None),
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
        assert_eq!(j.drain().expired, 100);
    }

    #[test]
    fn the_byte_bound_pushes_records_out_too() {
        let mut j = LogJoin::<()>::new(LogJoinSettings {
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

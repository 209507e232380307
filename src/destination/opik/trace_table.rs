//! The trace table: per OTel trace id, the Opik id (so every later batch,
//! retry and span agrees), the project (the first choice sticks) and what
//! the trace row needs.
//!
//! Entries are forgotten `trace_ttl` after their last span. The table holds
//! at most `max_open_traces` entries; when full, the least recently seen
//! are finalised and forgotten.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use tokio::time::Instant;
use uuid::Uuid;

use super::ids;
use super::rows::ErrorInfoRow;
use crate::semconv::GenAiSpan;

/// What the trace row takes from its root span.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Root {
    pub name: String,
    pub input: Option<Json>,
    pub output: Option<Json>,
    pub error: Option<ErrorInfoRow>,
    /// A true root (no parent), rather than a span whose parent is remote.
    pub parentless: bool,
}

/// One trace in the table. What is not marked `skip` is what the store
/// keeps (see [`OpenTrace::encode`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct OpenTrace {
    pub id: Uuid,
    pub timestamp_ms: u64,
    pub project: String,
    pub otel_id: [u8; 16],
    pub root: Option<Root>,
    pub trace_name: Option<String>,
    pub first_span_name: String,
    pub start_ns: u64,
    pub end_ns: u64,
    /// (start, input) of the earliest LLM span and (end, output) of the latest.
    pub first_llm: Option<(u64, Json)>,
    pub last_llm: Option<(u64, Json)>,
    pub trace_input: Option<Json>,
    pub trace_output: Option<Json>,
    pub thread_id: Option<String>,
    pub user_id: Option<String>,
    pub tags: BTreeSet<String>,
    pub metadata: Map<String, Json>,
    pub resource: Json,
    #[serde(skip, default = "Instant::now")]
    pub last_seen: Instant,
    /// Changed since the trace row was last written.
    #[serde(skip)]
    pub dirty: bool,
    /// Write the row at the end of the current request (new trace, root arrived).
    #[serde(skip)]
    pub write_now: bool,
    #[serde(skip)]
    pub finalised: bool,
    /// (parent span id, usage) of the LLM spans seen with usage, bounded:
    /// an LLM span whose LLM child reports the same usage is a wrapper.
    pub llm_usage: Vec<([u8; 8], crate::semconv::Usage)>,
    pub environment: Option<String>,
    /// The spans attach to a trace the Opik SDK owns (`opik.trace_id`): its
    /// row is never written, or it would replace the SDK's.
    pub attached: bool,
    /// (start ns, ttft ms) of the earliest LLM span reporting a time to
    /// first token: the trace's `ttft` counts from the trace's start.
    #[serde(default)]
    pub first_llm_ttft: Option<(u64, f64)>,
    /// With the Redis store: `last_updated_at` (unix µs) of the stored
    /// entry, later at each update; trace rows carry it.
    #[serde(default)]
    pub stamp_us: u64,
    /// With the Redis store: the version of the stored entry this one
    /// was last written as or merged from.
    #[serde(skip)]
    pub version: u64,
}

/// What is known about a trace when a request first shows it.
#[derive(Clone, Copy)]
pub struct FirstSight<'a> {
    /// Earliest span start of the trace in this request (0 if none).
    pub earliest_start_ns: u64,
    /// The request's `projectName` header.
    pub request_project: Option<&'a str>,
    /// The destination's default project and tags.
    pub default_project: &'a str,
    pub default_tags: &'a [String],
    pub resource: &'a Json,
    pub now: Instant,
}

impl OpenTrace {
    /// A trace met for the first time, through span `g`.
    pub fn new(tid: [u8; 16], g: &GenAiSpan, seen: &FirstSight<'_>) -> Self {
        let timestamp_ms = match seen.earliest_start_ns / 1_000_000 {
            0 => unix_ms(),
            ms => ms,
        };
        let id = g
            .opik_trace_id
            .as_deref()
            .and_then(ids::parse_v7)
            .unwrap_or_else(|| ids::from_otel_id(&tid, timestamp_ms));
        let project = g
            .project_name
            .clone()
            .or_else(|| seen.request_project.map(str::to_string))
            .unwrap_or_else(|| seen.default_project.to_string());
        Self {
            id,
            timestamp_ms,
            project,
            otel_id: tid,
            root: None,
            trace_name: None,
            first_span_name: String::new(),
            start_ns: u64::MAX,
            end_ns: 0,
            first_llm: None,
            last_llm: None,
            trace_input: None,
            trace_output: None,
            thread_id: None,
            user_id: None,
            tags: seen.default_tags.iter().cloned().collect(),
            metadata: Map::new(),
            resource: seen.resource.clone(),
            last_seen: seen.now,
            dirty: true,
            write_now: true,
            finalised: false,
            llm_usage: Vec::new(),
            environment: None,
            attached: g.opik_trace_id.as_deref().and_then(ids::parse_v7).is_some(),
            first_llm_ttft: None,
            stamp_us: 0,
            version: 0,
        }
    }
}

/// A stored entry that could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("stored trace entry shorter than its header")]
    Short,
    #[error("stored trace entry is not valid: {0}")]
    Json(#[from] serde_json::Error),
}

/// The wall-clock time (unix ms) a stored entry was last seen.
pub fn stored_seen_ms(bytes: &[u8]) -> Option<u64> {
    let head = bytes.get(..8)?;
    Some(u64::from_be_bytes(head.try_into().ok()?))
}

/// Unix milliseconds now.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl OpenTrace {
    /// The stored form: when it was last seen (unix ms, big-endian) and the
    /// entry as JSON. `now`/`now_ms` tie the monotonic clock to the wall clock.
    pub fn encode(
        &self,
        now: Instant,
        now_ms: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), serde_json::Error> {
        let quiet = now.saturating_duration_since(self.last_seen).as_millis() as u64;
        buf.clear();
        buf.extend_from_slice(&now_ms.saturating_sub(quiet).to_be_bytes());
        serde_json::to_writer(&mut *buf, self)
    }

    /// A stored entry back in the table. It may have changed since its row
    /// was last sent (the store can be ahead of what reached Opik), so it is
    /// dirty and open: it is written again when it goes quiet.
    pub fn decode(bytes: &[u8], now: Instant, now_ms: u64) -> Result<Self, DecodeError> {
        let seen_ms = stored_seen_ms(bytes).ok_or(DecodeError::Short)?;
        let mut t: Self = serde_json::from_slice(&bytes[8..])?;
        let quiet = Duration::from_millis(now_ms.saturating_sub(seen_ms));
        t.last_seen = now.checked_sub(quiet).unwrap_or(now);
        t.dirty = !t.attached;
        t.write_now = false;
        t.finalised = false;
        Ok(t)
    }
}

impl OpenTrace {
    /// Merges what another replica's copy of this trace saw into this one
    /// (the stored entry): the rules `observe` applies span by span, so the
    /// result is what one replica seeing every span would hold. The id,
    /// project and resource stay (the first writer's).
    pub fn absorb(&mut self, other: &OpenTrace, max_llm_usage: usize, max_tags: usize) {
        self.start_ns = self.start_ns.min(other.start_ns);
        self.end_ns = self.end_ns.max(other.end_ns);
        if self.first_span_name.is_empty() {
            self.first_span_name.clone_from(&other.first_span_name);
        }
        if let Some(r) = &other.root {
            let replaces = match &self.root {
                None => true,
                Some(mine) => r.parentless && !mine.parentless,
            };
            if replaces {
                self.root = Some(r.clone());
            }
        }
        if let Some((s, i)) = &other.first_llm {
            if self.first_llm.as_ref().is_none_or(|(mine, _)| s < mine) {
                self.first_llm = Some((*s, i.clone()));
            }
        }
        if let Some((e, o)) = &other.last_llm {
            if self.last_llm.as_ref().is_none_or(|(mine, _)| e > mine) {
                self.last_llm = Some((*e, o.clone()));
            }
        }
        for (slot, theirs) in [
            (&mut self.trace_name, &other.trace_name),
            (&mut self.thread_id, &other.thread_id),
            (&mut self.user_id, &other.user_id),
            (&mut self.environment, &other.environment),
        ] {
            if slot.is_none() {
                slot.clone_from(theirs);
            }
        }
        for (slot, theirs) in [
            (&mut self.trace_input, &other.trace_input),
            (&mut self.trace_output, &other.trace_output),
        ] {
            if slot.is_none() {
                slot.clone_from(theirs);
            }
        }
        for tag in &other.tags {
            if self.tags.len() < max_tags {
                self.tags.insert(tag.clone());
            }
        }
        for (k, v) in &other.metadata {
            self.metadata.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for u in &other.llm_usage {
            if self.llm_usage.len() < max_llm_usage && !self.llm_usage.contains(u) {
                self.llm_usage.push(*u);
            }
        }
        self.stamp_us = self.stamp_us.max(other.stamp_us);
        if let Some((start, ttft)) = other.first_llm_ttft {
            self.observe_ttft(start, ttft);
        }
    }

    /// Keeps the time to first token of the earliest LLM span reporting one.
    pub fn observe_ttft(&mut self, start_ns: u64, ttft_ms: f64) {
        if self.first_llm_ttft.is_none_or(|(s, _)| start_ns < s) {
            self.first_llm_ttft = Some((start_ns, ttft_ms));
        }
    }

    /// The trace's time to first token (ms): from its start to the first
    /// token of its earliest LLM call that reports one.
    pub fn ttft_ms(&self) -> Option<f64> {
        let (start, ttft) = self.first_llm_ttft?;
        let before = start.saturating_sub(self.start_ns.min(start)) as f64 / 1e6;
        // To the microsecond: the nanosecond offset adds only float noise.
        Some(((before + ttft) * 1000.0).round() / 1000.0)
    }
}

/// The bounded table of traces.
#[derive(Default)]
pub struct TraceTable {
    traces: HashMap<[u8; 16], OpenTrace>,
}

impl TraceTable {
    pub fn len(&self) -> usize {
        self.traces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    pub fn contains(&self, tid: &[u8; 16]) -> bool {
        self.traces.contains_key(tid)
    }

    pub fn get_mut(&mut self, tid: &[u8; 16]) -> Option<&mut OpenTrace> {
        self.traces.get_mut(tid)
    }

    pub fn insert(&mut self, tid: [u8; 16], t: OpenTrace) {
        self.traces.insert(tid, t);
    }

    pub fn remove(&mut self, tid: &[u8; 16]) -> Option<OpenTrace> {
        self.traces.remove(tid)
    }

    /// Ids of every trace in the table.
    pub fn ids(&self) -> impl Iterator<Item = &[u8; 16]> + '_ {
        self.traces.keys()
    }

    pub fn get(&self, tid: &[u8; 16]) -> Option<&OpenTrace> {
        self.traces.get(tid)
    }

    /// The least recently seen 1 % (at least one), removed from the table.
    pub fn take_oldest(&mut self) -> Vec<OpenTrace> {
        let n = (self.traces.len() / 100).max(1);
        let mut by_age: Vec<([u8; 16], Instant)> =
            self.traces.iter().map(|(k, t)| (*k, t.last_seen)).collect();
        by_age.sort_by_key(|(_, seen)| *seen);
        by_age
            .into_iter()
            .take(n)
            .filter_map(|(tid, _)| self.traces.remove(&tid))
            .collect()
    }

    /// Traces quiet for `stale` and not yet finalised, or quiet for `ttl`.
    pub fn due(&self, now: Instant, stale: Duration, ttl: Duration) -> Vec<[u8; 16]> {
        self.traces
            .iter()
            .filter(|(_, t)| {
                let quiet = now.saturating_duration_since(t.last_seen);
                (!t.finalised && quiet >= stale) || quiet >= ttl
            })
            .map(|(k, _)| *k)
            .collect()
    }

    /// Every trace, removed from the table.
    pub fn drain(&mut self) -> impl Iterator<Item = OpenTrace> + '_ {
        self.traces.drain().map(|(_, t)| t)
    }
}

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

use super::fields::Resource;
use super::ids;
use super::rows::ErrorInfoRow;
use super::truncate::json_len;
use crate::semconv::GenAiSpan;
use crate::semconv::write::doc::JsonDoc;

/// What the trace row takes from its root span.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Root {
    pub name: String,
    pub input: Option<JsonDoc>,
    pub output: Option<JsonDoc>,
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
    pub first_llm: Option<(u64, JsonDoc)>,
    pub last_llm: Option<(u64, JsonDoc)>,
    pub trace_input: Option<JsonDoc>,
    pub trace_output: Option<JsonDoc>,
    pub thread_id: Option<String>,
    pub user_id: Option<String>,
    pub tags: BTreeSet<String>,
    pub metadata: Map<String, Json>,
    pub resource: Json,
    /// [`super::fields::Resource::fingerprint`] of `resource` (0 in entries
    /// stored before it existed: then every span row carries its resource).
    #[serde(default)]
    pub resource_fingerprint: u64,
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
    /// The content slots released once the trace's complete row was
    /// written (see [`OpenTrace::release`]); absent in older entries.
    #[serde(default)]
    pub released: Released,
    /// Serialised bytes of the JSON held (content, metadata, resource),
    /// kept up to date as it changes, for [`OpenTrace::approx_bytes`].
    #[serde(skip)]
    pub held: usize,
    /// The tenant whose requests opened it (its rows' workspace and key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// Which content slots of a trace were released: their values became
/// `null`, and a trace row written afterwards leaves what Opik already holds
/// for them alone (it is sent as an update, see [`super::trace_row`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Released(pub u8);

impl Released {
    pub const ROOT_INPUT: u8 = 1;
    pub const ROOT_OUTPUT: u8 = 2;
    pub const FIRST_LLM: u8 = 4;
    pub const LAST_LLM: u8 = 8;
    pub const TRACE_INPUT: u8 = 16;
    pub const TRACE_OUTPUT: u8 = 32;

    pub fn has(self, slot: u8) -> bool {
        self.0 & slot != 0
    }

    /// A new value took the slot: it is held again.
    pub fn refill(&mut self, slot: u8) {
        self.0 &= !slot;
    }
}

/// Serialised length of an optional document.
pub fn opt_len(v: Option<&JsonDoc>) -> usize {
    v.map_or(0, JsonDoc::len)
}

/// What is known about a trace when a request first shows it.
#[derive(Clone, Copy)]
pub struct FirstSight<'a> {
    /// Earliest span start of the trace in this request (0 if none).
    pub earliest_start_ns: u64,
    /// The request's `projectName` header.
    pub request_project: Option<&'a str>,
    /// The request's tenant, its route and its own project (which wins
    /// over the span's and the header's); see [`super::tenants`].
    pub tenant: Option<&'a str>,
    pub route: u16,
    pub tenant_project: Option<&'a str>,
    /// The destination's default project and tags.
    pub default_project: &'a str,
    pub default_tags: &'a [String],
    pub resource: &'a Resource,
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
        let project = seen
            .tenant_project
            .map(str::to_string)
            .or_else(|| g.project_name.clone())
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
            resource: seen.resource.json.clone(),
            resource_fingerprint: seen.resource.fingerprint,
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
            released: Released::default(),
            held: json_len(&seen.resource.json),
            tenant: seen.tenant.map(str::to_string),
        }
    }

    /// Approximate bytes this entry takes in memory: the fixed part, its
    /// strings and the JSON it holds. Cheap: nothing is walked.
    pub fn approx_bytes(&self) -> usize {
        let strings = [
            Some(&self.project),
            Some(&self.first_span_name),
            self.trace_name.as_ref(),
            self.thread_id.as_ref(),
            self.user_id.as_ref(),
            self.environment.as_ref(),
            self.root.as_ref().map(|r| &r.name),
        ]
        .into_iter()
        .flatten()
        .map(String::len)
        .sum::<usize>();
        let tags: usize = self.tags.iter().map(|t| t.len() + 32).sum();
        let usage = self.llm_usage.len() * std::mem::size_of::<([u8; 8], crate::semconv::Usage)>();
        let error = self
            .root
            .as_ref()
            .and_then(|r| r.error.as_ref())
            .map_or(0, |e| {
                e.exception_type.len()
                    + e.traceback.len()
                    + e.message.as_ref().map_or(0, String::len)
            });
        std::mem::size_of::<Self>() + strings + tags + usage + error + self.held
    }

    /// Counts the JSON held from scratch (after loading or merging).
    pub fn recount(&mut self) {
        let root = self.root.as_ref();
        self.held = opt_len(root.and_then(|r| r.input.as_ref()))
            + opt_len(root.and_then(|r| r.output.as_ref()))
            + opt_len(self.first_llm.as_ref().map(|(_, v)| v))
            + opt_len(self.last_llm.as_ref().map(|(_, v)| v))
            + opt_len(self.trace_input.as_ref())
            + opt_len(self.trace_output.as_ref())
            + self
                .metadata
                .iter()
                .map(|(k, v)| k.len() + json_len(v))
                .sum::<usize>()
            + json_len(&self.resource);
    }

    /// Forgets the content (input and output candidates) once the trace's
    /// complete row has been written: only ids, times, names and small
    /// facts stay. A later write of the row leaves Opik's input and output
    /// as they are, unless a later span brings new ones.
    pub fn release(&mut self) {
        let mut slots: Vec<(u8, &mut JsonDoc)> = Vec::with_capacity(6);
        if let Some(r) = self.root.as_mut() {
            slots.extend(r.input.as_mut().map(|v| (Released::ROOT_INPUT, v)));
            slots.extend(r.output.as_mut().map(|v| (Released::ROOT_OUTPUT, v)));
        }
        slots.extend(
            self.first_llm
                .as_mut()
                .map(|(_, v)| (Released::FIRST_LLM, v)),
        );
        slots.extend(self.last_llm.as_mut().map(|(_, v)| (Released::LAST_LLM, v)));
        slots.extend(
            self.trace_input
                .as_mut()
                .map(|v| (Released::TRACE_INPUT, v)),
        );
        slots.extend(
            self.trace_output
                .as_mut()
                .map(|v| (Released::TRACE_OUTPUT, v)),
        );
        for (slot, v) in slots {
            *v = JsonDoc::null();
            self.released.0 |= slot;
        }
        self.recount();
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
    /// entry as JSON (written with sonic-rs, which writes its documents
    /// verbatim, see [`JsonDoc`]). `now`/`now_ms` tie the monotonic clock
    /// to the wall clock.
    pub fn encode(
        &self,
        now: Instant,
        now_ms: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), sonic_rs::Error> {
        let quiet = now.saturating_duration_since(self.last_seen).as_millis() as u64;
        buf.clear();
        buf.extend_from_slice(&now_ms.saturating_sub(quiet).to_be_bytes());
        JsonDoc::write(buf, self)
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
        t.recount();
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
                self.take_released(other, Released::ROOT_INPUT | Released::ROOT_OUTPUT);
            }
        }
        if let Some((s, i)) = &other.first_llm {
            if self.first_llm.as_ref().is_none_or(|(mine, _)| s < mine) {
                self.first_llm = Some((*s, i.clone()));
                self.take_released(other, Released::FIRST_LLM);
            }
        }
        if let Some((e, o)) = &other.last_llm {
            if self.last_llm.as_ref().is_none_or(|(mine, _)| e > mine) {
                self.last_llm = Some((*e, o.clone()));
                self.take_released(other, Released::LAST_LLM);
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
        for (slot, theirs, bit) in [
            (
                &mut self.trace_input,
                &other.trace_input,
                Released::TRACE_INPUT,
            ),
            (
                &mut self.trace_output,
                &other.trace_output,
                Released::TRACE_OUTPUT,
            ),
        ] {
            if slot.is_none() && theirs.is_some() {
                slot.clone_from(theirs);
                self.released.0 = (self.released.0 & !bit) | (other.released.0 & bit);
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
        self.release_as(other);
        self.recount();
    }

    /// What `other` released is released here too when both hold the same
    /// choice (same root, same first or last LLM call, a flow input or
    /// output), so a replica's release reaches the shared entry.
    fn release_as(&mut self, other: &OpenTrace) {
        let r = other.released;
        let same_root = match (&self.root, &other.root) {
            (Some(a), Some(b)) => a.name == b.name && a.parentless == b.parentless,
            _ => false,
        };
        let key = |x: &Option<(u64, JsonDoc)>| x.as_ref().map(|(k, _)| *k);
        let mut slots: Vec<(u8, Option<&mut JsonDoc>)> = Vec::with_capacity(6);
        if let (true, Some(root)) = (same_root, self.root.as_mut()) {
            slots.push((Released::ROOT_INPUT, root.input.as_mut()));
            slots.push((Released::ROOT_OUTPUT, root.output.as_mut()));
        }
        if key(&self.first_llm) == key(&other.first_llm) {
            slots.push((Released::FIRST_LLM, self.first_llm.as_mut().map(|(_, v)| v)));
        }
        if key(&self.last_llm) == key(&other.last_llm) {
            slots.push((Released::LAST_LLM, self.last_llm.as_mut().map(|(_, v)| v)));
        }
        slots.push((Released::TRACE_INPUT, self.trace_input.as_mut()));
        slots.push((Released::TRACE_OUTPUT, self.trace_output.as_mut()));
        for (slot, v) in slots {
            if let (true, Some(v)) = (r.has(slot), v) {
                *v = JsonDoc::null();
                self.released.0 |= slot;
            }
        }
    }

    /// Slots copied from `other` are released as they were there.
    fn take_released(&mut self, other: &OpenTrace, slots: u8) {
        self.released.0 = (self.released.0 & !slots) | (other.released.0 & slots);
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
    /// Sum of the entries' [`OpenTrace::approx_bytes`].
    bytes: usize,
    /// Entries visited to choose evictions (tests check it stays linear).
    #[cfg(test)]
    pub visited: usize,
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

    /// Approximate bytes the table takes (entries and their content): a
    /// counter kept as entries change, cheap to read.
    pub fn approx_bytes(&self) -> usize {
        self.bytes
    }

    /// The entry of `tid`; a caller that changes it reports its size
    /// before and after with [`TraceTable::resized`].
    pub fn get_mut(&mut self, tid: &[u8; 16]) -> Option<&mut OpenTrace> {
        self.traces.get_mut(tid)
    }

    /// An entry changed from `before` to `after` approximate bytes.
    pub fn resized(&mut self, before: usize, after: usize) {
        self.bytes = (self.bytes + after).saturating_sub(before);
    }

    pub fn insert(&mut self, tid: [u8; 16], t: OpenTrace) {
        self.bytes += t.approx_bytes();
        if let Some(old) = self.traces.insert(tid, t) {
            self.bytes = self.bytes.saturating_sub(old.approx_bytes());
        }
    }

    pub fn remove(&mut self, tid: &[u8; 16]) -> Option<OpenTrace> {
        let t = self.traces.remove(tid)?;
        self.bytes = self.bytes.saturating_sub(t.approx_bytes());
        Some(t)
    }

    /// Ids of every trace in the table.
    pub fn ids(&self) -> impl Iterator<Item = &[u8; 16]> + '_ {
        self.traces.keys()
    }

    pub fn get(&self, tid: &[u8; 16]) -> Option<&OpenTrace> {
        self.traces.get(tid)
    }

    /// The least recently seen 1 % (at least one), removed from the table.
    /// Linear in the table's size (a selection, not a sort), so evicting
    /// one trace costs about 100 entries visited however many arrive.
    pub fn take_oldest(&mut self) -> Vec<([u8; 16], OpenTrace)> {
        let n = (self.traces.len() / 100).max(1);
        let mut by_age: Vec<([u8; 16], Instant)> =
            self.traces.iter().map(|(k, t)| (*k, t.last_seen)).collect();
        #[cfg(test)]
        {
            self.visited += by_age.len();
        }
        if n < by_age.len() {
            by_age.select_nth_unstable_by_key(n, |(_, seen)| *seen);
        }
        by_age
            .into_iter()
            .take(n)
            .filter_map(|(tid, _)| Some((tid, self.remove(&tid)?)))
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
        self.bytes = 0;
        self.traces.drain().map(|(_, t)| t)
    }
}

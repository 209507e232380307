//! The trace assembler's side of its store: loading the table at start,
//! looking up traces it does not hold, writing back what each request
//! touched and holding the spool until that is durable (disk), or claiming
//! and merging traces shared with other replicas (Redis). See
//! [`super::trace_store`] and [`super::redis_store`].

use std::time::Duration;

use tokio::time::Instant;

use super::config::MAX_TAGS;
use super::mapper::TraceAssembler;
use super::redis_store::{Outcome, RedisStore};
use super::span_row::MAX_LLM_USAGE;
use super::trace_store::{COMMIT_EVERY, TraceStore};
use super::trace_table::{FirstSight, OpenTrace, stored_seen_ms, unix_ms};
use crate::semconv;
use crate::telemetry::reason::StateError;

/// The trace table's store and how far it is durable.
pub(super) struct Durable {
    pub(super) store: TraceStore,
    /// With `state.backend = "redis"`: the shared table (then `store` is
    /// memory only).
    pub(super) redis: Option<RedisStore>,
    /// Start of the first spool record mapped since the last durable commit.
    pub(super) replay_from: Option<u64>,
    /// Something was written since the last durable commit.
    pub(super) pending: bool,
    pub(super) last_commit: Instant,
    /// Traces touched since the last commit, written to the store at the
    /// next one (or as they leave the table).
    pub(super) unwritten: std::collections::HashSet<[u8; 16]>,
    /// When the table is next scanned for quiet traces, and the store for
    /// expired ones.
    pub(super) next_scan: Instant,
    pub(super) next_sweep: Instant,
    pub(super) buf: Vec<u8>,
}

impl Durable {
    /// Nothing waits for the store any more: the spool is not held for it.
    fn forget_pending(&mut self) {
        self.unwritten.clear();
        self.pending = false;
        self.replay_from = None;
    }
}

impl TraceAssembler {
    /// Loads the stored traces seen within `trace_ttl` (the most recent
    /// `max_open_traces`), so that they are finalised when they go quiet;
    /// older entries are removed from the store.
    pub(super) fn restore(&mut self) {
        if !self.durable.store.is_persistent() {
            return;
        }
        let (now, now_ms) = (Instant::now(), unix_ms());
        let ttl_ms = self.target.trace_ttl.as_millis() as u64;
        let max = self.target.max_open_traces;
        // The most recent `max`, by a bounded min-heap on the time last seen.
        let mut recent = std::collections::BinaryHeap::new();
        self.durable.store.sweep(|tid, b| {
            let Some(seen) = stored_seen_ms(b).filter(|s| now_ms.saturating_sub(*s) < ttl_ms)
            else {
                return false;
            };
            if recent.len() < max
                || recent
                    .peek()
                    .is_some_and(|std::cmp::Reverse((s, _, _))| *s < seen)
            {
                recent.push(std::cmp::Reverse((seen, *tid, b.to_vec())));
                if recent.len() > max {
                    recent.pop();
                }
            }
            true
        });
        for std::cmp::Reverse((_, tid, bytes)) in recent {
            match OpenTrace::decode(&bytes, now, now_ms) {
                Ok(t) => self.traces.insert(tid, t),
                Err(e) => self
                    .telemetry
                    .state_error(StateError::Decode, &e.to_string()),
            }
        }
        if !self.traces.is_empty() {
            tracing::info!(
                destination = %self.telemetry.name(),
                traces = self.traces.len(),
                "opik: trace table restored from the store"
            );
        }
    }

    /// A trace the table does not hold: from the store if it knows it,
    /// else new.
    pub(super) fn open_trace(
        &mut self,
        tid: [u8; 16],
        g: &semconv::GenAiSpan,
        seen: &FirstSight<'_>,
    ) -> OpenTrace {
        if self.durable.redis.is_some() {
            return self.claim(tid, OpenTrace::new(tid, g, seen), seen.now);
        }
        if let Some(bytes) = self.durable.store.get(&tid) {
            match OpenTrace::decode(&bytes, seen.now, unix_ms()) {
                Ok(t) => return t,
                Err(e) => self
                    .telemetry
                    .state_error(StateError::Decode, &e.to_string()),
            }
        }
        OpenTrace::new(tid, g, seen)
    }

    /// A trace new to this replica, claimed on Redis: ours if no replica
    /// claimed it first, else theirs (its id, project and state).
    pub(super) fn claim(&mut self, tid: [u8; 16], mut t: OpenTrace, now: Instant) -> OpenTrace {
        let Some(redis) = self.durable.redis.as_mut() else {
            return t;
        };
        let now_ms = unix_ms();
        t.stamp_us = now_ms * 1000;
        if let Err(e) = t.encode(now, now_ms, &mut self.durable.buf) {
            self.telemetry
                .state_error(StateError::Write, &e.to_string());
            return t;
        }
        match redis.claim(&tid, &self.durable.buf) {
            Some(Outcome::Written(v)) => t.version = v,
            Some(Outcome::Taken(v, bytes)) => match OpenTrace::decode(&bytes, now, now_ms) {
                Ok(mut theirs) => {
                    theirs.version = v;
                    theirs.dirty = false;
                    return theirs;
                }
                Err(e) => self
                    .telemetry
                    .state_error(StateError::Decode, &e.to_string()),
            },
            None => {}
        }
        t
    }

    /// Writes what this replica saw of each trace into the shared table,
    /// merging with what others wrote meanwhile (compare-and-set on the
    /// version; see [`super::redis_store`]). Afterwards the table holds the
    /// merged entry, which the trace row is built from.
    pub(super) fn sync(&mut self, tids: &[[u8; 16]]) {
        let Some(redis) = self.durable.redis.as_mut() else {
            return;
        };
        for tid in tids {
            let Some(t) = self.traces.get_mut(tid) else {
                continue;
            };
            let before = t.approx_bytes();
            for _ in 0..MAX_MERGES {
                let (now, now_ms) = (Instant::now(), unix_ms());
                t.stamp_us = (now_ms * 1000).max(t.stamp_us + 1);
                if let Err(e) = t.encode(now, now_ms, &mut self.durable.buf) {
                    self.telemetry
                        .state_error(StateError::Write, &e.to_string());
                    break;
                }
                match redis.update(tid, t.version, &self.durable.buf) {
                    Some(Outcome::Written(v)) => {
                        t.version = v;
                        break;
                    }
                    Some(Outcome::Taken(v, bytes)) => {
                        match OpenTrace::decode(&bytes, now, now_ms) {
                            Ok(mut merged) => {
                                merged.absorb(t, MAX_LLM_USAGE, MAX_TAGS);
                                merged.version = v;
                                (merged.last_seen, merged.dirty) = (t.last_seen, t.dirty);
                                (merged.write_now, merged.finalised) = (t.write_now, t.finalised);
                                *t = merged;
                            }
                            Err(e) => {
                                self.telemetry
                                    .state_error(StateError::Decode, &e.to_string());
                                break;
                            }
                        }
                    }
                    None => break,
                }
            }
            let after = t.approx_bytes();
            self.traces.resized(before, after);
        }
    }

    /// Notes the traces a request touched (and removes `gone`, the expired
    /// ones) for the store. The touched ones are encoded and written at the
    /// next durable commit ([`Self::commit`], every [`COMMIT_EVERY`]), once
    /// each however many requests touched them in between; until then the
    /// spool is held at the first record mapped since the last commit, so a
    /// crash replays what the store has not made durable. A trace leaving
    /// the table before that is written as it leaves ([`Self::write_out`]).
    pub(super) fn persist(
        &mut self,
        touched: &[[u8; 16]],
        gone: &[[u8; 16]],
        record: Option<(u64, u64)>,
    ) {
        if self.durable.redis.is_some() {
            self.sync(touched);
            return;
        }
        let d = &mut self.durable;
        if !d.store.is_persistent() || (touched.is_empty() && gone.is_empty()) {
            return;
        }
        if !gone.is_empty() {
            for tid in gone {
                d.unwritten.remove(tid);
            }
            if !d.store.write([], gone, false) {
                // A failing store cannot help a replay: do not hold the spool for it.
                d.forget_pending();
                return;
            }
        }
        d.unwritten.extend(touched.iter().copied());
        d.pending = true;
        d.replay_from = d.replay_from.or(record.map(|(start, _)| start));
        if Instant::now().saturating_duration_since(d.last_commit) >= COMMIT_EVERY {
            self.commit();
        }
    }

    /// Writes `evicted` (just taken out of the table) to the store, not
    /// durably: the next commit reads the table, which no longer holds them,
    /// and the request being mapped may have changed them before it noted
    /// them as touched.
    pub(super) fn write_out(&mut self, evicted: &[([u8; 16], OpenTrace)]) {
        let d = &mut self.durable;
        if !d.store.is_persistent() || d.redis.is_some() {
            return;
        }
        for (tid, _) in evicted {
            d.unwritten.remove(tid);
        }
        let entries = evicted.iter().map(|(tid, t)| (*tid, t));
        if !write_traces(d, &self.telemetry, entries, false) {
            d.forget_pending();
        }
    }

    /// Writes what is waiting and makes everything written durable.
    pub(super) fn commit(&mut self) {
        if !self.durable.pending {
            return;
        }
        let d = &mut self.durable;
        let waiting: Vec<[u8; 16]> = d.unwritten.drain().collect();
        let traces = &self.traces;
        let entries = waiting
            .iter()
            .filter_map(|tid| Some((*tid, traces.get(tid)?)));
        write_traces(d, &self.telemetry, entries, true);
        // Written or failed, nothing is left to hold the spool for: a
        // failing store cannot help a replay.
        d.forget_pending();
        d.last_commit = Instant::now();
    }

    /// Removes entries of the store older than `trace_ttl` (evicted traces
    /// that never came back).
    pub(super) fn sweep(&mut self, now: Instant) {
        if now < self.durable.next_sweep || !self.durable.store.is_persistent() {
            return;
        }
        self.durable.next_sweep = now + SWEEP_EVERY;
        self.commit();
        let (now_ms, ttl_ms) = (unix_ms(), self.target.trace_ttl.as_millis() as u64);
        let traces = &self.traces;
        self.durable.store.sweep(|tid, b| {
            traces.contains(tid)
                || stored_seen_ms(b).is_some_and(|s| now_ms.saturating_sub(s) < ttl_ms)
        });
    }
}

/// Merge attempts per trace and update when replicas race on Redis.
pub(super) const MAX_MERGES: usize = 16;

/// How often the store is swept for expired entries.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Encodes `traces` and writes them to the store in one transaction; false
/// when the store failed (an entry that cannot be encoded is counted and
/// left out).
fn write_traces<'a>(
    d: &mut Durable,
    telemetry: &crate::telemetry::DestinationTelemetry,
    traces: impl IntoIterator<Item = ([u8; 16], &'a OpenTrace)>,
    durable: bool,
) -> bool {
    let (now, now_ms) = (Instant::now(), unix_ms());
    let mut encoded: Vec<([u8; 16], Vec<u8>)> = Vec::new();
    for (tid, t) in traces {
        match t.encode(now, now_ms, &mut d.buf) {
            Ok(()) => encoded.push((tid, d.buf.clone())),
            Err(e) => telemetry.state_error(StateError::Write, &e.to_string()),
        }
    }
    if encoded.is_empty() && !durable {
        return true;
    }
    let entries = encoded.iter().map(|(tid, b)| (*tid, b.as_slice()));
    d.store.write(entries, &[], durable)
}

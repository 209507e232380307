//! One request through the controls: which spans a destination keeps, and
//! the new parent of a kept span whose parent was dropped.

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tokio::time::Instant;

use super::Controls;
use super::config::SamplingKey;
use super::filter::Subject;
use super::keep::{self, AlwaysKeep, Hold, KeepReason};
use super::memory::{Memory, SpanKey, TraceMark, span_key};
use super::tenants::scoped_trace;
use crate::route::ReceivedTraces;
use crate::semconv::{self, GenAiSpan, SpanContext};
use crate::telemetry::reason::ControlDrop;

/// The decision for one span.
#[derive(Debug, Default)]
pub enum Verdict {
    /// Not forwarded (counted by the stage).
    Drop,
    /// Forwarded. `view` is the normalised view when the controls needed it
    /// (the mapper uses it instead of normalising again); `parent`, when
    /// set, replaces the span's parent id (empty: the span becomes a root).
    Keep {
        view: Option<Box<GenAiSpan>>,
        parent: Option<Vec<u8>>,
        /// The span with redaction applied, when a rule matched (and the
        /// `sampling.always_keep` reason added, when there is one).
        redacted: Option<Box<Span>>,
        /// Why `sampling.always_keep` kept the span's trace the rate dropped.
        reason: Option<KeepReason>,
    },
    /// Forwarded as is.
    #[default]
    Unchanged,
}

/// The verdicts of one request, by span position (resource, scope, span order).
#[derive(Debug, Default)]
pub struct Plan {
    verdicts: Vec<Verdict>,
    /// Spans dropped, by reason.
    pub dropped: [usize; ControlDrop::ALL.len()],
    /// Matches per redaction rule.
    pub redacted: Vec<usize>,
    /// Spans held by `sampling.always_keep` whose trace is now kept: the
    /// mapper maps them as one more request.
    pub released: Option<ReceivedTraces>,
}

impl Plan {
    /// The spans released by `sampling.always_keep`, if any (taken once).
    pub fn take_released(&mut self) -> Option<ReceivedTraces> {
        self.released.take()
    }

    /// The verdict of the `i`-th span of the request (taken once).
    pub fn take(&mut self, i: usize) -> Verdict {
        self.verdicts
            .get_mut(i)
            .map(std::mem::take)
            .unwrap_or_default()
    }
}

/// One span while its fate is decided.
struct Entry<'a> {
    span: &'a Span,
    /// `span` redacted, when a redaction rule matched.
    redacted: Option<Span>,
    ctx: SpanContext<'a>,
    /// Where the span sits in the request (to hold it with its resource and scope).
    at: (&'a ResourceSpans, &'a ScopeSpans),
    trace: [u8; 16],
    view: Option<GenAiSpan>,
    dropped: Option<ControlDrop>,
    /// Sampled out, but held by `sampling.always_keep` (counted when decided).
    held: bool,
    /// Why `sampling.always_keep` keeps the trace.
    reason: Option<KeepReason>,
    /// Matched a span-scope include / exclude rule.
    include_hit: bool,
    exclude_hit: bool,
}

impl Entry<'_> {
    fn key(&self) -> SpanKey {
        span_key(&self.trace, &self.span.span_id)
    }
    fn parent_key(&self) -> Option<SpanKey> {
        (!is_root(&self.span.parent_span_id))
            .then(|| span_key(&self.trace, &self.span.parent_span_id))
    }
}

fn is_root(parent: &[u8]) -> bool {
    parent.iter().all(|b| *b == 0)
}

/// Runs the controls over one request.
pub fn plan(
    c: &Controls,
    memory: &mut Memory,
    hold: &mut Hold,
    traces: &ReceivedTraces,
    now: Instant,
) -> Plan {
    let mut redacted = vec![0; c.redact.as_ref().map_or(0, |r| r.rules.len())];
    let mut entries = collect(c, memory, traces, &mut redacted);
    let mut waited_out = 0;
    let mut released = None;
    if let Some(k) = c.sampling.and_then(|s| s.always_keep) {
        let (gone, n) = hold.expire(now, k.window);
        decided_by_rate(memory, &gone);
        let mut keeping = Keeping {
            c,
            k: &k,
            memory,
            hold,
            context: &traces.context,
            now,
            counts: &mut redacted,
            pushed: 0,
        };
        released = keeping.apply(&mut entries);
        waited_out = n + keeping.pushed;
    }
    if c.sampling.is_some_and(|s| s.key == SamplingKey::Session) {
        sample_sessions(c, memory, &mut entries);
    }
    if !c.rules.is_empty() {
        apply_rules(c, memory, &mut entries);
    }
    // Only filters drop single spans; sampling drops whole traces, which
    // leaves nothing to re-parent and no index to build.
    let filters = c.drop_non_genai || !c.rules.is_empty();
    let index: HashMap<SpanKey, usize> = if filters {
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.key(), i))
            .collect()
    } else {
        HashMap::new()
    };
    if c.drop_non_genai {
        drop_non_genai(memory, &mut entries, &index);
    }
    if let Some(cost) = &c.cost {
        for e in entries.iter_mut().filter(|e| e.dropped.is_none()) {
            if let Some(g) = e.view.as_mut() {
                cost.estimate(g, e.span.start_time_unix_nano);
            }
        }
    }
    let mut plan = finish(memory, entries, filters.then_some(&index), redacted);
    plan.dropped[ControlDrop::SampledOut.index()] += waited_out;
    plan.released = released;
    plan
}

fn decided_by_rate(memory: &mut Memory, traces: &[[u8; 16]]) {
    for t in traces {
        memory.mark(*t, |m| m.by_rate = true);
    }
}

/// `sampling.always_keep` over one request's sampled-out spans.
struct Keeping<'p, 'a> {
    c: &'p Controls,
    k: &'p AlwaysKeep,
    memory: &'p mut Memory,
    hold: &'p mut Hold,
    context: &'a crate::route::RequestContext,
    now: Instant,
    counts: &'p mut [usize],
    /// Held spans pushed out of the full hold (decided by the rate).
    pushed: usize,
}

impl Keeping<'_, '_> {
    /// What the hold and the keep marks know a trace by: its id within the
    /// request's tenant.
    fn key(&self, e: &Entry<'_>) -> [u8; 16] {
        scoped_trace(&e.trace, self.context.tenant.as_deref())
    }

    fn decided_by_rate(&self, key: &[u8; 16]) -> bool {
        self.memory.traces.get(key).is_some_and(|m| m.by_rate)
    }

    /// Decides the traces of the sampled-out spans: a trigger keeps the
    /// trace (its spans here, and those held, released); the others' spans
    /// are held. Returns the released spans.
    fn apply(&mut self, entries: &mut [Entry<'_>]) -> Option<ReceivedTraces> {
        let (sums, kept) = self.decide(entries);
        let mut released = None;
        for (trace, reason) in &kept {
            self.memory.mark(*trace, |m| m.kept = Some(*reason));
            if let Some(r) = self.hold.release(trace) {
                keep::merge(&mut released, r);
            }
        }
        for e in entries.iter_mut() {
            if e.dropped != Some(ControlDrop::SampledOut) {
                continue;
            }
            let key = self.key(e);
            if let Some(reason) = kept.get(&key) {
                self.keep(e, *reason);
            } else if !self.decided_by_rate(&key) {
                let sum = sums.get(&key).copied().unwrap_or_default();
                let (gone, n) =
                    self.hold
                        .hold(self.k, key, e.span, e.at, sum, self.context, self.now);
                decided_by_rate(self.memory, &gone);
                self.pushed += n;
                e.held = true;
            }
        }
        released
    }

    /// Each undecided trace's summary after this request, and the traces
    /// a span of this request keeps.
    fn decide(
        &self,
        entries: &[Entry<'_>],
    ) -> (
        HashMap<[u8; 16], keep::Summary>,
        HashMap<[u8; 16], KeepReason>,
    ) {
        let mut sums = HashMap::new();
        let mut kept = HashMap::new();
        for e in entries
            .iter()
            .filter(|e| e.dropped == Some(ControlDrop::SampledOut))
        {
            let key = self.key(e);
            if kept.contains_key(&key) || self.decided_by_rate(&key) {
                continue;
            }
            let sum = sums.entry(key).or_insert_with(|| self.hold.summary(&key));
            let mut view = keep::view_for(self.k, e.span, e.ctx);
            if let (Some(cost), Some(g)) = (&self.c.cost, view.as_mut()) {
                cost.estimate(g, e.span.start_time_unix_nano);
            }
            if let Some(reason) = self.k.check(e.span, view.as_ref(), sum) {
                kept.insert(key, reason);
            }
        }
        (sums, kept)
    }

    /// A sampled-out span whose trace is kept after all: redacted and
    /// normalised as a kept span is.
    fn keep(&mut self, e: &mut Entry<'_>, reason: KeepReason) {
        e.dropped = None;
        e.reason = Some(reason);
        e.redacted = self
            .c
            .redact
            .as_ref()
            .and_then(|r| r.apply(e.span, self.counts));
        let current = e.redacted.as_ref().unwrap_or(e.span);
        e.view = self
            .c
            .needs_view()
            .then(|| semconv::normalise(current, e.ctx));
    }
}

/// Every span of the request in order, sampled by trace id, normalised if
/// the controls look at the view.
fn collect<'a>(
    c: &Controls,
    memory: &Memory,
    traces: &'a ReceivedTraces,
    counts: &mut [usize],
) -> Vec<Entry<'a>> {
    let mut entries = Vec::with_capacity(traces.span_count);
    let by_trace = c.sampling.filter(|s| s.key == SamplingKey::Trace);
    for rs in &traces.resource_spans {
        for ss in &rs.scope_spans {
            let ctx = SpanContext::of(rs, ss);
            for span in &ss.spans {
                let trace = <[u8; 16]>::try_from(span.trace_id.as_slice()).unwrap_or_default();
                let sampled_out = by_trace.is_some_and(|s| !s.keeps(&trace));
                // A trace `sampling.always_keep` kept earlier stays kept.
                let reason = sampled_out
                    .then(|| {
                        let key = scoped_trace(&trace, traces.context.tenant.as_deref());
                        memory.traces.get(&key).and_then(|m| m.kept)
                    })
                    .flatten();
                let sampled_out = sampled_out && reason.is_none();
                let redacted = match &c.redact {
                    Some(r) if !sampled_out => r.apply(span, counts),
                    _ => None,
                };
                let current = redacted.as_ref().unwrap_or(span);
                let view =
                    (!sampled_out && c.needs_view()).then(|| semconv::normalise(current, ctx));
                entries.push(Entry {
                    span,
                    redacted,
                    ctx,
                    at: (rs, ss),
                    trace,
                    view,
                    dropped: sampled_out.then_some(ControlDrop::SampledOut),
                    held: false,
                    reason,
                    include_hit: false,
                    exclude_hit: false,
                });
            }
        }
    }
    entries
}

/// Session-keyed sampling: one decision per trace, from the first session
/// id any of its spans states (else the trace id), remembered for the
/// trace's later requests.
fn sample_sessions(c: &Controls, memory: &mut Memory, entries: &mut [Entry<'_>]) {
    let Some(s) = c.sampling else { return };
    let mut decided: HashMap<[u8; 16], bool> = HashMap::new();
    for e in entries.iter() {
        let session = e.view.as_ref().and_then(|g| g.conversation_id.as_deref());
        if let Some(session) = session {
            decided
                .entry(e.trace)
                .or_insert_with(|| s.keeps(session.as_bytes()));
        }
    }
    for e in entries.iter_mut() {
        let remembered = memory.traces.get(&e.trace).and_then(|m| m.sampled);
        let keep = match remembered {
            Some(k) => k,
            None => {
                let k = decided
                    .get(&e.trace)
                    .copied()
                    .unwrap_or_else(|| s.keeps(&e.trace));
                let mark = memory.traces.get(&e.trace).copied().unwrap_or_default();
                memory.traces.insert(
                    e.trace,
                    TraceMark {
                        sampled: Some(k),
                        ..mark
                    },
                );
                k
            }
        };
        if !keep {
            e.dropped = Some(ControlDrop::SampledOut);
            e.view = None;
        }
    }
}

/// Include/exclude rules, span and trace scope.
fn apply_rules(c: &Controls, memory: &mut Memory, entries: &mut [Entry<'_>]) {
    let has_include = c.rules.iter().any(|r| r.include);
    let mut marks: HashMap<[u8; 16], TraceMark> = HashMap::new();
    for e in entries.iter_mut().filter(|e| e.dropped.is_none()) {
        let Some(view) = e.view.as_ref() else {
            continue;
        };
        let subject = Subject {
            span: e.redacted.as_ref().unwrap_or(e.span),
            view,
            ctx: e.ctx,
        };
        for rule in c.rules.iter().filter(|r| r.matches(&subject)) {
            match (rule.whole_trace, rule.include) {
                (false, true) => e.include_hit = true,
                (false, false) => e.exclude_hit = true,
                (true, true) => marks.entry(e.trace).or_default().included = true,
                (true, false) => marks.entry(e.trace).or_default().excluded = true,
            }
        }
    }
    for (trace, m) in &marks {
        let mut merged = memory.traces.get(trace).copied().unwrap_or_default();
        merged.included |= m.included;
        merged.excluded |= m.excluded;
        memory.traces.insert(*trace, merged);
    }
    for e in entries.iter_mut().filter(|e| e.dropped.is_none()) {
        let mark = memory.traces.get(&e.trace).copied().unwrap_or_default();
        let included = !has_include || e.include_hit || mark.included;
        if !included || e.exclude_hit || mark.excluded {
            e.dropped = Some(ControlDrop::Filtered);
        }
    }
}

/// Keeps GenAI spans and their ancestors (in this request, or announced by
/// a kept descendant of an earlier request).
fn drop_non_genai(memory: &mut Memory, entries: &mut [Entry<'_>], index: &HashMap<SpanKey, usize>) {
    let mut wanted = vec![false; entries.len()];
    for i in 0..entries.len() {
        let e = &entries[i];
        let genai = e.view.as_ref().is_some_and(GenAiSpan::is_genai);
        let seed = (e.dropped.is_none() && genai) || memory.wanted.contains(&e.key());
        if !seed {
            continue;
        }
        // Walk up, marking ancestors, until one is already marked or unseen.
        let mut parent = entries[i].parent_key();
        let mut depth = 0;
        while let Some(p) = parent {
            depth += 1;
            match index.get(&p) {
                Some(&j) if !wanted[j] && depth < 1024 => {
                    wanted[j] = true;
                    parent = entries[j].parent_key();
                }
                Some(_) => break,
                None => {
                    memory.wanted.insert(p, ());
                    break;
                }
            }
        }
        if genai || memory.wanted.contains(&entries[i].key()) {
            wanted[i] = true;
        }
    }
    for (e, wanted) in entries.iter_mut().zip(wanted) {
        if e.dropped.is_none() && !wanted {
            e.dropped = Some(ControlDrop::NotGenai);
        }
    }
}

/// Re-parents kept spans past dropped ones, remembers the dropped ones,
/// counts, and hands out the verdicts.
fn finish(
    memory: &mut Memory,
    entries: Vec<Entry<'_>>,
    index: Option<&HashMap<SpanKey, usize>>,
    counts: Vec<usize>,
) -> Plan {
    let mut plan = Plan {
        redacted: counts,
        ..Plan::default()
    };
    let parents: Vec<Option<Vec<u8>>> = entries
        .iter()
        .map(|e| match (e.dropped, index) {
            (None, Some(index)) => new_parent(memory, &entries, index, e),
            _ => None,
        })
        .collect();
    for e in &entries {
        if let Some(reason) = e.dropped {
            if !e.held {
                plan.dropped[reason.index()] += 1;
            }
            if reason != ControlDrop::SampledOut {
                let mut parent = [0u8; 8];
                let n = e.span.parent_span_id.len().min(8);
                parent[..n].copy_from_slice(&e.span.parent_span_id[..n]);
                memory.dropped.insert(e.key(), parent);
            }
        }
    }
    plan.verdicts = entries
        .into_iter()
        .zip(parents)
        .map(|(e, parent)| match e.dropped {
            Some(_) => Verdict::Drop,
            None => Verdict::Keep {
                redacted: with_reason(e.redacted, e.span, e.reason).map(Box::new),
                view: e.view.map(Box::new),
                parent,
                reason: e.reason,
            },
        })
        .collect();
    plan
}

/// The span to forward: with `tracebridge.sampling_reason` added when
/// `sampling.always_keep` kept its trace (copied only then).
fn with_reason(redacted: Option<Span>, span: &Span, reason: Option<KeepReason>) -> Option<Span> {
    let Some(reason) = reason else {
        return redacted;
    };
    let mut s = redacted.unwrap_or_else(|| span.clone());
    s.attributes.push(crate::pdata::key_value(
        keep::REASON_ATTRIBUTE,
        Value::StringValue(reason.as_str().into()),
    ));
    Some(s)
}

/// The nearest kept ancestor, when the parent was dropped (here or in an
/// earlier request); `None` when the parent stays.
fn new_parent(
    memory: &Memory,
    entries: &[Entry<'_>],
    index: &HashMap<SpanKey, usize>,
    e: &Entry<'_>,
) -> Option<Vec<u8>> {
    let mut parent: &[u8] = &e.span.parent_span_id;
    let mut moved = false;
    for _ in 0..1024 {
        if is_root(parent) {
            break;
        }
        let key = span_key(&e.trace, parent);
        let up = match index.get(&key) {
            Some(&j) if entries[j].dropped.is_some() => entries[j].span.parent_span_id.as_slice(),
            Some(_) => break,
            None => match memory.dropped.get(&key) {
                Some(p) => p.as_slice(),
                None => break,
            },
        };
        parent = up;
        moved = true;
    }
    moved.then(|| {
        if is_root(parent) {
            Vec::new()
        } else {
            parent.to_vec()
        }
    })
}

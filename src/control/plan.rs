//! One request through the controls: which spans a destination keeps, and
//! the new parent of a kept span whose parent was dropped.

use std::collections::HashMap;

use opentelemetry_proto::tonic::trace::v1::Span;

use super::Controls;
use super::config::SamplingKey;
use super::filter::Subject;
use super::memory::{Memory, SpanKey, TraceMark, span_key};
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
        /// The span with redaction applied, when a rule matched.
        redacted: Option<Box<Span>>,
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
}

impl Plan {
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
    trace: [u8; 16],
    view: Option<GenAiSpan>,
    dropped: Option<ControlDrop>,
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
pub fn plan(c: &Controls, memory: &mut Memory, traces: &ReceivedTraces) -> Plan {
    let mut redacted = vec![0; c.redact.as_ref().map_or(0, |r| r.rules.len())];
    let mut entries = collect(c, traces, &mut redacted);
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
    finish(memory, entries, filters.then_some(&index), redacted)
}

/// Every span of the request in order, sampled by trace id, normalised if
/// the controls look at the view.
fn collect<'a>(c: &Controls, traces: &'a ReceivedTraces, counts: &mut [usize]) -> Vec<Entry<'a>> {
    let mut entries = Vec::with_capacity(traces.span_count);
    let by_trace = c.sampling.filter(|s| s.key == SamplingKey::Trace);
    for rs in &traces.resource_spans {
        for ss in &rs.scope_spans {
            let ctx = SpanContext::of(rs, ss);
            for span in &ss.spans {
                let trace = <[u8; 16]>::try_from(span.trace_id.as_slice()).unwrap_or_default();
                let sampled_out = by_trace.is_some_and(|s| !s.keeps(&trace));
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
                    trace,
                    view,
                    dropped: sampled_out.then_some(ControlDrop::SampledOut),
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
            plan.dropped[reason.index()] += 1;
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
                view: e.view.map(Box::new),
                parent,
                redacted: e.redacted.map(Box::new),
            },
        })
        .collect();
    plan
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

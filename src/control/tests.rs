use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::config::{FilterConfig, SamplingConfig, SamplingKey};
use super::*;
use crate::pdata::key_value;

fn span(trace: u8, id: u8, parent: Option<u8>, attrs: &[(&str, &str)]) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: format!("span {id}"),
        attributes: attrs
            .iter()
            .map(|(k, v)| key_value(*k, Value::StringValue((*v).into())))
            .collect(),
        ..Default::default()
    }
}

fn llm(trace: u8, id: u8, parent: Option<u8>, model: &str) -> Span {
    span(
        trace,
        id,
        parent,
        &[
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.request.model", model),
        ],
    )
}

fn controls(toml: &str) -> Controls {
    #[derive(serde::Deserialize)]
    struct T {
        sampling: Option<SamplingConfig>,
        filter: Option<FilterConfig>,
    }
    let t: T = figment::Figment::from({
        use figment::providers::Format;
        figment::providers::Toml::string(toml)
    })
    .extract()
    .expect("parses");
    config::validate("d", t.sampling.as_ref(), t.filter.as_ref()).expect("valid")
}

fn stage(c: &Controls) -> ControlStage {
    let m = crate::telemetry::Metrics::new();
    c.stage(DestinationTelemetry::new(&m, "d"))
        .expect("configured")
}

/// (span id, parent id after the controls) of the kept spans.
fn kept(stage: &mut ControlStage, spans: Vec<Span>) -> Vec<(u8, Option<u8>)> {
    let traces = ReceivedTraces::from_spans(spans);
    let mut plan = stage.plan(&traces);
    traces
        .spans()
        .enumerate()
        .filter_map(|(i, s)| match step(Some(&mut plan), i, s) {
            Step::Skip => None,
            Step::Map { span, .. } => Some((span.span_id[0], span.parent_span_id.first().copied())),
        })
        .collect()
}

#[test]
fn nothing_configured_is_no_stage() {
    let c = controls("");
    assert!(c.is_empty());
    let m = crate::telemetry::Metrics::new();
    assert!(c.stage(DestinationTelemetry::new(&m, "d")).is_none());
    assert!(controls("sampling.rate = 1.0").is_empty());
}

#[test]
fn sampling_keeps_or_drops_a_trace_whole_across_requests_and_stages() {
    let c = controls("sampling.rate = 0.5");
    let (mut a, mut b) = (stage(&c), stage(&c));
    let mut kept_traces = 0;
    for t in 0..40u8 {
        let first = kept(
            &mut a,
            vec![llm(t, 1, Some(2), "m"), span(t, 3, Some(2), &[])],
        );
        // A later request of the same trace, seen by a fresh stage (a restart).
        let later = kept(&mut b, vec![span(t, 2, None, &[])]);
        assert!(
            first.len() % 2 == 0 && first.len() / 2 == later.len(),
            "trace {t}"
        );
        kept_traces += later.len();
    }
    assert!((10..=30).contains(&kept_traces), "{kept_traces}");
}

#[test]
fn session_sampling_keeps_a_conversation_together() {
    let c = controls("sampling = { rate = 0.5, key = \"session\" }");
    let mut s = stage(&c);
    let mut decisions = std::collections::HashSet::new();
    for t in 0..20u8 {
        let k = kept(&mut s, vec![span(t, 1, None, &[("session.id", "conv-1")])]);
        decisions.insert(k.len());
    }
    assert_eq!(decisions.len(), 1, "one session, one decision");
}

#[test]
fn an_excluded_span_between_kept_ones_is_skipped_by_its_children() {
    let c = controls(
        r#"[[filter.rules]]
action = "exclude"
all = [{ field = "name", equals = "span 2" }]"#,
    );
    let mut s = stage(&c);
    // 1 ← 2 ← 3 ← 4: 2 is dropped, 3 now hangs from 1.
    let got = kept(
        &mut s,
        vec![
            span(9, 4, Some(3), &[]),
            span(9, 3, Some(2), &[]),
            span(9, 2, Some(1), &[]),
            span(9, 1, None, &[]),
        ],
    );
    assert_eq!(got, vec![(4, Some(3)), (3, Some(1)), (1, None)]);
}

#[test]
fn a_child_arriving_after_its_dropped_parent_is_re_parented_too() {
    let c = controls(
        r#"[[filter.rules]]
action = "exclude"
all = [{ field = "name", matches = "span 2*" }]"#,
    );
    let mut s = stage(&c);
    assert_eq!(kept(&mut s, vec![span(9, 2, Some(1), &[])]), vec![]);
    assert_eq!(
        kept(&mut s, vec![span(9, 3, Some(2), &[])]),
        vec![(3, Some(1))]
    );
    // A dropped root: its child becomes a root.
    assert_eq!(
        kept(
            &mut s,
            vec![span(8, 2, None, &[]), span(8, 5, Some(2), &[])]
        ),
        vec![(5, None)]
    );
}

#[test]
fn include_rules_keep_only_what_they_match_and_and_or_groups_combine() {
    let c = controls(
        r#"[[filter.rules]]
action = "include"
all = [{ field = "kind", equals = "llm" }]
any = [{ field = "model", matches = "gpt-4o*" }, { field = "model", in = ["claude-x"] }]"#,
    );
    let mut s = stage(&c);
    let got = kept(
        &mut s,
        vec![
            llm(1, 1, None, "gpt-4o-mini"),
            llm(1, 2, None, "claude-x"),
            llm(1, 3, None, "llama"),
            span(1, 4, None, &[]),
        ],
    );
    assert_eq!(got, vec![(1, None), (2, None)]);
}

#[test]
fn a_trace_rule_drops_the_whole_trace_and_its_later_spans() {
    let c = controls(
        r#"[[filter.rules]]
action = "exclude"
scope = "trace"
all = [{ field = "attribute.tenant", equals = "internal" }]"#,
    );
    let mut s = stage(&c);
    let got = kept(
        &mut s,
        vec![
            span(1, 1, Some(3), &[]),
            span(1, 2, Some(3), &[("tenant", "internal")]),
            span(2, 1, None, &[]),
        ],
    );
    assert_eq!(got, vec![(1, None)], "trace 2 only");
    assert_eq!(
        kept(&mut s, vec![span(1, 3, None, &[])]),
        vec![],
        "later spans follow"
    );
}

#[test]
fn drop_non_genai_keeps_genai_spans_and_their_ancestors() {
    let c = controls("filter.drop_non_genai = true");
    let mut s = stage(&c);
    // root 1 ← http 2 ← llm 3; db 4 under root; agent root seen later.
    let got = kept(
        &mut s,
        vec![
            llm(1, 3, Some(2), "m"),
            span(1, 4, Some(1), &[("db.system", "postgresql")]),
            span(1, 2, Some(5), &[]),
        ],
    );
    assert_eq!(got, vec![(3, Some(2)), (2, Some(5))]);
    // 5 was announced as an ancestor; 6 is noise under it.
    let got = kept(
        &mut s,
        vec![span(1, 6, Some(5), &[]), span(1, 5, None, &[])],
    );
    assert_eq!(got, vec![(5, None)]);
}

#[test]
fn invalid_controls_are_refused_with_the_key() {
    #[derive(serde::Deserialize)]
    struct T {
        sampling: Option<SamplingConfig>,
        filter: Option<FilterConfig>,
    }
    let err = |toml: &str| {
        let t: T = figment::Figment::from({
            use figment::providers::Format;
            figment::providers::Toml::string(toml)
        })
        .extract()
        .expect("parses");
        config::validate("d", t.sampling.as_ref(), t.filter.as_ref())
            .expect_err("invalid")
            .to_string()
    };
    assert!(err("sampling.rate = 0.0").contains("destinations.d.sampling.rate"));
    assert!(err("sampling.rate = 1.5").contains("0.0001 to 1"));
    let e = err(
        "[[filter.rules]]\naction = \"include\"\nall = [{ field = \"modle\", equals = \"x\" }]",
    );
    assert!(
        e.contains("filter.rules[0]: all[0]: unknown field \"modle\""),
        "{e}"
    );
    let e = err(
        "[[filter.rules]]\naction = \"include\"\nall = [{ field = \"model\", equals = \"x\", matches = \"y\" }]",
    );
    assert!(e.contains("exactly one of"), "{e}");
    let e = err("[[filter.rules]]\naction = \"include\"\nall = [{ field = \"model\", above = 3 }]");
    assert!(e.contains("compare numbers"), "{e}");
    assert!(err("[[filter.rules]]\naction = \"include\"").contains("at least one condition"));
    let _ = SamplingKey::Trace;
}

/// Span ids kept, with the `sampling.always_keep` reason.
type KeptWithReason = Vec<(u8, Option<&'static str>)>;

/// Runs the plan of `c` at `now`; (kept span ids with their keep reason,
/// spans released, spans counted sampled_out).
fn keep_plan(
    c: &Controls,
    memory: &mut memory::Memory,
    hold: &mut keep::Hold,
    spans: Vec<Span>,
    now: tokio::time::Instant,
) -> (KeptWithReason, Vec<u8>, usize) {
    let traces = ReceivedTraces::from_spans(spans);
    let mut plan = plan::plan(c, memory, hold, &traces, now);
    let released = plan
        .take_released()
        .map(|r| r.spans().map(|s| s.span_id[0]).collect())
        .unwrap_or_default();
    let kept = traces
        .spans()
        .enumerate()
        .filter_map(|(i, s)| match step(Some(&mut plan), i, s) {
            Step::Skip => None,
            Step::Map { span, reason, .. } => {
                let attr = span
                    .attributes
                    .iter()
                    .any(|kv| kv.key == keep::REASON_ATTRIBUTE);
                assert_eq!(attr, reason.is_some(), "the reason travels on the span");
                Some((span.span_id[0], reason.map(|r| r.as_str())))
            }
        })
        .collect();
    (
        kept,
        released,
        plan.dropped[ControlDrop::SampledOut.index()],
    )
}

fn failed(mut s: Span) -> Span {
    s.status = Some(opentelemetry_proto::tonic::trace::v1::Status {
        code: opentelemetry_proto::tonic::trace::v1::status::StatusCode::Error as i32,
        message: "boom".into(),
    });
    s
}

const KEEP_ERRORS: &str = "sampling.rate = 0.0001\nsampling.always_keep = { errors = true, latency_above = \"2s\", window = \"10s\", max_held_spans = 4 }";

#[test]
fn an_error_keeps_the_whole_trace_the_rate_dropped_releasing_what_was_held() {
    let c = controls(KEEP_ERRORS);
    let (mut memory, mut hold) = (memory::Memory::new(64), keep::Hold::default());
    let now = tokio::time::Instant::now();
    // Trace 1's first request: nothing special, held (not counted yet).
    let (kept, released, dropped) = keep_plan(
        &c,
        &mut memory,
        &mut hold,
        vec![span(1, 2, Some(1), &[])],
        now,
    );
    assert!(kept.is_empty() && released.is_empty());
    assert_eq!(dropped, 0, "held, not dropped");
    // Its second request carries an error: kept, and the held span released.
    let (kept, released, _) = keep_plan(
        &c,
        &mut memory,
        &mut hold,
        vec![failed(span(1, 3, Some(1), &[]))],
        now,
    );
    assert_eq!(kept, vec![(3, Some("error"))]);
    assert_eq!(released, vec![2]);
    // The released span, mapped as a request of its own, is kept with the reason,
    // and so is every later span of the trace.
    let (kept, _, _) = keep_plan(
        &c,
        &mut memory,
        &mut hold,
        vec![span(1, 2, Some(1), &[])],
        now,
    );
    assert_eq!(kept, vec![(2, Some("error"))]);
    let mut slow = span(1, 1, None, &[]);
    slow.end_time_unix_nano = 1;
    let (kept, _, _) = keep_plan(&c, &mut memory, &mut hold, vec![slow], now);
    assert_eq!(kept, vec![(1, Some("error"))]);
    // A slow span keeps its trace too.
    let mut slow = span(9, 1, None, &[]);
    slow.end_time_unix_nano = 3_000_000_000;
    let (kept, _, _) = keep_plan(&c, &mut memory, &mut hold, vec![slow], now);
    assert_eq!(kept, vec![(1, Some("latency"))]);
}

#[test]
fn a_trace_that_waited_out_the_window_or_the_bound_is_decided_by_the_rate() {
    let c = controls(KEEP_ERRORS);
    let (mut memory, mut hold) = (memory::Memory::new(64), keep::Hold::default());
    let t0 = tokio::time::Instant::now();
    let quiet = |t: u8, id: u8| span(t, id, Some(9), &[]);
    let (_, _, dropped) = keep_plan(
        &c,
        &mut memory,
        &mut hold,
        vec![quiet(1, 1), quiet(1, 2)],
        t0,
    );
    assert_eq!(dropped, 0);
    // Past the window: trace 1's two held spans are dropped (counted), and its
    // later spans, an error among them, are decided by the rate.
    let later = t0 + std::time::Duration::from_secs(11);
    let (kept, released, dropped) =
        keep_plan(&c, &mut memory, &mut hold, vec![failed(quiet(1, 3))], later);
    assert!(kept.is_empty() && released.is_empty());
    assert_eq!(dropped, 3, "two waited out, one dropped by the rate");
    // The bound: 4 held spans; a fifth pushes the oldest trace out.
    let (_, _, dropped) = keep_plan(
        &c,
        &mut memory,
        &mut hold,
        vec![
            quiet(2, 1),
            quiet(2, 2),
            quiet(3, 1),
            quiet(3, 2),
            quiet(4, 1),
        ],
        later,
    );
    assert_eq!(dropped, 2, "trace 2 pushed out");
    let (kept, released, _) =
        keep_plan(&c, &mut memory, &mut hold, vec![failed(quiet(3, 3))], later);
    assert_eq!((kept, released), (vec![(3, Some("error"))], vec![1, 2]));
}

#[test]
fn always_keep_is_validated() {
    let bad = |toml: &str| {
        let t: toml_shim::T = toml_shim::parse(toml);
        config::validate("d", t.sampling.as_ref(), None)
            .unwrap_err()
            .to_string()
    };
    assert!(
        bad("sampling.rate = 1.0\nsampling.always_keep = { errors = true }").contains("below 1")
    );
    assert!(bad("sampling.rate = 0.5\nsampling.always_keep = {}").contains("at least one"));
}

mod toml_shim {
    #[derive(serde::Deserialize)]
    pub struct T {
        pub sampling: Option<super::SamplingConfig>,
    }
    pub fn parse(toml: &str) -> T {
        use figment::providers::Format;
        figment::Figment::from(figment::providers::Toml::string(toml))
            .extract()
            .expect("parses")
    }
}

#[test]
fn always_keep_never_releases_one_tenants_held_spans_for_another() {
    let c = controls(KEEP_ERRORS);
    let (mut memory, mut hold) = (memory::Memory::new(64), keep::Hold::default());
    let now = tokio::time::Instant::now();
    let of = |tenant: &str, s: Span| {
        let mut t = ReceivedTraces::from_spans(vec![s]);
        t.context.tenant = Some(tenant.into());
        t
    };
    let a = of("team-a", span(1, 1, Some(9), &[]));
    let p = plan::plan(&c, &mut memory, &mut hold, &a, now);
    assert!(p.released.is_none());
    // team-b fails with team-a's trace id: its own trace is kept, team-a's
    // held span stays held.
    let b = of("team-b", failed(span(1, 2, Some(9), &[])));
    let mut p = plan::plan(&c, &mut memory, &mut hold, &b, now);
    assert!(p.take_released().is_none(), "nothing of team-a's released");
    assert!(matches!(
        p.take(0),
        Verdict::Keep {
            reason: Some(_),
            ..
        }
    ));
    let a_again = of("team-a", span(1, 3, Some(9), &[]));
    let mut p = plan::plan(&c, &mut memory, &mut hold, &a_again, now);
    assert!(
        matches!(p.take(0), Verdict::Drop),
        "team-a's trace is still undecided"
    );
}

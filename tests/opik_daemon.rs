//! The whole daemon delivering to a fake Opik that enforces Opik's rules.

mod common;

use std::time::Duration;

use common::fake_opik::{FakeOpik, Scripted};
use common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use prost::Message as _;
use serde_json::Value as Json;
use tracebridge::pdata::key_value;

fn opik_destination(fake: &FakeOpik, flush_interval: &str) -> String {
    format!(
        r#"
[destinations.opik]
type = "opik"
url = "{}"
api_key = "key-1"
workspace = "team-ws"
project_name = "bridge-tests"
stale_trace_timeout = "500ms"
batch.flush_interval = "{flush_interval}"
retry.initial_interval = "50ms"
retry.max_interval = "200ms"
"#,
        fake.url()
    )
}

fn llm_span(id: u8, parent: Option<u8>, name: &str, start_ms: u64) -> Span {
    let mut s = span(9, id, name);
    s.parent_span_id = parent.map(|p| vec![p; 8]).unwrap_or_default();
    s.start_time_unix_nano = 1_767_225_600_000_000_000 + start_ms * 1_000_000;
    s.end_time_unix_nano = s.start_time_unix_nano + 100_000_000;
    s.attributes.extend([
        key_value("gen_ai.request.model", Value::StringValue("gpt-4o".into())),
        key_value("gen_ai.provider.name", Value::StringValue("openai".into())),
        key_value("gen_ai.usage.input_tokens", Value::IntValue(10)),
        key_value("gen_ai.usage.output_tokens", Value::IntValue(2)),
    ]);
    s
}

fn str_of(v: &Json, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_trace_split_over_three_requests_through_a_retry_storm_is_one_trace() {
    let fake = FakeOpik::start(Some("key-1"), "team-ws").await;
    let retry_after = |s: u16, h: Vec<(&'static str, String)>| Scripted {
        status: s,
        headers: h,
    };
    fake.script([
        retry_after(503, vec![]),
        retry_after(503, vec![]),
        retry_after(503, vec![]),
        retry_after(429, vec![("retry-after", "1".into())]),
    ]);
    let mut d = TestDaemon::start("", &opik_destination(&fake, "50ms")).await;

    // Children first, then a grandchild, then the root.
    d.post_spans(vec![
        llm_span(2, Some(1), "chat one", 10),
        llm_span(3, Some(1), "chat two", 300),
    ])
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A call of its own (other usage), not one `chat one` wraps.
    let mut nested = llm_span(4, Some(2), "nested", 20);
    for kv in &mut nested.attributes {
        if kv.key == "gen_ai.usage.input_tokens" {
            *kv = key_value("gen_ai.usage.input_tokens", Value::IntValue(7));
        }
    }
    d.post_spans(vec![nested]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut root = span(9, 1, "invoke_agent planner");
    root.end_time_unix_nano = root.start_time_unix_nano + 2_000_000_000;
    root.attributes.push(key_value(
        "gen_ai.operation.name",
        Value::StringValue("invoke_agent".into()),
    ));
    d.post_spans(vec![root]).await;

    wait_until("4 spans and a finished trace", || {
        fake.spans().len() == 4
            && fake
                .traces()
                .first()
                .is_some_and(|t| t["name"] == "invoke_agent planner" && t.get("end_time").is_some())
    })
    .await;
    let traces = fake.traces();
    assert_eq!(traces.len(), 1, "{traces:#?}");
    let trace = &traces[0];
    assert_eq!(trace["project_name"], "bridge-tests");
    assert_eq!(trace["metadata"]["openrouter_trace_id"], hex(&[9; 16]));
    let spans = fake.spans();
    let by_name = |n: &str| {
        spans
            .iter()
            .find(|s| s["name"] == n)
            .unwrap_or_else(|| panic!("{n}: {spans:#?}"))
            .clone()
    };
    let (root, one, two, nested) = (
        by_name("invoke_agent planner"),
        by_name("chat one"),
        by_name("chat two"),
        by_name("nested"),
    );
    for s in [&root, &one, &two, &nested] {
        assert_eq!(s["trace_id"], trace["id"]);
        assert_eq!(s["project_name"], "bridge-tests");
    }
    assert!(root["parent_span_id"].is_null());
    assert_eq!(str_of(&one, "parent_span_id"), str_of(&root, "id"));
    assert_eq!(str_of(&two, "parent_span_id"), str_of(&root, "id"));
    assert_eq!(str_of(&nested, "parent_span_id"), str_of(&one, "id"));
    assert_eq!(one["metadata"]["openrouter_observation_id"], hex(&[2; 8]));
    assert_eq!(one["usage"]["prompt_tokens"], 10);
    assert!(
        fake.duplicate_ids().is_empty(),
        "{:?}",
        fake.duplicate_ids()
    );

    let requests = fake.requests();
    assert!(requests.iter().all(|r| r.gzip), "bodies are gzipped");
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..4], &[503, 503, 503, 429], "{statuses:?}");
    // The batch that got the 429 (Retry-After: 1) is retried, with the same
    // body, no sooner than a second later. (That the pause covers every
    // sender of the destination is tested with paused time in
    // tests/export_pipeline.rs, where scheduling cannot blur it.)
    let throttled = &requests[3];
    let retry = requests[4..]
        .iter()
        .find(|r| r.path == throttled.path && r.body == throttled.body)
        .expect("the throttled batch was retried");
    let waited = retry.at.duration_since(throttled.at);
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After ignored: retried after {waited:?}"
    );
    // The fake stores the rows before the daemon has read its answer.
    let sent = "tracebridge_exporter_sent_spans_total{destination=\"opik\"}";
    wait_until("the sent spans to be counted", || {
        metric(&d.metrics(), sent) >= 4.0
    })
    .await;
    let m = d.metrics();
    assert_eq!(
        metric(
            &m,
            "tracebridge_exporter_retries_total{destination=\"opik\",reason=\"server_error\"}"
        ),
        3.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "tracebridge_exporter_retries_total{destination=\"opik\",reason=\"throttled\"}"
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "tracebridge_exporter_sent_spans_total{destination=\"opik\"}"
        ),
        4.0,
        "{m}"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_poison_span_in_a_batch_of_500_loses_only_itself() {
    let fake = FakeOpik::start(Some("key-1"), "team-ws").await;
    fake.poison("span-321");
    let mut d = TestDaemon::start("", &opik_destination(&fake, "200ms")).await;
    d.post_spans(spans(500)).await;
    wait_until("499 spans", || fake.spans().len() == 499).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let spans = fake.spans();
    assert_eq!(spans.len(), 499);
    assert!(spans.iter().all(|s| s["name"] != "span-321"));
    let m = d.metrics();
    assert_eq!(
        metric(
            &m,
            "tracebridge_exporter_sent_spans_total{destination=\"opik\"}"
        ),
        499.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "tracebridge_exporter_send_failed_spans_total{destination=\"opik\",reason=\"rejected\"}"
        ),
        1.0,
        "{m}"
    );
    let rejected = fake.requests().iter().filter(|r| r.status == 422).count();
    assert!(
        rejected <= 12,
        "bisection, not one request per span: {rejected}"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_wrong_key_is_not_retried_and_says_why() {
    let fake = FakeOpik::start(Some("the-right-key"), "team-ws").await;
    let mut d = TestDaemon::start("", &opik_destination(&fake, "50ms")).await;
    d.post_spans(vec![llm_span(1, None, "lonely", 0)]).await;
    wait_until("a refused request", || {
        fake.requests().iter().any(|r| r.status == 401)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.requests().len(), 1, "401 is not retried");
    let m = d.metrics();
    assert_eq!(
        metric(
            &m,
            "tracebridge_exporter_send_failed_spans_total{destination=\"opik\",reason=\"unauthorized\"}"
        ),
        1.0,
        "{m}"
    );
    d.stop().await;
}

#[tokio::test]
async fn the_project_header_and_attributes_choose_the_project_and_the_first_choice_sticks() {
    let fake = FakeOpik::start(Some("key-1"), "team-ws").await;
    let mut d = TestDaemon::start("", &opik_destination(&fake, "50ms")).await;
    let client = reqwest::Client::new();
    let send = |spans: Vec<Span>, header: Option<&'static str>| {
        let mut req = client
            .post(d.http_url())
            .header("content-type", "application/x-protobuf")
            .body(request(spans).encode_to_vec());
        if let Some(h) = header {
            req = req.header("projectName", h);
        }
        req.send()
    };
    // Trace 9: header chooses; a later span with another project keeps the first choice.
    send(vec![llm_span(1, None, "root", 0)], Some("from-header"))
        .await
        .unwrap();
    let mut late = llm_span(2, Some(1), "late", 10);
    late.attributes.push(key_value(
        "opik.project_name",
        Value::StringValue("other".into()),
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(vec![late], None).await.unwrap();
    // Trace 5: the span attribute beats the header.
    let mut s = span(5, 7, "attr");
    s.attributes.push(key_value(
        "opik.project_name",
        Value::StringValue("from-attribute".into()),
    ));
    send(vec![s], Some("from-header")).await.unwrap();
    wait_until("3 spans", || fake.spans().len() == 3).await;
    let spans = fake.spans();
    let project = |n: &str| {
        spans
            .iter()
            .find(|s| s["name"] == n)
            .map(|s| str_of(s, "project_name"))
            .unwrap()
    };
    assert_eq!(project("root"), "from-header");
    assert_eq!(project("late"), "from-header");
    assert_eq!(project("attr"), "from-attribute");
    assert!(fake.duplicate_ids().is_empty());
    d.stop().await;
}

/// Fan-out keeps back-pressure: while Opik (`queue.on_full` defaults to
/// `backpressure`) is full, the receiver refuses, even though the file
/// destination beside it has room; every acknowledged span reaches Opik.
#[tokio::test]
async fn a_full_opik_destination_refuses_at_the_receiver_instead_of_losing_beside_a_file_destination()
 {
    let fake = FakeOpik::start(Some("key-1"), "team-ws").await;
    fake.outage(Some(common::fake_opik::Outage {
        status: 503,
        hang: None,
    }));
    let opik = opik_destination(&fake, "20ms") + "batch.max_items = 5\nqueue.max_batches = 1\n";
    let mut daemon = TestDaemon::start("[spool]\nmode = \"memory\"\n", &opik).await;
    let client = reqwest::Client::new();
    let (mut accepted, mut refused) = (Vec::new(), 0);
    for t in 1..=40u8 {
        let spans = (1..=5u8).map(|s| span(t, s, "call")).collect();
        let r = client
            .post(daemon.http_url())
            .header("content-type", "application/x-protobuf")
            .body(request(spans).encode_to_vec())
            .send()
            .await
            .expect("answered");
        match r.status().as_u16() {
            200 => accepted.push(t),
            503 => {
                assert!(r.headers().contains_key("retry-after"));
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(refused > 0, "a full Opik must push back");
    fake.outage(None);
    let want = accepted.len() * 5;
    wait_until("every acknowledged span reaches Opik", || {
        fake.spans().len() >= want
    })
    .await;
    let metrics = daemon.metrics();
    let opik_dropped: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("tracebridge_exporter_dropped_spans_total{destination=\"opik\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(opik_dropped, 0.0, "{metrics}");
    assert!(
        metric(
            &metrics,
            "tracebridge_receiver_refused_spans_total{transport=\"http\",reason=\"destinations_full\"}"
        ) > 0.0
    );
    // The file destination got each acknowledged request once.
    wait_until("the file has every acknowledged span", || {
        daemon.records().len() >= want
    })
    .await;
    assert_eq!(daemon.records().len(), want);
    daemon.stop().await;
}

/// With the disk spool, Opik (pushing back) `spool.max_bytes` behind makes
/// the receivers refuse before they read a body — nothing is decoded only
/// to be refused — and take requests again once Opik has caught up.
#[tokio::test]
async fn a_full_spool_is_refused_before_the_body_is_read_and_taken_again_after() {
    let fake = FakeOpik::start(Some("key-1"), "team-ws").await;
    fake.outage(Some(common::fake_opik::Outage {
        status: 503,
        hang: None,
    }));
    let mut daemon = TestDaemon::start(
        "[spool]\nmax_bytes = 1048576\nsegment_bytes = 65536\n",
        &opik_destination(&fake, "20ms"),
    )
    .await;
    let client = reqwest::Client::new();
    let post = |t: u8| {
        let spans = (1..=20u8)
            .map(|s| {
                let mut sp = span(t, s, "call");
                sp.attributes
                    .push(key_value("pad", Value::StringValue("x".repeat(2000))));
                sp
            })
            .collect();
        client
            .post(daemon.http_url())
            .header("content-type", "application/x-protobuf")
            .body(request(spans).encode_to_vec())
            .send()
    };
    let mut accepted = 0;
    let mut refused_message = None;
    for t in 1..=200u8 {
        let r = post(t).await.expect("answered");
        if r.status() == 503 {
            refused_message = Some(r.text().await.unwrap_or_default());
            break;
        }
        assert_eq!(r.status(), 200);
        accepted += 1;
    }
    let message = refused_message.expect("a spool max_bytes behind refuses");
    assert!(message.contains("opik"), "{message}");
    // The next one is refused before its body is read: counted per request.
    assert_eq!(post(250).await.expect("answered").status(), 503);
    let metrics = daemon.metrics();
    assert!(
        metric(
            &metrics,
            "tracebridge_receiver_refused_requests_total{transport=\"http\",reason=\"destinations_full\"}"
        ) >= 1.0,
        "{metrics}"
    );
    fake.outage(None);
    wait_until("Opik catches up", || fake.spans().len() >= accepted * 20).await;
    let mut taken = false;
    for _ in 0..100 {
        if post(251).await.expect("answered").status() == 200 {
            taken = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(taken, "requests are taken again once Opik caught up");
    daemon.stop().await;
}

#[tokio::test]
async fn a_span_after_its_trace_was_finalised_updates_the_row_and_keeps_its_content() {
    let fake = FakeOpik::start(Some("key-1"), "team-ws").await;
    let mut d = TestDaemon::start("", &opik_destination(&fake, "50ms")).await;
    let mut root = llm_span(1, None, "root call", 0);
    root.attributes.extend([
        key_value(
            "gen_ai.input.messages",
            Value::StringValue(r#"[{"role":"user","content":"what is 2+2"}]"#.into()),
        ),
        key_value(
            "gen_ai.output.messages",
            Value::StringValue(r#"[{"role":"assistant","content":"4"}]"#.into()),
        ),
    ]);
    d.post_spans(vec![root]).await;
    wait_until("the root's trace row", || {
        fake.traces()
            .first()
            .is_some_and(|t| t.get("end_time").is_some())
    })
    .await;
    // Finalised (stale_trace_timeout = 500ms): the table released its content.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    d.post_spans(vec![llm_span(2, Some(1), "late call", 5000)])
        .await;
    wait_until("the trace row updated", || {
        fake.requests()
            .iter()
            .any(|r| r.path.starts_with("/v1/private/traces/0") && r.status == 204)
    })
    .await;
    let traces = fake.traces();
    assert_eq!(traces.len(), 1, "{traces:#?}");
    let t = &traces[0];
    assert_eq!(t["input"]["messages"][0]["content"], "what is 2+2");
    assert_eq!(t["output"]["choices"][0]["message"]["content"], "4");
    assert_eq!(t["end_time"], "2026-01-01T00:00:05.100000Z");
    assert_eq!(t["name"], "root call");
    assert!(fake.duplicate_ids().is_empty());
    d.stop().await;
}

fn evaluation(name: &str, value: f64, label: &str, explanation: &str) -> Event {
    let s = |v: &str| Value::StringValue(v.into());
    Event {
        name: "gen_ai.evaluation.result".into(),
        attributes: vec![
            key_value("gen_ai.evaluation.name", s(name)),
            key_value("gen_ai.evaluation.score.value", Value::DoubleValue(value)),
            key_value("gen_ai.evaluation.score.label", s(label)),
            key_value("gen_ai.evaluation.explanation", s(explanation)),
        ],
        ..Default::default()
    }
}

#[tokio::test]
async fn evaluation_results_arrive_as_feedback_scores_on_the_span_and_the_root_trace() {
    let fake = FakeOpik::start(Some("key-1"), "team-ws").await;
    let mut d = TestDaemon::start("", &opik_destination(&fake, "50ms")).await;
    // The child's request: rows and its score are accepted.
    let mut child = llm_span(2, Some(1), "chat", 10);
    child.events.push(evaluation(
        "relevance",
        0.75,
        "relevant",
        "cites the forecast",
    ));
    d.post_spans(vec![child]).await;
    wait_until("the child's score", || fake.scores("spans").len() == 1).await;
    // The root's request: the score endpoint fails once, and is retried.
    fake.fail_next("/traces/feedback-scores", 503);
    let mut root = llm_span(1, None, "invoke_agent planner", 0);
    root.events
        .push(evaluation("task_done", 1.0, "yes", "answered"));
    // Beyond what Opik stores: not sent (it would fail the batch), counted.
    root.events.push(evaluation("huge", 1e12, "x", "y"));
    d.post_spans(vec![root]).await;
    wait_until("the root's scores", || {
        fake.scores("spans").len() == 2 && fake.scores("traces").len() == 1
    })
    .await;

    let spans = fake.spans();
    let id_of = |n: &str| {
        spans
            .iter()
            .find(|s| s["name"] == n)
            .map(|s| str_of(s, "id"))
            .unwrap_or_else(|| panic!("{n}: {spans:#?}"))
    };
    let span_scores = fake.scores("spans");
    let on = |id: &str| span_scores.iter().find(|s| s["id"] == id).cloned();
    let child_score = on(&id_of("chat")).expect("the child's score is on the child");
    assert_eq!(child_score["name"], "relevance");
    assert_eq!(child_score["value"], 0.75);
    assert_eq!(child_score["category_name"], "relevant");
    assert_eq!(child_score["reason"], "cites the forecast");
    assert_eq!(child_score["source"], "sdk");
    assert_eq!(child_score["project_name"], "bridge-tests");
    let root_score = on(&id_of("invoke_agent planner")).expect("the root's score");
    assert_eq!(root_score["name"], "task_done");
    let trace_scores = fake.scores("traces");
    assert_eq!(trace_scores[0]["id"], fake.traces()[0]["id"]);
    assert_eq!(trace_scores[0]["name"], "task_done");
    let score_puts: Vec<u16> = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/traces/feedback-scores"))
        .map(|r| r.status)
        .collect();
    assert_eq!(score_puts, [503, 204], "retried like rows");
    let m = d.metrics();
    assert_eq!(
        metric(
            &m,
            "tracebridge_mapping_warnings_total{reason=\"score_out_of_range\"}"
        ),
        1.0,
        "{m}"
    );
    d.stop().await;
}

//! Per-destination controls through the real daemon: sampling, filters with
//! re-parenting, drop_non_genai, require_check.

mod common;

use std::collections::BTreeSet;

use common::fake_opik::FakeOpik;
use common::otlp_sink::OtlpSink;
use common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::Value as Json;
use tracebridge::pdata::key_value;

fn child(trace: u8, id: u8, parent: Option<u8>, name: &str) -> Span {
    let mut s = span(trace, id, name);
    s.parent_span_id = parent.map(|p| vec![p; 8]).unwrap_or_default();
    s
}

fn plain(trace: u8, id: u8, parent: Option<u8>, name: &str) -> Span {
    let mut s = child(trace, id, parent, name);
    s.attributes = vec![key_value("http.method", Value::StringValue("GET".into()))];
    s
}

/// The trace ids (first byte) in the file destination.
fn traces_in(d: &TestDaemon) -> BTreeSet<String> {
    d.records()
        .iter()
        .filter_map(|r| r["trace_id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn sampling_keeps_a_trace_split_over_requests_whole_on_every_replica() {
    let sampling = "sampling.rate = 0.5\n";
    let mut a = TestDaemon::start("", sampling).await;
    let mut b = TestDaemon::start("", sampling).await;
    // 40 traces, each split over two requests; the second halves go to
    // another daemon (a replica, or the same one after a restart).
    for t in 1..=40u8 {
        a.post_spans(vec![
            child(t, 2, Some(1), "llm"),
            child(t, 3, Some(1), "tool"),
        ])
        .await;
        b.post_spans(vec![child(t, 1, None, "root")]).await;
    }
    let dropped = |d: &TestDaemon| {
        metric(
            &d.metrics(),
            "tracebridge_control_dropped_spans_total{destination=\"out\",reason=\"sampled_out\"}",
        )
    };
    wait_until("every span kept or counted", || {
        a.records().len() as f64 + dropped(&a) == 80.0
            && b.records().len() as f64 + dropped(&b) == 40.0
    })
    .await;
    let (kept_a, kept_b) = (traces_in(&a), traces_in(&b));
    assert_eq!(kept_a, kept_b, "both halves of a trace share one decision");
    assert!(
        (8..=32).contains(&kept_a.len()),
        "{} of 40 kept",
        kept_a.len()
    );
    assert_eq!(a.records().len(), 2 * kept_a.len(), "kept traces are whole");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn an_excluded_span_is_skipped_and_its_children_hang_from_the_nearest_kept_ancestor_in_opik()
{
    let fake = FakeOpik::start(None, "default").await;
    let mut d = TestDaemon::start(
        "",
        &format!(
            r#"
[destinations.opik]
type = "opik"
url = "{}"
stale_trace_timeout = "200ms"
batch.flush_interval = "20ms"
[[destinations.opik.filter.rules]]
action = "exclude"
any = [{{ field = "name", matches = "middleware*" }}, {{ field = "attribute.http.method", equals = "OPTIONS" }}]
"#,
            fake.url()
        ),
    )
    .await;
    // root 1 ← middleware 2 ← llm 3 ← tool 4, children first as SDKs export.
    // Tool 4 comes in a later request than its parent's parent.
    d.post_spans(vec![
        child(5, 3, Some(2), "chat"),
        child(5, 2, Some(1), "middleware auth"),
    ])
    .await;
    d.post_spans(vec![
        child(5, 4, Some(3), "tool"),
        child(5, 1, None, "agent"),
    ])
    .await;
    wait_until("3 span rows", || fake.spans().len() == 3).await;
    let spans = fake.spans();
    let by_otel = |id: u8| -> Json {
        let hex = hex(&[id; 8]);
        spans
            .iter()
            .find(|s| s["metadata"]["openrouter_observation_id"] == hex.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("span {id} not in Opik: {spans:?}"))
    };
    assert_eq!(
        by_otel(3)["parent_span_id"],
        by_otel(1)["id"],
        "re-parented past the middleware"
    );
    assert_eq!(by_otel(4)["parent_span_id"], by_otel(3)["id"]);
    assert!(by_otel(1)["parent_span_id"].is_null());
    let m = d.metrics();
    assert_eq!(
        metric(
            &m,
            "tracebridge_control_dropped_spans_total{destination=\"opik\",reason=\"filtered\"}"
        ),
        1.0
    );
    // The file destination has no controls: it got all four.
    assert_eq!(d.wait_for_spans(4).await.len(), 4);
    d.stop().await;
}

#[tokio::test]
async fn drop_non_genai_forwards_genai_spans_and_their_ancestors_over_otlp() {
    let sink = OtlpSink::start().await;
    let mut d = TestDaemon::start(
        "",
        &format!(
            "[destinations.otlp]\ntype = \"otlp\"\nendpoint = \"http://{}\"\nprotocol = \"http/protobuf\"\nbatch.flush_interval = \"20ms\"\nfilter.drop_non_genai = true\n",
            sink.http_addr
        ),
    )
    .await;
    // request 1: llm 3 under http 2 under root 1 (not yet seen); db 4 noise.
    d.post_spans(vec![
        child(6, 3, Some(2), "chat"),
        plain(6, 4, Some(2), "SELECT"),
        plain(6, 2, Some(1), "POST /ask"),
    ])
    .await;
    // request 2: the root (an ancestor announced by request 1) and noise.
    d.post_spans(vec![
        plain(6, 5, Some(1), "GET /health"),
        plain(6, 1, None, "handler"),
    ])
    .await;
    wait_until("3 spans at the sink", || sink.accepted_spans() == 3).await;
    let dropped = || {
        metric(
            &d.metrics(),
            "tracebridge_control_dropped_spans_total{destination=\"otlp\",reason=\"not_genai\"}",
        )
    };
    wait_until("2 counted", || dropped() == 2.0).await;
    let names: BTreeSet<String> = sink
        .received()
        .iter()
        .filter_map(|r| r.request.clone())
        .flat_map(|r| r.resource_spans)
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["chat".into(), "POST /ask".into(), "handler".into()])
    );
    d.stop().await;
}

#[test]
fn config_check_names_a_bad_filter_rule_and_show_prints_the_controls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let write = |rules: &str| {
        std::fs::write(
            &path,
            format!(
                "[destinations.c]\ntype = \"console\"\nsampling.rate = 0.25\nsampling.key = \"session\"\n[[destinations.c.filter.rules]]\naction = \"include\"\n{rules}\n"
            ),
        )
        .unwrap();
    };
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tracebridge"))
            .args(["--config", path.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    write("all = [{ field = \"modl\", equals = \"x\" }]");
    let out = run(&["config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("destinations.c.filter.rules[0]: all[0]: unknown field \"modl\""),
        "{err}"
    );
    write("all = [{ field = \"model\", matches = \"gpt-4o*\" }]");
    assert_eq!(run(&["config", "check"]).status.code(), Some(0));
    let shown = String::from_utf8_lossy(&run(&["config", "show"]).stdout).to_string();
    assert!(
        shown.contains("0.25") && shown.contains("session") && shown.contains("gpt-4o*"),
        "{shown}"
    );
}

#[test]
fn a_destination_that_requires_its_check_stops_the_start_when_the_check_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = |require: bool| {
        format!(
            "state_dir = \"{}\"\n[receiver]\ngrpc_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[destinations.c]\ntype = \"console\"\n[destinations.sink]\ntype = \"otlp\"\nprotocol = \"http/protobuf\"\nendpoint = \"http://{closed}\"\ntimeout = \"2s\"\nrequire_check = {require}\n",
            dir.path().join("state").display()
        )
    };
    std::fs::write(&path, config(true)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tracebridge"))
        .env_remove("RUST_LOG")
        .args(["--config", path.to_str().unwrap(), "run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("tracebridge: "))
        .unwrap_or_default();
    assert!(
        line.contains("refusing to start")
            && line.contains("destination sink:")
            && line.contains("nothing is listening"),
        "{err}"
    );
    assert!(!line.contains("destination c:"), "{line}");
}

fn priced_llm(
    trace: u8,
    id: u8,
    provider: Option<&str>,
    model: &str,
    input: i64,
    output: i64,
) -> Span {
    let mut s = span(trace, id, "chat");
    s.attributes.push(key_value(
        "gen_ai.request.model",
        Value::StringValue(model.into()),
    ));
    if let Some(p) = provider {
        s.attributes.push(key_value(
            "gen_ai.provider.name",
            Value::StringValue(p.into()),
        ));
    }
    s.attributes.extend([
        key_value("gen_ai.usage.input_tokens", Value::IntValue(input)),
        key_value("gen_ai.usage.output_tokens", Value::IntValue(output)),
    ]);
    s
}

#[tokio::test]
async fn prices_fill_the_cost_opik_would_not_compute_and_never_overwrite_one() {
    let fake = FakeOpik::start(None, "default").await;
    let opik = |name: &str, source: &str| {
        format!(
            "[destinations.{name}]\ntype = \"opik\"\nurl = \"{}\"\nproject_name = \"{name}\"\nbatch.flush_interval = \"20ms\"\ncost.compute = true\ncost.source = \"{source}\"\n",
            fake.url()
        )
    };
    let mut d = TestDaemon::start(
        "",
        &format!("{}{}", opik("auto", "auto"), opik("always", "tracebridge")),
    )
    .await;
    let mut carried = priced_llm(1, 4, Some("openai"), "gpt-4o", 1000, 500);
    carried
        .attributes
        .push(key_value("gen_ai.usage.cost", Value::DoubleValue(0.5)));
    d.post_spans(vec![
        // Opik prices OpenAI itself: left alone under auto.
        priced_llm(1, 1, Some("openai"), "gpt-4o-2024-08-06", 1000, 500),
        // Opik has no Cohere prices: tracebridge's 1000 × $0.15/M + 500 × $0.60/M.
        priced_llm(1, 2, Some("cohere"), "command-r", 1000, 500),
        // Not in the table: no cost.
        priced_llm(1, 3, Some("cohere"), "command-unknown", 1000, 500),
        carried,
    ])
    .await;
    wait_until("8 span rows", || fake.spans().len() == 8).await;
    let cost = |project: &str, id: u8| -> Option<f64> {
        fake.spans()
            .into_iter()
            .find(|s| {
                s["project_name"] == project
                    && s["metadata"]["openrouter_observation_id"] == hex(&[id; 8]).as_str()
            })
            .unwrap_or_else(|| panic!("span {id} in {project}"))
            .get("total_estimated_cost")
            .and_then(Json::as_f64)
    };
    assert_eq!(cost("auto", 1), None);
    let close = |got: Option<f64>, want: f64| got.is_some_and(|c| (c - want).abs() < 1e-12);
    assert!(
        close(cost("auto", 2), 0.00015 + 0.0003),
        "{:?}",
        cost("auto", 2)
    );
    assert_eq!(cost("auto", 3), None);
    assert_eq!(cost("auto", 4), Some(0.5), "a carried cost stays");
    // tracebridge prices every call it can: gpt-4o at $2.50 / $10 per M (2026).
    assert!(
        close(cost("always", 1), 0.0025 + 0.005),
        "{:?}",
        cost("always", 1)
    );
    assert_eq!(cost("always", 4), Some(0.5));
    let source = |project: &str, id: u8| {
        fake.spans()
            .into_iter()
            .find(|s| {
                s["project_name"] == project
                    && s["metadata"]["openrouter_observation_id"] == hex(&[id; 8]).as_str()
            })
            .map(|s| s["metadata"]["cost_source"].clone())
    };
    assert_eq!(
        source("auto", 2),
        Some(Json::from("tracebridge")),
        "an estimate says so"
    );
    assert_eq!(
        source("auto", 4),
        Some(Json::Null),
        "a carried cost does not"
    );
    d.stop().await;
}

#[tokio::test]
async fn an_estimated_cost_travels_as_gen_ai_usage_cost_over_otlp() {
    let sink = OtlpSink::start().await;
    let mut d = TestDaemon::start(
        "",
        &format!(
            "[destinations.otlp]\ntype = \"otlp\"\nendpoint = \"http://{}\"\nprotocol = \"http/protobuf\"\nbatch.flush_interval = \"20ms\"\ncost.compute = true\n",
            sink.http_addr
        ),
    )
    .await;
    d.post_spans(vec![priced_llm(
        2,
        1,
        Some("anthropic"),
        "claude-3-5-haiku-20241022",
        10_000,
        1_000,
    )])
    .await;
    wait_until("1 span at the sink", || sink.accepted_spans() == 1).await;
    let got = sink.received();
    let span = &got[0].request.as_ref().unwrap().resource_spans[0].scope_spans[0].spans[0];
    let attr = |k: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Value::DoubleValue(d) => Some(*d),
                _ => None,
            })
    };
    // 10k × $0.80/M + 1k × $4/M
    let want = 0.008 + 0.004;
    assert!(
        attr("gen_ai.usage.cost").is_some_and(|c| (c - want).abs() < 1e-12),
        "{:?}",
        span.attributes
    );
    assert!(attr("llm.cost.total").is_some_and(|c| (c - want).abs() < 1e-12));
    d.stop().await;
}

#[test]
fn config_check_refuses_a_price_file_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "[destinations.c]\ntype = \"console\"\ncost.compute = true\ncost.prices_file = \"/nonexistent/prices.toml\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tracebridge"))
        .args(["--config", path.to_str().unwrap(), "config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("destinations.c.cost.prices_file: cannot read /nonexistent/prices.toml"),
        "{err}"
    );
}

/// One secret per built-in (and the rule it belongs to).
const SECRETS: &[(&str, &str)] = &[
    ("email", "jane.doe@example.com"),
    ("credit_card", "4111 1111 1111 1111"),
    ("ipv4", "203.0.113.42"),
    ("ipv6", "2001:db8:85a3::8a2e:370:7334"),
    ("bearer_token", "Bearer abcdef123456789xyz"),
    ("aws_access_key", "AKIAIOSFODNN7EXAMPLE"),
    ("gcp_api_key", "AIzaSyA1234567890abcdefghijklmnopqrstuv"),
    ("anthropic_key", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"),
    ("openai_key", "sk-proj-abcdefghijklmnopqrstuvwxyz123456"),
    (
        "jwt",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijklmnop",
    ),
    (
        "pem",
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----",
    ),
];

const REDACT: &str = "redact.builtins = [\"email\", \"credit_card\", \"ipv4\", \"ipv6\", \"bearer_token\", \"aws_access_key\", \"gcp_api_key\", \"anthropic_key\", \"openai_key\", \"jwt\", \"pem\"]\n";

/// A chat span carrying every secret in its messages (JSON), a tool
/// result event, its name and its status message.
fn leaky_span() -> Span {
    use opentelemetry_proto::tonic::trace::v1::{Status, span::Event};
    let all: Vec<&str> = SECRETS.iter().map(|(_, s)| *s).collect();
    let text = all.join(" and ");
    let messages =
        serde_json::json!([{"role": "user", "parts": [{"type": "text", "content": text}]}]);
    let mut s = span(3, 1, &format!("chat for {}", SECRETS[0].1));
    s.attributes.extend([
        key_value("gen_ai.request.model", Value::StringValue("gpt-4o".into())),
        key_value(
            "gen_ai.input.messages",
            Value::StringValue(messages.to_string()),
        ),
        key_value(
            "user.note",
            Value::StringValue(format!("call me at {}", SECRETS[2].1)),
        ),
    ]);
    s.events.push(Event {
        name: "tool.output".into(),
        attributes: vec![key_value("output", Value::StringValue(text.clone()))],
        ..Default::default()
    });
    s.status = Some(Status {
        code: 2,
        message: format!("failed for {}", SECRETS[5].1),
    });
    s
}

#[tokio::test]
async fn every_built_in_pattern_is_redacted_in_messages_events_names_and_status_everywhere() {
    let fake = FakeOpik::start(None, "default").await;
    let sink = OtlpSink::start().await;
    let mut d = TestDaemon::start(
        "",
        &format!(
            "{REDACT}[destinations.opik]\ntype = \"opik\"\nurl = \"{}\"\nbatch.flush_interval = \"20ms\"\n{REDACT}[destinations.otlp]\ntype = \"otlp\"\nendpoint = \"http://{}\"\nprotocol = \"http/protobuf\"\nsemconv = \"openinference\"\nbatch.flush_interval = \"20ms\"\n{REDACT}[destinations.dry]\ntype = \"console\"\nredact.builtins = [\"email\"]\nredact.dry_run = true\n",
            fake.url(),
            sink.http_addr
        ),
    )
    .await;
    d.post_spans(vec![leaky_span()]).await;
    wait_until("the span everywhere", || {
        !fake.spans().is_empty() && sink.accepted_spans() == 1 && d.records().len() == 1
    })
    .await;
    let opik_text = format!("{:?}{:?}", fake.spans(), fake.traces());
    let otlp_bytes = sink.received()[0].raw.clone();
    let file_text = std::fs::read_to_string(&d.out).unwrap();
    for (rule, secret) in SECRETS {
        // The PEM body is the telling part (its line breaks are escaped in JSON).
        let needle = if *rule == "pem" {
            "MIIEvQIBADANBg"
        } else {
            secret
        };
        assert!(!opik_text.contains(needle), "{rule} leaked to Opik");
        assert!(!file_text.contains(needle), "{rule} leaked to the file");
        assert!(
            !otlp_bytes
                .windows(needle.len())
                .any(|w| w == needle.as_bytes()),
            "{rule} leaked over OTLP"
        );
        let n = metric(
            &d.metrics(),
            &format!("tracebridge_redacted_values_total{{destination=\"otlp\",rule=\"{rule}\"}}"),
        );
        assert!(n >= 2.0, "{rule}: {n} (messages and event at least)");
    }
    assert!(file_text.contains("[REDACTED:email]"), "{file_text}");
    // dry_run counts and changes nothing (the console prints no content anyway).
    assert!(
        metric(
            &d.metrics(),
            "tracebridge_redacted_values_total{destination=\"dry\",rule=\"email\"}"
        ) >= 3.0
    );
    d.stop().await;
}

#[tokio::test]
async fn a_keyed_hash_gives_the_same_token_for_the_same_value_and_key_rules_replace_whole_values() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
    let mut d = TestDaemon::start(
        "",
        &format!(
            "redact.builtins = [\"email\"]\nredact.hash_key_file = \"{}\"\n[[destinations.out.redact.rules]]\nname = \"customer\"\nkeys = [\"customer.*\"]\n",
            key.display()
        ),
    )
    .await;
    let mut a = span(4, 1, "a");
    a.attributes.push(key_value(
        "note",
        Value::StringValue("from jane.doe@example.com".into()),
    ));
    a.attributes.push(key_value(
        "customer.name",
        Value::StringValue("Jane Doe".into()),
    ));
    let mut b = span(4, 2, "b");
    b.attributes.push(key_value(
        "note",
        Value::StringValue("to jane.doe@example.com".into()),
    ));
    d.post_spans(vec![a, b]).await;
    assert_eq!(d.wait_for_spans(2).await.len(), 2);
    let records = d.records();
    let note = |i: usize| {
        records[i]["attributes"]["note"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let token = |s: &str| {
        s.split_once(' ')
            .map(|(_, t)| t.to_string())
            .unwrap_or_default()
    };
    assert!(
        token(&note(0)).starts_with("[REDACTED:email:"),
        "{}",
        note(0)
    );
    assert_eq!(token(&note(0)), token(&note(1)), "same value, same token");
    let customer = records
        .iter()
        .find_map(|r| r["attributes"]["customer.name"].as_str())
        .unwrap();
    assert!(
        customer.starts_with("[REDACTED:customer:") && !customer.contains("Jane"),
        "{customer}"
    );
    d.stop().await;
}

#[tokio::test]
async fn always_keep_keeps_a_failed_trace_the_rate_dropped_whole_with_its_reason() {
    let fake = FakeOpik::start(None, "default").await;
    let keep =
        "sampling.rate = 0.0001\nsampling.always_keep = { errors = true, window = \"1s\" }\n";
    let mut d = TestDaemon::start(
        "",
        &format!(
            r#"{keep}
[destinations.opik]
type = "opik"
url = "{}"
batch.flush_interval = "20ms"
{keep}"#,
            fake.url()
        ),
    )
    .await;
    // Trace 6 fails in its second request; trace 7 never fails.
    d.post_spans(vec![
        child(6, 2, Some(1), "chat"),
        child(7, 2, Some(1), "chat"),
    ])
    .await;
    let mut root = child(6, 1, None, "agent");
    root.status = Some(opentelemetry_proto::tonic::trace::v1::Status {
        code: 2,
        message: "tool failed".into(),
    });
    d.post_spans(vec![root, child(7, 1, None, "agent")]).await;
    wait_until("trace 6 whole in the file and in Opik", || {
        d.records().len() == 2 && fake.spans().len() == 2
    })
    .await;
    let reasons: Vec<&str> = vec!["error"; 2];
    let records = d.records();
    assert_eq!(
        records
            .iter()
            .map(|r| r["attributes"]["tracebridge.sampling_reason"]
                .as_str()
                .unwrap_or(""))
            .collect::<Vec<_>>(),
        reasons,
        "{records:?}"
    );
    assert!(records.iter().all(|r| r["trace_id"] == hex(&[6; 16])));
    let traces = fake.traces();
    assert_eq!(traces.len(), 1, "{traces:?}");
    assert_eq!(traces[0]["metadata"]["sampling_reason"], "error");
    // Trace 7 waits out the window, then counts as sampled out (on the
    // next request: a third trace nobody keeps).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    d.post_spans(vec![child(8, 1, None, "agent")]).await;
    let series =
        "tracebridge_control_dropped_spans_total{destination=\"out\",reason=\"sampled_out\"}";
    wait_until("trace 7 counted", || {
        let m = d.metrics();
        m.contains(series) && metric(&m, series) == 2.0
    })
    .await;
    d.stop().await;
}

//! Config reload under load: destinations changed, added and removed while
//! requests flow, every accepted span accounted for end to end; a reload
//! that cannot start keeps the running set.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{hex, metric, read_span_ids, request, span};
use tracebridge::app;
use tracebridge::config::Settings;

fn settings(dir: &Path, destinations: &str) -> Settings {
    let text = format!(
        "shutdown_timeout = \"20s\"\n[receiver]\ngrpc_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[log]\nlevel = \"warn\"\n[spool]\nmode = \"memory\"\n{destinations}"
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    tracebridge::config::load(Some(&path))
        .and_then(|l| l.settings())
        .unwrap()
}

fn file(dir: &Path, name: &str, flush: &str) -> String {
    format!(
        "[destinations.{name}]\ntype = \"file\"\npath = \"{}\"\nbatch.flush_interval = \"{flush}\"\nbatch.max_items = 50\n",
        dir.join(format!("{name}.jsonl")).display()
    )
}

/// Request `i` holds 10 spans with ids unique across the run.
fn spans_of(i: usize) -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
    (0..10)
        .map(|j| {
            let mut s = span(9, 1, "load");
            s.span_id = ((i * 10 + j) as u64 + 1).to_be_bytes().to_vec();
            s
        })
        .collect()
}

const REQUESTS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let running = app::start(settings(d, &file(d, "a", "20ms")))
        .await
        .unwrap();
    let url = format!("http://{}/v1/traces", running.http_addr);
    let sent = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn({
        let sent = sent.clone();
        async move {
            let client = reqwest::Client::new();
            let mut accepted = BTreeSet::new();
            for i in 0..REQUESTS {
                let spans = spans_of(i);
                let body = prost::Message::encode_to_vec(&request(spans.clone()));
                // As an SDK does: a 503 (every destination full) is retried.
                for _attempt in 0..200 {
                    let r = client
                        .post(&url)
                        .header("content-type", "application/x-protobuf")
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    if r.status() == 200 {
                        accepted.extend(spans.iter().map(|s| hex(&s.span_id)));
                        break;
                    }
                    assert_eq!(r.status(), 503);
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                sent.fetch_add(1, Ordering::SeqCst);
            }
            accepted
        }
    });
    let reached = |n: usize| {
        let sent = sent.clone();
        async move {
            common::wait_until("load progress", || sent.load(Ordering::SeqCst) >= n).await;
        }
    };

    // 1: `a` changes (another flush interval), `b` is added.
    reached(REQUESTS / 4).await;
    let s = running
        .reload(settings(d, &(file(d, "a", "30ms") + &file(d, "b", "20ms"))))
        .await
        .unwrap();
    assert_eq!(
        (s.changed, s.added),
        (vec!["a".to_string()], vec!["b".to_string()])
    );

    // 2: a destination that cannot start (its path is a directory): nothing changes.
    reached(REQUESTS / 2).await;
    let broken = format!(
        "[destinations.z]\ntype = \"file\"\npath = \"{}\"\n",
        d.display()
    );
    let err = running
        .reload(settings(
            d,
            &(file(d, "a", "30ms") + &file(d, "b", "20ms") + &broken),
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("the running configuration stays"), "{err}");

    // 3: `b` is removed, `a` stays as it is.
    reached(3 * REQUESTS / 4).await;
    let s = running
        .reload(settings(d, &file(d, "a", "30ms")))
        .await
        .unwrap();
    assert_eq!(
        (s.removed, s.unchanged),
        (vec!["b".to_string()], vec!["a".to_string()])
    );

    let accepted = load.await.unwrap();
    let metrics = running.metrics.clone();
    running.shutdown();
    running.stopped().await;

    assert_eq!(accepted.len(), REQUESTS * 10, "every request was accepted");
    let in_a = read_span_ids(&d.join("a.jsonl"));
    let lines_a = std::fs::read_to_string(d.join("a.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(in_a, accepted, "destination a has every accepted span");
    assert_eq!(lines_a, accepted.len(), "and each once");
    let in_b = read_span_ids(&d.join("b.jsonl"));
    assert!(
        !in_b.is_empty() && in_b.is_subset(&accepted),
        "{}",
        in_b.len()
    );
    let text = metrics.encode();
    for name in ["a", "b"] {
        let dropped: f64 = text
            .lines()
            .filter(|l| {
                l.starts_with(&format!(
                    "tracebridge_exporter_dropped_spans_total{{destination=\"{name}\""
                ))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(dropped, 0.0, "{name}: {text}");
    }
    assert_eq!(
        metric(
            &text,
            "tracebridge_exporter_sent_spans_total{destination=\"b\"}"
        ),
        in_b.len() as f64
    );
}

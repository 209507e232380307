//! SIGHUP reload with the durable spool (the default), against the real
//! binary and under load: a destination changed, one added, one removed,
//! and broken configs in between. Counted end to end at the file sinks:
//! every acknowledged span reaches every destination configured for it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::binary::{self, Binary, Ports, free_port};
use common::{hex, read_span_ids, request, span};

fn file(dir: &Path, name: &str, flush: &str) -> String {
    format!(
        "[destinations.{name}]\ntype = \"file\"\npath = \"{}\"\nbatch.flush_interval = \"{flush}\"\nbatch.max_items = 50\n",
        dir.join(format!("{name}.jsonl")).display()
    )
}

fn write_config(dir: &Path, p: &Ports, destinations: &str) -> PathBuf {
    binary::write_config(dir, *p, "", destinations)
}

/// Sends SIGHUP and waits for the `n`th log line containing `outcome`.
async fn reload(daemon: &Binary, outcome: &str, n: usize) -> String {
    daemon.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = daemon.log();
        if log.matches(outcome).count() >= n {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "no {outcome:?} (#{n}) after SIGHUP:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Posts 10-span requests back to back; remembers, in order, the ids of
/// the spans acknowledged.
struct Load {
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(http: u16) -> Self {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (acked.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let client = reqwest::Client::new();
            let url = format!("http://127.0.0.1:{http}/v1/traces");
            let mut i: u64 = 0;
            while !s.load(Ordering::SeqCst) {
                let spans: Vec<_> = (0..10)
                    .map(|j| {
                        let mut sp = span(9, 1, "load");
                        sp.span_id = (i * 10 + j + 1).to_be_bytes().to_vec();
                        sp
                    })
                    .collect();
                i += 1;
                let ids: Vec<String> = spans.iter().map(|sp| hex(&sp.span_id)).collect();
                let body = prost::Message::encode_to_vec(&request(spans));
                let ok = client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                if ok {
                    a.lock().unwrap().extend(ids);
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        });
        Self { acked, stop, task }
    }

    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    async fn more(&self, n: usize) {
        let target = self.count() + n;
        common::wait_until("load progress", || self.count() >= target).await;
    }

    async fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("load task");
        std::mem::take(&mut *self.acked.lock().unwrap())
    }
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_the_durable_spool_adds_changes_and_removes_without_loss() {
    tracebridge::app::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ports = Ports::free();
    let config = write_config(d, &ports, &(file(d, "a", "20ms") + &file(d, "b", "20ms")));
    let daemon = Binary::start(&config, ports, d.join("daemon.log")).await;
    let load = Load::start(ports.http);
    load.more(500).await;

    // 1: `b` changes, `c` is added.
    write_config(
        d,
        &ports,
        &(file(d, "a", "20ms") + &file(d, "b", "35ms") + &file(d, "c", "20ms")),
    );
    let log = reload(&daemon, "configuration reloaded", 1).await;
    assert!(
        log.contains("1 added, 0 removed, 1 changed, 1 unchanged"),
        "{log}"
    );
    // Requests are sent one at a time: past the one in flight, everything
    // acknowledged was appended after c's cursor was made.
    let c_from = load.count() + 10;
    load.more(500).await;

    // 2: a config that does not parse, and one whose new destination cannot
    // start: each is refused, says why, and the running set stays.
    std::fs::write(&config, "this is = = not toml").unwrap();
    let log = reload(
        &daemon,
        "config reload failed, keeping the running configuration",
        1,
    )
    .await;
    assert!(log.contains("config.toml"), "names the file:\n{log}");
    write_config(
        d,
        &ports,
        &(file(d, "a", "20ms")
            + &file(d, "b", "35ms")
            + &file(d, "c", "20ms")
            + &format!(
                "[destinations.z]\ntype = \"file\"\npath = \"{}\"\n",
                d.display()
            )),
    );
    let log = reload(&daemon, "the running configuration stays", 1).await;
    assert!(log.contains("cannot open"), "says why:\n{log}");
    load.more(300).await;

    // 3: `c` is removed once it has caught up, `a` and `b` stay.
    let c_until = load.count();
    let c_expected: BTreeSet<String> = load.acked.lock().unwrap()[c_from..c_until]
        .iter()
        .cloned()
        .collect();
    common::wait_until("c catches up", || {
        c_expected.is_subset(&read_span_ids(&d.join("c.jsonl")))
    })
    .await;
    write_config(d, &ports, &(file(d, "a", "20ms") + &file(d, "b", "35ms")));
    let log = reload(&daemon, "configuration reloaded", 2).await;
    assert!(
        log.contains("0 added, 1 removed, 0 changed, 2 unchanged"),
        "{log}"
    );
    load.more(300).await;

    let acked = load.finish().await;
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", ports.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let log_text = daemon.log();
    let status = daemon.sigterm().await;
    assert!(status.success(), "{status}\n{log_text}");

    let all: BTreeSet<String> = acked.iter().cloned().collect();
    assert_eq!(all.len(), acked.len());
    let in_a = read_span_ids(&d.join("a.jsonl"));
    assert_eq!(in_a, all, "a (never reloaded) has every acknowledged span");
    assert_eq!(lines(&d.join("a.jsonl")), all.len(), "a: each once");
    let in_b = read_span_ids(&d.join("b.jsonl"));
    assert_eq!(
        in_b.len(),
        all.len(),
        "b (changed) has every acknowledged span: missing {:?}",
        all.difference(&in_b).take(5).collect::<Vec<_>>()
    );
    assert_eq!(in_b, all);
    // The old pipeline of `b` drained before the new one read on, so the
    // at-least-once replay is empty here.
    assert_eq!(lines(&d.join("b.jsonl")), all.len(), "b: each once");
    let in_c = read_span_ids(&d.join("c.jsonl"));
    assert!(
        c_expected.is_subset(&in_c) && in_c.is_subset(&all),
        "c (added, then removed) has what was acknowledged while it was configured: missing {}",
        c_expected.difference(&in_c).count()
    );
    assert!(
        !in_c.contains(&acked[0]),
        "c started at the end of the log, not with the backlog"
    );
    let cursors = d.join("state/spool/cursors");
    assert!(cursors.join("a").exists() && cursors.join("b").exists());
    assert!(!cursors.join("c").exists(), "c's cursor was removed");
    // What c had not read when it was removed is given up for it, counted
    // as destination_stopped; nothing else is dropped anywhere.
    let dropped: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("tracebridge_exporter_dropped_spans_total{"))
        .filter(|l| !l.contains("destination=\"c\",reason=\"destination_stopped\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(dropped, 0.0, "{metrics}");
}

/// The common case for a reload: a destination was wrong (here nothing
/// listens at its endpoint) and its settings are fixed. The old pipeline
/// cannot deliver what it holds, so after `shutdown_timeout` it is stopped,
/// and the new one reads on from where the old one finished: everything
/// acknowledged while it was broken reaches the fixed endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_fixing_a_broken_destination_delivers_its_spooled_backlog() {
    tracebridge::app::install_tls_provider();
    let sink = common::otlp_sink::OtlpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ports = Ports::free();
    let otlp = |endpoint: String| {
        format!(
            "[destinations.o]\ntype = \"otlp\"\nprotocol = \"http/protobuf\"\nendpoint = \"http://{endpoint}\"\nbatch.flush_interval = \"20ms\"\nretry.initial_interval = \"50ms\"\nretry.max_interval = \"200ms\"\nretry.max_elapsed = \"1h\"\n"
        )
    };
    let nowhere = format!("127.0.0.1:{}", free_port());
    let config = write_config(d, &ports, &(file(d, "a", "20ms") + &otlp(nowhere)));
    let daemon = Binary::start(&config, ports, d.join("daemon.log")).await;
    let load = Load::start(ports.http);
    load.more(500).await;

    write_config(
        d,
        &ports,
        &(file(d, "a", "20ms") + &otlp(sink.http_addr.to_string())),
    );
    let log = reload(&daemon, "configuration reloaded", 1).await;
    assert!(
        log.contains("0 added, 0 removed, 1 changed, 1 unchanged"),
        "{log}"
    );
    assert!(
        log.contains("did not deliver what it held within shutdown_timeout"),
        "the stuck pipeline was stopped, and the log says so:\n{log}"
    );
    load.more(300).await;
    let acked = load.finish().await;
    let all: BTreeSet<String> = acked.iter().cloned().collect();
    let at_sink = || -> BTreeSet<String> {
        sink.received()
            .iter()
            .filter(|r| r.accepted)
            .filter_map(|r| r.request.as_ref())
            .flat_map(|r| &r.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .map(|s| hex(&s.span_id))
            .collect()
    };
    common::wait_until("the fixed destination catches up", || {
        all.is_subset(&at_sink())
    })
    .await;
    let status = daemon.sigterm().await;
    assert!(status.success());
    assert_eq!(at_sink(), all);
    assert_eq!(
        sink.accepted_spans(),
        all.len(),
        "nothing was delivered before the fix, so nothing is sent twice"
    );
    assert_eq!(read_span_ids(&d.join("a.jsonl")), all);
}

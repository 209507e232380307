//! Faults against the real binary and the fake Opik: `kill -9` in a loop
//! while the destination fails for long stretches, and SIGTERM while it is
//! slow. What counts: every span the daemon acknowledged reaches Opik,
//! exactly once (one row per span, no id under two identities), and each
//! OTel trace is one Opik trace.
//!
//! `SPOOL_FAULT_CYCLES` lengthens the kill loop (default 8 cycles of
//! about 3 s each).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::fake_opik::{FakeOpik, Outage};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;

/// A free port below Linux's ephemeral range (32768+), so that other tests
/// binding port 0 cannot take it while the daemon is down between restarts.
fn free_port() -> u16 {
    for _ in 0..1000 {
        let port = 20_000 + fastrand::u16(..12_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

struct Ports {
    grpc: u16,
    http: u16,
    admin: u16,
}

fn write_config(dir: &Path, fake: &FakeOpik, p: &Ports, fsync: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
shutdown_timeout = "2s"
state_dir = "{state}"
[receiver]
grpc_listen = "127.0.0.1:{grpc}"
http_listen = "127.0.0.1:{http}"
[admin]
listen = "127.0.0.1:{admin}"
[log]
level = "warn"
format = "json"
[spool]
fsync = "{fsync}"
[destinations.opik]
type = "opik"
url = "{url}"
workspace = "default"
project_name = "faults"
timeout = "1s"
stale_trace_timeout = "1h"
batch.flush_interval = "100ms"
retry.initial_interval = "100ms"
retry.max_interval = "500ms"
retry.max_elapsed = "1h"
"#,
        state = dir.join("state").display(),
        grpc = p.grpc,
        http = p.http,
        admin = p.admin,
        url = fake.url(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// A fake Opik, free ports, and a daemon config in a temporary directory.
struct Setup {
    dir: tempfile::TempDir,
    fake: FakeOpik,
    ports: Ports,
    config: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Setup {
    async fn new(fsync: &str) -> Self {
        tracebridge::app::install_tls_provider();
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = FakeOpik::start(None, "default").await;
        let ports = Ports {
            grpc: free_port(),
            http: free_port(),
            admin: free_port(),
        };
        let config = write_config(dir.path(), &fake, &ports, fsync);
        let log = dir.path().join("daemon.log");
        Self {
            dir,
            fake,
            ports,
            config,
            log,
        }
    }
}

struct Daemon {
    child: Child,
}

/// A daemon never outlives its test, even one that fails.
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    async fn start(config: &Path, admin: u16, log: &Path) -> Self {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_tracebridge"))
            .args(["run", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .env_remove("OPIK_API_KEY")
            .env_remove("OPIK_URL_OVERRIDE")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start tracebridge");
        let daemon = Self { child };
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{admin}/readyz");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = client.get(&url).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "daemon not ready:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        daemon
    }

    /// SIGKILL and reap (what `Drop` does, named for the reader).
    fn kill9(self) {}

    async fn sigterm(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()));
        tokio::task::spawn_blocking(move || self.child.wait().expect("wait"))
            .await
            .expect("join")
    }
}

/// Sends ~1,000 spans/s (every 50 ms: 10 traces of 5 spans, each trace whole
/// in one request) and remembers the names of the spans acknowledged.
struct Load {
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(http: u16) -> Self {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let next_trace = Arc::new(AtomicU64::new(1));
        let (a, s) = (acked.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .expect("client");
            let url = format!("http://127.0.0.1:{http}/v1/traces");
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            while !s.load(Ordering::SeqCst) {
                tick.tick().await;
                let (body, names) = request(&next_trace, 10, 5);
                let ok = client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                if ok {
                    a.lock().unwrap().extend(names);
                }
            }
        });
        Self { acked, stop, task }
    }

    async fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("load task");
        std::mem::take(&mut *self.acked.lock().unwrap())
    }
}

fn request(next: &AtomicU64, traces: usize, spans: u64) -> (Vec<u8>, Vec<String>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut out = Vec::new();
    let mut names = Vec::new();
    for _ in 0..traces {
        let t = next.fetch_add(1, Ordering::SeqCst);
        let mut trace_id = vec![0xab; 8];
        trace_id.extend_from_slice(&t.to_be_bytes());
        let id = |i: u64| ((t << 8) | (i + 1)).to_be_bytes().to_vec();
        for i in 0..spans {
            let name = format!("t{t}-s{i}");
            names.push(name.clone());
            out.push(Span {
                trace_id: trace_id.clone(),
                span_id: id(i),
                parent_span_id: if i == 0 { Vec::new() } else { id(0) },
                name,
                start_time_unix_nano: now + i * 1_000_000,
                end_time_unix_nano: now + (i + 1) * 1_000_000,
                ..Default::default()
            });
        }
    }
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: out,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    (req.encode_to_vec(), names)
}

/// Span rows per span name, and the Opik trace ids per OTel trace.
fn rows_by_name(fake: &FakeOpik) -> (BTreeMap<String, usize>, BTreeMap<String, BTreeSet<String>>) {
    let mut per_name: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_trace: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in fake.spans() {
        let name = row["name"].as_str().unwrap_or_default().to_string();
        let trace = name.split('-').next().unwrap_or_default().to_string();
        per_trace
            .entry(trace)
            .or_default()
            .insert(row["trace_id"].as_str().unwrap_or_default().to_string());
        *per_name.entry(name).or_default() += 1;
    }
    (per_name, per_trace)
}

async fn wait_delivered(fake: &FakeOpik, acked: &[String], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let (per_name, _) = rows_by_name(fake);
        let missing = acked.iter().filter(|n| !per_name.contains_key(*n)).count();
        if missing == 0 || Instant::now() > deadline {
            return missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(admin: u16) -> String {
    let url = format!("http://127.0.0.1:{admin}/metrics");
    match reqwest::get(url).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Checks the Opik side: every acknowledged span once, one Opik trace per
/// OTel trace, every trace row present, no id under two identities.
fn check_exactly_once(fake: &FakeOpik, acked: &[String]) {
    let (per_name, per_trace) = rows_by_name(fake);
    let missing: Vec<&String> = acked
        .iter()
        .filter(|n| !per_name.contains_key(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged spans lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    let twice: Vec<_> = per_name.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "spans with two rows: {twice:?}");
    let split: Vec<_> = per_trace.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(split.is_empty(), "OTel traces split in Opik: {split:?}");
    let trace_rows: BTreeSet<String> = fake
        .traces()
        .iter()
        .filter_map(|t| t["id"].as_str().map(str::to_string))
        .collect();
    let orphans = per_trace
        .values()
        .flatten()
        .filter(|id| !trace_rows.contains(*id))
        .count();
    assert_eq!(orphans, 0, "spans whose Opik trace row is missing");
    assert!(
        fake.duplicate_ids().is_empty(),
        "{:?}",
        fake.duplicate_ids()
    );
}

async fn kill_loop(fsync: &str, cycles: usize) {
    let Setup {
        dir: _dir,
        fake,
        ports,
        config,
        log,
    } = Setup::new(fsync).await;
    fake.state.lock().unwrap().drop_bodies = true;
    let outages = [
        None,
        Some(Outage {
            status: 503,
            hang: None,
        }),
        Some(Outage {
            status: 503,
            hang: Some(Duration::from_millis(1500)),
        }),
    ];
    let load = Load::start(ports.http);
    let mut replayed = 0.0;
    for cycle in 0..cycles {
        fake.outage(outages[cycle % outages.len()]);
        let daemon = Daemon::start(&config, ports.admin, &log).await;
        tokio::time::sleep(Duration::from_millis(2500 + 150 * (cycle as u64 % 5))).await;
        replayed += metric(
            &scrape(ports.admin).await,
            "tracebridge_spool_replayed_spans_total{destination=\"opik\"}",
        );
        daemon.kill9();
    }
    fake.outage(None);
    let daemon = Daemon::start(&config, ports.admin, &log).await;
    let acked = load.finish().await;
    let missing = wait_delivered(&fake, &acked, Duration::from_secs(90)).await;
    let metrics = scrape(ports.admin).await;
    replayed += metric(
        &metrics,
        "tracebridge_spool_replayed_spans_total{destination=\"opik\"}",
    );
    let status = daemon.sigterm().await;
    eprintln!(
        "fsync={fsync}: {cycles} kill -9 cycles, {} spans acknowledged, {missing} missing, {} span rows, {replayed} spans replayed after restarts",
        acked.len(),
        fake.spans().len(),
    );
    assert!(status.success(), "clean exit after the loop");
    assert!(acked.len() > 1000, "the load ran: {}", acked.len());
    check_exactly_once(&fake, &acked);
}

fn cycles() -> usize {
    std::env::var("SPOOL_FAULT_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_a_loop_during_outages_loses_no_acknowledged_span_fsync_always() {
    kill_loop("always", cycles()).await;
}

/// With an interval, a crash of the *process* loses nothing either: the
/// kernel holds what was written. (A crash of the machine could lose up to
/// the interval; that cannot be simulated here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_a_loop_loses_nothing_with_an_fsync_interval_either() {
    kill_loop("100ms", cycles().div_ceil(2)).await;
}

/// SIGTERM while Opik hangs: the daemon exits by its deadline, drops nothing,
/// and the next start delivers everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_slow_destination_keeps_the_rest_for_the_next_start() {
    let Setup {
        dir: _dir,
        fake,
        ports,
        config,
        log,
    } = Setup::new("always").await;
    fake.outage(Some(Outage {
        status: 503,
        hang: Some(Duration::from_secs(5)),
    }));
    let daemon = Daemon::start(&config, ports.admin, &log).await;
    let load = Load::start(ports.http);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked = load.finish().await;
    let status = daemon.sigterm().await;
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("stays in the spool for the next start"),
        "{text}"
    );
    assert!(
        fake.spans().len() < acked.len(),
        "Opik was too slow to take it all"
    );

    fake.outage(None);
    let daemon = Daemon::start(&config, ports.admin, &log).await;
    let missing = wait_delivered(&fake, &acked, Duration::from_secs(60)).await;
    let metrics = scrape(ports.admin).await;
    assert!(daemon.sigterm().await.success());
    assert_eq!(missing, 0, "{} acknowledged", acked.len());
    assert_eq!(
        metric(
            &metrics,
            "tracebridge_exporter_dropped_spans_total{destination=\"opik\",reason=\"shutdown\"}"
        ),
        0.0
    );
    assert!(
        metric(
            &metrics,
            "tracebridge_spool_replayed_spans_total{destination=\"opik\"}"
        ) > 0.0,
        "the second start replayed what the first left"
    );
    check_exactly_once(&fake, &acked);
}

/// A restart between two requests of one trace must keep it one Opik trace.
/// Needs the trace table to survive restarts (issue 10, item 2), which it
/// does not yet: the second half gets a new Opik trace id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_trace_keeps_one_opik_trace() {
    let Setup {
        dir: _dir,
        fake,
        ports,
        config,
        log,
    } = Setup::new("always").await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/v1/traces", ports.http);
    let next = AtomicU64::new(1);
    let (body, names) = request(&next, 1, 8);
    let req = ExportTraceServiceRequest::decode(body.as_slice()).expect("decode");
    let spans = &req.resource_spans[0].scope_spans[0].spans;
    let part = |range: std::ops::Range<usize>| {
        let mut r = req.clone();
        r.resource_spans[0].scope_spans[0].spans = spans[range].to_vec();
        r.encode_to_vec()
    };
    // Children first (each part starts later than the one before, so a
    // fresh table would stamp a different Opik id), the root last:
    // SIGTERM once delivered; kill -9 once delivered; kill -9 right after
    // the acknowledgement (the store may not have made it durable yet).
    enum Stop {
        Term,
        KillDelivered,
        KillAcked,
    }
    let steps = [
        (2..4, Stop::Term),
        (4..6, Stop::KillDelivered),
        (6..8, Stop::KillAcked),
        (0..2, Stop::Term),
    ];
    let mut sent: Vec<String> = Vec::new();
    for (range, stop) in steps {
        let daemon = Daemon::start(&config, ports.admin, &log).await;
        sent.extend_from_slice(&names[range.clone()]);
        let r = client
            .post(&url)
            .header("content-type", "application/x-protobuf")
            .body(part(range))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 200);
        match stop {
            Stop::KillAcked => daemon.kill9(),
            Stop::Term | Stop::KillDelivered => {
                assert_eq!(
                    wait_delivered(&fake, &sent, Duration::from_secs(20)).await,
                    0
                );
                if matches!(stop, Stop::Term) {
                    assert!(daemon.sigterm().await.success());
                } else {
                    daemon.kill9();
                }
            }
        }
    }
    check_exactly_once(&fake, &names);
    let trace_rows: Vec<_> = fake.traces();
    assert_eq!(trace_rows.len(), 1, "one trace row: {trace_rows:?}");
    let last = &trace_rows[0];
    assert_eq!(last["name"], "t1-s0", "the root named the trace: {last}");
    assert!(last.get("end_time").is_some_and(|e| !e.is_null()));
}

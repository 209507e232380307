//! `state.backend = "redis"`: replicas that share the Opik trace table on a
//! real `redis-server` (Debian's package; `.ci/run` installs it). Each test
//! starts its own server on a free loopback port and stops it by PID; a
//! machine without `redis-server` skips with a message saying so.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::fake_opik::FakeOpik;
use common::{request, wait_until};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::Value as Json;
use tracebridge::app::{self, Running};

struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// A server on `port` (a free one if `None`), or `None` when
    /// `redis-server` is not installed.
    fn start(port: Option<u16>, dir: &Path) -> Option<Self> {
        let port = port.unwrap_or_else(free_port);
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = Self { child, port };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not listen on {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// Stopped by its PID (never by name), whatever the test's outcome.
impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn skip() {
    eprintln!(
        "SKIPPED: redis-server is not installed (apt-get install -y redis-server); .ci/run installs it"
    );
}

/// A daemon with one Opik destination; `redis` set means the shared table.
async fn daemon(dir: &Path, fake: &FakeOpik, redis: Option<&str>) -> Running {
    let state = match redis {
        Some(url) => format!(
            "[state]\nbackend = \"redis\"\nredis.url = \"{url}\"\nredis.timeout = \"500ms\""
        ),
        None => String::new(),
    };
    let config = format!(
        r#"
shutdown_timeout = "5s"
state_dir = "{state_dir}"
{state}
[receiver]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[log]
level = "warn"
[destinations.opik]
type = "opik"
url = "{url}"
workspace = "default"
project_name = "replicas"
stale_trace_timeout = "1h"
batch.flush_interval = "20ms"
retry.initial_interval = "50ms"
"#,
        state_dir = dir.join("state").display(),
        url = fake.url(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).expect("write config");
    let settings = tracebridge::config::load(Some(&path))
        .and_then(|l| l.settings())
        .expect("valid config");
    app::start(settings).await.expect("daemon starts")
}

async fn post(d: &Running, spans: Vec<Span>) {
    let url = format!("http://{}/v1/traces", d.http_addr);
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(request(spans).encode_to_vec())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
}

/// Four traces of six spans (a root, then children, each with its own
/// times), sent two spans per request, children first and the root last;
/// round-robin over two daemons, each trace's requests alternate.
fn requests() -> Vec<Vec<Span>> {
    let base = 1_767_225_600_000_000_000u64;
    let mut out = Vec::new();
    for trace in 1..=4u8 {
        for part in 0..3u8 {
            let spans = (0..2u8)
                .map(|k| {
                    let i = 5 - (part * 2 + k);
                    let mut s = common::span(trace, 0, &format!("t{trace}-s{i}"));
                    s.span_id = vec![trace, i, 0, 0, 0, 0, 0, 1];
                    s.parent_span_id = if i == 0 {
                        vec![]
                    } else {
                        vec![trace, 0, 0, 0, 0, 0, 0, 1]
                    };
                    s.start_time_unix_nano = base + u64::from(i) * 1_000_000 + u64::from(trace);
                    s.end_time_unix_nano = base + 100_000_000 - u64::from(i) * 1_000_000;
                    s
                })
                .collect();
            out.push(spans);
        }
    }
    out
}

/// Sends every request, round-robin over `daemons`, each once the previous
/// one is in the fake (as spans of one trace arrive one after another).
async fn send_all(daemons: &[&Running], fake: &FakeOpik) {
    for (n, spans) in requests().into_iter().enumerate() {
        post(daemons[n % daemons.len()], spans).await;
        let want = (n + 1) * 2;
        wait_until("the request's spans reach the fake", || {
            fake.spans().len() >= want
        })
        .await;
    }
}

/// The fake's rows without what differs between runs (`last_updated_at`).
fn rows(fake: &FakeOpik) -> (BTreeMap<String, Json>, BTreeMap<String, Json>) {
    let strip = |mut v: Json| {
        if let Some(o) = v.as_object_mut() {
            o.remove("last_updated_at");
        }
        v
    };
    let spans = fake
        .spans()
        .into_iter()
        .map(|s| (s["name"].as_str().unwrap_or_default().to_string(), strip(s)))
        .collect();
    let traces = fake
        .traces()
        .into_iter()
        .map(|t| (t["id"].as_str().unwrap_or_default().to_string(), strip(t)))
        .collect();
    (spans, traces)
}

async fn stop(d: Running) {
    d.shutdown();
    d.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sharing_redis_write_what_one_daemon_writes() {
    tracebridge::app::install_tls_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(redis) = RedisServer::start(None, dir.path()) else {
        return skip();
    };
    let single_fake = FakeOpik::start(None, "default").await;
    let one = dir.path().join("one");
    std::fs::create_dir_all(&one).expect("dir");
    let d = daemon(&one, &single_fake, None).await;
    send_all(&[&d], &single_fake).await;
    stop(d).await;

    let fake = FakeOpik::start(None, "default").await;
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    for p in [&a_dir, &b_dir] {
        std::fs::create_dir_all(p).expect("dir");
    }
    let a = daemon(&a_dir, &fake, Some(&redis.url())).await;
    let b = daemon(&b_dir, &fake, Some(&redis.url())).await;
    send_all(&[&a, &b], &fake).await;
    stop(a).await;
    stop(b).await;

    let (want_spans, want_traces) = rows(&single_fake);
    let (spans, traces) = rows(&fake);
    assert_eq!(spans.len(), 24);
    assert_eq!(want_traces.len(), 4);
    assert_eq!(spans, want_spans, "span rows differ from one daemon's");
    assert_eq!(traces, want_traces, "trace rows differ from one daemon's");
    assert!(
        fake.duplicate_ids().is_empty(),
        "{:?}",
        fake.duplicate_ids()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_spans_are_accepted_and_delivered_once_it_is_back() {
    tracebridge::app::install_tls_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    // Is redis-server there at all?
    let Some(probe) = RedisServer::start(None, dir.path()) else {
        return skip();
    };
    drop(probe);
    let port = free_port();
    let fake = FakeOpik::start(None, "default").await;
    let d = daemon(
        dir.path(),
        &fake,
        Some(&format!("redis://127.0.0.1:{port}")),
    )
    .await;
    post(&d, requests().remove(0)).await;
    post(&d, requests().remove(1)).await;
    wait_until("the daemon counts Redis as unavailable", || {
        let text = d.metrics.encode();
        common::metric(
            &text,
            "tracebridge_trace_state_errors_total{destination=\"opik\",reason=\"unavailable\"}",
        ) > 0.0
    })
    .await;
    assert!(
        fake.spans().is_empty(),
        "nothing is mapped while Redis is down"
    );
    let _redis = RedisServer::start(Some(port), dir.path()).expect("redis-server again");
    wait_until("the backlog reaches the fake", || fake.spans().len() == 4).await;
    stop(d).await;
}

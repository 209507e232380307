//! The durable spool: what acknowledging a request costs per fsync policy,
//! beside the in-memory hand-off it replaces. Each iteration appends one
//! request of 50 GenAI spans (~26 KiB encoded); a reader thread consumes and
//! finishes every record, so segments are removed as in the daemon.
//!
//! `cargo bench --bench spool`
//!
//! - `append/1` — one client at a time: every append waits for its own write
//!   (and, with `always`, its own `fdatasync`).
//! - `append/16` — sixteen clients at once: group commit lets one
//!   `fdatasync` cover every append waiting when the writer wakes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracebridge::budget::MemoryBudget;
use tracebridge::config::OnFull;
use tracebridge::export::{Delivery, Progress};
use tracebridge::pdata::key_value;
use tracebridge::route::{ReceivedTraces, RouteTo, Router};
use tracebridge::spool::{Feed, FsyncPolicy, Spool, SpoolMode, SpoolSettings};
use tracebridge::telemetry::{DestinationTelemetry, Metrics};

const SPANS: usize = 50;

fn request() -> ReceivedTraces {
    let content = "x".repeat(400);
    let spans = (0..SPANS)
        .map(|i| Span {
            trace_id: [(i / 10) as u8 + 1; 16].to_vec(),
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: "chat gpt-4o".into(),
            start_time_unix_nano: 1_767_225_600_000_000_000,
            end_time_unix_nano: 1_767_225_601_000_000_000,
            attributes: vec![
                key_value("gen_ai.operation.name", Value::StringValue("chat".into())),
                key_value("gen_ai.request.model", Value::StringValue("gpt-4o".into())),
                key_value(
                    "gen_ai.input.messages",
                    Value::StringValue(format!(r#"[{{"role":"user","content":"{content}"}}]"#)),
                ),
            ],
            ..Default::default()
        })
        .collect();
    let mut t = ReceivedTraces::from_spans(spans);
    t.context.transport = "http";
    t
}

/// A spool with one destination whose reader finishes every record at once.
fn spool(dir: &std::path::Path, fsync: FsyncPolicy, rt: &tokio::runtime::Runtime) -> Arc<Spool> {
    let settings = SpoolSettings {
        mode: SpoolMode::Disk,
        dir: dir.join("spool"),
        fsync,
        max_bytes: 1 << 30,
        segment_bytes: 32 << 20,
    };
    let metrics = Metrics::new();
    let spool = Arc::new(Spool::open(&settings, &["d".to_string()], &metrics).expect("open"));
    let (tx, mut rx) = mpsc::channel::<Delivery>(8);
    let progress = Arc::new(Progress::default());
    let _guard = rt.enter();
    spool
        .attach(
            "d",
            Feed {
                progress: progress.clone(),
                input: tx,
                telemetry: DestinationTelemetry::new(&metrics, "d"),
                on_full: OnFull::Drop,
                budget: MemoryBudget::unlimited(),
            },
            CancellationToken::new(),
        )
        .expect("attach");
    rt.spawn(async move {
        while let Some(d) = rx.recv().await {
            if let Some((_, end)) = d.record {
                progress.batched(&[], None, Some(end));
            }
        }
    });
    spool
}

/// `clients` concurrent appenders, `iters` appends in all; the elapsed time.
fn run(rt: &tokio::runtime::Runtime, spool: &Arc<Spool>, clients: u64, iters: u64) -> Duration {
    let start = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..clients {
            let spool = spool.clone();
            let n = iters / clients + u64::from(c < iters % clients);
            tasks.push(tokio::spawn(async move {
                let r = request();
                for _ in 0..n {
                    spool.append(r.clone()).await.expect("append");
                }
            }));
        }
        for t in tasks {
            t.await.expect("client");
        }
    });
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("spool");
    g.throughput(Throughput::Elements(SPANS as u64));
    g.measurement_time(Duration::from_secs(5));
    g.sample_size(20);
    for (name, fsync) in [
        ("always", FsyncPolicy::Always),
        ("100ms", FsyncPolicy::Interval(Duration::from_millis(100))),
        ("never", FsyncPolicy::Never),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = spool(dir.path(), fsync, &rt);
        for clients in [1u64, 16] {
            g.bench_function(format!("append/{clients}/{name}"), |b| {
                b.iter_custom(|iters| run(&rt, &s, clients, iters))
            });
        }
        s.stop();
    }
    // The in-memory hand-off the spool replaces: the router's try_send.
    let (tx, mut rx) = mpsc::channel::<Delivery>(1024);
    let mut router = Router::new();
    router.add(RouteTo {
        input: tx,
        telemetry: DestinationTelemetry::new(&Metrics::new(), "m"),
        on_full: OnFull::Drop,
    });
    rt.spawn(async move { while rx.recv().await.is_some() {} });
    g.bench_function("memory", |b| {
        b.iter_batched(
            request,
            |r| rt.block_on(router.dispatch(r)),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

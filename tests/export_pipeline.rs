//! The shared export machinery (batch → queue → retrying sender) driven
//! through its public API with scripted destinations.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracebridge::budget::MemoryBudget;
use tracebridge::config::{BatchConfig, ExportSettings, OnFull, QueueConfig, RetryConfig};
use tracebridge::export::{
    self, Delivered, Delivery, ExportItem, ItemMapper, RequestSender, SendError,
};
use tracebridge::route::{Dispatch, ReceivedTraces, RouteTo, Router};
use tracebridge::telemetry::reason::SendFailure;
use tracebridge::telemetry::{DestinationTelemetry, Metrics};

#[derive(Debug, Clone, PartialEq)]
struct Named(String);

impl ExportItem for Named {
    fn encoded_size(&self) -> usize {
        self.0.len()
    }
    fn describe(&self) -> String {
        format!("item {}", self.0)
    }
}

/// One item per span, named after the span.
struct ByName;

impl ItemMapper for ByName {
    type Item = Named;
    fn map(&mut self, traces: &ReceivedTraces, out: &mut Vec<Named>) {
        for rs in &traces.resource_spans {
            for ss in &rs.scope_spans {
                out.extend(ss.spans.iter().map(|s| Named(s.name.clone())));
            }
        }
    }
}

/// Every attempt: when it was made and what it carried.
type Attempts = Arc<Mutex<Vec<(Instant, Vec<Named>)>>>;

type Script = dyn Fn(&[Named], usize) -> Result<Delivered, SendError> + Send + Sync;

/// A destination whose answers are scripted; it records every attempt.
struct Scripted {
    script: Box<Script>,
    attempts: Attempts,
    delivered: Arc<Mutex<Vec<Named>>>,
    hang: bool,
}

impl Scripted {
    fn new(
        script: impl Fn(&[Named], usize) -> Result<Delivered, SendError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            script: Box::new(script),
            attempts: Arc::default(),
            delivered: Arc::default(),
            hang: false,
        }
    }
}

impl RequestSender for Scripted {
    type Item = Named;
    type Request = Vec<Named>;

    fn build(&self, items: &[Named]) -> Result<Vec<Named>, SendError> {
        Ok(items.to_vec())
    }

    async fn send(&self, request: &Vec<Named>) -> Result<Delivered, SendError> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        let n = {
            let mut attempts = self.attempts.lock().unwrap();
            attempts.push((Instant::now(), request.clone()));
            attempts.len()
        };
        let result = (self.script)(request, n);
        if result.is_ok() {
            self.delivered
                .lock()
                .unwrap()
                .extend(request.iter().cloned());
        }
        result
    }
}

fn settings(max_items: usize, flush: Duration) -> ExportSettings {
    ExportSettings {
        batch: BatchConfig {
            max_items,
            max_bytes: 1 << 20,
            flush_interval: flush,
        },
        queue: QueueConfig {
            max_batches: 4,
            concurrency: 1,
            on_full: None,
        },
        retry: RetryConfig {
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(900),
        },
        timeout: Duration::from_secs(3600),
    }
}

fn traces(names: impl IntoIterator<Item = String>) -> ReceivedTraces {
    let spans: Vec<Span> = names
        .into_iter()
        .map(|name| Span {
            name,
            ..Default::default()
        })
        .collect();
    ReceivedTraces::from_spans(spans)
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn metric(metrics: &Metrics, series: &str) -> f64 {
    common::metric(&metrics.encode(), series)
}

/// Starts destination "d" over `sender`.
fn spawn_d(
    s: ExportSettings,
    sender: Scripted,
    metrics: &Metrics,
    stop: CancellationToken,
) -> export::DestinationHandle {
    export::spawn(
        s,
        &MemoryBudget::unlimited(),
        ByName,
        sender,
        DestinationTelemetry::new(metrics, "d"),
        stop,
    )
}

/// Sends one request of `n` spans to destination "d", closes its input and
/// waits until it has delivered or given up.
async fn run_to_end(s: ExportSettings, sender: Scripted, metrics: &Metrics, n: usize) {
    let h = spawn_d(s, sender, metrics, CancellationToken::new());
    h.input
        .send(Delivery::in_memory(Arc::new(traces(names("s", n)))))
        .await
        .unwrap();
    drop(h.input);
    h.finished.await.unwrap();
}

/// Sends batch "first0", then a second later "second0", to destination "d",
/// and waits until both are delivered or given up.
async fn first_then_second(s: ExportSettings, sender: Scripted, metrics: &Metrics) {
    let h = spawn_d(s, sender, metrics, CancellationToken::new());
    h.input
        .send(Delivery::in_memory(Arc::new(traces(names("first", 1)))))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.input
        .send(Delivery::in_memory(Arc::new(traces(names("second", 1)))))
        .await
        .unwrap();
    drop(h.input);
    h.finished.await.unwrap();
}

fn retryable(after: Option<Duration>) -> SendError {
    SendError::Retryable {
        reason: SendFailure::Unavailable,
        detail: "503 from the scripted destination".into(),
        retry_after: after,
    }
}

#[tokio::test(start_paused = true)]
async fn retries_with_backoff_and_honours_retry_after() {
    let metrics = Metrics::new();
    let sender = Scripted::new(|_, n| match n {
        1 => Err(retryable(None)),
        2 => Err(retryable(Some(Duration::from_secs(7)))),
        _ => Ok(Delivered::default()),
    });
    let attempts = sender.attempts.clone();
    let delivered = sender.delivered.clone();
    run_to_end(settings(10, Duration::from_millis(10)), sender, &metrics, 3).await;
    let attempts = attempts.lock().unwrap();
    assert_eq!(attempts.len(), 3);
    let gap1 = attempts[1].0 - attempts[0].0;
    let gap2 = attempts[2].0 - attempts[1].0;
    assert!(
        gap1 >= Duration::from_millis(50) && gap1 <= Duration::from_millis(150),
        "{gap1:?}"
    );
    assert!(
        gap2 >= Duration::from_secs(7),
        "Retry-After ignored: {gap2:?}"
    );
    assert_eq!(delivered.lock().unwrap().len(), 3);
    assert_eq!(
        metric(
            &metrics,
            "tracebridge_exporter_sent_spans_total{destination=\"d\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(
            &metrics,
            "tracebridge_exporter_retries_total{destination=\"d\",reason=\"unavailable\"}"
        ),
        2.0
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_hint_pauses_every_sender_of_the_destination() {
    let metrics = Metrics::new();
    let sender = Scripted::new(|items, _| {
        if items.iter().any(|i| i.0 == "first0") {
            // The first batch is throttled once, for 5 s.
            static ONCE: std::sync::Once = std::sync::Once::new();
            let mut throttle = false;
            ONCE.call_once(|| throttle = true);
            if throttle {
                return Err(retryable(Some(Duration::from_secs(5))));
            }
        }
        Ok(Delivered::default())
    });
    let attempts = sender.attempts.clone();
    let mut s = settings(1, Duration::from_millis(10));
    s.queue.concurrency = 2;
    let t0 = Instant::now();
    // The second batch goes to the other (idle) sender while the hint is in force.
    first_then_second(s, sender, &metrics).await;
    let attempts = attempts.lock().unwrap();
    let at = |name: &str| -> Vec<Duration> {
        attempts
            .iter()
            .filter(|(_, b)| b[0].0 == name)
            .map(|(t, _)| *t - t0)
            .collect()
    };
    assert_eq!(at("first0").len(), 2);
    assert!(
        at("first0")[1] >= Duration::from_secs(5),
        "{:?}",
        at("first0")
    );
    assert_eq!(at("second0").len(), 1);
    assert!(
        at("second0")[0] >= Duration::from_secs(5),
        "the idle sender waited too: {:?}",
        at("second0")
    );
}

#[tokio::test(start_paused = true)]
async fn one_poison_item_in_500_loses_only_itself() {
    let metrics = Metrics::new();
    let sender = Scripted::new(|items, _| {
        if items.iter().any(|i| i.0 == "s137") {
            Err(SendError::Rejected {
                reason: SendFailure::Rejected,
                detail: "400: item s137 is malformed".into(),
                isolate: true,
            })
        } else {
            Ok(Delivered::default())
        }
    });
    let attempts = sender.attempts.clone();
    let delivered = sender.delivered.clone();
    run_to_end(
        settings(500, Duration::from_millis(10)),
        sender,
        &metrics,
        500,
    )
    .await;
    let delivered = delivered.lock().unwrap();
    assert_eq!(delivered.len(), 499);
    assert!(!delivered.contains(&Named("s137".into())));
    let mut unique: Vec<_> = delivered.iter().map(|n| n.0.clone()).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 499, "nothing delivered twice");
    // Bisection, not one request per item.
    assert!(
        attempts.lock().unwrap().len() <= 2 * 9 + 1,
        "{}",
        attempts.lock().unwrap().len()
    );
    assert_eq!(
        metric(
            &metrics,
            "tracebridge_exporter_sent_spans_total{destination=\"d\"}"
        ),
        499.0
    );
    assert_eq!(
        metric(
            &metrics,
            "tracebridge_exporter_send_failed_spans_total{destination=\"d\",reason=\"rejected\"}"
        ),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn a_rejection_that_is_not_about_content_is_not_bisected() {
    let metrics = Metrics::new();
    let sender = Scripted::new(|_, _| {
        Err(SendError::Rejected {
            reason: SendFailure::Unauthorized,
            detail: "401: API key rejected".into(),
            isolate: false,
        })
    });
    let attempts = sender.attempts.clone();
    run_to_end(
        settings(100, Duration::from_millis(10)),
        sender,
        &metrics,
        40,
    )
    .await;
    assert_eq!(attempts.lock().unwrap().len(), 1);
    assert_eq!(
        metric(
            &metrics,
            "tracebridge_exporter_send_failed_spans_total{destination=\"d\",reason=\"unauthorized\"}"
        ),
        40.0
    );
}

#[tokio::test(start_paused = true)]
async fn retrying_stops_at_max_elapsed_and_counts_the_spans() {
    let metrics = Metrics::new();
    let sender = Scripted::new(|_, _| Err(retryable(None)));
    let attempts = sender.attempts.clone();
    let t0 = Instant::now();
    run_to_end(
        settings(100, Duration::from_millis(10)),
        sender,
        &metrics,
        5,
    )
    .await;
    assert!(
        t0.elapsed() <= Duration::from_secs(61),
        "{:?}",
        t0.elapsed()
    );
    assert!(attempts.lock().unwrap().len() > 10);
    assert_eq!(
        metric(
            &metrics,
            "tracebridge_exporter_send_failed_spans_total{destination=\"d\",reason=\"retries_exhausted\"}"
        ),
        5.0
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_longer_than_max_elapsed_is_waited_out_and_holds_the_next_batch() {
    let metrics = Metrics::new();
    // 10 minutes, where max_elapsed is 60 s: the destination said when.
    let sender = Scripted::new(|_, n| match n {
        1 => Err(retryable(Some(Duration::from_secs(600)))),
        _ => Ok(Delivered::default()),
    });
    let attempts = sender.attempts.clone();
    let delivered = sender.delivered.clone();
    let t0 = Instant::now();
    first_then_second(settings(1, Duration::from_millis(10)), sender, &metrics).await;
    let attempts = attempts.lock().unwrap();
    assert_eq!(attempts.len(), 3, "one refusal, then both batches");
    for (at, _) in &attempts[1..] {
        assert!(
            *at - t0 >= Duration::from_secs(600),
            "sent before the hint ran out: {:?}",
            *at - t0
        );
    }
    assert_eq!(delivered.lock().unwrap().len(), 2, "nothing given up");
    assert_eq!(
        metric(
            &metrics,
            "tracebridge_exporter_send_failed_spans_total{destination=\"d\",reason=\"retries_exhausted\"}"
        ),
        0.0
    );
}

#[tokio::test(start_paused = true)]
async fn closing_the_input_flushes_a_batch_that_is_not_due_yet() {
    let metrics = Metrics::new();
    let sender = Scripted::new(|_, _| Ok(Delivered::default()));
    let delivered = sender.delivered.clone();
    let h = spawn_d(
        settings(1000, Duration::from_secs(3600)),
        sender,
        &metrics,
        CancellationToken::new(),
    );
    h.input
        .send(Delivery::in_memory(Arc::new(traces(names("s", 7)))))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        delivered.lock().unwrap().is_empty(),
        "not due before the flush interval"
    );
    drop(h.input);
    h.finished.await.unwrap();
    assert_eq!(delivered.lock().unwrap().len(), 7);
}

#[tokio::test(start_paused = true)]
async fn the_shutdown_deadline_drops_and_counts_what_is_left() {
    let metrics = Metrics::new();
    let sender = Scripted::new(|_, _| Err(retryable(None)));
    let stop = CancellationToken::new();
    let h = spawn_d(
        settings(2, Duration::from_millis(10)),
        sender,
        &metrics,
        stop.clone(),
    );
    h.input
        .send(Delivery::in_memory(Arc::new(traces(names("s", 9)))))
        .await
        .unwrap();
    drop(h.input);
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.cancel();
    h.finished.await.unwrap();
    let dropped = metric(
        &metrics,
        "tracebridge_exporter_dropped_spans_total{destination=\"d\",reason=\"shutdown\"}",
    );
    let failed = metric(
        &metrics,
        "tracebridge_exporter_send_failed_spans_total{destination=\"d\",reason=\"retries_exhausted\"}",
    );
    assert_eq!(dropped + failed, 9.0, "every span accounted for");
    assert!(dropped > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_destination_does_not_delay_a_healthy_one() {
    let metrics = Metrics::new();
    let mut dead = Scripted::new(|_, _| Ok(Delivered::default()));
    dead.hang = true;
    let healthy = Scripted::new(|_, _| Ok(Delivered::default()));
    let delivered = healthy.delivered.clone();
    let stop = CancellationToken::new();
    let dead_h = export::spawn(
        settings(10, Duration::from_millis(5)),
        &MemoryBudget::unlimited(),
        ByName,
        dead,
        DestinationTelemetry::new(&metrics, "dead"),
        stop.clone(),
    );
    let healthy_h = export::spawn(
        settings(10, Duration::from_millis(5)),
        &MemoryBudget::unlimited(),
        ByName,
        healthy,
        DestinationTelemetry::new(&metrics, "healthy"),
        stop.clone(),
    );
    let mut router = Router::new();
    // A dead destination that drops (`queue.on_full = "drop"`) never holds
    // up the healthy one.
    let drops = |input, telemetry| RouteTo {
        input,
        telemetry,
        on_full: OnFull::Drop,
    };
    router.add(drops(dead_h.input, dead_h.telemetry));
    router.add(drops(healthy_h.input, healthy_h.telemetry));
    let started = std::time::Instant::now();
    for i in 0..200 {
        let outcome = router.dispatch_in_memory(traces(names(&format!("r{i}-"), 10)));
        assert_eq!(outcome, Dispatch::Accepted, "request {i}");
        // Pace like a client would, so the healthy destination keeps up.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while delivered.lock().unwrap().len() < 2000 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        delivered.lock().unwrap().len(),
        2000,
        "healthy got everything"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let dropped = metric(
        &metrics,
        "tracebridge_exporter_dropped_spans_total{destination=\"dead\",reason=\"queue_full\"}",
    );
    assert!(dropped > 0.0, "the dead destination dropped and counted");
    assert_eq!(
        metric(
            &metrics,
            "tracebridge_exporter_dropped_spans_total{destination=\"healthy\",reason=\"queue_full\"}"
        ),
        0.0
    );
    assert_eq!(
        metric(
            &metrics,
            "tracebridge_exporter_queue_capacity{destination=\"dead\"}"
        ),
        4.0
    );
    assert_eq!(
        metric(
            &metrics,
            "tracebridge_exporter_queue_size{destination=\"dead\"}"
        ),
        4.0,
        "{}",
        metrics.encode()
    );
    drop(router);
    stop.cancel();
    dead_h.finished.await.unwrap();
    healthy_h.finished.await.unwrap();
}

/// With the spool, a destination's cursor may pass a record only when every
/// batch holding one of its items is finished: a later batch delivered
/// first does not move it past an earlier one still retrying.
#[tokio::test]
async fn the_spool_cursor_waits_for_the_oldest_unfinished_batch() {
    let metrics = Metrics::new();
    let a0_tries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tries = a0_tries.clone();
    let sender = Scripted::new(move |items, _| {
        let first = items.iter().any(|i| i.0 == "a0");
        if first && tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 3 {
            return Err(SendError::Retryable {
                reason: SendFailure::Unavailable,
                detail: "not yet".into(),
                retry_after: None,
            });
        }
        Ok(Delivered::default())
    });
    let delivered = sender.delivered.clone();
    let mut s = settings(3, Duration::from_millis(10));
    s.queue.concurrency = 2;
    let h = spawn_d(s, sender, &metrics, CancellationToken::new());
    let progress = h.progress.clone();
    // Records a (0..10), b (10..20), c (20..30), two items each: batches
    // [a0 a1 b0] and [b1 c0 c1].
    for (i, prefix) in ["a", "b", "c"].into_iter().enumerate() {
        let start = i as u64 * 10;
        h.input
            .send(Delivery {
                traces: Arc::new(traces(names(prefix, 2))),
                record: Some((start, start + 10)),
            })
            .await
            .unwrap();
    }
    for _ in 0..500 {
        let done: Vec<String> = delivered
            .lock()
            .unwrap()
            .iter()
            .map(|n| n.0.clone())
            .collect();
        if !done.contains(&"a0".to_string()) {
            assert!(
                progress.frontier().is_none_or(|f| f == 0),
                "the cursor passed record a while its batch was unsent: {:?}",
                progress.frontier()
            );
        }
        if progress.frontier() == Some(30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(progress.frontier(), Some(30), "finished once all are sent");
    assert!(a0_tries.load(std::sync::atomic::Ordering::SeqCst) >= 4);
    drop(h.input);
    h.finished.await.unwrap();
}

//! The spool on its own: replay order across restarts, torn tails, corrupt
//! records, a full spool, segment rollover and removal.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::config::OnFull;
use crate::export::{Delivery, Progress};
use crate::telemetry::{DestinationTelemetry, Metrics};

fn settings(dir: &Path, max_bytes: u64, segment_bytes: u64) -> SpoolSettings {
    SpoolSettings {
        mode: SpoolMode::Disk,
        dir: dir.join("spool"),
        fsync: FsyncPolicy::Always,
        max_bytes,
        segment_bytes,
    }
}

fn request(name: &str) -> ReceivedTraces {
    let mut t = ReceivedTraces::from_spans(vec![Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.to_string(),
        ..Default::default()
    }]);
    t.context.transport = "http";
    t
}

/// A destination that reads from the spool and is told by the test when
/// records are finished.
struct Consumer {
    rx: mpsc::Receiver<Delivery>,
    progress: Arc<Progress>,
    telemetry: DestinationTelemetry,
    reader: Option<ReaderHandle>,
}

impl Consumer {
    fn attach(spool: &Spool, name: &str, metrics: &Metrics) -> Self {
        Self::attach_with(spool, name, metrics, OnFull::Drop)
    }

    fn attach_with(spool: &Spool, name: &str, metrics: &Metrics, on_full: OnFull) -> Self {
        Self::attach_under(spool, name, metrics, on_full, MemoryBudget::unlimited())
    }

    fn attach_under(
        spool: &Spool,
        name: &str,
        metrics: &Metrics,
        on_full: OnFull,
        budget: Arc<MemoryBudget>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(4);
        let progress = Arc::new(Progress::default());
        let telemetry = DestinationTelemetry::new(metrics, name);
        let reader = spool
            .attach(
                name,
                Feed {
                    progress: progress.clone(),
                    input: tx,
                    telemetry: telemetry.clone(),
                    on_full,
                    budget,
                },
                CancellationToken::new(),
            )
            .unwrap();
        Self {
            rx,
            progress,
            telemetry,
            reader,
        }
    }

    /// Stops the reader (as a reload retiring the destination does).
    async fn stop_reading(&mut self) {
        if let Some(r) = self.reader.take() {
            r.stop().await;
        }
    }

    /// The next request's span name; marks it finished if `finish`.
    async fn next(&mut self, finish: bool) -> Option<String> {
        let d = tokio::time::timeout(Duration::from_secs(5), self.rx.recv())
            .await
            .ok()??;
        if finish {
            let (_, end) = d.record?;
            self.progress.batched(&[], None, Some(end));
        }
        d.traces.spans().next().map(|s| s.name.clone())
    }

    async fn nothing_more(&mut self) -> bool {
        tokio::time::timeout(Duration::from_millis(200), self.rx.recv())
            .await
            .is_err()
    }
}

async fn append(spool: &Spool, name: &str) -> Result<(), AppendError> {
    spool.append(request(name)).await
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("spool"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

fn metric(metrics: &Metrics, line_start: &str) -> u64 {
    let text = metrics.encode();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test]
async fn unfinished_records_are_replayed_in_order_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), 1 << 30, 1 << 20);
    let names = vec!["a".to_string()];
    {
        let spool = Spool::open(&s, &names, &Metrics::new()).unwrap();
        for i in 0..5 {
            append(&spool, &format!("r{i}")).await.unwrap();
        }
        let mut a = Consumer::attach(&spool, "a", &Metrics::new());
        assert_eq!(a.next(true).await.as_deref(), Some("r0"));
        assert_eq!(a.next(true).await.as_deref(), Some("r1"));
        assert_eq!(
            a.next(false).await.as_deref(),
            Some("r2"),
            "read, not finished"
        );
        spool.stop();
    }
    let metrics = Metrics::new();
    let spool = Spool::open(&s, &names, &metrics).unwrap();
    let mut a = Consumer::attach(&spool, "a", &metrics);
    for want in ["r2", "r3", "r4"] {
        assert_eq!(a.next(true).await.as_deref(), Some(want));
    }
    append(&spool, "r5").await.unwrap();
    assert_eq!(a.next(true).await.as_deref(), Some("r5"));
    assert!(a.nothing_more().await);
    assert_eq!(
        metric(
            &metrics,
            "tracebridge_spool_replayed_spans_total{destination=\"a\"}"
        ),
        3
    );
    drop(a.telemetry);
}

#[tokio::test]
async fn a_torn_tail_is_cut_off_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), 1 << 30, 1 << 20);
    let names = vec!["a".to_string()];
    {
        let spool = Spool::open(&s, &names, &Metrics::new()).unwrap();
        for i in 0..3 {
            append(&spool, &format!("r{i}")).await.unwrap();
        }
        spool.stop();
    }
    // A fourth record, cut short as by a crash in the middle of the write.
    let last = segment_files(dir.path()).pop().unwrap();
    let whole = std::fs::metadata(&last).unwrap().len();
    let mut torn = request("r3");
    let frame = record::frame(&mut torn, 0);
    let mut bytes = std::fs::read(&last).unwrap();
    bytes.extend_from_slice(&frame[..frame.len() / 2]);
    std::fs::write(&last, bytes).unwrap();

    let metrics = Metrics::new();
    let spool = Spool::open(&s, &names, &metrics).unwrap();
    assert_eq!(std::fs::metadata(&last).unwrap().len(), whole, "truncated");
    assert_eq!(metric(&metrics, "tracebridge_spool_torn_records_total"), 1);
    let mut a = Consumer::attach(&spool, "a", &metrics);
    for want in ["r0", "r1", "r2"] {
        assert_eq!(a.next(true).await.as_deref(), Some(want));
    }
    append(&spool, "r4").await.unwrap();
    assert_eq!(a.next(true).await.as_deref(), Some("r4"));
}

#[tokio::test]
async fn a_corrupt_record_is_skipped_and_counted_and_its_neighbours_read() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), 1 << 30, 1 << 20);
    let names = vec!["a".to_string()];
    let mut sizes = Vec::new();
    {
        let spool = Spool::open(&s, &names, &Metrics::new()).unwrap();
        for i in 0..3 {
            let mut r = request(&format!("r{i}"));
            sizes.push(record::frame(&mut r, 0).len());
            spool.append(r.clone()).await.unwrap();
        }
        spool.stop();
    }
    let last = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    bytes[sizes[0] + sizes[1] - 1] ^= 0xff; // the last byte of r1
    std::fs::write(&last, bytes).unwrap();

    let metrics = Metrics::new();
    let spool = Spool::open(&s, &names, &metrics).unwrap();
    assert_eq!(
        metric(&metrics, "tracebridge_spool_corrupt_records_total"),
        1
    );
    let mut a = Consumer::attach(&spool, "a", &metrics);
    assert_eq!(a.next(true).await.as_deref(), Some("r0"));
    assert_eq!(a.next(true).await.as_deref(), Some("r2"));
    assert!(a.nothing_more().await);
    assert_eq!(
        metric(&metrics, "tracebridge_spool_corrupt_records_total"),
        1,
        "counted once"
    );
}

#[tokio::test]
async fn records_still_in_memory_are_handed_on_while_the_budget_is_over_half_used() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), 1 << 20, 1 << 18);
    let metrics = Metrics::new();
    let spool = Spool::open(&s, &["d".to_string()], &metrics).unwrap();
    let budget = MemoryBudget::detached(1 << 20);
    // Over half the budget held elsewhere: a reader with requests in its
    // pipeline reads nothing more from the files.
    let _held = budget.charge(crate::budget::Part::Queues, 900 << 10);
    let c = Consumer::attach_under(&spool, "d", &metrics, OnFull::Drop, budget.clone());
    for i in 0..3 {
        append(&spool, &format!("r{i}")).await.unwrap();
    }
    // The records are still in memory (charged already): all three reach
    // the pipeline, which has taken none of them.
    for _ in 0..200 {
        if c.rx.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(c.rx.len(), 3, "records in memory must not wait for room");
}

#[tokio::test]
async fn a_destination_that_pushes_back_refuses_appends_when_behind_instead_of_dropping() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), 4096, 1024);
    let names = vec!["fast".to_string(), "stuck".to_string()];
    let metrics = Metrics::new();
    let spool = Spool::open(&s, &names, &metrics).unwrap();
    let mut fast = Consumer::attach(&spool, "fast", &metrics);
    let mut stuck = Consumer::attach_with(&spool, "stuck", &metrics, OnFull::Backpressure);
    let mut accepted = 0;
    let refusal = loop {
        match append(&spool, &format!("r{accepted}")).await {
            Ok(()) => {
                assert_eq!(fast.next(true).await, Some(format!("r{accepted}")));
                accepted += 1;
            }
            Err(e) => break e,
        }
        assert!(accepted < 500, "a destination that pushes back must refuse");
    };
    assert_eq!(refusal, AppendError::Full(Some("stuck".into())));
    assert!(
        refusal.to_string().contains("destination stuck"),
        "{refusal}"
    );
    // Nothing was dropped: the stuck destination still has every record.
    for i in 0..accepted {
        assert_eq!(stuck.next(true).await, Some(format!("r{i}")));
    }
    assert!(!metrics.encode().contains("reason=\"spool_full\"} 1"));
    // Caught up: appends are taken again.
    append(&spool, "again").await.unwrap();
}

#[tokio::test]
async fn a_destination_that_falls_behind_drops_its_oldest_and_when_all_do_appends_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Records are ~60 bytes; 16 per segment, four segments per destination.
    let s = settings(dir.path(), 4096, 1024);
    let names = vec!["fast".to_string(), "stuck".to_string()];
    let metrics = Metrics::new();
    let spool = Spool::open(&s, &names, &metrics).unwrap();
    let mut fast = Consumer::attach(&spool, "fast", &metrics);
    let stuck = Consumer::attach(&spool, "stuck", &metrics);
    for i in 0..200 {
        append(&spool, &format!("r{i}")).await.unwrap();
        assert_eq!(fast.next(true).await, Some(format!("r{i}")));
    }
    drop(stuck);
    let backlog = spool.backlog();
    assert!(
        backlog[1].1 <= 4096 + 1024,
        "stuck is held near max_bytes: {backlog:?}"
    );
    // Now nobody reads: appends are refused once both are full.
    drop(fast);
    let mut refused = false;
    for i in 0..500 {
        if append(&spool, &format!("x{i}")).await == Err(AppendError::Full(None)) {
            refused = true;
            break;
        }
    }
    assert!(
        refused,
        "appends are refused when every destination is full"
    );
    // Finished segments are removed by the writer's periodic housekeeping:
    // wait for it (bounded), then the disk is bounded.
    for _ in 0..100 {
        if segment_files(dir.path()).len() <= 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        segment_files(dir.path()).len() <= 6,
        "disk stays bounded: {:?}",
        segment_files(dir.path())
    );
}

#[tokio::test]
async fn a_reader_skipping_dropped_segments_counts_their_spans() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), 4096, 1024);
    let names = vec!["fast".to_string(), "slow".to_string()];
    let metrics = Metrics::new();
    let spool = Spool::open(&s, &names, &metrics).unwrap();
    let mut fast = Consumer::attach(&spool, "fast", &metrics);
    let mut slow = Consumer::attach(&spool, "slow", &metrics);
    for i in 0..300 {
        append(&spool, &format!("r{i}")).await.unwrap();
        fast.next(true).await;
    }
    // The slow one reads everything it still can.
    let mut got = 0u64;
    while slow.next(true).await.is_some() {
        got += 1;
        if slow.rx.is_empty() && spool.backlog()[1].1 == 0 {
            break;
        }
    }
    let dropped = metric(
        &metrics,
        "tracebridge_exporter_dropped_spans_total{destination=\"slow\",reason=\"spool_full\"}",
    );
    assert!(dropped > 0, "the slow destination dropped its oldest");
    assert_eq!(got + dropped, 300, "every span read or counted as dropped");
}

#[tokio::test]
async fn segments_roll_over_and_are_removed_once_every_destination_is_past_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), 1 << 30, 512);
    let names = vec!["a".to_string(), "b".to_string()];
    let metrics = Metrics::new();
    let spool = Spool::open(&s, &names, &metrics).unwrap();
    let mut a = Consumer::attach(&spool, "a", &metrics);
    let mut b = Consumer::attach(&spool, "b", &metrics);
    for i in 0..50 {
        append(&spool, &format!("r{i}")).await.unwrap();
    }
    assert!(segment_files(dir.path()).len() > 3, "rolled over");
    for _ in 0..50 {
        a.next(true).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(segment_files(dir.path()).len() > 3, "b still needs them");
    for _ in 0..50 {
        b.next(true).await;
    }
    let mut left = usize::MAX;
    for _ in 0..50 {
        left = segment_files(dir.path()).len();
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 1, "only the active segment remains");
}

#[tokio::test]
async fn a_second_daemon_cannot_share_the_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), 1 << 30, 1 << 20);
    let names = vec!["a".to_string()];
    let _first = Spool::open(&s, &names, &Metrics::new()).unwrap();
    let second = Spool::open(&s, &names, &Metrics::new());
    assert!(matches!(second, Err(SpoolError::Locked { .. })));
}

#[tokio::test]
async fn a_reload_adds_restarts_and_removes_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), 1 << 30, 512);
    let names = vec!["a".to_string(), "b".to_string()];
    let metrics = Metrics::new();
    let spool = Spool::open(&s, &names, &metrics).unwrap();
    let mut a = Consumer::attach(&spool, "a", &metrics);
    // `b` reads nothing: it holds every segment.
    let _b = Consumer::attach(&spool, "b", &metrics);
    for i in 0..30 {
        append(&spool, &format!("r{i}")).await.unwrap();
    }
    for i in 0..30 {
        assert_eq!(a.next(true).await, Some(format!("r{i}")));
    }
    assert!(segment_files(dir.path()).len() > 3, "b holds the segments");

    // Added: starts at the end of the log, its cursor saved at once.
    spool.add_destination("c").await.unwrap();
    assert!(dir.path().join("spool/cursors/c").exists());
    let mut c = Consumer::attach(&spool, "c", &metrics);
    assert!(
        c.nothing_more().await,
        "no backlog for an added destination"
    );
    append(&spool, "r30").await.unwrap();
    assert_eq!(c.next(true).await.as_deref(), Some("r30"));

    // Changed: `a` took r30 but did not finish it; its replacement reads it again.
    assert_eq!(a.next(false).await.as_deref(), Some("r30"));
    a.stop_reading().await;
    spool.restart_destination("a").await.unwrap();
    let mut a2 = Consumer::attach(&spool, "a", &metrics);
    assert_eq!(a2.next(true).await.as_deref(), Some("r30"));
    assert!(a2.nothing_more().await);

    // Removed: its cursor goes, and the segments only it held are removed.
    let unread = spool.remove_destination("b").await.unwrap();
    assert!(unread > 0, "b had read nothing");
    let text = metrics.encode();
    let given_up = text
        .lines()
        .find(|l| {
            l.starts_with(
                "tracebridge_exporter_dropped_spans_total{destination=\"b\",reason=\"destination_stopped\"}",
            )
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert!(
        given_up.is_some_and(|n| n > 0.0),
        "what b never read is counted as dropped: {given_up:?}"
    );
    assert!(!dir.path().join("spool/cursors/b").exists());
    assert!(
        spool.backlog().iter().all(|(name, _)| name != "b"),
        "{:?}",
        spool.backlog()
    );
    let mut left = usize::MAX;
    for _ in 0..50 {
        left = segment_files(dir.path()).len();
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 1, "only the active segment remains");
    assert!(
        !metrics
            .encode()
            .contains("tracebridge_spool_bytes{destination=\"b\"}"),
        "the removed destination's gauges go"
    );
}

#[test]
fn recent_records_are_found_by_position_and_forgotten_once_read_or_over_budget() {
    let mut recent = Recent::default();
    let t = Arc::new(crate::route::ReceivedTraces::default());
    recent.push(0, 100, t.clone(), 0);
    recent.push(100, 50, t.clone(), 0);
    assert_eq!(recent.get(100).map(|(len, _)| len), Some(50));
    assert!(recent.get(10).is_none(), "only record starts are positions");
    // Every reader is at 100: the first record is forgotten on the next push.
    recent.push(150, 10, t.clone(), 100);
    assert!(recent.get(0).is_none());
    assert!(recent.get(150).is_some());
    // Over the byte budget the oldest go, whoever still needs them (they
    // read from the file instead); the newest always stays.
    recent.push(160, RECENT_BYTES, t, 0);
    assert!(recent.get(100).is_none() && recent.get(150).is_none());
    assert!(recent.get(160).is_some());
}

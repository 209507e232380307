//! One destination's task group: a batching task feeding a bounded queue,
//! drained by `queue.concurrency` sending tasks.
//!
//! Back-pressure runs backwards through bounded stages: when the queue is
//! full the batching task waits, its small input channel fills, and the
//! router then drops (and counts) what this destination cannot take, while
//! other destinations carry on.
//!
//! With the durable spool, requests arrive tagged with their log positions;
//! batches carry the position of their first record and report to
//! [`Progress`] when they are finished, which moves the spool cursor. What
//! the shutdown deadline interrupts stays in the spool instead of being
//! dropped.

use std::sync::Arc;
use tokio::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Interval;
use tokio_util::sync::CancellationToken;

use super::deliver::{Deliverer, Tally, Throttle, count_dropped};
use super::{
    BatchQueue, Batcher, Delivery, ExportItem, ItemMapper, MemoryQueue, Progress, RequestSender,
};
use crate::budget::{Charge, MemoryBudget, Part};
use crate::config::ExportSettings;
use crate::telemetry::DestinationTelemetry;
use crate::telemetry::reason::{DropReason, LogOutcome, MetricOutcome};

/// Requests waiting between the router and a destination's batching task.
/// Kept small: the queue after the batcher is where capacity is configured.
pub const INPUT_CAPACITY: usize = 8;

/// A running destination.
pub struct DestinationHandle {
    /// Where the router (or the spool's reader) sends received traces.
    /// Dropping every clone starts the drain.
    pub input: mpsc::Sender<Delivery>,
    /// Which spooled records this destination has finished.
    pub progress: Arc<Progress>,
    /// Completes once everything was sent, given up on, or dropped at the deadline.
    pub finished: tokio::task::JoinHandle<()>,
    pub telemetry: DestinationTelemetry,
}

/// Starts a destination. `stop` is the hard shutdown deadline: once it
/// fires, whatever is still held is counted as dropped and the tasks end.
pub fn spawn<M, S>(
    settings: ExportSettings,
    budget: &Arc<MemoryBudget>,
    mapper: M,
    sender: S,
    telemetry: DestinationTelemetry,
    stop: CancellationToken,
) -> DestinationHandle
where
    M: ItemMapper,
    S: RequestSender<Item = M::Item>,
{
    let (input, rx) = mpsc::channel(INPUT_CAPACITY);
    let queue = Arc::new(MemoryQueue::<Tracked<M::Item>>::new(
        settings.queue.max_batches,
    ));
    let progress = Arc::new(Progress::default());
    telemetry.queue_capacity(queue.capacity());
    telemetry.queue_size(0);
    let sender = Arc::new(sender);
    let mut tasks = JoinSet::new();
    tasks.spawn(
        BatchingTask {
            mapper,
            batcher: Batcher::new(settings.batch),
            open_lo: None,
            outlet: Outlet {
                progress: progress.clone(),
                queue: queue.clone(),
                telemetry: telemetry.clone(),
                stop: stop.clone(),
                budget: budget.clone(),
                state: budget.charge(Part::State, 0),
            },
        }
        .run(rx),
    );
    let throttle = Arc::new(Throttle::default());
    for _ in 0..settings.queue.concurrency {
        tasks.spawn(send_loop(
            sender.clone(),
            queue.clone(),
            settings,
            telemetry.clone(),
            stop.clone(),
            throttle.clone(),
            progress.clone(),
        ));
    }
    let handle_telemetry = telemetry.clone();
    let finished = tokio::spawn(async move {
        while let Some(result) = tasks.join_next().await {
            if let Err(e) = result {
                tracing::error!(destination = %telemetry.name(), error = %e, "destination task failed");
            }
        }
        telemetry.flush_logs();
    });
    DestinationHandle {
        input,
        progress,
        finished,
        telemetry: handle_telemetry,
    }
}

/// A batch and the log position of its first spooled record.
struct Tracked<T> {
    items: Vec<T>,
    lo: Option<u64>,
    /// Its bytes, held against the memory budget until it is finished.
    charge: Option<Charge>,
}

impl<T: ExportItem> Tracked<T> {
    fn new(items: Vec<T>, lo: Option<u64>) -> Self {
        Self {
            items,
            lo,
            charge: None,
        }
    }
}

struct BatchingTask<M: ItemMapper, Q> {
    mapper: M,
    batcher: Batcher<M::Item>,
    /// Log position of the first record with items in the open batch.
    open_lo: Option<u64>,
    outlet: Outlet<Q>,
}

/// The batching task's side of the queue.
struct Outlet<Q> {
    progress: Arc<Progress>,
    queue: Arc<Q>,
    telemetry: DestinationTelemetry,
    stop: CancellationToken,
    /// Queued batches are charged to it (the receivers push back sooner).
    budget: Arc<MemoryBudget>,
    /// What the mapper remembers between requests ([`ItemMapper::held_bytes`]).
    state: Charge,
}

impl<M: ItemMapper, Q: BatchQueue<Tracked<M::Item>>> BatchingTask<M, Q> {
    async fn run(mut self, mut rx: mpsc::Receiver<Delivery>) {
        let mut tick = self.mapper.tick_interval().map(tokio::time::interval);
        let mut items = Vec::new();
        loop {
            let deadline = self.batcher.deadline();
            tokio::select! {
                biased;
                () = self.outlet.stop.cancelled() => {
                    self.abandon(&mut rx);
                    break;
                }
                received = rx.recv() => match received {
                    Some(delivery) => {
                        self.mapper.map_record(&delivery.traces, delivery.record, &mut items);
                        self.outlet.progress.hold(self.mapper.replay_from());
                        if !self.mapper.takes_logs() {
                            self.outlet.telemetry.log_records(LogOutcome::NotTaken, delivery.traces.log_count);
                        }
                        if !self.mapper.takes_metrics() {
                            self.outlet.telemetry.metric_points(MetricOutcome::NotTaken, delivery.traces.metric_count);
                        }
                        let record = delivery.record;
                        drop(delivery);
                        if !self.add(&mut items, record).await { break; }
                    }
                    None => {
                        self.mapper.on_shutdown(&mut items);
                        self.outlet.progress.hold(self.mapper.replay_from());
                        if !self.add(&mut items, None).await { break; }
                        if let Some(last) = self.batcher.take_all() {
                            let last = self.take_open(last);
                            self.outlet.enqueue(last).await;
                        }
                        break;
                    }
                },
                () = sleep_until(deadline) => {
                    if let Some(due) = self.batcher.take_due(Instant::now()) {
                        let due = self.take_open(due);
                        if !self.outlet.enqueue(due).await { break; }
                    }
                }
                () = next_tick(&mut tick) => {
                    self.mapper.on_tick(Instant::now(), &mut items);
                    self.outlet.progress.hold(self.mapper.replay_from());
                    if !self.add(&mut items, None).await { break; }
                }
            }
        }
        self.outlet.queue.close();
    }

    /// Batches `items` (made from the spool record `record`, if any),
    /// enqueueing the batches that fill up. False once the shutdown
    /// deadline has passed.
    async fn add(&mut self, items: &mut Vec<M::Item>, record: Option<(u64, u64)>) -> bool {
        self.outlet.state.set(self.mapper.held_bytes());
        // What the mapper made is held until every batch of it is queued
        // (each queued batch then holds its own share).
        let bytes = items.iter().map(ExportItem::encoded_size).sum();
        let _mapped = self.outlet.budget.charge(Part::Queues, bytes);
        // Items the mapper held back came from earlier records: their batch
        // waits at the earliest of those too, so the cursor cannot pass a
        // record whose items are still unsent.
        let lo_here = items
            .iter()
            .filter_map(ExportItem::origin)
            .chain(record.map(|(start, _)| start))
            .min();
        let mut full = Vec::new();
        let mut tracked = Vec::new();
        let now = Instant::now();
        for item in items.drain(..) {
            let before = self.open_lo;
            self.batcher.push(item, now, &mut full);
            let open = !self.batcher.is_empty();
            // See `Batcher::push`: an overflow closes the open batch before
            // the item joins (tag `before`, and the item opens a new batch);
            // reaching a limit closes the batch holding the item.
            let tags: &[Option<u64>] = match (full.len(), open) {
                (0, _) => &[],
                (1, true) => &[before],
                (1, false) => &[earliest(before, lo_here)],
                _ => &[before, lo_here],
            };
            self.open_lo = match (full.len(), open) {
                (_, false) => None,
                (0, true) => earliest(before, lo_here),
                _ => lo_here,
            };
            for (batch, lo) in full.drain(..).zip(tags.iter().copied()) {
                tracked.push(Tracked::new(batch, lo));
            }
        }
        let closed: Vec<Option<u64>> = tracked.iter().map(|t| t.lo).collect();
        self.outlet
            .progress
            .batched(&closed, self.open_lo, record.map(|(_, end)| end));
        for batch in tracked {
            if !self.outlet.enqueue(batch).await {
                return false;
            }
        }
        true
    }

    /// The open batch leaves the batcher (flush interval or shutdown).
    fn take_open(&mut self, items: Vec<M::Item>) -> Tracked<M::Item> {
        let lo = self.open_lo.take();
        self.outlet.progress.batched(&[lo], None, None);
        Tracked::new(items, lo)
    }

    /// The shutdown deadline passed: count what never reached the queue
    /// (what came from the spool stays there for the next start).
    fn abandon(&mut self, rx: &mut mpsc::Receiver<Delivery>) {
        rx.close();
        let telemetry = &self.outlet.telemetry;
        if self.open_lo.is_none() {
            if let Some(open) = self.batcher.take_all() {
                count_dropped(telemetry, DropReason::Shutdown, &open);
            }
        }
        while let Ok(d) = rx.try_recv() {
            if d.record.is_none() {
                let t = &d.traces;
                telemetry.dropped(DropReason::Shutdown, t.span_count);
                telemetry.log_records(LogOutcome::Shutdown, t.log_count);
                telemetry.metric_points(MetricOutcome::Shutdown, t.metric_count);
            }
        }
    }
}

impl<Q> Outlet<Q> {
    /// Waits for room in the queue, unless the shutdown deadline passes first.
    async fn enqueue<T: ExportItem>(&self, mut batch: Tracked<T>) -> bool
    where
        Q: BatchQueue<Tracked<T>>,
    {
        let bytes = batch.items.iter().map(ExportItem::encoded_size).sum();
        batch.charge = Some(self.budget.charge(Part::Queues, bytes));
        let tally = batch.lo.is_none().then(|| Tally::of(&batch.items));
        let pushed = tokio::select! {
            biased;
            r = self.queue.push(batch) => r.is_ok(),
            () = self.stop.cancelled() => false,
        };
        if pushed {
            self.telemetry.queue_size(self.queue.len());
        } else if let Some(tally) = tally {
            tally.dropped(&self.telemetry, DropReason::Shutdown);
        }
        pushed
    }
}

async fn send_loop<S, Q>(
    sender: Arc<S>,
    queue: Arc<Q>,
    settings: ExportSettings,
    telemetry: DestinationTelemetry,
    stop: CancellationToken,
    throttle: Arc<Throttle>,
    progress: Arc<Progress>,
) where
    S: RequestSender,
    Q: BatchQueue<Tracked<S::Item>>,
{
    let deliverer = Deliverer {
        sender: sender.as_ref(),
        settings: &settings,
        telemetry: &telemetry,
        stop: &stop,
        throttle: &throttle,
    };
    loop {
        let batch = tokio::select! {
            biased;
            () = stop.cancelled() => None,
            b = queue.pop() => b,
        };
        let Some(batch) = batch else { break };
        telemetry.queue_size(queue.len());
        match deliverer.deliver(batch.items).await {
            Ok(()) => progress.finished(batch.lo),
            Err(left) if batch.lo.is_none() => {
                count_dropped(&telemetry, DropReason::Shutdown, &left)
            }
            Err(_) => {}
        }
    }
    if stop.is_cancelled() {
        while let Some(batch) = queue.try_pop() {
            if batch.lo.is_none() {
                count_dropped(&telemetry, DropReason::Shutdown, &batch.items);
            }
        }
        telemetry.queue_size(queue.len());
    }
}

/// The earlier of two log positions, either possibly absent.
fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn next_tick(tick: &mut Option<Interval>) {
    match tick {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

//! One destination's task group: a batching task feeding a bounded queue,
//! drained by `queue.concurrency` sending tasks.
//!
//! Back-pressure runs backwards through bounded stages: when the queue is
//! full the batching task waits, its small input channel fills, and the
//! router then drops (and counts) what this destination cannot take, while
//! other destinations carry on.

use std::sync::Arc;
use tokio::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Interval;
use tokio_util::sync::CancellationToken;

use super::deliver::{Deliverer, Throttle, spans_in};
use super::{BatchQueue, Batcher, ExportItem, ItemMapper, MemoryQueue, RequestSender};
use crate::config::ExportSettings;
use crate::route::ReceivedTraces;
use crate::telemetry::DestinationTelemetry;
use crate::telemetry::reason::DropReason;

/// Requests waiting between the router and a destination's batching task.
/// Kept small: the queue after the batcher is where capacity is configured.
pub const INPUT_CAPACITY: usize = 8;

/// A running destination.
pub struct DestinationHandle {
    /// Where the router sends received traces. Dropping every clone starts the drain.
    pub input: mpsc::Sender<Arc<ReceivedTraces>>,
    /// Completes once everything was sent, given up on, or dropped at the deadline.
    pub finished: tokio::task::JoinHandle<()>,
    pub telemetry: DestinationTelemetry,
}

/// Starts a destination. `stop` is the hard shutdown deadline: once it
/// fires, whatever is still held is counted as dropped and the tasks end.
pub fn spawn<M, S>(
    settings: ExportSettings,
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
    let queue = Arc::new(MemoryQueue::new(settings.queue.max_batches));
    telemetry.queue_capacity(queue.capacity());
    telemetry.queue_size(0);
    let sender = Arc::new(sender);
    let mut tasks = JoinSet::new();
    tasks.spawn(
        BatchingTask {
            mapper,
            batcher: Batcher::new(settings.batch),
            outlet: Outlet {
                queue: queue.clone(),
                telemetry: telemetry.clone(),
                stop: stop.clone(),
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
        finished,
        telemetry: handle_telemetry,
    }
}

struct BatchingTask<M: ItemMapper, Q> {
    mapper: M,
    batcher: Batcher<M::Item>,
    outlet: Outlet<Q>,
}

/// The batching task's side of the queue.
struct Outlet<Q> {
    queue: Arc<Q>,
    telemetry: DestinationTelemetry,
    stop: CancellationToken,
}

impl<M: ItemMapper, Q: BatchQueue<M::Item>> BatchingTask<M, Q> {
    async fn run(mut self, mut rx: mpsc::Receiver<Arc<ReceivedTraces>>) {
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
                    Some(traces) => {
                        self.mapper.map(&traces, &mut items);
                        drop(traces);
                        if !self.add(&mut items).await { break; }
                    }
                    None => {
                        self.mapper.on_shutdown(&mut items);
                        if !self.add(&mut items).await { break; }
                        if let Some(last) = self.batcher.take_all() {
                            self.outlet.enqueue(last).await;
                        }
                        break;
                    }
                },
                () = sleep_until(deadline) => {
                    if let Some(due) = self.batcher.take_due(Instant::now()) {
                        if !self.outlet.enqueue(due).await { break; }
                    }
                }
                () = next_tick(&mut tick) => {
                    self.mapper.on_tick(Instant::now(), &mut items);
                    if !self.add(&mut items).await { break; }
                }
            }
        }
        self.outlet.queue.close();
    }

    /// Batches `items`, enqueueing the batches that fill up. False once the
    /// shutdown deadline has passed.
    async fn add(&mut self, items: &mut Vec<M::Item>) -> bool {
        let mut full = Vec::new();
        let now = Instant::now();
        for item in items.drain(..) {
            self.batcher.push(item, now, &mut full);
        }
        for batch in full {
            if !self.outlet.enqueue(batch).await {
                return false;
            }
        }
        true
    }

    /// The shutdown deadline passed: count what never reached the queue.
    fn abandon(&mut self, rx: &mut mpsc::Receiver<Arc<ReceivedTraces>>) {
        rx.close();
        let mut left = self.batcher.pending_spans();
        while let Ok(traces) = rx.try_recv() {
            left += traces.span_count;
        }
        self.outlet.telemetry.dropped(DropReason::Shutdown, left);
    }
}

impl<Q> Outlet<Q> {
    /// Waits for room in the queue, unless the shutdown deadline passes first.
    async fn enqueue<T: ExportItem>(&self, batch: Vec<T>) -> bool
    where
        Q: BatchQueue<T>,
    {
        let spans = spans_in(&batch);
        let pushed = tokio::select! {
            biased;
            r = self.queue.push(batch) => r.is_ok(),
            () = self.stop.cancelled() => false,
        };
        if pushed {
            self.telemetry.queue_size(self.queue.len());
        } else {
            self.telemetry.dropped(DropReason::Shutdown, spans);
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
) where
    S: RequestSender,
    Q: BatchQueue<S::Item>,
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
        deliverer.deliver(batch).await;
    }
    if stop.is_cancelled() {
        while let Some(batch) = queue.try_pop() {
            telemetry.dropped(DropReason::Shutdown, spans_in(&batch));
        }
        telemetry.queue_size(queue.len());
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

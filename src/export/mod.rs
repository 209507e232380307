//! Shared export machinery: every destination gets the same batcher, bounded
//! queue and retrying sender. A destination only supplies
//! - an [`ItemMapper`]: received traces → the items it sends (rows, spans, lines);
//! - a [`RequestSender`]: a batch of items → one request, and sending it.
//!
//! [`pipeline::spawn`] wires them into a task group:
//!
//! ```text
//! input (bounded) → mapper → Batcher → BatchQueue (bounded) → N senders (retry, bisect)
//! ```

mod batch;
mod deliver;
pub mod http_client;
mod ledger;
mod pipeline;
mod queue;
mod retry;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub use batch::Batcher;
pub use ledger::Progress;
pub use pipeline::{DestinationHandle, INPUT_CAPACITY, spawn};
pub use queue::{BatchQueue, MemoryQueue};
pub use retry::{Backoff, parse_retry_after};

use crate::route::ReceivedTraces;
use crate::telemetry::reason::{SendFailure, Signal};

/// What a destination's batching task receives: one request, and the log
/// positions of its spool record (`None` with the in-memory spool).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub traces: Arc<ReceivedTraces>,
    pub record: Option<(u64, u64)>,
}

impl Delivery {
    /// A request that is in no spool.
    pub fn in_memory(traces: Arc<ReceivedTraces>) -> Self {
        Self {
            traces,
            record: None,
        }
    }
}

/// One unit of batching: a span record, an Opik row, a console line…
pub trait ExportItem: Send + Sync + 'static {
    /// Bytes this item adds to an encoded request (an estimate is fine; it
    /// drives `batch.max_bytes`).
    fn encoded_size(&self) -> usize;
    /// OTel spans this item stands for, for the `*_spans_total` counters.
    fn span_count(&self) -> usize {
        1
    }
    /// The OTLP signal this item belongs to. A batch holds one signal: an
    /// item of another closes the open batch. Log records and metric points
    /// are counted per signal (`tracebridge_exporter_{log_records,
    /// metric_points}_total`); such items stand for no span.
    fn signal(&self) -> Signal {
        Signal::Traces
    }
    /// Log records or metric points this item stands for (items of
    /// [`ExportItem::signal`] other than traces).
    fn signal_items(&self) -> usize {
        0
    }
    /// The spool position of the record this item was made from, when the
    /// mapper held it back and emits it with a later request or on a tick
    /// (e.g. a span that waited for its log records). `None`: the request
    /// being mapped.
    fn origin(&self) -> Option<u64> {
        None
    }
    /// Short identification for logs when this item alone is rejected.
    fn describe(&self) -> String;
    /// Items of different partitions never share a batch (e.g. Opik rows
    /// of tenants written to different workspaces or with different keys).
    fn partition(&self) -> u16 {
        0
    }
}

/// Turns received traces into a destination's items. Runs on the
/// destination's own task, so it may keep state (e.g. open traces) without locks.
pub trait ItemMapper: Send + 'static {
    type Item: ExportItem;

    fn map(&mut self, traces: &ReceivedTraces, out: &mut Vec<Self::Item>);

    /// Whether [`ItemMapper::map`] uses log records; if not, the pipeline
    /// counts them as `not_taken`.
    fn takes_logs(&self) -> bool {
        false
    }

    /// Whether [`ItemMapper::map`] uses metrics; if not, the pipeline counts
    /// their data points as `not_taken`.
    fn takes_metrics(&self) -> bool {
        false
    }

    /// [`ItemMapper::map`] for a request read from the spool at `record`
    /// (its log positions); mappers that keep durable state override it.
    fn map_record(
        &mut self,
        traces: &ReceivedTraces,
        record: Option<(u64, u64)>,
        out: &mut Vec<Self::Item>,
    ) {
        let _ = record;
        self.map(traces, out);
    }

    /// The first log position whose effect on this mapper's state is not
    /// durable in its own store yet: the spool keeps the cursor at or below
    /// it so that a crash replays from there. `None`: nothing to hold.
    fn replay_from(&self) -> Option<u64> {
        None
    }

    /// How often [`ItemMapper::on_tick`] should run, if at all.
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// Periodic work, e.g. finalising traces that went quiet.
    fn on_tick(&mut self, _now: Instant, _out: &mut Vec<Self::Item>) {}

    /// Emit everything still held, because the daemon is stopping.
    fn on_shutdown(&mut self, _out: &mut Vec<Self::Item>) {}

    /// Bytes this mapper remembers between requests (e.g. open traces),
    /// for the memory budget; read after every request and tick, so it
    /// must be cheap.
    fn held_bytes(&self) -> usize {
        0
    }
}

/// Builds one request from a batch and sends it. Encoding happens here, on
/// the sending task, never on the receive path or under a lock.
pub trait RequestSender: Send + Sync + 'static {
    type Item: ExportItem;
    type Request: Send + Sync;

    /// Encodes a batch. An error here is permanent for these items.
    fn build(&self, items: &[Self::Item]) -> Result<Self::Request, SendError>;

    /// Sends one encoded request (one attempt; the pipeline retries).
    fn send(
        &self,
        request: &Self::Request,
    ) -> impl Future<Output = Result<Delivered, SendError>> + Send;
}

/// What a successful send reports back.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Items (spans, log records or metric points: the batch's signal) the
    /// destination accepted the request for but said it rejected (OTLP
    /// `partial_success`).
    pub rejected: u64,
    /// The destination's explanation of the rejection.
    pub message: String,
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later (throttled, unavailable, timed out…).
    #[error("{detail}")]
    Retryable {
        reason: SendFailure,
        detail: String,
        /// The destination's own hint (`Retry-After`, gRPC `RetryInfo`).
        retry_after: Option<Duration>,
    },
    /// Will fail again. `isolate` means "something in this batch is bad":
    /// the pipeline bisects the batch to find it and send the rest.
    #[error("{detail}")]
    Rejected {
        reason: SendFailure,
        detail: String,
        isolate: bool,
    },
}

/// An error with its sources, as one line ("connect failed: Connection refused").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

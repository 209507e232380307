//! Delivering one batch: encode once, send with retries, and bisect a batch
//! the destination rejects so that one poison item does not sink the rest.

use tokio::time::Instant;

use tokio_util::sync::CancellationToken;

use super::{Backoff, Delivered, ExportItem, RequestSender, SendError};
use crate::config::ExportSettings;
use crate::telemetry::DestinationTelemetry;
use crate::telemetry::reason::{DropReason, Forwarding, SendFailure, Signal};

/// How sending one chunk ended, if not delivered.
enum Failure {
    /// Rejected for good (after bisecting, if asked to).
    Rejected {
        reason: SendFailure,
        detail: String,
        isolate: bool,
    },
    /// Still failing when `retry.max_elapsed` ran out.
    GaveUp { detail: String },
    /// The shutdown deadline passed.
    Cancelled,
}

pub(super) struct Deliverer<'a, S> {
    pub sender: &'a S,
    pub settings: &'a ExportSettings,
    pub telemetry: &'a DestinationTelemetry,
    pub stop: &'a CancellationToken,
    pub throttle: &'a Throttle,
}

/// A destination-wide pause: when the destination asks one sender to wait
/// (`Retry-After`, `RetryInfo`), every sender of that destination waits, so
/// concurrency does not undo the rate limit.
#[derive(Debug, Default)]
pub(super) struct Throttle(std::sync::Mutex<Option<Instant>>);

impl Throttle {
    fn until(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn extend_to(&self, t: Instant) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none_or(|cur| cur < t) {
            *g = Some(t);
        }
    }
}

impl<S: RequestSender> Deliverer<'_, S> {
    /// Sends `items`, splitting on rejections, and counts every span's fate.
    /// `Err(items)` if the shutdown deadline passed with `items` unsent: the
    /// caller counts them as dropped ([`count_dropped`]), or leaves them to
    /// the spool.
    pub async fn deliver(&self, items: Vec<S::Item>) -> Result<(), Vec<S::Item>> {
        let mut pending = vec![items];
        while let Some(mut chunk) = pending.pop() {
            let spans = spans_in(&chunk);
            let (signal, others) = signal_items(&chunk);
            match self.send_with_retry(&chunk).await {
                Ok(delivered) if signal != Signal::Traces => {
                    let rejected = (delivered.rejected as usize).min(others);
                    self.telemetry
                        .forwarded(signal, Forwarding::Forwarded, others - rejected);
                    self.telemetry
                        .forwarded(signal, Forwarding::Rejected, rejected);
                    if rejected > 0 || !delivered.message.is_empty() {
                        self.telemetry
                            .partially_rejected(signal, rejected, &delivered.message);
                    }
                }
                Ok(delivered) => {
                    let rejected = (delivered.rejected as usize).min(spans);
                    self.telemetry.sent(spans - rejected);
                    if delivered.rejected > 0 || !delivered.message.is_empty() {
                        self.telemetry
                            .partially_rejected(signal, rejected, &delivered.message);
                    }
                }
                Err(Failure::Rejected { isolate: true, .. }) if chunk.len() > 1 => {
                    let right = chunk.split_off(chunk.len() / 2);
                    pending.push(right);
                    pending.push(chunk);
                }
                Err(Failure::Rejected { reason, detail, .. }) => {
                    self.telemetry.forwarded(signal, Forwarding::Failed, others);
                    let what = describe(&chunk);
                    self.telemetry.send_failed(
                        reason,
                        spans,
                        &format!("{what} rejected: {detail}"),
                    );
                }
                Err(Failure::GaveUp { detail }) => {
                    self.telemetry.forwarded(signal, Forwarding::Failed, others);
                    self.telemetry.send_failed(
                        SendFailure::RetriesExhausted,
                        spans,
                        &format!(
                            "gave up after retrying for destinations.{}.retry.max_elapsed = {}: {detail}",
                            self.telemetry.name(),
                            humantime::format_duration(self.settings.retry.max_elapsed)
                        ),
                    );
                }
                Err(Failure::Cancelled) => {
                    chunk.extend(pending.into_iter().flatten());
                    return Err(chunk);
                }
            }
        }
        Ok(())
    }

    /// One chunk: encode once, then attempt until success, a permanent
    /// error, `max_elapsed`, or the shutdown deadline. Returns the spans the
    /// destination reported as rejected inside a successful reply.
    async fn send_with_retry(&self, chunk: &[S::Item]) -> Result<Delivered, Failure> {
        let request = self.sender.build(chunk).map_err(|e| match e {
            SendError::Rejected {
                reason,
                detail,
                isolate,
            } => Failure::Rejected {
                reason,
                detail,
                isolate,
            },
            SendError::Retryable { detail, .. } => Failure::Rejected {
                reason: SendFailure::EncodeFailed,
                detail,
                isolate: true,
            },
        })?;
        let started = Instant::now();
        let mut backoff = Backoff::new(self.settings.retry);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if let Some(until) = self.throttle.until().filter(|u| *u > Instant::now()) {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => {}
                    () = self.stop.cancelled() => return Err(Failure::Cancelled),
                }
            }
            let attempt_started = Instant::now();
            let outcome = tokio::select! {
                r = tokio::time::timeout(self.settings.timeout, self.sender.send(&request)) => r,
                () = self.stop.cancelled() => return Err(Failure::Cancelled),
            };
            self.telemetry.request_finished(attempt_started.elapsed());
            let (reason, detail, hint) = match outcome {
                Ok(Ok(delivered)) => return Ok(delivered),
                Ok(Err(SendError::Rejected {
                    reason,
                    detail,
                    isolate,
                })) => {
                    return Err(Failure::Rejected {
                        reason,
                        detail,
                        isolate,
                    });
                }
                Ok(Err(SendError::Retryable {
                    reason,
                    detail,
                    retry_after,
                })) => (reason, detail, retry_after),
                Err(_) => (
                    SendFailure::Timeout,
                    format!(
                        "no answer within destinations.{}.timeout = {}; check that the destination is reachable and healthy, or raise the timeout if it is slow",
                        self.telemetry.name(),
                        humantime::format_duration(self.settings.timeout)
                    ),
                    None,
                ),
            };
            let delay = backoff.next_delay(hint);
            // A wait the destination asked for pauses every sender, also
            // for the next batch, and is not a reason to give up.
            if hint.is_some() {
                self.throttle.extend_to(Instant::now() + delay);
            } else if started.elapsed() + delay > backoff.max_elapsed() {
                return Err(Failure::GaveUp { detail });
            }
            self.telemetry.retrying(reason, attempt, delay, &detail);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.stop.cancelled() => return Err(Failure::Cancelled),
            }
        }
    }
}

pub(super) fn spans_in<T: ExportItem>(items: &[T]) -> usize {
    items.iter().map(ExportItem::span_count).sum()
}

/// What a batch stands for: spans, or log records or metric points.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tally {
    spans: usize,
    signal: Signal,
    others: usize,
}

impl Tally {
    pub(super) fn of<T: ExportItem>(items: &[T]) -> Self {
        let (signal, others) = signal_items(items);
        Self {
            spans: spans_in(items),
            signal,
            others,
        }
    }

    /// Counts them as dropped for `reason`.
    pub(super) fn dropped(self, telemetry: &DestinationTelemetry, reason: DropReason) {
        telemetry.dropped(reason, self.spans);
        match self.signal {
            Signal::Logs => telemetry.log_records(reason.into(), self.others),
            Signal::Metrics => telemetry.metric_points(reason.into(), self.others),
            Signal::Traces => {}
        }
    }
}

/// Counts `items` as dropped for `reason`.
pub(super) fn count_dropped<T: ExportItem>(
    telemetry: &DestinationTelemetry,
    reason: DropReason,
    items: &[T],
) {
    Tally::of(items).dropped(telemetry, reason);
}

/// The signal of a batch (one per batch, see [`super::Batcher::push`]) and
/// the log records or metric points it holds.
fn signal_items<T: ExportItem>(items: &[T]) -> (Signal, usize) {
    let signal = items.first().map_or(Signal::Traces, ExportItem::signal);
    (signal, items.iter().map(ExportItem::signal_items).sum())
}

fn describe<T: ExportItem>(items: &[T]) -> String {
    match items {
        [one] => one.describe(),
        many => format!("batch of {} items", many.len()),
    }
}

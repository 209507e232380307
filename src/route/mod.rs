//! Routing: hands each received request to the durable spool, or (with
//! `spool.mode = "memory"`) to every destination's bounded input.
//!
//! With the spool, a request is accepted once its record is appended; each
//! destination's reader takes it from there. Refused when every
//! destination is `spool.max_bytes` behind, or the spool cannot write.
//!
//! In memory, the router never waits. A full destination with
//! `queue.on_full = "backpressure"` (the default for `opik`, `otlp`,
//! `arize`) has the request refused for everyone, before any destination
//! takes it, so the client keeps the data and retries (HTTP 503 / gRPC
//! UNAVAILABLE) and nobody gets it twice. A full destination with
//! `on_full = "drop"` loses this request (counted and logged by that
//! destination) while the others still get it; when every destination is
//! full the request is refused too.

mod signals;

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;

use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::config::OnFull;
use crate::control::TenantPolicy;
use crate::export::Delivery;
use crate::spool::{AppendError, Spool};
use crate::telemetry::DestinationTelemetry;
use crate::telemetry::reason::{DropReason, LogOutcome, MetricOutcome, Signal};

pub use signals::{SignalName, Signals};

/// One decoded and validated export request: spans (`/v1/traces`), log
/// records (`/v1/logs`) or metrics (`/v1/metrics`); a request holds one
/// signal, the others are empty.
#[derive(Debug, Clone, Default)]
pub struct ReceivedTraces {
    pub resource_spans: Vec<ResourceSpans>,
    /// Spans in `resource_spans`, counted once at the receiver.
    pub span_count: usize,
    /// Log records of a logs request (empty for traces).
    pub resource_logs: Vec<ResourceLogs>,
    /// Log records in `resource_logs`, counted once at the receiver.
    pub log_count: usize,
    /// Metrics of a metrics request (empty otherwise).
    pub resource_metrics: Vec<ResourceMetrics>,
    /// Metric data points in `resource_metrics`, counted once at the receiver.
    pub metric_count: usize,
    pub context: RequestContext,
    /// The traces request's protobuf encoding exactly as received (after
    /// decompression), when `resource_spans` is what it decodes to: a
    /// protobuf request from which the receiver removed nothing. The spool
    /// writes it as is, and a destination forwarding spans unchanged slices
    /// them out of it ([`crate::pdata::wire`]) instead of encoding them.
    pub raw: Option<Bytes>,
    /// What this request holds of the memory budget (its bytes and decoded
    /// structures), released when the last holder lets go of it.
    pub charge: Option<Arc<crate::budget::Charge>>,
}

impl ReceivedTraces {
    /// A request holding `resource_spans`, its spans counted (for tests,
    /// benchmarks and tools; the receivers count while validating).
    pub fn new(resource_spans: Vec<ResourceSpans>) -> Self {
        let span_count = count_spans(&resource_spans);
        Self {
            resource_spans,
            span_count,
            ..Default::default()
        }
    }

    /// A logs request holding `resource_logs`, its records counted.
    pub fn from_logs(resource_logs: Vec<ResourceLogs>) -> Self {
        let log_count = resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .map(|sl| sl.log_records.len())
            .sum();
        Self {
            resource_logs,
            log_count,
            ..Default::default()
        }
    }

    /// A metrics request holding `resource_metrics`, its data points counted.
    pub fn from_metrics(resource_metrics: Vec<ResourceMetrics>) -> Self {
        let metric_count = resource_metrics
            .iter()
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
            .map(crate::pdata::data_points)
            .sum();
        Self {
            resource_metrics,
            metric_count,
            ..Default::default()
        }
    }

    /// The signal this request carries, and how many items (spans, log
    /// records, metric data points) it holds.
    pub fn signal(&self) -> (Signal, usize) {
        if self.log_count > 0 {
            (Signal::Logs, self.log_count)
        } else if self.metric_count > 0 {
            (Signal::Metrics, self.metric_count)
        } else {
            (Signal::Traces, self.span_count)
        }
    }

    /// A request whose spans share one empty resource and scope.
    pub fn from_spans(spans: Vec<Span>) -> Self {
        Self::new(vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }])
    }

    /// Every span of the request, in order, without its resource and scope.
    pub fn spans(&self) -> impl Iterator<Item = &Span> {
        self.resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
    }
}

/// Spans in `resource_spans`.
pub fn count_spans(resource_spans: &[ResourceSpans]) -> usize {
    resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

/// What the receiver knows about a request besides its spans.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub transport: &'static str,
    /// Opik's `projectName` header / gRPC metadata, as its own OTLP endpoint reads it.
    pub project_name: Option<String>,
    /// The tenant of the bearer token that authenticated the request
    /// (`[receiver.auth.tokens.<name>] tenant`), if any.
    pub tenant: Option<Arc<str>>,
}

/// The routing outcome the receiver answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatch {
    /// At least one destination took the request (or the spool has it).
    Accepted,
    /// Every destination was full, or one whose `on_full` is
    /// `backpressure` (named): refuse, so the client retries.
    Full(Option<String>),
    /// The spool could not take it (write error, busy, closed): retry.
    SpoolUnavailable(String),
}

#[derive(Clone)]
struct Route {
    input: mpsc::Sender<Delivery>,
    telemetry: DestinationTelemetry,
    on_full: OnFull,
}

/// A destination as the router sees it.
pub struct RouteTo {
    pub input: mpsc::Sender<Delivery>,
    pub telemetry: DestinationTelemetry,
    pub on_full: OnFull,
}

impl From<RouteTo> for Route {
    fn from(r: RouteTo) -> Self {
        Self {
            input: r.input,
            telemetry: r.telemetry,
            on_full: r.on_full,
        }
    }
}

/// Fans requests out to destinations.
pub struct Router {
    /// In memory: replaced whole on a config reload ([`Router::replace`]);
    /// a request is offered to the set current when it arrives.
    routes: RwLock<Arc<Vec<Route>>>,
    spool: Option<Arc<Spool>>,
    /// Which tenants the running destinations take (replaced on reload).
    tenants: RwLock<Arc<TenantPolicy>>,
    /// The signals some destination takes ([`Signals::bits`]): a logs or
    /// metrics request no destination takes is acknowledged without being
    /// spooled or routed.
    taken: AtomicU8,
}

impl Default for Router {
    fn default() -> Self {
        Self {
            routes: RwLock::default(),
            spool: None,
            tenants: RwLock::default(),
            taken: AtomicU8::new(Signals::ALL.bits()),
        }
    }
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    /// A router that appends every request to `spool`.
    pub fn spooled(spool: Arc<Spool>) -> Self {
        Self {
            spool: Some(spool),
            ..Self::default()
        }
    }

    /// Sets the signals the destinations take, together (at start and on
    /// every reload).
    pub fn set_taken(&self, signals: Signals) {
        self.taken.store(signals.bits(), Relaxed);
    }

    /// Whether some destination takes `signal`.
    pub fn takes(&self, signal: Signal) -> bool {
        Signals::from_bits(self.taken.load(Relaxed)).has(signal)
    }

    pub fn add(&mut self, route: RouteTo) {
        let routes = self
            .routes
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::make_mut(routes).push(route.into());
    }

    /// Replaces every in-memory destination at once. The inputs no longer
    /// listed are released here, so (once requests in flight are routed)
    /// those destinations see their input close and drain.
    pub fn replace(&self, destinations: Vec<RouteTo>) {
        let routes = destinations.into_iter().map(Route::from).collect();
        *self.routes.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(routes);
    }

    /// A request arriving now would be refused for capacity (the spool's
    /// `max_bytes`): the receivers answer before reading it.
    pub fn refusing(&self) -> Option<Dispatch> {
        match self.spool.as_ref()?.refusing()? {
            AppendError::Full(name) => Some(Dispatch::Full(name)),
            other => Some(Dispatch::SpoolUnavailable(other.to_string())),
        }
    }

    /// Sets what the running destinations take of each tenant (at start
    /// and on every reload).
    pub fn set_tenants(&self, policy: TenantPolicy) {
        *self.tenants.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(policy);
    }

    /// Whether some running destination takes requests of `tenant`.
    pub fn takes_tenant(&self, tenant: Option<&str>) -> bool {
        self.tenants
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .accepts(tenant)
    }

    pub async fn dispatch(&self, traces: ReceivedTraces) -> Dispatch {
        let Some(spool) = &self.spool else {
            return self.dispatch_in_memory(traces);
        };
        match spool.append(traces).await {
            Ok(()) => Dispatch::Accepted,
            Err(AppendError::Full(name)) => Dispatch::Full(name),
            Err(e) => Dispatch::SpoolUnavailable(e.to_string()),
        }
    }

    /// Offers the request to every destination's input, never waiting.
    /// Room is reserved first in every `backpressure` destination, so a
    /// refusal leaves no destination with a copy the client will send again.
    pub fn dispatch_in_memory(&self, traces: ReceivedTraces) -> Dispatch {
        let routes = self
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut permits = Vec::new();
        let mut refused = Vec::new();
        for route in routes.iter().filter(|r| r.on_full == OnFull::Backpressure) {
            match route.input.try_reserve() {
                Ok(permit) => permits.push(permit),
                Err(TrySendError::Full(())) => {
                    return Dispatch::Full(Some(route.telemetry.name().to_string()));
                }
                // Stopping (a reload retires it): the others still take it.
                Err(TrySendError::Closed(())) => {
                    refused.push((route, DropReason::DestinationStopped));
                }
            }
        }
        let (spans, logs, points) = (traces.span_count, traces.log_count, traces.metric_count);
        let traces = Arc::new(traces);
        let taken = permits.len();
        for permit in permits {
            permit.send(Delivery::in_memory(traces.clone()));
        }
        for route in routes.iter().filter(|r| r.on_full == OnFull::Drop) {
            match route.input.try_send(Delivery::in_memory(traces.clone())) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => refused.push((route, DropReason::QueueFull)),
                Err(TrySendError::Closed(_)) => {
                    refused.push((route, DropReason::DestinationStopped))
                }
            }
        }
        if taken == 0 && refused.len() == routes.len() {
            return Dispatch::Full(None);
        }
        for (route, reason) in refused {
            route.telemetry.dropped(reason, spans);
            route.telemetry.log_records(LogOutcome::from(reason), logs);
            route
                .telemetry
                .metric_points(MetricOutcome::from(reason), points);
        }
        Dispatch::Accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Metrics;

    fn traces(spans: usize) -> ReceivedTraces {
        ReceivedTraces {
            span_count: spans,
            ..Default::default()
        }
    }

    fn route(
        tx: mpsc::Sender<Delivery>,
        metrics: &Metrics,
        name: &str,
        on_full: OnFull,
    ) -> RouteTo {
        RouteTo {
            input: tx,
            telemetry: DestinationTelemetry::new(metrics, name),
            on_full,
        }
    }

    #[test]
    fn a_full_drop_destination_loses_while_others_receive_and_all_full_refuses() {
        let metrics = Metrics::new();
        let (fast_tx, mut fast_rx) = mpsc::channel(10);
        let (slow_tx, _slow_rx) = mpsc::channel(1);
        let mut router = Router::new();
        router.add(route(fast_tx, &metrics, "fast", OnFull::Drop));
        router.add(route(slow_tx, &metrics, "slow", OnFull::Drop));
        assert_eq!(router.dispatch_in_memory(traces(2)), Dispatch::Accepted);
        assert_eq!(router.dispatch_in_memory(traces(3)), Dispatch::Accepted);
        assert_eq!(
            fast_rx.try_recv().map(|t| t.traces.span_count).ok(),
            Some(2)
        );
        assert_eq!(
            fast_rx.try_recv().map(|t| t.traces.span_count).ok(),
            Some(3)
        );
        let text = metrics.encode();
        assert!(
            text.contains("tracebridge_exporter_dropped_spans_total{destination=\"slow\",reason=\"queue_full\"} 3"),
            "{text}"
        );
        // Fill "fast" too: now nobody can take it, and nothing is counted as dropped.
        for _ in 0..10 {
            router.dispatch_in_memory(traces(1));
        }
        assert_eq!(router.dispatch_in_memory(traces(5)), Dispatch::Full(None));
    }

    #[test]
    fn a_full_backpressure_destination_refuses_for_everyone_and_nobody_gets_a_copy() {
        let metrics = Metrics::new();
        let (opik_tx, mut opik_rx) = mpsc::channel(1);
        let (console_tx, mut console_rx) = mpsc::channel(10);
        let mut router = Router::new();
        router.add(route(opik_tx, &metrics, "opik", OnFull::Backpressure));
        router.add(route(console_tx, &metrics, "console", OnFull::Drop));
        assert_eq!(router.dispatch_in_memory(traces(2)), Dispatch::Accepted);
        assert_eq!(
            router.dispatch_in_memory(traces(3)),
            Dispatch::Full(Some("opik".into()))
        );
        // The refused request reached neither destination.
        assert_eq!(
            console_rx.try_recv().map(|d| d.traces.span_count).ok(),
            Some(2)
        );
        assert!(console_rx.try_recv().is_err());
        assert_eq!(
            opik_rx.try_recv().map(|d| d.traces.span_count).ok(),
            Some(2)
        );
        // Room again: accepted by both, and nothing was ever counted as dropped.
        assert_eq!(router.dispatch_in_memory(traces(4)), Dispatch::Accepted);
        assert_eq!(
            console_rx.try_recv().map(|d| d.traces.span_count).ok(),
            Some(4)
        );
        let text = metrics.encode();
        assert!(
            text.lines()
                .filter(|l| l.starts_with("tracebridge_exporter_dropped_spans_total{"))
                .all(|l| l.ends_with(" 0")),
            "{text}"
        );
    }
}

//! OTLP receivers: gRPC (`TraceService/Export`) and HTTP (`POST /v1/traces`),
//! bound and served by [`serve`] (plain TCP or TLS).
//!
//! Both decode a request, drop invalid spans (reporting them through
//! `partial_success`), and hand the rest to the [`Router`]. They share
//! [`Intake`], so the two transports cannot drift apart.

pub mod auth;
mod connections;
pub mod decode;
mod grpc_export;
pub mod grpc_server;
pub mod http_server;
pub mod metered;
mod serve;
pub mod signals;
pub mod span_validation;
pub mod tls_server;

use std::sync::Arc;

use bytes::Bytes;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest,
};

pub use decode::{Compression, DecodeError, Encoding};
pub use serve::{Receivers, ServeError, bind, local_addr, serve};

use prost::Message as _;

use crate::budget::{Charge, DECODED_PER_ENCODED, MemoryBudget, Part};
use crate::route::{Dispatch, ReceivedTraces, RequestContext, Router, count_spans};
use crate::telemetry::ReceiverTelemetry;
use crate::telemetry::reason::Refusal;

/// Seconds a client is asked to wait when every destination is full.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The refusal's message: which destination is full, if one pushed back.
fn full_message(who: Option<&str>) -> String {
    match who {
        Some(name) => format!(
            "destination {name} is at capacity (queue.on_full = \"backpressure\"); retry in {RETRY_AFTER_SECS}s"
        ),
        None => format!("every destination is at capacity; retry in {RETRY_AFTER_SECS}s"),
    }
}

/// What the receiver answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Taken (possibly with some spans rejected).
    Accepted {
        partial: Option<ExportTracePartialSuccess>,
    },
    /// Every destination is full: the client should retry.
    Unavailable { message: String },
    /// No destination takes the caller's tenant: retrying cannot help.
    Forbidden { message: String },
}

/// The part of receiving that does not depend on the transport.
#[derive(Clone)]
pub struct Intake {
    router: Arc<Router>,
    telemetry: ReceiverTelemetry,
    budget: Arc<MemoryBudget>,
}

impl Intake {
    pub fn new(
        router: Arc<Router>,
        telemetry: ReceiverTelemetry,
        budget: Arc<MemoryBudget>,
    ) -> Self {
        Self {
            router,
            telemetry,
            budget,
        }
    }

    pub fn telemetry(&self) -> &ReceiverTelemetry {
        &self.telemetry
    }

    pub fn budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
    }

    /// The memory a decoded request of `encoded` protobuf bytes holds: the
    /// charge a receiver read it under, grown (or shrunk) to that, or a new
    /// one. `None` when the budget cannot take it: the caller refuses.
    pub fn charge_decoded(&self, held: Option<Charge>, encoded: usize) -> Option<Charge> {
        self.charge_exactly(held, encoded.saturating_mul(1 + DECODED_PER_ENCODED))
    }

    /// `held` (or a new charge) grown or shrunk to `bytes`; `None` when the
    /// budget cannot take them.
    fn charge_exactly(&self, held: Option<Charge>, bytes: usize) -> Option<Charge> {
        match held {
            Some(mut charge) => charge.try_grow_to(bytes).then_some(charge),
            None => self.budget.try_charge(Part::Requests, bytes),
        }
    }

    /// Why a request arriving now would be refused, decided before its body
    /// is read (so refusing costs no decoding): the memory budget is used
    /// up, or the spool is refusing appends. Counted and logged here.
    pub fn refusal_before_reading(&self) -> Option<String> {
        let (reason, message) = if !self.budget.has_room() {
            (
                Refusal::MemoryBudget,
                metered::over_budget_message(&self.budget),
            )
        } else {
            match self.router.refusing()? {
                Dispatch::Full(who) => (Refusal::DestinationsFull, full_message(who.as_deref())),
                Dispatch::SpoolUnavailable(detail) => (
                    Refusal::SpoolUnavailable,
                    format!("{detail}; retry in {RETRY_AFTER_SECS}s"),
                ),
                Dispatch::Accepted => return None,
            }
        };
        self.telemetry.refused_request(reason, &message);
        Some(message)
    }

    /// The answer when the budget is used up.
    fn over_budget(&self, spans: usize) -> Outcome {
        let message = metered::over_budget_message(&self.budget);
        if spans > 0 {
            self.telemetry
                .refused_spans(Refusal::MemoryBudget, spans, &message);
        } else {
            self.telemetry
                .refused_request(Refusal::MemoryBudget, &message);
        }
        Outcome::Unavailable { message }
    }

    /// Validates and routes one decoded request (with the durable spool,
    /// returns once the request is in it). `raw` is its protobuf encoding
    /// as received, if the transport kept it; it travels on only when
    /// validation removed nothing.
    pub async fn accept(
        &self,
        mut request: ExportTraceServiceRequest,
        raw: Option<Bytes>,
        project_name: Option<String>,
        tenant: Option<Arc<str>>,
        charge: Option<Charge>,
    ) -> Outcome {
        let spans = || count_spans(&request.resource_spans);
        if let Some(message) = self.refuse_tenant(tenant.as_deref()) {
            self.telemetry
                .refused_spans(Refusal::NoDestinationForTenant, spans(), &message);
            return Outcome::Forbidden { message };
        }
        let encoded = raw
            .as_ref()
            .map_or_else(|| request.encoded_len(), Bytes::len);
        // What it holds, now that it is decoded: its bytes (kept as `raw`)
        // and its structures, instead of the estimate it was read under.
        let holds = encoded + crate::pdata::decoded_size(&request.resource_spans, encoded);
        let Some(charge) = self.charge_exactly(charge, holds) else {
            return self.over_budget(spans());
        };
        let report = span_validation::retain_valid(&mut request.resource_spans);
        self.telemetry
            .refused_spans(Refusal::InvalidSpan, report.rejected, &report.message);
        let partial = (report.rejected > 0).then_some(ExportTracePartialSuccess {
            rejected_spans: report.rejected as i64,
            error_message: report.message,
        });
        if report.accepted == 0 {
            return Outcome::Accepted { partial };
        }
        let traces = ReceivedTraces {
            resource_spans: request.resource_spans,
            span_count: report.accepted,
            context: RequestContext {
                transport: self.telemetry.transport(),
                project_name,
                tenant,
            },
            raw: raw.filter(|_| report.rejected == 0 && report.fixed == 0),
            charge: Some(Arc::new(charge)),
            ..Default::default()
        };
        match self.router.dispatch(traces).await {
            Dispatch::Accepted => {
                self.telemetry.accepted(report.accepted);
                Outcome::Accepted { partial }
            }
            Dispatch::Full(who) => {
                let message = full_message(who.as_deref());
                self.telemetry
                    .refused_spans(Refusal::DestinationsFull, report.accepted, &message);
                Outcome::Unavailable { message }
            }
            Dispatch::SpoolUnavailable(detail) => {
                let message = format!("{detail}; retry in {RETRY_AFTER_SECS}s");
                self.telemetry
                    .refused_spans(Refusal::SpoolUnavailable, report.accepted, &message);
                Outcome::Unavailable { message }
            }
        }
    }

    /// Why a request of `tenant` is refused, when no running destination
    /// takes that tenant's requests.
    fn refuse_tenant(&self, tenant: Option<&str>) -> Option<String> {
        (!self.router.takes_tenant(tenant)).then(|| match tenant {
            Some(t) => format!("no destination takes tenant {t:?}: nothing would receive this request"),
            None => "every destination takes only named tenants and this token carries none: nothing would receive this request".into(),
        })
    }

    /// Routes one decoded logs or metrics request (`request`, its context
    /// still empty) exactly as a traces request: spooled, then acknowledged.
    /// Every item is taken; which destinations use it is theirs to say
    /// (`tracebridge_exporter_{log_records,metric_points}_total`). When no
    /// destination takes the signal, the request is acknowledged without
    /// being spooled or routed, and counted as unforwarded.
    pub async fn accept_signal(
        &self,
        mut request: ReceivedTraces,
        encoded: usize,
        project_name: Option<String>,
        tenant: Option<Arc<str>>,
    ) -> Outcome {
        if let Some(message) = self.refuse_tenant(tenant.as_deref()) {
            self.telemetry
                .refused_request(Refusal::NoDestinationForTenant, &message);
            return Outcome::Forbidden { message };
        }
        let (signal, items) = request.signal();
        if items == 0 {
            return Outcome::Accepted { partial: None };
        }
        if !self.router.takes(signal) {
            self.telemetry.unforwarded(signal, items);
            return Outcome::Accepted { partial: None };
        }
        let Some(charge) = self.charge_decoded(None, encoded) else {
            return self.over_budget(0);
        };
        request.charge = Some(Arc::new(charge));
        request.context = RequestContext {
            transport: self.telemetry.transport(),
            project_name,
            tenant,
        };
        let (reason, message) = match self.router.dispatch(request).await {
            Dispatch::Accepted => {
                self.telemetry.accepted_items(signal, items);
                return Outcome::Accepted { partial: None };
            }
            Dispatch::Full(who) => (Refusal::DestinationsFull, full_message(who.as_deref())),
            Dispatch::SpoolUnavailable(detail) => (
                Refusal::SpoolUnavailable,
                format!("{detail}; retry in {RETRY_AFTER_SECS}s"),
            ),
        };
        self.telemetry.refused_request(reason, &message);
        Outcome::Unavailable { message }
    }
}

/// What a client is told when attribute values of its request were cut.
pub fn cut_message(values: usize) -> String {
    format!(
        "{values} attribute value(s) nested deeper than {} levels were cut at that depth (replaced by {:?}); the rest of the request was taken",
        crate::pdata::depth::MAX_VALUE_DEPTH,
        crate::pdata::depth::CUT_MARKER
    )
}

/// `partial` with the note that `cut_values` values were cut (no span is
/// rejected for it: `rejected_spans` stays as it was).
pub fn with_cut_values(
    partial: Option<ExportTracePartialSuccess>,
    cut_values: usize,
) -> Option<ExportTracePartialSuccess> {
    if cut_values == 0 {
        return partial;
    }
    let mut p = partial.unwrap_or_default();
    let note = cut_message(cut_values);
    p.error_message = if p.error_message.is_empty() {
        note
    } else {
        format!("{}; {note}", p.error_message)
    };
    Some(p)
}

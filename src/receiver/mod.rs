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

use crate::route::{Dispatch, ReceivedTraces, RequestContext, Router};
use crate::telemetry::ReceiverTelemetry;
use crate::telemetry::reason::Refusal;

/// Seconds a client is asked to wait when every destination is full.
pub const RETRY_AFTER_SECS: u64 = 1;

/// What the receiver answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Taken (possibly with some spans rejected).
    Accepted {
        partial: Option<ExportTracePartialSuccess>,
    },
    /// Every destination is full: the client should retry.
    Unavailable { message: String },
}

/// The part of receiving that does not depend on the transport.
#[derive(Clone)]
pub struct Intake {
    router: Arc<Router>,
    telemetry: ReceiverTelemetry,
}

impl Intake {
    pub fn new(router: Arc<Router>, telemetry: ReceiverTelemetry) -> Self {
        Self { router, telemetry }
    }

    pub fn telemetry(&self) -> &ReceiverTelemetry {
        &self.telemetry
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
    ) -> Outcome {
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
            },
            raw: raw.filter(|_| report.rejected == 0 && report.fixed == 0),
            ..Default::default()
        };
        match self.router.dispatch(traces).await {
            Dispatch::Accepted => {
                self.telemetry.accepted(report.accepted);
                Outcome::Accepted { partial }
            }
            Dispatch::AllFull => {
                let message =
                    format!("every destination is at capacity; retry in {RETRY_AFTER_SECS}s");
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

    /// Routes one decoded logs or metrics request (`request`, its context
    /// still empty) exactly as a traces request: spooled, then acknowledged.
    /// Every item is taken; which destinations use it is theirs to say
    /// (`tracebridge_exporter_{log_records,metric_points}_total`). When no
    /// destination takes the signal, the request is acknowledged without
    /// being spooled or routed, and counted as unforwarded.
    pub async fn accept_signal(
        &self,
        mut request: ReceivedTraces,
        project_name: Option<String>,
    ) -> Outcome {
        let (signal, items) = request.signal();
        if items == 0 {
            return Outcome::Accepted { partial: None };
        }
        if !self.router.takes(signal) {
            self.telemetry.unforwarded(signal, items);
            return Outcome::Accepted { partial: None };
        }
        request.context = RequestContext {
            transport: self.telemetry.transport(),
            project_name,
        };
        let (reason, message) = match self.router.dispatch(request).await {
            Dispatch::Accepted => {
                self.telemetry.accepted_items(signal, items);
                return Outcome::Accepted { partial: None };
            }
            Dispatch::AllFull => (
                Refusal::DestinationsFull,
                format!("every destination is at capacity; retry in {RETRY_AFTER_SECS}s"),
            ),
            Dispatch::SpoolUnavailable(detail) => (
                Refusal::SpoolUnavailable,
                format!("{detail}; retry in {RETRY_AFTER_SECS}s"),
            ),
        };
        self.telemetry.refused_request(reason, &message);
        Outcome::Unavailable { message }
    }
}

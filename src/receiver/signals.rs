//! The other OTLP signals: logs (`LogsService/Export`, `POST /v1/logs`) and
//! metrics (`MetricsService/Export`, `POST /v1/metrics`).
//!
//! SDKs configured with one `OTEL_EXPORTER_OTLP_ENDPOINT` send all three
//! signals to it; answering 404 / `UNIMPLEMENTED` makes them log export
//! errors every few seconds. Both signals are therefore received with the
//! same encodings, compression, limits and authentication as traces,
//! counted (`tracebridge_receiver_accepted_{log_records,metric_points}_total`)
//! and acknowledged.
//!
//! Both go the way of traces ([`Intake::accept_signal`]: spooled, then
//! acknowledged; 503 / `UNAVAILABLE` when the spool cannot take them); each
//! destination decides what to do with them (the `opik` destination joins
//! GenAI log events to their spans, an `otlp` destination forwards the
//! signals of its `signals` list). A signal no destination takes is not
//! spooled: its items are counted in
//! `tracebridge_receiver_unforwarded_items_total{signal}` and said in the
//! log once a minute.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::service::interceptor::{InterceptedService, Interceptor};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::auth::{Authenticator, Caller};
use super::decode::OtlpRequest;
use super::grpc_server::authenticate;
use super::{Intake, Outcome, RETRY_AFTER_SECS};
use crate::route::ReceivedTraces;

/// A logs or metrics request.
pub trait SignalRequest: OtlpRequest {
    /// The request as it is routed, its items counted.
    fn received(self) -> ReceivedTraces;
}

impl SignalRequest for ExportLogsServiceRequest {
    fn received(self) -> ReceivedTraces {
        ReceivedTraces::from_logs(self.resource_logs)
    }
}

impl SignalRequest for ExportMetricsServiceRequest {
    fn received(self) -> ReceivedTraces {
        ReceivedTraces::from_metrics(self.resource_metrics)
    }
}

/// Takes one decoded logs or metrics request.
pub async fn accept<T: SignalRequest>(
    intake: &Intake,
    request: T,
    project_name: Option<String>,
    tenant: Option<std::sync::Arc<str>>,
) -> Outcome {
    let encoded = request.encoded_len();
    intake
        .accept_signal(request.received(), encoded, project_name, tenant)
        .await
}

/// The gRPC logs and metrics services.
#[derive(Clone)]
pub struct SignalsReceiver {
    intake: Intake,
}

impl SignalsReceiver {
    async fn export<T: SignalRequest, R: Default>(
        &self,
        request: Request<T>,
    ) -> Result<Response<R>, Status> {
        let project_name = request
            .metadata()
            .get("projectname")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let tenant = request
            .extensions()
            .get::<Caller>()
            .and_then(|c| c.tenant.clone());
        match accept(&self.intake, request.into_inner(), project_name, tenant).await {
            Outcome::Accepted { .. } => Ok(Response::new(R::default())),
            Outcome::Unavailable { message } => Err(Status::with_error_details(
                Code::Unavailable,
                message,
                ErrorDetails::with_retry_info(Some(std::time::Duration::from_secs(
                    RETRY_AFTER_SECS,
                ))),
            )),
            Outcome::Forbidden { message } => Err(Status::permission_denied(message)),
        }
    }
}

#[tonic::async_trait]
impl LogsService for SignalsReceiver {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        SignalsReceiver::export(self, request).await
    }
}

#[tonic::async_trait]
impl MetricsService for SignalsReceiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        SignalsReceiver::export(self, request).await
    }
}

/// Builds `$name`: `$server` over [`SignalsReceiver`] with the traces
/// service's compression and message limit, behind the bearer-token check.
macro_rules! signal_service {
    ($(#[$doc:meta])* $name:ident, $server:ident) => {
        $(#[$doc])*
        pub fn $name(
            intake: Intake,
            max_message_bytes: usize,
            auth: Authenticator,
        ) -> InterceptedService<$server<SignalsReceiver>, impl Interceptor + Clone> {
            let check = authenticate(auth, intake.telemetry().clone());
            let server = $server::new(SignalsReceiver { intake })
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Deflate)
                .accept_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(max_message_bytes);
            InterceptedService::new(server, check)
        }
    };
}

signal_service!(
    /// `LogsService` with compression, the message limit and authentication.
    logs_service,
    LogsServiceServer
);
signal_service!(
    /// `MetricsService` with compression, the message limit and authentication.
    metrics_service,
    MetricsServiceServer
);

//! The other OTLP signals: logs (`LogsService/Export`, `POST /v1/logs`) and
//! metrics (`MetricsService/Export`, `POST /v1/metrics`).
//!
//! SDKs configured with one `OTEL_EXPORTER_OTLP_ENDPOINT` send all three
//! signals to it; answering 404 / `UNIMPLEMENTED` makes them log export
//! errors every few seconds. Both signals are therefore received with the
//! same encodings, compression, limits and authentication as traces,
//! counted (`tracebridge_receiver_accepted_{log_records,metric_points}_total`)
//! and acknowledged. No destination takes them yet, so every item is also
//! counted in `tracebridge_receiver_unforwarded_items_total{signal}` and
//! said in the log once a minute.

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
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use tonic::codec::CompressionEncoding;
use tonic::service::interceptor::{InterceptedService, Interceptor};
use tonic::{Request, Response, Status};

use super::auth::Authenticator;
use super::decode::OtlpRequest;
use super::grpc_server::authenticate;
use crate::telemetry::ReceiverTelemetry;
use crate::telemetry::reason::Signal;

/// A logs or metrics request: which signal, and how many items it holds.
pub trait SignalRequest: OtlpRequest {
    const SIGNAL: Signal;
    /// Log records, or metric data points.
    fn items(&self) -> usize;
}

impl SignalRequest for ExportLogsServiceRequest {
    const SIGNAL: Signal = Signal::Logs;
    fn items(&self) -> usize {
        self.resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum()
    }
}

impl SignalRequest for ExportMetricsServiceRequest {
    const SIGNAL: Signal = Signal::Metrics;
    fn items(&self) -> usize {
        self.resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| match &m.data {
                Some(Data::Gauge(g)) => g.data_points.len(),
                Some(Data::Sum(s)) => s.data_points.len(),
                Some(Data::Histogram(h)) => h.data_points.len(),
                Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
                Some(Data::Summary(s)) => s.data_points.len(),
                None => 0,
            })
            .sum()
    }
}

/// Takes one decoded logs or metrics request.
pub fn accept<T: SignalRequest>(telemetry: &ReceiverTelemetry, request: &T) {
    telemetry.unforwarded(T::SIGNAL, request.items());
}

/// The gRPC logs and metrics services.
#[derive(Clone)]
pub struct SignalsReceiver {
    telemetry: ReceiverTelemetry,
}

#[tonic::async_trait]
impl LogsService for SignalsReceiver {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        accept(&self.telemetry, request.get_ref());
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for SignalsReceiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        accept(&self.telemetry, request.get_ref());
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// `LogsService` with compression, the message limit and authentication.
pub fn logs_service(
    telemetry: ReceiverTelemetry,
    max_message_bytes: usize,
    auth: Authenticator,
) -> InterceptedService<LogsServiceServer<SignalsReceiver>, impl Interceptor + Clone> {
    let check = authenticate(auth, telemetry.clone());
    let server = LogsServiceServer::new(SignalsReceiver { telemetry })
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Deflate)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(max_message_bytes);
    InterceptedService::new(server, check)
}

/// `MetricsService` with compression, the message limit and authentication.
pub fn metrics_service(
    telemetry: ReceiverTelemetry,
    max_message_bytes: usize,
    auth: Authenticator,
) -> InterceptedService<MetricsServiceServer<SignalsReceiver>, impl Interceptor + Clone> {
    let check = authenticate(auth, telemetry.clone());
    let server = MetricsServiceServer::new(SignalsReceiver { telemetry })
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Deflate)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(max_message_bytes);
    InterceptedService::new(server, check)
}

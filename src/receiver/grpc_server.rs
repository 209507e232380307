//! OTLP/gRPC receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.
//!
//! gzip, deflate and zstd request compression are accepted. A message over
//! `receiver.grpc_max_message_bytes` gets RESOURCE_EXHAUSTED naming the limit
//! (tonic itself says OUT_OF_RANGE; [`limit_status`] rewrites it). Every
//! destination being full gets UNAVAILABLE with `RetryInfo`.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use tonic::service::interceptor::{InterceptedService, Interceptor};

use super::auth::Authenticator;
use super::{Intake, Outcome, RETRY_AFTER_SECS};
use crate::telemetry::ReceiverTelemetry;
use crate::telemetry::reason::Refusal;

pub struct GrpcReceiver {
    intake: Intake,
}

/// The gRPC service, configured with compression and the message limit,
/// behind the bearer-token check (which runs before the message is read).
pub fn service(
    intake: Intake,
    max_message_bytes: usize,
    auth: Authenticator,
) -> InterceptedService<TraceServiceServer<GrpcReceiver>, impl Interceptor + Clone> {
    let telemetry = intake.telemetry().clone();
    let server = TraceServiceServer::new(GrpcReceiver { intake })
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Deflate)
        .accept_compressed(CompressionEncoding::Zstd)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_message_bytes);
    InterceptedService::new(server, move |req: Request<()>| {
        let presented = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if auth.allows_authorization(presented) {
            Ok(req)
        } else {
            telemetry.refused_request(
                Refusal::Unauthenticated,
                "missing or wrong authorization: Bearer token",
            );
            Err(Status::unauthenticated(
                "send authorization: Bearer <token>",
            ))
        }
    })
}

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let started = Instant::now();
        let project_name = request
            .metadata()
            .get("projectname")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let outcome = self.intake.accept(request.into_inner(), project_name).await;
        self.intake.telemetry().request_finished(started.elapsed());
        match outcome {
            Outcome::Accepted { partial } => Ok(Response::new(ExportTraceServiceResponse {
                partial_success: partial,
            })),
            Outcome::Unavailable { message } => Err(Status::with_error_details(
                Code::Unavailable,
                message,
                ErrorDetails::with_retry_info(Some(Duration::from_secs(RETRY_AFTER_SECS))),
            )),
        }
    }
}

/// Rewrites tonic's OUT_OF_RANGE "message length too large" answer into
/// RESOURCE_EXHAUSTED with a message naming our setting, as grpc-go and the
/// OTel Collector answer. Our service never returns OUT_OF_RANGE itself.
pub fn limit_status<B>(
    telemetry: ReceiverTelemetry,
    limit: usize,
) -> impl Fn(http::Response<B>) -> http::Response<B> + Clone {
    move |mut response: http::Response<B>| {
        let out_of_range = response
            .headers()
            .get("grpc-status")
            .is_some_and(|v| v.as_bytes() == b"11");
        if out_of_range {
            let message = format!(
                "message larger than the limit of {limit} bytes (receiver.grpc_max_message_bytes)"
            );
            telemetry.refused_request(Refusal::TooLarge, &message);
            let headers = response.headers_mut();
            headers.insert("grpc-status", http::HeaderValue::from_static("8"));
            if let Ok(v) = http::HeaderValue::from_str(&message) {
                headers.insert("grpc-message", v);
            }
        }
        response
    }
}

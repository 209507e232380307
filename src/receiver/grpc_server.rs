//! OTLP/gRPC receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.
//!
//! gzip, deflate and zstd request compression are accepted. A message over
//! `receiver.grpc_max_message_bytes` gets RESOURCE_EXHAUSTED naming the limit
//! (tonic itself says OUT_OF_RANGE; [`limit_status`] rewrites it). Every
//! destination being full gets UNAVAILABLE with `RetryInfo`.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use tonic::service::interceptor::{InterceptedService, Interceptor};

use super::auth::{Authenticator, Caller};
use super::grpc_export::{ExportHandler, KeptBytes, TraceExportServer};
use super::{Intake, Outcome, RETRY_AFTER_SECS, cut_message, with_cut_values};
use crate::telemetry::ReceiverTelemetry;
use crate::telemetry::reason::{Refusal, ValueCut};

pub struct GrpcReceiver {
    intake: Intake,
}

/// The gRPC service, configured with compression and the message limit,
/// behind the bearer-token check (which runs before the message is read).
pub fn service(
    intake: Intake,
    max_message_bytes: usize,
    auth: Authenticator,
) -> InterceptedService<TraceExportServer<GrpcReceiver>, impl Interceptor + Clone> {
    let telemetry = intake.telemetry().clone();
    let budget = intake.budget().clone();
    let server = TraceExportServer::new(
        GrpcReceiver { intake },
        max_message_bytes,
        budget,
        telemetry.clone(),
    );
    InterceptedService::new(server, authenticate(auth, telemetry))
}

/// The bearer-token check, run on the request head before the message is read.
pub fn authenticate(auth: Authenticator, telemetry: ReceiverTelemetry) -> impl Interceptor + Clone {
    move |mut req: Request<()>| {
        let presented = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if let Some(caller) = auth.caller_of(presented) {
            req.extensions_mut().insert(caller);
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
    }
}

impl ExportHandler for GrpcReceiver {
    async fn export(
        &self,
        request: Request<KeptBytes>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let started = Instant::now();
        let project_name = request
            .metadata()
            .get("projectname")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let tenant = request
            .extensions()
            .get::<Caller>()
            .and_then(|c| c.tenant.clone());
        let KeptBytes {
            request,
            raw,
            cut_values,
            charge,
        } = request.into_inner();
        let telemetry = self.intake.telemetry();
        telemetry.cut_values(ValueCut::TooDeep, cut_values, &cut_message(cut_values));
        let outcome = self
            .intake
            .accept(request, Some(raw), project_name, tenant, Some(charge))
            .await;
        self.intake.telemetry().request_finished(started.elapsed());
        match outcome {
            Outcome::Accepted { partial } => Ok(Response::new(ExportTraceServiceResponse {
                partial_success: with_cut_values(partial, cut_values),
            })),
            Outcome::Unavailable { message } => Err(Status::with_error_details(
                Code::Unavailable,
                message,
                ErrorDetails::with_retry_info(Some(Duration::from_secs(RETRY_AFTER_SECS))),
            )),
            Outcome::Forbidden { message } => Err(Status::permission_denied(message)),
        }
    }
}

/// Fixes up the statuses tonic produces before our service runs, and counts
/// and logs them (rate-limited):
/// - OUT_OF_RANGE "message length too large" → RESOURCE_EXHAUSTED naming our
///   setting, as grpc-go and the OTel Collector answer (our service never
///   returns OUT_OF_RANGE itself);
/// - INTERNAL "failed to decode Protobuf message" → INVALID_ARGUMENT, as the
///   OTLP specification asks for a request that does not decode;
/// - UNIMPLEMENTED (a method other than the traces, logs and metrics
///   `Export`, e.g. profiles) is counted as `unknown_path`.
pub fn limit_status<B>(
    telemetry: ReceiverTelemetry,
    limit: usize,
) -> impl Fn(http::Response<B>) -> http::Response<B> + Clone {
    move |mut response: http::Response<B>| {
        let headers = response.headers_mut();
        let status = headers.get("grpc-status").map(|v| v.as_bytes().to_vec());
        let message = headers
            .get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .map(percent_decode)
            .unwrap_or_default();
        match status.as_deref() {
            Some(b"11") => {
                let message = format!(
                    "message larger than the limit of {limit} bytes (receiver.grpc_max_message_bytes)"
                );
                telemetry.refused_request(Refusal::TooLarge, &message);
                set_status(headers, "8", &message);
            }
            Some(b"13") if message.starts_with("failed to decode Protobuf message") => {
                let message =
                    format!("the request is not a valid OTLP Export*ServiceRequest: {message}");
                telemetry.refused_request(Refusal::DecodeError, &message);
                set_status(headers, "3", &message);
            }
            Some(b"12") => telemetry.refused_request(
                Refusal::UnknownPath,
                "a gRPC method other than the OTLP TraceService, LogsService and MetricsService Export (profiles?): not served",
            ),
            _ => {}
        }
        response
    }
}

fn set_status(headers: &mut http::HeaderMap, code: &'static str, message: &str) {
    headers.insert("grpc-status", http::HeaderValue::from_static(code));
    let encoded = percent_encode(message);
    if let Ok(v) = http::HeaderValue::from_str(&encoded) {
        headers.insert("grpc-message", v);
    }
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2 spec).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

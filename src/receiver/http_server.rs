//! OTLP/HTTP receiver: `POST /v1/traces` (and `/v1/logs`, `/v1/metrics`,
//! see [`super::signals`]), protobuf or JSON, gzip/deflate/zstd.
//!
//! | Situation | Answer |
//! |---|---|
//! | accepted (maybe with invalid spans) | 200, `ExportTraceServiceResponse` in the request's encoding |
//! | method other than POST | 405, `Allow: POST` |
//! | content type other than protobuf/JSON, or unknown encoding | 415 |
//! | body over `receiver.max_request_bytes` (after decompression) | 413 |
//! | body that does not decompress or decode | 400, `google.rpc.Status` naming the problem |
//! | every destination full | 503, `Retry-After` |
//! | no destination takes the token's tenant | 403, `google.rpc.Status` PERMISSION_DENIED |

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router as HttpRouter;
use axum::body::Body;
use axum::extract::Request;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::auth::{Authenticator, Caller};
use super::decode::{self, Compression, DecodeError, Decoded, Encoding, OtlpRequest};
use super::metered::{Metered, OverBudget, over_budget_message};
use super::signals::{self, SignalRequest};
use super::{Intake, Outcome, RETRY_AFTER_SECS, cut_message, with_cut_values};
use crate::budget::{Charge, Part};
use crate::config::CorsSettings;
use crate::telemetry::ReceiverTelemetry;
use crate::telemetry::reason::{Refusal, ValueCut};

/// Bodies larger than this are decompressed and decoded on the blocking pool.
const INLINE_DECODE_BYTES: usize = 256 * 1024;

/// gRPC status codes used in `google.rpc.Status` bodies.
const CODE_INVALID_ARGUMENT: i32 = 3;
const CODE_PERMISSION_DENIED: i32 = 7;
const CODE_RESOURCE_EXHAUSTED: i32 = 8;
const CODE_UNAVAILABLE: i32 = 14;

#[derive(Clone)]
struct HttpState {
    intake: Intake,
    max_request_bytes: usize,
    /// A client gets this long to send its whole body, so a slow sender
    /// cannot hold a body buffer forever (`receiver.request_timeout`).
    body_read_timeout: Duration,
}

/// The HTTP receiver's routes.
pub fn routes(
    intake: Intake,
    max_request_bytes: usize,
    body_read_timeout: Duration,
    cors: Option<&CorsSettings>,
    auth: Authenticator,
) -> HttpRouter {
    let telemetry = intake.telemetry().clone();
    let state = HttpState {
        intake,
        max_request_bytes,
        body_read_timeout,
    };
    let router = HttpRouter::new()
        .route("/v1/traces", post(export).fallback(method_not_allowed))
        .route(
            "/v1/logs",
            post(export_signal::<ExportLogsServiceRequest>).fallback(method_not_allowed),
        )
        .route(
            "/v1/metrics",
            post(export_signal::<ExportMetricsServiceRequest>).fallback(method_not_allowed),
        )
        .fallback(unknown_path)
        .with_state(state)
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let auth = auth.clone();
                let telemetry = telemetry.clone();
                async move { authenticate(&auth, &telemetry, req, next).await }
            },
        ));
    match cors {
        Some(c) => router.layer(cors_layer(c)),
        None => router,
    }
}

fn cors_layer(c: &CorsSettings) -> CorsLayer {
    let origins = if c.allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            c.allowed_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    let mut headers = vec![header::CONTENT_TYPE, header::CONTENT_ENCODING];
    headers.extend(
        c.allowed_headers
            .iter()
            .filter_map(|h| header::HeaderName::from_bytes(h.as_bytes()).ok()),
    );
    let layer = CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([axum::http::Method::POST])
        .allow_headers(headers);
    match c.max_age {
        Some(age) => layer.max_age(age),
        None => layer,
    }
}

/// Refuses a request without a valid bearer token before its body is read.
async fn authenticate(
    auth: &Authenticator,
    telemetry: &ReceiverTelemetry,
    req: Request,
    next: Next,
) -> Response {
    if let Some(caller) = auth.caller(req.headers()) {
        let mut req = req;
        req.extensions_mut().insert(caller);
        return next.run(req).await;
    }
    telemetry.refused_request(
        Refusal::Unauthenticated,
        "missing or wrong Authorization: Bearer token",
    );
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "401 unauthorized: send Authorization: Bearer <token>\n",
    )
        .into_response()
}

/// Any path but `/v1/traces`: 404 naming the one path served, counted and
/// logged (an SDK exporting metrics or logs here is the usual cause).
async fn unknown_path(
    State(state): State<HttpState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    let path = uri.path();
    let hint = match path {
        "/v1/profiles" => {
            " (tracebridge does not take profiles: point that exporter elsewhere or turn it off)"
        }
        _ => "",
    };
    let message = format!(
        "{method} {path}: not served; OTLP goes to POST /v1/traces, /v1/logs or /v1/metrics{hint}"
    );
    state
        .intake
        .telemetry()
        .refused_request(Refusal::UnknownPath, &message);
    (StatusCode::NOT_FOUND, format!("404 not found: {message}\n")).into_response()
}

async fn method_not_allowed(State(state): State<HttpState>) -> Response {
    state.intake.telemetry().refused_request(
        Refusal::MethodNotAllowed,
        "only POST is allowed on /v1/traces",
    );
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "POST")],
        "405 method not allowed: send OTLP traces with POST /v1/traces\n",
    )
        .into_response()
}

async fn export(
    State(state): State<HttpState>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let tenant = caller.and_then(|Extension(c)| c.tenant);
    let response = handle(&state, &headers, body, tenant).await;
    state.intake.telemetry().request_finished(started.elapsed());
    response
}

async fn handle(
    state: &HttpState,
    headers: &HeaderMap,
    body: Body,
    tenant: Option<Arc<str>>,
) -> Response {
    let Read {
        decoded,
        encoding,
        charge,
    } = match read_request::<ExportTraceServiceRequest>(state, headers, body).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let project_name = header_str(headers, "projectname").map(str::to_string);
    let outcome = state
        .intake
        .accept(
            decoded.request,
            decoded.raw,
            project_name,
            tenant,
            Some(charge),
        )
        .await;
    match outcome {
        Outcome::Accepted { partial } => {
            let response = ExportTraceServiceResponse {
                partial_success: with_cut_values(partial, decoded.cut_values),
            };
            let body = match encoding {
                Encoding::Protobuf => response.encode_to_vec(),
                Encoding::Json => crate::pdata::json::encode_response(&response),
            };
            encoded(StatusCode::OK, encoding, body)
        }
        Outcome::Unavailable { message } => unavailable(encoding, &message),
        Outcome::Forbidden { message } => forbidden(encoding, &message),
    }
}

/// 403: no destination takes the caller's tenant (retrying cannot help).
fn forbidden(encoding: Encoding, message: &str) -> Response {
    status_body(
        StatusCode::FORBIDDEN,
        encoding,
        CODE_PERMISSION_DENIED,
        message,
    )
}

/// 503 with `Retry-After`: the client keeps the data and retries.
fn unavailable(encoding: Encoding, message: &str) -> Response {
    let mut r = status_body(
        StatusCode::SERVICE_UNAVAILABLE,
        encoding,
        CODE_UNAVAILABLE,
        message,
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    r
}

fn too_large(state: &HttpState, encoding: Encoding, limit: usize) -> Response {
    let detail = DecodeError::TooLarge { limit }.to_string();
    state
        .intake
        .telemetry()
        .refused_request(Refusal::TooLarge, &detail);
    status_body(
        StatusCode::PAYLOAD_TOO_LARGE,
        encoding,
        CODE_RESOURCE_EXHAUSTED,
        &detail,
    )
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn plain(status: StatusCode, detail: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{detail}\n"),
    )
        .into_response()
}

fn encoded(status: StatusCode, encoding: Encoding, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

/// Reads, decompresses and decodes one request body of any signal under
/// the memory budget, or answers the refusal. Also returns the request's
/// protobuf encoding (see [`decode::decode_body_keeping`]); values nested
/// too deep were cut and are counted.
async fn read_request<T: OtlpRequest + Send + 'static>(
    state: &HttpState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Read<T>, Response> {
    let telemetry = state.intake.telemetry();
    let content_type = header_str(headers, header::CONTENT_TYPE).unwrap_or("");
    let Some(encoding) = Encoding::from_content_type(content_type) else {
        let detail = format!(
            "unsupported content type {content_type:?}; use application/x-protobuf or application/json"
        );
        telemetry.refused_request(Refusal::UnsupportedMediaType, &detail);
        return Err(plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, &detail));
    };
    let content_encoding = header_str(headers, header::CONTENT_ENCODING);
    let Some(compression) = Compression::from_content_encoding(content_encoding) else {
        let detail = format!(
            "unsupported Content-Encoding {:?}; use gzip, deflate, zstd or none",
            content_encoding.unwrap_or("")
        );
        telemetry.refused_request(Refusal::UnsupportedEncoding, &detail);
        return Err(plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, &detail));
    };
    let limit = state.max_request_bytes;
    let declared =
        header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large(state, encoding, limit));
    }
    if let Some(message) = state.intake.refusal_before_reading() {
        return Err(unavailable(encoding, &message));
    }
    let budget = state.intake.budget().clone();
    let room = budget.limit().saturating_sub(budget.used());
    // A body larger than the room is read only when nothing else is held
    // (see `MemoryBudget`): the client retries until then.
    if declared.is_some_and(|len| len > room && budget.used() > 0) {
        return Err(over_budget(state, encoding));
    }
    let mut charge = budget.charge(Part::Requests, 0);
    let metered = Metered::new(body, &mut charge, budget, http_refusal, None);
    let timeout = state.body_read_timeout;
    let read = tokio::time::timeout(timeout, collect(Limited::new(metered, limit), declared)).await;
    let Ok(read) = read else {
        let detail =
            format!("request body not received within {timeout:?} (receiver.request_timeout)");
        telemetry.refused_request(Refusal::ReadTimeout, &detail);
        return Err(status_body(
            StatusCode::REQUEST_TIMEOUT,
            encoding,
            CODE_INVALID_ARGUMENT,
            &detail,
        ));
    };
    let raw = match read {
        Ok(bytes) => bytes,
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(too_large(state, encoding, limit));
        }
        Err(e) if e.downcast_ref::<OverBudget>().is_some() => {
            return Err(over_budget(state, encoding));
        }
        Err(e) => {
            let detail = format!("cannot read request body: {e}");
            telemetry.refused_request(Refusal::ReadError, &detail);
            return Err(status_body(
                StatusCode::BAD_REQUEST,
                encoding,
                CODE_INVALID_ARGUMENT,
                &detail,
            ));
        }
    };
    let decoded = if raw.len() > INLINE_DECODE_BYTES {
        tokio::task::spawn_blocking(move || {
            decode::decode_body_keeping(raw, compression, encoding, limit, &mut charge)
                .map(|r| (r, charge))
        })
        .await
        .unwrap_or_else(|e| {
            Err(DecodeError::Decode {
                encoding: "OTLP",
                detail: format!("decoder task failed: {e}"),
            })
        })
    } else {
        decode::decode_body_keeping(raw, compression, encoding, limit, &mut charge)
            .map(|r| (r, charge))
    };
    let (decoded, charge) = match decoded {
        Ok(r) => r,
        Err(DecodeError::TooLarge { limit }) => return Err(too_large(state, encoding, limit)),
        Err(DecodeError::OverBudget) => return Err(over_budget(state, encoding)),
        Err(e) => {
            let detail = e.to_string();
            telemetry.refused_request(Refusal::DecodeError, &detail);
            return Err(status_body(
                StatusCode::BAD_REQUEST,
                encoding,
                CODE_INVALID_ARGUMENT,
                &detail,
            ));
        }
    };
    telemetry.cut_values(
        ValueCut::TooDeep,
        decoded.cut_values,
        &cut_message(decoded.cut_values),
    );
    Ok(Read {
        decoded,
        encoding,
        charge,
    })
}

/// The whole body: a body of one frame as it came (no copy), one of
/// several copied into a recycled buffer ([`crate::buffers`]) of the
/// declared length (already checked against the limit and the budget).
async fn collect<B: http_body::Body<Data = Bytes>>(
    body: B,
    declared: Option<usize>,
) -> Result<Bytes, B::Error> {
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut joined: Option<Vec<u8>> = None;
    while let Some(frame) = body.frame().await {
        // Trailers carry no body.
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        if let Some(buf) = joined.as_mut() {
            buf.extend_from_slice(&data);
        } else if let Some(head) = first.take() {
            let so_far = head.len() + data.len();
            let expected = declared.unwrap_or(0).min(crate::buffers::MAX_SIZE);
            let mut buf = crate::buffers::take(expected.max(so_far));
            buf.extend_from_slice(&head);
            buf.extend_from_slice(&data);
            joined = Some(buf);
        } else {
            first = Some(data);
        }
    }
    Ok(match (joined, first) {
        (Some(buf), _) => crate::buffers::into_bytes(buf),
        (None, Some(head)) => head,
        (None, None) => Bytes::new(),
    })
}

/// A request read and decoded by [`read_request`].
struct Read<T> {
    decoded: Decoded<T>,
    encoding: Encoding,
    /// What it holds of the memory budget.
    charge: Charge,
}

/// 503 with `Retry-After` when `limits.memory` is in use, counted.
fn over_budget(state: &HttpState, encoding: Encoding) -> Response {
    let message = over_budget_message(state.intake.budget());
    state
        .intake
        .telemetry()
        .refused_request(Refusal::MemoryBudget, &message);
    unavailable(encoding, &message)
}

fn http_refusal(refusal: OverBudget) -> tonic::codegen::StdError {
    Box::new(refusal)
}

/// `POST /v1/logs` and `/v1/metrics`: decoded, counted and acknowledged
/// (see [`super::signals`]).
async fn export_signal<T: SignalRequest + Send + 'static>(
    State(state): State<HttpState>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let response = match read_request::<T>(&state, &headers, body).await {
        Ok(Read {
            decoded, encoding, ..
        }) => {
            let project_name = header_str(&headers, "projectname").map(str::to_string);
            let tenant = caller.and_then(|Extension(c)| c.tenant);
            match signals::accept(&state.intake, decoded.request, project_name, tenant).await {
                Outcome::Accepted { .. } => {
                    // An empty Export*ServiceResponse: no partial success to report.
                    let body = match encoding {
                        Encoding::Protobuf => Vec::new(),
                        Encoding::Json => b"{}".to_vec(),
                    };
                    encoded(StatusCode::OK, encoding, body)
                }
                Outcome::Unavailable { message } => unavailable(encoding, &message),
                Outcome::Forbidden { message } => forbidden(encoding, &message),
            }
        }
        Err(refused) => refused,
    };
    state.intake.telemetry().request_finished(started.elapsed());
    response
}

/// A `google.rpc.Status` body, as OTLP/HTTP prescribes for errors.
fn status_body(status: StatusCode, encoding: Encoding, code: i32, message: &str) -> Response {
    let body = match encoding {
        Encoding::Protobuf => tonic_types::Status {
            code,
            message: message.to_string(),
            details: Vec::new(),
        }
        .encode_to_vec(),
        Encoding::Json => {
            serde_json::to_vec(&serde_json::json!({"code": code, "message": message}))
                .unwrap_or_default()
        }
    };
    encoded(status, encoding, body)
}

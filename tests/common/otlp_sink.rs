//! An in-process OTLP sink (gRPC and HTTP; traces, logs and metrics) that
//! records what it receives and can answer with scripted failures.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tonic::codec::CompressionEncoding;

/// What to answer instead of accepting.
#[derive(Clone, Debug)]
pub enum Reply {
    Http {
        status: u16,
        headers: Vec<(&'static str, String)>,
    },
    Grpc(tonic::Code, Option<Duration>),
    PartialSuccess {
        rejected: i64,
        message: String,
    },
}

#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub transport: &'static str,
    pub headers: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    /// The body as it came off the wire (after transport-level framing).
    pub raw: Vec<u8>,
    /// A traces request (`/v1/traces`, `TraceService`).
    pub request: Option<ExportTraceServiceRequest>,
    /// A logs request (`/v1/logs`, `LogsService`).
    pub logs: Option<ExportLogsServiceRequest>,
    /// A metrics request (`/v1/metrics`, `MetricsService`).
    pub metrics: Option<ExportMetricsServiceRequest>,
    pub accepted: bool,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn span_count(&self) -> usize {
        self.request
            .as_ref()
            .map(|r| {
                r.resource_spans
                    .iter()
                    .flat_map(|rs| &rs.scope_spans)
                    .map(|s| s.spans.len())
                    .sum()
            })
            .unwrap_or(0)
    }
    pub fn log_record_count(&self) -> usize {
        self.logs.as_ref().map_or(0, |r| {
            r.resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .map(|s| s.log_records.len())
                .sum()
        })
    }
    pub fn metric_count(&self) -> usize {
        self.metrics.as_ref().map_or(0, |r| {
            r.resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .map(|s| s.metrics.len())
                .sum()
        })
    }
}

/// What one request carried, decoded.
#[derive(Default)]
struct Decoded {
    traces: Option<ExportTraceServiceRequest>,
    logs: Option<ExportLogsServiceRequest>,
    metrics: Option<ExportMetricsServiceRequest>,
}

#[derive(Default)]
pub struct SinkState {
    pub script: VecDeque<Reply>,
    pub received: Vec<Received>,
}

#[derive(Clone)]
pub struct OtlpSink {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub state: Arc<Mutex<SinkState>>,
}

struct Grpc(Arc<Mutex<SinkState>>);

/// A scripted gRPC answer, given how to make the signal's reply.
fn grpc_answer<R: Default>(
    reply: Option<Reply>,
    partial: impl FnOnce(i64, String) -> R,
) -> Result<tonic::Response<R>, tonic::Status> {
    match reply {
        Some(Reply::Grpc(code, retry)) => Err(match retry {
            Some(d) => {
                use tonic_types::{ErrorDetails, StatusExt};
                tonic::Status::with_error_details(
                    code,
                    "scripted",
                    ErrorDetails::with_retry_info(Some(d)),
                )
            }
            None => tonic::Status::new(code, "scripted"),
        }),
        Some(Reply::PartialSuccess { rejected, message }) => {
            Ok(tonic::Response::new(partial(rejected, message)))
        }
        _ => Ok(tonic::Response::new(R::default())),
    }
}

impl Grpc {
    /// Records one call; the scripted reply, if any.
    fn record<T: prost::Message>(
        &self,
        request: tonic::Request<T>,
        decoded: impl FnOnce(T) -> Decoded,
    ) -> Option<Reply> {
        let headers = request
            .metadata()
            .iter()
            .filter_map(|kv| match kv {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => Some((
                    k.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )),
                _ => None,
            })
            .collect::<Vec<_>>();
        let encoding = headers
            .iter()
            .find(|(k, _)| k == "grpc-encoding")
            .map(|(_, v)| v.clone());
        let req = request.into_inner();
        let raw = req.encode_to_vec();
        let d = decoded(req);
        let mut s = self.0.lock().unwrap();
        let reply = s.script.pop_front();
        let accepted = !matches!(reply, Some(Reply::Grpc(..)) | Some(Reply::Http { .. }));
        s.received.push(Received {
            at: Instant::now(),
            transport: "grpc",
            headers,
            content_type: Some("application/grpc".into()),
            content_encoding: encoding,
            raw,
            request: d.traces,
            logs: d.logs,
            metrics: d.metrics,
            accepted,
        });
        reply
    }
}

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let reply = self.record(request, |r| Decoded {
            traces: Some(r),
            ..Default::default()
        });
        grpc_answer(reply, |rejected_spans, error_message| {
            ExportTraceServiceResponse {
                partial_success: Some(ExportTracePartialSuccess {
                    rejected_spans,
                    error_message,
                }),
            }
        })
    }
}

#[tonic::async_trait]
impl LogsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let reply = self.record(request, |r| Decoded {
            logs: Some(r),
            ..Default::default()
        });
        grpc_answer(reply, |rejected_log_records, error_message| {
            ExportLogsServiceResponse {
                partial_success: Some(ExportLogsPartialSuccess {
                    rejected_log_records,
                    error_message,
                }),
            }
        })
    }
}

#[tonic::async_trait]
impl MetricsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let reply = self.record(request, |r| Decoded {
            metrics: Some(r),
            ..Default::default()
        });
        grpc_answer(reply, |rejected_data_points, error_message| {
            ExportMetricsServiceResponse {
                partial_success: Some(ExportMetricsPartialSuccess {
                    rejected_data_points,
                    error_message,
                }),
            }
        })
    }
}

/// Decodes a body of the request type `T`.
fn decode_as<T: prost::Message + Default + serde::de::DeserializeOwned>(
    content_type: Option<&str>,
    plain: &[u8],
) -> Option<T> {
    match content_type {
        Some("application/x-protobuf") => T::decode(plain).ok(),
        Some("application/json") => serde_json::from_slice(plain).ok(),
        _ => None,
    }
}

async fn http_export(
    State(state): State<Arc<Mutex<SinkState>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = h("content-type");
    let content_encoding = h("content-encoding");
    let plain = if content_encoding.as_deref() == Some("gzip") {
        let mut out = Vec::new();
        let _ = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out);
        out
    } else {
        body.to_vec()
    };
    let ct = content_type.as_deref();
    let path = uri.path();
    let decoded = if path.ends_with("/logs") {
        Decoded {
            logs: decode_as(ct, &plain),
            ..Default::default()
        }
    } else if path.ends_with("/metrics") {
        Decoded {
            metrics: decode_as(ct, &plain),
            ..Default::default()
        }
    } else {
        Decoded {
            traces: decode_as(ct, &plain),
            ..Default::default()
        }
    };
    let mut s = state.lock().unwrap();
    let reply = s.script.pop_front();
    let accepted = !matches!(reply, Some(Reply::Http { .. }) | Some(Reply::Grpc(..)));
    s.received.push(Received {
        at: Instant::now(),
        transport: "http",
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        content_type,
        content_encoding,
        raw: body.to_vec(),
        request: decoded.traces,
        logs: decoded.logs,
        metrics: decoded.metrics,
        accepted,
    });
    match reply {
        Some(Reply::Http { status, headers }) => {
            let mut r = (StatusCode::from_u16(status).unwrap(), "scripted").into_response();
            for (k, v) in headers {
                r.headers_mut().insert(k, v.parse().unwrap());
            }
            r
        }
        Some(Reply::PartialSuccess { rejected, message }) => {
            // The three replies share their wire shape: partial_success (1)
            // holding the rejected count (1) and the message (2).
            let body = ExportTraceServiceResponse {
                partial_success: Some(ExportTracePartialSuccess {
                    rejected_spans: rejected,
                    error_message: message,
                }),
            };
            (
                [("content-type", "application/x-protobuf")],
                body.encode_to_vec(),
            )
                .into_response()
        }
        _ => (
            [("content-type", "application/x-protobuf")],
            ExportTraceServiceResponse::default().encode_to_vec(),
        )
            .into_response(),
    }
}

impl OtlpSink {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(SinkState::default()));
        let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_addr = grpc_listener.local_addr().unwrap();
        let svc = TraceServiceServer::new(Grpc(state.clone()))
            .accept_compressed(CompressionEncoding::Gzip);
        let logs = LogsServiceServer::new(Grpc(state.clone()))
            .accept_compressed(CompressionEncoding::Gzip);
        let metrics = MetricsServiceServer::new(Grpc(state.clone()))
            .accept_compressed(CompressionEncoding::Gzip);
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .add_service(logs)
                .add_service(metrics)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(grpc_listener))
                .await;
        });
        let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_addr = http_listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(http_export))
            .route("/custom/traces", axum::routing::post(http_export))
            .route("/v1/logs", axum::routing::post(http_export))
            .route("/v1/metrics", axum::routing::post(http_export))
            .route("/custom/logs", axum::routing::post(http_export))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(http_listener, app).await;
        });
        Self {
            grpc_addr,
            http_addr,
            state,
        }
    }

    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn accepted_spans(&self) -> usize {
        self.received()
            .iter()
            .filter(|r| r.accepted)
            .map(Received::span_count)
            .sum()
    }

    pub fn accepted_log_records(&self) -> usize {
        self.received()
            .iter()
            .filter(|r| r.accepted)
            .map(Received::log_record_count)
            .sum()
    }

    pub fn accepted_metrics(&self) -> usize {
        self.received()
            .iter()
            .filter(|r| r.accepted)
            .map(Received::metric_count)
            .sum()
    }
}

//! Sending OTLP: gRPC (`TraceService/Export`, and `LogsService/Export`,
//! `MetricsService/Export` for the signals the destination forwards) or
//! HTTP (`POST …/v1/traces`, `/v1/logs`, `/v1/metrics`, protobuf or JSON),
//! gzip by default, retrying per the OTLP specification:
//!
//! | Answer | Meaning |
//! |---|---|
//! | HTTP 429, 502, 503, 504; gRPC UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, DATA_LOSS, CANCELLED | retry, honouring `Retry-After` / `RetryInfo` |
//! | gRPC RESOURCE_EXHAUSTED | retry only when it carries `RetryInfo` |
//! | HTTP 400, 413; gRPC INVALID_ARGUMENT | the batch is bisected to isolate the bad spans |
//! | anything else | fails at once, with a hint for auth and path errors |
//! | `partial_success` | delivered; the rejected spans (log records, data points) are counted and logged |
//!
//! Every error names the setting at fault (`destinations.<name>.endpoint`,
//! `traces_endpoint`, `headers`, `protocol`; Arize's `api_key`, `space_id`),
//! where it was set, and the likely fix.

use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::Code;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;

use super::OtlpItem;
use super::config::{OtlpProtocol, OtlpTarget};
use super::tls_client::{self as tls, TlsError};
use super::{grpc_call, request};
use crate::config::secret::mask_url;
use crate::destination::sources::ErrorContext;
use crate::export::http_client::{self, rejected, rejected as rejected_fix, retry_hint};
use crate::export::{Delivered, RequestSender, SendError};
use crate::telemetry::reason::{SendFailure, Signal};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("invalid gRPC endpoint {url}: {detail}")]
    Endpoint { url: String, detail: String },
    #[error("header {0:?} cannot be sent as gRPC metadata")]
    Metadata(String),
}

/// One encoded batch of one signal, ready to send as many times as needed.
#[derive(Debug)]
pub enum OtlpRequest {
    /// The gRPC message frame (flag, length, possibly gzipped message).
    Grpc(Signal, Bytes),
    Http(Signal, Bytes),
}

enum Transport {
    Grpc {
        channel: Channel,
        /// The configured headers, sent as gRPC metadata.
        metadata: HeaderMap,
        gzip: bool,
        url: String,
    },
    Http {
        http: reqwest::Client,
        urls: HttpUrls,
        json: bool,
        gzip: bool,
    },
}

/// Where each signal goes over HTTP.
struct HttpUrls {
    traces: String,
    logs: Option<String>,
    metrics: Option<String>,
}

impl HttpUrls {
    fn of(&self, signal: Signal) -> Option<&str> {
        match signal {
            Signal::Traces => Some(&self.traces),
            Signal::Logs => self.logs.as_deref(),
            Signal::Metrics => self.metrics.as_deref(),
        }
    }
}

pub struct OtlpClient {
    transport: Transport,
    context: ErrorContext,
    /// The export URL, for error messages.
    url: String,
    fixes: Fixes,
}

/// The likely fix per refusal, naming the destination's settings.
#[derive(Debug, Clone, Default)]
pub struct Fixes {
    pub unauthorized: String,
    pub wrong_url: String,
    pub unsupported_media_type: String,
    pub no_service: String,
}

impl Fixes {
    fn new(target: &OtlpTarget, c: &ErrorContext) -> Self {
        let name = &c.destination;
        let url = mask_url(&target.url);
        let credentials: Vec<String> = ["headers", "api_key", "space_id"]
            .into_iter()
            .filter(|k| c.has(k))
            .map(|k| c.setting(k))
            .collect();
        let unauthorized = if !credentials.is_empty() {
            format!(
                "the credentials were refused: check {}",
                credentials.join(" and ")
            )
        } else if !target.headers.is_empty() {
            format!("the credentials were refused: check destinations.{name}.headers")
        } else {
            format!(
                "{url} wants credentials and none are set: add destinations.{name}.headers = {{ authorization = \"Bearer …\" }} (or the header its documentation names)"
            )
        };
        let url_setting = c.otlp_url_setting();
        Self {
            unauthorized,
            wrong_url: format!(
                "the server does not serve {url}, which comes from {url_setting}: OTLP/HTTP traces go to <base>/v1/traces; set endpoint to the base URL, or traces_endpoint to the full URL"
            ),
            unsupported_media_type: format!(
                "the endpoint refuses {}: set destinations.{name}.protocol = \"http/protobuf\" (Phoenix accepts only protobuf)",
                target.protocol.as_str()
            ),
            no_service: format!(
                "{url} ({url_setting}) has no OTLP trace service: check the address, and destinations.{name}.protocol (OTLP/gRPC is usually on port 4317, OTLP/HTTP on 4318)"
            ),
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

impl OtlpClient {
    pub fn new(
        target: &OtlpTarget,
        timeout: Duration,
        context: ErrorContext,
    ) -> Result<Self, ClientError> {
        let transport = match target.protocol {
            OtlpProtocol::Grpc => Self::grpc(target, timeout)?,
            OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson => {
                let mut headers = HeaderMap::new();
                for (k, v) in &target.headers {
                    let (Ok(name), Ok(mut value)) = (
                        HeaderName::from_bytes(k.as_bytes()),
                        HeaderValue::from_str(v.expose()),
                    ) else {
                        continue; // validated at load
                    };
                    value.set_sensitive(true);
                    headers.insert(name, value);
                }
                let http = reqwest::Client::builder()
                    .use_preconfigured_tls((*tls::client_config(&target.tls, false)?).clone())
                    .default_headers(headers)
                    .timeout(timeout)
                    .connect_timeout(Duration::from_secs(10).min(timeout))
                    .user_agent(concat!("tracebridge/", env!("CARGO_PKG_VERSION")))
                    .build()?;
                Transport::Http {
                    http,
                    urls: HttpUrls {
                        traces: target.url.clone(),
                        logs: target.logs_url.clone(),
                        metrics: target.metrics_url.clone(),
                    },
                    json: target.protocol == OtlpProtocol::HttpJson,
                    gzip: target.gzip,
                }
            }
        };
        Ok(Self {
            transport,
            fixes: Fixes::new(target, &context),
            url: target.url.clone(),
            context,
        })
    }

    fn grpc(target: &OtlpTarget, timeout: Duration) -> Result<Transport, ClientError> {
        let endpoint_error = |detail: String| ClientError::Endpoint {
            url: mask_url(&target.url),
            detail,
        };
        let tls = tls::client_config(&target.tls, true)?;
        let connector = tower::service_fn(move |uri: http::Uri| {
            let tls = tls.clone();
            async move {
                let host = uri
                    .host()
                    .unwrap_or("localhost")
                    .trim_matches(['[', ']'])
                    .to_string();
                let https = uri.scheme_str() == Some("https");
                let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
                let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
                tcp.set_nodelay(true)?;
                let io: Box<dyn Io> = if https {
                    let name = rustls::pki_types::ServerName::try_from(host)
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                    Box::new(
                        tokio_rustls::TlsConnector::from(tls)
                            .connect(name, tcp)
                            .await?,
                    )
                } else {
                    Box::new(tcp)
                };
                Ok::<_, std::io::Error>(TokioIo::new(io))
            }
        });
        let channel = Endpoint::from_shared(target.url.clone())
            .map_err(|e| endpoint_error(e.to_string()))?
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .connect_with_connector_lazy(connector);
        let mut metadata = HeaderMap::new();
        for (k, v) in &target.headers {
            let key = MetadataKey::<tonic::metadata::Ascii>::from_bytes(k.as_bytes())
                .map_err(|_| ClientError::Metadata(k.clone()))?;
            let value = MetadataValue::try_from(v.expose())
                .map_err(|_| ClientError::Metadata(k.clone()))?;
            let (Ok(name), Ok(mut value)) = (
                HeaderName::from_bytes(key.as_str().as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            ) else {
                return Err(ClientError::Metadata(k.clone()));
            };
            value.set_sensitive(true);
            metadata.insert(name, value);
        }
        Ok(Transport::Grpc {
            channel,
            metadata,
            gzip: target.gzip,
            url: target.url.clone(),
        })
    }
}

impl RequestSender for OtlpClient {
    type Item = OtlpItem;
    type Request = OtlpRequest;

    fn build(&self, items: &[OtlpItem]) -> Result<OtlpRequest, SendError> {
        let signal = items.first().map_or(Signal::Traces, |i| i.signal);
        match &self.transport {
            Transport::Grpc { gzip, .. } => Ok(OtlpRequest::Grpc(
                signal,
                grpc_call::frame(&request::encode(items), *gzip)?,
            )),
            Transport::Http { json, gzip, .. } => {
                let body = if *json {
                    request::json(items).map_err(|e| SendError::Rejected {
                        reason: SendFailure::EncodeFailed,
                        detail: format!("cannot encode OTLP/JSON: {e}"),
                        isolate: true,
                    })?
                } else {
                    request::encode(items)
                };
                let body = if *gzip {
                    http_client::gzip([body.as_slice()], body.len())?
                } else {
                    body
                };
                Ok(OtlpRequest::Http(signal, Bytes::from(body)))
            }
        }
    }

    async fn send(&self, request: &OtlpRequest) -> Result<Delivered, SendError> {
        match (&self.transport, request) {
            (
                Transport::Grpc {
                    channel,
                    metadata,
                    gzip,
                    url,
                },
                OtlpRequest::Grpc(signal, framed),
            ) => {
                let framed = framed.clone();
                let answer = match signal {
                    Signal::Traces => grpc_call::export::<ExportTraceServiceResponse>(
                        channel, metadata, *gzip, *signal, framed,
                    )
                    .await
                    .map(Reply::delivered),
                    Signal::Logs => grpc_call::export::<ExportLogsServiceResponse>(
                        channel, metadata, *gzip, *signal, framed,
                    )
                    .await
                    .map(Reply::delivered),
                    Signal::Metrics => grpc_call::export::<ExportMetricsServiceResponse>(
                        channel, metadata, *gzip, *signal, framed,
                    )
                    .await
                    .map(Reply::delivered),
                };
                answer.map_err(|e| {
                    let what = match signal {
                        Signal::Traces => format!("gRPC export to {}", mask_url(url)),
                        other => format!("gRPC {other} export to {}", mask_url(url)),
                    };
                    let e = self.grpc_error(e, &what);
                    self.for_signal(*signal, e)
                })
            }
            (
                Transport::Http {
                    http,
                    urls,
                    json,
                    gzip,
                },
                OtlpRequest::Http(signal, body),
            ) => {
                let Some(url) = urls.of(*signal) else {
                    return Err(SendError::Rejected {
                        reason: SendFailure::EncodeFailed,
                        detail: format!("no URL for {signal}"),
                        isolate: false,
                    });
                };
                let mut req = http
                    .post(url)
                    .header(
                        CONTENT_TYPE,
                        if *json {
                            "application/json"
                        } else {
                            "application/x-protobuf"
                        },
                    )
                    .body(body.clone());
                if *gzip {
                    req = req.header(CONTENT_ENCODING, "gzip");
                }
                let response = req.send().await.map_err(|e| {
                    self.context.connection_failed(
                        &format!("POST {}", mask_url(url)),
                        url,
                        &self.context.otlp_url_setting(),
                        &e,
                    )
                })?;
                let status = response.status();
                let hint = retry_hint(response.headers());
                let reply_json = response
                    .headers()
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/json"));
                let bytes = response.bytes().await.unwrap_or_default();
                if status.is_success() {
                    return Ok(match signal {
                        Signal::Traces => {
                            http_reply::<ExportTraceServiceResponse>(bytes, reply_json)
                        }
                        Signal::Logs => http_reply::<ExportLogsServiceResponse>(bytes, reply_json),
                        Signal::Metrics => {
                            http_reply::<ExportMetricsServiceResponse>(bytes, reply_json)
                        }
                    });
                }
                let body = String::from_utf8_lossy(&bytes);
                Err(self.for_signal(
                    *signal,
                    classify_http(
                        status.as_u16(),
                        hint,
                        &format!("POST {}", mask_url(url)),
                        &body,
                        &self.fixes,
                    ),
                ))
            }
            _ => Err(SendError::Rejected {
                reason: SendFailure::EncodeFailed,
                detail: "request built for another transport".into(),
                isolate: false,
            }),
        }
    }
}

impl OtlpClient {
    /// A backend without the service or path of a logs or metrics batch
    /// (Phoenix and Arize take traces only): the fix is the `signals` list.
    fn for_signal(&self, signal: Signal, mut e: SendError) -> SendError {
        if let SendError::Rejected {
            reason: SendFailure::WrongUrl,
            detail,
            ..
        } = &mut e
        {
            if signal != Signal::Traces {
                detail.push_str(&format!(
                    " (a {signal} batch: if this backend takes no OTLP {signal}, remove \"{signal}\" from destinations.{}.signals)",
                    self.context.destination
                ));
            }
        }
        e
    }

    /// A gRPC failure: a status classified with this destination's fixes;
    /// a call that got no answer explained, naming the URL's setting.
    fn grpc_error(&self, e: grpc_call::CallError, what: &str) -> SendError {
        let detail = match e {
            grpc_call::CallError::Status(status) => return classify_grpc(&status, &self.fixes),
            grpc_call::CallError::Transport(ref detail) => detail.clone(),
        };
        let mut err = e.into_send_error(what);
        if !self.context.explains_transport() {
            return err;
        }
        if let SendError::Retryable { detail: d, .. } = &mut err {
            *d = format!(
                "{what}: {}; the URL is {}",
                crate::destination::probe::explain_connection(&detail, &mask_url(&self.url)),
                self.context.otlp_url_setting()
            );
        }
        err
    }
}

/// An `Export…ServiceResponse`, read for its `partial_success`.
trait Reply: prost::Message + Default + serde::de::DeserializeOwned {
    /// (items rejected, message), when the reply says so.
    fn partial(self) -> Option<(i64, String)>;

    fn delivered(self) -> Delivered {
        match self.partial() {
            Some((rejected, message)) if rejected > 0 || !message.is_empty() => Delivered {
                rejected: rejected.max(0) as u64,
                message,
            },
            _ => Delivered::default(),
        }
    }
}

impl Reply for ExportTraceServiceResponse {
    fn partial(self) -> Option<(i64, String)> {
        self.partial_success
            .map(|p| (p.rejected_spans, p.error_message))
    }
}

impl Reply for ExportLogsServiceResponse {
    fn partial(self) -> Option<(i64, String)> {
        self.partial_success
            .map(|p| (p.rejected_log_records, p.error_message))
    }
}

impl Reply for ExportMetricsServiceResponse {
    fn partial(self) -> Option<(i64, String)> {
        self.partial_success
            .map(|p| (p.rejected_data_points, p.error_message))
    }
}

/// A successful HTTP answer's body: a reply that cannot be read is a plain
/// success (the items were accepted).
fn http_reply<R: Reply>(bytes: Bytes, json: bool) -> Delivered {
    let reply = if json {
        serde_json::from_slice::<R>(&bytes).ok()
    } else {
        R::decode(bytes).ok()
    };
    reply.map(Reply::delivered).unwrap_or_default()
}

/// HTTP answers, per the OTLP specification's retryable codes.
pub fn classify_http(
    status: u16,
    hint: Option<Duration>,
    what: &str,
    body: &str,
    fixes: &Fixes,
) -> SendError {
    let body: String = body.chars().take(300).collect();
    let detail = format!("{what} answered {status}: {body}");
    let rejected = |reason, isolate, fix: &str| rejected(reason, isolate, &detail, fix);
    match status {
        429 => SendError::Retryable {
            reason: SendFailure::Throttled,
            detail,
            retry_after: hint,
        },
        502..=504 => SendError::Retryable {
            reason: SendFailure::Unavailable,
            detail,
            retry_after: hint,
        },
        400 | 413 => rejected(SendFailure::Rejected, true, ""),
        401 | 403 => rejected(SendFailure::Unauthorized, false, &fixes.unauthorized),
        404 | 405 => rejected(SendFailure::WrongUrl, false, &fixes.wrong_url),
        415 => rejected(
            SendFailure::UnsupportedMediaType,
            false,
            &fixes.unsupported_media_type,
        ),
        _ => rejected(SendFailure::Rejected, false, ""),
    }
}

/// gRPC answers, per the OTLP specification.
pub fn classify_grpc(status: &tonic::Status, fixes: &Fixes) -> SendError {
    let detail = format!("gRPC {:?}: {}", status.code(), status.message());
    let retry_info = status.get_details_retry_info().and_then(|r| r.retry_delay);
    let retryable = |reason| SendError::Retryable {
        reason,
        detail: detail.clone(),
        retry_after: retry_info,
    };
    let rejected = |reason, isolate| SendError::Rejected {
        reason,
        detail: detail.clone(),
        isolate,
    };
    let rejected_with = |reason, fix: &str| rejected_fix(reason, false, &detail, fix);
    match status.code() {
        Code::Unavailable | Code::Cancelled | Code::Aborted | Code::OutOfRange | Code::DataLoss => {
            retryable(SendFailure::Unavailable)
        }
        Code::DeadlineExceeded => retryable(SendFailure::Timeout),
        Code::ResourceExhausted if retry_info.is_some() => retryable(SendFailure::Throttled),
        Code::ResourceExhausted => rejected(SendFailure::ResourceExhausted, false),
        Code::InvalidArgument => rejected(SendFailure::Rejected, true),
        Code::Unauthenticated | Code::PermissionDenied => {
            rejected_with(SendFailure::Unauthorized, &fixes.unauthorized)
        }
        Code::Unimplemented | Code::NotFound => {
            rejected_with(SendFailure::WrongUrl, &fixes.no_service)
        }
        _ => rejected(SendFailure::Rejected, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::ErrorDetails;

    #[test]
    fn http_codes_follow_the_otlp_spec() {
        for code in [429, 502, 503, 504] {
            assert!(
                matches!(
                    classify_http(code, None, "x", "", &Fixes::default()),
                    SendError::Retryable { .. }
                ),
                "{code}"
            );
        }
        for code in [500, 501, 401, 404, 415] {
            assert!(
                matches!(
                    classify_http(code, None, "x", "", &Fixes::default()),
                    SendError::Rejected { isolate: false, .. }
                ),
                "{code}"
            );
        }
        assert!(matches!(
            classify_http(400, None, "x", "", &Fixes::default()),
            SendError::Rejected { isolate: true, .. }
        ));
    }

    #[test]
    fn grpc_codes_follow_the_otlp_spec() {
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::DataLoss,
            Code::Cancelled,
        ] {
            assert!(
                matches!(
                    classify_grpc(&tonic::Status::new(code, "x"), &Fixes::default()),
                    SendError::Retryable { .. }
                ),
                "{code:?}"
            );
        }
        let plain = tonic::Status::resource_exhausted("full");
        assert!(matches!(
            classify_grpc(&plain, &Fixes::default()),
            SendError::Rejected { .. }
        ));
        let with_info = tonic::Status::with_error_details(
            Code::ResourceExhausted,
            "full",
            ErrorDetails::with_retry_info(Some(Duration::from_secs(3))),
        );
        match classify_grpc(&with_info, &Fixes::default()) {
            SendError::Retryable { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(3)))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify_grpc(&tonic::Status::invalid_argument("x"), &Fixes::default()),
            SendError::Rejected { isolate: true, .. }
        ));
        assert!(matches!(
            classify_grpc(&tonic::Status::unauthenticated("x"), &Fixes::default()),
            SendError::Rejected { isolate: false, .. }
        ));
    }
}

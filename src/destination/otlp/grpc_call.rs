//! One unary `TraceService/Export` (or `LogsService/Export`,
//! `MetricsService/Export`) call with a body that is already
//! encoded (and compressed): the batch is framed once, when it is built,
//! and every attempt sends the same bytes. tonic's generated client would
//! encode the request again on each attempt and compress it at a fixed
//! level; its `Channel` (connection pool, HTTP/2, TLS connector, timeout)
//! is kept, and the status is read as tonic reads it.

use base64::Engine as _;
use bytes::{Buf, Bytes};
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue, TE};
use http_body_util::{BodyExt as _, Full};
use prost::Message;
use tonic::transport::Channel;
use tower::ServiceExt as _;

use crate::export::SendError;
use crate::export::error_chain;
use crate::telemetry::reason::SendFailure;

use crate::telemetry::reason::Signal;

/// The `Export` method of `signal`'s service.
fn path(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    }
}
const GRPC_ENCODING: &str = "grpc-encoding";
const STATUS_DETAILS: &str = "grpc-status-details-bin";

/// The most of a reply read (an `Export…ServiceResponse` is a few bytes).
const MAX_REPLY_BYTES: usize = 1 << 20;

/// How tonic decodes status details: standard alphabet, padding optional.
const DETAILS_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The gRPC message frame: a compressed flag, a big-endian length, the
/// message.
pub fn frame(message: &[u8], gzip: bool) -> Result<Bytes, SendError> {
    let body = if gzip {
        crate::export::http_client::gzip([message], message.len())?
    } else {
        message.to_vec()
    };
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(u8::from(gzip));
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(Bytes::from(out))
}

/// Sends one framed request of `signal`; the reply (`R`: that signal's
/// `Export…ServiceResponse`), or the call's status as an error.
pub async fn export<R: Message + Default>(
    channel: &Channel,
    metadata: &HeaderMap,
    gzip: bool,
    signal: Signal,
    framed: Bytes,
) -> Result<R, CallError> {
    let mut request = http::Request::new(tonic::body::Body::new(Full::new(framed)));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = http::Uri::from_static(path(signal));
    let headers = request.headers_mut();
    headers.extend(metadata.clone());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(TE, HeaderValue::from_static("trailers"));
    if gzip {
        headers.insert(GRPC_ENCODING, HeaderValue::from_static("gzip"));
    }
    let response = channel
        .clone()
        .oneshot(request)
        .await
        .map_err(|e| CallError::Transport(error_chain(&e)))?;
    let (head, body) = response.into_parts();
    if let Some(status) = status_of(&head.headers) {
        // A trailers-only answer: the status came with the headers.
        return Err(CallError::Status(status));
    }
    if head.status != http::StatusCode::OK {
        return Err(CallError::Status(tonic::Status::new(
            http_to_grpc(head.status),
            format!(
                "answered HTTP {} without a gRPC status: not a gRPC endpoint",
                head.status
            ),
        )));
    }
    // A reply is a few bytes; a server sending more is not read past this.
    let body = http_body_util::Limited::new(body, MAX_REPLY_BYTES)
        .collect()
        .await
        .map_err(|e| CallError::Transport(error_chain(e.as_ref())))?;
    let trailers = body.trailers().cloned().unwrap_or_default();
    let data = body.to_bytes();
    match status_of(&trailers) {
        Some(status) => Err(CallError::Status(status)),
        None if trailers.contains_key("grpc-status") => {
            Ok(reply(data, head.headers.get(GRPC_ENCODING)))
        }
        None => Err(CallError::Status(tonic::Status::internal(
            "the answer ended without a grpc-status",
        ))),
    }
}

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// No answer: connection refused or reset, timeout, TLS.
    Transport(String),
    /// The server's status (never `OK`).
    Status(tonic::Status),
}

impl CallError {
    pub fn into_send_error(self, what: &str) -> SendError {
        match self {
            CallError::Transport(detail) => SendError::Retryable {
                reason: if detail.contains("timed out") || detail.contains("deadline") {
                    SendFailure::Timeout
                } else {
                    SendFailure::ConnectionError
                },
                detail: format!("{what}: {detail}"),
                retry_after: None,
            },
            CallError::Status(status) => {
                super::sender::classify_grpc(&status, &super::sender::Fixes::default())
            }
        }
    }
}

/// The status in `headers`, unless there is none or it is `OK`.
fn status_of(headers: &HeaderMap) -> Option<tonic::Status> {
    if headers.get("grpc-status")? == "0" {
        return None;
    }
    // tonic panics on details that are not base64: drop them instead (the
    // only case that copies the headers).
    let bad_details = headers
        .get(STATUS_DETAILS)
        .is_some_and(|d| DETAILS_BASE64.decode(d.as_bytes()).is_err());
    let status = if bad_details {
        let mut headers = headers.clone();
        headers.remove(STATUS_DETAILS);
        tonic::Status::from_header_map(&headers)
    } else {
        tonic::Status::from_header_map(headers)
    };
    status.filter(|s| s.code() != tonic::Code::Ok)
}

/// The reply message, if it can be read; a reply that cannot be read is a
/// plain success (the items were accepted).
fn reply<R: Message + Default>(mut data: Bytes, encoding: Option<&HeaderValue>) -> R {
    if data.len() < 5 {
        return R::default();
    }
    let compressed = data.get_u8() == 1;
    let len = data.get_u32() as usize;
    let message = data.slice(..len.min(data.len()));
    let decoded = if compressed {
        if encoding.is_none_or(|e| e.as_bytes() != b"gzip") {
            return R::default();
        }
        let mut out = Vec::new();
        let mut d = flate2::read::GzDecoder::new(message.as_ref());
        // The reply is a few bytes; a bomb cannot grow past this.
        let read = std::io::Read::read_to_end(&mut std::io::Read::take(&mut d, 1 << 20), &mut out);
        if read.is_err() {
            return R::default();
        }
        R::decode(out.as_slice())
    } else {
        R::decode(message)
    };
    decoded.unwrap_or_default()
}

/// The gRPC code for an HTTP status that came without one (the gRPC
/// specification's table, as tonic applies it).
fn http_to_grpc(status: http::StatusCode) -> tonic::Code {
    match status.as_u16() {
        400 => tonic::Code::Internal,
        401 => tonic::Code::Unauthenticated,
        403 => tonic::Code::PermissionDenied,
        404 => tonic::Code::Unimplemented,
        429 | 502..=504 => tonic::Code::Unavailable,
        _ => tonic::Code::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_has_the_flag_and_length_of_what_follows() {
        let f = frame(b"abc", false).unwrap();
        assert_eq!(&f[..], &[0, 0, 0, 0, 3, b'a', b'b', b'c']);
        let g = frame(&[7u8; 1000], true).unwrap();
        assert_eq!(g[0], 1);
        let len = u32::from_be_bytes([g[1], g[2], g[3], g[4]]) as usize;
        assert_eq!(len, g.len() - 5);
    }

    #[test]
    fn statuses_are_read_like_tonic_and_bad_details_do_not_panic() {
        let mut h = HeaderMap::new();
        assert!(status_of(&h).is_none());
        h.insert("grpc-status", HeaderValue::from_static("0"));
        assert!(status_of(&h).is_none(), "OK is no error");
        h.insert("grpc-status", HeaderValue::from_static("14"));
        h.insert("grpc-message", HeaderValue::from_static("busy%20now"));
        h.insert(STATUS_DETAILS, HeaderValue::from_static("!!not base64!!"));
        let s = status_of(&h).unwrap();
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert_eq!(s.message(), "busy now");
    }

    #[test]
    fn an_unreadable_reply_is_a_plain_success() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
        assert_eq!(
            reply::<ExportTraceServiceResponse>(Bytes::from_static(b"\x00\x00"), None),
            ExportTraceServiceResponse::default()
        );
    }
}

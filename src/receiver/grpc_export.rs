//! `TraceService/Export` served by hand instead of by the generated
//! `TraceServiceServer`, whose codec throws the message's bytes away: this
//! one decodes the request and keeps its bytes ([`KeptBytes`]), so the
//! spool writes them as they are and a pass-through destination slices its
//! spans out of them (see [`crate::route::ReceivedTraces::raw`]). Everything
//! else — compression, message limits, statuses — is tonic's own
//! `server::Grpc`, configured as the generated server configures it.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{
    Body, BoxFuture, CompressionEncoding, Context, EnabledCompressionEncodings, Poll, Service,
    StdError,
};
use tonic::server::{NamedService, UnaryService};
use tonic::{Request, Response, Status};

use super::decode::{DecodeError, Encoding, decode_request};
use super::metered::{over_budget_message, unavailable};
use crate::budget::{Charge, DECODED_PER_ENCODED, MemoryBudget, Part};
use crate::telemetry::ReceiverTelemetry;
use crate::telemetry::reason::Refusal;

const PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// A decoded request, the bytes it was decoded from (decompressed; with
/// `cut_values` values nested too deep cut, see [`crate::pdata::depth`]),
/// and what both hold of the memory budget.
pub struct KeptBytes {
    pub request: ExportTraceServiceRequest,
    pub raw: Bytes,
    pub cut_values: usize,
    pub charge: Charge,
}

/// What handles one export.
pub trait ExportHandler: Send + Sync + 'static {
    fn export(
        &self,
        request: Request<KeptBytes>,
    ) -> impl Future<Output = Result<Response<ExportTraceServiceResponse>, Status>> + Send;
}

/// The traces service.
pub struct TraceExportServer<T> {
    handler: Arc<T>,
    max_decoding_message_size: usize,
    codec: KeepBytesCodec,
}

impl<T> Clone for TraceExportServer<T> {
    fn clone(&self) -> Self {
        Self {
            handler: self.handler.clone(),
            max_decoding_message_size: self.max_decoding_message_size,
            codec: self.codec.clone(),
        }
    }
}

impl<T: ExportHandler> TraceExportServer<T> {
    /// Decoded requests are charged to `budget` (refusals counted in `telemetry`).
    pub fn new(
        handler: T,
        max_decoding_message_size: usize,
        budget: Arc<MemoryBudget>,
        telemetry: ReceiverTelemetry,
    ) -> Self {
        Self {
            handler: Arc::new(handler),
            max_decoding_message_size,
            codec: KeepBytesCodec { budget, telemetry },
        }
    }
}

impl<T> NamedService for TraceExportServer<T> {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl<T, B> Service<http::Request<B>> for TraceExportServer<T>
where
    T: ExportHandler,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != PATH {
            return Box::pin(async { Ok(unimplemented()) });
        }
        let method = Export(self.handler.clone());
        let max = self.max_decoding_message_size;
        let codec = self.codec.clone();
        Box::pin(async move {
            let mut accept = EnabledCompressionEncodings::default();
            for e in [
                CompressionEncoding::Gzip,
                CompressionEncoding::Deflate,
                CompressionEncoding::Zstd,
            ] {
                accept.enable(e);
            }
            let mut send = EnabledCompressionEncodings::default();
            send.enable(CompressionEncoding::Gzip);
            let mut grpc = tonic::server::Grpc::new(codec)
                .apply_compression_config(accept, send)
                .apply_max_message_size_config(Some(max), None);
            Ok(grpc.unary(method, req).await)
        })
    }
}

/// The answer to any other method of this service, as generated servers give it.
fn unimplemented() -> http::Response<tonic::body::Body> {
    let mut response = http::Response::new(tonic::body::Body::default());
    let headers = response.headers_mut();
    headers.insert(
        Status::GRPC_STATUS,
        http::HeaderValue::from(tonic::Code::Unimplemented as i32),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

struct Export<T>(Arc<T>);

impl<T: ExportHandler> UnaryService<KeptBytes> for Export<T> {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<Response<Self::Response>, Status>;

    fn call(&mut self, request: Request<KeptBytes>) -> Self::Future {
        let handler = self.0.clone();
        Box::pin(async move { handler.export(request).await })
    }
}

/// Protobuf both ways; decoding keeps the message's bytes and charges the
/// decoded request to the memory budget first.
#[derive(Clone)]
struct KeepBytesCodec {
    budget: Arc<MemoryBudget>,
    telemetry: ReceiverTelemetry,
}

impl Codec for KeepBytesCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = KeptBytes;
    type Encoder = ResponseEncoder;
    type Decoder = KeepBytesDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        KeepBytesDecoder(self.clone())
    }
}

struct ResponseEncoder;

impl Encoder for ResponseEncoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("cannot encode the response: {e}")))
    }
}

struct KeepBytesDecoder(KeepBytesCodec);

impl Decoder for KeepBytesDecoder {
    type Item = KeptBytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<KeptBytes>, Status> {
        let KeepBytesCodec { budget, telemetry } = &self.0;
        let decoded = src.remaining().saturating_mul(1 + DECODED_PER_ENCODED);
        let Some(charge) = budget.try_charge(Part::Requests, decoded) else {
            let message = over_budget_message(budget);
            telemetry.refused_request(Refusal::MemoryBudget, &message);
            return Err(unavailable(message));
        };
        // Copied into a recycled buffer (see `crate::buffers`) rather than
        // split off tonic's: tonic then reuses its buffer's memory for the
        // next message instead of allocating (and faulting in) a new one.
        let raw = {
            let mut buf = crate::buffers::take(src.remaining());
            while src.has_remaining() {
                let chunk = src.chunk();
                buf.extend_from_slice(chunk);
                let n = chunk.len();
                src.advance(n);
            }
            crate::buffers::into_bytes(buf)
        };
        // The status tonic's own codec gives ("failed to decode Protobuf
        // message: …"), which the receiver's status layer turns into
        // INVALID_ARGUMENT and counts.
        // A value nested too deep is cut and the request decoded again
        // (see `pdata::depth`); other errors keep prost's wording.
        let (request, fixed, cut_values) =
            decode_request(&raw, Encoding::Protobuf).map_err(|e| match e {
                DecodeError::Decode { detail, .. } => Status::internal(detail),
                other => Status::internal(other.to_string()),
            })?;
        let raw = fixed.map_or(raw, Bytes::from);
        Ok(Some(KeptBytes {
            request,
            raw,
            cut_values,
            charge,
        }))
    }
}

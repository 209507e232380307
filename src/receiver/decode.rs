//! OTLP/HTTP body handling: content negotiation, bounded decompression and decoding.

use std::io::Read;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::budget::{Charge, DECODED_PER_ENCODED};
use crate::pdata::depth::{self, Shape};

/// The two OTLP/HTTP encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// From a `Content-Type` value; parameters such as `; charset=utf-8` are ignored.
    pub fn from_content_type(value: &str) -> Option<Self> {
        let media_type = value.split(';').next().unwrap_or("").trim();
        if media_type.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Self::Protobuf)
        } else if media_type.eq_ignore_ascii_case("application/json") {
            Some(Self::Json)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// Supported `Content-Encoding`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Identity,
    Gzip,
    Deflate,
    Zstd,
}

impl Compression {
    pub fn from_content_encoding(value: Option<&str>) -> Option<Self> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("identity") => Some(Self::Identity),
            Some("gzip") | Some("x-gzip") => Some(Self::Gzip),
            Some("deflate") => Some(Self::Deflate),
            Some("zstd") => Some(Self::Zstd),
            Some(_) => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error(
        "request body is larger than the limit of {limit} bytes after decompression (receiver.max_request_bytes)"
    )]
    TooLarge { limit: usize },
    /// Decompressing or decoding would pass `limits.memory`.
    #[error("the memory budget (limits.memory) cannot hold this request now")]
    OverBudget,
    #[error("cannot decompress {encoding} body: {detail}")]
    Decompress {
        encoding: &'static str,
        detail: String,
    },
    #[error("cannot decode {encoding} ExportTraceServiceRequest: {detail}")]
    Decode {
        encoding: &'static str,
        detail: String,
    },
}

/// Output decompressed between two asks to the memory budget.
const DECOMPRESS_STEP: usize = 256 * 1024;

/// Decompresses `body`, stopping as soon as the output passes `limit`, so a
/// small compressed bomb never expands past the limit in memory.
pub fn decompress(
    body: &[u8],
    compression: Compression,
    limit: usize,
) -> Result<Vec<u8>, DecodeError> {
    decompress_granted(body, compression, limit, &mut |_| true)
}

/// [`decompress`], asking `grant(n)` before the output may grow to `n`
/// bytes: a `false` stops it with [`DecodeError::OverBudget`], so concurrent
/// decompressions together never pass the memory budget.
pub fn decompress_granted(
    body: &[u8],
    compression: Compression,
    limit: usize,
    grant: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<u8>, DecodeError> {
    let (name, reader): (&'static str, Box<dyn Read + '_>) = match compression {
        Compression::Identity => {
            return if body.len() > limit {
                Err(DecodeError::TooLarge { limit })
            } else {
                Ok(body.to_vec())
            };
        }
        Compression::Gzip => ("gzip", Box::new(flate2::read::MultiGzDecoder::new(body))),
        Compression::Deflate => {
            // HTTP "deflate" is zlib-wrapped (RFC 9110), but some clients send
            // raw deflate; the zlib header tells the two apart.
            if looks_like_zlib(body) {
                ("deflate", Box::new(flate2::read::ZlibDecoder::new(body)))
            } else {
                ("deflate", Box::new(flate2::read::DeflateDecoder::new(body)))
            }
        }
        Compression::Zstd => match zstd::stream::read::Decoder::new(body) {
            Ok(d) => ("zstd", Box::new(d)),
            Err(e) => {
                return Err(DecodeError::Decompress {
                    encoding: "zstd",
                    detail: e.to_string(),
                });
            }
        },
    };
    let mut reader = reader.take(limit as u64 + 1);
    let mut out = Vec::new();
    loop {
        let step = DECOMPRESS_STEP.max(out.len() / 4);
        if !grant(out.len() + step) {
            return Err(DecodeError::OverBudget);
        }
        out.reserve_exact(step);
        let n = (&mut reader)
            .take(step as u64)
            .read_to_end(&mut out)
            .map_err(|e| DecodeError::Decompress {
                encoding: name,
                detail: e.to_string(),
            })?;
        if out.len() > limit {
            return Err(DecodeError::TooLarge { limit });
        }
        if n < step {
            return Ok(out);
        }
    }
}

fn looks_like_zlib(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// An OTLP export request of any signal, as the receivers decode it.
pub trait OtlpRequest: prost::Message + Default + serde::de::DeserializeOwned {
    /// The message name, for errors ("ExportTraceServiceRequest").
    const NAME: &'static str;
    /// Where its attribute values are, to cut one nested too deep
    /// ([`depth`]); `None`: such a request is refused.
    const SHAPE: Option<Shape>;
}

impl OtlpRequest for ExportTraceServiceRequest {
    const NAME: &'static str = "ExportTraceServiceRequest";
    const SHAPE: Option<Shape> = Some(Shape::TracesRequest);
}

impl OtlpRequest for ExportLogsServiceRequest {
    const NAME: &'static str = "ExportLogsServiceRequest";
    const SHAPE: Option<Shape> = Some(Shape::LogsRequest);
}

impl OtlpRequest for ExportMetricsServiceRequest {
    const NAME: &'static str = "ExportMetricsServiceRequest";
    const SHAPE: Option<Shape> = None;
}

/// A decoded request: `cut_values` attribute values nested too deep were
/// cut ([`depth`]), and then `raw` is the protobuf it was decoded from.
#[derive(Debug)]
pub struct Decoded<T> {
    pub request: T,
    pub raw: Option<bytes::Bytes>,
    pub cut_values: usize,
}

/// Decompresses (bounded by `limit`) and decodes an OTLP/HTTP body.
pub fn decode_body<T: OtlpRequest>(
    body: &[u8],
    compression: Compression,
    encoding: Encoding,
    limit: usize,
) -> Result<T, DecodeError> {
    let decoded = match compression {
        Compression::Identity if body.len() > limit => return Err(DecodeError::TooLarge { limit }),
        Compression::Identity => decode_request(body, encoding),
        c => decode_request(&decompress(body, c, limit)?, encoding),
    };
    decoded.map(|(request, _, _)| request)
}

/// As [`decode_body`], also returning the protobuf encoding of the request
/// (the body itself, or its decompressed bytes, or those bytes with the
/// values nested too deep cut) so it can travel on without being encoded
/// again; `None` for OTLP/JSON.
///
/// `charge` holds the body's bytes; it grows with the decompressed bytes
/// and the decoded request's estimated size before either exists
/// ([`DecodeError::OverBudget`] when the budget cannot take them); the
/// receiver then sets it to what the request holds (see
/// [`crate::receiver::Intake::accept`]).
pub fn decode_body_keeping<T: OtlpRequest>(
    body: bytes::Bytes,
    compression: Compression,
    encoding: Encoding,
    limit: usize,
    charge: &mut Charge,
) -> Result<Decoded<T>, DecodeError> {
    let compressed = body.len();
    let plain = match compression {
        Compression::Identity if body.len() > limit => {
            return Err(DecodeError::TooLarge { limit });
        }
        Compression::Identity => body,
        c => {
            let mut grant = |n: usize| charge.try_grow_to(compressed + n);
            let plain = bytes::Bytes::from(decompress_granted(&body, c, limit, &mut grant)?);
            drop(body);
            charge.shrink_to(plain.len());
            plain
        }
    };
    if !charge.try_grow_to(plain.len().saturating_mul(1 + DECODED_PER_ENCODED)) {
        return Err(DecodeError::OverBudget);
    }
    let (request, fixed, cut_values) = decode_request(&plain, encoding)?;
    let raw = (encoding == Encoding::Protobuf).then(|| fixed.map_or(plain, bytes::Bytes::from));
    Ok(Decoded {
        request,
        raw,
        cut_values,
    })
}

/// Decodes a request. One that fails only because attribute values are
/// nested deeper than the decoder allows is decoded again with such values
/// cut at [`depth::MAX_VALUE_DEPTH`] levels: then the rewritten bytes and
/// how many values were cut come back too.
pub fn decode_request<T: OtlpRequest>(
    bytes: &[u8],
    encoding: Encoding,
) -> Result<(T, Option<Vec<u8>>, usize), DecodeError> {
    let decode = |b: &[u8]| match encoding {
        Encoding::Protobuf => T::decode(b).map_err(|e| e.to_string()),
        Encoding::Json => crate::pdata::json::decode_message(b, T::NAME),
    };
    let failed = |detail: String| DecodeError::Decode {
        encoding: match encoding {
            Encoding::Protobuf => "protobuf",
            Encoding::Json => "OTLP/JSON",
        },
        detail,
    };
    let error = match decode(bytes) {
        Ok(request) => return Ok((request, None, 0)),
        Err(e) => e,
    };
    let Some(shape) = T::SHAPE.filter(|_| depth::is_depth_error(&error)) else {
        return Err(failed(error));
    };
    let cut = match encoding {
        Encoding::Protobuf => depth::cut_protobuf(bytes, shape),
        Encoding::Json => depth::cut_json(bytes),
    };
    let Some((fixed, cut_values)) = cut.filter(|(_, n)| *n > 0) else {
        return Err(failed(error));
    };
    let request = decode(&fixed).map_err(failed)?;
    Ok((request, Some(fixed), cut_values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn content_types_tolerate_parameters_and_case() {
        assert_eq!(
            Encoding::from_content_type("application/json; charset=utf-8"),
            Some(Encoding::Json)
        );
        assert_eq!(
            Encoding::from_content_type("Application/X-Protobuf"),
            Some(Encoding::Protobuf)
        );
        assert_eq!(Encoding::from_content_type("text/plain"), None);
        assert_eq!(Encoding::from_content_type("application/jsonl"), None);
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_encoding_round_trips() {
        let data = b"hello hello hello hello".repeat(10);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&data).unwrap();
        let zlib = z.finish().unwrap();
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        d.write_all(&data).unwrap();
        let raw = d.finish().unwrap();
        let zst = zstd::encode_all(&data[..], 3).unwrap();
        assert_eq!(
            decompress(&gzip(&data), Compression::Gzip, 1 << 20).unwrap(),
            data
        );
        assert_eq!(
            decompress(&zlib, Compression::Deflate, 1 << 20).unwrap(),
            data
        );
        assert_eq!(
            decompress(&raw, Compression::Deflate, 1 << 20).unwrap(),
            data
        );
        assert_eq!(decompress(&zst, Compression::Zstd, 1 << 20).unwrap(), data);
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![0u8; 50 * 1024 * 1024]);
        assert!(bomb.len() < 100 * 1024);
        assert_eq!(
            decompress(&bomb, Compression::Gzip, 1024 * 1024),
            Err(DecodeError::TooLarge { limit: 1024 * 1024 })
        );
    }

    #[test]
    fn corrupt_bodies_are_decompress_errors() {
        let err = decompress(b"not gzip at all", Compression::Gzip, 1024).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Decompress {
                    encoding: "gzip",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

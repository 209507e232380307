//! The spool's record (`proto/tracebridge/spool/v1/spool.proto`) and its
//! framing: `u32` length, `u32` CRC-32 of the payload, payload.

use std::io::Read;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::pdata::depth;
use crate::route::{ReceivedTraces, RequestContext};

/// The record version this build writes.
pub const VERSION: u32 = 1;

/// Bytes before each payload: length and CRC.
pub const FRAME_HEADER: u64 = 8;

/// A length above this is taken for garbage (a torn or corrupt header).
pub const MAX_RECORD_BYTES: u32 = 1 << 30;

/// `tracebridge.spool.v1.SpoolRecord`, written by hand (no `protoc` here);
/// it must match the `.proto` field for field.
#[derive(Clone, PartialEq, Message)]
pub struct SpoolRecord {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    #[prost(fixed64, tag = "2")]
    pub received_unix_nano: u64,
    #[prost(string, tag = "3")]
    pub transport: String,
    #[prost(string, optional, tag = "4")]
    pub project_name: Option<String>,
    #[prost(uint64, tag = "5")]
    pub span_count: u64,
    #[prost(message, optional, tag = "6")]
    pub request: Option<ExportTraceServiceRequest>,
    /// Added within version 1 (see the `.proto`).
    #[prost(message, optional, tag = "7")]
    pub logs: Option<ExportLogsServiceRequest>,
    #[prost(uint64, tag = "8")]
    pub log_record_count: u64,
    /// Added within version 1 (see the `.proto`): absent means no tenant.
    #[prost(string, optional, tag = "9")]
    pub tenant: Option<String>,
    /// Added within version 1 (see the `.proto`).
    #[prost(message, optional, tag = "10")]
    pub metrics: Option<ExportMetricsServiceRequest>,
    #[prost(uint64, tag = "11")]
    pub metric_point_count: u64,
}

/// `SpoolRecord.request`'s field number.
const REQUEST: u32 = 6;

/// Encodes `traces` as one framed record, ready to append. The request is
/// moved in and out, never copied; when the receiver kept its bytes
/// ([`ReceivedTraces::raw`]) they are written as they are (a message field
/// is its encoding), so the request is not encoded again.
pub fn frame(traces: &mut ReceivedTraces, received_unix_nano: u64) -> Vec<u8> {
    let logs = !traces.resource_logs.is_empty();
    let metrics = !traces.resource_metrics.is_empty();
    let raw = traces.raw.as_ref().filter(|_| !logs && !metrics);
    let mut record = SpoolRecord {
        version: VERSION,
        received_unix_nano,
        transport: traces.context.transport.to_string(),
        project_name: traces.context.project_name.clone(),
        span_count: traces.span_count as u64,
        request: (!logs && !metrics && raw.is_none()).then(|| ExportTraceServiceRequest {
            resource_spans: std::mem::take(&mut traces.resource_spans),
        }),
        logs: logs.then(|| ExportLogsServiceRequest {
            resource_logs: std::mem::take(&mut traces.resource_logs),
        }),
        log_record_count: traces.log_count as u64,
        tenant: traces.context.tenant.as_deref().map(str::to_string),
        metrics: metrics.then(|| ExportMetricsServiceRequest {
            resource_metrics: std::mem::take(&mut traces.resource_metrics),
        }),
        metric_point_count: traces.metric_count as u64,
    };
    let raw_len = raw.map_or(0, |r| {
        prost::encoding::key_len(REQUEST)
            + prost::encoding::encoded_len_varint(r.len() as u64)
            + r.len()
    });
    let len = record.encoded_len() + raw_len;
    let mut out = crate::buffers::take(FRAME_HEADER as usize + len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    // Encoding into a Vec with enough capacity cannot fail.
    let _ = record.encode(&mut out);
    if let Some(raw) = raw {
        prost::encoding::encode_key(
            REQUEST,
            prost::encoding::WireType::LengthDelimited,
            &mut out,
        );
        prost::encoding::encode_varint(raw.len() as u64, &mut out);
        out.extend_from_slice(raw);
    }
    let crc = crc32fast::hash(&out[FRAME_HEADER as usize..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    if let Some(request) = record.request.take() {
        traces.resource_spans = request.resource_spans;
    }
    if let Some(request) = record.logs.take() {
        traces.resource_logs = request.resource_logs;
    }
    if let Some(request) = record.metrics.take() {
        traces.resource_metrics = request.resource_metrics;
    }
    out
}

/// What reading one frame found.
#[derive(Debug)]
pub enum Frame {
    /// A valid record; `len` is its size on disk, header included.
    Record { record: SpoolRecord, len: u64 },
    /// The header is whole but the payload fails its CRC or does not
    /// decode; the next frame starts `len` bytes on.
    Corrupt { len: u64, detail: String },
    /// The file ends inside this frame, or its header is garbage: nothing
    /// after this point can be trusted.
    Torn,
    /// Clean end of file.
    End,
}

/// Reads the frame at the reader's position. `remaining` is how many bytes
/// the file holds from here.
pub fn read_frame(r: &mut impl Read, remaining: u64, buf: &mut Vec<u8>) -> std::io::Result<Frame> {
    if remaining == 0 {
        return Ok(Frame::End);
    }
    if remaining < FRAME_HEADER {
        return Ok(Frame::Torn);
    }
    let mut header = [0u8; FRAME_HEADER as usize];
    r.read_exact(&mut header)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_RECORD_BYTES || u64::from(len) > remaining - FRAME_HEADER {
        return Ok(Frame::Torn);
    }
    buf.clear();
    buf.resize(len as usize, 0);
    r.read_exact(buf)?;
    let total = FRAME_HEADER + u64::from(len);
    if crc32fast::hash(buf) != crc {
        return Ok(Frame::Corrupt {
            len: total,
            detail: "CRC mismatch".into(),
        });
    }
    match decode_record(buf) {
        Ok(record) if record.version == VERSION => Ok(Frame::Record { record, len: total }),
        Ok(record) => Ok(Frame::Corrupt {
            len: total,
            detail: format!("unknown record version {}", record.version),
        }),
        Err(e) => Ok(Frame::Corrupt {
            len: total,
            detail: format!("undecodable record: {e}"),
        }),
    }
}

/// Decodes a record. The request inside is one level deeper than the
/// receiver decoded it, so a request at the decoder's nesting limit is
/// decoded again with its values nested too deep cut (`pdata::depth`);
/// then `buf` holds the rewritten payload.
fn decode_record(buf: &mut Vec<u8>) -> Result<SpoolRecord, prost::DecodeError> {
    let error = match SpoolRecord::decode(buf.as_slice()) {
        Ok(record) => return Ok(record),
        Err(e) => e,
    };
    if !depth::is_depth_error(&error.to_string()) {
        return Err(error);
    }
    match depth::cut_protobuf(buf, depth::Shape::SpoolRecord) {
        Some((fixed, n)) if n > 0 => {
            let record = SpoolRecord::decode(fixed.as_slice())?;
            *buf = fixed;
            Ok(record)
        }
        _ => Err(error),
    }
}

/// The bytes of the traces request in a record's payload (`buf`, as
/// [`read_frame`] left it; taken, not copied).
pub fn raw_request(buf: &mut Vec<u8>) -> Option<Bytes> {
    crate::pdata::wire::last_field(&Bytes::from(std::mem::take(buf)), REQUEST)
}

impl SpoolRecord {
    /// The request again, as the destinations receive it (`raw`: the bytes
    /// of its traces request, from [`raw_request`]).
    pub fn into_traces(self, raw: Option<Bytes>) -> ReceivedTraces {
        let transport = match self.transport.as_str() {
            "grpc" => "grpc",
            "http" => "http",
            _ => "spool",
        };
        ReceivedTraces {
            resource_spans: self.request.map(|r| r.resource_spans).unwrap_or_default(),
            span_count: self.span_count as usize,
            resource_logs: self.logs.map(|r| r.resource_logs).unwrap_or_default(),
            log_count: self.log_record_count as usize,
            resource_metrics: self.metrics.map(|r| r.resource_metrics).unwrap_or_default(),
            metric_count: self.metric_point_count as usize,
            context: RequestContext {
                transport,
                project_name: self.project_name,
                tenant: self.tenant.map(std::sync::Arc::from),
            },
            raw,
            charge: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::Span;

    fn traces() -> ReceivedTraces {
        let mut t = ReceivedTraces::from_spans(vec![Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "chat".into(),
            ..Default::default()
        }]);
        t.context.transport = "http";
        t.context.project_name = Some("p".into());
        t.context.tenant = Some("team-a".into());
        t
    }

    #[test]
    fn a_frame_round_trips_and_leaves_the_request_in_place() {
        let mut t = traces();
        let bytes = frame(&mut t, 42);
        assert_eq!(t.span_count, 1);
        assert_eq!(t.resource_spans.len(), 1, "the request is moved back");
        let mut buf = Vec::new();
        let f = read_frame(&mut bytes.as_slice(), bytes.len() as u64, &mut buf).unwrap();
        let Frame::Record { record, len } = f else {
            panic!("{f:?}")
        };
        assert_eq!(len, bytes.len() as u64);
        assert_eq!(record.received_unix_nano, 42);
        let back = record.into_traces(None);
        assert_eq!(back.context.transport, "http");
        assert_eq!(back.context.project_name.as_deref(), Some("p"));
        assert_eq!(back.context.tenant.as_deref(), Some("team-a"));
        assert_eq!(back.spans().next().map(|s| s.name.as_str()), Some("chat"));
    }

    #[test]
    fn the_bytes_received_are_written_as_they_are_and_read_back() {
        let mut t = traces();
        let raw = Bytes::from(
            ExportTraceServiceRequest {
                resource_spans: t.resource_spans.clone(),
            }
            .encode_to_vec(),
        );
        t.raw = Some(raw.clone());
        let with_raw = frame(&mut t, 42);
        t.raw = None;
        let without = frame(&mut t, 42);
        // The same record either way (the raw request is appended after the
        // other fields, so the bytes differ in field order only).
        let decoded = |b: &[u8]| SpoolRecord::decode(&b[FRAME_HEADER as usize..]).unwrap();
        assert_eq!(decoded(&with_raw), decoded(&without));
        assert_eq!(with_raw.len(), without.len());
        let mut buf = Vec::new();
        let f = read_frame(&mut with_raw.as_slice(), with_raw.len() as u64, &mut buf).unwrap();
        let Frame::Record { record, .. } = f else {
            panic!("{f:?}")
        };
        let back = record.into_traces(raw_request(&mut buf));
        assert_eq!(back.raw, Some(raw));
        assert_eq!(back.resource_spans, t.resource_spans);
    }

    #[test]
    fn the_encoding_matches_the_proto_field_numbers() {
        let mut t = traces();
        let bytes = frame(&mut t, 1);
        let payload = &bytes[FRAME_HEADER as usize..];
        // field 1 varint (0x08) = 1, then field 2 fixed64 (0x11).
        assert_eq!(&payload[..3], &[0x08, 0x01, 0x11]);
        // field 6, length-delimited (0x32), is the request.
        assert!(payload.contains(&0x32));
    }

    #[test]
    fn a_logs_record_round_trips_and_a_traces_record_reads_as_before() {
        use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
        let mut t = ReceivedTraces::from_logs(vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    event_name: "gen_ai.choice".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }]);
        let bytes = frame(&mut t, 7);
        assert_eq!(t.resource_logs.len(), 1, "the request is moved back");
        let mut buf = Vec::new();
        let f = read_frame(&mut bytes.as_slice(), bytes.len() as u64, &mut buf).unwrap();
        let Frame::Record { record, .. } = f else {
            panic!("{f:?}")
        };
        assert!(record.request.is_none());
        let back = record.into_traces(None);
        assert_eq!((back.span_count, back.log_count), (0, 1));
        assert_eq!(back.resource_logs.len(), 1);
        // A version-1 traces record written before field 7 existed.
        let old = SpoolRecord {
            version: 1,
            span_count: 1,
            request: Some(ExportTraceServiceRequest::default()),
            ..Default::default()
        };
        let decoded = SpoolRecord::decode(old.encode_to_vec().as_slice()).unwrap();
        let back = decoded.into_traces(None);
        assert_eq!(back.log_count, 0);
        assert_eq!(
            back.context.tenant, None,
            "a record before field 9 has no tenant"
        );
    }

    #[test]
    fn a_metrics_record_round_trips() {
        use opentelemetry_proto::tonic::metrics::v1::{
            Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data,
        };
        let mut t = ReceivedTraces::from_metrics(vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "gen_ai.client.token.usage".into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint::default(); 3],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }]);
        let bytes = frame(&mut t, 7);
        assert_eq!(t.resource_metrics.len(), 1, "the request is moved back");
        let mut buf = Vec::new();
        let f = read_frame(&mut bytes.as_slice(), bytes.len() as u64, &mut buf).unwrap();
        let Frame::Record { record, .. } = f else {
            panic!("{f:?}")
        };
        assert!(record.request.is_none() && record.logs.is_none());
        let back = record.into_traces(None);
        assert_eq!(
            (back.span_count, back.log_count, back.metric_count),
            (0, 0, 3)
        );
        assert_eq!(back.resource_metrics, t.resource_metrics);
    }

    #[test]
    fn a_flipped_byte_is_corrupt_and_a_short_file_is_torn() {
        let mut t = traces();
        let mut bytes = frame(&mut t, 1);
        let mut buf = Vec::new();
        let n = bytes.len() as u64;
        let torn = read_frame(&mut &bytes[..bytes.len() - 1], n - 1, &mut buf).unwrap();
        assert!(matches!(torn, Frame::Torn), "{torn:?}");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let bad = read_frame(&mut bytes.as_slice(), n, &mut buf).unwrap();
        assert!(
            matches!(bad, Frame::Corrupt { len, .. } if len == n),
            "{bad:?}"
        );
        assert!(matches!(
            read_frame(&mut &bytes[..0], 0, &mut buf).unwrap(),
            Frame::End
        ));
    }

    #[test]
    fn a_request_at_the_decoders_limit_reads_back_with_its_deepest_value_cut() {
        use crate::pdata::depth::tests::{deep_value_bytes, request_with};
        // A request the receiver decodes whose record is one level past
        // prost's limit: kvlists (3 levels each) around one array (2).
        let in_record = |b: &[u8]| {
            let mut wrapped = Vec::new();
            prost::encoding::encode_varint(u64::from(REQUEST) << 3 | 2, &mut wrapped);
            prost::encoding::encode_varint(b.len() as u64, &mut wrapped);
            wrapped.extend_from_slice(b);
            SpoolRecord::decode(wrapped.as_slice()).is_ok()
        };
        let wrapped_in_arrays = |d: usize, arrays: usize| {
            let mut v = deep_value_bytes(d);
            for _ in 0..arrays {
                let mut list = Vec::new();
                prost::encoding::bytes::encode(1, &v, &mut list);
                v.clear();
                prost::encoding::bytes::encode(5, &list, &mut v);
            }
            request_with(&v)
        };
        let bytes = (20..40)
            .flat_map(|d| (0..3).map(move |a| (d, a)))
            .map(|(d, a)| wrapped_in_arrays(d, a))
            .find(|b| ExportTraceServiceRequest::decode(b.as_slice()).is_ok() && !in_record(b))
            .unwrap();
        let request = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        let mut t = ReceivedTraces::new(request.resource_spans);
        t.raw = Some(Bytes::from(bytes));
        let framed = frame(&mut t, 1);
        let payload = &framed[FRAME_HEADER as usize..];
        assert!(
            SpoolRecord::decode(payload).is_err(),
            "past the limit in the record"
        );
        let mut buf = Vec::new();
        let read = read_frame(&mut framed.as_slice(), framed.len() as u64, &mut buf).unwrap();
        let Frame::Record { record, .. } = read else {
            panic!("not read back: {read:?}");
        };
        let spans = record.into_traces(raw_request(&mut buf)).resource_spans;
        assert_eq!(spans[0].scope_spans[0].spans.len(), 2);
    }
}

//! The protobuf wire format of an `ExportTraceServiceRequest`, read just
//! deep enough to find each span's bytes, so a span forwarded unchanged is
//! sliced out of the request as received instead of encoded again.
//!
//! Repeated message fields keep their order on the wire, so the n-th span
//! found here is the n-th span prost decoded from the same bytes.

use bytes::{Buf, Bytes};

/// `ExportTraceServiceRequest.resource_spans`.
const RESOURCE_SPANS: u32 = 1;
/// `ResourceSpans.scope_spans`.
const SCOPE_SPANS: u32 = 2;
/// `ScopeSpans.spans`.
const SPANS: u32 = 2;

/// Every span's encoding, in request order (resource, scope, span), each a
/// slice of `request` (no copy). `None` when the bytes are not a
/// well-formed request.
pub fn span_slices(request: &Bytes) -> Option<Vec<Bytes>> {
    let mut spans = Vec::new();
    for_each_field(request, RESOURCE_SPANS, |resource| {
        for_each_field(&resource, SCOPE_SPANS, |scope| {
            for_each_field(&scope, SPANS, |span| {
                spans.push(span);
                Some(())
            })
        })
    })?;
    Some(spans)
}

/// The bytes of the last length-delimited field `tag` of the message in
/// `bytes` (the one a decoder keeps), if any.
pub fn last_field(bytes: &Bytes, tag: u32) -> Option<Bytes> {
    let mut last = None;
    for_each_field(bytes, tag, |b| {
        last = Some(b);
        Some(())
    })?;
    last
}

/// Calls `f` with the bytes of every length-delimited field `tag` of the
/// message in `bytes`, skipping the other fields.
fn for_each_field(bytes: &Bytes, tag: u32, mut f: impl FnMut(Bytes) -> Option<()>) -> Option<()> {
    let mut buf = &bytes[..];
    while buf.has_remaining() {
        let key = prost::encoding::decode_varint(&mut buf).ok()?;
        let field = u32::try_from(key >> 3).ok()?;
        match key & 7 {
            0 => {
                prost::encoding::decode_varint(&mut buf).ok()?;
            }
            1 => skip(&mut buf, 8)?,
            5 => skip(&mut buf, 4)?,
            2 => {
                let len = usize::try_from(prost::encoding::decode_varint(&mut buf).ok()?).ok()?;
                if len > buf.remaining() {
                    return None;
                }
                if field == tag {
                    let start = bytes.len() - buf.remaining();
                    f(bytes.slice(start..start + len))?;
                }
                buf.advance(len);
            }
            // Groups (deprecated, never in OTLP) and invalid wire types.
            _ => return None,
        }
    }
    Some(())
}

fn skip(buf: &mut &[u8], n: usize) -> Option<()> {
    (buf.remaining() >= n).then(|| buf.advance(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
    use prost::Message as _;

    fn span(name: &str) -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: name.into(),
            start_time_unix_nano: 5,
            flags: 1,
            status: Some(Status {
                code: 2,
                message: "x".into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn every_span_is_found_in_order_and_decodes_to_itself() {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(Resource::default()),
                    scope_spans: vec![
                        ScopeSpans {
                            scope: Some(InstrumentationScope {
                                name: "s".into(),
                                ..Default::default()
                            }),
                            spans: vec![span("a"), span("b")],
                            schema_url: "u".into(),
                        },
                        ScopeSpans {
                            spans: vec![span("c")],
                            ..Default::default()
                        },
                    ],
                    schema_url: "r".into(),
                },
                ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: vec![span("d")],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        };
        let bytes = Bytes::from(request.encode_to_vec());
        let slices = span_slices(&bytes).unwrap();
        let names: Vec<String> = slices
            .iter()
            .map(|s| Span::decode(s.clone()).unwrap().name)
            .collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert_eq!(Span::decode(slices[0].clone()).unwrap(), span("a"));
    }

    #[test]
    fn malformed_bytes_give_none() {
        let bytes = Bytes::from(
            ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans::default()],
            }
            .encode_to_vec(),
        );
        assert_eq!(span_slices(&bytes).map(|s| s.len()), Some(0));
        assert!(span_slices(&Bytes::from_static(&[0x0a, 0x05, 0x01])).is_none());
        assert!(
            span_slices(&Bytes::from_static(&[0x0b])).is_none(),
            "a group"
        );
        assert!(span_slices(&Bytes::new()).is_some_and(|s| s.is_empty()));
    }
}

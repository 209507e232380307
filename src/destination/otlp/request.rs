//! Re-batching: items back into one encoded `ExportTraceServiceRequest`
//! (or `ExportLogsServiceRequest`, `ExportMetricsServiceRequest`: a batch
//! holds one signal), keeping resource and scope grouping.
//!
//! The three requests have the same shape and field numbers (resources in
//! field 1; in a resource, its `Resource` 1, scopes 2, schema URL 3; in a
//! scope, its `InstrumentationScope` 1, spans / log records / metrics 2,
//! schema URL 3), so one writer serves them all.
//!
//! Items carry their message already encoded (by the mapper, once), and their
//! resource and scope groups carry their own fields encoded too, so a batch
//! is written by concatenation: protobuf messages are their fields one after
//! the other, and a nested message is a tag, a length and its bytes. Nothing
//! is decoded, cloned or encoded again here, and a retry sends the same bytes.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

use crate::telemetry::reason::Signal;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use super::{OtlpItem, ResourceGroup, ScopeGroup};

/// `ExportTraceServiceRequest.resource_spans`, `ResourceSpans.scope_spans`
/// and `ScopeSpans.spans` all have field number 2 except the first (and so
/// do their logs and metrics counterparts).
const RESOURCE_SPANS: u32 = 1;
const SCOPE_SPANS: u32 = 2;
const SPANS: u32 = 2;

/// One scope's spans within a resource: the group and the item indices.
struct Scoped<'a> {
    group: &'a Arc<ScopeGroup>,
    items: Vec<usize>,
    len: usize,
}

struct Resourced<'a> {
    group: &'a Arc<ResourceGroup>,
    scopes: Vec<Scoped<'a>>,
    len: usize,
}

/// The encoded request for `items`, grouped by resource (then scope) in
/// first-seen order. Items mapped from the same request share their
/// resource and scope, so the grouping of the original request survives
/// re-batching.
pub fn encode(items: &[OtlpItem]) -> Vec<u8> {
    let mut resources = group(items);
    let mut total = 0;
    for r in &mut resources {
        for s in &mut r.scopes {
            s.len = s.group.encoded.len()
                + s.items
                    .iter()
                    .map(|&i| nested_len(SPANS, items[i].message.len()))
                    .sum::<usize>();
        }
        r.len = r.group.encoded.len()
            + r.scopes
                .iter()
                .map(|s| nested_len(SCOPE_SPANS, s.len))
                .sum::<usize>();
        total += nested_len(RESOURCE_SPANS, r.len);
    }
    let mut out = Vec::with_capacity(total);
    for r in &resources {
        header(RESOURCE_SPANS, r.len, &mut out);
        out.extend_from_slice(&r.group.encoded);
        for s in &r.scopes {
            header(SCOPE_SPANS, s.len, &mut out);
            out.extend_from_slice(&s.group.encoded);
            for &i in &s.items {
                header(SPANS, items[i].message.len(), &mut out);
                out.extend_from_slice(&items[i].message);
            }
        }
    }
    out
}

/// The request as a message, for the encodings that need one (OTLP/JSON)
/// and for tests.
pub fn build(items: &[OtlpItem]) -> ExportTraceServiceRequest {
    // What `encode` writes is a valid request by construction.
    ExportTraceServiceRequest::decode(encode(items).as_slice()).unwrap_or_default()
}

/// The batch as OTLP/JSON, in the request type of its signal.
pub fn json(items: &[OtlpItem]) -> serde_json::Result<Vec<u8>> {
    let encoded = encode(items);
    // What `encode` writes is a valid request by construction.
    match items.first().map_or(Signal::Traces, |i| i.signal) {
        Signal::Traces => serde_json::to_vec(
            &ExportTraceServiceRequest::decode(encoded.as_slice()).unwrap_or_default(),
        ),
        Signal::Logs => serde_json::to_vec(
            &ExportLogsServiceRequest::decode(encoded.as_slice()).unwrap_or_default(),
        ),
        Signal::Metrics => serde_json::to_vec(
            &ExportMetricsServiceRequest::decode(encoded.as_slice()).unwrap_or_default(),
        ),
    }
}

fn group(items: &[OtlpItem]) -> Vec<Resourced<'_>> {
    let mut resources: Vec<Resourced<'_>> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let r = match resources.iter().position(|r| same(r.group, &item.resource)) {
            Some(r) => r,
            None => {
                resources.push(Resourced {
                    group: &item.resource,
                    scopes: Vec::new(),
                    len: 0,
                });
                resources.len() - 1
            }
        };
        let scopes = &mut resources[r].scopes;
        match scopes.iter_mut().find(|s| same(s.group, &item.scope)) {
            Some(s) => s.items.push(i),
            None => scopes.push(Scoped {
                group: &item.scope,
                items: vec![i],
                len: 0,
            }),
        }
    }
    resources
}

/// Bytes of a length-delimited field holding `len` bytes.
fn nested_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn header(tag: u32, len: usize, out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
}

/// The same group: the same allocation, or equal content.
fn same<T: PartialEq>(a: &Arc<T>, b: &Arc<T>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn span(name: &str) -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn concatenation_equals_prost_encoding_of_the_grouped_request() {
        let r1 = Arc::new(ResourceGroup::new(
            Resource {
                attributes: vec![crate::pdata::key_value(
                    "service.name",
                    opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                        "a".into(),
                    ),
                )],
                ..Default::default()
            },
            "https://schema/r".into(),
        ));
        let r2 = Arc::new(ResourceGroup::new(Resource::default(), String::new()));
        let s1 = Arc::new(ScopeGroup::new(
            Some(InstrumentationScope {
                name: "scope".into(),
                ..Default::default()
            }),
            "https://schema/s".into(),
        ));
        let s2 = Arc::new(ScopeGroup::new(None, String::new()));
        let items = vec![
            OtlpItem::new(r1.clone(), s1.clone(), &span("a")),
            OtlpItem::new(r2.clone(), s2.clone(), &span("b")),
            OtlpItem::new(r1.clone(), s2.clone(), &span("c")),
            OtlpItem::new(r1.clone(), s1.clone(), &span("d")),
        ];
        let want = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(r1.resource.clone()),
                    schema_url: "https://schema/r".into(),
                    scope_spans: vec![
                        ScopeSpans {
                            scope: s1.scope.clone(),
                            schema_url: "https://schema/s".into(),
                            spans: vec![span("a"), span("d")],
                        },
                        ScopeSpans {
                            scope: None,
                            schema_url: String::new(),
                            spans: vec![span("c")],
                        },
                    ],
                },
                ResourceSpans {
                    resource: Some(Resource::default()),
                    schema_url: String::new(),
                    scope_spans: vec![ScopeSpans {
                        scope: None,
                        schema_url: String::new(),
                        spans: vec![span("b")],
                    }],
                },
            ],
        };
        assert_eq!(build(&items), want);
        assert_eq!(encode(&items).len(), want.encoded_len());
        assert!(encode(&[]).is_empty());
    }
}

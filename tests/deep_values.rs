//! An attribute value nested deeper than the decoders allow (prost: 100
//! messages, serde_json: 128 levels) is cut at its own depth; the request
//! and the good spans beside it go through, over every receiver.

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use prost::encoding::encode_varint;
use tracebridge::pdata::depth::CUT_MARKER;

fn put(field: u32, body: &[u8], out: &mut Vec<u8>) {
    encode_varint(u64::from(field) << 3 | 2, out);
    encode_varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// A kvlist `depth` levels deep, encoded from the inside out (as prost
/// structs it would recurse on encode and drop).
fn deep_value(depth: usize) -> Vec<u8> {
    let mut v = Vec::new();
    put(1, b"leaf", &mut v);
    for _ in 0..depth {
        let mut kv = Vec::new();
        put(1, b"k", &mut kv);
        put(2, &v, &mut kv);
        let mut list = Vec::new();
        put(1, &kv, &mut list);
        v.clear();
        put(6, &list, &mut v);
    }
    v
}

/// Protobuf: a good span and a span with a `depth`-deep attribute (span
/// ids from `trace`, so every request adds two to the file).
fn deep_request(trace: u8, depth: usize) -> Vec<u8> {
    let good = span(trace, trace, "good").encode_to_vec();
    let mut bad = span(trace, trace | 0x80, "deep").encode_to_vec();
    let mut kv = Vec::new();
    put(1, b"deep.attr", &mut kv);
    put(2, &deep_value(depth), &mut kv);
    put(9, &kv, &mut bad);
    let mut scope = Vec::new();
    put(2, &good, &mut scope);
    put(2, &bad, &mut scope);
    let mut rs = Vec::new();
    put(2, &scope, &mut rs);
    let mut req = Vec::new();
    put(1, &rs, &mut req);
    req
}

/// OTLP/JSON: the same shape.
fn deep_json(trace: u8, depth: usize) -> Vec<u8> {
    let value = format!(
        "{}{}{}",
        r#"{"kvlistValue":{"values":[{"key":"k","value":"#.repeat(depth),
        r#"{"stringValue":"leaf"}"#,
        "}]}}".repeat(depth)
    );
    let t = hex(&[trace; 16]);
    format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[
        {{"traceId":"{t}","spanId":"{a}","name":"good"}},
        {{"traceId":"{t}","spanId":"{b}","name":"deep","attributes":[{{"key":"deep.attr","value":{value}}}]}}
        ]}}]}}]}}"#,
        a = hex(&[trace; 8]),
        b = hex(&[trace | 0x80; 8]),
    )
    .into_bytes()
}

async fn post(d: &TestDaemon, content_type: &str, body: Vec<u8>) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(d.http_url())
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    let message = if content_type.ends_with("json") {
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    } else {
        ExportTraceServiceResponse::decode(bytes)
            .unwrap()
            .partial_success
            .map(|p| p.error_message)
            .unwrap_or_default()
    };
    (status, message)
}

/// One unary gRPC `Export` over HTTP/2 with the request's bytes as they are
/// (tonic's client would have to build the too-deep value as structs).
async fn grpc_export(d: &TestDaemon, message: &[u8]) -> (String, String) {
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    let r = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
        .post(format!(
            "{}/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            d.grpc_url()
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(framed)
        .send()
        .await
        .unwrap();
    // A refusal comes as headers only; success as a framed response.
    let status = r
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_else(|| "0".into());
    let bytes = r.bytes().await.unwrap();
    let message = bytes
        .get(5..)
        .and_then(|b| ExportTraceServiceResponse::decode(b).ok())
        .and_then(|r| r.partial_success)
        .map(|p| p.error_message)
        .unwrap_or_default();
    (status, message)
}

fn cut_records(d: &TestDaemon) -> usize {
    d.records()
        .iter()
        .filter(|r| r.to_string().contains(CUT_MARKER))
        .count()
}

#[tokio::test]
async fn a_too_deep_value_is_cut_and_its_siblings_go_through_every_receiver() {
    let mut d = TestDaemon::start("", "").await;
    let mut expected = 0;
    for (i, depth) in [40usize, 10_000].into_iter().enumerate() {
        let trace = 10 * (i as u8 + 1);
        for (content_type, body) in [
            ("application/x-protobuf", deep_request(trace, depth)),
            ("application/json", deep_json(trace + 1, depth)),
        ] {
            let (status, message) = post(&d, content_type, body).await;
            assert_eq!(status, 200, "{content_type} depth {depth}: {message}");
            assert!(
                message.contains("nested deeper than 20 levels were cut"),
                "{content_type} depth {depth}: {message:?}"
            );
            expected += 2;
            d.wait_for_spans(expected).await;
        }
        let (status, message) = grpc_export(&d, &deep_request(trace + 2, depth)).await;
        assert_eq!(status, "0", "gRPC depth {depth}: {message}");
        assert!(message.contains("were cut"), "{message:?}");
        expected += 2;
        d.wait_for_spans(expected).await;
    }
    wait_until("the cut values in the file", || cut_records(&d) == 6).await;
    let m = d.metrics();
    let series = |t: &str| {
        metric(
            &m,
            &format!(
                "tracebridge_receiver_cut_values_total{{transport=\"{t}\",reason=\"too_deep\"}}"
            ),
        )
    };
    assert_eq!(series("http"), 4.0, "{m}");
    assert_eq!(series("grpc"), 2.0, "{m}");
    d.stop().await;
}

#[tokio::test]
async fn a_value_within_the_decoders_limits_is_not_touched() {
    let mut d = TestDaemon::start("", "").await;
    let (status, message) = post(&d, "application/x-protobuf", deep_request(1, 25)).await;
    assert_eq!((status, message.as_str()), (200, ""));
    d.wait_for_spans(2).await;
    assert_eq!(cut_records(&d), 0);
    d.stop().await;
}

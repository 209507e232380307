//! OTLP/HTTP receiver over a real loopback socket.

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use reqwest::StatusCode;

const LIMIT: usize = 64 * 1024;

async fn daemon() -> TestDaemon {
    TestDaemon::start(&format!("max_request_bytes = {LIMIT}"), "").await
}

async fn post(
    d: &TestDaemon,
    content_type: Option<&str>,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(d.http_url()).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    if let Some(enc) = encoding {
        req = req.header("content-encoding", enc);
    }
    req.send().await.expect("request sent")
}

#[tokio::test]
async fn protobuf_json_and_every_compression_are_accepted() {
    let mut d = daemon().await;
    let pb =
        |first: u8| request(vec![span(1, first, "a"), span(1, first + 1, "b")]).encode_to_vec();
    let json = |first: u8| {
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{}","spanId":"{}","name":"j","startTimeUnixNano":1767225600000000000}}]}}]}}]}}"#,
            hex(&[2; 16]),
            hex(&[first; 8])
        )
        .into_bytes()
    };
    let zstd = |b: Vec<u8>| zstd::encode_all(&b[..], 3).unwrap();
    let deflate = |b: Vec<u8>| {
        use std::io::Write;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&b).unwrap();
        e.finish().unwrap()
    };
    let cases: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        ("application/x-protobuf", None, pb(10)),
        ("application/x-protobuf", Some("gzip"), gzip(&pb(20))),
        ("application/x-protobuf", Some("zstd"), zstd(pb(30))),
        ("application/x-protobuf", Some("deflate"), deflate(pb(40))),
        ("application/json", None, json(50)),
        (
            "application/json; charset=utf-8",
            Some("gzip"),
            gzip(&json(51)),
        ),
        ("application/json", Some("zstd"), zstd(json(52))),
    ];
    for (ct, enc, body) in cases {
        let r = post(&d, Some(ct), enc, body).await;
        assert_eq!(r.status(), StatusCode::OK, "{ct} {enc:?}");
        let reply_type = r.headers()["content-type"].to_str().unwrap().to_string();
        let bytes = r.bytes().await.unwrap();
        if ct.starts_with("application/json") {
            assert_eq!(reply_type, "application/json");
            assert_eq!(&bytes[..], b"{}");
        } else {
            assert_eq!(reply_type, "application/x-protobuf");
            let resp = ExportTraceServiceResponse::decode(bytes).unwrap();
            assert!(resp.partial_success.is_none());
        }
    }
    let ids = d.wait_for_spans(11).await;
    assert_eq!(ids.len(), 11, "{ids:?}");
    for id in [10u8, 11, 20, 21, 30, 31, 40, 41, 50, 51, 52] {
        assert!(
            ids.contains(&hex(&[id; 8])),
            "span {id} missing from {ids:?}"
        );
    }
    d.stop().await;
}

#[tokio::test]
async fn bad_spans_are_rejected_and_good_spans_of_the_same_request_kept() {
    let mut d = daemon().await;
    let body = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[
            {{"traceId":"{good}","spanId":"{a}","name":"good-1"}},
            {{"traceId":"{short}","spanId":"{b}","name":"short-trace-id"}},
            {{"traceId":"{good}","spanId":"{c}","name":"good-2"}},
            {{"traceId":"{good}","spanId":"0000000000000000","name":"zero-span-id"}}
        ]}}]}}]}}"#,
        good = hex(&[3; 16]),
        short = hex(&[3; 15]),
        a = hex(&[0xa1; 8]),
        b = hex(&[0xb1; 8]),
        c = hex(&[0xc1; 8]),
    );
    let r = reqwest::Client::new()
        .post(d.http_url())
        .header("content-type", "application/json")
        .header("projectName", "from-header")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let rejected = &v["partialSuccess"]["rejectedSpans"];
    assert!(rejected == 2 || rejected == "2", "{v}");
    let msg = v["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains("short-trace-id") && msg.contains("trace_id must be 16 bytes"),
        "{msg}"
    );
    assert!(msg.contains("zero-span-id"), "{msg}");

    // Same over protobuf.
    let mut bad = span(4, 9, "bad-parent");
    bad.parent_span_id = vec![1, 2, 3];
    let pb = request(vec![span(4, 0xd1, "good-3"), bad]).encode_to_vec();
    let r = post(&d, Some("application/x-protobuf"), None, pb).await;
    assert_eq!(r.status(), StatusCode::OK);
    let resp = ExportTraceServiceResponse::decode(r.bytes().await.unwrap()).unwrap();
    let partial = resp.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("parent_span_id"),
        "{}",
        partial.error_message
    );

    let ids = d.wait_for_spans(3).await;
    let expected: std::collections::BTreeSet<String> = [[0xa1u8; 8], [0xc1; 8], [0xd1; 8]]
        .iter()
        .map(|b| hex(b))
        .collect();
    assert_eq!(ids, expected);
    let records = d.records();
    let good_1 = records.iter().find(|r| r["name"] == "good-1").unwrap();
    assert_eq!(good_1["project_name"], "from-header");
    assert_eq!(good_1["transport"], "http");
    let m = d.metrics();
    assert_eq!(
        metric(
            &m,
            "tracebridge_receiver_refused_spans_total{transport=\"http\",reason=\"invalid_span\"}"
        ),
        3.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "tracebridge_receiver_accepted_spans_total{transport=\"http\"}"
        ),
        3.0,
        "{m}"
    );
    d.stop().await;
}

/// What a hostile or broken client sends, and what it must get back.
#[tokio::test]
async fn hostile_inputs_get_clear_errors_and_the_daemon_keeps_serving() {
    let mut d = daemon().await;
    let valid_pb = request(vec![span(5, 1, "x")]).encode_to_vec();
    let truncated = valid_pb[..valid_pb.len() / 2].to_vec();
    let bomb = gzip(&vec![b' '; 40 * 1024 * 1024]);
    let deep_json = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"k","value":{}{{}}{}}}]}}}}]}}"#,
        r#"{"arrayValue":{"values":["#.repeat(1000),
        "]}}".repeat(1000)
    );
    let all_bad_json = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{}","spanId":"{}"}}]}}]}}]}}"#,
        hex(&[1; 4]),
        hex(&[1; 8])
    );
    let json = Some("application/json");
    let pb = Some("application/x-protobuf");
    struct Case {
        name: &'static str,
        method: &'static str,
        content_type: Option<&'static str>,
        encoding: Option<&'static str>,
        body: Vec<u8>,
        status: StatusCode,
        body_contains: &'static str,
    }
    let case = |name, method, content_type, encoding, body: Vec<u8>, status, body_contains| Case {
        name,
        method,
        content_type,
        encoding,
        body,
        status,
        body_contains,
    };
    let cases = vec![
        case(
            "GET",
            "GET",
            json,
            None,
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
            "POST",
        ),
        case(
            "PUT",
            "PUT",
            json,
            None,
            b"{}".to_vec(),
            StatusCode::METHOD_NOT_ALLOWED,
            "POST",
        ),
        case(
            "DELETE",
            "DELETE",
            None,
            None,
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
            "POST",
        ),
        case(
            "PATCH",
            "PATCH",
            pb,
            None,
            valid_pb.clone(),
            StatusCode::METHOD_NOT_ALLOWED,
            "POST",
        ),
        case(
            "no content type",
            "POST",
            None,
            None,
            valid_pb.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/x-protobuf",
        ),
        case(
            "text/plain",
            "POST",
            Some("text/plain"),
            None,
            b"hello".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "text/plain",
        ),
        case(
            "xml",
            "POST",
            Some("application/xml"),
            None,
            b"<a/>".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/xml",
        ),
        case(
            "protobuf lookalike",
            "POST",
            Some("application/protobuf"),
            None,
            valid_pb.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported content type",
        ),
        case(
            "brotli",
            "POST",
            pb,
            Some("br"),
            valid_pb.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Encoding",
        ),
        case(
            "garbage protobuf",
            "POST",
            pb,
            None,
            vec![0xff; 64],
            StatusCode::BAD_REQUEST,
            "protobuf",
        ),
        case(
            "truncated protobuf",
            "POST",
            pb,
            None,
            truncated,
            StatusCode::BAD_REQUEST,
            "protobuf",
        ),
        case(
            "JSON sent as protobuf",
            "POST",
            pb,
            None,
            b"{\"resourceSpans\":[]}".to_vec(),
            StatusCode::BAD_REQUEST,
            "protobuf",
        ),
        case(
            "empty JSON body",
            "POST",
            json,
            None,
            vec![],
            StatusCode::BAD_REQUEST,
            "EOF",
        ),
        case(
            "unterminated JSON",
            "POST",
            json,
            None,
            b"{\"resourceSpans\":[".to_vec(),
            StatusCode::BAD_REQUEST,
            "OTLP/JSON",
        ),
        case(
            "wrong JSON type",
            "POST",
            json,
            None,
            b"{\"resourceSpans\":5}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid type",
        ),
        case(
            "top-level array",
            "POST",
            json,
            None,
            b"[]".to_vec(),
            StatusCode::BAD_REQUEST,
            "OTLP/JSON",
        ),
        case(
            "non-hex trace id",
            "POST",
            json,
            None,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "OTLP/JSON",
        ),
        case(
            "enum as name",
            "POST",
            json,
            None,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_CLIENT"}]}]}]}"#
                .to_vec(),
            StatusCode::BAD_REQUEST,
            "OTLP/JSON",
        ),
        case(
            "time not a number",
            "POST",
            json,
            None,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}"#
                .to_vec(),
            StatusCode::BAD_REQUEST,
            "OTLP/JSON",
        ),
        case(
            "invalid UTF-8",
            "POST",
            json,
            None,
            b"{\"resourceSpans\":[{\"schemaUrl\":\"\xff\xfe\"}]}".to_vec(),
            StatusCode::BAD_REQUEST,
            "OTLP/JSON",
        ),
        case(
            "nesting bomb",
            "POST",
            json,
            None,
            deep_json.into_bytes(),
            // Cut at 20 levels and taken (tests/deep_values.rs).
            StatusCode::OK,
            "were cut",
        ),
        case(
            "claims gzip, is plain",
            "POST",
            pb,
            Some("gzip"),
            valid_pb.clone(),
            StatusCode::BAD_REQUEST,
            "gzip",
        ),
        case(
            "zstd garbage",
            "POST",
            pb,
            Some("zstd"),
            vec![1, 2, 3, 4, 5],
            StatusCode::BAD_REQUEST,
            "zstd",
        ),
        case(
            "deflate garbage",
            "POST",
            pb,
            Some("deflate"),
            vec![0xff; 16],
            StatusCode::BAD_REQUEST,
            "deflate",
        ),
        case(
            "too large",
            "POST",
            pb,
            None,
            vec![0; LIMIT + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
            "65536",
        ),
        case(
            "gzip bomb",
            "POST",
            json,
            Some("gzip"),
            bomb,
            StatusCode::PAYLOAD_TOO_LARGE,
            "after decompression",
        ),
        case(
            "only invalid spans",
            "POST",
            json,
            None,
            all_bad_json.into_bytes(),
            StatusCode::OK,
            "rejectedSpans",
        ),
        case(
            "empty protobuf request",
            "POST",
            pb,
            None,
            vec![],
            StatusCode::OK,
            "",
        ),
        case(
            "empty JSON request",
            "POST",
            json,
            None,
            b"{}".to_vec(),
            StatusCode::OK,
            "{}",
        ),
    ];
    assert!(cases.len() >= 20);
    let client = reqwest::Client::new();
    for c in cases {
        let method = reqwest::Method::from_bytes(c.method.as_bytes()).unwrap();
        let mut req = client.request(method, d.http_url()).body(c.body);
        if let Some(ct) = c.content_type {
            req = req.header("content-type", ct);
        }
        if let Some(enc) = c.encoding {
            req = req.header("content-encoding", enc);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let status = r.status();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = r.bytes().await.unwrap();
        assert_eq!(
            status,
            c.status,
            "{}: {}",
            c.name,
            String::from_utf8_lossy(&bytes)
        );
        // Errors after content negotiation carry a google.rpc.Status in the request's encoding.
        let text = match ct.as_deref() {
            Some("application/x-protobuf") if status != StatusCode::OK => {
                tonic_types::Status::decode(bytes.clone())
                    .map(|s| s.message)
                    .unwrap_or_default()
            }
            _ => String::from_utf8_lossy(&bytes).to_string(),
        };
        assert!(
            text.contains(c.body_contains),
            "{}: body {text:?} lacks {:?}",
            c.name,
            c.body_contains
        );
        if status == StatusCode::BAD_REQUEST && ct.as_deref() == Some("application/json") {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(v["code"], 3, "{}: {v}", c.name);
        }
    }
    // Unknown path.
    let r = client
        .post(format!("http://{}/v1/unknown", d.running().http_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Still serving.
    let r = post(
        &d,
        pb,
        None,
        request(vec![span(6, 6, "after")]).encode_to_vec(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(d.wait_for_spans(1).await.contains(&hex(&[6; 8])));
    let m = d.metrics();
    assert!(
        metric(
            &m,
            "tracebridge_receiver_refused_requests_total{transport=\"http\",reason=\"too_large\"}"
        ) >= 2.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "tracebridge_receiver_refused_requests_total{transport=\"http\",reason=\"decode_error\"}"
        ) >= 10.0,
        "{m}"
    );
    d.stop().await;
}

#[tokio::test]
async fn an_oversized_content_length_is_refused_before_the_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut d = daemon().await;
    let mut sock = tokio::net::TcpStream::connect(d.running().http_addr)
        .await
        .unwrap();
    // Announce 1 GiB and send none of it: the answer must come anyway.
    sock.write_all(
        b"POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: 1073741824\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), sock.read(&mut buf))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    d.stop().await;
}

#[tokio::test]
async fn cors_is_off_unless_configured() {
    let mut plain = daemon().await;
    let client = reqwest::Client::new();
    let preflight = |url: String| {
        client
            .request(reqwest::Method::OPTIONS, url)
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .send()
    };
    let r = preflight(plain.http_url()).await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    plain.stop().await;

    let mut with_cors = TestDaemon::start(
        "[receiver.cors]\nallowed_origins = [\"https://app.example.com\"]\n",
        "",
    )
    .await;
    let r = preflight(with_cors.http_url()).await.unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    with_cors.stop().await;
}

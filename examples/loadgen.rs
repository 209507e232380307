//! A small OTLP/HTTP load generator for the end-to-end benchmark
//! (`benches/e2e.sh`). Sends the same realistic GenAI request over and over.
//!
//! cargo run --release --example loadgen -- URL REQUESTS SPANS_PER_REQUEST CONCURRENCY [gzip]

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;
use tracebridge::pdata::key_value;

fn request(spans: usize) -> ExportTraceServiceRequest {
    let spans = (0..spans)
        .map(|i| Span {
            trace_id: [(i / 5) as u8 + 1; 16].to_vec(),
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: "chat gpt-4o".into(),
            kind: 3,
            start_time_unix_nano: 1_767_225_600_000_000_000,
            end_time_unix_nano: 1_767_225_601_000_000_000,
            attributes: vec![
                key_value("gen_ai.operation.name", Value::StringValue("chat".into())),
                key_value("gen_ai.request.model", Value::StringValue("gpt-4o".into())),
                key_value("gen_ai.usage.input_tokens", Value::IntValue(812)),
                key_value("gen_ai.usage.output_tokens", Value::IntValue(96)),
                key_value(
                    "gen_ai.input.messages",
                    Value::StringValue(format!(
                        r#"[{{"role":"user","parts":[{{"type":"text","content":"{}"}}]}}]"#,
                        "Summarise the quarterly report. ".repeat(10)
                    )),
                ),
            ],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![key_value(
                    "service.name",
                    Value::StringValue("loadgen".into()),
                )],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err("usage: loadgen URL REQUESTS SPANS_PER_REQUEST CONCURRENCY [gzip]".into());
    }
    let url = args[1].clone();
    let requests: usize = args[2].parse()?;
    let spans: usize = args[3].parse()?;
    let concurrency: usize = args[4].parse()?;
    let gzip = args.get(5).is_some_and(|a| a == "gzip");
    let mut body = request(spans).encode_to_vec();
    if gzip {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&body)?;
        body = e.finish()?;
    }
    let body = bytes::Bytes::from(body);
    tracebridge::app::install_tls_provider();
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let pushed_back = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, body, next, failures, pushed_back) = (
            client.clone(),
            url.clone(),
            body.clone(),
            next.clone(),
            failures.clone(),
            pushed_back.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                let t = Instant::now();
                // Like an OTel SDK, keep the data and retry when the daemon
                // pushes back (503/429); here after 5 ms rather than Retry-After,
                // to measure sustained throughput.
                loop {
                    let mut req = client
                        .post(&url)
                        .header("content-type", "application/x-protobuf")
                        .body(body.clone());
                    if gzip {
                        req = req.header("content-encoding", "gzip");
                    }
                    match req.send().await {
                        Ok(r) if r.status().is_success() => break,
                        Ok(r) if r.status() == 503 || r.status() == 429 => {
                            pushed_back.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        _ => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for t in tasks {
        latencies.extend(t.await?);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "requests={requests} spans_per_request={spans} concurrency={concurrency} gzip={gzip} body_bytes={} \
         elapsed_s={:.3} spans_per_s={:.0} p50_ms={:.2} p99_ms={:.2} pushed_back={} failures={}",
        body.len(),
        elapsed.as_secs_f64(),
        (requests * spans) as f64 / elapsed.as_secs_f64(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        pushed_back.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed)
    );
    Ok(())
}

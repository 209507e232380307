//! The OTLP forwarding path, stage by stage, on one request of 1000
//! realistic GenAI spans (issue 13: the CPU per forwarded span):
//! - `slice_spans`: each span's bytes found in the received request
//!   (`pdata::wire`, what a pass-through destination does instead of
//!   encoding);
//! - `map_passthrough` / `map_privacy`: the OTLP mapper without and with
//!   privacy mode (slicing vs. one encode per span);
//! - `batch_encode`: a batch's request written by concatenating its spans;
//! - `grpc_frame_gzip`: the gRPC frame, gzipped once per batch.
//!
//! `cargo bench --bench forward`; compare per span with Rotel through
//! `../shared/perf/compare.sh`, not with absolute numbers from elsewhere.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;
use tracebridge::destination::otlp::config::{OtlpProtocol, SemconvMode};
use tracebridge::destination::otlp::{OtlpMapper, OtlpTarget, grpc_call, request};
use tracebridge::export::ItemMapper;
use tracebridge::pdata::{key_value, wire};
use tracebridge::route::ReceivedTraces;
use tracebridge::semconv::privacy::{AllowList, Privacy};
use tracebridge::telemetry::{DestinationTelemetry, Metrics};

const SPANS: usize = 1000;

fn span(i: usize) -> Span {
    Span {
        trace_id: [(i / 10) as u8 + 1; 16].to_vec(),
        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
        name: "chat gpt-4o-mini".into(),
        kind: 3,
        start_time_unix_nano: 1_767_225_600_000_000_000 + i as u64 * 1_000_000,
        end_time_unix_nano: 1_767_225_601_000_000_000 + i as u64 * 1_000_000,
        attributes: vec![
            key_value("gen_ai.operation.name", Value::StringValue("chat".into())),
            key_value("gen_ai.provider.name", Value::StringValue("openai".into())),
            key_value(
                "gen_ai.request.model",
                Value::StringValue("gpt-4o-mini".into()),
            ),
            key_value("gen_ai.usage.input_tokens", Value::IntValue(812)),
            key_value("gen_ai.usage.output_tokens", Value::IntValue(96)),
            key_value(
                "gen_ai.input.messages",
                Value::StringValue(format!(
                    r#"[{{"role":"user","parts":[{{"type":"text","content":"{}"}}]}}]"#,
                    "Summarise the quarterly report for the board. ".repeat(16)
                )),
            ),
            key_value(
                "gen_ai.output.messages",
                Value::StringValue(format!(
                    r#"[{{"role":"assistant","parts":[{{"type":"text","content":"{}"}}],"finish_reason":"stop"}}]"#,
                    "Revenue grew 12% on strong demand. ".repeat(12)
                )),
            ),
        ],
        ..Default::default()
    }
}

/// The request as a receiver hands it on: decoded, with the bytes it came as.
fn received() -> ReceivedTraces {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![key_value(
                    "service.name",
                    Value::StringValue("bench".into()),
                )],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: (0..SPANS).map(span).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let raw = Bytes::from(request.encode_to_vec());
    let mut traces = ReceivedTraces::new(request.resource_spans);
    traces.raw = Some(raw);
    traces
}

fn target() -> OtlpTarget {
    OtlpTarget {
        url: "http://sink.invalid:4317".into(),
        signals: tracebridge::route::Signals::TRACES,
        logs_url: None,
        metrics_url: None,
        log_join: Default::default(),
        protocol: OtlpProtocol::Grpc,
        headers: vec![],
        gzip: true,
        tls: Default::default(),
        semconv: SemconvMode::Passthrough,
        resource_attributes: vec![],
        project_name: None,
        project_as_model_id: false,
        flavour: "otlp",
    }
}

fn mapper(metrics: &Metrics, privacy: Option<Privacy>) -> OtlpMapper {
    OtlpMapper::new(
        target(),
        privacy,
        DestinationTelemetry::new(metrics, "otlp"),
    )
}

fn bench(c: &mut Criterion) {
    let traces = received();
    let raw = traces.raw.clone().expect("raw bytes");
    let metrics = Metrics::new();
    let mut g = c.benchmark_group("forward");
    g.throughput(Throughput::Elements(SPANS as u64));
    g.bench_function("slice_spans", |b| {
        b.iter(|| wire::span_slices(black_box(&raw)))
    });
    g.bench_function("map_passthrough", |b| {
        b.iter_batched(
            || mapper(&metrics, None),
            |mut m| {
                let mut out = Vec::with_capacity(SPANS);
                m.map(black_box(&traces), &mut out);
                out
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("map_privacy", |b| {
        let privacy = Privacy {
            allow: AllowList::default(),
        };
        b.iter_batched(
            || mapper(&metrics, Some(privacy.clone())),
            |mut m| {
                let mut out = Vec::with_capacity(SPANS);
                m.map(black_box(&traces), &mut out);
                out
            },
            BatchSize::SmallInput,
        )
    });
    let mut items = Vec::with_capacity(SPANS);
    mapper(&metrics, None).map(&traces, &mut items);
    g.bench_function("batch_encode", |b| {
        b.iter(|| request::encode(black_box(&items)))
    });
    let encoded = request::encode(&items);
    g.bench_function("grpc_frame_gzip", |b| {
        b.iter(|| grpc_call::frame(black_box(&encoded), true))
    });
    g.finish();
    eprintln!(
        "request: {} spans, {} B protobuf, {} B framed and gzipped",
        SPANS,
        raw.len(),
        grpc_call::frame(&encoded, true).map_or(0, |f| f.len())
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The OTLP forwarding path, stage by stage, on one request of 1000
//! realistic GenAI spans (`common::genai_request`) (issue 13: the CPU per forwarded span):
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
use prost::Message as _;
use tracebridge::destination::otlp::config::{OtlpProtocol, SemconvMode};
use tracebridge::destination::otlp::{OtlpMapper, OtlpTarget, grpc_call, request};
use tracebridge::export::ItemMapper;
use tracebridge::pdata::wire;
use tracebridge::route::ReceivedTraces;
use tracebridge::semconv::privacy::{AllowList, Privacy};
use tracebridge::telemetry::{DestinationTelemetry, Metrics};

mod common;

const SPANS: usize = 1000;

/// The request as a receiver hands it on: decoded, with the bytes it came as.
fn received() -> ReceivedTraces {
    let request = common::genai_request(SPANS);
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

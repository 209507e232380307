//! Hot paths of the receive side: decoding (protobuf, OTLP/JSON, gzip),
//! span validation, and the file destination's per-span encoding.
//!
//! `cargo bench --bench hot_paths`

use std::hint::black_box;
use std::io::Write;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use tracebridge::destination::file::SpanRecords;
use tracebridge::destination::opik::TraceAssembler;
use tracebridge::destination::otlp::OtlpMapper;
use tracebridge::export::ItemMapper;
use tracebridge::pdata::key_value;
use tracebridge::receiver::decode::{Compression, Encoding, decode_body};
use tracebridge::receiver::span_validation::retain_valid;
use tracebridge::route::ReceivedTraces;
use tracebridge::semconv::SpanContext;
use tracebridge::telemetry::{DestinationTelemetry, Metrics};

mod common;

const SPANS: usize = 100;
const LIMIT: usize = 20 * 1024 * 1024;

fn bench(c: &mut Criterion) {
    let request = common::genai_request(SPANS);
    let protobuf = request.encode_to_vec();
    let json = serde_json::to_vec(&request).expect("json");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&protobuf).expect("gzip");
    let gzipped = gz.finish().expect("gzip");

    let mut g = c.benchmark_group("receive_100_genai_spans");
    g.throughput(Throughput::Elements(SPANS as u64));
    g.bench_function("decode_protobuf", |b| {
        b.iter(|| {
            decode_body::<ExportTraceServiceRequest>(
                black_box(&protobuf),
                Compression::Identity,
                Encoding::Protobuf,
                LIMIT,
            )
        })
    });
    g.bench_function("decode_protobuf_gzip", |b| {
        b.iter(|| {
            decode_body::<ExportTraceServiceRequest>(
                black_box(&gzipped),
                Compression::Gzip,
                Encoding::Protobuf,
                LIMIT,
            )
        })
    });
    g.bench_function("decode_otlp_json", |b| {
        b.iter(|| {
            decode_body::<ExportTraceServiceRequest>(
                black_box(&json),
                Compression::Identity,
                Encoding::Json,
                LIMIT,
            )
        })
    });
    g.bench_function("validate", |b| {
        b.iter_batched(
            || request.resource_spans.clone(),
            |mut rs| retain_valid(&mut rs),
            BatchSize::SmallInput,
        )
    });
    let traces = ReceivedTraces::new(request.resource_spans.clone());
    g.bench_function("file_destination_encode", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(SPANS);
            SpanRecords::default().map(black_box(&traces), &mut out);
            out
        })
    });
    g.bench_function("semconv_normalise", |b| {
        let spans = &traces.resource_spans[0].scope_spans[0].spans;
        b.iter(|| {
            spans
                .iter()
                .map(|s| tracebridge::semconv::normalise(black_box(s), SpanContext::default()))
                .collect::<Vec<_>>()
        })
    });
    g.bench_function("opik_map_rows", |b| {
        let metrics = Metrics::new();
        b.iter_batched(
            || {
                TraceAssembler::new(
                    opik_target(),
                    None,
                    4 << 20,
                    DestinationTelemetry::new(&metrics, "opik"),
                )
            },
            |mut asm| {
                let mut out = Vec::with_capacity(SPANS + 10);
                asm.map(black_box(&traces), &mut out);
                out
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("otlp_openinference_enrich", |b| {
        let metrics = Metrics::new();
        b.iter_batched(
            || {
                OtlpMapper::new(
                    otlp_target(),
                    None,
                    DestinationTelemetry::new(&metrics, "arize"),
                )
            },
            |mut m| {
                let mut out = Vec::with_capacity(SPANS);
                m.map(black_box(&traces), &mut out);
                out
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
    eprintln!(
        "request sizes: protobuf {} B, gzip {} B, OTLP/JSON {} B",
        protobuf.len(),
        gzipped.len(),
        json.len()
    );
}

fn opik_target() -> tracebridge::destination::opik::OpikTarget {
    tracebridge::destination::opik::OpikTarget {
        url: "http://opik.invalid/api".into(),
        api_key: None,
        workspace: "default".into(),
        project_name: "bench".into(),
        tags: vec![],
        trace_ttl: std::time::Duration::from_secs(3600),
        stale_trace_timeout: std::time::Duration::from_secs(300),
        max_open_traces: 10_000,
        logs: Default::default(),
        state: Default::default(),
        resource_attributes_in: Default::default(),
        tenants: Vec::new(),
    }
}

fn otlp_target() -> tracebridge::destination::otlp::OtlpTarget {
    tracebridge::destination::otlp::OtlpTarget {
        url: "http://sink.invalid:4317".into(),
        signals: tracebridge::route::Signals::TRACES,
        logs_url: None,
        metrics_url: None,
        log_join: Default::default(),
        protocol: tracebridge::destination::otlp::config::OtlpProtocol::Grpc,
        headers: vec![],
        gzip: true,
        tls: Default::default(),
        semconv: tracebridge::destination::otlp::config::SemconvMode::Openinference,
        resource_attributes: vec![],
        project_name: Some("bench".into()),
        project_as_model_id: true,
        flavour: "arize",
    }
}

/// Adversarial shapes (issue: quadratic mapping stalled a destination):
/// one span with 20 000 flattened `gen_ai.prompt.N.*` attributes, and one
/// request with 20 000 distinct traces, through the Opik mapper. Both must
/// stay linear: compare the per-element time with `opik_map_rows`.
fn adversarial(c: &mut Criterion) {
    let mut g = c.benchmark_group("adversarial");
    g.sample_size(10);
    const N: usize = 20_000;
    let flattened = Span {
        trace_id: vec![7; 16],
        span_id: vec![7; 8],
        name: "chat".into(),
        start_time_unix_nano: 1_767_225_600_000_000_000,
        attributes: (0..N / 2)
            .flat_map(|i| {
                [
                    key_value(
                        format!("gen_ai.prompt.{i}.role"),
                        Value::StringValue("user".into()),
                    ),
                    key_value(
                        format!("gen_ai.prompt.{i}.content"),
                        Value::StringValue("hi".into()),
                    ),
                ]
            })
            .collect(),
        ..Default::default()
    };
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("normalise_one_span_20k_flattened_attributes", |b| {
        b.iter(|| tracebridge::semconv::normalise(black_box(&flattened), SpanContext::default()))
    });
    let many_traces = many_traces(N);
    g.bench_function("opik_map_20k_traces_in_one_request", |b| {
        let metrics = Metrics::new();
        b.iter_batched(
            || {
                let mut t = opik_target();
                t.max_open_traces = 2 * N;
                TraceAssembler::new(
                    t,
                    None,
                    4 << 20,
                    DestinationTelemetry::new(&metrics, "opik"),
                )
            },
            |mut asm| {
                let mut out = Vec::with_capacity(2 * N);
                asm.map(black_box(&many_traces), &mut out);
                out
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// One request of `n` spans, each of its own trace.
fn many_traces(n: usize) -> ReceivedTraces {
    ReceivedTraces::from_spans(
        (0..n)
            .map(|i| Span {
                trace_id: (i as u128 + 1).to_be_bytes().to_vec(),
                span_id: vec![1; 8],
                name: "x".into(),
                start_time_unix_nano: 1_767_225_600_000_000_000,
                ..Default::default()
            })
            .collect(),
    )
}

/// A kvlist `depth` levels deep as the value of an attribute of a span
/// beside a good one, as protobuf bytes (built from the inside out).
fn deep_request(depth: usize) -> Vec<u8> {
    use prost::encoding::bytes::encode as put;
    let mut v = Vec::new();
    put(1, &b"leaf".to_vec(), &mut v);
    for _ in 0..depth {
        let (mut kv, mut list) = (Vec::new(), Vec::new());
        put(1, &b"k".to_vec(), &mut kv);
        put(2, &v, &mut kv);
        put(1, &kv, &mut list);
        v.clear();
        put(6, &list, &mut v);
    }
    let span = |id: u8| Span {
        trace_id: vec![1; 16],
        span_id: vec![id; 8],
        name: "s".into(),
        ..Default::default()
    };
    let mut bad = span(2).encode_to_vec();
    let mut kv = Vec::new();
    put(1, &b"deep".to_vec(), &mut kv);
    put(2, &v, &mut kv);
    put(9, &kv, &mut bad);
    let (mut scope, mut rs, mut req) = (Vec::new(), Vec::new(), Vec::new());
    put(2, &span(1).encode_to_vec(), &mut scope);
    put(2, &bad, &mut scope);
    put(2, &scope, &mut rs);
    put(1, &rs, &mut req);
    req
}

/// More adversarial shapes of issue 11: one key repeated 20k times, 20k
/// traces past `max_open_traces` (evictions), a row with a 10 MB attribute
/// (truncation), and a 10,000-deep value (the decoders' depth fallback).
fn adversarial_bounds(c: &mut Criterion) {
    let mut g = c.benchmark_group("adversarial_bounds");
    g.sample_size(10);
    const N: usize = 20_000;
    let duplicates = Span {
        trace_id: vec![7; 16],
        span_id: vec![7; 8],
        name: "chat".into(),
        attributes: (0..N)
            .map(|i| key_value("gen_ai.prompt.0.content", Value::IntValue(i as i64)))
            .collect(),
        ..Default::default()
    };
    g.bench_function("normalise_one_span_20k_duplicates_of_one_key", |b| {
        b.iter(|| tracebridge::semconv::normalise(black_box(&duplicates), SpanContext::default()))
    });
    let many_traces = many_traces(N);
    let big = ReceivedTraces::from_spans(vec![Span {
        trace_id: vec![9; 16],
        span_id: vec![9; 8],
        name: "chat".into(),
        attributes: vec![key_value(
            "app.blob",
            Value::StringValue("b".repeat(10 << 20)),
        )],
        ..Default::default()
    }]);
    let metrics = Metrics::new();
    let assembler = |max_open_traces: usize| {
        let mut t = opik_target();
        t.max_open_traces = max_open_traces;
        TraceAssembler::new(
            t,
            None,
            4 << 20,
            DestinationTelemetry::new(&metrics, "opik"),
        )
    };
    for (name, request, max) in [
        ("opik_map_20k_traces_past_1000_open", &many_traces, 1000),
        ("opik_map_a_row_with_a_10mb_attribute", &big, 10),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || assembler(max),
                |mut asm| {
                    let mut out = Vec::new();
                    asm.map(black_box(request), &mut out);
                    out
                },
                BatchSize::SmallInput,
            )
        });
    }
    let deep = deep_request(10_000);
    g.bench_function("decode_protobuf_with_a_10000_deep_value", |b| {
        b.iter(|| {
            decode_body::<ExportTraceServiceRequest>(
                black_box(&deep),
                Compression::Identity,
                Encoding::Protobuf,
                64 << 20,
            )
        })
    });
    g.finish();
}

/// The cost of keeping the Opik trace table in its store (issue 10 item 2):
/// the same 100 spans (10 traces) mapped with the table in memory and on
/// disk, once into traces already open (every touched trace is written
/// back) and once as traces never seen (a store lookup each, then a write).
fn trace_state(c: &mut Criterion) {
    use tracebridge::destination::opik::state::TraceState;
    let request = common::genai_request(SPANS);
    let mut g = c.benchmark_group("opik_trace_state_100_spans");
    g.throughput(Throughput::Elements(SPANS as u64));
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();
    let assembler = |state: TraceState| {
        let mut target = opik_target();
        target.state = state;
        TraceAssembler::new(
            target,
            None,
            4 << 20,
            DestinationTelemetry::new(&metrics, "opik"),
        )
    };
    let traces = ReceivedTraces::new(request.resource_spans.clone());
    for (name, state) in [
        ("memory_open_traces", TraceState::Memory),
        (
            "disk_open_traces",
            TraceState::Disk(dir.path().join("open.redb")),
        ),
    ] {
        let mut asm = assembler(state);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(SPANS + 10);
                asm.map(black_box(&traces), &mut out);
                out
            })
        });
    }
    for (name, state) in [
        ("memory_new_traces", TraceState::Memory),
        (
            "disk_new_traces",
            TraceState::Disk(dir.path().join("new.redb")),
        ),
    ] {
        let mut asm = assembler(state);
        let mut next = 0u64;
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let mut r = request.clone();
                    next += 1;
                    for s in &mut r.resource_spans[0].scope_spans[0].spans {
                        s.trace_id[..8].copy_from_slice(&next.to_be_bytes());
                    }
                    ReceivedTraces::new(r.resource_spans)
                },
                |t| {
                    let mut out = Vec::with_capacity(SPANS + 10);
                    asm.map(black_box(&t), &mut out);
                    out
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// Controls built from a destination table's `sampling` / `filter` / `cost`.
fn controls(toml: &str) -> tracebridge::control::Controls {
    use figment::providers::{Format, Toml};
    #[derive(serde::Deserialize)]
    struct T {
        sampling: Option<tracebridge::control::SamplingConfig>,
        filter: Option<tracebridge::control::FilterConfig>,
        cost: Option<tracebridge::control::CostConfig>,
        redact: Option<tracebridge::control::RedactConfig>,
    }
    let t: T = figment::Figment::from(Toml::string(toml))
        .extract()
        .expect("controls parse");
    tracebridge::control::config::validate_all(
        "bench",
        tracebridge::control::ControlTables {
            sampling: t.sampling.as_ref(),
            filter: t.filter.as_ref(),
            cost: t.cost.as_ref(),
            redact: t.redact.as_ref(),
            tenants: None,
            priced_by_destination: &[],
        },
    )
    .expect("controls valid")
}

/// The per-request cost of each control (`ControlStage::plan` over 100
/// GenAI spans), and the file destination with and without sampling.
fn control_costs(c: &mut Criterion) {
    let traces = ReceivedTraces::new(common::genai_request(SPANS).resource_spans);
    let metrics = Metrics::new();
    let mut g = c.benchmark_group("controls_100_genai_spans");
    g.throughput(Throughput::Elements(SPANS as u64));
    let cases = [
        ("sampling_trace_0.5", "sampling.rate = 0.5"),
        (
            "sampling_session_0.5",
            "sampling = { rate = 0.5, key = \"session\" }",
        ),
        (
            "filter_3_rules",
            "[[filter.rules]]\naction = \"exclude\"\nany = [{ field = \"name\", matches = \"GET /health*\" }, { field = \"attribute.http.route\", equals = \"/metrics\" }]\n[[filter.rules]]\naction = \"include\"\nall = [{ field = \"provider\", in = [\"openai\", \"anthropic\"] }, { field = \"total_tokens\", above = 100 }]\n[[filter.rules]]\naction = \"include\"\nscope = \"trace\"\nall = [{ field = \"error\", equals = true }]",
        ),
        ("drop_non_genai", "filter.drop_non_genai = true"),
        (
            "cost_compute",
            "cost = { compute = true, source = \"tracebridge\" }",
        ),
        // The rate drops 90 %; their spans are held (bounded) for a trigger.
        (
            "sampling_0.1_always_keep",
            "sampling = { rate = 0.1, always_keep = { errors = true, latency_above = \"20s\", tokens_above = 100000, max_held_spans = 1000 } }",
        ),
        // Every built-in over ~1 KiB of clean content per span (the common case).
        (
            "redact_11_builtins_no_match",
            "redact.builtins = [\"email\", \"credit_card\", \"ipv4\", \"ipv6\", \"bearer_token\", \"aws_access_key\", \"gcp_api_key\", \"anthropic_key\", \"openai_key\", \"jwt\", \"pem\"]",
        ),
    ];
    for (name, toml) in cases {
        let c = controls(toml);
        g.bench_function(format!("plan_{name}"), |b| {
            let mut stage = c
                .stage(DestinationTelemetry::new(&metrics, "bench"))
                .expect("configured");
            b.iter(|| stage.plan(black_box(&traces)))
        });
    }
    for (name, toml) in [("none", ""), ("sampling_0.1", "sampling.rate = 0.1")] {
        let c = controls(toml);
        g.bench_function(format!("file_destination_encode_sampling_{name}"), |b| {
            let mut records = SpanRecords::new(None, DestinationTelemetry::new(&metrics, "file"))
                .with_controls(c.stage(DestinationTelemetry::new(&metrics, "file")));
            b.iter(|| {
                let mut out = Vec::with_capacity(SPANS);
                records.map(black_box(&traces), &mut out);
                out
            })
        });
    }
    // `tenants`: the gate in front of a mapper, for a tenant it takes and
    // for one it leaves out.
    let mut tenanted = traces.clone();
    tenanted.context.tenant = Some("team-a".into());
    for (name, taken) in [("taken", "team-a"), ("other_tenant", "team-b")] {
        let list = tracebridge::control::TenantsConfig::List(vec![taken.to_string()]);
        let filter = tracebridge::control::tenants::validate("bench", &list).expect("valid");
        g.bench_function(format!("file_destination_encode_tenant_gate_{name}"), |b| {
            let records = SpanRecords::new(None, DestinationTelemetry::new(&metrics, "file"));
            let mut gated = tracebridge::control::Gate::new(
                records,
                Some(filter.clone()),
                DestinationTelemetry::new(&metrics, "file"),
            );
            b.iter(|| {
                let mut out = Vec::with_capacity(SPANS);
                gated.map(black_box(&tenanted), &mut out);
                out
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench,
    adversarial,
    adversarial_bounds,
    trace_state,
    control_costs
);
criterion_main!(benches);

//! A minimal Opik stand-in for the Opik benchmark scenario (`benches/e2e.sh
//! opik`): it accepts `POST …/traces/batch` and `…/spans/batch` (gzipped or
//! not), counts the rows and answers 204, and answers every GET with 200 so
//! the startup check passes. `GET /count` returns `traces spans`. It checks
//! nothing else, so the sink is not the bottleneck.
//!
//! cargo run --release --example opik_sink   (prints `listening on ADDR`)
//!
//! With `OPIK_SINK_RELAY=<OTLP/HTTP traces URL>` it also sends, for every
//! batch of N span rows, one OTLP request of N empty spans there: the
//! benchmark harness (`../shared/perf/compare.sh`) counts spans at its OTLP
//! sink, so it then counts the Opik rows delivered (`benches/opik_beside_rotel.sh
//! --opik-only`).

use std::io::Read as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::any;
use serde::Deserialize;
use serde::de::IgnoredAny;

#[derive(Default)]
struct Counts {
    traces: AtomicU64,
    spans: AtomicU64,
    relay: Option<(reqwest::Client, String)>,
}

/// Tells the relay target that `n` span rows arrived: an OTLP request of
/// `n` empty spans.
async fn relay(to: &(reqwest::Client, String), n: usize) -> Result<(), String> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message as _;
    let span = Span {
        trace_id: vec![1; 16],
        span_id: vec![1; 8],
        name: "opik-row".into(),
        ..Default::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span; n],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let answer =
        to.0.post(&to.1)
            .header("content-type", "application/x-protobuf")
            .body(request.encode_to_vec())
            .send()
            .await
            .map_err(|e| e.to_string())?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(format!("relay answered {}", answer.status()))
    }
}

#[derive(Deserialize)]
struct Batch {
    #[serde(default)]
    traces: Vec<IgnoredAny>,
    #[serde(default)]
    spans: Vec<IgnoredAny>,
}

async fn handle(
    State(counts): State<Arc<Counts>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let path = uri.path();
    if path == "/count" {
        let t = counts.traces.load(Ordering::Relaxed);
        let s = counts.spans.load(Ordering::Relaxed);
        return (StatusCode::OK, format!("{t} {s}\n"));
    }
    if !path.ends_with("/batch") {
        return (StatusCode::OK, "{}".into());
    }
    let gzipped = headers
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes() == b"gzip");
    let mut plain = Vec::new();
    let json: &[u8] = if gzipped {
        if flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut plain)
            .is_err()
        {
            return (StatusCode::BAD_REQUEST, "bad gzip".into());
        }
        &plain
    } else {
        &body
    };
    match serde_json::from_slice::<Batch>(json) {
        Ok(b) => {
            // Relayed first: a batch refused here is sent again, and is
            // then counted (and relayed) once.
            if let (Some(to), n @ 1..) = (&counts.relay, b.spans.len()) {
                if let Err(e) = relay(to, n).await {
                    eprintln!("relay failed: {e}");
                    return (StatusCode::SERVICE_UNAVAILABLE, e);
                }
            }
            counts
                .traces
                .fetch_add(b.traces.len() as u64, Ordering::Relaxed);
            counts
                .spans
                .fetch_add(b.spans.len() as u64, Ordering::Relaxed);
            (StatusCode::NO_CONTENT, String::new())
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // reqwest is built without a default TLS provider (see Cargo.toml).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("listening on {}", listener.local_addr()?);
    let app = Router::new()
        .fallback(any(handle))
        .with_state(Arc::new(Counts {
            relay: std::env::var("OPIK_SINK_RELAY")
                .ok()
                .map(|url| (reqwest::Client::new(), url)),
            ..Default::default()
        }));
    axum::serve(listener, app).await?;
    Ok(())
}

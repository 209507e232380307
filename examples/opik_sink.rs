//! A minimal Opik stand-in for the Opik benchmark scenario (`benches/e2e.sh
//! opik`): it accepts `POST …/traces/batch` and `…/spans/batch` (gzipped or
//! not), counts the rows and answers 204, and answers every GET with 200 so
//! the startup check passes. `GET /count` returns `traces spans`. It checks
//! nothing else, so the sink is not the bottleneck.
//!
//! cargo run --release --example opik_sink   (prints `listening on ADDR`)

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
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("listening on {}", listener.local_addr()?);
    let app = Router::new()
        .fallback(any(handle))
        .with_state(Arc::new(Counts::default()));
    axum::serve(listener, app).await?;
    Ok(())
}

//! The admin server: `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use serde_json::json;

use crate::destination::StartupChecks;
use crate::telemetry::{DestinationTelemetry, Metrics};

/// Where the daemon is in its life, for `/readyz`.
#[derive(Debug, Default)]
pub struct Health(AtomicU8);

const STARTING: u8 = 0;
const READY: u8 = 1;
const DRAINING: u8 = 2;

impl Health {
    /// Receivers are bound and the config is loaded.
    pub fn set_ready(&self) {
        self.0.store(READY, Ordering::SeqCst);
    }

    /// Shutting down: stop sending new traffic here.
    pub fn set_draining(&self) {
        self.0.store(DRAINING, Ordering::SeqCst);
    }

    fn state(&self) -> u8 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A destination as `/status` reports it.
#[derive(Clone)]
pub struct StatusEntry {
    pub name: String,
    pub kind: &'static str,
    pub telemetry: DestinationTelemetry,
}

#[derive(Clone)]
struct AdminState {
    metrics: Metrics,
    health: Arc<Health>,
    destinations: Arc<Vec<StatusEntry>>,
    checks: StartupChecks,
    started: Instant,
}

pub fn routes(
    metrics: Metrics,
    health: Arc<Health>,
    destinations: Vec<StatusEntry>,
    checks: StartupChecks,
) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/status", get(status))
        .with_state(AdminState {
            metrics,
            health,
            destinations: Arc::new(destinations),
            checks,
            started: Instant::now(),
        })
}

/// Per destination: spans sent, failed and dropped, queue fill, the spool
/// backlog (`null` with `spool.mode = "memory"`), and the last error with its time (what `tracebridge status` prints).
async fn status(State(state): State<AdminState>) -> impl IntoResponse {
    let destinations: Vec<serde_json::Value> = state
        .destinations
        .iter()
        .map(|d| {
            let s = d.telemetry.status();
            let last_error = s.last_error().map(|(at, message)| {
                json!({"at": humantime::format_rfc3339_seconds(at).to_string(), "message": message})
            });
            let spool = s.spool.enabled.load(Relaxed).then(|| {
                json!({
                    "bytes": s.spool.bytes.load(Relaxed),
                    "records": s.spool.records.load(Relaxed),
                    "oldest_record_age_seconds": s.spool.oldest_age_ms.load(Relaxed) as f64 / 1000.0,
                })
            });
            let startup_check = state
                .checks
                .get(&d.name)
                .map(|v| json!({"ok": v.ok, "message": v.message}));
            json!({
                "name": d.name,
                "kind": d.kind,
                "sent_spans": s.sent_spans.load(Relaxed),
                "failed_spans": s.failed_spans.load(Relaxed),
                "dropped_spans": s.dropped_spans.load(Relaxed),
                "queue_size": s.queue_size.load(Relaxed),
                "queue_capacity": s.queue_capacity.load(Relaxed),
                "spool": spool,
                "last_error": last_error,
                "startup_check": startup_check,
            })
        })
        .collect();
    let body = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": crate::telemetry::COMMIT,
        "state": match state.health.state() { READY => "ready", DRAINING => "draining", _ => "starting" },
        "uptime_seconds": state.started.elapsed().as_secs(),
        "destinations": destinations,
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

/// 200 once ready; the body adds one line per failed startup check (the
/// daemon is still ready: those destinations retry, the others deliver).
async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    match state.health.state() {
        READY => {
            let mut body = String::from("ready\n");
            for v in state.checks.failures() {
                body.push_str(&format!(
                    "destination {}: startup check failed: {}\n",
                    v.destination, v.message
                ));
            }
            (StatusCode::OK, body)
        }
        DRAINING => (StatusCode::SERVICE_UNAVAILABLE, "draining\n".to_string()),
        STARTING => (StatusCode::SERVICE_UNAVAILABLE, "starting\n".to_string()),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "unknown state\n".to_string(),
        ),
    }
}

async fn metrics_text(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

//! `tracebridge check`: test a destination for real, like OpenRouter's
//! "Test Connection", and name the likely fix for each failure. Each kind's
//! `probe.rs` does the work; this is the verdict they share, and the
//! non-fatal startup check the daemon runs with it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::DestinationSettings;

/// One destination's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub destination: String,
    pub ok: bool,
    pub message: String,
}

impl Verdict {
    pub fn ok(destination: &str, message: impl Into<String>) -> Self {
        Self {
            destination: destination.to_string(),
            ok: true,
            message: message.into(),
        }
    }

    pub fn fail(destination: &str, message: impl Into<String>) -> Self {
        Self {
            destination: destination.to_string(),
            ok: false,
            message: message.into(),
        }
    }
}

/// A transport failure in words, with the likely fix: a refused connection
/// ("nothing is listening"), a name that does not resolve, a TLS failure,
/// a timeout, or a peer that does not speak the protocol; the detail as is
/// otherwise. `url` is shown as given (credentials already masked).
pub fn explain_connection(detail: &str, url: &str) -> String {
    let lower = detail.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    if has(&["connection refused"]) {
        format!("nothing is listening at {url} ({detail}); check the host and port")
    } else if has(&[
        "dns error",
        "failed to lookup",
        "name or service not known",
        "no such host",
        "nodename nor servname",
    ]) {
        format!("cannot resolve the host of {url} ({detail}); check the host name")
    } else if has(&[
        "certificate",
        "invalidcertificate",
        "unknownissuer",
        "handshake",
        "tls",
        "ssl",
        "corrupt message",
        "invalidcontenttype",
    ]) {
        format!(
            "TLS with {url} failed ({detail}); check http:// vs https://, and tls.ca_file for a private CA"
        )
    } else if has(&["timed out", "timeout", "deadline"]) {
        format!(
            "{url} did not answer in time ({detail}); check the address and any firewall, or raise timeout"
        )
    } else if has(&[
        "h2 protocol error",
        "http2 error",
        "frame with invalid size",
        "invalid http version",
        "invalid compression flag",
        "while receiving response with status",
        "without a grpc status",
        "received unexpected message",
        "broken pipe",
        "connection reset",
    ]) {
        format!(
            "{url} does not speak the configured protocol ({detail}); OTLP/gRPC is usually on port 4317 and OTLP/HTTP on 4318: check protocol and the port"
        )
    } else {
        detail.to_string()
    }
}

/// The startup check's verdict per destination, shared with the admin
/// server (`/status`, `/readyz`). Empty until the checks finish.
#[derive(Debug, Clone, Default)]
pub struct StartupChecks(Arc<Mutex<BTreeMap<String, Verdict>>>);

impl StartupChecks {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Verdict>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The verdict for one destination, once its check has run.
    pub fn get(&self, destination: &str) -> Option<Verdict> {
        self.lock().get(destination).cloned()
    }

    /// The failed checks, in name order.
    pub fn failures(&self) -> Vec<Verdict> {
        self.lock().values().filter(|v| !v.ok).cloned().collect()
    }

    /// Drops a destination's verdict (it was removed, or changed and is checked again).
    pub fn forget(&self, destination: &str) {
        self.lock().remove(destination);
    }

    fn record(&self, verdict: Verdict) {
        self.lock().insert(verdict.destination.clone(), verdict);
    }
}

/// Probes the destinations that set `require_check = true`, concurrently,
/// before the daemon binds anything: the failed verdicts, if any (the
/// daemon then refuses to start).
pub async fn required_checks(destinations: &[DestinationSettings]) -> Vec<Verdict> {
    let probes: Vec<(String, tokio::task::JoinHandle<Verdict>)> = destinations
        .iter()
        .filter(|d| d.require_check)
        .map(|d| {
            let d = d.clone();
            (
                d.name.clone(),
                tokio::spawn(async move { super::probe(&d).await }),
            )
        })
        .collect();
    let mut failed = Vec::new();
    for (name, probe) in probes {
        match probe.await {
            Ok(v) if v.ok => {
                tracing::info!(destination = %v.destination, "required startup check passed: {}", v.message);
            }
            Ok(v) => failed.push(v),
            Err(e) => failed.push(Verdict::fail(
                &name,
                format!("the check did not finish: {e}"),
            )),
        }
    }
    failed
}

/// The verdict of a destination whose startup check is switched off.
pub const SKIPPED: &str = "skipped (probe_on_start = false)";

/// Probes every destination once (but those with `probe_on_start = false`), concurrently and without blocking the
/// start: one WARN per failing destination with the likely fix, kept for
/// `/status` and `/readyz`. Failures are not fatal: exports are retried, and
/// the destination may come up later.
pub fn spawn_startup_checks(
    destinations: Vec<DestinationSettings>,
    checks: StartupChecks,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut probes = tokio::task::JoinSet::new();
        for d in destinations {
            if !d.probe_on_start {
                tracing::info!(destination = %d.name, "startup check skipped (probe_on_start = false)");
                checks.record(Verdict::ok(&d.name, SKIPPED));
                continue;
            }
            probes.spawn(async move { super::probe(&d).await });
        }
        while let Some(joined) = probes.join_next().await {
            let Ok(verdict) = joined else { continue };
            if verdict.ok {
                tracing::info!(destination = %verdict.destination, "startup check passed: {}", verdict.message);
            } else {
                tracing::warn!(
                    destination = %verdict.destination,
                    "startup check failed: {}; the daemon keeps running and exports to this destination will be retried, but they will fail until this is fixed (`tracebridge check` repeats the test)",
                    verdict.message
                );
            }
            checks.record(verdict);
        }
    })
}

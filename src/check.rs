//! `tracebridge check`: test every destination for real, like OpenRouter's
//! "Test Connection", and name the likely fix for each failure.

use std::time::Duration;

use crate::config::{DestinationSettings, DestinationTarget, OpikTarget};
use crate::destination::otlp::OtlpClient;
use crate::export::{RequestSender, SendError};

/// One destination's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub destination: String,
    pub ok: bool,
    pub message: String,
}

impl Verdict {
    fn ok(d: &DestinationSettings, message: impl Into<String>) -> Self {
        Self {
            destination: d.name.clone(),
            ok: true,
            message: message.into(),
        }
    }
    fn fail(d: &DestinationSettings, message: impl Into<String>) -> Self {
        Self {
            destination: d.name.clone(),
            ok: false,
            message: message.into(),
        }
    }
}

/// Checks one destination.
pub async fn check(d: &DestinationSettings) -> Verdict {
    let timeout = d.export.timeout.min(Duration::from_secs(15));
    match &d.target {
        DestinationTarget::Console => Verdict::ok(d, "console: prints to stdout"),
        DestinationTarget::File { path } => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(_) => Verdict::ok(d, format!("file: {} is writable", path.display())),
            Err(e) => Verdict::fail(d, format!("file: cannot append to {}: {e}", path.display())),
        },
        DestinationTarget::Opik(t) => check_opik(d, t, timeout).await,
        DestinationTarget::Otlp(t) => {
            let client = match OtlpClient::new(t, timeout) {
                Ok(c) => c,
                Err(e) => return Verdict::fail(d, format!("{}: {e}", t.flavour)),
            };
            // An empty export, as OpenRouter's test does.
            let outcome = match client.build(&[]) {
                Ok(req) => client.send(&req).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(_) => Verdict::ok(
                    d,
                    format!("{}: {} accepted an empty export", t.flavour, t.url),
                ),
                Err(SendError::Retryable { detail, .. })
                | Err(SendError::Rejected { detail, .. }) => Verdict::fail(
                    d,
                    format!("{}: {}", t.flavour, explain_connection(&detail, &t.url)),
                ),
            }
        }
    }
}

fn explain_connection(detail: &str, url: &str) -> String {
    if detail.contains("Connection refused") || detail.contains("connection refused") {
        format!("nothing is listening at {url} ({detail})")
    } else {
        detail.to_string()
    }
}

async fn check_opik(d: &DestinationSettings, t: &OpikTarget, timeout: Duration) -> Verdict {
    let http = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(h) => h,
        Err(e) => return Verdict::fail(d, format!("opik: cannot build an HTTP client: {e}")),
    };
    let base_path_hint = "wrong base path? local Opik uses http://localhost:5173/api, self-hosted and Comet Cloud use https://<host>/opik/api";
    let ping = format!("{}/is-alive/ping", t.url);
    match http.get(&ping).send().await {
        Err(e) if e.is_connect() => {
            return Verdict::fail(
                d,
                format!(
                    "opik: nothing is listening at {} ({})",
                    t.url,
                    crate::export::error_chain(&e)
                ),
            );
        }
        Err(e) => {
            return Verdict::fail(
                d,
                format!(
                    "opik: GET {ping} failed: {}",
                    crate::export::error_chain(&e)
                ),
            );
        }
        Ok(r) if matches!(r.status().as_u16(), 404 | 405) => {
            return Verdict::fail(
                d,
                format!("opik: GET {ping} answered {}: {base_path_hint}", r.status()),
            );
        }
        Ok(r) if !r.status().is_success() => {
            return Verdict::fail(d, format!("opik: GET {ping} answered {}", r.status()));
        }
        Ok(_) => {}
    }
    let projects = format!("{}/v1/private/projects?size=1", t.url);
    let mut req = http.get(&projects).header("Comet-Workspace", &t.workspace);
    if let Some(key) = &t.api_key {
        req = req.header("Authorization", key.expose());
    }
    match req.send().await {
        Err(e) => Verdict::fail(
            d,
            format!(
                "opik: GET {projects} failed: {}",
                crate::export::error_chain(&e)
            ),
        ),
        Ok(r) => match r.status().as_u16() {
            200..=299 => Verdict::ok(
                d,
                format!(
                    "opik: {} is alive and accepts the key for workspace {:?} (project {:?})",
                    t.url, t.workspace, t.project_name
                ),
            ),
            401 => Verdict::fail(
                d,
                "opik: 401: the API key was rejected; check api_key / OPIK_API_KEY",
            ),
            403 => Verdict::fail(
                d,
                format!(
                    "opik: 403: the workspace {:?} is missing or wrong, or the key has no access to it; check workspace / OPIK_WORKSPACE",
                    t.workspace
                ),
            ),
            404 | 405 => Verdict::fail(
                d,
                format!(
                    "opik: GET {projects} answered {}: {base_path_hint}",
                    r.status()
                ),
            ),
            _ => Verdict::fail(d, format!("opik: GET {projects} answered {}", r.status())),
        },
    }
}

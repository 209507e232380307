//! Sending rows to Opik: `POST {url}/v1/private/traces/batch`, then
//! `PATCH {url}/v1/private/traces/{id}` for trace rows whose content the
//! trace table released (rare: a span after its trace was finalised), then
//! `/v1/private/spans/batch`, all gzipped; then feedback scores with
//! `PUT {url}/v1/private/{traces,spans}/feedback-scores`.
//!
//! | Answer | What happens |
//! |---|---|
//! | 2xx | delivered |
//! | 408, 429, 5xx, connection error, timeout | retried (honouring `Retry-After` / `RateLimit-Reset`) |
//! | 400, 413, 422 | the batch is bisected until the bad rows are alone; those are logged and counted |
//! | 401, 403, 404, 405 | failed at once with the likely fix (key, workspace, base path) |
//!
//! Every error names the setting at fault (`destinations.<name>.url`,
//! `api_key`, `workspace`), where it was set, and the likely fix.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap};

use super::config::OpikTarget;
use super::encode::{OpikItem, RowKind};
use super::tenants::OpikTenant;
use crate::config::secret::Secret;
use crate::config::secret::mask_url;
use crate::destination::sources::ErrorContext;
use crate::export::http_client::{gzip, rejected, retry_hint};
use crate::export::{Delivered, RequestSender, SendError};
use crate::telemetry::reason::SendFailure;

/// One encoded batch: at most four gzipped bodies (rows, then feedback
/// scores), all of one route (workspace and key).
#[derive(Debug)]
pub struct OpikRequest {
    route: u16,
    traces: Option<Bytes>,
    /// (URL, gzipped `TraceUpdate`) per trace row sent as an update.
    trace_updates: Vec<(String, Bytes)>,
    spans: Option<Bytes>,
    trace_scores: Option<Bytes>,
    span_scores: Option<Bytes>,
}

pub struct OpikClient {
    http: reqwest::Client,
    /// `{url}/v1/private/traces`, where a trace's id follows for an update.
    trace_url: String,
    traces_url: String,
    spans_url: String,
    trace_scores_url: String,
    span_scores_url: String,
    api_key: Option<Secret>,
    workspace: String,
    /// Each tenant route's workspace and key (route `i + 1`; see
    /// [`super::tenants`]).
    tenants: Vec<OpikTenant>,
    /// The base URL, for error messages.
    url: String,
    context: ErrorContext,
    deprecation_logged: AtomicBool,
}

impl OpikClient {
    pub fn new(
        target: &OpikTarget,
        timeout: Duration,
        context: ErrorContext,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .user_agent(concat!("tracebridge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            trace_url: format!("{}/v1/private/traces", target.url),
            traces_url: format!("{}/v1/private/traces/batch", target.url),
            spans_url: format!("{}/v1/private/spans/batch", target.url),
            trace_scores_url: format!("{}/v1/private/traces/feedback-scores", target.url),
            span_scores_url: format!("{}/v1/private/spans/feedback-scores", target.url),
            api_key: target.api_key.clone(),
            workspace: target.workspace.clone(),
            tenants: target.tenants.clone(),
            url: target.url.clone(),
            context,
            deprecation_logged: AtomicBool::new(false),
        })
    }

    /// The workspace and key of `route`.
    fn credentials(&self, route: u16) -> (&str, Option<&Secret>) {
        match usize::from(route)
            .checked_sub(1)
            .and_then(|i| self.tenants.get(i))
        {
            Some(t) => (&t.workspace, t.api_key.as_ref()),
            None => (&self.workspace, self.api_key.as_ref()),
        }
    }

    async fn post(&self, url: &str, body: &Bytes, route: u16) -> Result<(), SendError> {
        self.send_body(reqwest::Method::POST, url, body, route)
            .await
    }

    async fn send_body(
        &self,
        method: reqwest::Method,
        url: &str,
        body: &Bytes,
        route: u16,
    ) -> Result<(), SendError> {
        let what = format!("{method} {}", mask_url(url));
        let (workspace, api_key) = self.credentials(route);
        let mut req = self
            .http
            .request(method, url)
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_ENCODING, "gzip")
            .header("Comet-Workspace", workspace)
            .body(body.clone());
        if let Some(key) = api_key {
            req = req.header("Authorization", key.expose());
        }
        let response = req.send().await.map_err(|e| {
            self.context
                .connection_failed(&what, url, &self.context.setting("url"), &e)
        })?;
        let status = response.status();
        self.log_deprecation(response.headers());
        if status.is_success() {
            return Ok(());
        }
        let hint = retry_hint(response.headers());
        let body = response.text().await.unwrap_or_default();
        let mut fixes = self.fixes();
        if route > 0 {
            fixes = self.tenant_fixes(route, fixes);
        }
        Err(classify(status, hint, &what, &body, &fixes))
    }

    /// The likely fix for each refusal, naming this destination's settings.
    fn fixes(&self) -> Fixes {
        let c = &self.context;
        let url = mask_url(&self.url);
        Fixes {
            unauthorized: if self.api_key.is_some() {
                format!(
                    "the API key was rejected: {} is not a valid key for workspace {:?}; set the right key there (or api_key_file / OPIK_API_KEY), then run `tracebridge check --destination {}`",
                    c.setting("api_key"),
                    self.workspace,
                    c.destination
                )
            } else {
                format!(
                    "{url} wants an API key and none is set: set api_key or api_key_file in [destinations.{}], or OPIK_API_KEY",
                    c.destination
                )
            },
            forbidden: format!(
                "workspace {:?} ({}) is wrong, or the key has no access to it: check the workspace name in Opik and the key's owner",
                self.workspace,
                c.setting("workspace")
            ),
            wrong_url: format!(
                "{} = {url:?} is not Opik's API base path: local Opik uses http://localhost:5173/api, Comet Cloud https://www.comet.com/opik/api, self-hosted https://<host>/opik/api",
                c.setting("url")
            ),
            too_large: format!(
                "too large for Opik or a proxy in front of it: lower destinations.{}.batch.max_bytes, or raise the proxy's body limit",
                c.destination
            ),
        }
    }

    /// [`OpikClient::fixes`] for the rows of a tenant route: its own
    /// workspace and key are at fault.
    fn tenant_fixes(&self, route: u16, mut fixes: Fixes) -> Fixes {
        let (workspace, _) = self.credentials(route);
        let tenant = usize::from(route)
            .checked_sub(1)
            .and_then(|i| self.tenants.get(i))
            .map_or("?", |t| &*t.name);
        let setting = format!("destinations.{}.tenants.{tenant}", self.context.destination);
        fixes.unauthorized = format!(
            "tenant {tenant:?}: the API key was refused for workspace {workspace:?}; check {setting}.api_key (or api_key_file), falling back to the destination's key when unset"
        );
        fixes.forbidden = format!(
            "tenant {tenant:?}: workspace {workspace:?} ({setting}.workspace) is wrong, or the key has no access to it"
        );
        fixes
    }

    fn log_deprecation(&self, headers: &HeaderMap) {
        if let Some(v) = headers
            .get("X-Opik-Deprecation")
            .and_then(|v| v.to_str().ok())
        {
            if !self.deprecation_logged.swap(true, Ordering::Relaxed) {
                tracing::warn!(deprecation = v, "Opik reports a deprecation");
            }
        }
    }
}

/// The likely fix per refusal, in words naming the destination's settings.
#[derive(Debug, Clone, Default)]
pub struct Fixes {
    pub unauthorized: String,
    pub forbidden: String,
    pub wrong_url: String,
    pub too_large: String,
}

/// What an error answer means for the batch.
pub fn classify(
    status: StatusCode,
    hint: Option<Duration>,
    what: &str,
    body: &str,
    fixes: &Fixes,
) -> SendError {
    let body: String = body.chars().take(500).collect();
    let detail = format!("{what} answered {status}: {body}");
    let retryable = |reason| SendError::Retryable {
        reason,
        detail: detail.clone(),
        retry_after: hint,
    };
    let rejected = |reason, isolate, fix: &str| rejected(reason, isolate, &detail, fix);
    match status.as_u16() {
        408 => retryable(SendFailure::Timeout),
        429 => retryable(SendFailure::Throttled),
        500..=599 => retryable(SendFailure::ServerError),
        400 | 422 => rejected(SendFailure::Rejected, true, ""),
        413 => rejected(SendFailure::TooLarge, true, &fixes.too_large),
        401 => rejected(SendFailure::Unauthorized, false, &fixes.unauthorized),
        403 => rejected(SendFailure::Forbidden, false, &fixes.forbidden),
        404 | 405 => rejected(SendFailure::WrongUrl, false, &fixes.wrong_url),
        _ => rejected(SendFailure::Rejected, true, ""),
    }
}

/// `{"<key>":[row,row,…]}`, gzipped, without copying the rows into one string first.
fn gzip_body(key: &str, rows: &[&str]) -> Result<Bytes, SendError> {
    let head = [b"{\"".as_slice(), key.as_bytes(), b"\":["];
    let rows = rows.iter().enumerate().flat_map(|(i, row)| {
        let comma: &[u8] = if i > 0 { b"," } else { b"" };
        [comma, row.as_bytes()]
    });
    let size: usize = rows.clone().map(<[u8]>::len).sum();
    gzip(head.into_iter().chain(rows).chain([b"]}".as_slice()]), size).map(Bytes::from)
}

impl RequestSender for OpikClient {
    type Item = OpikItem;
    type Request = OpikRequest;

    fn build(&self, items: &[OpikItem]) -> Result<OpikRequest, SendError> {
        let rows = |kind| -> Vec<&str> {
            items
                .iter()
                .filter(|i| i.kind == kind)
                .map(|i| &*i.json)
                .collect()
        };
        let body = |kind, key| {
            let list = rows(kind);
            (!list.is_empty())
                .then(|| gzip_body(key, &list))
                .transpose()
        };
        let trace_updates = items
            .iter()
            .filter(|i| i.kind == RowKind::TraceUpdate)
            .map(|i| {
                let body = gzip([i.json.as_bytes()], i.json.len())?;
                Ok((format!("{}/{}", self.trace_url, i.id), Bytes::from(body)))
            })
            .collect::<Result<Vec<_>, SendError>>()?;
        Ok(OpikRequest {
            route: items.first().map_or(0, |i| i.route),
            traces: body(RowKind::Trace, "traces")?,
            trace_updates,
            spans: body(RowKind::Span, "spans")?,
            trace_scores: body(RowKind::TraceScore, "scores")?,
            span_scores: body(RowKind::SpanScore, "scores")?,
        })
    }

    async fn send(&self, request: &OpikRequest) -> Result<Delivered, SendError> {
        let route = request.route;
        if let Some(body) = &request.traces {
            self.post(&self.traces_url, body, route).await?;
        }
        for (url, body) in &request.trace_updates {
            self.send_body(reqwest::Method::PATCH, url, body, route)
                .await?;
        }
        if let Some(body) = &request.spans {
            self.post(&self.spans_url, body, route).await?;
        }
        // Scores after the rows they score.
        for (url, body) in [
            (&self.trace_scores_url, &request.trace_scores),
            (&self.span_scores_url, &request.span_scores),
        ] {
            if let Some(body) = body {
                self.send_body(reqwest::Method::PUT, url, body, route)
                    .await?;
            }
        }
        Ok(Delivered::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_as_the_reference_says() {
        crate::app::install_tls_provider();
        let target = OpikTarget {
            url: "http://localhost:5173/api".into(),
            ..crate::destination::opik::config::test_target(10)
        };
        let client = OpikClient::new(
            &target,
            Duration::from_secs(1),
            ErrorContext::new("o", &Default::default()),
        )
        .unwrap();
        let fixes = client.fixes();
        let c = |code: u16| {
            classify(
                StatusCode::from_u16(code).unwrap(),
                None,
                "POST x",
                "",
                &fixes,
            )
        };
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(matches!(c(code), SendError::Retryable { .. }), "{code}");
        }
        for code in [400, 422, 413] {
            assert!(
                matches!(c(code), SendError::Rejected { isolate: true, .. }),
                "{code}"
            );
        }
        for (code, hint) in [
            (
                401,
                "none is set: set api_key or api_key_file in [destinations.o]",
            ),
            (403, "destinations.o.workspace"),
            (
                404,
                "destinations.o.url = \"http://localhost:5173/api\" is not Opik's API base path",
            ),
            (405, "/opik/api"),
        ] {
            match c(code) {
                SendError::Rejected {
                    isolate: false,
                    detail,
                    ..
                } => assert!(detail.contains(hint), "{code}: {detail}"),
                other => panic!("{code}: {other:?}"),
            }
        }
    }
}

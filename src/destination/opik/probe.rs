//! The Opik probe: `GET /is-alive/ping`, then an authenticated read of the
//! projects, naming the likely fix for each failure.

use std::time::Duration;

use super::config::OpikTarget;
use crate::config::secret::mask_url;
use crate::destination::probe::{Verdict, explain_connection};
use crate::export::error_chain;

pub async fn probe(d: &str, t: &OpikTarget, timeout: Duration) -> Verdict {
    let http = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(h) => h,
        Err(e) => return Verdict::fail(d, format!("opik: cannot build an HTTP client: {e}")),
    };
    let base_path_hint = "wrong base path? local Opik uses http://localhost:5173/api, self-hosted and Comet Cloud use https://<host>/opik/api";
    let url = mask_url(&t.url);
    let ping_url = format!("{}/is-alive/ping", t.url);
    let ping = mask_url(&ping_url);
    match http.get(&ping_url).send().await {
        Err(e) => {
            return Verdict::fail(
                d,
                format!(
                    "opik: GET {ping} failed: {}",
                    explain_connection(&error_chain(&e), &url)
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
    let projects_url = format!("{}/v1/private/projects?size=1", t.url);
    let projects = mask_url(&projects_url);
    let mut req = http
        .get(&projects_url)
        .header("Comet-Workspace", &t.workspace);
    if let Some(key) = &t.api_key {
        req = req.header("Authorization", key.expose());
    }
    match req.send().await {
        Err(e) => Verdict::fail(
            d,
            format!(
                "opik: GET {projects} failed: {}",
                explain_connection(&error_chain(&e), &url)
            ),
        ),
        Ok(r) => match r.status().as_u16() {
            200..=299 => Verdict::ok(
                d,
                format!(
                    "opik: {} is alive and accepts the key for workspace {:?} (project {:?})",
                    url, t.workspace, t.project_name
                ),
            ),
            401 if t.api_key.is_none() => Verdict::fail(
                d,
                format!(
                    "opik: 401: {url} wants an API key and none is set; set api_key or api_key_file in [destinations.{d}], or OPIK_API_KEY"
                ),
            ),
            401 => Verdict::fail(
                d,
                format!(
                    "opik: 401: the API key was rejected; check api_key / api_key_file in [destinations.{d}] or OPIK_API_KEY, and that the key belongs to workspace {:?}",
                    t.workspace
                ),
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

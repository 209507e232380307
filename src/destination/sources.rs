//! What an export error says about its destination: the setting a value
//! came from (`destinations.<name>.url`, `api_key`, …), where that setting
//! was set (the config file, a `TRACEBRIDGE_*` or SDK variable, a default),
//! and the likely fix.

use std::collections::BTreeMap;

use crate::config::secret::mask_url;
use crate::destination::probe::explain_connection;
use crate::export::SendError;
use crate::export::http_client::transport_error;

/// Where each of a destination's settings came from ("file /etc/…",
/// "env OPIK_API_KEY", "default (opik)"), keyed by the key in its table.
/// Filled by [`crate::config::Loaded::settings`]; empty when settings are
/// built without a loaded file (tests).
#[derive(Debug, Clone, Default)]
pub struct Sources(pub BTreeMap<String, String>);

/// Where a value came from is not part of the value: a reload that moves a
/// key from the environment to the file changes nothing.
impl PartialEq for Sources {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A destination's name and sources, held by its sender.
#[derive(Debug, Clone, Default)]
pub struct ErrorContext {
    pub destination: String,
    pub sources: Sources,
    /// Explain transport failures (off for `tracebridge check`, which
    /// explains them itself).
    explain_transport: bool,
}

impl ErrorContext {
    pub fn new(destination: &str, sources: &Sources) -> Self {
        Self {
            destination: destination.to_string(),
            sources: sources.clone(),
            explain_transport: true,
        }
    }

    /// For a probe: settings named, transport failures left as they are.
    pub fn for_probe(destination: &str) -> Self {
        Self {
            destination: destination.to_string(),
            sources: Sources::default(),
            explain_transport: false,
        }
    }

    /// Whether transport failures are explained here.
    pub fn explains_transport(&self) -> bool {
        self.explain_transport
    }

    /// Whether the table or the environment set `key` (or a default filled it).
    pub fn has(&self, key: &str) -> bool {
        self.sources.0.contains_key(key)
    }

    /// `destinations.<name>.<key> (<source>)`, the source when known.
    pub fn setting(&self, key: &str) -> String {
        let full = format!("destinations.{}.{key}", self.destination);
        match self.sources.0.get(key) {
            Some(source) => format!("{full} ({source})"),
            None => full,
        }
    }

    /// An OTLP destination's URL setting: `traces_endpoint` or `endpoint`.
    pub fn otlp_url_setting(&self) -> String {
        if self.has("traces_endpoint") {
            self.setting("traces_endpoint")
        } else {
            self.setting("endpoint")
        }
    }

    /// A request that got no answer: retried, with what the failure likely
    /// means (nothing listening, a name that does not resolve, TLS, a
    /// timeout, the wrong protocol) and the setting that holds the URL.
    pub fn connection_failed(
        &self,
        what: &str,
        url: &str,
        url_setting: &str,
        e: &reqwest::Error,
    ) -> SendError {
        let mut err = transport_error(what, e);
        if !self.explain_transport {
            return err;
        }
        if let SendError::Retryable { detail, .. } = &mut err {
            let cause = detail
                .strip_prefix(what)
                .and_then(|d| d.strip_prefix(": "))
                .unwrap_or(detail)
                .to_string();
            *detail = format!(
                "{what}: {}; the URL is {url_setting}",
                explain_connection(&cause, &mask_url(url))
            );
        }
        err
    }
}

//! The Opik destination's section and its validation: settings from the
//! file (or `TRACEBRIDGE_*` variables) first, then the Opik SDK's own
//! variables (`OPIK_API_KEY`, `OPIK_URL_OVERRIDE`, `OPIK_WORKSPACE`,
//! `OPIK_PROJECT_NAME`), then Opik's defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::secret::{self, Secret};
use crate::config::{ConfigError, EnvLookup, ExportSettings};

pub const OPIK_DEFAULT_URL: &str = "http://localhost:5173/api";
pub const OPIK_DEFAULT_WORKSPACE: &str = "default";
pub const OPIK_DEFAULT_PROJECT: &str = "Default Project";

/// Opik allows at most 50 tags per item.
pub const MAX_TAGS: usize = 50;
/// Opik accepts at most this many rows per batch request.
pub const MAX_BATCH_ITEMS: usize = 1000;

/// `[destinations.<name>] type = "opik"` as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpikConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
    /// Base URL of the REST API (`…/api` locally, `…/opik/api` for Cloud and self-hosted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Comet workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// Project for traces that do not choose one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    /// Tags added to every trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// How long a trace's Opik id is remembered after its last span.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde::option"
    )]
    pub trace_ttl: Option<Duration>,
    /// A trace without new spans for this long is finalised.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde::option"
    )]
    pub stale_trace_timeout: Option<Duration>,
    /// Traces tracked at once; beyond this the oldest are finalised and forgotten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_traces: Option<usize>,
    /// How long a GenAI log record waits for its span, and a span for late
    /// records (which then rewrite its row).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde::option"
    )]
    pub log_join_window: Option<Duration>,
    /// Log records (and spans) held for joining at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_max_held_records: Option<usize>,
    /// Bytes of log records and spans held for joining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_max_held_bytes: Option<usize>,
    /// Where resource attributes are written: once per trace (its row's
    /// metadata) or on every span row too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_attributes_in: Option<ResourceIn>,
}

/// `resource_attributes_in`: where a span's resource attributes go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceIn {
    /// Once, in the trace row's `metadata.resource`; a span row carries its
    /// own only when it differs from its trace's.
    #[default]
    Trace,
    /// Also in every span row's `metadata.otel.resource`.
    EverySpan,
}

/// The keys of this kind's section.
pub const KEYS: &[&str] = &[
    "api_key",
    "api_key_file",
    "url",
    "workspace",
    "project_name",
    "tags",
    "trace_ttl",
    "stale_trace_timeout",
    "max_open_traces",
    "log_join_window",
    "log_max_held_records",
    "log_max_held_bytes",
    "resource_attributes_in",
];

/// A validated Opik destination.
#[derive(Debug, Clone, PartialEq)]
pub struct OpikTarget {
    /// Base URL without a trailing slash, e.g. `https://www.comet.com/opik/api`.
    pub url: String,
    pub api_key: Option<Secret>,
    pub workspace: String,
    pub project_name: String,
    pub tags: Vec<String>,
    pub trace_ttl: Duration,
    pub stale_trace_timeout: Duration,
    pub max_open_traces: usize,
    pub logs: LogJoinSettings,
    /// Where the trace table is kept (set from `[state]` at load).
    pub state: super::state::TraceState,
    pub resource_attributes_in: ResourceIn,
    /// Tenants with their own workspace, project or key
    /// (`[destinations.<name>.tenants.<tenant>]`, see [`super::tenants`]).
    pub tenants: Vec<super::tenants::OpikTenant>,
}

pub use crate::semconv::logs::join::LogJoinSettings;

/// The unit tests' Opik target: `http://x/api`, workspace `default`,
/// project `p`, in-memory state, `max_open_traces` as given.
#[cfg(test)]
pub(crate) fn test_target(max_open_traces: usize) -> OpikTarget {
    OpikTarget {
        url: "http://x/api".into(),
        api_key: None,
        workspace: "default".into(),
        project_name: "p".into(),
        tags: vec![],
        trace_ttl: Duration::from_secs(3600),
        stale_trace_timeout: Duration::from_secs(60),
        max_open_traces,
        logs: Default::default(),
        state: Default::default(),
        resource_attributes_in: ResourceIn::Trace,
        tenants: Vec::new(),
    }
}

pub fn validate(
    name: &str,
    c: OpikConfig,
    export: &ExportSettings,
    env: EnvLookup<'_>,
) -> Result<OpikTarget, ConfigError> {
    let key = |field: &str| format!("destinations.{name}.{field}");
    let invalid = |msg: String| Err(ConfigError::Invalid(msg));
    let api_key = secret::resolve(
        &key("api_key"),
        c.api_key.as_ref(),
        c.api_key_file.as_deref(),
    )?
    .or_else(|| env("OPIK_API_KEY").map(Secret::new));
    let url = c
        .url
        .or_else(|| env("OPIK_URL_OVERRIDE"))
        .unwrap_or_else(|| OPIK_DEFAULT_URL.to_string());
    let url = url.trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return invalid(format!(
            "{} = {:?}: expected an http:// or https:// URL such as https://www.comet.com/opik/api",
            key("url"),
            secret::mask_url(&url)
        ));
    }
    let workspace = c
        .workspace
        .or_else(|| env("OPIK_WORKSPACE"))
        .unwrap_or_else(|| OPIK_DEFAULT_WORKSPACE.to_string());
    let project_name = c
        .project_name
        .or_else(|| env("OPIK_PROJECT_NAME"))
        .unwrap_or_else(|| OPIK_DEFAULT_PROJECT.to_string());
    if workspace.trim().is_empty() || project_name.trim().is_empty() {
        return invalid(format!(
            "{} and {} must not be blank",
            key("workspace"),
            key("project_name")
        ));
    }
    let tags = c.tags.unwrap_or_default();
    if tags.len() > MAX_TAGS {
        return invalid(format!(
            "{} has {} tags; Opik allows at most {MAX_TAGS} per trace",
            key("tags"),
            tags.len()
        ));
    }
    let max_open_traces = c.max_open_traces.unwrap_or(10_000);
    if max_open_traces == 0 {
        return invalid(format!("{} must be at least 1", key("max_open_traces")));
    }
    let stale_trace_timeout = c.stale_trace_timeout.unwrap_or(Duration::from_secs(300));
    let trace_ttl = c.trace_ttl.unwrap_or(Duration::from_secs(3 * 3600));
    if stale_trace_timeout.is_zero() || trace_ttl < stale_trace_timeout {
        return invalid(format!(
            "{} must be greater than zero and not above {}",
            key("stale_trace_timeout"),
            key("trace_ttl")
        ));
    }
    let defaults = LogJoinSettings::default();
    let logs = LogJoinSettings {
        window: c.log_join_window.unwrap_or(defaults.window),
        max_records: c.log_max_held_records.unwrap_or(defaults.max_records),
        max_bytes: c.log_max_held_bytes.unwrap_or(defaults.max_bytes),
    };
    if logs.window.is_zero() || logs.max_records == 0 || logs.max_bytes == 0 {
        return invalid(format!(
            "{}, {} and {} must be greater than zero",
            key("log_join_window"),
            key("log_max_held_records"),
            key("log_max_held_bytes")
        ));
    }
    if export.batch.max_items > MAX_BATCH_ITEMS {
        return invalid(format!(
            "{} = {}: Opik accepts at most {MAX_BATCH_ITEMS} items per batch",
            key("batch.max_items"),
            export.batch.max_items
        ));
    }
    Ok(OpikTarget {
        url,
        api_key,
        workspace,
        project_name,
        tags,
        trace_ttl,
        stale_trace_timeout,
        max_open_traces,
        logs,
        state: super::state::TraceState::Memory,
        resource_attributes_in: c.resource_attributes_in.unwrap_or_default(),
        tenants: Vec::new(),
    })
}

/// The providers Opik loads prices for (LiteLLM's table, keyed by Opik's
/// provider names through `PROVIDERS_MAPPING` in Opik's `CostService`). With
/// `cost.source = "auto"`, tracebridge leaves calls under these to Opik,
/// which computes their cost itself, and prices the rest (`openrouter`,
/// `azure.ai.inference`, `cohere`, a framework name, none).
pub const PRICED_BY_OPIK: &[&str] = &[
    "openai",
    "azure",
    "anthropic",
    "anthropic_vertexai",
    "google_vertexai",
    "google_ai",
    "bedrock",
    "xai",
    "deepseek",
    "fireworks_ai",
    "moonshot",
    "groq",
    "mistral",
    "perplexity",
];

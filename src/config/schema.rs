//! The user-facing configuration schema: exactly what `config.toml` and the
//! `TRACEBRIDGE_*` environment variables may contain.
//!
//! These types only describe and default the settings. [`super::validate`]
//! turns them into the runtime types the daemon uses, so every check happens
//! once, at load.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secret::Secret;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub receiver: ReceiverConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    /// How long a SIGTERM/SIGINT shutdown may spend flushing and draining.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// One table per destination, keyed by a name of the user's choosing.
    pub destinations: BTreeMap<String, DestinationConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            receiver: ReceiverConfig::default(),
            admin: AdminConfig::default(),
            log: LogConfig::default(),
            shutdown_timeout: Duration::from_secs(10),
            destinations: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiverConfig {
    /// OTLP/gRPC listen address.
    pub grpc_listen: String,
    /// OTLP/HTTP listen address.
    pub http_listen: String,
    /// Largest OTLP/HTTP body accepted, measured after decompression.
    pub max_request_bytes: u64,
    /// Largest OTLP/gRPC message accepted, measured after decompression.
    pub grpc_max_message_bytes: u64,
    /// CORS for the HTTP receiver; off unless configured.
    pub cors: Option<CorsConfig>,
    /// TLS for both receivers; plain TCP unless configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ReceiverTlsConfig>,
    /// Bearer-token authentication for both receivers; off unless configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<ReceiverAuthConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverTlsConfig {
    /// Server certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Server private key (PEM).
    pub key_file: PathBuf,
    /// CA (PEM) that client certificates must chain to; when set, clients must present one (mTLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
    /// How often the files are checked for changes (they are also reloaded on SIGHUP).
    #[serde(default = "default_reload_interval", with = "humantime_serde")]
    pub reload_interval: Duration,
}

fn default_reload_interval() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverAuthConfig {
    /// Accepted `Authorization: Bearer <token>` values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bearer_tokens: Vec<Secret>,
    /// A file with one accepted token per line (for Kubernetes secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_tokens_file: Option<PathBuf>,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            grpc_listen: "127.0.0.1:4317".into(),
            http_listen: "127.0.0.1:4318".into(),
            max_request_bytes: 20 * 1024 * 1024,
            grpc_max_message_bytes: 16 * 1024 * 1024,
            cors: None,
            tls: None,
            auth: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins allowed to POST traces from a browser, e.g. `https://app.example.com`, or `*`.
    pub allowed_origins: Vec<String>,
    /// Extra request headers browsers may send (Content-Type is always allowed).
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    /// How long browsers may cache the preflight answer.
    #[serde(default, with = "humantime_serde::option")]
    pub max_age: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    pub listen: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:13133".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace` or any `RUST_LOG` directive; `RUST_LOG` wins.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The kinds of destination. Later kinds (opik, arize, otlp) are listed so
/// that a config written for them gets a clear "not available yet" error
/// rather than an "unknown variant" one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    Console,
    File,
    Opik,
    Arize,
    Otlp,
}

impl DestinationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::File => "file",
            Self::Opik => "opik",
            Self::Arize => "arize",
            Self::Otlp => "otlp",
        }
    }
}

/// One `[destinations.<name>]` table.
///
/// Settings shared by every kind come first; kind-specific settings are
/// optional here and checked against the kind in [`super::validate`], so a
/// setting given to the wrong kind is an error that names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    #[serde(rename = "type")]
    pub kind: DestinationKind,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Strip prompt, completion and tool content before export.
    #[serde(default)]
    pub privacy_mode: bool,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub queue: QueueConfig,
    #[serde(default)]
    pub retry: RetryConfig,
    /// Per-request timeout of one export attempt.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,

    // --- file ---
    /// `file`: where to append JSON lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,

    // --- secrets shared by the remote kinds ---
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,

    // --- opik ---
    /// `opik`: base URL of the REST API (`…/api` locally, `…/opik/api` for Cloud and self-hosted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `opik`: Comet workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// `opik`, `arize`, `otlp`: project for traces that do not choose one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    /// `opik`: tags added to every trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// `opik`: how long a trace's Opik id is remembered after its last span.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde::option"
    )]
    pub trace_ttl: Option<Duration>,
    /// `opik`: a trace without new spans for this long is finalised.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde::option"
    )]
    pub stale_trace_timeout: Option<Duration>,
    /// `opik`: traces tracked at once; beyond this the oldest are finalised and forgotten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_traces: Option<usize>,

    // --- otlp / arize ---
    /// `otlp`/`arize`: where to send. gRPC: `http(s)://host:port`; HTTP: a base URL (`/v1/traces` is appended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `otlp`/`arize` over HTTP: the full traces URL, used as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<OtlpProtocol>,
    /// `otlp`/`arize`: extra request headers (gRPC metadata). Values are secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, HeaderValueSource>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<OtlpCompression>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// `otlp`/`arize`: `passthrough` forwards spans as received; `openinference` adds OpenInference attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semconv: Option<SemconvMode>,
    /// `otlp`/`arize`: resource attributes added to every exported resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_attributes: Option<BTreeMap<String, String>>,
    /// `arize`: `us` (default) or `eu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<ArizeRegion>,
    /// `arize`: the space id (or `space_id_file`, or `ARIZE_SPACE_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_id: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_id_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OtlpProtocol {
    #[serde(rename = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    #[serde(rename = "http/json")]
    HttpJson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpCompression {
    Gzip,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SemconvMode {
    Passthrough,
    Openinference,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArizeRegion {
    Us,
    Eu,
}

/// A header value: inline, from a file, or from an environment variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HeaderValueSource {
    Value(Secret),
    File { file: PathBuf },
    Env { env: String },
}

/// TLS for an exporter. System roots are always trusted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Extra CA certificates (PEM) to trust.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mTLS, with `client_key_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key_file: Option<PathBuf>,
    /// Accept any server certificate. For local tests only.
    pub insecure_skip_verify: bool,
}

fn default_true() -> bool {
    true
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Send a batch once it holds this many items (spans, rows or lines).
    pub max_items: usize,
    /// Send a batch before its encoded size would pass this many bytes.
    pub max_bytes: usize,
    /// Send a non-empty batch at the latest this long after its first item.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_items: 1000,
            max_bytes: 4 * 1024 * 1024,
            flush_interval: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Batches waiting to be sent; beyond this the destination drops and counts.
    pub max_batches: usize,
    /// Batches sent concurrently.
    pub concurrency: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_batches: 64,
            concurrency: 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// First backoff delay; later ones grow 1.5x with ±50 % jitter.
    #[serde(with = "humantime_serde")]
    pub initial_interval: Duration,
    /// Upper bound of one backoff delay (a longer `Retry-After` still wins).
    #[serde(with = "humantime_serde")]
    pub max_interval: Duration,
    /// Give a batch up after retrying for this long.
    #[serde(with = "humantime_serde")]
    pub max_elapsed: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(300),
        }
    }
}

//! The user-facing configuration schema: exactly what `config.toml` and the
//! `TRACEBRIDGE_*` environment variables may contain.
//!
//! These types only describe and default the settings. [`super::settings`]
//! turns them into the runtime types the daemon uses, so every check happens
//! once, at load. Each destination kind's own section is described in its
//! folder (`destination/<kind>/config.rs`); this file holds what is shared.

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
    pub destinations: BTreeMap<String, crate::destination::DestinationConfig>,
    /// Where the daemon keeps state (the spool); see `spool::default_state_dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    pub spool: crate::spool::SpoolConfig,
    /// Where the Opik destinations keep their trace tables.
    pub state: crate::destination::opik::state::StateConfig,
    /// Daemon-wide bounds.
    pub limits: LimitsConfig,
}

/// `[limits]`: what the whole daemon may hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Bytes of data in flight the daemon holds at most (request bodies,
    /// decompression, decoded requests, queued batches); beyond it the
    /// receivers refuse with 503 / `UNAVAILABLE` until there is room.
    pub memory: u64,
}

impl LimitsConfig {
    /// 48 MiB: 115–168 MiB of RSS at saturation (see
    /// `docs/ARCHITECTURE.md`, "Memory budget"), with end-to-end throughput
    /// still above 1.4x Rotel's in the side-by-side benchmark.
    pub const DEFAULT_MEMORY: u64 = 48 << 20;
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            memory: Self::DEFAULT_MEMORY,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            receiver: ReceiverConfig::default(),
            admin: AdminConfig::default(),
            log: LogConfig::default(),
            shutdown_timeout: Duration::from_secs(10),
            destinations: BTreeMap::new(),
            state_dir: None,
            spool: crate::spool::SpoolConfig::default(),
            state: crate::destination::opik::state::StateConfig::default(),
            limits: LimitsConfig::default(),
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
    /// Connections open at once per receiver; at the limit accepting pauses.
    pub max_connections: usize,
    /// A connection with no byte either way for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// An HTTP/1 client must send a request's headers within this time.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A request (its body read, or a gRPC call) must complete within this time.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Concurrent HTTP/2 streams (gRPC calls) per connection.
    pub http2_max_concurrent_streams: u32,
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
    /// Named tokens, each optionally carrying a tenant
    /// (`[receiver.auth.tokens.<name>]`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tokens: BTreeMap<String, TokenConfig>,
}

/// One `[receiver.auth.tokens.<name>]`: a token (inline or from a file) and
/// the tenant its requests belong to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// The tenant of every request authenticated by this token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            grpc_listen: "127.0.0.1:4317".into(),
            http_listen: "127.0.0.1:4318".into(),
            max_request_bytes: 20 * 1024 * 1024,
            grpc_max_message_bytes: 16 * 1024 * 1024,
            max_connections: 1024,
            idle_timeout: Duration::from_secs(120),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            http2_max_concurrent_streams: 100,
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
    /// What a full destination does to the requests that keep coming:
    /// refuse them at the receiver (`backpressure`, the default for `opik`,
    /// `otlp` and `arize`) or lose its share of them, counted (`drop`, the
    /// default for `console` and `file`). Unset: the kind's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_full: Option<OnFull>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_batches: 64,
            concurrency: 4,
            on_full: None,
        }
    }
}

/// A destination's policy when it cannot take more (`queue.on_full`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFull {
    /// The receivers refuse requests (503 / `UNAVAILABLE`) while this
    /// destination is full, so the clients keep the data and retry.
    Backpressure,
    /// This destination loses what does not fit (counted and logged); the
    /// others still get it.
    Drop,
}

impl OnFull {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backpressure => "backpressure",
            Self::Drop => "drop",
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
    /// Give a batch up after retrying for this long (unless the destination
    /// itself asked for the wait, see `max_retry_after`).
    #[serde(with = "humantime_serde")]
    pub max_elapsed: Duration,
    /// The longest wait a `Retry-After` / `RetryInfo` hint is honoured for.
    /// A hinted wait pauses the whole destination and does not count
    /// against `max_elapsed`: the destination said when to come back.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(300),
            max_retry_after: Duration::from_secs(900),
        }
    }
}

//! Validation: the user-facing [`Config`] becomes the runtime [`Settings`].
//! Every check runs here, once, so the rest of the daemon can trust its input.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use super::schema::{
    BatchConfig, Config, DestinationConfig, DestinationKind, LogConfig, QueueConfig, RetryConfig,
};
use super::secret::Secret;
use super::{ConfigError, secret};

/// Validated runtime settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub receiver: ReceiverSettings,
    pub admin_listen: SocketAddr,
    pub log: LogConfig,
    pub shutdown_timeout: Duration,
    /// Enabled destinations only, in name order.
    pub destinations: Vec<DestinationSettings>,
    /// Names of destinations switched off with `enabled = false`.
    pub disabled_destinations: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ReceiverSettings {
    pub grpc_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub max_request_bytes: usize,
    pub grpc_max_message_bytes: usize,
    pub cors: Option<CorsSettings>,
    pub tls: Option<ReceiverTls>,
    /// Accepted bearer tokens; empty means no authentication.
    pub bearer_tokens: Vec<Secret>,
}

/// Receiver TLS files (loaded, and reloaded, by the receiver).
#[derive(Debug, Clone)]
pub struct ReceiverTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
    pub reload_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct CorsSettings {
    pub allowed_origins: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub max_age: Option<Duration>,
}

/// Batching, queueing and retry: the same for every destination.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExportSettings {
    pub batch: BatchConfig,
    pub queue: QueueConfig,
    pub retry: RetryConfig,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct DestinationSettings {
    pub name: String,
    pub privacy_mode: bool,
    pub export: ExportSettings,
    pub target: DestinationTarget,
}

/// What a destination sends to, per kind.
#[derive(Debug, Clone)]
pub enum DestinationTarget {
    /// One human line per trace on standard output.
    Console,
    /// JSON lines, one record per span, appended to a file.
    File { path: PathBuf },
    /// Comet Opik's REST API.
    Opik(OpikTarget),
    /// Any OTLP endpoint (Arize is a preset of this).
    Otlp(super::otlp::OtlpTarget),
}

impl DestinationTarget {
    /// The kind's name, as written in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::File { .. } => "file",
            Self::Opik(_) => "opik",
            Self::Otlp(t) => t.flavour,
        }
    }
}

/// A validated Opik destination.
#[derive(Debug, Clone)]
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
}

pub const OPIK_DEFAULT_URL: &str = "http://localhost:5173/api";
pub const OPIK_DEFAULT_WORKSPACE: &str = "default";
pub const OPIK_DEFAULT_PROJECT: &str = "Default Project";

/// Reads an environment variable (injected so tests need not touch the process environment).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Validates with the process environment (for the Opik and Arize SDK variables).
pub fn validate(config: &Config) -> Result<Settings, ConfigError> {
    validate_with_env(config, &|name| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    })
}

pub fn validate_with_env(config: &Config, env: EnvLookup<'_>) -> Result<Settings, ConfigError> {
    let receiver = &config.receiver;
    let max_request_bytes =
        positive_size("receiver.max_request_bytes", receiver.max_request_bytes)?;
    let grpc_max_message_bytes = positive_size(
        "receiver.grpc_max_message_bytes",
        receiver.grpc_max_message_bytes,
    )?;
    let cors = receiver
        .cors
        .as_ref()
        .map(|c| {
            if c.allowed_origins.is_empty() {
                return Err(ConfigError::Invalid(
                    "receiver.cors.allowed_origins is empty; list at least one origin or remove [receiver.cors]".into(),
                ));
            }
            Ok(CorsSettings {
                allowed_origins: c.allowed_origins.clone(),
                allowed_headers: c.allowed_headers.clone(),
                max_age: c.max_age,
            })
        })
        .transpose()?;
    let tls = receiver_tls(receiver.tls.as_ref())?;
    let bearer_tokens = bearer_tokens(receiver.auth.as_ref())?;
    let receiver = ReceiverSettings {
        grpc_listen: listen_addr("receiver.grpc_listen", &receiver.grpc_listen)?,
        http_listen: listen_addr("receiver.http_listen", &receiver.http_listen)?,
        max_request_bytes,
        grpc_max_message_bytes,
        cors,
        tls,
        bearer_tokens,
    };
    let admin_listen = listen_addr("admin.listen", &config.admin.listen)?;
    check_distinct_listeners(&receiver, admin_listen)?;
    if !matches!(
        config.log.level.to_ascii_lowercase().as_str(),
        "error" | "warn" | "info" | "debug" | "trace"
    ) && !config.log.level.contains('=')
    {
        return Err(ConfigError::Invalid(format!(
            "log.level = {:?}: expected error, warn, info, debug, trace or a RUST_LOG directive",
            config.log.level
        )));
    }

    let mut destinations = Vec::new();
    let mut disabled_destinations = Vec::new();
    for (name, dest) in &config.destinations {
        if !dest.enabled {
            disabled_destinations.push(name.clone());
            continue;
        }
        destinations.push(destination(name, dest, env)?);
    }
    if destinations.is_empty() {
        return Err(ConfigError::Invalid(
            "no enabled destination: add a [destinations.<name>] table (e.g. type = \"console\") so received spans go somewhere".into(),
        ));
    }
    Ok(Settings {
        receiver,
        admin_listen,
        log: config.log.clone(),
        shutdown_timeout: config.shutdown_timeout,
        destinations,
        disabled_destinations,
    })
}

fn destination(
    name: &str,
    d: &DestinationConfig,
    env: EnvLookup<'_>,
) -> Result<DestinationSettings, ConfigError> {
    let key = |field: &str| format!("destinations.{name}.{field}");
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ConfigError::Invalid(format!(
            "destination name {name:?}: use letters, digits, '_' or '-' (it becomes a metric label)"
        )));
    }
    let export = export_settings(name, d)?;
    check_kind_settings(name, d)?;
    let target = match d.kind {
        DestinationKind::Console => DestinationTarget::Console,
        DestinationKind::File => {
            let path = d.path.clone().ok_or_else(|| {
                ConfigError::Invalid(format!("{} is required for file destinations", key("path")))
            })?;
            DestinationTarget::File { path }
        }
        DestinationKind::Opik => DestinationTarget::Opik(opik_target(name, d, env)?),
        DestinationKind::Otlp => DestinationTarget::Otlp(super::otlp::otlp_target(name, d)?),
        DestinationKind::Arize => DestinationTarget::Otlp(super::otlp::arize_target(name, d, env)?),
    };
    Ok(DestinationSettings {
        name: name.to_string(),
        privacy_mode: d.privacy_mode,
        export,
        target,
    })
}

/// An Opik destination: settings from the file (or TRACEBRIDGE_* variables)
/// first, then the Opik SDK's own variables, then Opik's defaults.
fn opik_target(
    name: &str,
    d: &DestinationConfig,
    env: EnvLookup<'_>,
) -> Result<OpikTarget, ConfigError> {
    let key = |field: &str| format!("destinations.{name}.{field}");
    let api_key = secret::resolve(
        &key("api_key"),
        d.api_key.as_ref(),
        d.api_key_file.as_deref(),
    )?
    .or_else(|| env("OPIK_API_KEY").map(Secret::new));
    let url = d
        .url
        .clone()
        .or_else(|| env("OPIK_URL_OVERRIDE"))
        .unwrap_or_else(|| OPIK_DEFAULT_URL.to_string());
    let url = url.trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConfigError::Invalid(format!(
            "{} = {url:?}: expected an http:// or https:// URL such as https://www.comet.com/opik/api",
            key("url")
        )));
    }
    let workspace = d
        .workspace
        .clone()
        .or_else(|| env("OPIK_WORKSPACE"))
        .unwrap_or_else(|| OPIK_DEFAULT_WORKSPACE.to_string());
    let project_name = d
        .project_name
        .clone()
        .or_else(|| env("OPIK_PROJECT_NAME"))
        .unwrap_or_else(|| OPIK_DEFAULT_PROJECT.to_string());
    if workspace.trim().is_empty() || project_name.trim().is_empty() {
        return Err(ConfigError::Invalid(format!(
            "{} and {} must not be blank",
            key("workspace"),
            key("project_name")
        )));
    }
    let tags = d.tags.clone().unwrap_or_default();
    if tags.len() > 50 {
        return Err(ConfigError::Invalid(format!(
            "{} has {} tags; Opik allows at most 50 per trace",
            key("tags"),
            tags.len()
        )));
    }
    let max_open_traces = d.max_open_traces.unwrap_or(10_000);
    if max_open_traces == 0 {
        return Err(ConfigError::Invalid(format!(
            "{} must be at least 1",
            key("max_open_traces")
        )));
    }
    let stale_trace_timeout = d.stale_trace_timeout.unwrap_or(Duration::from_secs(300));
    let trace_ttl = d.trace_ttl.unwrap_or(Duration::from_secs(3 * 3600));
    if stale_trace_timeout.is_zero() || trace_ttl < stale_trace_timeout {
        return Err(ConfigError::Invalid(format!(
            "{} must be greater than zero and not above {}",
            key("stale_trace_timeout"),
            key("trace_ttl")
        )));
    }
    if d.batch.max_items > 1000 {
        return Err(ConfigError::Invalid(format!(
            "{} = {}: Opik accepts at most 1000 items per batch",
            key("batch.max_items"),
            d.batch.max_items
        )));
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
    })
}

/// Rejects settings that belong to other kinds of destination, naming them.
fn check_kind_settings(name: &str, d: &DestinationConfig) -> Result<(), ConfigError> {
    use DestinationKind::{Arize, File, Opik, Otlp};
    let remote: &[DestinationKind] = &[Otlp, Arize];
    let settings: [(&str, bool, &[DestinationKind]); 19] = [
        ("path", d.path.is_some(), &[File]),
        (
            "api_key",
            d.api_key.is_some() || d.api_key_file.is_some(),
            &[Opik, Arize],
        ),
        ("url", d.url.is_some(), &[Opik]),
        ("workspace", d.workspace.is_some(), &[Opik]),
        (
            "project_name",
            d.project_name.is_some(),
            &[Opik, Arize, Otlp],
        ),
        ("tags", d.tags.is_some(), &[Opik]),
        ("trace_ttl", d.trace_ttl.is_some(), &[Opik]),
        (
            "stale_trace_timeout",
            d.stale_trace_timeout.is_some(),
            &[Opik],
        ),
        ("max_open_traces", d.max_open_traces.is_some(), &[Opik]),
        ("endpoint", d.endpoint.is_some(), remote),
        ("traces_endpoint", d.traces_endpoint.is_some(), remote),
        ("protocol", d.protocol.is_some(), remote),
        ("headers", d.headers.is_some(), remote),
        ("compression", d.compression.is_some(), remote),
        ("tls", d.tls.is_some(), remote),
        ("semconv", d.semconv.is_some(), remote),
        (
            "resource_attributes",
            d.resource_attributes.is_some(),
            remote,
        ),
        ("region", d.region.is_some(), &[Arize]),
        (
            "space_id",
            d.space_id.is_some() || d.space_id_file.is_some(),
            &[Arize],
        ),
    ];
    for (field, present, kinds) in settings {
        if present && !kinds.contains(&d.kind) {
            return Err(ConfigError::Invalid(format!(
                "destinations.{name}.{field} is not a setting of {} destinations",
                d.kind.as_str()
            )));
        }
    }
    Ok(())
}

fn export_settings(name: &str, d: &DestinationConfig) -> Result<ExportSettings, ConfigError> {
    let key = |field: &str| format!("destinations.{name}.{field}");
    let BatchConfig {
        max_items,
        max_bytes,
        flush_interval,
    } = d.batch;
    if max_items == 0 {
        return Err(ConfigError::Invalid(format!(
            "{} must be at least 1",
            key("batch.max_items")
        )));
    }
    if max_bytes < 1024 {
        return Err(ConfigError::Invalid(format!(
            "{} = {max_bytes} is too small; use at least 1024",
            key("batch.max_bytes")
        )));
    }
    if flush_interval.is_zero() {
        return Err(ConfigError::Invalid(format!(
            "{} must be greater than zero",
            key("batch.flush_interval")
        )));
    }
    let QueueConfig {
        max_batches,
        concurrency,
    } = d.queue;
    if max_batches == 0 {
        return Err(ConfigError::Invalid(format!(
            "{} must be at least 1",
            key("queue.max_batches")
        )));
    }
    if concurrency == 0 || concurrency > 64 {
        return Err(ConfigError::Invalid(format!(
            "{} = {concurrency}: use 1 to 64",
            key("queue.concurrency")
        )));
    }
    let RetryConfig {
        initial_interval,
        max_interval,
        ..
    } = d.retry;
    if initial_interval.is_zero() || max_interval < initial_interval {
        return Err(ConfigError::Invalid(format!(
            "{} must be greater than zero and not above {}",
            key("retry.initial_interval"),
            key("retry.max_interval")
        )));
    }
    if d.timeout.is_zero() {
        return Err(ConfigError::Invalid(format!(
            "{} must be greater than zero",
            key("timeout")
        )));
    }
    Ok(ExportSettings {
        batch: d.batch,
        queue: d.queue,
        retry: d.retry,
        timeout: d.timeout,
    })
}

fn receiver_tls(
    t: Option<&super::schema::ReceiverTlsConfig>,
) -> Result<Option<ReceiverTls>, ConfigError> {
    let Some(t) = t else { return Ok(None) };
    for (field, path) in [
        ("cert_file", Some(&t.cert_file)),
        ("key_file", Some(&t.key_file)),
        ("client_ca_file", t.client_ca_file.as_ref()),
    ] {
        if let Some(p) = path {
            if !p.is_file() {
                return Err(ConfigError::Invalid(format!(
                    "receiver.tls.{field}: {} does not exist",
                    p.display()
                )));
            }
        }
    }
    if t.reload_interval < Duration::from_millis(100) {
        return Err(ConfigError::Invalid(
            "receiver.tls.reload_interval must be at least 100ms".into(),
        ));
    }
    Ok(Some(ReceiverTls {
        cert_file: t.cert_file.clone(),
        key_file: t.key_file.clone(),
        client_ca_file: t.client_ca_file.clone(),
        reload_interval: t.reload_interval,
    }))
}

fn bearer_tokens(
    a: Option<&super::schema::ReceiverAuthConfig>,
) -> Result<Vec<Secret>, ConfigError> {
    let Some(a) = a else { return Ok(Vec::new()) };
    let mut tokens: Vec<Secret> = a
        .bearer_tokens
        .iter()
        .filter(|t| !t.expose().trim().is_empty())
        .cloned()
        .collect();
    if let Some(path) = &a.bearer_tokens_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::Invalid(format!(
                "receiver.auth.bearer_tokens_file: cannot read {}: {e}",
                path.display()
            ))
        })?;
        tokens.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(Secret::new),
        );
    }
    if tokens.is_empty() {
        return Err(ConfigError::Invalid(
            "receiver.auth is set but holds no token: give bearer_tokens or a non-empty bearer_tokens_file".into(),
        ));
    }
    Ok(tokens)
}

fn positive_size(key: &str, value: u64) -> Result<usize, ConfigError> {
    usize::try_from(value)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| {
            ConfigError::Invalid(format!(
                "{key} = {value}: must be between 1 and {}",
                usize::MAX
            ))
        })
}

fn listen_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    value
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            ConfigError::Invalid(format!(
                "{key} = {value:?}: expected HOST:PORT, e.g. 127.0.0.1:4317"
            ))
        })
}

fn check_distinct_listeners(r: &ReceiverSettings, admin: SocketAddr) -> Result<(), ConfigError> {
    let all = [
        ("receiver.grpc_listen", r.grpc_listen),
        ("receiver.http_listen", r.http_listen),
        ("admin.listen", admin),
    ];
    for (i, (a_key, a)) in all.iter().enumerate() {
        for (b_key, b) in &all[i + 1..] {
            if a == b && a.port() != 0 {
                return Err(ConfigError::Invalid(format!(
                    "{a_key} and {b_key} are both {a}; give each listener its own port"
                )));
            }
        }
    }
    Ok(())
}

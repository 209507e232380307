//! The runtime settings, and the validation that makes them: the
//! user-facing [`Config`] becomes [`Settings`]. Every check runs here (and,
//! for each destination's own section, in `destination::configure`), once,
//! so the rest of the daemon can trust its input.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use super::ConfigError;
use super::schema::{
    BatchConfig, Config, LogConfig, OnFull, QueueConfig, ReceiverConfig, RetryConfig,
};
use super::secret::Secret;
use crate::destination::DestinationSettings;

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
    /// Valid but probably unintended settings, each with its likely fix
    /// (printed by `config check`, logged at WARN by the daemon).
    pub warnings: Vec<String>,
    pub spool: crate::spool::SpoolSettings,
    /// `limits.memory` in bytes (see `crate::budget`).
    pub memory_limit: usize,
}

#[derive(Debug, Clone)]
pub struct ReceiverSettings {
    pub grpc_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub max_request_bytes: usize,
    pub grpc_max_message_bytes: usize,
    pub limits: ReceiverLimits,
    pub cors: Option<CorsSettings>,
    pub tls: Option<ReceiverTls>,
    /// Accepted bearer tokens; empty means no authentication.
    pub bearer_tokens: Vec<BearerToken>,
}

/// An accepted bearer token and the tenant its requests belong to.
#[derive(Debug, Clone, PartialEq)]
pub struct BearerToken {
    pub token: Secret,
    pub tenant: Option<std::sync::Arc<str>>,
}

impl BearerToken {
    /// A token without a tenant.
    pub fn plain(token: Secret) -> Self {
        Self {
            token,
            tenant: None,
        }
    }
}

/// Whether `name` may name a tenant: letters, digits, `-`, `_`, `.` (it
/// becomes a log field and a config table name).
pub fn valid_tenant_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What one client may hold of a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverLimits {
    pub max_connections: usize,
    pub idle_timeout: Duration,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub http2_max_concurrent_streams: u32,
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

impl ExportSettings {
    /// `queue.on_full`, resolved for the destination's kind at load.
    pub fn on_full(&self) -> OnFull {
        self.queue.on_full.unwrap_or(OnFull::Backpressure)
    }
}

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
    let limits = receiver_limits(receiver)?;
    let tls = receiver_tls(receiver.tls.as_ref())?;
    let bearer_tokens = bearer_tokens(receiver.auth.as_ref())?;
    let receiver = ReceiverSettings {
        grpc_listen: listen_addr("receiver.grpc_listen", &receiver.grpc_listen)?,
        http_listen: listen_addr("receiver.http_listen", &receiver.http_listen)?,
        max_request_bytes,
        grpc_max_message_bytes,
        limits,
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
        destinations.push(crate::destination::configure(name, dest, env)?);
    }
    if destinations.is_empty() {
        return Err(ConfigError::Invalid(
            "no enabled destination: add a [destinations.<name>] table (e.g. type = \"console\") so received spans go somewhere".into(),
        ));
    }
    let mut warnings = crate::destination::lint::warnings(&destinations, env);
    warnings.extend(super::tenants::check(&receiver, &destinations)?);
    let spool = crate::spool::validate(&config.spool, config.state_dir.as_deref(), env)?;
    let state_dir = config
        .state_dir
        .clone()
        .unwrap_or_else(|| crate::spool::default_state_dir(env));
    let durable = spool.mode == crate::spool::SpoolMode::Disk;
    for d in &mut destinations {
        if let crate::destination::DestinationTarget::Opik(t) = &mut d.target {
            t.state = config.state.for_destination(&d.name, &state_dir, durable)?;
        }
    }
    let memory_limit = memory_limit(config)?;
    Ok(Settings {
        spool,
        memory_limit,
        receiver,
        admin_listen,
        log: config.log.clone(),
        shutdown_timeout: config.shutdown_timeout,
        destinations,
        disabled_destinations,
        warnings,
    })
}

/// `limits.memory` in bytes (at least 1 MiB). A request larger than the
/// budget is still taken, when the daemon holds nothing else.
fn memory_limit(config: &Config) -> Result<usize, ConfigError> {
    let memory = usize::try_from(config.limits.memory).unwrap_or(usize::MAX);
    if memory < 1 << 20 {
        return Err(ConfigError::Invalid(format!(
            "limits.memory = {memory} is below the minimum of 1 MiB (1048576)"
        )));
    }
    Ok(memory)
}

fn receiver_limits(r: &ReceiverConfig) -> Result<ReceiverLimits, ConfigError> {
    if r.max_connections == 0 || r.http2_max_concurrent_streams == 0 {
        return Err(ConfigError::Invalid(
            "receiver.max_connections and receiver.http2_max_concurrent_streams must be at least 1"
                .into(),
        ));
    }
    for (key, value) in [
        ("receiver.idle_timeout", r.idle_timeout),
        ("receiver.header_read_timeout", r.header_read_timeout),
        ("receiver.request_timeout", r.request_timeout),
    ] {
        if value < Duration::from_millis(100) {
            return Err(ConfigError::Invalid(format!(
                "{key} = {value:?}: use at least 100ms"
            )));
        }
    }
    Ok(ReceiverLimits {
        max_connections: r.max_connections,
        idle_timeout: r.idle_timeout,
        header_read_timeout: r.header_read_timeout,
        request_timeout: r.request_timeout,
        http2_max_concurrent_streams: r.http2_max_concurrent_streams,
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
) -> Result<Vec<BearerToken>, ConfigError> {
    let Some(a) = a else { return Ok(Vec::new()) };
    let mut tokens: Vec<BearerToken> = a
        .bearer_tokens
        .iter()
        .filter(|t| !t.expose().trim().is_empty())
        .cloned()
        .map(BearerToken::plain)
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
                .map(|l| BearerToken::plain(Secret::new(l))),
        );
    }
    for (name, t) in &a.tokens {
        tokens.push(named_token(name, t)?);
    }
    if tokens.is_empty() {
        return Err(ConfigError::Invalid(
            "receiver.auth is set but holds no token: give bearer_tokens, a non-empty bearer_tokens_file or [receiver.auth.tokens.<name>]".into(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if !tokens.iter().all(|t| seen.insert(t.token.expose())) {
        return Err(ConfigError::Invalid(
            "receiver.auth: the same token is given twice; each token must be unique (a token names one tenant)".into(),
        ));
    }
    Ok(tokens)
}

/// One `[receiver.auth.tokens.<name>]`.
fn named_token(name: &str, t: &super::schema::TokenConfig) -> Result<BearerToken, ConfigError> {
    let setting = format!("receiver.auth.tokens.{name}.token");
    let token = super::secret::resolve(&setting, t.token.as_ref(), t.token_file.as_deref())?
        .map(|s| Secret::new(s.expose().trim()))
        .filter(|s| !s.expose().is_empty())
        .ok_or_else(|| ConfigError::Invalid(format!("{setting}: give token or token_file")))?;
    let tenant = match t.tenant.as_deref() {
        Some(tenant) if !valid_tenant_name(tenant) => {
            return Err(ConfigError::Invalid(format!(
                "receiver.auth.tokens.{name}.tenant = {tenant:?}: use letters, digits, '-', '_' or '.'"
            )));
        }
        tenant => tenant.map(std::sync::Arc::from),
    };
    Ok(BearerToken { token, tenant })
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

//! The OTLP destination's section and its validation into an [`OtlpTarget`].
//! The Arize preset (`super::super::arize`) reuses these parts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::config::secret::{self, Secret, mask_url};
use crate::route::{SignalName, Signals};
use crate::semconv::logs::join::LogJoinSettings;
use crate::telemetry::reason::Signal;

/// `[destinations.<name>] type = "otlp"` as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// Where to send. gRPC: `http(s)://host:port`; HTTP: a base URL (`/v1/traces` is appended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Over HTTP: the full traces URL, used as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<OtlpProtocol>,
    /// Extra request headers (gRPC metadata). Values are secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, HeaderValueSource>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<OtlpCompression>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// `passthrough` forwards spans as received; `openinference` adds OpenInference attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semconv: Option<SemconvMode>,
    /// Resource attributes added to every exported resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_attributes: Option<BTreeMap<String, String>>,
    /// Project for traces that do not choose one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    /// The OTLP signals forwarded (`traces`, `logs`, `metrics`); traces only
    /// by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signals: Option<Vec<SignalName>>,
    /// Over HTTP: the full logs URL, used as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_endpoint: Option<String>,
    /// Over HTTP: the full metrics URL, used as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_endpoint: Option<String>,
    /// `openinference` mode: how long a GenAI log record waits for its span.
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub log_join_window: Option<Duration>,
    /// `openinference` mode: how long an LLM span without its messages waits
    /// for its log records before it is forwarded (0: it never waits).
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub log_join_span_wait: Option<Duration>,
    /// Records (and spans) held for joining at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_max_held_records: Option<usize>,
    /// Bytes of records and spans held for joining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_max_held_bytes: Option<usize>,
}

/// The keys of this kind's section.
pub const KEYS: &[&str] = &[
    "endpoint",
    "traces_endpoint",
    "protocol",
    "headers",
    "compression",
    "tls",
    "semconv",
    "resource_attributes",
    "project_name",
    "signals",
    "logs_endpoint",
    "metrics_endpoint",
    "log_join_window",
    "log_join_span_wait",
    "log_max_held_records",
    "log_max_held_bytes",
];

/// The keys of [`KEYS`] about logs and metrics, which the Arize preset
/// (traces only) does not take.
pub const SIGNAL_KEYS: &[&str] = &["signals", "logs_endpoint", "metrics_endpoint"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OtlpProtocol {
    #[serde(rename = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    #[serde(rename = "http/json")]
    HttpJson,
}

impl OtlpProtocol {
    /// As written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
            Self::HttpJson => "http/json",
        }
    }
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

impl SemconvMode {
    /// As written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passthrough => "passthrough",
            Self::Openinference => "openinference",
        }
    }
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

/// A validated OTLP exporter.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpTarget {
    /// gRPC: `http(s)://host:port`; HTTP: the full traces URL.
    pub url: String,
    /// The signals forwarded (traces only unless `signals` says more).
    pub signals: Signals,
    /// HTTP: the full logs and metrics URLs, for the signals forwarded
    /// (gRPC sends every signal to `url`).
    pub logs_url: Option<String>,
    pub metrics_url: Option<String>,
    pub protocol: OtlpProtocol,
    /// Header (gRPC metadata) names in lower case, with their values.
    pub headers: Vec<(String, Secret)>,
    pub gzip: bool,
    pub tls: TlsSettings,
    pub semconv: SemconvMode,
    /// Added to every exported resource (never overwriting what is there).
    pub resource_attributes: Vec<(String, String)>,
    /// The project for traces that choose none (`openinference.project.name`).
    pub project_name: Option<String>,
    /// Arize also wants the project as the legacy `model_id` resource attribute.
    pub project_as_model_id: bool,
    /// For the startup log and `check`: "arize" or "otlp".
    pub flavour: &'static str,
    /// `openinference` mode: how GenAI log records join their spans.
    pub log_join: LogJoin,
}

/// The OpenInference join of GenAI log records (`log_join_window`,
/// `log_max_held_records`, `log_max_held_bytes`, `log_join_span_wait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogJoin {
    pub hold: LogJoinSettings,
    /// How long a span awaiting its records is held back (zero: never).
    pub span_wait: Duration,
}

/// The join settings of a section (the Arize preset's too).
pub fn log_join(name: &str, d: &OtlpConfig) -> Result<LogJoin, ConfigError> {
    let defaults = LogJoinSettings::default();
    let hold = LogJoinSettings {
        window: d.log_join_window.unwrap_or(defaults.window),
        max_records: d.log_max_held_records.unwrap_or(defaults.max_records),
        max_bytes: d.log_max_held_bytes.unwrap_or(defaults.max_bytes),
    };
    if hold.window.is_zero() || hold.max_records == 0 || hold.max_bytes == 0 {
        return Err(ConfigError::Invalid(format!(
            "destinations.{name}.log_join_window, log_max_held_records and log_max_held_bytes must be greater than zero"
        )));
    }
    Ok(LogJoin {
        hold,
        span_wait: d.log_join_span_wait.unwrap_or_default(),
    })
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsSettings {
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

pub fn validate(name: &str, d: OtlpConfig) -> Result<OtlpTarget, ConfigError> {
    let key = |f: &str| format!("destinations.{name}.{f}");
    let protocol = d.protocol.unwrap_or(OtlpProtocol::Grpc);
    let endpoint = d.endpoint.clone();
    if endpoint.is_none() && d.traces_endpoint.is_none() {
        return Err(ConfigError::Invalid(format!(
            "{} is required for otlp destinations, e.g. \"http://localhost:4317\" (gRPC) or \"http://localhost:6006\" (HTTP)",
            key("endpoint")
        )));
    }
    let url = exporter_url(
        name,
        protocol,
        endpoint.as_deref(),
        d.traces_endpoint.as_deref(),
    )?;
    let signals = match &d.signals {
        None => Signals::TRACES,
        Some(list) if list.is_empty() => {
            return Err(ConfigError::Invalid(format!(
                "{} is empty: list at least one of \"traces\", \"logs\", \"metrics\" (or leave it out for traces only)",
                key("signals")
            )));
        }
        Some(list) if !list.contains(&SignalName::Traces) => {
            return Err(ConfigError::Invalid(format!(
                "{} must include \"traces\": an otlp destination always forwards spans, and logs or metrics besides (e.g. signals = [\"traces\", \"logs\"])",
                key("signals")
            )));
        }
        Some(list) => Signals::of(list),
    };
    let signal_url = |signal: Signal, explicit: Option<&str>| {
        signal_url(name, protocol, endpoint.as_deref(), explicit, signal)
    };
    let logs_url = match signals.logs {
        true => Some(signal_url(Signal::Logs, d.logs_endpoint.as_deref())?),
        false => None,
    };
    let metrics_url = match signals.metrics {
        true => Some(signal_url(Signal::Metrics, d.metrics_endpoint.as_deref())?),
        false => None,
    };
    Ok(OtlpTarget {
        url,
        signals,
        logs_url,
        metrics_url,
        protocol,
        headers: headers(name, &d)?,
        gzip: gzip(&d),
        tls: tls(name, d.tls.as_ref())?,
        semconv: d.semconv.unwrap_or(SemconvMode::Passthrough),
        resource_attributes: resource_attributes(&d),
        project_name: d.project_name.clone().filter(|p| !p.trim().is_empty()),
        project_as_model_id: false,
        flavour: "otlp",
        log_join: log_join(name, &d)?,
    })
}

/// gRPC takes the endpoint as is; HTTP appends `/v1/traces` to a bare
/// endpoint, as OTel exporters do, unless `traces_endpoint` is given.
pub fn exporter_url(
    name: &str,
    protocol: OtlpProtocol,
    endpoint: Option<&str>,
    traces_endpoint: Option<&str>,
) -> Result<String, ConfigError> {
    let check = |field: &str, url: &str| -> Result<(), ConfigError> {
        if url.starts_with("http://") || url.starts_with("https://") {
            Ok(())
        } else {
            Err(ConfigError::Invalid(format!(
                "destinations.{name}.{field} = {:?}: expected an http:// or https:// URL",
                mask_url(url)
            )))
        }
    };
    match protocol {
        OtlpProtocol::Grpc => {
            if traces_endpoint.is_some() {
                return Err(ConfigError::Invalid(format!(
                    "destinations.{name}.traces_endpoint is for http/* protocols; gRPC uses endpoint"
                )));
            }
            let url = endpoint
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_string();
            check("endpoint", &url)?;
            Ok(url)
        }
        OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson => match traces_endpoint {
            Some(t) => {
                check("traces_endpoint", t)?;
                Ok(t.to_string())
            }
            None => {
                let endpoint = endpoint.unwrap_or_default();
                // `/v1/traces` goes at the end of the path, before any query string.
                let (base, query) = match endpoint.split_once('?') {
                    Some((base, query)) => (base, format!("?{query}")),
                    None => (endpoint, String::new()),
                };
                let base = base.trim_end_matches('/');
                check("endpoint", base)?;
                if base.ends_with("/v1/traces") {
                    return Err(ConfigError::Invalid(format!(
                        "destinations.{name}.endpoint = {:?} already ends in /v1/traces, and http/* protocols append /v1/traces to endpoint (it would send to …/v1/traces/v1/traces); use traces_endpoint = {:?} (used as is), or endpoint = {:?}",
                        mask_url(endpoint),
                        mask_url(endpoint),
                        mask_url(&format!("{}{query}", base.trim_end_matches("/v1/traces")))
                    )));
                }
                Ok(format!("{base}/v1/traces{query}"))
            }
        },
    }
}

/// Where an HTTP exporter sends `signal` (logs or metrics): `explicit`
/// (`logs_endpoint` / `metrics_endpoint`) as is, else `endpoint` +
/// `/v1/logs` or `/v1/metrics`. gRPC sends every signal to `endpoint`.
fn signal_url(
    name: &str,
    protocol: OtlpProtocol,
    endpoint: Option<&str>,
    explicit: Option<&str>,
    signal: Signal,
) -> Result<String, ConfigError> {
    let field = format!("{signal}_endpoint");
    if protocol == OtlpProtocol::Grpc {
        if explicit.is_some() {
            return Err(ConfigError::Invalid(format!(
                "destinations.{name}.{field} is for http/* protocols; gRPC sends every signal to endpoint"
            )));
        }
        return Ok(endpoint
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string());
    }
    if let Some(url) = explicit {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::Invalid(format!(
                "destinations.{name}.{field} = {:?}: expected an http:// or https:// URL",
                mask_url(url)
            )));
        }
        return Ok(url.to_string());
    }
    let Some(endpoint) = endpoint else {
        return Err(ConfigError::Invalid(format!(
            "destinations.{name}.signals names \"{signal}\" but only traces_endpoint is set: set destinations.{name}.{field} (the full URL), or endpoint (the base URL; /v1/{signal} is appended)"
        )));
    };
    let (base, query) = match endpoint.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (endpoint, String::new()),
    };
    Ok(format!("{}/v1/{signal}{query}", base.trim_end_matches('/')))
}

pub fn headers(name: &str, d: &OtlpConfig) -> Result<Vec<(String, Secret)>, ConfigError> {
    let mut out = Vec::new();
    for (k, source) in d.headers.iter().flatten() {
        let key = format!("destinations.{name}.headers.{k}");
        let lower = k.to_ascii_lowercase();
        if http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
            return Err(ConfigError::Invalid(format!(
                "{key}: {k:?} is not a valid header name"
            )));
        }
        let value = match source {
            HeaderValueSource::Value(v) => v.clone(),
            HeaderValueSource::File { file } => secret::resolve(&key, None, Some(file))?
                .ok_or_else(|| ConfigError::Invalid(format!("{key}: no value")))?,
            HeaderValueSource::Env { env } => {
                std::env::var(env).map(Secret::new).map_err(|_| {
                    ConfigError::Invalid(format!("{key}: environment variable {env} is not set"))
                })?
            }
        };
        if http::HeaderValue::from_str(value.expose()).is_err() {
            return Err(ConfigError::Invalid(format!(
                "{key}: the value is not a valid header value"
            )));
        }
        out.push((lower, value));
    }
    Ok(out)
}

pub fn tls(name: &str, t: Option<&TlsConfig>) -> Result<TlsSettings, ConfigError> {
    let Some(t) = t else {
        return Ok(TlsSettings::default());
    };
    if t.client_cert_file.is_some() != t.client_key_file.is_some() {
        return Err(ConfigError::Invalid(format!(
            "destinations.{name}.tls: client_cert_file and client_key_file go together"
        )));
    }
    for (field, path) in [
        ("ca_file", &t.ca_file),
        ("client_cert_file", &t.client_cert_file),
        ("client_key_file", &t.client_key_file),
    ] {
        if let Some(p) = path {
            if !p.is_file() {
                return Err(ConfigError::Invalid(format!(
                    "destinations.{name}.tls.{field}: {} does not exist",
                    p.display()
                )));
            }
        }
    }
    Ok(TlsSettings {
        ca_file: t.ca_file.clone(),
        client_cert_file: t.client_cert_file.clone(),
        client_key_file: t.client_key_file.clone(),
        insecure_skip_verify: t.insecure_skip_verify,
    })
}

pub fn resource_attributes(d: &OtlpConfig) -> Vec<(String, String)> {
    d.resource_attributes
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// gzip unless `compression = "none"`.
pub fn gzip(d: &OtlpConfig) -> bool {
    d.compression.unwrap_or(OtlpCompression::Gzip) == OtlpCompression::Gzip
}

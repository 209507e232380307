//! Validation of the `otlp` and `arize` destinations into an [`OtlpTarget`].

use std::path::PathBuf;

use super::ConfigError;
use super::schema::{
    ArizeRegion, DestinationConfig, HeaderValueSource, OtlpCompression, OtlpProtocol, SemconvMode,
    TlsConfig,
};
use super::secret::{self, Secret};
use super::validate::EnvLookup;

pub const ARIZE_US: &str = "https://otlp.arize.com";
pub const ARIZE_EU: &str = "https://otlp.eu-west-1a.arize.com";

/// A validated OTLP exporter.
#[derive(Debug, Clone)]
pub struct OtlpTarget {
    /// gRPC: `http(s)://host:port`; HTTP: the full traces URL.
    pub url: String,
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
}

#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

pub fn otlp_target(name: &str, d: &DestinationConfig) -> Result<OtlpTarget, ConfigError> {
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
    Ok(OtlpTarget {
        url,
        protocol,
        headers: headers(name, d)?,
        gzip: d.compression.unwrap_or(OtlpCompression::Gzip) == OtlpCompression::Gzip,
        tls: tls(name, d.tls.as_ref())?,
        semconv: d.semconv.unwrap_or(SemconvMode::Passthrough),
        resource_attributes: resource_attributes(d),
        project_name: d.project_name.clone().filter(|p| !p.trim().is_empty()),
        project_as_model_id: false,
        flavour: "otlp",
    })
}

/// Arize AX: a preset over OTLP with Arize's endpoint, headers and project attributes.
pub fn arize_target(
    name: &str,
    d: &DestinationConfig,
    env: EnvLookup<'_>,
) -> Result<OtlpTarget, ConfigError> {
    let key = |f: &str| format!("destinations.{name}.{f}");
    let space_id = secret::resolve(
        &key("space_id"),
        d.space_id.as_ref(),
        d.space_id_file.as_deref(),
    )?
    .or_else(|| env("ARIZE_SPACE_ID").map(Secret::new));
    let api_key = secret::resolve(
        &key("api_key"),
        d.api_key.as_ref(),
        d.api_key_file.as_deref(),
    )?
    .or_else(|| env("ARIZE_API_KEY").map(Secret::new));
    let project = d.project_name.clone().or_else(|| env("ARIZE_PROJECT_NAME"));
    let missing: Vec<&str> = [
        (
            "space_id (or space_id_file, ARIZE_SPACE_ID)",
            space_id.is_none(),
        ),
        (
            "api_key (or api_key_file, ARIZE_API_KEY)",
            api_key.is_none(),
        ),
        (
            "project_name (or ARIZE_PROJECT_NAME)",
            project.as_deref().is_none_or(|p| p.trim().is_empty()),
        ),
    ]
    .into_iter()
    .filter_map(|(what, missing)| missing.then_some(what))
    .collect();
    let (Some(space_id), Some(api_key), Some(project), true) =
        (space_id, api_key, project, missing.is_empty())
    else {
        return Err(ConfigError::Invalid(format!(
            "destinations.{name} (arize) is missing {}; Arize rejects spans without them",
            missing.join(", ")
        )));
    };
    let protocol = d.protocol.unwrap_or(OtlpProtocol::Grpc);
    if protocol == OtlpProtocol::HttpJson {
        return Err(ConfigError::Invalid(format!(
            "{} = \"http/json\": Arize ingests OTLP protobuf; use grpc or http/protobuf",
            key("protocol")
        )));
    }
    let base = match d.region.unwrap_or(ArizeRegion::Us) {
        ArizeRegion::Us => ARIZE_US,
        ArizeRegion::Eu => ARIZE_EU,
    };
    let endpoint = d.endpoint.clone().unwrap_or_else(|| base.to_string());
    let url = exporter_url(
        name,
        protocol,
        Some(&endpoint),
        d.traces_endpoint.as_deref(),
    )?;
    let mut headers = vec![
        ("authorization".to_string(), api_key.clone()),
        ("arize-space-id".to_string(), space_id.clone()),
        ("space_id".to_string(), space_id),
        ("api_key".to_string(), api_key),
        ("arize-interface".to_string(), Secret::new("otel")),
    ];
    for (k, v) in self::headers(name, d)? {
        headers.retain(|(existing, _)| *existing != k);
        headers.push((k, v));
    }
    Ok(OtlpTarget {
        url,
        protocol,
        headers,
        gzip: d.compression.unwrap_or(OtlpCompression::Gzip) == OtlpCompression::Gzip,
        tls: tls(name, d.tls.as_ref())?,
        semconv: d.semconv.unwrap_or(SemconvMode::Openinference),
        resource_attributes: resource_attributes(d),
        project_name: Some(project),
        project_as_model_id: true,
        flavour: "arize",
    })
}

/// gRPC takes the endpoint as is; HTTP appends `/v1/traces` to a bare
/// endpoint, as OTel exporters do, unless `traces_endpoint` is given.
fn exporter_url(
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
                "destinations.{name}.{field} = {url:?}: expected an http:// or https:// URL"
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
                let base = endpoint.unwrap_or_default().trim_end_matches('/');
                check("endpoint", base)?;
                Ok(format!("{base}/v1/traces"))
            }
        },
    }
}

fn headers(name: &str, d: &DestinationConfig) -> Result<Vec<(String, Secret)>, ConfigError> {
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

fn tls(name: &str, t: Option<&TlsConfig>) -> Result<TlsSettings, ConfigError> {
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

fn resource_attributes(d: &DestinationConfig) -> Vec<(String, String)> {
    d.resource_attributes
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

//! The Arize AX section: the OTLP section plus Arize's own keys, validated
//! into an [`OtlpTarget`] with Arize's endpoint, headers and project
//! attributes. Values missing from the file come from the Arize SDK's
//! variables (`ARIZE_SPACE_ID`, `ARIZE_API_KEY`, `ARIZE_PROJECT_NAME`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::secret::{self, Secret};
use crate::config::{ConfigError, EnvLookup};
use crate::destination::DestinationConfig;
use crate::destination::otlp::config::{
    self as otlp, OtlpConfig, OtlpProtocol, OtlpTarget, SemconvMode,
};

pub const ARIZE_US: &str = "https://otlp.arize.com";
pub const ARIZE_EU: &str = "https://otlp.eu-west-1a.arize.com";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArizeRegion {
    Us,
    Eu,
}

/// The keys only Arize has.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArizeOwnConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
    /// `us` (default) or `eu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<ArizeRegion>,
    /// The space id (or `space_id_file`, or `ARIZE_SPACE_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_id: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_id_file: Option<PathBuf>,
}

pub const OWN_KEYS: &[&str] = &[
    "api_key",
    "api_key_file",
    "region",
    "space_id",
    "space_id_file",
];

/// Every key of an `arize` section: OTLP's and Arize's own.
pub fn keys() -> Vec<&'static str> {
    otlp::KEYS
        .iter()
        .filter(|k| !otlp::SIGNAL_KEYS.contains(k))
        .chain(OWN_KEYS)
        .copied()
        .collect()
}

/// `[destinations.<name>] type = "arize"` as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ArizeConfig {
    #[serde(flatten)]
    pub otlp: OtlpConfig,
    #[serde(flatten)]
    pub own: ArizeOwnConfig,
}

impl ArizeConfig {
    /// Reads the section: Arize's keys into [`ArizeOwnConfig`], the rest as OTLP's.
    pub fn read(d: &DestinationConfig, name: &str) -> Result<Self, ConfigError> {
        d.section::<serde::de::IgnoredAny>(name, &keys())?;
        Ok(Self {
            otlp: d.section_subset(name, otlp::KEYS)?,
            own: d.section_subset(name, OWN_KEYS)?,
        })
    }
}

pub fn validate(name: &str, c: ArizeConfig, env: EnvLookup<'_>) -> Result<OtlpTarget, ConfigError> {
    let key = |f: &str| format!("destinations.{name}.{f}");
    let ArizeConfig { otlp: d, own } = c;
    let space_id = secret::resolve(
        &key("space_id"),
        own.space_id.as_ref(),
        own.space_id_file.as_deref(),
    )?
    .or_else(|| env("ARIZE_SPACE_ID").map(Secret::new));
    let api_key = secret::resolve(
        &key("api_key"),
        own.api_key.as_ref(),
        own.api_key_file.as_deref(),
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
    let base = match own.region.unwrap_or(ArizeRegion::Us) {
        ArizeRegion::Us => ARIZE_US,
        ArizeRegion::Eu => ARIZE_EU,
    };
    let endpoint = d.endpoint.clone().unwrap_or_else(|| base.to_string());
    let url = otlp::exporter_url(
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
    for (k, v) in otlp::headers(name, &d)? {
        headers.retain(|(existing, _)| *existing != k);
        headers.push((k, v));
    }
    Ok(OtlpTarget {
        url,
        signals: crate::route::Signals::TRACES,
        logs_url: None,
        metrics_url: None,
        protocol,
        headers,
        gzip: otlp::gzip(&d),
        tls: otlp::tls(name, d.tls.as_ref())?,
        semconv: d.semconv.unwrap_or(SemconvMode::Openinference),
        resource_attributes: otlp::resource_attributes(&d),
        project_name: Some(project),
        project_as_model_id: true,
        flavour: "arize",
        log_join: otlp::log_join(name, &d)?,
    })
}

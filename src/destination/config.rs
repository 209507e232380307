//! One `[destinations.<name>]` table: the settings every kind shares, and the
//! kind's own section, which the kind's `config.rs` reads and validates.
//!
//! The file format stays flat (`[destinations.opik] type = "opik"
//! api_key = …`); what belongs to which kind is decided here, once, so a
//! setting given to the wrong kind is an error that names it.

use std::collections::BTreeMap;
use std::time::Duration;

use figment::value::{Dict, Value};
use serde::{Deserialize, Serialize, Serializer};

use super::{arize, console, file, opik, otlp};
use crate::config::secret::MASK;
use crate::config::{
    BatchConfig, ConfigError, ExportSettings, OnFull, QueueConfig, RetryConfig,
    describe_figment_error,
};
use crate::control::{CostConfig, FilterConfig, RedactConfig, SamplingConfig, TenantsConfig};

/// The kinds of destination: the registry's one list.
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
    pub const ALL: [Self; 5] = [
        Self::Console,
        Self::File,
        Self::Opik,
        Self::Arize,
        Self::Otlp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::File => "file",
            Self::Opik => "opik",
            Self::Arize => "arize",
            Self::Otlp => "otlp",
        }
    }

    /// `queue.on_full` when the config does not say: exporters to an
    /// observability backend push back, local views drop.
    pub fn default_on_full(self) -> OnFull {
        match self {
            Self::Console | Self::File => OnFull::Drop,
            Self::Opik | Self::Arize | Self::Otlp => OnFull::Backpressure,
        }
    }

    /// The keys of this kind's own section.
    pub fn section_keys(self) -> Vec<&'static str> {
        match self {
            Self::Console => console::config::KEYS.to_vec(),
            Self::File => file::config::KEYS.to_vec(),
            Self::Opik => opik::config::KEYS.to_vec(),
            Self::Arize => arize::config::keys(),
            Self::Otlp => otlp::config::KEYS.to_vec(),
        }
    }
}

/// One `[destinations.<name>]` table as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DestinationConfig {
    #[serde(rename = "type")]
    pub kind: DestinationKind,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Test the destination once at startup (and after a reload changes
    /// it), as `tracebridge check` does; false skips it.
    #[serde(default = "default_true")]
    pub probe_on_start: bool,
    /// Strip prompt, completion and tool content before export.
    #[serde(default)]
    pub privacy_mode: bool,
    /// Under privacy mode, attribute keys no reader claims that are kept
    /// anyway (`*` at the end: a prefix).
    #[serde(default)]
    pub privacy_allow_attributes: Vec<String>,
    /// Under privacy mode, span event names no reader claims that are kept anyway.
    #[serde(default)]
    pub privacy_allow_events: Vec<String>,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub queue: QueueConfig,
    #[serde(default)]
    pub retry: RetryConfig,
    /// Per-request timeout of one export attempt.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Refuse to start when this destination's startup probe fails.
    #[serde(default)]
    pub require_check: bool,
    /// Keep a deterministic share of traces (`src/control/`).
    #[serde(default)]
    pub sampling: Option<SamplingConfig>,
    /// Include/exclude rules and `drop_non_genai` (`src/control/`).
    #[serde(default)]
    pub filter: Option<FilterConfig>,
    /// A cost from the price table for calls that carry none (`src/control/`).
    #[serde(default)]
    pub cost: Option<CostConfig>,
    /// Secrets and personal data replaced in every string (`src/control/`).
    #[serde(default)]
    pub redact: Option<RedactConfig>,
    /// The tenants whose requests it takes (a list), or for Opik a table
    /// giving each its own workspace, project and key (`src/control/tenants.rs`).
    #[serde(default)]
    pub tenants: Option<TenantsConfig>,
    /// The kind's own settings, read by [`DestinationConfig::section`].
    #[serde(flatten)]
    pub section: BTreeMap<String, Value>,
}

/// The keys every kind shares.
pub const COMMON_KEYS: &[&str] = &[
    "type",
    "enabled",
    "probe_on_start",
    "privacy_mode",
    "privacy_allow_attributes",
    "privacy_allow_events",
    "batch",
    "queue",
    "retry",
    "timeout",
    "require_check",
    "sampling",
    "filter",
    "cost",
    "redact",
    "tenants",
];

fn default_true() -> bool {
    true
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

impl DestinationConfig {
    /// A table of the given kind with every shared setting at its default.
    pub fn new(kind: DestinationKind) -> Self {
        Self {
            kind,
            enabled: true,
            probe_on_start: true,
            privacy_mode: false,
            privacy_allow_attributes: Vec::new(),
            privacy_allow_events: Vec::new(),
            batch: BatchConfig::default(),
            queue: QueueConfig::default(),
            retry: RetryConfig::default(),
            timeout: default_timeout(),
            require_check: false,
            sampling: None,
            filter: None,
            cost: None,
            redact: None,
            tenants: None,
            section: BTreeMap::new(),
        }
    }

    /// Reads the kind's own section into its typed form `T`, after checking
    /// that every key belongs to this kind (naming the kind it belongs to
    /// otherwise).
    pub fn section<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        keys: &[&str],
    ) -> Result<T, ConfigError> {
        for key in self.section.keys() {
            if keys.contains(&key.as_str()) {
                continue;
            }
            let known_elsewhere = DestinationKind::ALL
                .iter()
                .any(|k| k.section_keys().contains(&key.as_str()));
            return Err(ConfigError::Invalid(if known_elsewhere {
                format!(
                    "destinations.{name}.{key} is not a setting of {} destinations",
                    self.kind.as_str()
                )
            } else {
                let mut known: Vec<&str> = COMMON_KEYS.iter().chain(keys).copied().collect();
                known.sort_unstable();
                format!(
                    "unknown key `destinations.{name}.{key}`; known keys of {} destinations: {}",
                    self.kind.as_str(),
                    known.join(", ")
                )
            }));
        }
        self.section_subset(name, keys)
    }

    /// Reads only `keys` of the section into `T` (for presets that split
    /// their section between two typed parts).
    pub fn section_subset<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        keys: &[&str],
    ) -> Result<T, ConfigError> {
        let dict: Dict = self
            .section
            .iter()
            .filter(|(k, _)| keys.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Value::from(dict).deserialize::<T>().map_err(|mut e| {
            e.path.insert(0, name.to_string());
            e.path.insert(0, "destinations".to_string());
            match describe_figment_error(e) {
                ConfigError::Load(m) | ConfigError::Invalid(m) => ConfigError::Invalid(m),
            }
        })
    }

    /// Validates the settings every kind shares.
    pub fn export_settings(&self, name: &str) -> Result<ExportSettings, ConfigError> {
        let key = |field: &str| format!("destinations.{name}.{field}");
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        let BatchConfig {
            max_items,
            max_bytes,
            flush_interval,
        } = self.batch;
        if max_items == 0 {
            return invalid(format!("{} must be at least 1", key("batch.max_items")));
        }
        if max_bytes < 1024 {
            return invalid(format!(
                "{} = {max_bytes} is too small; use at least 1024",
                key("batch.max_bytes")
            ));
        }
        if flush_interval.is_zero() {
            return invalid(format!(
                "{} must be greater than zero",
                key("batch.flush_interval")
            ));
        }
        let QueueConfig {
            max_batches,
            concurrency,
            on_full,
        } = self.queue;
        if max_batches == 0 {
            return invalid(format!("{} must be at least 1", key("queue.max_batches")));
        }
        if concurrency == 0 || concurrency > 64 {
            return invalid(format!(
                "{} = {concurrency}: use 1 to 64",
                key("queue.concurrency")
            ));
        }
        let RetryConfig {
            initial_interval,
            max_interval,
            ..
        } = self.retry;
        if initial_interval.is_zero() || max_interval < initial_interval {
            return invalid(format!(
                "{} must be greater than zero and not above {}",
                key("retry.initial_interval"),
                key("retry.max_interval")
            ));
        }
        if self.timeout.is_zero() {
            return invalid(format!("{} must be greater than zero", key("timeout")));
        }
        Ok(ExportSettings {
            batch: self.batch,
            queue: QueueConfig {
                on_full: Some(on_full.unwrap_or(self.kind.default_on_full())),
                ..self.queue
            },
            retry: self.retry,
            timeout: self.timeout,
        })
    }

    /// The kind's section as `config show` prints it: typed, so secrets are
    /// masked; if it does not parse, every value is masked.
    fn section_for_show(&self) -> serde_json::Value {
        let typed = match self.kind {
            DestinationKind::Console => self.shown::<console::config::ConsoleConfig>(),
            DestinationKind::File => self.shown::<file::config::FileConfig>(),
            DestinationKind::Opik => self.shown::<opik::config::OpikConfig>(),
            DestinationKind::Arize => arize::config::ArizeConfig::read(self, "")
                .ok()
                .and_then(|c| serde_json::to_value(c).ok()),
            DestinationKind::Otlp => self.shown::<otlp::config::OtlpConfig>(),
        };
        typed.unwrap_or_else(|| {
            self.section
                .keys()
                .map(|k| (k.clone(), serde_json::Value::String(MASK.into())))
                .collect::<serde_json::Map<_, _>>()
                .into()
        })
    }

    fn shown<T: serde::de::DeserializeOwned + Serialize>(&self) -> Option<serde_json::Value> {
        self.section::<T>("", &self.kind.section_keys())
            .ok()
            .and_then(|c| serde_json::to_value(c).ok())
    }
}

impl Serialize for DestinationConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'a> {
            #[serde(rename = "type")]
            kind: DestinationKind,
            enabled: bool,
            probe_on_start: bool,
            privacy_mode: bool,
            privacy_allow_attributes: &'a [String],
            privacy_allow_events: &'a [String],
            batch: &'a BatchConfig,
            queue: &'a QueueConfig,
            retry: &'a RetryConfig,
            #[serde(with = "humantime_serde")]
            timeout: Duration,
            require_check: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            sampling: Option<&'a SamplingConfig>,
            #[serde(skip_serializing_if = "Option::is_none")]
            filter: Option<&'a FilterConfig>,
            #[serde(skip_serializing_if = "Option::is_none")]
            cost: Option<&'a CostConfig>,
            #[serde(skip_serializing_if = "Option::is_none")]
            redact: Option<&'a RedactConfig>,
            #[serde(skip_serializing_if = "Option::is_none")]
            tenants: Option<&'a TenantsConfig>,
            #[serde(flatten)]
            section: serde_json::Value,
        }
        Shown {
            kind: self.kind,
            enabled: self.enabled,
            probe_on_start: self.probe_on_start,
            privacy_mode: self.privacy_mode,
            privacy_allow_attributes: &self.privacy_allow_attributes,
            privacy_allow_events: &self.privacy_allow_events,
            batch: &self.batch,
            queue: &self.queue,
            retry: &self.retry,
            timeout: self.timeout,
            require_check: self.require_check,
            sampling: self.sampling.as_ref(),
            filter: self.filter.as_ref(),
            cost: self.cost.as_ref(),
            redact: self.redact.as_ref(),
            tenants: self.tenants.as_ref(),
            section: self.section_for_show(),
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind's `KEYS` list is exactly what its section type accepts.
    #[test]
    fn every_kinds_key_list_matches_its_section_type() {
        fn accepted<T: serde::de::DeserializeOwned>() -> Vec<String> {
            let mut probe = Dict::new();
            probe.insert("__not_a_key".into(), Value::from(1));
            match Value::from(probe).deserialize::<T>() {
                Err(e) => match e.kind {
                    figment::error::Kind::UnknownField(_, expected) => {
                        let mut v: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
                        v.sort();
                        v
                    }
                    other => panic!("{other:?}"),
                },
                Ok(_) => Vec::new(),
            }
        }
        let sorted = |keys: &[&str]| {
            let mut v: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(
            accepted::<console::config::ConsoleConfig>(),
            sorted(console::config::KEYS)
        );
        assert_eq!(
            accepted::<file::config::FileConfig>(),
            sorted(file::config::KEYS)
        );
        assert_eq!(
            accepted::<opik::config::OpikConfig>(),
            sorted(opik::config::KEYS)
        );
        assert_eq!(
            accepted::<otlp::config::OtlpConfig>(),
            sorted(otlp::config::KEYS)
        );
        assert_eq!(
            accepted::<arize::config::ArizeOwnConfig>(),
            sorted(arize::config::OWN_KEYS)
        );
    }
}

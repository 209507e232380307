//! Destinations: where spans go. Each kind is one folder with the same
//! files: `config.rs` (its section of `[destinations.<name>]` and the
//! validation into a target), `probe.rs` (`tracebridge check`), `mapper.rs`
//! (an [`crate::export::ItemMapper`]: received traces → items) and
//! `sender.rs` (a [`crate::export::RequestSender`]: items → one request →
//! send). [`crate::export::spawn`] gives each the shared batching, bounded
//! queue and retries.
//!
//! This file is the registry: adding a kind touches its folder and one arm
//! in each `match` below (and [`DestinationKind`]).

pub mod arize;
mod config;
pub mod console;
mod effective;
pub mod file;
mod line_sink;
pub mod lint;
pub mod opik;
pub mod otlp;
pub mod probe;
pub mod sources;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use config::{COMMON_KEYS, DestinationConfig, DestinationKind};
pub use effective::{Effective, effective};
pub use probe::{StartupChecks, Verdict, spawn_startup_checks};

use crate::budget::MemoryBudget;
use crate::config::{ConfigError, EnvLookup, ExportSettings};
use crate::control::{Controls, TenantsConfig};
use crate::export::{self, DestinationHandle};
use crate::route::Signals;
use crate::semconv::privacy::{AllowList, Privacy};
use crate::telemetry::{DestinationTelemetry, Metrics};

/// A validated destination.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationSettings {
    pub name: String,
    /// Where each setting came from, for error messages (not compared).
    pub sources: sources::Sources,
    /// Run the startup check (`probe_on_start`).
    pub probe_on_start: bool,
    pub privacy_mode: bool,
    /// What privacy mode keeps besides what the readers claim as facts.
    pub privacy_allow: AllowList,
    pub export: ExportSettings,
    pub target: DestinationTarget,
    /// Sampling and filters (`src/control/`); empty costs nothing.
    pub controls: Controls,
    /// The daemon refuses to start when this destination's probe fails.
    pub require_check: bool,
}

impl DestinationSettings {
    /// The OTLP signals this destination takes: traces everywhere, GenAI
    /// log events in Opik and OTLP's `openinference` mode, what `signals`
    /// lists on an OTLP destination.
    pub fn signals(&self) -> Signals {
        match &self.target {
            DestinationTarget::Opik(_) => Signals::TRACES_AND_LOGS,
            // In `openinference` mode GenAI log records join their spans.
            DestinationTarget::Otlp(t) => t.signals.union(Signals {
                logs: t.semconv == otlp::config::SemconvMode::Openinference,
                ..Signals::default()
            }),
            DestinationTarget::Console | DestinationTarget::File(_) => Signals::TRACES,
        }
    }

    /// Privacy mode as configured, if on.
    pub fn privacy(&self) -> Option<Privacy> {
        self.privacy_mode.then(|| Privacy {
            allow: self.privacy_allow.clone(),
        })
    }
}

/// What a destination sends to, per kind.
#[derive(Debug, Clone, PartialEq)]
pub enum DestinationTarget {
    /// One human line per trace on standard output.
    Console,
    /// JSON lines, one record per span, appended to a file.
    File(file::config::FileTarget),
    /// Comet Opik's REST API.
    Opik(opik::OpikTarget),
    /// Any OTLP endpoint (the Arize preset builds one of these).
    Otlp(otlp::OtlpTarget),
}

impl DestinationTarget {
    /// The kind's name, as written in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::File(_) => "file",
            Self::Opik(_) => "opik",
            Self::Otlp(t) => t.flavour,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("destination {name}: {detail}")]
    Io { name: String, detail: String },
}

/// The signals some of `destinations` take: what the receivers route (a
/// logs or metrics request none takes is acknowledged and counted, not
/// spooled).
pub fn signals_taken(destinations: &[DestinationSettings]) -> Signals {
    destinations
        .iter()
        .fold(Signals::default(), |s, d| s.union(d.signals()))
}

/// Validates one `[destinations.<name>]` table.
pub fn configure(
    name: &str,
    d: &DestinationConfig,
    env: EnvLookup<'_>,
) -> Result<DestinationSettings, ConfigError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ConfigError::Invalid(format!(
            "destination name {name:?}: use letters, digits, '_' or '-' (it becomes a metric label)"
        )));
    }
    let export = d.export_settings(name)?;
    let controls = crate::control::config::validate_all(
        name,
        crate::control::ControlTables {
            sampling: d.sampling.as_ref(),
            filter: d.filter.as_ref(),
            cost: d.cost.as_ref(),
            redact: d.redact.as_ref(),
            tenants: d.tenants.as_ref(),
            priced_by_destination: match d.kind {
                DestinationKind::Opik => opik::config::PRICED_BY_OPIK,
                _ => &[],
            },
        },
    )?;
    if matches!(&d.tenants, Some(TenantsConfig::Map(_))) && d.kind != DestinationKind::Opik {
        return Err(ConfigError::Invalid(format!(
            "destinations.{name}.tenants: a table of tenants (each with its own workspace, project and key) is for opik destinations; for a {} destination list the tenants it takes: tenants = [\"team-a\"]",
            d.kind.as_str()
        )));
    }
    let keys = &d.kind.section_keys();
    let target = match d.kind {
        DestinationKind::Console => {
            d.section::<console::config::ConsoleConfig>(name, keys)?;
            DestinationTarget::Console
        }
        DestinationKind::File => {
            DestinationTarget::File(file::config::validate(name, d.section(name, keys)?)?)
        }
        DestinationKind::Opik => {
            let mut target = opik::config::validate(name, d.section(name, keys)?, &export, env)?;
            if let Some(TenantsConfig::Map(map)) = &d.tenants {
                target.tenants = opik::tenants::validate(name, map, &target)?;
            }
            DestinationTarget::Opik(target)
        }
        DestinationKind::Otlp => {
            DestinationTarget::Otlp(otlp::config::validate(name, d.section(name, keys)?)?)
        }
        DestinationKind::Arize => DestinationTarget::Otlp(arize::config::validate(
            name,
            arize::config::ArizeConfig::read(d, name)?,
            env,
        )?),
    };
    Ok(DestinationSettings {
        name: name.to_string(),
        sources: sources::Sources::default(),
        probe_on_start: d.probe_on_start,
        privacy_mode: d.privacy_mode,
        privacy_allow: AllowList {
            attributes: d.privacy_allow_attributes.clone(),
            events: d.privacy_allow_events.clone(),
        },
        export,
        target,
        controls,
        require_check: d.require_check,
    })
}

/// Starts one destination and says in the log where it exports to.
pub async fn start(
    settings: &DestinationSettings,
    metrics: &Metrics,
    budget: &Arc<MemoryBudget>,
    stop: CancellationToken,
) -> Result<DestinationHandle, BuildError> {
    let telemetry = DestinationTelemetry::new(metrics, &settings.name);
    let name = &settings.name;
    let io_error = |detail: String| BuildError::Io {
        name: name.clone(),
        detail,
    };
    let handle = match &settings.target {
        DestinationTarget::Console => {
            tracing::info!(destination = %name, "console: printing one line per trace to stdout");
            let sender = console::sender::stdout();
            let lines =
                console::TraceLines::with_controls(settings.controls.stage(telemetry.clone()));
            let mapper = settings.controls.gate(lines, telemetry.clone());
            export::spawn(settings.export, budget, mapper, sender, telemetry, stop)
        }
        DestinationTarget::File(target) => {
            let path = &target.path;
            let sender = file::sender::open(path, name).await.map_err(|e| {
                io_error(format!(
                    "cannot open {} for appending (destinations.{name}.path): {e}",
                    path.display()
                ))
            })?;
            tracing::info!(destination = %name, path = %path.display(), "file: writing one JSON line per span");
            let records = file::SpanRecords::new(settings.privacy(), telemetry.clone())
                .with_controls(settings.controls.stage(telemetry.clone()));
            let mapper = settings.controls.gate(records, telemetry.clone());
            export::spawn(settings.export, budget, mapper, sender, telemetry, stop)
        }
        DestinationTarget::Opik(target) => {
            let context = sources::ErrorContext::new(name, &settings.sources);
            let sender = opik::OpikClient::new(target, settings.export.timeout, context)
                .map_err(|e| io_error(format!("cannot build the HTTP client: {e}")))?;
            tracing::info!(
                destination = %name,
                "opik: exporting traces to project {:?} in workspace {:?} at {}{}",
                target.project_name,
                target.workspace,
                crate::config::secret::mask_url(&target.url),
                if target.api_key.is_some() { " (with API key)" } else { " (no API key)" },
            );
            let mapper = opik::TraceAssembler::new(
                target.clone(),
                settings.privacy(),
                settings.export.batch.max_bytes,
                telemetry.clone(),
            )
            .with_controls(settings.controls.stage(telemetry.clone()));
            let mapper = settings.controls.gate(mapper, telemetry.clone());
            export::spawn(settings.export, budget, mapper, sender, telemetry, stop)
        }
        DestinationTarget::Otlp(target) => {
            let context = sources::ErrorContext::new(name, &settings.sources);
            let sender = otlp::OtlpClient::new(target, settings.export.timeout, context)
                .map_err(|e| io_error(e.to_string()))?;
            tracing::info!(
                destination = %name,
                "{}: forwarding {} over {} to {} (project {:?}, semconv {}{})",
                target.flavour,
                target.signals,
                target.protocol.as_str(),
                crate::config::secret::mask_url(&target.url),
                target.project_name.as_deref().unwrap_or("from the spans"),
                target.semconv.as_str(),
                if settings.privacy_mode { ", privacy mode" } else { "" },
            );
            let mapper =
                otlp::OtlpMapper::new(target.clone(), settings.privacy(), telemetry.clone())
                    .with_controls(settings.controls.stage(telemetry.clone()));
            let mapper = settings.controls.gate(mapper, telemetry.clone());
            export::spawn(settings.export, budget, mapper, sender, telemetry, stop)
        }
    };
    Ok(handle)
}

/// Tests one destination for real (`tracebridge check`).
pub async fn probe(d: &DestinationSettings) -> Verdict {
    let timeout = d.export.timeout.min(Duration::from_secs(15));
    let name = &d.name;
    match &d.target {
        DestinationTarget::Console => console::probe::probe(name),
        DestinationTarget::File(t) => file::probe::probe(name, t),
        DestinationTarget::Opik(t) => opik::probe::probe(name, t, timeout).await,
        DestinationTarget::Otlp(t) => otlp::probe::probe(name, t, timeout).await,
    }
}

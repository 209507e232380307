//! Destinations: where spans go. Each kind supplies an [`crate::export::ItemMapper`]
//! and a [`crate::export::RequestSender`]; [`crate::export::spawn`] gives it
//! batching, a bounded queue and retries.

pub mod console;
pub mod file;
pub mod opik;
pub mod otlp;

use tokio_util::sync::CancellationToken;

use crate::config::{DestinationSettings, DestinationTarget};
use crate::export::{self, DestinationHandle};
use crate::telemetry::{DestinationTelemetry, Metrics};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("destination {name}: {detail}")]
    Io { name: String, detail: String },
}

/// Starts one destination and says in the log where it exports to.
pub async fn start(
    settings: &DestinationSettings,
    metrics: &Metrics,
    stop: CancellationToken,
) -> Result<DestinationHandle, BuildError> {
    let telemetry = DestinationTelemetry::new(metrics, &settings.name);
    let name = &settings.name;
    let handle = match &settings.target {
        DestinationTarget::Console => {
            tracing::info!(destination = %name, "console: printing one line per trace to stdout");
            export::spawn(
                settings.export,
                console::TraceLines,
                console::Stdout::default(),
                telemetry,
                stop,
            )
        }
        DestinationTarget::File { path } => {
            let writer = file::Appender::open(path)
                .await
                .map_err(|e| BuildError::Io {
                    name: name.clone(),
                    detail: format!("cannot open {} for appending: {e}", path.display()),
                })?;
            tracing::info!(destination = %name, path = %path.display(), "file: writing one JSON line per span");
            let records = file::SpanRecords {
                privacy: settings.privacy_mode,
            };
            export::spawn(settings.export, records, writer, telemetry, stop)
        }
        DestinationTarget::Opik(target) => {
            let client = opik::OpikClient::new(target, settings.export.timeout).map_err(|e| {
                BuildError::Io {
                    name: name.clone(),
                    detail: format!("cannot build the HTTP client: {e}"),
                }
            })?;
            tracing::info!(
                destination = %name,
                "opik: exporting traces to project {:?} in workspace {:?} at {}{}",
                target.project_name,
                target.workspace,
                target.url,
                if target.api_key.is_some() { " (with API key)" } else { " (no API key)" },
            );
            let assembler = opik::TraceAssembler::new(
                target.clone(),
                settings.privacy_mode,
                settings.export.batch.max_bytes,
                telemetry.clone(),
            );
            export::spawn(settings.export, assembler, client, telemetry, stop)
        }
        DestinationTarget::Otlp(target) => {
            let client = otlp::OtlpClient::new(target, settings.export.timeout).map_err(|e| {
                BuildError::Io {
                    name: name.clone(),
                    detail: e.to_string(),
                }
            })?;
            tracing::info!(
                destination = %name,
                "{}: forwarding spans over {:?} to {} (project {:?}, semconv {:?}{})",
                target.flavour,
                target.protocol,
                target.url,
                target.project_name.as_deref().unwrap_or("from the spans"),
                target.semconv,
                if settings.privacy_mode { ", privacy mode" } else { "" },
            );
            let mapper =
                otlp::OtlpMapper::new(target.clone(), settings.privacy_mode, telemetry.clone());
            export::spawn(settings.export, mapper, client, telemetry, stop)
        }
    };
    Ok(handle)
}

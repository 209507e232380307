//! The command line: `run` (default), `config check`, `config show`, `version`.
//!
//! Exit codes: 0 success, 1 runtime failure (e.g. a port in use), 2 config error.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, CONFIG_PATH_ENV, Loaded};
use crate::{app, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "tracebridge",
    version,
    about = "Bridge OpenTelemetry GenAI traces to Comet Opik, Arize and any OTLP backend"
)]
pub struct Cli {
    /// Config file (default: ./config.toml if present, else the built-in one).
    #[arg(long, short, global = true, env = CONFIG_PATH_ENV, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (the default).
    Run,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate the configuration; exit 0 if valid, 2 if not.
    Check,
    /// Print every effective value with its source; secrets are masked.
    Show,
}

const CONFIG_ERROR: u8 = 2;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(cli.config),
        Command::Config { action } => config_command(cli.config, action),
        Command::Version => {
            out(&format!("tracebridge {}\n", env!("CARGO_PKG_VERSION")));
            ExitCode::SUCCESS
        }
    }
}

fn out(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn fail(code: u8, message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr().lock(), "tracebridge: {message}");
    ExitCode::from(code)
}

fn load(path: Option<PathBuf>) -> Result<(Loaded, config::Settings), ExitCode> {
    let loaded = config::load(path.as_deref())
        .map_err(|e| fail(CONFIG_ERROR, &format!("config error: {e}")))?;
    let settings = loaded
        .settings()
        .map_err(|e| fail(CONFIG_ERROR, &format!("config error: {e}")))?;
    Ok((loaded, settings))
}

fn config_command(path: Option<PathBuf>, action: ConfigAction) -> ExitCode {
    match action {
        ConfigAction::Check => {
            let (loaded, settings) = match load(path) {
                Ok(l) => l,
                Err(code) => return code,
            };
            let names: Vec<_> = settings
                .destinations
                .iter()
                .map(|d| d.name.as_str())
                .collect();
            out(&format!(
                "config OK ({}): destinations: {}\n",
                loaded.source,
                names.join(", ")
            ));
            ExitCode::SUCCESS
        }
        // Shown even when validation fails: seeing the effective values is
        // how one finds out why.
        ConfigAction::Show => {
            let loaded = match config::load(path.as_deref()) {
                Ok(l) => l,
                Err(e) => return fail(CONFIG_ERROR, &format!("config error: {e}")),
            };
            out(&config::render_effective(&loaded));
            match loaded.settings() {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => fail(CONFIG_ERROR, &format!("config error: {e}")),
            }
        }
    }
}

fn run(path: Option<PathBuf>) -> ExitCode {
    let (loaded, settings) = match load(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    telemetry::logging::init(&settings.log);
    tracing::info!(config = %loaded.source, "configuration loaded");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(1, &format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async move {
        let running = match app::start(settings).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("{e}");
                return fail(1, &e.to_string());
            }
        };
        let signal = shutdown_signal().await;
        tracing::info!("received {signal}");
        running.shutdown();
        running.stopped().await;
        ExitCode::SUCCESS
    })
}

/// Waits for SIGTERM or SIGINT and names the one that came.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the daemon");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

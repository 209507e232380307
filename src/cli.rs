//! The command line: `run` (default), `config check`, `config show`, `version`.
//!
//! Exit codes: 0 success, 1 runtime failure (e.g. a port in use), 2 config
//! error, 3 a destination with `require_check = true` failed its check at start.

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
    /// Test every configured destination for real; exit 0 only if all pass.
    Check {
        /// Check only this destination.
        #[arg(long)]
        destination: Option<String>,
    },
    /// Show a running daemon's per-destination status.
    Status {
        /// The daemon's admin address (`host:port` or a URL); default: admin.listen of the config.
        #[arg(long)]
        admin: Option<String>,
    },
    /// Exit 0 if a running daemon answers /readyz with 200 (for container health checks).
    Healthcheck {
        /// The daemon's admin address (`host:port` or a URL); default: admin.listen of the config.
        #[arg(long)]
        admin: Option<String>,
    },
    /// Print the example GenAI trace (OTLP/JSON) with its times moved to just now.
    Example,
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
/// A destination with `require_check = true` failed its probe at start.
const REQUIRED_CHECK_FAILED: u8 = 3;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(cli.config),
        Command::Config { action } => config_command(cli.config, action),
        Command::Check { destination } => check(cli.config, destination),
        Command::Status { admin } => match admin_url(cli.config, admin) {
            Ok(url) => status(&url),
            Err(code) => code,
        },
        Command::Healthcheck { admin } => match admin_url(cli.config, admin) {
            Ok(url) => healthcheck(&url),
            Err(code) => code,
        },
        Command::Example => {
            out(&example_trace(std::time::SystemTime::now()));
            ExitCode::SUCCESS
        }
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
    let settings = loaded.settings().map_err(|e| {
        fail(
            CONFIG_ERROR,
            &format!("config error: {}", loaded.with_source(&e)),
        )
    })?;
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
            print_warnings(&settings);
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
                Err(e) => fail(
                    CONFIG_ERROR,
                    &format!("config error: {}", loaded.with_source(&e)),
                ),
            }
        }
    }
}

/// Threads of the daemon's blocking pool (tokio's default is 512).
const MAX_BLOCKING_THREADS: usize = 16;

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(1, &format!("cannot start the async runtime: {e}")))
}

/// The config's warnings on stderr, one line each (`config check`, `check`).
fn print_warnings(settings: &config::Settings) {
    for warning in &settings.warnings {
        let _ = writeln!(std::io::stderr().lock(), "tracebridge: warning: {warning}");
    }
}

fn check(path: Option<PathBuf>, only: Option<String>) -> ExitCode {
    let (_, settings) = match load(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    print_warnings(&settings);
    let destinations: Vec<_> = settings
        .destinations
        .iter()
        .filter(|d| only.as_deref().is_none_or(|n| n == d.name))
        .collect();
    if destinations.is_empty() {
        return fail(
            CONFIG_ERROR,
            &format!(
                "no enabled destination named {:?}",
                only.unwrap_or_default()
            ),
        );
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    app::install_tls_provider();
    let verdicts = rt.block_on(async {
        let mut out = Vec::new();
        for d in destinations {
            out.push(crate::destination::probe(d).await);
        }
        out
    });
    let width = verdicts
        .iter()
        .map(|v| v.destination.len())
        .max()
        .unwrap_or(0);
    let mut all_ok = true;
    for v in &verdicts {
        all_ok &= v.ok;
        out(&format!(
            "{:<width$}  {}  {}\n",
            v.destination,
            if v.ok { "OK  " } else { "FAIL" },
            v.message
        ));
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The admin base URL: `--admin` (a URL, or `host:port`), else `admin.listen`
/// of the config, with an unspecified address (0.0.0.0, ::) reached on loopback.
fn admin_url(config_path: Option<PathBuf>, admin: Option<String>) -> Result<String, ExitCode> {
    if let Some(a) = admin {
        let a = a.trim_end_matches('/');
        return Ok(if a.contains("://") {
            a.to_string()
        } else {
            format!("http://{a}")
        });
    }
    let loaded = config::load(config_path.as_deref()).map_err(|e| {
        fail(
            CONFIG_ERROR,
            &format!("config error: {e}; or pass --admin HOST:PORT"),
        )
    })?;
    let listen = &loaded.config.admin.listen;
    let addr: std::net::SocketAddr = listen.parse().map_err(|_| {
        fail(
            CONFIG_ERROR,
            &format!(
                "admin.listen = {listen:?} (from {}) is not an IP:PORT; pass --admin HOST:PORT",
                loaded.source
            ),
        )
    })?;
    if addr.port() == 0 {
        return Err(fail(
            CONFIG_ERROR,
            &format!(
                "admin.listen = {listen:?} (from {}) has port 0, chosen at start; pass --admin HOST:PORT with the port the daemon logged",
                loaded.source
            ),
        ));
    }
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    Ok(format!(
        "http://{}",
        std::net::SocketAddr::new(ip, addr.port())
    ))
}

/// Why a request to the admin server failed, cause included.
fn unreachable(url: &str, e: &reqwest::Error) -> String {
    let detail = crate::export::error_chain(e);
    format!(
        "cannot reach {url}: {}",
        crate::destination::probe::explain_connection(&detail, url)
    )
}

fn status(admin: &str) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    app::install_tls_provider();
    let url = format!("{}/status", admin.trim_end_matches('/'));
    let fetched = rt.block_on(async {
        let response = reqwest::Client::new()
            .get(&url)
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| unreachable(&url, &e))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        response
            .bytes()
            .await
            .map_err(|e| format!("cannot read {url}: {}", crate::export::error_chain(&e)))
            .and_then(|b| {
                serde_json::from_slice::<serde_json::Value>(&b)
                    .map_err(|e| format!("{url}: not JSON: {e}"))
            })
    });
    match fetched {
        Ok(v) => {
            out(&render_status(&v));
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, &e),
    }
}

fn healthcheck(admin: &str) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    app::install_tls_provider();
    let url = format!("{}/readyz", admin.trim_end_matches('/'));
    let answer = rt.block_on(async {
        reqwest::Client::new()
            .get(&url)
            .timeout(std::time::Duration::from_secs(3))
            .send()
            .await
            .map(|r| r.status())
    });
    match answer {
        Ok(s) if s.is_success() => ExitCode::SUCCESS,
        Ok(s) => fail(1, &format!("{url} answered {s}")),
        Err(e) => fail(1, &unreachable(&url, &e)),
    }
}

/// The example trace in `examples/genai-trace.json`.
const EXAMPLE_TRACE: &str = include_str!("../examples/genai-trace.json");

/// The example trace with every `*TimeUnixNano` shifted so that the trace
/// ends a second before `now`: it lands at the top of Opik's list, not
/// months back.
fn example_trace(now: std::time::SystemTime) -> String {
    fn times(v: &serde_json::Value, out: &mut Vec<u128>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match v.as_str().and_then(|s| s.parse().ok()) {
                        Some(t) if k.ends_with("TimeUnixNano") => out.push(t),
                        _ => times(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| times(i, out)),
            _ => {}
        }
    }
    fn shift(v: &mut serde_json::Value, by: i128) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    match v.as_str().and_then(|s| s.parse::<i128>().ok()) {
                        Some(t) if k.ends_with("TimeUnixNano") => {
                            *v = (t + by).to_string().into();
                        }
                        _ => shift(v, by),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|i| shift(i, by)),
            _ => {}
        }
    }
    let Ok(mut trace) = serde_json::from_str::<serde_json::Value>(EXAMPLE_TRACE) else {
        return EXAMPLE_TRACE.to_string();
    };
    let mut all = Vec::new();
    times(&trace, &mut all);
    let now_ns = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let end = all.iter().copied().max().unwrap_or(0);
    let by = now_ns as i128 - 1_000_000_000 - end as i128;
    shift(&mut trace, by);
    format!("{trace}\n")
}

/// A destination's spool backlog, `1.5MiB/120/3s` ("-" in memory mode).
fn spool_cell(spool: &serde_json::Value) -> String {
    if spool.is_null() {
        return "-".to_string();
    }
    let bytes = spool["bytes"].as_u64().unwrap_or(0);
    let size = match bytes {
        b if b >= 1 << 30 => format!("{:.1}GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1}MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1}KiB", b as f64 / 1024.0),
        b => format!("{b}B"),
    };
    let age = spool["oldest_record_age_seconds"].as_f64().unwrap_or(0.0);
    let age = if bytes == 0 {
        "-".to_string()
    } else if age >= 3600.0 {
        format!("{:.1}h", age / 3600.0)
    } else if age >= 60.0 {
        format!("{:.0}m", age / 60.0)
    } else {
        format!("{age:.0}s")
    };
    format!("{size}/{}/{age}", spool["records"].as_u64().unwrap_or(0))
}

/// The `/status` JSON as a small table.
fn render_status(v: &serde_json::Value) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "tracebridge {} ({}), up {} s",
        v["version"].as_str().unwrap_or("?"),
        v["state"].as_str().unwrap_or("?"),
        v["uptime_seconds"]
    );
    let rows: Vec<[String; 8]> = v["destinations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let last = match &d["last_error"] {
                serde_json::Value::Null => "-".to_string(),
                e => format!(
                    "{} {}",
                    e["at"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                ),
            };
            [
                d["name"].as_str().unwrap_or("").to_string(),
                d["kind"].as_str().unwrap_or("").to_string(),
                d["sent_spans"].to_string(),
                d["failed_spans"].to_string(),
                d["dropped_spans"].to_string(),
                format!("{}/{}", d["queue_size"], d["queue_capacity"]),
                spool_cell(&d["spool"]),
                last,
            ]
        })
        .collect();
    let header = [
        "DESTINATION",
        "KIND",
        "SENT",
        "FAILED",
        "DROPPED",
        "QUEUE",
        "SPOOL(BYTES/RECORDS/OLDEST)",
        "LAST ERROR",
    ];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ", w = widths[i]);
            }
        }
        l.trim_end().to_string() + "\n"
    };
    s.push_str(&line(&header));
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        s.push_str(&line(&cells));
    }
    for d in v["destinations"].as_array().into_iter().flatten() {
        if d["startup_check"]["ok"] == false {
            let _ = writeln!(
                s,
                "{}: startup check failed: {}",
                d["name"].as_str().unwrap_or(""),
                d["startup_check"]["message"].as_str().unwrap_or("")
            );
        }
    }
    s
}

fn run(path: Option<PathBuf>) -> ExitCode {
    let (loaded, settings) = match load(path.clone()) {
        Ok(l) => l,
        Err(code) => return code,
    };
    telemetry::logging::init(&settings.log);
    tracing::info!(config = %loaded.source, "configuration loaded");
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    for name in &loaded.ignored_env {
        tracing::debug!(variable = %name, "ignoring {name}: it has the shape of a Kubernetes service link, not of a setting");
    }
    // Blocking work (decoding large bodies, files, the trace store) gains
    // nothing from hundreds of threads on a few cores, and each thread keeps
    // an allocator heap of its own: a bounded pool keeps RSS bounded too.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(1, &format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async move {
        let mut signals = StopSignals::install();
        let destinations = settings.destinations.clone();
        let failed = crate::destination::probe::required_checks(&destinations).await;
        if !failed.is_empty() {
            let list: Vec<String> = failed
                .iter()
                .map(|v| format!("destination {}: {}", v.destination, v.message))
                .collect();
            let message = format!(
                "refusing to start: a destination with require_check = true failed its check ({})",
                list.join("; ")
            );
            tracing::error!("{message}");
            return fail(REQUIRED_CHECK_FAILED, &message);
        }
        let running = match app::start(settings).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("{e}");
                return fail(1, &e.to_string());
            }
        };
        crate::destination::spawn_startup_checks(destinations, running.startup_checks.clone());
        let signal = loop {
            match signals.next().await {
                Event::Stop(name) => break name,
                Event::Reload => reload(path.as_deref(), &running).await,
            }
        };
        tracing::info!("received {signal}");
        running.shutdown();
        running.stopped().await;
        ExitCode::SUCCESS
    })
}

/// Reloads the config file on SIGHUP: destinations are added, removed or
/// changed; a config that does not load keeps the running one.
async fn reload(path: Option<&std::path::Path>, running: &app::Running) {
    tracing::info!("SIGHUP: reloading the configuration");
    let settings = match config::load(path).and_then(|l| {
        l.settings()
            .map_err(|e| config::ConfigError::Invalid(l.with_source(&e)))
    }) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("config reload failed, keeping the running configuration: {e}");
            return;
        }
    };
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    match running.reload(settings).await {
        Ok(s) => {
            tracing::info!(
                added = ?s.added,
                removed = ?s.removed,
                changed = ?s.changed,
                unchanged = ?s.unchanged,
                "configuration reloaded: {} added, {} removed, {} changed, {} unchanged",
                s.added.len(),
                s.removed.len(),
                s.changed.len(),
                s.unchanged.len()
            );
            if s.needs_restart {
                tracing::warn!(
                    "receiver, admin, log, spool/state_dir or shutdown_timeout settings changed: they apply after a restart; destinations were reloaded"
                );
            }
        }
        Err(e) => tracing::error!("config reload failed: {e}"),
    }
}

/// What the daemon is told by signals.
enum Event {
    Stop(&'static str),
    Reload,
}

/// SIGTERM, SIGINT and SIGHUP, listened for from before the start so that a
/// signal arriving during it is handled rather than the default death.
struct StopSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| {
                signal(kind)
                    .map_err(|e| tracing::warn!(error = %e, "cannot listen for {name}"))
                    .ok()
            };
            Self {
                term: listen(SignalKind::terminate(), "SIGTERM"),
                int: listen(SignalKind::interrupt(), "SIGINT"),
                hup: listen(SignalKind::hangup(), "SIGHUP"),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Waits for the next signal.
    async fn next(&mut self) -> Event {
        #[cfg(unix)]
        {
            async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = one(&mut self.term) => Event::Stop("SIGTERM"),
                _ = one(&mut self.int) => Event::Stop("SIGINT"),
                _ = one(&mut self.hup) => Event::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Event::Stop("Ctrl-C")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_for(listen: &str) -> Result<String, ExitCode> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, format!("[admin]\nlisten = \"{listen}\"\n")).unwrap();
        admin_url(Some(path), None)
    }

    #[test]
    fn the_spool_cell_shows_bytes_records_and_the_oldest_age() {
        let cell = |v: serde_json::Value| spool_cell(&v);
        assert_eq!(cell(serde_json::Value::Null), "-");
        assert_eq!(
            cell(serde_json::json!({"bytes": 0, "records": 0, "oldest_record_age_seconds": 0.0})),
            "0B/0/-"
        );
        assert_eq!(
            cell(
                serde_json::json!({"bytes": 3 << 20, "records": 120, "oldest_record_age_seconds": 95.0})
            ),
            "3.0MiB/120/2m"
        );
        assert_eq!(
            cell(
                serde_json::json!({"bytes": 2048, "records": 2, "oldest_record_age_seconds": 7200.0})
            ),
            "2.0KiB/2/2.0h"
        );
    }

    #[test]
    fn the_example_trace_ends_just_before_now_and_keeps_its_durations() {
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let v: serde_json::Value = serde_json::from_str(&example_trace(now)).unwrap();
        let spans = v["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .unwrap();
        let t = |s: &serde_json::Value, k: &str| s[k].as_str().unwrap().parse::<u128>().unwrap();
        let root = &spans[0];
        assert_eq!(t(root, "endTimeUnixNano"), 1_799_999_999_000_000_000);
        assert_eq!(
            t(root, "endTimeUnixNano") - t(root, "startTimeUnixNano"),
            2_350_000_000
        );
    }

    #[test]
    fn the_admin_address_comes_from_the_flag_or_the_config() {
        assert_eq!(
            admin_url(None, Some("10.0.0.1:9".into())).unwrap(),
            "http://10.0.0.1:9"
        );
        assert_eq!(
            admin_url(None, Some("https://h:1/".into())).unwrap(),
            "https://h:1"
        );
        assert_eq!(url_for("0.0.0.0:13133").unwrap(), "http://127.0.0.1:13133");
        assert_eq!(url_for("[::]:13133").unwrap(), "http://[::1]:13133");
        assert_eq!(url_for("127.0.0.2:7").unwrap(), "http://127.0.0.2:7");
        assert!(url_for("127.0.0.1:0").is_err());
    }
}

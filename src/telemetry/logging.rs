//! Log set-up: `tracing` to stderr, text or JSON, level from the config
//! unless `RUST_LOG` is set.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Safe to call more than once (later calls
/// are ignored), which keeps tests that start several daemons simple.
pub fn init(config: &LogConfig) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::new(directives),
        _ => EnvFilter::new(default_directives(&config.level)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let result = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already installed (a second daemon in the same test process): keep the first.
    let _ = result;
}

/// A bare level applies to tracebridge only; dependencies stay at `warn`
/// so `debug` shows our decisions rather than every HTTP/2 frame.
fn default_directives(level: &str) -> String {
    if level.contains('=') {
        level.to_string()
    } else {
        format!("warn,tracebridge={level}")
    }
}

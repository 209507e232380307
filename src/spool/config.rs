//! `[spool]` and `state_dir`: what the user writes, and the validated settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// Where acknowledged spans wait for their destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpoolMode {
    /// Segment files under `state_dir`: survives restarts and crashes.
    Disk,
    /// In memory only (lost on a crash or at the shutdown deadline).
    Memory,
}

/// The `[spool]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    pub mode: SpoolMode,
    /// `always`, `never`, or an interval such as `100ms`.
    pub fsync: String,
    /// Disk each destination may hold unsent; beyond it the oldest is dropped.
    pub max_bytes: u64,
    /// Size of one segment file (the unit of removal and of dropping).
    pub segment_bytes: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            mode: SpoolMode::Disk,
            fsync: "always".into(),
            max_bytes: 1 << 30,
            segment_bytes: 32 << 20,
        }
    }
}

/// When appended records are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before the request is acknowledged (group commit: one `fdatasync`
    /// for every request that arrived meanwhile).
    Always,
    /// At most this long after the write; a crash of the process loses
    /// nothing (the kernel has the data), a crash of the machine up to this.
    Interval(Duration),
    /// When the kernel decides.
    Never,
}

/// Validated spool settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SpoolSettings {
    pub mode: SpoolMode,
    /// `<state_dir>/spool`.
    pub dir: PathBuf,
    pub fsync: FsyncPolicy,
    pub max_bytes: u64,
    pub segment_bytes: u64,
}

/// The default state directory: systemd's `$STATE_DIRECTORY` when set
/// (`StateDirectory=` in the unit), else `tracebridge-state` in the working
/// directory.
pub fn default_state_dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    env("STATE_DIRECTORY")
        .and_then(|v| v.split(':').next().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("tracebridge-state"))
}

pub fn validate(
    c: &SpoolConfig,
    state_dir: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SpoolSettings, ConfigError> {
    let fsync = parse_fsync(&c.fsync)?;
    if c.max_bytes < 1 << 20 {
        return Err(ConfigError::Invalid(format!(
            "spool.max_bytes = {}: must be at least 1048576 (1 MiB)",
            c.max_bytes
        )));
    }
    if c.segment_bytes < 64 << 10 {
        return Err(ConfigError::Invalid(format!(
            "spool.segment_bytes = {}: must be at least 65536",
            c.segment_bytes
        )));
    }
    let state_dir = state_dir.map_or_else(|| default_state_dir(env), Path::to_path_buf);
    Ok(SpoolSettings {
        mode: c.mode,
        dir: state_dir.join("spool"),
        fsync,
        max_bytes: c.max_bytes,
        // Dropping goes a segment at a time: keep at least four per destination.
        segment_bytes: c.segment_bytes.min(c.max_bytes / 4),
    })
}

fn parse_fsync(v: &str) -> Result<FsyncPolicy, ConfigError> {
    match v {
        "always" => Ok(FsyncPolicy::Always),
        "never" => Ok(FsyncPolicy::Never),
        other => match humantime::parse_duration(other) {
            Ok(d) if d >= Duration::from_millis(1) => Ok(FsyncPolicy::Interval(d)),
            _ => Err(ConfigError::Invalid(format!(
                "spool.fsync = {other:?}: expected \"always\", \"never\" or an interval such as \"100ms\""
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_policies_parse_and_bad_values_are_named() {
        assert_eq!(parse_fsync("always").unwrap(), FsyncPolicy::Always);
        assert_eq!(parse_fsync("never").unwrap(), FsyncPolicy::Never);
        assert_eq!(
            parse_fsync("100ms").unwrap(),
            FsyncPolicy::Interval(Duration::from_millis(100))
        );
        let e = parse_fsync("sometimes").unwrap_err().to_string();
        assert!(e.contains("spool.fsync"), "{e}");
    }

    #[test]
    fn the_state_dir_defaults_to_systemds_then_the_working_directory() {
        let none = |_: &str| None;
        let sd = |k: &str| (k == "STATE_DIRECTORY").then(|| "/var/lib/tracebridge".to_string());
        let c = SpoolConfig::default();
        assert_eq!(
            validate(&c, None, &none).unwrap().dir,
            PathBuf::from("tracebridge-state/spool")
        );
        assert_eq!(
            validate(&c, None, &sd).unwrap().dir,
            PathBuf::from("/var/lib/tracebridge/spool")
        );
        assert_eq!(
            validate(&c, Some(Path::new("/x")), &sd).unwrap().dir,
            PathBuf::from("/x/spool")
        );
    }
}

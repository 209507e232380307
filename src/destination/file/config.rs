//! The file destination's section: where to append.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where to append JSON lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

/// The keys of this kind's section.
pub const KEYS: &[&str] = &["path"];

/// A validated file destination.
#[derive(Debug, Clone, PartialEq)]
pub struct FileTarget {
    pub path: PathBuf,
}

pub fn validate(name: &str, c: FileConfig) -> Result<FileTarget, ConfigError> {
    let path = c.path.ok_or_else(|| {
        ConfigError::Invalid(format!(
            "destinations.{name}.path is required for file destinations"
        ))
    })?;
    Ok(FileTarget { path })
}

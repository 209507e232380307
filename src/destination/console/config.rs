//! The console destination has no settings of its own.

use serde::{Deserialize, Serialize};

/// `[destinations.<name>] type = "console"`: nothing beyond the shared settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {}

/// The keys of this kind's section.
pub const KEYS: &[&str] = &[];

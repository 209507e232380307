//! `[state]`: where the Opik destinations keep their trace tables (the Opik
//! id, first-seen time, project and open-row state of each trace), so that a
//! restart does not split a trace in progress.
//!
//! - `disk`: an embedded store (`redb`) per destination under `state_dir`;
//! - `memory`: nothing survives a restart (the behaviour before the store);
//! - `auto` (default): `disk` with the durable spool, `memory` with
//!   `spool.mode = "memory"`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The `[state]` table as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    pub backend: StateBackend,
}

/// `state.backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    #[default]
    Auto,
    Disk,
    Memory,
}

/// Where one Opik destination keeps its trace table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TraceState {
    /// In memory only.
    #[default]
    Memory,
    /// An embedded store at this path (`<state_dir>/opik/<destination>.redb`).
    Disk(PathBuf),
}

impl StateConfig {
    /// The trace state of destination `name`, given the state directory
    /// and whether the spool is durable.
    pub fn for_destination(&self, name: &str, state_dir: &Path, durable_spool: bool) -> TraceState {
        let disk = || TraceState::Disk(state_dir.join("opik").join(format!("{name}.redb")));
        match self.backend {
            StateBackend::Disk => disk(),
            StateBackend::Auto if durable_spool => disk(),
            StateBackend::Auto | StateBackend::Memory => TraceState::Memory,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_the_spool() {
        let c = StateConfig::default();
        let dir = Path::new("/s");
        assert_eq!(
            c.for_destination("opik", dir, true),
            TraceState::Disk(PathBuf::from("/s/opik/opik.redb"))
        );
        assert_eq!(c.for_destination("opik", dir, false), TraceState::Memory);
        let memory = StateConfig {
            backend: StateBackend::Memory,
        };
        assert_eq!(
            memory.for_destination("opik", dir, true),
            TraceState::Memory
        );
    }
}

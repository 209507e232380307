//! `[state]`: where the Opik destinations keep their trace tables (the Opik
//! id, first-seen time, project and open-row state of each trace), so that a
//! restart does not split a trace in progress.
//!
//! - `disk`: an embedded store (`redb`) per destination under `state_dir`;
//! - `memory`: nothing survives a restart (the behaviour before the store);
//! - `redis`: shared by every replica that points at the same Redis, so a
//!   gateway can run N replicas behind a plain Service;
//! - `auto` (default): `disk` with the durable spool, `memory` with
//!   `spool.mode = "memory"`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::config::secret::{self, Secret};

/// The `[state]` table as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    pub backend: StateBackend,
    pub redis: RedisConfig,
}

/// `[state.redis]`, used with `backend = "redis"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[user@]host:port[/db]`, or `rediss://` for TLS.
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Prefix of every key (several deployments may share one Redis).
    pub key_prefix: String,
    /// Connect and response timeout of one command.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            password: None,
            password_file: None,
            key_prefix: "tracebridge:".into(),
            timeout: Duration::from_secs(1),
        }
    }
}

/// A validated `[state.redis]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTarget {
    pub url: String,
    pub password: Option<Secret>,
    /// `<key_prefix><destination>:`.
    pub key_prefix: String,
    pub timeout: Duration,
}

/// `state.backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    #[default]
    Auto,
    Disk,
    Memory,
    Redis,
}

/// Where one Opik destination keeps its trace table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TraceState {
    /// In memory only.
    #[default]
    Memory,
    /// An embedded store at this path (`<state_dir>/opik/<destination>.redb`).
    Disk(PathBuf),
    /// Shared on Redis.
    Redis(RedisTarget),
}

impl StateConfig {
    /// The trace state of destination `name`, given the state directory
    /// and whether the spool is durable.
    pub fn for_destination(
        &self,
        name: &str,
        state_dir: &Path,
        durable_spool: bool,
    ) -> Result<TraceState, ConfigError> {
        let disk = || TraceState::Disk(state_dir.join("opik").join(format!("{name}.redb")));
        Ok(match self.backend {
            StateBackend::Disk => disk(),
            StateBackend::Auto if durable_spool => disk(),
            StateBackend::Auto | StateBackend::Memory => TraceState::Memory,
            StateBackend::Redis => TraceState::Redis(self.redis.validate(name)?),
        })
    }
}

impl RedisConfig {
    fn validate(&self, destination: &str) -> Result<RedisTarget, ConfigError> {
        let url = self.url.trim().to_string();
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(ConfigError::Invalid(format!(
                "state.redis.url = {:?}: expected redis://host:port or rediss://host:port (TLS)",
                secret::mask_url(&url)
            )));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "state.redis.timeout must be greater than zero".into(),
            ));
        }
        let password = secret::resolve(
            "state.redis.password",
            self.password.as_ref(),
            self.password_file.as_deref(),
        )?;
        Ok(RedisTarget {
            url,
            password,
            key_prefix: format!("{}{destination}:", self.key_prefix),
            timeout: self.timeout,
        })
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
            c.for_destination("opik", dir, true).unwrap(),
            TraceState::Disk(PathBuf::from("/s/opik/opik.redb"))
        );
        assert_eq!(
            c.for_destination("opik", dir, false).unwrap(),
            TraceState::Memory
        );
        let memory = StateConfig {
            backend: StateBackend::Memory,
            ..Default::default()
        };
        assert_eq!(
            memory.for_destination("opik", dir, true).unwrap(),
            TraceState::Memory
        );
    }

    #[test]
    fn redis_keys_are_per_destination_and_urls_are_checked() {
        let mut c = StateConfig {
            backend: StateBackend::Redis,
            ..Default::default()
        };
        let Ok(TraceState::Redis(r)) = c.for_destination("opik", Path::new("/s"), true) else {
            panic!("redis")
        };
        assert_eq!(r.key_prefix, "tracebridge:opik:");
        c.redis.url = "http://x".into();
        let e = c
            .for_destination("opik", Path::new("/s"), true)
            .unwrap_err();
        assert!(e.to_string().contains("state.redis.url"), "{e}");
    }
}

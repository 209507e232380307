//! Configuration: figment layers, the user-facing schema, and validation into
//! runtime settings.
//!
//! Precedence, lowest first:
//! 1. built-in defaults ([`Config::default`] and serde field defaults);
//! 2. the TOML file: `--config PATH`, else `TRACEBRIDGE_CONFIG`, else
//!    `./config.toml` if present, else the `config.toml` embedded in the binary;
//! 3. `TRACEBRIDGE_*` environment variables, `__` separating nested keys
//!    (`TRACEBRIDGE_DESTINATIONS__CONSOLE__ENABLED=false`).

mod schema;
pub mod secret;
mod settings;
mod show;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Data, Env, Format, Serialized, Toml};

pub use schema::*;
pub use settings::{
    CorsSettings, EnvLookup, ExportSettings, ReceiverLimits, ReceiverSettings, ReceiverTls,
    Settings, validate_with_env,
};
pub use show::render_effective;

/// The configuration shipped at the top of the repository, used when no file is found.
pub const EMBEDDED_CONFIG: &str = include_str!("../../config.toml");

/// Environment variable prefix of every setting.
pub const ENV_PREFIX: &str = "TRACEBRIDGE_";

/// Environment variable naming the config file (read by the CLI).
pub const CONFIG_PATH_ENV: &str = "TRACEBRIDGE_CONFIG";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value could not be read or does not fit the schema.
    #[error("{0}")]
    Load(String),
    /// The values parse but do not make a working configuration.
    #[error("{0}")]
    Invalid(String),
}

/// Where the TOML layer came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    Embedded,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Embedded => f.write_str("the built-in config.toml"),
        }
    }
}

/// A loaded configuration and the layers it came from (for `config show`).
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub source: ConfigSource,
    figment: Figment,
}

impl Loaded {
    /// Validates the configuration into runtime settings, filling Opik and
    /// Arize settings from their SDKs' environment variables.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        settings::validate(&self.config)
    }

    /// As [`Loaded::settings`], with an injected environment.
    pub fn settings_with_env(&self, env: EnvLookup<'_>) -> Result<Settings, ConfigError> {
        settings::validate_with_env(&self.config, env)
    }
}

/// Loads the configuration. `explicit` is `--config` (or `TRACEBRIDGE_CONFIG`).
pub fn load(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
    let (toml, source) = toml_layer(explicit)?;
    let figment = Figment::from(Serialized::defaults(Config::default()))
        .merge(toml)
        .merge(env_layer());
    let config = figment
        .extract::<Config>()
        .map_err(describe_figment_error)?;
    Ok(Loaded {
        config,
        source,
        figment,
    })
}

fn toml_layer(explicit: Option<&Path>) -> Result<(Data<Toml>, ConfigSource), ConfigError> {
    let path = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from("config.toml")).filter(|p| p.is_file()),
    };
    match path {
        Some(p) => {
            if !p.is_file() {
                return Err(ConfigError::Load(format!(
                    "config file {} does not exist or is not a file",
                    p.display()
                )));
            }
            Ok((Toml::file_exact(&p), ConfigSource::File(p)))
        }
        None => Ok((Toml::string(EMBEDDED_CONFIG), ConfigSource::Embedded)),
    }
}

fn env_layer() -> Env {
    Env::prefixed(ENV_PREFIX).split("__").ignore(&["config"])
}

/// Turns figment's errors into one line naming the key and where its value came from.
pub(crate) fn describe_figment_error(err: figment::Error) -> ConfigError {
    let parts: Vec<String> = err.into_iter().map(|e| describe_one(&e)).collect();
    ConfigError::Load(parts.join("; "))
}

fn describe_one(e: &figment::Error) -> String {
    use figment::error::Kind;
    let path = e.path.join(".");
    let origin = e
        .metadata
        .as_ref()
        .map(|m| match &m.source {
            Some(src) => format!(" (from {} {src})", m.name),
            None => format!(" (from {})", m.name),
        })
        .unwrap_or_default();
    match &e.kind {
        Kind::UnknownField(field, expected) => {
            let key = if path.is_empty() {
                field.clone()
            } else if e.path.last() == Some(field) {
                path
            } else {
                format!("{path}.{field}")
            };
            let known = expected.join(", ");
            format!("unknown key `{key}`{origin}; known keys here: {known}")
        }
        Kind::MissingField(field) => {
            let key = if path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
            format!("missing key `{key}`{origin}")
        }
        Kind::Message(msg) if path.is_empty() => format!("{msg}{origin}"),
        kind if path.is_empty() => format!("{kind}{origin}"),
        kind => format!("`{path}`: {kind}{origin}"),
    }
}

#[cfg(test)]
mod tests;

//! Configuration: figment layers, the user-facing schema, and validation into
//! runtime settings.
//!
//! Precedence, lowest first:
//! 1. built-in defaults ([`Config::default`] and serde field defaults);
//! 2. the TOML file: `--config PATH`, else `TRACEBRIDGE_CONFIG`, else
//!    `./config.toml` if present, else the `config.toml` embedded in the binary;
//!    `${env:VAR}` / `${VAR}` in its string values are expanded ([`expand`]);
//! 3. `TRACEBRIDGE_*` environment variables, `__` separating nested keys
//!    (`TRACEBRIDGE_DESTINATIONS__CONSOLE__ENABLED=false`).

mod expand;
mod schema;
pub mod secret;
mod service_links;
mod settings;
mod show;
mod tenants;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Data, Env, Format, Serialized, Toml};

pub use schema::*;
pub use settings::{
    BearerToken, CorsSettings, EnvLookup, ExportSettings, ReceiverLimits, ReceiverSettings,
    ReceiverTls, Settings, valid_tenant_name, validate_with_env,
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
    /// `TRACEBRIDGE_*` variables ignored as Kubernetes service links (logged at debug once logging is up).
    pub ignored_env: Vec<String>,
    figment: Figment,
}

impl Loaded {
    /// Validates the configuration into runtime settings, filling Opik and
    /// Arize settings from their SDKs' environment variables.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let mut s = settings::validate(&self.config)?;
        for d in &mut s.destinations {
            d.sources = show::destination_sources(self, d);
        }
        Ok(s)
    }

    /// Where the value of `key` (dotted) came from: `file …`, `env …` or `default`.
    pub fn source_of(&self, key: &str) -> String {
        show::source_of(self, key)
    }

    /// A validation error with the source of each setting it names
    /// appended, so the message says where to fix it.
    pub fn with_source(&self, err: &ConfigError) -> String {
        let msg = err.to_string();
        let mut named: Vec<&str> = Vec::new();
        for word in msg
            .split(|c: char| c.is_whitespace() || matches!(c, '`' | ',' | ';' | ':' | '(' | ')'))
            .map(|w| w.trim_end_matches('.'))
        {
            if word.contains('.')
                && !named.contains(&word)
                && self.figment.find_metadata(word).is_some()
            {
                named.push(word);
            }
        }
        if named.is_empty() {
            return msg;
        }
        let sources: Vec<String> = named
            .iter()
            .map(|key| match self.source_of(key) {
                s if s == "default" => format!("{key}: the default"),
                s => format!("{key}: {s}"),
            })
            .collect();
        format!("{msg} [{}]", sources.join("; "))
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
    check_destination_names(&figment)?;
    let config = figment
        .extract::<Config>()
        .map_err(describe_figment_error)?;
    Ok(Loaded {
        config,
        source,
        ignored_env: service_links::present(),
        figment,
    })
}

fn toml_layer(
    explicit: Option<&Path>,
) -> Result<(expand::Expanded<Data<Toml>>, ConfigSource), ConfigError> {
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
            Ok((
                expand::Expanded {
                    inner: Toml::file_exact(&p),
                },
                ConfigSource::File(p),
            ))
        }
        None => Ok((
            expand::Expanded {
                inner: Toml::string(EMBEDDED_CONFIG),
            },
            ConfigSource::Embedded,
        )),
    }
}

fn env_layer() -> Env {
    Env::prefixed(ENV_PREFIX)
        .split("__")
        .ignore(&["config"])
        .filter(|key| !service_links::is_service_link(key.as_str()))
}

/// Turns figment's errors into one line naming the key and where its value came from.
pub(crate) fn describe_figment_error(err: figment::Error) -> ConfigError {
    let parts: Vec<String> = err.into_iter().map(|e| describe_one(&e)).collect();
    ConfigError::Load(parts.join("; "))
}

fn describe_one(e: &figment::Error) -> String {
    use figment::error::Kind;
    let path = e.path.join(".");
    let key = match &e.kind {
        Kind::UnknownField(field, _) if path.is_empty() => field.clone(),
        Kind::UnknownField(field, _) if e.path.last() != Some(field) => format!("{path}.{field}"),
        Kind::MissingField(field) if path.is_empty() => field.to_string(),
        Kind::MissingField(field) => format!("{path}.{field}"),
        _ => path.clone(),
    };
    let origin = origin_of(e, &key);
    match &e.kind {
        Kind::UnknownField(_, expected) => {
            let known = expected.join(", ");
            format!("unknown key `{key}`{origin}; known keys here: {known}")
        }
        Kind::MissingField(_) => format!("missing key `{key}`{origin}"),
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected)
            if !key.is_empty() =>
        {
            format!(
                "`{key}` is {actual}{origin}; expected {}",
                plain_expected(expected)
            )
        }
        Kind::UnknownVariant(actual, expected) if !key.is_empty() => format!(
            "`{key}` = {actual:?}{origin}; expected one of: {}",
            expected.join(", ")
        ),
        Kind::Message(msg) if key.is_empty() => format!("{msg}{origin}"),
        kind if key.is_empty() => format!("{kind}{origin}"),
        kind => format!("`{key}`: {kind}{origin}"),
    }
}

/// " (from environment variable TRACEBRIDGE_…)" naming the variable, or the file.
fn origin_of(e: &figment::Error, key: &str) -> String {
    let Some(meta) = e.metadata.as_ref() else {
        return String::new();
    };
    if meta.name.contains("environment") && !key.is_empty() {
        return format!(
            " (from environment variable {ENV_PREFIX}{})",
            key.replace('.', "__").to_ascii_uppercase()
        );
    }
    match &meta.source {
        Some(src) => format!(" (from {} {src})", meta.name),
        None => format!(" (from {})", meta.name),
    }
}

/// serde's type names in words a user reads.
fn plain_expected(expected: &str) -> String {
    match expected {
        "usize" | "u64" | "u32" | "u16" | "u8" => "a whole number, 0 or more".into(),
        "isize" | "i64" | "i32" | "i16" | "i8" => "a whole number".into(),
        "f64" | "f32" => "a number".into(),
        "a boolean" | "bool" => "true or false".into(),
        "a duration" => "a duration such as \"250ms\", \"5s\" or \"5m\"".into(),
        other => other.to_string(),
    }
}

/// Environment variables are read in lower case, so an upper-case
/// destination name could not be set from them: `TRACEBRIDGE_DESTINATIONS__OPIK__*`
/// would silently make a second destination `opik`.
fn check_destination_names(figment: &Figment) -> Result<(), ConfigError> {
    let Ok(figment::value::Value::Dict(_, names)) = figment.find_value("destinations") else {
        return Ok(());
    };
    match names
        .keys()
        .find(|n| n.chars().any(|c| c.is_ascii_uppercase()))
    {
        Some(name) => Err(ConfigError::Load(format!(
            "destination name {name:?}: use lower case, e.g. [destinations.{}]; environment variables (TRACEBRIDGE_DESTINATIONS__{}__…) can only name lower-case destinations",
            name.to_ascii_lowercase(),
            name.to_ascii_uppercase()
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;

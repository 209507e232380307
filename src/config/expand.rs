//! `${env:VAR}` and `${VAR}` in the config file, as the OpenTelemetry
//! Collector expands them: in string values only (never in keys), after the
//! TOML is parsed, so a value cannot break the file's syntax.
//!
//! - `${env:NAME}` / `${NAME}`: the variable's value; a variable that is not
//!   set is an error naming it and the setting (an empty one expands to "");
//! - `${env:NAME:-fallback}`: `fallback` when `NAME` is unset or empty;
//! - `$$`: a literal `$` (so `$${NAME}` is the text `${NAME}`);
//! - a `$` followed by anything else is kept as is.
//!
//! Values stay strings: numbers and booleans from the environment are set
//! with `TRACEBRIDGE_*` variables instead.

use figment::value::{Dict, Value};
use figment::{Metadata, Profile, Provider};

use super::EnvLookup;

/// Why a `${…}` reference could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error(
        "`{key}` refers to ${{env:{var}}}, but the environment variable {var} is not set; set it, or give a fallback: ${{env:{var}:-value}}"
    )]
    Unset { key: String, var: String },
    #[error(
        "`{key}`: `${{{reference}}}` is not a reference tracebridge expands; use ${{env:NAME}} or ${{NAME}} (NAME of letters, digits and _), or $$ for a literal $"
    )]
    Malformed { key: String, reference: String },
}

/// Expands every `${…}` in `text`; `key` names the setting in errors.
pub fn expand_str(key: &str, text: &str, env: EnvLookup<'_>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                return Err(malformed(key, body));
            };
            out.push_str(&resolve(key, &body[..end], env)?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn malformed(key: &str, reference: &str) -> ExpandError {
    ExpandError::Malformed {
        key: key.to_string(),
        reference: reference.to_string(),
    }
}

/// One reference, without `${` and `}`.
fn resolve(key: &str, reference: &str, env: EnvLookup<'_>) -> Result<String, ExpandError> {
    let spec = reference.strip_prefix("env:").unwrap_or(reference);
    let (name, fallback) = match spec.split_once(":-") {
        Some((name, fallback)) => (name, Some(fallback)),
        None => (spec, None),
    };
    let valid_name = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(malformed(key, reference));
    }
    match (env(name), fallback) {
        (Some(v), Some(f)) if v.is_empty() => Ok(f.to_string()),
        (Some(v), _) => Ok(v),
        (None, Some(f)) => Ok(f.to_string()),
        (None, None) => Err(ExpandError::Unset {
            key: key.to_string(),
            var: name.to_string(),
        }),
    }
}

/// Expands every string inside `value`; `key` is its dotted path.
pub fn expand_value(key: &str, value: &mut Value, env: EnvLookup<'_>) -> Result<(), ExpandError> {
    match value {
        Value::String(_, s) if s.contains('$') => *s = expand_str(key, s, env)?,
        Value::Dict(_, dict) => expand_dict(key, dict, env)?,
        Value::Array(_, items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_value(&format!("{key}[{i}]"), item, env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand_dict(prefix: &str, dict: &mut Dict, env: EnvLookup<'_>) -> Result<(), ExpandError> {
    for (k, v) in dict.iter_mut() {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        expand_value(&key, v, env)?;
    }
    Ok(())
}

/// A provider (the TOML file) whose string values are expanded.
pub struct Expanded<P> {
    pub inner: P,
}

impl<P: Provider> Provider for Expanded<P> {
    fn metadata(&self) -> Metadata {
        self.inner.metadata()
    }

    fn data(&self) -> Result<figment::value::Map<Profile, Dict>, figment::Error> {
        let mut data = self.inner.data()?;
        let env = |name: &str| std::env::var(name).ok();
        let origin = match self.inner.metadata().source {
            Some(source) => format!(" (in {source})"),
            None => String::new(),
        };
        for dict in data.values_mut() {
            expand_dict("", dict, &env)
                .map_err(|e| figment::Error::from(format!("{e}{origin}")))?;
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk-1".into()),
            "EMPTY" => Some(String::new()),
            "HOST" => Some("opik.internal".into()),
            _ => None,
        }
    }

    #[test]
    fn collector_syntax_expands() {
        let x = |s: &str| expand_str("k", s, &env);
        assert_eq!(x("${env:KEY}").unwrap(), "sk-1");
        assert_eq!(x("${KEY}").unwrap(), "sk-1");
        assert_eq!(
            x("https://${env:HOST}/opik/api").unwrap(),
            "https://opik.internal/opik/api"
        );
        assert_eq!(x("${env:NOPE:-fallback}").unwrap(), "fallback");
        assert_eq!(x("${env:EMPTY:-fallback}").unwrap(), "fallback");
        assert_eq!(x("${EMPTY}").unwrap(), "");
        assert_eq!(x("pa$$word $${KEY} $x").unwrap(), "pa$word ${KEY} $x");
        assert_eq!(x("no reference").unwrap(), "no reference");
    }

    #[test]
    fn an_unset_variable_is_an_error_naming_it_and_the_setting() {
        let err = expand_str("destinations.opik.api_key", "${env:OPIK_KEY}", &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`destinations.opik.api_key`"), "{err}");
        assert!(err.contains("OPIK_KEY is not set"), "{err}");
        for bad in ["${file:/x}", "${env:}", "${1X}", "${KEY"] {
            let err = expand_str("k", bad, &env).unwrap_err();
            assert!(matches!(err, ExpandError::Malformed { .. }), "{bad}: {err}");
        }
    }
}

//! Secrets: values that must never reach a log line or `config show`.
//!
//! Every secret setting `<name>` has a twin `<name>_file` that names a file
//! holding the value (a mounted Kubernetes secret, a systemd credential).
//! [`resolve`] picks one of the two; giving both is an error.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ConfigError;

/// A secret string. `Debug`, `Display` and `Serialize` all print a mask.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// What a secret looks like wherever it is shown.
pub const MASK: &str = "********";

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The real value, for building a request header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(MASK)
    }
}

impl<'de> Deserialize<'de> for Secret {
    /// Accepts a string, or a number: an environment variable such as
    /// `TRACEBRIDGE_…__API_KEY=12345` is parsed as an integer before it
    /// reaches us, and a key made of digits is still a key.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl serde::de::Visitor<'_> for SecretVisitor {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::new(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }
        }
        deserializer.deserialize_any(SecretVisitor)
    }
}

/// Resolves a secret given inline or as a `_file` twin.
///
/// `setting` is the dotted path of the inline key (e.g.
/// `destinations.opik.api_key`), used in error messages. A file's trailing
/// newline is removed, as `echo key > file` and most secret stores add one.
pub fn resolve(
    setting: &str,
    inline: Option<&Secret>,
    file: Option<&Path>,
) -> Result<Option<Secret>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(ConfigError::Invalid(format!(
            "{setting} and {setting}_file are both set; give only one"
        ))),
        (Some(secret), None) => Ok(Some(secret.clone())),
        (None, Some(path)) => {
            let raw = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::Invalid(format!(
                    "{setting}_file: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            let value = raw.trim_end_matches(['\n', '\r']);
            if value.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "{setting}_file: {} is empty",
                    path.display()
                )));
            }
            Ok(Some(Secret::new(value)))
        }
        (None, None) => Ok(None),
    }
}

/// A URL as it may be shown (logs, `/status`, `config show`, errors): the
/// password of `user:password@` (or a lone `token@`) and every query value
/// masked. Scheme, host, port, path and query names stay.
pub fn mask_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{MASK}@{host}"),
            None => format!("{MASK}@{host}"),
        },
        None => authority.to_string(),
    };
    let (before_fragment, fragment) = match tail.split_once('#') {
        Some((b, f)) => (b, format!("#{f}")),
        None => (tail, String::new()),
    };
    let tail = match before_fragment.split_once('?') {
        Some((path, query)) => {
            let masked: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) => format!("{k}={MASK}"),
                    None => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", masked.join("&"))
        }
        None => before_fragment.to_string(),
    };
    format!("{scheme}{authority}{tail}{fragment}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_masked() {
        assert_eq!(
            mask_url("https://user:s3cret@host:8443/opik/api?token=abc&x=1#frag"),
            format!("https://user:{MASK}@host:8443/opik/api?token={MASK}&x={MASK}#frag")
        );
        assert_eq!(
            mask_url("https://tok@host/v1"),
            format!("https://{MASK}@host/v1")
        );
        assert_eq!(mask_url("http://h:4317"), "http://h:4317");
        assert_eq!(mask_url("http://h/p?flag"), "http://h/p?flag");
    }

    #[test]
    fn secret_never_prints_its_value() {
        let s = Secret::new("sk-live-123");
        assert_eq!(format!("{s:?} {s}"), format!("{MASK} {MASK}"));
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{MASK}\""));
        assert_eq!(s.expose(), "sk-live-123");
    }

    #[test]
    fn file_value_is_read_and_trailing_newline_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "from-file\n").unwrap();
        let got = resolve("d.api_key", None, Some(&path)).unwrap().unwrap();
        assert_eq!(got.expose(), "from-file");
    }

    #[test]
    fn both_inline_and_file_is_an_error_naming_the_setting() {
        let err = resolve(
            "d.api_key",
            Some(&Secret::new("x")),
            Some(Path::new("/nope")),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("d.api_key and d.api_key_file"), "{err}");
    }

    #[test]
    fn missing_or_empty_file_is_an_error() {
        let err = resolve("d.api_key", None, Some(Path::new("/definitely/missing")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read /definitely/missing"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty");
        std::fs::write(&path, "\n").unwrap();
        let err = resolve("d.api_key", None, Some(&path))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is empty"), "{err}");
    }
}

//! `tracebridge config show`: every effective value, one per line, with the
//! layer it came from. Secrets print as a mask (see [`super::secret::Secret`]).

use std::fmt::Write as _;

use serde_json::Value;

use super::{ENV_PREFIX, Loaded};

/// Renders the effective configuration as `key = value  # source` lines.
pub fn render_effective(loaded: &Loaded) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# effective configuration; file layer: {}",
        loaded.source
    );
    let value = serde_json::to_value(&loaded.config).unwrap_or(Value::Null);
    let mut leaves = Vec::new();
    flatten("", &value, &mut leaves);
    let width = leaves
        .iter()
        .map(|(k, v)| k.len() + v.len() + 3)
        .max()
        .unwrap_or(0);
    for (key, rendered) in leaves {
        let source = source_of(loaded, &key);
        let line = format!("{key} = {rendered}");
        let _ = writeln!(out, "{line:<width$}  # {source}");
    }
    out
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Null => {}
        leaf => out.push((prefix.to_string(), leaf.to_string())),
    }
}

fn source_of(loaded: &Loaded, key: &str) -> String {
    match loaded.figment.find_metadata(key) {
        Some(meta) if meta.name.contains("environment") => {
            format!("env {ENV_PREFIX}{}", key.replace('.', "__").to_uppercase())
        }
        Some(meta) if meta.name.to_ascii_lowercase().contains("toml") => {
            format!("file {}", loaded.source)
        }
        _ => "default".to_string(),
    }
}

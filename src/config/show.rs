//! `tracebridge config show`: every effective value, one per line, with the
//! layer it came from. Secrets print as a mask (see [`super::secret::Secret`]).

use std::fmt::Write as _;

use serde_json::Value;

use super::secret::mask_url;
use super::{ENV_PREFIX, Loaded};

/// Lines longer than this are not padded to align their source comment.
const MAX_ALIGNED: usize = 80;

/// URL settings may carry credentials (`user:pass@`, `?token=`).
fn mask_if_url(key: &str, rendered: String) -> String {
    let last = key.rsplit('.').next().unwrap_or(key);
    if !matches!(last, "url" | "endpoint" | "traces_endpoint") {
        return rendered;
    }
    match serde_json::from_str::<String>(&rendered) {
        Ok(url) => Value::String(mask_url(&url)).to_string(),
        Err(_) => rendered,
    }
}

/// Renders the effective configuration as `key = value  # source` lines:
/// every setting written or defaulted, then, per destination, what its table
/// leaves unset (filled from `OPIK_*` / `ARIZE_*` or the kind's defaults)
/// and the export URL it resolves to.
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
    let mut lines: Vec<(String, String, String)> = leaves
        .into_iter()
        .map(|(key, rendered)| {
            let source = source_of(loaded, &key);
            let rendered = mask_if_url(&key, rendered);
            (key, rendered, source)
        })
        .collect();
    insert_destination_effective(loaded, &mut lines);
    let width = lines
        .iter()
        .map(|(k, v, _)| k.len() + v.len() + 3)
        .filter(|w| *w <= MAX_ALIGNED)
        .max()
        .unwrap_or(0);
    for (key, rendered, source) in lines {
        let line = format!("{key} = {rendered}");
        let _ = writeln!(out, "{line:<width$}  # {source}");
    }
    out
}

/// After each destination's lines, the values only validation knows.
fn insert_destination_effective(loaded: &Loaded, lines: &mut Vec<(String, String, String)>) {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    for (name, table) in &loaded.config.destinations {
        let Ok(settings) = crate::destination::configure(name, table, &env) else {
            continue; // the error is reported after the listing
        };
        let prefix = format!("destinations.{name}.");
        let written = |key: &str| {
            let top = key.split('.').next().unwrap_or(key);
            table.section.contains_key(top) || table.section.contains_key(&format!("{top}_file"))
        };
        let extra = crate::destination::effective(&settings, &written, &env);
        let at = lines
            .iter()
            .rposition(|(k, _, _)| k.starts_with(&prefix))
            .map_or(lines.len(), |i| i + 1);
        let rows = extra
            .into_iter()
            .map(|e| (format!("{prefix}{}", e.key), e.value, e.source));
        lines.splice(at..at, rows);
    }
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

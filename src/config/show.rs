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
    insert_state_dir(loaded, &mut lines);
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

/// `state_dir` when unset: the directory the daemon will use, and why.
fn insert_state_dir(loaded: &Loaded, lines: &mut Vec<(String, String, String)>) {
    if loaded.config.state_dir.is_some() {
        return;
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let dir = crate::spool::default_state_dir(&env);
    let source = if env("STATE_DIRECTORY").is_some() {
        "default: env STATE_DIRECTORY (systemd's StateDirectory=)".to_string()
    } else {
        let absolute = std::env::current_dir().map_or(dir.clone(), |cwd| cwd.join(&dir));
        format!("default: in the working directory, {}", absolute.display())
    };
    let at = lines
        .iter()
        .position(|(k, _, _)| k.as_str() > "state_dir" && !k.contains('.'))
        .or_else(|| lines.iter().position(|(k, _, _)| k.starts_with("spool.")))
        .unwrap_or(lines.len());
    lines.insert(
        at,
        (
            "state_dir".to_string(),
            Value::String(dir.display().to_string()).to_string(),
            source,
        ),
    );
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

/// Where each of a validated destination's settings came from, for its
/// error messages: keys written in its table (file or `TRACEBRIDGE_*`), then
/// what validation filled (SDK variables, defaults).
pub(super) fn destination_sources(
    loaded: &Loaded,
    d: &crate::destination::DestinationSettings,
) -> crate::destination::sources::Sources {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut out = std::collections::BTreeMap::new();
    let Some(table) = loaded.config.destinations.get(&d.name) else {
        return crate::destination::sources::Sources(out);
    };
    let written = |key: &str| {
        let top = key.split('.').next().unwrap_or(key);
        table.section.contains_key(top) || table.section.contains_key(&format!("{top}_file"))
    };
    for e in crate::destination::effective(d, &written, &env) {
        out.insert(e.key, e.source);
    }
    for key in table.section.keys() {
        let source = source_of(loaded, &format!("destinations.{}.{key}", d.name));
        match key.strip_suffix("_file") {
            // `api_key_file = …`: the key is read from that file.
            Some(base) => out.insert(
                base.to_string(),
                format!("read from the file named by {key}, {source}"),
            ),
            None => out.insert(key.clone(), source),
        };
    }
    crate::destination::sources::Sources(out)
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

pub(super) fn source_of(loaded: &Loaded, key: &str) -> String {
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

//! `config show` for what a destination's table leaves unset: the value the
//! daemon will use (from the Opik/Arize SDK variables or the kind's
//! defaults) and where it came from, plus the resolved export URL. Secrets
//! are masked.

use std::time::Duration;

use super::{DestinationSettings, DestinationTarget};
use crate::config::EnvLookup;
use crate::config::secret::{MASK, Secret, mask_url};
use crate::destination::opik::OpikTarget;
use crate::destination::otlp::OtlpTarget;
use crate::destination::otlp::config::OtlpProtocol;

/// One effective value: key inside the table, value as JSON text, source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub key: String,
    pub value: String,
    pub source: String,
}

/// The values `written` (keys present in the table, from the file or a
/// `TRACEBRIDGE_*` variable) does not already show, and the export URL.
pub fn effective(
    d: &DestinationSettings,
    written: &dyn Fn(&str) -> bool,
    env: EnvLookup<'_>,
) -> Vec<Effective> {
    let all = match &d.target {
        DestinationTarget::Opik(t) => opik(t, env),
        DestinationTarget::Otlp(t) => otlp(t, written, env),
        DestinationTarget::Console | DestinationTarget::File(_) => Vec::new(),
    };
    all.into_iter()
        .filter(|e| e.key.starts_with("export_url") || !written(&e.key))
        .collect()
}

fn entry(key: &str, value: serde_json::Value, source: impl Into<String>) -> Effective {
    Effective {
        key: key.to_string(),
        value: value.to_string(),
        source: source.into(),
    }
}

/// "env VAR" when the SDK variable is set, else `fallback`.
fn sdk_or(env: EnvLookup<'_>, var: &str, fallback: &str) -> String {
    match env(var) {
        Some(_) => format!("env {var}"),
        None => fallback.to_string(),
    }
}

fn secret(s: Option<&Secret>) -> serde_json::Value {
    match s {
        Some(_) => MASK.into(),
        None => serde_json::Value::Null,
    }
}

fn duration(d: Duration) -> serde_json::Value {
    humantime::format_duration(d).to_string().into()
}

fn opik(t: &OpikTarget, env: EnvLookup<'_>) -> Vec<Effective> {
    let default = "default (opik)";
    let url = mask_url(&t.url);
    vec![
        entry(
            "url",
            url.clone().into(),
            sdk_or(env, "OPIK_URL_OVERRIDE", default),
        ),
        entry(
            "api_key",
            secret(t.api_key.as_ref()),
            sdk_or(
                env,
                "OPIK_API_KEY",
                "default (opik): no key, as local Opik needs none",
            ),
        ),
        entry(
            "workspace",
            t.workspace.clone().into(),
            sdk_or(env, "OPIK_WORKSPACE", default),
        ),
        entry(
            "project_name",
            t.project_name.clone().into(),
            sdk_or(env, "OPIK_PROJECT_NAME", default),
        ),
        entry("tags", t.tags.clone().into(), default),
        entry("trace_ttl", duration(t.trace_ttl), default),
        entry(
            "stale_trace_timeout",
            duration(t.stale_trace_timeout),
            default,
        ),
        entry("max_open_traces", t.max_open_traces.into(), default),
        entry("log_join_window", duration(t.logs.window), default),
        entry("log_max_held_records", t.logs.max_records.into(), default),
        entry("log_max_held_bytes", t.logs.max_bytes.into(), default),
        entry(
            "resource_attributes_in",
            serde_json::json!(t.resource_attributes_in),
            default,
        ),
        entry(
            "export_url",
            serde_json::json!([
                format!("{url}/v1/private/traces/batch"),
                format!("{url}/v1/private/spans/batch")
            ]),
            "derived from url",
        ),
    ]
}

fn otlp(t: &OtlpTarget, written: &dyn Fn(&str) -> bool, env: EnvLookup<'_>) -> Vec<Effective> {
    let arize = t.flavour == "arize";
    let default = if arize {
        "default (arize)"
    } else {
        "default (otlp)"
    };
    let mut out = vec![
        entry("protocol", t.protocol.as_str().into(), default),
        entry(
            "compression",
            if t.gzip { "gzip" } else { "none" }.into(),
            default,
        ),
        entry("semconv", t.semconv.as_str().into(), default),
    ];
    if !arize {
        let names: Vec<&str> = [
            (t.signals.traces, "traces"),
            (t.signals.logs, "logs"),
            (t.signals.metrics, "metrics"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        out.push(entry("signals", names.into(), default));
    }
    if t.semconv == crate::destination::otlp::config::SemconvMode::Openinference {
        let j = &t.log_join;
        out.push(entry("log_join_window", duration(j.hold.window), default));
        out.push(entry("log_join_span_wait", duration(j.span_wait), default));
        out.push(entry(
            "log_max_held_records",
            j.hold.max_records.into(),
            default,
        ));
        out.push(entry(
            "log_max_held_bytes",
            j.hold.max_bytes.into(),
            default,
        ));
    }
    if let Some(p) = &t.project_name {
        let source = if arize {
            sdk_or(env, "ARIZE_PROJECT_NAME", default)
        } else {
            default.to_string()
        };
        out.push(entry("project_name", p.clone().into(), source));
    }
    if arize {
        let header = |name: &str| t.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        out.push(entry("region", "us".into(), default));
        out.push(entry(
            "space_id",
            secret(header("arize-space-id")),
            sdk_or(env, "ARIZE_SPACE_ID", default),
        ));
        out.push(entry(
            "api_key",
            secret(header("authorization")),
            sdk_or(env, "ARIZE_API_KEY", default),
        ));
    }
    let derived = if written("traces_endpoint") {
        "traces_endpoint, as is"
    } else if !written("endpoint") && arize {
        "derived from region and protocol"
    } else if t.protocol == OtlpProtocol::Grpc {
        "derived from endpoint"
    } else {
        "derived from endpoint + /v1/traces"
    };
    out.push(entry("export_url", mask_url(&t.url).into(), derived));
    if t.protocol != OtlpProtocol::Grpc {
        for (key, url) in [("logs", &t.logs_url), ("metrics", &t.metrics_url)] {
            if let Some(url) = url {
                let derived = if written(&format!("{key}_endpoint")) {
                    format!("{key}_endpoint, as is")
                } else {
                    format!("derived from endpoint + /v1/{key}")
                };
                out.push(entry(
                    &format!("{key}_export_url"),
                    mask_url(url).into(),
                    derived,
                ));
            }
        }
    }
    out
}

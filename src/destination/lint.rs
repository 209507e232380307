//! Settings that are valid but probably not what was meant: warnings that
//! `config check` prints and the daemon logs at startup, each naming the
//! setting or variable and the likely fix.

use super::{DestinationSettings, DestinationTarget};
use crate::config::EnvLookup;
use crate::destination::otlp::config::{OtlpProtocol, OtlpTarget};

/// The Opik SDK's variables an `opik` destination reads.
pub const OPIK_VARIABLES: &[&str] = &[
    "OPIK_URL_OVERRIDE",
    "OPIK_API_KEY",
    "OPIK_WORKSPACE",
    "OPIK_PROJECT_NAME",
];

/// The Arize SDK's variables an `arize` destination reads.
pub const ARIZE_VARIABLES: &[&str] = &["ARIZE_SPACE_ID", "ARIZE_API_KEY", "ARIZE_PROJECT_NAME"];

/// Every warning about these (enabled, validated) destinations.
pub fn warnings(destinations: &[DestinationSettings], env: EnvLookup<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for d in destinations {
        match &d.target {
            DestinationTarget::Otlp(t) => out.extend(protocol_port_mismatch(&d.name, t)),
            DestinationTarget::Opik(t) => out.extend(opik_url_path(&d.name, &t.url)),
            _ => {}
        }
    }
    let has = |kind: &str| destinations.iter().any(|d| d.target.kind() == kind);
    out.extend(unused_sdk_variables(
        "opik",
        OPIK_VARIABLES,
        has("opik"),
        env,
    ));
    out.extend(unused_sdk_variables(
        "arize",
        ARIZE_VARIABLES,
        has("arize"),
        env,
    ));
    out
}

/// gRPC sent to the OTLP/HTTP port (4318) or HTTP to the gRPC port (4317)
/// fails at the first export with an unhelpful transport error.
fn protocol_port_mismatch(name: &str, t: &OtlpTarget) -> Option<String> {
    let port = t.url.parse::<http::Uri>().ok()?.port_u16()?;
    let (grpc, fix) = match (t.protocol, port) {
        (OtlpProtocol::Grpc, 4318) => (true, "protocol = \"http/protobuf\", or port 4317"),
        (OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson, 4317) => {
            (false, "protocol = \"grpc\", or port 4318")
        }
        _ => return None,
    };
    let (speaks, usual) = if grpc {
        ("grpc", "OTLP/HTTP")
    } else {
        (t.protocol.as_str(), "OTLP/gRPC")
    };
    Some(format!(
        "destinations.{name}: sends {speaks} to {} whose port {port} is the usual {usual} port; if the export fails, use {fix}",
        t.url
    ))
}

/// A URL that names an Opik page or an API path rather than the API base.
fn opik_url_path(name: &str, url: &str) -> Option<String> {
    let path = url
        .parse::<http::Uri>()
        .ok()?
        .path()
        .trim_end_matches('/')
        .to_string();
    let hint = if path.ends_with("/opik") {
        format!("{url}/api")
    } else if let Some(i) = path.find("/v1/") {
        url.replacen(&path, &path[..i], 1)
    } else {
        return None;
    };
    Some(format!(
        "destinations.{name}.url = {url:?} does not look like the Opik REST API base; did you mean {hint:?}? (local Opik: http://localhost:5173/api, Comet Cloud: https://www.comet.com/opik/api)"
    ))
}

fn unused_sdk_variables(
    kind: &str,
    variables: &[&str],
    has_kind: bool,
    env: EnvLookup<'_>,
) -> Option<String> {
    if has_kind {
        return None;
    }
    let set: Vec<&str> = variables
        .iter()
        .copied()
        .filter(|v| env(v).is_some())
        .collect();
    if set.is_empty() {
        return None;
    }
    Some(format!(
        "{} {} set but no enabled destination has type = \"{kind}\", so nothing reads {}; add a [destinations.{kind}] table with type = \"{kind}\", or unset {}",
        set.join(", "),
        if set.len() == 1 { "is" } else { "are" },
        if set.len() == 1 { "it" } else { "them" },
        if set.len() == 1 { "it" } else { "them" },
    ))
}

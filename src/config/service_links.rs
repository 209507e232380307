//! Kubernetes service links: for every Service in a namespace the kubelet
//! injects `<SERVICE>_SERVICE_HOST`, `<SERVICE>_SERVICE_PORT[_<NAME>]`,
//! `<SERVICE>_PORT` and `<SERVICE>_PORT_<n>_<PROTO>[_PROTO|_PORT|_ADDR]`
//! into every pod. A Service named `tracebridge…` therefore produces
//! `TRACEBRIDGE_*` variables that are not settings. They are recognised by
//! shape (one level, no `__`) and ignored with a debug line instead of
//! failing the start.

use super::ENV_PREFIX;

/// Whether `key` (a `TRACEBRIDGE_*` variable without its prefix, any case,
/// `__` not yet split) has the shape of a Kubernetes service-link variable.
pub fn is_service_link(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    if key.contains("__") || key.contains('.') {
        return false;
    }
    let words: Vec<&str> = key.split('_').collect();
    (0..words.len()).any(|i| is_link_suffix(&words[i..]))
}

/// The part after the Service's name.
fn is_link_suffix(words: &[&str]) -> bool {
    let port_number = |w: &str| w.parse::<u16>().is_ok();
    let proto = |w: &str| matches!(w, "tcp" | "udp" | "sctp");
    match words {
        ["service", "host"] | ["service", "port"] | ["port"] => true,
        ["service", "port", _, ..] => true,
        ["port", n, p] => port_number(n) && proto(p),
        ["port", n, p, "proto" | "port" | "addr"] => port_number(n) && proto(p),
        _ => false,
    }
}

/// The `TRACEBRIDGE_*` variables of this process that look like service links.
pub fn present() -> Vec<String> {
    let mut names: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| {
            k.get(..ENV_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
                && is_service_link(&k[ENV_PREFIX.len()..])
        })
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_service_link_shapes_are_recognised() {
        for key in [
            "GATEWAY_SERVICE_HOST",
            "GATEWAY_SERVICE_PORT",
            "GATEWAY_SERVICE_PORT_OTLP_GRPC",
            "GATEWAY_SERVICE_PORT_OTLP_HTTP",
            "GATEWAY_PORT",
            "GATEWAY_PORT_4317_TCP",
            "GATEWAY_PORT_4317_TCP_PROTO",
            "GATEWAY_PORT_4317_TCP_PORT",
            "GATEWAY_PORT_4317_TCP_ADDR",
            "GATEWAY_HEADLESS_PORT_4318_UDP",
            // A Service named exactly `tracebridge`.
            "SERVICE_HOST",
            "SERVICE_PORT",
            "PORT",
            "PORT_13133_TCP_ADDR",
        ] {
            assert!(is_service_link(key), "{key}");
        }
    }

    #[test]
    fn settings_are_not_service_links() {
        for key in [
            "RECEIVER__GRPC_LISTEN",
            "ADMIN__LISTEN",
            "SHUTDOWN_TIMEOUT",
            "DESTINATIONS__PORT__TYPE",
            "DESTINATIONS__X__ENDPOINT",
            "GATEWAY_PORT_X_TCP",
            "GATEWAY_SERVICE_NAME",
            "PORTS",
        ] {
            assert!(!is_service_link(key), "{key}");
        }
    }

    /// No top-level setting may ever look like a service link, or it could
    /// not be set from the environment.
    #[test]
    fn no_top_level_key_has_a_service_link_shape() {
        let value = serde_json::to_value(crate::config::Config::default()).unwrap();
        for key in value.as_object().unwrap().keys() {
            assert!(!is_service_link(key), "{key}");
        }
    }
}

//! Config loading tests. `figment::Jail` gives each test its own working
//! directory and environment, so precedence is tested for real.

// `figment::Jail`'s closures must return figment's (large) error type.
#![allow(clippy::result_large_err)]

use std::path::Path;
use std::time::Duration;

use figment::Jail;

use super::*;
use crate::destination::DestinationTarget;
use crate::destination::otlp::OtlpTarget;
use crate::destination::otlp::config::{OtlpProtocol, SemconvMode};

fn load_in_jail(explicit: Option<&Path>) -> Result<Loaded, String> {
    load(explicit).map_err(|e| e.to_string())
}

#[test]
fn without_a_file_the_embedded_config_is_used_and_is_valid() {
    Jail::expect_with(|_jail| {
        let loaded = load_in_jail(None)?;
        assert_eq!(loaded.source, ConfigSource::Embedded);
        let settings = loaded.settings().map_err(|e| e.to_string())?;
        assert_eq!(settings.receiver.grpc_listen.to_string(), "127.0.0.1:4317");
        assert_eq!(settings.receiver.http_listen.to_string(), "127.0.0.1:4318");
        assert_eq!(settings.admin_listen.to_string(), "127.0.0.1:13133");
        assert_eq!(settings.receiver.max_request_bytes, 20 * 1024 * 1024);
        assert_eq!(settings.receiver.grpc_max_message_bytes, 16 * 1024 * 1024);
        assert_eq!(settings.destinations.len(), 1);
        assert!(matches!(
            settings.destinations[0].target,
            DestinationTarget::Console
        ));
        Ok(())
    });
}

#[test]
fn local_config_toml_is_picked_up_from_the_working_directory() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "config.toml",
            "[receiver]\nhttp_listen = \"127.0.0.1:9999\"\n[destinations.out]\ntype = \"console\"\n",
        )?;
        let loaded = load_in_jail(None)?;
        assert_eq!(loaded.source, ConfigSource::File("config.toml".into()));
        assert_eq!(loaded.config.receiver.http_listen, "127.0.0.1:9999");
        Ok(())
    });
}

#[test]
fn precedence_is_default_then_file_then_environment() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "custom.toml",
            r#"
            shutdown_timeout = "3s"
            [receiver]
            grpc_listen = "127.0.0.1:5317"
            http_listen = "127.0.0.1:5318"
            [destinations.out]
            type = "file"
            path = "/tmp/out.jsonl"
            batch.max_items = 10
            "#,
        )?;
        jail.set_env("TRACEBRIDGE_RECEIVER__HTTP_LISTEN", "127.0.0.1:6318");
        jail.set_env(
            "TRACEBRIDGE_DESTINATIONS__OUT__BATCH__FLUSH_INTERVAL",
            "250ms",
        );
        jail.set_env("TRACEBRIDGE_CONFIG", "ignored-by-the-env-layer.toml");
        let loaded = load_in_jail(Some(Path::new("custom.toml")))?;
        let c = &loaded.config;
        // default (nothing overrides it)
        assert_eq!(c.admin.listen, "127.0.0.1:13133");
        // file
        assert_eq!(c.receiver.grpc_listen, "127.0.0.1:5317");
        assert_eq!(c.shutdown_timeout, Duration::from_secs(3));
        assert_eq!(c.destinations["out"].batch.max_items, 10);
        // environment beats file
        assert_eq!(c.receiver.http_listen, "127.0.0.1:6318");
        assert_eq!(
            c.destinations["out"].batch.flush_interval,
            Duration::from_millis(250)
        );
        let shown = render_effective(&loaded);
        assert!(
            shown.contains("admin.listen = \"127.0.0.1:13133\""),
            "{shown}"
        );
        let line = |k: &str| {
            shown
                .lines()
                .find(|l| l.starts_with(k))
                .unwrap_or("")
                .to_string()
        };
        assert!(line("admin.listen").ends_with("# default"), "{shown}");
        assert!(
            line("receiver.grpc_listen").ends_with("# file custom.toml"),
            "{shown}"
        );
        assert!(
            line("receiver.http_listen").ends_with("# env TRACEBRIDGE_RECEIVER__HTTP_LISTEN"),
            "{shown}"
        );
        Ok(())
    });
}

#[test]
fn unknown_keys_are_errors_that_name_their_path() {
    Jail::expect_with(|jail| {
        jail.create_file("a.toml", "[receiver]\ngrcp_listen = \"x\"\n")?;
        let err = load_in_jail(Some(Path::new("a.toml"))).unwrap_err();
        assert!(err.contains("unknown key `receiver.grcp_listen`"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");

        jail.create_file(
            "b.toml",
            "[destinations.c]\ntype = \"console\"\nbatch.max_itemz = 3\n",
        )?;
        let err = load_in_jail(Some(Path::new("b.toml"))).unwrap_err();
        assert!(err.contains("destinations.c.batch.max_itemz"), "{err}");

        jail.create_file("c.toml", "[destinations.c]\ntype = \"console\"\n")?;
        jail.set_env("TRACEBRIDGE_RECEIVER__NOPE", "1");
        let err = load_in_jail(Some(Path::new("c.toml"))).unwrap_err();
        assert!(err.contains("receiver.nope"), "{err}");
        assert!(err.contains("environment"), "names the layer: {err}");
        Ok(())
    });
}

#[test]
fn type_errors_name_the_key() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "a.toml",
            "[destinations.c]\ntype = \"console\"\ntimeout = \"soon\"\n",
        )?;
        let err = load_in_jail(Some(Path::new("a.toml"))).unwrap_err();
        assert!(err.contains("destinations.c.timeout"), "{err}");
        jail.create_file("b.toml", "[destinations.c]\ntype = \"kafka\"\n")?;
        let err = load_in_jail(Some(Path::new("b.toml"))).unwrap_err();
        assert!(err.contains("destinations.c.type"), "{err}");
        assert!(err.contains("kafka"), "{err}");
        Ok(())
    });
}

#[test]
fn missing_explicit_file_is_an_error() {
    Jail::expect_with(|_jail| {
        let err = load_in_jail(Some(Path::new("nope.toml"))).unwrap_err();
        assert!(err.contains("nope.toml does not exist"), "{err}");
        Ok(())
    });
}

fn settings_of(toml: &str) -> Result<Settings, String> {
    let mut out = Err(String::new());
    Jail::expect_with(|jail| {
        jail.create_file("t.toml", toml)?;
        out = load_in_jail(Some(Path::new("t.toml")))
            .and_then(|l| l.settings().map_err(|e| e.to_string()));
        Ok(())
    });
    out
}

#[test]
fn validation_errors_name_the_setting() {
    let cases = [
        (
            "[destinations.f]\ntype = \"file\"\n",
            "destinations.f.path is required",
        ),
        (
            "[destinations.c]\ntype = \"console\"\npath = \"/x\"\n",
            "destinations.c.path is not a setting of console destinations",
        ),
        (
            "[destinations.c]\ntype = \"console\"\napi_key = \"k\"\n",
            "destinations.c.api_key is not a setting of console",
        ),
        (
            "[destinations.a]\ntype = \"arize\"\n",
            "destinations.a (arize) is missing space_id (or space_id_file, ARIZE_SPACE_ID), api_key",
        ),
        (
            "[destinations.o]\ntype = \"otlp\"\n",
            "destinations.o.endpoint is required for otlp destinations",
        ),
        (
            "[destinations.o]\ntype = \"otlp\"\nendpoint = \"localhost:4317\"\n",
            "destinations.o.endpoint = \"localhost:4317\": expected an http:// or https:// URL",
        ),
        (
            "[destinations.o]\ntype = \"otlp\"\nendpoint = \"http://x:4317\"\ntraces_endpoint = \"http://x/v1/traces\"\n",
            "traces_endpoint is for http/* protocols",
        ),
        (
            "[destinations.o]\ntype = \"otlp\"\nendpoint = \"http://x:4317\"\nsignals = []\n",
            "destinations.o.signals is empty",
        ),
        (
            "[destinations.o]\ntype = \"otlp\"\nendpoint = \"http://x:4317\"\nsignals = [\"traces\", \"profiles\"]\n",
            "profiles",
        ),
        (
            "[destinations.o]\ntype = \"otlp\"\nendpoint = \"http://x:4317\"\nsignals = [\"logs\"]\n",
            "destinations.o.signals must include \"traces\"",
        ),
        (
            "[destinations.o]\ntype = \"otlp\"\nendpoint = \"http://x:4317\"\nsignals = [\"traces\", \"logs\"]\nlogs_endpoint = \"http://x/v1/logs\"\n",
            "logs_endpoint is for http/* protocols",
        ),
        (
            "[destinations.o]\ntype = \"otlp\"\nprotocol = \"http/protobuf\"\ntraces_endpoint = \"http://x/t\"\nsignals = [\"traces\", \"metrics\"]\n",
            "signals names \"metrics\" but only traces_endpoint is set: set destinations.o.metrics_endpoint",
        ),
        (
            "[destinations.a]\ntype = \"arize\"\nspace_id = \"s\"\napi_key = \"k\"\nproject_name = \"p\"\nsignals = [\"logs\"]\n",
            "destinations.a.signals is not a setting of arize destinations",
        ),
        (
            "[destinations.o]\ntype = \"otlp\"\nendpoint = \"http://x\"\nheaders = { \"bad header\" = \"v\" }\n",
            "destinations.o.headers.bad header",
        ),
        (
            "[destinations.o]\ntype = \"otlp\"\nendpoint = \"http://x\"\ntls.client_cert_file = \"/nope.pem\"\n",
            "client_cert_file and client_key_file go together",
        ),
        (
            "[destinations.c]\ntype = \"console\"\nsemconv = \"openinference\"\n",
            "destinations.c.semconv is not a setting of console destinations",
        ),
        (
            "[destinations.o]\ntype = \"opik\"\nurl = \"localhost:5173\"\n",
            "destinations.o.url = \"localhost:5173\": expected an http:// or https:// URL",
        ),
        (
            "[destinations.o]\ntype = \"opik\"\nbatch.max_items = 5000\n",
            "Opik accepts at most 1000 items per batch",
        ),
        (
            "[destinations.c]\ntype = \"console\"\nworkspace = \"w\"\n",
            "destinations.c.workspace is not a setting of console destinations",
        ),
        (
            "[destinations.c]\ntype = \"console\"\nbatch.max_items = 0\n",
            "destinations.c.batch.max_items must be at least 1",
        ),
        (
            "[destinations.c]\ntype = \"console\"\nenabled = false\n",
            "no enabled destination",
        ),
        (
            "[receiver]\ngrpc_listen = \"nonsense\"\n[destinations.c]\ntype = \"console\"\n",
            "receiver.grpc_listen = \"nonsense\"",
        ),
        (
            "[receiver]\ngrpc_listen = \"127.0.0.1:7000\"\nhttp_listen = \"127.0.0.1:7000\"\n[destinations.c]\ntype = \"console\"\n",
            "give each listener its own port",
        ),
        (
            "[destinations.\"bad name\"]\ntype = \"console\"\n",
            "destination name \"bad name\"",
        ),
    ];
    for (toml, expected) in cases {
        let err = settings_of(toml).unwrap_err();
        assert!(
            err.contains(expected),
            "{toml}\n=> {err}\nexpected: {expected}"
        );
    }
}

#[test]
fn disabled_destinations_are_listed_but_not_built() {
    let s = settings_of(
        "[destinations.a]\ntype = \"console\"\n[destinations.b]\ntype = \"file\"\nenabled = false\n",
    )
    .unwrap();
    assert_eq!(s.destinations.len(), 1);
    assert_eq!(s.disabled_destinations, vec!["b".to_string()]);
}

#[test]
fn secrets_are_masked_in_config_show() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "s.toml",
            "[destinations.c]\ntype = \"console\"\napi_key = \"sk-very-secret\"\n",
        )?;
        let loaded = load_in_jail(Some(Path::new("s.toml")))?;
        let shown = render_effective(&loaded);
        assert!(!shown.contains("sk-very-secret"), "{shown}");
        assert!(
            shown.contains("destinations.c.api_key = \"********\""),
            "{shown}"
        );
        Ok(())
    });
}

#[test]
fn opik_settings_come_from_the_file_then_the_sdk_variables_then_defaults() {
    let sdk_env = |name: &str| match name {
        "OPIK_URL_OVERRIDE" => Some("https://www.comet.com/opik/api/".to_string()),
        "OPIK_API_KEY" => Some("key-from-env".to_string()),
        "OPIK_WORKSPACE" => Some("ws-from-env".to_string()),
        "OPIK_PROJECT_NAME" => Some("proj-from-env".to_string()),
        _ => None,
    };
    let mut got = None;
    Jail::expect_with(|jail| {
        jail.create_file(
            "o.toml",
            "[destinations.opik]\ntype = \"opik\"\nworkspace = \"ws-from-file\"\n[destinations.bare]\ntype = \"opik\"\n",
        )?;
        let loaded = load_in_jail(Some(Path::new("o.toml")))?;
        got = Some((
            loaded
                .settings_with_env(&sdk_env)
                .map_err(|e| e.to_string())?,
            loaded
                .settings_with_env(&|_| None)
                .map_err(|e| e.to_string())?,
        ));
        Ok(())
    });
    let (with_env, without) = got.unwrap();
    let opik = |s: &Settings, name: &str| match &s
        .destinations
        .iter()
        .find(|d| d.name == name)
        .unwrap()
        .target
    {
        DestinationTarget::Opik(t) => t.clone(),
        other => panic!("{other:?}"),
    };
    let o = opik(&with_env, "opik");
    assert_eq!(
        o.url, "https://www.comet.com/opik/api",
        "env fills, trailing slash trimmed"
    );
    assert_eq!(
        o.workspace, "ws-from-file",
        "the file beats the SDK variable"
    );
    assert_eq!(o.project_name, "proj-from-env");
    assert_eq!(
        o.api_key
            .as_ref()
            .map(|k| k.expose().to_string())
            .as_deref(),
        Some("key-from-env")
    );
    let d = opik(&without, "bare");
    assert_eq!(d.url, "http://localhost:5173/api");
    assert_eq!(d.workspace, "default");
    assert_eq!(d.project_name, "Default Project");
    assert!(d.api_key.is_none());
    assert_eq!(d.stale_trace_timeout, Duration::from_secs(300));
    assert_eq!(d.trace_ttl, Duration::from_secs(3 * 3600));
}

fn otlp_of(s: &Settings, name: &str) -> OtlpTarget {
    match &s
        .destinations
        .iter()
        .find(|d| d.name == name)
        .unwrap()
        .target
    {
        DestinationTarget::Otlp(t) => t.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn otlp_endpoints_follow_the_otel_exporter_rules() {
    let s = settings_of(
        r#"
[destinations.grpc]
type = "otlp"
endpoint = "http://collector:4317/"
[destinations.http]
type = "otlp"
protocol = "http/protobuf"
endpoint = "http://phoenix:6006/"
[destinations.exact]
type = "otlp"
protocol = "http/json"
traces_endpoint = "https://x.example/custom/path"
compression = "none"
"#,
    )
    .unwrap();
    let grpc = otlp_of(&s, "grpc");
    assert_eq!(grpc.url, "http://collector:4317");
    assert!(grpc.gzip, "gzip by default");
    assert_eq!(grpc.semconv, SemconvMode::Passthrough);
    assert_eq!(otlp_of(&s, "http").url, "http://phoenix:6006/v1/traces");
    let exact = otlp_of(&s, "exact");
    assert_eq!(exact.url, "https://x.example/custom/path");
    assert!(!exact.gzip);
    assert_eq!(
        grpc.signals,
        crate::route::Signals::TRACES,
        "traces only by default"
    );
    assert_eq!(
        (grpc.logs_url.as_deref(), grpc.metrics_url.as_deref()),
        (None, None)
    );
}

#[test]
fn otlp_logs_and_metrics_urls_follow_the_traces_url() {
    let s = settings_of(
        r#"
[destinations.grpc]
type = "otlp"
endpoint = "http://collector:4317/"
signals = ["traces", "logs", "metrics"]
[destinations.http]
type = "otlp"
protocol = "http/protobuf"
endpoint = "http://collector:4318/?k=v"
signals = ["metrics", "logs", "traces"]
[destinations.exact]
type = "otlp"
protocol = "http/json"
traces_endpoint = "https://x.example/t"
logs_endpoint = "https://x.example/l"
signals = ["traces", "logs"]
"#,
    )
    .unwrap();
    let grpc = otlp_of(&s, "grpc");
    assert_eq!(grpc.signals, crate::route::Signals::ALL);
    assert_eq!(grpc.logs_url.as_deref(), Some("http://collector:4317"));
    let http = otlp_of(&s, "http");
    assert_eq!(http.signals, crate::route::Signals::ALL);
    assert_eq!(
        http.logs_url.as_deref(),
        Some("http://collector:4318/v1/logs?k=v")
    );
    assert_eq!(
        http.metrics_url.as_deref(),
        Some("http://collector:4318/v1/metrics?k=v")
    );
    let exact = otlp_of(&s, "exact");
    assert_eq!(exact.logs_url.as_deref(), Some("https://x.example/l"));
    assert_eq!(exact.metrics_url, None);
}

#[test]
fn arize_is_a_preset_with_its_headers_project_and_region() {
    let mut got = None;
    Jail::expect_with(|jail| {
        jail.create_file(
            "a.toml",
            "[destinations.ax]\ntype = \"arize\"\nregion = \"eu\"\n[destinations.us]\ntype = \"arize\"\nproject_name = \"from-file\"\nprotocol = \"http/protobuf\"\n",
        )?;
        let loaded = load_in_jail(Some(Path::new("a.toml")))?;
        let env = |n: &str| match n {
            "ARIZE_SPACE_ID" => Some("space-1".to_string()),
            "ARIZE_API_KEY" => Some("ak-1".to_string()),
            "ARIZE_PROJECT_NAME" => Some("from-env".to_string()),
            _ => None,
        };
        got = Some(loaded.settings_with_env(&env).map_err(|e| e.to_string())?);
        Ok(())
    });
    let s = got.unwrap();
    let eu = otlp_of(&s, "ax");
    assert_eq!(eu.url, "https://otlp.eu-west-1a.arize.com");
    assert_eq!(eu.protocol, OtlpProtocol::Grpc);
    assert_eq!(eu.semconv, SemconvMode::Openinference);
    assert_eq!(eu.project_name.as_deref(), Some("from-env"));
    assert!(eu.project_as_model_id);
    let headers: Vec<(String, String)> = eu
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_string()))
        .collect();
    for (k, v) in [
        ("authorization", "ak-1"),
        ("arize-space-id", "space-1"),
        ("space_id", "space-1"),
        ("api_key", "ak-1"),
        ("arize-interface", "otel"),
    ] {
        assert!(
            headers.contains(&(k.to_string(), v.to_string())),
            "{k}: {headers:?}"
        );
    }
    let us = otlp_of(&s, "us");
    assert_eq!(us.url, "https://otlp.arize.com/v1/traces");
    assert_eq!(us.project_name.as_deref(), Some("from-file"));
}

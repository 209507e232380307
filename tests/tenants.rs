//! Tenants through the real binary: two teams' tokens, one Opik destination
//! mapping each team to its own workspace, project and key (the fake Opik
//! serves three workspaces, each taking only its own key), and a file
//! destination restricted to team-a.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::binary::{Binary, Ports, run_cli, write_config};
use common::fake_opik::{FakeOpik, Outage};
use common::{metric, request, span, wait_until};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::Value as Json;
use tracebridge::pdata::key_value;

const RECEIVER: &str = r#"
[receiver.auth.tokens.a]
token = "tok-a"
tenant = "team-a"
[receiver.auth.tokens.b]
token_file = "{dir}/tok-b"
tenant = "team-b"
[receiver.auth.tokens.c]
token = "tok-c"
tenant = "team-c"
"#;

/// The fake Opik's three workspaces and the destinations.
fn destinations(dir: &Path, opik_url: &str) -> String {
    format!(
        r#"
[destinations.opik]
type = "opik"
url = "{opik_url}"
workspace = "default"
api_key = "gateway-key"
batch.flush_interval = "20ms"
retry.initial_interval = "50ms"
retry.max_interval = "200ms"
[destinations.opik.tenants.team-a]
workspace = "ws-a"
project = "proj-a"
api_key = "key-a"
[destinations.opik.tenants.team-b]
workspace = "ws-b"
project = "proj-b"
api_key_file = "{dir}/key-b"

[destinations.only_a]
type = "file"
path = "{dir}/only_a.jsonl"
batch.flush_interval = "20ms"
tenants = ["team-a"]
"#,
        dir = dir.display()
    )
}

async fn fake_opik() -> FakeOpik {
    let fake = FakeOpik::start(Some("gateway-key"), "default").await;
    fake.add_workspace("ws-a", Some("key-a"));
    fake.add_workspace("ws-b", Some("key-b"));
    fake
}

fn setup(dir: &Path, opik_url: &str) -> (std::path::PathBuf, Ports) {
    std::fs::write(dir.join("tok-b"), "tok-b\n").unwrap();
    std::fs::write(dir.join("key-b"), "key-b\n").unwrap();
    let ports = Ports::free();
    let receiver = RECEIVER.replace("{dir}", &dir.display().to_string());
    let config = write_config(dir, ports, &receiver, &destinations(dir, opik_url));
    (config, ports)
}

/// Posts spans with a bearer token (and a `projectName` header); the status.
async fn post(d: &Binary, token: &str, project: Option<&str>, spans: Vec<Span>) -> u16 {
    let mut req = reqwest::Client::new()
        .post(d.http_url("/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .header("authorization", format!("Bearer {token}"))
        .body(request(spans).encode_to_vec());
    if let Some(p) = project {
        req = req.header("projectName", p);
    }
    req.send().await.expect("post").status().as_u16()
}

/// Name → (project, workspace) of every span row the fake stored.
fn placed(fake: &FakeOpik) -> Vec<(String, String, String)> {
    fake.spans()
        .iter()
        .map(|r| {
            let id = r["id"].as_str().unwrap_or_default();
            (
                r["name"].as_str().unwrap_or_default().to_string(),
                r["project_name"].as_str().unwrap_or_default().to_string(),
                fake.workspace_of(id).unwrap_or_default(),
            )
        })
        .collect()
}

fn file_names(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect()
}

fn assert_each_team_in_its_own(placed: &[(String, String, String)]) {
    for (name, project, workspace) in placed {
        let want = if name.starts_with("a-") {
            ("proj-a", "ws-a")
        } else {
            ("proj-b", "ws-b")
        };
        assert_eq!(
            (project.as_str(), workspace.as_str()),
            want,
            "span {name} landed in {project} / {workspace}"
        );
    }
}

#[tokio::test]
async fn each_team_lands_only_in_its_own_workspace_and_project_and_cannot_cross() {
    let fake = fake_opik().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, ports) = setup(dir.path(), &fake.url());
    let d = Binary::start(&config, ports, dir.path().join("log")).await;

    assert_eq!(
        post(&d, "tok-a", None, vec![span(1, 1, "a-chat")]).await,
        200
    );
    assert_eq!(
        post(&d, "tok-b", None, vec![span(2, 2, "b-chat")]).await,
        200
    );
    // team-b names team-a's project in a header and in the span, and
    // reuses team-a's trace id: it still lands in its own.
    let mut claims = span(1, 3, "b-claims-a");
    claims.attributes.push(key_value(
        "opik.project_name",
        Value::StringValue("proj-a".into()),
    ));
    assert_eq!(post(&d, "tok-b", Some("proj-a"), vec![claims]).await, 200);
    // team-c's token is valid but no destination takes team-c.
    assert_eq!(
        post(&d, "tok-c", None, vec![span(4, 4, "c-chat")]).await,
        403
    );
    assert_eq!(post(&d, "nobody", None, vec![span(5, 5, "x")]).await, 401);
    // Over gRPC the same: team-b's span lands in its own; team-c is refused.
    let mut grpc = TraceServiceClient::connect(format!("http://127.0.0.1:{}", d.ports.grpc))
        .await
        .expect("connect");
    let export = |token: &str, s: Span| {
        let mut r = tonic::Request::new(request(vec![s]));
        let value = format!("Bearer {token}").parse().expect("header");
        r.metadata_mut().insert("authorization", value);
        r
    };
    grpc.export(export("tok-b", span(6, 6, "b-grpc")))
        .await
        .expect("team-b over gRPC");
    let refused = grpc
        .export(export("tok-c", span(7, 7, "c-grpc")))
        .await
        .expect_err("team-c refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    wait_until("four span rows", || fake.spans().len() == 4).await;
    let rows = placed(&fake);
    assert_each_team_in_its_own(&rows);
    let traces = fake.traces();
    assert_eq!(
        traces.len(),
        4,
        "team-b's span with team-a's trace id opens its own trace"
    );
    for t in &traces {
        let id = t["id"].as_str().unwrap();
        let (project, ws) = (t["project_name"].as_str().unwrap(), fake.workspace_of(id));
        assert!(
            matches!(
                (project, ws.as_deref()),
                ("proj-a", Some("ws-a")) | ("proj-b", Some("ws-b"))
            ),
            "trace {id} in {project} / {ws:?}"
        );
    }
    let in_a = traces
        .iter()
        .filter(|t| t["project_name"] == "proj-a")
        .count();
    assert_eq!(in_a, 1, "{traces:?}");

    let only_a = dir.path().join("only_a.jsonl");
    let dropped =
        "tracebridge_control_dropped_spans_total{destination=\"only_a\",reason=\"other_tenant\"}";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let text = loop {
        let text = d.metrics().await;
        if text.contains(dropped)
            && metric(&text, dropped) == 3.0
            && !file_names(&only_a).is_empty()
        {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only_a never saw every request:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(file_names(&only_a), BTreeSet::from(["a-chat".to_string()]));
    assert_eq!(
        metric(
            &text,
            "tracebridge_receiver_refused_spans_total{transport=\"http\",reason=\"no_destination_for_tenant\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "tracebridge_receiver_refused_spans_total{transport=\"grpc\",reason=\"no_destination_for_tenant\"}"
        ),
        1.0
    );
    assert!(!d.log().contains("key-a") && !d.log().contains("tok-b"));
    d.sigterm().await;
}

#[tokio::test]
async fn spooled_records_keep_their_tenant_across_a_restart() {
    let fake = fake_opik().await;
    fake.outage(Some(Outage {
        status: 503,
        hang: None,
    }));
    let dir = tempfile::tempdir().unwrap();
    let (config, ports) = setup(dir.path(), &fake.url());
    let log = dir.path().join("log");
    let d = Binary::start(&config, ports, log.clone()).await;
    for i in 0..5u8 {
        assert_eq!(
            post(&d, "tok-a", None, vec![span(10 + i, 1, "a-chat")]).await,
            200
        );
        assert_eq!(
            post(&d, "tok-b", None, vec![span(20 + i, 2, "b-chat")]).await,
            200
        );
    }
    assert!(d.sigterm().await.success());
    assert!(fake.spans().is_empty(), "nothing got through the outage");
    fake.outage(None);
    // Fresh ports: the old ones may have been taken meanwhile.
    let (config, ports) = setup(dir.path(), &fake.url());
    let d = Binary::start(&config, ports, log).await;
    wait_until("the ten spooled spans in Opik", || fake.spans().len() == 10).await;
    assert_each_team_in_its_own(&placed(&fake));
    let only_a = dir.path().join("only_a.jsonl");
    wait_until("team-a's spans in only_a", || {
        std::fs::read_to_string(&only_a).is_ok_and(|t| t.lines().count() == 5)
    })
    .await;
    assert_eq!(file_names(&only_a), BTreeSet::from(["a-chat".to_string()]));
    d.sigterm().await;
}

#[test]
fn config_check_names_unknown_tenants_and_missing_keys_and_show_masks_them() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = setup(dir.path(), "http://127.0.0.1:9/api");
    let out = run_cli(&config, &["config", "check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("tenant \"team-c\""),
        "team-c goes nowhere: {said}"
    );
    let shown = String::from_utf8_lossy(&run_cli(&config, &["config", "show"]).stdout).to_string();
    assert!(
        shown.contains("proj-a") && shown.contains("team-a"),
        "{shown}"
    );
    assert!(
        !shown.contains("key-a") && !shown.contains("tok-a"),
        "{shown}"
    );

    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("tenants = [\"team-a\"]", "tenants = [\"team-x\"]"),
    )
    .unwrap();
    let out = run_cli(&config, &["config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("destinations.only_a.tenants names \"team-x\""),
        "{err}"
    );

    std::fs::write(&config, text.replace("api_key = \"key-a\"\n", "")).unwrap();
    let out = run_cli(&config, &["config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("destinations.opik.tenants.team-a.api_key"),
        "{err}"
    );
}

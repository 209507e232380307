//! `tracebridge check` against fake destinations, and `tracebridge status`
//! against a running daemon.

mod common;

use std::process::Command;

use common::fake_opik::FakeOpik;
use common::otlp_sink::{OtlpSink, Reply};
use common::*;
use prost::Message as _;

/// Runs `tracebridge check` with `destinations` as the config; (exit code, stdout).
async fn check(destinations: String, extra_args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, destinations).unwrap();
    let args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_tracebridge"))
            .arg("check")
            .arg("--config")
            .arg(&path)
            .args(args)
            .env_remove("OPIK_API_KEY")
            .env_remove("OPIK_WORKSPACE")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (
        out.status.code().unwrap_or(-1),
        stdout + &String::from_utf8_lossy(&out.stderr),
    )
}

fn opik(name: &str, url: &str, key: &str, workspace: &str) -> String {
    format!(
        "[destinations.{name}]\ntype = \"opik\"\nurl = \"{url}\"\napi_key = \"{key}\"\nworkspace = \"{workspace}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_the_fix_for_each_opik_failure() {
    let fake = FakeOpik::start(Some("right-key"), "team").await;
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cases = [
        (
            opik("good", &fake.url(), "right-key", "team"),
            0,
            "OK",
            "accepts the key for workspace \"team\"",
        ),
        (
            opik("bad_key", &fake.url(), "wrong", "team"),
            1,
            "FAIL",
            "the API key was rejected",
        ),
        (
            opik("bad_ws", &fake.url(), "right-key", "other"),
            1,
            "FAIL",
            "the workspace \"other\" is missing or wrong",
        ),
        (
            opik(
                "bad_path",
                &format!("http://{}", fake.addr),
                "right-key",
                "team",
            ),
            1,
            "FAIL",
            "wrong base path? local Opik uses http://localhost:5173/api",
        ),
        (
            opik("refused", &format!("http://{unused}/api"), "k", "team"),
            1,
            "FAIL",
            "nothing is listening",
        ),
    ];
    for (config, code, verdict, message) in cases {
        let (got, out) = check(config.clone(), &[]).await;
        assert_eq!(got, code, "{config}\n{out}");
        assert!(
            out.contains(verdict) && out.contains(message),
            "{config}\n{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_exports_an_empty_request_to_otlp_destinations_and_exits_0_only_if_all_pass() {
    let sink = OtlpSink::start().await;
    let config = format!(
        "[destinations.grpc]\ntype = \"otlp\"\nendpoint = \"http://{}\"\n[destinations.http]\ntype = \"otlp\"\nprotocol = \"http/protobuf\"\nendpoint = \"http://{}\"\n",
        sink.grpc_addr, sink.http_addr
    );
    let (code, out) = check(config.clone(), &[]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("OK").count(), 2, "{out}");
    let got = sink.received();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.span_count() == 0), "empty exports");

    sink.script([Reply::Http {
        status: 503,
        headers: vec![],
    }]);
    let (code, out) = check(config.clone(), &["--destination", "http"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("http  FAIL") && out.contains("503"), "{out}");
    assert!(!out.contains("grpc"), "--destination checks one: {out}");
    let (code, out) = check(config, &["--destination", "nope"]).await;
    assert_eq!(code, 2, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_prints_per_destination_counts_from_a_running_daemon() {
    let mut d = TestDaemon::start("", "").await;
    reqwest::Client::new()
        .post(d.http_url())
        .header("content-type", "application/x-protobuf")
        .body(request(spans(4)).encode_to_vec())
        .send()
        .await
        .unwrap();
    d.wait_for_spans(4).await;
    let json: serde_json::Value = serde_json::from_slice(
        &reqwest::get(d.admin_url("/status"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["state"], "ready");
    assert_eq!(json["destinations"][0]["name"], "out");
    assert_eq!(json["destinations"][0]["kind"], "file");
    assert_eq!(json["destinations"][0]["sent_spans"], 4);
    assert!(
        json["destinations"][0]["spool"]["bytes"].is_u64(),
        "the spool backlog is in /status: {json}"
    );
    let admin = format!("http://{}", d.running().admin_addr);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_tracebridge"))
            .args(["status", "--admin", &admin])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DESTINATION  KIND"), "{text}");
    let health = |admin: String| {
        Command::new(env!("CARGO_BIN_EXE_tracebridge"))
            .args(["healthcheck", "--admin", &admin])
            .status()
            .unwrap()
    };
    let admin = format!("http://{}", d.running().admin_addr);
    assert!(
        tokio::task::spawn_blocking(move || health(admin))
            .await
            .unwrap()
            .success()
    );
    let nowhere = format!(
        "http://{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    );
    assert_eq!(
        tokio::task::spawn_blocking(move || health(nowhere))
            .await
            .unwrap()
            .code(),
        Some(1)
    );
    let row = text
        .lines()
        .find(|l| l.starts_with("out "))
        .unwrap_or_else(|| panic!("{text}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[..6],
        &["out", "file", "4", "0", "0", "0/64"],
        "{text}"
    );
    assert!(text.contains("SPOOL(BYTES/RECORDS/OLDEST)"), "{text}");
    assert_eq!(
        cells[6].split('/').count(),
        3,
        "the spool backlog per destination: {text}"
    );
    d.stop().await;
}

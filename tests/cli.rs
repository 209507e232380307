//! The real binary: exit codes, `config` subcommands, and a SIGTERM drain.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tracebridge"));
    c.env_remove("RUST_LOG").env_remove("TRACEBRIDGE_CONFIG");
    c
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn version_prints_the_package_version() {
    let out = bin().arg("version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("tracebridge {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn config_check_exits_0_or_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(&dir, "good.toml", "[destinations.c]\ntype = \"console\"\n");
    let out = bin()
        .args(["config", "check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("config OK"));

    let bad = write(
        &dir,
        "bad.toml",
        "[receiver]\nhttp_listn = \"x\"\n[destinations.c]\ntype = \"console\"\n",
    );
    for args in [vec!["config", "check"], vec!["run"], vec![]] {
        let out = bin()
            .args(&args)
            .arg("--config")
            .arg(&bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("unknown key `receiver.http_listn`"), "{err}");
    }
    // TRACEBRIDGE_CONFIG names the file when --config is absent.
    let out = bin()
        .args(["config", "check"])
        .env("TRACEBRIDGE_CONFIG", &bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `config show` of `cfg`, with one setting from the environment.
fn config_show(cfg: &std::path::Path) -> std::process::Output {
    bin()
        .args(["config", "show"])
        .env("TRACEBRIDGE_CONFIG", cfg)
        .env("TRACEBRIDGE_RECEIVER__HTTP_LISTEN", "127.0.0.1:5318")
        .output()
        .unwrap()
}

#[test]
fn config_show_gives_sources_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        &dir,
        "c.toml",
        "[receiver]\ngrpc_listen = \"127.0.0.1:5317\"\n[destinations.c]\ntype = \"console\"\napi_key = \"sk-hidden\"\n",
    );
    let out = config_show(&cfg);
    // api_key is not a console setting: shown (masked), then reported.
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("destinations.c.api_key = \"********\""),
        "{text}"
    );
    assert!(!text.contains("sk-hidden"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("api_key is not a setting of console"), "{err}");
    assert!(!err.contains("sk-hidden"));

    let cfg = write(
        &dir,
        "d.toml",
        "[receiver]\ngrpc_listen = \"127.0.0.1:5317\"\n[destinations.c]\ntype = \"console\"\n",
    );
    let out = config_show(&cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |k: &str| {
        text.lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("receiver.grpc_listen").contains("# file"), "{text}");
    assert!(
        line("receiver.http_listen").contains("\"127.0.0.1:5318\""),
        "{text}"
    );
    assert!(
        line("receiver.http_listen").ends_with("# env TRACEBRIDGE_RECEIVER__HTTP_LISTEN"),
        "{text}"
    );
    assert!(line("admin.listen").ends_with("# default"), "{text}");
}

/// The README's promise: start, send the example trace, see it, stop cleanly.
#[test]
fn sigterm_flushes_pending_batches_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("spans.jsonl");
    let cfg = write(
        &dir,
        "run.toml",
        &format!(
            r#"
state_dir = "{}"
[receiver]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[log]
format = "json"
[destinations.console]
type = "console"
[destinations.archive]
type = "file"
path = "{}"
batch.flush_interval = "1h"
"#,
            dir.path().join("state").display(),
            out_file.display()
        ),
    );
    let mut child = bin()
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut http_addr = None;
    let mut admin_addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["message"].as_str().is_some_and(|m| m.ends_with("ready")) {
            http_addr = v["http_addr"].as_str().map(str::to_string);
            admin_addr = v["admin_addr"].as_str().map(str::to_string);
            break;
        }
    }
    let http_addr = http_addr.expect("ready line with http_addr");
    let admin_addr = admin_addr.expect("ready line with admin_addr");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tracebridge::app::install_tls_provider();
        let client = reqwest::Client::new();
        let ready = client
            .get(format!("http://{admin_addr}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
        let health = client
            .get(format!("http://{admin_addr}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        let example = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/genai-trace.json"
        ))
        .unwrap();
        let r = client
            .post(format!("http://{http_addr}/v1/traces"))
            .header("content-type", "application/json")
            .body(example)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let metrics = client
            .get(format!("http://{admin_addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("tracebridge_receiver_accepted_spans_total{transport=\"http\"} 3"),
            "{metrics}"
        );
    });
    // Nothing is due for an hour; only the shutdown flush can write the file.
    assert_eq!(
        std::fs::read_to_string(&out_file)
            .unwrap_or_default()
            .lines()
            .count(),
        0
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "daemon did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(exit.code(), Some(0));
    let written = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(written.lines().count(), 3, "{written}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(
        stdout.contains(
            "trace 019b76da-a800-7fa5-891b-80f54f40f0cf \"weather_assistant\" 3 spans, 206 tokens, cost n/a | otel 4bf92f3577b34da6a3ce929d0e0e4736"
        ),
        "{stdout}"
    );
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("received SIGTERM")),
        "{rest:?}"
    );
    assert!(
        rest.iter().any(|l| l.contains("tracebridge stopped")),
        "{rest:?}"
    );
}

#[test]
fn a_port_in_use_is_a_clear_startup_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        &dir,
        "p.toml",
        &format!(
            "state_dir = \"{}\"\n[receiver]\ngrpc_listen = \"127.0.0.1:{port}\"\nhttp_listen = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[destinations.c]\ntype = \"console\"\n",
            dir.path().join("state").display()
        ),
    );
    let out = bin().arg("--config").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "cannot listen on receiver.grpc_listen = 127.0.0.1:{port}"
        )),
        "{err}"
    );
}

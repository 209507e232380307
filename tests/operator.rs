//! What an operator meets when deploying: the real binary with the
//! environment Kubernetes gives it, misconfigurations caught at startup and
//! in `config check`, and the commands that inspect a running daemon.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tracebridge"));
    c.env_remove("RUST_LOG").env_remove("TRACEBRIDGE_CONFIG");
    for (k, _) in std::env::vars() {
        if k.starts_with("TRACEBRIDGE_") || k.starts_with("OPIK_") || k.starts_with("ARIZE_") {
            c.env_remove(k);
        }
    }
    // Each daemon its own spool (two cannot share a state_dir).
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let state =
        std::env::temp_dir().join(format!("tracebridge-operator-{}-{n}", std::process::id()));
    c.env("STATE_DIRECTORY", state);
    c
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `tracebridge ARGS --config CFG` with `env` to its end: (exit code, stdout, stderr).
fn tb(args: &[&str], cfg: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let out = bin()
        .args(args)
        .arg("--config")
        .arg(cfg)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A config on ephemeral loopback ports with JSON logs; `rest` adds destinations.
fn config(rest: &str) -> String {
    format!(
        "[receiver]\ngrpc_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\nlevel = \"debug\"\n{rest}"
    )
}

/// A daemon started from the real binary, its JSON log lines collected.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
    seen: Vec<serde_json::Value>,
    admin_addr: String,
    http_addr: String,
    grpc_addr: String,
}

impl Daemon {
    fn start(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::Value::String(line.clone()));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut d = Self {
            child,
            lines: rx,
            seen: Vec::new(),
            admin_addr: String::new(),
            http_addr: String::new(),
            grpc_addr: String::new(),
        };
        let ready = d.wait_for(|v| v["message"].as_str().is_some_and(|m| m.ends_with("ready")));
        d.admin_addr = ready["admin_addr"].as_str().unwrap().to_string();
        d.http_addr = ready["http_addr"].as_str().unwrap().to_string();
        d.grpc_addr = ready["grpc_addr"].as_str().unwrap().to_string();
        d
    }

    /// Waits for a log line (up to 30 s, a bound, not a timing assertion).
    fn wait_for(&mut self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        if let Some(v) = self.seen.iter().find(|v| pred(v)) {
            return v.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => panic!("log line not seen; got:\n{:#?}", self.seen),
            }
        }
    }

    fn stop(mut self) -> i32 {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn message(v: &serde_json::Value) -> String {
    v["message"].as_str().unwrap_or_default().to_string()
}

/// The variables the kubelet injects for a Service `tracebridge-gateway`
/// (ports otlp-grpc 4317, otlp-http 4318) and one named `tracebridge`.
const SERVICE_LINKS: &[(&str, &str)] = &[
    ("TRACEBRIDGE_GATEWAY_SERVICE_HOST", "10.96.0.12"),
    ("TRACEBRIDGE_GATEWAY_SERVICE_PORT", "4317"),
    ("TRACEBRIDGE_GATEWAY_SERVICE_PORT_OTLP_GRPC", "4317"),
    ("TRACEBRIDGE_GATEWAY_SERVICE_PORT_OTLP_HTTP", "4318"),
    ("TRACEBRIDGE_GATEWAY_PORT", "tcp://10.96.0.12:4317"),
    ("TRACEBRIDGE_GATEWAY_PORT_4317_TCP", "tcp://10.96.0.12:4317"),
    ("TRACEBRIDGE_GATEWAY_PORT_4317_TCP_PROTO", "tcp"),
    ("TRACEBRIDGE_GATEWAY_PORT_4317_TCP_PORT", "4317"),
    ("TRACEBRIDGE_GATEWAY_PORT_4317_TCP_ADDR", "10.96.0.12"),
    ("TRACEBRIDGE_SERVICE_HOST", "10.96.0.13"),
    ("TRACEBRIDGE_PORT", "tcp://10.96.0.13:13133"),
    ("TRACEBRIDGE_PORT_13133_TCP_ADDR", "10.96.0.13"),
];

#[test]
fn kubernetes_service_link_variables_are_ignored_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        &config("[destinations.c]\ntype = \"console\"\n"),
    );
    let (code, _, err) = tb(&["config", "check"], &cfg, SERVICE_LINKS);
    assert_eq!(code, 0, "{err}");

    let mut d = Daemon::start(
        bin()
            .arg("--config")
            .arg(&cfg)
            .envs(SERVICE_LINKS.iter().copied()),
    );
    let line = d.wait_for(|v| {
        message(v).contains("TRACEBRIDGE_GATEWAY_PORT_4317_TCP_ADDR")
            && message(v).contains("Kubernetes service link")
    });
    assert_eq!(line["level"], "DEBUG", "{line}");
    assert_eq!(d.stop(), 0);

    // A real setting next to them still applies, and a typo is still fatal.
    let mut env = SERVICE_LINKS.to_vec();
    env.push(("TRACEBRIDGE_ADMIN__LISTN", "127.0.0.1:1"));
    let (code, _, err) = tb(&["config", "check"], &cfg, &env);
    assert_eq!(code, 2);
    assert!(err.contains("admin.listn"), "{err}");
}

/// Transparent huge pages make one touched byte keep 2 MiB resident: the
/// daemon turns them off for itself (src/main.rs), whatever the host's
/// setting.
#[cfg(target_os = "linux")]
#[test]
fn the_daemon_turns_transparent_huge_pages_off_for_itself() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        &config("[destinations.c]\ntype = \"console\"\n"),
    );
    let d = Daemon::start(bin().arg("--config").arg(&cfg));
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.child.id())).unwrap();
    assert_eq!(d.stop(), 0);
    let thp = status.lines().find(|l| l.starts_with("THP_enabled:"));
    // Kernels before 5.0 do not show the line; there is nothing to check then.
    if let Some(line) = thp {
        assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    }
}

/// `config check` and `run` with `cfg` and `env`: (exit code, stdout, stderr) of each.
fn check_and_run(cfg: &Path, env: &[(&str, &str)]) -> [(i32, String, String); 2] {
    [tb(&["config", "check"], cfg, env), tb(&["run"], cfg, env)]
}

#[test]
fn env_references_in_the_file_expand_like_the_collector() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.jsonl");
    let cfg = write(
        dir.path(),
        "c.toml",
        &config(
            "[destinations.f]\ntype = \"file\"\npath = \"${env:TB_TEST_DIR}/out.jsonl\"\nbatch.flush_interval = \"${TB_TEST_FLUSH:-10ms}\"\n",
        ),
    );
    let test_dir = dir.path().display().to_string();
    let (code, shown, err) = tb(&["config", "show"], &cfg, &[("TB_TEST_DIR", &test_dir)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        shown.contains(&format!("destinations.f.path = \"{}\"", out_file.display())),
        "{shown}"
    );
    assert!(
        shown.contains("destinations.f.batch.flush_interval = \"10ms\""),
        "{shown}"
    );

    // Unset: an error naming the variable and the setting, at check and at start.
    for (code, _, err) in check_and_run(&cfg, &[]) {
        assert_eq!(code, 2, "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("`destinations.f.path` refers to ${env:TB_TEST_DIR}"),
            "{err}"
        );
        assert!(err.contains("TB_TEST_DIR is not set"), "{err}");
        assert!(err.contains(&cfg.display().to_string()), "{err}");
    }
}

#[test]
fn a_full_traces_url_in_endpoint_is_refused_naming_traces_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        &config(
            "[destinations.phoenix]\ntype = \"otlp\"\nprotocol = \"http/protobuf\"\nendpoint = \"http://127.0.0.1:6006/v1/traces\"\n",
        ),
    );
    for (code, _, err) in check_and_run(&cfg, &[]) {
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("destinations.phoenix.endpoint = \"http://127.0.0.1:6006/v1/traces\" already ends in /v1/traces"), "{err}");
        assert!(
            err.contains("use traces_endpoint = \"http://127.0.0.1:6006/v1/traces\""),
            "{err}"
        );
        assert!(
            err.contains("or endpoint = \"http://127.0.0.1:6006\""),
            "{err}"
        );
    }
}

#[test]
fn likely_mistakes_are_warned_about_by_config_check_and_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        &config("[destinations.o]\ntype = \"otlp\"\nendpoint = \"http://127.0.0.1:4318\"\n"),
    );
    let env = [("OPIK_API_KEY", "k"), ("OPIK_WORKSPACE", "w")];
    let (code, _, err) = tb(&["config", "check"], &cfg, &env);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning: destinations.o: sends grpc to http://127.0.0.1:4318 whose port 4318 is the usual OTLP/HTTP port; if the export fails, use protocol = \"http/protobuf\""), "{err}");
    assert!(err.contains("warning: OPIK_API_KEY, OPIK_WORKSPACE are set but no enabled destination has type = \"opik\""), "{err}");

    let mut d = Daemon::start(bin().arg("--config").arg(&cfg).envs(env));
    let line = d.wait_for(|v| message(v).starts_with("OPIK_API_KEY, OPIK_WORKSPACE are set"));
    assert_eq!(line["level"], "WARN");
    d.wait_for(|v| message(v).starts_with("destinations.o: sends grpc") && v["level"] == "WARN");
    assert_eq!(d.stop(), 0);
}

fn get(url: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tracebridge::app::install_tls_provider();
        let r = reqwest::get(url).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_destination_is_reported_at_startup_not_at_the_first_export() {
    let fake = common::fake_opik::FakeOpik::start(Some("right-key"), "team").await;
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        &config(&format!(
            "[destinations.good]\ntype = \"opik\"\nurl = \"{url}\"\napi_key = \"right-key\"\nworkspace = \"team\"\n\
             [destinations.wrong_key]\ntype = \"opik\"\nurl = \"{url}\"\napi_key = \"wrong\"\nworkspace = \"team\"\n\
             [destinations.no_key]\ntype = \"opik\"\nurl = \"{url}\"\nworkspace = \"team\"\n\
             [destinations.down]\ntype = \"otlp\"\nprotocol = \"http/protobuf\"\nendpoint = \"http://bob:pw0rd@{refused}?token=t0ken\"\n",
            url = fake.url()
        )),
    );
    let (d, warnings) = tokio::task::spawn_blocking(move || {
        let mut d = Daemon::start(bin().arg("--config").arg(&cfg));
        let mut warnings = Vec::new();
        for name in ["wrong_key", "no_key", "down"] {
            warnings.push(d.wait_for(|v| {
                v["destination"] == name && message(v).starts_with("startup check failed")
            }));
        }
        d.wait_for(|v| {
            v["destination"] == "good" && message(v).starts_with("startup check passed")
        });
        (d, warnings)
    })
    .await
    .unwrap();
    let text: Vec<String> = warnings.iter().map(message).collect();
    assert!(
        warnings.iter().all(|w| w["level"] == "WARN"),
        "{warnings:?}"
    );
    assert!(text[0].contains("the API key was rejected"), "{}", text[0]);
    assert!(text[1].contains("wants an API key and none is set; set api_key or api_key_file in [destinations.no_key], or OPIK_API_KEY"), "{}", text[1]);
    assert!(
        text[2].contains(&format!(
            "nothing is listening at http://bob:********@{refused}/v1/traces?token=********"
        )),
        "{}",
        text[2]
    );
    let everything = format!("{:?}", d.seen);
    assert!(
        !everything.contains("pw0rd") && !everything.contains("t0ken"),
        "{everything}"
    );

    let admin = d.admin_addr.clone();
    let (ready, body, status) = tokio::task::spawn_blocking(move || {
        let (code, body) = get(&format!("http://{admin}/readyz"));
        let (_, status) = get(&format!("http://{admin}/status"));
        (code, body, status)
    })
    .await
    .unwrap();
    assert_eq!(ready, 200, "failed checks do not make the daemon unready");
    assert!(body.starts_with("ready\n"), "{body}");
    assert!(
        body.contains("destination down: startup check failed: otlp: nothing is listening"),
        "{body}"
    );
    assert!(
        body.contains("destination wrong_key: startup check failed"),
        "{body}"
    );
    assert!(!body.contains("destination good"), "{body}");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let of = |name: &str| {
        status["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap()["startup_check"]
            .clone()
    };
    assert_eq!(of("good")["ok"], true, "{status}");
    assert_eq!(of("down")["ok"], false, "{status}");
    assert!(
        of("no_key")["message"]
            .as_str()
            .unwrap()
            .contains("none is set"),
        "{status}"
    );
    assert_eq!(
        tokio::task::spawn_blocking(move || d.stop()).await.unwrap(),
        0
    );
}

#[test]
fn config_show_answers_where_it_sends_and_with_which_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        &config(
            "[destinations.opik]\ntype = \"opik\"\nworkspace = \"team\"\n\
             [destinations.arize]\ntype = \"arize\"\nspace_id = \"U3BhY2U\"\n\
             [destinations.phoenix]\ntype = \"otlp\"\nprotocol = \"http/protobuf\"\nendpoint = \"https://bob:s3cret@phoenix:6006/base?token=t0ken\"\n",
        ),
    );
    let env = [
        ("OPIK_API_KEY", "opik-secret"),
        ("OPIK_URL_OVERRIDE", "https://www.comet.com/opik/api"),
        ("ARIZE_API_KEY", "arize-secret"),
        ("ARIZE_PROJECT_NAME", "proj"),
    ];
    let (code, text, err) = tb(&["config", "show"], &cfg, &env);
    assert_eq!(code, 0, "{err}");
    let line = |k: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{k} = ")))
            .unwrap_or_else(|| panic!("no {k} in\n{text}"))
            .to_string()
    };
    let has = |k: &str, value: &str, source: &str| {
        let l = line(k);
        assert!(
            l.contains(&format!("= {value}")) && l.ends_with(&format!("# {source}")),
            "{l}"
        );
    };
    has(
        "destinations.opik.url",
        "\"https://www.comet.com/opik/api\"",
        "env OPIK_URL_OVERRIDE",
    );
    has(
        "destinations.opik.api_key",
        "\"********\"",
        "env OPIK_API_KEY",
    );
    has(
        "destinations.opik.workspace",
        "\"team\"",
        &format!("file {}", cfg.display()),
    );
    has(
        "destinations.opik.project_name",
        "\"Default Project\"",
        "default (opik)",
    );
    has(
        "destinations.opik.export_url",
        "[\"https://www.comet.com/opik/api/v1/private/traces/batch\"",
        "derived from url",
    );
    has(
        "destinations.arize.api_key",
        "\"********\"",
        "env ARIZE_API_KEY",
    );
    has(
        "destinations.arize.project_name",
        "\"proj\"",
        "env ARIZE_PROJECT_NAME",
    );
    has(
        "destinations.arize.export_url",
        "\"https://otlp.arize.com\"",
        "derived from region and protocol",
    );
    has(
        "destinations.phoenix.compression",
        "\"gzip\"",
        "default (otlp)",
    );
    // The path goes before the query string; credentials are masked.
    has(
        "destinations.phoenix.export_url",
        "\"https://bob:********@phoenix:6006/base/v1/traces?token=********\"",
        "derived from endpoint + /v1/traces",
    );
    assert!(
        line("destinations.phoenix.endpoint").contains("bob:********@"),
        "{text}"
    );
    for secret in ["opik-secret", "arize-secret", "s3cret", "t0ken", "U3BhY2U"] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
}

/// `status` and `healthcheck` with `args`: (exit code, stdout, stderr).
fn admin_command(args: &[&str], cfg: &Path) -> (i32, String, String) {
    tb(args, cfg, &[])
}

#[test]
fn status_and_healthcheck_find_the_daemon_through_its_config() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        &config("[destinations.c]\ntype = \"console\"\n").replace(
            "[admin]\nlisten = \"127.0.0.1:0\"",
            &format!("[admin]\nlisten = \"127.0.0.1:{port}\""),
        ),
    );
    let d = Daemon::start(bin().arg("--config").arg(&cfg));
    assert_eq!(d.admin_addr, format!("127.0.0.1:{port}"));
    let (code, out, err) = admin_command(&["status"], &cfg);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("DESTINATION") && out.contains("console"),
        "{out}"
    );
    let (code, _, err) = admin_command(&["healthcheck"], &cfg);
    assert_eq!(code, 0, "{err}");
    let hostport = format!("127.0.0.1:{port}");
    let (code, _, err) = admin_command(&["healthcheck", "--admin", &hostport], &cfg);
    assert_eq!(code, 0, "host:port without a scheme: {err}");
    assert_eq!(d.stop(), 0);

    for args in [&["healthcheck"][..], &["status"][..]] {
        let (code, _, err) = admin_command(args, &cfg);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(&format!("cannot reach http://127.0.0.1:{port}/")),
            "{err}"
        );
        assert!(
            err.contains("nothing is listening") && err.contains("onnection refused"),
            "the cause is kept: {err}"
        );
    }
}

#[tokio::test]
async fn unknown_paths_and_undecodable_grpc_are_answered_counted_and_logged() {
    let mut d = common::TestDaemon::start("", "").await;
    tracebridge::app::install_tls_provider();
    let http = reqwest::Client::new();
    let base = format!("http://{}", d.running().http_addr);
    let r = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("OTLP goes to POST /v1/traces, /v1/logs or /v1/metrics")
    );
    let r = http
        .post(format!("{base}/v1/profiles"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("tracebridge does not take profiles")
    );

    // Raw gRPC frames: a message that is not protobuf, and a method we do not serve.
    let grpc = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let call = |method: &'static str, message: &'static [u8]| {
        let mut frame = vec![0u8];
        frame.extend((message.len() as u32).to_be_bytes());
        frame.extend(message);
        grpc.post(format!("http://{}/{method}", d.running().grpc_addr))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(frame)
            .send()
    };
    let r = call(
        "opentelemetry.proto.collector.trace.v1.TraceService/Export",
        b"\xff\xff\xff\xff not protobuf",
    )
    .await
    .unwrap();
    assert_eq!(r.headers()["grpc-status"], "3", "{:?}", r.headers());
    let msg = r.headers()["grpc-message"].to_str().unwrap().to_string();
    assert!(
        msg.contains("not a valid OTLP Export*ServiceRequest"),
        "{msg}"
    );
    let r = call(
        "opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
        b"",
    )
    .await
    .unwrap();
    assert_eq!(r.headers()["grpc-status"], "12", "{:?}", r.headers());

    let m = d.metrics();
    let series = |t: &str, reason: &str| {
        common::metric(
            &m,
            &format!(
                "tracebridge_receiver_refused_requests_total{{transport=\"{t}\",reason=\"{reason}\"}}"
            ),
        )
    };
    assert_eq!(series("http", "unknown_path"), 2.0, "{m}");
    assert_eq!(series("grpc", "decode_error"), 1.0, "{m}");
    assert_eq!(series("grpc", "unknown_path"), 1.0, "{m}");
    d.stop().await;
}

#[test]
fn config_errors_name_the_variable_and_say_what_is_expected() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        &config("[destinations.c]\ntype = \"console\"\n"),
    );
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("TRACEBRIDGE_DESTINATIONS__C__QUEUE__CONCURRENCY", "99")],
            "destinations.c.queue.concurrency = 99: use 1 to 64 [destinations.c.queue.concurrency: env TRACEBRIDGE_DESTINATIONS__C__QUEUE__CONCURRENCY]",
        ),
        (
            &[("TRACEBRIDGE_DESTINATIONS__C__QUEUE__MAX_BATCHES", "-1")],
            "`destinations.c.queue.max_batches` is signed int `-1` (from environment variable TRACEBRIDGE_DESTINATIONS__C__QUEUE__MAX_BATCHES); expected a whole number, 0 or more",
        ),
        (
            &[("TRACEBRIDGE_SHUTDOWN_TIMEOUT", "soon")],
            "(from environment variable TRACEBRIDGE_SHUTDOWN_TIMEOUT); expected a duration such as \"250ms\"",
        ),
        (
            &[("TRACEBRIDGE_LOG__FORMAT", "xml")],
            "`log.format` = \"xml\" (from environment variable TRACEBRIDGE_LOG__FORMAT); expected one of: text, json",
        ),
    ];
    for (env, want) in cases {
        let [(code, _, err), _] = check_and_run(&cfg, env);
        assert_eq!(code, 2);
        assert!(err.contains(want), "{err}");
        assert!(!err.contains("usize"), "{err}");
    }
    let upper = write(
        dir.path(),
        "u.toml",
        &config("[destinations.Opik]\ntype = \"console\"\n"),
    );
    let [(code, _, err), _] = check_and_run(&upper, &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("destination name \"Opik\": use lower case, e.g. [destinations.opik]"),
        "{err}"
    );
}

#[tokio::test]
async fn build_and_process_metrics_are_exposed() {
    let mut d = common::TestDaemon::start("", "").await;
    tracebridge::app::install_tls_provider();
    let text = d.admin_text("/metrics").await;
    assert!(
        text.contains(&format!(
            "tracebridge_build_info{{version=\"{}\",commit=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            tracebridge::telemetry::COMMIT
        )),
        "{text}"
    );
    assert_ne!(tracebridge::telemetry::COMMIT, "");
    for family in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_threads",
        "process_start_time_seconds",
    ] {
        assert!(common::metric(&text, family) > 0.0, "{family}: {text}");
    }
    assert_eq!(text.matches("# EOF").count(), 1);
    assert!(text.ends_with("# EOF\n"));
    d.stop().await;
}

#[test]
fn sighup_reloads_destinations_and_a_broken_config_keeps_the_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let dest = |name: &str| {
        format!(
            "[destinations.{name}]\ntype = \"file\"\npath = \"{}\"\n",
            dir.path().join(format!("{name}.jsonl")).display()
        )
    };
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = format!("[destinations.down]\ntype = \"otlp\"\nendpoint = \"http://{refused}\"\n");
    // Destinations reload with the in-memory queue (the durable spool refuses: see README).
    let memory = "[spool]\nmode = \"memory\"\n";
    let cfg = write(
        dir.path(),
        "c.toml",
        &config(&(memory.to_string() + &dest("a") + &down)),
    );
    let mut d = Daemon::start(bin().arg("--config").arg(&cfg));
    d.wait_for(|v| v["destination"] == "down" && message(v).starts_with("startup check failed"));
    let (_, ready) = get(&format!("http://{}/readyz", d.admin_addr));
    assert!(
        ready.contains("destination down: startup check failed"),
        "{ready}"
    );
    let hup = |d: &Daemon| {
        Command::new("kill")
            .args(["-HUP", &d.child.id().to_string()])
            .status()
            .unwrap()
    };
    write(
        dir.path(),
        "c.toml",
        &config(&(memory.to_string() + &dest("a") + &dest("b"))),
    );
    hup(&d);
    let line = d.wait_for(|v| message(v).starts_with("configuration reloaded"));
    assert!(
        message(&line).contains("1 added, 1 removed, 0 changed, 1 unchanged"),
        "{line}"
    );
    let (_, ready) = get(&format!("http://{}/readyz", d.admin_addr));
    assert_eq!(ready, "ready\n", "the removed destination's check is gone");

    write(dir.path(), "c.toml", "[destinations.a]\ntype = \"nope\"\n");
    hup(&d);
    let line = d.wait_for(|v| message(v).starts_with("config reload failed"));
    assert_eq!(line["level"], "ERROR");
    assert!(
        message(&line).contains("keeping the running configuration"),
        "{line}"
    );
    assert!(message(&line).contains("nope"), "{line}");
    let (code, status) = get(&format!("http://{}/status", d.admin_addr));
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let names: Vec<&str> = status["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(d.stop(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_protocol_sent_to_the_other_port_and_tls_to_plain() {
    let mut target = common::TestDaemon::start("", "").await;
    let (grpc, http) = (target.running().grpc_addr, target.running().http_addr);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        &format!(
            "[destinations.g2h]\ntype = \"otlp\"\nendpoint = \"http://{http}\"\n\
             [destinations.h2g]\ntype = \"otlp\"\nprotocol = \"http/protobuf\"\nendpoint = \"http://{grpc}\"\n\
             [destinations.tls]\ntype = \"otlp\"\nprotocol = \"http/protobuf\"\nendpoint = \"https://{http}\"\n"
        ),
    );
    let (code, out, err) = tokio::task::spawn_blocking(move || tb(&["check"], &cfg, &[]))
        .await
        .unwrap();
    assert_eq!(code, 1, "{out}{err}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .to_string()
    };
    for name in ["g2h", "h2g"] {
        assert!(
            line(name).contains("does not speak the configured protocol")
                && line(name).contains("check protocol and the port"),
            "{out}"
        );
    }
    assert!(line("tls").contains("TLS with https://"), "{out}");
    assert!(line("tls").contains("check http:// vs https://"), "{out}");
    target.stop().await;
}

/// `probe_on_start = false` switches the startup check off for one
/// destination (a network where an empty export is unwelcome, say): no
/// probe, no WARN, `/status` says it was skipped, `config show` prints it.
#[test]
fn probe_on_start_false_skips_the_startup_check() {
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        &config(&format!(
            "[destinations.quiet]\ntype = \"otlp\"\nprotocol = \"http/protobuf\"\nendpoint = \"http://{refused}\"\nprobe_on_start = false\n\
             [destinations.loud]\ntype = \"otlp\"\nprotocol = \"http/protobuf\"\nendpoint = \"http://{refused}\"\n"
        )),
    );
    let (code, out, err) = tb(&["config", "show"], &cfg, &[]);
    assert_eq!(code, 0, "{err}");
    let line = |key: &str| {
        out.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in:\n{out}"))
            .to_string()
    };
    assert!(
        line("destinations.quiet.probe_on_start").contains("false"),
        "{out}"
    );
    assert!(
        line("destinations.loud.probe_on_start").contains("true"),
        "{out}"
    );

    let mut d = Daemon::start(bin().arg("--config").arg(&cfg));
    d.wait_for(|v| v["destination"] == "loud" && message(v).starts_with("startup check failed"));
    let skipped = d.wait_for(|v| {
        v["destination"] == "quiet" && message(v).starts_with("startup check skipped")
    });
    assert_eq!(skipped["level"], "INFO");
    assert!(
        !d.seen
            .iter()
            .any(|v| v["destination"] == "quiet" && message(v).starts_with("startup check failed")),
        "{:#?}",
        d.seen
    );
    let (_, ready) = get(&format!("http://{}/readyz", d.admin_addr));
    assert!(
        ready.contains("destination loud: startup check failed"),
        "{ready}"
    );
    assert!(!ready.contains("destination quiet"), "{ready}");
    let (_, status) = get(&format!("http://{}/status", d.admin_addr));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let quiet = status["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "quiet")
        .unwrap()["startup_check"]
        .clone();
    assert_eq!(
        quiet["message"], "skipped (probe_on_start = false)",
        "{status}"
    );
    assert_eq!(d.stop(), 0);
}

/// Posts one small trace to a daemon's OTLP/HTTP receiver; true on 200.
fn post_one_span(http_addr: &str) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tracebridge::app::install_tls_provider();
        let body =
            prost::Message::encode_to_vec(&common::request(vec![common::span(3, 4, "chat")]));
        reqwest::Client::new()
            .post(format!("http://{http_addr}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
}

/// Errors read at export time (not by the startup probe, switched off
/// here) name the destination's setting, where its value came from, and
/// the fix: a wrong Opik key (401), a wrong Opik base path (404), a
/// connection refused (retried), each against the real binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_errors_name_the_setting_its_source_and_the_fix() {
    let fake = common::fake_opik::FakeOpik::start(Some("right-key"), "team").await;
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let quick = "probe_on_start = false\nbatch.flush_interval = \"50ms\"\nretry.initial_interval = \"100ms\"\nretry.max_interval = \"200ms\"\n";
    let cfg = write(
        dir.path(),
        "c.toml",
        &config(&format!(
            "[destinations.wrong_key]\ntype = \"opik\"\nurl = \"{url}\"\nworkspace = \"team\"\n{quick}\
             [destinations.wrong_path]\ntype = \"opik\"\nurl = \"{url}/v2\"\napi_key = \"right-key\"\nworkspace = \"team\"\n{quick}\
             [destinations.down]\ntype = \"otlp\"\nprotocol = \"http/protobuf\"\nendpoint = \"http://{refused}\"\n{quick}\
             [destinations.down_grpc]\ntype = \"otlp\"\nendpoint = \"http://{refused}\"\n{quick}",
            url = fake.url()
        )),
    );
    let path = cfg.display().to_string();
    let (failed, (retried, grpc)) = tokio::task::spawn_blocking(move || {
        let mut d = Daemon::start(
            bin()
                .arg("--config")
                .arg(&cfg)
                .env("OPIK_API_KEY", "not-the-key"),
        );
        assert!(post_one_span(&d.http_addr));
        let mut failed = Vec::new();
        for name in ["wrong_key", "wrong_path"] {
            failed.push(
                d.wait_for(|v| v["destination"] == name && message(v).starts_with("export failed")),
            );
        }
        let retried = d.wait_for(|v| {
            v["destination"] == "down" && message(v).starts_with("export attempt failed")
        });
        let grpc = d.wait_for(|v| {
            v["destination"] == "down_grpc" && message(v).starts_with("export attempt failed")
        });
        let _ = d.stop();
        (failed, (retried, grpc))
    })
    .await
    .unwrap();
    let key = message(&failed[0]);
    assert!(
        key.contains("answered 401")
            && key.contains(
                "the API key was rejected: destinations.wrong_key.api_key (env OPIK_API_KEY) is not a valid key for workspace \"team\""
            )
            && key.contains("tracebridge check --destination wrong_key"),
        "{key}"
    );
    assert!(!key.contains("not-the-key"), "the key is not shown: {key}");
    let path404 = message(&failed[1]);
    assert!(
        path404.contains("answered 404")
            && path404.contains(&format!(
                "destinations.wrong_path.url (file {path}) = \"{}/v2\" is not Opik's API base path",
                fake.url()
            ))
            && path404.contains("https://<host>/opik/api"),
        "{path404}"
    );
    let down = message(&retried);
    assert!(
        down.contains(&format!(
            "nothing is listening at http://{refused}/v1/traces"
        )) && down.contains("check the host and port")
            && down.contains(&format!(
                "the URL is destinations.down.endpoint (file {path})"
            )),
        "{down}"
    );
    assert_eq!(retried["level"], "WARN");
    let grpc = message(&grpc);
    assert!(
        grpc.contains(&format!(
            "gRPC export to http://{refused}: nothing is listening at http://{refused} ("
        )) && grpc.contains("Connection refused")
            && grpc.contains(&format!(
                "the URL is destinations.down_grpc.endpoint (file {path})"
            )),
        "{grpc}"
    );
}

/// `config show` prints the state directory the daemon will use, and why,
/// also when `state_dir` is not set.
#[test]
fn config_show_prints_the_effective_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        &config("[destinations.c]\ntype = \"console\"\n"),
    );
    let (code, out, err) = tb(
        &["config", "show"],
        &cfg,
        &[("STATE_DIRECTORY", "/var/lib/tb-test")],
    );
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("state_dir = "))
        .unwrap_or_else(|| panic!("no state_dir in:\n{out}"));
    assert!(
        line.contains("\"/var/lib/tb-test\"") && line.contains("# default: env STATE_DIRECTORY"),
        "{line}"
    );
    let set = write(
        dir.path(),
        "d.toml",
        &format!(
            "state_dir = \"/srv/tb\"\n{}",
            config("[destinations.c]\ntype = \"console\"\n")
        ),
    );
    let (_, out, _) = tb(
        &["config", "show"],
        &set,
        &[("STATE_DIRECTORY", "/var/lib/tb-test")],
    );
    let line = out.lines().find(|l| l.starts_with("state_dir = ")).unwrap();
    assert!(
        line.contains("\"/srv/tb\"") && line.contains("# file"),
        "{line}"
    );
}

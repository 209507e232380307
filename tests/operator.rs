//! What an operator meets when deploying: the real binary with the
//! environment Kubernetes gives it, misconfigurations caught at startup and
//! in `config check`, and the commands that inspect a running daemon.

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
    c
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
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
    let out = bin()
        .args(["config", "check", "--config"])
        .arg(&cfg)
        .envs(SERVICE_LINKS.iter().copied())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

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
    let out = bin()
        .args(["config", "check", "--config"])
        .arg(&cfg)
        .envs(SERVICE_LINKS.iter().copied())
        .env("TRACEBRIDGE_ADMIN__LISTN", "127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("admin.listn"), "{err}");
}

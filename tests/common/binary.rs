//! The real `tracebridge` binary, started on free loopback ports with a
//! config of the test's, for tests that need the process itself (restarts,
//! exit codes, `config check`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The ports a [`Binary`] listens on.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub grpc: u16,
    pub http: u16,
    pub admin: u16,
}

impl Ports {
    pub fn free() -> Self {
        Self {
            grpc: free_port(),
            http: free_port(),
            admin: free_port(),
        }
    }
}

/// Writes `<dir>/config.toml`: these ports, `<dir>/state`, and `rest`
/// (receiver auth, destinations) after the `[log]` table.
pub fn write_config(dir: &Path, p: Ports, receiver: &str, rest: &str) -> PathBuf {
    let text = format!(
        r#"shutdown_timeout = "5s"
state_dir = "{state}"
[receiver]
grpc_listen = "127.0.0.1:{grpc}"
http_listen = "127.0.0.1:{http}"
{receiver}
[admin]
listen = "127.0.0.1:{admin}"
[log]
level = "info"
{rest}"#,
        state = dir.join("state").display(),
        grpc = p.grpc,
        http = p.http,
        admin = p.admin,
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// A running `tracebridge run`; killed when dropped.
pub struct Binary {
    child: Child,
    log: PathBuf,
    pub ports: Ports,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Binary {
    /// Starts the binary on `config` and waits for `/readyz`.
    pub async fn start(config: &Path, ports: Ports, log: PathBuf) -> Self {
        tracebridge::app::install_tls_provider();
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_tracebridge"))
            .args(["run", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start tracebridge");
        let daemon = Self { child, log, ports };
        let client = reqwest::Client::new();
        let url = daemon.admin_url("/readyz");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            assert!(Instant::now() < deadline, "not ready:\n{}", daemon.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        daemon
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports.admin)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports.http)
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(self.admin_url("/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Sends a signal (`-HUP`, `-TERM`…).
    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args([sig, &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()));
    }

    /// SIGTERM, then waits for the exit.
    pub async fn sigterm(mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        let mut child = std::mem::replace(
            &mut self.child,
            Command::new("true").spawn().expect("spawn true"),
        );
        tokio::task::spawn_blocking(move || child.wait().expect("wait"))
            .await
            .expect("join")
    }
}

/// `tracebridge --config <config> <args>`, run to completion.
pub fn run_cli(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tracebridge"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run tracebridge")
}

//! Wiring and lifecycle: start every stage, then shut down in order.
//!
//! Shutdown (SIGTERM/SIGINT or [`Running::shutdown`]):
//! 1. `/readyz` turns 503 and the receivers stop accepting; idle and
//!    half-open connections close at once; requests in flight get half of
//!    `shutdown_timeout` to finish, then their connections are closed;
//! 2. the router is dropped, closing each destination's input;
//! 3. destinations flush their batchers and drain their queues;
//! 4. if that takes longer than `shutdown_timeout`, whatever is left is
//!    counted as dropped (`reason="shutdown"`) and the daemon exits anyway.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, Health};
use crate::config::Settings;
use crate::destination::{BuildError, StartupChecks};

use crate::budget::MemoryBudget;
use crate::receiver;
use crate::reload::{self, ReloadError, ReloadRequest, ReloadSummary, Reloader};
use crate::route::Router;
use crate::spool::{Spool, SpoolError, SpoolMode};
use crate::telemetry::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Receiver(#[from] receiver::ServeError),
    #[error(transparent)]
    Destination(#[from] BuildError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

/// A started daemon.
pub struct Running {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub metrics: Metrics,
    /// Filled by [`destination::spawn_startup_checks`]; shown on `/status` and `/readyz`.
    pub startup_checks: StartupChecks,
    reload: tokio::sync::mpsc::Sender<ReloadRequest>,
    shutdown: CancellationToken,
    supervisor: JoinHandle<()>,
}

impl Running {
    /// Begins the orderly shutdown described in the module docs.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Applies new settings to the destinations (see [`crate::reload`]).
    pub async fn reload(&self, settings: Settings) -> Result<ReloadSummary, ReloadError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.reload
            .send((settings, reply))
            .await
            .map_err(|_| ReloadError::ShuttingDown)?;
        answer.await.map_err(|_| ReloadError::ShuttingDown)?
    }

    /// Waits until the daemon has stopped.
    pub async fn stopped(self) {
        if let Err(e) = self.supervisor.await {
            tracing::error!(error = %e, "supervisor task failed");
        }
    }
}

/// Starts destinations, then binds and serves the receivers and the admin server.
pub async fn start(settings: Settings) -> Result<Running, StartError> {
    install_tls_provider();
    let metrics = Metrics::new();
    let health = Arc::new(Health::default());
    let hard_stop = CancellationToken::new();

    let budget = MemoryBudget::new(settings.memory_limit, &metrics);
    let spool = open_spool(&settings, &metrics)?;
    let mut router = spool.clone().map_or_else(Router::new, Router::spooled);
    let drains = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut status = Vec::new();
    let mut live = std::collections::BTreeMap::new();
    for dest in &settings.destinations {
        let started =
            reload::start_destination(dest, &metrics, &budget, &hard_stop, &drains).await?;
        status.push(admin::StatusEntry {
            name: dest.name.clone(),
            kind: dest.target.kind(),
            telemetry: started.live.telemetry.clone(),
        });
        let l = match &spool {
            Some(s) => reload::feed_from_spool(s, started)?,
            None => {
                router.add(started.live.route());
                started.live
            }
        };
        live.insert(dest.name.clone(), l);
    }
    router.set_tenants(settings.tenant_policy());
    router.set_taken(crate::destination::signals_taken(&settings.destinations));
    let router = Arc::new(router);
    let status: admin::StatusBoard = Arc::new(std::sync::RwLock::new(status));
    for name in &settings.disabled_destinations {
        tracing::info!(destination = %name, "disabled (enabled = false)");
    }

    let admin_listener = receiver::bind("admin.listen", settings.admin_listen).await?;
    let admin_addr = receiver::local_addr(&admin_listener, settings.admin_listen);
    let stop_receiving = CancellationToken::new();
    let receivers = receiver::serve(
        &settings.receiver,
        router.clone(),
        budget.clone(),
        &metrics,
        &stop_receiving,
    )
    .await?;
    let (grpc_addr, http_addr) = (receivers.grpc_addr, receivers.http_addr);
    let admin_stop = CancellationToken::new();
    let startup_checks = StartupChecks::default();
    let admin_server = axum::serve(
        admin_listener,
        admin::routes(
            metrics.clone(),
            health.clone(),
            status.clone(),
            startup_checks.clone(),
        ),
    )
    .with_graceful_shutdown(admin_stop.clone().cancelled_owned());
    let admin_task = tokio::spawn(async move {
        if let Err(e) = admin_server.await {
            tracing::error!(error = %e, "admin server failed");
        }
    });

    // Frees recycled buffers left unused (see `buffers`); ends with the runtime.
    tokio::spawn(async {
        let mut tick = tokio::time::interval(crate::buffers::IDLE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            crate::buffers::trim();
        }
    });

    health.set_ready();
    crate::systemd::notify("READY=1");
    tracing::info!(%grpc_addr, %http_addr, %admin_addr, "tracebridge {} ready", env!("CARGO_PKG_VERSION"));

    let shutdown = CancellationToken::new();
    let (reload, reload_requests) = tokio::sync::mpsc::channel(1);
    let reloader = Reloader {
        router,
        metrics: metrics.clone(),
        budget,
        hard_stop: hard_stop.clone(),
        drains: drains.clone(),
        board: status,
        checks: startup_checks.clone(),
        live,
        fixed: reload::fixed_part(&settings),
        spool: spool.clone(),
        drain_budget: settings.shutdown_timeout,
    }
    .spawn(reload_requests, shutdown.clone());
    let supervisor = tokio::spawn(
        Shutdown {
            requested: shutdown.clone(),
            health,
            stop_receiving,
            receivers: receivers.tasks,
            reloader,
            force_close: receivers.force_close,
            drains,
            spool,
            hard_stop,
            timeout: settings.shutdown_timeout,
            admin_stop,
            admin_task,
        }
        .run(),
    );
    Ok(Running {
        grpc_addr,
        http_addr,
        admin_addr,
        metrics,
        startup_checks,
        reload,
        shutdown,
        supervisor,
    })
}

/// Opens the durable spool, unless `spool.mode = "memory"`.
fn open_spool(settings: &Settings, metrics: &Metrics) -> Result<Option<Arc<Spool>>, SpoolError> {
    if settings.spool.mode == SpoolMode::Memory {
        tracing::info!("spool.mode = \"memory\": what is queued is lost if the daemon dies");
        return Ok(None);
    }
    let names: Vec<String> = settings
        .destinations
        .iter()
        .map(|d| d.name.clone())
        .collect();
    Spool::open(&settings.spool, &names, metrics).map(|s| Some(Arc::new(s)))
}

/// rustls needs one process-wide crypto provider; we use ring (no C
/// toolchain needed beyond a C compiler, no OpenSSL).
pub fn install_tls_provider() {
    // Fails only if one is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

struct Shutdown {
    requested: CancellationToken,
    health: Arc<Health>,
    stop_receiving: CancellationToken,
    receivers: Vec<JoinHandle<()>>,
    /// Holds the router until shutdown starts; ends on `requested`.
    reloader: JoinHandle<()>,
    force_close: CancellationToken,
    drains: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    spool: Option<Arc<Spool>>,
    hard_stop: CancellationToken,
    timeout: Duration,
    admin_stop: CancellationToken,
    admin_task: JoinHandle<()>,
}

impl Shutdown {
    async fn run(self) {
        self.requested.cancelled().await;
        let started = tokio::time::Instant::now();
        let deadline = started + self.timeout;
        self.health.set_draining();
        crate::systemd::notify("STOPPING=1");
        crate::destination::opik::redis_store::shutdown_started();
        tracing::info!(timeout = ?self.timeout, "shutting down: receivers stop, destinations drain");
        self.stop_receiving.cancel();
        // Idle and half-open connections close at once; requests being read
        // get half the budget, then their connections are closed (they were
        // not acknowledged, so their clients retry elsewhere).
        let grace_end = started + self.timeout / 2;
        let mut still_open = Vec::new();
        for mut receiver in self.receivers {
            if tokio::time::timeout_at(grace_end, &mut receiver)
                .await
                .is_err()
            {
                still_open.push(receiver);
            }
        }
        if !still_open.is_empty() {
            tracing::warn!(
                "requests still being received after {:?}; closing their connections",
                self.timeout / 2
            );
            self.force_close.cancel();
        }
        for mut receiver in still_open {
            if tokio::time::timeout_at(deadline, &mut receiver)
                .await
                .is_err()
            {
                tracing::warn!("a receiver did not stop in time; aborting it");
                receiver.abort();
            }
        }
        // The receivers and the reloader held the last references to the
        // router; with them gone every destination's input is closed and the
        // drain begins (with the spool: once each reader has reached the end
        // of the log).
        let _ = self.reloader.await;
        if let Some(spool) = &self.spool {
            spool.close_intake();
        }
        let drains = std::mem::take(
            &mut *self
                .drains
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let mut all_drained = tokio::spawn(async move {
            for d in drains {
                let _ = d.await;
            }
        });
        let drained_in_time = tokio::time::timeout_at(deadline, &mut all_drained)
            .await
            .is_ok();
        if !drained_in_time {
            tracing::warn!(
                "shutdown_timeout of {:?} reached; what is unsent stays in the spool for the next start (spool.mode = \"memory\": dropped, counted with reason=\"shutdown\")",
                self.timeout
            );
            self.hard_stop.cancel();
            let _ = all_drained.await;
        }
        if let Some(spool) = self.spool {
            stop_spool(spool).await;
        }
        self.admin_stop.cancel();
        let _ = self.admin_task.await;
        tracing::info!(elapsed = ?started.elapsed(), "tracebridge stopped");
    }
}

/// Saves the cursors and stops the spool's writer; says what is left for the next start.
async fn stop_spool(spool: Arc<Spool>) {
    let stopped = tokio::task::spawn_blocking(move || {
        spool.stop();
        spool.backlog()
    })
    .await;
    match stopped {
        Ok(backlog) => {
            for (destination, bytes) in backlog.into_iter().filter(|(_, b)| *b > 0) {
                tracing::info!(%destination, bytes, "left in the spool for the next start");
            }
        }
        Err(e) => tracing::error!(error = %e, "stopping the spool failed"),
    }
}

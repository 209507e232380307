//! Config reload (SIGHUP): destinations added, removed or changed without a
//! restart and without losing what they hold.
//!
//! A destination whose settings did not change keeps running untouched. A
//! new or changed one is started first; then the router switches to the new
//! set in one step; a removed or replaced one loses its input and drains as
//! it would at shutdown (its batcher flushes, its queue is sent), so nothing
//! it accepted is lost. If any new destination cannot start, the reload is
//! abandoned and the running set stays. Receiver, admin, log and shutdown
//! settings need a restart; a change to them is logged.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::{StatusBoard, StatusEntry};
use crate::config::Settings;
use crate::destination::{self, BuildError, DestinationSettings, StartupChecks};
use crate::export::Delivery;
use crate::route::Router;
use crate::telemetry::{DestinationTelemetry, Metrics};

/// What a reload changed, by destination name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
    /// Settings that changed but only apply after a restart.
    pub needs_restart: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}; the running configuration stays")]
    Start(#[from] BuildError),
    #[error("the daemon is shutting down")]
    ShuttingDown,
    #[error(
        "destinations cannot be reloaded while the durable spool is on (each destination holds a cursor in it); restart to apply, or set spool.mode = \"memory\"; the running configuration stays"
    )]
    Spooled,
}

/// A request to apply new settings, with where to answer.
pub type ReloadRequest = (
    Settings,
    oneshot::Sender<Result<ReloadSummary, ReloadError>>,
);

/// One running destination.
pub struct LiveDestination {
    pub settings: DestinationSettings,
    pub input: mpsc::Sender<Delivery>,
    pub telemetry: DestinationTelemetry,
}

/// Owns the running destinations between reloads.
pub struct Reloader {
    pub router: Arc<Router>,
    pub metrics: Metrics,
    /// The shutdown deadline every destination shares.
    pub hard_stop: CancellationToken,
    /// Every destination's "drained" handle, old and new: shutdown waits for all.
    pub drains: Arc<Mutex<Vec<JoinHandle<()>>>>,
    pub board: StatusBoard,
    pub checks: StartupChecks,
    pub live: BTreeMap<String, LiveDestination>,
    /// The settings a reload cannot apply, as last started.
    pub fixed: String,
    /// Destinations read from the durable spool: not reloadable yet.
    pub spooled: bool,
}

/// The part of [`Settings`] that needs a restart, for comparison.
pub fn fixed_part(s: &Settings) -> String {
    format!(
        "{:?} {:?} {:?} {:?}",
        s.receiver, s.admin_listen, s.log, s.shutdown_timeout
    )
}

impl Reloader {
    /// Serves reload requests until `stop` (the start of shutdown), then
    /// lets go of the router so that destinations' inputs can close.
    pub fn spawn(
        mut self,
        mut requests: mpsc::Receiver<ReloadRequest>,
        stop: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let (settings, reply) = tokio::select! {
                    _ = stop.cancelled() => break,
                    request = requests.recv() => match request {
                        Some(r) => r,
                        None => break,
                    },
                };
                let _ = reply.send(self.apply(settings).await);
            }
        })
    }

    async fn apply(&mut self, new: Settings) -> Result<ReloadSummary, ReloadError> {
        if self.spooled {
            return Err(ReloadError::Spooled);
        }
        let mut summary = ReloadSummary {
            needs_restart: fixed_part(&new) != self.fixed,
            ..ReloadSummary::default()
        };
        let mut started = BTreeMap::new();
        for d in &new.destinations {
            match self.live.get(&d.name) {
                Some(live) if live.settings == *d => summary.unchanged.push(d.name.clone()),
                other => {
                    let handle =
                        destination::start(d, &self.metrics, self.hard_stop.clone()).await?;
                    let list = if other.is_some() {
                        &mut summary.changed
                    } else {
                        &mut summary.added
                    };
                    list.push(d.name.clone());
                    started.insert(d.name.clone(), (d.clone(), handle));
                }
            }
        }
        let mut next = BTreeMap::new();
        for d in &new.destinations {
            let live = match started.remove(&d.name) {
                Some((settings, handle)) => {
                    self.lock_drains().push(handle.finished);
                    LiveDestination {
                        settings,
                        input: handle.input,
                        telemetry: handle.telemetry,
                    }
                }
                None => match self.live.remove(&d.name) {
                    Some(live) => live,
                    None => continue,
                },
            };
            next.insert(d.name.clone(), live);
        }
        summary.removed = self
            .live
            .keys()
            .filter(|n| !next.contains_key(*n))
            .cloned()
            .collect();
        self.router.replace(
            next.values()
                .map(|l| (l.input.clone(), l.telemetry.clone()))
                .collect(),
        );
        *self.board.write().unwrap_or_else(PoisonError::into_inner) = next
            .values()
            .map(|l| StatusEntry {
                name: l.settings.name.clone(),
                kind: l.settings.target.kind(),
                telemetry: l.telemetry.clone(),
            })
            .collect();
        // The replaced and removed destinations' inputs are dropped here: they drain.
        self.live = next;
        for name in summary.removed.iter().chain(&summary.changed) {
            self.checks.forget(name);
        }
        let to_check: Vec<DestinationSettings> = summary
            .added
            .iter()
            .chain(&summary.changed)
            .filter_map(|n| self.live.get(n).map(|l| l.settings.clone()))
            .collect();
        destination::spawn_startup_checks(to_check, self.checks.clone());
        Ok(summary)
    }

    fn lock_drains(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.drains.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

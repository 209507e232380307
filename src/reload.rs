//! Config reload (SIGHUP): destinations added, removed or changed without a
//! restart and without losing what they hold.
//!
//! A destination whose settings did not change keeps running untouched. A
//! new or changed one is built and started first; if any cannot start, the
//! reload is abandoned and the running set stays. Then:
//!
//! - **In memory** (`spool.mode = "memory"`): the router switches to the
//!   new set in one step; a removed or replaced destination loses its input
//!   and drains as it would at shutdown (its batcher flushes, its queue is
//!   sent), so nothing it accepted is lost.
//! - **With the durable spool** (the default), each destination reads the
//!   log from its own cursor:
//!   - an *added* destination gets a cursor at the current end of the log:
//!     it receives what is accepted from the reload on, not the backlog
//!     the others still hold (which may be hours old, and was accepted
//!     when this destination was not configured);
//!   - a *removed* destination's reader stops, its pipeline delivers what
//!     it had already taken (within `shutdown_timeout`, then it is
//!     stopped), and its cursor is removed, so segments only it still
//!     needed are deleted; what it had not read is given up, and logged;
//!   - a *changed* destination keeps its place: the old reader stops, the
//!     old pipeline delivers what it took (within `shutdown_timeout`, then
//!     it is stopped), and the new pipeline reads on from where the old one
//!     finished. Nothing acknowledged is lost; what the old pipeline had
//!     taken but not finished when stopped is sent again (at-least-once,
//!     bounded by what one pipeline holds: its queue and batch).
//!
//! Receiver, admin, log, spool and shutdown settings need a restart; a
//! change to them is logged.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::admin::{StatusBoard, StatusEntry};
use crate::budget::MemoryBudget;
use crate::config::Settings;
use crate::destination::{self, BuildError, DestinationSettings, StartupChecks};
use crate::export::{Delivery, Progress};
use crate::route::{RouteTo, Router};
use crate::spool::{Feed, ReaderHandle, Spool, SpoolError};
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
    #[error("{0}; the running configuration stays")]
    Spool(#[from] SpoolError),
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

/// A request to apply new settings, with where to answer.
pub type ReloadRequest = (
    Settings,
    oneshot::Sender<Result<ReloadSummary, ReloadError>>,
);

/// One running destination.
pub struct LiveDestination {
    pub settings: DestinationSettings,
    /// Its input (with the spool, its reader holds the other sender).
    pub input: mpsc::Sender<Delivery>,
    pub telemetry: DestinationTelemetry,
    /// Stops this destination alone at once (a child of the shutdown deadline).
    pub stop: CancellationToken,
    /// True once its pipeline has finished.
    pub finished: watch::Receiver<bool>,
    /// Its reader of the durable spool.
    pub reader: Option<ReaderHandle>,
}

impl LiveDestination {
    /// How the in-memory router reaches it.
    pub fn route(&self) -> RouteTo {
        RouteTo {
            input: self.input.clone(),
            telemetry: self.telemetry.clone(),
            on_full: self.settings.export.on_full(),
        }
    }
}

/// A destination started but not yet fed.
pub struct Started {
    pub live: LiveDestination,
    pub progress: Arc<Progress>,
    /// What its spool reader charges decoded records to.
    pub budget: Arc<MemoryBudget>,
}

/// Starts destination `d`; shutdown waits for it through `drains`.
pub async fn start_destination(
    d: &DestinationSettings,
    metrics: &Metrics,
    budget: &Arc<MemoryBudget>,
    hard_stop: &CancellationToken,
    drains: &Mutex<Vec<JoinHandle<()>>>,
) -> Result<Started, BuildError> {
    let stop = hard_stop.child_token();
    let handle = destination::start(d, metrics, budget, stop.clone()).await?;
    let (done, finished) = watch::channel(false);
    let pipeline = handle.finished;
    drains
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(tokio::spawn(async move {
            let _ = pipeline.await;
            let _ = done.send(true);
        }));
    Ok(Started {
        live: LiveDestination {
            settings: d.clone(),
            input: handle.input,
            telemetry: handle.telemetry,
            stop,
            finished,
            reader: None,
        },
        progress: handle.progress,
        budget: budget.clone(),
    })
}

/// Starts `started`'s spool reader; the cursor must exist.
pub fn feed_from_spool(spool: &Spool, started: Started) -> Result<LiveDestination, SpoolError> {
    let Started {
        mut live,
        progress,
        budget,
    } = started;
    live.reader = spool.attach(
        &live.settings.name,
        Feed {
            progress,
            input: live.input.clone(),
            telemetry: live.telemetry.clone(),
            on_full: live.settings.export.on_full(),
            budget,
        },
        live.stop.child_token(),
    )?;
    Ok(live)
}

/// Owns the running destinations between reloads.
pub struct Reloader {
    pub router: Arc<Router>,
    pub metrics: Metrics,
    pub budget: Arc<MemoryBudget>,
    /// The shutdown deadline every destination shares.
    pub hard_stop: CancellationToken,
    /// Every destination's "drained" handle, old and new: shutdown waits for all.
    pub drains: Arc<Mutex<Vec<JoinHandle<()>>>>,
    pub board: StatusBoard,
    pub checks: StartupChecks,
    pub live: BTreeMap<String, LiveDestination>,
    /// The settings a reload cannot apply, as last started.
    pub fixed: String,
    /// The durable spool the destinations read from (`None`: in memory).
    pub spool: Option<Arc<Spool>>,
    /// How long a retired destination may take to deliver what it holds
    /// (`shutdown_timeout`) before it is stopped.
    pub drain_budget: Duration,
}

/// The part of [`Settings`] that needs a restart, for comparison.
pub fn fixed_part(s: &Settings) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {:?}",
        s.receiver, s.admin_listen, s.log, s.shutdown_timeout, s.spool
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
        let mut summary = ReloadSummary {
            needs_restart: fixed_part(&new) != self.fixed,
            ..ReloadSummary::default()
        };
        // Build and start every new or changed destination before anything
        // changes, so one that cannot start leaves the running set as it is.
        let mut started = BTreeMap::new();
        for d in &new.destinations {
            match self.live.get(&d.name) {
                Some(live) if live.settings == *d => summary.unchanged.push(d.name.clone()),
                other => {
                    let s = start_destination(
                        d,
                        &self.metrics,
                        &self.budget,
                        &self.hard_stop,
                        &self.drains,
                    )
                    .await?;
                    let list = if other.is_some() {
                        &mut summary.changed
                    } else {
                        &mut summary.added
                    };
                    list.push(d.name.clone());
                    started.insert(d.name.clone(), s);
                }
            }
        }
        summary.removed = self
            .live
            .keys()
            .filter(|n| !new.destinations.iter().any(|d| &d.name == *n))
            .cloned()
            .collect();
        let mut next = match self.spool.clone() {
            None => self.switch_in_memory(&new, started),
            Some(spool) => self.switch_spooled(&spool, &summary, started).await?,
        };
        self.router.set_tenants(new.tenant_policy());
        // Keep the configured order for `/status`.
        let mut board = Vec::new();
        let mut live = BTreeMap::new();
        for d in &new.destinations {
            if let Some(l) = next.remove(&d.name) {
                board.push(StatusEntry {
                    name: l.settings.name.clone(),
                    kind: l.settings.target.kind(),
                    telemetry: l.telemetry.clone(),
                });
                live.insert(d.name.clone(), l);
            }
        }
        *self.board.write().unwrap_or_else(PoisonError::into_inner) = board;
        self.live = live;
        self.router
            .set_taken(destination::signals_taken(&new.destinations));
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

    /// In memory: the router switches to the new set in one step; the
    /// replaced and removed destinations' inputs are dropped here, so they
    /// drain in the background.
    fn switch_in_memory(
        &mut self,
        new: &Settings,
        mut started: BTreeMap<String, Started>,
    ) -> BTreeMap<String, LiveDestination> {
        let mut next = BTreeMap::new();
        for d in &new.destinations {
            let live = match started.remove(&d.name) {
                Some(s) => s.live,
                None => match self.live.remove(&d.name) {
                    Some(live) => live,
                    None => continue,
                },
            };
            next.insert(d.name.clone(), live);
        }
        self.router
            .replace(next.values().map(LiveDestination::route).collect());
        self.live.clear();
        next
    }

    /// With the durable spool: added destinations get a cursor at the end
    /// of the log; removed and replaced ones stop reading and deliver what
    /// they took (all at once, each within the drain budget); then the
    /// replacements read on from where their predecessors finished, and the
    /// removed destinations' cursors go.
    async fn switch_spooled(
        &mut self,
        spool: &Arc<Spool>,
        summary: &ReloadSummary,
        mut started: BTreeMap<String, Started>,
    ) -> Result<BTreeMap<String, LiveDestination>, ReloadError> {
        for (i, name) in summary.added.iter().enumerate() {
            if let Err(e) = spool.add_destination(name).await {
                for added in &summary.added[..i] {
                    let _ = spool.remove_destination(added).await;
                }
                return Err(e.into());
            }
        }
        let mut next = BTreeMap::new();
        for name in &summary.added {
            if let Some(s) = started.remove(name) {
                next.insert(name.clone(), feed_from_spool(spool, s)?);
            }
        }
        let mut retiring = JoinSet::new();
        for name in summary.removed.iter().chain(&summary.changed) {
            if let Some(old) = self.live.remove(name) {
                let why = if summary.changed.contains(name) {
                    Retired::Changed
                } else {
                    Retired::Removed
                };
                retiring.spawn(retire(old, why, self.drain_budget));
            }
        }
        while let Some(r) = retiring.join_next().await {
            if let Err(e) = r {
                tracing::error!(error = %e, "retiring a destination failed");
            }
        }
        for name in &summary.changed {
            spool.restart_destination(name).await?;
            if let Some(s) = started.remove(name) {
                next.insert(name.clone(), feed_from_spool(spool, s)?);
            }
        }
        for name in &summary.removed {
            let unread = spool.remove_destination(name).await?;
            if unread > 0 {
                tracing::warn!(
                    destination = %name,
                    unread_bytes = unread,
                    "removed by the config reload with spooled requests it had not read; they are given up for it and counted as dropped (reason destination_stopped); the other destinations keep theirs"
                );
            }
        }
        next.append(&mut self.live);
        Ok(next)
    }
}

/// Why a destination stops during a reload.
#[derive(Debug, Clone, Copy)]
enum Retired {
    Removed,
    Changed,
}

/// Stops a destination's reader, then lets its pipeline deliver what it
/// took; after `budget`, stops it (what it had not finished stays in the
/// spool: read again by its replacement, or given up if it was removed).
async fn retire(mut old: LiveDestination, why: Retired, budget: Duration) {
    let name = old.settings.name.clone();
    if let Some(reader) = old.reader.take() {
        reader.stop().await;
    }
    let LiveDestination {
        input,
        stop,
        mut finished,
        ..
    } = old;
    drop(input);
    let drained = tokio::time::timeout(budget, finished.wait_for(|done| *done))
        .await
        .is_ok();
    if !drained {
        let what = match why {
            Retired::Changed => "the new settings send it again",
            Retired::Removed => "it is given up",
        };
        tracing::warn!(
            destination = %name,
            "config reload: the old pipeline did not deliver what it held within shutdown_timeout ({budget:?}); stopping it ({what})"
        );
        stop.cancel();
        let _ = finished.wait_for(|done| *done).await;
    }
}

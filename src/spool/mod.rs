//! The durable spool: every acknowledged request is appended, once, to a log
//! of segment files under `state_dir`, and each destination reads that log
//! at its own pace from its own cursor.
//!
//! ```text
//! receivers ─append (group commit, fsync policy)─► writer thread ─► NNNN.seg NNNN.seg …
//!                                                        │ head
//!            destination "opik"  ◄─ reader thread ◄──────┤  cursor: cursors/opik
//!            destination "arize" ◄─ reader thread ◄──────┘  cursor: cursors/arize
//! ```
//!
//! - A request is acknowledged only once its record is written (and, with
//!   `fsync = "always"`, on disk).
//! - A destination's cursor moves when every batch made from a record is
//!   finished ([`crate::export::Progress`]); it is saved every 100 ms, so a
//!   crash replays at most that much again (at-least-once).
//! - A segment is removed once every destination is past it.
//! - A destination more than `max_bytes` behind refuses appends (the
//!   receivers answer 503 / `UNAVAILABLE`) when its `queue.on_full` is
//!   `backpressure`; with `drop` it drops its oldest segment (counted as
//!   `dropped{reason="spool_full"}`) unless every destination is that far
//!   behind, when appends are refused too.
//! - Memory holds an index entry per segment and one read buffer per
//!   destination, whatever the backlog.
//! - A config reload changes the set of cursors through the writer (the
//!   only thread that changes files): an added destination gets a cursor
//!   at the current end of the log ([`Spool::add_destination`]); a changed
//!   one gets a fresh cursor where the old pipeline finished, once that
//!   pipeline has stopped ([`Spool::restart_destination`]); a removed one's
//!   cursor and file go, and the segments only it held are then removed
//!   ([`Spool::remove_destination`]).

mod config;
mod cursor;
mod reader;
pub mod record;
mod segment;
mod writer;

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

pub(crate) use config::validate;
pub use config::{FsyncPolicy, SpoolConfig, SpoolMode, SpoolSettings, default_state_dir};
pub use segment::SegMeta;

use crate::budget::MemoryBudget;
use crate::config::OnFull;
use crate::export::{Delivery, Progress};
use crate::route::ReceivedTraces;
use crate::telemetry::reason::DropReason;
use crate::telemetry::{DestinationTelemetry, Metrics, SpoolTelemetry};

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool: cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "spool: {} is in use by another tracebridge (state_dir must not be shared); stop it or give this one its own state_dir",
        path.display()
    )]
    Locked { path: PathBuf },
}

impl SpoolError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What a destination's reader feeds, and how the destination wants a
/// full backlog handled.
pub struct Feed {
    pub progress: Arc<Progress>,
    pub input: mpsc::Sender<Delivery>,
    pub telemetry: DestinationTelemetry,
    pub on_full: OnFull,
    /// Records decoded from the files are charged to it.
    pub budget: Arc<MemoryBudget>,
}

/// Why an append was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// Every destination is `spool.max_bytes` behind, or the one named,
    /// whose `queue.on_full` is `backpressure`.
    #[error("{}", match .0 {
        Some(name) => format!("destination {name} is spool.max_bytes behind (queue.on_full = \"backpressure\")"),
        None => "every destination's spool is full (spool.max_bytes)".to_string(),
    })]
    Full(Option<String>),
    #[error("the spool's writer is busy")]
    Busy,
    #[error("the spool is closed")]
    Closed,
    #[error("spool write failed: {0}")]
    Io(String),
}

/// One destination's place in the log.
pub struct DestCursor {
    pub name: String,
    /// Where this destination started at open (its saved cursor).
    start: u64,
    /// Set by drop-oldest: everything below was finished or dropped.
    floor: AtomicU64,
    /// The reader's position. The reader holds the lock while it reads a
    /// record; drop-oldest holds it while it moves the reader past what
    /// it drops, so no record is both delivered and counted as dropped.
    reading: Mutex<ReadPos>,
    /// Finished records, from the pipeline (attached once it runs).
    progress: Mutex<Option<Arc<Progress>>>,
    /// Where drops are counted (attached with the reader).
    telemetry: Mutex<Option<DestinationTelemetry>>,
    /// `queue.on_full = "backpressure"`: when this destination is
    /// `max_bytes` behind, appends are refused instead of its oldest
    /// segment being dropped (set with the reader).
    backpressure: std::sync::atomic::AtomicBool,
}

/// Where a reader is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadPos {
    /// The next record it will read.
    pub pos: u64,
    /// Spans it already read from the segment holding `pos`.
    pub spans_in_segment: u64,
}

impl DestCursor {
    fn new(name: String, start: u64) -> Self {
        Self {
            name,
            start,
            floor: AtomicU64::new(start),
            reading: Mutex::new(ReadPos {
                pos: start,
                spans_in_segment: 0,
            }),
            progress: Mutex::new(None),
            telemetry: Mutex::new(None),
            backpressure: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether a full backlog refuses appends (see `backpressure`).
    pub(crate) fn pushes_back(&self) -> bool {
        self.backpressure.load(Ordering::Acquire)
    }

    /// Runs `f` with the destination's telemetry, once attached.
    pub(crate) fn with_telemetry(&self, f: impl FnOnce(&DestinationTelemetry)) {
        let t = self.telemetry.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = t.as_ref() {
            f(t);
        }
    }

    pub(crate) fn reading(&self) -> std::sync::MutexGuard<'_, ReadPos> {
        self.reading.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything before this position is finished or dropped.
    pub fn committed(&self) -> u64 {
        let done = self
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|p| p.frontier())
            .unwrap_or(self.start);
        done.max(self.floor.load(Ordering::Acquire))
    }

    /// Drop-oldest: everything below `floor` is given up. Spans the reader
    /// had not read yet are counted as dropped, and the reader moves on.
    fn raise_floor(&self, floor: u64, segments: &BTreeMap<u64, SegMeta>) {
        let mut r = self.reading();
        if r.pos < floor {
            let spans = unread_spans(&r, floor, segments);
            *r = ReadPos {
                pos: floor,
                spans_in_segment: 0,
            };
            self.with_telemetry(|t| t.dropped(DropReason::SpoolFull, spans as usize));
        }
        self.floor.fetch_max(floor, Ordering::AcqRel);
    }

    /// A removed destination: the spans its reader had not read (up to
    /// `end`) are counted as dropped (`destination_stopped`).
    fn give_up(&self, end: u64, segments: &BTreeMap<u64, SegMeta>) {
        let r = self.reading();
        let spans = unread_spans(&r, end, segments);
        if spans > 0 {
            self.with_telemetry(|t| t.dropped(DropReason::DestinationStopped, spans as usize));
        }
    }
}

/// Spans in the log between a reader's position and `end`.
fn unread_spans(r: &ReadPos, end: u64, segments: &BTreeMap<u64, SegMeta>) -> u64 {
    segments
        .range(..end)
        .map(|(_, m)| m)
        .filter(|m| m.end > r.pos)
        .map(|m| {
            if m.start <= r.pos {
                m.spans.saturating_sub(r.spans_in_segment)
            } else {
                m.spans
            }
        })
        .sum()
}

/// What readers watch: the end of the readable log, and whether more can come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub pos: u64,
    /// No more appends (shutdown): readers finish at `pos`.
    pub closed: bool,
}

pub(crate) struct Shared {
    pub dir: PathBuf,
    pub settings: SpoolSettings,
    pub head: watch::Sender<Head>,
    pub segments: Mutex<BTreeMap<u64, SegMeta>>,
    /// The destinations' cursors. Replaced whole, by the writer only (a
    /// config reload adds, restarts or removes cursors through it).
    pub dests: RwLock<Arc<Vec<Arc<DestCursor>>>>,
    pub telemetry: SpoolTelemetry,
    /// The log position up to which records are replays of a previous run.
    pub replay_until: u64,
    /// Records just written, still decoded (see [`Recent`]).
    pub recent: Mutex<Recent>,
    /// Set while appends are refused for `max_bytes` (the writer's last
    /// verdict, checked again every housekeeping): receivers answer 503 /
    /// `UNAVAILABLE` before reading a body the spool would refuse.
    pub refusing: Mutex<Option<AppendError>>,
}

impl Shared {
    fn segments(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, SegMeta>> {
        self.segments.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cursors as they are now.
    pub(crate) fn dests(&self) -> Arc<Vec<Arc<DestCursor>>> {
        self.dests.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn cursor(&self, name: &str) -> Option<Arc<DestCursor>> {
        self.dests().iter().find(|d| d.name == name).cloned()
    }

    pub(crate) fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The smallest position a reader is at: records before it are read.
    pub(crate) fn slowest_reader(&self) -> u64 {
        self.dests()
            .iter()
            .map(|d| d.reading().pos)
            .min()
            .unwrap_or(u64::MAX)
    }
}

/// Encoded bytes of the records [`Recent`] keeps, at most. Readers that keep
/// up take each request from here, so the request received is handed to
/// every destination as it was decoded at the receiver; a reader that falls
/// further behind reads (and decodes) from the segment files instead.
const RECENT_BYTES: u64 = 8 << 20;

/// The last records written, as the receiver decoded them, by position.
#[derive(Default)]
pub(crate) struct Recent {
    records: std::collections::VecDeque<RecentRecord>,
    bytes: u64,
}

struct RecentRecord {
    start: u64,
    len: u64,
    traces: Arc<ReceivedTraces>,
}

impl Recent {
    /// Keeps the record written at `start`, forgetting those every reader
    /// is past (`read_up_to`) and the oldest beyond [`RECENT_BYTES`].
    fn push(&mut self, start: u64, len: u64, traces: Arc<ReceivedTraces>, read_up_to: u64) {
        self.forget_read(read_up_to);
        self.records.push_back(RecentRecord { start, len, traces });
        self.bytes += len;
        while self.bytes > RECENT_BYTES && self.records.len() > 1 {
            self.pop();
        }
    }

    /// Forgets the records every reader is past (`read_up_to`), so that
    /// what they hold (and charge to the memory budget) goes as soon as
    /// the last destination has taken it.
    pub(crate) fn forget_read(&mut self, read_up_to: u64) {
        while self
            .records
            .front()
            .is_some_and(|r| r.start + r.len <= read_up_to)
        {
            self.pop();
        }
    }

    fn pop(&mut self) {
        if let Some(r) = self.records.pop_front() {
            self.bytes -= r.len;
        }
    }

    /// The record written at `pos`, and its size in the log.
    pub(crate) fn get(&self, pos: u64) -> Option<(u64, Arc<ReceivedTraces>)> {
        let i = self.records.binary_search_by_key(&pos, |r| r.start).ok()?;
        let r = &self.records[i];
        Some((r.len, r.traces.clone()))
    }
}

/// The spool. Shared by the router (appends) and the app (lifecycle).
pub struct Spool {
    shared: Arc<Shared>,
    tx: std::sync::mpsc::SyncSender<writer::Msg>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    _lock: File,
}

impl Spool {
    /// Opens (or creates) the spool: locks the directory, validates every
    /// segment (truncating a torn tail), loads each destination's cursor and
    /// starts the writer thread.
    pub fn open(
        settings: &SpoolSettings,
        destinations: &[String],
        metrics: &Metrics,
    ) -> Result<Self, SpoolError> {
        let dir = settings.dir.clone();
        std::fs::create_dir_all(cursor::dir(&dir))
            .map_err(|e| SpoolError::io("create", &dir, e))?;
        let lock = lock(&dir)?;
        let telemetry = SpoolTelemetry::new(metrics, destinations);
        let (mut segments, report) = segment::scan(&dir)?;
        telemetry.scanned(report.torn, report.corrupt);
        let saved = cursor::load_all(&dir, destinations)?;
        let last_end = segments.values().next_back().map_or(0, |m| m.end);
        let head = saved.values().flatten().copied().fold(last_end, u64::max);
        let oldest = segments.keys().next().copied().unwrap_or(head);
        let dests: Vec<Arc<DestCursor>> = destinations
            .iter()
            .map(|name| {
                // A new destination starts with what arrives from now on.
                let pos = saved.get(name).copied().flatten().unwrap_or(head);
                Arc::new(DestCursor::new(name.clone(), pos.clamp(oldest, head)))
            })
            .collect();
        let active = writer::Active::create(&dir, head)?;
        segments.insert(head, SegMeta::empty(head));
        let backlog: Vec<(String, u64)> = dests
            .iter()
            .map(|d| (d.name.clone(), head - d.start))
            .collect();
        tracing::info!(
            dir = %dir.display(),
            fsync = ?settings.fsync,
            segments = segments.len(),
            ?backlog,
            "spool open: replaying what each destination had not finished"
        );
        let (head_tx, _) = watch::channel(Head {
            pos: head,
            closed: false,
        });
        let shared = Arc::new(Shared {
            dir,
            settings: settings.clone(),
            head: head_tx,
            segments: Mutex::new(segments),
            dests: RwLock::new(Arc::new(dests)),
            telemetry,
            replay_until: head,
            recent: Mutex::default(),
            refusing: Mutex::default(),
        });
        let (tx, rx) = std::sync::mpsc::sync_channel(writer::CAPACITY);
        let w = writer::Writer::new(shared.clone(), active);
        let handle = std::thread::Builder::new()
            .name("spool-writer".into())
            .spawn(move || w.run(rx))
            .map_err(|e| SpoolError::io("start the writer for", &shared.dir, e))?;
        Ok(Self {
            shared,
            tx,
            writer: Mutex::new(Some(handle)),
            _lock: lock,
        })
    }

    /// Appends one request; returns once it is in the spool (on disk with
    /// `fsync = "always"`). The decoded request is kept a little while for
    /// the readers that keep up ([`Recent`]).
    pub async fn append(&self, mut traces: ReceivedTraces) -> Result<(), AppendError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let frame = record::frame(&mut traces, now);
        let (reply, done) = oneshot::channel();
        let msg = writer::Msg::Append(writer::Append {
            frame,
            spans: traces.span_count as u64,
            received_unix_nano: now,
            traces: Some(Arc::new(traces)),
            reply,
        });
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(_)) => return Err(AppendError::Busy),
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                return Err(AppendError::Closed);
            }
        }
        done.await.unwrap_or(Err(AppendError::Closed))
    }

    /// Why appends are being refused for `spool.max_bytes`, if they are:
    /// a request arriving now would be refused too.
    pub fn refusing(&self) -> Option<AppendError> {
        self.shared
            .refusing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Starts the reader that feeds destination `name`'s pipeline.
    /// Cancelling `stop` stops this reader alone (a reload retiring the
    /// destination); [`ReaderHandle::stopped`] tells when it has let go of
    /// `input`. `None` if the spool holds no cursor for `name`.
    pub fn attach(
        &self,
        name: &str,
        feed: Feed,
        stop: CancellationToken,
    ) -> Result<Option<ReaderHandle>, SpoolError> {
        let Feed {
            progress,
            input,
            telemetry,
            on_full,
            budget,
        } = feed;
        let Some(cursor) = self.shared.cursor(name) else {
            return Ok(None);
        };
        cursor
            .backpressure
            .store(on_full == OnFull::Backpressure, Ordering::Release);
        *cursor.progress.lock().unwrap_or_else(|p| p.into_inner()) = Some(progress);
        telemetry
            .status()
            .spool
            .enabled
            .store(true, Ordering::Relaxed);
        *cursor.telemetry.lock().unwrap_or_else(|p| p.into_inner()) = Some(telemetry);
        let r = reader::Reader::new(self.shared.clone(), cursor, input, budget, stop.clone());
        let (done, stopped) = oneshot::channel();
        std::thread::Builder::new()
            .name(format!("spool-read-{name}"))
            .spawn(move || {
                r.run();
                let _ = done.send(());
            })
            .map_err(|e| SpoolError::io("start a reader for", &self.shared.dir, e))?;
        Ok(Some(ReaderHandle { stop, stopped }))
    }

    /// A config reload added destination `name`: it gets a cursor at the
    /// current end of the log (it receives what is accepted from now on,
    /// not the backlog other destinations still hold), saved at once so a
    /// crash does not lose its start. Attach its reader next.
    pub async fn add_destination(&self, name: &str) -> Result<(), SpoolError> {
        self.control(writer::Control::Add(name.to_string()))
            .await
            .map(drop)
    }

    /// A config reload changed destination `name`, whose old pipeline has
    /// stopped: a fresh cursor takes over where that pipeline finished
    /// (what it had taken but not finished is read again: at-least-once,
    /// bounded by what one pipeline holds). Attach the new reader next.
    pub async fn restart_destination(&self, name: &str) -> Result<(), SpoolError> {
        self.control(writer::Control::Restart(name.to_string()))
            .await
            .map(drop)
    }

    /// A config reload removed destination `name`, whose pipeline has
    /// stopped: its cursor and cursor file go, and the segments only it
    /// still needed are removed. Returns the bytes it left unread.
    pub async fn remove_destination(&self, name: &str) -> Result<u64, SpoolError> {
        self.control(writer::Control::Remove(name.to_string()))
            .await
    }

    async fn control(&self, c: writer::Control) -> Result<u64, SpoolError> {
        let (reply, answer) = oneshot::channel();
        let tx = self.tx.clone();
        let closed = || {
            SpoolError::io(
                "reach the writer of",
                &self.shared.dir,
                std::io::ErrorKind::BrokenPipe.into(),
            )
        };
        // `send` waits while the writer's queue is full: not on the runtime.
        tokio::task::spawn_blocking(move || tx.send(writer::Msg::Control(c, reply)))
            .await
            .map_err(|_| closed())?
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())
    }

    /// No more appends: readers deliver up to the current end, then close
    /// their destination's input so it drains.
    pub fn close_intake(&self) {
        self.shared.head.send_modify(|h| h.closed = true);
    }

    /// Saves every cursor, syncs and stops the writer (end of shutdown).
    pub fn stop(&self) {
        let (reply, done) = std::sync::mpsc::channel();
        if self.tx.send(writer::Msg::Stop(reply)).is_ok() {
            let _ = done.recv();
        }
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// Per destination: bytes not yet finished.
    pub fn backlog(&self) -> Vec<(String, u64)> {
        let head = self.shared.head.borrow().pos;
        self.shared
            .dests()
            .iter()
            .map(|d| (d.name.clone(), head.saturating_sub(d.committed())))
            .collect()
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }
}

/// A running reader, as [`Spool::attach`] started it.
pub struct ReaderHandle {
    /// Stops this reader (and no other).
    pub stop: CancellationToken,
    /// Resolves once the reader thread has ended and dropped its input.
    pub stopped: oneshot::Receiver<()>,
}

impl ReaderHandle {
    /// Stops the reader and waits until it has let go of its input.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.stopped.await;
    }
}

/// Takes an exclusive lock on `<dir>/LOCK`, held until the process exits
/// (the kernel releases it even after `kill -9`).
fn lock(dir: &Path) -> Result<File, SpoolError> {
    let path = dir.join("LOCK");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| SpoolError::io("open", &path, e))?;
    // `File::try_lock` needs Rust 1.89 (our MSRV is 1.85): call flock(2).
    // SAFETY: `flock` only reads its arguments; the descriptor is open for
    // as long as `file` lives.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(file);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        Err(SpoolError::Locked { path })
    } else {
        Err(SpoolError::io("lock", &path, e))
    }
}

#[cfg(test)]
mod tests;

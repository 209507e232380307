//! The writer thread: the only code that changes spool files. It appends
//! records with group commit (every request waiting when it wakes is
//! written, then synced once), rolls segments over, enforces
//! `spool.max_bytes`, saves cursors and removes finished segments. It also
//! adds, restarts and removes cursors for a config reload ([`Control`]), in
//! order with the appends around it.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::config::FsyncPolicy;
use super::segment::{self, SegMeta};
use super::{AppendError, DestCursor, Shared, SpoolError, cursor};
use crate::route::ReceivedTraces;

/// Appends waiting for the writer before receivers are told it is busy.
pub const CAPACITY: usize = 4096;

/// How often cursors are saved and finished segments removed.
const HOUSEKEEPING: Duration = Duration::from_millis(100);

/// Appends taken in one group commit, at most.
const GROUP: usize = 1024;

pub enum Msg {
    Append(Append),
    /// Save everything, sync and exit.
    Stop(std::sync::mpsc::Sender<()>),
    /// A config reload changes a destination's cursor; answers with the
    /// bytes a removed destination left unread (0 otherwise).
    Control(Control, oneshot::Sender<u64>),
}

/// What a config reload asks of the writer, by destination name.
pub enum Control {
    /// A new cursor at the end of the log.
    Add(String),
    /// A new cursor where the old one's pipeline finished (it has stopped).
    Restart(String),
    /// The cursor and its file go; segments only it held are removed.
    Remove(String),
}

pub struct Append {
    pub frame: Vec<u8>,
    pub spans: u64,
    pub received_unix_nano: u64,
    /// The request as decoded, for readers that keep up.
    pub traces: Option<Arc<ReceivedTraces>>,
    pub reply: oneshot::Sender<Result<(), AppendError>>,
}

/// The segment being appended to.
pub struct Active {
    file: File,
    start: u64,
    len: u64,
}

impl Active {
    pub fn create(dir: &Path, start: u64) -> Result<Self, SpoolError> {
        let path = segment::path(dir, start);
        let file = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| SpoolError::io("create", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| SpoolError::io("stat", &path, e))?
            .len();
        sync_dir(dir);
        Ok(Self { file, start, len })
    }

    fn end(&self) -> u64 {
        self.start + self.len
    }
}

pub struct Writer {
    shared: Arc<Shared>,
    active: Active,
    last_sync: Instant,
    unsynced: bool,
    /// The last position saved per destination.
    saved: HashMap<String, u64>,
    last_housekeeping: Instant,
    /// A write failed: continue in a fresh segment.
    broken: bool,
    /// Size of the last record refused for `max_bytes`: housekeeping lets
    /// requests in again only once a record that size would fit.
    refused_len: u64,
}

impl Writer {
    pub fn new(shared: Arc<Shared>, active: Active) -> Self {
        let saved = HashMap::new();
        Self {
            shared,
            active,
            last_sync: Instant::now(),
            unsynced: false,
            saved,
            last_housekeeping: Instant::now(),
            refused_len: 0,
            broken: false,
        }
    }

    pub fn run(mut self, rx: Receiver<Msg>) {
        let wait = match self.shared.settings.fsync {
            FsyncPolicy::Interval(d) => d.min(HOUSEKEEPING),
            _ => HOUSEKEEPING,
        };
        loop {
            let first = match rx.recv_timeout(wait) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut group = Vec::new();
            let mut stop = None;
            let mut control = None;
            let mut next = first;
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Append(a) => group.push(a),
                    Msg::Stop(reply) => {
                        stop = Some(reply);
                        break;
                    }
                    Msg::Control(c, reply) => {
                        control = Some((c, reply));
                        break;
                    }
                }
                if group.len() < GROUP {
                    next = rx.try_recv().ok();
                }
            }
            if !group.is_empty() {
                self.commit(group);
            }
            self.maybe_sync_interval();
            if let Some((c, reply)) = control {
                let _ = reply.send(self.control(c));
            }
            if let Some(reply) = stop {
                self.finish();
                let _ = reply.send(());
                return;
            }
            if self.last_housekeeping.elapsed() >= HOUSEKEEPING {
                self.housekeeping(false);
            }
        }
        self.finish();
    }

    /// Applies a reload's change to the cursors (appends before it are
    /// written, so "the end of the log" is the head readers see).
    fn control(&mut self, c: Control) -> u64 {
        let dir = self.shared.dir.clone();
        let dests = self.shared.dests();
        let find = |name: &str| dests.iter().position(|d| d.name == name);
        let mut next: Vec<Arc<DestCursor>> = dests.as_ref().clone();
        let unread = match c {
            Control::Add(name) => {
                if find(&name).is_some() {
                    return 0;
                }
                let pos = self.active.end();
                self.save_now(&name, pos);
                self.shared.telemetry.register(&name);
                next.push(Arc::new(DestCursor::new(name, pos)));
                0
            }
            Control::Restart(name) => {
                let Some(i) = find(&name) else {
                    return 0;
                };
                let pos = next[i].committed();
                self.save_now(&name, pos);
                next[i] = Arc::new(DestCursor::new(name, pos));
                0
            }
            Control::Remove(name) => {
                let Some(i) = find(&name) else {
                    return 0;
                };
                let old = next.remove(i);
                let unread = self.active.end().saturating_sub(old.committed());
                old.give_up(self.active.end(), &self.shared.segments());
                let path = cursor::dir(&dir).join(&name);
                match std::fs::remove_file(&path) {
                    Ok(()) => sync_dir(&cursor::dir(&dir)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    // The next start forgets it (not configured), as it would have.
                    Err(e) => {
                        tracing::error!(destination = %name, path = %path.display(), error = %e, "spool: cannot remove the cursor of a removed destination")
                    }
                }
                self.saved.remove(&name);
                self.shared.telemetry.forget(&name);
                unread
            }
        };
        *self.shared.dests.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        self.housekeeping(false);
        unread
    }

    /// Saves (and syncs) one cursor now, so a crash right after a reload
    /// keeps it; if that fails, housekeeping tries again every 100 ms.
    fn save_now(&mut self, name: &str, pos: u64) {
        let dir = &self.shared.dir;
        match cursor::save(dir, name, pos, true) {
            Ok(()) => {
                sync_dir(&cursor::dir(dir));
                self.saved.insert(name.to_string(), pos);
            }
            Err(e) => {
                self.saved.remove(name);
                tracing::error!(destination = %name, error = %e, "spool: cannot save the cursor");
            }
        }
    }

    fn finish(&mut self) {
        if let Err(e) = self.active.file.sync_data() {
            tracing::error!(error = %e, "spool: final sync failed");
        }
        self.unsynced = false;
        self.housekeeping(true);
    }

    /// Writes a group of appends, syncs per policy, publishes the new head
    /// and answers every caller.
    fn commit(&mut self, group: Vec<Append>) {
        let mut written = Vec::with_capacity(group.len());
        let read_up_to = self.shared.slowest_reader();
        for mut a in group {
            let len = a.frame.len() as u64;
            if let Err(e) = self.make_room(len) {
                let _ = a.reply.send(Err(e));
                continue;
            }
            let start = self.active.end();
            let wrote = self.write(&a);
            crate::buffers::give(std::mem::take(&mut a.frame));
            match wrote {
                Ok(()) => {
                    if let Some(traces) = a.traces.take() {
                        self.shared.recent().push(start, len, traces, read_up_to);
                    }
                    written.push(a.reply)
                }
                Err(e) => {
                    let _ = a.reply.send(Err(e));
                }
            }
        }
        if written.is_empty() {
            return;
        }
        self.unsynced = true;
        let result = if self.shared.settings.fsync == FsyncPolicy::Always {
            self.sync()
        } else {
            Ok(())
        };
        let head = self.active.end();
        self.shared.head.send_modify(|h| h.pos = head);
        for reply in written {
            let _ = reply.send(result.clone());
        }
    }

    /// Checks `spool.max_bytes` for a record of `len` bytes: refuses when a
    /// destination that pushes back, or every destination, is too far
    /// behind; else drops the oldest segments of those that are.
    fn make_room(&mut self, len: u64) -> Result<(), AppendError> {
        let new_head = self.active.end() + len;
        let dests = self.shared.dests();
        let over = self.refusal(new_head, &dests);
        if over.is_err() {
            self.refused_len = len;
        }
        self.set_refusing(over.as_ref().err().cloned());
        for d in over? {
            self.drop_oldest(d, new_head);
        }
        let full = self.active.len + len > self.shared.settings.segment_bytes;
        if self.active.len > 0 && (full || self.broken) {
            self.roll_over()
                .map_err(|e| AppendError::Io(e.to_string()))?;
        }
        Ok(())
    }

    /// The destinations more than `max_bytes` behind a log ending at
    /// `new_head`, or why an append must be refused: one of them pushes
    /// back, or every destination is.
    fn refusal<'a>(
        &self,
        new_head: u64,
        dests: &'a [Arc<DestCursor>],
    ) -> Result<Vec<&'a Arc<DestCursor>>, AppendError> {
        let max = self.shared.settings.max_bytes;
        let over: Vec<&Arc<DestCursor>> = dests
            .iter()
            .filter(|d| new_head.saturating_sub(d.committed()) > max)
            .collect();
        if let Some(d) = over.iter().find(|d| d.pushes_back()) {
            return Err(AppendError::Full(Some(d.name.clone())));
        }
        if !over.is_empty() && over.len() == dests.len() {
            return Err(AppendError::Full(None));
        }
        Ok(over)
    }

    fn set_refusing(&self, refusing: Option<AppendError>) {
        *self
            .shared
            .refusing
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = refusing;
    }

    fn drop_oldest(&self, d: &DestCursor, new_head: u64) {
        let max = self.shared.settings.max_bytes;
        let segments = self.shared.segments();
        let mut dropped = 0;
        while new_head - d.committed() > max {
            let from = d.committed();
            let Some(next) = segments.range(from + 1..).next().map(|(s, _)| *s) else {
                break;
            };
            d.raise_floor(next, &segments);
            dropped += 1;
        }
        if dropped > 0 {
            self.shared.telemetry.segments_dropped(&d.name, dropped);
        }
    }

    fn write(&mut self, a: &Append) -> Result<(), AppendError> {
        if let Err(e) = self.active.file.write_all(&a.frame) {
            // Cut a partial record off, and go on in a new segment so no
            // reader can have buffered the bytes that failed.
            let _ = self.active.file.set_len(self.active.len);
            self.broken = true;
            return Err(AppendError::Io(e.to_string()));
        }
        let start = self.active.start;
        let end = {
            self.active.len += a.frame.len() as u64;
            self.active.end()
        };
        let mut segments = self.shared.segments();
        let meta = segments
            .entry(start)
            .or_insert_with(|| SegMeta::empty(start));
        if meta.records == 0 {
            meta.first_unix_nano = a.received_unix_nano;
        }
        meta.records += 1;
        meta.spans += a.spans;
        meta.end = end;
        Ok(())
    }

    fn roll_over(&mut self) -> Result<(), SpoolError> {
        let path = segment::path(&self.shared.dir, self.active.start);
        self.active
            .file
            .sync_data()
            .map_err(|e| SpoolError::io("sync", &path, e))?;
        let start = self.active.end();
        self.active = Active::create(&self.shared.dir, start)?;
        self.broken = false;
        self.shared.segments().insert(start, SegMeta::empty(start));
        Ok(())
    }

    fn sync(&mut self) -> Result<(), AppendError> {
        self.last_sync = Instant::now();
        self.unsynced = false;
        self.active
            .file
            .sync_data()
            .map_err(|e| AppendError::Io(format!("fsync: {e}")))
    }

    fn maybe_sync_interval(&mut self) {
        if let FsyncPolicy::Interval(every) = self.shared.settings.fsync {
            if self.unsynced && self.last_sync.elapsed() >= every {
                if let Err(e) = self.sync() {
                    tracing::error!(error = %e, "spool: periodic fsync failed");
                }
            }
        }
    }

    /// Saves moved cursors, removes segments every destination is past,
    /// and refreshes the gauges.
    fn housekeeping(&mut self, sync: bool) {
        self.last_housekeeping = Instant::now();
        let dir = &self.shared.dir;
        let dests = self.shared.dests();
        for d in dests.iter() {
            let pos = d.committed();
            if self.saved.get(&d.name) != Some(&pos) || sync {
                match cursor::save(dir, &d.name, pos, sync) {
                    Ok(()) => {
                        self.saved.insert(d.name.clone(), pos);
                    }
                    Err(e) => {
                        tracing::error!(destination = %d.name, error = %e, "spool: cannot save the cursor")
                    }
                }
            }
        }
        let keep_from = dests
            .iter()
            .map(|d| d.committed())
            .min()
            .unwrap_or(self.active.end());
        self.remove_before(keep_from);
        // Destinations catch up without appends: let requests in again once
        // the record last refused would fit.
        if self.shared.refusing.lock().is_ok_and(|r| r.is_some()) {
            let next_head = self.active.end() + self.refused_len;
            let still = self.refusal(next_head, &dests).err();
            self.set_refusing(still);
        }
        let head = self.active.end();
        let segments = self.shared.segments();
        self.shared.telemetry.refresh(&dests, &segments, head);
    }

    fn remove_before(&self, keep_from: u64) {
        let finished: Vec<u64> = self
            .shared
            .segments()
            .values()
            .filter(|m| m.end <= keep_from && m.start != self.active.start)
            .map(|m| m.start)
            .collect();
        for start in finished {
            let path = segment::path(&self.shared.dir, start);
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    self.shared.segments().remove(&start);
                }
                Err(e) => {
                    tracing::error!(segment = %path.display(), error = %e, "spool: cannot remove a finished segment")
                }
            }
        }
    }
}

/// Makes a created file's name durable (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

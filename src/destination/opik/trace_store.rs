//! The store behind the trace table (`state.backend = "disk"`): one `redb`
//! database per Opik destination under `state_dir`, keyed by OTel trace id,
//! each value the trace's entry as [`super::trace_table`] encodes it.
//!
//! Why `redb`: an embedded, pure-Rust B-tree with ACID transactions and
//! crash recovery to the last durable commit, no background threads, a
//! bounded page cache, and a small dependency tree (it builds in seconds).
//! An LSM store (RocksDB, fjall) would bring compaction threads and a C++
//! build or a larger tree for a table of a few thousand small entries.
//!
//! The mapper writes the traces it touched every [`COMMIT_EVERY`] in one
//! durable commit (a trace evicted from its table goes at once, in a cheap
//! commit without `fsync`, `Durability::None`). The mapper holds the spool
//! cursor at the first record mapped since the last durable commit, so a
//! crash replays exactly what the store may have lost.
//!
//! A store that fails is counted (`tracebridge_trace_state_errors_total`)
//! and logged; the destination carries on with its table in memory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use redb::{Database, Durability, TableDefinition};

use crate::telemetry::DestinationTelemetry;
use crate::telemetry::reason::StateError;

/// How often the touched traces are written and made durable while the
/// table changes: each trace is encoded once per period however many
/// requests touched it, and a crash replays at most this much of the spool.
pub const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// The store's page cache: memory stays bounded whatever the table's size.
const CACHE_BYTES: usize = 16 << 20;

const TRACES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("traces");

/// Why the store failed, with what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
    #[error("cannot create {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{doing}: {source}")]
    Storage {
        doing: &'static str,
        #[source]
        source: Box<redb::Error>,
    },
}

fn storage<E: Into<redb::Error>>(doing: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Storage {
        doing,
        source: Box::new(e.into()),
    }
}

/// One destination's store; `None` inside when the table lives in memory only.
pub struct TraceStore {
    db: Option<Arc<Database>>,
    telemetry: DestinationTelemetry,
}

impl TraceStore {
    /// No store: the table lives in memory only.
    pub fn memory(telemetry: DestinationTelemetry) -> Self {
        Self {
            db: None,
            telemetry,
        }
    }

    /// Opens (or creates) the store at `path`. A failure is counted and
    /// logged, and the table lives in memory.
    pub fn open(path: &Path, telemetry: DestinationTelemetry) -> Self {
        match open_shared(path) {
            Ok(db) => Self {
                db: Some(db),
                telemetry,
            },
            Err(e) => {
                telemetry.state_error(StateError::Open, &e.to_string());
                Self::memory(telemetry)
            }
        }
    }

    /// Whether entries survive a restart.
    pub fn is_persistent(&self) -> bool {
        self.db.is_some()
    }

    /// The stored entry of trace `tid`, if any.
    pub fn get(&self, tid: &[u8; 16]) -> Option<Vec<u8>> {
        let db = self.db.as_ref()?;
        let read = || -> Result<Option<Vec<u8>>, StoreError> {
            let tx = db.begin_read().map_err(storage("begin read"))?;
            let table = match tx.open_table(TRACES) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(storage("open table")(e)),
            };
            let value = table.get(tid.as_slice()).map_err(storage("read"))?;
            Ok(value.map(|v| v.value().to_vec()))
        };
        read().unwrap_or_else(|e| {
            self.telemetry.state_error(StateError::Read, &e.to_string());
            None
        })
    }

    /// Writes `entries` and removes `gone` in one commit, durable if asked.
    /// False if the store failed (counted and logged).
    pub fn write<'a>(
        &self,
        entries: impl IntoIterator<Item = ([u8; 16], &'a [u8])>,
        gone: &[[u8; 16]],
        durable: bool,
    ) -> bool {
        let Some(db) = self.db.as_ref() else {
            return false;
        };
        let write = || -> Result<(), StoreError> {
            let mut tx = db.begin_write().map_err(storage("begin write"))?;
            tx.set_durability(if durable {
                Durability::Immediate
            } else {
                Durability::None
            });
            {
                let mut table = tx.open_table(TRACES).map_err(storage("open table"))?;
                for (tid, bytes) in entries {
                    table
                        .insert(tid.as_slice(), bytes)
                        .map_err(storage("insert"))?;
                }
                for tid in gone {
                    table.remove(tid.as_slice()).map_err(storage("remove"))?;
                }
            }
            tx.commit().map_err(storage("commit"))
        };
        match write() {
            Ok(()) => true,
            Err(e) => {
                self.telemetry
                    .state_error(StateError::Write, &e.to_string());
                false
            }
        }
    }

    /// Removes (durably) every stored entry for which `keep`, shown the
    /// key and the stored bytes, says false.
    pub fn sweep(&self, mut keep: impl FnMut(&[u8; 16], &[u8]) -> bool) {
        let Some(db) = self.db.as_ref() else {
            return;
        };
        let mut sweep = || -> Result<(), StoreError> {
            let tx = db.begin_write().map_err(storage("begin write"))?;
            {
                let mut table = tx.open_table(TRACES).map_err(storage("open table"))?;
                table
                    .retain(|k, v| <[u8; 16]>::try_from(k).is_ok_and(|tid| keep(&tid, v)))
                    .map_err(storage("sweep"))?;
            }
            tx.commit().map_err(storage("commit"))
        };
        if let Err(e) = sweep() {
            self.telemetry
                .state_error(StateError::Write, &e.to_string());
        }
    }
}

/// The open databases by path: a destination replaced by a reload shares
/// the one its predecessor (still draining) holds open.
fn open_shared(path: &Path) -> Result<Arc<Database>, StoreError> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, Weak<Database>>>> = OnceLock::new();
    let mut open = OPEN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(db) = open.get(path).and_then(Weak::upgrade) {
        return Ok(db);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let db = Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            source: Box::new(e.into()),
        })?;
    let db = Arc::new(db);
    open.retain(|_, w| w.strong_count() > 0);
    open.insert(path.to_path_buf(), Arc::downgrade(&db));
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Metrics;

    fn store(path: &Path) -> TraceStore {
        TraceStore::open(path, DestinationTelemetry::new(&Metrics::new(), "opik"))
    }

    #[test]
    fn entries_survive_reopening_and_sweeps_remove_what_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opik/opik.redb");
        {
            let s = store(&path);
            assert!(s.is_persistent());
            assert!(s.get(&[1; 16]).is_none(), "an empty store answers None");
            assert!(s.write(
                [([1; 16], b"one".as_slice()), ([2; 16], b"two")],
                &[],
                false
            ));
            assert!(s.write([], &[], true), "a durable commit");
            assert_eq!(s.get(&[1; 16]).as_deref(), Some(b"one".as_slice()));
        }
        let s = store(&path);
        assert_eq!(s.get(&[2; 16]).as_deref(), Some(b"two".as_slice()));
        let mut seen = Vec::new();
        s.sweep(|tid, v| {
            seen.push((*tid, v.to_vec()));
            tid[0] == 2
        });
        assert_eq!(seen.len(), 2);
        assert!(s.get(&[1; 16]).is_none());
        assert!(s.write([], &[[2; 16]], true));
        assert!(s.get(&[2; 16]).is_none());
    }

    #[test]
    fn two_destinations_on_one_path_share_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.redb");
        let (a, b) = (store(&path), store(&path));
        assert!(a.write([([7; 16], b"seven".as_slice())], &[], true));
        assert_eq!(b.get(&[7; 16]).as_deref(), Some(b"seven".as_slice()));
    }

    #[test]
    fn an_unusable_path_leaves_the_table_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let s = store(&file.join("sub/opik.redb"));
        assert!(!s.is_persistent());
        assert!(!s.write([], &[], true));
    }
}

//! Segment files: naming, and the start-up scan that validates every record,
//! truncates a torn tail and rebuilds the in-memory index.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::SpoolError;
use super::record::{Frame, read_frame};

/// What the spool remembers about one segment (a few dozen bytes each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegMeta {
    /// Log position of the segment's first byte (its file name).
    pub start: u64,
    /// Log position just past its last whole record.
    pub end: u64,
    pub records: u64,
    pub spans: u64,
    /// When its first record was received (Unix ns; 0 if empty).
    pub first_unix_nano: u64,
}

impl SegMeta {
    pub fn empty(start: u64) -> Self {
        Self {
            start,
            end: start,
            records: 0,
            spans: 0,
            first_unix_nano: 0,
        }
    }
}

pub fn path(dir: &Path, start: u64) -> PathBuf {
    dir.join(format!("{start:020}.seg"))
}

/// What the scan found wrong, for counting and logging.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanReport {
    /// Records whose CRC or contents were bad (skipped by readers too).
    pub corrupt: u64,
    /// Torn tails cut off (at most one per segment).
    pub torn: u64,
    /// Bytes cut off.
    pub torn_bytes: u64,
}

/// Lists and validates every segment in `dir`, truncating torn tails.
pub fn scan(dir: &Path) -> Result<(BTreeMap<u64, SegMeta>, ScanReport), SpoolError> {
    let mut starts = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| SpoolError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SpoolError::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
            continue;
        };
        if let Ok(start) = stem.parse::<u64>() {
            starts.push(start);
        }
    }
    starts.sort_unstable();
    let mut segments = BTreeMap::new();
    let mut report = ScanReport::default();
    for start in starts {
        let meta = scan_one(&path(dir, start), start, &mut report)?;
        segments.insert(start, meta);
    }
    Ok((segments, report))
}

fn scan_one(path: &Path, start: u64, report: &mut ScanReport) -> Result<SegMeta, SpoolError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| SpoolError::io("open", path, e))?;
    let size = file
        .metadata()
        .map_err(|e| SpoolError::io("stat", path, e))?
        .len();
    let mut meta = SegMeta::empty(start);
    let mut reader = BufReader::with_capacity(64 << 10, &file);
    let mut buf = Vec::new();
    let mut offset = 0u64;
    loop {
        let frame = read_frame(&mut reader, size - offset, &mut buf)
            .map_err(|e| SpoolError::io("read", path, e))?;
        match frame {
            Frame::End => break,
            Frame::Record { record, len } => {
                if meta.records == 0 {
                    meta.first_unix_nano = record.received_unix_nano;
                }
                meta.records += 1;
                meta.spans += record.span_count;
                offset += len;
            }
            Frame::Corrupt { len, detail } => {
                tracing::warn!(segment = %path.display(), offset, %detail, "spool: skipping a corrupt record");
                report.corrupt += 1;
                offset += len;
            }
            Frame::Torn => {
                report.torn += 1;
                report.torn_bytes += size - offset;
                tracing::warn!(
                    segment = %path.display(),
                    offset,
                    bytes = size - offset,
                    "spool: truncating a torn record at the end of a segment (the write was interrupted)"
                );
                truncate(&file, offset, path)?;
                break;
            }
        }
    }
    meta.end = start + offset;
    Ok(meta)
}

fn truncate(file: &File, len: u64, path: &Path) -> Result<(), SpoolError> {
    file.set_len(len)
        .and_then(|()| file.sync_all())
        .map_err(|e| SpoolError::io("truncate", path, e))
}

/// Opens a segment for reading at log position `pos`.
pub fn open_at(dir: &Path, meta: &SegMeta, pos: u64) -> Result<BufReader<File>, SpoolError> {
    let p = path(dir, meta.start);
    let mut file = File::open(&p).map_err(|e| SpoolError::io("open", &p, e))?;
    file.seek(SeekFrom::Start(pos - meta.start))
        .map_err(|e| SpoolError::io("seek", &p, e))?;
    Ok(BufReader::with_capacity(64 << 10, file))
}

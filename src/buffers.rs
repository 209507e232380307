//! Large byte buffers, recycled: request bodies (HTTP bodies read in
//! several frames, gRPC messages) and spool record frames are each about
//! the size of a request (megabytes at 1000 spans per request). Freed,
//! such a buffer goes back to the allocator's arena, which returns it to
//! the OS after a few milliseconds, and the next request faults the same
//! memory back in: about a tenth of the CPU at 1000 spans per request went
//! to page faults (README, "Performance"). Kept here instead, it is reused
//! with its pages resident.
//!
//! Only buffers that stay inside the daemon come from here. Export bodies
//! handed to tonic or reqwest do not: recycled OTLP batch and gRPC frame
//! buffers made the OTLP export stall now and then in the side-by-side
//! benchmark (HTTP 100 spans per request: 14–32k instead of ~56k spans/s,
//! the daemon idle at a full memory budget; not understood yet).
//!
//! Bounded: at most [`MAX_KEPT`] buffers of [`MIN_SIZE`] to
//! [`MAX_SIZE`] bytes each are kept, and one unused for [`IDLE`] is freed
//! ([`trim`], called every second), so an idle daemon keeps none.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Smaller buffers come and go cheaply in the allocator's own pages.
pub const MIN_SIZE: usize = 64 << 10;
/// A buffer grown past this (a rare huge request) is freed.
pub const MAX_SIZE: usize = 8 << 20;
/// Buffers kept at most: at most `MAX_KEPT * MAX_SIZE` bytes idle.
pub const MAX_KEPT: usize = 8;
/// A buffer unused this long is freed.
pub const IDLE: Duration = Duration::from_secs(1);

/// Kept buffers (empty, with their capacity) and when each came back.
pub struct Pool(Mutex<Vec<(Vec<u8>, Instant)>>);

/// The daemon's pool.
static POOL: Pool = Pool::new();

impl Pool {
    pub const fn new() -> Self {
        Self(Mutex::new(Vec::new()))
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Vec<(Vec<u8>, Instant)>> {
        // The list stays consistent whatever panicked while holding it.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An empty buffer of at least `capacity` bytes: a kept one when one is
    /// large enough (the smallest such), else a new one.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        if capacity >= MIN_SIZE {
            let mut kept = self.kept();
            let best = kept
                .iter()
                .enumerate()
                .filter(|(_, (b, _))| b.capacity() >= capacity)
                .min_by_key(|(_, (b, _))| b.capacity())
                .map(|(i, _)| i);
            if let Some(i) = best {
                return kept.swap_remove(i).0;
            }
        }
        Vec::with_capacity(capacity)
    }

    /// Gives a buffer back: kept when its size is worth it and there is
    /// room (a larger one replaces the smallest kept), else freed.
    pub fn give(&self, mut buf: Vec<u8>) {
        let capacity = buf.capacity();
        if !(MIN_SIZE..=MAX_SIZE).contains(&capacity) {
            return;
        }
        buf.clear();
        let now = Instant::now();
        let freed = {
            let mut kept = self.kept();
            if kept.len() < MAX_KEPT {
                kept.push((buf, now));
                None
            } else {
                let smallest = kept
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, (b, _))| b.capacity())
                    .map(|(i, _)| i);
                match smallest {
                    Some(i) if kept[i].0.capacity() < capacity => {
                        Some(std::mem::replace(&mut kept[i], (buf, now)).0)
                    }
                    _ => Some(buf),
                }
            }
        };
        // Freed outside the lock.
        drop(freed);
    }

    /// Frees the buffers unused for [`IDLE`].
    pub fn trim(&self) {
        let now = Instant::now();
        let stale: Vec<_> = {
            let mut kept = self.kept();
            let (stale, fresh) = std::mem::take(&mut *kept)
                .into_iter()
                .partition(|(_, at)| now.saturating_duration_since(*at) >= IDLE);
            *kept = fresh;
            stale
        };
        drop(stale);
    }

    /// Bytes kept now.
    pub fn kept_bytes(&self) -> usize {
        self.kept().iter().map(|(b, _)| b.capacity()).sum()
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

/// [`Pool::take`] from the daemon's pool.
pub fn take(capacity: usize) -> Vec<u8> {
    POOL.take(capacity)
}

/// [`Pool::give`] to the daemon's pool.
pub fn give(buf: Vec<u8>) {
    POOL.give(buf);
}

/// [`Pool::trim`] of the daemon's pool.
pub fn trim() {
    POOL.trim();
}

/// `buf` as `Bytes` that give the buffer back to the daemon's pool when
/// the last clone drops.
pub fn into_bytes(buf: Vec<u8>) -> Bytes {
    POOL.bytes(buf)
}

impl Pool {
    /// `buf` as `Bytes` that give the buffer back when the last clone drops.
    pub fn bytes(&'static self, buf: Vec<u8>) -> Bytes {
        if buf.capacity() < MIN_SIZE {
            return Bytes::from(buf);
        }
        Bytes::from_owner(Recycled(buf, self))
    }
}

struct Recycled(Vec<u8>, &'static Pool);

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        self.1.give(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_bounded_and_freed_when_idle() {
        let pool = Pool::new();
        let mut a = pool.take(MIN_SIZE * 2);
        let ptr = a.as_ptr();
        a.extend_from_slice(b"abc");
        pool.give(a);
        let again = pool.take(MIN_SIZE);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), ptr, "the kept buffer is reused");
        pool.give(again);
        // Small and huge buffers are not kept; the count is bounded, the
        // larger ones staying.
        pool.give(Vec::with_capacity(16));
        pool.give(Vec::with_capacity(MAX_SIZE + 1));
        for _ in 0..MAX_KEPT * 2 {
            pool.give(Vec::with_capacity(MIN_SIZE));
        }
        assert_eq!(pool.kept().len(), MAX_KEPT);
        assert!(pool.kept().iter().any(|(b, _)| b.as_ptr() == ptr));
        // Idle ones go.
        for (_, at) in pool.kept().iter_mut() {
            *at = at.checked_sub(IDLE).unwrap_or(*at);
        }
        pool.trim();
        assert_eq!(pool.kept_bytes(), 0);
    }

    #[test]
    fn bytes_give_their_buffer_back_when_the_last_clone_drops() {
        static POOL: Pool = Pool::new();
        let mut v = POOL.take(MIN_SIZE);
        v.extend_from_slice(b"abc");
        let bytes = POOL.bytes(v);
        let clone = bytes.clone();
        assert_eq!(&clone[..], b"abc");
        drop(bytes);
        assert_eq!(POOL.kept_bytes(), 0);
        drop(clone);
        assert!(POOL.kept_bytes() >= MIN_SIZE);
    }
}

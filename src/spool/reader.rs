//! One destination's reader: a thread that reads records from the
//! destination's position and hands them to its pipeline, waiting when the
//! pipeline is full (so memory holds a few requests, whatever the backlog).

use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::record::{Frame, read_frame};
use super::segment::{self, SegMeta};
use super::{DestCursor, Head, ReadPos, Shared};
use crate::budget::{DECODED_PER_ENCODED, MemoryBudget, Part};
use crate::export::Delivery;
use crate::route::ReceivedTraces;

/// How often a reader waiting for memory looks again.
const ROOM_POLL: std::time::Duration = std::time::Duration::from_millis(5);

pub struct Reader {
    shared: Arc<Shared>,
    cursor: Arc<DestCursor>,
    input: mpsc::Sender<Delivery>,
    /// Records decoded from the files are charged here.
    budget: Arc<MemoryBudget>,
    stop: CancellationToken,
    rt: Handle,
    head: watch::Receiver<Head>,
    /// The open segment: its start and a reader positioned at `pos`.
    open: Option<(u64, BufReader<File>)>,
    /// Mirrors the cursor's `reading.pos` (drop-oldest may move that on).
    pos: u64,
    buf: Vec<u8>,
}

/// What to do after one step.
enum Step {
    Continue,
    Wait,
    Done,
}

impl Reader {
    pub fn new(
        shared: Arc<Shared>,
        cursor: Arc<DestCursor>,
        input: mpsc::Sender<Delivery>,
        budget: Arc<MemoryBudget>,
        stop: CancellationToken,
    ) -> Self {
        let head = shared.head.subscribe();
        let pos = cursor.reading().pos;
        Self {
            shared,
            cursor,
            input,
            budget,
            stop,
            rt: Handle::current(),
            head,
            open: None,
            pos,
            buf: Vec::new(),
        }
    }

    /// Reads until the spool is closed and read to its end, the
    /// destination stops, or the shutdown deadline. Dropping `input` at
    /// the end lets the destination drain.
    pub fn run(mut self) {
        loop {
            if self.stop.is_cancelled() {
                return;
            }
            let step = self.step();
            match step {
                Step::Continue => {}
                Step::Done => return,
                Step::Wait => {
                    if !self.wait() {
                        return;
                    }
                }
            }
        }
    }

    fn step(&mut self) -> Step {
        let pos = self.cursor.reading().pos;
        if pos != self.pos {
            // Drop-oldest moved us past records we had not read.
            self.pos = pos;
            self.open = None;
        }
        let head = *self.head.borrow_and_update();
        if self.pos >= head.pos {
            return if head.closed { Step::Done } else { Step::Wait };
        }
        let Some(meta) = self.segment() else {
            return Step::Wait;
        };
        if self.pos >= meta.end {
            return self.next_segment(&meta);
        }
        self.read_one(&meta)
    }

    /// The segment holding `pos` (or the first after it, across a gap).
    fn segment(&mut self) -> Option<SegMeta> {
        let segments = self.shared.segments();
        if let Some((_, m)) = segments.range(..=self.pos).next_back() {
            if self.pos < m.end || segments.range(self.pos + 1..).next().is_none() {
                return Some(*m);
            }
        }
        let next = segments.range(self.pos + 1..).next().map(|(_, m)| *m)?;
        drop(segments);
        self.move_to(next.start);
        Some(next)
    }

    fn next_segment(&mut self, meta: &SegMeta) -> Step {
        let next = self
            .shared
            .segments()
            .range(meta.start + 1..)
            .next()
            .map(|(s, _)| *s);
        match next {
            Some(start) => {
                self.move_to(start);
                Step::Continue
            }
            None => Step::Wait,
        }
    }

    fn move_to(&mut self, pos: u64) {
        let mut r = self.cursor.reading();
        if r.pos == self.pos {
            r.pos = pos;
            r.spans_in_segment = 0;
        }
        self.pos = r.pos;
        self.open = None;
    }

    fn read_one(&mut self, meta: &SegMeta) -> Step {
        // A record still in memory is handed on at once: it is charged
        // already, and waiting would only keep it (and the budget) held
        // longer. Only a read from the files waits for room.
        if let Some((len, traces)) = self.recent_at_pos() {
            return self.take_recent(len, traces);
        }
        self.wait_for_room();
        if let Some((len, traces)) = self.recent_at_pos() {
            return self.take_recent(len, traces);
        }
        if self.open.as_ref().is_none_or(|(s, _)| *s != meta.start) {
            match segment::open_at(&self.shared.dir, meta, self.pos) {
                Ok(r) => self.open = Some((meta.start, r)),
                Err(e) => {
                    tracing::error!(destination = %self.cursor.name, error = %e, "spool: cannot read a segment; skipping it");
                    return self.next_segment(meta);
                }
            }
        }
        let cursor = self.cursor.clone();
        let mut reading = cursor.reading();
        if reading.pos != self.pos {
            return Step::Continue;
        }
        let Some((_, file)) = self.open.as_mut() else {
            return Step::Wait;
        };
        let frame = match read_frame(file, meta.end - self.pos, &mut self.buf) {
            Ok(f) => f,
            Err(e) => {
                drop(reading);
                tracing::error!(destination = %self.cursor.name, error = %e, "spool: read failed; skipping the rest of the segment");
                return self.next_segment(meta);
            }
        };
        match frame {
            Frame::Record { record, len } => {
                let raw = record
                    .request
                    .is_some()
                    .then(|| super::record::raw_request(&mut self.buf))
                    .flatten();
                let mut traces = record.into_traces(raw);
                let decoded = (len as usize).saturating_mul(1 + DECODED_PER_ENCODED);
                traces.charge = Some(Arc::new(self.budget.charge(Part::Requests, decoded)));
                self.deliver(reading, len, Arc::new(traces))
            }
            Frame::Corrupt { len, detail } => {
                // Records of a previous run were counted by the start-up scan.
                if self.pos >= self.shared.replay_until {
                    tracing::warn!(destination = %self.cursor.name, pos = self.pos, %detail, "spool: skipping a corrupt record");
                    self.shared.telemetry.corrupt_record();
                }
                self.pos += len;
                reading.pos = self.pos;
                Step::Continue
            }
            Frame::Torn | Frame::End => {
                drop(reading);
                self.next_segment(meta)
            }
        }
    }

    /// Before reading the next record from the files: while the destinations' share of
    /// the memory budget is used ([`MemoryBudget::readers_have_room`]: the
    /// other half stays for the receivers, so a slow destination makes its
    /// backlog wait on disk instead of making clients refused) and the
    /// pipeline still has requests of this reader to work on, waits for
    /// either to change. A pipeline with nothing to do always gets the next
    /// record, so the destination never stalls on memory the others hold.
    fn wait_for_room(&self) {
        while !self.budget.readers_have_room()
            && self.input.capacity() < self.input.max_capacity()
            && !self.stop.is_cancelled()
        {
            std::thread::sleep(ROOM_POLL);
        }
    }

    fn recent_at_pos(&self) -> Option<(u64, Arc<ReceivedTraces>)> {
        self.shared.recent().get(self.pos)
    }

    /// The record at `pos` as the receiver decoded it: no read, no decode.
    /// The file reader's position is stale after this, so it is reopened
    /// when a record has to come from the file again.
    fn take_recent(&mut self, len: u64, traces: Arc<ReceivedTraces>) -> Step {
        let cursor = self.cursor.clone();
        let reading = cursor.reading();
        if reading.pos != self.pos {
            return Step::Continue;
        }
        self.open = None;
        self.deliver(reading, len, traces)
    }

    /// Moves past the record at `pos` (`len` bytes in the log) and hands
    /// its request to the pipeline.
    fn deliver(
        &mut self,
        mut reading: std::sync::MutexGuard<'_, ReadPos>,
        len: u64,
        traces: Arc<ReceivedTraces>,
    ) -> Step {
        let spans = traces.span_count as u64;
        let start = self.pos;
        let delivery = Delivery {
            traces,
            record: Some((start, start + len)),
        };
        self.pos += len;
        reading.pos = self.pos;
        reading.spans_in_segment += spans;
        drop(reading);
        let read_up_to = self.shared.slowest_reader();
        self.shared.recent().forget_read(read_up_to);
        if start + len <= self.shared.replay_until {
            self.shared.telemetry.replayed(&self.cursor.name, spans);
        }
        if self.send(delivery) {
            Step::Continue
        } else {
            Step::Done
        }
    }

    /// Hands one request to the pipeline, waiting for room.
    fn send(&self, d: Delivery) -> bool {
        let (input, stop) = (&self.input, &self.stop);
        self.rt.block_on(async {
            tokio::select! {
                r = input.send(d) => r.is_ok(),
                () = stop.cancelled() => false,
            }
        })
    }

    /// Waits for more records, the end of intake, or the deadline.
    fn wait(&mut self) -> bool {
        let (head, input, stop) = (&mut self.head, &self.input, &self.stop);
        self.rt.block_on(async {
            tokio::select! {
                r = head.changed() => r.is_ok(),
                () = input.closed() => false,
                () = stop.cancelled() => false,
            }
        })
    }
}

//! Rows to items: each row is encoded once, when mapped, with a strictly
//! increasing `last_updated_at` (Opik replaces whole rows on upsert, the
//! newest winning), and truncated when it would not fit a batch.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::truncate::{Fields, shrink};
use serde::Serialize;
use uuid::Uuid;

use super::fields;
use super::rows::{SpanRow, TraceRow, TraceUpdate};
use crate::export::ExportItem;
use crate::semconv::write::doc::JsonDoc;
use crate::telemetry::DestinationTelemetry;

/// Which endpoint a row goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Trace,
    /// A trace row whose content was released: `PATCH …/traces/{id}`.
    TraceUpdate,
    Span,
    /// A feedback score on a trace or a span (`gen_ai.evaluation.result`).
    TraceScore,
    SpanScore,
}

/// One encoded Opik row.
#[derive(Debug, Clone, PartialEq)]
pub struct OpikItem {
    pub kind: RowKind,
    pub id: Uuid,
    /// The row as JSON, encoded once when mapped (shared with the rows
    /// remembered to be written again, see [`super::wrapper_rows`]).
    pub json: Arc<str>,
    /// The OTel id it came from (hex), for logs.
    pub otel_id: String,
    /// Which workspace and key it is written with (0: the destination's;
    /// see [`super::tenants`]).
    pub route: u16,
}

impl ExportItem for OpikItem {
    fn encoded_size(&self) -> usize {
        self.json.len() + 1
    }
    fn span_count(&self) -> usize {
        usize::from(self.kind == RowKind::Span)
    }
    fn partition(&self) -> u16 {
        self.route
    }
    fn describe(&self) -> String {
        match self.kind {
            RowKind::Trace | RowKind::TraceUpdate => {
                format!("trace {} (OTel trace {})", self.id, self.otel_id)
            }
            RowKind::Span => format!("span {} (OTel span {})", self.id, self.otel_id),
            RowKind::TraceScore | RowKind::SpanScore => {
                format!("feedback score on {} (OTel span {})", self.id, self.otel_id)
            }
        }
    }
}

/// Rows that can be truncated: their input, output and metadata.
pub trait Truncatable {
    fn fields(&mut self) -> Fields<'_>;
}

impl Truncatable for TraceRow {
    fn fields(&mut self) -> Fields<'_> {
        self.fields.fields()
    }
}

impl Truncatable for TraceUpdate {
    fn fields(&mut self) -> Fields<'_> {
        Fields {
            input: &mut self.input,
            output: &mut self.output,
            metadata: &mut self.metadata,
        }
    }
}

impl Truncatable for SpanRow {
    fn fields(&mut self) -> Fields<'_> {
        Fields {
            input: &mut self.input,
            output: &mut self.output,
            metadata: &mut self.metadata,
        }
    }
}

/// Encodes rows into items.
pub struct Encoder {
    max_item_bytes: usize,
    last_stamp_us: u64,
    telemetry: DestinationTelemetry,
    buf: Vec<u8>,
}

/// The encoder's buffer: most rows fit; one grown past `MAX_KEPT_BUFFER`
/// by a large row is given back.
const BUFFER: usize = 8 << 10;
const MAX_KEPT_BUFFER: usize = 1 << 20;

impl Encoder {
    pub fn new(max_item_bytes: usize, telemetry: DestinationTelemetry) -> Self {
        Self {
            max_item_bytes,
            last_stamp_us: 0,
            telemetry,
            buf: Vec::with_capacity(BUFFER),
        }
    }

    /// A strictly increasing `last_updated_at`, so a newer write always wins.
    pub fn stamp(&mut self) -> String {
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        self.last_stamp_us = now_us.max(self.last_stamp_us + 1);
        fields::timestamp(self.last_stamp_us * 1000)
    }

    /// A row as JSON: written into the encoder's buffer (which keeps its
    /// capacity, so a row does not grow a string several times) with
    /// sonic-rs (SIMD escaping, the same bytes as serde_json), then copied
    /// once into its shared string.
    fn write<T: Serialize>(&mut self, row: &T) -> Arc<str> {
        self.buf.clear();
        // Through `JsonDoc::write`: the rows' input and output are written verbatim.
        if JsonDoc::write(&mut self.buf, row).is_err() {
            self.buf.clear();
        }
        // JSON written from Rust strings is UTF-8.
        let json = std::str::from_utf8(&self.buf)
            .map(Arc::from)
            .unwrap_or_default();
        if self.buf.capacity() > MAX_KEPT_BUFFER {
            self.buf = Vec::with_capacity(BUFFER);
        }
        json
    }

    /// Encodes a row; one larger than a batch may be has its largest
    /// fields replaced by markers (counted and logged, see [`super::truncate`]).
    pub fn encode<T: Serialize + Truncatable>(
        &mut self,
        kind: RowKind,
        id: Uuid,
        otel_id: String,
        mut row: T,
    ) -> OpikItem {
        // Rows hold only strings, numbers and JSON values, so serialising
        // cannot fail; were it to, the empty item would be rejected by Opik,
        // isolated by bisection and counted, not lost silently.
        let mut json = self.write(&row);
        if json.len() > self.max_item_bytes {
            let original = json.len();
            let fields = shrink(row.fields(), original, self.max_item_bytes);
            json = self.write(&row);
            self.telemetry
                .truncated_item(&format!("{kind:?}"), &fields, original, json.len());
        }
        OpikItem {
            kind,
            id,
            json,
            otel_id,
            route: 0,
        }
    }
}

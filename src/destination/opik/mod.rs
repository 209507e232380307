//! The Opik destination: GenAI spans become Opik traces and spans through
//! Opik's REST API.
//!
//! - [`config`]: the section, Opik SDK variables and defaults → [`OpikTarget`];
//! - [`probe`]: `tracebridge check` (ping, then an authenticated read);
//! - [`mapper`]: trace assembly, the [`crate::export::ItemMapper`], built from
//!   [`trace_table`], [`span_row`], [`trace_row`] and [`encode`] (with
//!   [`truncate`]: a row too large for a batch loses its largest fields);
//! - [`fields`]: normalised GenAI view → row fields (messages, usage, metadata);
//! - [`sender`]: the [`crate::export::RequestSender`] — batch endpoints, error classes;
//! - [`ids`], [`rows`]: Opik's id algorithm and write models;
//! - [`tenants`]: a tenant's own workspace, project and key.

pub mod config;
pub mod encode;
pub mod fields;
pub mod ids;
pub mod mapper;
pub mod probe;
pub mod recent;
pub mod redis_store;
pub mod rows;
pub mod sender;
pub mod span_row;
pub mod state;
mod table_state;
pub mod tenants;
pub mod tool_rows;
pub mod trace_row;
pub mod trace_store;
pub mod trace_table;
pub mod truncate;
pub mod wrapper_rows;

pub use config::OpikTarget;
pub use encode::{OpikItem, RowKind};
pub use mapper::TraceAssembler;
pub use sender::OpikClient;

/// The Opik id a trace gets when it is first seen with this earliest start
/// (for previews such as the console destination's).
pub fn trace_id(otel_trace_id: &[u8], earliest_start_ms: u64) -> uuid::Uuid {
    ids::from_otel_id(otel_trace_id, earliest_start_ms)
}

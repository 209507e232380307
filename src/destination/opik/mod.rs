//! The Opik destination: GenAI spans become Opik traces and spans through
//! Opik's REST API.
//!
//! - [`assembly`]: the [`crate::export::ItemMapper`] — trace table, UUIDv7 ids, full rows;
//! - [`mapping`]: normalised GenAI view → row fields (messages, usage, metadata);
//! - [`client`]: the [`crate::export::RequestSender`] — batch endpoints, error classes;
//! - [`ids`], [`rows`]: Opik's id algorithm and write models.

pub mod assembly;
pub mod client;
pub mod ids;
pub mod mapping;
pub mod rows;

pub use assembly::{OpikItem, RowKind, TraceAssembler};
pub use client::OpikClient;

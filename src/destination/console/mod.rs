//! The console destination: one human line per trace, on stdout, showing
//! each trace as Opik would (its Opik id, name, span count, tokens, cost).
//!
//! - [`config`]: no settings of its own;
//! - [`mapper`]: received traces → one [`mapper::TraceLine`] per trace;
//! - [`sender`]: lines to stdout;
//! - [`probe`]: always passes.

pub mod config;
pub mod mapper;
pub mod probe;
pub mod sender;

pub use mapper::{TraceLine, TraceLines};

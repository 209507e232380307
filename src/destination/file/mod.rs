//! The file destination: one self-describing JSON line per span, appended
//! to a file (privacy mode leaves content out).
//!
//! - [`config`]: the `path` setting;
//! - [`mapper`]: spans → [`mapper::SpanLine`]s;
//! - [`sender`]: appends batches;
//! - [`probe`]: is the file writable?

pub mod config;
pub mod mapper;
pub mod probe;
pub mod sender;

pub use mapper::{SpanLine, SpanRecords};

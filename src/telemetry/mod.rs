//! The daemon's own telemetry: Prometheus metrics, logging set-up, and typed
//! events that count and log in one place.
//!
//! Code that observes something (a span refused, a batch dropped) calls one
//! method here instead of touching a counter and writing a log line itself,
//! so every count has its log line and the two never drift apart.

mod events;
pub mod logging;
mod metrics;
mod process;
mod ratelimit;
pub mod reason;
mod spool;

pub use events::{DestinationStatus, DestinationTelemetry, ReceiverTelemetry, SpoolStatus};
pub use metrics::{COMMIT, Metrics, PartLabels};
pub use ratelimit::RateLimitedLog;
pub use spool::SpoolTelemetry;

//! tracebridge: receives OpenTelemetry traces over OTLP and delivers the
//! GenAI spans inside to Comet Opik, Arize, any OTLP backend, or local sinks.
//!
//! The data path, stage by stage (see `docs/ARCHITECTURE.md`):
//! [`receiver`] → [`route`] → [`destination`] (built on the shared [`export`] machinery).

pub mod admin;
pub mod app;
pub mod budget;
pub mod buffers;
pub mod cli;
pub mod config;
pub mod control;
pub mod destination;
pub mod export;
pub mod pdata;
pub mod receiver;
pub mod reload;
pub mod route;
pub mod semconv;
pub mod spool;
pub mod systemd;
pub mod telemetry;

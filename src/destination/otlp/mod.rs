//! The OTLP destination (and the Arize preset over it, see
//! [`super::arize`]): forwards spans (and logs and metrics, when `signals`
//! names them) to any OTLP endpoint over gRPC,
//! HTTP/protobuf or HTTP/JSON, optionally enriched with OpenInference
//! attributes and stripped of content.
//!
//! - [`config`]: the section → [`OtlpTarget`] (endpoint rules, headers, TLS files);
//! - [`probe`]: `tracebridge check` (an empty export);
//! - [`mapper`]: the [`crate::export::ItemMapper`] — per-trace project,
//!   enrichment, privacy, resource grouping;
//! - [`log_join`]: GenAI log records joining their spans' OpenInference
//!   attributes (`openinference` mode);
//! - [`request`]: re-batching items into `ExportTraceServiceRequest`s (and
//!   logs and metrics requests);
//! - [`sender`]: the [`crate::export::RequestSender`] for gRPC and HTTP;
//! - [`tls_client`]: rustls configuration shared by both.

pub mod config;
pub mod grpc_call;
mod log_join;
pub mod mapper;
pub mod probe;
pub mod request;
pub mod sender;
pub mod tls_client;

pub use config::OtlpTarget;
pub use mapper::{OtlpItem, OtlpMapper, ResourceGroup, ScopeGroup};
pub use sender::OtlpClient;

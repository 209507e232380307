//! Opik's write models, `TraceWrite` and `SpanWrite`, as we send them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::semconv::write::doc::JsonDoc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfoRow {
    pub exception_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub traceback: String,
}

/// Opik's `TraceWrite`: the trace's id, start time and version around
/// what a [`TraceUpdate`] can change too.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceRow {
    pub id: Uuid,
    pub start_time: String,
    #[serde(flatten)]
    pub fields: TraceUpdate,
    pub last_updated_at: String,
}

/// Opik's `TraceUpdate` (`PATCH /v1/private/traces/{id}`): a trace row
/// without its id, start time and version. Opik rewrites only the fields
/// given, so a field left out (`None`) keeps its stored value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceUpdate {
    pub project_name: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<JsonDoc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<JsonDoc>,
    pub metadata: Json,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_info: Option<ErrorInfoRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// Time to first token, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanRow {
    pub id: Uuid,
    pub project_name: String,
    pub trace_id: Uuid,
    /// `null` marks a top-level span; always sent, as the SDK does.
    pub parent_span_id: Option<Uuid>,
    pub name: String,
    #[serde(rename = "type")]
    pub span_type: &'static str,
    pub start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<JsonDoc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<JsonDoc>,
    pub metadata: Json,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<BTreeMap<&'static str, i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_info: Option<ErrorInfoRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_estimated_cost: Option<f64>,
    /// Time to first token, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    pub last_updated_at: String,
}

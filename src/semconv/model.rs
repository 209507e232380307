//! The normalised GenAI view of a span: the only thing destinations map from.

use crate::telemetry::reason::MappingWarning;
use serde_json::{Map, Value as Json};

/// What kind of work a span did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Llm,
    Embedding,
    Tool,
    Agent,
    Retrieval,
    Guardrail,
    #[default]
    General,
}

/// One part of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    /// A tool call requested by the model. `arguments` is a JSON value
    /// (an object when the instrumentation recorded one).
    ToolCall {
        id: Option<String>,
        name: String,
        arguments: Json,
    },
    /// The result of a tool call, sent back to the model.
    ToolResult {
        id: Option<String>,
        result: Json,
    },
    Reasoning(String),
    /// Anything else (images, files, provider-specific parts), kept as given.
    Other(Json),
}

/// A chat message in one model for every dialect.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    pub role: String,
    pub parts: Vec<Part>,
    pub name: Option<String>,
    /// For output messages: why the model stopped.
    pub finish_reason: Option<String>,
}

impl Message {
    pub fn text(role: &str, text: impl Into<String>) -> Self {
        Self {
            role: role.to_string(),
            parts: vec![Part::Text(text.into())],
            ..Default::default()
        }
    }

    /// All text parts joined, if there are any.
    pub fn joined_text(&self) -> Option<String> {
        let texts: Vec<&str> = self
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        (!texts.is_empty()).then(|| texts.join(""))
    }
}

/// Token counts. `input` includes cached tokens (OTel and OpenInference
/// convention); `output` includes reasoning tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    pub input: Option<i64>,
    pub output: Option<i64>,
    pub total: Option<i64>,
    pub cache_read: Option<i64>,
    pub cache_creation: Option<i64>,
    pub reasoning: Option<i64>,
}

impl Usage {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The total, computed from input and output when not given.
    pub fn total_tokens(&self) -> Option<i64> {
        self.total.or(match (self.input, self.output) {
            (Some(i), Some(o)) => Some(i + o),
            (Some(i), None) => Some(i),
            (None, Some(o)) => Some(o),
            (None, None) => None,
        })
    }
}

/// Cost in USD, as reported by the instrumentation or gateway.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Cost {
    pub input: Option<f64>,
    pub output: Option<f64>,
    pub total: Option<f64>,
}

impl Cost {
    pub fn is_empty(&self) -> bool {
        self.input.is_none() && self.output.is_none() && self.total.is_none()
    }

    pub fn total_usd(&self) -> Option<f64> {
        self.total.or(match (self.input, self.output) {
            (None, None) => None,
            (i, o) => Some(i.unwrap_or(0.0) + o.unwrap_or(0.0)),
        })
    }
}

/// A tool execution (on a tool span).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolCall {
    pub name: Option<String>,
    pub call_id: Option<String>,
    pub description: Option<String>,
    /// The tool's parameter schema (OpenInference `tool.parameters`).
    pub parameters: Option<Json>,
    pub arguments: Option<Json>,
    pub result: Option<Json>,
}

/// An evaluation result (`gen_ai.evaluation.result` event): an Opik
/// feedback score.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluation {
    pub name: String,
    pub value: f64,
    pub label: Option<String>,
    pub explanation: Option<String>,
}

/// An error recorded on the span.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ErrorInfo {
    pub exception_type: String,
    pub message: Option<String>,
    pub traceback: String,
}

impl GenAiSpan {
    /// Whether the span did GenAI work: a GenAI kind, or anything GenAI
    /// stated on it (operation, model, provider, messages, usage, agent,
    /// conversation). Plain HTTP or database work is not.
    pub fn is_genai(&self) -> bool {
        self.kind != Kind::General
            || self.operation.is_some()
            || self.request_model.is_some()
            || self.response_model.is_some()
            || self.provider.is_some()
            || !self.input_messages.is_empty()
            || !self.output_messages.is_empty()
            || !self.usage.is_empty()
            || self.agent_name.is_some()
            || self.conversation_id.is_some()
    }
}

/// The normalised view of one span.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GenAiSpan {
    pub kind: Kind,
    /// `gen_ai.operation.name` or the dialect's equivalent (`chat`, `execute_tool`…).
    pub operation: Option<String>,
    pub request_model: Option<String>,
    pub response_model: Option<String>,
    /// Normalised to Opik's provider names (`openai`, `google_vertexai`…).
    pub provider: Option<String>,
    /// The provider as the span stated it, when it is not what `provider`
    /// became (a framework name such as `strands-agents`).
    pub stated_provider: Option<String>,
    /// System instructions passed separately from the history.
    pub system_instructions: Vec<Part>,
    pub input_messages: Vec<Message>,
    pub output_messages: Vec<Message>,
    /// Tools offered to the model, in the OpenAI shape `{type, function:{name, description, parameters}}`.
    pub tool_definitions: Vec<Json>,
    /// Completions-API prompts and completions (non-chat LLM calls).
    pub prompts: Vec<String>,
    pub completions: Vec<String>,
    pub tool: ToolCall,
    pub usage: Usage,
    pub cost: Cost,
    /// `cost` was computed by tracebridge from its price table (the span
    /// carried none), not reported by the instrumentation.
    pub cost_estimated: bool,
    /// Request parameters (`temperature`, `max_tokens`…), keyed without prefix.
    pub request_params: Map<String, Json>,
    pub response_id: Option<String>,
    pub finish_reasons: Vec<String>,
    pub conversation_id: Option<String>,
    pub user_id: Option<String>,
    /// `deployment.environment(.name)` on the span, else the resource.
    pub environment: Option<String>,
    /// Time to the first token or chunk, in milliseconds.
    pub ttft_ms: Option<f64>,
    pub agent_name: Option<String>,
    /// Generic input/output when no message model applies (workflow and
    /// chain spans, `input.value`, `traceloop.entity.input`, Vercel prompts…).
    pub input: Option<Json>,
    pub output: Option<Json>,
    /// Name overrides (OpenRouter's `span_name` / `generation_name`, `trace.name`).
    pub span_name: Option<String>,
    pub trace_name: Option<String>,
    /// Trace-level input/output given explicitly (OpenRouter's `trace.input`/`trace.output`).
    pub trace_input: Option<Json>,
    pub trace_output: Option<Json>,
    pub tags: Vec<String>,
    /// Custom metadata the user attached (OpenInference `metadata`, `trace.metadata.*`…).
    pub custom_metadata: Map<String, Json>,
    /// Destination routing hints.
    pub project_name: Option<String>,
    /// Explicit Opik ids (`opik.trace_id`, `opik.span_id`, `opik.parent_span_id`).
    pub opik_trace_id: Option<String>,
    pub opik_span_id: Option<String>,
    pub opik_parent_span_id: Option<String>,
    pub error: Option<ErrorInfo>,
    pub evaluations: Vec<Evaluation>,
    /// Attributes no dialect claimed, as JSON, by their original keys.
    pub other_attributes: Map<String, Json>,
    /// Span events no dialect consumed.
    pub other_events: Vec<Json>,
    /// Problems met while reading (malformed values kept as-is in `other_attributes`).
    pub warnings: Vec<MappingWarning>,
    /// How the readers used each attribute and event of the span: what
    /// privacy mode keeps (see [`super::privacy`]).
    pub claims: super::privacy::Claims,
}

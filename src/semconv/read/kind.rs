//! The span kind, resolved from the most explicit statement down.

use super::model::{GenAiSpan, Kind};

/// Span kinds as each dialect states them, resolved in [`resolve_kind`].
#[derive(Debug, Default)]
pub(super) struct KindHints {
    pub openinference: Option<String>,
    pub mlflow: Option<String>,
    /// Langfuse's `langfuse.observation.type`.
    pub langfuse: Option<String>,
    /// Claude Code's `span.type`.
    pub claude_code: Option<String>,
    pub traceloop: Option<String>,
    pub llm_request_type: Option<String>,
    pub vercel_operation: Option<String>,
    pub openrouter_span_type: Option<String>,
    pub logfire_agent: bool,
    pub tool_attributes: bool,
}

/// The kind, from the most explicit statement to the weakest evidence.
pub(super) fn resolve_kind(g: &GenAiSpan, h: &KindHints) -> Kind {
    if let Some(k) = h.openinference.as_deref() {
        match k.to_ascii_uppercase().as_str() {
            "LLM" => return Kind::Llm,
            "EMBEDDING" => return Kind::Embedding,
            "TOOL" => return Kind::Tool,
            "AGENT" => return Kind::Agent,
            "RETRIEVER" | "RERANKER" => return Kind::Retrieval,
            "GUARDRAIL" => return Kind::Guardrail,
            "CHAIN" | "EVALUATOR" | "PROMPT" | "UNKNOWN" => return Kind::General,
            _ => {}
        }
    }
    if let Some(k) = h.mlflow.as_deref() {
        match k {
            "CHAT_MODEL" | "LLM" => return Kind::Llm,
            "EMBEDDING" => return Kind::Embedding,
            "TOOL" => return Kind::Tool,
            "AGENT" => return Kind::Agent,
            "RETRIEVER" | "RERANKER" => return Kind::Retrieval,
            "CHAIN" | "PARSER" | "UNKNOWN" => return Kind::General,
            _ => {}
        }
    }
    if let Some(k) = h.langfuse.as_deref() {
        match k {
            "generation" => return Kind::Llm,
            "embedding" => return Kind::Embedding,
            "tool" => return Kind::Tool,
            "agent" => return Kind::Agent,
            "retriever" => return Kind::Retrieval,
            "guardrail" => return Kind::Guardrail,
            _ => {}
        }
    }
    if let Some(op) = g.operation.as_deref() {
        match op {
            "chat" | "text_completion" | "generate_content" | "completion" | "generate"
            | "llm_request" | "responses" => return Kind::Llm,
            "embeddings" | "embedding" => return Kind::Embedding,
            "execute_tool" => return Kind::Tool,
            "invoke_agent" | "create_agent" | "agent_step" | "plan" => return Kind::Agent,
            "retrieval" | "rerank" | "vector_db_retrieve" | "search_memory" => {
                return Kind::Retrieval;
            }
            "invoke_workflow" => return Kind::General,
            _ => {}
        }
    }
    if let Some(k) = h.traceloop.as_deref() {
        match k {
            "agent" => return Kind::Agent,
            "tool" => return Kind::Tool,
            "llm" => return Kind::Llm,
            "workflow" | "task" => return Kind::General,
            _ => {}
        }
    }
    if let Some(t) = h.llm_request_type.as_deref() {
        match t {
            "chat" | "completion" => return Kind::Llm,
            "embedding" => return Kind::Embedding,
            "rerank" => return Kind::Retrieval,
            _ => {}
        }
    }
    if let Some(op) = h.vercel_operation.as_deref() {
        if op.ends_with(".doGenerate") || op.ends_with(".doStream") {
            return if op.starts_with("ai.embed") {
                Kind::Embedding
            } else {
                Kind::Llm
            };
        }
        if op == "ai.toolCall" {
            return Kind::Tool;
        }
        if op.starts_with("ai.embed") {
            return Kind::Embedding;
        }
        return Kind::General;
    }
    if h.openrouter_span_type.as_deref() == Some("generation") {
        return Kind::Llm;
    }
    // Claude Code's phases of a tool call carry its call id but are not calls.
    if matches!(
        h.claude_code.as_deref(),
        Some("tool.execution" | "tool.blocked_on_user")
    ) {
        return Kind::General;
    }
    if h.tool_attributes {
        return Kind::Tool;
    }
    if h.logfire_agent {
        return Kind::Agent;
    }
    let has_messages = !g.input_messages.is_empty() || !g.output_messages.is_empty();
    if (g.request_model.is_some() || g.response_model.is_some())
        && (has_messages || !g.usage.is_empty() || !g.prompts.is_empty())
    {
        return Kind::Llm;
    }
    Kind::General
}

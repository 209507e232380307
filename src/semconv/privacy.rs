//! Which attributes and span events carry content (prompts, completions,
//! messages, tool arguments and results), in every dialect we read. Privacy
//! mode removes exactly these; usage, cost, model, timing and metadata stay.

/// Exact attribute keys that hold content.
const CONTENT_KEYS: &[&str] = &[
    // OTel GenAI
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "gen_ai.retrieval.query.text",
    "gen_ai.retrieval.documents",
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.request.messages",
    "gen_ai.response.text",
    // OpenInference
    "input.value",
    "output.value",
    "tool.parameters",
    "tool.output",
    "tool_call.function.arguments",
    "llm.prompt_template.template",
    "llm.prompt_template.variables",
    // OpenLLMetry
    "traceloop.entity.input",
    "traceloop.entity.output",
    // Vercel AI SDK
    "ai.prompt",
    "ai.prompt.messages",
    "ai.response.text",
    "ai.response.toolCalls",
    "ai.response.object",
    "ai.result.text",
    "ai.result.toolCalls",
    "ai.result.object",
    "ai.toolCall.args",
    "ai.toolCall.result",
    // OpenRouter
    "trace.input",
    "trace.output",
    "span.input",
    "span.output",
    // Logfire / pydantic-ai
    "all_messages",
    "all_messages_events",
    "pydantic_ai.all_messages",
    "final_result",
    "prompt",
    "response",
    "result",
    "tool_arguments",
    "tool_response",
    "tool_responses",
    "events",
    // Others seen in the wild
    "mlflow.spanInputs",
    "mlflow.spanOutputs",
    "langfuse.observation.input",
    "langfuse.observation.output",
    "langfuse.trace.input",
    "langfuse.trace.output",
];

/// Key prefixes of flattened content.
const CONTENT_PREFIXES: &[&str] = &[
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "llm.choices.",
    "retrieval.documents.",
    "embedding.embeddings.",
    "reranker.input_documents.",
    "reranker.output_documents.",
    // LiveKit puts transcripts and chat context under many lk.* keys.
    "lk.",
];

/// Span events whose attributes are content.
const CONTENT_EVENTS: &[&str] = &[
    "gen_ai.client.inference.operation.details",
    "gen_ai.system.message",
    "gen_ai.user.message",
    "gen_ai.assistant.message",
    "gen_ai.tool.message",
    "gen_ai.choice",
    "gen_ai.content.prompt",
    "gen_ai.content.completion",
];

pub fn is_content_attribute(key: &str) -> bool {
    CONTENT_KEYS.contains(&key) || CONTENT_PREFIXES.iter().any(|p| key.starts_with(p))
}

pub fn is_content_event(name: &str) -> bool {
    CONTENT_EVENTS.contains(&name)
}

/// Removes content attributes and content events from a span, in place.
/// Returns how many attributes and events were removed.
pub fn strip_span(span: &mut opentelemetry_proto::tonic::trace::v1::Span) -> usize {
    let before = span.attributes.len() + span.events.len();
    span.attributes.retain(|kv| !is_content_attribute(&kv.key));
    span.events.retain(|e| !is_content_event(&e.name));
    before - span.attributes.len() - span.events.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_keys_of_every_dialect_are_recognised() {
        for key in [
            "gen_ai.input.messages",
            "gen_ai.prompt.0.content",
            "gen_ai.completion.1.tool_calls.0.arguments",
            "llm.input_messages.0.message.content",
            "input.value",
            "traceloop.entity.output",
            "ai.prompt.messages",
            "pydantic_ai.all_messages",
            "gen_ai.tool.call.result",
        ] {
            assert!(is_content_attribute(key), "{key}");
        }
        for key in [
            "gen_ai.usage.input_tokens",
            "gen_ai.request.model",
            "llm.token_count.prompt",
            "llm.tools.0.tool.json_schema",
            "session.id",
            "gen_ai.prompt_template.name",
        ] {
            assert!(!is_content_attribute(key), "{key}");
        }
        assert!(is_content_event("gen_ai.user.message"));
        assert!(!is_content_event("exception"));
    }
}

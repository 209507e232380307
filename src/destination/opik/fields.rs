//! From the normalised GenAI view to the fields of Opik rows.
//!
//! - LLM spans: `input = {"messages": [...OpenAI chat shape...], "tools": [...]}`,
//!   `output = {"choices": [{"index", "message", "finish_reason"}]}`; completions
//!   use `{"prompt"}` / `{"choices":[{"index","text"}]}`.
//! - Tool spans: `input` = the arguments object, `output` = the result object
//!   (non-objects wrapped as `{"arguments": …}` / `{"output": …}`).
//! - Everything else: the generic input/output, wrapped in an object when needed.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Map, Value as Json, json};
use sha2::{Digest, Sha256};

use super::rows::ErrorInfoRow;
use crate::pdata::{attributes_to_json, hex_id, span_kind_name, status_name};
use crate::semconv::{GenAiSpan, Kind};

/// Opik's span type.
pub fn span_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Llm | Kind::Embedding => "llm",
        Kind::Tool => "tool",
        Kind::Guardrail => "guardrail",
        Kind::Agent | Kind::Retrieval | Kind::General => "general",
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, as the Opik SDK writes times.
pub fn timestamp(unix_nanos: u64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_nanos(unix_nanos);
    humantime::format_rfc3339_micros(t).to_string()
}

/// Opik's usage map: integer `prompt_tokens`, `completion_tokens`,
/// `total_tokens`, plus the provider's own breakdown under
/// `original_usage.*`, which feeds Opik's cache-aware cost paths.
/// Cached tokens are part of `prompt_tokens` and are never subtracted twice.
pub fn usage(g: &GenAiSpan) -> Option<BTreeMap<&'static str, i32>> {
    let u = &g.usage;
    if u.is_empty() {
        return None;
    }
    let mut m = BTreeMap::new();
    let mut put = |k: &'static str, v: Option<i64>| {
        if let Some(v) = v.filter(|v| *v >= 0).and_then(|v| i32::try_from(v).ok()) {
            m.insert(k, v);
        }
    };
    put("prompt_tokens", u.input);
    put("completion_tokens", u.output);
    put("total_tokens", u.total_tokens());
    // Anthropic's and Bedrock's own input counts exclude cache reads and writes.
    let uncached = u
        .input
        .map(|i| i - u.cache_read.unwrap_or(0) - u.cache_creation.unwrap_or(0));
    // Each provider's cost calculator in Opik reads its own `original_usage.*` shape.
    match g.provider.as_deref() {
        Some("anthropic" | "anthropic_vertexai") => {
            put("original_usage.input_tokens", uncached);
            put("original_usage.output_tokens", u.output);
            put("original_usage.cache_read_input_tokens", u.cache_read);
            put(
                "original_usage.cache_creation_input_tokens",
                u.cache_creation,
            );
        }
        Some("bedrock") => {
            put("original_usage.inputTokens", uncached);
            put("original_usage.outputTokens", u.output);
            put("original_usage.totalTokens", u.total_tokens());
            put("original_usage.cacheReadInputTokens", u.cache_read);
            put("original_usage.cacheWriteInputTokens", u.cache_creation);
        }
        Some("google_ai" | "google_vertexai") => {
            // Google's prompt count includes cached tokens; candidates include thoughts.
            put("original_usage.prompt_token_count", u.input);
            put("original_usage.candidates_token_count", u.output);
            put("original_usage.total_token_count", u.total_tokens());
            put("original_usage.cached_content_token_count", u.cache_read);
            put("original_usage.thoughts_token_count", u.reasoning);
        }
        _ => openai_usage(&mut put, u),
    }
    Some(m)
}

/// OpenAI's shape (the OpenAI calculator serves openai, azure, xai,
/// deepseek, moonshot…): prompt tokens include cached ones.
fn openai_usage(put: &mut impl FnMut(&'static str, Option<i64>), u: &crate::semconv::Usage) {
    put("original_usage.prompt_tokens", u.input);
    put("original_usage.completion_tokens", u.output);
    put("original_usage.total_tokens", u.total_tokens());
    put(
        "original_usage.prompt_tokens_details.cached_tokens",
        u.cache_read,
    );
    put(
        "original_usage.cache_creation_input_tokens",
        u.cache_creation,
    );
    put(
        "original_usage.completion_tokens_details.reasoning_tokens",
        u.reasoning,
    );
}

/// Opik requires non-blank `exception_type` and `traceback`.
pub fn error_info(g: &GenAiSpan) -> Option<ErrorInfoRow> {
    let e = g.error.as_ref()?;
    let non_blank = |s: &str, fallback: &str| {
        if s.trim().is_empty() {
            fallback.to_string()
        } else {
            s.to_string()
        }
    };
    let exception_type = non_blank(&e.exception_type, "Error");
    let traceback = non_blank(
        &e.traceback,
        e.message.as_deref().unwrap_or(&exception_type),
    );
    Some(ErrorInfoRow {
        traceback: non_blank(&traceback, "Error"),
        exception_type,
        message: e.message.clone().filter(|m| !m.trim().is_empty()),
    })
}

/// The OTel context of a span, kept in metadata so nothing is lost.
pub struct OtelContext<'a> {
    pub span: &'a Span,
    pub scope: Option<&'a InstrumentationScope>,
    pub resource: &'a Resource,
}

/// A resource's attributes as JSON, read once per `ResourceSpans`, with a
/// stable fingerprint (stored with the trace) to tell resources apart
/// without comparing them.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub json: Json,
    pub fingerprint: u64,
}

impl Resource {
    pub fn new(attributes: &[KeyValue]) -> Self {
        let json = Json::Object(attributes_to_json(attributes));
        let digest = Sha256::digest(json.to_string().as_bytes());
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        Self {
            json,
            fingerprint: u64::from_be_bytes(head),
        }
    }
}

/// Span metadata: the original ids (always), cost, parameters, finish
/// reasons, the OTel context (the resource only when `with_resource`: it is
/// written once per trace, in the trace row), unconsumed events, custom
/// metadata and every attribute no dialect claimed. The parameters, the
/// unclaimed attributes and events are moved out of `g`, not copied.
pub fn span_metadata(
    g: &mut GenAiSpan,
    otel: &OtelContext<'_>,
    privacy: bool,
    with_resource: bool,
) -> Json {
    let span = otel.span;
    let mut m = Map::new();
    for (k, v) in &g.custom_metadata {
        m.insert(k.clone(), v.clone());
    }
    m.insert(
        "openrouter_trace_id".into(),
        Json::String(hex_id(&span.trace_id)),
    );
    m.insert(
        "openrouter_observation_id".into(),
        Json::String(hex_id(&span.span_id)),
    );
    if !g.cost.is_empty() {
        m.insert(
            "cost".into(),
            json!({"input": g.cost.input, "output": g.cost.output, "total": g.cost.total_usd()}),
        );
        if g.cost_estimated {
            // Computed by tracebridge's price table (cost.compute), not reported.
            m.insert("cost_source".into(), Json::String("tracebridge".into()));
        }
    }
    if !g.request_params.is_empty() {
        m.insert(
            "model_parameters".into(),
            Json::Object(std::mem::take(&mut g.request_params)),
        );
    }
    if !g.finish_reasons.is_empty() {
        m.insert("finish_reasons".into(), json!(g.finish_reasons));
    }
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(k.into(), Json::String(v.clone()));
        }
    };
    put("operation", &g.operation);
    put("response_id", &g.response_id);
    put("agent_name", &g.agent_name);
    put("stated_provider", &g.stated_provider);
    put("tool_name", &g.tool.name);
    put("tool_call_id", &g.tool.call_id);
    put("thread_id", &g.conversation_id);
    put("user_id", &g.user_id);
    if g.request_model.is_some()
        && g.response_model.is_some()
        && g.request_model != g.response_model
    {
        put("request_model", &g.request_model);
    }
    if let Some(p) = &g.tool.parameters {
        m.insert("tool_parameters".into(), p.clone());
    }
    let status = span.status.as_ref();
    let mut context = json!({
        "span_kind": span_kind_name(span.kind),
        "status": {
            "code": status_name(status.map_or(0, |s| s.code)),
            "message": status.map(|s| s.message.as_str()).unwrap_or(""),
        },
        "scope": {
            "name": otel.scope.map(|s| s.name.as_str()).unwrap_or(""),
            "version": otel.scope.map(|s| s.version.as_str()).unwrap_or(""),
        },
    });
    if let (true, Json::Object(c)) = (with_resource, &mut context) {
        c.insert("resource".into(), otel.resource.json.clone());
    }
    m.insert("otel".into(), context);
    if !g.other_attributes.is_empty() {
        m.insert(
            "attributes".into(),
            Json::Object(std::mem::take(&mut g.other_attributes)),
        );
    }
    if !g.other_events.is_empty() && !privacy {
        m.insert(
            "events".into(),
            Json::Array(std::mem::take(&mut g.other_events)),
        );
    }
    if !span.links.is_empty() {
        let links: Vec<Json> = span
            .links
            .iter()
            .map(|l| json!({"trace_id": hex_id(&l.trace_id), "span_id": hex_id(&l.span_id), "attributes": attributes_to_json(&l.attributes)}))
            .collect();
        m.insert("links".into(), Json::Array(links));
    }
    if !g.warnings.is_empty() {
        m.insert("tracebridge_warnings".into(), json!(g.warnings));
    }
    Json::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::semconv::Usage;

    #[test]
    fn anthropic_usage_feeds_the_cache_aware_path_without_double_subtraction() {
        let g = GenAiSpan {
            provider: Some("anthropic".into()),
            usage: Usage {
                input: Some(15),
                output: Some(5),
                cache_read: Some(3),
                cache_creation: Some(2),
                ..Default::default()
            },
            ..Default::default()
        };
        let u = usage(&g).unwrap();
        assert_eq!(u["prompt_tokens"], 15);
        assert_eq!(u["completion_tokens"], 5);
        assert_eq!(u["total_tokens"], 20);
        assert_eq!(u["original_usage.input_tokens"], 10);
        assert_eq!(u["original_usage.cache_read_input_tokens"], 3);
        assert_eq!(u["original_usage.cache_creation_input_tokens"], 2);
    }

    #[test]
    fn openai_usage_keeps_cached_inside_prompt_tokens() {
        let g = GenAiSpan {
            provider: Some("openai".into()),
            usage: Usage {
                input: Some(42),
                output: Some(7),
                cache_read: Some(40),
                reasoning: Some(3),
                ..Default::default()
            },
            ..Default::default()
        };
        let u = usage(&g).unwrap();
        assert_eq!(u["prompt_tokens"], 42);
        assert_eq!(u["original_usage.prompt_tokens"], 42);
        assert_eq!(u["original_usage.prompt_tokens_details.cached_tokens"], 40);
        assert_eq!(
            u["original_usage.completion_tokens_details.reasoning_tokens"],
            3
        );
        assert_eq!(u["total_tokens"], 49);
    }

    #[test]
    fn google_and_bedrock_get_the_shape_their_calculators_read() {
        let counts = Usage {
            input: Some(100),
            output: Some(20),
            cache_read: Some(60),
            cache_creation: Some(10),
            reasoning: Some(5),
            ..Default::default()
        };
        let of = |provider: &str| {
            usage(&GenAiSpan {
                provider: Some(provider.into()),
                usage: counts,
                ..Default::default()
            })
            .unwrap()
        };
        let google = of("google_vertexai");
        assert_eq!(google["original_usage.prompt_token_count"], 100);
        assert_eq!(google["original_usage.cached_content_token_count"], 60);
        assert_eq!(google["original_usage.candidates_token_count"], 20);
        let bedrock = of("bedrock");
        assert_eq!(bedrock["original_usage.inputTokens"], 30, "without cache");
        assert_eq!(bedrock["original_usage.cacheReadInputTokens"], 60);
        assert_eq!(bedrock["original_usage.cacheWriteInputTokens"], 10);
        assert_eq!(bedrock["original_usage.outputTokens"], 20);
        assert_eq!(of("anthropic_vertexai")["original_usage.input_tokens"], 30);
        assert_eq!(bedrock["prompt_tokens"], 100);
    }

    #[test]
    fn error_info_is_never_blank() {
        let g = GenAiSpan {
            error: Some(crate::semconv::ErrorInfo {
                exception_type: " ".into(),
                message: None,
                traceback: "".into(),
            }),
            ..Default::default()
        };
        let e = error_info(&g).unwrap();
        assert_eq!(e.exception_type, "Error");
        assert_eq!(e.traceback, "Error");
    }
}

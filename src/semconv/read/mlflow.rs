//! MLflow tracing, native attributes (`mlflow.*`, every value JSON-encoded):
//! `mlflow.spanType`, `mlflow.spanInputs` / `mlflow.spanOutputs` (the raw
//! request and response for autologged LLM calls, the function's arguments
//! and return value otherwise), `mlflow.chat.tokenUsage`, `mlflow.chat.tools`,
//! `mlflow.llm.model` / `provider` / `cost`, `mlflow.trace.session` / `user`.
//! Autologged spans also carry the request's bare `model`, `tools`,
//! `temperature`…, read only on MLflow spans.

use serde_json::Value as Json;

use super::attrs::Attrs;
use super::messages::messages_from_json;
use super::model::GenAiSpan;
use super::openrouter::completion_message;
use super::{Reader, fill, openai_tool_definition};

const SPAN_TYPE: &str = "mlflow.spanType";

/// Request parameters an autologged span carries as bare keys.
const BARE_PARAMS: &[&str] = &[
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "top_p",
    "seed",
    "stream",
    "tool_choice",
];

pub(super) fn read(r: &mut Reader<'_>) {
    let a = &mut r.attrs;
    if !a.has(SPAN_TYPE) {
        return;
    }
    let o = &mut r.out;
    let span_type = a.take_json_document(SPAN_TYPE).map(|t| text(&t));
    fill(&mut r.hints.mlflow, span_type.clone());
    let doc = |a: &mut Attrs<'_>, key: &str| a.take_json_document(key);
    fill(
        &mut o.request_model,
        doc(a, "mlflow.llm.model").map(|v| text(&v)),
    );
    fill(&mut o.request_model, doc(a, "model").map(|v| text(&v)));
    fill(
        &mut o.provider,
        doc(a, "mlflow.llm.provider").map(|v| text(&v)),
    );
    fill(
        &mut o.conversation_id,
        doc(a, "mlflow.trace.session").map(|v| text(&v)),
    );
    fill(
        &mut o.user_id,
        doc(a, "mlflow.trace.user").map(|v| text(&v)),
    );
    if let Some(id) = doc(a, "mlflow.traceRequestId") {
        o.custom_metadata.entry("mlflow_trace_id").or_insert(id);
    }
    if let Some(name) = doc(a, "mlflow.spanFunctionName").map(|v| text(&v)) {
        if span_type.as_deref() == Some("TOOL") {
            fill(&mut o.tool.name, Some(name));
        }
    }
    read_usage_and_cost(a, o);
    for key in ["mlflow.chat.tools", "tools"] {
        if let Some(Json::Array(tools)) = doc(a, key) {
            if o.tool_definitions.is_empty() {
                o.tool_definitions = tools.iter().map(openai_tool_definition).collect();
            }
        }
    }
    for p in BARE_PARAMS {
        if let Some(v) = doc(a, p) {
            o.request_params.entry(*p).or_insert(v);
        }
    }
    let llm = matches!(span_type.as_deref(), Some("CHAT_MODEL" | "LLM"));
    let tool = span_type.as_deref() == Some("TOOL");
    a.content(|a| {
        let inputs = a.take_json_document("mlflow.spanInputs");
        let outputs = a.take_json_document("mlflow.spanOutputs");
        if llm {
            read_llm_io(o, inputs, outputs);
        } else if tool {
            fill(&mut o.tool.arguments, inputs);
            fill(&mut o.tool.result, outputs);
        } else {
            fill(&mut o.input, inputs);
            fill(&mut o.output, outputs);
        }
    });
}

fn read_usage_and_cost(a: &mut Attrs<'_>, o: &mut GenAiSpan) {
    if let Some(Json::Object(u)) = a.take_json_document("mlflow.chat.tokenUsage") {
        let n = |k: &str| u.get(k).and_then(Json::as_i64);
        fill(&mut o.usage.input, n("input_tokens"));
        fill(&mut o.usage.output, n("output_tokens"));
        fill(&mut o.usage.total, n("total_tokens"));
        fill(&mut o.usage.cache_read, n("cache_read_input_tokens"));
        fill(
            &mut o.usage.cache_creation,
            n("cache_creation_input_tokens"),
        );
    }
    if let Some(Json::Object(c)) = a.take_json_document("mlflow.llm.cost") {
        let n = |k: &str| c.get(k).and_then(Json::as_f64);
        fill(&mut o.cost.input, n("input_cost"));
        fill(&mut o.cost.output, n("output_cost"));
        fill(&mut o.cost.total, n("total_cost"));
    }
}

/// An autologged call: the raw request (`{model, messages, tools…}`) and
/// response (a ChatCompletion); anything else is kept as generic I/O.
fn read_llm_io(o: &mut GenAiSpan, inputs: Option<Json>, outputs: Option<Json>) {
    match inputs {
        Some(req) if req.get("messages").is_some() => {
            if o.input_messages.is_empty() {
                o.input_messages = messages_from_json(&req, "user");
            }
        }
        other => fill(&mut o.input, other),
    }
    match outputs.as_ref().and_then(completion_message) {
        Some(m) if o.output_messages.is_empty() => {
            if let Some(id) = outputs
                .as_ref()
                .and_then(|r| r.get("id"))
                .and_then(Json::as_str)
            {
                fill(&mut o.response_id, Some(id.to_string()));
            }
            if let Some(model) = outputs
                .as_ref()
                .and_then(|r| r.get("model"))
                .and_then(Json::as_str)
            {
                fill(&mut o.response_model, Some(model.to_string()));
            }
            o.output_messages = vec![m];
        }
        Some(_) => {}
        None => fill(&mut o.output, outputs),
    }
}

fn text(v: &Json) -> String {
    super::attrs::json_text(v)
}

//! Arize OpenInference: `openinference.span.kind`, flattened `llm.*`
//! messages, token counts and costs, `input.value`/`output.value`, `tool.*`,
//! `session.id`, `user.id`, `metadata`, `tag.tags`.

use serde_json::{Map, Value as Json};

use super::attrs::Attrs;
use super::attrs::{json_text, parse_json_string};
use super::messages::{openinference_message, take_flattened};
use super::{GenAiSpan, Reader, fill, openai_tool_definition};

pub(super) const PROJECT_KEY: &str = "openinference.project.name";

pub(super) fn read(r: &mut Reader<'_>) {
    let a = &mut r.attrs;
    let o = &mut r.out;
    fill(
        &mut r.hints.openinference,
        a.take_string("openinference.span.kind"),
    );
    fill(&mut o.project_name, a.take_string(PROJECT_KEY));
    fill(
        &mut o.project_name,
        super::opik_attributes::resource_string(r.ctx.resource_attributes, PROJECT_KEY),
    );
    fill(&mut o.response_model, a.take_string("llm.model_name"));
    fill(
        &mut o.request_model,
        a.take_string("llm.request.model_name"),
    );
    fill(
        &mut o.response_model,
        a.take_string("llm.response.model_name"),
    );
    fill(&mut o.request_model, a.take_string("embedding.model_name"));
    fill(&mut o.provider, a.take_string("llm.provider"));
    fill(&mut o.provider, a.take_string("llm.system"));

    a.content(|a| read_messages(a, o));
    let tools: Vec<Json> = take_flattened(a, "llm.tools.")
        .iter()
        .filter_map(|f| f.get("tool.json_schema").map(openai_tool_definition))
        .collect();
    if o.tool_definitions.is_empty() {
        o.tool_definitions = tools;
    }
    if let Some(Json::Object(params)) = a.take_json("llm.invocation_parameters") {
        for (k, v) in params {
            o.request_params.entry(k).or_insert(v);
        }
    }
    if let Some(reason) = a.take_string("llm.finish_reason") {
        if o.finish_reasons.is_empty() {
            o.finish_reasons = vec![reason];
        }
    }

    let u = &mut o.usage;
    fill(&mut u.input, a.take_i64("llm.token_count.prompt"));
    fill(&mut u.output, a.take_i64("llm.token_count.completion"));
    fill(&mut u.total, a.take_i64("llm.token_count.total"));
    fill(
        &mut u.cache_read,
        a.take_i64("llm.token_count.prompt_details.cache_read"),
    );
    fill(
        &mut u.cache_creation,
        a.take_i64("llm.token_count.prompt_details.cache_write"),
    );
    fill(
        &mut u.reasoning,
        a.take_i64("llm.token_count.completion_details.reasoning"),
    );
    let c = &mut o.cost;
    fill(&mut c.input, a.take_f64("llm.cost.prompt"));
    fill(&mut c.output, a.take_f64("llm.cost.completion"));
    fill(&mut c.total, a.take_f64("llm.cost.total"));

    let input_mime = a.take_string("input.mime_type");
    let output_mime = a.take_string("output.mime_type");
    a.content(|a| {
        fill(
            &mut o.input,
            a.take_string("input.value")
                .map(|v| io_value(&v, input_mime.as_deref())),
        );
        fill(
            &mut o.output,
            a.take_string("output.value")
                .map(|v| io_value(&v, output_mime.as_deref())),
        );
    });

    if a.has("tool.name") || a.has("tool_call.id") {
        r.hints.tool_attributes = true;
    }
    fill(&mut o.tool.name, a.take_string("tool.name"));
    fill(&mut o.tool.description, a.take_string("tool.description"));
    // The tool's parameter *schema*; the call's arguments are `input.value`.
    fill(&mut o.tool.parameters, a.take_json("tool.parameters"));
    fill(&mut o.tool.call_id, a.take_string("tool_call.id"));
    fill(&mut o.tool.name, a.take_string("tool_call.function.name"));
    a.content(|a| {
        fill(
            &mut o.tool.arguments,
            a.take_json("tool_call.function.arguments"),
        );
        fill(&mut o.tool.result, a.take_json("tool.output"));
    });

    fill(&mut o.conversation_id, a.take_string("session.id"));
    fill(&mut o.user_id, a.take_string("user.id"));
    fill(&mut o.agent_name, a.take_string("agent.name"));
    if let Some(m) = a.take_json("metadata") {
        // LangChain (JS and Python) via OpenInference states the provider
        // only as LangSmith's `ls_provider` metadata.
        let ls = |k: &str| m.get(k).and_then(Json::as_str).map(str::to_string);
        fill(&mut o.provider, ls("ls_provider"));
        fill(&mut o.request_model, ls("ls_model_name"));
        merge_metadata(&mut o.custom_metadata, m);
    }
    if let Some(tags) = a.take_string_list("tag.tags") {
        o.tags.extend(tags);
    }
    let docs: Vec<Json> = a
        .content(|a| take_flattened(a, "retrieval.documents."))
        .into_iter()
        .map(|f| {
            let doc: Map<String, Json> = f
                .into_iter()
                .map(|(k, v)| (k.trim_start_matches("document.").to_string(), v))
                .collect();
            Json::Object(doc)
        })
        .collect();
    if !docs.is_empty() {
        fill(&mut o.output, Some(serde_json::json!({"documents": docs})));
    }
}

/// `input.value`/`output.value`: JSON when the mime type says so or it parses as JSON.
fn io_value(v: &str, mime: Option<&str>) -> Json {
    if mime == Some("application/json") {
        serde_json::from_str(v).unwrap_or_else(|_| Json::String(v.to_string()))
    } else {
        parse_json_string(v)
    }
}

/// Custom metadata: an object is merged key by key; anything else is kept under `metadata`.
pub(super) fn merge_metadata(into: &mut Map<String, Json>, m: Json) {
    match m {
        Json::Object(obj) => {
            for (k, v) in obj {
                into.entry(k).or_insert(v);
            }
        }
        Json::Null => {}
        other => {
            into.entry("metadata").or_insert(other);
        }
    }
}

/// Flattened input and output messages, prompts and choices: content.
fn read_messages(a: &mut Attrs<'_>, o: &mut GenAiSpan) {
    let inputs = take_flattened(a, "llm.input_messages.");
    if o.input_messages.is_empty() {
        o.input_messages = inputs.iter().map(openinference_message).collect();
    }
    let outputs = take_flattened(a, "llm.output_messages.");
    if o.output_messages.is_empty() {
        o.output_messages = outputs.iter().map(openinference_message).collect();
    }
    let prompts: Vec<String> = take_flattened(a, "llm.prompts.")
        .iter()
        .filter_map(|f| f.get("prompt.text").map(json_text))
        .collect();
    if o.prompts.is_empty() {
        o.prompts = prompts;
    }
    let choices: Vec<String> = take_flattened(a, "llm.choices.")
        .iter()
        .filter_map(|f| f.get("completion.text").map(json_text))
        .collect();
    if o.completions.is_empty() {
        o.completions = choices;
    }
}

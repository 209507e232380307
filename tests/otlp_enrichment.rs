//! OpenInference enrichment and privacy mode for every dialect fixture,
//! through the OTLP destination's mapper and request builder.

mod common;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;
use tracebridge::destination::otlp::config::SemconvMode;
use tracebridge::destination::otlp::{OtlpItem, request};
use tracebridge::route::ReceivedTraces;

fn fixture(name: &str) -> ReceivedTraces {
    common::dialect_fixture(name)
}

fn map(name: &str, semconv: SemconvMode, privacy: bool) -> Vec<OtlpItem> {
    common::targets::otlp_items(&fixture(name), semconv, privacy.then(Default::default))
}

fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn s<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match get(attrs, key)? {
        Value::StringValue(v) => Some(v),
        _ => None,
    }
}

/// (span name, kind, model, prompt tokens, first input message content, first output content or tool call)
type Expect = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<i64>,
    Option<&'static str>,
    Option<&'static str>,
);

#[test]
fn every_dialect_is_enriched_with_openinference() {
    let cases: &[(&str, &[Expect])] = &[
        (
            "genai_v1_37",
            &[
                (
                    "invoke_agent travel_planner",
                    "AGENT",
                    None,
                    None,
                    None,
                    None,
                ),
                (
                    "chat gemini-2.5-pro",
                    "LLM",
                    Some("gemini-2.5-pro-001"),
                    Some(1200),
                    Some("You plan trips. Use tools."),
                    Some("search_flights"),
                ),
                (
                    "execute_tool search_flights",
                    "TOOL",
                    None,
                    None,
                    None,
                    None,
                ),
            ],
        ),
        (
            "genai_legacy",
            &[
                (
                    "chat gpt-4o-mini",
                    "LLM",
                    Some("gpt-4o-mini-2024-07-18"),
                    Some(55),
                    Some("You are a support bot."),
                    Some("Order 42 has shipped."),
                ),
                (
                    "openai.chat",
                    "LLM",
                    Some("claude-3-5-haiku"),
                    Some(30),
                    Some("Summarise the ticket"),
                    Some("Customer asks about order 42; it shipped."),
                ),
            ],
        ),
        (
            "openllmetry",
            &[
                ("recipe_workflow.workflow", "CHAIN", None, None, None, None),
                (
                    "openai.chat",
                    "LLM",
                    Some("gpt-4o-2024-08-06"),
                    Some(120),
                    Some("You are a chef."),
                    Some("Paella needs rice, saffron and stock."),
                ),
                ("lookup_recipe.tool", "TOOL", None, None, None, None),
            ],
        ),
        (
            "openinference",
            &[
                (
                    "ChatCompletion",
                    "LLM",
                    Some("gpt-4o-2024-08-06"),
                    Some(300),
                    Some("Answer from the docs."),
                    Some("search_docs"),
                ),
                ("search_docs", "TOOL", None, None, None, None),
            ],
        ),
        (
            "vercel",
            &[
                (
                    "ai.generateText",
                    "CHAIN",
                    Some("gpt-4o-mini"),
                    Some(150),
                    None,
                    None,
                ),
                (
                    "ai.generateText.doGenerate",
                    "LLM",
                    Some("gpt-4o-mini-2024-07-18"),
                    Some(100),
                    Some("You report weather."),
                    Some("weather"),
                ),
                ("ai.toolCall", "TOOL", None, None, None, None),
            ],
        ),
        (
            "openrouter",
            &[(
                "LLM Generation",
                "LLM",
                Some("kimi-k2"),
                Some(29),
                Some("Be helpful."),
                Some("Use the 'Forgot password' link on the sign-in page."),
            )],
        ),
        (
            "logfire",
            &[
                (
                    "agent run",
                    "AGENT",
                    Some("gpt-4o"),
                    Some(210),
                    Some("You are a math tutor."),
                    None,
                ),
                (
                    "chat gpt-4o",
                    "LLM",
                    Some("gpt-4o-2024-08-06"),
                    Some(100),
                    Some("You are a math tutor."),
                    Some("multiply"),
                ),
                ("running tool: multiply", "TOOL", None, None, None, None),
            ],
        ),
        (
            "unknown",
            // A plain HTTP span: no OpenInference kind (not a CHAIN).
            &[("POST /charge", "", None, None, None, None)],
        ),
    ];
    for (dialect, expects) in cases {
        let items = map(dialect, SemconvMode::Openinference, false);
        for (name, kind, model, prompt, first_in, first_out) in expects.iter() {
            let item = items
                .iter()
                .find(|i| i.decoded_span().name == *name)
                .unwrap_or_else(|| panic!("{dialect}: no span {name}"));
            let span = item.decoded_span();
            let a = &span.attributes;
            let ctx = format!("{dialect} / {name}");
            let want_kind = (!kind.is_empty()).then_some(*kind);
            assert_eq!(s(a, "openinference.span.kind"), want_kind, "{ctx}");
            if let Some(m) = model {
                assert_eq!(s(a, "llm.model_name"), Some(*m), "{ctx}");
            }
            if let Some(p) = prompt {
                assert_eq!(
                    get(a, "llm.token_count.prompt"),
                    Some(&Value::IntValue(*p)),
                    "{ctx}"
                );
            }
            if let Some(text) = first_in {
                assert_eq!(
                    s(a, "llm.input_messages.0.message.content"),
                    Some(*text),
                    "{ctx}"
                );
            }
            if let Some(out) = first_out {
                let content = s(a, "llm.output_messages.0.message.content");
                let call = s(
                    a,
                    "llm.output_messages.0.message.tool_calls.0.tool_call.function.name",
                );
                assert!(
                    content == Some(*out) || call == Some(*out),
                    "{ctx}: {content:?} / {call:?}"
                );
            }
            if *kind == "TOOL" {
                assert!(
                    s(a, "tool.name").is_some() || s(a, "tool.parameters").is_some(),
                    "{ctx}"
                );
                assert!(s(a, "input.value").is_some(), "{ctx}");
            }
            let resource = &item.resource.resource.attributes;
            // The resource's own project (openinference fixture) beats the destination's default.
            let project = if *dialect == "openinference" {
                "support-rag"
            } else {
                "fixtures"
            };
            assert_eq!(
                s(resource, "openinference.project.name"),
                Some(project),
                "{ctx}"
            );
            assert_eq!(
                s(resource, "deployment.environment.name"),
                Some("test"),
                "{ctx}"
            );
        }
    }
}

#[test]
fn existing_openinference_attributes_are_never_overwritten() {
    let items = map("openinference", SemconvMode::Openinference, false);
    let llm = items
        .iter()
        .find(|i| i.decoded_span().name == "ChatCompletion")
        .unwrap()
        .decoded_span();
    let count = |k: &str| llm.attributes.iter().filter(|kv| kv.key == k).count();
    for key in [
        "openinference.span.kind",
        "llm.model_name",
        "input.value",
        "llm.token_count.prompt",
        "session.id",
    ] {
        assert_eq!(count(key), 1, "{key}");
    }
    assert_eq!(
        s(&llm.attributes, "output.value"),
        Some("calling search_docs"),
        "the original stays"
    );
}

#[test]
fn passthrough_forwards_the_bytes_received_without_encoding_them_again() {
    use prost::Message as _;
    let mut received = fixture("genai_legacy");
    let raw = bytes::Bytes::from(
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
            resource_spans: received.resource_spans.clone(),
        }
        .encode_to_vec(),
    );
    received.raw = Some(raw.clone());
    let items = common::targets::otlp_items(&received, SemconvMode::Passthrough, None);
    let spans: Vec<_> = received.spans().collect();
    assert_eq!(items.len(), spans.len());
    let within = raw.as_ptr_range();
    for (item, span) in items.iter().zip(spans) {
        assert_eq!(item.decoded_span(), *span);
        assert!(
            within.contains(&item.message.as_ptr()),
            "a slice of the request, not a new encoding"
        );
    }
}

#[test]
fn passthrough_adds_nothing_but_the_project() {
    let items = map("genai_legacy", SemconvMode::Passthrough, false);
    let original = fixture("genai_legacy");
    let before = &original.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(items[0].decoded_span(), *before);
}

#[test]
fn privacy_mode_leaves_no_prompt_in_the_exported_bytes() {
    let extra = ["saffron", "price_eur"];
    let secrets: Vec<&str> = common::FIXTURE_CONTENT
        .iter()
        .chain(&extra)
        .copied()
        .collect();
    let dialects = [
        "genai_v1_37",
        "genai_legacy",
        "openllmetry",
        "openinference",
        "vercel",
        "openrouter",
        "logfire",
        "unknown",
    ];
    for semconv in [SemconvMode::Passthrough, SemconvMode::Openinference] {
        let mut bytes = Vec::new();
        let mut json = String::new();
        for d in dialects {
            let items = map(d, semconv, true);
            let req = request::build(&items);
            bytes.extend(req.encode_to_vec());
            json.push_str(&serde_json::to_string(&req).unwrap());
        }
        let text = String::from_utf8_lossy(&bytes);
        for secret in &secrets {
            assert!(
                !text.contains(secret) && !json.contains(secret),
                "{semconv:?} leaked {secret:?}"
            );
        }
        // Usage, model and timing stay.
        assert!(json.contains("gen_ai.usage.input_tokens"));
        assert!(json.contains("gpt-4o-mini"));
    }
    // And the test can fail: without privacy mode the content is there.
    let items = map("genai_v1_37", SemconvMode::Openinference, false);
    let text = String::from_utf8_lossy(&request::build(&items).encode_to_vec()).to_string();
    assert!(text.contains("Find me a flight to Lisbon"));
}

/// openai + opentelemetry-instrumentation-openai-v2 in `event_only` mode
/// (a real capture): the messages are only in its log records; with them
/// joined, the chat span's OpenInference attributes carry them, whichever
/// comes first (the span waiting for its records), and none under privacy.
#[test]
fn an_event_only_capture_gets_its_messages_from_the_log_records() {
    use tracebridge::export::ItemMapper as _;
    let traces = common::producer_fixture("openai-v2-event");
    let logs = common::producer_logs("openai-v2-event").unwrap();
    for (order, privacy) in [
        ("logs first", false),
        ("spans first", false),
        ("logs first", true),
    ] {
        let mut target = common::targets::otlp_target(SemconvMode::Openinference);
        target.log_join.span_wait = std::time::Duration::from_secs(5);
        let mut m = tracebridge::destination::otlp::OtlpMapper::new(
            target,
            privacy.then(Default::default),
            tracebridge::telemetry::DestinationTelemetry::new(
                &tracebridge::telemetry::Metrics::new(),
                "o",
            ),
        );
        let mut out = Vec::new();
        let requests = match order {
            "logs first" => [&logs, &traces],
            _ => [&traces, &logs],
        };
        for r in requests {
            m.map(r, &mut out);
        }
        let text: String = out
            .iter()
            .map(|i| i.decoded_span())
            .flat_map(|span| span.attributes)
            .filter(|kv| kv.key.starts_with("llm.input_messages."))
            .filter_map(|kv| match kv.value?.value? {
                Value::StringValue(v) => Some(v),
                _ => None,
            })
            .collect();
        if privacy {
            assert!(
                !common::PRODUCER_CONTENT.iter().any(|c| text.contains(c)),
                "{order}: {text}"
            );
        } else {
            assert!(text.contains("weather in Paris"), "{order}: {text}");
        }
    }
}

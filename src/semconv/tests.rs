//! Normaliser tests that cut across dialects: precedence, value shapes,
//! kind resolution. Per-dialect behaviour is covered by the golden files
//! (tests/golden/opik) and the enrichment tests (tests/otlp_enrichment.rs).

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValueList};
use opentelemetry_proto::tonic::trace::v1::Span;

use super::*;
use crate::pdata::key_value;

fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

fn span(attrs: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>) -> Span {
    Span {
        attributes: attrs,
        ..Default::default()
    }
}

fn norm(attrs: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>) -> GenAiSpan {
    normalise(&span(attrs), SpanContext::default())
}

#[test]
fn the_newer_convention_wins_and_the_older_key_is_still_claimed() {
    let g = norm(vec![
        key_value("gen_ai.system", s("az.ai.openai")),
        key_value("gen_ai.provider.name", s("openai")),
        key_value("gen_ai.usage.prompt_tokens", Value::IntValue(9)),
        key_value("gen_ai.usage.input_tokens", Value::IntValue(10)),
    ]);
    assert_eq!(g.provider.as_deref(), Some("openai"));
    assert_eq!(g.usage.input, Some(10));
    assert!(g.other_attributes.is_empty(), "{:?}", g.other_attributes);
}

#[test]
fn structured_message_attributes_are_read_like_json_strings() {
    let text_part = AnyValue {
        value: Some(Value::KvlistValue(KeyValueList {
            values: vec![
                key_value("type", s("text")),
                key_value("content", s("hello")),
            ],
        })),
    };
    let message = AnyValue {
        value: Some(Value::KvlistValue(KeyValueList {
            values: vec![
                key_value("role", s("user")),
                key_value(
                    "parts",
                    Value::ArrayValue(ArrayValue {
                        values: vec![text_part],
                    }),
                ),
            ],
        })),
    };
    let structured = norm(vec![key_value(
        "gen_ai.input.messages",
        Value::ArrayValue(ArrayValue {
            values: vec![message],
        }),
    )]);
    let as_string = norm(vec![key_value(
        "gen_ai.input.messages",
        s(r#"[{"role":"user","parts":[{"type":"text","content":"hello"}]}]"#),
    )]);
    assert_eq!(structured.input_messages, as_string.input_messages);
    assert_eq!(
        structured.input_messages,
        vec![Message::text("user", "hello")]
    );
}

#[test]
fn malformed_values_are_kept_raw_and_warned_about() {
    let g = norm(vec![
        key_value("gen_ai.input.messages", s("[{not json")),
        key_value("gen_ai.usage.output_tokens", s("many")),
    ]);
    assert!(g.input_messages.is_empty());
    assert_eq!(g.other_attributes["gen_ai.input.messages"], "[{not json");
    assert_eq!(g.other_attributes["gen_ai.usage.output_tokens"], "many");
    assert_eq!(
        g.warnings.iter().map(|w| w.as_str()).collect::<Vec<_>>(),
        vec!["invalid_json", "expected_integer"]
    );
}

#[test]
fn the_kind_comes_from_the_most_explicit_statement() {
    let g = norm(vec![
        key_value("gen_ai.operation.name", s("chat")),
        key_value("openinference.span.kind", s("GUARDRAIL")),
    ]);
    assert_eq!(g.kind, Kind::Guardrail);
    let g = norm(vec![key_value(
        "gen_ai.operation.name",
        s("invoke_workflow"),
    )]);
    assert_eq!(g.kind, Kind::General);
    let g = norm(vec![key_value("gen_ai.tool.name", s("search"))]);
    assert_eq!(g.kind, Kind::Tool, "a tool name alone makes a tool span");
    let g = norm(vec![
        key_value("gen_ai.request.model", s("gpt-4o")),
        key_value("gen_ai.usage.input_tokens", Value::IntValue(3)),
    ]);
    assert_eq!(g.kind, Kind::Llm);
    assert_eq!(
        norm(vec![key_value("http.route", s("/x"))]).kind,
        Kind::General
    );
}

#[test]
fn errors_come_from_the_last_exception_event_then_the_status() {
    use opentelemetry_proto::tonic::trace::v1::span::Event;
    use opentelemetry_proto::tonic::trace::v1::{Status, status::StatusCode};
    let mut sp = span(vec![key_value("error.type", s("RateLimitError"))]);
    sp.status = Some(Status {
        code: StatusCode::Error as i32,
        message: "429 from provider".into(),
    });
    let g = normalise(&sp, SpanContext::default());
    let e = g.error.unwrap();
    assert_eq!(
        (e.exception_type.as_str(), e.traceback.as_str()),
        ("RateLimitError", "429 from provider")
    );
    sp.events = vec![
        Event {
            name: "exception".into(),
            attributes: vec![key_value("exception.type", s("First"))],
            ..Default::default()
        },
        Event {
            name: "exception".into(),
            attributes: vec![
                key_value("exception.type", s("ValueError")),
                key_value("exception.message", s("bad")),
            ],
            ..Default::default()
        },
    ];
    let e = normalise(&sp, SpanContext::default()).error.unwrap();
    assert_eq!(e.exception_type, "ValueError");
    assert_eq!(
        e.traceback, "bad",
        "the message stands in for a missing stack trace"
    );
}

#[test]
fn routing_project_follows_the_normalisers_order() {
    let resource = vec![
        key_value("openinference.project.name", s("from-resource-oi")),
        key_value("opik.project_name", s("from-resource-opik")),
    ];
    let ctx = SpanContext {
        resource_attributes: &resource,
        scope_name: "",
    };
    let with = |attrs| {
        let sp = span(attrs);
        (routing_project(&sp, ctx), normalise(&sp, ctx).project_name)
    };
    let (cheap, full) = with(vec![key_value(
        "openinference.project.name",
        s("from-span-oi"),
    )]);
    assert_eq!(
        cheap.as_deref(),
        Some("from-resource-opik"),
        "opik.project_name anywhere beats openinference"
    );
    assert_eq!(cheap, full);
    let (cheap, full) = with(vec![key_value("opik.project_name", s("from-span-opik"))]);
    assert_eq!(cheap.as_deref(), Some("from-span-opik"));
    assert_eq!(cheap, full);
    let bare = span(vec![]);
    assert_eq!(routing_project(&bare, SpanContext::default()), None);
}

#[test]
fn an_empty_openllmetry_node_call_record_is_no_input() {
    let g = norm(vec![
        key_value("traceloop.span.kind", s("workflow")),
        key_value("traceloop.entity.input", s(r#"{"args":[],"kwargs":{}}"#)),
    ]);
    assert_eq!(g.input, None);
    let g = norm(vec![
        key_value("traceloop.span.kind", s("workflow")),
        key_value(
            "traceloop.entity.input",
            s(r#"{"args":["Paris"],"kwargs":{}}"#),
        ),
    ]);
    assert!(g.input.is_some());
}

#[test]
fn langchain_via_openinference_gets_its_provider_from_ls_provider() {
    let g = norm(vec![
        key_value("openinference.span.kind", s("LLM")),
        key_value("llm.model_name", s("my-finetune")),
        key_value(
            "metadata",
            s(r#"{"ls_provider":"mistral","ls_model_name":"my-finetune","thread_id":"t"}"#),
        ),
    ]);
    assert_eq!(g.provider.as_deref(), Some("mistral"));
}

#[test]
fn environment_ttft_and_user_are_read_from_any_dialect() {
    let resource = vec![key_value("deployment.environment.name", s("prod"))];
    let ctx = SpanContext {
        resource_attributes: &resource,
        scope_name: "",
    };
    let g = normalise(
        &span(vec![
            key_value(
                "gen_ai.response.time_to_first_chunk",
                Value::DoubleValue(0.25),
            ),
            key_value("enduser.id", s("u-1")),
        ]),
        ctx,
    );
    assert_eq!(g.environment.as_deref(), Some("prod"));
    assert_eq!(g.ttft_ms, Some(250.0));
    assert_eq!(g.user_id.as_deref(), Some("u-1"));
    let g = normalise(
        &span(vec![
            key_value("deployment.environment", s("staging")),
            key_value("gen_ai.server.time_to_first_token", Value::IntValue(715)),
        ]),
        ctx,
    );
    assert_eq!(g.environment.as_deref(), Some("staging"), "the span wins");
    assert_eq!(g.ttft_ms, Some(715.0), "an integer is milliseconds");
    assert!(g.other_attributes.is_empty());
}

#[test]
fn langfuse_observations_are_read() {
    let g = normalise(
        &Span {
            start_time_unix_nano: 1_767_225_600_000_000_000,
            attributes: vec![
                key_value("langfuse.observation.type", s("generation")),
                key_value("langfuse.observation.model.name", s("gpt-4o")),
                key_value(
                    "langfuse.observation.input",
                    s(r#"[{"role":"user","content":"hi"}]"#),
                ),
                key_value("langfuse.observation.output", s(r#"{"text":"hello"}"#)),
                key_value(
                    "langfuse.observation.usage_details",
                    s(r#"{"input":10,"output":2,"cache_read_input_tokens":4}"#),
                ),
                key_value("langfuse.observation.cost_details", s(r#"{"total":0.01}"#)),
                key_value(
                    "langfuse.observation.completion_start_time",
                    s("\"2026-01-01T00:00:00.250Z\""),
                ),
                key_value("langfuse.trace.name", s("flow")),
                key_value("langfuse.session.id", s("s-1")),
                key_value("langfuse.environment", s("prod")),
                key_value("langfuse.observation.prompt.name", s("greeting")),
            ],
            ..Default::default()
        },
        SpanContext::default(),
    );
    assert_eq!(g.kind, Kind::Llm);
    assert_eq!(g.input_messages.len(), 1);
    assert_eq!(g.usage.cache_read, Some(4));
    assert_eq!(g.cost.total, Some(0.01));
    assert_eq!(g.ttft_ms, Some(250.0));
    assert_eq!(g.trace_name.as_deref(), Some("flow"));
    assert_eq!(g.conversation_id.as_deref(), Some("s-1"));
    assert_eq!(g.environment.as_deref(), Some("prod"));
    assert_eq!(g.custom_metadata["prompt_name"], "greeting");
    assert_eq!(g.provider.as_deref(), Some("openai"));
    assert!(g.other_attributes.is_empty(), "{:?}", g.other_attributes);
}

#[test]
fn livekit_llm_nodes_and_function_tools_are_read() {
    let g = norm(vec![
        key_value("lk.agent_name", s("concierge")),
        key_value("lk.pii.instructions", s("Be brief.")),
        key_value(
            "lk.pii.chat_ctx",
            s(
                r#"{"items":[{"type":"message","role":"user","content":["hi"]},{"type":"function_call","call_id":"c1","name":"f","arguments":"{\"x\":1}"},{"type":"function_call_output","call_id":"c1","output":"ok"}]}"#,
            ),
        ),
        key_value("lk.pii.response.text", s("hello")),
    ]);
    assert_eq!(g.agent_name.as_deref(), Some("concierge"));
    assert_eq!(g.system_instructions, vec![Part::Text("Be brief.".into())]);
    assert_eq!(g.input_messages.len(), 3);
    assert_eq!(g.output_messages[0].joined_text().as_deref(), Some("hello"));
    let t = norm(vec![
        key_value("lk.function_tool.name", s("lookup")),
        key_value("lk.pii.function_tool.arguments", s(r#"{"q":"x"}"#)),
        key_value("lk.pii.function_tool.output", s("found")),
    ]);
    assert_eq!(t.kind, Kind::Tool);
    assert_eq!(t.tool.arguments, Some(serde_json::json!({"q": "x"})));
    assert_eq!(t.tool.result, Some(serde_json::json!("found")));
}

#[test]
fn a_json_encoded_tool_result_is_decoded() {
    // AI SDK 7 and LiveKit 1.8 JSON-encode even a plain string result.
    let result = |v: &str| {
        norm(vec![
            key_value("gen_ai.tool.name", s("get_weather")),
            key_value("gen_ai.tool.call.result", s(v)),
        ])
        .tool
        .result
    };
    assert_eq!(
        result(r#""sunny, 22°C""#),
        Some(serde_json::json!("sunny, 22°C"))
    );
    assert_eq!(
        result("sunny, 22°C"),
        Some(serde_json::json!("sunny, 22°C"))
    );
    assert_eq!(result(r#"{"t":22}"#), Some(serde_json::json!({"t": 22})));
}

#[test]
fn livekit_wrappers_of_the_model_call_are_no_llm_spans() {
    // livekit-agents 1.8.9 (tests/fixtures/producers/livekit-agents.traces.json):
    // `llm_node` names the model and provider of the `llm_request` it
    // spawns; its system message ends with a prompt-cache marker.
    let node = norm(vec![
        key_value("gen_ai.request.model", s("gpt-4o-mini")),
        key_value("gen_ai.provider.name", s("api.openai.com")),
        key_value(
            "lk.pii.chat_ctx",
            s(
                r#"{"items":[{"type":"message","role":"system","content":["Be brief.",{"type":"cache_breakpoint"}]},{"type":"agent_config_update","instructions":"Be brief."},{"type":"message","role":"user","content":["hi"]}]}"#,
            ),
        ),
        key_value("lk.pii.response.text", s("")),
        key_value(
            "lk.pii.response.function_calls",
            s(r#"[{"call_id":"c1","name":"f","arguments":"{}"}]"#),
        ),
    ]);
    assert_eq!(node.kind, Kind::General);
    assert_eq!((node.request_model, node.provider), (None, None));
    assert_eq!(node.input_messages[0], Message::text("system", "Be brief."));
    assert_eq!(node.input_messages.len(), 2);
    assert_eq!(node.output_messages[0].parts.len(), 1, "no empty text part");
    // The call itself keeps them.
    let call = norm(vec![
        key_value("gen_ai.operation.name", s("chat")),
        key_value("gen_ai.request.model", s("gpt-4o-mini")),
        key_value("lk.llm_metrics", s("{}")),
    ]);
    assert_eq!(call.kind, Kind::Llm);
    assert_eq!(call.request_model.as_deref(), Some("gpt-4o-mini"));
    // Other spans naming a model keep it (`user_turn`: the STT model).
    let turn = norm(vec![
        key_value("gen_ai.request.model", s("nova-3")),
        key_value("lk.pii.user_transcript", s("hi")),
    ]);
    assert_eq!(turn.request_model.as_deref(), Some("nova-3"));
}

#[test]
fn generic_input_and_output_are_content() {
    let g = norm(vec![
        key_value("input", s(r#"{"question":"q"}"#)),
        key_value("output", s("plain answer")),
    ]);
    assert_eq!(g.input, Some(serde_json::json!({"question": "q"})));
    assert_eq!(g.output, Some(serde_json::json!("plain answer")));
    assert!(
        g.claims
            .attributes
            .iter()
            .all(|c| *c == privacy::Claim::Content)
    );
}

#[test]
fn pipecat_llm_spans_are_read_as_its_tracing_writes_them() {
    // pipecat-ai 1.14.0, `utils/tracing/service_attributes.py::add_llm_span_attributes`
    // and `service_decorators.py::_add_token_usage_to_span`, as captured
    // (tests/fixtures/producers/pipecat.traces.json).
    let ctx = SpanContext {
        scope_name: "pipecat",
        ..Default::default()
    };
    let tools = r#"[{"type":"function","function":{"name":"get_weather","parameters":{}}}]"#;
    let attrs = vec![
        key_value("gen_ai.provider.name", s("openai")),
        key_value("gen_ai.request.model", s("gpt-4o-mini")),
        key_value("gen_ai.operation.name", s("chat")),
        key_value("stream", Value::BoolValue(true)),
        key_value(
            "input",
            s(r#"[{"role":"user","content":"What is the weather in Paris?"}]"#),
        ),
        key_value("output", s("Sunny.")),
        key_value("tools", s(tools)),
        key_value("tool_count", Value::IntValue(1)),
        key_value("gen_ai.system_instructions", s("Be brief.")),
        key_value("param.model", s("gpt-4o-mini")),
        key_value(
            "param.filter_incomplete_user_turns",
            Value::BoolValue(false),
        ),
        key_value("param.user_turn_completion_config", s("NOT_GIVEN")),
        key_value("gen_ai.request.top_k", s("NOT_GIVEN")),
        key_value("metrics.ttfb", Value::DoubleValue(0.25)),
        key_value("gen_ai.usage.input_tokens", Value::IntValue(42)),
    ];
    let g = normalise(&span(attrs), ctx);
    assert_eq!(g.kind, Kind::Llm);
    assert_eq!(
        g.input_messages,
        vec![Message::text("user", "What is the weather in Paris?")]
    );
    assert_eq!(
        g.output_messages,
        vec![Message::text("assistant", "Sunny.")]
    );
    assert_eq!(g.system_instructions, vec![Part::Text("Be brief.".into())]);
    assert!(
        g.warnings.is_empty(),
        "plain-text instructions are not malformed"
    );
    assert_eq!(g.tool_definitions[0]["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::Value::Object(g.request_params.clone()),
        serde_json::json!({"stream": true, "filter_incomplete_user_turns": false})
    );
    assert_eq!(g.ttft_ms, Some(250.0));
    assert_eq!(g.usage.input, Some(42));
    assert!(g.other_attributes.is_empty(), "{:?}", g.other_attributes);
    // Its voice services: `tts` speaks `text`, `stt` hears `transcript` (content).
    let voice = |op: &str, key: &str| {
        let attrs = vec![
            key_value("gen_ai.operation.name", s(op)),
            key_value(key, s("sunny in Paris")),
        ];
        normalise(&span(attrs), ctx)
    };
    let tts = voice("tts", "text");
    assert_eq!(tts.input, Some(serde_json::json!("sunny in Paris")));
    let stt = voice("stt", "transcript");
    assert_eq!(stt.output, Some(serde_json::json!("sunny in Paris")));
    assert!(stt.claims.attributes.contains(&privacy::Claim::Content));
    // The conversation and its turns: the thread.
    let turn = SpanContext {
        scope_name: "pipecat.turn",
        ..Default::default()
    };
    let attrs = vec![
        key_value("conversation.id", s("session-123")),
        key_value("turn.number", Value::IntValue(1)),
    ];
    let g = normalise(&span(attrs), turn);
    assert_eq!(g.conversation_id.as_deref(), Some("session-123"));
}

#[test]
fn image_parts_become_image_url_blocks() {
    let g = norm(vec![key_value(
        "gen_ai.input.messages",
        s(
            r#"[{"role":"user","parts":[{"type":"blob","modality":"image","mime_type":"image/jpeg","content":"QUJD"},{"type":"uri","modality":"image","uri":"https://x/cat.png"},{"type":"uri","modality":"video","uri":"https://x/v.mp4"}]}]"#,
        ),
    )]);
    let parts = &g.input_messages[0].parts;
    assert_eq!(
        parts[0],
        Part::Other(
            serde_json::json!({"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}})
        )
    );
    assert_eq!(
        parts[1],
        Part::Other(
            serde_json::json!({"type": "image_url", "image_url": {"url": "https://x/cat.png"}})
        )
    );
    assert!(matches!(&parts[2], Part::Other(v) if v["type"] == "uri"));
    let oi = norm(vec![
        key_value("llm.input_messages.0.message.role", s("user")),
        key_value(
            "llm.input_messages.0.message.contents.0.message_content.type",
            s("image"),
        ),
        key_value(
            "llm.input_messages.0.message.contents.0.message_content.image.image.url",
            s("https://x/dog.png"),
        ),
    ]);
    assert_eq!(
        oi.input_messages[0].parts[0],
        Part::Other(
            serde_json::json!({"type": "image_url", "image_url": {"url": "https://x/dog.png"}})
        )
    );
}

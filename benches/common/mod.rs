//! What the benchmarks share: the realistic GenAI request they run on.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tracebridge::pdata::key_value;

/// A request of `spans` LLM spans (ten per trace) with realistic GenAI attributes (~1 KiB of content each).
pub fn genai_request(spans: usize) -> ExportTraceServiceRequest {
    let spans = (0..spans)
        .map(|i| Span {
            trace_id: [(i / 10) as u8 + 1; 16].to_vec(),
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            parent_span_id: if i % 10 == 0 { vec![] } else { ((i / 10 * 10) as u64 + 1).to_be_bytes().to_vec() },
            name: "chat gpt-4o".into(),
            kind: 3,
            start_time_unix_nano: 1_767_225_600_000_000_000 + i as u64 * 1_000_000,
            end_time_unix_nano: 1_767_225_601_000_000_000 + i as u64 * 1_000_000,
            attributes: vec![
                key_value("gen_ai.operation.name", Value::StringValue("chat".into())),
                key_value("gen_ai.provider.name", Value::StringValue("openai".into())),
                key_value("gen_ai.request.model", Value::StringValue("gpt-4o".into())),
                key_value("gen_ai.usage.input_tokens", Value::IntValue(812)),
                key_value("gen_ai.usage.output_tokens", Value::IntValue(96)),
                key_value("gen_ai.request.temperature", Value::DoubleValue(0.2)),
                key_value(
                    "gen_ai.input.messages",
                    Value::StringValue(format!(
                        r#"[{{"role":"user","parts":[{{"type":"text","content":"{}"}}]}}]"#,
                        "Summarise the quarterly report for the board. ".repeat(12)
                    )),
                ),
                key_value(
                    "gen_ai.output.messages",
                    Value::StringValue(format!(
                        r#"[{{"role":"assistant","parts":[{{"type":"text","content":"{}"}}],"finish_reason":"stop"}}]"#,
                        "Revenue grew 12% on strong demand. ".repeat(8)
                    )),
                ),
            ],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![key_value(
                    "service.name",
                    Value::StringValue("bench".into()),
                )],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

//! OTLP/JSON, as the OTLP specification defines it: lowerCamelCase keys,
//! hex trace/span ids, enums as integers, 64-bit integers as strings *or*
//! numbers (OpenRouter sends numbers), unknown fields ignored.
//!
//! `opentelemetry-proto`'s serde support does this; the tests below pin
//! each rule so that a regression in the crate is caught here.

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};

/// Decodes an OTLP/JSON trace export request. The error names the JSON position.
pub fn decode_request(bytes: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    decode_message(bytes, "ExportTraceServiceRequest")
}

/// Decodes any OTLP/JSON export request (`what` names it in errors).
///
/// serde's derived structs also accept a JSON *array* of their fields in
/// order; OTLP/JSON is always an object, so a top-level array is refused
/// here rather than read as an empty request.
pub fn decode_message<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, String> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | None => serde_json::from_slice(bytes).or_else(|e| {
            // Proto3 JSON leaves empty repeated fields out, so an empty
            // array or map attribute arrives as `{"arrayValue": {}}`, which
            // the crate's serde refuses for want of `values`. Only then is
            // the request read a second time, with the empty lists added.
            if !e.to_string().contains("missing field `values`") {
                return Err(e.to_string());
            }
            let mut tree: serde_json::Value =
                serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            add_empty_values(&mut tree);
            serde_json::from_value(tree).map_err(|e| e.to_string())
        }),
        Some(_) => Err(format!("an OTLP/JSON {what} must be a JSON object")),
    }
}

/// Adds `"values": []` to every `arrayValue` / `kvlistValue` without one.
fn add_empty_values(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, child) in o.iter_mut() {
                if let (
                    "arrayValue" | "kvlistValue" | "array_value" | "kvlist_value",
                    Some(inner),
                ) = (k.as_str(), child.as_object_mut())
                {
                    inner
                        .entry("values")
                        .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                }
                add_empty_values(child);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(add_empty_values),
        _ => {}
    }
}

/// Encodes an export response (`{}` when fully successful).
pub fn encode_response(response: &ExportTraceServiceResponse) -> Vec<u8> {
    if response.partial_success.is_none() {
        return b"{}".to_vec();
    }
    serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

    fn decode(json: &str) -> ExportTraceServiceRequest {
        decode_request(json.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{json}"))
    }

    fn attr(req: &ExportTraceServiceRequest, key: &str) -> Option<Value> {
        req.resource_spans[0].scope_spans[0].spans[0]
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone()?.value)
    }

    const SPAN: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
      "scopeSpans":[{"scope":{"name":"s","version":"1"},"spans":[{
        "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","parentSpanId":"eee19b7ec3c1b173",
        "name":"chat","kind":3,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,
        "attributes":[
          {"key":"str","value":{"stringValue":"x"}},
          {"key":"int_as_string","value":{"intValue":"42"}},
          {"key":"int_as_number","value":{"intValue":29}},
          {"key":"double","value":{"doubleValue":0.5}},
          {"key":"double_from_int","value":{"doubleValue":3}},
          {"key":"bool","value":{"boolValue":true}},
          {"key":"bytes","value":{"bytesValue":"AQID"}},
          {"key":"array","value":{"arrayValue":{"values":[{"stringValue":"a"},{"intValue":"1"}]}}},
          {"key":"kvlist","value":{"kvlistValue":{"values":[{"key":"k","value":{"stringValue":"v"}}]}}},
          {"key":"empty","value":{}}
        ],
        "events":[{"timeUnixNano":"1544712660500000000","name":"e","attributes":[]}],
        "status":{"code":2,"message":"boom"},
        "someFutureField":{"nested":[1,2,3]}
      }]}]}]}"#;

    #[test]
    fn ids_are_hex_in_either_case() {
        let req = decode(SPAN);
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            crate::pdata::hex_id(&span.trace_id),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(crate::pdata::hex_id(&span.span_id), "eee19b7ec3c1b174");
        assert_eq!(
            crate::pdata::hex_id(&span.parent_span_id),
            "eee19b7ec3c1b173"
        );
    }

    #[test]
    fn enums_are_integers_and_int64_may_be_string_or_number() {
        let req = decode(SPAN);
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.kind, SpanKind::Client as i32);
        assert_eq!(
            span.status.as_ref().map(|s| s.code),
            Some(StatusCode::Error as i32)
        );
        assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
        assert_eq!(span.events[0].time_unix_nano, 1_544_712_660_500_000_000);
        assert_eq!(attr(&req, "int_as_string"), Some(Value::IntValue(42)));
        assert_eq!(attr(&req, "int_as_number"), Some(Value::IntValue(29)));
        assert_eq!(attr(&req, "double_from_int"), Some(Value::DoubleValue(3.0)));
    }

    #[test]
    fn every_value_kind_and_unknown_fields() {
        let req = decode(SPAN);
        assert_eq!(attr(&req, "str"), Some(Value::StringValue("x".into())));
        assert_eq!(attr(&req, "bool"), Some(Value::BoolValue(true)));
        assert_eq!(attr(&req, "bytes"), Some(Value::BytesValue(vec![1, 2, 3])));
        assert!(matches!(attr(&req, "array"), Some(Value::ArrayValue(a)) if a.values.len() == 2));
        assert!(
            matches!(attr(&req, "kvlist"), Some(Value::KvlistValue(kv)) if kv.values[0].key == "k")
        );
        assert_eq!(attr(&req, "empty"), None);
    }

    #[test]
    fn omitted_fields_take_their_defaults() {
        let req = decode(
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"01010101010101010101010101010101","spanId":"0202020202020202"}]}]}]}"#,
        );
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.name, "");
        assert_eq!(span.kind, 0);
        assert!(span.parent_span_id.is_empty());
        assert_eq!(decode("{}").resource_spans.len(), 0);
    }

    #[test]
    fn malformed_documents_are_errors_with_a_position() {
        for bad in [
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_CLIENT"}]}]}]}"#,
            r#"{"resourceSpans": 5}"#,
            r#"{"resourceSpans":["#,
            "[]",
        ] {
            let err = decode_request(bad.as_bytes()).unwrap_err();
            assert!(
                err.contains("line 1 column") || err.contains("JSON object"),
                "{bad} => {err}"
            );
        }
    }

    #[test]
    fn partial_success_is_encoded_in_camel_case() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;
        let full = ExportTraceServiceResponse {
            partial_success: None,
        };
        assert_eq!(encode_response(&full), b"{}");
        let partial = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 2,
                error_message: "bad".into(),
            }),
        };
        let v: serde_json::Value = serde_json::from_slice(&encode_response(&partial)).unwrap();
        let rejected = &v["partialSuccess"]["rejectedSpans"];
        assert!(rejected == 2 || rejected == "2", "{v}");
        assert_eq!(v["partialSuccess"]["errorMessage"], "bad");
    }

    #[test]
    fn empty_array_and_map_attributes_without_values_are_read() {
        let json = SPAN
            .replace(
                r#"{"arrayValue":{"values":[{"stringValue":"a"},{"intValue":"1"}]}}"#,
                r#"{"arrayValue":{}}"#,
            )
            .replace(
                r#"{"kvlistValue":{"values":[{"key":"k","value":{"stringValue":"v"}}]}}"#,
                r#"{"kvlistValue":{}}"#,
            );
        let req = decode(&json);
        assert!(matches!(attr(&req, "array"), Some(Value::ArrayValue(a)) if a.values.is_empty()));
        assert!(matches!(attr(&req, "kvlist"), Some(Value::KvlistValue(k)) if k.values.is_empty()));
        assert_eq!(attr(&req, "str"), Some(Value::StringValue("x".into())));
    }
}

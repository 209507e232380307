//! "Pipeline data", as the OTel Collector calls it: helpers over the OTLP
//! types from `opentelemetry-proto` (ids, attribute values as JSON, resource
//! and scope accessors) and the OTLP/JSON codec.

pub mod depth;
pub mod json;
pub mod wire;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric::Data};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use serde_json::{Map, Value as Json};

/// The attributes of a resource (none when the resource is absent).
pub fn resource_attributes(rs: &ResourceSpans) -> &[KeyValue] {
    rs.resource
        .as_ref()
        .map(|r| r.attributes.as_slice())
        .unwrap_or(&[])
}

/// The instrumentation scope's name ("" when absent).
pub fn scope_name(ss: &ScopeSpans) -> &str {
    ss.scope.as_ref().map(|s| s.name.as_str()).unwrap_or("")
}

/// Lower-case hex of an id, as OTLP/JSON writes trace and span ids.
pub fn hex_id(bytes: &[u8]) -> String {
    const_hex::encode(bytes)
}

/// An attribute value as plain JSON: strings, numbers, booleans, arrays and
/// objects; bytes become base64 as in OTLP/JSON.
pub fn any_value_to_json(value: &AnyValue) -> Json {
    match &value.value {
        None => Json::Null,
        Some(Value::StringValue(s)) => Json::String(s.clone()),
        Some(Value::BoolValue(b)) => Json::Bool(*b),
        Some(Value::IntValue(i)) => Json::from(*i),
        Some(Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(d.to_string())),
        Some(Value::ArrayValue(a)) => Json::Array(a.values.iter().map(any_value_to_json).collect()),
        Some(Value::KvlistValue(kv)) => Json::Object(attributes_to_json(&kv.values)),
        Some(Value::BytesValue(b)) => Json::String(base64_encode(b)),
        // An index into a profiles string table: meaningless without the table.
        Some(Value::StringValueStrindex(_)) => Json::Null,
    }
}

/// Attributes as a JSON object keyed by attribute name (last one wins on duplicates).
pub fn attributes_to_json(attributes: &[KeyValue]) -> Map<String, Json> {
    attributes.iter().map(key_value_to_json).collect()
}

/// One attribute as a (key, JSON value) pair; an absent value is `null`.
pub fn key_value_to_json(kv: &KeyValue) -> (String, Json) {
    let v = kv
        .value
        .as_ref()
        .map(any_value_to_json)
        .unwrap_or(Json::Null);
    (kv.key.clone(), v)
}

/// The span kind as a word (`client`, `internal`…).
pub fn span_kind_name(kind: i32) -> &'static str {
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    match SpanKind::try_from(kind) {
        Ok(SpanKind::Internal) => "internal",
        Ok(SpanKind::Server) => "server",
        Ok(SpanKind::Client) => "client",
        Ok(SpanKind::Producer) => "producer",
        Ok(SpanKind::Consumer) => "consumer",
        _ => "unspecified",
    }
}

/// The status code as a word (`ok`, `error`, `unset`).
pub fn status_name(code: i32) -> &'static str {
    use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
    match StatusCode::try_from(code) {
        Ok(StatusCode::Ok) => "ok",
        Ok(StatusCode::Error) => "error",
        _ => "unset",
    }
}

/// A metric's data points, whatever its type.
pub fn data_points(metric: &Metric) -> usize {
    match &metric.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

/// Builds an attribute.
pub fn key_value(key: impl Into<String>, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// The string value of an attribute, if it is a string.
pub fn string_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Bytes a decoded traces request holds beyond its strings and byte
/// fields (which take about what they took on the wire, `encoded`): one
/// struct per resource, scope, span, attribute, event and link, and the
/// smallest heap block of each id. A cheap walk, for the memory budget; the
/// real figure depends on the allocator.
pub fn decoded_size(resource_spans: &[ResourceSpans], encoded: usize) -> usize {
    use opentelemetry_proto::tonic::trace::v1::Span;
    use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
    use std::mem::size_of;
    const ID_BLOCK: usize = 32;
    let span = |s: &Span| {
        size_of::<Span>()
            + 2 * ID_BLOCK
            + (s.attributes.len() + s.events.iter().map(|e| e.attributes.len()).sum::<usize>())
                * size_of::<KeyValue>()
            + s.events.len() * size_of::<Event>()
            + s.links.len() * (size_of::<Link>() + 2 * ID_BLOCK)
    };
    let structs: usize = resource_spans
        .iter()
        .map(|rs| {
            size_of::<ResourceSpans>()
                + std::mem::size_of_val(resource_attributes(rs))
                + rs.scope_spans
                    .iter()
                    .map(|ss| size_of::<ScopeSpans>() + ss.spans.iter().map(span).sum::<usize>())
                    .sum::<usize>()
        })
        .sum();
    encoded + structs
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn v(value: Value) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    #[test]
    fn hex_ids_are_lower_case() {
        assert_eq!(hex_id(&[0x00, 0xab, 0xFF, 0x10]), "00abff10");
    }

    #[test]
    fn every_any_value_kind_maps_to_json() {
        let kv = key_value;
        let nested = v(Value::KvlistValue(KeyValueList {
            values: vec![
                kv("s", Value::StringValue("x".into())),
                kv("i", Value::IntValue(-7)),
                kv("d", Value::DoubleValue(0.5)),
                kv("b", Value::BoolValue(true)),
                kv(
                    "a",
                    Value::ArrayValue(ArrayValue {
                        values: vec![v(Value::IntValue(1)), v(Value::StringValue("two".into()))],
                    }),
                ),
                kv("bytes", Value::BytesValue(vec![1, 2, 3, 4])),
                kv("nan", Value::DoubleValue(f64::NAN)),
            ],
        }));
        assert_eq!(
            any_value_to_json(&nested),
            serde_json::json!({"s":"x","i":-7,"d":0.5,"b":true,"a":[1,"two"],"bytes":"AQIDBA==","nan":"NaN"})
        );
        assert_eq!(any_value_to_json(&AnyValue { value: None }), Json::Null);
    }
}

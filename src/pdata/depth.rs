//! Attribute values nested too deep for the decoders (prost stops at 100
//! nested messages, serde_json at 128 levels) would fail a whole request,
//! good spans included. When a decode fails for that reason, the request is
//! rewritten once, without recursion (an explicit stack on the heap), so
//! that every `AnyValue` nested deeper than [`MAX_VALUE_DEPTH`] becomes the
//! string [`CUT_MARKER`]: only that attribute (or log body) loses its
//! deepest levels, and the request decodes.

use prost::encoding::{decode_varint, encode_varint};

/// `AnyValue`s nested within one another beyond this are cut. Real values
/// (JSON documents as attributes) stay far below it; a request cut to it
/// decodes with room to spare inside the spool's record (one level more).
pub const MAX_VALUE_DEPTH: usize = 20;

/// What a cut value becomes.
pub const CUT_MARKER: &str = "[tracebridge: value nested deeper than 20 levels was cut here]";

/// The message types on the way to an `AnyValue`, for the protobuf walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    TracesRequest,
    LogsRequest,
    /// `tracebridge.spool.v1.SpoolRecord` (a traces or logs request inside).
    SpoolRecord,
    ResourceSpans,
    ResourceLogs,
    Resource,
    ScopeSpans,
    ScopeLogs,
    Scope,
    Span,
    Event,
    Link,
    LogRecord,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
}

/// The message type of field `field` of `shape`, if it leads to values.
fn child(shape: Shape, field: u32) -> Option<Shape> {
    use Shape::*;
    Some(match (shape, field) {
        (TracesRequest, 1) => ResourceSpans,
        (LogsRequest, 1) => ResourceLogs,
        (SpoolRecord, 6) => TracesRequest,
        (SpoolRecord, 7) => LogsRequest,
        (ResourceSpans | ResourceLogs, 1) => Resource,
        (ResourceSpans, 2) => ScopeSpans,
        (ResourceLogs, 2) => ScopeLogs,
        (Resource, 1) | (Scope, 3) | (Span, 9) | (Event, 3) | (Link, 5) => KeyValue,
        (ScopeSpans | ScopeLogs, 1) => Scope,
        (ScopeSpans, 2) => Span,
        (ScopeLogs, 2) => LogRecord,
        (Span, 11) => Event,
        (Span, 13) => Link,
        (LogRecord, 5) => AnyValue,
        (LogRecord, 6) => KeyValue,
        (KeyValue, 2) | (ArrayValue, 1) => AnyValue,
        (AnyValue, 5) => ArrayValue,
        (AnyValue, 6) => KeyValueList,
        (KeyValueList, 1) => KeyValue,
        _ => return None,
    })
}

/// Whether a decode error is the decoder's nesting limit.
pub fn is_depth_error(message: &str) -> bool {
    message.contains("recursion limit")
}

/// One message being rewritten: where it ends in the input, what was
/// written of it so far, under which field of its parent it goes, and how
/// many `AnyValue`s enclose it (itself included).
struct Frame {
    shape: Shape,
    end: usize,
    out: Vec<u8>,
    field: u32,
    values: usize,
}

fn put_len_field(field: u32, body: &[u8], out: &mut Vec<u8>) {
    encode_varint(u64::from(field) << 3 | 2, out);
    encode_varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// `AnyValue { string_value: CUT_MARKER }`.
fn marker_value() -> Vec<u8> {
    let mut v = Vec::with_capacity(CUT_MARKER.len() + 2);
    put_len_field(1, CUT_MARKER.as_bytes(), &mut v);
    v
}

/// The protobuf message `input` (of type `shape`) with every `AnyValue`
/// nested deeper than [`MAX_VALUE_DEPTH`] replaced by [`CUT_MARKER`], and
/// how many were. `None` if the bytes are not well-formed protobuf.
pub fn cut_protobuf(input: &[u8], shape: Shape) -> Option<(Vec<u8>, usize)> {
    let marker = marker_value();
    let mut cut = 0;
    let mut pos = 0;
    let mut stack = vec![Frame {
        shape,
        end: input.len(),
        out: Vec::with_capacity(input.len()),
        field: 0,
        values: 0,
    }];
    loop {
        let top = stack.last_mut()?;
        if pos == top.end {
            let done = stack.pop()?;
            match stack.last_mut() {
                Some(parent) => put_len_field(done.field, &done.out, &mut parent.out),
                None => return Some((done.out, cut)),
            }
            continue;
        }
        let start = pos;
        let mut rest = input.get(pos..top.end)?;
        let key = decode_varint(&mut rest).ok()?;
        let field = u32::try_from(key >> 3).ok()?;
        let after_key = top.end - rest.len();
        let next = match key & 7 {
            0 => {
                top.end - {
                    decode_varint(&mut rest).ok()?;
                    rest.len()
                }
            }
            1 => after_key.checked_add(8)?,
            5 => after_key.checked_add(4)?,
            2 => {
                let len = usize::try_from(decode_varint(&mut rest).ok()?).ok()?;
                let body = top.end - rest.len();
                let end = body.checked_add(len)?;
                if end > top.end {
                    return None;
                }
                if let Some(shape) = child(top.shape, field) {
                    let values = top.values + usize::from(shape == Shape::AnyValue);
                    if shape == Shape::AnyValue && values > MAX_VALUE_DEPTH {
                        put_len_field(field, &marker, &mut top.out);
                        cut += 1;
                        pos = end;
                    } else {
                        // Not sized ahead: the frames on the stack together
                        // hold at most what was read, not a copy per level.
                        stack.push(Frame {
                            shape,
                            end,
                            out: Vec::new(),
                            field,
                            values,
                        });
                        pos = body;
                    }
                    continue;
                }
                end
            }
            _ => return None,
        };
        if next > top.end {
            return None;
        }
        top.out.extend_from_slice(&input[start..next]);
        pos = next;
    }
}

/// Where a JSON container sits, as far as values are concerned.
#[derive(Debug, Clone, Copy)]
struct JsonFrame {
    object: bool,
    /// An object that is the `arrayValue` of an `AnyValue`.
    array_value: bool,
    /// An array whose elements are `AnyValue`s.
    holds_values: bool,
    /// `AnyValue`s enclosing this container, itself included.
    values: usize,
    /// Objects: the key whose value comes next.
    key: Key,
    /// Objects: a key is expected next (after `{` or `,`).
    expect_key: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    /// `value` (of a `KeyValue`) or `body` (of a log record): an `AnyValue`.
    Value,
    ArrayValue,
    Values,
    Other,
}

fn key_of(raw: &[u8]) -> Key {
    match raw {
        b"value" | b"body" => Key::Value,
        b"arrayValue" | b"array_value" => Key::ArrayValue,
        b"values" => Key::Values,
        _ => Key::Other,
    }
}

/// The end (exclusive) of the string starting at `input[start] == b'"'`.
fn string_end(input: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < input.len() {
        match input[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The end (exclusive) of the container starting at `input[start]`.
fn container_end(input: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < input.len() {
        match input[i] {
            b'"' => {
                i = string_end(input, i)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The OTLP/JSON request `input` with every `AnyValue` nested deeper than
/// [`MAX_VALUE_DEPTH`] replaced by `{"stringValue": CUT_MARKER}`, and how
/// many were. `None` if the text is not well-formed enough to walk.
pub fn cut_json(input: &[u8]) -> Option<(Vec<u8>, usize)> {
    let marker = format!("{{\"stringValue\":\"{CUT_MARKER}\"}}");
    let mut out = Vec::with_capacity(input.len());
    let mut stack: Vec<JsonFrame> = Vec::new();
    let (mut copied, mut cut, mut i) = (0, 0, 0);
    while i < input.len() {
        match input[i] {
            b'"' => {
                let end = string_end(input, i)?;
                if let Some(top) = stack.last_mut().filter(|f| f.object && f.expect_key) {
                    top.key = key_of(&input[i + 1..end - 1]);
                    top.expect_key = false;
                }
                i = end;
                continue;
            }
            c @ (b'{' | b'[') => {
                let parent = stack.last().copied();
                let is_value = c == b'{'
                    && parent.is_some_and(|p| {
                        (p.object && p.key == Key::Value) || (!p.object && p.holds_values)
                    });
                let values = parent.map_or(0, |p| p.values) + usize::from(is_value);
                if is_value && values > MAX_VALUE_DEPTH {
                    let end = container_end(input, i)?;
                    out.extend_from_slice(&input[copied..i]);
                    out.extend_from_slice(marker.as_bytes());
                    (copied, i) = (end, end);
                    cut += 1;
                    continue;
                }
                let in_object_key = parent.filter(|p| p.object).map(|p| p.key);
                stack.push(JsonFrame {
                    object: c == b'{',
                    array_value: c == b'{' && in_object_key == Some(Key::ArrayValue),
                    holds_values: c == b'['
                        && in_object_key == Some(Key::Values)
                        && parent.is_some_and(|p| p.array_value),
                    values,
                    key: Key::Other,
                    expect_key: c == b'{',
                });
            }
            b'}' | b']' => {
                stack.pop()?;
            }
            b',' => {
                if let Some(top) = stack.last_mut().filter(|f| f.object) {
                    top.expect_key = true;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.extend_from_slice(&input[copied..]);
    Some((out, cut))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pdata::key_value;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, KeyValueList};
    use opentelemetry_proto::tonic::trace::v1::Span;
    use prost::Message;

    /// A kvlist nested `depth` levels, encoded by hand from the inside out
    /// (building it as prost structs would recurse when dropped).
    pub(crate) fn deep_value_bytes(depth: usize) -> Vec<u8> {
        let mut v = AnyValue {
            value: Some(Value::StringValue("leaf".into())),
        }
        .encode_to_vec();
        for _ in 0..depth {
            let mut kv = Vec::new();
            put_len_field(1, b"k", &mut kv);
            put_len_field(2, &v, &mut kv);
            let mut list = Vec::new();
            put_len_field(1, &kv, &mut list);
            v.clear();
            put_len_field(6, &list, &mut v);
        }
        v
    }

    /// A request of two spans: one good, one with `deep` as an attribute.
    pub(crate) fn request_with(deep: &[u8]) -> Vec<u8> {
        let good = Span {
            trace_id: vec![1; 16],
            span_id: vec![1; 8],
            name: "good".into(),
            attributes: vec![key_value("a", Value::StringValue("b".into()))],
            ..Default::default()
        };
        let mut bad = good.clone();
        bad.span_id = vec![2; 8];
        bad.name = "deep".into();
        let mut bad = bad.encode_to_vec();
        let mut kv = Vec::new();
        put_len_field(1, b"deep.attr", &mut kv);
        put_len_field(2, deep, &mut kv);
        put_len_field(9, &kv, &mut bad);
        let mut scope = Vec::new();
        put_len_field(2, &good.encode_to_vec(), &mut scope);
        put_len_field(2, &bad, &mut scope);
        let mut rs = Vec::new();
        put_len_field(2, &scope, &mut rs);
        let mut req = Vec::new();
        put_len_field(1, &rs, &mut req);
        req
    }

    fn depth_of(v: &AnyValue) -> usize {
        let mut depth = 1;
        let mut cur = v;
        while let Some(Value::KvlistValue(KeyValueList { values })) = &cur.value {
            match values.first().and_then(|kv: &KeyValue| kv.value.as_ref()) {
                Some(next) => {
                    depth += 1;
                    cur = next;
                }
                None => break,
            }
        }
        depth
    }

    fn innermost(v: &AnyValue) -> &AnyValue {
        let mut cur = v;
        while let Some(Value::KvlistValue(KeyValueList { values })) = &cur.value {
            match values.first().and_then(|kv: &KeyValue| kv.value.as_ref()) {
                Some(next) => cur = next,
                None => break,
            }
        }
        cur
    }

    #[test]
    fn a_too_deep_value_is_cut_and_its_siblings_kept() {
        for depth in [40, 10_000] {
            let bytes = request_with(&deep_value_bytes(depth));
            let err = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap_err();
            assert!(is_depth_error(&err.to_string()), "{err}");
            let (fixed, cut) = cut_protobuf(&bytes, Shape::TracesRequest).unwrap();
            assert_eq!(cut, 1);
            let req = ExportTraceServiceRequest::decode(fixed.as_slice()).unwrap();
            let spans = &req.resource_spans[0].scope_spans[0].spans;
            assert_eq!(spans.len(), 2);
            assert_eq!(spans[0].attributes[0].key, "a");
            let deep = spans[1].attributes.last().unwrap();
            assert_eq!(deep.key, "deep.attr");
            assert_eq!(depth_of(deep.value.as_ref().unwrap()), MAX_VALUE_DEPTH + 1);
            let marker = Some(Value::StringValue(CUT_MARKER.into()));
            assert_eq!(innermost(deep.value.as_ref().unwrap()).value, marker);
        }
    }

    #[test]
    fn a_request_within_the_limit_is_unchanged() {
        let bytes = request_with(&deep_value_bytes(5));
        let (fixed, cut) = cut_protobuf(&bytes, Shape::TracesRequest).unwrap();
        assert_eq!((fixed, cut), (bytes, 0));
        assert!(cut_protobuf(&[0x0a, 0x05, 0x01], Shape::TracesRequest).is_none());
    }

    fn deep_json(depth: usize) -> String {
        let kv = format!(
            "{}{}{}",
            r#"{"kvlistValue":{"values":[{"key":"k","value":"#.repeat(depth),
            r#"{"stringValue":"leaf"}"#,
            "}]}}".repeat(depth)
        );
        let arrays = format!(
            "{}{}{}",
            r#"{"arrayValue":{"values":["#.repeat(depth),
            r#"{"intValue":"1"}"#,
            "]}}".repeat(depth)
        );
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[
            {{"traceId":"01010101010101010101010101010101","spanId":"0101010101010101","name":"good"}},
            {{"traceId":"01010101010101010101010101010101","spanId":"0202020202020202","name":"deep \"q\" {{",
              "attributes":[{{"key":"deep","value":{kv}}},{{"key":"arr","value":{arrays}}},{{"key":"ok","value":{{"stringValue":"}}]"}}}}]}}
            ]}}]}}]}}"#
        )
    }

    #[test]
    fn a_too_deep_json_value_is_cut_and_its_siblings_kept() {
        for depth in [40, 10_000] {
            let text = deep_json(depth);
            let err = crate::pdata::json::decode_request(text.as_bytes()).unwrap_err();
            assert!(is_depth_error(&err), "{err}");
            let (fixed, cut) = cut_json(text.as_bytes()).unwrap();
            assert_eq!(cut, 2);
            let req = crate::pdata::json::decode_request(&fixed).unwrap();
            let spans = &req.resource_spans[0].scope_spans[0].spans;
            assert_eq!(spans.len(), 2);
            assert_eq!(spans[1].name, "deep \"q\" {");
            let attrs = &spans[1].attributes;
            assert_eq!(
                depth_of(attrs[0].value.as_ref().unwrap()),
                MAX_VALUE_DEPTH + 1
            );
            assert_eq!(
                attrs[2].value.as_ref().unwrap().value,
                Some(Value::StringValue("}]".into()))
            );
        }
    }
}

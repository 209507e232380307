//! Shrinking a row that would not fit a batch: the largest fields go first,
//! whatever they are — `input`, `output`, or an entry of `metadata` (one
//! attribute of `metadata.attributes`, the resource, …) — each replaced by
//! `{"tracebridge_truncated": true, "original_bytes": N}`, until the row
//! fits. The paths replaced are listed in `metadata.tracebridge_truncated`.

use std::io::Write;

use serde_json::{Map, Value as Json, json};

use crate::semconv::write::doc::JsonDoc;

/// A field no smaller than this is not worth replacing by a marker.
const MIN_FIELD_BYTES: usize = 64;

/// The parts of a row that can be truncated.
pub struct Fields<'a> {
    pub input: &'a mut Option<JsonDoc>,
    pub output: &'a mut Option<JsonDoc>,
    pub metadata: &'a mut Json,
}

/// Where a candidate lives in the row.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Path {
    Input,
    Output,
    /// `metadata.<key>`, or `metadata.<key>.<inner>`.
    Metadata(String, Option<String>),
}

impl Path {
    fn name(&self) -> String {
        match self {
            Path::Input => "input".into(),
            Path::Output => "output".into(),
            Path::Metadata(k, None) => format!("metadata.{k}"),
            Path::Metadata(k, Some(inner)) => format!("metadata.{k}.{inner}"),
        }
    }
}

/// Serialised length of a JSON value, without keeping the text.
pub fn json_len(v: &Json) -> usize {
    struct Count(usize);
    impl Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Writing to a counter cannot fail.
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// Fields of a row, largest first: `input`, `output`, each metadata entry —
/// or, for an object-valued entry, each of its entries — and (`outer`)
/// the object-valued metadata entries whole.
fn candidates(f: &Fields<'_>, outer: bool) -> Vec<(usize, Path)> {
    let mut out = Vec::new();
    for (path, v) in [(Path::Input, &*f.input), (Path::Output, &*f.output)] {
        if let Some(v) = v {
            out.push((v.len(), path));
        }
    }
    if let Json::Object(m) = &*f.metadata {
        for (k, v) in m {
            match v {
                Json::Object(inner) if !outer => {
                    for (k2, v2) in inner {
                        out.push((json_len(v2), Path::Metadata(k.clone(), Some(k2.clone()))));
                    }
                }
                Json::Object(_) if outer => {
                    out.push((json_len(v), Path::Metadata(k.clone(), None)));
                }
                _ if !outer => out.push((json_len(v), Path::Metadata(k.clone(), None))),
                _ => {}
            }
        }
    }
    out.retain(|(n, _)| *n >= MIN_FIELD_BYTES);
    out.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    out
}

fn marker(original_bytes: usize) -> Json {
    json!({"tracebridge_truncated": true, "original_bytes": original_bytes})
}

/// Puts `m` in the field at `path`; whether there was one.
fn replace(f: &mut Fields<'_>, path: &Path, m: Json) -> bool {
    match path {
        Path::Input => f.input.as_mut().map(|d| *d = JsonDoc::render(&m)),
        Path::Output => f.output.as_mut().map(|d| *d = JsonDoc::render(&m)),
        Path::Metadata(..) => metadata_slot(f.metadata, path).map(|v| *v = m),
    }
    .is_some()
}

fn metadata_slot<'a>(metadata: &'a mut Json, path: &Path) -> Option<&'a mut Json> {
    match path {
        Path::Input | Path::Output => None,
        Path::Metadata(k, inner) => {
            let v = metadata.as_object_mut()?.get_mut(k)?;
            match inner {
                None => Some(v),
                Some(k2) => v.as_object_mut()?.get_mut(k2),
            }
        }
    }
}

/// Replaces the largest fields until the row's serialised size (`len`)
/// is at most `max`; returns the paths replaced (none if nothing could be).
pub fn shrink(mut f: Fields<'_>, mut len: usize, max: usize) -> Vec<String> {
    let mut replaced = Vec::new();
    for outer in [false, true] {
        for (n, path) in candidates(&f, outer) {
            if len <= max {
                break;
            }
            let m = marker(n);
            let saved = n.saturating_sub(json_len(&m));
            if replace(&mut f, &path, m) {
                len -= saved;
                replaced.push(path.name());
            }
        }
    }
    if !replaced.is_empty() {
        if let Json::Object(m) = f.metadata {
            m.insert("tracebridge_truncated".into(), json!(replaced));
        } else {
            let mut m = Map::new();
            m.insert("tracebridge_truncated".into(), json!(replaced));
            *f.metadata = Json::Object(m);
        }
    }
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(n: usize) -> Json {
        Json::String("x".repeat(n))
    }

    #[test]
    fn a_huge_attribute_goes_and_the_small_input_output_stay() {
        let mut input = Some(JsonDoc::render(&json!({"q": "hi"})));
        let mut output = Some(JsonDoc::render(&json!({"a": "yo"})));
        let mut metadata = json!({
            "attributes": {"big": big(10 << 20), "small": "keep"},
            "otel": {"span_kind": "internal"},
        });
        let len = 10 << 20;
        let gone = shrink(
            Fields {
                input: &mut input,
                output: &mut output,
                metadata: &mut metadata,
            },
            len,
            1 << 20,
        );
        assert_eq!(gone, ["metadata.attributes.big"]);
        assert_eq!(input, Some(JsonDoc::render(&json!({"q": "hi"}))));
        assert_eq!(metadata["attributes"]["small"], "keep");
        assert_eq!(metadata["attributes"]["big"]["tracebridge_truncated"], true);
        assert_eq!(
            metadata["attributes"]["big"]["original_bytes"],
            (10 << 20) + 2
        );
        assert_eq!(
            metadata["tracebridge_truncated"][0],
            "metadata.attributes.big"
        );
    }

    #[test]
    fn a_big_input_goes_first_and_only_as_much_as_needed() {
        let mut input = Some(JsonDoc::render(&big(3 << 20)));
        let mut output = Some(JsonDoc::render(&big(1 << 10)));
        let mut metadata = json!({"attributes": {"a": big(200)}});
        let gone = shrink(
            Fields {
                input: &mut input,
                output: &mut output,
                metadata: &mut metadata,
            },
            (3 << 20) + 2000,
            1 << 20,
        );
        assert_eq!(gone, ["input"]);
        assert_eq!(output, Some(JsonDoc::render(&big(1 << 10))));
        assert_eq!(
            input.unwrap().to_value(),
            json!({"tracebridge_truncated": true, "original_bytes": (3 << 20) + 2})
        );
        assert_eq!(metadata["attributes"]["a"], big(200));
    }

    #[test]
    fn many_small_entries_go_as_their_whole_group() {
        let attrs: Map<String, Json> = (0..1000)
            .map(|i| (format!("gen_ai.prompt.{i}.content"), big(40)))
            .collect();
        let mut metadata = json!({"attributes": attrs, "otel": {"span_kind": "internal"}});
        let len = json_len(&metadata);
        let gone = shrink(
            Fields {
                input: &mut None,
                output: &mut None,
                metadata: &mut metadata,
            },
            len,
            len / 2,
        );
        assert_eq!(gone, ["metadata.attributes"]);
        assert_eq!(metadata["otel"]["span_kind"], "internal");
    }
}

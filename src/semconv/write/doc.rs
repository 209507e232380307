//! [`JsonDoc`]: a JSON document rendered to text once, then shared.
//!
//! A span's input and output are rendered from the normalised model
//! straight to JSON text (no `serde_json::Value` tree is built, copied or
//! dropped), then the same text goes into the span row, the trace table
//! (root, first and last LLM call), the trace row and the stored trace
//! entry, each an `Arc` clone, and its length is its size.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use serde::de::{Deserialize, Deserializer};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::Value as Json;
use serde_json::value::RawValue;

/// sonic-rs writes a struct of this name and field verbatim: the raw JSON
/// of its `LazyValue` (`sonic_rs::lazyvalue::TOKEN`, private; sonic-rs is
/// pinned exactly, and `serialises_verbatim_with_sonic` checks the name).
const SONIC_RAW_TOKEN: &str = "$sonic_rs::LazyValue";

thread_local! {
    static RENDER_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A buffer grown past this by a large document is given back.
const MAX_KEPT_BUFFER: usize = 1 << 20;

/// JSON text of one value, valid by construction: rendered by a
/// serializer from a Rust value, or read as a JSON value by serde_json.
///
/// Serialising it writes the text verbatim **with sonic-rs only**, which
/// every row and stored entry is written with ([`Self::write`] exists for
/// that); any other serializer would see a one-field struct.
#[derive(Clone, PartialEq, Eq)]
pub struct JsonDoc(Arc<str>);

impl JsonDoc {
    /// `value` rendered as compact JSON: the same bytes serde_json writes.
    /// Written into the thread's buffer, which keeps its capacity (a
    /// document does not grow a string several times), then copied once
    /// into its shared string.
    pub fn render<T: Serialize + ?Sized>(value: &T) -> Self {
        RENDER_BUFFER.with_borrow_mut(|buf| {
            buf.clear();
            // Serialising a value of strings, numbers and JSON values into
            // memory cannot fail; were it to, `null` stands for it.
            let doc = match sonic_rs::to_writer(&mut *buf, value) {
                // JSON written from Rust strings is UTF-8.
                Ok(()) => {
                    std::str::from_utf8(buf).map_or_else(|_| Self::null(), |t| Self(Arc::from(t)))
                }
                Err(_) => Self::null(),
            };
            if buf.capacity() > MAX_KEPT_BUFFER {
                *buf = Vec::new();
            }
            doc
        })
    }

    /// `null`: a content slot whose value was released.
    pub fn null() -> Self {
        Self(Arc::from("null"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Bytes of the text, which is its serialised size.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The document as a `Value` tree (for the rare edit of one).
    pub fn to_value(&self) -> Json {
        serde_json::from_str(&self.0).unwrap_or(Json::Null)
    }

    /// `value` written into `out` with sonic-rs (the only serializer that
    /// writes a `JsonDoc` inside it verbatim).
    pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> sonic_rs::Result<()> {
        sonic_rs::to_writer(out, value)
    }
}

impl fmt::Debug for JsonDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for JsonDoc {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct(SONIC_RAW_TOKEN, 1)?;
        s.serialize_field(SONIC_RAW_TOKEN, &*self.0)?;
        s.end()
    }
}

/// Any JSON value, kept as its text (serde_json's raw value: validated,
/// not built into a tree): stored entries read back as they were written.
impl<'de> Deserialize<'de> for JsonDoc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Self(Arc::from(raw.get())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Holder {
        a: Option<JsonDoc>,
        b: (u64, JsonDoc),
        c: u8,
    }

    #[test]
    fn renders_the_bytes_serde_json_writes() {
        let v =
            json!({"b": [1, 2.5, -0.0, 1e300, null], "a": "x\"\u{1}\u{7f}é", "c": {"d": u64::MAX}});
        assert_eq!(
            JsonDoc::render(&v).as_str(),
            serde_json::to_string(&v).unwrap()
        );
    }

    #[test]
    fn serialises_verbatim_with_sonic() {
        let h = Holder {
            a: Some(JsonDoc::render(&json!({"k": [1, "two"]}))),
            b: (7, JsonDoc::null()),
            c: 3,
        };
        let mut out = Vec::new();
        JsonDoc::write(&mut out, &h).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"a":{"k":[1,"two"]},"b":[7,null],"c":3}"#
        );
        let back: Holder = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn reads_any_value_as_its_text() {
        let h: Holder =
            serde_json::from_str(r#"{"a": null, "b": [1, {"x": [true, "s"]}], "c": 0}"#).unwrap();
        assert_eq!(h.a, None);
        assert_eq!(h.b.1.as_str(), r#"{"x": [true, "s"]}"#);
        assert_eq!(h.b.1.to_value(), json!({"x": [true, "s"]}));
    }
}

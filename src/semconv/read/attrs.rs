//! Reading attributes by key, remembering which ones a dialect claimed so
//! that the rest can go to metadata and nothing is lost.

use std::collections::HashMap;

use crate::telemetry::reason::MappingWarning;
pub use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use serde_json::{Map, Value as Json};

use crate::pdata::{any_value_to_json, key_value_to_json};
use crate::semconv::privacy::Claim;

/// Spans with more attributes than this get a key index, so that reading
/// every key stays linear however many attributes a client sends; smaller
/// ones are searched in place, which is faster and allocates nothing.
const INDEX_FROM: usize = 32;

/// A key's two bits in [`Attrs::present`], from its length, middle and
/// last byte (keys of one dialect share their first bytes, not the rest).
fn key_bits(key: &str) -> [usize; 2] {
    let b = key.as_bytes();
    let at = |i: usize| u32::from(b.get(i).copied().unwrap_or(0));
    let mut h = (b.len() as u32).wrapping_mul(0x9E37_79B1)
        ^ at(b.len() / 2).wrapping_mul(0x85EB_CA6B)
        ^ at(b.len().wrapping_sub(1)).wrapping_mul(0xC2B2_AE35);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 13;
    [(h & 255) as usize, ((h >> 8) & 255) as usize]
}

/// A 256-bit summary of the keys present: two bits per key, so that most
/// absent keys are told apart without a search (about 1 in 50 is not,
/// with 20 keys).
#[derive(Default)]
struct KeyFilter([u64; 4]);

impl KeyFilter {
    fn add(&mut self, key: &str) {
        for bit in key_bits(key) {
            self.0[bit / 64] |= 1 << (bit % 64);
        }
    }

    fn may_hold(&self, key: &str) -> bool {
        key_bits(key)
            .iter()
            .all(|bit| self.0[bit / 64] & (1 << (bit % 64)) != 0)
    }
}

/// No earlier attribute with the same key.
const NONE: u32 = u32::MAX;

/// Key → position of its last occurrence, and for each position the
/// previous occurrence of the same key.
struct KeyIndex<'a> {
    last: HashMap<&'a str, u32>,
    previous: Vec<u32>,
}

impl<'a> KeyIndex<'a> {
    fn new(list: &'a [KeyValue]) -> Self {
        let mut last = HashMap::with_capacity(list.len());
        let previous = list
            .iter()
            .enumerate()
            .map(|(i, kv)| last.insert(kv.key.as_str(), i as u32).unwrap_or(NONE))
            .collect();
        Self { last, previous }
    }
}

/// The attributes of one span, with a claim per attribute: unclaimed, read
/// as a fact, or read as content (inside [`Attrs::content`]).
pub struct Attrs<'a> {
    list: &'a [KeyValue],
    index: Option<KeyIndex<'a>>,
    /// The keys present, summarised: most keys a dialect asks for are
    /// absent, and the filter says so without a search.
    present: KeyFilter,
    claimed: Vec<Claim>,
    /// Set while a reader reads content: what it takes is marked content.
    reading_content: bool,
    pub warnings: Vec<MappingWarning>,
    /// Raw values that could not be parsed as expected, kept for metadata.
    pub malformed: Map<String, Json>,
    /// Attributes visited to mark claims (tests check it stays linear).
    #[cfg(test)]
    walked: usize,
}

impl<'a> Attrs<'a> {
    pub fn new(list: &'a [KeyValue]) -> Self {
        Self {
            list,
            index: (list.len() > INDEX_FROM && list.len() < NONE as usize)
                .then(|| KeyIndex::new(list)),
            present: list.iter().fold(KeyFilter::default(), |mut f, kv| {
                f.add(&kv.key);
                f
            }),
            claimed: vec![Claim::Unclaimed; list.len()],
            reading_content: false,
            warnings: Vec::new(),
            malformed: Map::new(),
            #[cfg(test)]
            walked: 0,
        }
    }

    fn index(&self, key: &str) -> Option<usize> {
        if !self.present.may_hold(key) {
            return None;
        }
        // Last one wins on duplicate keys, as in most SDK exporters.
        match &self.index {
            Some(ix) => ix.last.get(key).map(|i| *i as usize),
            None => self.list.iter().rposition(|kv| kv.key == key),
        }
    }

    /// Whether the key is present (claimed or not).
    pub fn has(&self, key: &str) -> bool {
        self.index(key).is_some()
    }

    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.list.iter().any(|kv| kv.key.starts_with(prefix))
    }

    /// The raw value, without claiming it.
    pub fn peek(&self, key: &str) -> Option<&'a Value> {
        let i = self.index(key)?;
        self.list[i].value.as_ref()?.value.as_ref()
    }

    /// The raw value, claiming it.
    pub fn take(&mut self, key: &str) -> Option<&'a Value> {
        let i = self.index(key)?;
        let claim = if self.reading_content {
            Claim::Content
        } else {
            Claim::Fact
        };
        match &self.index {
            // Every take of a key walks all its occurrences from the last
            // one, so they all hold the same claim: when the last one
            // already has this claim, so do the others (many duplicates of
            // one key, taken once per duplicate, stay linear).
            Some(_) if self.claimed[i].join(claim) == self.claimed[i] => {}
            Some(ix) => {
                let mut j = i as u32;
                while j != NONE {
                    let j_ = j as usize;
                    #[cfg(test)]
                    {
                        self.walked += 1;
                    }
                    self.claimed[j_] = self.claimed[j_].join(claim);
                    j = ix.previous[j_];
                }
            }
            None => {
                for (j, kv) in self.list.iter().enumerate() {
                    if kv.key == key {
                        self.claimed[j] = self.claimed[j].join(claim);
                    }
                }
            }
        }
        self.list[i].value.as_ref()?.value.as_ref()
    }

    /// Runs `read` with every key it takes marked as content (prompts,
    /// completions, messages, tool arguments and results): what privacy
    /// mode removes. Malformed values read here are content too.
    pub fn content<R>(&mut self, read: impl FnOnce(&mut Self) -> R) -> R {
        let outer = std::mem::replace(&mut self.reading_content, true);
        let r = read(self);
        self.reading_content = outer;
        r
    }

    /// The claim on every attribute, by index (the last use of the marks).
    pub fn take_claims(&mut self) -> Vec<Claim> {
        std::mem::take(&mut self.claimed)
    }

    /// Claims a key without reading it (the fact was already taken from elsewhere).
    pub fn claim(&mut self, key: &str) {
        let _ = self.take(key);
    }

    pub fn peek_str(&self, key: &str) -> Option<&'a str> {
        match self.peek(key)? {
            Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// A string value (numbers and booleans are rendered as text).
    pub fn take_string(&mut self, key: &str) -> Option<String> {
        match self.take(key)? {
            Value::StringValue(s) if s.is_empty() => None,
            Value::StringValue(s) => Some(s.clone()),
            Value::IntValue(i) => Some(i.to_string()),
            Value::DoubleValue(d) => Some(d.to_string()),
            Value::BoolValue(b) => Some(b.to_string()),
            other => {
                self.malformed_value(key, other, MappingWarning::ExpectedString);
                None
            }
        }
    }

    /// An integer: int, integral double, or a numeric string.
    pub fn take_i64(&mut self, key: &str) -> Option<i64> {
        let v = self.take(key)?;
        let parsed = match v {
            Value::IntValue(i) => Some(*i),
            Value::DoubleValue(d) if d.fract() == 0.0 && d.is_finite() => Some(*d as i64),
            Value::StringValue(s) => s.trim().parse::<i64>().ok().or_else(|| {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|d| d.fract() == 0.0 && d.is_finite())
                    .map(|d| d as i64)
            }),
            _ => None,
        };
        if parsed.is_none() {
            self.malformed_value(key, v, MappingWarning::ExpectedInteger);
        }
        parsed
    }

    /// A number: int, double, or a numeric string.
    pub fn take_f64(&mut self, key: &str) -> Option<f64> {
        let v = self.take(key)?;
        let parsed = match v {
            Value::IntValue(i) => Some(*i as f64),
            Value::DoubleValue(d) if d.is_finite() => Some(*d),
            Value::StringValue(s) => s.trim().parse::<f64>().ok().filter(|d| d.is_finite()),
            _ => None,
        };
        if parsed.is_none() {
            self.malformed_value(key, v, MappingWarning::ExpectedNumber);
        }
        parsed
    }

    /// A structured value: kvlist/array as JSON, or a string holding JSON.
    /// A string that is not JSON is returned as a JSON string.
    pub fn take_json(&mut self, key: &str) -> Option<Json> {
        let v = self.take(key)?;
        Some(value_as_json(v))
    }

    /// A value recorded as a JSON document (OpenLLMetry's entity I/O, tool
    /// responses): any JSON, including a quoted string, is decoded; text that
    /// is not JSON is kept as a string.
    pub fn take_json_document(&mut self, key: &str) -> Option<Json> {
        match self.take(key)? {
            Value::StringValue(s) => {
                Some(serde_json::from_str::<Json>(s).unwrap_or_else(|_| Json::String(s.clone())))
            }
            other => Some(any_value_to_json(&AnyValue {
                value: Some(other.clone()),
            })),
        }
    }

    /// A structured value that must be JSON (an object or array); a string
    /// that does not parse is kept raw in metadata with a warning.
    pub fn take_structured(&mut self, key: &str) -> Option<Json> {
        let v = self.take(key)?;
        match v {
            Value::StringValue(s) => match serde_json::from_str::<Json>(s) {
                Ok(j) => Some(j),
                Err(_) => {
                    self.malformed_value(key, v, MappingWarning::InvalidJson);
                    None
                }
            },
            other => Some(any_value_to_json(&AnyValue {
                value: Some(other.clone()),
            })),
        }
    }

    /// A list of strings: an array, a JSON array in a string, or one string.
    pub fn take_string_list(&mut self, key: &str) -> Option<Vec<String>> {
        let v = self.take(key)?;
        let list = match v {
            Value::ArrayValue(a) => a
                .values
                .iter()
                .filter_map(|x| match x.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    other => Some(json_text(&any_value_to_json(&AnyValue {
                        value: Some(other.clone()),
                    }))),
                })
                .collect(),
            Value::StringValue(s) => match serde_json::from_str::<Json>(s) {
                Ok(Json::Array(items)) => items.iter().map(json_text).collect(),
                _ if s.is_empty() => Vec::new(),
                _ => vec![s.clone()],
            },
            other => vec![json_text(&any_value_to_json(&AnyValue {
                value: Some(other.clone()),
            }))],
        };
        Some(list)
    }

    /// Keys under a prefix (unclaimed and claimed), in attribute order.
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<&'a str> {
        self.list
            .iter()
            .filter(|kv| kv.key.starts_with(prefix))
            .map(|kv| kv.key.as_str())
            .collect()
    }

    fn malformed_value(&mut self, key: &str, v: &Value, reason: MappingWarning) {
        self.warnings.push(reason);
        self.malformed.insert(
            key.to_string(),
            any_value_to_json(&AnyValue {
                value: Some(v.clone()),
            }),
        );
    }

    /// Every attribute nobody claimed, as JSON by key, bounded: the first
    /// [`MAX_UNCLAIMED_ATTRIBUTES`] keys (the rest dropped), a string longer
    /// than [`MAX_UNCLAIMED_VALUE_BYTES`] cut there; either is a warning
    /// (counted, logged, and listed in the span's metadata).
    pub fn unclaimed(&mut self) -> Map<String, Json> {
        let mut out = Map::new();
        let (mut dropped, mut cut) = (false, false);
        for (kv, claimed) in self.list.iter().zip(&self.claimed) {
            if *claimed != Claim::Unclaimed {
                continue;
            }
            if out.len() >= MAX_UNCLAIMED_ATTRIBUTES && !out.contains_key(&kv.key) {
                dropped = true;
                continue;
            }
            let (k, v) = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) if s.len() > MAX_UNCLAIMED_VALUE_BYTES => {
                    cut = true;
                    (kv.key.clone(), Json::String(cut_string(s)))
                }
                _ => key_value_to_json(kv),
            };
            out.insert(k, v);
        }
        if dropped {
            self.warnings.push(MappingWarning::AttributesOverLimit);
        }
        if cut {
            self.warnings.push(MappingWarning::ValueOverLimit);
        }
        out
    }
}

/// Unclaimed attributes kept per span (the first ones, in attribute order).
pub const MAX_UNCLAIMED_ATTRIBUTES: usize = 1024;

/// An unclaimed string attribute longer than this keeps its first bytes.
pub const MAX_UNCLAIMED_VALUE_BYTES: usize = 256 * 1024;

/// The first [`MAX_UNCLAIMED_VALUE_BYTES`] of `s` (at a character
/// boundary), saying how much was cut.
fn cut_string(s: &str) -> String {
    let mut end = MAX_UNCLAIMED_VALUE_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[tracebridge: {} bytes cut]", &s[..end], s.len() - end)
}

/// A string attribute that looks like JSON is parsed; anything else becomes JSON as is.
pub fn value_as_json(v: &Value) -> Json {
    match v {
        Value::StringValue(s) => parse_json_string(s),
        other => any_value_to_json(&AnyValue {
            value: Some(other.clone()),
        }),
    }
}

/// Parses `s` if it holds a JSON object or array; otherwise a JSON string.
pub fn parse_json_string(s: &str) -> Json {
    let t = s.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        if let Ok(j) = serde_json::from_str::<Json>(s) {
            return j;
        }
    }
    Json::String(s.to_string())
}

/// A JSON value as display text: strings unquoted, the rest as JSON.
pub fn json_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::key_value;

    #[test]
    fn a_large_span_is_indexed_and_reads_the_same() {
        let mut list: Vec<KeyValue> = (0..100)
            .map(|i| key_value(format!("k{i}"), Value::IntValue(i)))
            .collect();
        list.push(key_value("k7", Value::IntValue(700)));
        let mut a = Attrs::new(&list);
        assert!(a.index.is_some());
        assert_eq!(a.take_i64("k7"), Some(700), "the last duplicate wins");
        assert_eq!(a.take_i64("k99"), Some(99));
        assert!(a.take("nope").is_none());
        let unclaimed = a.unclaimed();
        assert_eq!(unclaimed.len(), 98, "both k7 and k99 claimed");
        assert!(!unclaimed.contains_key("k7"));
    }

    #[test]
    fn claims_track_what_was_read_and_the_rest_is_unclaimed() {
        let list = vec![
            key_value("a", Value::StringValue("x".into())),
            key_value("n", Value::StringValue("42".into())),
            key_value("bad", Value::StringValue("forty".into())),
            key_value("keep", Value::BoolValue(true)),
        ];
        let mut a = Attrs::new(&list);
        assert_eq!(a.take_string("a").as_deref(), Some("x"));
        assert_eq!(a.take_i64("n"), Some(42));
        assert_eq!(a.take_i64("bad"), None);
        assert_eq!(
            a.warnings.iter().map(|w| w.as_str()).collect::<Vec<_>>(),
            vec!["expected_integer"]
        );
        assert_eq!(a.malformed["bad"], "forty");
        let rest = a.unclaimed();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest["keep"], true);
    }

    #[test]
    fn string_lists_come_in_three_shapes() {
        let list = vec![
            key_value("json", Value::StringValue("[\"stop\",\"length\"]".into())),
            key_value("one", Value::StringValue("stop".into())),
        ];
        let mut a = Attrs::new(&list);
        assert_eq!(a.take_string_list("json").unwrap(), vec!["stop", "length"]);
        assert_eq!(a.take_string_list("one").unwrap(), vec!["stop"]);
    }

    #[test]
    fn reading_adversarial_attribute_lists_is_linear() {
        use crate::semconv::read::messages::take_flattened;
        let n = 20_000;
        // Flattened messages, then one key repeated n times.
        let mut list: Vec<KeyValue> = (0..n)
            .map(|i| key_value(format!("gen_ai.prompt.{i}.content"), Value::IntValue(i)))
            .collect();
        list.extend((0..n).map(|i| key_value("gen_ai.prompt.0.role", Value::IntValue(i))));
        let mut a = Attrs::new(&list);
        let messages = a.content(|a| take_flattened(a, "gen_ai.prompt."));
        assert_eq!(messages.len(), n as usize);
        assert!(a.unclaimed().is_empty(), "every duplicate claimed");
        // Each attribute is marked once or twice, not once per duplicate.
        assert!(a.walked <= 2 * list.len(), "{} visits", a.walked);
    }

    #[test]
    fn unclaimed_attributes_are_bounded_in_count_and_size() {
        let mut list: Vec<KeyValue> = (0..MAX_UNCLAIMED_ATTRIBUTES + 10)
            .map(|i| key_value(format!("app.k{i}"), Value::IntValue(i as i64)))
            .collect();
        list.insert(
            0,
            key_value(
                "app.big",
                Value::StringValue("é".repeat(MAX_UNCLAIMED_VALUE_BYTES)),
            ),
        );
        let mut a = Attrs::new(&list);
        let rest = a.unclaimed();
        assert_eq!(rest.len(), MAX_UNCLAIMED_ATTRIBUTES);
        assert!(rest.contains_key("app.k0") && !rest.contains_key("app.k1023"));
        let big = rest["app.big"].as_str().unwrap();
        assert!(big.len() < MAX_UNCLAIMED_VALUE_BYTES + 64);
        assert!(big.ends_with(&format!(
            "…[tracebridge: {} bytes cut]",
            MAX_UNCLAIMED_VALUE_BYTES
        )));
        assert_eq!(
            a.warnings,
            [
                MappingWarning::AttributesOverLimit,
                MappingWarning::ValueOverLimit
            ]
        );
    }
}

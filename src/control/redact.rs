//! Redaction: rules (named built-ins or regexes, optionally limited to
//! attribute keys) applied to every string of a span that leaves — span
//! name, status message, attribute values (message and tool JSON included:
//! the patterns match inside the JSON text, and replacements are JSON-safe),
//! event names and attributes, link attributes. Replacement is a fixed
//! string or a keyed hash (same input → same token). `dry_run` only counts.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::Span;
use regex::Regex;
use sha2::{Digest, Sha256};

/// The built-in patterns, by name.
pub const BUILTINS: &[(&str, &str)] = &[
    ("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    // 13 to 19 digits, optionally grouped by spaces or hyphens; Luhn-checked.
    ("credit_card", r"\b(?:\d[ -]?){12,18}\d\b"),
    (
        "ipv4",
        r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
    ),
    (
        "ipv6",
        r"\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b|\b(?:[0-9A-Fa-f]{1,4}:){1,7}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?\b",
    ),
    ("bearer_token", r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{8,}=*"),
    ("aws_access_key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("gcp_api_key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    (
        "openai_key",
        r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
    ),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}",
    ),
    (
        "pem",
        r"(?s)-----BEGIN [A-Z0-9 ]+-----.*?-----END [A-Z0-9 ]+-----",
    ),
];

/// One validated rule.
#[derive(Debug, Clone)]
pub struct RedactRule {
    pub name: String,
    pattern: Option<Regex>,
    /// Attribute keys the rule is limited to (`*` at the end: a prefix);
    /// empty: every string. A key rule without a pattern replaces the whole value.
    keys: Vec<String>,
    luhn: bool,
}

impl PartialEq for RedactRule {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.keys == other.keys
            && self.pattern.as_ref().map(Regex::as_str) == other.pattern.as_ref().map(Regex::as_str)
    }
}

impl RedactRule {
    pub fn new(
        name: String,
        pattern: Option<&str>,
        builtin: bool,
        keys: Vec<String>,
    ) -> Result<Self, String> {
        let luhn = builtin && name == "credit_card";
        let pattern = match pattern {
            Some(p) => Some(Regex::new(p).map_err(|e| format!("pattern does not compile: {e}"))?),
            None => None,
        };
        Ok(Self {
            name,
            pattern,
            keys,
            luhn,
        })
    }

    fn applies_to(&self, key: Option<&str>) -> bool {
        self.keys.is_empty()
            || key.is_some_and(|k| {
                self.keys.iter().any(|want| match want.strip_suffix('*') {
                    Some(prefix) => k.starts_with(prefix),
                    None => k == want,
                })
            })
    }
}

/// How matches are replaced.
#[derive(Clone, PartialEq)]
pub enum Replacement {
    Fixed(String),
    /// `[REDACTED:<rule>:<first 12 hex of HMAC-SHA256(key, match)>]`.
    KeyedHash(Vec<u8>),
}

/// The key never shows in logs or `Debug` output.
impl std::fmt::Debug for Replacement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fixed(s) => f.debug_tuple("Fixed").field(s).finish(),
            Self::KeyedHash(_) => f.write_str("KeyedHash(***)"),
        }
    }
}

/// `redact.*`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Redactor {
    pub rules: Vec<RedactRule>,
    pub replacement: Replacement,
    pub dry_run: bool,
}

impl Redactor {
    /// The span with every match replaced, if anything matched (`None`:
    /// nothing to change, and no copy made). `counts[i]` gets rule i's
    /// matches (also under `dry_run`, which returns `None`).
    pub fn apply(&self, span: &Span, counts: &mut [usize]) -> Option<Span> {
        let mut hit = false;
        visit(span, &mut |key, text| {
            hit = self.rules.iter().any(|r| {
                r.applies_to(key) && r.pattern.as_ref().is_none_or(|re| re.is_match(text))
            });
            hit
        });
        if !hit {
            return None;
        }
        let mut copy = span.clone();
        let mut changed = false;
        visit_mut(&mut copy, &mut |key, text| {
            if let Some(new) = self.redact_text(text, key, counts) {
                *text = new;
                changed = true;
            }
        });
        (changed && !self.dry_run).then_some(copy)
    }

    /// The text with every rule applied, if any matched.
    pub fn redact_text(
        &self,
        text: &str,
        key: Option<&str>,
        counts: &mut [usize],
    ) -> Option<String> {
        let mut current: Cow<'_, str> = Cow::Borrowed(text);
        let mut changed = false;
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.applies_to(key) {
                continue;
            }
            let Some(re) = &rule.pattern else {
                // A key rule without a pattern: the whole value.
                counts[i] += 1;
                current = Cow::Owned(self.token(&rule.name, &current));
                changed = true;
                continue;
            };
            if !re.is_match(&current) {
                continue;
            }
            let mut hits = 0;
            let replaced = re.replace_all(&current, |c: &regex::Captures<'_>| {
                let m = &c[0];
                if rule.luhn && !luhn(m) {
                    return m.to_string();
                }
                hits += 1;
                self.token(&rule.name, m)
            });
            if hits > 0 {
                counts[i] += hits;
                current = Cow::Owned(replaced.into_owned());
                changed = true;
            }
        }
        changed.then(|| current.into_owned())
    }

    fn token(&self, rule: &str, matched: &str) -> String {
        match &self.replacement {
            Replacement::Fixed(s) => s.replace("{rule}", rule),
            Replacement::KeyedHash(key) => {
                let mac = hmac_sha256(key, matched.as_bytes());
                format!("[REDACTED:{rule}:{}]", const_hex::encode(&mac[..6]))
            }
        }
    }
}

/// Calls `f` with (attribute key, text) for every string of the span that
/// leaves, until it returns true.
fn visit(span: &Span, f: &mut dyn FnMut(Option<&str>, &str) -> bool) -> bool {
    if f(None, &span.name) || span.status.as_ref().is_some_and(|st| f(None, &st.message)) {
        return true;
    }
    let kvs = |list: &[KeyValue], f: &mut dyn FnMut(Option<&str>, &str) -> bool| {
        list.iter().any(|kv| {
            kv.value
                .as_ref()
                .is_some_and(|v| visit_value(&kv.key, v, f))
        })
    };
    kvs(&span.attributes, f)
        || span
            .events
            .iter()
            .any(|e| f(None, &e.name) || kvs(&e.attributes, f))
        || span.links.iter().any(|l| kvs(&l.attributes, f))
}

fn visit_value(key: &str, v: &AnyValue, f: &mut dyn FnMut(Option<&str>, &str) -> bool) -> bool {
    match v.value.as_ref() {
        Some(Value::StringValue(s)) => f(Some(key), s),
        Some(Value::ArrayValue(a)) => a.values.iter().any(|v| visit_value(key, v, f)),
        Some(Value::KvlistValue(m)) => m
            .values
            .iter()
            .any(|kv| kv.value.as_ref().is_some_and(|v| visit_value(key, v, f))),
        _ => false,
    }
}

/// Calls `f` with (attribute key, text) on every string of the span that leaves.
fn visit_mut(span: &mut Span, f: &mut dyn FnMut(Option<&str>, &mut String)) {
    f(None, &mut span.name);
    if let Some(st) = span.status.as_mut() {
        f(None, &mut st.message);
    }
    let kvs = |list: &mut [KeyValue], f: &mut dyn FnMut(Option<&str>, &mut String)| {
        for kv in list {
            if let Some(v) = kv.value.as_mut() {
                visit_value_mut(&kv.key, v, f);
            }
        }
    };
    kvs(&mut span.attributes, f);
    for e in &mut span.events {
        f(None, &mut e.name);
        kvs(&mut e.attributes, f);
    }
    for l in &mut span.links {
        kvs(&mut l.attributes, f);
    }
}

fn visit_value_mut(key: &str, v: &mut AnyValue, f: &mut dyn FnMut(Option<&str>, &mut String)) {
    match v.value.as_mut() {
        Some(Value::StringValue(s)) => f(Some(key), s),
        Some(Value::ArrayValue(a)) => {
            for v in &mut a.values {
                visit_value_mut(key, v, f);
            }
        }
        Some(Value::KvlistValue(m)) => {
            for kv in &mut m.values {
                if let Some(v) = kv.value.as_mut() {
                    visit_value_mut(key, v, f);
                }
            }
        }
        _ => {}
    }
}

/// The Luhn checksum of the digits in `s`.
pub fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                *d
            }
        })
        .sum();
    sum % 10 == 0
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| block.map(|k| k ^ b);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            const_hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_hash_key_does_not_show_in_debug_output() {
        let r = Replacement::KeyedHash(b"super-secret-key-123".to_vec());
        assert_eq!(format!("{r:?}"), "KeyedHash(***)");
    }

    #[test]
    fn luhn_accepts_valid_numbers_only() {
        assert!(luhn("4111 1111 1111 1111"));
        assert!(luhn("5500-0000-0000-0004"));
        assert!(!luhn("4111 1111 1111 1112"));
        assert!(!luhn("1234"));
    }
}

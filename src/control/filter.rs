//! Filter rules over the normalised view: fields, operators, and the
//! and/or groups of a rule.

use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::Span;

use super::config::Literal;
use crate::semconv::{GenAiSpan, Kind, SpanContext};

/// What a rule can look at.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Model,
    Provider,
    Service,
    Kind,
    Operation,
    Name,
    User,
    Session,
    FinishReason,
    Error,
    Cost,
    InputTokens,
    OutputTokens,
    TotalTokens,
    DurationMs,
    Scope,
    /// `attribute.<key>`: a span attribute, else a resource attribute.
    Attribute(String),
}

const FIELDS: &str = "model, provider, service, kind, operation, name, user, session, finish_reason, error, cost, input_tokens, output_tokens, total_tokens, duration_ms, scope, attribute.<key>";

impl Field {
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "model" => Self::Model,
            "provider" => Self::Provider,
            "service" => Self::Service,
            "kind" => Self::Kind,
            "operation" => Self::Operation,
            "name" => Self::Name,
            "user" => Self::User,
            "session" => Self::Session,
            "finish_reason" => Self::FinishReason,
            "error" => Self::Error,
            "cost" => Self::Cost,
            "input_tokens" => Self::InputTokens,
            "output_tokens" => Self::OutputTokens,
            "total_tokens" => Self::TotalTokens,
            "duration_ms" => Self::DurationMs,
            "scope" => Self::Scope,
            other => match other.strip_prefix("attribute.") {
                Some(key) if !key.is_empty() => Self::Attribute(key.to_string()),
                _ => return Err(format!("unknown field {other:?}; fields: {FIELDS}")),
            },
        })
    }

    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            Self::Cost
                | Self::InputTokens
                | Self::OutputTokens
                | Self::TotalTokens
                | Self::DurationMs
                | Self::Attribute(_)
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operator {
    Equals(Literal),
    NotEquals(Literal),
    OneOf(Vec<String>),
    Matches(String),
    Above(f64),
    Below(f64),
    Exists(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: Field,
    pub op: Operator,
}

/// A validated rule: `all` (AND) and, if not empty, at least one of `any` (OR).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub include: bool,
    pub whole_trace: bool,
    pub all: Vec<Condition>,
    pub any: Vec<Condition>,
}

/// One span as the rules see it.
pub struct Subject<'a> {
    pub span: &'a Span,
    pub view: &'a GenAiSpan,
    pub ctx: SpanContext<'a>,
}

impl Rule {
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        self.all.iter().all(|c| c.holds(s))
            && (self.any.is_empty() || self.any.iter().any(|c| c.holds(s)))
    }
}

/// A field's value on one span.
enum Val<'a> {
    Text(&'a str),
    Number(f64),
    Bool(bool),
}

impl Condition {
    fn holds(&self, s: &Subject<'_>) -> bool {
        let mut present = false;
        let mut test = |v: &Val<'_>| {
            present = true;
            match &self.op {
                Operator::Exists(_) => true,
                Operator::Equals(l) | Operator::NotEquals(l) => equals(v, l),
                Operator::OneOf(list) => list.iter().any(|l| text_equals(v, l)),
                Operator::Matches(pattern) => matches!(v, Val::Text(t) if glob(pattern, t)),
                Operator::Above(x) => number(v).is_some_and(|n| n > *x),
                Operator::Below(x) => number(v).is_some_and(|n| n < *x),
            }
        };
        let hit = visit(&self.field, s, &mut test);
        match &self.op {
            Operator::Exists(want) => present == *want,
            Operator::NotEquals(_) => !hit,
            _ => hit,
        }
    }
}

/// Calls `f` on each value of `field` (none, one, or several for
/// `finish_reason`) until it returns true; says whether one did.
fn visit<'a>(field: &'a Field, s: &Subject<'a>, f: &mut dyn FnMut(&Val<'_>) -> bool) -> bool {
    let g = s.view;
    fn text(v: Option<&String>) -> Option<Val<'_>> {
        v.map(|t| Val::Text(t.as_str()))
    }
    let int = |v: Option<i64>| v.map(|n| Val::Number(n as f64));
    let one = match field {
        Field::Model => text(g.response_model.as_ref().or(g.request_model.as_ref())),
        Field::Provider => text(g.provider.as_ref()),
        Field::Service => s.ctx.service_name().map(Val::Text),
        Field::Kind => Some(Val::Text(kind_name(g.kind))),
        Field::Operation => text(g.operation.as_ref()),
        Field::Name => Some(Val::Text(s.span.name.as_str())),
        Field::User => text(g.user_id.as_ref()),
        Field::Session => text(g.conversation_id.as_ref()),
        Field::FinishReason => {
            return g.finish_reasons.iter().any(|r| f(&Val::Text(r)));
        }
        Field::Error => Some(Val::Bool(
            g.error.is_some() || s.span.status.as_ref().is_some_and(|st| st.code == 2),
        )),
        Field::Cost => g.cost.total_usd().map(Val::Number),
        Field::InputTokens => int(g.usage.input),
        Field::OutputTokens => int(g.usage.output),
        Field::TotalTokens => int(g.usage.total_tokens()),
        Field::DurationMs => Some(Val::Number(
            s.span
                .end_time_unix_nano
                .saturating_sub(s.span.start_time_unix_nano) as f64
                / 1e6,
        )),
        Field::Scope => Some(Val::Text(s.ctx.scope_name)).filter(|_| !s.ctx.scope_name.is_empty()),
        Field::Attribute(key) => {
            attribute(&s.span.attributes, key).or_else(|| attribute(s.ctx.resource_attributes, key))
        }
    };
    one.is_some_and(|v| f(&v))
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<Val<'a>> {
    let v = attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match v {
        Value::StringValue(s) => Val::Text(s),
        Value::IntValue(i) => Val::Number(*i as f64),
        Value::DoubleValue(d) => Val::Number(*d),
        Value::BoolValue(b) => Val::Bool(*b),
        // Arrays, maps and bytes are compared by presence only.
        _ => Val::Text(""),
    })
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Llm => "llm",
        Kind::Embedding => "embedding",
        Kind::Tool => "tool",
        Kind::Agent => "agent",
        Kind::Retrieval => "retrieval",
        Kind::Guardrail => "guardrail",
        Kind::General => "general",
    }
}

fn number(v: &Val<'_>) -> Option<f64> {
    match v {
        Val::Number(n) => Some(*n),
        Val::Text(t) => t.parse().ok(),
        Val::Bool(_) => None,
    }
}

fn text_equals(v: &Val<'_>, x: &str) -> bool {
    match v {
        Val::Text(t) => *t == x,
        Val::Number(n) => x.parse::<f64>().ok() == Some(*n),
        Val::Bool(b) => x == if *b { "true" } else { "false" },
    }
}

fn equals(v: &Val<'_>, l: &Literal) -> bool {
    match (v, l) {
        (v, Literal::Text(x)) => text_equals(v, x),
        (Val::Bool(b), Literal::Bool(x)) => b == x,
        (Val::Text(t), Literal::Bool(x)) => *t == if *x { "true" } else { "false" },
        (v, Literal::Number(x)) => number(v) == Some(*x),
        (Val::Number(_), Literal::Bool(_)) => false,
    }
}

/// `*` matches any run of characters (including none); everything else
/// matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_matches_stars_only() {
        assert!(glob("gpt-4o*", "gpt-4o-mini"));
        assert!(glob("*claude*", "anthropic/claude-3"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXbY"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(glob("*", ""));
        assert!(!glob("ab*ba", "aba"));
    }
}

//! The controls' part of a `[destinations.<name>]` table (`sampling`,
//! `filter`) as written, and its validation into [`super::Controls`].

use serde::{Deserialize, Serialize};

use super::filter::{Condition, Field, Operator, Rule};
use super::prices::PriceTable;
use super::{Controls, CostControl, Sampling};
use crate::config::ConfigError;

/// `sampling.*`: keep a deterministic share of traces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingConfig {
    /// Share of traces kept, 0.0001 to 1.
    #[serde(default = "one")]
    pub rate: f64,
    /// What the decision hashes: the trace id, or the session
    /// (conversation) id when a span states one.
    #[serde(default)]
    pub key: SamplingKey,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            rate: 1.0,
            key: SamplingKey::Trace,
        }
    }
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplingKey {
    #[default]
    Trace,
    Session,
}

/// `filter.*`: which spans (or traces) this destination receives.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Keep only GenAI spans and their ancestors.
    #[serde(default)]
    pub drop_non_genai: bool,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// One `[[destinations.<name>.filter.rules]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub action: Action,
    #[serde(default)]
    pub scope: Scope,
    /// Every condition must hold (AND).
    #[serde(default)]
    pub all: Vec<ConditionConfig>,
    /// At least one condition must hold (OR), if any is given.
    #[serde(default)]
    pub any: Vec<ConditionConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Include,
    Exclude,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    Span,
    Trace,
}

/// A literal in a condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Literal {
    Bool(bool),
    Number(f64),
    Text(String),
}

/// One condition: a field and exactly one operator.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionConfig {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Literal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_equals: Option<Literal>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<String>>,
    /// A glob: `*` matches any run of characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
}

/// `cost.*`: a cost for LLM calls whose spans carry none.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostConfig {
    /// Compute a cost from the price table.
    #[serde(default)]
    pub compute: bool,
    /// `auto`: only where the destination would not price the call itself;
    /// `tracebridge`: whenever the span carries no cost.
    #[serde(default)]
    pub source: CostSource,
    /// A price file over the shipped table (same format as `src/control/prices.toml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CostSource {
    #[default]
    Auto,
    Tracebridge,
}

/// What a destination's own controls were given.
#[derive(Debug, Clone, Copy, Default)]
pub struct ControlTables<'a> {
    pub sampling: Option<&'a SamplingConfig>,
    pub filter: Option<&'a FilterConfig>,
    pub cost: Option<&'a CostConfig>,
    /// Providers the destination prices itself (`cost.source = "auto"`
    /// leaves their calls alone).
    pub priced_by_destination: &'a [&'a str],
}

/// Validates `sampling`, `filter` and `cost` of destination `name`.
pub fn validate_all(name: &str, t: ControlTables<'_>) -> Result<Controls, ConfigError> {
    let mut controls = validate(name, t.sampling, t.filter)?;
    if let Some(c) = t.cost.filter(|c| c.compute) {
        let table = PriceTable::load(c.prices_file.as_deref()).map_err(|e| {
            ConfigError::Invalid(format!("destinations.{name}.cost.prices_file: {e}"))
        })?;
        controls.cost = Some(CostControl {
            table: std::sync::Arc::new(table),
            skip_providers: match c.source {
                CostSource::Auto => t
                    .priced_by_destination
                    .iter()
                    .map(|p| p.to_string())
                    .collect(),
                CostSource::Tracebridge => Vec::new(),
            },
        });
    } else if t
        .cost
        .is_some_and(|c| c.prices_file.is_some() || c.source != CostSource::Auto)
    {
        return Err(ConfigError::Invalid(format!(
            "destinations.{name}.cost: prices_file and source take effect only with cost.compute = true"
        )));
    }
    Ok(controls)
}

/// Validates `sampling` and `filter` of destination `name`.
pub fn validate(
    name: &str,
    sampling: Option<&SamplingConfig>,
    filter: Option<&FilterConfig>,
) -> Result<Controls, ConfigError> {
    let invalid = |msg: String| ConfigError::Invalid(format!("destinations.{name}.{msg}"));
    let sampling = match sampling {
        None => None,
        Some(s) if !(0.0001..=1.0).contains(&s.rate) => {
            return Err(invalid(format!(
                "sampling.rate = {}: use 0.0001 to 1 (to send nothing, set enabled = false)",
                s.rate
            )));
        }
        Some(s) if s.rate >= 1.0 && s.key == SamplingKey::Trace => None,
        Some(s) => Some(Sampling::new(s.rate, s.key)),
    };
    let (drop_non_genai, rules) = match filter {
        None => (false, Vec::new()),
        Some(f) => {
            let mut rules = Vec::with_capacity(f.rules.len());
            for (i, r) in f.rules.iter().enumerate() {
                rules.push(rule(r).map_err(|m| invalid(format!("filter.rules[{i}]: {m}")))?);
            }
            (f.drop_non_genai, rules)
        }
    };
    Ok(Controls {
        sampling,
        drop_non_genai,
        rules,
        cost: None,
    })
}

fn rule(r: &RuleConfig) -> Result<Rule, String> {
    if r.all.is_empty() && r.any.is_empty() {
        return Err("give at least one condition in `all` or `any`".into());
    }
    let conditions = |list: &[ConditionConfig], group: &str| {
        list.iter()
            .enumerate()
            .map(|(i, c)| condition(c).map_err(|m| format!("{group}[{i}]: {m}")))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(Rule {
        include: r.action == Action::Include,
        whole_trace: r.scope == Scope::Trace,
        all: conditions(&r.all, "all")?,
        any: conditions(&r.any, "any")?,
    })
}

fn condition(c: &ConditionConfig) -> Result<Condition, String> {
    let field = Field::parse(&c.field)?;
    let mut ops = Vec::new();
    if let Some(v) = &c.equals {
        ops.push(Operator::Equals(v.clone()));
    }
    if let Some(v) = &c.not_equals {
        ops.push(Operator::NotEquals(v.clone()));
    }
    if let Some(v) = &c.one_of {
        ops.push(Operator::OneOf(v.clone()));
    }
    if let Some(v) = &c.matches {
        ops.push(Operator::Matches(v.clone()));
    }
    if let Some(v) = c.above {
        ops.push(Operator::Above(v));
    }
    if let Some(v) = c.below {
        ops.push(Operator::Below(v));
    }
    if let Some(v) = c.exists {
        ops.push(Operator::Exists(v));
    }
    let [op] = <[Operator; 1]>::try_from(ops).map_err(|ops| {
        format!(
            "field {:?} needs exactly one of equals, not_equals, in, matches, above, below, exists (found {})",
            c.field,
            ops.len()
        )
    })?;
    if matches!(op, Operator::Above(_) | Operator::Below(_)) && !field.is_numeric() {
        return Err(format!(
            "`above`/`below` compare numbers; {:?} is not a number (numeric fields: cost, input_tokens, output_tokens, total_tokens, duration_ms)",
            c.field
        ));
    }
    Ok(Condition { field, op })
}

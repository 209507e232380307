//! The controls' part of a `[destinations.<name>]` table (`sampling`,
//! `filter`) as written, and its validation into [`super::Controls`].

use serde::{Deserialize, Serialize};

use super::filter::{Condition, Field, Operator, Rule};
use super::prices::PriceTable;
use super::redact::{BUILTINS, RedactRule, Redactor, Replacement};
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
    /// Traces kept whatever the rate: errors, slow spans, cost or tokens
    /// above a threshold (`src/control/keep.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_keep: Option<super::keep::AlwaysKeepConfig>,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            rate: 1.0,
            key: SamplingKey::Trace,
            always_keep: None,
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

/// `redact.*`: secrets and personal data removed from every string that leaves.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactConfig {
    /// Named built-in patterns (see `control::redact::BUILTINS`).
    #[serde(default)]
    pub builtins: Vec<String>,
    #[serde(default)]
    pub rules: Vec<RedactRuleConfig>,
    /// What a match becomes; `{rule}` is the rule's name.
    #[serde(default = "default_replacement")]
    pub replacement: String,
    /// With a key, a match becomes a keyed hash of itself instead (the
    /// same value always gives the same token, so joins still work).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_key_file: Option<std::path::PathBuf>,
    /// Count matches, change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

fn default_replacement() -> String {
    "[REDACTED:{rule}]".into()
}

/// One `[[destinations.<name>.redact.rules]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactRuleConfig {
    /// The rule's name in `tracebridge_redacted_values_total{rule}`.
    pub name: String,
    /// A regex; without one, the whole value of the `keys` is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Only these attribute keys (`*` at the end: a prefix).
    #[serde(default)]
    pub keys: Vec<String>,
}

fn redactor(name: &str, r: &RedactConfig) -> Result<Redactor, ConfigError> {
    let invalid = |m: String| ConfigError::Invalid(format!("destinations.{name}.redact.{m}"));
    let mut rules = Vec::new();
    for b in &r.builtins {
        let Some((_, pattern)) = BUILTINS.iter().find(|(n, _)| n == b) else {
            let names: Vec<&str> = BUILTINS.iter().map(|(n, _)| *n).collect();
            return Err(invalid(format!(
                "builtins: unknown {b:?}; built-ins: {}",
                names.join(", ")
            )));
        };
        rules.push(RedactRule::new(b.clone(), Some(pattern), true, Vec::new()).map_err(invalid)?);
    }
    for (i, rule) in r.rules.iter().enumerate() {
        if rule.pattern.is_none() && rule.keys.is_empty() {
            return Err(invalid(format!(
                "rules[{i}] ({}): give a pattern, keys, or both",
                rule.name
            )));
        }
        let built = RedactRule::new(
            rule.name.clone(),
            rule.pattern.as_deref(),
            false,
            rule.keys.clone(),
        )
        .map_err(|e| invalid(format!("rules[{i}] ({}): {e}", rule.name)))?;
        rules.push(built);
    }
    if rules.is_empty() {
        return Err(invalid("builtins / rules: name at least one rule".into()));
    }
    let replacement = match &r.hash_key_file {
        Some(path) => {
            let key = std::fs::read(path).map_err(|e| {
                invalid(format!(
                    "hash_key_file: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            let key = key.trim_ascii().to_vec();
            if key.len() < 16 {
                return Err(invalid(
                    "hash_key_file: use a key of at least 16 bytes".into(),
                ));
            }
            Replacement::KeyedHash(key)
        }
        None => Replacement::Fixed(r.replacement.clone()),
    };
    Ok(Redactor {
        rules,
        replacement,
        dry_run: r.dry_run,
    })
}

/// What a destination's own controls were given.
#[derive(Debug, Clone, Copy, Default)]
pub struct ControlTables<'a> {
    pub sampling: Option<&'a SamplingConfig>,
    pub filter: Option<&'a FilterConfig>,
    pub cost: Option<&'a CostConfig>,
    pub redact: Option<&'a RedactConfig>,
    pub tenants: Option<&'a super::TenantsConfig>,
    /// Providers the destination prices itself (`cost.source = "auto"`
    /// leaves their calls alone).
    pub priced_by_destination: &'a [&'a str],
}

/// Validates `sampling`, `filter` and `cost` of destination `name`.
pub fn validate_all(name: &str, t: ControlTables<'_>) -> Result<Controls, ConfigError> {
    let mut controls = validate(name, t.sampling, t.filter)?;
    if let Some(r) = t.redact {
        controls.redact = Some(redactor(name, r)?);
    }
    if let Some(tenants) = t.tenants {
        controls.tenants = Some(super::tenants::validate(name, tenants)?);
    }
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
        Some(s) if s.always_keep.is_some() && (s.rate >= 1.0 || s.key != SamplingKey::Trace) => {
            return Err(invalid(
                "sampling.always_keep: takes effect with sampling.rate below 1 and sampling.key = \"trace\"".into(),
            ));
        }
        Some(s) if s.rate >= 1.0 && s.key == SamplingKey::Trace => None,
        Some(s) => {
            let mut sampling = Sampling::new(s.rate, s.key);
            if let Some(k) = &s.always_keep {
                sampling.always_keep = Some(
                    k.validate()
                        .map_err(|m| invalid(format!("sampling.always_keep: {m}")))?,
                );
            }
            Some(sampling)
        }
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
        redact: None,
        tenants: None,
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

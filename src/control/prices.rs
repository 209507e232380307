//! Prices: the table shipped with the binary (`prices.toml`, its sources
//! documented there), an operator's file over it, model id normalisation,
//! and the cost of one call.

use std::collections::HashMap;
use std::path::Path;

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Deserialize;

use crate::semconv::{Cost, Usage};

/// The shipped table.
pub const SHIPPED: &str = include_str!("prices.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    #[serde(default)]
    model: Vec<Row>,
}

/// One `[[model]]` row: USD per million tokens from `since` on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    provider: String,
    id: String,
    since: String,
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
}

/// A price in force from `since` (Unix seconds of that day's midnight, UTC).
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub provider: String,
    pub since: u64,
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

/// Prices by normalised model id, oldest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PriceTable {
    by_model: HashMap<String, Vec<Price>>,
}

impl PriceTable {
    /// The shipped table, then `extra` (an operator's file) over it: a row
    /// with the same provider, id and `since` replaces the shipped one.
    pub fn load(extra: Option<&Path>) -> Result<Self, String> {
        let mut table = Self::default();
        table
            .add(SHIPPED)
            .map_err(|e| format!("the shipped price table: {e}"))?;
        if let Some(path) = extra {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            table
                .add(&text)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(table)
    }

    fn add(&mut self, text: &str) -> Result<(), String> {
        let file: PriceFile = Figment::from(Toml::string(text))
            .extract()
            .map_err(|e| e.to_string())?;
        for (i, row) in file.model.into_iter().enumerate() {
            let since = day(&row.since).ok_or_else(|| {
                format!(
                    "model[{i}] ({}): since = {:?} is not a YYYY-MM-DD date",
                    row.id, row.since
                )
            })?;
            let prices = [
                row.input,
                row.output,
                row.cache_read.unwrap_or(0.0),
                row.cache_write.unwrap_or(0.0),
            ];
            if prices.iter().any(|p| !p.is_finite() || *p < 0.0) {
                return Err(format!(
                    "model[{i}] ({}): prices must be numbers ≥ 0",
                    row.id
                ));
            }
            let price = Price {
                provider: row.provider.to_ascii_lowercase(),
                since,
                input: row.input,
                output: row.output,
                cache_read: row.cache_read.unwrap_or(row.input),
                cache_write: row.cache_write.unwrap_or(row.input),
            };
            let rows = self.by_model.entry(normalise_model(&row.id)).or_default();
            rows.retain(|p| !(p.provider == price.provider && p.since == price.since));
            rows.push(price);
            rows.sort_by_key(|p| p.since);
        }
        Ok(())
    }

    /// The price of `model` for a call that started at `at` (Unix seconds;
    /// 0: unknown, the newest price): the provider's own row when there is
    /// one, else any provider's.
    pub fn find(&self, provider: Option<&str>, model: &str, at: u64) -> Option<&Price> {
        let rows = self.by_model.get(&normalise_model(model))?;
        let in_force = |p: &&Price| at == 0 || p.since <= at;
        let own = rows
            .iter()
            .rev()
            .filter(in_force)
            .find(|p| Some(p.provider.as_str()) == provider);
        own.or_else(|| rows.iter().rev().find(in_force))
    }
}

impl Price {
    /// The cost of one call. Input tokens include cache reads and writes
    /// (the normalised model's convention), which are billed at their own rates.
    pub fn cost(&self, u: &Usage) -> Option<Cost> {
        if u.input.is_none() && u.output.is_none() {
            return None;
        }
        let per_token = |n: i64, usd_per_million: f64| n.max(0) as f64 * usd_per_million / 1e6;
        let read = u.cache_read.unwrap_or(0);
        let write = u.cache_creation.unwrap_or(0);
        let plain = u.input.unwrap_or(0) - read - write;
        let input = per_token(plain, self.input)
            + per_token(read, self.cache_read)
            + per_token(write, self.cache_write);
        let output = per_token(u.output.unwrap_or(0), self.output);
        Some(Cost {
            input: Some(input),
            output: Some(output),
            total: Some(input + output),
        })
    }
}

/// Midnight UTC of a `YYYY-MM-DD` date, in Unix seconds.
fn day(date: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339(&format!("{date}T00:00:00Z")).ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// The id a price is looked up by: lower case; without a `provider/` or
/// OpenRouter `author/` prefix, a Bedrock `region.vendor.` prefix and
/// `-vN:M` suffix, a Vertex `@version`, an OpenRouter `:variant`, a
/// dated-version suffix (`-2024-08-06`, `-20241022`) or `-latest`; dots
/// read as hyphens (`claude-3.5-sonnet` = `claude-3-5-sonnet`).
pub fn normalise_model(model: &str) -> String {
    let lower = model.trim().to_ascii_lowercase();
    let mut id: &str = lower.rsplit('/').next().unwrap_or(&lower);
    for cut in [':', '@'] {
        if let Some(at) = id.find(cut) {
            id = &id[..at];
        }
    }
    for region in ["us.", "eu.", "apac.", "global."] {
        id = id.strip_prefix(region).unwrap_or(id);
    }
    for vendor in [
        "anthropic.",
        "meta.",
        "amazon.",
        "mistral.",
        "cohere.",
        "ai21.",
        "deepseek.",
    ] {
        id = id.strip_prefix(vendor).unwrap_or(id);
    }
    id = strip_version(id);
    id = strip_date(id);
    id = id.strip_suffix("-latest").unwrap_or(id);
    id.replace('.', "-")
}

/// `-v1`, `-v2` (Bedrock's version, its `:0` already cut).
fn strip_version(id: &str) -> &str {
    match id.rsplit_once("-v") {
        Some((head, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => id,
    }
}

/// `-YYYY-MM-DD` or `-YYYYMMDD` at the end.
fn strip_date(id: &str) -> &str {
    if !id.is_ascii() {
        return id;
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let b = id.as_bytes();
    if b.len() > 11 {
        let (head, tail) = id.split_at(id.len() - 11);
        let t = tail.as_bytes();
        if t[0] == b'-'
            && t[5] == b'-'
            && t[8] == b'-'
            && digits(&tail[1..5])
            && digits(&tail[6..8])
            && digits(&tail[9..])
        {
            return head;
        }
    }
    if b.len() > 9 {
        let (head, tail) = id.split_at(id.len() - 9);
        if tail.starts_with("-20") && digits(&tail[1..]) {
            return head;
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_are_normalised_across_spellings() {
        for (given, want) in [
            ("gpt-4o-2024-08-06", "gpt-4o"),
            ("openai/gpt-4o-mini", "gpt-4o-mini"),
            ("GPT-4.1", "gpt-4-1"),
            ("anthropic/claude-3.5-sonnet", "claude-3-5-sonnet"),
            ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
            ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
            (
                "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
                "claude-3-5-sonnet",
            ),
            ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
            ("deepseek/deepseek-chat:free", "deepseek-chat"),
            ("models/gemini-2.5-flash", "gemini-2-5-flash"),
            ("o3", "o3"),
        ] {
            assert_eq!(normalise_model(given), want, "{given}");
        }
    }

    /// Hand-computed from the providers' pages (see prices.toml).
    #[test]
    fn a_few_known_prices_are_pinned() {
        let t = PriceTable::load(None).expect("the shipped table loads");
        let usage = |input, output, read, write| Usage {
            input: Some(input),
            output: Some(output),
            cache_read: read,
            cache_creation: write,
            ..Default::default()
        };
        let total = |provider: Option<&str>, model: &str, at: u64, u: Usage| {
            t.find(provider, model, at)
                .and_then(|p| p.cost(&u))
                .and_then(|c| c.total)
                .expect(model)
        };
        let jan_2026 = 1_767_225_600;
        // gpt-4o: 1000 in ($2.50/M) + 500 out ($10/M) = 0.0025 + 0.005
        let c = total(
            Some("openai"),
            "gpt-4o-2024-08-06",
            jan_2026,
            usage(1000, 500, None, None),
        );
        assert!((c - 0.0075).abs() < 1e-12, "{c}");
        // … and at its launch price ($5 / $15) in June 2024.
        let c = total(
            Some("openai"),
            "gpt-4o",
            1_718_000_000,
            usage(1000, 500, None, None),
        );
        assert!((c - 0.0125).abs() < 1e-12, "{c}");
        // claude-sonnet-4-5 through OpenRouter: 10k in of which 6k cache read
        // ($0.30/M) and 1k cache write ($3.75/M), 3k plain ($3/M); 2k out ($15/M).
        let c = total(
            Some("openrouter"),
            "anthropic/claude-sonnet-4.5",
            jan_2026,
            usage(10_000, 2_000, Some(6_000), Some(1_000)),
        );
        let want = 3_000.0 * 3.0 / 1e6
            + 6_000.0 * 0.30 / 1e6
            + 1_000.0 * 3.75 / 1e6
            + 2_000.0 * 15.0 / 1e6;
        assert!((c - want).abs() < 1e-12, "{c} vs {want}");
        // gpt-4o-mini: 1M in + 1M out = 0.15 + 0.60
        let c = total(
            None,
            "gpt-4o-mini",
            0,
            usage(1_000_000, 1_000_000, None, None),
        );
        assert!((c - 0.75).abs() < 1e-9, "{c}");
        // gemini-2.5-flash on Bedrock-like spelling is not a thing; on Vertex: same row.
        let c = total(
            Some("google_vertexai"),
            "gemini-2.5-flash",
            jan_2026,
            usage(2_000, 1_000, None, None),
        );
        assert!((c - (0.0006 + 0.0025)).abs() < 1e-12, "{c}");
        assert!(t.find(None, "no-such-model", 0).is_none());
    }

    #[test]
    fn an_operator_file_overrides_and_extends_the_shipped_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("prices.toml");
        std::fs::write(
            &path,
            "[[model]]\nprovider = \"openai\"\nid = \"gpt-4o\"\nsince = \"2024-10-02\"\ninput = 1.0\noutput = 2.0\n[[model]]\nprovider = \"acme\"\nid = \"acme-7b\"\nsince = \"2025-01-01\"\ninput = 0.5\noutput = 0.5\n",
        )
        .expect("write");
        let t = PriceTable::load(Some(&path)).expect("loads");
        assert_eq!(
            t.find(Some("openai"), "gpt-4o", 0).map(|p| p.input),
            Some(1.0)
        );
        assert_eq!(t.find(None, "acme/acme-7b", 0).map(|p| p.output), Some(0.5));
        std::fs::write(
            &path,
            "[[model]]\nprovider = \"x\"\nid = \"y\"\nsince = \"soon\"\ninput = 1\noutput = 1\n",
        )
        .expect("write");
        let e = PriceTable::load(Some(&path)).expect_err("bad date");
        assert!(e.contains("since = \"soon\""), "{e}");
    }
}

//! Tool spans that record no arguments or result, completed from the LLM
//! calls around them.
//!
//! Some producers keep a tool call's content only in the conversation:
//! openai-v2 in event mode (`EVENT_ONLY`) writes no content on any span, and
//! the `execute_tool` span has only its `gen_ai.tool.call.id`; the
//! arguments are in the tool call the model asked for (the first call's
//! output messages) and the result in the tool message sent back (the next
//! call's input), both in log records. Matched by trace and tool call id,
//! in either order:
//! - an LLM call's messages teach the arguments and results of the tool
//!   calls they name;
//! - a tool span written without arguments or result has its row kept; what
//!   is known already, or learnt later, is filled into it and the row
//!   written again (Opik replaces whole rows, the newest `last_updated_at`
//!   winning).
//!
//! Bounded by [`BOUNDS`]. Nothing is learnt under privacy mode (the views
//! carry no content).

use std::time::Duration;

use serde_json::Value as Json;
use tokio::time::Instant;

use super::recent::{Bounds, Recent};
use crate::semconv::write::chat;
use crate::semconv::{GenAiSpan, Kind, Part, ToolCall};

/// Kept for a minute, at most 1024 entries and 8 MiB (oldest first out).
pub const BOUNDS: Bounds = Bounds {
    window: Duration::from_secs(60),
    max_entries: 1024,
    max_bytes: 8 << 20,
};

/// (OTel trace id, tool call id).
type Key = ([u8; 16], String);

#[derive(Default)]
struct Entry {
    /// The tool span's row as last written, while it lacks something.
    row: Option<String>,
    arguments: Option<Json>,
    result: Option<Json>,
}

impl Entry {
    fn bytes(&self) -> usize {
        let len = |v: &Option<Json>| v.as_ref().map_or(0, |v| v.to_string().len());
        self.row.as_ref().map_or(0, String::len) + len(&self.arguments) + len(&self.result)
    }
}

/// Tool calls by trace and id.
pub struct ToolRows(Recent<Key, Entry>);

impl Default for ToolRows {
    fn default() -> Self {
        Self(Recent::new(BOUNDS))
    }
}

/// Whether a tool span's row lacks its arguments or its result.
pub fn lacks_content(g: &GenAiSpan) -> bool {
    g.kind == Kind::Tool
        && g.tool.call_id.is_some()
        && ((g.tool.arguments.is_none() && g.input.is_none())
            || (g.tool.result.is_none() && g.output.is_none()))
}

impl ToolRows {
    /// What an LLM call's messages say about tool calls of trace `tid`;
    /// returns the tool rows this completes, to be written again.
    pub fn learn(&mut self, tid: [u8; 16], g: &GenAiSpan, now: Instant) -> Vec<Json> {
        let mut rows = Vec::new();
        let messages = g.input_messages.iter().chain(&g.output_messages);
        for part in messages.flat_map(|m| &m.parts) {
            let (id, arguments, result) = match part {
                Part::ToolCall {
                    id: Some(id),
                    arguments,
                    ..
                } => (id, Some(arguments), None),
                Part::ToolResult {
                    id: Some(id),
                    result,
                } => (id, None, Some(result)),
                _ => continue,
            };
            let key = (tid, id.clone());
            // Conversations repeat their history: what is known is not learnt again.
            let known = self.0.get(&key).is_some_and(|e| {
                (arguments.is_none() || e.arguments.is_some())
                    && (result.is_none() || e.result.is_some())
            });
            if known {
                continue;
            }
            let mut e = self.0.take(&key).unwrap_or_default();
            if e.arguments.is_none() {
                e.arguments = arguments.cloned();
            }
            if e.result.is_none() {
                e.result = result.cloned();
            }
            rows.extend(fill(&mut e));
            self.keep(key, e, now);
        }
        rows
    }

    /// A tool span's row written without its arguments or result: what is
    /// known already is filled in (the row to write again), and the row is
    /// kept for what may come.
    pub fn await_content(
        &mut self,
        tid: [u8; 16],
        call_id: &str,
        row: &str,
        now: Instant,
    ) -> Option<Json> {
        let key = (tid, call_id.to_string());
        let mut e = self.0.take(&key).unwrap_or_default();
        e.row = Some(row.to_string());
        let filled = fill(&mut e);
        self.keep(key, e, now);
        filled
    }

    /// Forgets what is older than the window.
    pub fn expire(&mut self, now: Instant) {
        self.0.expire(now);
    }

    fn keep(&mut self, key: Key, e: Entry, now: Instant) {
        let bytes = e.bytes();
        self.0.put(key, e, bytes, now);
    }
}

/// Fills what `e` knows into its row where the row has nothing; returns
/// the row when it changed (and keeps it, unless now complete).
fn fill(e: &mut Entry) -> Option<Json> {
    let mut row: Json = serde_json::from_str(e.row.as_deref()?).ok()?;
    let view = GenAiSpan {
        kind: Kind::Tool,
        tool: ToolCall {
            arguments: e.arguments.clone(),
            result: e.result.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    let o = row.as_object_mut()?;
    let mut changed = false;
    for (field, value) in [
        ("input", chat::span_input(&view)),
        ("output", chat::span_output(&view)),
    ] {
        if let (None, Some(v)) = (o.get(field), value) {
            o.insert(field.into(), v.to_value());
            changed = true;
        }
    }
    if !changed {
        return None;
    }
    let complete = o.contains_key("input") && o.contains_key("output");
    e.row = (!complete).then(|| row.to_string());
    Some(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::semconv::Message;
    use serde_json::json;

    fn llm(parts: Vec<Part>) -> GenAiSpan {
        GenAiSpan {
            kind: Kind::Llm,
            output_messages: vec![Message {
                role: "assistant".into(),
                parts,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn call() -> Part {
        Part::ToolCall {
            id: Some("c1".into()),
            name: "get_weather".into(),
            arguments: json!({"city": "Paris"}),
        }
    }

    fn result() -> Part {
        Part::ToolResult {
            id: Some("c1".into()),
            result: json!("sunny"),
        }
    }

    const ROW: &str = r#"{"id":"t","type":"tool","metadata":{}}"#;

    #[test]
    fn a_tool_row_is_completed_from_calls_seen_before_and_after_it() {
        let now = Instant::now();
        let mut t = ToolRows::default();
        assert!(t.learn([1; 16], &llm(vec![call()]), now).is_empty());
        let row = t.await_content([1; 16], "c1", ROW, now).unwrap();
        assert_eq!(row["input"], json!({"city": "Paris"}));
        assert!(row.get("output").is_none());
        let rows = t.learn([1; 16], &llm(vec![result()]), now);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["input"], json!({"city": "Paris"}));
        assert_eq!(rows[0]["output"], json!({"output": "sunny"}));
        assert!(
            t.learn([1; 16], &llm(vec![call(), result()]), now)
                .is_empty(),
            "nothing new: not written again"
        );
        assert!(
            t.await_content([2; 16], "c1", ROW, now).is_none(),
            "another trace's call"
        );
    }

    #[test]
    fn only_tool_spans_with_a_call_id_and_no_content_wait() {
        let mut g = GenAiSpan {
            kind: Kind::Tool,
            ..Default::default()
        };
        assert!(!lacks_content(&g), "no call id");
        g.tool.call_id = Some("c1".into());
        assert!(lacks_content(&g));
        g.tool.arguments = Some(json!({}));
        g.tool.result = Some(json!("r"));
        assert!(!lacks_content(&g));
    }
}

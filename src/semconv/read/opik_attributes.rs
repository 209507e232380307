//! Explicit `opik.*` attributes: routing, ids, tags, metadata and thread.

use super::{Reader, fill};

pub(super) const PROJECT_KEY: &str = "opik.project_name";

pub(super) fn read(r: &mut Reader<'_>) {
    let a = &mut r.attrs;
    let o = &mut r.out;
    fill(&mut o.project_name, a.take_string(PROJECT_KEY));
    fill(
        &mut o.project_name,
        resource_string(r.ctx.resource_attributes, PROJECT_KEY),
    );
    fill(&mut o.opik_trace_id, a.take_string("opik.trace_id"));
    fill(&mut o.opik_span_id, a.take_string("opik.span_id"));
    fill(
        &mut o.opik_parent_span_id,
        a.take_string("opik.parent_span_id"),
    );
    if let Some(tags) = a.take_string_list("opik.tags") {
        o.tags.extend(tags.into_iter().flat_map(split_comma_tags));
    }
    fill(&mut o.conversation_id, a.take_string("opik.thread_id"));
    fill(&mut o.conversation_id, a.take_string("thread_id"));
    for key in a.keys_with_prefix("opik.metadata.") {
        if let Some(v) = a.take_json(key) {
            o.custom_metadata
                .insert(key["opik.metadata.".len()..].to_string(), v);
        }
    }
    if let Some(serde_json::Value::Object(m)) = a.take_json("opik.metadata") {
        for (k, v) in m {
            o.custom_metadata.entry(k).or_insert(v);
        }
    }
}

/// Opik accepts tags as a list or as one comma-separated string.
pub(super) fn split_comma_tags(tag: String) -> Vec<String> {
    tag.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// A string resource attribute (resource attributes are never claimed: they
/// belong to every span of the resource and are kept whole elsewhere).
pub(super) fn resource_string(
    resource: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<String> {
    crate::pdata::string_attribute(resource, key)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

//! Re-batching: items back into one `ExportTraceServiceRequest`, keeping
//! resource and scope grouping.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

use super::{OtlpItem, ResourceGroup, ScopeGroup};

/// A scope's spans, keyed by the scope they came with.
type Scoped<'a> = (&'a Arc<ScopeGroup>, ScopeSpans);

/// Groups items by resource (then scope) in first-seen order. Items mapped
/// from the same request share their resource and scope, so the grouping
/// of the original request survives re-batching.
pub fn build(items: &[OtlpItem]) -> ExportTraceServiceRequest {
    let mut resources: Vec<(&Arc<ResourceGroup>, Vec<Scoped<'_>>)> = Vec::new();
    for item in items {
        let r = match resources.iter().position(|(g, _)| same(g, &item.resource)) {
            Some(i) => i,
            None => {
                resources.push((&item.resource, Vec::new()));
                resources.len() - 1
            }
        };
        let scopes = &mut resources[r].1;
        let s = match scopes.iter().position(|(g, _)| same(g, &item.scope)) {
            Some(i) => i,
            None => {
                scopes.push((
                    &item.scope,
                    ScopeSpans {
                        scope: item.scope.scope.clone(),
                        schema_url: item.scope.schema_url.clone(),
                        spans: Vec::new(),
                    },
                ));
                scopes.len() - 1
            }
        };
        scopes[s].1.spans.push(item.span.clone());
    }
    ExportTraceServiceRequest {
        resource_spans: resources
            .into_iter()
            .map(|(group, scopes)| ResourceSpans {
                resource: Some(group.resource.clone()),
                schema_url: group.schema_url.clone(),
                scope_spans: scopes.into_iter().map(|(_, s)| s).collect(),
            })
            .collect(),
    }
}

/// The same group: the same allocation, or equal content.
fn same<T: PartialEq>(a: &Arc<T>, b: &Arc<T>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

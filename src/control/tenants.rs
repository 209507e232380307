//! Tenants: which tenants' requests a destination takes (`tenants`), the
//! gate in front of its mapper that leaves the others out, and the
//! daemon-wide policy the receivers check before acknowledging a request.
//!
//! A request's tenant is the one its bearer token carries
//! (`[receiver.auth.tokens.<name>] tenant`); it travels in the request's
//! context and its spool record. A destination without `tenants` takes
//! every request; with `tenants`, only those of the tenants it names (`"*"`:
//! any other tenant, and requests without one). A request that no enabled
//! destination takes is refused (403 / PERMISSION_DENIED), never
//! acknowledged and dropped.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::config::ConfigError;
use crate::config::secret::Secret;
use crate::export::ItemMapper;
use crate::route::ReceivedTraces;
use crate::telemetry::DestinationTelemetry;
use crate::telemetry::reason::{ControlDrop, LogOutcome};

/// The tenant name that stands for any other tenant and for requests
/// without one.
pub const ANY_OTHER: &str = "*";

/// `tenants` as written: the tenants a destination takes, as a list, or
/// (Opik) as a table giving each its own workspace, project and key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TenantsConfig {
    List(Vec<String>),
    Map(BTreeMap<String, TenantRouteConfig>),
}

/// One `[destinations.<name>.tenants.<tenant>]` of an Opik destination;
/// what is not given is the destination's own setting.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantRouteConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// The tenant's project: it wins over any project a span or header
    /// names.
    #[serde(
        default,
        alias = "project_name",
        skip_serializing_if = "Option::is_none"
    )]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
}

impl TenantsConfig {
    /// The tenant names, as written.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Self::List(l) => l.iter().map(String::as_str).collect(),
            Self::Map(m) => m.keys().map(String::as_str).collect(),
        }
    }
}

/// Which tenants a destination takes, validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TenantFilter {
    pub names: Vec<Arc<str>>,
    /// `"*"`: any other tenant, and requests without one.
    pub others: bool,
}

impl TenantFilter {
    pub fn accepts(&self, tenant: Option<&str>) -> bool {
        match tenant {
            Some(t) => self.others || self.names.iter().any(|n| &**n == t),
            None => self.others,
        }
    }
}

/// The key of OTel trace `tid` within `tenant`'s traces: the trace id
/// itself without a tenant; else derived from both, so that state kept per
/// trace (the Opik trace table, held spans) is never shared between two
/// tenants, even when one sends the other's trace id.
pub fn scoped_trace(tid: &[u8; 16], tenant: Option<&str>) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let Some(tenant) = tenant else { return *tid };
    let digest = Sha256::new()
        .chain_update(b"tracebridge tenant\0")
        .chain_update(tenant.as_bytes())
        .chain_update([0])
        .chain_update(tid)
        .finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// Validates `destinations.<name>.tenants`.
pub fn validate(name: &str, t: &TenantsConfig) -> Result<TenantFilter, ConfigError> {
    let names = t.names();
    if names.is_empty() {
        return Err(ConfigError::Invalid(format!(
            "destinations.{name}.tenants is empty: name at least one tenant, or remove it to take every request"
        )));
    }
    let mut filter = TenantFilter::default();
    for n in names {
        if n == ANY_OTHER {
            filter.others = true;
        } else if crate::config::valid_tenant_name(n) {
            filter.names.push(Arc::from(n));
        } else {
            return Err(ConfigError::Invalid(format!(
                "destinations.{name}.tenants: {n:?} is not a tenant name (letters, digits, '-', '_', '.'; or \"*\" for any other)"
            )));
        }
    }
    Ok(filter)
}

/// What every running destination takes: the receivers refuse a request
/// that none of them would.
#[derive(Debug, Clone, Default)]
pub struct TenantPolicy {
    /// One per enabled destination; `None` takes every request.
    filters: Vec<Option<TenantFilter>>,
}

impl TenantPolicy {
    pub fn new(filters: Vec<Option<TenantFilter>>) -> Self {
        Self { filters }
    }

    /// Whether some destination takes requests of `tenant` (with no
    /// destination at all, the request is taken as before: nothing routes).
    pub fn accepts(&self, tenant: Option<&str>) -> bool {
        self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|f| f.as_ref().is_none_or(|f| f.accepts(tenant)))
    }
}

/// A destination's mapper behind its `tenants`: requests of other tenants
/// never reach it; their spans are counted as
/// `tracebridge_control_dropped_spans_total{reason="other_tenant"}` and
/// their log records as `…log_records_total{outcome="other_tenant"}`.
pub struct Gate<M> {
    inner: M,
    filter: Option<TenantFilter>,
    telemetry: DestinationTelemetry,
}

impl<M> Gate<M> {
    pub fn new(inner: M, filter: Option<TenantFilter>, telemetry: DestinationTelemetry) -> Self {
        Self {
            inner,
            filter,
            telemetry,
        }
    }
}

impl<M: ItemMapper> Gate<M> {
    /// Whether the request passes; if not, what it held is counted.
    fn passes(&self, traces: &ReceivedTraces) -> bool {
        let Some(f) = &self.filter else { return true };
        if f.accepts(traces.context.tenant.as_deref()) {
            return true;
        }
        self.telemetry
            .control_dropped(ControlDrop::OtherTenant, traces.span_count);
        if self.inner.takes_logs() {
            // Otherwise the pipeline counts them as not taken.
            self.telemetry
                .log_records(LogOutcome::OtherTenant, traces.log_count);
        }
        false
    }
}

impl<M: ItemMapper> ItemMapper for Gate<M> {
    type Item = M::Item;

    fn map(&mut self, traces: &ReceivedTraces, out: &mut Vec<M::Item>) {
        if self.passes(traces) {
            self.inner.map(traces, out);
        }
    }

    fn takes_logs(&self) -> bool {
        self.inner.takes_logs()
    }

    fn map_record(
        &mut self,
        traces: &ReceivedTraces,
        record: Option<(u64, u64)>,
        out: &mut Vec<M::Item>,
    ) {
        if self.passes(traces) {
            self.inner.map_record(traces, record, out);
        }
    }

    fn replay_from(&self) -> Option<u64> {
        self.inner.replay_from()
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.inner.tick_interval()
    }

    fn on_tick(&mut self, now: Instant, out: &mut Vec<M::Item>) {
        self.inner.on_tick(now, out);
    }

    fn on_shutdown(&mut self, out: &mut Vec<M::Item>) {
        self.inner.on_shutdown(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(names: &[&str]) -> TenantFilter {
        let list = TenantsConfig::List(names.iter().map(|s| s.to_string()).collect());
        validate("d", &list).unwrap()
    }

    #[test]
    fn a_destination_takes_only_the_tenants_it_names() {
        let a = filter(&["team-a"]);
        assert!(a.accepts(Some("team-a")));
        assert!(!a.accepts(Some("team-b")));
        assert!(
            !a.accepts(None),
            "a request without a tenant is not team-a's"
        );
        let others = filter(&["team-a", "*"]);
        assert!(others.accepts(Some("team-b")) && others.accepts(None));
        assert!(validate("d", &TenantsConfig::List(vec![])).is_err());
        assert!(validate("d", &TenantsConfig::List(vec!["a b".into()])).is_err());
    }

    #[test]
    fn the_policy_refuses_only_what_no_destination_takes() {
        let p = TenantPolicy::new(vec![Some(filter(&["team-a"])), Some(filter(&["team-b"]))]);
        assert!(p.accepts(Some("team-a")) && p.accepts(Some("team-b")));
        assert!(!p.accepts(Some("team-c")) && !p.accepts(None));
        let open = TenantPolicy::new(vec![Some(filter(&["team-a"])), None]);
        assert!(open.accepts(Some("team-c")) && open.accepts(None));
        assert!(TenantPolicy::default().accepts(Some("x")));
    }
}

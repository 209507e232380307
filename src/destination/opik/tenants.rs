//! One Opik destination, many teams: `[destinations.<name>.tenants.<tenant>]`
//! gives a tenant its own workspace, project and API key.
//!
//! Every row carries its route ([`super::OpikItem::route`]): 0 is the
//! destination's own workspace and key, `i + 1` the `i`-th tenant's. A
//! batch holds rows of one route only (the batcher closes a batch when the
//! route changes), and the sender writes it with that route's
//! `Comet-Workspace` and key. A tenant's project wins over any project a
//! span (`opik.project_name`) or a header (`projectName`) names, and its
//! traces have their own entries in the trace table, so one team cannot
//! write into another's project or trace by naming it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::config::OpikTarget;
use crate::config::ConfigError;
use crate::config::secret::{self, Secret};
use crate::control::tenants::{ANY_OTHER, TenantRouteConfig, scoped_trace};
use crate::semconv::logs::JoinKey;

/// A tenant's own place in Opik, validated (what it does not set is the
/// destination's).
#[derive(Debug, Clone, PartialEq)]
pub struct OpikTenant {
    /// The tenant, or `"*"` for any other.
    pub name: Arc<str>,
    pub workspace: String,
    /// Forced on every trace of the tenant; `None`: the trace chooses (span
    /// attribute, header, then the destination's `project_name`).
    pub project: Option<String>,
    pub api_key: Option<Secret>,
}

/// Where a request's rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Route<'a> {
    /// 0: the destination's own workspace and key; `i + 1`: `tenants[i]`'s.
    pub index: u16,
    /// The tenant's project, which nothing in the request overrides.
    pub project: Option<&'a str>,
}

impl OpikTarget {
    /// The route of a request of `tenant`.
    pub fn route(&self, tenant: Option<&str>) -> Route<'_> {
        let found = tenant
            .and_then(|t| self.tenants.iter().position(|r| &*r.name == t))
            .or_else(|| self.tenants.iter().position(|r| &*r.name == ANY_OTHER));
        match found {
            Some(i) => Route {
                index: (i + 1) as u16,
                project: self.tenants[i].project.as_deref(),
            },
            None => Route::default(),
        }
    }
}

/// The trace table's key for OTel trace `tid` of `tenant`: two tenants'
/// traces never share an entry (nor an Opik trace id), even when one sends
/// the other's OTel trace id.
pub fn table_key(tid: &[u8; 16], tenant: Option<&str>) -> [u8; 16] {
    scoped_trace(tid, tenant)
}

/// A log-join key within `tenant`'s traces (see [`table_key`]), so a
/// record of one tenant never joins another's span.
pub fn scoped(key: JoinKey, tenant: Option<&str>) -> JoinKey {
    key.scoped(tenant)
}

/// Validates `destinations.<name>.tenants.<tenant>` of an Opik destination
/// (`target` holds its own settings, the defaults of every tenant).
pub fn validate(
    name: &str,
    map: &BTreeMap<String, TenantRouteConfig>,
    target: &OpikTarget,
) -> Result<Vec<OpikTenant>, ConfigError> {
    if map.len() >= usize::from(u16::MAX) {
        return Err(ConfigError::Invalid(format!(
            "destinations.{name}.tenants: at most {} tenants",
            u16::MAX - 1
        )));
    }
    map.iter()
        .map(|(tenant, c)| one(name, tenant, c, target))
        .collect()
}

fn one(
    name: &str,
    tenant: &str,
    c: &TenantRouteConfig,
    target: &OpikTarget,
) -> Result<OpikTenant, ConfigError> {
    let key = |field: &str| format!("destinations.{name}.tenants.{tenant}.{field}");
    let api_key = secret::resolve(
        &key("api_key"),
        c.api_key.as_ref(),
        c.api_key_file.as_deref(),
    )?;
    let workspace = c
        .workspace
        .clone()
        .unwrap_or_else(|| target.workspace.clone());
    let blank = |v: &Option<String>| v.as_deref().is_some_and(|s| s.trim().is_empty());
    if blank(&c.workspace) || blank(&c.project) {
        return Err(ConfigError::Invalid(format!(
            "{} and {} must not be blank",
            key("workspace"),
            key("project")
        )));
    }
    // The destination's key writing into a tenant's own workspace would let
    // the gateway's key, not the team's, decide what the team may write.
    if workspace != target.workspace && api_key.is_none() && target.api_key.is_some() {
        return Err(ConfigError::Invalid(format!(
            "{}: tenant {tenant:?} writes to its own workspace {workspace:?}; give it its own api_key or api_key_file (the destination's key is for workspace {:?})",
            key("api_key"),
            target.workspace
        )));
    }
    Ok(OpikTenant {
        name: Arc::from(tenant),
        workspace,
        project: c.project.clone(),
        api_key: api_key.or_else(|| target.api_key.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::opik::config::test_target;

    fn route(
        workspace: Option<&str>,
        project: Option<&str>,
        key: Option<&str>,
    ) -> TenantRouteConfig {
        TenantRouteConfig {
            workspace: workspace.map(String::from),
            project: project.map(String::from),
            api_key: key.map(Secret::new),
            api_key_file: None,
        }
    }

    #[test]
    fn each_tenant_gets_its_route_and_others_the_fallback() {
        let mut t = test_target(10);
        t.api_key = Some(Secret::new("gateway"));
        let map = BTreeMap::from([
            (
                "team-a".to_string(),
                route(Some("ws-a"), Some("pa"), Some("ka")),
            ),
            ("team-b".to_string(), route(None, Some("pb"), None)),
            ("*".to_string(), route(None, Some("shared"), None)),
        ]);
        t.tenants = validate("o", &map, &t).unwrap();
        let a = t.route(Some("team-a"));
        assert_eq!(a.project, Some("pa"));
        let own = &t.tenants[usize::from(a.index) - 1];
        assert_eq!(
            (
                own.workspace.as_str(),
                own.api_key.as_ref().map(Secret::expose)
            ),
            ("ws-a", Some("ka"))
        );
        let b = t.route(Some("team-b"));
        assert_eq!(b.project, Some("pb"));
        let own = &t.tenants[usize::from(b.index) - 1];
        assert_eq!(own.workspace, "default", "the destination's workspace");
        assert_eq!(own.api_key.as_ref().map(Secret::expose), Some("gateway"));
        assert_eq!(t.route(Some("team-z")).project, Some("shared"));
        assert_eq!(t.route(None).project, Some("shared"));
        t.tenants.clear();
        assert_eq!(t.route(Some("team-a")), Route::default());
    }

    #[test]
    fn tenants_never_share_a_trace_entry() {
        let tid = [7u8; 16];
        assert_eq!(table_key(&tid, None), tid);
        let a = table_key(&tid, Some("team-a"));
        assert_ne!(a, tid);
        assert_ne!(a, table_key(&tid, Some("team-b")));
        assert_eq!(a, table_key(&tid, Some("team-a")), "stable");
    }

    #[test]
    fn a_tenant_in_its_own_workspace_needs_its_own_key() {
        let mut t = test_target(10);
        t.api_key = Some(Secret::new("gateway"));
        let map = BTreeMap::from([("team-a".to_string(), route(Some("ws-a"), None, None))]);
        let e = validate("o", &map, &t).unwrap_err().to_string();
        assert!(e.contains("destinations.o.tenants.team-a.api_key"), "{e}");
        let blank = BTreeMap::from([("team-a".to_string(), route(None, Some(" "), None))]);
        assert!(validate("o", &blank, &t).is_err());
    }
}

//! The daemon-wide checks of tenants: every tenant a destination names is
//! one some bearer token carries (an error otherwise: a typo would silently
//! send that team's data nowhere), and every token's tenant is taken by some
//! destination (a warning otherwise: its requests are refused with 403).

use crate::control::TenantPolicy;
use crate::control::tenants::ANY_OTHER;
use crate::destination::DestinationSettings;

use super::{ConfigError, ReceiverSettings, Settings};

/// Checks the tenants of `destinations` against the receiver's tokens;
/// returns the warnings.
pub fn check(
    receiver: &ReceiverSettings,
    destinations: &[DestinationSettings],
) -> Result<Vec<String>, ConfigError> {
    let carried: Vec<&str> = receiver
        .bearer_tokens
        .iter()
        .filter_map(|t| t.tenant.as_deref())
        .collect();
    for d in destinations {
        let Some(f) = &d.controls.tenants else {
            continue;
        };
        if let Some(unknown) = f.names.iter().find(|n| !carried.contains(&&***n)) {
            let mut known = carried.clone();
            known.sort_unstable();
            known.dedup();
            return Err(ConfigError::Invalid(format!(
                "destinations.{}.tenants names {unknown:?}, which no [receiver.auth.tokens.<name>] tenant carries (known: {}); fix the name or give a token that tenant",
                d.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    let policy = policy(destinations);
    let mut warnings = Vec::new();
    let mut tenants: Vec<Option<&str>> = receiver
        .bearer_tokens
        .iter()
        .map(|t| t.tenant.as_deref())
        .collect();
    tenants.sort_unstable();
    tenants.dedup();
    for t in tenants.into_iter().filter(|t| !policy.accepts(*t)) {
        warnings.push(match t {
            Some(t) => format!(
                "tenant {t:?} (receiver.auth.tokens) is taken by no enabled destination: its requests are refused with 403 / PERMISSION_DENIED; add it to a destination's tenants (or \"{ANY_OTHER}\")"
            ),
            None => format!(
                "tokens without a tenant are accepted, but every destination takes only named tenants: their requests are refused with 403; give the tokens a tenant or add \"{ANY_OTHER}\" to a destination's tenants"
            ),
        });
    }
    Ok(warnings)
}

fn policy(destinations: &[DestinationSettings]) -> TenantPolicy {
    TenantPolicy::new(
        destinations
            .iter()
            .map(|d| d.controls.tenants.clone())
            .collect(),
    )
}

impl Settings {
    /// What the enabled destinations take of each tenant, for the receivers.
    pub fn tenant_policy(&self) -> TenantPolicy {
        policy(&self.destinations)
    }
}

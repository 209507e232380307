//! Bearer-token authentication for both receivers. The check runs on the
//! request head, before any of the body is read, and compares tokens in
//! constant time.

use std::sync::Arc;

use http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::config::BearerToken;

/// The accepted tokens; empty means authentication is off.
#[derive(Clone, Default)]
pub struct Authenticator {
    tokens: Arc<Vec<BearerToken>>,
}

/// Who sent a request: what its token says (nothing when authentication
/// is off). Travels with the request in the HTTP request's extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The tenant of the token (`[receiver.auth.tokens.<name>] tenant`).
    pub tenant: Option<Arc<str>>,
}

impl Authenticator {
    pub fn new(tokens: Vec<BearerToken>) -> Self {
        Self {
            tokens: Arc::new(tokens),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The caller, if the request may proceed. Every configured token is
    /// compared (no early exit), each comparison in constant time.
    pub fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        self.caller_of(
            headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        )
    }

    /// As [`Authenticator::caller`], given the `Authorization` value.
    pub fn caller_of(&self, authorization: Option<&str>) -> Option<Caller> {
        if !self.enabled() {
            return Some(Caller::default());
        }
        // The scheme is case-insensitive (RFC 9110 §11.1): Bearer, bearer, BEARER.
        let presented = authorization.and_then(|v| {
            let (scheme, token) = v.trim_start().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })?;
        let presented = presented.trim().as_bytes();
        let mut found = None;
        for token in self.tokens.iter() {
            // Tokens are unique (checked at load), so at most one matches.
            if bool::from(token.token.expose().as_bytes().ct_eq(presented)) {
                found = Some(token);
            }
        }
        found.map(|t| Caller {
            tenant: t.tenant.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::secret::Secret;

    impl Authenticator {
        fn allows(&self, h: &HeaderMap) -> bool {
            self.caller(h).is_some()
        }
    }

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn only_a_matching_bearer_token_passes() {
        let a = Authenticator::new(vec![
            BearerToken::plain(Secret::new("alpha")),
            BearerToken {
                token: Secret::new("beta"),
                tenant: Some("team-b".into()),
            },
        ]);
        assert_eq!(
            a.caller(&headers("Bearer beta")).and_then(|c| c.tenant),
            Some("team-b".into())
        );
        assert_eq!(a.caller(&headers("Bearer alpha")), Some(Caller::default()));
        assert!(a.allows(&headers("Bearer beta")));
        assert!(a.allows(&headers("Bearer alpha")));
        assert!(a.allows(&headers("BEARER alpha")));
        assert!(a.allows(&headers("bEaReR  alpha")));
        assert!(!a.allows(&headers("Basic alpha")));
        assert!(!a.allows(&headers("Beareralpha")));
        assert!(!a.allows(&headers("Bearer gamma")));
        assert!(!a.allows(&headers("Bearer alph")));
        assert!(!a.allows(&headers("alpha")));
        assert!(!a.allows(&HeaderMap::new()));
        assert!(
            Authenticator::default().allows(&HeaderMap::new()),
            "off when no token is configured"
        );
    }
}

//! Bearer-token authentication for both receivers. The check runs on the
//! request head, before any of the body is read, and compares tokens in
//! constant time.

use std::sync::Arc;

use http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::config::secret::Secret;

/// The accepted tokens; empty means authentication is off.
#[derive(Clone, Default)]
pub struct Authenticator {
    tokens: Arc<Vec<Secret>>,
}

impl Authenticator {
    pub fn new(tokens: Vec<Secret>) -> Self {
        Self {
            tokens: Arc::new(tokens),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Whether the request may proceed. Every configured token is compared
    /// (no early exit), each comparison in constant time.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        self.allows_authorization(
            headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        )
    }

    /// As [`Authenticator::allows`], given the `Authorization` value.
    pub fn allows_authorization(&self, authorization: Option<&str>) -> bool {
        if !self.enabled() {
            return true;
        }
        // The scheme is case-insensitive (RFC 9110 §11.1): Bearer, bearer, BEARER.
        let Some(presented) = authorization.and_then(|v| {
            let (scheme, token) = v.trim_start().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        }) else {
            return false;
        };
        let presented = presented.trim().as_bytes();
        let mut ok = subtle::Choice::from(0);
        for token in self.tokens.iter() {
            ok |= token.expose().as_bytes().ct_eq(presented);
        }
        ok.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn only_a_matching_bearer_token_passes() {
        let a = Authenticator::new(vec![Secret::new("alpha"), Secret::new("beta")]);
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

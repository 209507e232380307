//! What the HTTP-based senders share: turning a failed request into a
//! retryable error, and reading the server's retry hint.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

use super::{SendError, error_chain, parse_retry_after};

/// A request that got no answer (connection refused or reset, timeout) is
/// worth retrying.
pub fn transport_error(what: &str, e: &reqwest::Error) -> SendError {
    SendError::Retryable {
        reason: if e.is_timeout() {
            "timeout"
        } else {
            "connection_error"
        },
        detail: format!("{what}: {}", error_chain(e)),
        retry_after: None,
    }
}

/// The server's hint: `Retry-After` (seconds or an HTTP date), else
/// `RateLimit-Reset` (seconds), as Opik's rate limiter sends.
pub fn retry_hint(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    get("retry-after")
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
        .or_else(|| {
            get("ratelimit-reset")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_reset_is_a_hint_too_and_retry_after_wins() {
        let mut h = HeaderMap::new();
        h.insert("RateLimit-Reset", "9".parse().unwrap());
        assert_eq!(retry_hint(&h), Some(Duration::from_secs(9)));
        h.insert("Retry-After", "2".parse().unwrap());
        assert_eq!(retry_hint(&h), Some(Duration::from_secs(2)));
        assert_eq!(retry_hint(&HeaderMap::new()), None);
    }
}

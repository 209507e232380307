//! What the HTTP-based senders share: turning a failed request into a
//! retryable error, and reading the server's retry hint.

use std::io::Write as _;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

use super::{SendError, error_chain, parse_retry_after};
use crate::config::secret::mask_url;
use crate::telemetry::reason::SendFailure;

/// A request that got no answer (connection refused or reset, timeout) is
/// worth retrying.
pub fn transport_error(what: &str, e: &reqwest::Error) -> SendError {
    SendError::Retryable {
        reason: if e.is_timeout() {
            SendFailure::Timeout
        } else {
            SendFailure::ConnectionError
        },
        detail: format!("{what}: {}", without_credentials(e)),
        retry_after: None,
    }
}

/// The error chain with the request's URL (which reqwest includes) masked.
fn without_credentials(e: &reqwest::Error) -> String {
    let chain = error_chain(e);
    match e.url() {
        Some(url) => chain.replace(url.as_str(), &mask_url(url.as_str())),
        None => chain,
    }
}

/// A refusal that will not change on retry, with the likely fix (if any)
/// after the server's answer.
pub fn rejected(reason: SendFailure, isolate: bool, detail: &str, fix: &str) -> SendError {
    SendError::Rejected {
        reason,
        detail: if fix.is_empty() {
            detail.to_string()
        } else {
            format!("{detail} ({fix})")
        },
        isolate,
    }
}

/// Gzips a body given in parts (written one after the other), at the fast
/// level: the receiving side accepts any level, and export CPU matters more
/// than a few percent of bytes.
pub fn gzip<'a>(
    parts: impl IntoIterator<Item = &'a [u8]>,
    size_hint: usize,
) -> Result<Vec<u8>, SendError> {
    // Content compresses to about a third at the fast level.
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(size_hint / 3),
        flate2::Compression::fast(),
    );
    let written: std::io::Result<()> = parts.into_iter().try_for_each(|p| e.write_all(p));
    written
        .and_then(|()| e.finish())
        .map_err(|err| SendError::Rejected {
            reason: SendFailure::EncodeFailed,
            detail: format!("cannot gzip the request: {err}"),
            isolate: false,
        })
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

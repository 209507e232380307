//! Backoff with jitter, and the destination's own retry hints.

use std::time::{Duration, SystemTime};

use crate::config::RetryConfig;

const MULTIPLIER: f64 = 1.5;
const JITTER: f64 = 0.5;

/// Exponential backoff: `initial × 1.5ⁿ`, capped at `max_interval`, each
/// delay randomised by ±50 % so that many clients do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryConfig,
    current: Duration,
}

impl Backoff {
    pub fn new(policy: RetryConfig) -> Self {
        Self {
            current: policy.initial_interval,
            policy,
        }
    }

    /// The next delay. A hint from the destination (`Retry-After`,
    /// `RetryInfo`) wins when it asks for longer than the backoff would
    /// wait, up to `max_retry_after`.
    pub fn next_delay(&mut self, hint: Option<Duration>) -> Duration {
        let hint = hint.map(|h| h.min(self.policy.max_retry_after));
        let base = self.current;
        self.current = base.mul_f64(MULTIPLIER).min(self.policy.max_interval);
        let factor = 1.0 + JITTER * (2.0 * fastrand::f64() - 1.0);
        let jittered = base.mul_f64(factor);
        match hint {
            Some(h) if h > jittered => h,
            _ => jittered,
        }
    }

    pub fn max_elapsed(&self) -> Duration {
        self.policy.max_elapsed
    }
}

/// Parses an HTTP `Retry-After` value: delay-seconds or an HTTP-date.
/// A date in the past means "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryConfig {
        RetryConfig {
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_millis(400),
            max_elapsed: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_hint_is_capped_at_max_retry_after() {
        let mut b = Backoff::new(policy());
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn grows_by_half_within_jitter_and_stops_at_the_cap() {
        let mut b = Backoff::new(policy());
        let bases = [100.0, 150.0, 225.0, 337.5, 400.0, 400.0];
        for base in bases {
            let d = b.next_delay(None).as_secs_f64() * 1000.0;
            assert!(
                d >= base * 0.5 - 0.001 && d <= base * 1.5 + 0.001,
                "{d} vs {base}"
            );
        }
    }

    #[test]
    fn a_longer_hint_wins_a_shorter_one_does_not() {
        let mut b = Backoff::new(policy());
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        let d = b.next_delay(Some(Duration::from_millis(1)));
        assert!(d >= Duration::from_millis(75), "{d:?}");
    }

    #[test]
    fn retry_after_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(42));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(42))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(42));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }
}

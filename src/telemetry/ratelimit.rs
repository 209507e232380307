//! "Log at most once a second": a warning that repeats under load would
//! flood the logs, so repeats are summed and reported with the next line.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lets one log line through per interval and counts what it held back.
#[derive(Debug)]
pub struct RateLimitedLog {
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    last: Option<Instant>,
    held_back: u64,
}

impl RateLimitedLog {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new(State {
                last: None,
                held_back: 0,
            }),
        }
    }

    pub fn per_second() -> Self {
        Self::new(Duration::from_secs(1))
    }

    /// Returns `Some(n)` when the caller should log now, `n` being how many
    /// earlier occurrences were held back since the last line; `None` otherwise.
    pub fn check(&self, now: Instant) -> Option<u64> {
        // A poisoned lock only means another thread panicked mid-update of two
        // integers; the values are still usable.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match state.last {
            Some(last) if now.duration_since(last) < self.interval => {
                state.held_back += 1;
                None
            }
            _ => {
                state.last = Some(now);
                Some(std::mem::take(&mut state.held_back))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_one_line_per_interval_through_and_counts_the_rest() {
        let log = RateLimitedLog::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(log.check(t0), Some(0));
        assert_eq!(log.check(t0 + Duration::from_millis(10)), None);
        assert_eq!(log.check(t0 + Duration::from_millis(900)), None);
        assert_eq!(log.check(t0 + Duration::from_millis(1000)), Some(2));
        assert_eq!(log.check(t0 + Duration::from_millis(1001)), None);
    }
}

//! Which OTLP signals a destination takes (`signals = ["traces", "logs",
//! "metrics"]` on OTLP destinations), and the union the router checks.

use serde::{Deserialize, Serialize};

use crate::telemetry::reason::Signal;

/// A set of signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Signals {
    pub traces: bool,
    pub logs: bool,
    pub metrics: bool,
}

impl Signals {
    pub const ALL: Self = Self {
        traces: true,
        logs: true,
        metrics: true,
    };
    pub const TRACES: Self = Self {
        traces: true,
        logs: false,
        metrics: false,
    };
    pub const TRACES_AND_LOGS: Self = Self {
        traces: true,
        logs: true,
        metrics: false,
    };

    pub fn has(self, signal: Signal) -> bool {
        match signal {
            Signal::Traces => self.traces,
            Signal::Logs => self.logs,
            Signal::Metrics => self.metrics,
        }
    }

    /// Both sets together.
    pub fn union(self, other: Self) -> Self {
        Self {
            traces: self.traces || other.traces,
            logs: self.logs || other.logs,
            metrics: self.metrics || other.metrics,
        }
    }

    pub fn bits(self) -> u8 {
        u8::from(self.traces) | u8::from(self.logs) << 1 | u8::from(self.metrics) << 2
    }

    pub fn from_bits(bits: u8) -> Self {
        Self {
            traces: bits & 1 != 0,
            logs: bits & 2 != 0,
            metrics: bits & 4 != 0,
        }
    }

    /// The set named by a config list.
    pub fn of(list: &[SignalName]) -> Self {
        list.iter().fold(Self::default(), |s, n| {
            s.union(match n {
                SignalName::Traces => Self::TRACES,
                SignalName::Logs => Self {
                    logs: true,
                    ..Self::default()
                },
                SignalName::Metrics => Self {
                    metrics: true,
                    ..Self::default()
                },
            })
        })
    }
}

impl std::fmt::Display for Signals {
    /// `traces, logs and metrics`, as the startup log says it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = [
            (self.traces, "traces"),
            (self.logs, "logs"),
            (self.metrics, "metrics"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        match names.as_slice() {
            [] => f.write_str("nothing"),
            [one] => f.write_str(one),
            [first @ .., last] => write!(f, "{} and {last}", first.join(", ")),
        }
    }
}

/// A signal as written in `signals = [...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalName {
    Traces,
    Logs,
    Metrics,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_and_lists_make_sets() {
        for bits in 0..8 {
            assert_eq!(Signals::from_bits(bits).bits(), bits);
        }
        let s = Signals::of(&[SignalName::Traces, SignalName::Metrics]);
        assert!(s.has(Signal::Traces) && s.has(Signal::Metrics) && !s.has(Signal::Logs));
        assert_eq!(Signals::TRACES.union(s), s);
    }
}

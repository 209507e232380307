//! The console needs no test: standard output is always there.

use crate::destination::probe::Verdict;

pub fn probe(name: &str) -> Verdict {
    Verdict::ok(name, "console: prints to stdout")
}

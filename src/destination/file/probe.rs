//! The file probe: can the file be opened for appending?

use super::config::FileTarget;
use crate::destination::probe::Verdict;

pub fn probe(name: &str, t: &FileTarget) -> Verdict {
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&t.path)
    {
        Ok(_) => Verdict::ok(name, format!("file: {} is writable", t.path.display())),
        Err(e) => Verdict::fail(
            name,
            format!("file: cannot append to {}: {e}", t.path.display()),
        ),
    }
}

//! `tracebridge check`: test a destination for real, like OpenRouter's
//! "Test Connection", and name the likely fix for each failure. Each kind's
//! `probe.rs` does the work; this is the verdict they share.

/// One destination's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub destination: String,
    pub ok: bool,
    pub message: String,
}

impl Verdict {
    pub fn ok(destination: &str, message: impl Into<String>) -> Self {
        Self {
            destination: destination.to_string(),
            ok: true,
            message: message.into(),
        }
    }

    pub fn fail(destination: &str, message: impl Into<String>) -> Self {
        Self {
            destination: destination.to_string(),
            ok: false,
            message: message.into(),
        }
    }
}

/// "nothing is listening" for a refused connection; the detail as is otherwise.
pub fn explain_connection(detail: &str, url: &str) -> String {
    if detail.contains("Connection refused") || detail.contains("connection refused") {
        format!("nothing is listening at {url} ({detail})")
    } else {
        detail.to_string()
    }
}

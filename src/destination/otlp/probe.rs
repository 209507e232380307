//! The OTLP (and Arize) probe: an empty export, as OpenRouter's test does.

use std::time::Duration;

use super::config::OtlpTarget;
use super::sender::OtlpClient;
use crate::config::secret::mask_url;
use crate::destination::probe::{Verdict, explain_connection};
use crate::export::{RequestSender, SendError};

pub async fn probe(name: &str, t: &OtlpTarget, timeout: Duration) -> Verdict {
    let context = crate::destination::sources::ErrorContext::for_probe(name);
    let client = match OtlpClient::new(t, timeout, context) {
        Ok(c) => c,
        Err(e) => return Verdict::fail(name, format!("{}: {e}", t.flavour)),
    };
    let outcome = match client.build(&[]) {
        Ok(req) => client.send(&req).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(_) => Verdict::ok(
            name,
            format!(
                "{}: {} accepted an empty export",
                t.flavour,
                mask_url(&t.url)
            ),
        ),
        Err(SendError::Retryable { detail, .. }) | Err(SendError::Rejected { detail, .. }) => {
            Verdict::fail(
                name,
                format!(
                    "{}: {}",
                    t.flavour,
                    explain_connection(&detail, &mask_url(&t.url))
                ),
            )
        }
    }
}

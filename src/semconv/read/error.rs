//! Errors: `exception` events and an ERROR status.

use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

use super::Reader;
use super::attrs::Attrs;
use super::model::ErrorInfo;
use crate::semconv::privacy::Claim;

/// `exception` events (the last one wins), else an ERROR status.
pub(super) fn read_error(r: &mut Reader<'_>, span: &Span) {
    let error_type = r.attrs.take_string("error.type");
    let exceptions = r.events.take(
        &["exception", "gen_ai.client.operation.exception"],
        Claim::Error,
    );
    if let Some(e) = exceptions.last() {
        let mut a = Attrs::new(&e.attributes);
        let message = a.take_string("exception.message");
        let exception_type = a
            .take_string("exception.type")
            .or(error_type)
            .unwrap_or_else(|| "Error".into());
        let traceback = a
            .take_string("exception.stacktrace")
            .or_else(|| message.clone())
            .unwrap_or_else(|| exception_type.clone());
        r.out.error = Some(ErrorInfo {
            exception_type,
            message,
            traceback,
        });
        return;
    }
    let status = span.status.as_ref();
    if status.is_some_and(|s| s.code == StatusCode::Error as i32) {
        let message = status.map(|s| s.message.clone()).filter(|m| !m.is_empty());
        let exception_type = error_type.unwrap_or_else(|| "Error".into());
        let traceback = message.clone().unwrap_or_else(|| exception_type.clone());
        r.out.error = Some(ErrorInfo {
            exception_type,
            message,
            traceback,
        });
    }
}

/// `gen_ai.evaluation.result` events with a numeric score (the others stay
/// in metadata).
pub(super) fn read_evaluations(r: &mut Reader<'_>) {
    for i in 0..r.events.list.len() {
        let e = r.events.list[i];
        if e.name != "gen_ai.evaluation.result" {
            continue;
        }
        let mut a = Attrs::new(&e.attributes);
        let (Some(name), Some(value)) = (
            a.take_string("gen_ai.evaluation.name"),
            a.take_f64("gen_ai.evaluation.score.value"),
        ) else {
            continue;
        };
        // A score needs a name and a number (NaN and infinities are not).
        if name.trim().is_empty() || !value.is_finite() {
            continue;
        }
        r.events.consumed[i] = r.events.consumed[i].join(Claim::Error);
        r.out.evaluations.push(super::model::Evaluation {
            name,
            value,
            label: a.take_string("gen_ai.evaluation.score.label"),
            explanation: a.take_string("gen_ai.evaluation.explanation"),
        });
    }
}

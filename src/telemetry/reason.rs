//! The values of every `reason` label, one enum per metric family (and of
//! the `signal` label), so the list of what a dashboard can see is here and
//! nowhere else.

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};

/// Declares a reason enum with its label values and the list of all of them.
macro_rules! reasons {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $label:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// The position in [`Self::ALL`].
            pub const fn index(self) -> usize {
                self as usize
            }

            /// The label value.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                std::fmt::Write::write_str(encoder, self.as_str())
            }
        }
    };
}

reasons! {
    /// Why a receiver refused spans or a whole request
    /// (`tracebridge_receiver_refused_{spans,requests}_total`).
    Refusal {
        /// A span with invalid ids (reported in `partial_success`).
        InvalidSpan = "invalid_span",
        /// Every destination is full: the client is asked to retry.
        DestinationsFull = "destinations_full",
        /// The spool could not take the request (write error, writer busy,
        /// or closed): the client is asked to retry.
        SpoolUnavailable = "spool_unavailable",
        TooLarge = "too_large",
        DecodeError = "decode_error",
        UnsupportedMediaType = "unsupported_media_type",
        UnsupportedEncoding = "unsupported_encoding",
        Unauthenticated = "unauthenticated",
        MethodNotAllowed = "method_not_allowed",
        ReadTimeout = "read_timeout",
        ReadError = "read_error",
        /// A path (HTTP) or gRPC method that is not OTLP traces, e.g. `/v1/metrics`.
        UnknownPath = "unknown_path",
        /// `limits.memory` is in use: the client is asked to retry.
        MemoryBudget = "memory_budget",
        /// No enabled destination takes the token's tenant (`tenants`): 403 /
        /// PERMISSION_DENIED, so the client knows its data goes nowhere.
        NoDestinationForTenant = "no_destination_for_tenant",
    }
}

reasons! {
    /// Why a receiver cut attribute values of a request it took
    /// (`tracebridge_receiver_cut_values_total`).
    ValueCut {
        /// An `AnyValue` nested deeper than the decoders allow: cut at
        /// `pdata::depth::MAX_VALUE_DEPTH` levels, its siblings kept.
        TooDeep = "too_deep",
    }
}

reasons! {
    /// Why a destination dropped spans it was offered or held
    /// (`tracebridge_exporter_dropped_spans_total`).
    DropReason {
        /// Its input was full while another destination took the request.
        QueueFull = "queue_full",
        /// It had stopped.
        DestinationStopped = "destination_stopped",
        /// The shutdown deadline passed before they were sent (in-memory spool).
        Shutdown = "shutdown",
        /// The destination was `spool.max_bytes` behind: its oldest spooled
        /// segment was dropped.
        SpoolFull = "spool_full",
    }
}

reasons! {
    /// Why one send attempt failed (`tracebridge_exporter_retries_total`) or a
    /// batch was given up (`tracebridge_exporter_send_failed_spans_total`).
    SendFailure {
        Timeout = "timeout",
        Throttled = "throttled",
        ServerError = "server_error",
        Unavailable = "unavailable",
        ConnectionError = "connection_error",
        IoError = "io_error",
        EncodeFailed = "encode_failed",
        /// The destination refused the content.
        Rejected = "rejected",
        TooLarge = "too_large",
        Unauthorized = "unauthorized",
        Forbidden = "forbidden",
        WrongUrl = "wrong_url",
        UnsupportedMediaType = "unsupported_media_type",
        ResourceExhausted = "resource_exhausted",
        /// Retried until `retry.max_elapsed`.
        RetriesExhausted = "retries_exhausted",
    }
}

reasons! {
    /// Something mapped with a problem (`tracebridge_mapping_warnings_total`).
    MappingWarning {
        /// A value of the wrong type, kept raw in metadata.
        ExpectedString = "expected_string",
        ExpectedInteger = "expected_integer",
        ExpectedNumber = "expected_number",
        /// A JSON attribute that does not parse, kept raw in metadata.
        InvalidJson = "invalid_json",
        /// An Opik row larger than a batch: its input/output were replaced.
        TruncatedOversizedItem = "truncated_oversized_item",
        /// The Opik trace table was full and evicted traces.
        TraceTableFull = "trace_table_full",
        /// A span had more unclaimed attributes than the normaliser keeps:
        /// the rest were dropped.
        AttributesOverLimit = "attributes_over_limit",
        /// An unclaimed string attribute was longer than the normaliser
        /// keeps: its end was cut.
        ValueOverLimit = "value_over_limit",
        /// An evaluation score outside the range Opik stores (±999999999.999999999): not sent.
        ScoreOutOfRange = "score_out_of_range",
    }
}

reasons! {
    /// The OTLP signal a request carries.
    Signal {
        Traces = "traces",
        Logs = "logs",
        Metrics = "metrics",
    }
}

reasons! {
    /// Why a destination's controls left a span out
    /// (`tracebridge_control_dropped_spans_total`; see `src/control/`).
    ControlDrop {
        /// `sampling.rate`: its trace (or session) was not sampled.
        SampledOut = "sampled_out",
        /// A `filter.rules` rule excluded it (or no `include` rule took it).
        Filtered = "filtered",
        /// `filter.drop_non_genai`: neither a GenAI span nor an ancestor of one.
        NotGenai = "not_genai",
        /// `tenants`: the request's tenant is not one this destination takes.
        OtherTenant = "other_tenant",
    }
}

reasons! {
    /// What privacy mode removed before export
    /// (`tracebridge_privacy_redacted_total`, counted per attribute or event).
    Redaction {
        /// An attribute or event a dialect reads as content (prompt,
        /// completion, messages, tool arguments and results), or a
        /// malformed value of such a key.
        Content = "content",
        /// An attribute no dialect reads and no allow-list names.
        UnclaimedAttribute = "unclaimed_attribute",
        /// A span event no dialect reads and no allow-list names.
        UnclaimedEvent = "unclaimed_event",
        /// An exception stack trace (type and message stay).
        Stacktrace = "stacktrace",
    }
}

reasons! {
    /// What became of the OTLP log records a destination was given
    /// (`tracebridge_exporter_log_records_total{outcome}`).
    LogOutcome {
        /// Folded into its span (GenAI content joined by trace/span id or
        /// `request_id`).
        Joined = "joined",
        /// Made into rows of their own (Claude Code without spans).
        Synthesised = "synthesised",
        /// Forwarded as log records (an OTLP destination with `"logs"` in
        /// its `signals`) and accepted.
        Forwarded = "forwarded",
        /// Forwarded, and refused by the destination in its
        /// `partial_success` answer.
        Rejected = "rejected",
        /// Not delivered: the destination refused the request for good, or
        /// retrying ran past `retry.max_elapsed`.
        Failed = "failed",
        /// Not a GenAI event this destination reads (e.g. Claude Code's
        /// `plugin_loaded`), or one that names no span: left out.
        Unused = "unused",
        /// The destination does not take logs (`signals` without `"logs"`).
        NotTaken = "not_taken",
        /// Held for its span past `logs.join_window` without meeting it.
        Expired = "expired",
        /// Pushed out of a full hold (`logs.max_held_records` / `max_held_bytes`).
        HoldFull = "hold_full",
        /// Held when the daemon stopped.
        Shutdown = "shutdown",
        /// Its input was full while another destination took the request.
        QueueFull = "queue_full",
        /// It had stopped.
        DestinationStopped = "destination_stopped",
        /// `tenants`: the request's tenant is not one this destination takes.
        OtherTenant = "other_tenant",
    }
}

reasons! {
    /// What became of the OTLP metric data points a destination was given
    /// (`tracebridge_exporter_metric_points_total{outcome}`).
    MetricOutcome {
        /// Forwarded (an OTLP destination with `"metrics"` in its `signals`)
        /// and accepted.
        Forwarded = "forwarded",
        /// Forwarded, and refused in the destination's `partial_success`.
        Rejected = "rejected",
        /// Not delivered (refused for good, or retried too long).
        Failed = "failed",
        /// The destination does not take metrics.
        NotTaken = "not_taken",
        /// Its input was full while another destination took the request.
        QueueFull = "queue_full",
        /// It had stopped.
        DestinationStopped = "destination_stopped",
        /// Still unsent when the shutdown deadline passed.
        Shutdown = "shutdown",
    }
}

reasons! {
    /// What failed in the store behind the Opik trace table
    /// (`tracebridge_trace_state_errors_total`). The destination carries on
    /// with what it holds in memory; a trace may split if the store cannot
    /// answer for it.
    StateError {
        /// The store could not be opened at start (the table stays in memory).
        Open = "open",
        /// Reading a trace's entry failed.
        Read = "read",
        /// Writing or committing entries failed.
        Write = "write",
        /// A stored entry could not be decoded (it is ignored).
        Decode = "decode",
        /// The shared store (Redis) did not answer in time or refused the connection.
        Unavailable = "unavailable",
    }
}

impl From<DropReason> for LogOutcome {
    fn from(reason: DropReason) -> Self {
        match reason {
            DropReason::QueueFull | DropReason::SpoolFull => Self::QueueFull,
            DropReason::DestinationStopped => Self::DestinationStopped,
            DropReason::Shutdown => Self::Shutdown,
        }
    }
}

impl From<DropReason> for MetricOutcome {
    fn from(reason: DropReason) -> Self {
        match reason {
            DropReason::QueueFull | DropReason::SpoolFull => Self::QueueFull,
            DropReason::DestinationStopped => Self::DestinationStopped,
            DropReason::Shutdown => Self::Shutdown,
        }
    }
}

/// How items of a forwarded signal ended, counted per signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarding {
    Forwarded,
    Rejected,
    Failed,
}

impl From<Forwarding> for LogOutcome {
    fn from(f: Forwarding) -> Self {
        match f {
            Forwarding::Forwarded => Self::Forwarded,
            Forwarding::Rejected => Self::Rejected,
            Forwarding::Failed => Self::Failed,
        }
    }
}

impl From<Forwarding> for MetricOutcome {
    fn from(f: Forwarding) -> Self {
        match f {
            Forwarding::Forwarded => Self::Forwarded,
            Forwarding::Rejected => Self::Rejected,
            Forwarding::Failed => Self::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_distinct_snake_case() {
        let all: Vec<&str> = Refusal::ALL
            .iter()
            .map(|r| r.as_str())
            .chain(DropReason::ALL.iter().map(|r| r.as_str()))
            .chain(SendFailure::ALL.iter().map(|r| r.as_str()))
            .chain(MappingWarning::ALL.iter().map(|r| r.as_str()))
            .chain(Redaction::ALL.iter().map(|r| r.as_str()))
            .chain(LogOutcome::ALL.iter().map(|r| r.as_str()))
            .chain(MetricOutcome::ALL.iter().map(|r| r.as_str()))
            .chain(StateError::ALL.iter().map(|r| r.as_str()))
            .chain(ControlDrop::ALL.iter().map(|r| r.as_str()))
            .collect();
        for v in &all {
            assert!(v.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{v}");
        }
        let mut seen = std::collections::HashSet::new();
        for list in [
            Refusal::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            SendFailure::ALL.iter().map(|r| r.as_str()).collect(),
        ] {
            seen.clear();
            assert!(list.iter().all(|v| seen.insert(*v)), "{list:?}");
        }
    }
}

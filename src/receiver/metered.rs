//! Request bodies read against the memory budget (`limits.memory`): each
//! chunk is charged as it arrives, so a client is refused before the
//! daemon holds what the budget cannot take, not after.
//!
//! - HTTP: [`Metered`] over a borrowed [`Charge`] while the body is
//!   collected; the charge then follows the bytes through decompression
//!   and decoding (`http_server::read_request`).
//! - gRPC: [`GrpcBudgetLayer`] refuses a call at once when the budget is
//!   used up, and wraps every request body in a [`Metered`] that owns its
//!   charge until tonic has read the message (the decoded request is then
//!   charged by the codec).

use std::borrow::BorrowMut;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::{Intake, RETRY_AFTER_SECS};
use crate::budget::{Charge, MemoryBudget, Part};
use crate::telemetry::ReceiverTelemetry;
use crate::telemetry::reason::Refusal;

/// Why a request was refused for memory, as clients and logs read it.
pub fn over_budget_message(budget: &MemoryBudget) -> String {
    format!(
        "the memory budget is in use (limits.memory = {} MiB, {} MiB held); retry in {RETRY_AFTER_SECS}s",
        budget.limit() >> 20,
        budget.used() >> 20,
    )
}

/// The refusal a body read passed the budget with.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OverBudget(pub String);

/// A body whose data frames are charged to a [`Charge`] as they arrive.
pub struct Metered<B, C> {
    inner: B,
    charge: C,
    /// Turns the refusal into the body's error type.
    refuse: fn(OverBudget) -> tonic::codegen::StdError,
    budget: Arc<MemoryBudget>,
    /// Where a refusal is counted, if the reader of the body does not.
    telemetry: Option<ReceiverTelemetry>,
}

impl<B, C: BorrowMut<Charge>> Metered<B, C> {
    pub fn new(
        inner: B,
        charge: C,
        budget: Arc<MemoryBudget>,
        refuse: fn(OverBudget) -> tonic::codegen::StdError,
        telemetry: Option<ReceiverTelemetry>,
    ) -> Self {
        Self {
            inner,
            charge,
            refuse,
            budget,
            telemetry,
        }
    }
}

impl<B, C> Body for Metered<B, C>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<tonic::codegen::StdError>,
    C: BorrowMut<Charge> + Unpin,
{
    type Data = Bytes;
    type Error = tonic::codegen::StdError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, Bytes::len);
                if this.charge.borrow_mut().try_grow(len) {
                    Poll::Ready(Some(Ok(frame)))
                } else {
                    let message = over_budget_message(&this.budget);
                    if let Some(t) = &this.telemetry {
                        t.refused_request(Refusal::MemoryBudget, &message);
                    }
                    Poll::Ready(Some(Err((this.refuse)(OverBudget(message)))))
                }
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `UNAVAILABLE` with `RetryInfo`: the client keeps the data and retries.
pub fn unavailable(message: String) -> Status {
    Status::with_error_details(
        Code::Unavailable,
        message,
        ErrorDetails::with_retry_info(Some(Duration::from_secs(RETRY_AFTER_SECS))),
    )
}

fn grpc_refusal(refusal: OverBudget) -> tonic::codegen::StdError {
    Box::new(unavailable(refusal.0))
}

/// Puts every gRPC call under the budget (see the module's docs), and
/// refuses calls at once when a request would be refused anyway
/// ([`Intake::refusal_before_reading`]).
#[derive(Clone)]
pub struct GrpcBudgetLayer {
    pub intake: Intake,
}

impl<S> tower::Layer<S> for GrpcBudgetLayer {
    type Service = GrpcBudget<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcBudget {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct GrpcBudget<S> {
    inner: S,
    layer: GrpcBudgetLayer,
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for GrpcBudget<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
        >,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let intake = &self.layer.intake;
        if let Some(message) = intake.refusal_before_reading() {
            let response = unavailable(message).into_http();
            return Box::pin(std::future::ready(Ok(response)));
        }
        let (budget, telemetry) = (intake.budget(), intake.telemetry());
        let charge = budget.charge(Part::Requests, 0);
        let req = req.map(|body| {
            let metered = Metered::new(
                body,
                charge,
                budget.clone(),
                grpc_refusal,
                Some(telemetry.clone()),
            );
            tonic::body::Body::new(metered)
        });
        Box::pin(self.inner.call(req))
    }
}

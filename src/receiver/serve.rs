//! Binding and serving both receivers (plain TCP or TLS) until told to
//! stop, with the connection limits of [`super::connections`], HTTP/1
//! header-read and request timeouts, and HTTP/2 stream limits.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt as _;
use tokio_util::sync::CancellationToken;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::mpsc;

use super::auth::Authenticator;
use super::connections::{Conn, Gate, Tracked, incoming};
use super::metered::GrpcBudgetLayer;
use super::tls_server::{self, ReloadingConfig};
use super::{Intake, grpc_server, http_server, signals};
use crate::budget::MemoryBudget;
use crate::config::ReceiverSettings;
use crate::route::Router;
use crate::telemetry::{Metrics, ReceiverTelemetry};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {setting} = {addr}: {source}")]
    Bind {
        setting: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls_server::TlsError),
}

/// The receivers, serving.
pub struct Receivers {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// Finish once the receivers have stopped and their connections are closed.
    pub tasks: Vec<JoinHandle<()>>,
    /// Closes every open connection at once (after `stop`, when the grace
    /// for requests in flight is over).
    pub force_close: CancellationToken,
}

/// Binds both receivers and serves them until `stop` is cancelled. Each
/// request is routed through `router`; the last clone of it is dropped when
/// both receivers and all their connections have stopped.
pub async fn serve(
    r: &ReceiverSettings,
    router: Arc<Router>,
    budget: Arc<MemoryBudget>,
    metrics: &Metrics,
    stop: &CancellationToken,
) -> Result<Receivers, ServeError> {
    let grpc_listener = bind("receiver.grpc_listen", r.grpc_listen).await?;
    let http_listener = bind("receiver.http_listen", r.http_listen).await?;
    let grpc_addr = local_addr(&grpc_listener, r.grpc_listen);
    let http_addr = local_addr(&http_listener, r.http_listen);
    let auth = Authenticator::new(r.bearer_tokens.clone());
    warn_if_exposed(r, &auth);
    let tls = match &r.tls {
        Some(t) => Some(ReloadingConfig::start(t, stop.clone())?),
        None => None,
    };
    let force_close = CancellationToken::new();
    let grpc_telemetry = ReceiverTelemetry::new(metrics, "grpc");
    let grpc_gate = Gate::new(
        r.limits,
        grpc_telemetry.clone(),
        stop.clone(),
        force_close.clone(),
    );
    let grpc_conns = incoming(grpc_listener, grpc_gate, tls.clone());
    let grpc_intake = Intake::new(router.clone(), grpc_telemetry.clone(), budget.clone());
    let grpc_task = serve_grpc(
        r,
        grpc_intake,
        grpc_telemetry,
        auth.clone(),
        grpc_conns,
        stop,
    );
    let http_telemetry = ReceiverTelemetry::new(metrics, "http");
    let http_gate = Gate::new(
        r.limits,
        http_telemetry.clone(),
        stop.clone(),
        force_close.clone(),
    );
    let http_conns = incoming(http_listener, http_gate, tls);
    let http_intake = Intake::new(router, http_telemetry, budget);
    let http_task = serve_http(r, http_intake, auth, http_conns, stop);
    Ok(Receivers {
        grpc_addr,
        http_addr,
        tasks: vec![grpc_task, http_task],
        force_close,
    })
}

fn serve_grpc(
    r: &ReceiverSettings,
    intake: Intake,
    telemetry: ReceiverTelemetry,
    auth: Authenticator,
    conns: mpsc::Receiver<Tracked<Conn>>,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    let budget_layer = GrpcBudgetLayer {
        intake: intake.clone(),
    };
    let logs = signals::logs_service(intake.clone(), r.grpc_max_message_bytes, auth.clone());
    let metrics = signals::metrics_service(intake.clone(), r.grpc_max_message_bytes, auth.clone());
    let service = grpc_server::service(intake, r.grpc_max_message_bytes, auth);
    let mut server = tonic::transport::Server::builder()
        .timeout(r.limits.request_timeout)
        .max_concurrent_streams(r.limits.http2_max_concurrent_streams)
        .http2_keepalive_interval(None)
        .layer(tower::util::MapResponseLayer::new(
            grpc_server::limit_status(telemetry, r.grpc_max_message_bytes),
        ))
        .layer(budget_layer);
    let router = server
        .add_service(service)
        .add_service(logs)
        .add_service(metrics);
    let incoming = tokio_stream::wrappers::ReceiverStream::new(conns).map(Ok::<_, std::io::Error>);
    tokio::spawn(report(
        "gRPC receiver",
        router.serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned()),
    ))
}

fn serve_http(
    r: &ReceiverSettings,
    intake: Intake,
    auth: Authenticator,
    mut conns: mpsc::Receiver<Tracked<Conn>>,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    let routes = http_server::routes(
        intake,
        r.max_request_bytes,
        r.limits.request_timeout,
        r.cors.as_ref(),
        auth,
    );
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(r.limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(r.limits.http2_max_concurrent_streams);
    let stop = stop.clone();
    tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        loop {
            let conn = tokio::select! {
                () = stop.cancelled() => break,
                c = conns.recv() => match c {
                    Some(c) => c,
                    None => break,
                },
            };
            let service = TowerToHyperService::new(routes.clone());
            let serving = builder
                .serve_connection(TokioIo::new(conn), service)
                .into_owned();
            let serving = graceful.watch(serving);
            tokio::spawn(async move {
                if let Err(e) = serving.await {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
            });
        }
        // Idle connections close now, busy ones after their request; the
        // force-close token ends whatever is left.
        graceful.shutdown().await;
    })
}

/// Runs a server to completion, logging its failure.
async fn report<E: std::fmt::Display>(
    what: &'static str,
    serving: impl Future<Output = Result<(), E>>,
) {
    if let Err(e) = serving.await {
        tracing::error!(error = %e, "{what} failed");
    }
}

/// A receiver reachable from other hosts without authentication accepts
/// spans from anyone who can reach it: say so at startup.
fn warn_if_exposed(r: &ReceiverSettings, auth: &Authenticator) {
    if auth.enabled() {
        return;
    }
    for (setting, addr) in [
        ("receiver.grpc_listen", r.grpc_listen),
        ("receiver.http_listen", r.http_listen),
    ] {
        if !addr.ip().is_loopback() {
            tracing::warn!(
                %addr,
                "{setting} is not a loopback address and receiver.auth is not set: anyone who can reach it can send spans"
            );
        }
    }
}

/// Binds a listener, naming the setting when the address is taken.
pub async fn bind(setting: &'static str, addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            setting,
            addr,
            source,
        })
}

/// The bound address (the configured one if the OS cannot say).
pub fn local_addr(listener: &TcpListener, configured: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(configured)
}

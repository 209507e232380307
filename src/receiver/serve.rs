//! Binding and serving both receivers (plain TCP or TLS) until told to stop.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt as _;
use tokio_util::sync::CancellationToken;

use super::auth::Authenticator;
use super::tls_server::{self, ReloadingConfig};
use super::{Intake, grpc_server, http_server};
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
    /// Finish once the receivers have stopped and their requests in flight are done.
    pub tasks: Vec<JoinHandle<()>>,
}

/// Binds both receivers and serves them until `stop` is cancelled. Each
/// request is routed through `router`; the last clone of it is dropped when
/// both receivers have stopped.
pub async fn serve(
    r: &ReceiverSettings,
    router: Arc<Router>,
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
    let grpc_telemetry = ReceiverTelemetry::new(metrics, "grpc");
    let grpc_intake = Intake::new(router.clone(), grpc_telemetry.clone());
    let grpc_task = serve_grpc(
        r,
        grpc_intake,
        grpc_telemetry,
        auth.clone(),
        grpc_listener,
        tls.as_ref(),
        stop,
    );
    let http_intake = Intake::new(router, ReceiverTelemetry::new(metrics, "http"));
    let http_task = serve_http(
        r,
        http_intake,
        auth,
        http_listener,
        http_addr,
        tls.as_ref(),
        stop,
    );
    Ok(Receivers {
        grpc_addr,
        http_addr,
        tasks: vec![grpc_task, http_task],
    })
}

fn serve_grpc(
    r: &ReceiverSettings,
    intake: Intake,
    telemetry: ReceiverTelemetry,
    auth: Authenticator,
    listener: TcpListener,
    tls: Option<&ReloadingConfig>,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    let service = grpc_server::service(intake, r.grpc_max_message_bytes, auth);
    let mut server = tonic::transport::Server::builder().layer(tower::util::MapResponseLayer::new(
        grpc_server::limit_status(telemetry, r.grpc_max_message_bytes),
    ));
    let router = server.add_service(service);
    let stopped = stop.clone().cancelled_owned();
    match tls {
        None => {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            tokio::spawn(report(
                "gRPC receiver",
                router.serve_with_incoming_shutdown(incoming, stopped),
            ))
        }
        Some(tls) => {
            let connections = tls_server::accept(listener, tls.clone(), stop.clone());
            let incoming = tokio_stream::wrappers::ReceiverStream::new(connections)
                .map(|(conn, _peer)| Ok::<_, std::io::Error>(conn));
            tokio::spawn(report(
                "gRPC receiver",
                router.serve_with_incoming_shutdown(incoming, stopped),
            ))
        }
    }
}

fn serve_http(
    r: &ReceiverSettings,
    intake: Intake,
    auth: Authenticator,
    listener: TcpListener,
    local: SocketAddr,
    tls: Option<&ReloadingConfig>,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    let routes = http_server::routes(intake, r.max_request_bytes, r.cors.as_ref(), auth);
    let stopped = stop.clone().cancelled_owned();
    match tls {
        None => {
            let serving = axum::serve(listener, routes).with_graceful_shutdown(stopped);
            tokio::spawn(report("HTTP receiver", serving.into_future()))
        }
        Some(tls) => {
            let listener = tls_server::TlsListener {
                connections: tls_server::accept(listener, tls.clone(), stop.clone()),
                local,
            };
            let serving = axum::serve(listener, routes).with_graceful_shutdown(stopped);
            tokio::spawn(report("HTTP receiver", serving.into_future()))
        }
    }
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

//! TLS for the receivers (rustls): a certificate and key, optionally a CA
//! that client certificates must chain to (mTLS). The files are reloaded on
//! SIGHUP and when they change on disk; a broken file keeps the previous
//! configuration and is logged.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::config::ReceiverTls;

/// Time a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} from {path}: {detail}")]
    File {
        what: &'static str,
        path: String,
        detail: String,
    },
    #[error("receiver TLS configuration rejected: {0}")]
    Rustls(String),
}

fn file_error(what: &'static str, path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        what,
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// Builds a server configuration from the files.
pub fn load(t: &ReceiverTls) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = CertificateDer::pem_file_iter(&t.cert_file)
        .map_err(|e| file_error("certificate", &t.cert_file, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error("certificate", &t.cert_file, e))?;
    if certs.is_empty() {
        return Err(file_error(
            "certificate",
            &t.cert_file,
            "no PEM certificate found",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&t.key_file)
        .map_err(|e| file_error("private key", &t.key_file, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match &t.client_ca_file {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in
                CertificateDer::pem_file_iter(ca).map_err(|e| file_error("client CA", ca, e))?
            {
                roots
                    .add(cert.map_err(|e| file_error("client CA", ca, e))?)
                    .map_err(|e| file_error("client CA", ca, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The current server configuration, swapped in place on reload.
#[derive(Clone)]
pub struct ReloadingConfig {
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl ReloadingConfig {
    /// Loads the files and starts watching them (until `stop`).
    pub fn start(t: &ReceiverTls, stop: CancellationToken) -> Result<Self, TlsError> {
        let this = Self {
            current: Arc::new(RwLock::new(load(t)?)),
        };
        tokio::spawn(this.clone().watch(t.clone(), stop));
        Ok(this)
    }

    fn get(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn reload(&self, t: &ReceiverTls, why: &str) {
        match load(t) {
            Ok(config) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = config;
                tracing::info!(cert = %t.cert_file.display(), "receiver TLS reloaded ({why})");
            }
            Err(e) => tracing::error!(
                "receiver TLS not reloaded ({why}), keeping the previous certificate: {e}"
            ),
        }
    }

    async fn watch(self, t: ReceiverTls, stop: CancellationToken) {
        let files: Vec<PathBuf> = [
            Some(t.cert_file.clone()),
            Some(t.key_file.clone()),
            t.client_ca_file.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let stamp = |files: &[PathBuf]| -> Vec<Option<SystemTime>> {
            files
                .iter()
                .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
                .collect()
        };
        let mut last = stamp(&files);
        let mut tick = tokio::time::interval(t.reload_interval);
        #[cfg(unix)]
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let sighup = async {
                match hangup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let sighup = std::future::pending::<()>();
            tokio::select! {
                () = stop.cancelled() => return,
                () = sighup => self.reload(&t, "SIGHUP"),
                _ = tick.tick() => {
                    let now = stamp(&files);
                    if now != last {
                        last = now;
                        self.reload(&t, "files changed");
                    }
                }
            }
        }
    }
}

/// A TLS connection, as both servers want it.
pub struct TlsConn(TlsStream<TcpStream>);

impl AsyncRead for TlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = Option<SocketAddr>;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.get_ref().0.peer_addr().ok()
    }
}

/// Completes the TLS handshake of an accepted connection (bounded in
/// time). Failures (e.g. no client certificate under mTLS) are logged at
/// debug level.
pub async fn handshake(
    config: &ReloadingConfig,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<TlsConn> {
    let acceptor = TlsAcceptor::from(config.get());
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some(TlsConn(tls)),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

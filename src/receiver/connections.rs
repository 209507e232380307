//! Accepted connections, bounded and timed, the same for both receivers
//! and for plain TCP and TLS:
//!
//! - at most `receiver.max_connections` are open at once per receiver;
//!   at the limit the receiver stops accepting, so the kernel's backlog
//!   holds newcomers instead of the daemon holding their buffers;
//! - a connection with no byte read or written for `receiver.idle_timeout`
//!   is closed (slowloris, idle keep-alive, half-open peers);
//! - once the receiver stops, a connection silent for
//!   `SHUTDOWN_IDLE` is closed (half-open peers, a client that never sent
//!   its request), while one still sending its request may finish; when the
//!   receiver is forced to stop, every connection is closed at once, so no
//!   client can hold the shutdown up;
//! - accept errors (out of file descriptors, …) are logged, rate-limited,
//!   and counted, and accepting backs off briefly instead of spinning.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::tls_server::{self, ReloadingConfig, TlsConn};
use crate::config::ReceiverLimits;
use crate::telemetry::ReceiverTelemetry;

/// How long accepting pauses after an accept error.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Once the receiver stops, a connection silent this long is closed.
const SHUTDOWN_IDLE: Duration = Duration::from_millis(200);

/// Admits connections to one receiver.
#[derive(Clone)]
pub struct Gate {
    slots: Arc<Semaphore>,
    limits: ReceiverLimits,
    telemetry: ReceiverTelemetry,
    /// Cancelled when the receiver stops accepting.
    stop: CancellationToken,
    /// Cancelled to close every open connection at once.
    force_close: CancellationToken,
}

impl Gate {
    pub fn new(
        limits: ReceiverLimits,
        telemetry: ReceiverTelemetry,
        stop: CancellationToken,
        force_close: CancellationToken,
    ) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
            telemetry,
            stop,
            force_close,
        }
    }

    /// Waits for a free slot, then for a connection. `None` once the receiver stops.
    pub async fn accept(&self, listener: &TcpListener) -> Option<(TcpStream, SocketAddr, Slot)> {
        let stop = &self.stop;
        loop {
            let permit = tokio::select! {
                () = stop.cancelled() => return None,
                p = self.slots.clone().acquire_owned() => p.ok()?,
            };
            let accepted = tokio::select! {
                () = stop.cancelled() => return None,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let slot = Slot::new(permit, self.telemetry.clone());
                    return Some((tcp, peer, slot));
                }
                Err(e) => {
                    drop(permit);
                    self.telemetry.accept_error(&e);
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            }
        }
    }

    /// Wraps an accepted connection (plain or after its TLS handshake) so
    /// that it times out when idle and closes when the receiver is forced to stop.
    pub fn track<T>(&self, io: T, slot: Slot) -> Tracked<T> {
        Tracked {
            io,
            _slot: slot,
            idle_timeout: self.limits.idle_timeout,
            last_activity: Instant::now(),
            idle: Box::pin(tokio::time::sleep(self.limits.idle_timeout)),
            stopping: Some(Box::pin(self.stop.clone().cancelled_owned())),
            force_close: Box::pin(self.force_close.clone().cancelled_owned()),
        }
    }
}

/// One open connection's place under `max_connections`; freed on drop.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    telemetry: ReceiverTelemetry,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit, telemetry: ReceiverTelemetry) -> Self {
        telemetry.connection_opened();
        Self {
            _permit: permit,
            telemetry,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.telemetry.connection_closed();
    }
}

/// A connection that errors out when idle too long or force-closed.
pub struct Tracked<T> {
    io: T,
    _slot: Slot,
    idle_timeout: Duration,
    last_activity: Instant,
    idle: Pin<Box<Sleep>>,
    /// Fires when the receiver stops (then `None`): the idle timeout shortens.
    stopping: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    force_close: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl<T> Tracked<T> {
    /// Records activity. The idle timer is not moved here (that would touch
    /// the timer wheel on every read); it is pushed back when it fires.
    fn touch(&mut self) {
        self.last_activity = Instant::now();
    }

    /// While the peer is silent: has the connection gone idle, or been force-closed?
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if let Some(stopping) = self.stopping.as_mut() {
            if stopping.as_mut().poll(cx).is_ready() {
                self.stopping = None;
                self.idle_timeout = self.idle_timeout.min(SHUTDOWN_IDLE);
                self.idle
                    .as_mut()
                    .reset(self.last_activity + self.idle_timeout);
            }
        }
        if self.force_close.as_mut().poll(cx).is_ready() {
            return Some(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "receiver stopping",
            ));
        }
        while self.idle.as_mut().poll(cx).is_ready() {
            let deadline = self.last_activity + self.idle_timeout;
            if deadline <= Instant::now() {
                return Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for receiver.idle_timeout",
                ));
            }
            // Active since the timer was set: wait for the new deadline.
            self.idle.as_mut().reset(deadline);
        }
        None
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending => match this.expired(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.touch();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // A peer that stops reading holds our buffers too.
            Poll::Pending => match this.expired(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected for Tracked<T> {
    type ConnectInfo = T::ConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// An accepted connection, plain or TLS.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsConn>),
}

/// Accepts connections through `gate` until `stop` fires, completing TLS
/// handshakes concurrently (a slow client never holds up the others);
/// established connections come out of the returned channel.
pub fn incoming(
    listener: TcpListener,
    gate: Gate,
    tls: Option<ReloadingConfig>,
) -> mpsc::Receiver<Tracked<Conn>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Some((tcp, peer, slot)) = gate.accept(&listener).await {
            match &tls {
                None => {
                    if tx.send(gate.track(Conn::Plain(tcp), slot)).await.is_err() {
                        return;
                    }
                }
                Some(config) => {
                    let (config, gate, tx) = (config.clone(), gate.clone(), tx.clone());
                    tokio::spawn(async move {
                        if let Some(conn) = tls_server::handshake(&config, tcp, peer).await {
                            let _ = tx.send(gate.track(Conn::Tls(Box::new(conn)), slot)).await;
                        }
                    });
                }
            }
        }
    });
    rx
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(c) => Pin::new(c).poll_read(cx, buf),
            Self::Tls(c) => Pin::new(c.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(c) => Pin::new(c).poll_write(cx, buf),
            Self::Tls(c) => Pin::new(c.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(c) => Pin::new(c).poll_flush(cx),
            Self::Tls(c) => Pin::new(c.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(c) => Pin::new(c).poll_shutdown(cx),
            Self::Tls(c) => Pin::new(c.as_mut()).poll_shutdown(cx),
        }
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = Option<SocketAddr>;
    fn connect_info(&self) -> Self::ConnectInfo {
        match self {
            Self::Plain(c) => c.peer_addr().ok(),
            Self::Tls(c) => c.connect_info(),
        }
    }
}

//! The gRPC listener's accept loop, and what a peer may hold before it has
//! authenticated.
//!
//! tonic serves whatever connections it is handed (`serve_with_incoming`),
//! and hyper's HTTP/2 server has no bound on how long it waits for a
//! client's preface (its HTTP/1 header timeout has no HTTP/2 twin), so the
//! bounds are here, around each TCP connection before rustls or hyper reads
//! a byte of it:
//!
//! - **caps**: connections overall and per peer address ([`PeerKey`]). A
//!   connection beyond either is reset at once, counted and audited
//!   (sampled), never queued, and it never gets a task or a buffer.
//! - **time**: [`Guarded`] wraps the socket and, until a call on it has
//!   authenticated, asks its [`Connection`] when to look again. A connection
//!   still silent at the handshake timeout (no TLS handshake, no HTTP/2
//!   preface, no call), or idle that long having only called the open
//!   services, fails its next read, which ends it in rustls or hyper. That
//!   is how hyper's maintainers suggest adding timeouts hyper does not have
//!   (hyperium/hyper#1628): the IO registers the timer.
//! - **the switch**: a reload that revokes what a connection authenticated
//!   with closes it the same way ([`Connection::close`]).
//!
//! Each TLS handshake runs in a task of its own, so a slow one never delays
//! the others; the wrapper's clock bounds it like the preface. A call
//! layer, [`ConnectionLayer`], hands every call its connection (and the
//! `TcpConnectInfo` tonic's `remote_addr` reads) and counts it in flight.

use std::{
    collections::HashMap,
    future::Future,
    io,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, mpsc},
    time::{Instant, Sleep},
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::server::{Connected, TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};

use crate::access::{
    Access, CloseReason, Connection, PeerKey, connection::InFlight, connection::Verdict,
    tls::TlsReloader,
};

/// Why a connection was refused at accept: the `reason` label of
/// `sslvpn_connections_refused_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    MaxConnections,
    MaxConnectionsPerPeer,
}

impl Refusal {
    const ALL: [Refusal; 2] = [Refusal::MaxConnections, Refusal::MaxConnectionsPerPeer];

    fn as_str(self) -> &'static str {
        match self {
            Refusal::MaxConnections => "max_connections",
            Refusal::MaxConnectionsPerPeer => "max_connections_per_peer",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// `sslvpn_connections_open`, `sslvpn_connections_refused_total{reason}`
/// and `sslvpn_connections_closed_total{reason}`, every reason at zero
/// from the start. Clones share the series; `Default` counts into
/// families no registry renders.
#[derive(Clone)]
pub struct ConnectionMetrics {
    open: Gauge,
    refused: Family<ReasonLabel, Counter>,
    closed: Family<ReasonLabel, Counter>,
}

impl Default for ConnectionMetrics {
    fn default() -> Self {
        let metrics = Self {
            open: Gauge::default(),
            refused: Family::default(),
            closed: Family::default(),
        };
        for refusal in Refusal::ALL {
            drop(metrics.refused.get_or_create(&ReasonLabel {
                reason: refusal.as_str(),
            }));
        }
        for reason in CloseReason::ALL {
            drop(metrics.closed.get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            }));
        }
        metrics
    }
}

impl std::fmt::Debug for ConnectionMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionMetrics").finish_non_exhaustive()
    }
}

impl ConnectionMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "sslvpn_connections_open",
            "Connections to the gRPC listener held now, TLS handshakes included",
            metrics.open.clone(),
        );
        registry.register(
            "sslvpn_connections_refused",
            "Connections closed at accept: max_connections (the overall cap), max_connections_per_peer (the cap per peer address)",
            metrics.refused.clone(),
        );
        registry.register(
            "sslvpn_connections_closed",
            "Connections the gateway closed: handshake_timeout (no TLS handshake, HTTP/2 preface or call in time), unauthenticated (idle, never authenticated), tls_handshake_failed, revoked (its credentials were revoked by a reload)",
            metrics.closed.clone(),
        );
        metrics
    }

    fn closed(&self, reason: CloseReason) {
        self.closed
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The connection caps.
struct Caps {
    total: Arc<Semaphore>,
    per_peer: Mutex<HashMap<PeerKey, usize>>,
    max_per_peer: usize,
}

impl Caps {
    fn admit(self: &Arc<Self>, key: PeerKey) -> Result<Permit, Refusal> {
        let counted = self.max_per_peer > 0;
        if counted {
            let mut per_peer = lock(&self.per_peer);
            let open = per_peer.entry(key).or_insert(0);
            if *open >= self.max_per_peer {
                return Err(Refusal::MaxConnectionsPerPeer);
            }
            *open += 1;
        }
        let slot = PeerSlot {
            caps: self.clone(),
            key,
            counted,
        };
        // On refusal `slot` drops and gives the peer's count back.
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::MaxConnections)?;
        Ok(Permit {
            _total: total,
            _slot: slot,
        })
    }
}

/// A connection's place under both caps, given back on drop.
struct Permit {
    _total: OwnedSemaphorePermit,
    _slot: PeerSlot,
}

struct PeerSlot {
    caps: Arc<Caps>,
    key: PeerKey,
    counted: bool,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let mut per_peer = lock(&self.caps.per_peer);
        if let Some(open) = per_peer.get_mut(&self.key) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                per_peer.remove(&self.key);
            }
        }
    }
}

/// What every connection of one listener shares.
struct Listening {
    access: Arc<Access>,
    caps: Arc<Caps>,
    metrics: ConnectionMetrics,
    handshake_timeout: Duration,
}

/// A TCP connection under the gateway's rules: it holds its place under
/// the caps, and fails its reads and writes once it is to be closed.
pub struct Guarded {
    tcp: TcpStream,
    conn: Arc<Connection>,
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Until the connection authenticates: when to ask it again.
    timer: Option<Pin<Box<Sleep>>>,
    listening: Arc<Listening>,
    _permit: Permit,
}

impl Guarded {
    fn new(
        tcp: TcpStream,
        conn: Arc<Connection>,
        permit: Permit,
        listening: Arc<Listening>,
    ) -> Self {
        listening.metrics.open.inc();
        let first_check = Instant::now() + listening.handshake_timeout;
        Self {
            tcp,
            closed: Box::pin(conn.closed()),
            conn,
            timer: Some(Box::pin(tokio::time::sleep_until(first_check))),
            listening,
            _permit: permit,
        }
    }

    /// Registers the close switch and the timer; an error once the
    /// connection is to be closed.
    fn poll_guard(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.closed.as_mut().poll(cx).is_ready() {
            return Err(closing(self.conn.close_reason()));
        }
        while let Some(timer) = self.timer.as_mut() {
            if timer.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            match self
                .conn
                .verdict(Instant::now(), self.listening.handshake_timeout)
            {
                Verdict::Keep => self.timer = None,
                Verdict::CheckAt(at) => timer.as_mut().reset(at),
                Verdict::Close(reason) => return Err(closing(Some(reason))),
            }
        }
        Ok(())
    }

    /// The close switch alone, for writes: registered there too, so that a
    /// peer that stops reading (h2 then waits on the write, not the read)
    /// is closed all the same.
    fn poll_closed(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.closed.as_mut().poll(cx).is_ready() {
            return Err(closing(self.conn.close_reason()));
        }
        Ok(())
    }
}

fn closing(reason: Option<CloseReason>) -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        format!(
            "connection closed by the gateway ({})",
            reason.map_or("closing", CloseReason::as_str)
        ),
    )
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.listening.metrics.open.dec();
        if let Some(reason) = self.conn.close_reason()
            && reason != CloseReason::TlsHandshakeFailed
        {
            self.listening.metrics.closed(reason);
            self.listening.access.audit_refusal(
                "connection_closed",
                reason.as_str(),
                self.conn.peer_key(),
            );
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.poll_guard(cx)?;
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.poll_closed(cx)?;
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.poll_closed(cx)?;
        Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.poll_closed(cx)?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// What tonic puts in every request's extensions for a [`Guarded`]
/// connection (inside `TlsConnectInfo` with TLS); [`ConnectionLayer`]
/// unpacks it.
#[derive(Clone, Debug)]
pub struct Accepted {
    tcp: TcpConnectInfo,
    conn: Arc<Connection>,
}

impl Connected for Guarded {
    type ConnectInfo = Accepted;

    fn connect_info(&self) -> Accepted {
        Accepted {
            tcp: self.tcp.connect_info(),
            conn: self.conn.clone(),
        }
    }
}

/// Connections ready for tonic.
pub type Incoming<IO> = ReceiverStream<io::Result<IO>>;

/// Plaintext connections of `listener`, under `access`'s connection limits.
pub fn plaintext(
    listener: TcpListener,
    access: Arc<Access>,
    metrics: ConnectionMetrics,
    stop: CancellationToken,
) -> Incoming<Guarded> {
    accept(listener, access, metrics, stop, |guarded| async move {
        Ok(guarded)
    })
}

/// TLS connections of `listener`, each handshake with the configuration
/// in force when it began.
pub fn tls(
    listener: TcpListener,
    access: Arc<Access>,
    tls: Arc<TlsReloader>,
    metrics: ConnectionMetrics,
    stop: CancellationToken,
) -> Incoming<TlsStream<Guarded>> {
    accept(listener, access, metrics, stop, move |guarded| {
        let acceptor = TlsAcceptor::from(tls.current());
        async move {
            let stream = acceptor.accept(guarded).await?;
            let (io, session) = stream.get_ref();
            if let Some(chain) = session.peer_certificates() {
                io.conn.set_peer_certificates(chain.to_vec());
            }
            Ok(stream)
        }
    })
}

fn accept<IO, H, F>(
    listener: TcpListener,
    access: Arc<Access>,
    metrics: ConnectionMetrics,
    stop: CancellationToken,
    handshake: H,
) -> Incoming<IO>
where
    IO: Send + 'static,
    H: Fn(Guarded) -> F + Send + 'static,
    F: Future<Output = io::Result<IO>> + Send + 'static,
{
    let limits = access.config().connections.clone();
    let listening = Arc::new(Listening {
        caps: Arc::new(Caps {
            total: Arc::new(Semaphore::new(
                limits.max_connections.min(Semaphore::MAX_PERMITS),
            )),
            per_peer: Mutex::new(HashMap::new()),
            max_per_peer: limits.max_connections_per_peer,
        }),
        access,
        metrics,
        handshake_timeout: limits.handshake_timeout,
    });
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        // Out of file descriptors and the like: pause, not spin.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = stop.cancelled() => break,
                () = tx.closed() => break,
            };
            let key = PeerKey::of(peer.ip());
            let permit = match listening.caps.admit(key) {
                Ok(permit) => permit,
                Err(refusal) => {
                    // A reset: no FIN handshake, no TIME_WAIT kept for it.
                    let _ = tcp.set_zero_linger();
                    drop(tcp);
                    listening
                        .metrics
                        .refused
                        .get_or_create(&ReasonLabel {
                            reason: refusal.as_str(),
                        })
                        .inc();
                    listening
                        .access
                        .audit_refusal("connection_refused", refusal.as_str(), key);
                    continue;
                }
            };
            // serve_with_incoming ignores tonic's own nodelay setting:
            // without it, Nagle holds small responses back.
            let _ = tcp.set_nodelay(true);
            let conn = listening.access.connections().open(peer);
            let ready = handshake(Guarded::new(tcp, conn.clone(), permit, listening.clone()));
            let tx = tx.clone();
            let listening = listening.clone();
            tokio::spawn(async move {
                match ready.await {
                    Ok(io) => {
                        let _ = tx.send(Ok(io)).await;
                    }
                    // Closed by our clock: counted where the socket dropped.
                    Err(_) if conn.close_reason().is_some() => {}
                    // The peer left before (or instead of) a ClientHello:
                    // port scans, load balancers' TCP checks.
                    Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {}
                    Err(err) => {
                        tracing::debug!(%peer, error = %err, "TLS handshake failed");
                        listening.metrics.closed(CloseReason::TlsHandshakeFailed);
                        listening.access.audit_refusal(
                            "connection_closed",
                            CloseReason::TlsHandshakeFailed.as_str(),
                            key,
                        );
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Hands every call its [`Connection`] and `TcpConnectInfo` (unpacked from
/// [`Accepted`]) and counts it in flight on the connection until its
/// response body is dropped.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnectionLayer;

impl<S> Layer<S> for ConnectionLayer {
    type Service = ConnectionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConnectionService { inner }
    }
}

#[derive(Clone, Debug)]
pub struct ConnectionService<S> {
    inner: S,
}

impl<S, B, ResBody> Service<Request<B>> for ConnectionService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = Response<Tracked<ResBody>>;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let accepted = req.extensions().get::<Accepted>().cloned().or_else(|| {
            req.extensions()
                .get::<TlsConnectInfo<Accepted>>()
                .map(|tls| tls.get_ref().clone())
        });
        let in_flight = accepted.map(|Accepted { tcp, conn }| {
            let in_flight = conn.call_started();
            req.extensions_mut().insert(tcp);
            req.extensions_mut().insert(conn);
            in_flight
        });
        TrackedFuture {
            inner: self.inner.call(req),
            in_flight,
        }
    }
}

pin_project_lite::pin_project! {
    pub struct TrackedFuture<F> {
        #[pin]
        inner: F,
        in_flight: Option<InFlight>,
    }
}

impl<F, ResBody, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<Tracked<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let in_flight = this.in_flight.take();
        Poll::Ready(Ok(response.map(|inner| Tracked {
            inner,
            _in_flight: in_flight,
        })))
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its call in flight until dropped.
    pub struct Tracked<B> {
        #[pin]
        inner: B,
        _in_flight: Option<InFlight>,
    }
}

impl<B> Body for Tracked<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

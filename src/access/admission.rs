//! The transport half of security: a service wrapped around
//! `SslVpnServiceServer` that authenticates every call, applies the
//! caller's request rate, and hands the handlers a typed [`Identity`].
//!
//! It runs inside the call's span (tonic polls the returned future there),
//! so the identity is recorded on the RPC span as `enduser.id` and the
//! audit events nest under it. After a successful check the
//! `authorization` header is removed: nothing further down can log a token.
//!
//! Each authenticated call is registered on its connection with what it
//! authenticated with, for as long as its response lasts: when a reload
//! revokes that credential, a call still running is answered
//! UNAUTHENTICATED and a stream ends with UNAUTHENTICATED trailers.
//!
//! [`Open`] is the open services' counterpart (health, reflection): no
//! authentication, but every stream takes a stream slot.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tonic::{body::Body, server::NamedService};
use tower::Service;

use bytes::Bytes;
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::{
    Access, Connection, Credential, connection::Session, limits::StreamPermit, policy::Rpc,
};
use crate::error::Error;

/// `S` behind authentication and the per-caller rate.
#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    security: Arc<Access>,
}

impl<S> Admission<S> {
    pub fn new(inner: S, security: Arc<Access>) -> Self {
        Self { inner, security }
    }
}

impl<S: NamedService> NamedService for Admission<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S> Service<http::Request<Body>> for Admission<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        // The clone that was not polled ready stays behind (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let security = self.security.clone();
        Box::pin(async move {
            let rpc = Rpc::from_path(req.uri().path());
            // The transport's accept loop opened it; the certificates are
            // the chain its TLS handshake verified.
            let conn = req.extensions().get::<Arc<Connection>>().cloned();
            let peer = conn.as_ref().map(|c| c.peer());
            let certs = conn.as_ref().and_then(|c| c.peer_certificates());
            let (identity, credential) = match security.authenticate(
                rpc,
                req.headers(),
                certs.as_deref().map(Vec::as_slice),
                peer,
            ) {
                Ok(authenticated) => authenticated,
                Err(err) => return Ok(tonic::Status::from(err).into_http()),
            };
            tracing::Span::current().record("enduser.id", identity.name());
            if let Err(err) = security.limits().admit_call(&identity) {
                security.audit_metrics().refused("rate_limited");
                tracing::info!(
                    target: crate::access::AUDIT_TARGET,
                    decision = "rate_limited",
                    identity = %identity,
                    rpc = rpc.map_or("unknown", Rpc::as_str),
                    "call refused"
                );
                return Ok(tonic::Status::from(err).into_http());
            }
            // Registered with what it authenticated with, so that a
            // reload revoking that ends it (anonymous calls: nothing to
            // revoke).
            let session = match (&conn, credential) {
                (Some(conn), Credential::None) => {
                    conn.authenticated();
                    None
                }
                (Some(conn), credential) => Some(conn.begin(identity.key(), credential)),
                (None, Credential::None) => None,
                // Only a wiring mistake: a call no revocation could reach.
                (None, _) => {
                    let err =
                        Error::internal("the call arrived on no connection the gateway knows");
                    return Ok(tonic::Status::from(err).into_http());
                }
            };
            req.headers_mut().remove(http::header::AUTHORIZATION);
            req.extensions_mut().insert(identity);
            let Some(session) = session else {
                return inner.call(req).await;
            };
            let mut revoked = std::pin::pin!(session.revoked());
            tokio::select! {
                biased;
                () = &mut revoked => Ok(tonic::Status::from(super::revoked()).into_http()),
                response = inner.call(req) => {
                    let response = response?;
                    if response.headers().contains_key("grpc-status") {
                        // Trailers-only: the call has ended already.
                        return Ok(response);
                    }
                    Ok(response.map(|body| {
                        Body::new(Revocable {
                            inner: Some(body),
                            revoked: Box::pin(session.revoked()),
                            _session: session,
                        })
                    }))
                }
            }
        })
    }
}

/// A response body that ends with UNAUTHENTICATED once its call's
/// credentials are revoked: a watch stream gets its trailers then, and
/// the stream behind it is dropped (its producer notices and stops).
struct Revocable {
    inner: Option<Body>,
    revoked: Pin<Box<WaitForCancellationFutureOwned>>,
    _session: Session,
}

impl http_body::Body for Revocable {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if this.revoked.as_mut().poll(cx).is_ready() {
            this.inner = None;
            let mut trailers = http::HeaderMap::new();
            if tonic::Status::from(super::revoked())
                .add_header(&mut trailers)
                .is_err()
            {
                trailers.insert("grpc-status", http::HeaderValue::from_static("16"));
            }
            return Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))));
        }
        let frame = std::task::ready!(Pin::new(inner).poll_frame(cx));
        if !matches!(&frame, Some(Ok(f)) if f.is_data()) {
            // Its own trailers, an error, or the end: nothing after it.
            this.inner = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.as_ref().map_or_else(
            || http_body::SizeHint::with_exact(0),
            http_body::Body::size_hint,
        )
    }
}

/// The streaming methods of the open services: each call is a stream that
/// may stay open as long as its client likes.
const OPEN_STREAMS: &[&str] = &[
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// `S` (health, reflection) open to everyone, but bounded: each of its
/// streams takes a stream slot of the caller's address and of the
/// gateway (see `Limits::open_unauthenticated_stream`), held until the
/// stream ends; unary calls (health `Check`) pass. Their connections count
/// against the connection caps like any other.
#[derive(Clone)]
pub struct Open<S> {
    inner: S,
    security: Arc<Access>,
}

impl<S> Open<S> {
    pub fn new(inner: S, security: Arc<Access>) -> Self {
        Self { inner, security }
    }
}

impl<S: NamedService> NamedService for Open<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Open<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let permit = if OPEN_STREAMS.contains(&req.uri().path()) {
            let peer = req
                .extensions()
                .get::<Arc<Connection>>()
                .map(|c| c.peer_key());
            match self.security.limits().open_unauthenticated_stream(peer) {
                Ok(permit) => Some(permit),
                Err(err) => {
                    self.security.audit_metrics().refused("stream_limit");
                    if let Some(peer) = peer {
                        self.security
                            .audit_refusal("stream_refused", "stream_limit", peer);
                    }
                    return Box::pin(async move { Ok(tonic::Status::from(err).into_http()) });
                }
            }
        } else {
            None
        };
        Box::pin(async move {
            let response = inner.call(req).await?;
            Ok(match permit {
                None => response,
                Some(permit) => response.map(|body| {
                    Body::new(Holding {
                        inner: body,
                        _permit: permit,
                    })
                }),
            })
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body holding its stream's slot until dropped.
    struct Holding<B> {
        #[pin]
        inner: B,
        _permit: StreamPermit,
    }
}

impl<B: http_body::Body> http_body::Body for Holding<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

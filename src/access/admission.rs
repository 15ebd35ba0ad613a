//! The transport half of security: a service wrapped around
//! `SslVpnServiceServer` that authenticates every call, applies the
//! caller's request rate, and hands the handlers a typed [`Identity`].
//!
//! It runs inside the call's span (tonic polls the returned future there),
//! so the identity is recorded on the RPC span as `enduser.id` and the
//! audit events nest under it. After a successful check the
//! `authorization` header is removed: nothing further down can log a token.
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

use super::{Access, Connection, limits::StreamPermit, policy::Rpc};

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
            let identity = match security.authenticate(
                rpc,
                req.headers(),
                certs.as_deref().map(Vec::as_slice),
                peer,
            ) {
                Ok(identity) => identity,
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
            if let Some(conn) = &conn {
                conn.authenticated();
            }
            req.headers_mut().remove(http::header::AUTHORIZATION);
            req.extensions_mut().insert(identity);
            inner.call(req).await
        })
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

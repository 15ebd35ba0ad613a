//! The per-call server layer: one OpenTelemetry server span and one set of
//! RPC metrics per gRPC call, unary or streaming.
//!
//! It is a tower layer rather than tonic's `trace_fn` because a call ends
//! with its status, and for a stream the status travels in the trailers
//! after the last message: only a layer that wraps the response body sees
//! it. So the span and the latency cover the whole call, a watch stream
//! included, and carry the real final code. A call the client abandons
//! (disconnect, cancel, deadline) is closed as CANCELLED when its body is
//! dropped.
//!
//! Span fields follow the RPC conventions of semconv 1.42: name and
//! `rpc.method` = the fully-qualified method (`sslvpn.v1.SslVpnService/
//! ModifySslVpnServer`), `rpc.system.name = grpc`,
//! `rpc.response.status_code` = the code's name, and for the codes the
//! conventions count as server errors `error.type` = that name with span
//! status Error. The parent is the caller's W3C `traceparent`, if any.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Instant,
};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use tower::{Layer, Service};
use tracing::{Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    metrics::{HistogramFamily, LATENCY_BUCKETS, histograms},
    telemetry::grpc_code_name,
};

/// The methods served, fully qualified: the only values of the `method`
/// label (anything else counts as `other`, so a scanner cannot grow it).
const KNOWN_METHODS: &[&str] = &[
    "sslvpn.v1.SslVpnService/ModifySslVpnServer",
    "sslvpn.v1.SslVpnService/GetSslVpnServerStatus",
    "sslvpn.v1.SslVpnService/WatchSslVpnServer",
    "grpc.health.v1.Health/Check",
    "grpc.health.v1.Health/Watch",
    "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// The method label and span name of a request path.
fn method_of(path: &str) -> &'static str {
    let path = path.trim_start_matches('/');
    KNOWN_METHODS
        .iter()
        .find(|m| **m == path)
        .copied()
        .unwrap_or("other")
}

/// The codes the gRPC server conventions count as errors of the server.
fn is_server_error(code: i32) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

fn grpc_status(headers: &HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodCode {
    method: &'static str,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

/// `sslvpn_rpc_requests_total{method,code}`,
/// `sslvpn_rpc_duration_seconds{method}` and `sslvpn_rpc_in_flight{method}`.
/// `Default` counts into families no registry renders.
pub struct RpcMetrics {
    requests: Family<MethodCode, Counter>,
    duration: HistogramFamily<MethodLabel>,
    in_flight: Family<MethodLabel, Gauge>,
}

impl Default for RpcMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            duration: histograms(LATENCY_BUCKETS),
            in_flight: Family::default(),
        }
    }
}

impl RpcMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "sslvpn_rpc_requests",
            "gRPC calls finished, by fully-qualified method and status code",
            metrics.requests.clone(),
        );
        registry.register(
            "sslvpn_rpc_duration_seconds",
            "Time from a call's arrival to its last response message (a whole stream for WatchSslVpnServer)",
            metrics.duration.clone(),
        );
        registry.register(
            "sslvpn_rpc_in_flight",
            "gRPC calls (and open streams) being handled now, by method",
            metrics.in_flight.clone(),
        );
        metrics
    }
}

impl fmt::Debug for RpcMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcMetrics").finish_non_exhaustive()
    }
}

/// Adds the span and the metrics to every call.
#[derive(Clone, Debug, Default)]
pub struct RpcLayer {
    metrics: Arc<RpcMetrics>,
}

impl RpcLayer {
    /// Records every call into `metrics`.
    pub fn new(metrics: RpcMetrics) -> Self {
        Self {
            metrics: Arc::new(metrics),
        }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RpcService<S> {
    inner: S,
    metrics: Arc<RpcMetrics>,
}

impl<S, B, ResBody> Service<Request<B>> for RpcService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = Response<RpcBody<ResBody>>;
    type Error = S::Error;
    type Future = RpcFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let call = RpcCall::start(&req, self.metrics.clone());
        let future = {
            let _entered = call.span.enter();
            self.inner.call(req)
        };
        RpcFuture {
            inner: future,
            call: Some(call),
        }
    }
}

/// One call in progress: finished exactly once, by its status or by drop.
struct RpcCall {
    method: &'static str,
    span: Span,
    started: Instant,
    done: bool,
    metrics: Arc<RpcMetrics>,
}

impl RpcCall {
    fn start<B>(req: &Request<B>, metrics: Arc<RpcMetrics>) -> Self {
        let method = method_of(req.uri().path());
        let (peer_address, peer_port) = req
            .extensions()
            .get::<tonic::transport::server::TcpConnectInfo>()
            .and_then(|info| info.remote_addr())
            .map_or((None, None), |a| {
                (Some(a.ip().to_string()), Some(i64::from(a.port())))
            });
        let authority = req.uri().authority().cloned().or_else(|| {
            req.headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.parse().ok())
        });
        // A root in tracing terms: the parent is the caller's traceparent
        // (or none), never whatever h2 span happens to be current.
        let span = tracing::info_span!(
            parent: None,
            "rpc",
            otel.name = method,
            otel.kind = "server",
            otel.status_code = Empty,
            rpc.system.name = "grpc",
            rpc.method = method,
            rpc.response.status_code = Empty,
            error.type = Empty,
            server.address = authority.as_ref().map(|a| a.host()),
            server.port = authority.as_ref().and_then(|a| a.port_u16()).map(i64::from),
            network.peer.address = peer_address,
            network.peer.port = peer_port,
            // The authenticated caller, recorded by the auth layer.
            enduser.id = Empty,
        );
        // Before the span is first entered, or the parent cannot change.
        let _ = span.set_parent(crate::telemetry::propagation::extract(req.headers()));
        metrics
            .in_flight
            .get_or_create(&MethodLabel { method })
            .inc();
        Self {
            method,
            span,
            started: Instant::now(),
            done: false,
            metrics,
        }
    }

    fn finish(&mut self, code: i32) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let name = grpc_code_name(code);
        self.span.record("rpc.response.status_code", name);
        if is_server_error(code) {
            self.span.record("error.type", name);
            self.span.record("otel.status_code", "ERROR");
        }
        let method = self.method;
        let m = &self.metrics;
        m.in_flight.get_or_create(&MethodLabel { method }).dec();
        m.requests
            .get_or_create(&MethodCode { method, code: name })
            .inc();
        m.duration
            .get_or_create(&MethodLabel { method })
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for RpcCall {
    fn drop(&mut self) {
        // Dropped unfinished: the client left, or the server's timeout
        // dropped the call (tonic answers that with CANCELLED too).
        self.finish(1);
    }
}

pin_project_lite::pin_project! {
    /// The handler's future, polled inside the call's span.
    pub struct RpcFuture<F> {
        #[pin]
        inner: F,
        call: Option<RpcCall>,
    }
}

impl<F, ResBody, E> Future for RpcFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<RpcBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.call.as_ref().map(|c| c.span.enter());
            ready!(this.inner.poll(cx))
        };
        let mut call = this.call.take();
        Poll::Ready(match result {
            Ok(response) => {
                // A status in the headers ("trailers-only") ends the call now;
                // otherwise it comes in the body's trailers.
                if let (Some(code), Some(c)) = (grpc_status(response.headers()), call.as_mut()) {
                    c.finish(code);
                }
                Ok(response.map(|body| RpcBody { inner: body, call }))
            }
            Err(err) => {
                if let Some(c) = call.as_mut() {
                    c.finish(2);
                }
                Err(err)
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// The response body, watched for the trailers that carry the status.
    pub struct RpcBody<B> {
        #[pin]
        inner: B,
        call: Option<RpcCall>,
    }
}

impl<B> Body for RpcBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        // Entered here too: the exporter takes a span's end from its last
        // exit, and a stream's last exit is the poll that yields its trailers.
        let frame = {
            let _entered = this.call.as_ref().map(|c| c.span.enter());
            ready!(this.inner.poll_frame(cx))
        };
        if let Some(call) = this.call.as_mut() {
            match &frame {
                Some(Ok(f)) => {
                    if let Some(code) = f.trailers_ref().and_then(grpc_status) {
                        call.finish(code);
                    }
                }
                // The body failed mid-stream: the client sees an error.
                Some(Err(_)) => call.finish(2),
                // Ended without trailers: nothing told the client otherwise.
                None => call.finish(0),
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_paths_share_one_label() {
        assert_eq!(
            method_of("/sslvpn.v1.SslVpnService/WatchSslVpnServer"),
            "sslvpn.v1.SslVpnService/WatchSslVpnServer"
        );
        assert_eq!(method_of("/evil/../x"), "other");
        assert_eq!(method_of("/sslvpn.v1.SslVpnService/Nope"), "other");
    }

    #[test]
    fn every_method_of_the_contract_is_known() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(crate::service::wire::FILE_DESCRIPTOR_SET)
            .expect("descriptor set decodes");
        let mut seen = 0;
        for file in set.file.iter().filter(|f| f.package() == "sslvpn.v1") {
            for service in &file.service {
                for method in &service.method {
                    let full = format!("sslvpn.v1.{}/{}", service.name(), method.name());
                    assert_eq!(method_of(&format!("/{full}")), full, "{full} unlisted");
                    seen += 1;
                }
            }
        }
        assert!(seen >= 3);
    }

    #[test]
    fn code_names_follow_grpc() {
        assert_eq!(grpc_code_name(0), "OK");
        assert_eq!(grpc_code_name(3), "INVALID_ARGUMENT");
        assert_eq!(grpc_code_name(16), "UNAUTHENTICATED");
        assert_eq!(grpc_code_name(99), "UNKNOWN");
        assert!(is_server_error(14) && !is_server_error(3));
    }
}

//! The admin listener: plain HTTP for scrapers and orchestrators, apart
//! from the gRPC port so it needs no gRPC client and no credentials.
//!
//! - `GET /metrics`: the registry in the Prometheus text format (0.0.4).
//! - `GET /healthz`: liveness; 200 while the process runs.
//! - `GET /readyz`: readiness; 200 once the cloud credentials resolved and
//!   the gRPC server is serving, 503 before that and from the moment a
//!   shutdown begins, so load balancers stop sending new calls while the
//!   open ones drain.
//!
//! It binds loopback by default (`--admin-listen 127.0.0.1:9464`): the
//! metrics name methods, actions and gateway statuses, never a secret, but
//! exposing them beyond the host is the operator's choice.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// The content type of the Prometheus text format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether the gateway should receive calls.
#[derive(Debug)]
pub struct Readiness {
    serving: AtomicBool,
    /// Cancelled when the shutdown begins.
    shutdown: CancellationToken,
}

impl Readiness {
    pub fn new(shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            serving: AtomicBool::new(false),
            shutdown,
        })
    }

    /// The credentials resolved and the gRPC server is serving.
    pub fn set_serving(&self) {
        self.serving.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.serving.load(Ordering::Acquire) && !self.shutdown.is_cancelled()
    }

    fn state(&self) -> &'static str {
        if self.shutdown.is_cancelled() {
            "shutting down"
        } else if self.serving.load(Ordering::Acquire) {
            "ready"
        } else {
            "starting"
        }
    }
}

/// The admin routes over a readiness state.
pub fn router(readiness: Arc<Readiness>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(readiness)
}

async fn metrics_text() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        metrics::global().render(),
    )
}

async fn ready(State(readiness): State<Arc<Readiness>>) -> impl IntoResponse {
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, format!("{}\n", readiness.state()))
}

/// A running admin listener.
pub struct AdminServer {
    pub addr: SocketAddr,
    pub task: JoinHandle<std::io::Result<()>>,
}

/// Binds `addr` and serves the admin routes until `stop` is cancelled.
pub async fn spawn(
    addr: SocketAddr,
    readiness: Arc<Readiness>,
    stop: CancellationToken,
) -> std::io::Result<AdminServer> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = router(readiness);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    tracing::info!(%addr, "admin listener: /metrics, /healthz, /readyz");
    Ok(AdminServer { addr, task })
}

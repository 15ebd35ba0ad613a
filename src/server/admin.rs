//! The admin listener: plain HTTP for scrapers and orchestrators, apart
//! from the gRPC port so it needs no gRPC client and no credentials.
//!
//! - `GET /metrics`: this gateway's registry, encoded by prometheus-client
//!   in the Prometheus text format (0.0.4).
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
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::metrics::{self, Registry};

/// The content type of what `/metrics` serves: the Prometheus text format.
pub const METRICS_CONTENT_TYPE: &str = metrics::CONTENT_TYPE;

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

#[derive(Clone)]
struct AdminState {
    readiness: Arc<Readiness>,
    registry: Arc<Registry>,
}

/// The admin routes over a readiness state and the gateway's registry.
pub fn router(readiness: Arc<Readiness>, registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(AdminState {
            readiness,
            registry,
        })
}

async fn metrics_text(State(state): State<AdminState>) -> Response {
    match metrics::render(&state.registry) {
        Ok(text) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "cannot encode the metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn ready(State(AdminState { readiness, .. }): State<AdminState>) -> impl IntoResponse {
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
    registry: Arc<Registry>,
    stop: CancellationToken,
) -> std::io::Result<AdminServer> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = router(readiness, registry);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    tracing::info!(%addr, "admin listener: /metrics, /healthz, /readyz");
    Ok(AdminServer { addr, task })
}

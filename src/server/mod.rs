//! The transport: a tonic server with health, reflection, limits and a
//! graceful shutdown, around the `service`.
//!
//! Shutdown order matters to clients: health turns NOT_SERVING first (so
//! load balancers stop sending), open streams are told to end (they would
//! otherwise hold the server open forever), then the listener stops and
//! in-flight calls drain, all within a bounded grace period.

pub mod admin;
pub mod config;
pub mod incoming;
pub mod rpc;

use std::{future::Future, net::SocketAddr, pin::Pin, sync::Arc};

use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tower::limit::GlobalConcurrencyLimitLayer;

use self::{
    admin::Readiness,
    config::{CredentialSource, ServeConfig},
    incoming::{ConnectionLayer, ConnectionMetrics},
    rpc::{RpcLayer, RpcMetrics},
};
use crate::{
    access::{Access, AccessError, Admission, admission::Open, audit::AuditMetrics},
    cloud::{
        self, Budget, BudgetMetrics, ChainConfig, CloudError, CredentialProvider, Purpose,
        StaticCredentials, UpstreamMetrics, VpcClient,
    },
    metrics,
    service::{
        SslVpnApi,
        wire::{self, SslVpnServiceServer},
    },
    watch::{WatchHub, WatchMetrics},
};

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection descriptors are invalid: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("cannot set up the cloud client: {0}")]
    Cloud(#[from] CloudError),
    #[error("the server task panicked or was cancelled: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Access(#[from] AccessError),
}

/// A running server: its address, and the way to stop it.
pub struct ServerHandle {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), ServeError>>,
    security: Arc<Access>,
}

impl ServerHandle {
    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin listener's address, when there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Re-reads certificates, tokens and policy (what SIGHUP does); on
    /// error everything in force stays.
    pub fn reload_security(&self) -> Result<(), AccessError> {
        self.security.reload()
    }

    /// Starts the graceful shutdown without waiting for it.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Shuts down gracefully and waits until the server has stopped.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        self.shutdown.cancel();
        self.task.await?
    }

    /// Waits until the server stops (after a shutdown signal).
    pub async fn wait(self) -> Result<(), ServeError> {
        self.task.await?
    }
}

/// Binds `config.listen` and serves until `signal` resolves.
pub async fn run(
    config: ServeConfig,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // Before binding: an exposed listener without TLS or authentication
    // never accepts a single connection.
    config.security.check(config.listen)?;
    let listener = bind(config.listen).map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;
    run_on(config, listener, signal).await
}

/// The accept queue the kernel keeps for the gRPC listener. The standard
/// library's 128 overflows during a connection flood when the accept loop
/// is not scheduled for a moment, and then legitimate clients' SYNs are
/// dropped (they retry a second later); connections in it are still
/// checked against the caps as soon as they are accepted.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds the gRPC listener.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As TcpListener::bind does: a restart need not wait out TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves on an already bound listener until `signal` resolves (the caller
/// bound it, so it knows the port even when it asked for port 0).
pub async fn run_on(
    config: ServeConfig,
    listener: TcpListener,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let handle = start(config, listener).await?;
    tracing::info!(addr = %handle.local_addr(), "serving sslvpn.v1.SslVpnService");
    let shutdown = handle.shutdown.clone();
    crate::access::reload_on_sighup(handle.security.clone(), shutdown.clone());
    tokio::spawn(async move {
        signal.await;
        shutdown.cancel();
    });
    handle.wait().await
}

/// Serves on an already bound listener (tests bind 127.0.0.1:0).
pub async fn start(config: ServeConfig, listener: TcpListener) -> Result<ServerHandle, ServeError> {
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;
    config.security.check(addr)?;
    // This gateway's registry: every feature registers its families, then
    // records through the handles it is given; the admin listener renders it.
    let mut registry = metrics::registry();
    let rpc_metrics = RpcMetrics::new(&mut registry);
    let upstream_metrics = UpstreamMetrics::new(&mut registry);
    let budget_metrics = BudgetMetrics::new(&mut registry);
    let watch_metrics = WatchMetrics::new(&mut registry);
    let audit_metrics = AuditMetrics::new(&mut registry);
    let connection_metrics = ConnectionMetrics::new(&mut registry);
    let registry = Arc::new(registry);
    let security = Access::load(&config.security, audit_metrics)?;
    let shutdown = CancellationToken::new();

    // The admin listener comes first, so orchestrators see "alive, not yet
    // ready" while the credentials resolve. It stops after the gRPC server
    // (or at once if start-up fails: the drop guard).
    let readiness = Readiness::new(shutdown.clone());
    let admin_stop = CancellationToken::new();
    let admin_guard = admin_stop.clone().drop_guard();
    let admin = match config.admin_listen {
        Some(admin_addr) => Some(
            admin::spawn(
                admin_addr,
                readiness.clone(),
                registry.clone(),
                admin_stop.clone(),
            )
            .await
            .map_err(|source| ServeError::Bind {
                addr: admin_addr,
                source,
            })?,
        ),
        None => None,
    };
    let admin_addr = admin.as_ref().map(|a| a.addr);

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<SslVpnServiceServer<SslVpnApi>>().await;

    let reflection_v1 = reflection_builder().build_v1()?;
    let reflection_v1alpha = reflection_builder().build_v1alpha()?;

    let credentials: std::sync::Arc<dyn CredentialProvider> = match &config.credentials {
        CredentialSource::Static(c) => std::sync::Arc::new(StaticCredentials::new(c.clone())),
        CredentialSource::Chain => {
            let chain = ChainConfig {
                metrics: upstream_metrics.credentials().clone(),
                ..ChainConfig::from_process_env()
            };
            cloud::default_chain(&chain).await?
        }
    };
    let budget = Budget::new(config.cloud.budget.clone(), budget_metrics);
    let client = VpcClient::new(config.cloud.clone(), credentials)?
        .with_metrics(upstream_metrics)
        .with_budget(budget);
    let hub = WatchHub::new(
        client.for_purpose(Purpose::Poll),
        config.poll.clone(),
        config.security.limits.max_pollers,
        shutdown.child_token(),
        watch_metrics,
    );
    let api = SslVpnApi::new(
        client,
        hub,
        config.watch.clone(),
        security.clone(),
        shutdown.child_token(),
    );
    let service = SslVpnServiceServer::new(api)
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(4 * 1024 * 1024);
    let service = Admission::new(service, security.clone());

    let h2 = &config.security.http2;
    let router = Server::builder()
        .timeout(config.request_timeout)
        .concurrency_limit_per_connection(config.concurrency_per_connection)
        // Every call learns its connection first (the span reads its peer).
        .layer(ConnectionLayer)
        // Then the span and the metrics, which include the wait for a slot.
        .layer(RpcLayer::new(rpc_metrics))
        .max_concurrent_streams(h2.max_concurrent_streams)
        .http2_max_header_list_size(h2.max_header_list_bytes)
        .http2_keepalive_interval(Some(h2.keepalive_interval))
        .http2_keepalive_timeout(Some(h2.keepalive_timeout))
        .layer(GlobalConcurrencyLimitLayer::new(config.concurrency_limit))
        // Open to everyone, but their streams take stream slots.
        .add_service(Open::new(health_service, security.clone()))
        .add_service(Open::new(reflection_v1, security.clone()))
        .add_service(Open::new(reflection_v1alpha, security.clone()))
        .add_service(service);

    let grace = config.shutdown_grace;
    let stop = shutdown.clone();
    let tls = security.tls();
    let access = security.clone();
    let task = tokio::spawn(async move {
        let stopped = stop.clone();
        let signal = async move {
            stopped.cancelled().await;
            // Tell load balancers first; streams were cancelled through
            // the child token at the same moment.
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
            health
                .set_not_serving::<SslVpnServiceServer<SslVpnApi>>()
                .await;
        };
        type Serving = Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>>;
        // Our own accept loop: connection caps, the handshake timeout, TLS.
        let mut serve: Serving = match tls {
            None => Box::pin(router.serve_with_incoming_shutdown(
                incoming::plaintext(listener, access, connection_metrics, stop.clone()),
                signal,
            )),
            Some(tls) => Box::pin(router.serve_with_incoming_shutdown(
                incoming::tls(listener, access, tls, connection_metrics, stop.clone()),
                signal,
            )),
        };
        tokio::select! {
            result = &mut serve => return result.map_err(ServeError::from),
            () = stop.cancelled() => {}
        }
        // tonic has no drain timeout of its own: bound it here.
        match tokio::time::timeout(grace, serve).await {
            Ok(result) => result.map_err(ServeError::from),
            Err(_) => {
                tracing::warn!(?grace, "grace period over; closing remaining connections");
                Ok(())
            }
        }
    });
    // The admin listener stops once the gRPC server has stopped.
    let task = tokio::spawn(async move {
        let served = task.await;
        admin_stop.cancel();
        if let Some(admin) = admin {
            let _ = admin.task.await;
        }
        served?
    });
    admin_guard.disarm();
    readiness.set_serving();

    Ok(ServerHandle {
        addr,
        admin_addr,
        shutdown,
        task,
        security,
    })
}

fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(wire::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // So clients can decode ErrorInfo, BadRequest and RetryInfo details.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

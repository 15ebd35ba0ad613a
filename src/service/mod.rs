//! The gRPC handlers of `sslvpn.v1.SslVpnService`.
//!
//! Each handler converts its request into domain terms, lets validation and
//! the domain logic decide, and maps any failure through the one error
//! table in `error`. Handlers hold no state a second replica would need:
//! an operation id carries everything a watch needs.

pub mod convert;
pub mod gateways;
pub mod modify;

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::time::Instant;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::{
    access::{
        Access, Identity,
        audit::{AuditMetrics, ModifyAudit},
        limits::{Limits, StreamPermit},
        policy::Rpc,
    },
    cloud::VpcClient,
    error::{Class, Error},
    operation::Operation,
    pb::{self, ssl_vpn_service_server::SslVpnService},
    validate::{self, Violations},
    watch::{
        WatchHub,
        stream::{self as watch_stream, WatchSpec},
    },
};

use self::{
    gateways::GatewayMemo,
    modify::{Modifier, read_server},
};

/// Watch timeouts: the default when the caller sets none, and the cap.
#[derive(Clone, Debug)]
pub struct WatchLimits {
    pub default_timeout: Duration,
    pub max_timeout: Duration,
}

impl Default for WatchLimits {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(600),
            max_timeout: Duration::from_secs(3600),
        }
    }
}

/// The service behind the gRPC listener.
#[derive(Clone)]
pub struct SslVpnGateway {
    cloud: VpcClient,
    modifier: Arc<Modifier>,
    gateways: Arc<GatewayMemo>,
    hub: WatchHub,
    limits: WatchLimits,
    /// Cancelled when the process shuts down: open streams end with UNAVAILABLE.
    shutdown: CancellationToken,
    /// Authorization and limits (authentication happened in the transport).
    security: Arc<Access>,
    /// Where the audit counts modifications.
    audit_metrics: AuditMetrics,
}

impl SslVpnGateway {
    pub fn new(
        cloud: VpcClient,
        hub: WatchHub,
        limits: WatchLimits,
        shutdown: CancellationToken,
    ) -> Self {
        let gateways = Arc::new(GatewayMemo::default());
        Self {
            modifier: Arc::new(Modifier::new(cloud.clone(), gateways.clone())),
            gateways,
            cloud,
            hub,
            limits,
            shutdown,
            security: Access::disabled(),
            audit_metrics: AuditMetrics::default(),
        }
    }

    /// Applies the policy and limits of `security`.
    pub fn with_security(mut self, security: Arc<Access>) -> Self {
        self.security = security;
        self
    }

    /// Counts modifications into `metrics`.
    pub fn with_audit_metrics(mut self, metrics: AuditMetrics) -> Self {
        self.audit_metrics = metrics;
        self
    }
}

/// The caller the transport authenticated (anonymous when it did not run,
/// which the policy then refuses if authentication is configured).
fn caller<T>(request: &Request<T>) -> Identity {
    request
        .extensions()
        .get::<Identity>()
        .cloned()
        .unwrap_or_else(Identity::anonymous)
}

type WatchStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchSslVpnServerResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl SslVpnService for SslVpnGateway {
    async fn modify_ssl_vpn_server(
        &self,
        request: Request<pb::ModifySslVpnServerRequest>,
    ) -> Result<Response<pb::ModifySslVpnServerResponse>, Status> {
        let audit = ModifyAudit::begin(&request, &self.audit_metrics);
        let deadline = deadline(&request);
        let caller = caller(&request);
        let result = async {
            let modification = validate::modification(&convert::modify_input(request.get_ref()))
                .map_err(Error::from)?;
            let rpc = Rpc::ModifySslVpnServer;
            let (region, server_id) = (
                modification.region_id.clone(),
                modification.ssl_vpn_server_id.clone(),
            );
            self.security.authorize(&caller, rpc, &region, &server_id)?;
            self.modifier
                .modify_checked(modification, deadline, |gateway_id| {
                    self.security
                        .authorize_gateway(&caller, rpc, &region, &server_id, gateway_id)
                })
                .await
        }
        .await;
        audit.finish(&result);
        Ok(Response::new(result?))
    }

    async fn get_ssl_vpn_server_status(
        &self,
        request: Request<pb::GetSslVpnServerStatusRequest>,
    ) -> Result<Response<pb::GetSslVpnServerStatusResponse>, Status> {
        let deadline = deadline(&request);
        let caller = caller(&request);
        let req = request.get_ref();
        let rpc = Rpc::GetSslVpnServerStatus;
        let (region, server_id) =
            validate::server_ref(&req.region_id, &req.ssl_vpn_server_id).map_err(Error::from)?;
        self.security.authorize(&caller, rpc, &region, &server_id)?;
        if let Some(known) = self.gateways.get(&region, &server_id) {
            // Refuse before any read when the gateway is already known.
            self.security
                .authorize_gateway(&caller, rpc, &region, &server_id, &known)?;
        }
        let server = read_server(&self.cloud, &region, &server_id, deadline).await?;
        self.gateways
            .remember(&region, &server_id, &server.vpn_gateway_id);
        self.security.authorize_gateway(
            &caller,
            rpc,
            &region,
            &server_id,
            &server.vpn_gateway_id,
        )?;
        let gateway = self
            .cloud
            .describe_vpn_gateway(&region, &server.vpn_gateway_id, deadline)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(pb::GetSslVpnServerStatusResponse {
            ssl_vpn_server: Some(convert::ssl_vpn_server(&server)),
            gateway: Some(convert::gateway_state(
                &gateway,
                std::time::SystemTime::now(),
            )),
        }))
    }

    type WatchSslVpnServerStream = WatchStream;

    async fn watch_ssl_vpn_server(
        &self,
        request: Request<pb::WatchSslVpnServerRequest>,
    ) -> Result<Response<Self::WatchSslVpnServerStream>, Status> {
        let deadline = deadline(&request);
        let caller = caller(&request);
        let req = request.into_inner();
        let rpc = Rpc::WatchSslVpnServer;
        let (region, server_id) =
            validate::server_ref(&req.region_id, &req.ssl_vpn_server_id).map_err(Error::from)?;
        self.security.authorize(&caller, rpc, &region, &server_id)?;
        let operation = match req.operation_id.as_str() {
            "" => None,
            id => Some(Operation::decode(id).map_err(|v| Error::from(Violations::from(v)))?),
        };
        if let Some(op) = &operation
            && (op.region_id != region || op.ssl_vpn_server_id != server_id)
        {
            return Err(Error::new(
                Class::InvalidArgument,
                "InvalidParameter.OperationId",
                "operation_id belongs to another server or region",
            )
            .into());
        }
        // The server's real gateway, never the one an operation id claims:
        // ids are not signed, and a forged one must not open a poller (and
        // a stream) on a gateway the caller has no server on.
        let gateway_id = match self.gateways.get(&region, &server_id) {
            Some(known) => known,
            None => {
                let server = read_server(&self.cloud, &region, &server_id, deadline).await?;
                self.gateways
                    .remember(&region, &server_id, &server.vpn_gateway_id);
                server.vpn_gateway_id
            }
        };
        if let Some(op) = &operation
            && op.vpn_gateway_id != gateway_id
        {
            return Err(Error::new(
                Class::InvalidArgument,
                "InvalidParameter.OperationId",
                "operation_id belongs to another gateway",
            )
            .into());
        }
        let operation = operation.or_else(|| {
            self.modifier
                .in_flight_operation(&region, &gateway_id, &server_id)
        });
        // The gateway whose poller the stream reads is the one authorized.
        self.security
            .authorize_gateway(&caller, rpc, &region, &server_id, &gateway_id)?;
        let timeout = convert::std_duration(req.timeout.as_ref())
            .unwrap_or(self.limits.default_timeout)
            .min(self.limits.max_timeout);
        let limits = self.security.limits();
        let permit = limits.open_stream(&caller)?;
        let subscription = self
            .hub
            .try_subscribe(&region, &gateway_id, limits.config().max_pollers)
            .ok_or_else(Limits::pollers_exhausted)?;
        let stream = watch_stream::spawn(
            WatchSpec {
                ssl_vpn_server_id: server_id,
                operation,
                follow: req.follow,
                timeout,
            },
            subscription,
            self.shutdown.child_token(),
        );
        Ok(Response::new(Box::pin(Permitted {
            inner: stream,
            _permit: permit,
        })))
    }
}

/// A watch stream holding its share of the stream limits until tonic drops
/// it (the stream ended or the client left).
struct Permitted<S> {
    inner: S,
    _permit: StreamPermit,
}

impl<S: Stream + Unpin> Stream for Permitted<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

/// The caller's deadline, from the `grpc-timeout` header.
fn deadline<T>(request: &Request<T>) -> Option<Instant> {
    let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let split = value.len().checked_sub(1)?;
    let (amount, unit) = value.split_at(split);
    let amount: u64 = amount.parse().ok()?;
    let timeout = match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    };
    Instant::now().checked_add(timeout)
}

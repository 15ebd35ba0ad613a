//! The gRPC handlers of `sslvpn.v1.SslVpnService`.
//!
//! Each handler converts its request into domain terms, lets validation
//! decide, resolves and authorizes the server through the one step every
//! RPC shares ([`SslVpnApi::resolve`], asking the access layer's [`Gate`]),
//! hands the domain logic the rest, and maps any failure through
//! `status`. Handlers hold no state a second replica would need:
//! an operation id carries everything a watch needs.

pub mod convert;
pub mod gate;
pub mod status;
pub mod wire;

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::time::Instant;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use self::{
    gate::{Gate, Rpc, StreamPermit, Target},
    wire::SslVpnService,
};
use crate::{
    cloud::VpcClient,
    directory::{GatewayMemo, read_server},
    domain::{RegionId, SslVpnServer},
    error::{Error, Kind},
    modify::Modifier,
    operation::Operation,
    pb,
    validate::{self, Violations},
    watch::{
        WatchHub,
        stream::{self as watch_stream, WatchSpec},
    },
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

/// The implementation of `sslvpn.v1.SslVpnService`.
#[derive(Clone)]
pub struct SslVpnApi {
    cloud: VpcClient,
    modifier: Arc<Modifier>,
    gateways: Arc<GatewayMemo>,
    hub: WatchHub,
    limits: WatchLimits,
    /// Who may do what (authentication happened in the transport).
    gate: Arc<dyn Gate>,
    /// Cancelled when the process shuts down: open streams end with UNAVAILABLE.
    shutdown: CancellationToken,
}

/// A server's gateway, learnt and authorized; the server too when it had
/// to be read to learn it.
struct Resolved {
    gateway_id: String,
    server: Option<SslVpnServer>,
}

impl SslVpnApi {
    pub fn new(
        cloud: VpcClient,
        hub: WatchHub,
        limits: WatchLimits,
        gate: Arc<dyn Gate>,
        shutdown: CancellationToken,
    ) -> Self {
        let gateways = Arc::new(GatewayMemo::default());
        Self {
            modifier: Arc::new(Modifier::new(cloud.clone(), gateways.clone())),
            gateways,
            cloud,
            hub,
            limits,
            gate,
            shutdown,
        }
    }

    /// The one resolve-and-authorize step of every RPC: may the caller
    /// touch the server at all (refused before any read), which gateway
    /// is it on (the memo, else one read of the server), and may the
    /// caller touch that gateway — the decision that counts.
    async fn resolve<T>(
        &self,
        request: &Request<T>,
        rpc: Rpc,
        region: &RegionId,
        server_id: &str,
        deadline: Option<Instant>,
    ) -> Result<Resolved, Error> {
        let caller = request.extensions();
        let target = |gateway| Target {
            rpc,
            region,
            ssl_vpn_server_id: server_id,
            vpn_gateway_id: gateway,
        };
        self.gate.authorize(caller, &target(None))?;
        if let Some(gateway_id) = self.gateways.get(region, server_id) {
            self.gate.authorize(caller, &target(Some(&gateway_id)))?;
            return Ok(Resolved {
                gateway_id,
                server: None,
            });
        }
        // Concurrent first calls on one server wait for one read.
        let _learning = self.gateways.learning(region, server_id).await;
        if let Some(gateway_id) = self.gateways.get(region, server_id) {
            self.gate.authorize(caller, &target(Some(&gateway_id)))?;
            return Ok(Resolved {
                gateway_id,
                server: None,
            });
        }
        let server = read_server(&self.cloud, region, server_id, deadline).await?;
        self.gateways
            .remember(region, server_id, &server.vpn_gateway_id);
        self.gate
            .authorize(caller, &target(Some(&server.vpn_gateway_id)))?;
        Ok(Resolved {
            gateway_id: server.vpn_gateway_id.clone(),
            server: Some(server),
        })
    }
}

type WatchStream =
    Pin<Box<dyn Stream<Item = Result<wire::WatchSslVpnServerResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl SslVpnService for SslVpnApi {
    async fn modify_ssl_vpn_server(
        &self,
        request: Request<pb::ModifySslVpnServerRequest>,
    ) -> Result<Response<pb::ModifySslVpnServerResponse>, Status> {
        let audit = self.gate.audit_modify(
            request.extensions(),
            request.remote_addr(),
            convert::modify_requested(request.get_ref()),
        );
        let deadline = deadline(&request);
        let result = async {
            let mut modification =
                validate::modification(&convert::modify_input(request.get_ref()))
                    .map_err(Error::from)?;
            modification.dry_run = request.get_ref().validate_only;
            let rpc = Rpc::ModifySslVpnServer;
            let (region, server_id) = (
                modification.region_id.clone(),
                modification.ssl_vpn_server_id.clone(),
            );
            let resolved = self
                .resolve(&request, rpc, &region, &server_id, deadline)
                .await?;
            // Servers do not move; were one ever to, its new gateway is
            // authorized before anything is sent there.
            let reauthorize = |gateway_id: &str| {
                self.gate.authorize(
                    request.extensions(),
                    &Target {
                        rpc,
                        region: &region,
                        ssl_vpn_server_id: &server_id,
                        vpn_gateway_id: Some(gateway_id),
                    },
                )
            };
            // A watched gateway observed within the fast cadence spares the
            // pre-flight its two reads.
            let observed = self
                .hub
                .fresh(&region, &resolved.gateway_id, self.hub.fast_interval())
                .and_then(|snapshot| {
                    let server = snapshot.server(&server_id)?.clone();
                    Some((server, snapshot.gateway))
                });
            let accepted = self
                .modifier
                .modify_resolved(
                    modification,
                    &resolved.gateway_id,
                    resolved.server,
                    observed,
                    deadline,
                    reauthorize,
                )
                .await?;
            if !accepted.dry_run && !accepted.request_id.is_empty() {
                // Something was sent: its watchers, with an operation id or
                // not, look again now.
                self.hub.kick(&region, &resolved.gateway_id, accepted.done);
            }
            Ok(accepted)
        }
        .await;
        audit.finish(result.as_ref());
        Ok(Response::new(convert::modify_response(&result?)))
    }

    async fn get_ssl_vpn_server_status(
        &self,
        request: Request<pb::GetSslVpnServerStatusRequest>,
    ) -> Result<Response<pb::GetSslVpnServerStatusResponse>, Status> {
        let deadline = deadline(&request);
        let req = request.get_ref();
        let (region, server_id) =
            validate::server_ref(&req.region_id, &req.ssl_vpn_server_id).map_err(Error::from)?;
        let resolved = self
            .resolve(
                &request,
                Rpc::GetSslVpnServerStatus,
                &region,
                &server_id,
                deadline,
            )
            .await?;
        // With the gateway known from the memo, the server and its gateway
        // are read at once.
        let (server, mut gateway) = match resolved.server {
            Some(server) => {
                let gateway = self
                    .cloud
                    .describe_vpn_gateway(&region, &server.vpn_gateway_id, deadline)
                    .await;
                (server, gateway)
            }
            None => {
                let (server, gateway) = tokio::join!(
                    read_server(&self.cloud, &region, &server_id, deadline),
                    self.cloud
                        .describe_vpn_gateway(&region, &resolved.gateway_id, deadline)
                );
                (server?, gateway)
            }
        };
        if server.vpn_gateway_id != resolved.gateway_id {
            // The memo was wrong (servers do not move): authorize the real
            // gateway before showing it.
            self.gateways
                .remember(&region, &server_id, &server.vpn_gateway_id);
            self.resolve(
                &request,
                Rpc::GetSslVpnServerStatus,
                &region,
                &server_id,
                deadline,
            )
            .await?;
            gateway = self
                .cloud
                .describe_vpn_gateway(&region, &server.vpn_gateway_id, deadline)
                .await;
        }
        let gateway = gateway.map_err(Error::from)?;
        Ok(Response::new(pb::GetSslVpnServerStatusResponse {
            ssl_vpn_server: Some(convert::ssl_vpn_server(&server.on_gateway(&gateway))),
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
        let req = request.get_ref();
        let (region, server_id) =
            validate::server_ref(&req.region_id, &req.ssl_vpn_server_id).map_err(Error::from)?;
        let operation = match req.operation_id.as_str() {
            "" => None,
            id => Some(Operation::decode(id).map_err(|v| Error::from(Violations::from(v)))?),
        };
        if let Some(op) = &operation
            && (op.region_id != region || op.ssl_vpn_server_id != server_id)
        {
            return Err(
                invalid_operation("operation_id belongs to another server or region").into(),
            );
        }
        // The server's real gateway, never the one an operation id claims:
        // ids are not signed, and a forged one must not open a poller (and
        // a stream) on a gateway the caller has no server on.
        let gateway_id = self
            .resolve(
                &request,
                Rpc::WatchSslVpnServer,
                &region,
                &server_id,
                deadline,
            )
            .await?
            .gateway_id;
        if let Some(op) = &operation
            && op.vpn_gateway_id != gateway_id
        {
            return Err(invalid_operation("operation_id belongs to another gateway").into());
        }
        let operation = operation.or_else(|| {
            self.modifier
                .in_flight_operation(&region, &gateway_id, &server_id)
        });
        let timeout = convert::std_duration(req.timeout.as_ref())
            .unwrap_or(self.limits.default_timeout)
            .min(self.limits.max_timeout);
        let follow = req.follow;
        let permit = self.gate.open_stream(request.extensions())?;
        let subscription = self.hub.try_subscribe(&region, &gateway_id)?;
        let stream = watch_stream::spawn(
            WatchSpec {
                ssl_vpn_server_id: server_id,
                operation,
                follow,
                timeout,
            },
            subscription,
            self.shutdown.child_token(),
        );
        let messages = stream.map(|item| {
            item.map(|event| convert::watch_message(&event))
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(Permitted {
            inner: messages,
            _permit: permit,
        })))
    }
}

fn invalid_operation(why: &str) -> Error {
    Error::new(Kind::InvalidArgument, "InvalidParameter.OperationId", why)
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

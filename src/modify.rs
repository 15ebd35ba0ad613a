//! A change to an SSL server, after validation and authorization: the
//! pre-flight against the current state, one change per gateway at a time,
//! the cloud call, and the operation that a watch follows. It speaks domain
//! terms only; the service turns an [`Accepted`] into the RPC's answer.
//!
//! The cloud refuses a second change while a gateway is busy
//! (`VpnGateway.Configuring`) — and "busy" starts before the gateway says
//! so, during the seconds the cloud takes to pick a change up. So this
//! replica serialises changes per gateway and remembers the change it last
//! sent there until it is visible, refusing newcomers meanwhile with
//! FAILED_PRECONDITION + RetryInfo instead of letting the cloud refuse them.
//! That memory is an optimisation only: a change sent through another
//! replica still meets the cloud's own refusal, mapped the same way, and
//! idempotency rests on the client token, which the cloud honours.
//!
//! One answer needs the gateway's state to be read right: VPN gateways answer
//! `UnknownError` "while the vpn is configuring" (Terraform's provider
//! retries it on gateway operations for that reason). So when the cloud
//! answers a modify with `UnknownError`, the gateway is read once more: busy
//! (not `active`), it is the busy refusal it stands for, FAILED_PRECONDITION
//! with RetryInfo; otherwise it stays the transient failure it is classified
//! as.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use ipnet::Ipv4Net;
use tokio::{sync::Mutex as AsyncMutex, time::Instant};

use crate::{
    cloud::{CloudError, ModifyRequest, Purpose, VpcClient},
    directory::{GatewayMemo, read_server},
    domain::{Changes, Field, GatewayStatus, Modification, RegionId, SslVpnServer, VpnGateway},
    error::{Error, Kind},
    operation::{self, Operation},
    validate::{self, Violations},
};

/// The cloud's code that a VPN gateway busy configuring may answer.
const UNKNOWN_ERROR: &str = "UnknownError";

/// How long a change sent from here may stay invisible on an active gateway
/// before this replica stops waiting for it: past the cloud's pick-up lag
/// (seconds), invisible values mean someone else changed the server since.
const IN_FLIGHT_TTL: Duration = Duration::from_secs(60);

type GatewayKey = (RegionId, String);

/// What a modify answers: the server as the cloud returned it, and the
/// operation to watch.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub server: SslVpnServer,
    /// The cloud's RequestId; empty when nothing had to be sent.
    pub request_id: String,
    /// The token used: the caller's, or one generated for it (empty for a
    /// dry run, which sends none).
    pub client_token: String,
    /// The change to watch; for a dry run, the change that would have been
    /// made (never shown: there is nothing to watch).
    pub operation: Operation,
    /// True when the change is complete already (only the name changed, or
    /// every value already held): there is nothing to wait for.
    pub done: bool,
    /// A dry run: every check passed and nothing was changed.
    pub dry_run: bool,
}

/// A change this replica sent and has not yet seen complete.
struct InFlight {
    accepted: Accepted,
    sent_at: Instant,
}

/// Modifications, one gateway at a time.
pub struct Modifier {
    cloud: VpcClient,
    /// One lock per gateway ever modified here (bounded by the account's
    /// gateways, so never pruned).
    locks: Mutex<HashMap<GatewayKey, Arc<AsyncMutex<()>>>>,
    in_flight: Mutex<HashMap<GatewayKey, InFlight>>,
    gateways: Arc<GatewayMemo>,
}

/// What a modify sends: the changes, or only the new name when nothing else
/// differs (which the cloud applies at once, rather than putting the
/// gateway through an update for values that already hold); `None` when
/// every requested value already holds.
fn to_send(changes: &Changes, server: &SslVpnServer) -> Option<(Changes, bool)> {
    let pending = changes.pending_against(server);
    if pending.is_empty() {
        return None;
    }
    if pending == [Field::Name] {
        let name_alone = Changes {
            name: changes.name.clone(),
            ..Changes::default()
        };
        return Some((name_alone, true));
    }
    Some((changes.clone(), false))
}

impl Modifier {
    pub fn new(cloud: VpcClient, gateways: Arc<GatewayMemo>) -> Self {
        Self {
            cloud: cloud.for_purpose(Purpose::Preflight),
            locks: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            gateways,
        }
    }

    /// Sends `m` to the server's gateway `gateway_id`, which the caller
    /// resolved and authorized (`server` is the read that learnt it, if
    /// one was needed; `observed` a fresh observation of the server and
    /// its gateway, which spares the pre-flight's reads). `reauthorize` is
    /// asked again should the server turn out to be on another gateway. A
    /// dry run (`m.dry_run`) makes every check a real modify makes, then the
    /// cloud's (`DryRun`), and changes nothing.
    pub async fn modify_resolved(
        &self,
        m: Modification,
        gateway_id: &str,
        server: Option<SslVpnServer>,
        observed: Option<(SslVpnServer, VpnGateway)>,
        deadline: Option<Instant>,
        reauthorize: impl Fn(&str) -> Result<(), Error>,
    ) -> Result<Accepted, Error> {
        let (server, gateway_read) = match observed {
            // The cloud's own refusal still covers a change made meanwhile
            // elsewhere.
            Some((server, gateway)) if server.vpn_gateway_id == gateway_id => {
                (server, Some(Ok(gateway)))
            }
            _ => {
                self.read_state(&m, gateway_id, server, deadline, &reauthorize)
                    .await?
            }
        };
        let key: GatewayKey = (m.region_id.clone(), server.vpn_gateway_id.clone());
        if m.dry_run {
            return self.dry_run(&m, &key, server, gateway_read, deadline).await;
        }
        let client_token = m
            .client_token
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());

        if let Some(replay) = self.replay(&key, &m, &client_token) {
            return Ok(replay);
        }
        let gateway_lock = lock(&self.locks).entry(key.clone()).or_default().clone();
        let Ok(_serialised) = gateway_lock.try_lock_owned() else {
            return Err(Error::new(
                Kind::Raced,
                "VpnGateway.Configuring",
                "another change to a server on this gateway is being sent; retry shortly",
            )
            .with_metadata("vpnGatewayId", key.1.clone()));
        };

        // Read before the lock on the fast path; that is as good as after
        // it, since what this replica sent meanwhile is judged from
        // `in_flight`, under the lock, and what others sent meets the
        // cloud's own refusal either way.
        let gateway = self
            .preflight(&m, &key, &server, gateway_read, deadline)
            .await?;
        let operation = make_operation(&m, &key, client_token.clone());

        let Some((sent, done)) = to_send(&m.changes, &server) else {
            // Every requested value already holds: nothing to send.
            return Ok(Accepted {
                operation,
                server: server.on_gateway(&gateway),
                request_id: String::new(),
                client_token,
                done: true,
                dry_run: false,
            });
        };
        let request = ModifyRequest {
            region: &m.region_id,
            ssl_vpn_server_id: &m.ssl_vpn_server_id,
            client_token: &client_token,
            changes: &sent,
        };
        let accepted = match self
            .cloud
            .for_purpose(Purpose::Modify)
            .modify_ssl_vpn_server(&request, deadline)
            .await
        {
            Ok(accepted) => accepted,
            Err(err) => return Err(self.refused(&key, err, deadline).await),
        };
        let reply = Accepted {
            operation,
            server: accepted.server.on_gateway(&gateway),
            request_id: accepted.request_id,
            client_token,
            done,
            dry_run: false,
        };
        if !done {
            lock(&self.in_flight).insert(
                key,
                InFlight {
                    accepted: reply.clone(),
                    sent_at: Instant::now(),
                },
            );
        }
        Ok(reply)
    }

    /// The checks of a real modify, then the cloud's own (`DryRun`) on what
    /// a real modify would send. Takes no lock (nothing is sent to change
    /// anything), sends no client token (nothing to make idempotent) and
    /// leaves no change in flight.
    async fn dry_run(
        &self,
        m: &Modification,
        key: &GatewayKey,
        server: SslVpnServer,
        gateway_read: Option<Result<VpnGateway, Error>>,
        deadline: Option<Instant>,
    ) -> Result<Accepted, Error> {
        let gateway = self
            .preflight(m, key, &server, gateway_read, deadline)
            .await?;
        // When every value already holds, a real modify sends nothing, and
        // so nothing is there for the cloud to check.
        let request_id = match to_send(&m.changes, &server) {
            None => String::new(),
            Some((sent, _)) => {
                let request = ModifyRequest {
                    region: &m.region_id,
                    ssl_vpn_server_id: &m.ssl_vpn_server_id,
                    client_token: "",
                    changes: &sent,
                };
                match self
                    .cloud
                    .for_purpose(Purpose::Modify)
                    .dry_run_modify_ssl_vpn_server(&request, deadline)
                    .await
                {
                    Ok(request_id) => request_id,
                    Err(err) => return Err(self.refused(key, err, deadline).await),
                }
            }
        };
        Ok(Accepted {
            operation: make_operation(m, key, String::new()),
            server: server.on_gateway(&gateway),
            request_id,
            client_token: String::new(),
            done: true,
            dry_run: true,
        })
    }

    /// The gateway (read now unless it was read with the server), and the
    /// checks against the current state: not locked, not busy (also with a
    /// change this replica sent that is not visible yet), and the
    /// cross-field rules on the configuration the change would produce.
    async fn preflight(
        &self,
        m: &Modification,
        key: &GatewayKey,
        server: &SslVpnServer,
        gateway_read: Option<Result<VpnGateway, Error>>,
        deadline: Option<Instant>,
    ) -> Result<VpnGateway, Error> {
        let gateway = match gateway_read {
            Some(read) => read?,
            None => {
                self.cloud
                    .describe_vpn_gateway(&m.region_id, &key.1, deadline)
                    .await?
            }
        };
        check_gateway(&gateway)?;
        self.check_in_flight(key, &gateway, server)?;
        check_merged(m, server, &gateway)?;
        Ok(gateway)
    }

    /// The cloud refused a modify (or its dry run).
    async fn refused(&self, key: &GatewayKey, err: CloudError, deadline: Option<Instant>) -> Error {
        if err.code() == UNKNOWN_ERROR {
            self.unknown_error(key, err, deadline).await
        } else {
            err.into()
        }
    }

    /// `UnknownError` from a gateway that turns out to be busy is the busy
    /// refusal; from an active one (or one that cannot be read), the
    /// transient failure it is classified as.
    async fn unknown_error(
        &self,
        key: &GatewayKey,
        err: CloudError,
        deadline: Option<Instant>,
    ) -> Error {
        let Ok(gateway) = self
            .cloud
            .describe_vpn_gateway(&key.0, &key.1, deadline)
            .await
        else {
            return err.into();
        };
        if gateway.status() == GatewayStatus::Active {
            return err.into();
        }
        let mut busy = Error::new(
            Kind::Busy,
            err.code(),
            format!(
                "the cloud answered UnknownError while the gateway is {}: it is applying \
                 another change; retry when it is active again",
                gateway.status
            ),
        )
        .answered_by_cloud()
        .with_metadata("vpnGatewayId", key.1.clone())
        .with_metadata("gatewayStatus", gateway.status.clone());
        if let Some(id) = err.request_id() {
            busy = busy.with_request_id(id);
        }
        match err.retry_after() {
            Some(wait) => busy.with_retry_after(wait),
            None => busy,
        }
    }

    /// The server, and its gateway too when both could be read at once;
    /// `None` for the gateway when it is still to be read.
    async fn read_state(
        &self,
        m: &Modification,
        gateway_id: &str,
        server: Option<SslVpnServer>,
        deadline: Option<Instant>,
        reauthorize: &impl Fn(&str) -> Result<(), Error>,
    ) -> Result<(SslVpnServer, Option<Result<VpnGateway, Error>>), Error> {
        if let Some(server) = server {
            return Ok((server, None));
        }
        let (region, id) = (&m.region_id, m.ssl_vpn_server_id.as_str());
        let (server, gateway) = tokio::join!(
            read_server(&self.cloud, region, id, deadline),
            self.cloud
                .describe_vpn_gateway(region, gateway_id, deadline)
        );
        let server = server?;
        if server.vpn_gateway_id == gateway_id {
            return Ok((server, Some(gateway.map_err(Error::from))));
        }
        // Servers do not move; were one ever to, the memo learns it and
        // the new gateway is authorized and read afresh.
        self.gateways.remember(region, id, &server.vpn_gateway_id);
        reauthorize(&server.vpn_gateway_id)?;
        Ok((server, None))
    }

    /// The same token and values as the change in flight: answer as before
    /// (AIP-155) rather than refusing the caller's own retry.
    fn replay(&self, key: &GatewayKey, m: &Modification, token: &str) -> Option<Accepted> {
        let in_flight = lock(&self.in_flight);
        let op = &in_flight.get(key)?.accepted.operation;
        (op.client_token == token
            && op.ssl_vpn_server_id == m.ssl_vpn_server_id
            && op.changes == m.changes)
            .then(|| in_flight.get(key).map(|f| f.accepted.clone()))
            .flatten()
    }

    /// The change this replica last sent to `server_id`, while it may still
    /// be on its way: a watch without an operation id follows it, so the
    /// cloud's pick-up lag (the gateway still `active`) cannot read as done.
    pub fn in_flight_operation(
        &self,
        region: &RegionId,
        gateway_id: &str,
        server_id: &str,
    ) -> Option<Operation> {
        let in_flight = lock(&self.in_flight);
        let f = in_flight.get(&(region.clone(), gateway_id.to_owned()))?;
        let op = &f.accepted.operation;
        (op.ssl_vpn_server_id == server_id && f.sent_at.elapsed() <= IN_FLIGHT_TTL)
            .then(|| op.clone())
    }

    /// Refuses while a change sent from here is not yet visible.
    fn check_in_flight(
        &self,
        key: &GatewayKey,
        gateway: &VpnGateway,
        server: &SslVpnServer,
    ) -> Result<(), Error> {
        let mut in_flight = lock(&self.in_flight);
        let Some(f) = in_flight.get(key) else {
            return Ok(());
        };
        let op = &f.accepted.operation;
        let visible = op.ssl_vpn_server_id != server.ssl_vpn_server_id
            || op.changes.pending_against(server).is_empty();
        if f.sent_at.elapsed() > IN_FLIGHT_TTL
            || (gateway.status() == GatewayStatus::Active && visible)
        {
            in_flight.remove(key);
            return Ok(());
        }
        Err(busy(&key.1).with_metadata("operationId", op.encode()))
    }
}

/// The operation a modify of `m` on the gateway `key` starts.
fn make_operation(m: &Modification, key: &GatewayKey, client_token: String) -> Operation {
    Operation {
        region_id: m.region_id.clone(),
        ssl_vpn_server_id: m.ssl_vpn_server_id.clone(),
        vpn_gateway_id: key.1.clone(),
        changes: m.changes.clone(),
        accepted_at_ms: operation::now_ms(),
        client_token,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn busy(gateway_id: &str) -> Error {
    Error::new(
        Kind::Busy,
        "VpnGateway.Configuring",
        "the gateway is applying an earlier change; retry when it is active again",
    )
    .with_metadata("vpnGatewayId", gateway_id.to_owned())
}

/// A locked or busy gateway cannot take a change now.
fn check_gateway(gateway: &VpnGateway) -> Result<(), Error> {
    if gateway.is_financially_locked() {
        return Err(Error::new(
            Kind::Locked,
            "VpnGateway.FinancialLocked",
            "the gateway is locked for overdue payment; top up the account first",
        )
        .with_metadata("vpnGatewayId", gateway.vpn_gateway_id.clone()));
    }
    match gateway.status() {
        GatewayStatus::Active => Ok(()),
        _ => {
            Err(busy(&gateway.vpn_gateway_id)
                .with_metadata("gatewayStatus", gateway.status.clone()))
        }
    }
}

/// The cross-field rules on the configuration the change would produce.
fn check_merged(
    m: &Modification,
    server: &SslVpnServer,
    gateway: &VpnGateway,
) -> Result<(), Error> {
    let changes = &m.changes;
    if changes.client_ip_pool.is_none() && changes.local_subnet.is_none() {
        return Ok(());
    }
    let pool = changes
        .client_ip_pool
        .or_else(|| server.client_ip_pool.parse::<Ipv4Net>().ok());
    let subnets = changes.local_subnet.clone().unwrap_or_else(|| {
        server
            .local_subnet
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    });
    let mut violations = Vec::new();
    if let Some(pool) = pool {
        violations.extend(validate::ip_conflict(pool, &subnets).err());
        if changes.client_ip_pool.is_some() {
            let max = server.max_connections.max(gateway.ssl_max_connections);
            violations.extend(validate::pool_capacity(pool, max).err());
        }
    }
    Violations::check(violations).map_err(Error::from)
}

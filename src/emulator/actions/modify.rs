//! ModifySslVpnServer: every rule of the API document, the ones only the
//! cloud can check, idempotency, and the start of the asynchronous change.
//!
//! Checks run in the order a caller would meet them at the cloud: the region
//! and server id are present; the values pass the documented rules
//! (`validate::modification`, whose first violation is answered); the server
//! exists in the region and the key is granted it; a remembered ClientToken
//! replays or mismatches; the gateway is not locked for payment, not busy
//! (`VpnGateway.Configuring`) and not in its quiet period (`Throttling.User`);
//! then the rules that need the cloud's state (client pool against the local
//! subnets, against other SSL servers in the VPC, against the gateway's
//! connection count and the VPC's routes; two-factor authentication against
//! the gateway's version and the IDaaS instances). A `DryRun` stops there.
//! A name-only change applies at once; anything else becomes a task.

use ipnet::Ipv4Net;
use serde_json::Value;

use crate::{
    domain::{Changes, SslVpnServer},
    validate::{self, ModifyInput},
};

use super::{
    super::{
        counters::Counters,
        errors::{ApiError, code},
        fixtures::EIAM_2,
        idempotency::Lookup,
        state::{Task, World},
        wire::Params,
    },
    Ctx, boolean,
    describe::server_json,
    region, required,
};

/// The operation's own values, read from the wire into validate's terms.
fn input<'p>(
    params: &'p Params,
    region: &'p str,
    server: &'p str,
) -> Result<ModifyInput<'p>, ApiError> {
    let port = params
        .get("Port")
        .map(|p| {
            p.trim().parse::<i64>().map_err(|_| {
                ApiError::invalid(
                    "Port",
                    format!("The parameter Port must be an integer, not {p:?}."),
                )
            })
        })
        .transpose()?;
    Ok(ModifyInput {
        region_id: region,
        ssl_vpn_server_id: server,
        client_token: params.get("ClientToken").unwrap_or(""),
        name: params.get("Name"),
        client_ip_pool: params.get("ClientIpPool"),
        local_subnet: params.get("LocalSubnet"),
        proto: params.get("Proto"),
        cipher: params.get("Cipher"),
        port,
        compress: boolean(params, "Compress")?,
        enable_multi_factor_auth: boolean(params, "EnableMultiFactorAuth")?,
        idaas_instance_id: params.get("IDaaSInstanceId"),
        idaas_region_id: params.get("IDaaSRegionId"),
        idaas_application_id: params.get("IDaaSApplicationId"),
    })
}

/// The server as it will be once `changes` apply.
fn apply(server: &SslVpnServer, changes: &Changes) -> SslVpnServer {
    let mut s = server.clone();
    if let Some(v) = &changes.name {
        s.name = v.clone();
    }
    if let Some(v) = changes.client_ip_pool {
        s.client_ip_pool = v.to_string();
    }
    if let Some(v) = &changes.local_subnet {
        s.local_subnet = crate::domain::format_subnets(v);
    }
    if let Some(v) = changes.proto {
        s.proto = Some(v);
    }
    if let Some(v) = changes.cipher {
        s.cipher = Some(v);
    }
    if let Some(v) = changes.port {
        s.port = v;
    }
    if let Some(v) = changes.compress {
        s.compress = v;
    }
    if let Some(v) = changes.enable_multi_factor_auth {
        s.enable_multi_factor_auth = v;
    }
    if let Some(v) = &changes.idaas_instance_id {
        s.idaas_instance_id = v.clone();
    }
    if let Some(v) = &changes.idaas_region_id {
        s.idaas_region_id = v.clone();
    }
    if let Some(v) = &changes.idaas_application_id {
        s.idaas_application_id = v.clone();
    }
    s
}

fn violation(v: validate::Violation) -> ApiError {
    ApiError::bad_request(v.code, v.description)
}

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The rules that need the cloud's state.
fn cloud_rules(
    world: &World,
    current: &SslVpnServer,
    target: &SslVpnServer,
    changes: &Changes,
) -> Result<(), ApiError> {
    let (_, gw) = world
        .server_and_gateway(&current.ssl_vpn_server_id)
        .ok_or_else(ApiError::internal)?;
    let pool: Ipv4Net = target
        .client_ip_pool
        .parse()
        .map_err(|_| ApiError::internal())?;
    let pool_changed = changes.client_ip_pool.is_some();
    if pool_changed || changes.local_subnet.is_some() {
        let subnets: Vec<Ipv4Net> = target
            .local_subnet
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        validate::ip_conflict(pool, &subnets).map_err(|_| {
            ApiError::bad_request(
                validate::code::IP_CONFLICT,
                "Client IP pool conflict with local IP range.",
            )
        })?;
    }
    if pool_changed {
        let clash = world.vpc_neighbours(current).any(|other| {
            other
                .client_ip_pool
                .parse::<Ipv4Net>()
                .is_ok_and(|theirs| overlaps(pool, theirs))
        });
        if clash {
            return Err(ApiError::bad_request(
                validate::code::IP_CONFLICT,
                "Client IP pool conflict with other SSL VPN server in the same VPC.",
            ));
        }
        validate::pool_capacity(pool, gw.record.ssl_max_connections).map_err(violation)?;
        if let Some(vpc) = world.vpcs.get(&gw.record.vpc_id) {
            if let Some(dest) = vpc
                .route_destinations
                .iter()
                .filter_map(|d| d.parse::<Ipv4Net>().ok())
                .find(|d| pool.contains(&d.network()))
            {
                return Err(ApiError::bad_request(
                    code::ROUTE_DEST_IN_POOL,
                    format!(
                        "Ssl vpn client cidr contains vpc route prefix. The vpc route prefix is {dest}."
                    ),
                ));
            }
            if vpc.route_quota_left == 0 {
                return Err(ApiError::bad_request(
                    code::ADD_ROUTE_ERROR,
                    "Add route error whose destination is client IP pool, please check vpc route entry and relevant quota.",
                ));
            }
        }
    }
    let mfa_touched = changes.enable_multi_factor_auth == Some(true)
        || (target.enable_multi_factor_auth
            && (changes.idaas_instance_id.is_some()
                || changes.idaas_region_id.is_some()
                || changes.idaas_application_id.is_some()));
    if mfa_touched {
        multi_factor_auth(world, gw, target)?;
    }
    Ok(())
}

/// Two-factor authentication against the gateway and the IDaaS instances.
fn multi_factor_auth(
    world: &World,
    gw: &super::super::state::Gateway,
    target: &SslVpnServer,
) -> Result<(), ApiError> {
    if !gw.record.supports_multi_factor_auth {
        return Err(ApiError::bad_request(
            code::NOT_SUPPORT_MFA,
            "Current version of the VPN does not support multi-factor authentication.",
        ));
    }
    let instance = world
        .idaas
        .get(&target.idaas_instance_id)
        .filter(|i| i.region_id == target.idaas_region_id)
        .ok_or_else(|| {
            ApiError::not_found(
                code::IDAAS_INSTANCE_NOT_FOUND,
                "The specified IDaaS instance ID does not exist.",
            )
        })?;
    if !instance.vpn_authorized {
        return Err(ApiError::bad_request(
            code::IDAAS_NO_RAM_PERMISSION,
            "Vpn Service has no permission to operate your IDaaS instances.",
        ));
    }
    if !instance.reachable {
        return Err(ApiError::bad_request(
            code::IDAAS_GET_INFO_FAILED,
            "Failed to get secret key from your IDaaS instance.",
        ));
    }
    if instance.version == EIAM_2 {
        if !gw.record.supports_idaas2 {
            return Err(ApiError::bad_request(
                code::IDAAS2_NOT_SUPPORT,
                "Current version of the VPN does not support IDaaS2.0.",
            ));
        }
        let app = instance
            .applications
            .iter()
            .find(|a| a.application_id == target.idaas_application_id)
            .ok_or_else(|| {
                ApiError::not_found(
                    code::IDAAS_APPLICATION_NOT_FOUND,
                    "The specified IDaaS application Id does not exist.",
                )
            })?;
        if !app.ssl_vpn_template {
            return Err(ApiError::bad_request(
                code::IDAAS_APPLICATION_ILLEGAL,
                "The specified IDaaS application Id is not illegal, the application instance needs to be created based on the dedicated SSL VPN template.",
            ));
        }
    }
    Ok(())
}

/// The ModifySslVpnServer response: the server as it will be.
fn response(target: &SslVpnServer, request_id: &str) -> Value {
    let full = server_json(target);
    let mut out = serde_json::Map::new();
    out.insert("RequestId".into(), request_id.into());
    // The modify answer is the describe shape without the fields its model lacks.
    if let Value::Object(map) = full {
        for (k, v) in map {
            if !matches!(k.as_str(), "DnsServers" | "IDaaSRegionId") {
                out.insert(k, v);
            }
        }
    }
    Value::Object(out)
}

pub(super) fn modify(params: &Params, ctx: &mut Ctx<'_>) -> Result<Value, ApiError> {
    let region = region(params, ctx.world)?;
    let server_id = required(params, "SslVpnServerId")?;
    let modification = validate::modification(&input(params, region, server_id)?)
        .map_err(|v| violation(v.first().clone()))?;
    let changes = modification.changes;
    let dry_run = boolean(params, "DryRun")?.unwrap_or(false);

    let (current, gw) = ctx
        .world
        .server_and_gateway(server_id)
        .filter(|(s, _)| s.region_id == region)
        .ok_or_else(|| {
            ApiError::not_found(
                code::SERVER_NOT_FOUND,
                "The specified SSL-VPN server does not exist.",
            )
        })?;
    let (current, gateway_id) = (current.clone(), gw.record.vpn_gateway_id.clone());
    if !ctx.key.grants(&[server_id, &gateway_id]) {
        return Err(ApiError::forbidden("ModifySslVpnServer", server_id));
    }

    let token = modification.client_token;
    let fingerprint = params.fingerprint();
    if let Some(token) = &token {
        match ctx
            .ledger
            .lookup(&ctx.key.access_key_id, token, &fingerprint, ctx.now)
        {
            Lookup::New => {}
            Lookup::Replay(answer) => return Ok(answer),
            Lookup::Mismatch => {
                return Err(ApiError::bad_request(
                    code::IDEMPOTENT_MISMATCH,
                    "Request uses a client token in a previous request but is not identical to that request.",
                ));
            }
        }
    }

    if gw.is_financially_locked() {
        return Err(ApiError::bad_request(
            code::FINANCIAL_LOCKED,
            "The specified service is financial locked.",
        ));
    }
    if gw.task.is_some() || gw.record.status != "active" {
        return Err(ApiError::bad_request(
            code::CONFIGURING,
            "The specified service is configuring.",
        ));
    }
    if let Some(until) = gw.quiet_until.filter(|until| *until > ctx.now) {
        let wait = until.duration_since(ctx.now).as_millis();
        return Err(ApiError::throttled(
            "Request was denied due to user flow control.",
            u64::try_from(wait).unwrap_or(u64::MAX),
        ));
    }

    let mut target = apply(&current, &changes);
    cloud_rules(ctx.world, &current, &target, &changes)?;
    target.idaas_instance_version = ctx
        .world
        .idaas_version_of(target.enable_multi_factor_auth, &target.idaas_instance_id);
    if dry_run {
        return Err(ApiError::bad_request(
            code::DRY_RUN,
            "Request validation has been passed with DryRun flag set.",
        ));
    }

    let answer = response(&target, ctx.request_id);
    let timings = ctx.timings;
    let now = ctx.now;
    if changes.is_name_only() {
        ctx.world.servers.insert(server_id.to_owned(), target);
        if let Some(gw) = ctx.world.gateways.get_mut(&gateway_id) {
            gw.quiet_until = Some(now + timings.quiet_period);
        }
    } else {
        let starts_at = now + timings.accept_lag;
        let done_at = starts_at + timings.apply_time;
        if let Some(gw) = ctx.world.gateways.get_mut(&gateway_id) {
            gw.task = Some(Task {
                ssl_vpn_server_id: server_id.to_owned(),
                target,
                starts_at,
                done_at,
                quiet_until: done_at + timings.quiet_period,
            });
        }
        // A zero lag shows `updating` (or the result) at once.
        ctx.counters.modifications_completed += ctx.world.settle(now) as u64;
    }

    ctx.counters.modifications_accepted += 1;
    let effective_token = token.clone().unwrap_or_else(|| ctx.request_id.to_owned());
    Counters::bump(
        &mut ctx.counters.modifications_by_client_token,
        &effective_token,
    );
    if let Some(token) = token {
        ctx.ledger.remember(
            &ctx.key.access_key_id,
            &token,
            fingerprint,
            answer.clone(),
            now,
            timings.idempotency_window,
        );
    }
    Ok(answer)
}

//! ModifySslVpnServer: every rule of the API document, the ones only the
//! cloud can check, idempotency, and the start of the asynchronous change.
//!
//! Checks run in the order a caller would meet them at the cloud: the region
//! and server id are present; the values pass the document's rules
//! (`rules::modification`, the emulator's own, written from the document;
//! the first broken one is answered); the server exists in the region and
//! the key is granted it; a remembered ClientToken replays or mismatches; the gateway is not locked for payment, not busy
//! (`VpnGateway.Configuring`) and not in its quiet period (`Throttling.User`);
//! then the rules that need the cloud's state (`rules::against_the_cloud`:
//! client pool against the local subnets, against other SSL servers in the
//! VPC, against the gateway's connection count and the VPC's routes;
//! two-factor authentication against the gateway's version and the IDaaS
//! instances). A `DryRun` stops there.
//! A name-only change applies at once; anything else becomes a task.

use serde_json::Value;

use super::{
    super::{
        counters::Counters,
        errors::{ApiError, code},
        idempotency::Lookup,
        rules::{self, Changes},
        state::{SslVpnServer, Task},
        wire::Params,
    },
    Ctx, boolean,
    describe::server_json,
    region, required,
};

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
        s.local_subnet = v
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
    }
    if let Some(v) = changes.proto {
        s.proto = v;
    }
    if let Some(v) = changes.cipher {
        s.cipher = v;
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
    let modification = rules::modification(params, server_id)?;
    let changes = modification.changes;
    let dry_run = boolean(params, "DryRun")?.unwrap_or(false);

    let (current, gw) = ctx
        .world
        .server_and_gateway(server_id)
        .filter(|(s, _)| s.region_id == region)
        .ok_or_else(|| {
            ApiError::not_found(
                code::SERVER_NOT_FOUND,
                "The specified SSL VPN server id does not exist.",
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
    rules::against_the_cloud(ctx.world, &current, &target, &changes)?;
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

//! DescribeVpnGateway, DescribeVpnGateways and DescribeSslVpnServers: the
//! reads a caller polls while a change applies, in the SDK models' shapes.
//!
//! Lists are scoped to the region, filtered, restricted to what the calling
//! key is granted (a list call never answers `Forbidden`; it just shows less)
//! and paged. Single reads by id count as status polls.

use serde_json::{Value, json};

use super::{
    super::{
        counters::Counters,
        errors::{ApiError, code},
        state::{Gateway, SslVpnServer},
        wire::Params,
    },
    Ctx, Page, boolean, region, required,
};

/// One gateway as DescribeVpnGateway(s) reports it.
pub(super) fn gateway_json(gw: &Gateway, include_reservation: bool) -> Value {
    let r = &gw.record;
    let tags: Vec<Value> = r
        .tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    let mut out = json!({
        "VpnGatewayId": r.vpn_gateway_id,
        "VpcId": r.vpc_id,
        "VSwitchId": r.v_switch_id,
        "InternetIp": r.internet_ip,
        "CreateTime": r.create_time,
        "EndTime": r.end_time,
        "Spec": r.spec,
        "Name": r.name,
        "Description": r.description,
        "Status": r.status,
        "BusinessStatus": r.business_status,
        "ChargeType": r.charge_type,
        "IpsecVpn": r.ipsec_vpn,
        "SslVpn": r.ssl_vpn,
        "SslMaxConnections": r.ssl_max_connections,
        "Tag": gw.system_tag(),
        "EnableBgp": r.enable_bgp,
        "AutoPropagate": r.auto_propagate,
        "VpnType": r.vpn_type,
        "NetworkType": r.network_type,
        "GatewayType": r.gateway_type,
        "ResourceGroupId": r.resource_group_id,
        "Tags": {"Tag": tags},
        "EniInstanceIds": {"EniInstanceId": []},
    });
    // "returned only when the VPN gateway supports the dual-tunnel mode";
    // SslVpnInternetIp only for a public one with SSL-VPN enabled (the SDK).
    if gw.is_dual_tunnel()
        && let Some(map) = out.as_object_mut()
    {
        map.insert(
            "DisasterRecoveryVSwitchId".into(),
            r.disaster_recovery_v_switch_id.clone().into(),
        );
        map.insert(
            "DisasterRecoveryInternetIp".into(),
            r.disaster_recovery_internet_ip.clone().into(),
        );
        if r.network_type == "public" && r.ssl_vpn == "enable" && !r.ssl_vpn_internet_ip.is_empty()
        {
            map.insert(
                "SslVpnInternetIp".into(),
                r.ssl_vpn_internet_ip.clone().into(),
            );
        }
    }
    if include_reservation && let Some(map) = out.as_object_mut() {
        map.insert(
            "ReservationData".into(),
            json!({
                "ReservationEndTime": "",
                "ReservationIpsec": "",
                "ReservationMaxConnections": 0,
                "ReservationOrderType": "",
                "ReservationSpec": "",
                "ReservationSsl": "",
                "Status": "",
            }),
        );
    }
    out
}

/// One server as DescribeSslVpnServers reports it. `IDaaSInstanceVersion`
/// is "returned only if the SSL server is associated with an IDaaS EIAM 2.0
/// instance": absent otherwise, not empty.
pub(super) fn server_json(s: &SslVpnServer) -> Value {
    let mut out = json!({
        "SslVpnServerId": s.ssl_vpn_server_id,
        "VpnGatewayId": s.vpn_gateway_id,
        "RegionId": s.region_id,
        "Name": s.name,
        "LocalSubnet": s.local_subnet,
        "ClientIpPool": s.client_ip_pool,
        "Proto": s.proto.as_wire(),
        "Port": s.port,
        "Cipher": s.cipher.as_wire(),
        "Compress": s.compress,
        "Connections": s.connections,
        "MaxConnections": s.max_connections,
        "InternetIp": s.internet_ip,
        "CreateTime": s.create_time,
        "DnsServers": s.dns_servers,
        "EnableMultiFactorAuth": s.enable_multi_factor_auth,
        "IDaaSInstanceId": s.idaas_instance_id,
        "IDaaSApplicationId": s.idaas_application_id,
        "IDaaSRegionId": s.idaas_region_id,
        "ResourceGroupId": s.resource_group_id,
    });
    if !s.idaas_instance_version.is_empty()
        && let Some(map) = out.as_object_mut()
    {
        map.insert(
            "IDaaSInstanceVersion".into(),
            s.idaas_instance_version.clone().into(),
        );
    }
    out
}

fn with_request_id(mut body: Value, request_id: &str) -> Value {
    if let Some(map) = body.as_object_mut() {
        map.insert("RequestId".into(), request_id.into());
    }
    body
}

fn list(
    page: Page,
    total: usize,
    key: &str,
    item: &str,
    items: Vec<Value>,
    request_id: &str,
) -> Value {
    json!({
        "RequestId": request_id,
        "PageNumber": page.number,
        "PageSize": page.size,
        "TotalCount": total,
        key: { item: items },
    })
}

pub(super) fn vpn_gateway(params: &Params, ctx: &mut Ctx<'_>) -> Result<Value, ApiError> {
    let region = region(params, ctx.world)?;
    let id = required(params, "VpnGatewayId")?;
    let include = boolean(params, "IncludeReservationData")?.unwrap_or(false);
    let gw = ctx
        .world
        .gateways
        .get(id)
        .filter(|g| g.record.region_id == region)
        .ok_or_else(|| {
            ApiError::not_found(
                code::GATEWAY_NOT_FOUND,
                "The specified vpn gateway instance id does not exist.",
            )
        })?;
    if !ctx.key.grants(&[id]) {
        return Err(ApiError::forbidden("DescribeVpnGateway", id));
    }
    Counters::bump(&mut ctx.counters.gateway_polls, id);
    Ok(with_request_id(gateway_json(gw, include), ctx.request_id))
}

/// `Tag.N.Key` / `Tag.N.Value` pairs, N from 1 to 20.
fn tag_filters(params: &Params) -> Vec<(String, Option<String>)> {
    (1..=20)
        .filter_map(|n| {
            let key = params.non_empty(&format!("Tag.{n}.Key"))?;
            let value = params.get(&format!("Tag.{n}.Value")).map(str::to_owned);
            Some((key.to_owned(), value))
        })
        .collect()
}

pub(super) fn vpn_gateways(params: &Params, ctx: &mut Ctx<'_>) -> Result<Value, ApiError> {
    let region = region(params, ctx.world)?;
    let page = Page::from(params)?;
    let include = boolean(params, "IncludeReservationData")?.unwrap_or(false);
    let id = params.non_empty("VpnGatewayId");
    let filters = [
        ("VpcId", params.non_empty("VpcId")),
        ("Status", params.non_empty("Status")),
        ("BusinessStatus", params.non_empty("BusinessStatus")),
        ("GatewayType", params.non_empty("GatewayType")),
        ("ResourceGroupId", params.non_empty("ResourceGroupId")),
    ];
    let tags = tag_filters(params);
    let matching: Vec<&Gateway> = ctx
        .world
        .gateways
        .values()
        .filter(|g| {
            let r = &g.record;
            let field = |name: &str| match name {
                "VpcId" => &r.vpc_id,
                "Status" => &r.status,
                "BusinessStatus" => &r.business_status,
                "GatewayType" => &r.gateway_type,
                _ => &r.resource_group_id,
            };
            r.region_id == region
                && id.is_none_or(|id| r.vpn_gateway_id == id)
                && filters
                    .iter()
                    .all(|(name, want)| want.is_none_or(|w| field(name) == w))
                && tags.iter().all(|(k, v)| match (r.tags.get(k), v) {
                    (Some(have), Some(want)) => have == want,
                    (Some(_), None) => true,
                    (None, _) => false,
                })
                && ctx.key.grants(&[&r.vpn_gateway_id])
        })
        .collect();
    // Only real ids are counted: garbage must not grow the counters.
    if let Some(id) = id.filter(|id| ctx.world.gateways.contains_key(*id)) {
        Counters::bump(&mut ctx.counters.gateway_polls, id);
    }
    let items: Vec<Value> = page
        .slice(&matching)
        .into_iter()
        .map(|g| gateway_json(g, include))
        .collect();
    Ok(list(
        page,
        matching.len(),
        "VpnGateways",
        "VpnGateway",
        items,
        ctx.request_id,
    ))
}

pub(super) fn ssl_vpn_servers(params: &Params, ctx: &mut Ctx<'_>) -> Result<Value, ApiError> {
    let region = region(params, ctx.world)?;
    let page = Page::from(params)?;
    let id = params.non_empty("SslVpnServerId");
    let gateway = params.non_empty("VpnGatewayId");
    let name = params.non_empty("Name");
    let group = params.non_empty("ResourceGroupId");
    let matching: Vec<&SslVpnServer> = ctx
        .world
        .servers
        .values()
        .filter(|s| {
            s.region_id == region
                && id.is_none_or(|id| s.ssl_vpn_server_id == id)
                && gateway.is_none_or(|g| s.vpn_gateway_id == g)
                && name.is_none_or(|n| s.name == n)
                && group.is_none_or(|g| s.resource_group_id == g)
                && ctx.key.grants(&[&s.ssl_vpn_server_id, &s.vpn_gateway_id])
        })
        .collect();
    let known =
        |p: &&str| ctx.world.servers.contains_key(*p) || ctx.world.gateways.contains_key(*p);
    if let Some(polled) = id.or(gateway).filter(known) {
        Counters::bump(&mut ctx.counters.server_polls, polled);
    }
    let items: Vec<Value> = page.slice(&matching).into_iter().map(server_json).collect();
    Ok(list(
        page,
        matching.len(),
        "SslVpnServers",
        "SslVpnServer",
        items,
        ctx.request_id,
    ))
}

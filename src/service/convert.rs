//! Protobuf ⇄ domain conversions, in one place so handlers stay about flow.
//!
//! Requests go to `validate::ModifyInput` (typed, unchecked); domain values
//! come back as `pb` messages. Nothing here decides anything.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{
    domain::{self, Cipher, GatewayStatus, Protocol},
    modify::Accepted,
    pb,
    service::{gate::ModifyRequested, wire},
    validate::{Choice, ModifyInput},
    watch::{phase::Phase, stream::WatchEvent},
};

/// A modify request in the cloud's terms, ready for `validate::modification`.
pub fn modify_input(req: &pb::ModifySslVpnServerRequest) -> ModifyInput<'_> {
    ModifyInput {
        region_id: &req.region_id,
        ssl_vpn_server_id: &req.ssl_vpn_server_id,
        client_token: &req.client_token,
        name: req.name.as_deref(),
        client_ip_pool: req.client_ip_pool.as_deref(),
        local_subnet: req.local_subnet.as_deref(),
        proto: match pb::Protocol::try_from(req.proto) {
            Ok(pb::Protocol::Unspecified) => None,
            Ok(pb::Protocol::Tcp) => Some(Choice::Known(Protocol::Tcp)),
            Ok(pb::Protocol::Udp) => Some(Choice::Known(Protocol::Udp)),
            Err(_) => Some(Choice::Unknown(req.proto)),
        },
        cipher: match pb::Cipher::try_from(req.cipher) {
            Ok(pb::Cipher::Unspecified) => None,
            Ok(pb::Cipher::Aes128Cbc) => Some(Choice::Known(Cipher::Aes128Cbc)),
            Ok(pb::Cipher::Aes192Cbc) => Some(Choice::Known(Cipher::Aes192Cbc)),
            Ok(pb::Cipher::Aes256Cbc) => Some(Choice::Known(Cipher::Aes256Cbc)),
            Ok(pb::Cipher::None) => Some(Choice::Known(Cipher::None)),
            Err(_) => Some(Choice::Unknown(req.cipher)),
        },
        port: req.port.map(i64::from),
        compress: req.compress,
        enable_multi_factor_auth: req.enable_multi_factor_auth,
        idaas_instance_id: req.idaas_instance_id.as_deref(),
        idaas_region_id: req.idaas_region_id.as_deref(),
        idaas_application_id: req.idaas_application_id.as_deref(),
    }
}

/// What a modify asked for, raw, for the audit record: each field set, with
/// enums by their contract names (`INVALID` for a number the contract does
/// not define).
pub fn modify_requested(req: &pb::ModifySslVpnServerRequest) -> ModifyRequested<'_> {
    let mut fields: Vec<(&'static str, serde_json::Value)> = Vec::new();
    let text = |fields: &mut Vec<_>, name: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            fields.push((name, serde_json::Value::from(v.as_str())));
        }
    };
    text(&mut fields, "name", &req.name);
    text(&mut fields, "client_ip_pool", &req.client_ip_pool);
    text(&mut fields, "local_subnet", &req.local_subnet);
    if req.proto != 0 {
        let name = pb::Protocol::try_from(req.proto).map_or("INVALID", |p| p.as_str_name());
        fields.push(("proto", name.into()));
    }
    if req.cipher != 0 {
        let name = pb::Cipher::try_from(req.cipher).map_or("INVALID", |c| c.as_str_name());
        fields.push(("cipher", name.into()));
    }
    if let Some(port) = req.port {
        fields.push(("port", port.into()));
    }
    if let Some(v) = req.compress {
        fields.push(("compress", v.into()));
    }
    if let Some(v) = req.enable_multi_factor_auth {
        fields.push(("enable_multi_factor_auth", v.into()));
    }
    text(&mut fields, "idaas_instance_id", &req.idaas_instance_id);
    text(&mut fields, "idaas_region_id", &req.idaas_region_id);
    text(
        &mut fields,
        "idaas_application_id",
        &req.idaas_application_id,
    );
    if req.validate_only {
        fields.push(("validate_only", true.into()));
    }
    ModifyRequested {
        region_id: &req.region_id,
        ssl_vpn_server_id: &req.ssl_vpn_server_id,
        client_token: &req.client_token,
        fields,
    }
}

pub fn protocol(p: Option<Protocol>) -> pb::Protocol {
    match p {
        Some(Protocol::Tcp) => pb::Protocol::Tcp,
        Some(Protocol::Udp) => pb::Protocol::Udp,
        None => pb::Protocol::Unspecified,
    }
}

pub fn cipher(c: Option<Cipher>) -> pb::Cipher {
    match c {
        Some(Cipher::Aes128Cbc) => pb::Cipher::Aes128Cbc,
        Some(Cipher::Aes192Cbc) => pb::Cipher::Aes192Cbc,
        Some(Cipher::Aes256Cbc) => pb::Cipher::Aes256Cbc,
        Some(Cipher::None) => pb::Cipher::None,
        None => pb::Cipher::Unspecified,
    }
}

pub fn gateway_status(s: GatewayStatus) -> pb::GatewayStatus {
    match s {
        GatewayStatus::Init => pb::GatewayStatus::Init,
        GatewayStatus::Provisioning => pb::GatewayStatus::Provisioning,
        GatewayStatus::Active => pb::GatewayStatus::Active,
        GatewayStatus::Updating => pb::GatewayStatus::Updating,
        GatewayStatus::Deleting => pb::GatewayStatus::Deleting,
        GatewayStatus::Unknown => pb::GatewayStatus::Unspecified,
    }
}

pub fn timestamp_from_millis(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        // In 0..1000 ms, so the product fits an i32.
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

pub fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    }
}

pub fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// A protobuf duration as a std one; `None` for unset, zero or negative.
pub fn std_duration(d: Option<&prost_types::Duration>) -> Option<Duration> {
    let d = d?;
    let secs = u64::try_from(d.seconds).ok()?;
    let nanos = u32::try_from(d.nanos).ok()?;
    Some(Duration::new(secs, nanos)).filter(|d| !d.is_zero())
}

pub fn ssl_vpn_server(s: &domain::SslVpnServer) -> pb::SslVpnServer {
    pb::SslVpnServer {
        ssl_vpn_server_id: s.ssl_vpn_server_id.clone(),
        vpn_gateway_id: s.vpn_gateway_id.clone(),
        region_id: s.region_id.clone(),
        name: s.name.clone(),
        local_subnet: s.local_subnet.clone(),
        client_ip_pool: s.client_ip_pool.clone(),
        proto: protocol(s.proto) as i32,
        port: u32::from(s.port),
        cipher: cipher(s.cipher) as i32,
        compress: s.compress,
        connections: s.connections,
        max_connections: s.max_connections,
        internet_ip: s.internet_ip.clone(),
        create_time: Some(timestamp_from_millis(s.create_time)),
        enable_multi_factor_auth: s.enable_multi_factor_auth,
        idaas_instance_id: s.idaas_instance_id.clone(),
        idaas_application_id: s.idaas_application_id.clone(),
        idaas_region_id: s.idaas_region_id.clone(),
        idaas_instance_version: s.idaas_instance_version.clone(),
        resource_group_id: s.resource_group_id.clone(),
        dns_servers: s.dns_servers.clone(),
    }
}

/// The answer to a modify; a dry run's has `validate_only` and no operation.
pub fn modify_response(a: &Accepted) -> pb::ModifySslVpnServerResponse {
    pb::ModifySslVpnServerResponse {
        ssl_vpn_server: Some(ssl_vpn_server(&a.server)),
        request_id: a.request_id.clone(),
        client_token: a.client_token.clone(),
        operation: (!a.dry_run).then(|| pb::Operation {
            id: a.operation.encode(),
            done: a.done,
            vpn_gateway_id: a.operation.vpn_gateway_id.clone(),
        }),
        validate_only: a.dry_run,
    }
}

/// One watcher's message. The gateway's state and the server are shared by
/// every watcher of the same observation: converted and encoded by the
/// first, handed to the rest as the same bytes.
pub fn watch_message(e: &WatchEvent) -> wire::WatchSslVpnServerResponse {
    wire::WatchSslVpnServerResponse {
        gateway: None,
        phase: phase(e.phase) as i32,
        ssl_vpn_server: None,
        error: e.error.as_ref().map(super::status::rpc_status),
        elapsed: Some(duration(e.elapsed)),
        pending_fields: e
            .pending
            .iter()
            .map(|f| f.proto_name().to_owned())
            .collect(),
        shared: wire::SharedParts {
            gateway: e.gateway.as_ref().map(|g| {
                g.encoded(|g| {
                    wire::SharedParts::encode_gateway(&pb::GatewayState {
                        vpn_gateway_id: g.vpn_gateway_id.clone(),
                        status: gateway_status(g.status) as i32,
                        business_status: g.business_status.clone(),
                        observed_at: Some(timestamp(g.observed_at)),
                    })
                })
            }),
            ssl_vpn_server: e.server.as_ref().map(|s| {
                s.encoded(|s| wire::SharedParts::encode_ssl_vpn_server(&ssl_vpn_server(s)))
            }),
        },
    }
}

pub fn phase(p: Phase) -> pb::Phase {
    match p {
        Phase::Pending => pb::Phase::Pending,
        Phase::Applying => pb::Phase::Applying,
        Phase::Succeeded => pb::Phase::Succeeded,
        Phase::Failed => pb::Phase::Failed,
        Phase::TimedOut => pb::Phase::TimedOut,
    }
}

pub fn gateway_state(g: &domain::VpnGateway, observed_at: SystemTime) -> pb::GatewayState {
    pb::GatewayState {
        vpn_gateway_id: g.vpn_gateway_id.clone(),
        status: gateway_status(g.status()) as i32,
        business_status: g.business_status.clone(),
        observed_at: Some(timestamp(observed_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_enum_numbers_reach_validation() {
        let req = pb::ModifySslVpnServerRequest {
            proto: 9,
            cipher: pb::Cipher::None as i32,
            ..Default::default()
        };
        let input = modify_input(&req);
        assert_eq!(input.proto, Some(Choice::Unknown(9)));
        assert_eq!(input.cipher, Some(Choice::Known(Cipher::None)));
    }

    #[test]
    fn only_the_fields_set_are_requested_with_their_values_as_given() {
        let req = pb::ModifySslVpnServerRequest {
            region_id: "cn-hangzhou".into(),
            ssl_vpn_server_id: "vss-1".into(),
            port: Some(1195),
            local_subnet: Some("10.0.0.0/24".into()),
            proto: pb::Protocol::Udp as i32,
            cipher: 42,
            compress: Some(false),
            ..Default::default()
        };
        let requested = modify_requested(&req);
        let names: Vec<_> = requested.fields.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            ["local_subnet", "proto", "cipher", "port", "compress"]
        );
        assert_eq!(requested.fields[1].1, "PROTOCOL_UDP");
        assert_eq!(requested.fields[2].1, "INVALID");
        assert_eq!(requested.fields[3].1, 1195);
        assert!(
            modify_requested(&pb::ModifySslVpnServerRequest::default())
                .fields
                .is_empty()
        );
    }

    #[test]
    fn millis_become_timestamps_even_before_1970() {
        let t = timestamp_from_millis(1_492_753_580_123);
        assert_eq!((t.seconds, t.nanos), (1_492_753_580, 123_000_000));
        let t = timestamp_from_millis(-1);
        assert_eq!((t.seconds, t.nanos), (-1, 999_000_000));
    }

    #[test]
    fn zero_and_negative_durations_mean_unset() {
        assert_eq!(std_duration(None), None);
        assert_eq!(std_duration(Some(&duration(Duration::ZERO))), None);
        let negative = prost_types::Duration {
            seconds: -5,
            nanos: 0,
        };
        assert_eq!(std_duration(Some(&negative)), None);
        assert_eq!(
            std_duration(Some(&duration(Duration::from_millis(1500)))),
            Some(Duration::from_millis(1500))
        );
    }
}

//! The SSL-VPN vocabulary every layer shares: what a server and a gateway
//! are, and what a modification changes.
//!
//! These types know neither gRPC nor HTTP. The service converts protobuf
//! messages into them (through `validate`), the cloud client turns them into
//! API parameters and back, and the emulator keeps its state in them, so the
//! cloud's spelling of each value lives here once.

use std::fmt;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// A region id that passed `validate::region_id`: safe to put into a host name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RegionId(String);

impl RegionId {
    /// Wraps an id already checked by `validate::region_id`.
    pub(crate) fn new_unchecked(id: String) -> Self {
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The tunnel protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The cloud's spelling.
    pub fn as_api(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }

    /// Parses the cloud's spelling (exact, as the cloud documents it).
    pub fn from_api(s: &str) -> Option<Self> {
        match s {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            _ => None,
        }
    }
}

/// The encryption algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Cipher {
    Aes128Cbc,
    Aes192Cbc,
    Aes256Cbc,
    None,
}

impl Cipher {
    /// The cloud's spelling.
    pub fn as_api(self) -> &'static str {
        match self {
            Cipher::Aes128Cbc => "AES-128-CBC",
            Cipher::Aes192Cbc => "AES-192-CBC",
            Cipher::Aes256Cbc => "AES-256-CBC",
            Cipher::None => "none",
        }
    }

    /// Parses the cloud's spelling (exact, as the cloud documents it).
    pub fn from_api(s: &str) -> Option<Self> {
        match s {
            "AES-128-CBC" => Some(Cipher::Aes128Cbc),
            "AES-192-CBC" => Some(Cipher::Aes192Cbc),
            "AES-256-CBC" => Some(Cipher::Aes256Cbc),
            "none" => Some(Cipher::None),
            _ => None,
        }
    }
}

/// A VPN gateway's `Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GatewayStatus {
    Init,
    Provisioning,
    Active,
    Updating,
    Deleting,
    /// A value this version does not know; treated as "busy".
    Unknown,
}

impl GatewayStatus {
    pub fn as_api(self) -> &'static str {
        match self {
            GatewayStatus::Init => "init",
            GatewayStatus::Provisioning => "provisioning",
            GatewayStatus::Active => "active",
            GatewayStatus::Updating => "updating",
            GatewayStatus::Deleting => "deleting",
            GatewayStatus::Unknown => "unknown",
        }
    }

    pub fn from_api(s: &str) -> Self {
        match s {
            "init" => GatewayStatus::Init,
            "provisioning" => GatewayStatus::Provisioning,
            "active" => GatewayStatus::Active,
            "updating" => GatewayStatus::Updating,
            "deleting" => GatewayStatus::Deleting,
            _ => GatewayStatus::Unknown,
        }
    }
}

/// The cloud's `BusinessStatus` value of a locked account.
pub const BUSINESS_STATUS_FINANCIAL_LOCKED: &str = "FinancialLocked";

/// A request field: its proto field name and the cloud's parameter name.
/// Violations name the proto field; the cloud and the emulator speak the
/// parameter name; this table is the one place they meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// The request as a whole (e.g. it changes nothing); its names are empty.
    Request,
    RegionId,
    SslVpnServerId,
    ClientToken,
    Name,
    ClientIpPool,
    LocalSubnet,
    Proto,
    Cipher,
    Port,
    Compress,
    EnableMultiFactorAuth,
    IdaasInstanceId,
    IdaasRegionId,
    IdaasApplicationId,
    /// `WatchSslVpnServerRequest.operation_id`; the cloud has no such parameter.
    OperationId,
}

impl Field {
    /// The field's name in `sslvpn.v1.ModifySslVpnServerRequest`.
    pub fn proto_name(self) -> &'static str {
        match self {
            Field::Request => "",
            Field::RegionId => "region_id",
            Field::SslVpnServerId => "ssl_vpn_server_id",
            Field::ClientToken => "client_token",
            Field::Name => "name",
            Field::ClientIpPool => "client_ip_pool",
            Field::LocalSubnet => "local_subnet",
            Field::Proto => "proto",
            Field::Cipher => "cipher",
            Field::Port => "port",
            Field::Compress => "compress",
            Field::EnableMultiFactorAuth => "enable_multi_factor_auth",
            Field::IdaasInstanceId => "idaas_instance_id",
            Field::IdaasRegionId => "idaas_region_id",
            Field::IdaasApplicationId => "idaas_application_id",
            Field::OperationId => "operation_id",
        }
    }

    /// The cloud's parameter name in ModifySslVpnServer.
    pub fn api_name(self) -> &'static str {
        match self {
            Field::Request => "",
            Field::RegionId => "RegionId",
            Field::SslVpnServerId => "SslVpnServerId",
            Field::ClientToken => "ClientToken",
            Field::Name => "Name",
            Field::ClientIpPool => "ClientIpPool",
            Field::LocalSubnet => "LocalSubnet",
            Field::Proto => "Proto",
            Field::Cipher => "Cipher",
            Field::Port => "Port",
            Field::Compress => "Compress",
            Field::EnableMultiFactorAuth => "EnableMultiFactorAuth",
            Field::IdaasInstanceId => "IDaaSInstanceId",
            Field::IdaasRegionId => "IDaaSRegionId",
            Field::IdaasApplicationId => "IDaaSApplicationId",
            Field::OperationId => "",
        }
    }
}

/// What a modification changes: `None` leaves a field as it is. Values are
/// already validated and in canonical form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip_pool: Option<Ipv4Net>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_subnet: Option<Vec<Ipv4Net>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<Protocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<Cipher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_multi_factor_auth: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idaas_instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idaas_region_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idaas_application_id: Option<String>,
}

/// Formats a local-subnet list the way the cloud stores it.
pub fn format_subnets(subnets: &[Ipv4Net]) -> String {
    subnets
        .iter()
        .map(Ipv4Net::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl Changes {
    /// The ModifySslVpnServer parameters for the fields that are set, in the
    /// cloud's names and spelling (booleans as lowercase `true`/`false`).
    pub fn to_api_params(&self) -> Vec<(&'static str, String)> {
        let mut params = Vec::new();
        let mut push = |field: Field, value: Option<String>| {
            if let Some(value) = value {
                params.push((field.api_name(), value));
            }
        };
        push(Field::Name, self.name.clone());
        push(
            Field::ClientIpPool,
            self.client_ip_pool.map(|n| n.to_string()),
        );
        push(
            Field::LocalSubnet,
            self.local_subnet.as_deref().map(format_subnets),
        );
        push(Field::Proto, self.proto.map(|p| p.as_api().to_owned()));
        push(Field::Cipher, self.cipher.map(|c| c.as_api().to_owned()));
        push(Field::Port, self.port.map(|p| p.to_string()));
        push(Field::Compress, self.compress.map(|b| b.to_string()));
        push(
            Field::EnableMultiFactorAuth,
            self.enable_multi_factor_auth.map(|b| b.to_string()),
        );
        push(Field::IdaasInstanceId, self.idaas_instance_id.clone());
        push(Field::IdaasRegionId, self.idaas_region_id.clone());
        push(Field::IdaasApplicationId, self.idaas_application_id.clone());
        params
    }

    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self == &Changes::default()
    }

    /// True when only the name changes: the cloud applies that synchronously.
    pub fn is_name_only(&self) -> bool {
        self.name.is_some()
            && Changes {
                name: None,
                ..self.clone()
            }
            .is_empty()
    }

    /// The fields whose requested value differs from `server`'s: what is
    /// still pending. Empty means every requested value already holds.
    pub fn pending_against(&self, server: &SslVpnServer) -> Vec<Field> {
        let mut pending = Vec::new();
        let mut check = |field: Field, holds: Option<bool>| {
            if holds == Some(false) {
                pending.push(field);
            }
        };
        check(Field::Name, self.name.as_ref().map(|n| *n == server.name));
        check(
            Field::ClientIpPool,
            self.client_ip_pool
                .map(|p| server.client_ip_pool.parse::<Ipv4Net>().ok() == Some(p)),
        );
        check(
            Field::LocalSubnet,
            self.local_subnet
                .as_ref()
                .map(|wanted| same_subnets(wanted, &server.local_subnet)),
        );
        check(Field::Proto, self.proto.map(|p| Some(p) == server.proto));
        check(Field::Cipher, self.cipher.map(|c| Some(c) == server.cipher));
        check(Field::Port, self.port.map(|p| p == server.port));
        check(Field::Compress, self.compress.map(|c| c == server.compress));
        check(
            Field::EnableMultiFactorAuth,
            self.enable_multi_factor_auth
                .map(|m| m == server.enable_multi_factor_auth),
        );
        check(
            Field::IdaasInstanceId,
            self.idaas_instance_id
                .as_ref()
                .map(|v| *v == server.idaas_instance_id),
        );
        check(
            Field::IdaasRegionId,
            self.idaas_region_id
                .as_ref()
                .map(|v| *v == server.idaas_region_id),
        );
        check(
            Field::IdaasApplicationId,
            self.idaas_application_id
                .as_ref()
                .map(|v| *v == server.idaas_application_id),
        );
        pending
    }
}

/// Compares a requested subnet list with the cloud's comma-separated string,
/// ignoring order and spacing (the cloud may normalise either).
fn same_subnets(wanted: &[Ipv4Net], observed: &str) -> bool {
    let mut observed: Vec<Ipv4Net> = match observed
        .split(',')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect()
    {
        Ok(list) => list,
        Err(_) => return false,
    };
    let mut wanted = wanted.to_vec();
    wanted.sort();
    wanted.dedup();
    observed.sort();
    observed.dedup();
    wanted == observed
}

/// A validated ModifySslVpnServer request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Modification {
    pub region_id: RegionId,
    pub ssl_vpn_server_id: String,
    /// The caller's idempotency token, if it gave one.
    pub client_token: Option<String>,
    pub changes: Changes,
    /// Check everything, the cloud's checks included, and change nothing.
    pub dry_run: bool,
}

/// An SSL-VPN server as the cloud reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SslVpnServer {
    pub ssl_vpn_server_id: String,
    pub vpn_gateway_id: String,
    pub region_id: String,
    pub name: String,
    /// Comma-separated CIDRs, as the cloud stores them.
    pub local_subnet: String,
    pub client_ip_pool: String,
    /// `None` when the cloud reports a protocol this version does not know.
    pub proto: Option<Protocol>,
    pub port: u16,
    /// `None` when the cloud reports a cipher this version does not know.
    pub cipher: Option<Cipher>,
    pub compress: bool,
    pub connections: i32,
    pub max_connections: i32,
    /// The SSL-VPN address (see [`SslVpnServer::on_gateway`]).
    pub internet_ip: String,
    /// Unix milliseconds.
    pub create_time: i64,
    /// The DNS servers the clients get, as the cloud reports them.
    #[serde(default)]
    pub dns_servers: String,
    pub enable_multi_factor_auth: bool,
    pub idaas_instance_id: String,
    pub idaas_application_id: String,
    pub idaas_region_id: String,
    pub idaas_instance_version: String,
    pub resource_group_id: String,
}

/// A VPN gateway as the cloud reports it (the fields this service uses).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpnGateway {
    pub vpn_gateway_id: String,
    pub vpc_id: String,
    pub name: String,
    pub status: String,
    pub business_status: String,
    pub ssl_max_connections: i32,
    /// `enable` or `disable`.
    pub ssl_vpn: String,
    /// The cloud's system tags, a JSON-encoded string (e.g. `IDaaSNewVersion`,
    /// `VpnVersion`).
    pub tag: String,
    /// The gateway's address; on a dual-tunnel gateway the first IPsec
    /// tunnel's, which is no SSL-VPN address.
    pub internet_ip: String,
    /// A public dual-tunnel gateway's SSL-VPN address; empty otherwise.
    #[serde(default)]
    pub ssl_vpn_internet_ip: String,
    pub spec: String,
    /// Unix milliseconds.
    pub create_time: i64,
    /// Unix milliseconds.
    pub end_time: i64,
}

impl SslVpnServer {
    /// The server as seen with its gateway: on a dual-tunnel gateway the
    /// SSL-VPN address is the gateway's `SslVpnInternetIp` (its `InternetIp`
    /// "cannot be used to create an SSL-VPN connection", DescribeVpnGateway's
    /// reference says), whatever the server's own answer named.
    pub fn on_gateway(mut self, gateway: &VpnGateway) -> Self {
        if gateway.vpn_gateway_id == self.vpn_gateway_id && !gateway.ssl_vpn_internet_ip.is_empty()
        {
            self.internet_ip.clone_from(&gateway.ssl_vpn_internet_ip);
        }
        self
    }
}

impl VpnGateway {
    pub fn status(&self) -> GatewayStatus {
        GatewayStatus::from_api(&self.status)
    }

    pub fn is_financially_locked(&self) -> bool {
        self.business_status == BUSINESS_STATUS_FINANCIAL_LOCKED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_params_contain_only_set_fields_with_lowercase_booleans() {
        let changes = Changes {
            port: Some(1194),
            compress: Some(false),
            local_subnet: Some(vec![
                "10.0.0.0/24".parse().unwrap(),
                "10.1.0.0/16".parse().unwrap(),
            ]),
            ..Changes::default()
        };
        assert_eq!(
            changes.to_api_params(),
            vec![
                ("LocalSubnet", "10.0.0.0/24,10.1.0.0/16".to_owned()),
                ("Port", "1194".to_owned()),
                ("Compress", "false".to_owned()),
            ]
        );
    }

    #[test]
    fn name_only_is_detected() {
        let mut changes = Changes {
            name: Some("a".into()),
            ..Changes::default()
        };
        assert!(changes.is_name_only());
        changes.port = Some(1195);
        assert!(!changes.is_name_only());
        assert!(!Changes::default().is_name_only());
    }

    #[test]
    fn a_dual_tunnel_gateway_gives_its_server_the_ssl_vpn_address() {
        let server = SslVpnServer {
            vpn_gateway_id: "vpn-1".into(),
            internet_ip: "47.0.0.1".into(),
            ..SslVpnServer::default()
        };
        let single = VpnGateway {
            vpn_gateway_id: "vpn-1".into(),
            internet_ip: "47.0.0.1".into(),
            ..VpnGateway::default()
        };
        assert_eq!(server.clone().on_gateway(&single).internet_ip, "47.0.0.1");
        let dual = VpnGateway {
            ssl_vpn_internet_ip: "47.0.0.3".into(),
            ..single
        };
        assert_eq!(server.clone().on_gateway(&dual).internet_ip, "47.0.0.3");
        let other = VpnGateway {
            vpn_gateway_id: "vpn-2".into(),
            ..dual
        };
        assert_eq!(server.on_gateway(&other).internet_ip, "47.0.0.1");
    }

    #[test]
    fn pending_compares_subnets_as_sets() {
        let server = SslVpnServer {
            local_subnet: "10.1.0.0/16, 10.0.0.0/24".into(),
            port: 1194,
            ..SslVpnServer::default()
        };
        let changes = Changes {
            local_subnet: Some(vec![
                "10.0.0.0/24".parse().unwrap(),
                "10.1.0.0/16".parse().unwrap(),
            ]),
            port: Some(1195),
            ..Changes::default()
        };
        assert_eq!(changes.pending_against(&server), vec![Field::Port]);
    }
}

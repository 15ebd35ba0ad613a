//! The emulated cloud's contents: the documented default set and the JSON
//! format that loads others.
//!
//! A fixture document lists access keys, regions, VPCs, VPN gateways, SSL-VPN
//! servers and IDaaS instances. Values use the cloud's spellings (`UDP`,
//! `AES-128-CBC`, `active`, `FinancialLocked`); field names are snake_case;
//! almost everything has a default, so a test fixture stays short. The same
//! format comes back from the admin API's `GET /_emulator/fixtures`, so a
//! changed world can be saved and reloaded. `docs/emulator.md` documents the
//! default set; `World::load` checks that every reference resolves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET};

/// A whole emulated cloud.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    /// Keys the emulator accepts; when empty, the documented demo keys.
    #[serde(default)]
    pub access_keys: Vec<AccessKey>,
    /// Regions that exist; regions named by VPCs are added implicitly.
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub vpcs: Vec<Vpc>,
    #[serde(default)]
    pub vpn_gateways: Vec<VpnGateway>,
    #[serde(default)]
    pub ssl_vpn_servers: Vec<SslVpnServer>,
    #[serde(default)]
    pub idaas_instances: Vec<IdaasInstance>,
}

/// An access key pair (permanent, or temporary with an STS token).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    pub access_key_id: String,
    pub access_key_secret: String,
    /// Set for STS credentials: requests must carry exactly this token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_token: Option<String>,
    /// A disabled key gets `InvalidAccessKeyId.Inactive`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Resource ids the key may use (a gateway id grants its SSL server
    /// too); `*` grants everything. Others get 403 `Forbidden`.
    #[serde(default = "everything")]
    pub resources: Vec<String>,
    /// The main account that owns the key (a RAM user's or role's keys
    /// belong to their main account): keys of one account share its API
    /// quotas. Default [`DEFAULT_ACCOUNT_ID`].
    #[serde(default = "default_account")]
    pub account_id: String,
}

impl AccessKey {
    pub fn new(id: &str, secret: &str) -> Self {
        Self {
            access_key_id: id.to_owned(),
            access_key_secret: secret.to_owned(),
            security_token: None,
            enabled: true,
            resources: everything(),
            account_id: default_account(),
        }
    }

    /// Whether this key may act on any of `ids` (a server and its gateway).
    pub fn grants(&self, ids: &[&str]) -> bool {
        self.resources
            .iter()
            .any(|r| r == "*" || ids.contains(&r.as_str()))
    }
}

// Secrets never reach a log through Debug.
impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .field("enabled", &self.enabled)
            .field("resources", &self.resources)
            .field("account_id", &self.account_id)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vpc {
    pub vpc_id: String,
    pub region_id: String,
    #[serde(default = "default_vpc_cidr")]
    pub cidr_block: String,
    /// Custom route destinations in the VPC's route table: a client pool
    /// containing one gets `EnableHaCheck.SslVpnServerClientCidrContainsVpcRouteDest`.
    #[serde(default)]
    pub route_destinations: Vec<String>,
    /// Room left in the route table: 0 makes any client-pool change fail
    /// with `SslVpnServer.AddRouteError`.
    #[serde(default = "default_route_quota")]
    pub route_quota_left: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpnGateway {
    pub vpn_gateway_id: String,
    pub region_id: String,
    pub vpc_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `init`, `provisioning`, `active`, `updating` or `deleting`. A gateway
    /// loaded as `updating` stays so (it has no task to finish).
    #[serde(default = "active")]
    pub status: String,
    /// `Normal` or `FinancialLocked`.
    #[serde(default = "normal")]
    pub business_status: String,
    #[serde(default = "default_max_connections")]
    pub ssl_max_connections: i32,
    #[serde(default = "enable")]
    pub ssl_vpn: String,
    #[serde(default = "enable")]
    pub ipsec_vpn: String,
    /// Whether the gateway's version supports two-factor authentication.
    #[serde(default = "yes")]
    pub supports_multi_factor_auth: bool,
    /// Whether it supports IDaaS EIAM 2.0 instances.
    #[serde(default = "yes")]
    pub supports_idaas2: bool,
    /// The gateway's `InternetIp`: its address, or on a dual-tunnel gateway
    /// the first IPsec tunnel's (then no SSL-VPN address).
    #[serde(default)]
    pub internet_ip: String,
    #[serde(default)]
    pub v_switch_id: String,
    /// A dual-tunnel gateway's second vSwitch (`DisasterRecoveryVSwitchId`):
    /// set, the gateway is dual-tunnel and reports the two fields below.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub disaster_recovery_v_switch_id: String,
    /// A dual-tunnel gateway's second IPsec address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub disaster_recovery_internet_ip: String,
    /// A public dual-tunnel gateway's SSL-VPN address (`SslVpnInternetIp`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ssl_vpn_internet_ip: String,
    /// The `VpnVersion` label of the gateway's system `Tag`.
    #[serde(default = "default_vpn_version")]
    pub vpn_version: String,
    #[serde(default = "default_spec")]
    pub spec: String,
    #[serde(default = "postpay")]
    pub charge_type: String,
    #[serde(default = "public")]
    pub network_type: String,
    #[serde(default = "traditional")]
    pub gateway_type: String,
    #[serde(default = "normal")]
    pub vpn_type: String,
    #[serde(default)]
    pub enable_bgp: bool,
    #[serde(default = "yes")]
    pub auto_propagate: bool,
    #[serde(default)]
    pub resource_group_id: String,
    /// User tags, for the `Tag.N.Key/Value` filter of DescribeVpnGateways.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Unix milliseconds.
    #[serde(default = "default_create_time")]
    pub create_time: i64,
    #[serde(default = "default_end_time")]
    pub end_time: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SslVpnServer {
    pub ssl_vpn_server_id: String,
    pub vpn_gateway_id: String,
    #[serde(default)]
    pub name: String,
    /// Comma-separated CIDRs.
    pub local_subnet: String,
    pub client_ip_pool: String,
    #[serde(default = "udp")]
    pub proto: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default = "aes128")]
    pub cipher: String,
    #[serde(default = "yes")]
    pub compress: bool,
    #[serde(default)]
    pub connections: i32,
    /// `DnsServers`, as DescribeSslVpnServers reports them (read-only here).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dns_servers: String,
    #[serde(default)]
    pub enable_multi_factor_auth: bool,
    #[serde(default)]
    pub idaas_instance_id: String,
    #[serde(default)]
    pub idaas_application_id: String,
    #[serde(default)]
    pub idaas_region_id: String,
    #[serde(default)]
    pub resource_group_id: String,
    #[serde(default = "default_create_time")]
    pub create_time: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdaasInstance {
    pub instance_id: String,
    pub region_id: String,
    /// `EIAM 2.0` or `EIAM 1.0` (1.0 instances need no application).
    #[serde(default = "eiam2")]
    pub version: String,
    /// false: the VPN service cannot read its keys (`OperationFailed.GetIDaaSInfo`).
    #[serde(default = "yes")]
    pub reachable: bool,
    /// false: the VPN service lacks the RAM grant (`OperationFailed.NoRamPermission`).
    #[serde(default = "yes")]
    pub vpn_authorized: bool,
    #[serde(default)]
    pub applications: Vec<IdaasApplication>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdaasApplication {
    pub application_id: String,
    /// false: not created from the SSL-VPN template (`IllegalParam.IDaaSApplicationId`).
    #[serde(default = "yes")]
    pub ssl_vpn_template: bool,
}

pub const EIAM_2: &str = "EIAM 2.0";

fn yes() -> bool {
    true
}
fn everything() -> Vec<String> {
    vec!["*".to_owned()]
}
fn default_account() -> String {
    DEFAULT_ACCOUNT_ID.to_owned()
}
fn default_vpc_cidr() -> String {
    "172.16.0.0/12".into()
}
fn default_route_quota() -> u32 {
    200
}
fn active() -> String {
    "active".into()
}
fn normal() -> String {
    "Normal".into()
}
fn enable() -> String {
    "enable".into()
}
fn default_max_connections() -> i32 {
    5
}
fn default_spec() -> String {
    "10M".into()
}
/// The DescribeVpnGateway reference's example.
fn default_vpn_version() -> String {
    "v1.2.4".into()
}
fn postpay() -> String {
    "POSTPAY".into()
}
fn public() -> String {
    "public".into()
}
fn traditional() -> String {
    "Traditional".into()
}
fn udp() -> String {
    "UDP".into()
}
fn default_port() -> u16 {
    1194
}
fn aes128() -> String {
    "AES-128-CBC".into()
}
fn eiam2() -> String {
    EIAM_2.into()
}
/// 2024-01-01T00:00:00Z.
fn default_create_time() -> i64 {
    1_704_067_200_000
}
/// 2099-01-01T00:00:00Z.
fn default_end_time() -> i64 {
    4_070_908_800_000
}

/// The main account of every key that names none, the default keys
/// included (the cloud's account ids are 16 digits).
pub const DEFAULT_ACCOUNT_ID: &str = "1234567890123456";
/// A limited key of the default set: granted only `vpn-hz1primary` (and so
/// `vss-hz1primary`).
pub const LIMITED_ACCESS_KEY_ID: &str = "LTAI5tEMULATORLIMITED";
pub const LIMITED_ACCESS_KEY_SECRET: &str = "EmulatorLimitedSecret0123456789ab";
/// The STS key of the default set and its token.
pub const STS_ACCESS_KEY_ID: &str = "STS.EMULATORDEMOKEY";
pub const STS_ACCESS_KEY_SECRET: &str = "EmulatorStsSecret0123456789abcdef";
pub const STS_SECURITY_TOKEN: &str = "CAIS.EMULATOR+STS/Token==";
/// A disabled key of the default set.
pub const DISABLED_ACCESS_KEY_ID: &str = "LTAI5tEMULATORDISABLED";
pub const DISABLED_ACCESS_KEY_SECRET: &str = "EmulatorDisabledSecret0123456789a";

impl Fixtures {
    /// Parses a fixture document.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// A fleet for load and scale tests: `per_region` active gateways in
    /// each of `regions`, each in a VPC of its own with one server on port
    /// 20000. Ids are `vpn-{prefix}{i}`, `vss-{prefix}{i}` in the first
    /// region and `…{prefix}{n}x{i}` in the n-th.
    pub fn fleet(
        prefix: &str,
        regions: &[&str],
        per_region: usize,
    ) -> Result<Self, serde_json::Error> {
        let (mut vpcs, mut gateways, mut servers) = (Vec::new(), Vec::new(), Vec::new());
        for (n, region) in regions.iter().enumerate() {
            for i in 0..per_region {
                let t = if n == 0 {
                    format!("{prefix}{i}")
                } else {
                    format!("{prefix}{n}x{i}")
                };
                vpcs.push(serde_json::json!({
                    "vpc_id": format!("vpc-{t}"), "region_id": region, "cidr_block": "172.16.0.0/16"}));
                gateways.push(serde_json::json!({
                    "vpn_gateway_id": format!("vpn-{t}"), "region_id": region, "vpc_id": format!("vpc-{t}")}));
                servers.push(serde_json::json!({
                    "ssl_vpn_server_id": format!("vss-{t}"), "vpn_gateway_id": format!("vpn-{t}"),
                    "local_subnet": "172.16.0.0/24", "client_ip_pool": "10.0.0.0/24", "port": 20000}));
            }
        }
        serde_json::from_value(serde_json::json!({
            "regions": regions, "vpcs": vpcs, "vpn_gateways": gateways, "ssl_vpn_servers": servers,
        }))
    }

    /// The documented demo keys: the demo pair, a limited key, an STS key
    /// and a disabled key.
    pub fn default_access_keys() -> Vec<AccessKey> {
        let limited = AccessKey {
            resources: vec!["vpn-hz1primary".into()],
            ..AccessKey::new(LIMITED_ACCESS_KEY_ID, LIMITED_ACCESS_KEY_SECRET)
        };
        let sts = AccessKey {
            security_token: Some(STS_SECURITY_TOKEN.into()),
            ..AccessKey::new(STS_ACCESS_KEY_ID, STS_ACCESS_KEY_SECRET)
        };
        let disabled = AccessKey {
            enabled: false,
            ..AccessKey::new(DISABLED_ACCESS_KEY_ID, DISABLED_ACCESS_KEY_SECRET)
        };
        vec![
            AccessKey::new(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET),
            limited,
            sts,
            disabled,
        ]
    }

    /// The documented default set (docs/emulator.md lists it).
    pub fn default_set() -> Self {
        let vpc = |id: &str, region: &str, cidr: &str| Vpc {
            vpc_id: id.into(),
            region_id: region.into(),
            cidr_block: cidr.into(),
            route_destinations: Vec::new(),
            route_quota_left: default_route_quota(),
        };
        let gw = |id: &str, region: &str, vpc: &str, ip: &str| VpnGateway {
            vpn_gateway_id: id.into(),
            region_id: region.into(),
            vpc_id: vpc.into(),
            name: id.trim_start_matches("vpn-").into(),
            description: String::new(),
            status: active(),
            business_status: normal(),
            ssl_max_connections: 50,
            ssl_vpn: enable(),
            ipsec_vpn: enable(),
            supports_multi_factor_auth: true,
            supports_idaas2: true,
            internet_ip: ip.into(),
            v_switch_id: format!("vsw-{}", id.trim_start_matches("vpn-")),
            disaster_recovery_v_switch_id: String::new(),
            disaster_recovery_internet_ip: String::new(),
            ssl_vpn_internet_ip: String::new(),
            vpn_version: default_vpn_version(),
            spec: default_spec(),
            charge_type: postpay(),
            network_type: public(),
            gateway_type: traditional(),
            vpn_type: normal(),
            enable_bgp: false,
            auto_propagate: true,
            resource_group_id: "rg-emulatordefault".into(),
            tags: BTreeMap::new(),
            create_time: default_create_time(),
            end_time: default_end_time(),
        };
        let server = |gw: &VpnGateway, pool: &str, local: &str| SslVpnServer {
            ssl_vpn_server_id: gw.vpn_gateway_id.replacen("vpn-", "vss-", 1),
            vpn_gateway_id: gw.vpn_gateway_id.clone(),
            name: gw.name.clone(),
            local_subnet: local.into(),
            client_ip_pool: pool.into(),
            proto: udp(),
            port: default_port(),
            cipher: aes128(),
            compress: true,
            connections: 0,
            dns_servers: String::new(),
            enable_multi_factor_auth: false,
            idaas_instance_id: String::new(),
            idaas_application_id: String::new(),
            idaas_region_id: String::new(),
            resource_group_id: gw.resource_group_id.clone(),
            create_time: default_create_time(),
        };

        let mut hz_vpc1 = vpc("vpc-hz1", "cn-hangzhou", "172.16.0.0/16");
        hz_vpc1.route_destinations = vec!["10.99.0.0/24".into()];
        let mut hz_vpc3 = vpc("vpc-hz3", "cn-hangzhou", "172.18.0.0/16");
        hz_vpc3.route_quota_left = 0;
        let vpcs = vec![
            hz_vpc1,
            vpc("vpc-hz2", "cn-hangzhou", "172.17.0.0/16"),
            hz_vpc3,
            vpc("vpc-hz5", "cn-hangzhou", "172.19.0.0/16"),
            vpc("vpc-sh1", "cn-shanghai", "172.20.0.0/16"),
            vpc("vpc-sg1", "ap-southeast-1", "172.30.0.0/16"),
        ];

        let mut primary = gw("vpn-hz1primary", "cn-hangzhou", "vpc-hz1", "47.98.10.1");
        primary.tags.insert("env".into(), "test".into());
        let peer = gw("vpn-hz1peer", "cn-hangzhou", "vpc-hz1", "47.98.10.2");
        let mut updating = gw("vpn-hz2updating", "cn-hangzhou", "vpc-hz2", "47.98.10.3");
        updating.status = "updating".into();
        let mut locked = gw("vpn-hz2locked", "cn-hangzhou", "vpc-hz2", "47.98.10.4");
        locked.business_status = "FinancialLocked".into();
        let mut nomfa = gw("vpn-hz3nomfa", "cn-hangzhou", "vpc-hz3", "47.98.10.5");
        nomfa.supports_multi_factor_auth = false;
        nomfa.supports_idaas2 = false;
        let mut eiam1 = gw("vpn-hz3eiam1", "cn-hangzhou", "vpc-hz3", "47.98.10.6");
        eiam1.supports_idaas2 = false;
        eiam1.ssl_max_connections = 5;
        let mut init = gw("vpn-hz4init", "cn-hangzhou", "vpc-hz2", "");
        init.status = "init".into();
        let mut provisioning = gw("vpn-hz4provisioning", "cn-hangzhou", "vpc-hz2", "");
        provisioning.status = "provisioning".into();
        let mut deleting = gw("vpn-hz4deleting", "cn-hangzhou", "vpc-hz2", "47.98.10.9");
        deleting.status = "deleting".into();
        // Dual-tunnel: InternetIp is the first IPsec tunnel's, not the
        // SSL-VPN address (DescribeVpnGateway's reference).
        let mut dual = gw("vpn-hz5dual", "cn-hangzhou", "vpc-hz5", "47.98.10.10");
        dual.disaster_recovery_v_switch_id = "vsw-hz5dualb".into();
        dual.disaster_recovery_internet_ip = "47.98.10.11".into();
        dual.ssl_vpn_internet_ip = "47.98.10.12".into();
        dual.vpn_version = "v1.3.7".into();
        let sh = gw("vpn-sh1primary", "cn-shanghai", "vpc-sh1", "47.100.10.1");
        let sg = gw("vpn-sg1primary", "ap-southeast-1", "vpc-sg1", "8.219.10.1");

        let servers = vec![
            server(&primary, "10.10.0.0/24", "172.16.0.0/24"),
            server(&peer, "10.20.0.0/24", "172.16.1.0/24"),
            server(&updating, "10.30.0.0/24", "172.17.0.0/24"),
            server(&locked, "10.40.0.0/24", "172.17.1.0/24"),
            server(&nomfa, "10.50.0.0/24", "172.18.0.0/24"),
            server(&eiam1, "10.60.0.0/27", "172.18.1.0/24"),
            SslVpnServer {
                dns_servers: "100.100.2.136,100.100.2.138".into(),
                ..server(&dual, "10.70.0.0/24", "172.19.0.0/24")
            },
            server(&sh, "10.10.0.0/24", "172.20.0.0/24"),
            server(&sg, "10.10.0.0/24", "172.30.0.0/24"),
        ];
        let gateways = vec![
            primary,
            peer,
            updating,
            locked,
            nomfa,
            eiam1,
            init,
            provisioning,
            deleting,
            dual,
            sh,
            sg,
        ];

        let app = |id: &str, template: bool| IdaasApplication {
            application_id: id.into(),
            ssl_vpn_template: template,
        };
        let idaas =
            |id: &str, region: &str, version: &str, apps: Vec<IdaasApplication>| IdaasInstance {
                instance_id: id.into(),
                region_id: region.into(),
                version: version.into(),
                reachable: true,
                vpn_authorized: true,
                applications: apps,
            };
        let mut unreachable = idaas(
            "idaas-cn-hangzhou-unreachable",
            "cn-hangzhou",
            EIAM_2,
            vec![app("app_unreachable01", true)],
        );
        unreachable.reachable = false;
        let mut unauthorized = idaas(
            "idaas-cn-hangzhou-noram",
            "cn-hangzhou",
            EIAM_2,
            vec![app("app_noram01", true)],
        );
        unauthorized.vpn_authorized = false;
        let idaas_instances = vec![
            idaas(
                "idaas-cn-hangzhou-eiam2",
                "cn-hangzhou",
                EIAM_2,
                vec![app("app_sslvpn01", true), app("app_generic01", false)],
            ),
            idaas(
                "idaas-cn-hangzhou-eiam1",
                "cn-hangzhou",
                "EIAM 1.0",
                Vec::new(),
            ),
            unreachable,
            unauthorized,
            idaas(
                "idaas-ap-southeast-1-eiam2",
                "ap-southeast-1",
                EIAM_2,
                vec![app("app_sgsslvpn01", true)],
            ),
        ];

        Fixtures {
            access_keys: Self::default_access_keys(),
            regions: vec![
                "cn-hangzhou".into(),
                "cn-shanghai".into(),
                "ap-southeast-1".into(),
            ],
            vpcs,
            vpn_gateways: gateways,
            ssl_vpn_servers: servers,
            idaas_instances,
        }
    }

    /// A printable list of the ids, for the CLI banner.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for region in &self.regions {
            out.push_str(&format!("region {region}\n"));
            for gw in self.vpn_gateways.iter().filter(|g| g.region_id == *region) {
                let server = self
                    .ssl_vpn_servers
                    .iter()
                    .find(|s| s.vpn_gateway_id == gw.vpn_gateway_id)
                    .map(|s| s.ssl_vpn_server_id.as_str())
                    .unwrap_or("-");
                let mut notes = vec![gw.status.clone()];
                if gw.business_status != "Normal" {
                    notes.push(gw.business_status.clone());
                }
                if !gw.supports_multi_factor_auth {
                    notes.push("no MFA".into());
                } else if !gw.supports_idaas2 {
                    notes.push("no IDaaS 2.0".into());
                }
                if !gw.disaster_recovery_v_switch_id.is_empty() {
                    notes.push("dual-tunnel".into());
                }
                out.push_str(&format!(
                    "  {:<22} {:<22} {:<10} {}\n",
                    gw.vpn_gateway_id,
                    server,
                    gw.vpc_id,
                    notes.join(", ")
                ));
            }
        }
        for idaas in &self.idaas_instances {
            let apps: Vec<&str> = idaas
                .applications
                .iter()
                .map(|a| a.application_id.as_str())
                .collect();
            out.push_str(&format!(
                "idaas {} ({}, {}) apps: {}\n",
                idaas.instance_id,
                idaas.region_id,
                idaas.version,
                if apps.is_empty() {
                    "-".to_owned()
                } else {
                    apps.join(", ")
                }
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_round_trips_through_json() {
        let set = Fixtures::default_set();
        let text = serde_json::to_string_pretty(&set).unwrap();
        assert_eq!(Fixtures::from_json(&text).unwrap(), set);
    }

    #[test]
    fn a_minimal_document_gets_defaults() {
        let f = Fixtures::from_json(
            r#"{"vpcs":[{"vpc_id":"vpc-a","region_id":"cn-beijing"}],
                "vpn_gateways":[{"vpn_gateway_id":"vpn-a","region_id":"cn-beijing","vpc_id":"vpc-a"}],
                "ssl_vpn_servers":[{"ssl_vpn_server_id":"vss-a","vpn_gateway_id":"vpn-a",
                    "local_subnet":"172.16.0.0/24","client_ip_pool":"10.0.0.0/24"}]}"#,
        )
        .unwrap();
        assert_eq!(f.vpn_gateways[0].status, "active");
        assert_eq!(f.vpn_gateways[0].ssl_max_connections, 5);
        assert_eq!(f.ssl_vpn_servers[0].port, 1194);
        assert!(f.access_keys.is_empty());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(Fixtures::from_json(r#"{"gateways":[]}"#).is_err());
    }

    #[test]
    fn debug_redacts_secrets() {
        let text = format!("{:?}", Fixtures::default_access_keys());
        assert!(!text.contains(DEMO_ACCESS_KEY_SECRET));
        assert!(!text.contains(STS_SECURITY_TOKEN));
        assert!(text.contains(DEMO_ACCESS_KEY_ID));
    }
}

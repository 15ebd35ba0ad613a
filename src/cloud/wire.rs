//! The JSON bodies of the four operations, in the cloud's PascalCase, and
//! their conversion into the shared domain types.
//!
//! Every field defaults when missing, so a field the cloud stops sending (or
//! an emulator never sent) degrades to an empty value instead of failing
//! the call. The `IDaaS*` names do not follow PascalCase and are renamed by
//! hand.

use serde::Deserialize;

use crate::domain::{Cipher, Protocol, SslVpnServer, VpnGateway};

/// Only the RequestId: read from every answer for spans and errors.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RequestIdOnly {
    #[serde(default)]
    pub request_id: String,
}

/// An SSL server as DescribeSslVpnServers lists it and as ModifySslVpnServer
/// answers (which adds `RequestId`).
#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
pub struct WireSslVpnServer {
    pub request_id: String,
    pub ssl_vpn_server_id: String,
    pub vpn_gateway_id: String,
    pub region_id: String,
    pub name: String,
    pub local_subnet: String,
    pub client_ip_pool: String,
    pub proto: String,
    pub port: i64,
    pub cipher: String,
    pub compress: bool,
    pub connections: i64,
    pub max_connections: i64,
    pub internet_ip: String,
    pub create_time: i64,
    pub dns_servers: String,
    pub enable_multi_factor_auth: bool,
    #[serde(rename = "IDaaSInstanceId")]
    pub idaas_instance_id: String,
    #[serde(rename = "IDaaSApplicationId")]
    pub idaas_application_id: String,
    #[serde(rename = "IDaaSRegionId")]
    pub idaas_region_id: String,
    #[serde(rename = "IDaaSInstanceVersion")]
    pub idaas_instance_version: String,
    pub resource_group_id: String,
}

fn to_i32(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX })
}

impl WireSslVpnServer {
    pub fn into_domain(self) -> SslVpnServer {
        SslVpnServer {
            ssl_vpn_server_id: self.ssl_vpn_server_id,
            vpn_gateway_id: self.vpn_gateway_id,
            region_id: self.region_id,
            name: self.name,
            local_subnet: self.local_subnet,
            client_ip_pool: self.client_ip_pool,
            proto: Protocol::from_api(&self.proto),
            // An out-of-range port is no port this client can name.
            port: u16::try_from(self.port).unwrap_or(0),
            cipher: Cipher::from_api(&self.cipher),
            compress: self.compress,
            connections: to_i32(self.connections),
            max_connections: to_i32(self.max_connections),
            internet_ip: self.internet_ip,
            create_time: self.create_time,
            dns_servers: self.dns_servers,
            enable_multi_factor_auth: self.enable_multi_factor_auth,
            idaas_instance_id: self.idaas_instance_id,
            idaas_application_id: self.idaas_application_id,
            idaas_region_id: self.idaas_region_id,
            idaas_instance_version: self.idaas_instance_version,
            resource_group_id: self.resource_group_id,
        }
    }
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
pub struct SslVpnServerList {
    pub ssl_vpn_server: Vec<WireSslVpnServer>,
}

/// DescribeSslVpnServers.
#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeSslVpnServersBody {
    pub request_id: String,
    pub page_number: i64,
    pub page_size: i64,
    pub total_count: i64,
    pub ssl_vpn_servers: SslVpnServerList,
}

/// A VPN gateway as DescribeVpnGateway answers (with `RequestId`) and
/// DescribeVpnGateways lists it.
#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
pub struct WireVpnGateway {
    pub request_id: String,
    pub vpn_gateway_id: String,
    pub vpc_id: String,
    #[serde(rename = "VSwitchId")]
    pub vswitch_id: String,
    pub internet_ip: String,
    pub ssl_vpn_internet_ip: String,
    pub create_time: i64,
    pub end_time: i64,
    pub spec: String,
    pub name: String,
    pub description: String,
    pub status: String,
    pub business_status: String,
    pub charge_type: String,
    pub ipsec_vpn: String,
    pub ssl_vpn: String,
    pub ssl_max_connections: i64,
    pub tag: String,
    pub enable_bgp: bool,
    pub auto_propagate: bool,
    pub vpn_type: String,
    pub network_type: String,
    pub gateway_type: String,
    pub resource_group_id: String,
}

impl WireVpnGateway {
    pub fn into_domain(self) -> VpnGateway {
        VpnGateway {
            vpn_gateway_id: self.vpn_gateway_id,
            vpc_id: self.vpc_id,
            name: self.name,
            status: self.status,
            business_status: self.business_status,
            ssl_max_connections: to_i32(self.ssl_max_connections),
            ssl_vpn: self.ssl_vpn,
            tag: self.tag,
            internet_ip: self.internet_ip,
            ssl_vpn_internet_ip: self.ssl_vpn_internet_ip,
            spec: self.spec,
            create_time: self.create_time,
            end_time: self.end_time,
        }
    }
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
pub struct VpnGatewayList {
    pub vpn_gateway: Vec<WireVpnGateway>,
}

/// DescribeVpnGateways.
#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeVpnGatewaysBody {
    pub request_id: String,
    pub page_number: i64,
    pub page_size: i64,
    pub total_count: i64,
    pub vpn_gateways: VpnGatewayList,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_modify_answer_decodes() {
        let body = r#"{
          "InternetIp": "47.98.XX.XX", "IDaaSInstanceId": "idaas-cn-hangzhou-****",
          "CreateTime": 1492753580000, "VpnGatewayId": "vpn-bp1q8bgx4xnkm2ogj****",
          "Compress": false, "Port": 1194, "LocalSubnet": "10.20.20.0/24",
          "RegionId": "cn-hangzhou", "Cipher": "AES-128-CBC",
          "RequestId": "DF11D6F6-E35A-41C3-9B20-6FC8A901FE65", "Connections": 0,
          "SslVpnServerId": "vss-bp18q7hzj6largv4v****", "MaxConnections": 5, "Name": "test",
          "EnableMultiFactorAuth": false, "ClientIpPool": "10.30.30.0/24", "Proto": "UDP",
          "ResourceGroupId": "rg-acfmzs372yg****", "IDaaSApplicationId": "app_my6g4qmvnwxzj2f****",
          "IDaaSInstanceVersion": "EIAM 2.0"
        }"#;
        let wire: WireSslVpnServer = serde_json::from_str(body).unwrap();
        assert_eq!(wire.request_id, "DF11D6F6-E35A-41C3-9B20-6FC8A901FE65");
        let server = wire.into_domain();
        assert_eq!(server.proto, Some(Protocol::Udp));
        assert_eq!(server.cipher, Some(Cipher::Aes128Cbc));
        assert_eq!(server.port, 1194);
        assert_eq!(server.max_connections, 5);
        assert_eq!(server.create_time, 1_492_753_580_000);
        assert_eq!(server.idaas_instance_id, "idaas-cn-hangzhou-****");
        assert_eq!(server.idaas_application_id, "app_my6g4qmvnwxzj2f****");
        assert_eq!(server.idaas_instance_version, "EIAM 2.0");
        assert_eq!(server.resource_group_id, "rg-acfmzs372yg****");
    }

    #[test]
    fn lists_are_nested_and_missing_fields_default() {
        let body = r#"{"RequestId":"r","TotalCount":1,"PageNumber":1,"PageSize":10,
            "VpnGateways":{"VpnGateway":[{"VpnGatewayId":"vpn-1","Status":"updating","SslMaxConnections":5,"VSwitchId":"vsw-1"}]}}"#;
        let wire: DescribeVpnGatewaysBody = serde_json::from_str(body).unwrap();
        assert_eq!(wire.total_count, 1);
        let gw = &wire.vpn_gateways.vpn_gateway[0];
        assert_eq!(gw.vswitch_id, "vsw-1");
        assert_eq!(gw.status, "updating");
        assert_eq!(gw.name, "");
        let empty: DescribeSslVpnServersBody =
            serde_json::from_str(r#"{"RequestId":"r"}"#).unwrap();
        assert!(empty.ssl_vpn_servers.ssl_vpn_server.is_empty());
    }
}

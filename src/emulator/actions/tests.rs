//! The actions against the default fixtures, without HTTP, on a paused clock.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::*;
use crate::emulator::{
    DEMO_ACCESS_KEY_ID,
    fixtures::{self, Fixtures},
};

struct Harness {
    world: World,
    ledger: Ledger,
    counters: Counters,
    timings: Timings,
    key: AccessKey,
    seq: u32,
}

impl Harness {
    fn new() -> Self {
        let world = World::load(&Fixtures::default_set()).unwrap();
        let key = world.keys[DEMO_ACCESS_KEY_ID].clone();
        Self {
            world,
            ledger: Ledger::default(),
            counters: Counters::default(),
            timings: Timings {
                accept_lag: Duration::from_secs(2),
                apply_time: Duration::from_secs(8),
                quiet_period: Duration::from_secs(1),
                idempotency_window: Duration::from_secs(600),
            },
            key,
            seq: 0,
        }
    }

    fn limited(mut self) -> Self {
        self.key = self.world.keys[fixtures::LIMITED_ACCESS_KEY_ID].clone();
        self
    }

    fn call(&mut self, action: Action, params: &[(&str, &str)]) -> Result<Value, ApiError> {
        let mut p = Params::default();
        for (k, v) in params {
            p.push(*k, *v);
        }
        self.seq += 1;
        let request_id = format!("REQ-{}", self.seq);
        let now = Instant::now();
        self.counters.modifications_completed += self.world.settle(now) as u64;
        let mut ctx = Ctx {
            world: &mut self.world,
            ledger: &mut self.ledger,
            counters: &mut self.counters,
            timings: self.timings,
            now,
            key: &self.key,
            request_id: &request_id,
        };
        run(action, &p, &mut ctx)
    }

    fn modify(&mut self, server: &str, params: &[(&str, &str)]) -> Result<Value, ApiError> {
        let mut all = vec![("RegionId", "cn-hangzhou"), ("SslVpnServerId", server)];
        all.extend_from_slice(params);
        self.call(Action::ModifySslVpnServer, &all)
    }

    fn modify_code(&mut self, server: &str, params: &[(&str, &str)]) -> (u16, String) {
        let err = self.modify(server, params).unwrap_err();
        (err.status.as_u16(), err.code.into_owned())
    }

    fn gateway(&mut self, id: &str) -> Value {
        self.call(
            Action::DescribeVpnGateway,
            &[("RegionId", "cn-hangzhou"), ("VpnGatewayId", id)],
        )
        .unwrap()
    }

    fn server(&mut self, id: &str) -> Value {
        let list = self
            .call(
                Action::DescribeSslVpnServers,
                &[("RegionId", "cn-hangzhou"), ("SslVpnServerId", id)],
            )
            .unwrap();
        list["SslVpnServers"]["SslVpnServer"][0].clone()
    }
}

fn code_of(r: Result<Value, ApiError>) -> (u16, String) {
    let e = r.unwrap_err();
    (e.status.as_u16(), e.code.into_owned())
}

#[tokio::test(start_paused = true)]
async fn describe_vpn_gateway_has_the_model_shape() {
    let mut h = Harness::new();
    let gw = h.gateway("vpn-hz1primary");
    assert_eq!(gw["RequestId"], "REQ-1");
    assert_eq!(gw["VpnGatewayId"], "vpn-hz1primary");
    assert_eq!(gw["Status"], "active");
    assert_eq!(gw["BusinessStatus"], "Normal");
    assert_eq!(gw["SslMaxConnections"], 50);
    assert!(gw["CreateTime"].is_i64());
    assert!(gw["EnableBgp"].is_boolean());
    assert_eq!(gw["Tags"]["Tag"][0]["Key"], "env");
    let tag: Value = serde_json::from_str(gw["Tag"].as_str().unwrap()).unwrap();
    assert_eq!(tag["IDaaSNewVersion"], "true");
    assert!(gw.get("ReservationData").is_none());
    let with = h
        .call(
            Action::DescribeVpnGateway,
            &[
                ("RegionId", "cn-hangzhou"),
                ("VpnGatewayId", "vpn-hz1primary"),
                ("IncludeReservationData", "True"),
            ],
        )
        .unwrap();
    assert!(with["ReservationData"].is_object());
    assert_eq!(h.counters.gateway_polls("vpn-hz1primary"), 2);
}

#[tokio::test(start_paused = true)]
async fn describe_errors() {
    let mut h = Harness::new();
    let call = |h: &mut Harness, p: &[(&str, &str)]| code_of(h.call(Action::DescribeVpnGateway, p));
    assert_eq!(
        call(&mut h, &[("VpnGatewayId", "vpn-hz1primary")]),
        (400, "MissingParameter.RegionId".into())
    );
    assert_eq!(
        call(
            &mut h,
            &[
                ("RegionId", "cn-nowhere"),
                ("VpnGatewayId", "vpn-hz1primary")
            ]
        ),
        (404, "InvalidRegionId.NotFound".into())
    );
    assert_eq!(
        call(&mut h, &[("RegionId", "cn-hangzhou")]),
        (400, "MissingParameter.VpnGatewayId".into())
    );
    assert_eq!(
        call(
            &mut h,
            &[("RegionId", "cn-hangzhou"), ("VpnGatewayId", "vpn-nowhere")]
        ),
        (404, "InvalidVpnGatewayInstanceId.NotFound".into())
    );
    // The gateway exists, in another region.
    assert_eq!(
        call(
            &mut h,
            &[
                ("RegionId", "cn-shanghai"),
                ("VpnGatewayId", "vpn-hz1primary")
            ]
        ),
        (404, "InvalidVpnGatewayInstanceId.NotFound".into())
    );
    let mut limited = Harness::new().limited();
    assert!(
        limited
            .call(
                Action::DescribeVpnGateway,
                &[
                    ("RegionId", "cn-hangzhou"),
                    ("VpnGatewayId", "vpn-hz1primary")
                ]
            )
            .is_ok()
    );
    assert_eq!(
        code_of(limited.call(
            Action::DescribeVpnGateway,
            &[("RegionId", "cn-hangzhou"), ("VpnGatewayId", "vpn-hz1peer")]
        )),
        (403, "Forbidden".into())
    );
}

#[tokio::test(start_paused = true)]
async fn describe_vpn_gateways_pages_and_filters() {
    let mut h = Harness::new();
    let list = |h: &mut Harness, extra: &[(&str, &str)]| {
        let mut p = vec![("RegionId", "cn-hangzhou")];
        p.extend_from_slice(extra);
        h.call(Action::DescribeVpnGateways, &p)
    };
    let all = list(&mut h, &[]).unwrap();
    assert_eq!(all["TotalCount"], 10);
    assert_eq!(all["PageNumber"], 1);
    assert_eq!(all["PageSize"], 10);
    assert_eq!(
        all["VpnGateways"]["VpnGateway"].as_array().unwrap().len(),
        10
    );

    let page3 = list(&mut h, &[("PageSize", "4"), ("PageNumber", "3")]).unwrap();
    assert_eq!(page3["TotalCount"], 10);
    assert_eq!(
        page3["VpnGateways"]["VpnGateway"].as_array().unwrap().len(),
        2
    );
    let page4 = list(&mut h, &[("PageSize", "4"), ("PageNumber", "4")]).unwrap();
    assert!(
        page4["VpnGateways"]["VpnGateway"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let updating = list(&mut h, &[("Status", "updating")]).unwrap();
    assert_eq!(
        updating["VpnGateways"]["VpnGateway"][0]["VpnGatewayId"],
        "vpn-hz2updating"
    );
    assert_eq!(updating["TotalCount"], 1);
    let locked = list(&mut h, &[("BusinessStatus", "FinancialLocked")]).unwrap();
    assert_eq!(
        locked["VpnGateways"]["VpnGateway"][0]["VpnGatewayId"],
        "vpn-hz2locked"
    );
    let tagged = list(&mut h, &[("Tag.1.Key", "env"), ("Tag.1.Value", "test")]).unwrap();
    assert_eq!(tagged["TotalCount"], 1);
    let mistagged = list(&mut h, &[("Tag.1.Key", "env"), ("Tag.1.Value", "prod")]).unwrap();
    assert_eq!(mistagged["TotalCount"], 0);
    let vpc = list(&mut h, &[("VpcId", "vpc-hz1")]).unwrap();
    assert_eq!(vpc["TotalCount"], 2);

    for bad in [
        ("PageSize", "51"),
        ("PageSize", "0"),
        ("PageNumber", "0"),
        ("PageSize", "ten"),
    ] {
        let (status, code) = code_of(list(&mut h, &[bad]));
        assert_eq!((status, code), (400, format!("InvalidParameter.{}", bad.0)));
    }

    let mut limited = Harness::new().limited();
    let mine = list(&mut limited, &[]).unwrap();
    assert_eq!(mine["TotalCount"], 1);
}

#[tokio::test(start_paused = true)]
async fn a_dual_tunnel_gateway_reports_its_ssl_vpn_address_apart() {
    let mut h = Harness::new();
    let single = h.gateway("vpn-hz1primary");
    for field in [
        "SslVpnInternetIp",
        "DisasterRecoveryInternetIp",
        "DisasterRecoveryVSwitchId",
    ] {
        assert!(single.get(field).is_none(), "single-tunnel: no {field}");
    }
    let dual = h.gateway("vpn-hz5dual");
    assert_eq!(dual["InternetIp"], "47.98.10.10");
    assert_eq!(dual["DisasterRecoveryInternetIp"], "47.98.10.11");
    assert_eq!(dual["DisasterRecoveryVSwitchId"], "vsw-hz5dualb");
    assert_eq!(dual["SslVpnInternetIp"], "47.98.10.12");
    // The system Tag, a JSON string, with the reference's labels.
    let tag: Value = serde_json::from_str(dual["Tag"].as_str().unwrap()).unwrap();
    assert_eq!(tag["VpnVersion"], "v1.3.7");
    assert_eq!(tag["IDaaSNewVersion"], "true");
    let tag: Value = serde_json::from_str(single["Tag"].as_str().unwrap()).unwrap();
    assert_eq!(tag["VpnVersion"], "v1.2.4");
    // The server's DnsServers, and the gateway's InternetIp as its address.
    let server = h.server("vss-hz5dual");
    assert_eq!(server["DnsServers"], "100.100.2.136,100.100.2.138");
    assert_eq!(server["InternetIp"], "47.98.10.10");
    assert_eq!(h.server("vss-hz1primary")["DnsServers"], "");
}

#[tokio::test(start_paused = true)]
async fn describe_ssl_vpn_servers_has_the_model_shape() {
    let mut h = Harness::new();
    let s = h.server("vss-hz1primary");
    assert_eq!(s["VpnGatewayId"], "vpn-hz1primary");
    assert_eq!(s["RegionId"], "cn-hangzhou");
    assert_eq!(s["Proto"], "UDP");
    assert_eq!(s["Port"], 1194);
    assert_eq!(s["Cipher"], "AES-128-CBC");
    assert_eq!(s["Compress"], true);
    assert_eq!(s["MaxConnections"], 50);
    assert_eq!(s["InternetIp"], "47.98.10.1");
    assert_eq!(s["EnableMultiFactorAuth"], false);
    assert!(s.get("Status").is_none(), "the server object has no status");
    let by_gateway = h
        .call(
            Action::DescribeSslVpnServers,
            &[("RegionId", "cn-hangzhou"), ("VpnGatewayId", "vpn-hz1peer")],
        )
        .unwrap();
    assert_eq!(by_gateway["TotalCount"], 1);
    assert_eq!(
        by_gateway["SslVpnServers"]["SslVpnServer"][0]["SslVpnServerId"],
        "vss-hz1peer"
    );
    let all = h
        .call(
            Action::DescribeSslVpnServers,
            &[("RegionId", "cn-hangzhou"), ("PageSize", "50")],
        )
        .unwrap();
    assert_eq!(all["TotalCount"], 7);
    let sh = h
        .call(
            Action::DescribeSslVpnServers,
            &[("RegionId", "cn-shanghai")],
        )
        .unwrap();
    assert_eq!(sh["TotalCount"], 1);
    assert_eq!(h.counters.server_polls["vss-hz1primary"], 1);
}

#[tokio::test(start_paused = true)]
async fn an_async_change_lags_then_updates_then_shows() {
    let mut h = Harness::new();
    let answer = h
        .modify(
            "vss-hz1primary",
            &[("Port", "1195"), ("Proto", "TCP"), ("ClientToken", "tok-1")],
        )
        .unwrap();
    assert_eq!(answer["RequestId"], "REQ-1");
    assert_eq!(
        answer["Port"], 1195,
        "the answer shows the configuration being applied"
    );
    assert!(answer.get("DnsServers").is_none());

    assert_eq!(
        h.gateway("vpn-hz1primary")["Status"],
        "active",
        "accept lag"
    );
    assert_eq!(h.server("vss-hz1primary")["Port"], 1194);
    tokio::time::advance(Duration::from_millis(1999)).await;
    assert_eq!(h.gateway("vpn-hz1primary")["Status"], "active");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(h.gateway("vpn-hz1primary")["Status"], "updating");
    assert_eq!(h.server("vss-hz1primary")["Port"], 1194);
    tokio::time::advance(Duration::from_secs(7)).await;
    assert_eq!(h.gateway("vpn-hz1primary")["Status"], "updating");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(h.gateway("vpn-hz1primary")["Status"], "active");
    let s = h.server("vss-hz1primary");
    assert_eq!(
        (s["Port"].as_u64(), s["Proto"].as_str()),
        (Some(1195), Some("TCP"))
    );
    assert_eq!(h.counters.modifications_accepted, 1);
    assert_eq!(h.counters.modifications_completed, 1);
    assert_eq!(h.counters.modifications_with_token("tok-1"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_name_only_change_is_synchronous() {
    let mut h = Harness::new();
    h.modify("vss-hz1primary", &[("Name", "renamed")]).unwrap();
    assert_eq!(h.server("vss-hz1primary")["Name"], "renamed");
    assert_eq!(h.gateway("vpn-hz1primary")["Status"], "active");
    assert!(h.world.gateways["vpn-hz1primary"].task.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_busy_gateway_is_configuring_and_then_quiet() {
    let mut h = Harness::new();
    h.modify("vss-hz1primary", &[("Port", "1195")]).unwrap();
    // During the accept lag and during the update.
    assert_eq!(
        h.modify_code("vss-hz1primary", &[("Port", "1196")]),
        (400, "VpnGateway.Configuring".into())
    );
    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(
        h.modify_code("vss-hz1primary", &[("Name", "x")]),
        (400, "VpnGateway.Configuring".into())
    );
    // Done, then the quiet period.
    tokio::time::advance(Duration::from_secs(7)).await;
    let err = h.modify("vss-hz1primary", &[("Port", "1196")]).unwrap_err();
    assert_eq!(err.code, "Throttling.User");
    assert_eq!(err.retry_after_ms, Some(1000));
    tokio::time::advance(Duration::from_millis(400)).await;
    assert_eq!(
        h.modify("vss-hz1primary", &[("Port", "1196")])
            .unwrap_err()
            .retry_after_ms,
        Some(600)
    );
    tokio::time::advance(Duration::from_millis(600)).await;
    assert!(h.modify("vss-hz1primary", &[("Port", "1196")]).is_ok());
    // A fixture gateway that is updating, and gateways in other states.
    assert_eq!(
        h.modify_code("vss-hz2updating", &[("Port", "1196")]),
        (400, "VpnGateway.Configuring".into())
    );
    // Other gateways are not held up.
    assert!(h.modify("vss-hz1peer", &[("Port", "1196")]).is_ok());
}

#[tokio::test(start_paused = true)]
async fn client_tokens_replay_or_mismatch() {
    let mut h = Harness::new();
    let first = h
        .modify(
            "vss-hz1primary",
            &[("Port", "1195"), ("ClientToken", "t-1")],
        )
        .unwrap();
    tokio::time::advance(Duration::from_secs(3)).await;
    // The gateway is busy, but a retry of the same request is answered as before.
    let again = h
        .modify(
            "vss-hz1primary",
            &[("ClientToken", "t-1"), ("Port", "1195")],
        )
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(h.counters.modifications_with_token("t-1"), 1);
    assert_eq!(h.counters.modifications_accepted, 1);
    assert_eq!(
        h.modify_code(
            "vss-hz1primary",
            &[("Port", "1196"), ("ClientToken", "t-1")]
        ),
        (400, "IdempotentParameterMismatch".into())
    );
    // A refused request does not use its token.
    assert_eq!(
        h.modify_code("vss-hz1peer", &[("Port", "22"), ("ClientToken", "t-2")])
            .1,
        "InvalidParameter.Port"
    );
    assert!(
        h.modify("vss-hz1peer", &[("Port", "1195"), ("ClientToken", "t-2")])
            .is_ok()
    );
}

#[tokio::test(start_paused = true)]
async fn tokens_are_forgotten_after_the_window() {
    let mut h = Harness::new();
    h.timings.idempotency_window = Duration::from_secs(30);
    h.timings.quiet_period = Duration::ZERO;
    h.modify("vss-hz1primary", &[("Name", "a"), ("ClientToken", "t")])
        .unwrap();
    tokio::time::advance(Duration::from_secs(31)).await;
    // Forgotten: the same token is a new request now.
    let second = h
        .modify("vss-hz1primary", &[("Name", "a"), ("ClientToken", "t")])
        .unwrap();
    assert_eq!(second["RequestId"], "REQ-2");
    assert_eq!(h.counters.modifications_with_token("t"), 2);
}

#[tokio::test(start_paused = true)]
async fn the_documented_value_rules() {
    let mut h = Harness::new();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("Name", "http://x")], "InvalidName"),
        (
            &[("ClientIpPool", "10.0.0.0/30")],
            "ClientIpPool.NetmaskInvalid",
        ),
        (
            &[("ClientIpPool", "127.0.0.0/24")],
            "ClientIpPool.SubnetInvalid",
        ),
        (&[("Port", "0")], "SslVpnServerPort.Illegal"),
        (&[("Port", "70000")], "SslVpnServerPort.Illegal"),
        (&[("Port", "443")], "InvalidParameter.Port"),
        (&[("Port", "eleven")], "InvalidParameter.Port"),
        (&[("Proto", "SCTP")], "InvalidParameter.Proto"),
        (&[("Cipher", "AES-512")], "InvalidParameter.Cipher"),
        (&[("Compress", "yes")], "InvalidParameter.Compress"),
        (
            &[("LocalSubnet", "10.0.0.0/33")],
            "InvalidParameter.LocalSubnet",
        ),
        (
            &[
                ("ClientIpPool", "10.0.0.0/24"),
                ("LocalSubnet", "10.0.0.0/16"),
            ],
            "IpConflict",
        ),
        (
            &[("EnableMultiFactorAuth", "true")],
            "MissingParameter.IDaaSInstanceId",
        ),
        (
            &[
                ("EnableMultiFactorAuth", "true"),
                ("IDaaSInstanceId", "idaas-cn-hangzhou-eiam2"),
            ],
            "MissingParam.IDaaSRegionId",
        ),
        (
            &[
                ("EnableMultiFactorAuth", "true"),
                ("IDaaSInstanceId", "idaas-cn-hangzhou-eiam2"),
                ("IDaaSRegionId", "cn-hangzhou"),
            ],
            "MissingParam.IDaaSApplicationId",
        ),
        (&[], "MissingParameter"),
        (
            &[("DryRun", "maybe"), ("Name", "x")],
            "InvalidParameter.DryRun",
        ),
    ];
    for (params, code) in cases {
        assert_eq!(
            h.modify_code("vss-hz1primary", params),
            (400, (*code).to_owned()),
            "{params:?}"
        );
    }
    assert_eq!(h.counters.modifications_accepted, 0);
}

#[tokio::test(start_paused = true)]
async fn resources_keys_and_regions() {
    let mut h = Harness::new();
    assert_eq!(
        code_of(h.call(
            Action::ModifySslVpnServer,
            &[("SslVpnServerId", "vss-hz1primary"), ("Port", "1195")]
        )),
        (400, "MissingParameter.RegionId".into())
    );
    assert_eq!(
        code_of(h.call(
            Action::ModifySslVpnServer,
            &[("RegionId", "cn-hangzhou"), ("Port", "1195")]
        )),
        (400, "MissingParameter.SslVpnServerId".into())
    );
    assert_eq!(
        code_of(h.call(
            Action::ModifySslVpnServer,
            &[
                ("RegionId", "eu-nowhere-1"),
                ("SslVpnServerId", "vss-hz1primary"),
                ("Port", "1195")
            ]
        )),
        (404, "InvalidRegionId.NotFound".into())
    );
    assert_eq!(
        h.modify_code("vss-nowhere", &[("Port", "1195")]),
        (404, "InvalidSslVpnServerId.NotFound".into())
    );
    // Exists, but in Shanghai.
    assert_eq!(
        h.modify_code("vss-sh1primary", &[("Port", "1195")]),
        (404, "InvalidSslVpnServerId.NotFound".into())
    );
    assert_eq!(
        h.modify_code("vss-hz2locked", &[("Port", "1195")]),
        (400, "VpnGateway.FinancialLocked".into())
    );
    let mut limited = Harness::new().limited();
    assert!(
        limited
            .modify("vss-hz1primary", &[("Port", "1195")])
            .is_ok()
    );
    assert_eq!(
        limited.modify_code("vss-hz1peer", &[("Port", "1195")]),
        (403, "Forbidden".into())
    );
}

#[tokio::test(start_paused = true)]
async fn client_pool_rules_need_the_cloud() {
    let mut h = Harness::new();
    // Against the server's own local subnet (172.16.0.0/24), the pool alone given.
    let own = h
        .modify("vss-hz1primary", &[("ClientIpPool", "172.16.0.0/20")])
        .unwrap_err();
    assert_eq!(own.code, "IpConflict");
    assert!(own.message.contains("local IP range"));
    // Local subnet alone, against the existing pool 10.10.0.0/24.
    assert_eq!(
        h.modify_code("vss-hz1primary", &[("LocalSubnet", "10.10.0.0/16")])
            .1,
        "IpConflict"
    );
    // Against vss-hz1peer (10.20.0.0/24) in the same VPC.
    let peer = h
        .modify("vss-hz1primary", &[("ClientIpPool", "10.20.0.0/23")])
        .unwrap_err();
    assert_eq!(peer.code, "IpConflict");
    assert!(peer.message.contains("other SSL VPN server"));
    // Servers in other VPCs may use the same pool (vss-sh1primary has 10.10.0.0/24).
    // 50 connections need 200 addresses: a /25 has 128.
    assert_eq!(
        h.modify_code("vss-hz1primary", &[("ClientIpPool", "10.30.0.0/25")])
            .1,
        "InvalidParameter.ClientIpPool"
    );
    // vpc-hz1 routes 10.99.0.0/24 somewhere.
    assert_eq!(
        h.modify_code("vss-hz1primary", &[("ClientIpPool", "10.99.0.0/16")])
            .1,
        "EnableHaCheck.SslVpnServerClientCidrContainsVpcRouteDest"
    );
    // vpc-hz3 has no route quota left.
    assert_eq!(
        h.modify_code("vss-hz3nomfa", &[("ClientIpPool", "10.70.0.0/24")])
            .1,
        "SslVpnServer.AddRouteError"
    );
    assert!(
        h.modify("vss-hz1primary", &[("ClientIpPool", "10.30.0.0/24")])
            .is_ok()
    );
}

fn mfa<'a>(instance: &'a str, region: &'a str, app: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("EnableMultiFactorAuth", "true"),
        ("IDaaSInstanceId", instance),
        ("IDaaSRegionId", region),
        ("IDaaSApplicationId", app),
    ]
}

#[tokio::test(start_paused = true)]
async fn two_factor_authentication_rules() {
    let mut h = Harness::new();
    let hz = "cn-hangzhou";
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, (u16, &'a str));
    let cases: &[Case<'_>] = &[
        (
            "vss-hz3nomfa",
            mfa("idaas-cn-hangzhou-eiam2", hz, "app_sslvpn01"),
            (400, "OperationUnsupported.NotSupportMultiFactorAuth"),
        ),
        (
            "vss-hz3eiam1",
            mfa("idaas-cn-hangzhou-eiam2", hz, "app_sslvpn01"),
            (400, "SslVpnIDaaS2.NotSupport"),
        ),
        (
            "vss-hz1primary",
            mfa("idaas-cn-hangzhou-nope", hz, "app_sslvpn01"),
            (404, "InvalidIDaaSInstanceId.NotFound"),
        ),
        // The instance exists, in another region.
        (
            "vss-hz1primary",
            mfa("idaas-cn-hangzhou-eiam2", "cn-shanghai", "app_sslvpn01"),
            (404, "InvalidIDaaSInstanceId.NotFound"),
        ),
        (
            "vss-hz1primary",
            mfa("idaas-cn-hangzhou-eiam2", hz, "app_nope"),
            (404, "InvalidIDaaSApplicationId.NotFound"),
        ),
        (
            "vss-hz1primary",
            mfa("idaas-cn-hangzhou-eiam2", hz, "app_generic01"),
            (400, "IllegalParam.IDaaSApplicationId"),
        ),
        (
            "vss-hz1primary",
            mfa("idaas-cn-hangzhou-noram", hz, "app_noram01"),
            (400, "OperationFailed.NoRamPermission"),
        ),
        (
            "vss-hz1primary",
            mfa("idaas-cn-hangzhou-unreachable", hz, "app_unreachable01"),
            (400, "OperationFailed.GetIDaaSInfo"),
        ),
    ];
    for (server, params, (status, code)) in cases {
        assert_eq!(
            h.modify_code(server, params),
            (*status, (*code).to_owned()),
            "{server} {params:?}"
        );
    }
    // EIAM 1.0 works on a gateway without IDaaS 2.0 support, and needs no
    // application.
    h.timings.accept_lag = Duration::ZERO;
    h.timings.apply_time = Duration::from_secs(1);
    let eiam1 = h
        .modify(
            "vss-hz3eiam1",
            &[
                ("EnableMultiFactorAuth", "true"),
                ("IDaaSInstanceId", "idaas-cn-hangzhou-eiam1"),
                ("IDaaSRegionId", hz),
            ],
        )
        .unwrap();
    assert!(
        eiam1.get("IDaaSInstanceVersion").is_none(),
        "absent for EIAM 1.0, not empty: {eiam1}"
    );
    let answer = h
        .modify(
            "vss-hz1primary",
            &mfa("idaas-cn-hangzhou-eiam2", hz, "app_sslvpn01"),
        )
        .unwrap();
    assert_eq!(answer["IDaaSInstanceVersion"], "EIAM 2.0");
    assert_eq!(
        h.gateway("vpn-hz1primary")["Status"],
        "updating",
        "no lag: updating at once"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    let s = h.server("vss-hz1primary");
    assert_eq!(s["EnableMultiFactorAuth"], true);
    assert_eq!(s["IDaaSApplicationId"], "app_sslvpn01");
    assert_eq!(s["IDaaSInstanceVersion"], "EIAM 2.0");
    let s = h.server("vss-hz3eiam1");
    assert_eq!(s["EnableMultiFactorAuth"], true);
    assert_eq!(s["IDaaSInstanceId"], "idaas-cn-hangzhou-eiam1");
    assert!(s.get("IDaaSInstanceVersion").is_none(), "{s}");
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_checks_everything_and_changes_nothing() {
    let mut h = Harness::new();
    assert_eq!(
        h.modify_code("vss-hz1primary", &[("Port", "1195"), ("DryRun", "true")]),
        (400, "DryRunOperation".into())
    );
    assert_eq!(
        h.modify_code("vss-hz1primary", &[("Port", "443"), ("DryRun", "true")])
            .1,
        "InvalidParameter.Port"
    );
    assert!(h.world.gateways["vpn-hz1primary"].task.is_none());
    assert_eq!(h.counters.modifications_accepted, 0);
    assert!(
        h.modify("vss-hz1primary", &[("Port", "1195"), ("DryRun", "false")])
            .is_ok()
    );
}

#[test]
fn actions_resolve_by_name_and_version() {
    assert_eq!(
        Action::resolve("DescribeVpnGateway", "2016-04-28").unwrap(),
        Action::DescribeVpnGateway
    );
    let e = Action::resolve("DescribeVpnGateway", "2014-05-26").unwrap_err();
    assert_eq!(
        (e.status.as_u16(), e.code.as_ref()),
        (404, "InvalidApi.NotFound")
    );
    assert!(Action::resolve("DeleteVpc", "2016-04-28").is_err());
}

// Where the emulator, reading the API document, answers otherwise than the
// gateway's `validate` would: each test quotes the document's sentence.

#[tokio::test(start_paused = true)]
async fn an_eiam1_instance_needs_no_application_id() {
    // "If an IDaaS EIAM 1.0 instance is associated, you do not need to
    // specify an IDaaS application ID." (validate, which cannot know the
    // instance's version, leaves this rule to the cloud.)
    let mut h = Harness::new();
    let answer = h
        .modify(
            "vss-hz3eiam1",
            &[
                ("EnableMultiFactorAuth", "true"),
                ("IDaaSInstanceId", "idaas-cn-hangzhou-eiam1"),
                ("IDaaSRegionId", "cn-hangzhou"),
            ],
        )
        .unwrap();
    assert_eq!(answer["EnableMultiFactorAuth"], true);
    assert_eq!(answer["IDaaSApplicationId"], "");
    // "If an IDaaS EIAM 2.0 instance is associated, you need to specify an
    // IDaaS application ID."
    assert_eq!(
        h.modify_code(
            "vss-hz1primary",
            &[
                ("EnableMultiFactorAuth", "true"),
                ("IDaaSInstanceId", "idaas-cn-hangzhou-eiam2"),
                ("IDaaSRegionId", "cn-hangzhou"),
                ("IDaaSApplicationId", ""),
            ],
        ),
        (400, "MissingParam.IDaaSApplicationId".into())
    );
}

#[tokio::test(start_paused = true)]
async fn idaas_ids_have_no_format_only_existence() {
    // The document gives the IDaaS parameters no format; its codes for an
    // id that names nothing are "InvalidIDaaSInstanceId.NotFound: The
    // specified IDaaS instance ID does not exist." and
    // "InvalidIDaaSApplicationId.NotFound: The specified IDaaS application
    // Id does not exist." (validate refuses these with
    // InvalidParameter.IDaaSInstanceId / IDaaSRegionId / IDaaSApplicationId.)
    let mut h = Harness::new();
    let long = format!("idaas-{}", "x".repeat(130));
    let cases = [
        mfa("idaas cn/hangzhou!", "cn-hangzhou", "app_sslvpn01"),
        mfa(&long, "cn-hangzhou", "app_sslvpn01"),
        mfa(
            "idaas-cn-hangzhou-eiam2",
            "Hangzhou (China)",
            "app_sslvpn01",
        ),
    ];
    for params in &cases {
        let e = h.modify("vss-hz1primary", params).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code.as_ref(), e.message.as_str()),
            (
                404,
                "InvalidIDaaSInstanceId.NotFound",
                "The specified IDaaS instance ID does not exist."
            ),
            "{params:?}"
        );
    }
    assert_eq!(
        h.modify_code(
            "vss-hz1primary",
            &mfa("idaas-cn-hangzhou-eiam2", "cn-hangzhou", "app sslvpn/01!"),
        ),
        (404, "InvalidIDaaSApplicationId.NotFound".into())
    );
    // Not enabling, nothing to look up: the cloud stores what it is given.
    assert!(
        h.modify("vss-hz1peer", &[("IDaaSInstanceId", "idaas cn/hangzhou!")])
            .is_ok()
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_token_is_any_ascii() {
    // "The client token can contain only ASCII characters." No length and
    // no narrower set is given (validate allows at most 64 printable ones).
    let mut h = Harness::new();
    h.timings.quiet_period = Duration::ZERO;
    h.timings.accept_lag = Duration::ZERO;
    h.timings.apply_time = Duration::ZERO;
    let long = "t".repeat(65);
    for token in [long.as_str(), "tab\there", "bell\u{7}"] {
        assert!(
            h.modify(
                "vss-hz1primary",
                &[("Port", "1195"), ("ClientToken", token)]
            )
            .is_ok(),
            "{token:?}"
        );
        assert_eq!(h.counters.modifications_with_token(token), 1);
    }
    let e = h
        .modify(
            "vss-hz1primary",
            &[("Port", "1195"), ("ClientToken", "tök")],
        )
        .unwrap_err();
    assert_eq!(e.code, "InvalidParameter.ClientToken");
}

#[tokio::test(start_paused = true)]
async fn only_the_lowercase_url_prefixes_are_refused_in_a_name() {
    // "The name must be 1 to 100 characters in length and cannot start with
    // http:// or https://." (validate matches the prefixes in any case.)
    let mut h = Harness::new();
    h.timings.quiet_period = Duration::ZERO;
    for name in ["HTTP://x", "Https://x", "hTTp://x"] {
        assert!(
            h.modify("vss-hz1primary", &[("Name", name)]).is_ok(),
            "{name}"
        );
    }
    for name in ["http://x", "https://x"] {
        let e = h.modify("vss-hz1primary", &[("Name", name)]).unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.message.as_str()),
            ("InvalidName", "The name is not valid")
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_port_beyond_an_integer_is_no_integer() {
    // Port is an "integer" (CreateTime, a "long", is the document's 64-bit
    // type): 2147483648 and above are not values of the parameter, so not
    // "SslVpnServerPort.Illegal: The server port is not in the range of
    // [1-65535]" (which validate answers for any such number), but the
    // emulator's type error.
    let mut h = Harness::new();
    for port in ["2147483648", "4294967295"] {
        assert_eq!(
            h.modify_code("vss-hz1primary", &[("Port", port)]),
            (400, "InvalidParameter.Port".into()),
            "{port}"
        );
    }
    for port in ["2147483647", "65536", "0", "-1", "-2147483648"] {
        let e = h.modify("vss-hz1primary", &[("Port", port)]).unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.message.as_str()),
            (
                "SslVpnServerPort.Illegal",
                "The server port is not in the range of [1-65535]."
            ),
            "{port}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn ids_the_cloud_does_not_have_are_not_found() {
    // "InvalidRegionId.NotFound: The specified region is not found during
    // access authentication." The document gives region ids no format
    // (validate refuses a malformed one with InvalidParameter.RegionId).
    let mut h = Harness::new();
    assert_eq!(
        code_of(h.call(
            Action::ModifySslVpnServer,
            &[
                ("RegionId", "CN_Hangzhou"),
                ("SslVpnServerId", "vss-hz1primary"),
                ("Port", "1195")
            ]
        )),
        (404, "InvalidRegionId.NotFound".into())
    );
    // A server id of the cloud's shape, however long, is looked up
    // (validate refuses one over 64 characters).
    let long = format!("vss-{}", "a".repeat(80));
    assert_eq!(
        h.modify_code(&long, &[("Port", "1195")]),
        (404, "InvalidSslVpnServerId.NotFound".into())
    );
}

// Where the emulator and validate read the document alike, its boundaries.

#[tokio::test(start_paused = true)]
async fn the_pool_holds_four_addresses_per_connection_at_least() {
    // "Make sure that the number of IP addresses in the client CIDR block is
    // at least four times the maximum number of SSL-VPN connections
    // supported by the VPN gateway."
    let mut h = Harness::new();
    h.world
        .gateways
        .get_mut("vpn-hz1primary")
        .unwrap()
        .record
        .ssl_max_connections = 64;
    // Exactly four times: 256 addresses for 64 connections.
    assert_eq!(
        h.modify_code(
            "vss-hz1primary",
            &[("ClientIpPool", "10.30.0.0/24"), ("DryRun", "true")]
        ),
        (400, "DryRunOperation".into())
    );
    h.world
        .gateways
        .get_mut("vpn-hz1primary")
        .unwrap()
        .record
        .ssl_max_connections = 65;
    assert_eq!(
        h.modify_code("vss-hz1primary", &[("ClientIpPool", "10.30.0.0/24")]),
        (400, "InvalidParameter.ClientIpPool".into())
    );
    // "If the number of SSL-VPN connections is 5, we recommend that you
    // specify a client CIDR block with a subnet mask that is less than or
    // equal to 27 bits in length": 20 addresses needed, a /28 has 16.
    assert_eq!(
        h.modify_code("vss-hz3eiam1", &[("ClientIpPool", "10.61.0.0/28")]),
        (400, "InvalidParameter.ClientIpPool".into())
    );
    // A /27 holds them; vpc-hz3 then has no room for the route.
    assert_eq!(
        h.modify_code("vss-hz3eiam1", &[("ClientIpPool", "10.61.0.0/27")]),
        (400, "SslVpnServer.AddRouteError".into())
    );
}

#[tokio::test(start_paused = true)]
async fn the_first_broken_rule_is_the_answer_in_the_documents_order() {
    // The cloud answers one error; parameters are checked in the order of
    // the document's table (Name, ClientIpPool, LocalSubnet, Proto, Cipher,
    // Port, ...). validate reports every violation at once.
    let mut h = Harness::new();
    assert_eq!(
        h.modify_code(
            "vss-hz1primary",
            &[("Port", "eleven"), ("Cipher", "rot13"), ("Name", "")]
        ),
        (400, "InvalidName".into())
    );
    assert_eq!(
        h.modify_code(
            "vss-hz1primary",
            &[("Port", "443"), ("ClientIpPool", "10.0.0.0/8")]
        ),
        (400, "ClientIpPool.NetmaskInvalid".into())
    );
    // The client pool against the local subnets is a rule of the server's
    // configuration ("Make sure that the client CIDR block does not overlap
    // with the local CIDR block"): it is judged once the server is found.
    assert_eq!(
        h.modify_code(
            "vss-hz2locked",
            &[
                ("ClientIpPool", "10.0.0.0/24"),
                ("LocalSubnet", "10.0.0.0/16")
            ]
        ),
        (400, "VpnGateway.FinancialLocked".into())
    );
    assert_eq!(h.counters.modifications_accepted, 0);
}

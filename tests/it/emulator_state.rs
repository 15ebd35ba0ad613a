//! The asynchronous state machine and idempotency over real HTTP, with
//! small timings (accept lag 50 ms, apply time 150 ms).

use std::time::{Duration, Instant};

use sslvpn_gateway::emulator::{EmulatorConfig, Timings};

use crate::support::{
    emulator::{Algo, Call, Cloud},
    eventually,
};

fn modify(server: &str, params: &[(&str, &str)]) -> Call {
    let mut all = vec![("RegionId", "cn-hangzhou"), ("SslVpnServerId", server)];
    all.extend_from_slice(params);
    Call::new("ModifySslVpnServer", &all)
}

#[tokio::test]
async fn a_change_lags_then_updates_then_shows() {
    let cloud = Cloud::fast().await;
    let started = Instant::now();
    let a = cloud
        .call(&modify(
            "vss-hz1primary",
            &[("Port", "1195"), ("Cipher", "AES-256-CBC")],
        ))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.json["RequestId"].is_string());
    // Right after acceptance: still active, still the old port.
    assert_eq!(cloud.gateway_status("vpn-hz1primary").await, "active");
    assert_eq!(cloud.server("vss-hz1primary").await["Port"], 1194);

    let mut seen = vec!["active".to_owned()];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(seen.len() == 3 && seen[2] == "active") {
        assert!(Instant::now() < deadline, "{seen:?}");
        let status = cloud.gateway_status("vpn-hz1primary").await;
        if seen.last() != Some(&status) {
            seen.push(status);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(seen, ["active", "updating", "active"]);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "lag + apply time"
    );
    let s = cloud.server("vss-hz1primary").await;
    assert_eq!(
        (s["Port"].as_u64(), s["Cipher"].as_str()),
        (Some(1195), Some("AES-256-CBC"))
    );

    let counters = cloud.handle.counters();
    assert_eq!(counters.modifications_accepted, 1);
    assert_eq!(counters.modifications_completed, 1);
    assert!(counters.gateway_polls("vpn-hz1primary") >= 3);
}

#[tokio::test]
async fn a_name_only_change_is_visible_at_once() {
    let cloud = Cloud::fast().await;
    assert_eq!(
        cloud
            .call(&modify("vss-hz1primary", &[("Name", "now")]))
            .await
            .status,
        200
    );
    assert_eq!(cloud.server("vss-hz1primary").await["Name"], "now");
    assert_eq!(cloud.gateway_status("vpn-hz1primary").await, "active");
}

#[tokio::test]
async fn busy_then_quiet_then_free() {
    let cloud = Cloud::start(EmulatorConfig {
        timings: Timings {
            quiet_period: Duration::from_millis(300),
            ..Timings::fast()
        },
        ..EmulatorConfig::default()
    })
    .await;
    assert_eq!(
        cloud
            .call(&modify("vss-hz1primary", &[("Port", "1195")]))
            .await
            .status,
        200
    );
    let busy = cloud
        .call(&modify("vss-hz1primary", &[("Port", "1196")]))
        .await;
    assert_eq!((busy.status, busy.code()), (400, "VpnGateway.Configuring"));
    eventually("the new port shows", Duration::from_secs(5), || async {
        cloud.server("vss-hz1primary").await["Port"] == 1195
    })
    .await;
    let quiet = cloud
        .call(&modify("vss-hz1primary", &[("Port", "1196")]))
        .await;
    assert_eq!((quiet.status, quiet.code()), (400, "Throttling.User"));
    let wait: u64 = quiet.header("x-acs-retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&wait), "{wait}");
    tokio::time::sleep(Duration::from_millis(wait + 20)).await;
    assert_eq!(
        cloud
            .call(&modify("vss-hz1primary", &[("Port", "1196")]))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_client_token_applies_once() {
    let cloud = Cloud::fast().await;
    let call = modify(
        "vss-hz1primary",
        &[("Port", "1195"), ("ClientToken", "once-1")],
    );
    let first = cloud.call(&call).await;
    assert_eq!(first.status, 200);
    // The same request again, even signed the other way and while busy.
    for algo in [Algo::V3, Algo::V1] {
        let again = cloud.call(&call.clone().algo(algo)).await;
        assert_eq!(again.status, 200, "{again:?}");
        assert_eq!(again.json["RequestId"], first.json["RequestId"]);
        assert_eq!(
            again.header("x-acs-request-id"),
            first.json["RequestId"].as_str()
        );
    }
    let other = cloud
        .call(&modify(
            "vss-hz1primary",
            &[("Port", "1196"), ("ClientToken", "once-1")],
        ))
        .await;
    assert_eq!(
        (other.status, other.code()),
        (400, "IdempotentParameterMismatch")
    );
    let counters = cloud.handle.counters();
    assert_eq!(counters.modifications_with_token("once-1"), 1);
    assert_eq!(counters.modifications_accepted, 1);
    assert_eq!(counters.requests("ModifySslVpnServer", "Success"), 3);
}

#[tokio::test]
async fn the_token_window_is_configurable() {
    let cloud = Cloud::start(EmulatorConfig {
        timings: Timings {
            idempotency_window: Duration::from_millis(100),
            ..Timings::fast()
        },
        ..EmulatorConfig::default()
    })
    .await;
    let call = modify("vss-hz1primary", &[("Name", "x"), ("ClientToken", "short")]);
    let first = cloud.call(&call).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let second = cloud.call(&call).await;
    assert_eq!(second.status, 200);
    assert_ne!(second.json["RequestId"], first.json["RequestId"]);
    assert_eq!(cloud.handle.counters().modifications_with_token("short"), 2);
}

#[tokio::test]
async fn cloud_rules_over_the_wire() {
    let cloud = Cloud::fast().await;
    let cases = [
        (
            modify("vss-hz1primary", &[("ClientIpPool", "10.20.0.0/24")]),
            400,
            "IpConflict",
        ),
        (
            modify("vss-hz2locked", &[("Port", "1195")]),
            400,
            "VpnGateway.FinancialLocked",
        ),
        (
            modify("vss-hz2updating", &[("Port", "1195")]),
            400,
            "VpnGateway.Configuring",
        ),
        (
            modify(
                "vss-hz3nomfa",
                &[
                    ("EnableMultiFactorAuth", "True"),
                    ("IDaaSInstanceId", "idaas-cn-hangzhou-eiam2"),
                    ("IDaaSRegionId", "cn-hangzhou"),
                    ("IDaaSApplicationId", "app_sslvpn01"),
                ],
            ),
            400,
            "OperationUnsupported.NotSupportMultiFactorAuth",
        ),
        (
            modify(
                "vss-hz1primary",
                &[
                    ("EnableMultiFactorAuth", "true"),
                    ("IDaaSInstanceId", "idaas-cn-hangzhou-gone"),
                    ("IDaaSRegionId", "cn-hangzhou"),
                    ("IDaaSApplicationId", "app_sslvpn01"),
                ],
            ),
            404,
            "InvalidIDaaSInstanceId.NotFound",
        ),
        (
            Call::new(
                "ModifySslVpnServer",
                &[
                    ("RegionId", "xx-nowhere-1"),
                    ("SslVpnServerId", "vss-hz1primary"),
                    ("Port", "1195"),
                ],
            ),
            404,
            "InvalidRegionId.NotFound",
        ),
        (
            modify("vss-hz1peer", &[("Port", "1195")]).key(
                sslvpn_gateway::emulator::fixtures::LIMITED_ACCESS_KEY_ID,
                sslvpn_gateway::emulator::fixtures::LIMITED_ACCESS_KEY_SECRET,
            ),
            403,
            "Forbidden",
        ),
        (
            modify("vss-hz1primary", &[("ClientIpPool", "10.0.0.0/30")]),
            400,
            "ClientIpPool.NetmaskInvalid",
        ),
    ];
    for (call, status, code) in cases {
        let a = cloud.call(&call).await;
        assert_eq!((a.status, a.code()), (status, code), "{call:?}");
    }
    assert_eq!(cloud.handle.counters().modifications_accepted, 0);
}

#[tokio::test]
async fn absurd_timings_do_not_break_the_clock() {
    let cloud = Cloud::fast().await;
    let max = serde_json::json!({
        "accept_lag_ms": u64::MAX, "apply_time_ms": u64::MAX,
        "quiet_period_ms": u64::MAX, "idempotency_window_ms": u64::MAX,
    });
    assert_eq!(cloud.admin("PUT", "/timings", Some(max)).await.status, 200);
    let a = cloud
        .call(&modify(
            "vss-hz1primary",
            &[("Port", "1195"), ("ClientToken", "far")],
        ))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(cloud.gateway_status("vpn-hz1primary").await, "active");
    assert_eq!(
        cloud
            .call(&modify("vss-hz1peer", &[("Name", "n")]))
            .await
            .status,
        200
    );
}

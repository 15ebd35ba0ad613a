//! The account's API rate limits over real HTTP: the call past the quota is
//! answered as the cloud's flow control answers it and changes nothing,
//! the counters see it, and other accounts and regions keep their budgets.

use serde_json::json;
use sslvpn_gateway::emulator::{
    EmulatorConfig, Fixtures, QuotaTable, Timings,
    fixtures::{AccessKey, LIMITED_ACCESS_KEY_ID, LIMITED_ACCESS_KEY_SECRET},
};

use crate::support::{
    emulator::{Answer, Call, Cloud},
    procs,
};

const OTHER_KEY_ID: &str = "LTAI5tOTHERACCOUNTKEY";
const OTHER_KEY_SECRET: &str = "OtherAccountSecret0123456789abcd";
/// An hour: no budget refills while a test runs, so nothing here depends
/// on timing.
const HOUR_MS: u64 = 3_600_000;

/// The default set plus a key of another account; name changes apply at
/// once.
async fn cloud() -> Cloud {
    let mut fixtures = Fixtures::default_set();
    fixtures.access_keys.push(AccessKey {
        account_id: "6543210987654321".into(),
        ..AccessKey::new(OTHER_KEY_ID, OTHER_KEY_SECRET)
    });
    Cloud::start(EmulatorConfig {
        fixtures,
        timings: Timings::fast(),
        ..EmulatorConfig::default()
    })
    .await
}

fn describe(region: &str, gateway: &str) -> Call {
    Call::new(
        "DescribeVpnGateway",
        &[("RegionId", region), ("VpnGatewayId", gateway)],
    )
}

fn hangzhou() -> Call {
    describe("cn-hangzhou", "vpn-hz1primary")
}

fn rename(name: &str, token: &str) -> Call {
    Call::new(
        "ModifySslVpnServer",
        &[
            ("RegionId", "cn-hangzhou"),
            ("SslVpnServerId", "vss-hz1peer"),
            ("Name", name),
            ("ClientToken", token),
        ],
    )
}

fn assert_throttled(a: &Answer) {
    assert_eq!((a.status, a.code()), (400, "Throttling.User"), "{a:?}");
    assert_eq!(
        a.json["Message"],
        "Request was denied due to user flow control."
    );
    assert!(a.json["RequestId"].is_string() && a.json["Recommend"].is_string());
    let wait: u64 = a
        .header("x-acs-retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a retry hint in ms");
    assert!((1..=HOUR_MS).contains(&wait), "{wait}");
}

#[tokio::test]
async fn the_default_quota_is_the_documented_describe_vpn_gateway_limit() {
    let cloud = cloud().await;
    let a = cloud.admin("GET", "/quotas", None).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json,
        json!({"DescribeVpnGateway": {"count": 600, "period_ms": 60000}})
    );
    assert_eq!(cloud.handle.emulator().quotas(), QuotaTable::default());
}

#[tokio::test]
async fn the_call_past_the_quota_is_throttled_for_the_account_in_that_region_only() {
    let cloud = cloud().await;
    let put = cloud
        .admin(
            "PUT",
            "/quotas",
            Some(json!({"DescribeVpnGateway": {"count": 3, "period_ms": HOUR_MS}})),
        )
        .await;
    assert_eq!(put.status, 200, "{put:?}");
    for _ in 0..3 {
        assert_eq!(cloud.call(&hangzhou()).await.status, 200);
    }
    assert_throttled(&cloud.call(&hangzhou()).await);
    // Another key of the same account shares its budget.
    let limited = hangzhou().key(LIMITED_ACCESS_KEY_ID, LIMITED_ACCESS_KEY_SECRET);
    assert_throttled(&cloud.call(&limited).await);

    // Another account, another region, another action: their own budgets.
    let other = hangzhou().key(OTHER_KEY_ID, OTHER_KEY_SECRET);
    assert_eq!(cloud.call(&other).await.status, 200);
    let shanghai = describe("cn-shanghai", "vpn-sh1primary");
    assert_eq!(cloud.call(&shanghai).await.status, 200);
    assert_eq!(cloud.server("vss-hz1primary").await["Port"], 1194);

    let c = cloud.handle.counters();
    assert_eq!(c.throttled("DescribeVpnGateway"), 2);
    assert_eq!(c.requests("DescribeVpnGateway", "Throttling.User"), 2);
    assert_eq!(c.requests("DescribeVpnGateway", "Success"), 5);
    assert_eq!(c.throttled("DescribeSslVpnServers"), 0);
    // Throttled calls are no status polls.
    assert_eq!(c.gateway_polls("vpn-hz1primary"), 4);
    let served = cloud.admin("GET", "/counters", None).await;
    assert_eq!(served.json["throttled"], json!({"DescribeVpnGateway": 2}));

    // Lifting the limit lets the account through again.
    let put = cloud
        .admin("PUT", "/quotas", Some(json!({"DescribeVpnGateway": null})))
        .await;
    assert_eq!((put.status, put.json.clone()), (200, json!({})));
    assert_eq!(cloud.call(&hangzhou()).await.status, 200);
}

#[tokio::test]
async fn a_throttled_modify_changes_nothing() {
    let cloud = cloud().await;
    cloud.handle.emulator().set_quotas(
        serde_json::from_value(json!({"ModifySslVpnServer": {"count": 1, "period_ms": HOUR_MS}}))
            .unwrap(),
    );
    assert_eq!(cloud.call(&rename("first", "q-1")).await.status, 200);
    assert_throttled(&cloud.call(&rename("second", "q-2")).await);
    assert_eq!(cloud.server("vss-hz1peer").await["Name"], "first");
    let c = cloud.handle.counters();
    assert_eq!(c.modifications_accepted, 1);
    assert_eq!(c.modifications_with_token("q-2"), 0);
    assert_eq!(c.throttled("ModifySslVpnServer"), 1);
    // Describes are limited by the default only.
    assert_eq!(c.throttled("DescribeVpnGateway"), 0);

    // Its token was not remembered: once the limit is lifted, the same
    // call is a new change, accepted once.
    cloud.handle.emulator().set_quotas(QuotaTable::unlimited());
    assert_eq!(cloud.call(&rename("second", "q-2")).await.status, 200);
    assert_eq!(cloud.server("vss-hz1peer").await["Name"], "second");
    assert_eq!(cloud.handle.counters().modifications_with_token("q-2"), 1);
}

#[tokio::test]
async fn quotas_round_trip_and_reset_restores_the_default() {
    let cloud = cloud().await;
    let table = json!({
        "DescribeSslVpnServers": {"count": 50, "period_ms": 1000},
        "DescribeVpnGateway": {"count": 1200, "period_ms": 60000},
    });
    let put = cloud.admin("PUT", "/quotas", Some(table.clone())).await;
    assert_eq!((put.status, put.json.clone()), (200, table.clone()));
    assert_eq!(cloud.admin("GET", "/quotas", None).await.json, table);

    // A count of 0 removes a limit; an omitted action has none.
    let put = cloud
        .admin(
            "PUT",
            "/quotas",
            Some(
                json!({"DescribeVpnGateway": {"count": 0, "period_ms": 60000},
                        "ModifySslVpnServer": {"count": 20, "period_ms": 1000}}),
            ),
        )
        .await;
    assert_eq!(
        put.json,
        json!({"ModifySslVpnServer": {"count": 20, "period_ms": 1000}})
    );

    for (body, why) in [
        (
            json!({"DescribeVpnGatewayz": {"count": 1, "period_ms": 1}}),
            "unknown action",
        ),
        (
            json!({"DescribeVpnGateway": {"count": 1, "period_ms": 0}}),
            "longer than 0",
        ),
        (json!({"DescribeVpnGateway": {"count": 1}}), "period_ms"),
    ] {
        let a = cloud.admin("PUT", "/quotas", Some(body)).await;
        assert_eq!(a.status, 400, "{a:?}");
        let error = a.json["error"].as_str().unwrap();
        assert!(error.contains(why), "{error}");
    }
    // A refused table leaves the last one in force.
    assert_eq!(
        cloud.admin("GET", "/quotas", None).await.json,
        json!({"ModifySslVpnServer": {"count": 20, "period_ms": 1000}})
    );

    assert_eq!(cloud.admin("POST", "/reset", None).await.status, 200);
    assert_eq!(
        cloud.admin("GET", "/quotas", None).await.json,
        json!({"DescribeVpnGateway": {"count": 600, "period_ms": 60000}})
    );
}

#[tokio::test]
async fn a_bad_quota_in_the_environment_stops_the_emulator_with_the_reason() {
    let run = procs::run(
        &["emulator", "--listen", "127.0.0.1:0"],
        &[(
            "SSLVPN_EMULATOR_QUOTAS",
            "DescribeVpnGateway=600/60s,ModifySslVpnServer=lots/1s",
        )],
    )
    .await;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("--quota"), "{}", run.stderr);
    assert!(
        run.stderr.contains("\"lots\" is not a whole number"),
        "{}",
        run.stderr
    );
}

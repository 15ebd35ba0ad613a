//! Every injected fault over real HTTP: what a caller sees, and that the
//! counters saw it too.

use std::time::{Duration, Instant};

use serde_json::json;
use sslvpn_gateway::emulator::{ActionFaults, EmulatorConfig, Fault, FaultTable};

use crate::support::emulator::{Call, Cloud};

fn describe() -> Call {
    Call::new(
        "DescribeVpnGateway",
        &[
            ("RegionId", "cn-hangzhou"),
            ("VpnGatewayId", "vpn-hz1primary"),
        ],
    )
}

fn rename(token: &str) -> Call {
    Call::new(
        "ModifySslVpnServer",
        &[
            ("RegionId", "cn-hangzhou"),
            ("SslVpnServerId", "vss-hz1peer"),
            ("Name", "renamed"),
            ("ClientToken", token),
        ],
    )
}

#[tokio::test]
async fn error_faults_answer_the_clouds_codes() {
    let cloud = Cloud::fast().await;
    let mut faults = ActionFaults::script([
        Fault::InternalError,
        Fault::ServiceUnavailable,
        Fault::SystemBusy,
        Fault::Throttling,
        Fault::Ok,
    ]);
    faults.retry_after_ms = 1500;
    cloud
        .handle
        .emulator()
        .set_faults("DescribeVpnGateway", faults);
    let expected = [
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
        (400, "SystemBusy"),
        (400, "Throttling.User"),
    ];
    for (status, code) in expected {
        let a = cloud.call(&describe()).await;
        assert_eq!((a.status, a.code()), (status, code));
        assert!(a.json["RequestId"].is_string() && a.json["Recommend"].is_string());
        let retry_after = a.header("x-acs-retry-after");
        assert_eq!(retry_after, (code == "Throttling.User").then_some("1500"));
    }
    assert_eq!(cloud.call(&describe()).await.status, 200);
    // Other actions are untouched.
    assert_eq!(cloud.call(&rename("t")).await.status, 200);
    let c = cloud.handle.counters();
    for (_, code) in expected {
        assert_eq!(c.requests("DescribeVpnGateway", code), 1, "{code}");
    }
    assert_eq!(c.faults_injected["throttling"], 1);
}

#[tokio::test]
async fn latency_is_added() {
    let cloud = Cloud::fast().await;
    cloud.handle.emulator().set_faults(
        "*",
        ActionFaults {
            latency_ms: 100,
            spike_ms: 200,
            script: [Fault::Latency, Fault::Ok].into(),
            ..ActionFaults::default()
        },
    );
    let t = Instant::now();
    assert_eq!(cloud.call(&describe()).await.status, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    let t = Instant::now();
    assert_eq!(cloud.call(&describe()).await.status, 200);
    let plain = t.elapsed();
    assert!(
        (Duration::from_millis(100)..Duration::from_millis(300)).contains(&plain),
        "{plain:?}"
    );
}

#[tokio::test]
async fn a_slow_request_does_not_hold_up_others() {
    let cloud = Cloud::fast().await;
    cloud.handle.emulator().set_faults(
        "DescribeVpnGateway",
        ActionFaults {
            latency_ms: 400,
            ..ActionFaults::default()
        },
    );
    let slow_call = describe();
    let slow = cloud.call(&slow_call);
    let fast = async {
        let t = Instant::now();
        let a = cloud.call(&rename("x")).await;
        (a.status, t.elapsed())
    };
    let (slow, (status, took)) = tokio::join!(slow, fast);
    assert_eq!((slow.status, status), (200, 200));
    assert!(took < Duration::from_millis(300), "{took:?}");
}

#[tokio::test]
async fn a_reset_connection_gives_no_answer_and_changes_nothing() {
    let cloud = Cloud::fast().await;
    cloud
        .handle
        .emulator()
        .set_faults("ModifySslVpnServer", ActionFaults::script([Fault::Reset]));
    let err = cloud.try_call(&rename("r-1")).await.unwrap_err();
    assert!(err.kind() == std::io::ErrorKind::ConnectionReset, "{err:?}");
    assert_eq!(cloud.server("vss-hz1peer").await["Name"], "hz1peer");
    let c = cloud.handle.counters();
    assert_eq!(c.requests("ModifySslVpnServer", "ConnectionReset"), 1);
    assert_eq!(c.modifications_accepted, 0);
    // The retry goes through and applies.
    assert_eq!(cloud.call(&rename("r-1")).await.status, 200);
    assert_eq!(cloud.handle.counters().modifications_with_token("r-1"), 1);
}

#[tokio::test]
async fn applied_then_dropped_changes_but_fails() {
    let cloud = Cloud::fast().await;
    cloud.handle.emulator().set_faults(
        "ModifySslVpnServer",
        ActionFaults::script([Fault::AppliedThenDrop]),
    );
    assert!(cloud.try_call(&rename("d-1")).await.is_err());
    assert_eq!(cloud.server("vss-hz1peer").await["Name"], "renamed");
    // The retry with the same token replays: applied once.
    let again = cloud.call(&rename("d-1")).await;
    assert_eq!(again.status, 200);
    let c = cloud.handle.counters();
    assert_eq!(c.modifications_with_token("d-1"), 1);
    assert_eq!(c.requests("ModifySslVpnServer", "AppliedThenDropped"), 1);
    assert_eq!(c.requests("ModifySslVpnServer", "Success"), 1);
}

#[tokio::test]
async fn probabilities_are_reproducible_with_a_seed() {
    let table: FaultTable = serde_json::from_value(json!({
        "DescribeVpnGateway": {"probabilities": {"internal_error": 0.3, "service_unavailable": 0.2}}
    }))
    .unwrap();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let cloud = Cloud::start(EmulatorConfig {
            faults: table.clone(),
            seed: Some(99),
            ..EmulatorConfig::fast()
        })
        .await;
        let mut outcomes = Vec::new();
        for _ in 0..40 {
            outcomes.push(cloud.call(&describe()).await.status);
        }
        runs.push(outcomes);
    }
    assert_eq!(runs[0], runs[1]);
    let failed = runs[0].iter().filter(|s| **s != 200).count();
    assert!((8..=32).contains(&failed), "{:?}", runs[0]);
    assert!(runs[0].contains(&500) && runs[0].contains(&503));
}

#[tokio::test]
async fn faults_are_set_over_the_admin_api() {
    let cloud = Cloud::fast().await;
    let a = cloud
        .admin(
            "PUT",
            "/faults/ModifySslVpnServer",
            Some(json!({"script": ["throttling"], "retry_after_ms": 250})),
        )
        .await;
    assert_eq!(a.status, 200);
    let t = cloud.call(&rename("a")).await;
    assert_eq!(
        (t.code(), t.header("x-acs-retry-after")),
        ("Throttling.User", Some("250"))
    );
    assert_eq!(
        cloud
            .admin("DELETE", "/faults/ModifySslVpnServer", None)
            .await
            .status,
        200
    );
    assert_eq!(cloud.call(&rename("a")).await.status, 200);
}

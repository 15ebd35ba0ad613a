//! The admin listener as an orchestrator sees it: alive, ready once
//! serving, not ready from the moment a shutdown begins while open calls
//! drain, and gone when the server has stopped.

use std::time::Duration;

use sslvpn_gateway::{
    emulator::{ActionFaults, EmulatorConfig, Fault},
    server::admin::METRICS_CONTENT_TYPE,
};

use crate::support::{eventually, harness::*};

async fn get(http: &reqwest::Client, url: &str) -> (u16, String) {
    let response = http.get(url).send().await.expect("admin answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn readiness_follows_the_server_and_drops_when_shutdown_begins() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let mut config = gateway_config(&emulator);
    config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    config.shutdown_grace = Duration::from_secs(5);
    let (server, mut client) = start_gateway(config).await;
    let admin = server.admin_addr().expect("admin listener bound");
    assert!(admin.ip().is_loopback());
    let base = format!("http://{admin}");
    let http = reqwest::Client::new();

    assert_eq!(get(&http, &format!("{base}/healthz")).await.0, 200);
    assert_eq!(
        get(&http, &format!("{base}/readyz")).await,
        (200, "ready\n".into())
    );
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert_eq!(metrics.headers()["content-type"], METRICS_CONTENT_TYPE);
    // A family shows once it has a series: the seeded ones from the start.
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("# TYPE sslvpn_modifications_total counter"),
        "{text}"
    );
    assert!(text.contains("# TYPE sslvpn_build_info gauge"), "{text}");
    assert_eq!(get(&http, &format!("{base}/nope")).await.0, 404);

    // A slow call keeps the server draining after the signal.
    emulator.emulator().set_faults(
        "DescribeSslVpnServers",
        ActionFaults {
            spike_ms: 800,
            ..ActionFaults::script([Fault::Latency])
        },
    );
    let in_flight = tokio::spawn(async move {
        client
            .get_ssl_vpn_server_status(status_request(SERVER))
            .await
    });
    // The call is being handled once its cloud call is held by the fault.
    // (Not the in-flight gauge: the metrics registry is the process's, and
    // other tests' calls move it too.)
    eventually(
        "the call reaches the cloud",
        Duration::from_secs(1),
        || async { emulator.counters().faults_injected.contains_key("latency") },
    )
    .await;

    server.begin_shutdown();
    assert_eq!(
        get(&http, &format!("{base}/readyz")).await,
        (503, "shutting down\n".into())
    );
    assert_eq!(get(&http, &format!("{base}/healthz")).await.0, 200);

    // The call completes, the server stops, and the admin listener with it.
    in_flight.await.unwrap().expect("the in-flight call drains");
    server.wait().await.expect("clean shutdown");
    assert!(
        http.get(format!("{base}/healthz")).send().await.is_err(),
        "the admin listener stops with the server"
    );
}

#[tokio::test]
async fn the_admin_listener_is_off_unless_configured() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let (server, _client) = start_gateway(gateway_config(&emulator)).await;
    assert_eq!(server.admin_addr(), None);
    server.shutdown().await.unwrap();
}

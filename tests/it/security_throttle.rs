//! Failed authentications throttled per peer address: a flood of wrong
//! tokens from 127.0.0.2 is refused cheaply (UNAUTHENTICATED with
//! RetryInfo) after a few tries, audited once for the block rather than per
//! attempt, while a valid token from 127.0.0.1 keeps working throughout.
//!
//! The test runs in a process of its own (`support::in_own_process`): it
//! installs the process's tracing subscriber to count the audit events.

use std::{net::SocketAddr, time::Duration};

use sslvpn_gateway::{
    access::{AccessConfig, limits::LimitsConfig},
    emulator::EmulatorConfig,
    pb::ssl_vpn_service_client::SslVpnServiceClient,
    server::config::ServeConfig,
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::{
    Capture, Files, OTHER_PEER, channel_from,
    harness::{self, Client, SERVER, gateway_config, reason, start_emulator, start_gateway},
    in_own_process, sample, scrape,
    secure::{token_line, with_token},
};

const VALID: &str = "throttle-valid-00112233445566778899aabbccdd";
const FAILURES: u32 = 5;
const FLOOD: usize = 200;

async fn status(client: &mut Client, token: &str) -> Result<(), tonic::Status> {
    client
        .get_ssl_vpn_server_status(with_token(harness::status_request(SERVER), Some(token)))
        .await
        .map(|_| ())
}

async fn metric(admin: SocketAddr, series: &str) -> f64 {
    sample(&scrape(&reqwest::Client::new(), admin).await, series).unwrap_or(0.0)
}

#[tokio::test]
async fn a_failed_auth_flood_is_throttled_and_a_valid_caller_elsewhere_is_not() {
    if !in_own_process(
        "security_throttle::a_failed_auth_flood_is_throttled_and_a_valid_caller_elsewhere_is_not",
    )
    .await
    {
        return;
    }
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .try_init()
        .expect("the only subscriber in this process");

    let files = Files::new();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let config = ServeConfig {
        security: AccessConfig {
            tokens_file: Some(files.write("tokens", &token_line("ops", VALID))),
            limits: LimitsConfig {
                auth_failures_per_peer: FAILURES,
                // Long: the block outlasts the test.
                auth_failure_window: Duration::from_secs(600),
                ..LimitsConfig::default()
            },
            ..AccessConfig::default()
        },
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..gateway_config(&emulator)
    };
    let (server, mut legitimate) = start_gateway(config).await;
    let admin = server.admin_addr().unwrap();
    let url = format!("http://{}", server.local_addr());
    let mut attacker = SslVpnServiceClient::new(channel_from(OTHER_PEER, url.clone()).await);

    let mut checked = 0;
    let mut throttled = 0;
    for i in 0..FLOOD {
        let guess = format!("guess-{i:04}-00112233445566778899aabbccdd");
        let refused = status(&mut attacker, &guess).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
        match reason(&refused).as_str() {
            "Unauthenticated" => checked += 1,
            "Unauthenticated.Throttled" => {
                throttled += 1;
                let wait = refused
                    .get_error_details()
                    .retry_info()
                    .and_then(|r| r.retry_delay)
                    .expect("RetryInfo on a throttled refusal");
                assert!(wait > Duration::ZERO && wait <= Duration::from_secs(600));
            }
            other => panic!("unexpected reason {other}"),
        }
        // The legitimate caller, on another address, is never affected.
        if i % 20 == 0 {
            status(&mut legitimate, VALID)
                .await
                .expect("a valid token from another address works throughout");
        }
    }
    assert_eq!(checked, FAILURES as usize);
    assert_eq!(throttled, FLOOD - FAILURES as usize);
    // While blocked, the address is refused whatever it brings.
    let blocked = status(&mut attacker, VALID).await.unwrap_err();
    assert_eq!(reason(&blocked), "Unauthenticated.Throttled");
    // A new connection from the same address changes nothing.
    let mut again = SslVpnServiceClient::new(channel_from(OTHER_PEER, url).await);
    let blocked = status(&mut again, VALID).await.unwrap_err();
    assert_eq!(reason(&blocked), "Unauthenticated.Throttled");
    status(&mut legitimate, VALID).await.unwrap();

    assert_eq!(
        metric(
            admin,
            "sslvpn_auth_failures_total{reason=\"unknown_token\"}"
        )
        .await,
        f64::from(FAILURES)
    );
    assert_eq!(
        metric(
            admin,
            "sslvpn_access_refusals_total{reason=\"auth_throttled\"}"
        )
        .await,
        (throttled + 2) as f64
    );
    // Audited per failure until the block, then once for the block.
    let log = capture.text();
    let lines = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(
        lines("decision=\"unauthenticated\""),
        FAILURES as usize,
        "{log}"
    );
    assert_eq!(lines("decision=\"throttled\""), 1, "{log}");
    assert!(log.contains("peer=127.0.0.2"), "{log}");
    assert!(
        !log.contains("guess-0"),
        "a presented token reached the log"
    );
    server.shutdown().await.unwrap();
}

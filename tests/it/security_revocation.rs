//! Revocation that takes effect: after a reload that removes a token, or
//! changes the client CA so that a certificate no longer verifies, every
//! call and stream authenticated under it ends with UNAUTHENTICATED, and a
//! connection left with nothing valid is closed; calls under identities
//! that still authenticate are untouched.
//!
//! The tests assert what ends and what carries on, never how fast; the
//! time each revocation took is printed (`figure:` lines, `--nocapture`).

use std::{net::SocketAddr, time::Duration};

use sslvpn_gateway::{
    access::AccessConfig,
    emulator::{ActionFaults, EmulatorConfig},
    pb::{self, ssl_vpn_service_client::SslVpnServiceClient},
    server::config::ServeConfig,
};
use tokio::time::Instant;
use tonic::{Code, Streaming, transport::Channel};

use crate::support::{
    Files, eventually,
    harness::{self, SERVER, gateway_config, reason, start_emulator, start_server},
    procs::Gateway,
    sample, scrape,
    secure::{Ca, Pair, tls_channel, token_line, with_token, write_tls},
};

const DASHBOARD: &str = "dashboard-revoked-00112233445566778899aabbcc";
const OPS: &str = "ops-kept-00112233445566778899aabbccddeeff0011";

type Watch = Streaming<pb::WatchSslVpnServerResponse>;

/// A following watch of the fixture server under `token` (none: the
/// connection's certificate), its first message read.
async fn watch(channel: &Channel, token: Option<&str>) -> Watch {
    let mut stream = SslVpnServiceClient::new(channel.clone())
        .watch_ssl_vpn_server(with_token(harness::follow(SERVER), token))
        .await
        .expect("the watch opens")
        .into_inner();
    stream.message().await.unwrap().expect("the current state");
    stream
}

/// How `stream` ends (reading past whatever it still delivers), and when.
async fn ending(stream: &mut Watch) -> (tonic::Status, Instant) {
    let read = async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return (tonic::Status::ok("ended"), Instant::now()),
                Err(status) => return (status, Instant::now()),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the stream ends")
}

/// Renames the fixture server through `channel` under `token`, and reads
/// `stream` until it shows the new name: the stream is alive and served.
async fn still_served(channel: &Channel, token: Option<&str>, stream: &mut Watch, name: &str) {
    SslVpnServiceClient::new(channel.clone())
        .modify_ssl_vpn_server(with_token(
            pb::ModifySslVpnServerRequest {
                name: Some(name.into()),
                ..harness::modify(SERVER)
            },
            token,
        ))
        .await
        .expect("the kept identity may still change the server");
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let message = stream
                .message()
                .await
                .expect("the kept stream stays open")
                .expect("the kept stream stays open");
            if message.ssl_vpn_server.is_some_and(|s| s.name == name) {
                return;
            }
        }
    })
    .await
    .expect("the kept stream sees the change");
}

fn assert_revoked(status: &tonic::Status) {
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(reason(status), "Unauthenticated.Revoked");
}

async fn metric(admin: SocketAddr, series: &str) -> f64 {
    sample(&scrape(&reqwest::Client::new(), admin).await, series).unwrap_or(0.0)
}

#[tokio::test]
async fn a_removed_token_ends_its_calls_and_closes_connections_left_with_nothing() {
    let files = Files::new();
    let emulator = start_emulator(EmulatorConfig {
        timings: harness::timings(0, 0),
        ..EmulatorConfig::default()
    })
    .await;
    let both = token_line("dashboard", DASHBOARD) + &token_line("ops", OPS);
    let config = ServeConfig {
        security: AccessConfig {
            tokens_file: Some(files.write("tokens", &both)),
            ..AccessConfig::default()
        },
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..gateway_config(&emulator)
    };
    let server = start_server(config).await;
    let admin = server.admin_addr().unwrap();
    let url = format!("http://{}", server.local_addr());

    // The dashboard's own connection: a watch, and a slow call in flight.
    let dashboard = harness::channel(url.clone()).await;
    let mut revoked_watch = watch(&dashboard, Some(DASHBOARD)).await;
    // A connection carrying both identities.
    let shared = harness::channel(url.clone()).await;
    let mut shared_dashboard = watch(&shared, Some(DASHBOARD)).await;
    let mut shared_ops = watch(&shared, Some(OPS)).await;
    // ops alone.
    let ops = harness::channel(url).await;
    let mut ops_watch = watch(&ops, Some(OPS)).await;

    emulator.emulator().set_faults(
        "DescribeVpnGateway",
        ActionFaults {
            latency_ms: 8_000,
            ..ActionFaults::default()
        },
    );
    let slow_channel = dashboard.clone();
    let slow = tokio::spawn(async move {
        SslVpnServiceClient::new(slow_channel)
            .get_ssl_vpn_server_status(with_token(harness::status_request(SERVER), Some(DASHBOARD)))
            .await
    });
    eventually(
        "the slow call is in flight",
        Duration::from_secs(10),
        || async {
            metric(
                admin,
                "sslvpn_rpc_in_flight{method=\"sslvpn.v1.SslVpnService/GetSslVpnServerStatus\"}",
            )
            .await
                == 1.0
        },
    )
    .await;

    // The operator removes the dashboard's token and reloads.
    files.write("tokens", &token_line("ops", OPS));
    let reloaded = Instant::now();
    server.reload_security().unwrap();

    let (status, ended) = ending(&mut revoked_watch).await;
    assert_revoked(&status);
    let slow = tokio::time::timeout(Duration::from_secs(5), slow)
        .await
        .expect("the call in flight ends before its cloud call does")
        .unwrap()
        .unwrap_err();
    assert_revoked(&slow);
    let (status, _) = ending(&mut shared_dashboard).await;
    assert_revoked(&status);
    eprintln!(
        "figure: a watch under a removed token ended UNAUTHENTICATED {:?} after the reload",
        ended - reloaded
    );
    emulator.emulator().clear_faults("DescribeVpnGateway");

    // The dashboard's connection had nothing else: closed. The shared one
    // still authenticates ops: kept, and so are ops' streams.
    eventually(
        "the dashboard's connection is closed",
        Duration::from_secs(10),
        || async {
            metric(admin, "sslvpn_connections_closed_total{reason=\"revoked\"}").await == 1.0
        },
    )
    .await;
    assert_eq!(
        metric(admin, "sslvpn_access_refusals_total{reason=\"revoked\"}").await,
        3.0
    );
    still_served(&shared, Some(OPS), &mut shared_ops, "kept-on-shared").await;
    still_served(&ops, Some(OPS), &mut ops_watch, "kept-on-ops").await;
    assert_eq!(
        metric(admin, "sslvpn_connections_closed_total{reason=\"revoked\"}").await,
        1.0
    );
    // The token is gone for new calls too.
    let refused = SslVpnServiceClient::new(shared.clone())
        .get_ssl_vpn_server_status(with_token(harness::status_request(SERVER), Some(DASHBOARD)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_ca_no_longer_trusted_ends_its_streams_and_closes_its_connections() {
    let files = Files::new();
    let emulator = start_emulator(EmulatorConfig {
        timings: harness::timings(0, 0),
        ..EmulatorConfig::default()
    })
    .await;
    let server_ca = Ca::new("server CA");
    let old_ca = Ca::new("old client CA");
    let new_ca = Ca::new("new client CA");
    let mut tls = write_tls(&files, &server_ca.server(), None);
    // Both client CAs trusted at first.
    tls.client_ca = Some(files.write(
        "client-ca.pem",
        &(old_ca.cert_pem.clone() + &new_ca.cert_pem),
    ));
    let config = ServeConfig {
        security: AccessConfig {
            tls: Some(tls),
            ..AccessConfig::default()
        },
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..gateway_config(&emulator)
    };
    let server = start_server(config).await;
    let admin = server.admin_addr().unwrap();
    let addr = server.local_addr();
    let connect = |pair: &Pair| {
        let pem = server_ca.cert_pem.clone();
        let pair = Pair {
            cert_pem: pair.cert_pem.clone(),
            key_pem: pair.key_pem.clone(),
        };
        async move { tls_channel(addr, &pem, Some(&pair)).await }
    };
    let old = old_ca.client(Some("spiffe://test.example/ns/netops/sa/old"), None);
    let new = new_ca.client(Some("spiffe://test.example/ns/netops/sa/new"), None);
    let old_channel = connect(&old).await.unwrap();
    let new_channel = connect(&new).await.unwrap();
    let mut old_watch = watch(&old_channel, None).await;
    let mut new_watch = watch(&new_channel, None).await;

    // The old CA is dropped from the file.
    files.write("client-ca.pem", &new_ca.cert_pem);
    let reloaded = Instant::now();
    server.reload_security().unwrap();
    let (status, ended) = ending(&mut old_watch).await;
    assert_revoked(&status);
    eprintln!(
        "figure: a watch under a client certificate no longer trusted ended UNAUTHENTICATED \
         {:?} after the reload",
        ended - reloaded
    );
    eventually(
        "its connection is closed",
        Duration::from_secs(10),
        || async {
            metric(admin, "sslvpn_connections_closed_total{reason=\"revoked\"}").await == 1.0
        },
    )
    .await;
    // The certificate no longer gets through a handshake either.
    let again = match connect(&old).await {
        Err(_) => Code::Unavailable,
        Ok(channel) => SslVpnServiceClient::new(channel)
            .get_ssl_vpn_server_status(harness::status_request(SERVER))
            .await
            .map_or_else(|s| s.code(), |_| Code::Ok),
    };
    assert_ne!(again, Code::Ok);
    // The other CA's client is untouched.
    still_served(&new_channel, None, &mut new_watch, "kept-by-cert").await;
    server.shutdown().await.unwrap();
}

/// The real binary and a real SIGHUP: the dashboard's watch ends.
#[cfg(unix)]
#[tokio::test]
async fn a_watch_under_a_token_removed_by_sighup_ends_unauthenticated() {
    let files = Files::new();
    let tokens = files.write(
        "tokens",
        &(token_line("dashboard", DASHBOARD) + &token_line("ops", OPS)),
    );
    let gateway = Gateway::start(
        &["--emulator", "--auth-tokens", tokens.to_str().unwrap()],
        &[
            ("SSLVPN_EMULATOR_ACCEPT_LAG", "0s"),
            ("SSLVPN_EMULATOR_APPLY_TIME", "0s"),
        ],
    )
    .await;
    let channel = harness::channel(gateway.url()).await;
    let mut dashboard = watch(&channel, Some(DASHBOARD)).await;
    let mut ops = watch(&channel, Some(OPS)).await;

    files.write("tokens", &token_line("ops", OPS));
    let signalled = Instant::now();
    gateway.signal("HUP").await;
    let (status, ended) = ending(&mut dashboard).await;
    assert_revoked(&status);
    eprintln!(
        "figure: SIGHUP to the end of a watch under the removed token: {:?}",
        ended - signalled
    );
    still_served(&channel, Some(OPS), &mut ops, "kept-after-sighup").await;
}

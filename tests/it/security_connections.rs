//! What a peer may hold before it authenticates: connections overall and
//! per address, closed at once beyond the caps; a handshake timeout that
//! closes silent connections; connections that never authenticate closed
//! once idle. The attacking peer connects from 127.0.0.2, the legitimate
//! caller from 127.0.0.1.
//!
//! The tests assert behaviour (closed, refused, served, bounded counts),
//! never how fast; the figures they print (`figure:` lines, shown with
//! `--nocapture`) are for the operating notes.

use std::{net::SocketAddr, time::Duration};

use sslvpn_gateway::{
    access::{AccessConfig, limits::ConnectionLimits},
    emulator::EmulatorConfig,
    pb::ssl_vpn_service_client::SslVpnServiceClient,
    server::{ServerHandle, config::ServeConfig},
};
use tokio::{io::AsyncReadExt, net::TcpStream, sync::watch};

use crate::support::{
    Files, OTHER_PEER, connect_from, eventually,
    harness::{self, SERVER, gateway_config, start_emulator, start_server},
    procs::Gateway,
    sample, scrape,
    secure::{Ca, tls_channel, token_line, with_token, write_tls},
};

const TOKEN: &str = "conn-token-5f4e3d2c1b0a99887766554433221100";

/// 2,000: the number the issue names.
const SILENT: usize = 2000;

fn security(files: &Files, connections: ConnectionLimits) -> AccessConfig {
    AccessConfig {
        tokens_file: Some(files.write("tokens", &token_line("ops", TOKEN))),
        connections,
        ..AccessConfig::default()
    }
}

/// A gateway on the emulator with `security`, and its admin listener.
async fn gateway(security: AccessConfig) -> (ServerHandle, SocketAddr) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let config = ServeConfig {
        security,
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..gateway_config(&emulator)
    };
    // The emulator lives as long as the process: the gateway's calls need it.
    std::mem::forget(emulator);
    let server = start_server(config).await;
    let admin = server.admin_addr().unwrap();
    (server, admin)
}

async fn metric(admin: SocketAddr, series: &str) -> f64 {
    let http = reqwest::Client::new();
    sample(&scrape(&http, admin).await, series).unwrap_or(0.0)
}

/// Whether the gateway has closed `tcp` (a read ends), waiting as long as
/// it takes, up to `limit`.
async fn closed_by_the_gateway(tcp: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(limit, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // Bytes the gateway sent first (its HTTP/2 settings): read on.
            Ok(Ok(_)) => {}
        }
    }
}

/// [`SILENT`] connections from the other peer that never send a byte.
/// Those the gateway resets at once may fail to connect at all (the reset
/// can beat the connect's completion): they are left out.
async fn silent_connections(addr: SocketAddr) -> Vec<TcpStream> {
    let mut silent = Vec::with_capacity(SILENT);
    for _ in 0..SILENT {
        match connect_from(OTHER_PEER, addr).await {
            Ok(tcp) => silent.push(tcp),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(err) => panic!("connect: {err}"),
        }
    }
    silent
}

/// Status calls with a valid token from 127.0.0.1 until told to stop, a
/// fresh connection every tenth call; every one must succeed.
fn legitimate_caller(
    addr: SocketAddr,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let url = format!("http://{addr}");
        let mut client = SslVpnServiceClient::new(harness::channel(url.clone()).await);
        let mut served = 0;
        while !*stop.borrow() {
            if served % 10 == 9 {
                client = SslVpnServiceClient::new(harness::channel(url.clone()).await);
            }
            client
                .get_ssl_vpn_server_status(with_token(harness::status_request(SERVER), Some(TOKEN)))
                .await
                .expect("the legitimate caller is served throughout");
            served += 1;
            tokio::select! {
                _ = stop.changed() => {}
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        served
    })
}

#[tokio::test]
async fn silent_connections_from_one_peer_are_capped_closed_and_starve_nobody() {
    let files = Files::new();
    let limits = ConnectionLimits {
        handshake_timeout: Duration::from_secs(1),
        ..ConnectionLimits::default()
    };
    let per_peer = limits.max_connections_per_peer;
    let (server, admin) = gateway(security(&files, limits)).await;
    let addr = server.local_addr();
    let (stop, stopped) = watch::channel(false);
    let legitimate = legitimate_caller(addr, stopped);

    let mut silent = silent_connections(addr).await;
    // Held at once: never more than the cap per peer (plus the caller's).
    let open = metric(admin, "sslvpn_connections_open").await;
    assert!(open <= (per_peer + 2) as f64, "{open} connections held");
    // Every one of them ends: refused at once, or closed by the timeout.
    for tcp in &mut silent {
        assert!(
            closed_by_the_gateway(tcp, Duration::from_secs(30)).await,
            "a silent connection was kept"
        );
    }
    let refused = metric(
        admin,
        "sslvpn_connections_refused_total{reason=\"max_connections_per_peer\"}",
    )
    .await;
    let timed_out = metric(
        admin,
        "sslvpn_connections_closed_total{reason=\"handshake_timeout\"}",
    )
    .await;
    assert_eq!(refused + timed_out, SILENT as f64);
    assert!(timed_out >= 1.0 && refused >= 1.0, "{refused} {timed_out}");
    eprintln!(
        "figure: {SILENT} silent connections from one peer: at most {open} held at once \
         (cap {per_peer}), {refused} refused at accept, {timed_out} closed by the handshake timeout"
    );

    stop.send(true).unwrap();
    let served = legitimate
        .await
        .expect("the legitimate caller never failed");
    assert!(served > 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_caps_refuse_at_once_and_only_where_they_are_reached() {
    let files = Files::new();
    let (server, admin) = gateway(security(
        &files,
        ConnectionLimits {
            max_connections: 3,
            max_connections_per_peer: 2,
            // Long: nothing here is closed by the clock.
            handshake_timeout: Duration::from_secs(60),
        },
    ))
    .await;
    let addr = server.local_addr();
    let open = |n: f64| async move {
        eventually(
            "the gateway holds the connections",
            Duration::from_secs(10),
            || async { metric(admin, "sslvpn_connections_open").await == n },
        )
        .await;
    };
    let _a = connect_from(OTHER_PEER, addr).await.unwrap();
    let _b = connect_from(OTHER_PEER, addr).await.unwrap();
    open(2.0).await;
    // A third from the same peer is over its cap: closed at once.
    let mut c = connect_from(OTHER_PEER, addr).await.unwrap();
    assert!(closed_by_the_gateway(&mut c, Duration::from_secs(10)).await);
    // Another peer is not affected: it is served.
    let mut client = harness::connect(&server).await;
    let status = client
        .get_ssl_vpn_server_status(with_token(harness::status_request(SERVER), Some(TOKEN)))
        .await;
    assert!(status.is_ok(), "{status:?}");
    open(3.0).await;
    // Now the overall cap is reached: anyone's next connection is refused.
    let mut d = connect_from("127.0.0.3".parse().unwrap(), addr)
        .await
        .unwrap();
    assert!(closed_by_the_gateway(&mut d, Duration::from_secs(10)).await);
    let refused = |reason: &str| format!("sslvpn_connections_refused_total{{reason=\"{reason}\"}}");
    assert_eq!(
        metric(admin, &refused("max_connections_per_peer")).await,
        1.0
    );
    assert_eq!(metric(admin, &refused("max_connections")).await, 1.0);
    // The caller's connection still carries calls.
    assert!(
        client
            .get_ssl_vpn_server_status(with_token(harness::status_request(SERVER), Some(TOKEN)))
            .await
            .is_ok()
    );
    drop(client);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_connection_that_never_authenticates_is_closed_once_idle() {
    let files = Files::new();
    let (server, admin) = gateway(security(
        &files,
        ConnectionLimits {
            handshake_timeout: Duration::from_secs(1),
            ..ConnectionLimits::default()
        },
    ))
    .await;
    let url = format!("http://{}", server.local_addr());
    // A probe: health only, never authenticated.
    let probe = harness::channel(url.clone()).await;
    let health = tonic_health::pb::health_client::HealthClient::new(probe.clone())
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(health.into_inner().status, 1);
    // A caller that authenticated: its connection stays.
    let mut caller = SslVpnServiceClient::new(harness::channel(url).await);
    caller
        .get_ssl_vpn_server_status(with_token(harness::status_request(SERVER), Some(TOKEN)))
        .await
        .unwrap();
    eventually(
        "the probe's connection is closed",
        Duration::from_secs(20),
        || async {
            metric(
                admin,
                "sslvpn_connections_closed_total{reason=\"unauthenticated\"}",
            )
            .await
                == 1.0
        },
    )
    .await;
    assert_eq!(metric(admin, "sslvpn_connections_open").await, 1.0);
    // The authenticated connection carries on; the probe reconnects when
    // it next asks.
    caller
        .get_ssl_vpn_server_status(with_token(harness::status_request(SERVER), Some(TOKEN)))
        .await
        .unwrap();
    let again = tonic_health::pb::health_client::HealthClient::new(probe)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await;
    assert!(again.is_ok(), "{again:?}");
    assert_eq!(
        metric(
            admin,
            "sslvpn_connections_closed_total{reason=\"handshake_timeout\"}"
        )
        .await,
        0.0
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_silent_peer_is_closed_before_its_tls_handshake() {
    let files = Files::new();
    let ca = Ca::new("gateway CA");
    let mut security = security(
        &files,
        ConnectionLimits {
            handshake_timeout: Duration::from_secs(1),
            ..ConnectionLimits::default()
        },
    );
    security.tls = Some(write_tls(&files, &ca.server(), None));
    let (server, admin) = gateway(security).await;
    let addr = server.local_addr();
    let mut silent = connect_from(OTHER_PEER, addr).await.unwrap();
    // A client that does speak TLS is served meanwhile.
    let channel = tls_channel(addr, &ca.cert_pem, None).await.unwrap();
    SslVpnServiceClient::new(channel)
        .get_ssl_vpn_server_status(with_token(harness::status_request(SERVER), Some(TOKEN)))
        .await
        .unwrap();
    assert!(closed_by_the_gateway(&mut silent, Duration::from_secs(30)).await);
    eventually(
        "the closure is counted",
        Duration::from_secs(10),
        || async {
            metric(
                admin,
                "sslvpn_connections_closed_total{reason=\"handshake_timeout\"}",
            )
            .await
                == 1.0
        },
    )
    .await;
    // Not TLS at all: a failed handshake, counted as such.
    let mut garbage = connect_from(OTHER_PEER, addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut garbage, b"GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_by_the_gateway(&mut garbage, Duration::from_secs(30)).await);
    eventually(
        "the failed handshake is counted",
        Duration::from_secs(10),
        || async {
            metric(
                admin,
                "sslvpn_connections_closed_total{reason=\"tls_handshake_failed\"}",
            )
            .await
                == 1.0
        },
    )
    .await;
    server.shutdown().await.unwrap();
}

/// The gateway's resident memory, from /proc (Linux).
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// The real binary, 2,000 silent connections from one peer, its memory
/// before and while they are held: with the default caps, and with the
/// per-peer cap lifted so that all of them are held.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_memory_of_two_thousand_silent_connections_stays_bounded() {
    let files = Files::new();
    let tokens = files.write("tokens", &token_line("ops", TOKEN));
    for (label, extra, bound_kib) in [
        // The defaults: the cap per peer holds the memory, whatever comes.
        ("default caps", &[][..], 16 * 1024),
        // Every one held (until the handshake timeout): what each costs.
        (
            "caps lifted",
            &[
                "--max-connections",
                "4096",
                "--max-connections-per-peer",
                "0",
            ][..],
            256 * 1024,
        ),
    ] {
        let mut args = vec![
            "--endpoint",
            "http://127.0.0.1:9",
            "--auth-tokens",
            tokens.to_str().unwrap(),
            "--handshake-timeout",
            "60s",
        ];
        args.extend_from_slice(extra);
        let gateway = Gateway::start(
            &args,
            &[
                ("ALIBABA_CLOUD_ACCESS_KEY_ID", "test-key-id"),
                ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "test-key-secret"),
            ],
        )
        .await;
        let addr: SocketAddr = gateway.addr.parse().unwrap();
        let pid = gateway.child.id().unwrap();
        let health = || async {
            let channel = harness::channel(format!("http://{addr}")).await;
            tonic_health::pb::health_client::HealthClient::new(channel)
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .is_ok()
        };
        assert!(health().await);
        let before = resident_kib(pid);
        let silent = silent_connections(addr).await;
        // Accepted in order: once a later connection is served, every
        // silent one has been taken (held or refused).
        assert!(health().await, "{label}: served meanwhile");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let during = resident_kib(pid);
        let grown = during.saturating_sub(before);
        eprintln!(
            "figure: {label}: {SILENT} silent connections from one peer: resident memory \
             {before} KiB before, {during} KiB with them (+{grown} KiB, {:.1} KiB each)",
            grown as f64 / SILENT as f64
        );
        assert!(grown < bound_kib, "{label}: +{grown} KiB");
        drop(silent);
        drop(gateway);
    }
}

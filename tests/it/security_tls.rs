//! TLS and mTLS on the gRPC listener: who gets through the handshake, the
//! identity a client certificate carries, and certificates that reload
//! (SIGHUP) without dropping connections.

use std::time::Duration;

use sslvpn_gateway::{
    access::AccessConfig,
    emulator::EmulatorConfig,
    pb::{self, ssl_vpn_service_client::SslVpnServiceClient},
    server::config::ServeConfig,
};
use tonic::{Code, transport::Channel};

use crate::support::{
    Files, eventually,
    harness::{self, GATEWAY, SERVER, gateway_config, start_emulator, start_server},
    procs::Gateway,
    secure::{Ca, Pair, tls_channel, token_line, with_token, write_tls},
};

const DEPLOYER: &str = "spiffe://test.example/ns/netops/sa/deployer";
const POLICY: &str =
    r#"{"version":2,"rules":[{"identities":["spiffe://test.example/ns/netops/**"],"rpcs":["*"]}]}"#;
const TOKEN: &str = "tls-token-5f4e3d2c1b0a99887766554433221100";

/// Connects with `client` (if any) and asks for the status: the code the
/// caller ends up with, whether the handshake or the call refused it.
async fn status_code(
    addr: std::net::SocketAddr,
    ca: &Ca,
    client: Option<&Pair>,
    token: Option<&str>,
) -> Code {
    let channel = match tls_channel(addr, &ca.cert_pem, client).await {
        Ok(channel) => channel,
        Err(_) => return Code::Unavailable,
    };
    match SslVpnServiceClient::new(channel)
        .get_ssl_vpn_server_status(with_token(harness::status_request(SERVER), token))
        .await
    {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test]
async fn mtls_lets_in_only_certificates_of_the_client_ca() {
    let files = Files::new();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let ca = Ca::new("gateway CA");
    let other_ca = Ca::new("someone else's CA");
    let config = ServeConfig {
        security: AccessConfig {
            tls: Some(write_tls(&files, &ca.server(), Some(&ca))),
            policy_file: Some(files.write("policy.json", POLICY)),
            ..AccessConfig::default()
        },
        ..gateway_config(&emulator)
    };
    let server = start_server(config).await;
    let addr = server.local_addr();

    // No certificate: the handshake fails (CertificateRequired).
    let code = status_code(addr, &ca, None, None).await;
    assert!(
        matches!(code, Code::Unavailable | Code::Unknown),
        "{code:?}"
    );
    // A certificate from another CA: refused the same way, and a bearer
    // token does not help (none are configured).
    let stranger = other_ca.client(Some(DEPLOYER), None);
    let code = status_code(addr, &ca, Some(&stranger), Some(TOKEN)).await;
    assert!(
        matches!(code, Code::Unavailable | Code::Unknown),
        "{code:?}"
    );
    // A valid certificate whose SAN URI the policy grants.
    let deployer = ca.client(Some(DEPLOYER), Some("ignored.test.example"));
    assert_eq!(
        status_code(addr, &ca, Some(&deployer), None).await,
        Code::Ok
    );
    // Valid, but naming (by DNS SAN) someone the policy does not grant.
    let dashboard = ca.client(None, Some("dashboard.test.example"));
    assert_eq!(
        status_code(addr, &ca, Some(&dashboard), None).await,
        Code::PermissionDenied
    );
    // Valid, but naming nobody.
    let nameless = ca.client(None, None);
    assert_eq!(
        status_code(addr, &ca, Some(&nameless), None).await,
        Code::Unauthenticated
    );
    // Plaintext against the TLS listener gets nowhere.
    let plaintext = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect()
        .await;
    if let Ok(channel) = plaintext {
        let result = SslVpnServiceClient::new(channel)
            .get_ssl_vpn_server_status(harness::status_request(SERVER))
            .await;
        assert!(result.is_err());
    }
    // Health is served over TLS too, to a client with a certificate.
    let channel = tls_channel(addr, &ca.cert_pem, Some(&deployer))
        .await
        .unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(health.into_inner().status, 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn with_tokens_too_a_client_certificate_becomes_optional() {
    let files = Files::new();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let ca = Ca::new("gateway CA");
    let mut tls = write_tls(&files, &ca.server(), Some(&ca));
    tls.client_cert_optional = true;
    let config = ServeConfig {
        security: AccessConfig {
            tls: Some(tls),
            tokens_file: Some(files.write(
                "tokens",
                &token_line("spiffe://test.example/ns/netops/sa/ci", TOKEN),
            )),
            policy_file: Some(files.write("policy.json", POLICY)),
            ..AccessConfig::default()
        },
        ..gateway_config(&emulator)
    };
    let server = start_server(config).await;
    let addr = server.local_addr();
    let deployer = ca.client(Some(DEPLOYER), None);
    assert_eq!(status_code(addr, &ca, None, Some(TOKEN)).await, Code::Ok);
    assert_eq!(
        status_code(addr, &ca, Some(&deployer), None).await,
        Code::Ok
    );
    assert_eq!(
        status_code(addr, &ca, None, None).await,
        Code::Unauthenticated
    );
    // A wrong token is refused even beside a valid certificate.
    assert_eq!(
        status_code(addr, &ca, Some(&deployer), Some("not-the-token")).await,
        Code::Unauthenticated
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn certificates_reload_without_dropping_connections() {
    let files = Files::new();
    let emulator = start_emulator(EmulatorConfig {
        timings: harness::timings(0, 0),
        ..EmulatorConfig::default()
    })
    .await;
    let old_ca = Ca::new("old CA");
    let new_ca = Ca::new("new CA");
    let tokens = files.write("tokens", &token_line("ops", TOKEN));
    let config = ServeConfig {
        security: AccessConfig {
            tls: Some(write_tls(&files, &old_ca.server(), None)),
            tokens_file: Some(tokens),
            ..AccessConfig::default()
        },
        ..gateway_config(&emulator)
    };
    let server = start_server(config).await;
    let addr = server.local_addr();

    // A connection made before the reload, with a watch stream open on it.
    let channel = tls_channel(addr, &old_ca.cert_pem, None).await.unwrap();
    let mut client = SslVpnServiceClient::new(channel);
    let mut stream = client
        .watch_ssl_vpn_server(with_token(harness::follow(SERVER), Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.gateway.unwrap().vpn_gateway_id, GATEWAY);

    // The operator installs a certificate from another CA and reloads.
    let renewed = new_ca.server();
    files.write("server.pem", &renewed.cert_pem);
    files.write("server.key", &renewed.key_pem);
    server.reload_security().unwrap();

    // New connections get the new certificate...
    assert_eq!(
        status_code(addr, &new_ca, None, Some(TOKEN)).await,
        Code::Ok
    );
    assert_eq!(
        status_code(addr, &old_ca, None, Some(TOKEN)).await,
        Code::Unavailable
    );
    // ...while the old connection still carries calls, and its stream
    // still delivers: a change made through it shows up on it.
    client
        .modify_ssl_vpn_server(with_token(
            pb::ModifySslVpnServerRequest {
                name: Some("after-reload".into()),
                ..harness::modify(SERVER)
            },
            Some(TOKEN),
        ))
        .await
        .unwrap();
    let renamed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let message = stream
                .message()
                .await
                .unwrap()
                .expect("the stream stays open");
            if message
                .ssl_vpn_server
                .as_ref()
                .is_some_and(|s| s.name == "after-reload")
            {
                return message;
            }
        }
    })
    .await
    .expect("the open stream saw the change");
    assert!(renamed.ssl_vpn_server.is_some());

    // A broken key file: the reload fails, says which file, quotes nothing,
    // and the certificate in force keeps serving.
    let garbage = "-----BEGIN PRIVATE KEY-----\nTm90QUtleQ!!!\n-----END PRIVATE KEY-----\n";
    files.write("server.key", garbage);
    let err = server.reload_security().unwrap_err().to_string();
    assert!(err.contains("server.key"), "{err}");
    assert!(!err.contains("Tm90QUtleQ"), "{err}");
    assert_eq!(
        status_code(addr, &new_ca, None, Some(TOKEN)).await,
        Code::Ok
    );
    server.shutdown().await.unwrap();
}

/// The real binary, a real SIGHUP.
#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_the_running_gateway() {
    let files = Files::new();
    let old_ca = Ca::new("old CA");
    let new_ca = Ca::new("new CA");
    let tls = write_tls(&files, &old_ca.server(), None);
    let tokens = files.write("tokens", &token_line("ops", TOKEN));
    let gateway = Gateway::start(
        &[
            "--endpoint",
            "http://127.0.0.1:9",
            "--tls-cert",
            tls.cert.to_str().unwrap(),
            "--tls-key",
            tls.key.to_str().unwrap(),
            "--auth-tokens",
            tokens.to_str().unwrap(),
        ],
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "test-key-id"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "test-key-secret"),
        ],
    )
    .await;
    let addr: std::net::SocketAddr = gateway.addr.parse().unwrap();

    let health = |ca: &Ca| {
        let pem = ca.cert_pem.clone();
        async move {
            match tls_channel(addr, &pem, None).await {
                Ok(channel) => tonic_health::pb::health_client::HealthClient::new(channel)
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await
                    .is_ok(),
                Err(_) => false,
            }
        }
    };
    // Serving (and so handling SIGHUP) with the first certificate.
    eventually("the gateway serves", Duration::from_secs(30), || {
        health(&old_ca)
    })
    .await;
    let renewed = new_ca.server();
    files.write("server.pem", &renewed.cert_pem);
    files.write("server.key", &renewed.key_pem);
    gateway.signal("HUP").await;
    eventually("SIGHUP reloads", Duration::from_secs(10), || {
        health(&new_ca)
    })
    .await;
    assert!(!health(&old_ca).await);
}

//! A full scenario with known secrets everywhere — bearer tokens, private
//! keys, the cloud access key secret and an STS token — and then every
//! captured log line (span fields included), every gRPC error the callers
//! saw and the `Debug`/`Display` of the security types searched for them:
//! zero hits. Positive controls prove the capture caught the scenario.
//!
//! The test runs in a process of its own (`support::in_own_process`): it
//! installs the process's tracing subscriber.

use std::time::Duration;

use sslvpn_gateway::{
    access::limits::LimitsConfig,
    access::{Access, AccessConfig},
    cloud::{Credentials, RetryPolicy, SignatureVersion},
    emulator::{EmulatorConfig, EmulatorHandle, Fixtures, fixtures::AccessKey},
    pb::{self, ssl_vpn_service_client::SslVpnServiceClient},
    server::config::{CredentialSource, ServeConfig},
};
use tracing_subscriber::fmt::format::FmtSpan;

use crate::support::{
    Capture, Files,
    harness::{self, SERVER, start_emulator},
    in_own_process,
    secure::{Ca, tls_channel, token_line, with_token, write_tls},
};

const ALICE_TOKEN: &str = "AliceBearer-3f9a1c7e5b2d4086a1b2c3d4e5f60718";
const BOB_TOKEN: &str = "BobBearer-8e7d6c5b4a39281706f5e4d3c2b1a0ff";
const WRONG_TOKEN: &str = "WrongBearer-0000111122223333444455556666777";
const PASTED_TOKEN: &str = "PastedPlainToken-aa55aa55aa55aa55aa55aa55";
const KEY_ID: &str = "STS.KNOWNSCANKEYID";
const KEY_SECRET: &str = "KnownScanSecret-71c2e9d04b8a6f35";
const WRONG_SECRET: &str = "WrongScanSecret-5d1f08a3c7e29b64";
const STS_TOKEN: &str = "CAIS.KnownScan+Sts/Token==Zq8w";
const POLICY: &str = r#"{"rules":[
  {"identities":["alice","spiffe://scan.example/ops"],"rpcs":["*"],"gateways":["vpn-hz1primary"]}
]}"#;

fn percent(s: &str) -> String {
    sslvpn_gateway::cloud::sign::percent_encode(s)
}

/// The harness's gateway with these credentials and signature, and two
/// quick attempts per call.
fn gateway_config(
    emulator: &EmulatorHandle,
    credentials: Credentials,
    version: SignatureVersion,
) -> ServeConfig {
    let mut config = harness::gateway_config(emulator);
    config.credentials = CredentialSource::Static(credentials);
    config.cloud.signature_version = version;
    config.cloud.retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
        max_total: Duration::from_secs(2),
    };
    config
}

/// Everything a caller saw of a status.
fn shown(status: &tonic::Status) -> String {
    format!(
        "{} | {} | {:?} | {:?}",
        status.message(),
        String::from_utf8_lossy(status.details()),
        status.metadata(),
        status
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_spans_errors_or_debug_output() {
    if !in_own_process("security_secrets::no_secret_reaches_logs_spans_errors_or_debug_output")
        .await
    {
        return;
    }
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
        .try_init()
        .expect("the only subscriber in this process");

    let files = Files::new();
    let ca = Ca::new("scan CA");
    let server_pair = ca.server();
    let client_pair = ca.client(Some("spiffe://scan.example/ops"), None);
    let mut tls = write_tls(&files, &server_pair, Some(&ca));
    tls.client_cert_optional = true;
    let tokens = files.write(
        "tokens",
        &(token_line("alice", ALICE_TOKEN) + &token_line("bob", BOB_TOKEN)),
    );
    let security = AccessConfig {
        tls: Some(tls),
        tokens_file: Some(tokens),
        policy_file: Some(files.write("policy.json", POLICY)),
        limits: LimitsConfig {
            rate_per_caller: 1.0,
            burst_per_caller: 8,
            ..LimitsConfig::default()
        },
        ..AccessConfig::default()
    };

    let mut fixtures = Fixtures::default_set();
    fixtures.access_keys.push(AccessKey {
        security_token: Some(STS_TOKEN.into()),
        ..AccessKey::new(KEY_ID, KEY_SECRET)
    });
    let emulator = start_emulator(EmulatorConfig {
        fixtures,
        timings: harness::timings(50, 200),
        ..EmulatorConfig::default()
    })
    .await;
    let sts = Credentials::new(KEY_ID, KEY_SECRET).with_security_token(STS_TOKEN);
    let config = ServeConfig {
        security: security.clone(),
        ..gateway_config(&emulator, sts.clone(), SignatureVersion::V3)
    };
    let mut debug_outputs = vec![format!("{config:?}"), format!("{:?}", config.security)];
    let gateway = harness::start_server(config.clone()).await;
    let addr = gateway.local_addr();
    let mut statuses: Vec<tonic::Status> = Vec::new();

    // alice, by token: modify, follow it to the end, read the status.
    let mut client = SslVpnServiceClient::new(tls_channel(addr, &ca.cert_pem, None).await.unwrap());
    let reply = client
        .modify_ssl_vpn_server(with_token(
            harness::port_change(SERVER, 1195),
            Some(ALICE_TOKEN),
        ))
        .await
        .unwrap()
        .into_inner();
    let operation = reply.operation.unwrap().id;
    let stream = client
        .watch_ssl_vpn_server(with_token(
            harness::watch(SERVER, &operation),
            Some(ALICE_TOKEN),
        ))
        .await
        .unwrap()
        .into_inner();
    let messages = harness::collect(stream).await;
    assert_eq!(
        harness::phases(&messages).last(),
        Some(&pb::Phase::Succeeded)
    );
    // The client certificate's identity.
    let mut by_cert = SslVpnServiceClient::new(
        tls_channel(addr, &ca.cert_pem, Some(&client_pair))
            .await
            .unwrap(),
    );
    by_cert
        .get_ssl_vpn_server_status(harness::status_request(SERVER))
        .await
        .unwrap();
    // Refusals: another identity, a wrong token, a forbidden gateway, a
    // malformed header, no credentials; then bob until rate-limited.
    for (token, server) in [
        (Some(BOB_TOKEN), SERVER),
        (Some(WRONG_TOKEN), SERVER),
        (Some(ALICE_TOKEN), "vss-hz1peer"),
        (None, SERVER),
    ] {
        statuses.push(
            client
                .get_ssl_vpn_server_status(with_token(harness::status_request(server), token))
                .await
                .unwrap_err(),
        );
    }
    let mut malformed = tonic::Request::new(harness::status_request(SERVER));
    malformed.metadata_mut().insert(
        "authorization",
        format!("Token {ALICE_TOKEN}").parse().unwrap(),
    );
    statuses.push(
        client
            .get_ssl_vpn_server_status(malformed)
            .await
            .unwrap_err(),
    );
    let mut limited = false;
    for _ in 0..20 {
        let status = client
            .get_ssl_vpn_server_status(with_token(harness::status_request(SERVER), Some(BOB_TOKEN)))
            .await
            .unwrap_err();
        limited = status.code() == tonic::Code::ResourceExhausted;
        statuses.push(status);
        if limited {
            break;
        }
    }
    assert!(limited, "bob was never rate-limited");

    // The cloud refuses the gateway's own credentials; the legacy
    // signature's error echoes a string-to-sign that holds the STS token.
    for (version, secret) in [
        (SignatureVersion::V1, WRONG_SECRET),
        (SignatureVersion::V3, WRONG_SECRET),
    ] {
        let wrong = Credentials::new(KEY_ID, secret).with_security_token(STS_TOKEN);
        let config = gateway_config(&emulator, wrong, version);
        debug_outputs.push(format!("{config:?}"));
        let (broken, mut plain) = harness::start_gateway(config).await;
        let status = plain
            .get_ssl_vpn_server_status(harness::status_request(SERVER))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");
        statuses.push(status);
        broken.shutdown().await.unwrap();
    }

    // Debug and Display of the security types and of their errors.
    let loaded = Access::load(&security, Default::default()).unwrap();
    debug_outputs.push(format!("{loaded:?}"));
    debug_outputs.push(format!(
        "{:?}",
        sslvpn_gateway::access::TokenStore::parse(&token_line("alice", ALICE_TOKEN))
    ));
    let pasted = files.write("pasted-tokens", &format!("alice {PASTED_TOKEN}\n"));
    let err = sslvpn_gateway::access::TokenStore::load(&pasted).unwrap_err();
    debug_outputs.push(format!("{err} {err:?}"));
    let key_lines: Vec<&str> = server_pair
        .key_pem
        .lines()
        .chain(client_pair.key_pem.lines())
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!key_lines.is_empty());
    // A key file damaged in the middle: the error must not quote it.
    let mut damaged: Vec<String> = server_pair.key_pem.lines().map(str::to_owned).collect();
    damaged.insert(1, "!!not base64!!".into());
    let mut bad_tls = security.tls.clone().unwrap();
    bad_tls.key = files.write("damaged.key", &damaged.join("\n"));
    let err = sslvpn_gateway::access::tls::server_config(&bad_tls).unwrap_err();
    debug_outputs.push(format!("{err} {err:?}"));
    bad_tls.key = files.write("cert-as-key.key", &server_pair.cert_pem);
    let err = sslvpn_gateway::access::tls::server_config(&bad_tls).unwrap_err();
    debug_outputs.push(format!("{err} {err:?}"));
    // The PEM parser's own error for the damaged file would have quoted it:
    // the mapping matters.
    files.write("damaged.key", &damaged.join("\n"));
    files.write("server.key", &damaged.join("\n"));
    let err = gateway.reload_security().unwrap_err();
    debug_outputs.push(format!("{err} {err:?}"));

    gateway.shutdown().await.unwrap();
    emulator.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let logs = capture.text();
    let errors: Vec<String> = statuses.iter().map(shown).collect();
    let haystacks = [
        ("logs", logs.clone()),
        ("errors", errors.join("\n")),
        ("debug", debug_outputs.join("\n")),
    ];

    let mut secrets: Vec<(String, String)> = vec![
        ("alice's token".into(), ALICE_TOKEN.into()),
        ("bob's token".into(), BOB_TOKEN.into()),
        ("a wrong token".into(), WRONG_TOKEN.into()),
        ("a pasted token".into(), PASTED_TOKEN.into()),
        ("the access key secret".into(), KEY_SECRET.into()),
        ("a wrong secret".into(), WRONG_SECRET.into()),
        ("the STS token".into(), STS_TOKEN.into()),
        ("the STS token, encoded".into(), percent(STS_TOKEN)),
        (
            "the STS token, encoded twice".into(),
            percent(&percent(STS_TOKEN)),
        ),
    ];
    secrets.extend(
        key_lines
            .iter()
            .map(|l| ("a private key line".to_owned(), (*l).to_owned())),
    );
    let mut hits = Vec::new();
    for (what, secret) in &secrets {
        for (place, text) in &haystacks {
            if text.contains(secret.as_str()) {
                hits.push(format!("{what} in {place}"));
            }
        }
    }
    assert!(hits.is_empty(), "secrets leaked: {hits:?}");

    // Positive controls: the capture saw the scenario, identities included.
    for expected in [
        "enduser.id=\"alice\"",
        "enduser.id=\"spiffe://scan.example/ops\"",
        "decision=\"deny\"",
        "decision=\"allow\"",
        "decision=\"unauthenticated\"",
        "decision=\"rate_limited\"",
        "reason=\"unknown_token\"",
        "SignatureDoesNotMatch",
        "Forbidden.Policy",
    ] {
        assert!(
            logs.contains(expected) || errors.join("\n").contains(expected),
            "{expected} not captured"
        );
    }
}

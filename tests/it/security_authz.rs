//! Who may do what: bearer tokens, the policy, and the exact gRPC code for
//! every combination of credentials, RPC and resource.

use sslvpn_gateway::{
    access::{AccessConfig, limits::LimitsConfig},
    emulator::{EmulatorConfig, EmulatorHandle},
    pb,
    server::ServerHandle,
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::{
    Files,
    harness::{self, Client, gateway_config, start_emulator, start_gateway},
    secure::{token_line, with_token},
};

const ALICE_TOKEN: &str = "alice-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const BOB_TOKEN: &str = "bob-00112233445566778899aabbccddeeff";
const WRONG_TOKEN: &str = "alice-0f1e2d3c4b5a69788796a5b4c3d2e1f1";

/// alice: every RPC, but only on gateway vpn-hz1primary; bob: status in
/// cn-shanghai only.
const POLICY: &str = r#"{"rules":[
  {"identities":["alice"],"rpcs":["*"],"regions":["cn-hangzhou"],"servers":["*"],"gateways":["vpn-hz1primary"]},
  {"identities":["bob"],"rpcs":["GetSslVpnServerStatus"],"regions":["cn-shanghai"]}
]}"#;

/// On vpn-hz1primary: allowed to alice.
const ALLOWED: &str = "vss-hz1primary";
/// On vpn-hz1peer: its id matches alice's `servers: ["*"]`, so only the
/// gateway check (after the lookup) can refuse it.
const FORBIDDEN: &str = "vss-hz1peer";

fn security(files: &Files, policy: Option<&str>) -> AccessConfig {
    let tokens = format!(
        "# test identities\n{}{}",
        token_line("alice", ALICE_TOKEN),
        token_line("bob", BOB_TOKEN)
    );
    AccessConfig {
        tokens_file: Some(files.write("tokens", &tokens)),
        policy_file: policy.map(|p| files.write("policy.json", p)),
        // The matrix fails to authenticate more often than the per-address
        // throttle allows, all from 127.0.0.1: that is security_throttle's
        // subject, not this file's.
        limits: LimitsConfig {
            auth_failures_per_peer: 0,
            ..LimitsConfig::default()
        },
        ..AccessConfig::default()
    }
}

/// An emulator, and a gateway with the test tokens and POLICY; the files
/// live as long as the returned `Files` (which can rewrite them).
async fn start_with_policy() -> (Files, EmulatorHandle, ServerHandle, Client) {
    let files = Files::new();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let config = sslvpn_gateway::server::config::ServeConfig {
        security: security(&files, Some(POLICY)),
        ..gateway_config(&emulator)
    };
    let (server, client) = start_gateway(config).await;
    (files, emulator, server, client)
}

#[derive(Clone, Copy, Debug)]
enum Rpc {
    Modify,
    Status,
    Watch,
}

/// Calls `rpc` on `server` with `token`; the code it ends with (a watch
/// counts as OK once its first message arrives).
async fn call(client: &mut Client, rpc: Rpc, server: &str, token: Option<&str>) -> tonic::Status {
    let result = match rpc {
        Rpc::Modify => client
            .modify_ssl_vpn_server(with_token(
                pb::ModifySslVpnServerRequest {
                    name: Some("renamed".into()),
                    ..harness::modify(server)
                },
                token,
            ))
            .await
            .map(|_| ()),
        Rpc::Status => client
            .get_ssl_vpn_server_status(with_token(harness::status_request(server), token))
            .await
            .map(|_| ()),
        Rpc::Watch => match client
            .watch_ssl_vpn_server(with_token(harness::watch(server, ""), token))
            .await
        {
            Ok(stream) => {
                let first = stream.into_inner().message().await;
                first.map(|m| assert!(m.is_some(), "a watch sends the current state first"))
            }
            Err(status) => Err(status),
        },
    };
    match result {
        Ok(()) => tonic::Status::ok(""),
        Err(status) => status,
    }
}

#[tokio::test]
async fn credentials_rpcs_and_resources_matrix() {
    let (_files, emulator, server, mut client) = start_with_policy().await;

    let credentials = [
        ("no credentials", None),
        ("wrong token", Some(WRONG_TOKEN)),
        ("another identity", Some(BOB_TOKEN)),
        ("valid identity", Some(ALICE_TOKEN)),
    ];
    let mut failures = Vec::new();
    for (who, token) in credentials {
        for rpc in [Rpc::Modify, Rpc::Status, Rpc::Watch] {
            for (resource, server_id) in [("allowed", ALLOWED), ("forbidden", FORBIDDEN)] {
                let expected = match (who, resource) {
                    ("no credentials" | "wrong token", _) => Code::Unauthenticated,
                    ("another identity", _) => Code::PermissionDenied,
                    (_, "allowed") => Code::Ok,
                    _ => Code::PermissionDenied,
                };
                let status = call(&mut client, rpc, server_id, token).await;
                if status.code() != expected {
                    failures.push(format!(
                        "{who} / {rpc:?} / {resource}: expected {expected:?}, got {:?} ({})",
                        status.code(),
                        status.message()
                    ));
                }
                if status.code() == Code::PermissionDenied {
                    // Nothing the caller may not see: no gateway, no rule.
                    let shown = format!(
                        "{} {:?}",
                        status.message(),
                        status.get_error_details().error_info()
                    );
                    for hidden in [
                        "vpn-hz1peer",
                        "vpn-hz1primary",
                        "cn-shanghai",
                        "alice",
                        "bob",
                    ] {
                        assert!(!shown.contains(hidden), "{hidden} in {shown}");
                    }
                }
                if status.code() == Code::Unauthenticated {
                    for token in [ALICE_TOKEN, BOB_TOKEN, WRONG_TOKEN] {
                        assert!(!status.message().contains(token));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    // Only alice's one allowed modify reached the cloud.
    assert_eq!(emulator.counters().total("ModifySslVpnServer"), 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn what_no_rule_can_grant_is_refused_before_any_cloud_call() {
    let (_files, emulator, server, mut client) = start_with_policy().await;
    let before = emulator.counters().total("DescribeSslVpnServers");
    // bob may read status, but only in cn-shanghai.
    let status = call(&mut client, Rpc::Status, ALLOWED, Some(BOB_TOKEN)).await;
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = call(&mut client, Rpc::Watch, ALLOWED, Some(BOB_TOKEN)).await;
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(emulator.counters().total("DescribeSslVpnServers"), before);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn once_a_servers_gateway_is_known_the_gateway_rule_refuses_before_any_read() {
    let (_files, emulator, server, mut client) = start_with_policy().await;
    let reads = || {
        let c = emulator.counters();
        c.total("DescribeSslVpnServers") + c.total("DescribeVpnGateway")
    };
    // The first refusal needs the server read to learn its gateway.
    let first = call(&mut client, Rpc::Status, FORBIDDEN, Some(ALICE_TOKEN)).await;
    assert_eq!(first.code(), Code::PermissionDenied);
    let after_first = reads();
    assert_eq!(after_first, 1);
    // From then on the gateway is known: every RPC is refused before any
    // cloud call.
    for rpc in [Rpc::Modify, Rpc::Status, Rpc::Watch] {
        let again = call(&mut client, rpc, FORBIDDEN, Some(ALICE_TOKEN)).await;
        assert_eq!(again.code(), Code::PermissionDenied, "{rpc:?}");
        assert_eq!(reads(), after_first, "{rpc:?} read the cloud");
    }
    assert_eq!(emulator.counters().total("ModifySslVpnServer"), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_a_policy_every_authenticated_caller_may_do_everything() {
    let files = Files::new();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let config = sslvpn_gateway::server::config::ServeConfig {
        security: security(&files, None),
        ..gateway_config(&emulator)
    };
    let (server, mut client) = start_gateway(config).await;
    for rpc in [Rpc::Modify, Rpc::Status, Rpc::Watch] {
        for server_id in [ALLOWED, FORBIDDEN] {
            assert_eq!(
                call(&mut client, rpc, server_id, Some(BOB_TOKEN))
                    .await
                    .code(),
                Code::Ok
            );
            assert_eq!(
                call(&mut client, rpc, server_id, None).await.code(),
                Code::Unauthenticated
            );
        }
    }
    // Health stays open for probes.
    let channel = harness::channel(format!("http://{}", server.local_addr())).await;
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(health.into_inner().status, 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_policy_edit_applies_on_reload_and_a_broken_one_changes_nothing() {
    let (files, _emulator, server, mut client) = start_with_policy().await;
    assert_eq!(
        call(&mut client, Rpc::Status, FORBIDDEN, Some(ALICE_TOKEN))
            .await
            .code(),
        Code::PermissionDenied
    );
    // A typo: refused, and the policy in force stays.
    files.write(
        "policy.json",
        r#"{"rules":[{"identities":["alice"],"rpcs":["*"],"gateway":["*"]}]}"#,
    );
    let err = server.reload_security().unwrap_err().to_string();
    assert!(
        err.contains("policy.json") && err.contains("unknown field"),
        "{err}"
    );
    assert_eq!(
        call(&mut client, Rpc::Status, FORBIDDEN, Some(ALICE_TOKEN))
            .await
            .code(),
        Code::PermissionDenied
    );
    files.write(
        "policy.json",
        r#"{"rules":[{"identities":["alice"],"rpcs":["GetSslVpnServerStatus"],"gateways":["vpn-hz1*"]}]}"#,
    );
    server.reload_security().unwrap();
    assert_eq!(
        call(&mut client, Rpc::Status, FORBIDDEN, Some(ALICE_TOKEN))
            .await
            .code(),
        Code::Ok
    );
    assert_eq!(
        call(&mut client, Rpc::Modify, ALLOWED, Some(ALICE_TOKEN))
            .await
            .code(),
        Code::PermissionDenied
    );
    // Tokens reload too: bob's token is revoked.
    files.write("tokens", &token_line("alice", ALICE_TOKEN));
    server.reload_security().unwrap();
    assert_eq!(
        call(&mut client, Rpc::Status, ALLOWED, Some(BOB_TOKEN))
            .await
            .code(),
        Code::Unauthenticated
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn globs_respect_path_segments_and_the_old_star_is_refused() {
    let files = Files::new();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    // Token identities may hold `/`, as SPIFFE ids do.
    const TEAM: &str = "team-0f1e2d3c4b5a69788796a5b4c3d2e1f0aa";
    const NESTED: &str = "nested-0f1e2d3c4b5a69788796a5b4c3d2e1f0bb";
    let tokens = files.write(
        "tokens",
        &(token_line("team/alice", TEAM) + &token_line("team/ops/bob", NESTED)),
    );
    // Written for the old `*`, which crossed `/`: refused at start, naming
    // what changed and what to write.
    let old = files.write(
        "policy.json",
        r#"{"rules":[{"identities":["team/*"],"rpcs":["*"]}]}"#,
    );
    let config = sslvpn_gateway::server::config::ServeConfig {
        security: AccessConfig {
            tokens_file: Some(tokens),
            policy_file: Some(old),
            ..AccessConfig::default()
        },
        ..gateway_config(&emulator)
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = sslvpn_gateway::server::start(config.clone(), listener)
        .await
        .err()
        .expect("a policy relying on the old star is refused")
        .to_string();
    assert!(
        err.contains("policy.json") && err.contains(r#""team/**""#) && err.contains("version"),
        "{err}"
    );

    // Version 2: `*` is one segment.
    files.write(
        "policy.json",
        r#"{"version":2,"rules":[{"identities":["team/*"],"rpcs":["GetSslVpnServerStatus"]}]}"#,
    );
    let (server, mut client) = start_gateway(config).await;
    assert_eq!(
        call(&mut client, Rpc::Status, ALLOWED, Some(TEAM))
            .await
            .code(),
        Code::Ok
    );
    assert_eq!(
        call(&mut client, Rpc::Status, ALLOWED, Some(NESTED))
            .await
            .code(),
        Code::PermissionDenied
    );
    // A reload to the old meaning is refused too, and the policy in force stays.
    files.write(
        "policy.json",
        r#"{"rules":[{"identities":["team/*"],"rpcs":["*"]}]}"#,
    );
    let err = server.reload_security().unwrap_err().to_string();
    assert!(err.contains("no longer matches across"), "{err}");
    assert_eq!(
        call(&mut client, Rpc::Status, ALLOWED, Some(NESTED))
            .await
            .code(),
        Code::PermissionDenied
    );
    // `**` crosses segments.
    files.write(
        "policy.json",
        r#"{"rules":[{"identities":["team/**"],"rpcs":["GetSslVpnServerStatus"]}]}"#,
    );
    server.reload_security().unwrap();
    assert_eq!(
        call(&mut client, Rpc::Status, ALLOWED, Some(NESTED))
            .await
            .code(),
        Code::Ok
    );
    server.shutdown().await.unwrap();
}

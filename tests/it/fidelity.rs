//! Closer to the real VPC API (issue 13), through the gateway on the
//! emulator: the cloud's own not-found code for a gateway, and which codes
//! are the gateway's own (`origin` in ErrorInfo).

use prost::Message;
use sslvpn_gateway::pb;
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::harness::*;

/// A watch's FAILED `error` as a status, to read its details.
fn as_status(rpc: &tonic_types::pb::Status) -> tonic::Status {
    tonic::Status::with_details(
        Code::from(rpc.code),
        rpc.message.clone(),
        rpc.encode_to_vec().into(),
    )
}

#[tokio::test]
async fn a_gateway_that_is_gone_fails_the_watch_with_the_clouds_not_found_code() {
    let mut s = stack_with_timings(100, 100).await;
    let mut stream = s
        .client
        .watch_ssl_vpn_server(follow(SERVER))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.phase(), pb::Phase::Succeeded);

    // The gateway (and so its server) is released behind the gateway's back.
    let mut fixtures = s.emulator.emulator().fixtures();
    fixtures
        .ssl_vpn_servers
        .retain(|srv| srv.vpn_gateway_id != GATEWAY);
    fixtures
        .vpn_gateways
        .retain(|gw| gw.vpn_gateway_id != GATEWAY);
    s.emulator.emulator().load_fixtures(&fixtures).unwrap();

    let rest = collect(stream).await;
    let last = rest.last().expect("a terminal message");
    assert_eq!(last.phase(), pb::Phase::Failed, "{rest:?}");
    let error = as_status(last.error.as_ref().expect("why it failed"));
    assert_eq!(error.code(), Code::NotFound);
    // DescribeVpnGateway's reference: 404 InvalidVpnGatewayInstanceId.NotFound.
    assert_eq!(reason(&error), "InvalidVpnGatewayInstanceId.NotFound");
    assert!(
        s.emulator
            .counters()
            .requests("DescribeVpnGateway", "InvalidVpnGatewayInstanceId.NotFound")
            >= 1,
        "the emulator answered the code itself"
    );
}

/// `ErrorInfo.metadata["origin"]` of a refusal.
fn origin(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .and_then(|i| i.metadata.get("origin").cloned())
        .unwrap_or_default()
}

#[tokio::test]
async fn codes_the_gateway_invents_say_so_and_the_clouds_answers_say_theirs() {
    let mut s = stack_with_timings(100, 100).await;
    let ours = [
        // A reserved port: the document lists the ports but names no code.
        (port_change(SERVER, 443), "InvalidParameter.Port"),
        // Too small for 4 x the gateway's 50 connections: no code either.
        (
            pb::ModifySslVpnServerRequest {
                client_ip_pool: Some("192.168.200.0/29".into()),
                ..modify(SERVER)
            },
            "InvalidParameter.ClientIpPool",
        ),
        (
            pb::ModifySslVpnServerRequest {
                local_subnet: Some("127.0.0.0/8".into()),
                ..modify(SERVER)
            },
            "InvalidParameter.LocalSubnet",
        ),
        // A request that changes nothing.
        (modify(SERVER), "MissingParameter"),
        // A documented code, decided by the gateway's own rule.
        (
            pb::ModifySslVpnServerRequest {
                client_ip_pool: Some("10.0.0.0/30".into()),
                ..modify(SERVER)
            },
            "ClientIpPool.NetmaskInvalid",
        ),
    ];
    for (request, code) in ours {
        let refused = s.client.modify_ssl_vpn_server(request).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert_eq!(reason(&refused), code);
        assert_eq!(origin(&refused), "gateway", "{code}");
    }
    assert_eq!(
        s.emulator.counters().total("ModifySslVpnServer"),
        0,
        "none of them reached the cloud"
    );

    // The peer server in the same VPC has 10.20.0.0/24: only the cloud knows.
    let conflict = s
        .client
        .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            client_ip_pool: Some("10.20.0.0/24".into()),
            ..modify(SERVER)
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&conflict), "IpConflict");
    assert_eq!(origin(&conflict), "cloud");
    assert_eq!(
        s.emulator
            .counters()
            .requests("ModifySslVpnServer", "IpConflict"),
        1
    );
}

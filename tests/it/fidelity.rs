//! Closer to the real VPC API (issue 13), through the gateway on the
//! emulator: the cloud's own not-found code for a gateway.

use prost::Message;
use sslvpn_gateway::pb;
use tonic::Code;

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

//! Modify, status and watch end to end, over loopback, against the emulator
//! with an accept lag above zero.

use std::time::Duration;

use sslvpn_gateway::{
    emulator::{ActionFaults, EmulatorConfig, Fault},
    operation::Operation,
    pb,
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::harness::*;

/// SERVER as the gateway reads it now.
async fn current_server(s: &mut Stack) -> pb::SslVpnServer {
    s.client
        .get_ssl_vpn_server_status(status_request(SERVER))
        .await
        .unwrap()
        .into_inner()
        .ssl_vpn_server
        .unwrap()
}

#[tokio::test]
async fn modify_then_watch_goes_pending_applying_succeeded() {
    let mut s = stack_with_timings(300, 300).await;
    let reply = s
        .client
        .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            port: Some(1195),
            local_subnet: Some("172.16.0.0/16,10.8.0.0/24".into()),
            ..modify(SERVER)
        })
        .await
        .expect("accepted")
        .into_inner();
    let op = reply.operation.expect("operation");
    assert!(!op.done, "an asynchronous change is not done on return");
    assert_eq!(op.vpn_gateway_id, GATEWAY);
    assert!(!reply.request_id.is_empty());
    assert!(!reply.client_token.is_empty(), "a token is generated");

    let stream = s
        .client
        .watch_ssl_vpn_server(watch(SERVER, &op.id))
        .await
        .unwrap()
        .into_inner();
    let messages = collect(stream).await;
    let phases = phases(&messages);
    assert_eq!(phases.first(), Some(&pb::Phase::Pending), "{phases:?}");
    assert_eq!(phases.last(), Some(&pb::Phase::Succeeded), "{phases:?}");
    let first_applying = phases
        .iter()
        .position(|p| *p == pb::Phase::Applying)
        .expect("the gateway was seen updating");
    assert!(
        !phases[..first_applying].contains(&pb::Phase::Succeeded),
        "the accept lag read as success: {phases:?}"
    );
    assert_eq!(
        messages[0].pending_fields,
        ["local_subnet", "port"],
        "the first message names what is still pending"
    );
    let last = messages.last().unwrap();
    let server = last
        .ssl_vpn_server
        .as_ref()
        .expect("terminal carries the server");
    assert_eq!(server.port, 1195);
    assert_eq!(server.local_subnet, "172.16.0.0/16,10.8.0.0/24");
    assert!(last.pending_fields.is_empty());
    // One message per change: never the same state twice in a row.
    for pair in messages.windows(2) {
        assert!(
            pair[0].phase != pair[1].phase
                || pair[0].gateway != pair[1].gateway
                || pair[0].ssl_vpn_server != pair[1].ssl_vpn_server,
            "repeated state: {pair:?}"
        );
    }
}

#[tokio::test]
async fn status_reads_the_server_and_its_gateway() {
    let mut s = stack_with_timings(100, 100).await;
    let status = s
        .client
        .get_ssl_vpn_server_status(status_request(SERVER))
        .await
        .unwrap()
        .into_inner();
    let server = status.ssl_vpn_server.unwrap();
    assert_eq!(server.ssl_vpn_server_id, SERVER);
    assert_eq!(server.vpn_gateway_id, GATEWAY);
    let gateway = status.gateway.unwrap();
    assert_eq!(gateway.status(), pb::GatewayStatus::Active);
    assert_eq!(gateway.business_status, "Normal");
    assert!(gateway.observed_at.is_some());

    let missing = s
        .client
        .get_ssl_vpn_server_status(status_request("vss-doesnotexist"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn name_only_is_done_at_once_and_a_no_op_makes_no_cloud_call() {
    let mut s = stack_with_timings(300, 300).await;
    let reply = s
        .client
        .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            name: Some("renamed".into()),
            ..modify(SERVER)
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.operation.unwrap().done);
    assert_eq!(reply.ssl_vpn_server.unwrap().name, "renamed");
    let modifies = s.emulator.counters().total("ModifySslVpnServer");
    assert_eq!(modifies, 1);

    let again = s
        .client
        .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            name: Some("renamed".into()),
            ..modify(SERVER)
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.operation.unwrap().done);
    assert!(again.request_id.is_empty(), "no cloud call, no RequestId");
    assert_eq!(
        s.emulator.counters().total("ModifySslVpnServer"),
        modifies,
        "values that already hold are not sent"
    );
}

#[tokio::test]
async fn a_busy_gateway_is_refused_with_retry_info() {
    let mut s = stack_with_timings(200, 2_000).await;
    s.client
        .modify_ssl_vpn_server(port_change(SERVER, 1195))
        .await
        .unwrap();
    // Still within the accept lag: the gateway reads active, but a change is
    // on its way; the gateway must not cause a VpnGateway.Configuring.
    let refused = s
        .client
        .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            compress: Some(false),
            ..modify(SERVER)
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "VpnGateway.Configuring");
    assert!(refused.get_error_details().retry_info().is_some());
    // Once the gateway is updating, the same answer, from its status.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let refused = s
        .client
        .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            compress: Some(false),
            ..modify(SERVER)
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(
        s.emulator
            .counters()
            .requests("ModifySslVpnServer", "VpnGateway.Configuring"),
        0,
        "the cloud never had to refuse"
    );
}

#[tokio::test]
async fn concurrent_modifies_of_one_gateway_apply_once() {
    let s = stack_with_timings(300, 300).await;
    let calls = (0..4).map(|i| {
        let mut client = s.client.clone();
        async move {
            client
                .modify_ssl_vpn_server(port_change(SERVER, 1200 + i))
                .await
        }
    });
    let results = futures_join(calls).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(refused.code(), Code::Aborted | Code::FailedPrecondition),
            "{refused:?}"
        );
        assert!(refused.get_error_details().retry_info().is_some());
    }
    let counters = s.emulator.counters();
    assert_eq!(counters.total("ModifySslVpnServer"), 1);
}

async fn futures_join<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn locked_and_updating_gateways_and_unknown_servers() {
    let mut s = stack_with_timings(100, 100).await;
    let locked = s
        .client
        .modify_ssl_vpn_server(port_change("vss-hz2locked", 1195))
        .await
        .unwrap_err();
    assert_eq!(locked.code(), Code::FailedPrecondition);
    assert_eq!(reason(&locked), "VpnGateway.FinancialLocked");
    let wait = locked
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay);
    assert!(
        wait.is_some_and(|w| w >= Duration::from_secs(60)),
        "a top-up takes a while: {wait:?}"
    );

    let updating = s
        .client
        .modify_ssl_vpn_server(port_change("vss-hz2updating", 1195))
        .await
        .unwrap_err();
    assert_eq!(updating.code(), Code::FailedPrecondition);
    assert_eq!(reason(&updating), "VpnGateway.Configuring");
    assert!(updating.get_error_details().retry_info().is_some());

    let unknown = s
        .client
        .modify_ssl_vpn_server(port_change("vss-doesnotexist", 1195))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(s.emulator.counters().total("ModifySslVpnServer"), 0);
}

#[tokio::test]
async fn cross_field_rules_use_the_merged_configuration() {
    let mut s = stack_with_timings(100, 100).await;
    let current = current_server(&mut s).await;
    let first_subnet = current.local_subnet.split(',').next().unwrap().to_owned();
    // A pool inside the server's current local subnet: only the merged view
    // sees the conflict.
    let conflict = s
        .client
        .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            client_ip_pool: Some(first_subnet.clone()),
            ..modify(SERVER)
        })
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), Code::InvalidArgument, "{conflict:?}");
    let reasons: Vec<String> = conflict
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.reason.clone())
        .collect();
    assert!(reasons.contains(&"IpConflict".to_owned()), "{reasons:?}");

    // A /29 holds 8 addresses: too few for the gateway's connections.
    let small = s
        .client
        .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            client_ip_pool: Some("192.168.200.0/29".into()),
            ..modify(SERVER)
        })
        .await
        .unwrap_err();
    assert_eq!(small.code(), Code::InvalidArgument);
    assert_eq!(reason(&small), "InvalidParameter.ClientIpPool");
    assert_eq!(s.emulator.counters().total("ModifySslVpnServer"), 0);
}

#[tokio::test]
async fn the_same_client_token_applies_once() {
    let mut s = stack_with_timings(300, 300).await;
    let request = pb::ModifySslVpnServerRequest {
        client_token: "retry-me-0001".into(),
        port: Some(1196),
        ..modify(SERVER)
    };
    let first = s
        .client
        .modify_ssl_vpn_server(request.clone())
        .await
        .unwrap()
        .into_inner();
    let second = s
        .client
        .modify_ssl_vpn_server(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.client_token, "retry-me-0001");
    assert_eq!(first.request_id, second.request_id);
    assert_eq!(first.operation, second.operation);
    assert_eq!(
        s.emulator
            .counters()
            .modifications_with_token("retry-me-0001"),
        1
    );
}

#[tokio::test]
async fn a_dropped_answer_is_retried_with_the_same_token_and_applies_once() {
    let mut config = EmulatorConfig {
        timings: timings(100, 100),
        ..EmulatorConfig::default()
    };
    config.faults.insert(
        "ModifySslVpnServer".into(),
        ActionFaults::script([Fault::AppliedThenDrop, Fault::ServiceUnavailable]),
    );
    let mut s = stack(config).await;
    let reply = s
        .client
        .modify_ssl_vpn_server(port_change(SERVER, 1197))
        .await
        .expect("the retry succeeds")
        .into_inner();
    let counters = s.emulator.counters();
    assert_eq!(counters.modifications_with_token(&reply.client_token), 1);
    assert_eq!(
        counters.total("ModifySslVpnServer"),
        3,
        "dropped, 503, then OK"
    );
    let messages = collect(
        s.client
            .watch_ssl_vpn_server(watch(SERVER, &reply.operation.unwrap().id))
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert_eq!(messages.last().unwrap().phase(), pb::Phase::Succeeded);
}

#[tokio::test]
async fn watch_times_out() {
    let mut s = stack_with_timings(10_000, 100).await;
    let reply = s
        .client
        .modify_ssl_vpn_server(port_change(SERVER, 1198))
        .await
        .unwrap()
        .into_inner();
    let messages = collect(
        s.client
            .watch_ssl_vpn_server(pb::WatchSslVpnServerRequest {
                timeout: Some(prost_types::Duration {
                    seconds: 0,
                    nanos: 300_000_000,
                }),
                ..watch(SERVER, &reply.operation.unwrap().id)
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert_eq!(phases(&messages), [pb::Phase::Pending, pb::Phase::TimedOut]);
    assert!(messages.last().unwrap().ssl_vpn_server.is_some());
}

#[tokio::test]
async fn malformed_and_foreign_operation_ids_are_invalid() {
    let mut s = stack_with_timings(100, 100).await;
    let malformed = s
        .client
        .watch_ssl_vpn_server(watch(SERVER, "op1.not-base64!"))
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert_eq!(reason(&malformed), "InvalidParameter.OperationId");

    let reply = s
        .client
        .modify_ssl_vpn_server(port_change(SERVER, 1199))
        .await
        .unwrap()
        .into_inner();
    let id = reply.operation.unwrap().id;
    let foreign = s
        .client
        .watch_ssl_vpn_server(watch("vss-hz1peer", &id))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::InvalidArgument);

    // A well-formed id for the right server that claims another gateway
    // (ids are not signed): refused, so no poller starts on that gateway.
    let mut forged = Operation::decode(&id).unwrap();
    forged.vpn_gateway_id = "vpn-hz1peer".into();
    let polls_before = s.emulator.counters().gateway_polls("vpn-hz1peer");
    let refused = s
        .client
        .watch_ssl_vpn_server(watch(SERVER, &forged.encode()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(reason(&refused), "InvalidParameter.OperationId");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        s.emulator.counters().gateway_polls("vpn-hz1peer"),
        polls_before
    );
}

#[tokio::test]
async fn without_an_operation_an_idle_server_is_done_at_once() {
    let mut s = stack_with_timings(100, 100).await;
    let messages = collect(
        s.client
            .watch_ssl_vpn_server(watch(SERVER, ""))
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert_eq!(phases(&messages), [pb::Phase::Succeeded]);
    assert_eq!(
        messages[0].gateway.as_ref().unwrap().status(),
        pb::GatewayStatus::Active
    );
}

#[tokio::test]
async fn a_followed_watch_ends_failed_when_the_server_goes_away() {
    let mut s = stack_with_timings(100, 100).await;
    let mut stream = s
        .client
        .watch_ssl_vpn_server(follow(SERVER))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.phase(), pb::Phase::Succeeded, "idle: done at once");

    // The server is deleted behind the gateway's back.
    let mut fixtures = s.emulator.emulator().fixtures();
    fixtures
        .ssl_vpn_servers
        .retain(|srv| srv.ssl_vpn_server_id != SERVER);
    s.emulator.emulator().load_fixtures(&fixtures).unwrap();

    // Following does not outlive a failure: FAILED, then the stream closes.
    let rest = collect(stream).await;
    assert_eq!(phases(&rest).last(), Some(&pb::Phase::Failed), "{rest:?}");
    assert!(rest.last().unwrap().error.is_some());
}

#[tokio::test]
async fn a_new_name_beside_values_that_hold_is_sent_alone_and_done_at_once() {
    let mut s = stack_with_timings(300, 300).await;
    let current = current_server(&mut s).await;
    let reply = s
        .client
        .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            name: Some("renamed".into()),
            port: Some(current.port),
            compress: Some(current.compress),
            ..modify(SERVER)
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.operation.unwrap().done, "only the name differed");
    assert_eq!(reply.ssl_vpn_server.unwrap().name, "renamed");
    // The gateway took no update: the next change is accepted at once
    // rather than refused as busy.
    let next = s
        .client
        .modify_ssl_vpn_server(port_change(SERVER, current.port + 1))
        .await
        .unwrap()
        .into_inner();
    assert!(!next.operation.unwrap().done);
    assert_eq!(s.emulator.counters().total("ModifySslVpnServer"), 2);
}

#[tokio::test]
async fn a_watch_without_an_operation_right_after_a_modify_follows_that_change() {
    let mut s = stack_with_timings(300, 300).await;
    s.client
        .modify_ssl_vpn_server(port_change(SERVER, 1201))
        .await
        .unwrap();
    // During the cloud's pick-up lag the gateway still reads active; this
    // replica knows a change is on its way, so that is not "done".
    let messages = collect(
        s.client
            .watch_ssl_vpn_server(watch(SERVER, ""))
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    // A poll reads the gateway, then the server: when the change lands
    // between the two it sees the new values on a gateway still updating,
    // a second APPLYING message (a change of state, so sent).
    let mut seen = phases(&messages);
    seen.dedup();
    assert_eq!(
        seen,
        [
            pb::Phase::Pending,
            pb::Phase::Applying,
            pb::Phase::Succeeded
        ],
        "{messages:?}"
    );
    assert_eq!(
        messages
            .last()
            .unwrap()
            .ssl_vpn_server
            .as_ref()
            .unwrap()
            .port,
        1201
    );
}

//! More than one replica: two gateway processes in front of one emulator.
//! Neither keeps state the other needs — a watch survives its replica's
//! SIGTERM by resuming on the other with the same operation id, and a
//! modify sent to both with one client token applies once.

use std::time::Duration;

use sslvpn_gateway::{
    emulator::{self, EmulatorConfig},
    pb::{self, ssl_vpn_service_client::SslVpnServiceClient},
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::Code;

use crate::support::{
    harness::*,
    procs::{self, Gateway},
};

async fn replicas(emulator: &emulator::EmulatorHandle) -> (Gateway, Gateway) {
    let url = emulator.base_url();
    let start = || {
        Gateway::replica(
            &url,
            emulator::DEMO_ACCESS_KEY_ID,
            emulator::DEMO_ACCESS_KEY_SECRET,
        )
    };
    tokio::join!(start(), start())
}

async fn connect(replica: &Gateway) -> Client {
    SslVpnServiceClient::new(channel(replica.url()).await)
}

#[tokio::test]
async fn one_client_token_sent_to_both_replicas_applies_once() {
    // A long accept lag: both requests land while the change is invisible.
    let emulator = start_emulator(EmulatorConfig {
        timings: timings(1500, 300),
        ..EmulatorConfig::default()
    })
    .await;
    let (a, b) = replicas(&emulator).await;
    let (mut ca, mut cb) = (connect(&a).await, connect(&b).await);
    let token = "replicas-apply-once-0001";
    let request = pb::ModifySslVpnServerRequest {
        client_token: token.into(),
        port: Some(1260),
        ..modify(SERVER)
    };
    let (ra, rb) = tokio::join!(
        ca.modify_ssl_vpn_server(request.clone()),
        cb.modify_ssl_vpn_server(request.clone()),
    );
    let (ra, rb) = (ra.unwrap().into_inner(), rb.unwrap().into_inner());
    assert_eq!(ra.client_token, token);
    assert_eq!(rb.client_token, token);
    // The cloud answered the second with the first answer.
    assert_eq!(ra.request_id, rb.request_id);

    let counters = emulator.counters();
    assert_eq!(counters.modifications_with_token(token), 1, "{counters:?}");
    assert_eq!(counters.modifications_accepted, 1, "{counters:?}");
    assert_eq!(
        counters.total("ModifySslVpnServer"),
        2,
        "both replicas did send it"
    );

    // Either operation id completes on either replica.
    let op = rb.operation.unwrap().id;
    let messages = collect(
        ca.watch_ssl_vpn_server(watch(SERVER, &op))
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    let last = messages.last().unwrap();
    assert_eq!(last.phase(), pb::Phase::Succeeded);
    assert_eq!(last.ssl_vpn_server.as_ref().unwrap().port, 1260);
    assert_eq!(emulator.counters().modifications_completed, 1);
}

#[tokio::test]
async fn a_watch_resumes_on_the_other_replica_after_sigterm() {
    let emulator = start_emulator(EmulatorConfig {
        timings: timings(600, 4000),
        ..EmulatorConfig::default()
    })
    .await;
    let (mut a, b) = replicas(&emulator).await;
    let mut ca = connect(&a).await;
    let op = ca
        .modify_ssl_vpn_server(port_change(SERVER, 1261))
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap()
        .id;

    // A raw stream on the first replica, to see how it ends.
    let mut raw = ca
        .watch_ssl_vpn_server(watch(SERVER, &op))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        raw.message().await.unwrap().unwrap().phase(),
        pb::Phase::Pending
    );

    // The command-line client, first address the replica about to stop.
    let mut cli = procs::command();
    cli.args([
        "client",
        "--addr",
        &format!("{},{}", a.url(), b.url()),
        "--output",
        "json",
        "watch",
        "--region",
        REGION,
        "--server",
        SERVER,
        "--operation-id",
        &op,
    ]);
    let mut cli = cli.spawn().unwrap();
    let mut stdout = BufReader::new(cli.stdout.take().unwrap()).lines();
    let first: serde_json::Value =
        serde_json::from_str(&stdout.next_line().await.unwrap().unwrap()).unwrap();
    assert_ne!(first["phase"], "PHASE_SUCCEEDED", "still in progress");

    a.signal("TERM").await;

    // The first replica tells its watchers to go elsewhere, then exits 0.
    let ended = loop {
        match raw.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream must end with UNAVAILABLE, not OK"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::Unavailable);
    let exit = tokio::time::timeout(Duration::from_secs(5), a.child.wait())
        .await
        .expect("the replica stops within its grace period")
        .unwrap();
    assert!(exit.success(), "graceful exit on SIGTERM: {exit:?}");

    // The client carried on with the second replica to the end.
    let mut last = first;
    while let Some(line) = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
        .await
        .expect("the client keeps printing")
        .unwrap()
    {
        last = serde_json::from_str(&line).unwrap();
    }
    let status = tokio::time::timeout(Duration::from_secs(5), cli.wait())
        .await
        .unwrap()
        .unwrap();
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut cli.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(last["phase"], "PHASE_SUCCEEDED", "{last}");
    assert_eq!(last["ssl_vpn_server"]["port"], 1261);
    assert!(
        stderr.contains(&format!("resuming the watch on {}", b.url())),
        "{stderr}"
    );
}

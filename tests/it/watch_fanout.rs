//! Watch at scale and across restarts: shared pollers, slow readers,
//! disconnects, shutdown and resume on a fresh instance.

use std::time::Duration;

use sslvpn_gateway::{emulator::EmulatorConfig, pb, watch::PollConfig};
use tonic::Code;

use crate::support::harness::*;

/// A gateway with a fixed poll interval, so polls can be counted.
async fn fixed_interval_stack(interval: Duration) -> Stack {
    let emulator = start_emulator(EmulatorConfig {
        timings: timings(300, 300),
        ..EmulatorConfig::default()
    })
    .await;
    let mut config = gateway_config(&emulator);
    config.poll = PollConfig {
        min_interval: interval,
        max_interval: interval,
        call_timeout: Duration::from_secs(5),
    };
    let (server, client) = start_gateway(config).await;
    Stack {
        emulator,
        server,
        client,
    }
}

/// Clients of `s`, each on a connection of its own.
async fn clients(s: &Stack, n: usize) -> Vec<Client> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(connect(&s.server).await);
    }
    out
}

#[tokio::test]
async fn five_hundred_watchers_share_one_poller() {
    let interval = Duration::from_millis(50);
    let mut s = fixed_interval_stack(interval).await;
    // Learn the server's gateway once, as any first call would.
    s.client
        .get_ssl_vpn_server_status(status_request(SERVER))
        .await
        .unwrap();

    let clients = clients(&s, 5).await;
    let mut streams = Vec::new();
    for i in 0..500 {
        let mut client = clients[i % clients.len()].clone();
        let mut stream = client
            .watch_ssl_vpn_server(follow(SERVER))
            .await
            .unwrap()
            .into_inner();
        let first = stream
            .message()
            .await
            .unwrap()
            .expect("current state at once");
        assert_eq!(first.phase(), pb::Phase::Succeeded);
        streams.push(stream);
    }

    let before = s.emulator.counters().gateway_polls(GATEWAY);
    let window = Duration::from_millis(1000);
    tokio::time::sleep(window).await;
    let polls = s.emulator.counters().gateway_polls(GATEWAY) - before;
    let rounds = (window.as_millis() / interval.as_millis()) as u64;
    assert!(polls >= 2, "the poller kept polling: {polls}");
    assert!(
        polls <= rounds + 5,
        "500 watchers cost {polls} status polls in {rounds} rounds; want at most one per round"
    );

    // Everyone leaves: the poller stops.
    drop(streams);
    drop(clients);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = s.emulator.counters().gateway_polls(GATEWAY);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        s.emulator.counters().gateway_polls(GATEWAY),
        settled,
        "a poller with no watchers stopped polling"
    );
}

#[tokio::test]
async fn a_reader_that_stops_reading_does_not_slow_the_others() {
    let mut s = fixed_interval_stack(Duration::from_millis(25)).await;
    let reply = s
        .client
        .modify_ssl_vpn_server(port_change(SERVER, 1210))
        .await
        .unwrap()
        .into_inner();
    let op = reply.operation.unwrap().id;
    // A follower that never reads: its buffer fills and its producer waits.
    let _stalled = s
        .client
        .watch_ssl_vpn_server(pb::WatchSslVpnServerRequest {
            follow: true,
            ..watch(SERVER, &op)
        })
        .await
        .unwrap()
        .into_inner();
    let mut readers = Vec::new();
    for _ in 0..20 {
        let mut client = s.client.clone();
        let op = op.clone();
        readers.push(tokio::spawn(async move {
            collect(
                client
                    .watch_ssl_vpn_server(watch(SERVER, &op))
                    .await
                    .unwrap()
                    .into_inner(),
            )
            .await
        }));
    }
    for reader in readers {
        let messages = tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .expect("readers finish despite the stalled one")
            .unwrap();
        assert_eq!(messages.last().unwrap().phase(), pb::Phase::Succeeded);
    }
}

#[tokio::test]
async fn shutdown_ends_streams_and_a_fresh_instance_resumes_the_operation() {
    let emulator = start_emulator(EmulatorConfig {
        timings: timings(400, 600),
        ..EmulatorConfig::default()
    })
    .await;
    let (first, mut client) = start_gateway(gateway_config(&emulator)).await;
    let reply = client
        .modify_ssl_vpn_server(port_change(SERVER, 1211))
        .await
        .unwrap()
        .into_inner();
    let op = reply.operation.unwrap().id;
    let mut stream = client
        .watch_ssl_vpn_server(watch(SERVER, &op))
        .await
        .unwrap()
        .into_inner();
    let first_message = stream.message().await.unwrap().unwrap();
    assert_eq!(first_message.phase(), pb::Phase::Pending);

    let started = std::time::Instant::now();
    first.begin_shutdown();
    let ended = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream must end with UNAVAILABLE, not OK"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::Unavailable);
    assert!(
        ended.message().contains("operation_id"),
        "{}",
        ended.message()
    );
    tokio::time::timeout(Duration::from_secs(3), first.wait())
        .await
        .expect("shutdown finishes within the grace period")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));

    // A new instance knows nothing of the first: the id is enough.
    let (second, mut client) = start_gateway(gateway_config(&emulator)).await;
    let messages = collect(
        client
            .watch_ssl_vpn_server(watch(SERVER, &op))
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    let last = messages.last().unwrap();
    assert_eq!(last.phase(), pb::Phase::Succeeded);
    assert_eq!(last.ssl_vpn_server.as_ref().unwrap().port, 1211);
    second.shutdown().await.unwrap();
}

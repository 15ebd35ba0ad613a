//! Per-caller and global limits, end to end: they trip with
//! RESOURCE_EXHAUSTED and RetryInfo, and recover. The open services
//! (health `Watch`, reflection) take stream slots too, per address.

use std::time::Duration;

use sslvpn_gateway::{
    access::AccessConfig,
    access::limits::{Http2Limits, LimitsConfig},
    emulator::EmulatorConfig,
    pb,
    server::config::ServeConfig,
};
use tonic::{Code, Streaming};
use tonic_types::StatusExt;

use crate::support::{
    Files, OTHER_PEER, channel_from, eventually,
    harness::{self, Client, SERVER, gateway_config, reason, start_emulator, start_gateway},
    secure::{token_line, with_token},
};

const ALICE: &str = "alice-limits-00112233445566778899aabb";
const BOB: &str = "bob-limits-00112233445566778899aabbcc";

fn security(files: &Files, limits: LimitsConfig) -> AccessConfig {
    AccessConfig {
        tokens_file: Some(files.write(
            "tokens",
            &(token_line("alice", ALICE) + &token_line("bob", BOB)),
        )),
        limits,
        ..AccessConfig::default()
    }
}

/// A call that never reaches the cloud: INVALID_ARGUMENT when admitted.
async fn cheap_call(client: &mut Client, token: &str) -> tonic::Status {
    client
        .get_ssl_vpn_server_status(with_token(
            harness::status_request("not-a-server-id"),
            Some(token),
        ))
        .await
        .unwrap_err()
}

async fn follow(
    client: &mut Client,
    token: &str,
    server: &str,
) -> Result<Streaming<pb::WatchSslVpnServerResponse>, tonic::Status> {
    let mut stream = client
        .watch_ssl_vpn_server(with_token(harness::follow(server), Some(token)))
        .await?
        .into_inner();
    stream.message().await?.expect("the current state first");
    Ok(stream)
}

fn retry_delay(status: &tonic::Status) -> Duration {
    status
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo")
}

#[tokio::test]
async fn request_rate_per_caller_trips_and_recovers() {
    let files = Files::new();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let config = ServeConfig {
        security: security(
            &files,
            LimitsConfig {
                // Slow enough that three quick calls never earn a fourth.
                rate_per_caller: 1.0,
                burst_per_caller: 3,
                ..LimitsConfig::default()
            },
        ),
        ..gateway_config(&emulator)
    };
    let (server, mut client) = start_gateway(config).await;
    for _ in 0..3 {
        assert_eq!(
            cheap_call(&mut client, ALICE).await.code(),
            Code::InvalidArgument
        );
    }
    let refused = cheap_call(&mut client, ALICE).await;
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(reason(&refused), "Throttling.User");
    let wait = retry_delay(&refused);
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(1001),
        "{wait:?}"
    );
    // Another caller is not affected.
    assert_eq!(
        cheap_call(&mut client, BOB).await.code(),
        Code::InvalidArgument
    );
    // Waiting as told is enough.
    tokio::time::sleep(wait).await;
    assert_eq!(
        cheap_call(&mut client, ALICE).await.code(),
        Code::InvalidArgument
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn streams_per_caller_trip_and_recover() {
    let files = Files::new();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let config = ServeConfig {
        security: security(
            &files,
            LimitsConfig {
                streams_per_caller: 2,
                ..LimitsConfig::default()
            },
        ),
        ..gateway_config(&emulator)
    };
    let (server, mut client) = start_gateway(config).await;
    let first = follow(&mut client, ALICE, SERVER).await.unwrap();
    let _second = follow(&mut client, ALICE, SERVER).await.unwrap();
    let refused = follow(&mut client, ALICE, SERVER).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(reason(&refused), "QuotaExceeded.StreamsPerCaller");
    assert!(retry_delay(&refused) > Duration::ZERO);
    // Another caller still may.
    let _bob = follow(&mut client, BOB, SERVER).await.unwrap();
    // Alice closes one stream; her slot comes back once the server notices.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match follow(&mut client, ALICE, SERVER).await {
            Ok(_) => break,
            Err(status) if status.code() == Code::ResourceExhausted => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the slot never came back"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn global_caps_on_streams_and_pollers() {
    let files = Files::new();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let config = ServeConfig {
        security: security(
            &files,
            LimitsConfig {
                max_streams: 3,
                max_pollers: 1,
                ..LimitsConfig::default()
            },
        ),
        ..gateway_config(&emulator)
    };
    let (server, mut client) = start_gateway(config).await;
    let _a = follow(&mut client, ALICE, SERVER).await.unwrap();
    // A second gateway would need a second poller.
    let refused = follow(&mut client, BOB, "vss-hz1peer").await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(reason(&refused), "QuotaExceeded.Pollers");
    // The same gateway shares the running poller.
    let _b = follow(&mut client, BOB, SERVER).await.unwrap();
    let _c = follow(&mut client, ALICE, SERVER).await.unwrap();
    let refused = follow(&mut client, BOB, SERVER).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(reason(&refused), "QuotaExceeded.Streams");
    assert!(retry_delay(&refused) > Duration::ZERO);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn http2_limits_bound_headers_and_streams_per_connection() {
    let files = Files::new();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let mut security = security(&files, LimitsConfig::default());
    security.http2 = Http2Limits {
        max_concurrent_streams: 2,
        max_header_list_bytes: 4096,
        ..Http2Limits::default()
    };
    let config = ServeConfig {
        security,
        ..gateway_config(&emulator)
    };
    let (server, mut client) = start_gateway(config).await;

    // Oversized metadata never reaches the service.
    let mut request = with_token(harness::status_request("not-a-server-id"), Some(ALICE));
    request
        .metadata_mut()
        .insert("x-padding", "p".repeat(8192).parse().unwrap());
    let status = client.get_ssl_vpn_server_status(request).await.unwrap_err();
    assert_ne!(status.code(), Code::InvalidArgument, "{status:?}");

    // Two streams fill a connection: a third call on it waits for a slot.
    let mut fresh = harness::connect(&server).await;
    let first = follow(&mut fresh, ALICE, SERVER).await.unwrap();
    let _second = follow(&mut fresh, ALICE, SERVER).await.unwrap();
    let mut third = fresh.clone();
    let waiting = tokio::spawn(async move { cheap_call(&mut third, BOB).await.code() });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a third stream was opened on the connection"
    );
    drop(first);
    let code = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the call proceeds once a stream closes")
        .unwrap();
    assert_eq!(code, Code::InvalidArgument);
    server.shutdown().await.unwrap();
}

/// A health `Watch` from `client`, its first message read.
async fn health_watch(
    channel: tonic::transport::Channel,
) -> Result<Streaming<tonic_health::pb::HealthCheckResponse>, tonic::Status> {
    let mut stream = tonic_health::pb::health_client::HealthClient::new(channel)
        .watch(tonic_health::pb::HealthCheckRequest::default())
        .await?
        .into_inner();
    stream.message().await?.expect("the current status first");
    Ok(stream)
}

/// A reflection stream left open (its request stream never ends), its
/// first answer read; dropping the sender ends it.
async fn reflection(
    channel: tonic::transport::Channel,
) -> Result<
    tokio::sync::mpsc::Sender<tonic_reflection::pb::v1::ServerReflectionRequest>,
    tonic::Status,
> {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    })
    .await
    .unwrap();
    let mut replies = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    replies.message().await?.expect("an answer");
    Ok(tx)
}

#[tokio::test]
async fn health_watch_and_reflection_take_stream_slots() {
    let files = Files::new();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let mut security = security(
        &files,
        LimitsConfig {
            streams_per_caller: 2,
            max_streams: 6,
            ..LimitsConfig::default()
        },
    );
    // Short: the open streams outlive it, and their connections stay.
    security.connections.handshake_timeout = Duration::from_secs(1);
    let config = ServeConfig {
        security,
        ..gateway_config(&emulator)
    };
    let (server, mut client) = start_gateway(config).await;
    let url = format!("http://{}", server.local_addr());
    let stranger = channel_from(OTHER_PEER, url.clone()).await;

    // Per address: two open streams, whichever service.
    let mut first = health_watch(stranger.clone()).await.unwrap();
    let reflecting = reflection(stranger.clone()).await.unwrap();
    let refused = health_watch(stranger.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(reason(&refused), "QuotaExceeded.StreamsPerPeer");
    assert!(retry_delay(&refused) > Duration::ZERO);
    let refused = reflection(stranger.clone()).await.unwrap_err();
    assert_eq!(reason(&refused), "QuotaExceeded.StreamsPerPeer");
    // Overall they may hold half of --max-streams: a third from another
    // address is refused...
    let local = harness::channel(url.clone()).await;
    let _third = health_watch(local.clone()).await.unwrap();
    let refused = health_watch(local.clone()).await.unwrap_err();
    assert_eq!(reason(&refused), "QuotaExceeded.UnauthenticatedStreams");
    // ...while authenticated watches keep the other half.
    let _w1 = follow(&mut client, ALICE, SERVER).await.unwrap();
    let _w2 = follow(&mut client, BOB, SERVER).await.unwrap();
    // Health Check (unary) is not a stream: it passes.
    tonic_health::pb::health_client::HealthClient::new(stranger.clone())
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
    // A stream that ends gives its slot back.
    drop(reflecting);
    eventually("the slot comes back", Duration::from_secs(10), || {
        let stranger = stranger.clone();
        async move { health_watch(stranger).await.is_ok() }
    })
    .await;
    // Longer than the handshake timeout later, the stream is still open
    // (a stream in flight is not idle): it sees the shutdown.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.begin_shutdown();
    let status = tokio::time::timeout(Duration::from_secs(10), first.message())
        .await
        .expect("the watch hears of the shutdown")
        .expect("the stream is still open")
        .expect("a message");
    assert_eq!(status.status, 2, "NOT_SERVING");
}

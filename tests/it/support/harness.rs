//! A real gateway in front of a real emulator, both on 127.0.0.1:0, and a
//! tonic client: the whole product as a caller sees it.

use std::time::Duration;

use sslvpn_gateway::{
    cloud::{CloudConfig, Credentials, RetryPolicy},
    emulator::{self, EmulatorConfig, EmulatorHandle},
    pb::{self, ssl_vpn_service_client::SslVpnServiceClient},
    server::config::{CredentialSource, ServeConfig},
    server::{self, ServerHandle},
    watch::PollConfig,
};
use tokio::net::TcpListener;
use tonic::{Streaming, transport::Channel};
use tonic_types::StatusExt;

pub const REGION: &str = "cn-hangzhou";
/// The fixture server on an active gateway with MaxConnections 5.
pub const SERVER: &str = "vss-hz1primary";
pub const GATEWAY: &str = "vpn-hz1primary";

pub type Client = SslVpnServiceClient<Channel>;

/// Timings of the emulator's state machine for a test.
pub fn timings(accept_lag_ms: u64, apply_ms: u64) -> emulator::Timings {
    emulator::Timings {
        accept_lag: Duration::from_millis(accept_lag_ms),
        apply_time: Duration::from_millis(apply_ms),
        quiet_period: Duration::ZERO,
        ..emulator::Timings::default()
    }
}

pub struct Stack {
    pub emulator: EmulatorHandle,
    pub server: ServerHandle,
    pub client: Client,
}

/// A gateway in front of `emulator`, with its demo credentials and quick
/// retries and polls.
pub fn gateway_config(emulator: &EmulatorHandle) -> ServeConfig {
    ServeConfig {
        cloud: CloudConfig {
            endpoint: Some(emulator.base_url()),
            retry: RetryPolicy {
                max_attempts: 4,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
                max_total: Duration::from_secs(5),
            },
            ..CloudConfig::default()
        },
        credentials: CredentialSource::Static(Credentials::new(
            emulator::DEMO_ACCESS_KEY_ID,
            emulator::DEMO_ACCESS_KEY_SECRET,
        )),
        poll: PollConfig {
            min_interval: Duration::from_millis(25),
            max_interval: Duration::from_millis(100),
            call_timeout: Duration::from_secs(5),
        },
        shutdown_grace: Duration::from_secs(2),
        ..ServeConfig::default()
    }
}

/// A gateway with no cloud behind it, for tests that never get past
/// validation or start-up. The endpoint is a closed loopback port (9,
/// discard: privileged, so no test listens there), so a stray call would
/// fail fast.
pub fn offline_config() -> ServeConfig {
    ServeConfig {
        cloud: CloudConfig {
            endpoint: Some("http://127.0.0.1:9".into()),
            ..CloudConfig::default()
        },
        credentials: CredentialSource::Static(Credentials::new("test-key-id", "test-key-secret")),
        ..ServeConfig::default()
    }
}

pub async fn start_emulator(config: EmulatorConfig) -> EmulatorHandle {
    emulator::spawn(config).await.expect("emulator starts")
}

/// The gateway on 127.0.0.1, with a port the kernel picks.
pub async fn start_server(config: ServeConfig) -> ServerHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    server::start(config, listener)
        .await
        .expect("gateway starts")
}

/// A plaintext gateway and a client of it.
pub async fn start_gateway(config: ServeConfig) -> (ServerHandle, Client) {
    let server = start_server(config).await;
    let client = connect(&server).await;
    (server, client)
}

/// A connected plaintext channel to `url`.
pub async fn channel(url: String) -> Channel {
    Channel::from_shared(url).unwrap().connect().await.unwrap()
}

/// A client of `server` on a connection of its own.
pub async fn connect(server: &ServerHandle) -> Client {
    SslVpnServiceClient::new(channel(format!("http://{}", server.local_addr())).await)
}

pub async fn stack(config: EmulatorConfig) -> Stack {
    let emulator = start_emulator(config).await;
    let (server, client) = start_gateway(gateway_config(&emulator)).await;
    Stack {
        emulator,
        server,
        client,
    }
}

pub async fn stack_with_timings(accept_lag_ms: u64, apply_ms: u64) -> Stack {
    stack(EmulatorConfig {
        timings: timings(accept_lag_ms, apply_ms),
        ..EmulatorConfig::default()
    })
    .await
}

pub fn modify(server: &str) -> pb::ModifySslVpnServerRequest {
    pb::ModifySslVpnServerRequest {
        region_id: REGION.into(),
        ssl_vpn_server_id: server.into(),
        ..Default::default()
    }
}

/// A modify of `server` that changes its port alone.
pub fn port_change(server: &str, port: u32) -> pb::ModifySslVpnServerRequest {
    pb::ModifySslVpnServerRequest {
        port: Some(port),
        ..modify(server)
    }
}

/// A status read of `server`.
pub fn status_request(server: &str) -> pb::GetSslVpnServerStatusRequest {
    pb::GetSslVpnServerStatusRequest {
        region_id: REGION.into(),
        ssl_vpn_server_id: server.into(),
    }
}

/// A watch of `server` that follows it until the client leaves.
pub fn follow(server: &str) -> pb::WatchSslVpnServerRequest {
    pb::WatchSslVpnServerRequest {
        follow: true,
        ..watch(server, "")
    }
}

pub fn watch(server: &str, operation_id: &str) -> pb::WatchSslVpnServerRequest {
    pb::WatchSslVpnServerRequest {
        region_id: REGION.into(),
        ssl_vpn_server_id: server.into(),
        operation_id: operation_id.into(),
        ..Default::default()
    }
}

/// Reads a stream to its end (bounded), returning every message.
pub async fn collect(
    mut stream: Streaming<pb::WatchSslVpnServerResponse>,
) -> Vec<pb::WatchSslVpnServerResponse> {
    let mut out = Vec::new();
    let read = async {
        while let Some(m) = stream.message().await.expect("stream ends with OK") {
            out.push(m);
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("stream completes in time");
    out
}

/// The `ErrorInfo` reason of a refusal ("" without one).
pub fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

pub fn phases(messages: &[pb::WatchSslVpnServerResponse]) -> Vec<pb::Phase> {
    messages.iter().map(|m| m.phase()).collect()
}

//! The gateway's configuration: every flag has an environment-variable twin,
//! and both are parsed once, at start-up, into one typed [`ServeConfig`].
//!
//! Tests build a `ServeConfig` directly (`ServeConfig::default()` plus the
//! fields they care about), so nothing below the CLI reads the environment.

use std::{net::SocketAddr, time::Duration};

use clap::Args;

/// `sslvpn-gateway serve` flags.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    /// Address of the gRPC listener.
    #[arg(long, env = "SSLVPN_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Longest time a unary call may take before it is cancelled (streams are
    /// bounded by their own timeout). Accepts `30s`, `1m`, ...
    #[arg(long, env = "SSLVPN_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Largest request message accepted, in bytes.
    #[arg(long, env = "SSLVPN_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,

    /// Most requests handled at once per connection.
    #[arg(long, env = "SSLVPN_CONCURRENCY_PER_CONNECTION", default_value_t = 64)]
    pub concurrency_per_connection: usize,

    /// Most requests handled at once across all connections; beyond it calls
    /// wait their turn.
    #[arg(long, env = "SSLVPN_CONCURRENCY_LIMIT", default_value_t = 512)]
    pub concurrency_limit: usize,

    /// On SIGINT/SIGTERM, how long in-flight calls may take to finish before
    /// the process exits anyway.
    #[arg(long, env = "SSLVPN_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
}

/// The gateway's configuration, parsed once.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub request_timeout: Duration,
    pub max_message_bytes: usize,
    pub concurrency_per_connection: usize,
    pub concurrency_limit: usize,
    pub shutdown_grace: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            request_timeout: Duration::from_secs(30),
            max_message_bytes: 64 * 1024,
            concurrency_per_connection: 64,
            concurrency_limit: 512,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl From<ServeArgs> for ServeConfig {
    fn from(a: ServeArgs) -> Self {
        Self {
            listen: a.listen,
            request_timeout: a.request_timeout,
            max_message_bytes: a.max_message_bytes,
            concurrency_per_connection: a.concurrency_per_connection,
            concurrency_limit: a.concurrency_limit,
            shutdown_grace: a.shutdown_grace,
        }
    }
}

//! sslvpn-gateway: a gRPC service that changes Alibaba Cloud SSL-VPN servers
//! (the VPC API's ModifySslVpnServer) and follows each asynchronous change
//! until the cloud has really applied it.
//!
//! A request passes the rooms in one direction, and imports point the same
//! way: each module imports only modules listed below it, never a peer on
//! its own line (`architecture.rs` checks this on every `cargo test`):
//!
//! ```text
//! server               wiring: listeners, layers, config, admin listener
//! access               who may, how often: identity, policy, limits, TLS, audit
//! service              handlers; the only layer (with client) that names pb
//! modify | watch       one change per gateway | pollers, completion, fan-out
//! directory            which gateway each server is on
//! cloud                the VPC API client
//! operation            the operation id a watch resumes from
//! error                the one error vocabulary (Kind, Error)
//! validate             every documented rule
//! domain               servers, gateways, changes
//! telemetry | metrics  logs and traces | the metrics registry
//! ```
//!
//! Beside them: the `emulator` plays the cloud over real HTTP for demos and
//! tests and imports nothing of the crate (its rules are its own, written
//! from the API document); the `client` is the command-line client, which
//! speaks only the public contract (`pb`, generated code that names nothing
//! of the crate; the server's half of the wire is `service::wire`). `docs/architecture.md` follows a
//! modify and a watch through the rooms.

#[cfg(test)]
mod architecture;

pub mod access;
pub mod client;
pub mod cloud;
pub mod directory;
pub mod domain;
pub mod emulator;
pub mod error;
pub mod metrics;
pub mod modify;
pub mod operation;
pub mod pb;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod validate;
pub mod watch;

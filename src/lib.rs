//! sslvpn-gateway: a gRPC service that changes Alibaba Cloud SSL-VPN servers
//! (the VPC API's ModifySslVpnServer) and follows each asynchronous change
//! until the cloud has really applied it.
//!
//! Data flows one way: transport (`server`) → `service` → `validate` /
//! `domain` → `cloud`. The `emulator` plays the cloud over real HTTP for
//! demos and tests and never calls into the service; the `client` is the
//! command-line client, which speaks only the public contract.

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

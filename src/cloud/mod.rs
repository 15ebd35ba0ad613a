//! The Alibaba Cloud VPC API client: everything the gateway needs to talk to
//! the cloud, and nothing of gRPC.
//!
//! It exists so the service can say "modify this SSL-VPN server" or "how is
//! that gateway doing" and get typed answers or typed errors, while the
//! wire details stay here: both signature algorithms, the credential chain,
//! endpoint selection, the HTTP transport, retries with back-off, the
//! cloud's error bodies and one tracing span per upstream request. What it
//! measures goes into the `UpstreamMetrics` (and `CredentialMetrics`) its
//! builder hands it, families the caller registered: the client knows no
//! registry of its own. The emulator speaks the same wire, so pointing
//! `CloudConfig::endpoint` at it exercises all of this end to end.

pub mod budget;
pub mod client;
pub mod credentials;
pub mod endpoint;
pub mod error;
pub mod percent;
pub mod retry;
pub mod sign;
pub mod wire;

pub use budget::{Budget, BudgetConfig, BudgetMetrics, Purpose, Quota};
pub use client::{
    CloudConfig, GatewayFilter, ModifyRequest, ModifyResponse, Page, PageRequest, RetryPolicy,
    ServerFilter, SignatureVersion, UpstreamMetrics, VpcClient,
};
pub use credentials::{
    ChainConfig, CredentialMetrics, CredentialProvider, Credentials, EcsRamRole, StaticCredentials,
    default_chain,
};
pub use endpoint::{Endpoint, Endpoints};
pub use error::CloudError;

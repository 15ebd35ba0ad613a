//! The server side of the wire: the generated `SslVpnService` trait and its
//! server, the codec they use, and the watch stream's message, written by
//! hand so that what all watchers of a gateway share is encoded once.
//! build.rs generates the trait here, apart from `pb`, so that the
//! contract's generated code never names the service.

mod codec;
mod watch_response;

pub use codec::SmallBufferCodec;
pub use watch_response::{SharedParts, WatchSslVpnServerResponse};

/// The generated server of `sslvpn.v1.SslVpnService`.
#[allow(clippy::all, missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/server/sslvpn.v1.rs"));
}

pub use generated::ssl_vpn_service_server::{SslVpnService, SslVpnServiceServer};

/// The descriptor set reflection serves, so the wiring need not name `pb`.
pub use crate::pb::FILE_DESCRIPTOR_SET;

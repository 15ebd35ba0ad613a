//! The generated code of the `sslvpn.v1` contract, and the descriptor set
//! reflection serves. Everything that crosses the wire to clients is here.
//! One message is written by hand (`watch_response`): the watch stream's,
//! so that what all watchers of a gateway share is encoded once.

mod codec;
mod watch_response;

pub use codec::SmallBufferCodec;
pub use watch_response::{SharedParts, WatchSslVpnServerResponse};

/// Package `sslvpn.v1`: messages, the server trait and a client.
#[allow(clippy::all, missing_docs)]
pub mod sslvpn {
    pub mod v1 {
        tonic::include_proto!("sslvpn.v1");
    }
}

pub use sslvpn::v1::*;

/// The encoded `FileDescriptorSet` of the contract and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("sslvpn_descriptor");

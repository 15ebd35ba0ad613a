//! The generated code of the `sslvpn.v1` contract (its messages and a
//! client), and the descriptor set reflection serves. Generated only: the
//! server trait and the watch stream's hand-written message are the
//! service's (`service::wire`), which names this module, never the reverse.

/// Package `sslvpn.v1`: messages and a client.
#[allow(clippy::all, missing_docs)]
pub mod sslvpn {
    pub mod v1 {
        tonic::include_proto!("sslvpn.v1");
    }
}

pub use sslvpn::v1::*;

/// The encoded `FileDescriptorSet` of the contract and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("sslvpn_descriptor");

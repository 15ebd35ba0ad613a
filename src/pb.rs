//! The generated code of the `sslvpn.v1` contract, and the descriptor set
//! reflection serves. Everything that crosses the wire to clients is here.

#![allow(clippy::all, missing_docs)]

/// Package `sslvpn.v1`: messages, the server trait and a client.
pub mod sslvpn {
    pub mod v1 {
        tonic::include_proto!("sslvpn.v1");
    }
}

pub use sslvpn::v1::*;

/// The encoded `FileDescriptorSet` of the contract and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("sslvpn_descriptor");

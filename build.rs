//! Compiles the public contract with protox (no system `protoc`) and
//! tonic-prost-build, and writes the descriptor set that reflection serves.
//!
//! Two passes. The contract's messages and its client, all generated, are
//! `pb`. The server trait is generated apart, into the service room: it
//! names `pb`'s messages, except the watch stream's, which the service
//! writes by hand to carry its watchers' shared, pre-encoded parts. So
//! `pb` holds generated code only and names nothing of the crate.

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fds = protox::compile(["sslvpn/v1/sslvpn.proto"], ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // compile_fds ignores file_descriptor_set_path, so write the set ourselves.
    fs::write(out_dir.join("sslvpn_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .extern_path(".google.rpc", "::tonic_types::pb")
        .compile_fds(fds.clone())?;

    let server_dir = out_dir.join("server");
    fs::create_dir_all(&server_dir)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .out_dir(&server_dir)
        .extern_path(".google.rpc", "::tonic_types::pb")
        .extern_path(".sslvpn.v1", "crate::pb")
        // The most specific path wins: this one message is the service's.
        .extern_path(
            ".sslvpn.v1.WatchSslVpnServerResponse",
            "crate::service::wire::WatchSslVpnServerResponse",
        )
        .codec_path("crate::service::wire::SmallBufferCodec")
        .compile_fds(fds)?;
    // compile_fds prints no rerun-if-changed of its own.
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}

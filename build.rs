//! Compiles the public contract with protox (no system `protoc`) and
//! tonic-prost-build, and writes the descriptor set that reflection serves.

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fds = protox::compile(["sslvpn/v1/sslvpn.proto"], ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // compile_fds ignores file_descriptor_set_path, so write the set ourselves.
    fs::write(out_dir.join("sslvpn_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".google.rpc", "::tonic_types::pb")
        // Written by hand to carry its watchers' shared, pre-encoded parts.
        .extern_path(
            ".sslvpn.v1.WatchSslVpnServerResponse",
            "crate::pb::WatchSslVpnServerResponse",
        )
        .codec_path("crate::pb::SmallBufferCodec")
        .compile_fds(fds)?;
    // compile_fds prints no rerun-if-changed of its own.
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}

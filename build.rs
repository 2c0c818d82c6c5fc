//! Compiles the protos with protox (no system protoc) and writes the descriptor set that
//! server reflection serves.
use std::{env, fs, path::PathBuf};

use protox::prost::Message;

const PROTOS: &[&str] = &[
    "founderhouse/integrations/v1/common.proto",
    "founderhouse/integrations/v1/integrations.proto",
    "founderhouse/integrations/v1/oauth.proto",
    "founderhouse/integrations/v1/connectors.proto",
    "founderhouse/integrations/v1/health.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("founderhouse_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        // Small per-call buffers (see `LeanCodec`): long-lived streams hold theirs.
        .codec_path("crate::proto::LeanCodec")
        .compile_fds(fds)?;
    Ok(())
}

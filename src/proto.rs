//! Generated code: `founderhouse.integrations.v1`.
#![allow(clippy::all, clippy::pedantic, missing_docs)]

tonic::include_proto!("founderhouse.integrations.v1");

/// Encoded descriptor set of our protos, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/founderhouse_descriptor.bin"));

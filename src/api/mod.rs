//! Transports: gRPC (+ grpc-web) and the REST gateway, with the layers they share.

pub mod auth;
pub mod error;
pub mod grpc;
pub mod limit;
pub mod listen;
pub mod observe;
pub mod reject;
pub mod rest;

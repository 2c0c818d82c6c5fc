//! Transports: gRPC (+ grpc-web), the REST gateway and MCP, with the layers they share.

pub mod auth;
pub mod error;
pub mod grpc;
pub mod limit;
pub mod listen;
pub mod mcp;
pub mod observe;
pub mod reject;
pub mod rest;

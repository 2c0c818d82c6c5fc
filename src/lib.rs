//! FounderHouse Integrations: connects workspaces to their platforms over gRPC, grpc-web and REST.

/// Transport adapters: gRPC services, REST gateway, caller auth, the error table.
pub mod api;
/// Composition root: builds every part from a `Config` and runs it until shutdown.
pub mod app;
/// Size-limited reading of outbound HTTP answers.
pub mod body;
/// Typed settings from flags and `FH_*` environment variables.
pub mod config;
/// The HTTP core, the operation framework and one connector per platform.
pub mod connectors;
/// Identifiers, enums and value types shared by every layer; no I/O.
pub mod domain;
/// The domain error and its kinds.
pub mod error;
/// Returning freed heap to the operating system.
pub mod memory;
/// OAuth providers and their token exchanges.
pub mod oauth;
/// Generated protobuf types and service stubs.
pub mod proto;
/// Background jobs on their own timers; they call the service only.
pub mod scheduler;
/// AES-256-GCM sealing of credentials under versioned keys.
pub mod secrets;
/// Use cases, one module per service.
pub mod service;
/// All SQL.
pub mod store;
/// Logging and metrics set-up.
pub mod telemetry;

//! The one integration-test binary: the real service on loopback, a fresh database per test.
#![allow(clippy::unwrap_used)] // a test that unwraps fails with the value in its message

mod helpers;

mod architecture;
mod auth;
mod connectors;
mod health;
mod integrations;
mod jwks;
mod leaks;
mod limits;
mod mcp;
mod oauth;
mod process;
mod resilience;
mod secrets;
mod transports;

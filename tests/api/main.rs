//! The one integration-test binary: the real service on loopback, a fresh database per test.

mod helpers;

mod auth;
mod connectors;
mod integrations;
mod jwks;
mod leaks;
mod oauth;
mod process;
mod resilience;
mod secrets;
mod transports;

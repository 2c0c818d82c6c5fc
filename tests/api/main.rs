//! The one integration-test binary: the real service on loopback, a fresh database per test.

mod helpers;

mod auth;
mod integrations;
mod jwks;
mod leaks;
mod process;
mod resilience;
mod secrets;
mod transports;

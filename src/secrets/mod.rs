//! The AES-256-GCM key ring that seals credential fields at rest.

mod aad;
mod keyring;

pub use aad::{AadVersion, SealContext};
pub use keyring::{KeyId, KeyRing, KeyringError, Sealed};

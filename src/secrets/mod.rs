//! The AES-256-GCM key ring that seals credential fields at rest.

mod keyring;

pub use keyring::{KeyId, KeyRing, KeyringError, SealContext, Sealed};

//! Sensitive-value wrapper and the AES-256-GCM key ring that seals credential fields at rest.

mod keyring;
mod secret;

pub use keyring::{KeyId, KeyRing, KeyringError, SealContext, Sealed};
pub use secret::Secret;

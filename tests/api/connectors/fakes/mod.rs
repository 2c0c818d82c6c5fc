//! One fake per platform: an axum router answering like the provider's documentation.

pub mod fireflies;
pub mod granola;
pub mod otter;
pub mod zerodb;
pub mod zerovoice;

//! One fake per platform: an axum router answering like the provider's documentation.

pub mod discord;
pub mod fireflies;
pub mod gmail;
pub mod granola;
pub mod loom;
pub mod monday;
pub mod notion;
pub mod otter;
pub mod outlook;
pub mod slack;
pub mod zerodb;
pub mod zerovoice;
pub mod zoom;

//! Use cases. Each takes the authenticated `Caller` and checks workspace and role itself.

pub mod credentials;
pub mod integrations;
pub mod oauth_flow;
pub mod operations;
pub mod paging;
pub mod system;

pub use integrations::Integrations;
pub use system::System;

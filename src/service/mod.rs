//! Use cases. Each takes the authenticated `Caller` and checks workspace and role itself.

pub mod credentials;
pub mod health;
pub mod identity;
pub mod integrations;
pub mod oauth;
pub mod operations;
pub mod paging;
pub mod system;

pub use health::Health;
pub use integrations::Integrations;
pub use system::System;

/// What one run of a background job did, row by row. A failed row was logged where it failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    pub done: usize,
    pub failed: usize,
}

impl Sweep {
    /// Counts one row's outcome.
    pub fn record<T, E>(&mut self, result: &Result<T, E>) {
        match result {
            Ok(_) => self.done += 1,
            Err(_) => self.failed += 1,
        }
    }
}

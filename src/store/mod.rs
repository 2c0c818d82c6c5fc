//! All SQL. Functions take an executor (pool, connection or transaction) and return domain types.

pub mod audit;
pub mod credentials;
pub mod db;
pub mod health;
pub mod health_events;
pub mod integrations;
pub mod oauth_handles;
pub mod oauth_states;
pub mod refresh;
pub mod revocations;
pub mod sealed;
pub mod workspaces;

pub use db::Database;

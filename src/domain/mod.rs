//! Identifiers, enums and value types. Parse constructors, no I/O.

mod caller;
mod credentials;
mod health;
mod ids;
mod integration;
mod platform;
mod provider;
mod revocation;
mod secret;

pub use caller::{Caller, Role};
pub use credentials::{
    CredentialField, CredentialSpec, Credentials, ValidatedCredentials, credential_spec,
};
pub use health::{CONNECTED, DISCONNECTED, Evidence, Health, HealthEvent, Hysteresis, RECONNECTED};
pub use ids::{IntegrationId, RequestId, UserId, WorkspaceId, parse_integration_name};
pub use integration::Integration;
pub use platform::{ConnectionType, HealthState, IntegrationStatus, Platform};
pub use provider::ProviderId;
pub use revocation::TokenRevocation;
pub use secret::Secret;

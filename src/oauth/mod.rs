//! OAuth 2.0: the provider catalogue with each provider's quirks, and the HTTP exchanges
//! (code exchange, refresh, revocation).

pub mod catalogue;
pub mod client;
pub mod pkce;
pub mod settings;

pub use catalogue::{Catalogue, Provider};
pub use settings::{ClientAuth, OAuthSettings, ProviderSettings};

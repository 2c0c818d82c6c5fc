//! OAuth 2.0: the provider catalogue with each provider's quirks, and the HTTP exchanges
//! (authorization URL, code exchange, refresh, revocation).

pub mod settings;

pub use settings::{ClientAuth, OAuthSettings, ProviderSettings};

//! OAuth 2.0 on the `oauth2` crate: the provider catalogue with each provider's quirks, the
//! authorization URL, and the token exchanges (code exchange, refresh, revocation) sent through
//! one seam onto the service's HTTP client.

pub mod authorize;
pub mod catalogue;
pub mod client;
pub mod pkce;
mod seam;
pub mod settings;
pub mod slack;
mod tokens;

pub use authorize::authorize_url;
pub use catalogue::{Catalogue, Provider};
pub use settings::{ClientAuth, OAuthSettings, ProviderSettings};

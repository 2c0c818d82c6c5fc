//! What a disconnect or revocation did at the provider, token by token.

use crate::error::Reason;

/// What happened at the provider to one token when an integration was disconnected or revoked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRevocation {
    /// "access_token", "refresh_token", "bot_token", "user_token", "api_key", ...
    pub token_type: String,
    pub revoked_upstream: bool,
    /// Why not, when not revoked upstream.
    pub reason: Option<Reason>,
    pub message: String,
}

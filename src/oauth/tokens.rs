//! Token responses: the extra fields providers add to RFC 6749's (read through oauth2's
//! `ExtraTokenFields`), and the `TokenSet` the service stores from them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oauth2::basic::BasicTokenType;
use oauth2::{ExtraTokenFields, StandardTokenResponse, TokenResponse as _};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::catalogue::Flavor;
use crate::domain::Secret;

/// A token endpoint's answer as oauth2 reads it, with every provider's extra fields.
pub(super) type ProviderTokenResponse = StandardTokenResponse<ProviderFields, BasicTokenType>;

/// Fields beyond RFC 6749 that we read. One set for every provider: a provider sends only its
/// own, and a field of an unexpected shape reads as absent rather than failing the grant.
#[derive(Debug, Default, Deserialize, Serialize)]
pub(super) struct ProviderFields {
    /// OpenID Connect: names the account (Google `sub`, Microsoft `tid` and `oid`).
    #[serde(default, deserialize_with = "lenient", skip_serializing)]
    id_token: Option<String>,
    /// Slack: the installing user's token, its scopes and, under rotation, refresh and expiry.
    #[serde(default, deserialize_with = "lenient", skip_serializing)]
    authed_user: Option<SlackUser>,
    /// Slack: the workspace the app was installed in.
    #[serde(default, deserialize_with = "lenient", skip_serializing)]
    team: Option<SlackTeam>,
    #[serde(default, deserialize_with = "lenient", skip_serializing)]
    bot_user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient", skip_serializing)]
    app_id: Option<String>,
    /// Notion: the workspace the integration was added to, and its bot.
    #[serde(default, deserialize_with = "lenient", skip_serializing)]
    workspace_id: Option<String>,
    #[serde(default, deserialize_with = "lenient", skip_serializing)]
    workspace_name: Option<String>,
    #[serde(default, deserialize_with = "lenient", skip_serializing)]
    bot_id: Option<String>,
}

impl ExtraTokenFields for ProviderFields {}

#[derive(Debug, Default, Deserialize)]
struct SlackUser {
    #[serde(default, deserialize_with = "lenient")]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    access_token: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    refresh_token: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    expires_in: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    scope: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct SlackTeam {
    #[serde(default, deserialize_with = "lenient")]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    name: Option<String>,
}

/// A value of the expected shape, or `None`: providers' extra fields are hints, not contract.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    Ok(serde_json::from_value(Value::deserialize(d)?).ok())
}

/// Tokens a provider granted. Values are secret from parse to seal.
#[derive(Debug, Default)]
pub struct TokenSet {
    /// Credential fields to store: `access_token`, `refresh_token`, Slack's `user_token` ...
    pub fields: Vec<(&'static str, Secret<String>)>,
    pub expires_in: Option<u64>,
    pub scopes: Vec<String>,
    /// The account at the provider, when the response names one.
    pub account_id: Option<String>,
    /// Slack's bot user, when the grant holds a bot token: its key for sharing.
    pub bot_user_id: Option<String>,
    /// Non-secret facts worth keeping (team name, workspace name).
    pub metadata: Map<String, Value>,
}

impl TokenSet {
    pub fn has(&self, field: &str) -> bool {
        self.fields.iter().any(|(f, _)| *f == field)
    }

    /// What we keep of a token response, in the provider's shape. `None` when it holds no
    /// access token.
    pub(super) fn from_response(flavor: Flavor, r: ProviderTokenResponse) -> Option<Self> {
        let mut t = TokenSet::default();
        let access = non_empty(Some(r.access_token().secret().clone()))?;
        t.fields.push(("access_token", Secret::new(access)));
        let extra = r.extra_fields();
        let user = extra.authed_user.as_ref();
        if flavor == Flavor::Slack
            && let Some(u) = non_empty(user.and_then(|u| u.access_token.clone()))
        {
            t.fields.push(("user_token", Secret::new(u)));
        }
        if let Some(refresh) = non_empty(r.refresh_token().map(|s| s.secret().clone())) {
            t.fields.push(("refresh_token", Secret::new(refresh)));
        }
        t.expires_in = r.expires_in().map(|d| d.as_secs());
        t.scopes = r
            .scopes()
            .into_iter()
            .flatten()
            .flat_map(|s| split_scopes(s))
            .collect();
        match flavor {
            Flavor::Slack => {
                if let Some(r) = non_empty(user.and_then(|u| u.refresh_token.clone())) {
                    t.fields.push(("user_refresh_token", Secret::new(r)));
                }
                t.expires_in = t.expires_in.or(user.and_then(|u| u.expires_in));
                let user_scopes = user.and_then(|u| u.scope.as_deref()).unwrap_or_default();
                t.scopes
                    .extend(split_scopes(user_scopes).map(|s| format!("user:{s}")));
                let team = extra.team.as_ref();
                t.account_id = non_empty(team.and_then(|t| t.id.clone()));
                t.keep("team_name", team.and_then(|t| t.name.clone()));
                t.bot_user_id = non_empty(extra.bot_user_id.clone());
                t.keep("bot_user_id", extra.bot_user_id.clone());
                t.keep("app_id", extra.app_id.clone());
                t.keep("authed_user_id", user.and_then(|u| u.id.clone()));
            }
            Flavor::Notion => {
                t.account_id = non_empty(extra.workspace_id.clone());
                t.keep("workspace_name", extra.workspace_name.clone());
                t.keep("bot_id", extra.bot_id.clone());
            }
            Flavor::Standard => {
                t.account_id = extra.id_token.as_deref().and_then(account_from_id_token);
            }
        }
        Some(t)
    }

    fn keep(&mut self, key: &str, value: Option<String>) {
        if let Some(v) = non_empty(value) {
            self.metadata.insert(key.to_owned(), Value::String(v));
        }
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// Scopes are space separated (RFC 6749); Slack separates them with commas.
fn split_scopes(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The account an id_token names: Microsoft's `tid:oid`, else the subject. The token comes
/// straight from the token endpoint over TLS, which OIDC Core 3.1.3.7 lets stand in for the
/// signature; we only read who it names, never trust it for auth.
fn account_from_id_token(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?)
            .ok()?;
    let claim = |k: &str| non_empty(claims.get(k)?.as_str().map(str::to_owned));
    match (claim("tid"), claim("oid")) {
        (Some(tid), Some(oid)) => Some(format!("{tid}:{oid}")),
        _ => claim("sub"),
    }
}

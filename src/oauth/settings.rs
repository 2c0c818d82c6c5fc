//! Per-provider settings from configuration (`FH_PROVIDER_<P>_*`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::domain::Secret;

/// How a client authenticates at a provider's token and revocation endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// `Authorization: Basic base64(client_id:client_secret)`.
    Basic,
    /// `client_id` and `client_secret` in the request body.
    Post,
}

impl ClientAuth {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "basic" => Some(Self::Basic),
            "post" => Some(Self::Post),
            _ => None,
        }
    }
}

/// Overrides and credentials for one provider. Anything unset takes the catalogue default.
#[derive(Clone, Debug, Default)]
pub struct ProviderSettings {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret<String>>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub revoke_url: Option<String>,
    pub issuer: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub client_auth: Option<ClientAuth>,
    /// Only the custom provider reads it; catalogue providers know whether they accept PKCE.
    pub pkce: Option<bool>,
}

/// Timings of the OAuth flows and the refresh loop.
#[derive(Clone, Debug)]
pub struct OAuthSettings {
    /// How long an authorization state lives.
    pub state_ttl: Duration,
    /// Refresh this long before an access token expires.
    pub refresh_ahead: Duration,
    /// How often each replica looks for tokens to refresh.
    pub refresh_interval: Duration,
    /// Grants not refreshed for this long are refreshed anyway (inactivity cliffs).
    pub refresh_keepalive: Duration,
    /// How long a refresh waits for another replica's refresh of the same integration.
    pub refresh_lock_timeout: Duration,
    /// Deadline of one provider token or revocation request.
    pub provider_timeout: Duration,
    /// A refresh requested this soon after a completed one reuses its tokens instead of calling
    /// the provider again: a burst of refresh requests (every caller that saw a 401) costs one
    /// provider call, even when some arrive after the first finished.
    pub refresh_reuse_window: Duration,
    /// First retry of a revocation the provider could not take; later ones double (to 6 h).
    pub revocation_retry_base: Duration,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        Self {
            state_ttl: Duration::from_secs(600),
            refresh_ahead: Duration::from_secs(300),
            refresh_interval: Duration::from_secs(30),
            refresh_keepalive: Duration::from_secs(30 * 24 * 3600),
            refresh_lock_timeout: Duration::from_secs(15),
            provider_timeout: Duration::from_secs(10),
            refresh_reuse_window: Duration::from_secs(2),
            revocation_retry_base: Duration::from_secs(30),
        }
    }
}

/// Provider ids that can be configured.
pub const PROVIDER_IDS: &[&str] = &[
    "zoom",
    "slack",
    "discord",
    "microsoft",
    "monday",
    "notion",
    "google",
    "loom",
    "custom",
];

/// Reads `FH_PROVIDER_<P>_*` for every provider from `vars`.
pub fn from_env(
    vars: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<BTreeMap<String, ProviderSettings>> {
    let vars: BTreeMap<String, String> = vars
        .filter(|(k, _)| k.starts_with("FH_PROVIDER_"))
        .collect();
    let mut out = BTreeMap::new();
    for id in PROVIDER_IDS {
        let prefix = format!("FH_PROVIDER_{}_", id.to_ascii_uppercase());
        let get = |name: &str| {
            vars.get(&format!("{prefix}{name}"))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let url = |name: &str| -> anyhow::Result<Option<String>> {
            match get(name) {
                None => Ok(None),
                Some(v) => {
                    let u = reqwest::Url::parse(&v)
                        .with_context(|| format!("{prefix}{name} is not a URL"))?;
                    if !matches!(u.scheme(), "http" | "https") {
                        bail!("{prefix}{name} must be an http(s) URL");
                    }
                    Ok(Some(v))
                }
            }
        };
        let settings = ProviderSettings {
            client_id: get("CLIENT_ID"),
            client_secret: get("CLIENT_SECRET").map(Secret::new),
            authorize_url: url("AUTHORIZE_URL")?,
            token_url: url("TOKEN_URL")?,
            revoke_url: url("REVOKE_URL")?,
            issuer: get("ISSUER"),
            scopes: get("SCOPES").map(|s| s.split_whitespace().map(str::to_owned).collect()),
            client_auth: match get("CLIENT_AUTH") {
                None => None,
                Some(v) => Some(
                    ClientAuth::parse(&v)
                        .with_context(|| format!("{prefix}CLIENT_AUTH must be basic or post"))?,
                ),
            },
            pkce: match get("PKCE") {
                None => None,
                Some(v) => Some(match v.to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => true,
                    "false" | "0" | "no" | "off" => false,
                    _ => bail!("{prefix}PKCE must be true or false"),
                }),
            },
        };
        out.insert((*id).to_owned(), settings);
    }
    Ok(out)
}

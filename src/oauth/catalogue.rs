//! The providers we speak OAuth with, each with its documented endpoints and quirks, resolved
//! against configuration. See `shared/reference/providers-and-peers.md` section 3.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use reqwest::Url;

use super::settings::{ClientAuth, ProviderSettings};
use crate::domain::ProviderId;
use crate::domain::Secret;
use crate::error::{Error, ErrorKind, Reason};

/// How a token response is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// RFC 6749 JSON.
    Standard,
    /// HTTP 200 with `ok:false` on errors; bot token on top, user token under `authed_user`.
    Slack,
    /// Adds `workspace_id`, `workspace_name`, `bot_id`; wants JSON request bodies.
    Notion,
}

/// How tokens are revoked at the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// RFC 7009 with the provider's client authentication; revoke the access token when
    /// `access_first` (Zoom revokes the app's grant through it), else the refresh token.
    Rfc7009 { access_first: bool },
    /// `auth.revoke` authenticated by the token itself; the bot token is shared per team.
    Slack,
    /// No per-token revocation exists.
    Unsupported,
}

/// Catalogue defaults of one provider.
struct Defaults {
    authorize_url: Option<&'static str>,
    token_url: Option<&'static str>,
    revoke_url: Option<&'static str>,
    issuer: Option<&'static str>,
    scopes: &'static [&'static str],
    scope_separator: &'static str,
    client_auth: ClientAuth,
    json_body: bool,
    pkce: bool,
    extra: &'static [(&'static str, &'static str)],
    user_scopes: &'static [&'static str],
    flavor: Flavor,
    revocation: Revocation,
    /// Without a refresh token the connection dies with its first access token.
    needs_refresh_token: bool,
    note: &'static str,
}

fn defaults(id: ProviderId) -> Defaults {
    let base = Defaults {
        authorize_url: None,
        token_url: None,
        revoke_url: None,
        issuer: None,
        scopes: &[],
        scope_separator: " ",
        client_auth: ClientAuth::Post,
        json_body: false,
        pkce: true,
        extra: &[],
        user_scopes: &[],
        flavor: Flavor::Standard,
        revocation: Revocation::Rfc7009 {
            access_first: false,
        },
        needs_refresh_token: false,
        note: "",
    };
    match id {
        ProviderId::Zoom => Defaults {
            authorize_url: Some("https://zoom.us/oauth/authorize"),
            token_url: Some("https://zoom.us/oauth/token"),
            revoke_url: Some("https://zoom.us/oauth/revoke"),
            scopes: &["meeting:read", "recording:read", "user:read"],
            client_auth: ClientAuth::Basic,
            revocation: Revocation::Rfc7009 { access_first: true },
            note: "refresh tokens rotate on every refresh; revoking uninstalls the app",
            ..base
        },
        ProviderId::Slack => Defaults {
            authorize_url: Some("https://slack.com/oauth/v2/authorize"),
            token_url: Some("https://slack.com/api/oauth.v2.access"),
            revoke_url: Some("https://slack.com/api/auth.revoke"),
            scopes: &[
                "channels:history",
                "channels:read",
                "chat:write",
                "groups:history",
                "groups:read",
                "im:history",
                "mpim:history",
                "team:read",
                "users:read",
            ],
            scope_separator: ",",
            pkce: false,
            // Search needs a user token, which only `user_scope` grants.
            user_scopes: &["search:read"],
            flavor: Flavor::Slack,
            revocation: Revocation::Slack,
            note: "tokens do not expire unless token rotation is enabled; the bot token is shared by every connection of a Slack team",
            ..base
        },
        ProviderId::Discord => Defaults {
            authorize_url: Some("https://discord.com/oauth2/authorize"),
            token_url: Some("https://discord.com/api/oauth2/token"),
            revoke_url: Some("https://discord.com/api/oauth2/token/revoke"),
            scopes: &["identify", "guilds", "guilds.members.read"],
            client_auth: ClientAuth::Basic,
            note: "access tokens last 7 days",
            ..base
        },
        ProviderId::Microsoft => Defaults {
            authorize_url: Some("https://login.microsoftonline.com/common/oauth2/v2.0/authorize"),
            token_url: Some("https://login.microsoftonline.com/common/oauth2/v2.0/token"),
            scopes: &[
                "offline_access",
                "openid",
                "User.Read",
                "Mail.Read",
                "Mail.Send",
                "Calendars.ReadWrite",
            ],
            extra: &[("response_mode", "query")],
            revocation: Revocation::Unsupported,
            needs_refresh_token: true,
            note: "no per-token revocation exists; refresh tokens need offline_access and expire after 90 days unused",
            ..base
        },
        ProviderId::Monday => Defaults {
            authorize_url: Some("https://auth.monday.com/oauth2/authorize"),
            token_url: Some("https://auth.monday.com/oauth2/token"),
            revoke_url: Some("https://auth.monday.com/oauth2/revoke"),
            scopes: &[
                "boards:read",
                "boards:write",
                "workspaces:read",
                "users:read",
                "me:read",
            ],
            pkce: false,
            note: "legacy-flow tokens never expire and have no refresh; the revoke URL is for the OAuth 2.1 flow",
            ..base
        },
        ProviderId::Notion => Defaults {
            authorize_url: Some("https://api.notion.com/v1/oauth/authorize"),
            token_url: Some("https://api.notion.com/v1/oauth/token"),
            revoke_url: Some("https://api.notion.com/v1/oauth/revoke"),
            client_auth: ClientAuth::Basic,
            json_body: true,
            pkce: false,
            extra: &[("owner", "user")],
            flavor: Flavor::Notion,
            note: "HTTP Basic with JSON bodies; refresh tokens rotate",
            ..base
        },
        ProviderId::Google => Defaults {
            authorize_url: Some("https://accounts.google.com/o/oauth2/v2/auth"),
            token_url: Some("https://oauth2.googleapis.com/token"),
            revoke_url: Some("https://oauth2.googleapis.com/revoke"),
            issuer: Some("https://accounts.google.com"),
            scopes: &[
                "openid",
                "email",
                "https://www.googleapis.com/auth/gmail.readonly",
                "https://www.googleapis.com/auth/gmail.send",
                "https://www.googleapis.com/auth/gmail.modify",
            ],
            extra: &[
                ("access_type", "offline"),
                ("prompt", "consent"),
                ("include_granted_scopes", "true"),
            ],
            needs_refresh_token: true,
            note: "refresh responses carry no refresh token; apps in Testing mode lose refresh tokens after 7 days",
            ..base
        },
        ProviderId::Loom => Defaults {
            authorize_url: Some("https://www.loom.com/oauth/authorize"),
            token_url: Some("https://www.loom.com/oauth/token"),
            scopes: &["video.read", "video.write", "user.read"],
            revocation: Revocation::Unsupported,
            note: "Loom documents no public OAuth API: endpoints are the product spec's and must be confirmed with Loom",
            ..base
        },
        ProviderId::Custom => Defaults {
            client_auth: ClientAuth::Basic,
            note: "a standard OAuth 2.0 server declared entirely in configuration",
            ..base
        },
    }
}

/// A provider resolved against configuration, ready to use. Its Debug shows no secret
/// (`Secret` redacts itself).
#[derive(Debug)]
pub struct Provider {
    pub id: ProviderId,
    pub client_id: String,
    pub client_secret: Secret<String>,
    pub authorize_url: Url,
    pub token_url: Url,
    pub revoke_url: Option<Url>,
    pub issuer: Option<String>,
    pub scopes: Vec<String>,
    pub scope_separator: &'static str,
    pub client_auth: ClientAuth,
    pub json_body: bool,
    pub pkce: bool,
    pub extra: &'static [(&'static str, &'static str)],
    /// Slack: scopes of the installing user's own token, asked for as `user_scope`.
    pub user_scopes: &'static [&'static str],
    pub flavor: Flavor,
    pub revocation: Revocation,
    pub needs_refresh_token: bool,
}

/// What ListProviders shows of a provider.
pub struct Listing {
    pub id: ProviderId,
    pub configured: bool,
    pub scopes: Vec<String>,
    pub pkce: bool,
    pub supports_refresh: bool,
    pub supports_revocation: bool,
    pub note: &'static str,
}

/// Every provider, configured or not.
pub struct Catalogue {
    configured: BTreeMap<ProviderId, Provider>,
    listings: Vec<Listing>,
}

fn parse_url(id: ProviderId, what: &str, v: &str) -> anyhow::Result<Url> {
    Url::parse(v).with_context(|| format!("{} {what} is not a URL", id.as_str()))
}

impl Catalogue {
    /// Resolves every provider against its settings. Providers without client credentials are
    /// listed but not usable; bad URLs are configuration errors.
    pub fn new(settings: &BTreeMap<String, ProviderSettings>) -> anyhow::Result<Self> {
        let mut configured = BTreeMap::new();
        let mut listings = Vec::new();
        let empty = ProviderSettings::default();
        for id in ProviderId::ALL {
            let d = defaults(id);
            let s = settings.get(id.as_str()).unwrap_or(&empty);
            let scopes: Vec<String> = s
                .scopes
                .clone()
                .unwrap_or_else(|| d.scopes.iter().map(|s| (*s).to_owned()).collect());
            let pkce = if id == ProviderId::Custom {
                s.pkce.unwrap_or(true)
            } else {
                d.pkce
            };
            let revoke = s.revoke_url.as_deref().or(d.revoke_url);
            let revocation = match (d.revocation, revoke) {
                (Revocation::Rfc7009 { .. }, None) => Revocation::Unsupported,
                (Revocation::Unsupported, Some(_)) => Revocation::Rfc7009 {
                    access_first: false,
                },
                (r, _) => r,
            };
            let authorize = s.authorize_url.as_deref().or(d.authorize_url);
            let token = s.token_url.as_deref().or(d.token_url);
            let mut usable = false;
            if let (Some(client_id), Some(secret), Some(authorize), Some(token)) =
                (&s.client_id, &s.client_secret, authorize, token)
            {
                if secret.expose().is_empty() || client_id.is_empty() {
                    bail!("{} client id and secret must not be empty", id.as_str());
                }
                configured.insert(
                    id,
                    Provider {
                        id,
                        client_id: client_id.clone(),
                        client_secret: secret.clone(),
                        authorize_url: parse_url(id, "authorize URL", authorize)?,
                        token_url: parse_url(id, "token URL", token)?,
                        revoke_url: revoke.map(|r| parse_url(id, "revoke URL", r)).transpose()?,
                        issuer: s.issuer.clone().or(d.issuer.map(str::to_owned)),
                        scopes: scopes.clone(),
                        scope_separator: d.scope_separator,
                        client_auth: s.client_auth.unwrap_or(d.client_auth),
                        json_body: d.json_body,
                        pkce,
                        extra: d.extra,
                        user_scopes: d.user_scopes,
                        flavor: d.flavor,
                        revocation,
                        needs_refresh_token: d.needs_refresh_token,
                    },
                );
                usable = true;
            }
            listings.push(Listing {
                id,
                configured: usable,
                scopes,
                pkce,
                supports_refresh: id != ProviderId::Monday,
                supports_revocation: revocation != Revocation::Unsupported,
                note: d.note,
            });
        }
        Ok(Self {
            configured,
            listings,
        })
    }

    pub fn get(&self, id: ProviderId) -> Result<&Provider, Error> {
        self.configured.get(&id).ok_or_else(|| {
            Error::new(
                ErrorKind::FailedPrecondition,
                Reason::ProviderNotConfigured,
                format!(
                    "{} OAuth is not configured: set FH_PROVIDER_{}_CLIENT_ID and FH_PROVIDER_{}_CLIENT_SECRET",
                    id,
                    id.as_str().to_ascii_uppercase(),
                    id.as_str().to_ascii_uppercase()
                ),
            )
            .with_metadata("provider", id.as_str())
        })
    }

    pub fn listings(&self) -> &[Listing] {
        &self.listings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_without_client_credentials_are_listed_but_not_configured() {
        let cat = Catalogue::new(&BTreeMap::new()).unwrap();
        assert_eq!(cat.listings().len(), 9);
        assert!(cat.listings().iter().all(|l| !l.configured));
        assert_eq!(
            cat.get(ProviderId::Zoom).unwrap_err().reason(),
            Reason::ProviderNotConfigured
        );
    }

    #[test]
    fn quirks_follow_the_provider_documentation() {
        let mut s = BTreeMap::new();
        for id in ProviderId::ALL {
            s.insert(
                id.as_str().to_owned(),
                ProviderSettings {
                    client_id: Some("id".into()),
                    client_secret: Some(Secret::new("secret".into())),
                    authorize_url: (id == ProviderId::Custom).then(|| "https://auth.test/a".into()),
                    token_url: (id == ProviderId::Custom).then(|| "https://auth.test/t".into()),
                    ..Default::default()
                },
            );
        }
        let cat = Catalogue::new(&s).unwrap();
        let p = |id| cat.get(id).unwrap();
        assert_eq!(p(ProviderId::Zoom).client_auth, ClientAuth::Basic);
        assert!(
            p(ProviderId::Notion).json_body
                && p(ProviderId::Notion).client_auth == ClientAuth::Basic
        );
        assert!(!p(ProviderId::Slack).pkce && p(ProviderId::Google).pkce);
        assert_eq!(p(ProviderId::Microsoft).revocation, Revocation::Unsupported);
        assert!(
            p(ProviderId::Microsoft)
                .scopes
                .iter()
                .any(|s| s == "offline_access")
        );
        assert!(
            p(ProviderId::Google)
                .extra
                .contains(&("access_type", "offline"))
        );
        assert_eq!(p(ProviderId::Custom).revocation, Revocation::Unsupported);
    }
}

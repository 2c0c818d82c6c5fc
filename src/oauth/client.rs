//! Code exchange, refresh and revocation, spoken through the `oauth2` crate with each provider's
//! client authentication; the seam (`seam.rs`) carries the requests and bends the quirks.

use std::time::Duration;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
};
use oauth2::{
    AuthType, AuthorizationCode, Client, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    HttpRequest, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, RevocableToken,
    RevocationUrl, TokenUrl,
};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::Value;

use super::catalogue::Provider;
use super::seam::{Call, Seam, SeamError};
use super::settings::ClientAuth;
use super::slack;
use super::tokens::ProviderTokenResponse;
pub use super::tokens::TokenSet;

/// Why a token request failed.
#[derive(Debug)]
pub enum OAuthError {
    /// The provider said no, with its error code (`invalid_grant`, `invalid_code`, ...).
    Rejected { code: String },
    /// Network failure, timeout, 5xx or 429: worth retrying later.
    Unavailable { why: String },
    /// An answer we cannot use.
    Malformed { why: &'static str },
}

impl OAuthError {
    /// The grant is gone: RFC 6749's `invalid_grant`, or what Slack and others call it.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, OAuthError::Rejected { code } if code == "invalid_grant" || code == "invalid_refresh_token" || code == "token_revoked")
    }
}

/// oauth2's client with the endpoints one call needs set: the token endpoint always, the
/// revocation endpoint when `R` is `EndpointSet`.
type OAuthClient<R = EndpointNotSet> = Client<
    BasicErrorResponse,
    ProviderTokenResponse,
    BasicTokenIntrospectionResponse,
    HintedToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    R,
    EndpointSet,
>;

/// A token to revoke with the RFC 7009 `token_type_hint` the caller chose (queued revocations
/// keep theirs in the database).
#[derive(Debug)]
struct HintedToken {
    token: String,
    hint: String,
}

impl RevocableToken for HintedToken {
    fn secret(&self) -> &str {
        &self.token
    }

    fn type_hint(&self) -> Option<&str> {
        Some(&self.hint)
    }
}

/// The provider's client id, secret and authentication method, and its token endpoint.
fn oauth_client(p: &Provider) -> OAuthClient {
    Client::new(ClientId::new(p.client_id.clone()))
        .set_client_secret(ClientSecret::new(p.client_secret.expose().clone()))
        .set_auth_type(match p.client_auth {
            ClientAuth::Basic => AuthType::BasicAuth,
            ClientAuth::Post => AuthType::RequestBody,
        })
        .set_token_uri(TokenUrl::from_url(p.token_url.clone()))
}

/// Exchanges an authorization code.
pub async fn exchange(
    http: &reqwest::Client,
    p: &Provider,
    timeout: Duration,
    code: &str,
    redirect_uri: &str,
    verifier: Option<&str>,
) -> Result<TokenSet, OAuthError> {
    let redirect =
        RedirectUrl::new(redirect_uri.to_owned()).map_err(|_| OAuthError::Malformed {
            why: "the redirect uri is not a url",
        })?;
    let client = oauth_client(p).set_redirect_uri(redirect);
    let mut request = client.exchange_code(AuthorizationCode::new(code.to_owned()));
    if let Some(v) = verifier {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(v.to_owned()));
    }
    let seam = Seam::new(http, p, timeout, Call::Token, &p.token_url);
    let response = request.request_async(&seam).await.map_err(token_error)?;
    tokens(p, response)
}

/// Redeems a refresh token.
pub async fn refresh(
    http: &reqwest::Client,
    p: &Provider,
    timeout: Duration,
    refresh_token: &str,
) -> Result<TokenSet, OAuthError> {
    let client = oauth_client(p);
    let token = RefreshToken::new(refresh_token.to_owned());
    let seam = Seam::new(http, p, timeout, Call::Token, &p.token_url);
    let response = client
        .exchange_refresh_token(&token)
        .request_async(&seam)
        .await
        .map_err(token_error)?;
    tokens(p, response)
}

fn tokens(p: &Provider, response: ProviderTokenResponse) -> Result<TokenSet, OAuthError> {
    TokenSet::from_response(p.flavor, response).ok_or(OAuthError::Malformed {
        why: "no access token in the response",
    })
}

/// What a failed token request means for us. Parse failures carry the body, which may hold
/// tokens: it is dropped here, never logged.
fn token_error(e: RequestTokenError<SeamError, BasicErrorResponse>) -> OAuthError {
    match e {
        RequestTokenError::Request(SeamError::Unavailable(why)) => OAuthError::Unavailable { why },
        RequestTokenError::Request(SeamError::TooLarge) => OAuthError::Malformed {
            why: "token endpoint response too large",
        },
        RequestTokenError::ServerResponse(r) => OAuthError::Rejected {
            code: sanitize_code(r.error().as_ref()),
        },
        RequestTokenError::Parse(..) => OAuthError::Malformed {
            why: "token endpoint answered something other than a token response",
        },
        RequestTokenError::Other(_) => OAuthError::Malformed {
            why: "token endpoint answered nothing usable",
        },
    }
}

/// Provider error codes are short identifiers; anything else is replaced, so nothing a
/// provider echoes (which could include a token) travels further.
fn sanitize_code(code: &str) -> String {
    if !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        code.to_owned()
    } else {
        "provider_error".to_owned()
    }
}

/// The outcome of one revocation request.
#[derive(Debug)]
pub enum Revoked {
    Yes,
    Rejected { code: String },
    Unavailable,
}

/// RFC 7009 revocation: 200 means revoked (also for unknown tokens); 5xx and network failures
/// are retried a few times within the timeout.
pub async fn revoke_rfc7009(
    http: &reqwest::Client,
    p: &Provider,
    timeout: Duration,
    token: &str,
    hint: &str,
) -> Revoked {
    let Some(url) = &p.revoke_url else {
        return Revoked::Rejected {
            code: "no_revocation_endpoint".to_owned(),
        };
    };
    let client = oauth_client(p).set_revocation_url(RevocationUrl::from_url(https(url)));
    let seam = Seam::new(http, p, timeout, Call::Revoke, url);
    retry(|| async {
        let request = match client.revoke_token(HintedToken {
            token: token.to_owned(),
            hint: hint.to_owned(),
        }) {
            Ok(r) => r,
            Err(_) => {
                return Revoked::Rejected {
                    code: "no_revocation_endpoint".to_owned(),
                };
            }
        };
        match request.request_async(&seam).await {
            Ok(()) => Revoked::Yes,
            Err(RequestTokenError::Request(SeamError::Unavailable(_))) => Revoked::Unavailable,
            Err(RequestTokenError::ServerResponse(r)) => Revoked::Rejected {
                code: sanitize_code(r.error().as_ref()),
            },
            Err(_) => Revoked::Rejected {
                code: "provider_error".to_owned(),
            },
        }
    })
    .await
}

/// The URL oauth2 is given for a revocation endpoint: it refuses plain http (see `Seam`), and
/// the seam sends to the configured URL anyway.
fn https(url: &Url) -> Url {
    let mut u = url.clone();
    if u.scheme() == "http" {
        // http and https are both special schemes, so the switch cannot fail.
        let _ = u.set_scheme("https");
    }
    u
}

/// Slack's `auth.revoke`, authenticated by the token being revoked.
pub async fn revoke_slack(
    http: &reqwest::Client,
    p: &Provider,
    timeout: Duration,
    token: &str,
) -> Revoked {
    let Some(url) = &p.revoke_url else {
        return Revoked::Rejected {
            code: "no_revocation_endpoint".to_owned(),
        };
    };
    let seam = Seam::new(http, p, timeout, Call::SlackRevoke, url);
    retry(|| async {
        // The seam sends to `url`; the request carries the method and the token.
        let mut request = HttpRequest::new(Vec::new());
        *request.method_mut() = reqwest::Method::POST;
        let Ok(bearer) = HeaderValue::try_from(format!("Bearer {token}")) else {
            // Only a token with bytes a header cannot carry gets here; Slack would refuse it.
            return Revoked::Rejected {
                code: "invalid_auth".to_owned(),
            };
        };
        request.headers_mut().insert(AUTHORIZATION, bearer);
        match seam.send(request).await {
            Err(SeamError::Unavailable(_)) => Revoked::Unavailable,
            Err(SeamError::TooLarge) => Revoked::Rejected {
                code: "provider_error".to_owned(),
            },
            Ok(r) => match serde_json::from_slice::<Value>(r.body()) {
                // Not JSON: not Slack's answer (a proxy's error page, say); try again later.
                Err(_) => Revoked::Unavailable,
                // The seam left 200 only on `ok:true`.
                Ok(_) if r.status() == reqwest::StatusCode::OK => Revoked::Yes,
                Ok(answer) => {
                    let code = answer
                        .get("error")
                        .and_then(Value::as_str)
                        .map_or_else(|| "not_ok".to_owned(), sanitize_code);
                    if slack::already_revoked(&code) {
                        Revoked::Yes
                    } else {
                        Revoked::Rejected { code }
                    }
                }
            },
        }
    })
    .await
}

/// Up to three attempts, 200 ms then 400 ms apart, while the provider is unavailable.
async fn retry<F, Fut>(mut attempt: F) -> Revoked
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Revoked>,
{
    let mut delay = Duration::from_millis(200);
    for n in 0..3 {
        match attempt().await {
            Revoked::Unavailable if n < 2 => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other,
        }
    }
    Revoked::Unavailable
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    use super::super::catalogue::Flavor;
    use super::super::seam::tidy_token_response;
    use super::*;

    /// A token response read as the seam and oauth2 read it.
    fn parse_tokens(flavor: Flavor, v: &Value) -> Result<TokenSet, OAuthError> {
        let mut o = v.as_object().cloned().unwrap_or_default();
        tidy_token_response(flavor, &mut o);
        let response: ProviderTokenResponse = serde_json::from_value(Value::Object(o))
            .map_err(|_| OAuthError::Malformed { why: "unreadable" })?;
        TokenSet::from_response(flavor, response).ok_or(OAuthError::Malformed { why: "empty" })
    }

    #[test]
    fn slack_responses_keep_bot_and_user_tokens_apart() {
        let v = json!({"ok": true, "access_token": "xoxb-1", "scope": "chat:write,users:read",
            "team": {"id": "T1", "name": "Acme"}, "bot_user_id": "U0",
            "authed_user": {"id": "U1", "scope": "search:read", "access_token": "xoxp-1"}});
        let t = parse_tokens(Flavor::Slack, &v).unwrap();
        let names: Vec<_> = t.fields.iter().map(|(f, _)| *f).collect();
        assert_eq!(names, ["access_token", "user_token"]);
        assert_eq!(t.account_id.as_deref(), Some("T1"));
        assert_eq!(
            t.expires_in, None,
            "slack tokens without rotation never expire"
        );
        assert_eq!(t.scopes, ["chat:write", "users:read", "user:search:read"]);
    }

    #[test]
    fn microsoft_accounts_are_tenant_and_object_ids_from_the_id_token() {
        let claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"s","oid":"o","tid":"t"}"#);
        let v = json!({"access_token": "a", "expires_in": "3599", "id_token": format!("e30.{claims}.sig")});
        let t = parse_tokens(Flavor::Standard, &v).unwrap();
        assert_eq!(t.account_id.as_deref(), Some("t:o"));
        assert_eq!(t.expires_in, Some(3599));
    }

    #[test]
    fn odd_error_codes_are_not_passed_on() {
        assert_eq!(sanitize_code("invalid_grant"), "invalid_grant");
        assert_eq!(sanitize_code("token xoxb-secret is bad"), "provider_error");
    }

    #[test]
    fn google_accounts_are_the_subject_and_refresh_tokens_are_kept() {
        let claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"1234"}"#);
        let v = json!({"access_token": "a", "token_type": "Bearer", "refresh_token": "r",
            "scope": "openid email", "id_token": format!("e30.{claims}.sig")});
        let t = parse_tokens(Flavor::Standard, &v).unwrap();
        assert_eq!(t.account_id.as_deref(), Some("1234"));
        assert!(t.has("refresh_token"));
        assert_eq!(t.scopes, ["openid", "email"]);
    }

    #[test]
    fn notion_workspaces_are_the_account_and_shapes_we_do_not_expect_read_as_absent() {
        let v = json!({"access_token": "ntn-a", "token_type": "bearer", "bot_id": "b1",
            "workspace_id": "w1", "workspace_name": "Acme", "workspace_icon": null,
            "owner": {"type": "user", "user": {"id": "u1"}}, "team": "not an object"});
        let t = parse_tokens(Flavor::Notion, &v).unwrap();
        assert_eq!(t.account_id.as_deref(), Some("w1"));
        assert_eq!(
            t.metadata,
            json!({"workspace_name": "Acme", "bot_id": "b1"})
                .as_object()
                .cloned()
                .unwrap()
        );
    }

    #[test]
    fn slack_rotation_keeps_the_user_refresh_token_and_expiry() {
        let v = json!({"ok": true, "access_token": "xoxe.xoxb-1", "refresh_token": "xoxe-1-b",
            "token_type": "bot", "team": {"id": "T1"},
            "authed_user": {"id": "U1", "access_token": "xoxe.xoxp-1", "refresh_token": "xoxe-1-u",
                "expires_in": 43200}});
        let t = parse_tokens(Flavor::Slack, &v).unwrap();
        let names: Vec<_> = t.fields.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            names,
            [
                "access_token",
                "user_token",
                "refresh_token",
                "user_refresh_token"
            ]
        );
        assert_eq!(t.expires_in, Some(43200));
    }

    #[test]
    fn a_response_without_an_access_token_is_malformed() {
        assert!(parse_tokens(Flavor::Standard, &json!({"token_type": "bearer"})).is_err());
        assert!(parse_tokens(Flavor::Standard, &json!({"access_token": ""})).is_err());
        assert!(
            OAuthError::Rejected {
                code: "invalid_grant".into()
            }
            .is_invalid_grant()
        );
    }
}

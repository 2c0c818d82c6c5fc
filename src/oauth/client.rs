//! The HTTP side of OAuth: code exchange, refresh and revocation, with each provider's client
//! authentication, body format and response shape.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::catalogue::{Flavor, Provider};
use super::settings::ClientAuth;
use crate::domain::Secret;

/// Largest token endpoint response we read.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Tokens a provider granted. Values are secret from parse to seal.
#[derive(Debug, Default)]
pub struct TokenSet {
    /// Credential fields to store: `access_token`, `refresh_token`, Slack's `user_token` ...
    pub fields: Vec<(&'static str, Secret<String>)>,
    pub expires_in: Option<u64>,
    pub scopes: Vec<String>,
    /// The account at the provider, when the response names one.
    pub account_id: Option<String>,
    /// Non-secret facts worth keeping (team name, workspace name).
    pub metadata: Map<String, Value>,
}

impl TokenSet {
    pub fn has(&self, field: &str) -> bool {
        self.fields.iter().any(|(f, _)| *f == field)
    }
}

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
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, OAuthError::Rejected { code } if code == "invalid_grant" || code == "invalid_refresh_token" || code == "token_revoked")
    }
}

fn string(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn seconds(v: &Value, key: &str) -> Option<u64> {
    match v.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn split_scopes(s: &str) -> Vec<String> {
    s.split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Claims of an id_token received straight from the token endpoint over TLS. OIDC Core 3.1.3.7
/// lets TLS stand in for the signature here; we only read the subject, never trust it for auth.
fn id_token_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?).ok()
}

fn account_from_id_token(v: &Value) -> Option<String> {
    let claims = id_token_claims(v.get("id_token")?.as_str()?)?;
    match (string(&claims, "tid"), string(&claims, "oid")) {
        (Some(tid), Some(oid)) => Some(format!("{tid}:{oid}")),
        _ => string(&claims, "sub"),
    }
}

/// Reads a token response in the provider's shape.
pub fn parse_tokens(flavor: Flavor, v: &Value) -> Result<TokenSet, OAuthError> {
    let mut t = TokenSet::default();
    match flavor {
        Flavor::Slack => {
            let user = v.get("authed_user").cloned().unwrap_or(Value::Null);
            let bot = string(v, "access_token");
            let user_token = string(&user, "access_token");
            match (bot, user_token) {
                (Some(b), u) => {
                    t.fields.push(("access_token", Secret::new(b)));
                    if let Some(u) = u {
                        t.fields.push(("user_token", Secret::new(u)));
                    }
                }
                (None, Some(u)) => t.fields.push(("access_token", Secret::new(u))),
                (None, None) => {
                    return Err(OAuthError::Malformed {
                        why: "no access token in the response",
                    });
                }
            }
            if let Some(r) = string(v, "refresh_token") {
                t.fields.push(("refresh_token", Secret::new(r)));
            }
            if let Some(r) = string(&user, "refresh_token") {
                t.fields.push(("user_refresh_token", Secret::new(r)));
            }
            t.expires_in = seconds(v, "expires_in").or_else(|| seconds(&user, "expires_in"));
            t.scopes = split_scopes(&string(v, "scope").unwrap_or_default());
            t.scopes.extend(
                split_scopes(&string(&user, "scope").unwrap_or_default())
                    .into_iter()
                    .map(|s| format!("user:{s}")),
            );
            let team = v.get("team").cloned().unwrap_or(Value::Null);
            t.account_id = string(&team, "id");
            for (key, val) in [
                ("team_name", string(&team, "name")),
                ("bot_user_id", string(v, "bot_user_id")),
                ("authed_user_id", string(&user, "id")),
            ] {
                if let Some(val) = val {
                    t.metadata.insert(key.to_owned(), Value::String(val));
                }
            }
        }
        Flavor::Standard | Flavor::Notion => {
            let access = string(v, "access_token").ok_or(OAuthError::Malformed {
                why: "no access token in the response",
            })?;
            t.fields.push(("access_token", Secret::new(access)));
            if let Some(r) = string(v, "refresh_token") {
                t.fields.push(("refresh_token", Secret::new(r)));
            }
            t.expires_in = seconds(v, "expires_in");
            t.scopes = split_scopes(&string(v, "scope").unwrap_or_default());
            t.account_id = if flavor == Flavor::Notion {
                string(v, "workspace_id")
            } else {
                account_from_id_token(v)
            };
            if flavor == Flavor::Notion {
                for key in ["workspace_name", "bot_id"] {
                    if let Some(val) = string(v, key) {
                        t.metadata.insert(key.to_owned(), Value::String(val));
                    }
                }
            }
        }
    }
    Ok(t)
}

/// A POST to one of the provider's endpoints with its client authentication: HTTP Basic, or
/// the client id and secret added to `params` for the body.
fn client_post(
    http: &reqwest::Client,
    p: &Provider,
    url: reqwest::Url,
    timeout: Duration,
    params: &mut Vec<(&'static str, String)>,
) -> reqwest::RequestBuilder {
    let req = http
        .post(url)
        .timeout(timeout)
        .header(reqwest::header::ACCEPT, "application/json");
    match p.client_auth {
        ClientAuth::Basic => req.basic_auth(&p.client_id, Some(p.client_secret.expose())),
        ClientAuth::Post => {
            params.push(("client_id", p.client_id.clone()));
            params.push(("client_secret", p.client_secret.expose().clone()));
            req
        }
    }
}

/// Sends one token-endpoint request with the provider's client authentication and body format,
/// and returns the JSON body of a success.
async fn token_request(
    http: &reqwest::Client,
    p: &Provider,
    timeout: Duration,
    mut params: Vec<(&'static str, String)>,
) -> Result<Value, OAuthError> {
    let mut req = client_post(http, p, p.token_url.clone(), timeout, &mut params);
    req = if p.json_body {
        let body: Map<String, Value> = params
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v)))
            .collect();
        req.json(&body)
    } else {
        req.form(&params)
    };
    let resp = req.send().await.map_err(|e| OAuthError::Unavailable {
        why: transport_error(&e),
    })?;
    let status = resp.status();
    let body = read_limited(resp).await?;
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(OAuthError::Unavailable {
            why: format!("token endpoint answered {status}"),
        });
    }
    let json: Value = serde_json::from_slice(&body).map_err(|_| OAuthError::Malformed {
        why: "token endpoint answered something other than JSON",
    })?;
    if let Some(code) = json.get("error").and_then(Value::as_str) {
        return Err(OAuthError::Rejected {
            code: sanitize_code(code),
        });
    }
    // Slack answers errors with HTTP 200 and ok:false.
    if p.flavor == Flavor::Slack && json.get("ok").and_then(Value::as_bool) != Some(true) {
        return Err(OAuthError::Rejected {
            code: "not_ok".to_owned(),
        });
    }
    if !status.is_success() {
        return Err(OAuthError::Rejected {
            code: format!("http_{}", status.as_u16()),
        });
    }
    Ok(json)
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

/// reqwest's error text can include the URL; ours carry no secrets in URLs, but keep it short.
fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "transport error".to_owned()
    }
}

async fn read_limited(resp: reqwest::Response) -> Result<bytes::Bytes, OAuthError> {
    if resp
        .content_length()
        .is_some_and(|n| n as usize > MAX_RESPONSE_BYTES)
    {
        return Err(OAuthError::Malformed {
            why: "token endpoint response too large",
        });
    }
    let bytes = resp.bytes().await.map_err(|e| OAuthError::Unavailable {
        why: transport_error(&e),
    })?;
    if bytes.len() > MAX_RESPONSE_BYTES {
        return Err(OAuthError::Malformed {
            why: "token endpoint response too large",
        });
    }
    Ok(bytes)
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
    let mut params = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", redirect_uri.to_owned()),
    ];
    if let Some(v) = verifier {
        params.push(("code_verifier", v.to_owned()));
    }
    let json = token_request(http, p, timeout, params).await?;
    parse_tokens(p.flavor, &json)
}

/// Redeems a refresh token.
pub async fn refresh(
    http: &reqwest::Client,
    p: &Provider,
    timeout: Duration,
    refresh_token: &str,
) -> Result<TokenSet, OAuthError> {
    let params = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh_token.to_owned()),
    ];
    let json = token_request(http, p, timeout, params).await?;
    parse_tokens(p.flavor, &json)
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
    retry(|| async {
        let mut params = vec![
            ("token", token.to_owned()),
            ("token_type_hint", hint.to_owned()),
        ];
        let mut req = client_post(http, p, url.clone(), timeout, &mut params);
        req = if p.json_body {
            req.json(&serde_json::json!({"token": token}))
        } else {
            req.form(&params)
        };
        match req.send().await {
            Err(_) => Revoked::Unavailable,
            Ok(r) if r.status().is_success() => Revoked::Yes,
            Ok(r)
                if r.status().is_server_error()
                    || r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS =>
            {
                Revoked::Unavailable
            }
            Ok(r) => {
                let status = r.status().as_u16();
                let code = r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|j| j.get("error").and_then(Value::as_str).map(sanitize_code))
                    .unwrap_or_else(|| format!("http_{status}"));
                Revoked::Rejected { code }
            }
        }
    })
    .await
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
    retry(|| async {
        match http
            .post(url.clone())
            .timeout(timeout)
            .bearer_auth(token)
            .send()
            .await
        {
            Err(_) => Revoked::Unavailable,
            Ok(r)
                if r.status().is_server_error()
                    || r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS =>
            {
                Revoked::Unavailable
            }
            Ok(r) => match r.json::<Value>().await {
                Ok(j) if j.get("ok").and_then(Value::as_bool) == Some(true) => Revoked::Yes,
                Ok(j) => {
                    let code = j
                        .get("error")
                        .and_then(Value::as_str)
                        .map(sanitize_code)
                        .unwrap_or_else(|| "not_ok".to_owned());
                    // Already revoked or unknown: the goal is met.
                    if matches!(
                        code.as_str(),
                        "invalid_auth" | "token_revoked" | "account_inactive"
                    ) {
                        Revoked::Yes
                    } else {
                        Revoked::Rejected { code }
                    }
                }
                Err(_) => Revoked::Unavailable,
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
    use serde_json::json;

    use super::*;

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
}

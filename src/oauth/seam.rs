//! The one place oauth2's requests meet the network: sends them with the service's own reqwest
//! client and a size-limited body reader, and bends each provider's quirks into the shapes
//! RFC 6749 and RFC 7009 describe, in both directions.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use reqwest::{StatusCode, Url};
use serde_json::{Map, Value, json};

use super::catalogue::{Flavor, Provider};
use super::slack;
use crate::body::{ReadError, read_limited};

/// Largest token or revocation endpoint response we read.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// What an endpoint call is for: the rules that bend its answers differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Call {
    /// Code exchange or refresh at the token endpoint.
    Token,
    /// RFC 7009 revocation.
    Revoke,
    /// Slack's `auth.revoke`, which speaks Slack's own shape.
    SlackRevoke,
}

/// Why a request got no usable HTTP answer. oauth2 hands it back as `RequestTokenError::Request`.
#[derive(Debug, thiserror::Error)]
pub(super) enum SeamError {
    /// Network failure, timeout, 5xx or 429: worth retrying later.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    #[error("response too large")]
    TooLarge,
}

/// One provider endpoint as the seam sees it.
pub(super) struct Seam<'a> {
    pub http: &'a reqwest::Client,
    pub timeout: Duration,
    pub flavor: Flavor,
    pub json_body: bool,
    pub call: Call,
    /// Where the request goes. oauth2 insists on an https revocation URL (RFC 7009 says clients
    /// must check), while configuration may point a provider at a local http server for
    /// development and tests, so the seam sends to the configured endpoint itself.
    pub endpoint: &'a Url,
}

impl<'a> Seam<'a> {
    pub fn new(
        http: &'a reqwest::Client,
        p: &Provider,
        timeout: Duration,
        call: Call,
        endpoint: &'a Url,
    ) -> Self {
        Self {
            http,
            timeout,
            flavor: p.flavor,
            json_body: p.json_body,
            call,
            endpoint,
        }
    }

    /// Sends one request oauth2 built (its method, headers and body, to `endpoint`) and answers
    /// what oauth2 should read.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, SeamError> {
        let (parts, body) = request.into_parts();
        let mut headers = parts.headers;
        let body = if self.json_body {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.remove(CONTENT_LENGTH);
            form_to_json(&body, self.call)
        } else {
            body
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        let resp = self
            .http
            .request(parts.method, self.endpoint.clone())
            .headers(headers)
            .body(body)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| SeamError::Unavailable(transport_error(&e).to_owned()))?;
        let status = resp.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(SeamError::Unavailable(format!(
                "endpoint answered {status}"
            )));
        }
        if call_needs_no_body(self.call, status) {
            return Ok(answer(StatusCode::OK, Vec::new()));
        }
        let bytes = read_limited(resp, MAX_RESPONSE_BYTES, deadline)
            .await
            .map_err(|e| match e {
                ReadError::TooLarge => SeamError::TooLarge,
                ReadError::TimedOut => SeamError::Unavailable("timed out".to_owned()),
                ReadError::Network => SeamError::Unavailable("transport error".to_owned()),
            })?;
        let (status, body) = normalise(self.flavor, self.call, status, bytes.to_vec());
        Ok(answer(status, body))
    }
}

/// RFC 7009 2.2: a 2xx revocation answer says everything in its status; its body is not read.
fn call_needs_no_body(call: Call, status: StatusCode) -> bool {
    call == Call::Revoke && status.is_success()
}

/// An answer for oauth2, labelled JSON when it is JSON.
fn answer(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    // JSON is read as JSON whatever the provider labelled it, as before oauth2; anything else
    // goes unlabelled and oauth2 finds it unreadable.
    let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok();
    let mut out = HttpResponse::new(body);
    *out.status_mut() = status;
    if is_json {
        out.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    out
}

/// oauth2's HTTP client is the seam. The boxed future is `Send` with a concrete type, which
/// keeps the futures of the service's use cases `Send` (a closure's would not be, for all
/// lifetimes).
impl<'c> AsyncHttpClient<'c> for Seam<'_> {
    type Error = SeamError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, SeamError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// Bends an answer into RFC 6749 shape: errors become 400 `{"error": code}` whatever status
/// and envelope the provider used, successes become 200 with the lenient fields tidied.
fn normalise(
    flavor: Flavor,
    call: Call,
    status: StatusCode,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let parsed = serde_json::from_slice::<Value>(&body).ok();
    let success = status.is_success();
    let code = match &parsed {
        Some(Value::Object(o)) => if flavor == Flavor::Slack {
            slack::error_code(o)
        } else {
            o.get("error").and_then(Value::as_str).map(str::to_owned)
        }
        .or_else(|| (!success).then(|| format!("http_{}", status.as_u16()))),
        // Not JSON: an RFC 7009 failure keeps its status as the code; other answers pass
        // through for their reader to call unreadable.
        _ if !success && call == Call::Revoke => Some(format!("http_{}", status.as_u16())),
        _ => None,
    };
    if let Some(code) = code {
        let body = json!({ "error": code }).to_string().into_bytes();
        return (StatusCode::BAD_REQUEST, body);
    }
    match parsed {
        Some(Value::Object(mut o)) if success && call == Call::Token => {
            tidy_token_response(flavor, &mut o);
            (StatusCode::OK, Value::Object(o).to_string().into_bytes())
        }
        // oauth2 takes only 200 as success; RFC 7009 servers may answer 204.
        _ if success => (StatusCode::OK, body),
        _ => (status, body),
    }
}

/// Notion takes JSON bodies: the form oauth2 built, as a JSON object of strings. Its revocation
/// takes the token alone.
fn form_to_json(body: &[u8], call: Call) -> Vec<u8> {
    let object: Map<String, Value> = oauth2::url::form_urlencoded::parse(body)
        .filter(|(k, _)| !(call == Call::Revoke && k == "token_type_hint"))
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    Value::Object(object).to_string().into_bytes()
}

/// Tolerates what lenient providers send and oauth2's strict types refuse: `expires_in` as a
/// string (Microsoft's older endpoints), no `token_type`, a `scope` that is not a string, and
/// Slack's user-only grants.
pub(super) fn tidy_token_response(flavor: Flavor, o: &mut Map<String, Value>) {
    if flavor == Flavor::Slack {
        slack::hoist_user_token(o);
    }
    tidy_expiry(o);
    if let Some(Value::Object(user)) = o.get_mut("authed_user") {
        tidy_expiry(user);
    }
    if !o.get("token_type").is_some_and(Value::is_string) {
        o.insert("token_type".to_owned(), Value::String("bearer".to_owned()));
    }
    if o.get("scope").is_some_and(|s| !s.is_string()) {
        o.remove("scope");
    }
}

/// `expires_in` as a non-negative integer, or absent.
fn tidy_expiry(o: &mut Map<String, Value>) {
    let seconds = match o.get("expires_in") {
        None => return,
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match seconds {
        Some(s) => o.insert("expires_in".to_owned(), json!(s)),
        None => o.remove("expires_in"),
    };
}

/// reqwest's error text can include the URL; ours carry no secrets in URLs, but keep it short.
fn transport_error(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "transport error"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seam's answer to `body` with `status`, as (status, body).
    fn answer(flavor: Flavor, call: Call, status: u16, body: &[u8]) -> (u16, Vec<u8>) {
        let status = StatusCode::from_u16(status).unwrap();
        let (status, body) = normalise(flavor, call, status, body.to_vec());
        (status.as_u16(), body)
    }

    fn normalise_json(flavor: Flavor, call: Call, status: u16, body: Value) -> (u16, Value) {
        let (status, body) = answer(flavor, call, status, body.to_string().as_bytes());
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[test]
    fn slack_ok_false_becomes_an_rfc_6749_error() {
        let answer = json!({"ok": false, "error": "invalid_refresh_token", "warning": "x"});
        assert_eq!(
            normalise_json(Flavor::Slack, Call::Token, 200, answer),
            (400, json!({"error": "invalid_refresh_token"}))
        );
        assert_eq!(
            normalise_json(Flavor::Slack, Call::Token, 200, json!({"ok": false})),
            (400, json!({"error": "not_ok"}))
        );
        let revoked = json!({"ok": true, "revoked": true});
        assert_eq!(
            normalise_json(Flavor::Slack, Call::SlackRevoke, 200, revoked.clone()),
            (200, revoked)
        );
    }

    #[test]
    fn errors_in_any_envelope_become_400_with_their_code_alone() {
        let answer = json!({"error": "invalid_grant", "error_description": "token xyz is bad"});
        assert_eq!(
            normalise_json(Flavor::Standard, Call::Token, 200, answer),
            (400, json!({"error": "invalid_grant"}))
        );
        assert_eq!(
            normalise_json(Flavor::Standard, Call::Token, 401, json!({})),
            (400, json!({"error": "http_401"}))
        );
    }

    #[test]
    fn a_revocation_refused_without_json_keeps_its_status_as_the_code() {
        assert_eq!(
            answer(Flavor::Standard, Call::Revoke, 403, b"forbidden"),
            (400, br#"{"error":"http_403"}"#.to_vec())
        );
        assert_eq!(
            answer(Flavor::Standard, Call::Revoke, 204, b""),
            (200, Vec::new())
        );
        // A token endpoint's unreadable answer stays unreadable: oauth2 reports it malformed.
        assert_eq!(
            answer(Flavor::Standard, Call::Token, 400, b"<html>"),
            (400, b"<html>".to_vec())
        );
    }

    #[test]
    fn notion_gets_the_form_as_a_json_object() {
        let form = b"grant_type=authorization_code&code=a%2Bb&redirect_uri=http%3A%2F%2Fx%2Fcb";
        let v: Value = serde_json::from_slice(&form_to_json(form, Call::Token)).unwrap();
        assert_eq!(
            v,
            json!({"grant_type": "authorization_code", "code": "a+b", "redirect_uri": "http://x/cb"})
        );
        let revoke = form_to_json(b"token=t&token_type_hint=access_token", Call::Revoke);
        let v: Value = serde_json::from_slice(&revoke).unwrap();
        assert_eq!(v, json!({"token": "t"}));
    }

    #[test]
    fn lenient_token_fields_are_tidied() {
        let mut o = json!({"access_token": "a", "expires_in": "3599", "scope": ["x"]})
            .as_object()
            .cloned()
            .unwrap();
        tidy_token_response(Flavor::Standard, &mut o);
        assert_eq!(
            Value::Object(o),
            json!({"access_token": "a", "expires_in": 3599, "token_type": "bearer"})
        );
    }
}

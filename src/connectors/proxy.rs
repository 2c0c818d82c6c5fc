//! The authenticated proxy: a caller's raw request (method, path, query, body) is checked so it
//! cannot leave the platform's base URL or carry credentials of its own, sent through the
//! integration's session, and answered with only the safe headers and a scrubbed body.

use std::collections::HashMap;

use http::Method;
use reqwest::Url;
use serde_json::{Map, Value, json};

use super::transport::ProviderRequest;
use super::{BodyEncoding, Session};
use crate::error::{Error, FieldViolation};

/// Largest proxy request body, as JSON.
const MAX_PROXY_BODY_BYTES: usize = 1024 * 1024;
const MAX_PROXY_PATH_CHARS: usize = 2048;
const MAX_QUERY_PAIRS: usize = 50;

/// Query keys the proxy refuses: credentials travel only in the headers we set.
const AUTH_QUERY_KEYS: &[&str] = &[
    "access_token",
    "api_key",
    "apikey",
    "key",
    "token",
    "auth",
    "authorization",
    "client_secret",
    "password",
    "signature",
];

/// Provider response headers the proxy passes on; everything else (cookies, internal routing)
/// stays here.
const PASSED_HEADERS: &[&str] = &[
    "content-type",
    "content-language",
    "etag",
    "last-modified",
    "link",
    "location",
    "retry-after",
    "x-request-id",
];
const PASSED_HEADER_PREFIXES: &[&str] = &["x-ratelimit-", "ratelimit-", "x-rate-limit-"];

/// A proxy request that passed every guard; nothing of it has been sent yet.
#[derive(Debug)]
pub struct ProxyCall {
    method: Method,
    /// Relative to the base URL, with one leading `/`.
    path: String,
    query: Vec<(String, String)>,
    body: Option<Map<String, Value>>,
}

#[derive(Debug)]
pub struct ProxyOutput {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// A JSON object: the provider's object, `{"items": [...]}` for an array, `{"value": x}`
    /// for another JSON value, `{"text": ...}` for a body that is not JSON.
    pub body: Map<String, Value>,
}

impl ProxyCall {
    /// Checks the path, query and body (InvalidArgument naming each bad field). No I/O.
    pub fn check(
        method: Method,
        path: &str,
        query: HashMap<String, String>,
        body: Option<Map<String, Value>>,
    ) -> Result<Self, Error> {
        let path = check_proxy_path(path)?;
        let query = check_query(query)?;
        let body = match (body, &method) {
            (Some(b), &Method::POST | &Method::PUT | &Method::PATCH) => Some(check_body(b)?),
            (Some(b), _) if !b.is_empty() => {
                return Err(Error::invalid_field(
                    "body",
                    "is only allowed with POST, PUT and PATCH",
                ));
            }
            _ => None,
        };
        Ok(Self {
            method,
            path,
            query,
            body,
        })
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Sends it under the session's base URL, in the platform's body encoding, and answers
    /// with the provider's status, the passed headers and the body, all scrubbed.
    pub async fn send(self, session: &mut Session) -> Result<ProxyOutput, Error> {
        let url = join_under(session.base(), &self.path)?;
        let req = match (self.body, session.body_encoding()) {
            (None, _) => ProviderRequest::new(self.method, url),
            (Some(b), BodyEncoding::Json) => {
                ProviderRequest::json(self.method, url, &Value::Object(b))
            }
            (Some(b), BodyEncoding::Form) => {
                ProviderRequest::form(self.method, url, form_pairs(b)?)
            }
        }
        .query(self.query);
        let reply = session.send(req).await?;
        let headers = reply
            .headers
            .iter()
            .filter(|(name, _)| passed_header(name.as_str()))
            .filter_map(|(name, value)| {
                Some((
                    name.as_str().to_owned(),
                    session.scrubber().text(value.to_str().ok()?),
                ))
            })
            .collect();
        let body = proxy_body(&session.scrubber().bytes(&reply.body));
        Ok(ProxyOutput {
            status: reply.status.as_u16(),
            headers,
            body,
        })
    }
}

/// The proxy's method; only the five that REST APIs use.
pub fn parse_method(method: &str) -> Result<Method, Error> {
    match method.trim().to_ascii_uppercase().as_str() {
        "GET" => Ok(Method::GET),
        "POST" => Ok(Method::POST),
        "PUT" => Ok(Method::PUT),
        "PATCH" => Ok(Method::PATCH),
        "DELETE" => Ok(Method::DELETE),
        _ => Err(Error::invalid_field(
            "method",
            "must be GET, POST, PUT, PATCH or DELETE",
        )),
    }
}

/// A proxy path: relative to the platform's base URL and unable to leave it. Returns it with
/// one leading `/`. Refused: absolute URLs and schemes, `//`, `.` and `..` segments,
/// backslashes, percent-encoded dots, slashes, backslashes or percent signs (which some servers
/// decode into traversal), query or fragment markers, whitespace and control characters.
fn check_proxy_path(path: &str) -> Result<String, Error> {
    let bad = |why: &str| Err(Error::invalid_field("path", why.to_owned()));
    if path.is_empty() {
        return bad("is required");
    }
    if path.chars().count() > MAX_PROXY_PATH_CHARS {
        return bad("is too long");
    }
    if path
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '\\' | '?' | '#'))
    {
        return bad("must not contain whitespace, control characters, \\, ? or #");
    }
    if path.contains("://") || path.starts_with("//") {
        return bad("must be a path under the platform's base URL, not a URL");
    }
    let lower = path.to_ascii_lowercase();
    // %c0/%c1 start overlong UTF-8 encodings of `.` and `/` that some servers still decode.
    for encoded in ["%2e", "%2f", "%5c", "%25", "%00", "%c0", "%c1"] {
        if lower.contains(encoded) {
            return bad("must not percent-encode dots, slashes, backslashes or %");
        }
    }
    let relative = path.strip_prefix('/').unwrap_or(path);
    if relative.is_empty() {
        return bad("must name a resource under the base URL");
    }
    for segment in relative.split('/') {
        if segment.is_empty() {
            return bad("must not contain empty segments (//)");
        }
        if segment == "." || segment == ".." {
            return bad("must not contain . or .. segments");
        }
    }
    // A first segment like `http:` or `evil.example:443` could read as a scheme or authority.
    if relative.split('/').next().is_some_and(|s| s.contains(':')) {
        return bad("must not start with a scheme or host");
    }
    Ok(format!("/{relative}"))
}

/// `base` + `path`, checked again after parsing: same origin, and under the base path.
fn join_under(base: &Url, path: &str) -> Result<Url, Error> {
    let escapes = || Error::invalid_field("path", "must stay under the platform's base URL");
    let joined = format!("{}{path}", base.as_str().trim_end_matches('/'));
    let url = Url::parse(&joined).map_err(|_| escapes())?;
    let base_path = base.path().trim_end_matches('/');
    let under = url.path().starts_with(&format!("{base_path}/"));
    if url.origin() != base.origin() || !under || url.query().is_some() || url.fragment().is_some()
    {
        return Err(escapes());
    }
    Ok(url)
}

fn check_query(query: HashMap<String, String>) -> Result<Vec<(String, String)>, Error> {
    if query.len() > MAX_QUERY_PAIRS {
        return Err(Error::invalid_field(
            "query",
            format!("must have at most {MAX_QUERY_PAIRS} parameters"),
        ));
    }
    let mut pairs: Vec<(String, String)> = query.into_iter().collect();
    pairs.sort();
    let mut violations = Vec::new();
    for (k, v) in &pairs {
        let shown: String = k.chars().take(64).collect();
        let field = format!("query.{shown}");
        if k.is_empty() || k.len() > 128 || k.chars().any(char::is_control) {
            violations.push(FieldViolation::new(
                field,
                "must be 1 to 128 printable characters",
            ));
        } else if AUTH_QUERY_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
            violations.push(FieldViolation::new(
                field,
                "may not carry credentials: the service authenticates proxy requests itself",
            ));
        } else if v.len() > 4096 || v.chars().any(char::is_control) {
            violations.push(FieldViolation::new(
                field,
                "must be at most 4096 printable characters",
            ));
        }
    }
    if violations.is_empty() {
        Ok(pairs)
    } else {
        Err(Error::invalid_fields(violations))
    }
}

fn check_body(body: Map<String, Value>) -> Result<Map<String, Value>, Error> {
    let size = serde_json::to_vec(&body)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_PROXY_BODY_BYTES {
        return Err(Error::invalid_field(
            "body",
            format!("must be at most {MAX_PROXY_BODY_BYTES} bytes as JSON"),
        ));
    }
    Ok(body)
}

/// A flat JSON object as form pairs; lists repeat their key (Twilio's `MediaUrl`).
fn form_pairs(body: Map<String, Value>) -> Result<Vec<(String, String)>, Error> {
    let scalar = |v: Value| match v {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let mut pairs = Vec::new();
    for (k, v) in body {
        let flat_error = || {
            Error::invalid_field(
                format!("body.{k}"),
                "must be a string, number, boolean or list of them: this platform takes form bodies",
            )
        };
        match v {
            Value::Null => {}
            Value::Array(items) => {
                for item in items {
                    pairs.push((k.clone(), scalar(item).ok_or_else(flat_error)?));
                }
            }
            other => pairs.push((k.clone(), scalar(other).ok_or_else(flat_error)?)),
        }
    }
    Ok(pairs)
}

fn passed_header(name: &str) -> bool {
    PASSED_HEADERS.contains(&name) || PASSED_HEADER_PREFIXES.iter().any(|p| name.starts_with(p))
}

fn proxy_body(body: &[u8]) -> Map<String, Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Map::new();
    }
    let mut out = Map::new();
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => return m,
        Ok(Value::Array(a)) => out.insert("items".into(), Value::Array(a)),
        Ok(other) => out.insert("value".into(), other),
        Err(_) => out.insert(
            "text".into(),
            json!(String::from_utf8_lossy(body).into_owned()),
        ),
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_paths_that_could_leave_the_base_url_are_refused() {
        for bad in [
            "",
            "/",
            "../admin",
            "/v1/../../admin",
            "/a/./b",
            "//evil.example/x",
            "/a//b",
            "https://evil.example/x",
            "http:evil.example",
            "/%2e%2e/admin",
            "/%2E%2E/admin",
            "/a%2fb",
            "/a%5cb",
            "/a%252e%252e/b",
            "/%c0%ae%c0%ae/admin",
            "/a\\..\\b",
            "/a?x=1",
            "/a#frag",
            "/a b",
            "/a\nb",
            "evil.example:443/x",
        ] {
            let err = check_proxy_path(bad).expect_err(bad);
            assert_eq!(err.violations()[0].field, "path", "{bad}");
        }
    }

    #[test]
    fn ordinary_paths_pass_with_one_leading_slash() {
        assert_eq!(check_proxy_path("speeches").unwrap(), "/speeches");
        assert_eq!(
            check_proxy_path("/Accounts/AC1/Messages.json").unwrap(),
            "/Accounts/AC1/Messages.json"
        );
        assert_eq!(
            check_proxy_path("/users/me/messages:batchModify").unwrap(),
            "/users/me/messages:batchModify"
        );
    }

    #[test]
    fn joined_urls_stay_on_the_base_origin_and_path() {
        let base = Url::parse("https://api.twilio.com/2010-04-01").unwrap();
        assert_eq!(
            join_under(&base, "/Accounts/AC1.json").unwrap().as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC1.json"
        );
        assert!(join_under(&base, "@evil.example/x").is_err());
    }

    #[test]
    fn credentials_in_the_query_are_refused_by_name() {
        let err = check_query([("Access_Token".to_owned(), "x".to_owned())].into()).unwrap_err();
        assert_eq!(err.violations()[0].field, "query.Access_Token");
    }

    #[test]
    fn form_bodies_must_be_flat() {
        let body: Map<String, Value> =
            serde_json::from_value(json!({"To": "+1", "MediaUrl": ["a", "b"], "N": 2})).unwrap();
        let mut pairs = form_pairs(body).unwrap();
        pairs.sort();
        assert_eq!(
            pairs,
            vec![
                ("MediaUrl".into(), "a".into()),
                ("MediaUrl".into(), "b".into()),
                ("N".into(), "2".into()),
                ("To".into(), "+1".into()),
            ]
        );
        let nested: Map<String, Value> = serde_json::from_value(json!({"x": {"y": 1}})).unwrap();
        assert_eq!(
            form_pairs(nested).unwrap_err().violations()[0].field,
            "body.x"
        );
    }
}

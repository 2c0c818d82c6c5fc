//! What a connector hands the core: the request, its `Authorization` value, per-call options,
//! and the buffered reply that comes back.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use reqwest::Url;
use serde_json::Value;

use crate::domain::Secret;
use crate::error::{Error, ErrorKind, Reason};

/// The value of the `Authorization` header for one provider call. Marked sensitive, so neither
/// `Debug` here nor the `http` crate's formatting ever shows it.
#[derive(Clone)]
pub struct Auth(HeaderValue);

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Auth([redacted])")
    }
}

impl Auth {
    /// The header value, still marked sensitive.
    pub(super) fn header(&self) -> HeaderValue {
        self.0.clone()
    }

    pub fn bearer(token: &str) -> Result<Self, Error> {
        Self::raw(&format!("Bearer {token}"))
    }

    pub fn basic(user: &str, password: &str) -> Result<Self, Error> {
        use base64::Engine;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Self::raw(&format!("Basic {encoded}"))
    }

    /// The header value as is (Monday.com takes the bare token).
    pub fn raw(value: &str) -> Result<Self, Error> {
        let value = Secret::new(value.to_owned());
        let mut header = HeaderValue::from_str(value.expose()).map_err(|_| {
            Error::new(
                ErrorKind::FailedPrecondition,
                Reason::NeedsReauth,
                "the stored credential cannot be sent in a header; reconnect the integration",
            )
        })?;
        header.set_sensitive(true);
        Ok(Self(header))
    }
}

/// A request body. Form bodies stay pairs until sent (Twilio takes only form-encoded POSTs).
#[derive(Clone, Debug)]
pub enum Body {
    Empty,
    Json(Bytes),
    Form(Vec<(String, String)>),
}

/// One request to a provider, without its credentials.
#[derive(Clone, Debug)]
pub struct ProviderRequest {
    pub method: Method,
    pub url: Url,
    /// Headers besides `Authorization` (e.g. `Notion-Version`).
    pub headers: HeaderMap,
    pub body: Body,
    /// May the core send it twice? GET/HEAD/PUT/DELETE/OPTIONS are by definition; a POST only
    /// when the operation says so.
    pub idempotent: bool,
}

impl ProviderRequest {
    pub fn new(method: Method, url: Url) -> Self {
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: Body::Empty,
            idempotent,
        }
    }

    pub fn get(url: Url) -> Self {
        Self::new(Method::GET, url)
    }

    /// A JSON body; values are serialized, never interpolated into text.
    pub fn json(method: Method, url: Url, body: &Value) -> Self {
        let mut req = Self::new(method, url);
        req.body = Body::Json(Bytes::from(body.to_string()));
        req
    }

    pub fn form(method: Method, url: Url, pairs: Vec<(String, String)>) -> Self {
        let mut req = Self::new(method, url);
        req.body = Body::Form(pairs);
        req
    }

    /// Appends query parameters (percent-encoded by `Url`).
    pub fn query<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut pairs = pairs.into_iter().peekable();
        if pairs.peek().is_some() {
            self.url.query_pairs_mut().extend_pairs(pairs);
        }
        self
    }

    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }
}

/// A buffered provider answer (any status the core does not turn into an error itself).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Per-call options.
#[derive(Clone, Copy, Debug)]
pub struct SendOptions {
    /// False for health probes: one attempt, so latency and state are what the provider did.
    pub retries: bool,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self { retries: true }
    }
}

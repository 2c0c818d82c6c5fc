//! One call against one integration: its credentials, base URL and deadline. Every provider
//! request of an operation goes through here, and so through the HTTP core.
//!
//! The 401 policy: the first 401 (or GraphQL authentication error) of a session asks its
//! `Renewal` once. When that fails (API keys and pasted tokens cannot
//! be renewed here) its NEEDS_REAUTH error is the answer and the provider saw exactly one
//! request; when it yields new credentials the request is sent once more, and a second 401 is
//! NEEDS_REAUTH.

use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;
use http::{HeaderMap, StatusCode, header};
use reqwest::Url;
use serde_json::Value;
use tokio::time::Instant;

use super::transport::{
    Auth, HttpCore, ProviderRequest, Reply, Scrubber, SendOptions, bad_answer, needs_reauth,
    provider_timeout, provider_unavailable, rejection,
};
use super::{BodyEncoding, Download};
use crate::domain::Credentials;
use crate::domain::Secret;
use crate::domain::{Platform, credential_spec};
use crate::error::Error;

/// Error bodies of downloads are read only this far.
const DOWNLOAD_ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Renews credentials a provider rejected: an OAuth refresh, or NEEDS_REAUTH for credentials
/// only a person can replace. The service implements it; connectors only call it, so they never
/// depend on the layer above.
pub trait Renewal: Send + Sync {
    fn renew<'a>(&'a self, stale: &'a Credentials) -> BoxFuture<'a, Result<Credentials, Error>>;
}

/// For credentials that are not stored yet: nothing can renew them, so a rejection is the
/// answer.
pub struct NoRenewal;

impl Renewal for NoRenewal {
    fn renew<'a>(&'a self, stale: &'a Credentials) -> BoxFuture<'a, Result<Credentials, Error>> {
        Box::pin(async move { Err(needs_reauth(stale.integration.platform)) })
    }
}

pub struct Session {
    core: Arc<HttpCore>,
    renewal: Arc<dyn Renewal>,
    creds: Credentials,
    auth_of: fn(&Credentials) -> Result<Auth, Error>,
    auth: Auth,
    headers: HeaderMap,
    base: Url,
    body_encoding: BodyEncoding,
    deadline: Instant,
    opts: SendOptions,
    rejected: bool,
    scrub: Scrubber,
}

/// The secret values of an integration's credentials: every field but the ones its platform
/// declares not secret (a base URL, an account SID), which providers legitimately echo.
fn scrubber(creds: &Credentials) -> Scrubber {
    let spec = credential_spec(creds.integration.platform);
    let public =
        |name: &str| spec.is_some_and(|s| s.fields.iter().any(|f| f.name == name && !f.secret));
    Scrubber::new(
        creds
            .integration
            .credential_fields
            .iter()
            .filter(|name| !public(name))
            .filter_map(|name| creds.get(name).map(|v| Secret::new(v.to_owned())))
            .collect(),
    )
}

/// What a session is built from; the registry fills it from the platform's definition.
pub(super) struct SessionParts {
    pub core: Arc<HttpCore>,
    pub renewal: Arc<dyn Renewal>,
    pub creds: Credentials,
    pub auth_of: fn(&Credentials) -> Result<Auth, Error>,
    pub headers: HeaderMap,
    pub base: Url,
    pub body_encoding: BodyEncoding,
    pub deadline: Instant,
    pub opts: SendOptions,
}

impl Session {
    pub(super) fn new(parts: SessionParts) -> Result<Self, Error> {
        let auth = (parts.auth_of)(&parts.creds)?;
        let scrub = scrubber(&parts.creds);
        Ok(Self {
            core: parts.core,
            renewal: parts.renewal,
            creds: parts.creds,
            auth_of: parts.auth_of,
            auth,
            headers: parts.headers,
            base: parts.base,
            body_encoding: parts.body_encoding,
            deadline: parts.deadline,
            opts: parts.opts,
            rejected: false,
            scrub,
        })
    }

    pub fn platform(&self) -> Platform {
        self.creds.integration.platform
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// How the platform takes a JSON object body (the proxy's bodies).
    pub fn body_encoding(&self) -> BodyEncoding {
        self.body_encoding
    }

    /// When the call must be answered; reads a handler does itself (a streamed body it
    /// collects) end by it too.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// A credential field the platform cannot work without (NEEDS_REAUTH when missing).
    pub fn credential(&self, field: &str) -> Result<&str, Error> {
        self.creds.require(field)
    }

    pub fn scrubber(&self) -> &Scrubber {
        &self.scrub
    }

    /// Authenticates this session's requests with `auth_of` instead of the platform's own
    /// (Slack's search needs the user token, not the bot token). Kept for the 401 path too, so
    /// renewed credentials are read the same way. Fails, before any request, when the
    /// credentials lack what `auth_of` needs.
    pub fn use_auth(
        &mut self,
        auth_of: fn(&Credentials) -> Result<Auth, Error>,
    ) -> Result<(), Error> {
        self.auth = auth_of(&self.creds)?;
        self.auth_of = auth_of;
        Ok(())
    }

    /// The base URL plus `segments`, each percent-encoded as one path segment (a `/` in an id
    /// cannot add a segment; ids are also checked against `Format::Id` before).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Sends, handling a 401 as the module documents. Any other status comes back as a reply.
    pub async fn send(&mut self, mut req: ProviderRequest) -> Result<Reply, Error> {
        for (name, value) in &self.headers {
            req.headers.entry(name).or_insert_with(|| value.clone());
        }
        loop {
            let reply = self
                .core
                .send(
                    self.platform(),
                    &req,
                    Some(&self.auth),
                    self.deadline,
                    self.opts,
                )
                .await?;
            if reply.status == StatusCode::UNAUTHORIZED {
                self.rejected().await?;
                continue;
            }
            return Ok(reply);
        }
    }

    /// The provider rejected the credentials: renew them once, or fail with NEEDS_REAUTH.
    pub async fn rejected(&mut self) -> Result<(), Error> {
        if self.rejected {
            return Err(needs_reauth(self.platform()));
        }
        self.rejected = true;
        tracing::info!(
            platform = self.platform().as_str(),
            integration_id = %self.creds.integration.id,
            "provider rejected the credentials"
        );
        let fresh = self.renewal.renew(&self.creds).await?;
        self.auth = (self.auth_of)(&fresh)?;
        self.scrub = scrubber(&fresh);
        self.creds = fresh;
        Ok(())
    }

    /// Sends and expects 2xx JSON (an empty body is `null`); anything else is an error.
    pub async fn json(&mut self, req: ProviderRequest) -> Result<Value, Error> {
        let reply = self.send(req).await?;
        if !reply.status.is_success() {
            return Err(rejection(
                self.platform(),
                reply.status,
                &reply.headers,
                &reply.body,
                &self.scrub,
            ));
        }
        if reply.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        let body = self.scrub.bytes(&reply.body);
        serde_json::from_slice(&body).map_err(|_| bad_answer(self.platform(), "not JSON"))
    }

    /// Streams a 2xx body. One redirect is followed: to the same origin with the credentials,
    /// to another https origin without them (signed media URLs), off the configured origin only
    /// to public addresses (the core's `egress`).
    pub async fn stream(&mut self, req: ProviderRequest) -> Result<Download, Error> {
        let platform = self.platform();
        let mut req = req;
        for (name, value) in &self.headers {
            req.headers.entry(name).or_insert_with(|| value.clone());
        }
        let mut with_auth = true;
        let mut redirected = false;
        let resp = loop {
            let auth = with_auth.then_some(&self.auth);
            let resp = self
                .core
                .send_streaming(platform, &req, auth, self.deadline)
                .await?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && with_auth {
                self.rejected().await?;
                continue;
            }
            if status.is_redirection() && !redirected {
                let target = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| req.url.join(l).ok())
                    .ok_or_else(|| bad_answer(platform, "a redirect without a location"))?;
                let same_origin = target.origin() == req.url.origin();
                if !same_origin && target.scheme() != "https" {
                    return Err(bad_answer(platform, "a redirect to an insecure location"));
                }
                with_auth = same_origin;
                redirected = true;
                req = ProviderRequest::get(target);
                continue;
            }
            break resp;
        };
        let status = resp.status();
        if !status.is_success() {
            let headers = resp.headers().clone();
            let body = crate::body::read_limited(resp, DOWNLOAD_ERROR_BODY_LIMIT, self.deadline)
                .await
                .unwrap_or_default();
            return Err(rejection(platform, status, &headers, &body, &self.scrub));
        }
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let total_bytes = resp.content_length();
        let chunks = resp
            .bytes_stream()
            .map(move |chunk| {
                chunk.map_err(|e| {
                    if e.is_timeout() {
                        provider_timeout(platform)
                    } else {
                        provider_unavailable(platform)
                    }
                })
            })
            .boxed();
        Ok(Download {
            content_type,
            total_bytes,
            chunks,
        })
    }
}

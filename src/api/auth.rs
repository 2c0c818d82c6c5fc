//! Caller authentication: one tower layer in front of both transports. It verifies the bearer
//! JWT and puts a `Caller` into the request's extensions, or answers Unauthenticated itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::{Request, Response, header};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;
use tower::{Layer, Service};
use uuid::Uuid;

use super::reject::{RejectBody, Transport, refuse};
use crate::domain::Secret;
use crate::domain::{Caller, Role, UserId, WorkspaceId};
use crate::error::{Error, Reason};

/// Claims we issue and accept.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub workspace_id: String,
    pub role: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// Mints a development token signed with the HS256 secret (`token` subcommand, tests, benches).
pub fn mint_token(
    secret: &Secret<String>,
    sub: Uuid,
    workspace: Uuid,
    role: Role,
    ttl: Duration,
) -> anyhow::Result<String> {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: sub.to_string(),
        workspace_id: workspace.to_string(),
        role: role.as_str().to_owned(),
        exp: now + ttl.as_secs(),
        iat: Some(now),
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )?)
}

/// How long fetched JWKS keys are trusted before they are fetched again, and the least time
/// between fetches caused by unknown key ids (so forged kids cannot make us hammer the IdP).
const JWKS_TTL: Duration = Duration::from_secs(600);
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(30);
/// Largest key set read; real ones are a few KiB.
const JWKS_MAX_BYTES: usize = 256 * 1024;

/// Fetched keys by kid, when we last fetched and tried to, and how long keys outlive a
/// failing identity provider.
struct KeyCache {
    keys: HashMap<String, (Algorithm, DecodingKey)>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
    last_attempt_failed: bool,
    max_stale: Duration,
}

impl KeyCache {
    fn new(max_stale: Duration) -> Self {
        Self {
            keys: HashMap::new(),
            fetched_at: None,
            attempted_at: None,
            last_attempt_failed: false,
            max_stale,
        }
    }

    /// A known key of that algorithm, unless the set is older than `max_stale`: a key the
    /// identity provider may have withdrawn long ago is not trusted forever.
    fn get(&self, kid: &str, alg: Algorithm) -> Option<DecodingKey> {
        if self.stale() {
            return None;
        }
        self.keys
            .get(kid)
            .filter(|(a, _)| *a == alg)
            .map(|(_, k)| k.clone())
    }

    /// Never fetched, or fetched longer than `max_stale` ago.
    fn stale(&self) -> bool {
        self.fetched_at
            .is_none_or(|at| at.elapsed() >= self.max_stale)
    }

    fn fresh(&self) -> bool {
        self.fetched_at
            .is_some_and(|at| at.elapsed() < JWKS_TTL.min(self.max_stale))
    }

    /// Whether a fetch happened so recently that another must wait. After a failure the
    /// wait is short, so recovery is quick while an outage still costs one fetch a second.
    fn cooling_down(&self) -> bool {
        let wait = if self.last_attempt_failed {
            JWKS_FAILURE_BACKOFF
        } else {
            // Keys going stale sooner than that must be refetched when they do.
            JWKS_MIN_REFETCH.min(self.max_stale)
        };
        self.attempted_at.is_some_and(|at| at.elapsed() < wait)
    }

    /// The answer when no fetch may be made now: a known key (even stale, which beats
    /// rejecting everyone while the identity provider is down), else why not.
    fn settle(&self, kid: &str, alg: Algorithm) -> Result<DecodingKey, Error> {
        match self.get(kid, alg) {
            Some(k) => Ok(k),
            // Includes keys gone stale: the last fetch failed, so the IdP is what is missing.
            None if self.last_attempt_failed || (self.fetched_at.is_some() && self.stale()) => {
                Err(jwks_unavailable())
            }
            None => Err(Error::unauthenticated("token key id not recognised")),
        }
    }
}

fn jwks_unavailable() -> Error {
    Error::new(
        crate::error::ErrorKind::Unavailable,
        Reason::JwksUnavailable,
        "cannot fetch signing keys",
    )
}

const JWKS_FAILURE_BACKOFF: Duration = Duration::from_secs(1);

/// `FH_JWKS_MAX_STALE`'s default: an identity provider outage of up to an hour goes unnoticed.
const DEFAULT_JWKS_MAX_STALE: Duration = Duration::from_secs(3600);

/// A JWKS fetch must end well inside a request's deadline.
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

struct Jwks {
    url: String,
    http: reqwest::Client,
    cache: RwLock<KeyCache>,
}

/// Verifies bearer tokens: HS256 with the configured secret, and RS256/ES256 keys from a JWKS URL.
pub struct Authenticator {
    hmac: Option<DecodingKey>,
    jwks: Option<Jwks>,
    issuer: Option<String>,
    audience: Option<String>,
    /// Longest accepted `exp - iat`.
    max_ttl: Duration,
}

/// Clock skew tolerated between us and whoever issues tokens, in seconds.
const LEEWAY_SECS: u64 = 30;

impl Authenticator {
    pub fn new(
        secret: Option<&Secret<String>>,
        jwks_url: Option<String>,
        issuer: Option<String>,
        audience: Option<String>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            hmac: secret.map(|s| DecodingKey::from_secret(s.expose().as_bytes())),
            jwks: jwks_url.map(|url| Jwks {
                url,
                http,
                cache: RwLock::new(KeyCache::new(DEFAULT_JWKS_MAX_STALE)),
            }),
            issuer,
            audience,
            max_ttl: Duration::from_secs(24 * 3600),
        }
    }

    /// Stops trusting fetched JWKS keys `max_stale` after the last successful fetch
    /// (`FH_JWKS_MAX_STALE`), however long fetching keeps failing.
    pub fn with_jwks_max_stale(mut self, max_stale: Duration) -> Self {
        if let Some(jwks) = &mut self.jwks {
            jwks.cache.get_mut().max_stale = max_stale;
        }
        self
    }

    /// Refuses tokens whose lifetime (`exp - iat`) is longer than `ttl` (`FH_JWT_MAX_TTL`).
    pub fn with_max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        // jsonwebtoken checks iss/aud only when present; configured ones must be required too,
        // or a token for another audience gets in by leaving the claim out.
        let mut required = vec!["exp", "sub"];
        required.extend(self.audience.as_ref().map(|_| "aud"));
        required.extend(self.issuer.as_ref().map(|_| "iss"));
        v.set_required_spec_claims(&required);
        match &self.audience {
            Some(aud) => v.set_audience(&[aud]),
            None => v.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
        }
        v
    }

    /// The caller a request's `authorization` header proves, or why not. Messages are fixed
    /// texts: nothing of the token is echoed.
    pub async fn authenticate(&self, headers: &http::HeaderMap) -> Result<Caller, Error> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| Error::unauthenticated("missing bearer token"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 8192)
            .ok_or_else(|| Error::unauthenticated("authorization must be a bearer token"))?;
        let head = jsonwebtoken::decode_header(token)
            .map_err(|_| Error::unauthenticated("malformed token"))?;
        let (key, alg) = match head.alg {
            Algorithm::HS256 => (
                self.hmac
                    .clone()
                    .ok_or_else(|| Error::unauthenticated("HS256 tokens are not accepted"))?,
                Algorithm::HS256,
            ),
            Algorithm::RS256 | Algorithm::ES256 => {
                let jwks = self
                    .jwks
                    .as_ref()
                    .ok_or_else(|| Error::unauthenticated("token algorithm not accepted"))?;
                let kid = head
                    .kid
                    .as_deref()
                    .ok_or_else(|| Error::unauthenticated("token has no key id"))?;
                jwks.key(kid, head.alg).await?
            }
            _ => return Err(Error::unauthenticated("token algorithm not accepted")),
        };
        let data =
            jsonwebtoken::decode::<Claims>(token, &key, &self.validation(alg)).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                Error::unauthenticated(match e.kind() {
                    K::ExpiredSignature => "token expired",
                    K::ImmatureSignature => "token not yet valid",
                    K::InvalidSignature => "token signature invalid",
                    K::InvalidIssuer => "token issuer not accepted",
                    K::InvalidAudience => "token audience not accepted",
                    K::MissingRequiredClaim(_) => "token lacks a required claim",
                    _ => "invalid token",
                })
            })?;
        let c = data.claims;
        // `iat` is required so that a token's lifetime can be bounded: a leaked long-lived
        // token must not stay usable for years.
        let iat = c
            .iat
            .ok_or_else(|| Error::unauthenticated("token lacks a required claim"))?;
        if iat > jsonwebtoken::get_current_timestamp() + LEEWAY_SECS {
            return Err(Error::unauthenticated("token issued in the future"));
        }
        if c.exp.saturating_sub(iat) > self.max_ttl.as_secs() {
            return Err(Error::unauthenticated(
                "token lifetime is longer than this service accepts",
            ));
        }
        let user = Uuid::parse_str(&c.sub)
            .map_err(|_| Error::unauthenticated("token sub must be a uuid"))?;
        let workspace = Uuid::parse_str(&c.workspace_id)
            .map_err(|_| Error::unauthenticated("token workspace_id must be a uuid"))?;
        let role: Role = c
            .role
            .parse()
            .map_err(|()| Error::unauthenticated("token role not recognised"))?;
        Ok(Caller {
            user_id: UserId(user),
            workspace_id: WorkspaceId(workspace),
            role,
        })
    }
}

impl Jwks {
    async fn key(&self, kid: &str, alg: Algorithm) -> Result<(DecodingKey, Algorithm), Error> {
        {
            let cache = self.cache.read().await;
            if cache.fresh()
                && let Some(k) = cache.get(kid, alg)
            {
                return Ok((k, alg));
            }
            if cache.cooling_down() {
                return cache.settle(kid, alg).map(|k| (k, alg));
            }
        }
        let mut cache = self.cache.write().await;
        // Another request may have fetched while we waited for the lock.
        if cache.cooling_down() || (cache.fresh() && cache.get(kid, alg).is_some()) {
            return cache.settle(kid, alg).map(|k| (k, alg));
        }
        cache.attempted_at = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                cache.keys = keys;
                cache.fetched_at = cache.attempted_at;
                cache.last_attempt_failed = false;
            }
            Err(e) => {
                cache.last_attempt_failed = true;
                tracing::warn!(cause = %format!("{e:#}"), "cannot fetch the JWKS");
            }
        }
        cache.settle(kid, alg).map(|k| (k, alg))
    }

    async fn fetch(&self) -> anyhow::Result<HashMap<String, (Algorithm, DecodingKey)>> {
        let deadline = tokio::time::Instant::now() + JWKS_FETCH_TIMEOUT;
        let resp = self
            .http
            .get(&self.url)
            .timeout(JWKS_FETCH_TIMEOUT)
            .send()
            .await?
            .error_for_status()?;
        // An identity provider (or whoever answers at its URL) cannot make us buffer more.
        let body = crate::body::read_limited(resp, JWKS_MAX_BYTES, deadline)
            .await
            .map_err(|e| anyhow::anyhow!("reading the key set failed: {e:?}"))?;
        let set: JwkSet = serde_json::from_slice(&body)?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(id), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk))
            else {
                continue;
            };
            let a = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                _ => continue,
            };
            keys.insert(id, (a, key));
        }
        Ok(keys)
    }
}

/// Paths that need no token: server health, reflection, probes, metrics, the OAuth callback
/// (the state is its credential) and the OpenAPI document.
pub fn is_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.v1.ServerReflection/")
        || path.starts_with("/grpc.reflection.v1alpha.ServerReflection/")
        || matches!(
            path,
            "/healthz" | "/readyz" | "/metrics" | "/api/v1/openapi.json"
        )
        || (path.starts_with("/api/v1/oauth/") && path.ends_with("/callback"))
}

/// The layer; it wraps the gRPC server and the axum router alike, answering rejections in the
/// form of the transport it guards.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<Authenticator>,
    transport: Transport,
}

impl AuthLayer {
    pub fn new(auth: Arc<Authenticator>, transport: Transport) -> Self {
        Self { auth, transport }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
            transport: self.transport,
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<Authenticator>,
    transport: Transport,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for AuthService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqB: http_body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static,
    ResB: RejectBody + Send + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        // The clone is ready only after poll_ready; take the ready one, leave the clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        let transport = self.transport;
        Box::pin(async move {
            if !is_public(req.uri().path()) {
                match auth.authenticate(req.headers()).await {
                    Ok(caller) => {
                        req.extensions_mut().insert(caller);
                    }
                    Err(err) => return Ok(refuse(req, &err, transport).await),
                }
            }
            inner.call(req).await
        })
    }
}

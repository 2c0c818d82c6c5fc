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

use super::reject::{RejectBody, Transport};
use crate::domain::{Caller, RequestId, Role, UserId, WorkspaceId};
use crate::error::Error;
use crate::secrets::Secret;

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

/// Keys by kid, and when they were fetched.
type KeyCache = (HashMap<String, (Algorithm, DecodingKey)>, Option<Instant>);

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
}

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
                cache: RwLock::new((HashMap::new(), None)),
            }),
            issuer,
            audience,
        }
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = 30;
        v.set_required_spec_claims(&["exp", "sub"]);
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
                    K::InvalidSignature => "token signature invalid",
                    K::InvalidIssuer => "token issuer not accepted",
                    K::InvalidAudience => "token audience not accepted",
                    K::MissingRequiredClaim(_) => "token lacks a required claim",
                    _ => "invalid token",
                })
            })?;
        let c = data.claims;
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
            let fresh = cache.1.is_some_and(|at| at.elapsed() < JWKS_TTL);
            if let Some((a, k)) = cache.0.get(kid)
                && fresh
                && *a == alg
            {
                return Ok((k.clone(), alg));
            }
            if cache.1.is_some_and(|at| at.elapsed() < JWKS_MIN_REFETCH)
                && !cache.0.contains_key(kid)
            {
                return Err(Error::unauthenticated("token key id not recognised"));
            }
        }
        let mut cache = self.cache.write().await;
        // Another request may have refreshed while we waited for the lock.
        if cache.1.is_none_or(|at| at.elapsed() >= JWKS_MIN_REFETCH) {
            let set: JwkSet = async {
                self.http
                    .get(&self.url)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await
            }
            .await
            .map_err(|e| {
                Error::new(
                    crate::error::ErrorKind::Unavailable,
                    "JWKS_UNAVAILABLE",
                    "cannot fetch signing keys",
                )
                .with_cause(e)
            })?;
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
            *cache = (keys, Some(Instant::now()));
        }
        match cache.0.get(kid) {
            Some((a, k)) if *a == alg => Ok((k.clone(), alg)),
            _ => Err(Error::unauthenticated("token key id not recognised")),
        }
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
    ReqB: Send + 'static,
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
                    Err(err) => {
                        let rid = req
                            .extensions()
                            .get::<RequestId>()
                            .cloned()
                            .unwrap_or_default();
                        return Ok(ResB::reject(
                            &err,
                            &rid,
                            transport.wants_grpc(req.headers()),
                        ));
                    }
                }
            }
            inner.call(req).await
        })
    }
}

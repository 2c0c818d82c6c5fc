//! Rate limits on the costly and the unauthenticated entry points, one tower layer on both
//! transports: StartAuthorization, CompleteAuthorization and RefreshIntegration per workspace,
//! the OAuth callback per client address. Beyond a limit: RESOURCE_EXHAUSTED / 429 `RATE_LIMITED` with `retry-after`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use futures::future::BoxFuture;
use http::{Request, Response};
use tower::{Layer, Service};

use super::auth::Authenticator;
use super::reject::{RejectBody, Transport, refuse};
use crate::config::RateLimits;
use crate::domain::{Caller, WorkspaceId};
use crate::error::{Error, ErrorKind, Reason};

/// Keys one limiter tracks at most; beyond it full buckets (indistinguishable from new ones)
/// are dropped, and if that is not enough, all: memory stays bounded whatever callers send.
const MAX_KEYS: usize = 100_000;

/// The calls that are limited, by gRPC path or REST route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limited {
    StartAuthorization,
    /// Redeeming handles: each flow completes once, so it has the starts' budget (of its own,
    /// so that completing does not spend what starting needs).
    Complete,
    Refresh,
    Callback,
}

impl Limited {
    fn of(path: &str) -> Option<Self> {
        match path {
            "/founderhouse.integrations.v1.OAuthService/StartAuthorization" => {
                return Some(Self::StartAuthorization);
            }
            "/founderhouse.integrations.v1.OAuthService/CompleteAuthorization" => {
                return Some(Self::Complete);
            }
            "/founderhouse.integrations.v1.OAuthService/RefreshIntegration" => {
                return Some(Self::Refresh);
            }
            _ => {}
        }
        let (platform, action) = path.strip_prefix("/api/v1/oauth/")?.split_once('/')?;
        if platform.is_empty() {
            return None;
        }
        match action {
            "authorize" => Some(Self::StartAuthorization),
            "complete" => Some(Self::Complete),
            "refresh" => Some(Self::Refresh),
            "callback" => Some(Self::Callback),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::StartAuthorization => "start_authorization",
            Self::Complete => "complete_authorization",
            Self::Refresh => "refresh",
            Self::Callback => "callback",
        }
    }
}

/// Token buckets by key: `per_minute` calls a minute, bursts of as many.
struct Buckets<K> {
    per_minute: u32,
    map: Mutex<HashMap<K, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn capacity(&self) -> f64 {
        f64::from(self.per_minute)
    }

    /// Tokens regained per second.
    fn rate(&self) -> f64 {
        self.capacity() / 60.0
    }

    fn refilled(&self, b: Bucket, now: Instant) -> f64 {
        let regained = now.saturating_duration_since(b.at).as_secs_f64() * self.rate();
        (b.tokens + regained).min(self.capacity())
    }

    /// Takes a token for `key`, or answers how long until one is there.
    fn take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        // A poisoned lock only means another request panicked mid-update of plain numbers.
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(key) && map.len() >= MAX_KEYS {
            map.retain(|_, b| self.refilled(*b, now) < self.capacity());
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        let full = Bucket {
            tokens: self.capacity(),
            at: now,
        };
        let bucket = map.entry(key.clone()).or_insert(full);
        let tokens = self.refilled(*bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - tokens) / self.rate()))
        }
    }
}

/// The limiters, shared by both transports so that a workspace has one budget.
pub struct RateLimiter {
    start_authorization: Buckets<WorkspaceId>,
    complete: Buckets<WorkspaceId>,
    refresh: Buckets<WorkspaceId>,
    callback: Buckets<IpAddr>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            start_authorization: Buckets::new(limits.start_authorization),
            complete: Buckets::new(limits.start_authorization),
            refresh: Buckets::new(limits.refresh),
            callback: Buckets::new(limits.callback),
        }
    }
}

/// The layer. Behind the auth layer (gRPC) it finds the caller in the request; in front of it
/// (REST, where auth runs after routing) it verifies the token itself, and lets a request it
/// cannot attribute through for auth to refuse.
#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: Arc<RateLimiter>,
    auth: Arc<Authenticator>,
    transport: Transport,
}

impl RateLimitLayer {
    pub fn new(limiter: Arc<RateLimiter>, auth: Arc<Authenticator>, transport: Transport) -> Self {
        Self {
            limiter,
            auth,
            transport,
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RateLimitService<S> {
    inner: S,
    layer: RateLimitLayer,
}

/// What the limit of a request is keyed by, read from it before any await.
struct Attribution {
    workspace: Option<WorkspaceId>,
    peer: Option<IpAddr>,
    /// To verify the token with when no auth layer ran before.
    headers: Option<http::HeaderMap>,
}

impl Attribution {
    fn of<B>(limited: Limited, req: &Request<B>) -> Self {
        let workspace = req.extensions().get::<Caller>().map(|c| c.workspace_id);
        let needs_token = limited != Limited::Callback && workspace.is_none();
        Self {
            workspace,
            peer: req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(p)| p.ip()),
            headers: needs_token.then(|| req.headers().clone()),
        }
    }
}

impl RateLimitLayer {
    /// Takes a token for the request, or answers how long the caller must wait.
    async fn admit(&self, limited: Limited, who: Attribution) -> Result<(), Duration> {
        let now = Instant::now();
        let bucket = match limited {
            Limited::StartAuthorization => &self.limiter.start_authorization,
            Limited::Complete => &self.limiter.complete,
            Limited::Refresh => &self.limiter.refresh,
            // The peer's address: behind a proxy that is the proxy, so size the limit for it.
            Limited::Callback => {
                return match who.peer {
                    Some(ip) => self.limiter.callback.take(&ip, now),
                    None => Ok(()),
                };
            }
        };
        let workspace = match (who.workspace, who.headers) {
            (Some(w), _) => Some(w),
            (None, Some(headers)) => self
                .auth
                .authenticate(&headers)
                .await
                .ok()
                .map(|c| c.workspace_id),
            (None, None) => None,
        };
        match workspace {
            Some(w) => bucket.take(&w, now),
            None => Ok(()),
        }
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for RateLimitService<S>
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

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        // The clone is ready only after poll_ready; take the ready one, leave the clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let Some(limited) = Limited::of(req.uri().path()) else {
                return inner.call(req).await;
            };
            if let Err(wait) = layer.admit(limited, Attribution::of(limited, &req)).await {
                metrics::counter!("fh_rate_limited_total", "call" => limited.name()).increment(1);
                // Whole seconds, rounded up: retrying at the advertised time succeeds.
                let after = Duration::from_secs(wait.as_secs_f64().ceil().max(1.0) as u64);
                let err = Error::new(
                    ErrorKind::ResourceExhausted,
                    Reason::RateLimited,
                    "too many requests of this kind; retry later",
                )
                .with_retry_after(after);
                return Ok(refuse(req, &err, layer.transport).await);
            }
            inner.call(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_recognised_by_grpc_path_and_rest_route() {
        use Limited::*;
        let cases = [
            (
                "/founderhouse.integrations.v1.OAuthService/StartAuthorization",
                Some(StartAuthorization),
            ),
            (
                "/founderhouse.integrations.v1.OAuthService/RefreshIntegration",
                Some(Refresh),
            ),
            ("/api/v1/oauth/zoom/authorize", Some(StartAuthorization)),
            ("/api/v1/oauth/zoom/refresh", Some(Refresh)),
            ("/api/v1/oauth/slack/callback", Some(Callback)),
            ("/api/v1/oauth//callback", None),
            ("/api/v1/oauth/slack/revoke", None),
            ("/api/v1/integrations", None),
            (
                "/founderhouse.integrations.v1.OAuthService/ListProviders",
                None,
            ),
        ];
        for (path, want) in cases {
            assert_eq!(Limited::of(path), want, "{path}");
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_says_when_the_next_token_comes() {
        let b = Buckets::new(2);
        let t0 = Instant::now();
        assert!(b.take(&1, t0).is_ok());
        assert!(b.take(&1, t0).is_ok());
        let wait = b.take(&1, t0).expect_err("the burst is spent");
        assert!((29..=30).contains(&wait.as_secs()), "{wait:?}");
        // Another key has its own budget; time refills.
        assert!(b.take(&2, t0).is_ok());
        assert!(b.take(&1, t0 + Duration::from_secs(30)).is_ok());
    }

    #[test]
    fn the_map_stays_bounded() {
        let b = Buckets::new(1);
        let t0 = Instant::now();
        for k in 0..(MAX_KEYS + 10) {
            let _ = b.take(&k, t0);
        }
        assert!(b.map.lock().expect("not poisoned").len() <= MAX_KEYS);
    }
}

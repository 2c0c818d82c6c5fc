//! The one HTTP core every connector sends through.
//!
//! Two reqwest clients (redirects off, connect timeout, from `app::http_client_builder()`): the
//! plain one for each platform's configured origin, and `egress`'s guarded one, which reaches
//! only public addresses, for every other URL. Around them:
//! - a deadline per call: every attempt, wait and body read ends by it;
//! - bounded bodies: buffered replies are cut at `max_response_bytes`, downloads stream;
//! - retries only for idempotent requests (GET/HEAD/PUT/DELETE, or a POST the operation marks
//!   idempotent, such as a GraphQL query) and only on network errors, 5xx and 429. A request
//!   that never left (connection refused, TLS failure) is retried whatever its method;
//! - waits the provider asks for (`Retry-After` seconds or date, `X-RateLimit-Reset`-style
//!   headers, Discord's `retry_after` body, Google's "Retry after <time>" text), else full-jitter
//!   exponential backoff; never sleeping past the deadline: when the wait does not fit, the
//!   caller gets the error at once with the wait as `RetryInfo`;
//! - a circuit breaker per platform and provider origin (the origin matters only for ZeroDB,
//!   whose host is per credential, so one tenant's broken host cannot open the circuit for
//!   everyone): open after `breaker_threshold` consecutive failures (network, timeout, 5xx),
//!   answering `CIRCUIT_OPEN` without calling the provider, one probe after `breaker_cooldown`,
//!   closed by any answer below 500;
//! - the mapping of provider answers to our `Error` (reasons `PROVIDER_RATE_LIMITED`,
//!   `PROVIDER_UNAVAILABLE`, `PROVIDER_TIMEOUT`, `CIRCUIT_OPEN`, `PROVIDER_REJECTED`,
//!   `NEEDS_REAUTH`, `SCOPE_MISSING`), which never carries a token, a request header or more of a
//!   provider body than a short, sanitized error message.
//!
//! Rooms: `request` (what a connector sends and gets back), `breaker`, `retry` (backoff and wait
//! hints), `errors` (the provider-error table), `scrub` (secrets out of messages and bodies).
//! The 401 path (renew the credentials once) sits one level up, in `Session`, because it needs
//! the integration's credentials.

mod breaker;
mod errors;
mod request;
mod retry;
mod scrub;

use std::time::{Duration, SystemTime};

use http::{StatusCode, header};
use tokio::time::Instant;

use self::breaker::{Breakers, breaker_key};
pub use self::errors::{
    bad_answer, circuit_open, needs_reauth, not_found, provider_timeout, provider_unavailable,
    rate_limited, rejection, too_large,
};
pub use self::request::{Auth, Body, ProviderRequest, Reply, SendOptions};
pub use self::retry::wait_hint;
use self::retry::{DEFAULT_RATE_LIMIT_WAIT, full_jitter};
pub use self::scrub::{Scrubber, sanitize};
use super::egress::{self, Egress, Route};
use crate::body::{ReadError, read_limited};
use crate::domain::Platform;
use crate::error::Error;

/// Error bodies of retryable answers are read only this far, for wait hints.
const HINT_BODY_LIMIT: usize = 64 * 1024;

/// How the core retries, waits and protects providers. Defaults are production values.
#[derive(Clone, Debug)]
pub struct HttpPolicy {
    /// Attempts per call, the first included (1 disables retries).
    pub max_attempts: u32,
    /// First backoff ceiling; doubled per attempt, jittered in [0, ceiling).
    pub backoff_base: Duration,
    /// Largest backoff ceiling.
    pub backoff_max: Duration,
    /// Consecutive failures that open a circuit.
    pub breaker_threshold: u32,
    /// How long an open circuit refuses calls before one probe is let through.
    pub breaker_cooldown: Duration,
    /// Largest buffered (JSON) response body.
    pub max_response_bytes: usize,
    /// Total time a download may stream.
    pub download_timeout: Duration,
    /// Deadline of a call whose caller set none (and the most a caller may ask for).
    pub default_deadline: Duration,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            max_response_bytes: 10 * 1024 * 1024,
            download_timeout: Duration::from_secs(600),
            default_deadline: Duration::from_secs(25),
        }
    }
}

/// The shared core: the clients, one policy, the breakers of every platform.
pub struct HttpCore {
    /// Sends to the platforms' configured origins (and everywhere when private hosts are
    /// allowed).
    client: reqwest::Client,
    /// Picks the client of every other URL.
    egress: Egress,
    policy: HttpPolicy,
    breakers: Breakers,
}

/// One request on its way out: to which platform, with which credentials, by when.
#[derive(Clone, Copy)]
struct Outbound<'a> {
    platform: Platform,
    req: &'a ProviderRequest,
    auth: Option<&'a Auth>,
    deadline: Instant,
}

/// An `Outbound` with the client `Egress` chose for it.
#[derive(Clone, Copy)]
struct Routed<'a> {
    out: Outbound<'a>,
    client: &'a reqwest::Client,
}

/// A failed attempt, with what the retry decision needs.
struct Failed {
    error: Error,
    /// The wait the provider asked for.
    hint: Option<Duration>,
    /// May another attempt follow (the request is idempotent, or never left)?
    retry: bool,
}

impl Failed {
    fn new(error: Error, hint: Option<Duration>, retry: bool) -> Self {
        Self { error, hint, retry }
    }
}

/// What the core does with an answer it hands back (below 500, not 429): buffer its body or
/// leave it to stream. Each mode answers its own type, so a buffered send cannot come back as
/// a stream.
trait Mode: Copy + Send + Sync {
    type Out: Send;

    /// The request timeout, which covers the whole exchange, body included.
    fn exchange_timeout(&self, policy: &HttpPolicy, remaining: Duration) -> Duration;

    fn take(
        &self,
        resp: reqwest::Response,
        call: Call<'_>,
    ) -> impl Future<Output = Result<Self::Out, Failed>> + Send;
}

/// What a mode needs to know of the call an answer belongs to.
#[derive(Clone, Copy)]
struct Call<'a> {
    platform: Platform,
    policy: &'a HttpPolicy,
    deadline: Instant,
    idempotent: bool,
}

/// Reads the whole body, up to `max_response_bytes`, by the deadline.
#[derive(Clone, Copy)]
struct Buffered;

impl Mode for Buffered {
    type Out = Reply;

    fn exchange_timeout(&self, _: &HttpPolicy, remaining: Duration) -> Duration {
        remaining
    }

    async fn take(&self, resp: reqwest::Response, call: Call<'_>) -> Result<Reply, Failed> {
        let Call {
            platform,
            policy,
            deadline,
            idempotent,
        } = call;
        let status = resp.status();
        let headers = resp.headers().clone();
        match read_limited(resp, policy.max_response_bytes, deadline).await {
            Ok(body) => Ok(Reply {
                status,
                headers,
                body,
            }),
            Err(ReadError::TooLarge) => Err(Failed::new(too_large(platform), None, false)),
            Err(ReadError::TimedOut) => Err(Failed::new(provider_timeout(platform), None, false)),
            // The body broke off: like a network failure.
            Err(ReadError::Network) => Err(Failed::new(
                provider_unavailable(platform),
                None,
                idempotent,
            )),
        }
    }
}

/// Leaves the body unread; its headers still arrive by the deadline, the body may take
/// `download_timeout`.
#[derive(Clone, Copy)]
struct Streaming;

impl Mode for Streaming {
    type Out = reqwest::Response;

    fn exchange_timeout(&self, policy: &HttpPolicy, _: Duration) -> Duration {
        policy.download_timeout
    }

    async fn take(
        &self,
        resp: reqwest::Response,
        _: Call<'_>,
    ) -> Result<reqwest::Response, Failed> {
        Ok(resp)
    }
}

impl HttpCore {
    pub fn new(client: reqwest::Client, egress: Egress, policy: HttpPolicy) -> Self {
        let breakers = Breakers::new(policy.breaker_threshold, policy.breaker_cooldown);
        Self {
            client,
            egress,
            policy,
            breakers,
        }
    }

    /// BASE_URL_NOT_ALLOWED when `platform` may not send to `url` (an internal IP literal or
    /// `localhost` off the configured origin), as the core would answer when sending.
    pub fn check_destination(&self, platform: Platform, url: &reqwest::Url) -> Result<(), Error> {
        self.egress.route(platform, url).map(|_| ())
    }

    pub fn policy(&self) -> &HttpPolicy {
        &self.policy
    }

    /// Sends with retries, reading the whole body (up to `max_response_bytes`). Answers with
    /// 429 or 5xx after the last attempt, network failures and timeouts come back as errors;
    /// every other status (2xx, 3xx, 4xx) as a `Reply` for the caller to interpret.
    pub async fn send(
        &self,
        platform: Platform,
        req: &ProviderRequest,
        auth: Option<&Auth>,
        deadline: Instant,
        opts: SendOptions,
    ) -> Result<Reply, Error> {
        let out = Outbound {
            platform,
            req,
            auth,
            deadline,
        };
        self.run(out, opts, Buffered).await
    }

    /// As `send`, but the body is left unread for streaming; it may take `download_timeout`.
    pub async fn send_streaming(
        &self,
        platform: Platform,
        req: &ProviderRequest,
        auth: Option<&Auth>,
        deadline: Instant,
    ) -> Result<reqwest::Response, Error> {
        let out = Outbound {
            platform,
            req,
            auth,
            deadline,
        };
        self.run(out, SendOptions::default(), Streaming).await
    }

    /// The core loop: attempts until one answers, a failure may not be retried, the attempts
    /// run out, or the next wait does not fit before the deadline.
    async fn run<M: Mode>(
        &self,
        out: Outbound<'_>,
        opts: SendOptions,
        mode: M,
    ) -> Result<M::Out, Error> {
        let Outbound {
            platform,
            req,
            deadline,
            ..
        } = out;
        // Refused before the breaker: no provider was involved.
        let client = match self.egress.route(platform, &req.url)? {
            Route::Plain => &self.client,
            Route::Guarded(client) => client,
        };
        let routed = Routed { out, client };
        let key = breaker_key(platform, &req.url);
        let max_attempts = if opts.retries {
            self.policy.max_attempts.max(1)
        } else {
            1
        };
        // The failure of the previous attempt: when a retry cannot go (deadline, circuit), the
        // caller hears what the provider did rather than why we stopped.
        let mut last: Option<Error> = None;
        let mut attempt = 1;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(last.unwrap_or_else(|| provider_timeout(platform)));
            }
            if let Err(wait) = self.breakers.admit(&key, now) {
                return Err(last.unwrap_or_else(|| circuit_open(platform, wait)));
            }
            let failed = match self.attempt(routed, &key, mode).await {
                Ok(out) => return Ok(out),
                Err(failed) => failed,
            };
            tracing::debug!(
                platform = platform.as_str(),
                attempt,
                reason = failed.error.reason().as_str(),
                "provider call failed"
            );
            // A wait that does not fit before the deadline ends the call now; a rate limit
            // names the wait in its RetryInfo.
            if !failed.retry
                || attempt >= max_attempts
                || !self.pause(attempt, failed.hint, deadline).await
            {
                return Err(failed.error);
            }
            last = Some(failed.error);
            attempt += 1;
        }
    }

    /// One attempt: sends, records it, feeds the breaker and classifies the outcome.
    async fn attempt<M: Mode>(
        &self,
        routed: Routed<'_>,
        key: &str,
        mode: M,
    ) -> Result<M::Out, Failed> {
        let Routed {
            out:
                Outbound {
                    platform,
                    req,
                    auth,
                    deadline,
                },
            client,
        } = routed;
        let started = std::time::Instant::now();
        let remaining = deadline.saturating_duration_since(Instant::now());
        let mut builder = client
            .request(req.method.clone(), req.url.clone())
            .headers(req.headers.clone())
            .timeout(mode.exchange_timeout(&self.policy, remaining));
        if let Some(auth) = auth {
            builder = builder.header(header::AUTHORIZATION, auth.header());
        }
        builder = match &req.body {
            Body::Empty => builder,
            Body::Json(bytes) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(bytes.clone()),
            Body::Form(pairs) => builder.form(pairs),
        };
        let resp = match tokio::time::timeout_at(deadline, builder.send()).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) if egress::refused_by_resolver(&e) => {
                // Nothing was sent, and the provider is not at fault: no retry, no breaker.
                record(platform, "not_allowed", started);
                return Err(Failed::new(egress::not_allowed(platform), None, false));
            }
            Ok(Err(e)) if e.is_connect() && !e.is_timeout() => {
                // The request never left (connect or TLS failure): safe to retry whatever the
                // method.
                record(platform, "not_sent", started);
                self.breakers.failure(key, Instant::now());
                return Err(Failed::new(provider_unavailable(platform), None, true));
            }
            Ok(Err(e)) if !e.is_timeout() => {
                // Failed after it may have reached the provider.
                record(platform, "network", started);
                self.breakers.failure(key, Instant::now());
                return Err(Failed::new(
                    provider_unavailable(platform),
                    None,
                    req.idempotent,
                ));
            }
            Err(_) | Ok(Err(_)) => {
                record(platform, "timeout", started);
                self.breakers.failure(key, Instant::now());
                // Attempts run until the deadline, so a timeout leaves no time to retry.
                return Err(Failed::new(provider_timeout(platform), None, false));
            }
        };
        let status = resp.status();
        record(platform, status.as_str(), started);
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            if status.is_server_error() {
                self.breakers.failure(key, Instant::now());
            } else {
                // A provider that rate-limits is up.
                self.breakers.success(key);
            }
            let headers = resp.headers().clone();
            let body = read_limited(resp, HINT_BODY_LIMIT, deadline)
                .await
                .unwrap_or_default();
            let hint = wait_hint(status, &headers, &body, SystemTime::now());
            let error = if status == StatusCode::TOO_MANY_REQUESTS {
                rate_limited(platform, hint.unwrap_or(DEFAULT_RATE_LIMIT_WAIT))
            } else {
                provider_unavailable(platform).with_metadata("provider_status", status.as_str())
            };
            return Err(Failed::new(error, hint, req.idempotent));
        }
        self.breakers.success(key);
        let call = Call {
            platform,
            policy: &self.policy,
            deadline,
            idempotent: req.idempotent,
        };
        mode.take(resp, call).await
    }

    /// Sleeps before the next attempt; false (without sleeping) when the wait would end past
    /// the deadline.
    async fn pause(&self, attempt: u32, hint: Option<Duration>, deadline: Instant) -> bool {
        let wait = hint.unwrap_or_else(|| {
            full_jitter(
                attempt,
                self.policy.backoff_base,
                self.policy.backoff_max,
                &mut rand::rng(),
            )
        });
        let until = Instant::now() + wait;
        if until >= deadline {
            return false;
        }
        tokio::time::sleep_until(until).await;
        true
    }
}

fn record(platform: Platform, outcome: &str, started: std::time::Instant) {
    metrics::counter!("fh_connector_requests_total", "platform" => platform.as_str(), "outcome" => outcome.to_owned())
        .increment(1);
    metrics::histogram!("fh_connector_request_duration_seconds", "platform" => platform.as_str())
        .record(started.elapsed().as_secs_f64());
}

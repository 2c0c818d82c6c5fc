//! The one HTTP core every connector sends through.
//!
//! One reqwest client (redirects off, connect timeout, from `app::http_client()`), and around it:
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
//! The 401 path (refresh once through `CredentialAccess`) sits one level up, in `Session`,
//! because it needs the integration's credentials.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use rand::Rng;
use reqwest::Url;
use serde_json::Value;
use tokio::time::Instant;

use crate::body::{ReadError, read_limited};
use crate::domain::Platform;
use crate::domain::Secret;
use crate::error::{Error, ErrorKind, Reason};

/// Error bodies of retryable answers are read only this far, for wait hints.
const HINT_BODY_LIMIT: usize = 64 * 1024;
/// Provider error messages shown to callers are cut to this many characters.
const MESSAGE_CHARS: usize = 200;
/// Longest wait we report or honour from a provider hint; anything longer is a broken header.
const MAX_HINT: Duration = Duration::from_secs(24 * 3600);
/// Wait suggested to the caller on a 429 that names none.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);

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

/// The shared core: one client, one policy, the breakers of every platform.
pub struct HttpCore {
    client: reqwest::Client,
    policy: HttpPolicy,
    breakers: Mutex<HashMap<String, BreakerState>>,
}

/// What one attempt ended with, before the retry decision.
enum Attempt {
    Answer(reqwest::Response),
    /// The request never left (connect or TLS failure): safe to retry whatever the method.
    NotSent,
    /// Failed after it may have reached the provider.
    Network,
    TimedOut,
}

enum Mode {
    Buffered,
    Streaming,
}

enum Got {
    Buffered(Reply),
    Streaming(reqwest::Response),
}

impl HttpCore {
    pub fn new(client: reqwest::Client, policy: HttpPolicy) -> Self {
        Self {
            client,
            policy,
            breakers: Mutex::new(HashMap::new()),
        }
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
        match self
            .run(platform, req, auth, deadline, opts, Mode::Buffered)
            .await?
        {
            Got::Buffered(reply) => Ok(reply),
            Got::Streaming(_) => Err(Error::internal(anyhow::anyhow!(
                "buffered send produced a stream"
            ))),
        }
    }

    /// As `send`, but the body is left unread for streaming; it may take `download_timeout`.
    pub async fn send_streaming(
        &self,
        platform: Platform,
        req: &ProviderRequest,
        auth: Option<&Auth>,
        deadline: Instant,
    ) -> Result<reqwest::Response, Error> {
        match self
            .run(
                platform,
                req,
                auth,
                deadline,
                SendOptions::default(),
                Mode::Streaming,
            )
            .await?
        {
            Got::Streaming(resp) => Ok(resp),
            Got::Buffered(_) => Err(Error::internal(anyhow::anyhow!(
                "streaming send produced a buffer"
            ))),
        }
    }

    async fn run(
        &self,
        platform: Platform,
        req: &ProviderRequest,
        auth: Option<&Auth>,
        deadline: Instant,
        opts: SendOptions,
        mode: Mode,
    ) -> Result<Got, Error> {
        let key = breaker_key(platform, &req.url);
        let max_attempts = if opts.retries {
            self.policy.max_attempts.max(1)
        } else {
            1
        };
        let mut last: Option<Error> = None;
        for attempt in 1..=max_attempts {
            let now = Instant::now();
            if now >= deadline {
                return Err(last.unwrap_or_else(|| provider_timeout(platform)));
            }
            if let Err(wait) = self.admit(&key, now) {
                // A retry refused by a circuit that just opened reports what the provider did.
                return Err(last.unwrap_or_else(|| circuit_open(platform, wait)));
            }
            let started = std::time::Instant::now();
            let outcome = self.attempt(req, auth, deadline, &mode).await;
            let (error, hint, retry_allowed) = match outcome {
                Attempt::Answer(resp) => {
                    let status = resp.status();
                    record(platform, status.as_str(), started);
                    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                        if status.is_server_error() {
                            self.failure(&key, Instant::now());
                        } else {
                            // A provider that rate-limits is up.
                            self.success(&key);
                        }
                        let headers = resp.headers().clone();
                        let body = read_limited(resp, HINT_BODY_LIMIT, deadline)
                            .await
                            .unwrap_or_default();
                        let hint = wait_hint(status, &headers, &body, SystemTime::now());
                        let error = if status == StatusCode::TOO_MANY_REQUESTS {
                            rate_limited(platform, hint.unwrap_or(DEFAULT_RATE_LIMIT_WAIT))
                        } else {
                            provider_unavailable(platform)
                                .with_metadata("provider_status", status.as_str())
                        };
                        (error, hint, req.idempotent)
                    } else {
                        self.success(&key);
                        let headers = resp.headers().clone();
                        match mode {
                            Mode::Streaming => return Ok(Got::Streaming(resp)),
                            Mode::Buffered => {
                                match read_limited(resp, self.policy.max_response_bytes, deadline)
                                    .await
                                {
                                    Ok(body) => {
                                        return Ok(Got::Buffered(Reply {
                                            status,
                                            headers,
                                            body,
                                        }));
                                    }
                                    Err(ReadError::TooLarge) => return Err(too_large(platform)),
                                    Err(ReadError::TimedOut) => {
                                        return Err(provider_timeout(platform));
                                    }
                                    // The body broke off: like a network failure.
                                    Err(ReadError::Network) => {
                                        (provider_unavailable(platform), None, req.idempotent)
                                    }
                                }
                            }
                        }
                    }
                }
                Attempt::NotSent => {
                    record(platform, "not_sent", started);
                    self.failure(&key, Instant::now());
                    (provider_unavailable(platform), None, true)
                }
                Attempt::Network => {
                    record(platform, "network", started);
                    self.failure(&key, Instant::now());
                    (provider_unavailable(platform), None, req.idempotent)
                }
                Attempt::TimedOut => {
                    record(platform, "timeout", started);
                    self.failure(&key, Instant::now());
                    // Attempts run until the deadline, so a timeout leaves no time to retry.
                    return Err(provider_timeout(platform));
                }
            };
            tracing::debug!(
                platform = platform.as_str(),
                attempt,
                reason = error.reason().as_str(),
                "provider call failed"
            );
            if !retry_allowed || attempt == max_attempts {
                return Err(error);
            }
            last = Some(error);
            if !self.pause(attempt, hint, deadline).await {
                // The wait does not fit before the deadline: answer now; a rate limit names the
                // wait in its RetryInfo.
                return Err(last.unwrap_or_else(|| provider_unavailable(platform)));
            }
        }
        Err(last.unwrap_or_else(|| provider_unavailable(platform)))
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

    async fn attempt(
        &self,
        req: &ProviderRequest,
        auth: Option<&Auth>,
        deadline: Instant,
        mode: &Mode,
    ) -> Attempt {
        let remaining = deadline.saturating_duration_since(Instant::now());
        // The request timeout covers the whole exchange, body included: the deadline for
        // buffered calls, the download budget for streams (whose headers still must arrive by
        // the deadline, below).
        let total = match mode {
            Mode::Buffered => remaining,
            Mode::Streaming => self.policy.download_timeout,
        };
        let mut builder = self
            .client
            .request(req.method.clone(), req.url.clone())
            .headers(req.headers.clone())
            .timeout(total);
        if let Some(auth) = auth {
            builder = builder.header(header::AUTHORIZATION, auth.0.clone());
        }
        builder = match &req.body {
            Body::Empty => builder,
            Body::Json(bytes) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(bytes.clone()),
            Body::Form(pairs) => builder.form(pairs),
        };
        match tokio::time::timeout_at(deadline, builder.send()).await {
            Err(_) => Attempt::TimedOut,
            Ok(Ok(resp)) => Attempt::Answer(resp),
            Ok(Err(e)) if e.is_timeout() => Attempt::TimedOut,
            Ok(Err(e)) if e.is_connect() => Attempt::NotSent,
            Ok(Err(_)) => Attempt::Network,
        }
    }

    fn admit(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut map = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(key) {
            None => Ok(()),
            Some(state) => state.admit(now, self.policy.breaker_cooldown),
        }
    }

    fn success(&self, key: &str) {
        let mut map = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        // Closed with no failures is the default: dropping the entry keeps the map to the
        // origins that are failing.
        map.remove(key);
    }

    fn failure(&self, key: &str, now: Instant) {
        let mut map = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        let state = map
            .entry(key.to_owned())
            .or_insert(BreakerState::Closed { failures: 0 });
        let was_open = matches!(state, BreakerState::Open { .. });
        state.failure(
            now,
            self.policy.breaker_threshold.max(1),
            self.policy.breaker_cooldown,
        );
        if !was_open && matches!(state, BreakerState::Open { .. }) {
            tracing::warn!(circuit = key, "provider circuit opened");
        }
    }
}

fn record(platform: Platform, outcome: &str, started: std::time::Instant) {
    metrics::counter!("fh_connector_requests_total", "platform" => platform.as_str(), "outcome" => outcome.to_owned())
        .increment(1);
    metrics::histogram!("fh_connector_request_duration_seconds", "platform" => platform.as_str())
        .record(started.elapsed().as_secs_f64());
}

fn breaker_key(platform: Platform, url: &Url) -> String {
    format!(
        "{}|{}",
        platform.as_str(),
        url.origin().ascii_serialization()
    )
}

/// A circuit's state. Pure: every transition takes the time, so it is tested without sleeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed {
        failures: u32,
    },
    /// Refusing calls until `until`.
    Open {
        until: Instant,
    },
    /// One probe is out since `since`; others are refused until it answers. A probe whose
    /// caller went away never answers, so after a cool-down another probe may go.
    HalfOpen {
        since: Instant,
    },
}

impl BreakerState {
    /// Ok to call; Err with how long until a call may go.
    pub fn admit(&mut self, now: Instant, cooldown: Duration) -> Result<(), Duration> {
        match *self {
            BreakerState::Closed { .. } => Ok(()),
            BreakerState::Open { until } if now >= until => {
                *self = BreakerState::HalfOpen { since: now };
                Ok(())
            }
            BreakerState::Open { until } => Err(until - now),
            BreakerState::HalfOpen { since } if now >= since + cooldown => {
                *self = BreakerState::HalfOpen { since: now };
                Ok(())
            }
            BreakerState::HalfOpen { since } => Err(since + cooldown - now),
        }
    }

    pub fn failure(&mut self, now: Instant, threshold: u32, cooldown: Duration) {
        *self = match *self {
            BreakerState::Closed { failures } if failures + 1 < threshold => BreakerState::Closed {
                failures: failures + 1,
            },
            // Threshold reached, a probe failed, or a call admitted before the circuit opened
            // failed late: (re)open from now.
            _ => BreakerState::Open {
                until: now + cooldown,
            },
        };
    }
}

/// Full-jitter backoff (AWS architecture blog): uniform in [0, min(max, base * 2^(attempt-1))).
pub fn full_jitter(attempt: u32, base: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    let ceiling = base.saturating_mul(1u32 << exp).min(max);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rng.random_range(0..nanos))
}

/// The longest wait a failed answer asks for, from (in order of trust) `Retry-After`, on 429
/// also `X-RateLimit-Reset`-style headers, Discord's `retry_after` body and Google's
/// "Retry after <RFC 3339 time>" text. None when it names none.
pub fn wait_hint(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut waits: Vec<Duration> = Vec::new();
    if let Some(v) = header("retry-after") {
        waits.extend(parse_retry_after(v, now));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        if let Some(v) = header("x-ratelimit-reset-after") {
            waits.extend(seconds(v));
        }
        for name in ["x-ratelimit-reset", "ratelimit-reset", "x-rate-limit-reset"] {
            if let Some(v) = header(name) {
                waits.extend(parse_reset(v, now));
            }
        }
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body)
            && let Some(secs) = map.get("retry_after").and_then(Value::as_f64)
        {
            waits.extend(duration_from_secs(secs));
        }
    }
    waits.extend(google_retry_after(body, now));
    waits.into_iter().max().map(|w| w.min(MAX_HINT))
}

/// `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 10.2.3).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Some(d) = seconds(value) {
        return Some(d);
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some(until(at.with_timezone(&Utc), now))
}

/// Reset headers carry either seconds to wait (IETF draft `RateLimit-Reset`) or an epoch time
/// in seconds or milliseconds (GitHub, Twitter style). Told apart by size.
pub fn parse_reset(value: &str, now: SystemTime) -> Option<Duration> {
    let n: f64 = value.trim().parse().ok()?;
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let epoch_secs = if n > 1.0e12 {
        n / 1000.0
    } else if n > 1.0e9 {
        n
    } else {
        return duration_from_secs(n);
    };
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    duration_from_secs((epoch_secs - now_secs).max(0.0))
}

/// Google puts the wait in the error message: "... Retry after 2024-05-01T12:00:00.000Z".
fn google_retry_after(body: &[u8], now: SystemTime) -> Option<Duration> {
    const MARK: &str = "retry after ";
    let text = std::str::from_utf8(body).ok()?;
    let lower = text.to_ascii_lowercase();
    let at = lower.find(MARK)? + MARK.len();
    let rest = &text[at..];
    let token: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '-' | '+'))
        .collect();
    let token = token.trim_end_matches('.');
    let time = DateTime::parse_from_rfc3339(token).ok()?;
    Some(until(time.with_timezone(&Utc), now))
}

fn seconds(v: &str) -> Option<Duration> {
    let n: f64 = v.trim().parse().ok()?;
    duration_from_secs(n)
}

fn duration_from_secs(n: f64) -> Option<Duration> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(n.min(MAX_HINT.as_secs_f64())))
}

fn until(at: DateTime<Utc>, now: SystemTime) -> Duration {
    let now: DateTime<Utc> = now.into();
    (at - now).to_std().unwrap_or(Duration::ZERO).min(MAX_HINT)
}

// ---- Error mapping: the one place provider outcomes become our errors. ----

fn provider_error(kind: ErrorKind, reason: Reason, platform: Platform, msg: String) -> Error {
    Error::new(kind, reason, msg).with_metadata("platform", platform.as_str())
}

pub fn provider_unavailable(platform: Platform) -> Error {
    provider_error(
        ErrorKind::Unavailable,
        Reason::ProviderUnavailable,
        platform,
        format!("{} is unavailable, retry later", platform.title()),
    )
}

pub fn provider_timeout(platform: Platform) -> Error {
    provider_error(
        ErrorKind::DeadlineExceeded,
        Reason::ProviderTimeout,
        platform,
        format!("{} did not answer before the deadline", platform.title()),
    )
}

pub fn rate_limited(platform: Platform, wait: Duration) -> Error {
    provider_error(
        ErrorKind::ResourceExhausted,
        Reason::ProviderRateLimited,
        platform,
        format!(
            "{} is rate limiting this integration; retry after {}s",
            platform.title(),
            wait.as_secs().max(1)
        ),
    )
    .with_retry_after(wait)
}

pub fn circuit_open(platform: Platform, wait: Duration) -> Error {
    provider_error(
        ErrorKind::Unavailable,
        Reason::CircuitOpen,
        platform,
        format!(
            "{} failed repeatedly; calls are paused for {}s",
            platform.title(),
            wait.as_secs().max(1)
        ),
    )
    .with_retry_after(wait)
}

pub fn too_large(platform: Platform) -> Error {
    provider_error(
        ErrorKind::FailedPrecondition,
        Reason::ProviderResponseTooLarge,
        platform,
        format!(
            "{}'s answer is larger than the service accepts; ask for less (a smaller page)",
            platform.title()
        ),
    )
}

pub fn needs_reauth(platform: Platform) -> Error {
    provider_error(
        ErrorKind::FailedPrecondition,
        Reason::NeedsReauth,
        platform,
        format!(
            "{} rejected the integration's credentials; reconnect it",
            platform.title()
        ),
    )
}

/// An answer that is not what the operation expects (not JSON, missing fields).
pub fn bad_answer(platform: Platform, what: &str) -> Error {
    provider_error(
        ErrorKind::Unavailable,
        Reason::ProviderBadResponse,
        platform,
        format!("{} answered unexpectedly: {what}", platform.title()),
    )
}

/// Values that must never appear in anything we return: the integration's secret credential
/// values. Provider messages and bodies are scrubbed with it.
#[derive(Default)]
pub struct Scrubber(Vec<Secret<String>>);

impl Scrubber {
    pub fn new(values: Vec<Secret<String>>) -> Self {
        // Very short values would redact ordinary words; credentials are never that short.
        Self(
            values
                .into_iter()
                .filter(|v| v.expose().len() >= 6)
                .collect(),
        )
    }

    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.0 {
            if out.contains(secret.expose().as_str()) {
                out = out.replace(secret.expose().as_str(), "[redacted]");
            }
        }
        out
    }

    /// Scrubs raw bytes (a body) when they hold a secret; borrowed otherwise.
    pub fn bytes<'a>(&self, body: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        let hit = self.0.iter().any(|s| contains(body, s.expose().as_bytes()));
        if !hit {
            return std::borrow::Cow::Borrowed(body);
        }
        let text = String::from_utf8_lossy(body);
        std::borrow::Cow::Owned(self.text(&text).into_bytes())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A short, printable, scrubbed provider message.
pub fn sanitize(message: &str, scrub: &Scrubber) -> String {
    let scrubbed = scrub.text(message);
    let mut out: String = scrubbed
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MESSAGE_CHARS)
        .collect();
    if scrubbed.chars().count() > MESSAGE_CHARS {
        out.push('…');
    }
    out.trim().to_owned()
}

/// The provider's own error code and message from the usual JSON error shapes: Twilio
/// `{code, message}`, Google/Graph `{error: {code|status, message}}`, OAuth `{error,
/// error_description}`, Slack `{ok: false, error}`, GraphQL `{errors: [{message, extensions:
/// {code}}]}`, and `{message}` / `{detail}`.
pub fn provider_code_and_message(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    let text = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let first_graphql = v.get("errors").and_then(|e| e.get(0));
    // A bare `error` string is a code when it reads like one (`channel_not_found`), else a
    // message (`Note not found`).
    let bare_error = text(v.get("error"));
    let (bare_code, bare_message) = match bare_error {
        Some(e) if e.contains(char::is_whitespace) => (None, Some(e)),
        other => (other, None),
    };
    let code = text(v.get("code"))
        .or_else(|| text(v.get("error").and_then(|e| e.get("status"))))
        .or_else(|| text(v.get("error").and_then(|e| e.get("code"))))
        .or(bare_code)
        .or_else(|| text(first_graphql.and_then(|e| e.pointer("/extensions/code"))))
        .or_else(|| text(first_graphql.and_then(|e| e.get("code"))))
        .or_else(|| text(v.get("error_code")));
    let message = text(v.get("message"))
        .or_else(|| text(v.get("error").and_then(|e| e.get("message"))))
        .or_else(|| text(v.get("error_description")))
        .or_else(|| text(first_graphql.and_then(|e| e.get("message"))))
        .or_else(|| text(v.get("detail")))
        .or_else(|| text(v.get("error_message")))
        .or(bare_message);
    (code, message)
}

/// Does a 403 say a scope is missing? Slack `missing_scope`, Google
/// `ACCESS_TOKEN_SCOPE_INSUFFICIENT`/`insufficientPermissions`, RFC 6750 `insufficient_scope`.
fn is_scope_problem(headers: &HeaderMap, code: Option<&str>, body: &[u8]) -> bool {
    let in_header = headers
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("insufficient_scope"));
    let code_says = code.is_some_and(|c| {
        let c = c.to_ascii_lowercase();
        c.contains("scope") || c == "insufficientpermissions"
    });
    let body_says = std::str::from_utf8(body).is_ok_and(|t| {
        let t = t.to_ascii_lowercase();
        t.contains("missing_scope")
            || t.contains("insufficient_scope")
            || t.contains("access_token_scope_insufficient")
    });
    in_header || code_says || body_says
}

/// The error for a 4xx answer the operation cannot use (401 is handled before, by `Session`).
pub fn rejection(
    platform: Platform,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    scrub: &Scrubber,
) -> Error {
    let (code, message) = provider_code_and_message(body);
    let shown = message
        .map(|m| sanitize(&m, scrub))
        .filter(|m| !m.is_empty());
    if status == StatusCode::UNAUTHORIZED {
        return needs_reauth(platform);
    }
    let err = if status == StatusCode::FORBIDDEN && is_scope_problem(headers, code.as_deref(), body)
    {
        provider_error(
            ErrorKind::FailedPrecondition,
            Reason::ScopeMissing,
            platform,
            format!(
                "{} refused: the integration lacks a permission this needs; reconnect granting it{}",
                platform.title(),
                shown.map(|m| format!(" ({m})")).unwrap_or_default()
            ),
        )
    } else {
        let kind = match status {
            StatusCode::BAD_REQUEST
            | StatusCode::UNPROCESSABLE_ENTITY
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::URI_TOO_LONG => ErrorKind::InvalidArgument,
            _ => ErrorKind::FailedPrecondition,
        };
        provider_error(
            kind,
            Reason::ProviderRejected,
            platform,
            format!(
                "{} rejected the request ({}){}",
                platform.title(),
                status.as_u16(),
                shown.map(|m| format!(": {m}")).unwrap_or_default()
            ),
        )
    };
    let err = err.with_metadata("provider_status", status.as_str());
    match code {
        Some(c) => err.with_metadata("provider_code", sanitize(&c, scrub)),
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn full_jitter_stays_below_the_doubling_ceiling_and_the_cap() {
        let mut rng = StdRng::seed_from_u64(7);
        let base = Duration::from_millis(100);
        let max = Duration::from_millis(1000);
        for _ in 0..500 {
            assert!(full_jitter(1, base, max, &mut rng) < Duration::from_millis(100));
            assert!(full_jitter(2, base, max, &mut rng) < Duration::from_millis(200));
            assert!(full_jitter(3, base, max, &mut rng) < Duration::from_millis(400));
            assert!(full_jitter(30, base, max, &mut rng) < max);
        }
    }

    #[test]
    fn full_jitter_spreads_waits_over_the_whole_range() {
        let mut rng = StdRng::seed_from_u64(11);
        let waits: Vec<Duration> = (0..1000)
            .map(|_| {
                full_jitter(
                    4,
                    Duration::from_millis(100),
                    Duration::from_secs(10),
                    &mut rng,
                )
            })
            .collect();
        assert!(waits.iter().any(|w| *w < Duration::from_millis(100)));
        assert!(waits.iter().any(|w| *w > Duration::from_millis(700)));
    }

    #[test]
    fn full_jitter_of_a_zero_base_is_zero() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            full_jitter(5, Duration::ZERO, Duration::from_secs(1), &mut rng),
            Duration::ZERO
        );
    }

    #[test]
    fn retry_after_in_seconds_is_that_many_seconds() {
        assert_eq!(
            parse_retry_after("120", at(0)),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after(" 1.5 ", at(0)),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn retry_after_as_an_http_date_is_the_time_until_then() {
        // 784111777 = Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example).
        let now = at(784_111_777 - 30);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn retry_after_in_the_past_or_garbage_means_no_wait_or_no_hint() {
        let now = at(784_111_777 + 30);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn reset_headers_are_read_as_delta_epoch_seconds_or_epoch_milliseconds() {
        let now = at(1_700_000_000);
        assert_eq!(parse_reset("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_reset("1700000010", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_reset("1700000002500", now),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(parse_reset("1600000000", now), Some(Duration::ZERO));
    }

    #[test]
    fn discords_retry_after_body_is_honoured_on_429() {
        let body =
            br#"{"message": "You are being rate limited.", "retry_after": 0.75, "global": false}"#;
        assert_eq!(
            wait_hint(
                StatusCode::TOO_MANY_REQUESTS,
                &HeaderMap::new(),
                body,
                at(0)
            ),
            Some(Duration::from_millis(750))
        );
    }

    #[test]
    fn googles_wait_in_the_error_message_is_honoured() {
        let body = br#"{"error": {"code": 429, "message": "User-rate limit exceeded.  Retry after 2024-05-01T12:00:07.000Z", "status": "RESOURCE_EXHAUSTED"}}"#;
        let now: SystemTime = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            .into();
        assert_eq!(
            wait_hint(StatusCode::FORBIDDEN, &HeaderMap::new(), body, now),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn the_longest_of_several_hints_wins() {
        let h = headers(&[("retry-after", "2"), ("x-ratelimit-reset-after", "5.5")]);
        assert_eq!(
            wait_hint(StatusCode::TOO_MANY_REQUESTS, &h, b"", at(0)),
            Some(Duration::from_millis(5500))
        );
    }

    #[test]
    fn reset_headers_count_only_on_429() {
        let h = headers(&[("x-ratelimit-reset", "30")]);
        assert_eq!(
            wait_hint(StatusCode::SERVICE_UNAVAILABLE, &h, b"", at(0)),
            None
        );
        let h = headers(&[("retry-after", "3")]);
        assert_eq!(
            wait_hint(StatusCode::SERVICE_UNAVAILABLE, &h, b"", at(0)),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn absurd_hints_are_capped_at_a_day() {
        let h = headers(&[("retry-after", "99999999")]);
        assert_eq!(
            wait_hint(StatusCode::TOO_MANY_REQUESTS, &h, b"", at(0)),
            Some(MAX_HINT)
        );
    }

    #[test]
    fn a_closed_breaker_opens_after_the_threshold_of_consecutive_failures() {
        let t0 = Instant::now();
        let cool = Duration::from_secs(10);
        let mut b = BreakerState::Closed { failures: 0 };
        b.failure(t0, 3, cool);
        b.failure(t0, 3, cool);
        assert_eq!(b, BreakerState::Closed { failures: 2 });
        assert_eq!(b.admit(t0, cool), Ok(()));
        b.failure(t0, 3, cool);
        assert_eq!(b, BreakerState::Open { until: t0 + cool });
        assert_eq!(
            b.admit(t0 + Duration::from_secs(4), cool),
            Err(Duration::from_secs(6))
        );
    }

    #[test]
    fn an_open_breaker_lets_one_probe_through_after_the_cooldown() {
        let t0 = Instant::now();
        let cool = Duration::from_secs(10);
        let mut b = BreakerState::Open { until: t0 + cool };
        let later = t0 + cool;
        assert_eq!(b.admit(later, cool), Ok(()));
        assert_eq!(b, BreakerState::HalfOpen { since: later });
        assert_eq!(
            b.admit(later + Duration::from_secs(1), cool),
            Err(Duration::from_secs(9))
        );
    }

    #[test]
    fn a_failed_probe_reopens_the_breaker_for_another_cooldown() {
        let t0 = Instant::now();
        let cool = Duration::from_secs(10);
        let mut b = BreakerState::HalfOpen { since: t0 };
        b.failure(t0 + Duration::from_secs(1), 5, cool);
        assert_eq!(
            b,
            BreakerState::Open {
                until: t0 + Duration::from_secs(11)
            }
        );
    }

    #[test]
    fn a_probe_that_never_answered_is_replaced_after_a_cooldown() {
        let t0 = Instant::now();
        let cool = Duration::from_secs(10);
        let mut b = BreakerState::HalfOpen { since: t0 };
        assert_eq!(b.admit(t0 + cool, cool), Ok(()));
        assert_eq!(b, BreakerState::HalfOpen { since: t0 + cool });
    }

    #[test]
    fn the_core_forgets_a_circuit_on_success_so_it_closes() {
        let core = HttpCore::new(
            crate::app::http_client().expect("the client builds"),
            HttpPolicy {
                breaker_threshold: 1,
                ..HttpPolicy::default()
            },
        );
        let t0 = Instant::now();
        core.failure("zerodb|http://a", t0);
        assert!(core.admit("zerodb|http://a", t0).is_err());
        assert!(core.admit("zerodb|http://b", t0).is_ok(), "per origin");
        core.success("zerodb|http://a");
        assert!(core.admit("zerodb|http://a", t0).is_ok());
    }

    #[test]
    fn provider_error_shapes_yield_code_and_message() {
        let cases: &[(&[u8], Option<&str>, Option<&str>)] = &[
            (
                br#"{"code": 20404, "message": "The requested resource was not found", "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}"#,
                Some("20404"),
                Some("The requested resource was not found"),
            ),
            (
                br#"{"error": {"code": 403, "message": "Insufficient Permission", "status": "PERMISSION_DENIED"}}"#,
                Some("PERMISSION_DENIED"),
                Some("Insufficient Permission"),
            ),
            (
                br#"{"ok": false, "error": "channel_not_found"}"#,
                Some("channel_not_found"),
                None,
            ),
            (
                br#"{"errors": [{"message": "Object not found", "extensions": {"code": "object_not_found"}}]}"#,
                Some("object_not_found"),
                Some("Object not found"),
            ),
            (br#"{"error": "Note not found"}"#, None, Some("Note not found")),
            (b"<html>oops</html>", None, None),
        ];
        for (body, code, message) in cases {
            let (c, m) = provider_code_and_message(body);
            assert_eq!(c.as_deref(), *code);
            assert_eq!(m.as_deref(), *message);
        }
    }

    #[test]
    fn rejections_scrub_secrets_and_cut_long_messages() {
        let scrub = Scrubber::new(vec![Secret::new("sk-very-secret-123".to_owned())]);
        let long = "x".repeat(500);
        let body = format!(
            r#"{{"code": "bad_key", "message": "key sk-very-secret-123 is wrong {long}"}}"#
        );
        let err = rejection(
            Platform::Fireflies,
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            body.as_bytes(),
            &scrub,
        );
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert_eq!(err.reason(), Reason::ProviderRejected);
        assert!(!err.message().contains("sk-very-secret-123"));
        assert!(err.message().contains("[redacted]"));
        assert!(err.message().chars().count() < 300);
        assert!(
            err.metadata()
                .iter()
                .any(|(k, v)| *k == "provider_code" && v == "bad_key")
        );
    }

    #[test]
    fn a_403_naming_a_scope_is_scope_missing_and_other_403s_are_rejections() {
        let scrub = Scrubber::default();
        let err = rejection(
            Platform::Slack,
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            br#"{"ok": false, "error": "missing_scope", "needed": "search:read"}"#,
            &scrub,
        );
        assert_eq!(err.reason(), Reason::ScopeMissing);
        let err = rejection(
            Platform::Zoom,
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            br#"{"message": "plan required"}"#,
            &scrub,
        );
        assert_eq!(err.reason(), Reason::ProviderRejected);
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    }
}

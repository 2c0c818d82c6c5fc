//! When to try again: full-jitter backoff and the waits providers ask for (`Retry-After`,
//! reset headers, Discord's body, Google's message).

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode};
use rand::Rng;
use serde_json::Value;

/// Longest wait we report or honour from a provider hint; anything longer is a broken header.
const MAX_HINT: Duration = Duration::from_secs(24 * 3600);
/// Wait suggested to the caller on a 429 that names none.
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);

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

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

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
}

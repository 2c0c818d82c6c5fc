//! The provider-error table: the one place provider outcomes become our `Error`s, with a
//! platform, a reason and a short, scrubbed provider message.

use std::time::Duration;

use http::{HeaderMap, StatusCode, header};
use serde_json::Value;

use super::scrub::{Scrubber, sanitize};
use crate::domain::Platform;
use crate::error::{Error, ErrorKind, Reason};

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
    if status == StatusCode::UNAUTHORIZED {
        return needs_reauth(platform);
    }
    let (code, message) = provider_code_and_message(body);
    let shown = message
        .map(|m| sanitize(&m, scrub))
        .filter(|m| !m.is_empty());
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
        .with_metadata("provider_status", status.as_str())
    } else {
        rejected(platform, status, shown)
    };
    match code {
        Some(c) => err.with_metadata("provider_code", sanitize(&c, scrub)),
        None => err,
    }
}

/// A provider's refusal other than a missing scope: what the status says about whose fault it
/// is, and the provider's message when it gave one.
fn rejected(platform: Platform, status: StatusCode, shown: Option<String>) -> Error {
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
    .with_metadata("provider_status", status.as_str())
}

/// A lookup the provider answered with nothing (GraphQL APIs answer `null` or an empty list
/// rather than 404): the same error a 404 with `code` would give, naming the missing `what`.
pub fn not_found(platform: Platform, code: &str, what: &str) -> Error {
    rejected(
        platform,
        StatusCode::NOT_FOUND,
        Some(format!("no {what} with that id")),
    )
    .with_metadata("provider_code", code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Secret;

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

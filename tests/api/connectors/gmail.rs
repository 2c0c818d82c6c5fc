//! Gmail: every operation against the fake over gRPC, `nextPageToken` paging, repeated
//! `labelIds`, the RFC 2822 message in `raw` with header injection refused before anything is
//! sent, Google's waits written into error bodies, and the OAuth paths: an expired token is
//! refreshed once before the call, a 401 refreshes once and retries.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use founderhouse_integrations::domain::Secret;
use founderhouse_integrations::domain::{Platform, Role};
use founderhouse_integrations::oauth::ProviderSettings;
use founderhouse_integrations::proto::HealthState;
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

use super::Rig;
use super::core::metadata;
use super::fake::{Fake, Scripted, Seen};
use super::fakes::gmail::{
    self, ACCESS, BASE, CLIENT_ID, CLIENT_SECRET, REFRESH, REFRESHED, STALE, TOKEN_PATH, bearer,
};
use super::seeded::Seed;
use crate::helpers::{reason, violated_fields};

/// Google's OAuth provider configured against the fake's token endpoint.
fn provider(fake: &Fake) -> ProviderSettings {
    ProviderSettings {
        client_id: Some(CLIENT_ID.to_owned()),
        client_secret: Some(Secret::new(CLIENT_SECRET.to_owned())),
        token_url: Some(fake.url(TOKEN_PATH)),
        ..Default::default()
    }
}

/// An integration with `tokens`, its access token expiring in `expires_in`.
async fn rig_with(tokens: &[(&str, &str)], expires_in: Option<Duration>) -> Rig {
    let fake = gmail::start().await;
    let settings = provider(&fake);
    Rig::start_seeded(
        fake,
        Seed {
            platform: Platform::Gmail,
            base_path: BASE,
            tokens,
            expires_in,
        },
        |c| {
            c.providers.insert("google".to_owned(), settings);
        },
    )
    .await
}

/// A working access token (valid for an hour) and its refresh token.
async fn rig() -> Rig {
    rig_with(
        &[("access_token", ACCESS), ("refresh_token", REFRESH)],
        Some(Duration::from_secs(3600)),
    )
    .await
}

fn me(rest: &str) -> String {
    format!("{BASE}/users/me{rest}")
}

/// Requests the API saw, without the token endpoint's.
fn api_requests(rig: &Rig) -> Vec<Seen> {
    rig.fake
        .requests()
        .into_iter()
        .filter(|s| s.path != TOKEN_PATH)
        .collect()
}

fn refreshes(rig: &Rig) -> Vec<Seen> {
    rig.fake
        .requests()
        .into_iter()
        .filter(|s| s.path == TOKEN_PATH)
        .collect()
}

fn ids(data: &Value) -> Vec<&str> {
    data["items"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t["id"].as_str().expect("an id"))
        .collect()
}

/// Google's "Retry after" text `secs` from now, as Google writes it.
fn retry_after_text(secs: i64) -> String {
    let at = chrono::Utc::now() + chrono::Duration::seconds(secs);
    format!(
        "User-rate limit exceeded.  Retry after {}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

/// The RFC 2822 message a send carried: its header lines and its decoded body.
fn sent_message(seen: &Seen) -> (Vec<String>, String) {
    let raw = seen.json()["raw"].as_str().expect("raw").to_owned();
    let bytes = URL_SAFE.decode(raw).expect("base64url");
    let text = String::from_utf8(bytes).expect("ASCII");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("headers, blank line, body");
    let body = STANDARD
        .decode(body.replace("\r\n", ""))
        .expect("a base64 body");
    (
        head.split("\r\n").map(str::to_owned).collect(),
        String::from_utf8(body).expect("UTF-8"),
    )
}

#[tokio::test]
async fn list_messages_pages_with_repeated_label_ids_and_an_opaque_token() {
    let rig = rig().await;
    let params = json!({"label_ids": ["INBOX", "IMPORTANT"], "q": "from:grace", "max_results": 1});
    rig.fake
        .then(Scripted::status(200, r#"{"messages": [{"id": "a1", "threadId": "t1"}], "nextPageToken": "gmail-next-7", "resultSizeEstimate": 2}"#));

    let (first, token) = rig
        .invoke_page("gmail.list_messages", params.clone(), "")
        .await
        .unwrap();
    rig.fake.then(Scripted::status(
        200,
        r#"{"messages": [{"id": "a2", "threadId": "t1"}], "resultSizeEstimate": 2}"#,
    ));
    let (second, last) = rig
        .invoke_page("gmail.list_messages", params, &token)
        .await
        .unwrap();

    assert_eq!(ids(&first), vec!["a1"]);
    assert_eq!(ids(&second), vec!["a2"]);
    assert_ne!(token, "gmail-next-7", "the page token is ours");
    assert_eq!(last, "");
    let seen = api_requests(&rig);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, me("/messages"));
    assert_eq!(
        seen[0].header("authorization"),
        Some(bearer(ACCESS).as_str())
    );
    let pairs = |s: &Seen| -> Vec<(String, String)> { s.query_pairs() };
    assert_eq!(
        pairs(&seen[0]),
        vec![
            ("maxResults".to_owned(), "1".to_owned()),
            ("q".to_owned(), "from:grace".to_owned()),
            ("labelIds".to_owned(), "INBOX".to_owned()),
            ("labelIds".to_owned(), "IMPORTANT".to_owned()),
        ]
    );
    assert!(!seen[0].query.contains("INBOX%2CIMPORTANT") && !seen[0].query.contains("INBOX,"));
    assert_eq!(
        seen[1].query_value("pageToken").as_deref(),
        Some("gmail-next-7")
    );
    rig.stop().await;
}

#[tokio::test]
async fn list_messages_pages_through_the_fakes_mailbox_and_filters_by_label() {
    let rig = rig().await;

    let (first, token) = rig
        .invoke_page("gmail.list_messages", json!({"max_results": 2}), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("gmail.list_messages", json!({"max_results": 2}), &token)
        .await
        .unwrap();
    let important = rig
        .invoke("gmail.list_messages", json!({"label_ids": ["IMPORTANT"]}))
        .await
        .unwrap();

    assert_eq!(ids(&first), vec!["18f1a2b3c4d5e6f7", "18f1a2b3c4d5e6f8"]);
    assert_eq!(ids(&second), vec!["18f1a2b3c4d5e6f9"]);
    assert_eq!(last, "");
    assert_eq!(ids(&important), vec!["18f1a2b3c4d5e6f9"]);
    rig.stop().await;
}

#[tokio::test]
async fn search_messages_sends_the_query_as_q() {
    let rig = rig().await;

    let (found, next) = rig
        .invoke_page(
            "gmail.search_messages",
            json!({"query": "subject:\"board meeting\" has:attachment"}),
            "",
        )
        .await
        .unwrap();

    assert_eq!(found["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(next, "");
    let seen = rig.fake.last();
    assert_eq!(seen.path, me("/messages"));
    assert_eq!(
        seen.query_value("q").as_deref(),
        Some("subject:\"board meeting\" has:attachment")
    );
    assert_eq!(seen.query_value("maxResults").as_deref(), Some("50"));
    rig.stop().await;
}

#[tokio::test]
async fn get_message_asks_for_the_format_and_an_unknown_message_is_a_rejection() {
    let rig = rig().await;

    let full = rig
        .invoke("gmail.get_message", json!({"id": "18f1a2b3c4d5e6f7"}))
        .await
        .unwrap();
    let raw = rig
        .invoke(
            "gmail.get_message",
            json!({"id": "18f1a2b3c4d5e6f7", "format": "raw"}),
        )
        .await
        .unwrap();
    let missing = rig
        .invoke("gmail.get_message", json!({"id": "ffff"}))
        .await
        .unwrap_err();

    assert_eq!(full["payload"]["headers"][1]["value"], "Board meeting");
    assert!(raw["raw"].is_string());
    let seen = api_requests(&rig);
    assert_eq!(seen[0].path, me("/messages/18f1a2b3c4d5e6f7"));
    assert_eq!(seen[0].query, "format=full");
    assert_eq!(seen[1].query, "format=raw");
    assert_eq!(missing.code(), Code::FailedPrecondition);
    assert_eq!(reason(&missing), "PROVIDER_REJECTED");
    assert_eq!(
        metadata(&missing, "provider_code").as_deref(),
        Some("NOT_FOUND")
    );
    assert_eq!(
        metadata(&missing, "provider_status").as_deref(),
        Some("404")
    );
    rig.stop().await;
}

#[tokio::test]
async fn send_message_posts_an_rfc_2822_message_as_base64url_raw() {
    let rig = rig().await;

    let sent = rig
        .invoke(
            "gmail.send_message",
            json!({
                "to": ["grace@example.com", "alan@example.org"],
                "cc": ["cfo@example.com"],
                "bcc": ["board@example.com"],
                "subject": "Q3 update — runway ✓",
                "body": "<p>Runway is <b>18 months</b>.</p>\n",
                "body_type": "html",
            }),
        )
        .await
        .unwrap();

    assert_eq!(sent["labelIds"], json!(["SENT"]));
    let seen = rig.fake.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, me("/messages/send"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    let (headers, body) = sent_message(&seen);
    assert_eq!(headers[0], "To: grace@example.com, alan@example.org");
    assert_eq!(headers[1], "Cc: cfo@example.com");
    assert_eq!(headers[2], "Bcc: board@example.com");
    assert!(
        headers[3].starts_with("Subject: =?UTF-8?B?"),
        "{}",
        headers[3]
    );
    assert_eq!(
        &headers[4..],
        [
            "MIME-Version: 1.0",
            "Content-Type: text/html; charset=\"UTF-8\"",
            "Content-Transfer-Encoding: base64"
        ]
    );
    let subject = headers[3]
        .trim_start_matches("Subject: =?UTF-8?B?")
        .trim_end_matches("?=");
    assert_eq!(
        String::from_utf8(STANDARD.decode(subject).unwrap()).unwrap(),
        "Q3 update — runway ✓"
    );
    assert_eq!(body, "<p>Runway is <b>18 months</b>.</p>\n");
    rig.stop().await;
}

#[tokio::test]
async fn header_injection_in_any_header_field_is_refused_before_anything_is_sent() {
    let rig = rig().await;
    let send = |extra: Value| {
        let mut params = json!({"to": ["grace@example.com"], "subject": "hi", "body": "x"});
        for (k, v) in extra.as_object().unwrap() {
            params[k] = v.clone();
        }
        rig.invoke("gmail.send_message", params)
    };

    let subject = send(json!({"subject": "hi\r\nBcc: eve@evil.example"}))
        .await
        .unwrap_err();
    let subject_lf = send(json!({"subject": "hi\nX-Evil: 1"})).await.unwrap_err();
    let to = send(json!({"to": ["grace@example.com\r\nBcc: eve@evil.example"]}))
        .await
        .unwrap_err();
    let cc = send(json!({"cc": ["Eve <eve@evil.example>", "a@b.example, c@d.example"]}))
        .await
        .unwrap_err();
    let bcc = send(json!({"bcc": ["not-an-address"]})).await.unwrap_err();

    for err in [&subject, &subject_lf, &to, &cc, &bcc] {
        assert_eq!(err.code(), Code::InvalidArgument);
    }
    assert_eq!(violated_fields(&subject), vec!["params.subject"]);
    assert_eq!(violated_fields(&subject_lf), vec!["params.subject"]);
    assert_eq!(violated_fields(&to), vec!["params.to[0]"]);
    assert_eq!(violated_fields(&cc), vec!["params.cc[0]", "params.cc[1]"]);
    assert_eq!(violated_fields(&bcc), vec!["params.bcc[0]"]);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn list_threads_and_get_thread_return_threads_with_their_messages() {
    let rig = rig().await;

    let (threads, next) = rig
        .invoke_page("gmail.list_threads", json!({"q": "is:unread"}), "")
        .await
        .unwrap();
    let thread = rig
        .invoke(
            "gmail.get_thread",
            json!({"id": "18f1a2b3c4d5e6f7", "format": "metadata"}),
        )
        .await
        .unwrap();

    assert_eq!(ids(&threads), vec!["18f1a2b3c4d5e6f7", "18f1a2b3c4d5e700"]);
    assert_eq!(next, "");
    assert_eq!(thread["messages"].as_array().map(Vec::len), Some(2));
    let seen = api_requests(&rig);
    assert_eq!(seen[0].path, me("/threads"));
    assert_eq!(seen[0].query_value("q").as_deref(), Some("is:unread"));
    assert_eq!(seen[1].path, me("/threads/18f1a2b3c4d5e6f7"));
    assert_eq!(seen[1].query, "format=metadata");
    rig.stop().await;
}

#[tokio::test]
async fn modify_labels_adds_and_removes_labels_and_refuses_an_empty_change() {
    let rig = rig().await;

    let message = rig
        .invoke(
            "gmail.modify_labels",
            json!({"message_id": "18f1a2b3c4d5e6f7", "add_label_ids": ["Label_12"], "remove_label_ids": ["UNREAD"]}),
        )
        .await
        .unwrap();
    let nothing = rig
        .invoke(
            "gmail.modify_labels",
            json!({"message_id": "18f1a2b3c4d5e6f7", "add_label_ids": []}),
        )
        .await
        .unwrap_err();

    assert_eq!(message["labelIds"], json!(["INBOX", "Label_12"]));
    let seen = rig.fake.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, me("/messages/18f1a2b3c4d5e6f7/modify"));
    assert_eq!(
        seen.json(),
        json!({"addLabelIds": ["Label_12"], "removeLabelIds": ["UNREAD"]})
    );
    assert_eq!(violated_fields(&nothing), vec!["params.add_label_ids"]);
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn list_labels_lists_system_and_user_labels() {
    let rig = rig().await;

    let labels = rig.invoke("gmail.list_labels", json!({})).await.unwrap();

    assert_eq!(ids(&labels), vec!["INBOX", "UNREAD", "Label_12"]);
    assert_eq!(rig.fake.last().path, me("/labels"));
    rig.stop().await;
}

#[tokio::test]
async fn a_429_with_googles_wait_in_the_body_is_retried_after_that_wait() {
    let rig = rig().await;
    let body = json!({"error": {"code": 429, "message": retry_after_text(2),
        "errors": [{"reason": "rateLimitExceeded"}], "status": "RESOURCE_EXHAUSTED"}});
    rig.fake.then(Scripted::status(429, body.to_string()));
    let started = Instant::now();

    let labels = rig.invoke("gmail.list_labels", json!({})).await.unwrap();

    assert_eq!(ids(&labels).len(), 3);
    assert_eq!(rig.fake.count(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "waited {:?}",
        started.elapsed()
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_403_user_rate_limit_is_rate_limited_with_googles_wait_and_not_retried() {
    let rig = rig().await;
    let body = json!({"error": {"code": 403, "message": retry_after_text(60),
        "errors": [{"message": "User-rate limit exceeded.", "domain": "usageLimits", "reason": "userRateLimitExceeded"}]}});
    rig.fake.then(Scripted::status(403, body.to_string()));

    let err = rig
        .invoke("gmail.get_message", json!({"id": "18f1a2b3c4d5e6f7"}))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(reason(&err), "PROVIDER_RATE_LIMITED");
    let delay = err
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("a retry delay");
    assert!(
        (Duration::from_secs(57)..=Duration::from_secs(60)).contains(&delay),
        "{delay:?}"
    );
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_before_the_call_which_uses_the_new_token() {
    let rig = rig_with(
        &[("access_token", STALE), ("refresh_token", REFRESH)],
        Some(Duration::ZERO),
    )
    .await;

    let labels = rig.invoke("gmail.list_labels", json!({})).await.unwrap();

    assert_eq!(ids(&labels).len(), 3);
    let all = rig.fake.requests();
    assert_eq!(all.len(), 2, "one refresh, then one call: {all:?}");
    assert_eq!(all[0].path, TOKEN_PATH);
    let form = all[0].form();
    assert!(form.contains(&("grant_type".to_owned(), "refresh_token".to_owned())));
    assert!(form.contains(&("refresh_token".to_owned(), REFRESH.to_owned())));
    assert_eq!(all[1].path, me("/labels"));
    assert_eq!(
        all[1].header("authorization"),
        Some(bearer(REFRESHED).as_str())
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_401_refreshes_once_and_the_call_is_retried_with_the_new_token() {
    let rig = rig_with(
        &[("access_token", STALE), ("refresh_token", REFRESH)],
        Some(Duration::from_secs(3600)),
    )
    .await;

    let data = rig
        .invoke("gmail.get_thread", json!({"id": "18f1a2b3c4d5e700"}))
        .await
        .unwrap();

    assert_eq!(data["id"], "18f1a2b3c4d5e700");
    let api = api_requests(&rig);
    assert_eq!(api.len(), 2);
    assert_eq!(api[0].header("authorization"), Some(bearer(STALE).as_str()));
    assert_eq!(
        api[1].header("authorization"),
        Some(bearer(REFRESHED).as_str())
    );
    assert_eq!(refreshes(&rig).len(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn test_integration_is_healthy_with_a_working_token() {
    let rig = rig().await;

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(t.healthy);
    assert_eq!(t.state, HealthState::Healthy as i32);
    assert_eq!(t.message, "Gmail accepted the credentials");
    assert_eq!(rig.fake.last().path, me("/profile"));
    rig.stop().await;
}

#[tokio::test]
async fn test_integration_needs_reauth_when_the_token_is_refused_and_cannot_be_refreshed() {
    let rig = rig_with(&[("access_token", STALE)], Some(Duration::from_secs(3600))).await;

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(!t.healthy);
    assert_eq!(t.state, HealthState::NeedsReauth as i32);
    assert_eq!(t.reason, "NEEDS_REAUTH");
    assert_eq!(
        rig.fake.count(),
        1,
        "no refresh token, so no refresh and no retry"
    );
    rig.stop().await;
}

#[tokio::test]
async fn params_are_checked_before_any_request_leaves() {
    let rig = rig().await;

    let err = rig
        .invoke(
            "gmail.list_messages",
            json!({"max_results": 501, "label_ids": ["INBOX", "a/b"], "labelIds": "INBOX"}),
        )
        .await
        .unwrap_err();
    let bad_format = rig
        .invoke(
            "gmail.get_thread",
            json!({"id": "../labels", "format": "raw"}),
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        vec![
            "params.labelIds",
            "params.label_ids[1]",
            "params.max_results"
        ]
    );
    assert_eq!(
        violated_fields(&bad_format),
        vec!["params.id", "params.format"]
    );
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn a_gmail_cycle_with_refreshes_leaks_no_token_into_logs_or_answers() {
    crate::leaks::capture_logs();
    let mut answers: Vec<String> = Vec::new();
    let mut keep = |r: Result<Value, tonic::Status>| match r {
        Ok(v) => answers.push(v.to_string()),
        Err(s) => {
            answers.push(format!("{s:?}"));
            answers.push(String::from_utf8_lossy(s.details()).into_owned());
            answers.push(format!("{:?}", s.metadata()));
        }
    };
    let rig = rig_with(
        &[("access_token", STALE), ("refresh_token", REFRESH)],
        Some(Duration::ZERO),
    )
    .await;

    keep(rig.invoke("gmail.list_labels", json!({})).await);
    rig.fake.then(Scripted::status(
        400,
        json!({"error": {"code": 400, "message": format!("token {REFRESHED} is not allowed here"),
            "status": "INVALID_ARGUMENT"}})
        .to_string(),
    ));
    keep(
        rig.invoke("gmail.get_message", json!({"id": "18f1a2b3c4d5e6f7"}))
            .await,
    );
    rig.fake.then(Scripted::status(
        403,
        json!({"error": {"code": 403, "message": format!("{REFRESH} {}", retry_after_text(30)),
            "errors": [{"reason": "userRateLimitExceeded"}]}})
        .to_string(),
    ));
    keep(rig.invoke("gmail.list_messages", json!({})).await);
    keep(
        rig.invoke(
            "gmail.send_message",
            json!({"to": ["grace@example.com"], "subject": "hi", "body": "x"}),
        )
        .await,
    );
    let tested = rig.test_as(Role::Admin).await;
    answers.push(format!("{tested:?}"));
    rig.stop().await;

    let logs = crate::leaks::logs();
    assert!(logs.contains("tokens refreshed"), "the capture works");
    for (what, secret) in [
        ("stale access token", STALE),
        ("refresh token", REFRESH),
        ("refreshed access token", REFRESHED),
        ("client secret", CLIENT_SECRET),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the logs");
        for a in &answers {
            assert!(!a.contains(secret), "the {what} appears in an answer: {a}");
        }
    }
    assert!(answers.iter().any(|a| a.contains("[redacted]")));
}

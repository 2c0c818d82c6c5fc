//! Slack: every operation against the fake over gRPC, `ok:false` answers as errors (auth codes
//! take the 401 path, `missing_scope` is SCOPE_MISSING, 429 is rate limited), cursor paging,
//! and search only with a user token.

use std::time::Duration;

use founderhouse_integrations::domain::{Platform, Role};
use founderhouse_integrations::proto::HealthState;
use serde_json::json;
use tonic::Code;

use super::fake::Scripted;
use super::fakes::slack::{self, ARCHIVED, BASE, BOT, GENERAL, TEAM, THREAD_TS, USER};
use super::seeded::Seed;
use super::{Rig, Setup};
use crate::helpers::{reason, violated_fields};

/// A bot token connected directly (ConnectIntegration), as the credential spec allows.
async fn rig_with_token(token: &str) -> Rig {
    Rig::start(
        slack::start().await,
        Setup {
            platform: Platform::Slack,
            base_path: Some(BASE),
            credentials: vec![
                ("access_token", token.to_owned()),
                ("team_id", TEAM.to_owned()),
            ],
        },
    )
    .await
}

async fn rig() -> Rig {
    rig_with_token(BOT).await
}

/// An OAuth connection that granted a user scope: the bot token and the user token.
async fn oauth_rig() -> Rig {
    Rig::start_seeded(
        slack::start().await,
        Seed {
            platform: Platform::Slack,
            base_path: BASE,
            tokens: &[("access_token", BOT), ("user_token", USER)],
            expires_in: None,
        },
        |_| {},
    )
    .await
}

fn bot() -> String {
    format!("Bearer {BOT}")
}

#[tokio::test]
async fn the_connection_test_calls_auth_test_and_checks_ok() {
    let rig = rig().await;

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(t.healthy, "{t:?}");
    assert_eq!(t.message, "Slack accepted the credentials");
    let seen = rig.fake.last();
    assert_eq!(seen.path, "/api/auth.test");
    assert_eq!(seen.header("authorization"), Some(bot().as_str()));
    rig.stop().await;
}

#[tokio::test]
async fn a_revoked_token_answered_with_http_200_ok_false_tests_needs_reauth() {
    let rig = rig().await;
    rig.fake.then(Scripted::status(
        200,
        r#"{"ok": false, "error": "token_revoked"}"#,
    ));

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(!t.healthy);
    assert_eq!(t.state, HealthState::NeedsReauth as i32);
    assert_eq!(t.reason, "NEEDS_REAUTH");
    assert_eq!(rig.fake.count(), 1, "a pasted token cannot be renewed");
    rig.stop().await;
}

#[tokio::test]
async fn token_revoked_on_an_operation_is_needs_reauth_after_one_call() {
    let rig = rig().await;
    rig.fake.then(Scripted::status(
        200,
        r#"{"ok": false, "error": "token_revoked"}"#,
    ));

    let err = rig.invoke("slack.list_users", json!({})).await.unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "NEEDS_REAUTH");
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn list_channels_pages_with_next_cursor_across_two_pages() {
    let rig = rig().await;
    let params = json!({"limit": 2});

    let (first, token) = rig
        .invoke_page("slack.list_channels", params.clone(), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("slack.list_channels", params, &token)
        .await
        .unwrap();

    let names = |v: &serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(names(&first), vec!["general", "random"]);
    assert_eq!(names(&second), vec!["board"]);
    assert_eq!(last, "");
    let seen = rig.fake.requests();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/api/conversations.list");
    assert_eq!(
        seen[0].query_pairs(),
        vec![
            (
                "types".to_owned(),
                "public_channel,private_channel".to_owned()
            ),
            ("exclude_archived".to_owned(), "true".to_owned()),
            ("limit".to_owned(), "2".to_owned()),
        ]
    );
    assert_eq!(
        seen[1].query_value("cursor").as_deref(),
        Some("c3RhcnQ6Mg==")
    );
    assert_eq!(seen[1].header("authorization"), Some(bot().as_str()));
    rig.stop().await;
}

#[tokio::test]
async fn get_channel_history_sends_the_window_and_reads_the_messages() {
    let rig = rig().await;

    let data = rig
        .invoke(
            "slack.get_channel_history",
            json!({"channel": GENERAL, "limit": 10, "oldest": "1512085900", "latest": "1512086000.000100", "inclusive": true}),
        )
        .await
        .unwrap();

    assert_eq!(data["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(data["items"][0]["text"], "update 3");
    let seen = rig.fake.last();
    assert_eq!(seen.path, "/api/conversations.history");
    assert_eq!(
        seen.query_pairs(),
        vec![
            ("channel".to_owned(), GENERAL.to_owned()),
            ("limit".to_owned(), "10".to_owned()),
            ("oldest".to_owned(), "1512085900".to_owned()),
            ("latest".to_owned(), "1512086000.000100".to_owned()),
            ("inclusive".to_owned(), "true".to_owned()),
        ]
    );
    rig.stop().await;
}

#[tokio::test]
async fn an_unknown_channel_is_a_rejection_carrying_slacks_error_code() {
    let rig = rig().await;

    let err = rig
        .invoke(
            "slack.get_channel_history",
            json!({"channel": "C0NOPE0001"}),
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "PROVIDER_REJECTED");
    assert_eq!(
        super::core::metadata(&err, "provider_code").as_deref(),
        Some("channel_not_found")
    );
    assert_eq!(
        super::core::metadata(&err, "provider_status").as_deref(),
        Some("200")
    );
    rig.stop().await;
}

#[tokio::test]
async fn get_thread_replies_reads_the_parent_and_its_replies() {
    let rig = rig().await;

    let data = rig
        .invoke(
            "slack.get_thread_replies",
            json!({"channel": GENERAL, "ts": THREAD_TS}),
        )
        .await
        .unwrap();

    assert_eq!(data["items"][0]["text"], "Q2 plan?");
    assert_eq!(data["items"][1]["text"], "Draft attached");
    let seen = rig.fake.last();
    assert_eq!(seen.path, "/api/conversations.replies");
    assert_eq!(seen.query_value("ts").as_deref(), Some(THREAD_TS));
    assert_eq!(seen.query_value("limit").as_deref(), Some("100"));
    rig.stop().await;
}

#[tokio::test]
async fn send_message_posts_json_in_a_thread() {
    let rig = rig().await;

    let data = rig
        .invoke(
            "slack.send_message",
            json!({"channel": GENERAL, "text": "Board deck is *ready*", "thread_ts": THREAD_TS}),
        )
        .await
        .unwrap();

    assert_eq!(data["ok"], true);
    assert_eq!(data["ts"], "1512085999.000400");
    let seen = rig.fake.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/api/chat.postMessage")
    );
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("authorization"), Some(bot().as_str()));
    assert_eq!(
        seen.json(),
        json!({"channel": GENERAL, "text": "Board deck is *ready*", "thread_ts": THREAD_TS})
    );
    rig.stop().await;
}

#[tokio::test]
async fn send_message_to_an_archived_channel_is_refused_with_slacks_code() {
    let rig = rig().await;

    let err = rig
        .invoke(
            "slack.send_message",
            json!({"channel": ARCHIVED, "text": "hello"}),
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        super::core::metadata(&err, "provider_code").as_deref(),
        Some("is_archived")
    );
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn send_message_is_a_write_that_viewers_may_not_run() {
    let rig = rig().await;

    let err = rig
        .invoke_as(
            Role::Viewer,
            &rig.integration,
            "slack.send_message",
            json!({"channel": GENERAL, "text": "hi"}),
            "",
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn params_are_checked_before_any_request() {
    let rig = rig().await;

    let empty = rig
        .invoke("slack.send_message", json!({"channel": GENERAL}))
        .await
        .unwrap_err();
    let ids = rig
        .invoke(
            "slack.send_message",
            json!({"channel": "#general", "text": "hi", "thread_ts": "yesterday"}),
        )
        .await
        .unwrap_err();
    let user = rig
        .invoke("slack.get_user", json!({"user": "../admin"}))
        .await
        .unwrap_err();
    let limits = rig
        .invoke(
            "slack.list_channels",
            json!({"limit": 1001, "types": ["public_channel", "everything"]}),
        )
        .await
        .unwrap_err();

    assert_eq!(violated_fields(&empty), vec!["params.text"]);
    assert_eq!(
        violated_fields(&ids),
        vec!["params.channel", "params.thread_ts"]
    );
    assert_eq!(violated_fields(&user), vec!["params.user"]);
    assert_eq!(
        violated_fields(&limits),
        vec!["params.types[1]", "params.limit"]
    );
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn list_users_pages_across_two_pages() {
    let rig = rig().await;

    let (first, token) = rig
        .invoke_page("slack.list_users", json!({"limit": 2}), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("slack.list_users", json!({"limit": 2}), &token)
        .await
        .unwrap();

    assert_eq!(first["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(second["items"][0]["id"], "U0LINUS01");
    assert_eq!(last, "");
    assert_eq!(rig.fake.last().path, "/api/users.list");
    rig.stop().await;
}

#[tokio::test]
async fn get_user_returns_the_user_object() {
    let rig = rig().await;

    let data = rig
        .invoke("slack.get_user", json!({"user": "U024BE7LH"}))
        .await
        .unwrap();

    assert_eq!(data["real_name"], "Ada Lovelace");
    assert_eq!(data["profile"]["email"], "ada@example.com");
    let seen = rig.fake.last();
    assert_eq!(seen.path, "/api/users.info");
    assert_eq!(seen.query_value("user").as_deref(), Some("U024BE7LH"));
    rig.stop().await;
}

#[tokio::test]
async fn missing_scope_is_scope_missing_naming_the_needed_scope() {
    let rig = rig().await;
    rig.fake.then(Scripted::status(
        200,
        r#"{"ok": false, "error": "missing_scope", "needed": "users:read", "provided": "chat:write"}"#,
    ));

    let err = rig.invoke("slack.list_users", json!({})).await.unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "SCOPE_MISSING");
    assert_eq!(
        super::core::metadata(&err, "scope").as_deref(),
        Some("users:read")
    );
    assert!(err.message().contains("users:read"), "{}", err.message());
    rig.stop().await;
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_retried() {
    let rig = rig().await;
    rig.fake.then(
        Scripted::status(429, r#"{"ok": false, "error": "ratelimited"}"#)
            .header("retry-after", "1"),
    );
    let started = std::time::Instant::now();

    let data = rig
        .invoke("slack.get_user", json!({"user": "U024BE7LH"}))
        .await
        .unwrap();

    assert_eq!(data["name"], "ada");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(rig.fake.count(), 2);
    rig.stop().await;
}

#[tokio::test]
async fn a_429_whose_retry_after_outlasts_the_deadline_is_rate_limited_at_once() {
    let rig = rig().await;
    rig.fake.then(
        Scripted::status(429, r#"{"ok": false, "error": "ratelimited"}"#)
            .header("retry-after", "30"),
    );

    let err = rig
        .invoke("slack.get_user", json!({"user": "U024BE7LH"}))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(reason(&err), "PROVIDER_RATE_LIMITED");
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn search_messages_with_only_a_bot_token_is_scope_missing_without_calling_slack() {
    let rig = rig().await;

    let err = rig
        .invoke("slack.search_messages", json!({"query": "runway"}))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "SCOPE_MISSING");
    assert!(err.message().contains("search:read"), "{}", err.message());
    assert_eq!(
        super::core::metadata(&err, "scope").as_deref(),
        Some("search:read")
    );
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn search_messages_uses_the_user_token_and_pages_by_page_number() {
    let rig = oauth_rig().await;
    let params = json!({"query": "runway in:#general", "count": 2});

    let (first, token) = rig
        .invoke_page("slack.search_messages", params.clone(), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("slack.search_messages", params, &token)
        .await
        .unwrap();

    assert_eq!(first["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(second["items"][0]["text"], "runway note 3");
    assert_eq!(last, "");
    let seen = rig.fake.requests();
    assert_eq!(seen[0].path, "/api/search.messages");
    let user = format!("Bearer {USER}");
    assert_eq!(seen[0].header("authorization"), Some(user.as_str()));
    assert_eq!(
        seen[0].query_pairs(),
        vec![
            ("query".to_owned(), "runway in:#general".to_owned()),
            ("count".to_owned(), "2".to_owned()),
            ("page".to_owned(), "1".to_owned()),
            ("sort".to_owned(), "score".to_owned()),
            ("sort_dir".to_owned(), "desc".to_owned()),
        ]
    );
    assert_eq!(seen[1].query_value("page").as_deref(), Some("2"));
    rig.stop().await;
}

#[tokio::test]
async fn the_oauth_connections_other_operations_keep_the_bot_token() {
    let rig = oauth_rig().await;

    rig.invoke("slack.get_user", json!({"user": "U024BE7LH"}))
        .await
        .unwrap();

    assert_eq!(
        rig.fake.last().header("authorization"),
        Some(bot().as_str())
    );
    rig.stop().await;
}

#[tokio::test]
async fn search_messages_accepts_a_user_token_connected_directly() {
    let rig = rig_with_token(USER).await;

    let data = rig
        .invoke("slack.search_messages", json!({"query": "runway"}))
        .await
        .unwrap();

    assert_eq!(data["items"].as_array().map(Vec::len), Some(3));
    let user = format!("Bearer {USER}");
    assert_eq!(rig.fake.last().header("authorization"), Some(user.as_str()));
    rig.stop().await;
}

//! Discord: every operation against the fake over gRPC, `Bot` versus `Bearer` authorization,
//! snowflake paging (`after` for guilds and members, `before`/`after` for messages), Discord's
//! `{message, code}` errors, and the `retry_after` body of a 429 honoured.

use std::time::Duration;

use founderhouse_integrations::domain::{Platform, Role};
use founderhouse_integrations::proto::HealthState;
use serde_json::{Value, json};
use tonic::Code;

use super::fake::Scripted;
use super::fakes::discord::{
    self, BASE, BOT, CHANNEL, GUILD, HIDDEN, MEMBER, USER_ACCESS, message_id,
};
use super::seeded::Seed;
use super::{Rig, Setup};
use crate::helpers::{reason, violated_fields};

/// A bot connected directly with its token.
async fn rig_with_bot(token: &str) -> Rig {
    Rig::start(
        discord::start().await,
        Setup {
            platform: Platform::Discord,
            base_path: Some(BASE),
            credentials: vec![("bot_token", token.to_owned())],
        },
    )
    .await
}

async fn rig() -> Rig {
    rig_with_bot(BOT).await
}

/// A user's OAuth connection: an access token and no bot token.
async fn user_rig() -> Rig {
    Rig::start_seeded(
        discord::start().await,
        Seed {
            platform: Platform::Discord,
            base_path: BASE,
            tokens: &[("access_token", USER_ACCESS)],
            expires_in: None,
        },
        |_| {},
    )
    .await
}

fn bot() -> String {
    format!("Bot {BOT}")
}

fn path(rest: &str) -> String {
    format!("{BASE}{rest}")
}

fn ids(v: &Value, pointer: &str) -> Vec<String> {
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            i.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_connection_test_reads_the_bots_own_user_with_the_bot_header() {
    let rig = rig().await;

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(t.healthy, "{t:?}");
    let seen = rig.fake.last();
    assert_eq!(seen.path, path("/users/@me"));
    assert_eq!(seen.header("authorization"), Some(bot().as_str()));
    rig.stop().await;
}

#[tokio::test]
async fn a_reset_bot_token_tests_needs_reauth_after_one_call() {
    let rig = rig_with_bot("MTk4.old.token-that-was-reset").await;

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(!t.healthy);
    assert_eq!(t.state, HealthState::NeedsReauth as i32);
    assert_eq!(t.reason, "NEEDS_REAUTH");
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn an_oauth_user_connection_sends_a_bearer_token() {
    let rig = user_rig().await;

    let data = rig.invoke("discord.list_guilds", json!({})).await.unwrap();

    assert_eq!(data["items"].as_array().map(Vec::len), Some(3));
    let bearer = format!("Bearer {USER_ACCESS}");
    assert_eq!(
        rig.fake.last().header("authorization"),
        Some(bearer.as_str())
    );
    rig.stop().await;
}

#[tokio::test]
async fn list_guilds_pages_after_the_last_guild_across_two_pages() {
    let rig = rig().await;
    let params = json!({"limit": 2});

    let (first, token) = rig
        .invoke_page("discord.list_guilds", params.clone(), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("discord.list_guilds", params, &token)
        .await
        .unwrap();

    assert_eq!(
        ids(&first, "/id"),
        vec!["197038439483310086", "197038439483310087"]
    );
    assert_eq!(ids(&second, "/id"), vec!["197038439483310088"]);
    assert_eq!(last, "");
    let seen = rig.fake.requests();
    assert_eq!(seen[0].path, path("/users/@me/guilds"));
    assert_eq!(
        seen[0].query_pairs(),
        vec![
            ("limit".to_owned(), "2".to_owned()),
            ("with_counts".to_owned(), "false".to_owned()),
        ]
    );
    assert_eq!(
        seen[1].query_value("after").as_deref(),
        Some("197038439483310087")
    );
    assert_eq!(seen[1].header("authorization"), Some(bot().as_str()));
    rig.stop().await;
}

#[tokio::test]
async fn get_guild_reads_it_with_its_counts() {
    let rig = rig().await;

    let data = rig
        .invoke("discord.get_guild", json!({"guild_id": GUILD}))
        .await
        .unwrap();

    assert_eq!(data["name"], "Guild 1");
    assert_eq!(data["approximate_member_count"], 42.0);
    let seen = rig.fake.last();
    assert_eq!(seen.path, path(&format!("/guilds/{GUILD}")));
    assert_eq!(seen.query_value("with_counts").as_deref(), Some("true"));
    rig.stop().await;
}

#[tokio::test]
async fn an_unknown_guild_is_a_rejection_carrying_discords_code() {
    let rig = rig().await;

    let err = rig
        .invoke("discord.get_guild", json!({"guild_id": "1"}))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "PROVIDER_REJECTED");
    assert_eq!(
        super::core::metadata(&err, "provider_code").as_deref(),
        Some("10004")
    );
    assert!(err.message().contains("Unknown Guild"), "{}", err.message());
    rig.stop().await;
}

#[tokio::test]
async fn list_guild_channels_lists_them_all() {
    let rig = rig().await;

    let (data, next) = rig
        .invoke_page(
            "discord.list_guild_channels",
            json!({"guild_id": GUILD}),
            "",
        )
        .await
        .unwrap();

    assert_eq!(ids(&data, "/name"), vec!["general", "voice"]);
    assert_eq!(next, "");
    assert_eq!(
        rig.fake.last().path,
        path(&format!("/guilds/{GUILD}/channels"))
    );
    rig.stop().await;
}

#[tokio::test]
async fn get_channel_messages_pages_backwards_before_the_oldest_message() {
    let rig = rig().await;
    let params = json!({"channel_id": CHANNEL, "limit": 3});

    let (first, token) = rig
        .invoke_page("discord.get_channel_messages", params.clone(), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("discord.get_channel_messages", params, &token)
        .await
        .unwrap();

    assert_eq!(
        ids(&first, "/id"),
        vec![message_id(5), message_id(4), message_id(3)]
    );
    assert_eq!(ids(&second, "/id"), vec![message_id(2), message_id(1)]);
    assert_eq!(last, "");
    let seen = rig.fake.requests();
    assert_eq!(seen[0].path, path(&format!("/channels/{CHANNEL}/messages")));
    assert_eq!(
        seen[0].query_pairs(),
        vec![("limit".to_owned(), "3".to_owned())]
    );
    assert_eq!(seen[1].query_value("before"), Some(message_id(3)));
    rig.stop().await;
}

#[tokio::test]
async fn get_channel_messages_after_a_message_pages_forwards() {
    let rig = rig().await;
    let params = json!({"channel_id": CHANNEL, "limit": 2, "after": message_id(1)});

    let (first, token) = rig
        .invoke_page("discord.get_channel_messages", params.clone(), "")
        .await
        .unwrap();
    let (second, _) = rig
        .invoke_page("discord.get_channel_messages", params, &token)
        .await
        .unwrap();

    assert_eq!(ids(&first, "/id"), vec![message_id(3), message_id(2)]);
    assert_eq!(ids(&second, "/id"), vec![message_id(5), message_id(4)]);
    let seen = rig.fake.requests();
    assert_eq!(seen[0].query_value("after"), Some(message_id(1)));
    assert_eq!(seen[1].query_value("after"), Some(message_id(3)));
    rig.stop().await;
}

#[tokio::test]
async fn a_channel_the_bot_cannot_see_is_a_rejection() {
    let rig = rig().await;

    let err = rig
        .invoke(
            "discord.get_channel_messages",
            json!({"channel_id": HIDDEN}),
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "PROVIDER_REJECTED");
    assert_eq!(
        super::core::metadata(&err, "provider_code").as_deref(),
        Some("50001")
    );
    rig.stop().await;
}

#[tokio::test]
async fn params_are_checked_before_any_request() {
    let rig = rig().await;

    let snowflakes = rig
        .invoke(
            "discord.get_member",
            json!({"guild_id": "guild-1", "user_id": "../../users/@me"}),
        )
        .await
        .unwrap_err();
    let limits = rig
        .invoke(
            "discord.get_channel_messages",
            json!({"channel_id": CHANNEL, "limit": 101}),
        )
        .await
        .unwrap_err();
    let both = rig
        .invoke(
            "discord.get_channel_messages",
            json!({"channel_id": CHANNEL, "before": "5", "after": "1"}),
        )
        .await
        .unwrap_err();
    let members = rig
        .invoke(
            "discord.list_guild_members",
            json!({"guild_id": GUILD, "limit": 1001}),
        )
        .await
        .unwrap_err();
    let long = rig
        .invoke(
            "discord.send_message",
            json!({"channel_id": CHANNEL, "content": "x".repeat(2001)}),
        )
        .await
        .unwrap_err();

    assert_eq!(
        violated_fields(&snowflakes),
        vec!["params.guild_id", "params.user_id"]
    );
    assert_eq!(violated_fields(&limits), vec!["params.limit"]);
    assert_eq!(violated_fields(&both), vec!["params.before"]);
    assert_eq!(violated_fields(&members), vec!["params.limit"]);
    assert_eq!(violated_fields(&long), vec!["params.content"]);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn send_message_posts_json_replying_without_mass_mentions() {
    let rig = rig().await;

    let data = rig
        .invoke(
            "discord.send_message",
            json!({"channel_id": CHANNEL, "content": "Deck is ready @everyone", "reply_to": message_id(5),
                "embeds": [{"title": "Q2 board deck", "url": "https://example.com/deck"}]}),
        )
        .await
        .unwrap();

    assert_eq!(data["id"], message_id(6));
    assert_eq!(data["content"], "Deck is ready @everyone");
    let seen = rig.fake.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.clone()),
        ("POST", path(&format!("/channels/{CHANNEL}/messages")))
    );
    assert_eq!(seen.header("authorization"), Some(bot().as_str()));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(
        seen.json(),
        json!({
            "content": "Deck is ready @everyone",
            "embeds": [{"title": "Q2 board deck", "url": "https://example.com/deck"}],
            "message_reference": {"message_id": message_id(5)},
            "allowed_mentions": {"parse": ["users", "roles"], "replied_user": true},
        })
    );
    rig.stop().await;
}

#[tokio::test]
async fn send_message_is_not_retried_after_a_503() {
    let rig = rig().await;
    rig.fake.then(Scripted::status(
        503,
        r#"{"message": "upstream connect error", "code": 0}"#,
    ));

    let err = rig
        .invoke(
            "discord.send_message",
            json!({"channel_id": CHANNEL, "content": "once"}),
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn list_guild_members_pages_after_the_last_user_across_two_pages() {
    let rig = rig().await;
    let params = json!({"guild_id": GUILD, "limit": 2});

    let (first, token) = rig
        .invoke_page("discord.list_guild_members", params.clone(), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("discord.list_guild_members", params, &token)
        .await
        .unwrap();

    assert_eq!(ids(&first, "/user/username"), vec!["ada", "grace"]);
    assert_eq!(ids(&second, "/user/username"), vec!["linus"]);
    assert_eq!(last, "");
    let seen = rig.fake.requests();
    assert_eq!(seen[0].path, path(&format!("/guilds/{GUILD}/members")));
    assert_eq!(
        seen[1].query_value("after").as_deref(),
        Some("80351110224678913")
    );
    rig.stop().await;
}

#[tokio::test]
async fn get_member_reads_one_member() {
    let rig = rig().await;

    let data = rig
        .invoke(
            "discord.get_member",
            json!({"guild_id": GUILD, "user_id": MEMBER}),
        )
        .await
        .unwrap();

    assert_eq!(data["user"]["username"], "ada");
    assert_eq!(
        rig.fake.last().path,
        path(&format!("/guilds/{GUILD}/members/{MEMBER}"))
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_429_is_retried_after_the_retry_after_of_its_body() {
    let rig = rig().await;
    // No Retry-After header: only the body says how long, and fast_policy's own backoff is
    // at most 20 ms, so waiting 300 ms shows the body was read.
    rig.fake.then(Scripted::status(
        429,
        r#"{"message": "You are being rate limited.", "retry_after": 0.3, "global": false}"#,
    ));
    let started = std::time::Instant::now();

    let data = rig
        .invoke("discord.get_guild", json!({"guild_id": GUILD}))
        .await
        .unwrap();

    assert_eq!(data["name"], "Guild 1");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(rig.fake.count(), 2);
    rig.stop().await;
}

#[tokio::test]
async fn a_429_whose_retry_after_outlasts_the_deadline_is_rate_limited_with_that_wait() {
    let rig = rig().await;
    rig.fake.then(Scripted::status(
        429,
        r#"{"message": "You are being rate limited.", "retry_after": 64.57, "global": true}"#,
    ));

    let err = rig
        .invoke("discord.get_guild", json!({"guild_id": GUILD}))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(reason(&err), "PROVIDER_RATE_LIMITED");
    assert!(
        err.message().contains("retry after 64s"),
        "{}",
        err.message()
    );
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

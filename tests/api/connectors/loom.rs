//! Loom (the product spec's unverified API): every operation against the fake over gRPC,
//! Bearer auth, offset paging, writes marked as writes, and errors.

use founderhouse_integrations::domain::{Platform, Role};
use founderhouse_integrations::proto::HealthState;
use serde_json::{Value, json};
use tonic::Code;

use super::Rig;
use super::fake::Scripted;
use super::fakes::loom::{self, BASE, TOKEN, VIDEO};
use super::seeded::Seed;
use crate::helpers::{reason, violated_fields};

/// Loom connects only through OAuth: an access token as the callback stores it.
async fn rig_with(token: &str) -> Rig {
    Rig::start_seeded(
        loom::start().await,
        Seed {
            platform: Platform::Loom,
            base_path: BASE,
            tokens: &[("access_token", token)],
            expires_in: None,
        },
        |_| {},
    )
    .await
}

async fn rig() -> Rig {
    rig_with(TOKEN).await
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn path(rest: &str) -> String {
    format!("{BASE}{rest}")
}

fn titles(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn the_connection_test_reads_the_tokens_own_user() {
    let rig = rig().await;

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(t.healthy, "{t:?}");
    let seen = rig.fake.last();
    assert_eq!(seen.path, path("/users/me"));
    assert_eq!(seen.header("authorization"), Some(bearer().as_str()));
    rig.stop().await;
}

#[tokio::test]
async fn a_rejected_token_tests_needs_reauth() {
    let rig = rig_with("loom-access-token-expired").await;

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(!t.healthy);
    assert_eq!(t.state, HealthState::NeedsReauth as i32);
    assert_eq!(t.reason, "NEEDS_REAUTH");
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn list_videos_pages_by_offset_across_two_pages() {
    let rig = rig().await;
    let params = json!({"limit": 2, "sort_by": "created_at", "sort_direction": "desc"});

    let (first, token) = rig
        .invoke_page("loom.list_videos", params.clone(), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("loom.list_videos", params, &token)
        .await
        .unwrap();

    assert_eq!(titles(&first), vec!["Weekly update 1", "Weekly update 2"]);
    assert_eq!(titles(&second), vec!["Weekly update 3"]);
    assert_eq!(last, "");
    let seen = rig.fake.requests();
    assert_eq!(seen[0].path, path("/videos"));
    assert_eq!(
        seen[0].query_pairs(),
        vec![
            ("limit".to_owned(), "2".to_owned()),
            ("offset".to_owned(), "0".to_owned()),
            ("sort_by".to_owned(), "created_at".to_owned()),
            ("sort_direction".to_owned(), "desc".to_owned()),
        ]
    );
    assert_eq!(seen[1].query_value("offset").as_deref(), Some("2"));
    assert_eq!(seen[1].header("authorization"), Some(bearer().as_str()));
    rig.stop().await;
}

#[tokio::test]
async fn get_video_transcript_and_insights_read_one_video() {
    let rig = rig().await;
    let id = json!({"video_id": VIDEO});

    let video = rig.invoke("loom.get_video", id.clone()).await.unwrap();
    let transcript = rig.invoke("loom.get_transcript", id.clone()).await.unwrap();
    let insights = rig.invoke("loom.get_insights", id).await.unwrap();

    assert_eq!(video["title"], "Weekly update 1");
    assert_eq!(
        transcript["segments"][1]["text"],
        "We closed the seed round."
    );
    assert_eq!(insights["views"], 17.0);
    let paths: Vec<String> = rig.fake.requests().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        vec![
            path(&format!("/videos/{VIDEO}")),
            path(&format!("/videos/{VIDEO}/transcript")),
            path(&format!("/videos/{VIDEO}/insights")),
        ]
    );
    rig.stop().await;
}

#[tokio::test]
async fn an_unknown_video_is_a_rejection_with_looms_message() {
    let rig = rig().await;

    let err = rig
        .invoke("loom.get_video", json!({"video_id": "nope"}))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "PROVIDER_REJECTED");
    assert_eq!(
        super::core::metadata(&err, "provider_code").as_deref(),
        Some("not_found")
    );
    assert!(
        err.message().contains("Video not found"),
        "{}",
        err.message()
    );
    rig.stop().await;
}

#[tokio::test]
async fn search_videos_sends_the_query_and_limit() {
    let rig = rig().await;

    let data = rig
        .invoke(
            "loom.search_videos",
            json!({"query": "update 2", "limit": 5}),
        )
        .await
        .unwrap();

    assert_eq!(titles(&data), vec!["Weekly update 2"]);
    let seen = rig.fake.last();
    assert_eq!(seen.path, path("/videos/search"));
    assert_eq!(
        seen.query_pairs(),
        vec![
            ("query".to_owned(), "update 2".to_owned()),
            ("limit".to_owned(), "5".to_owned()),
        ]
    );
    rig.stop().await;
}

#[tokio::test]
async fn update_video_patches_only_the_given_fields() {
    let rig = rig().await;

    let data = rig
        .invoke(
            "loom.update_video",
            json!({"video_id": VIDEO, "title": "Investor update"}),
        )
        .await
        .unwrap();

    assert_eq!(data["title"], "Investor update");
    let seen = rig.fake.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.clone()),
        ("PATCH", path(&format!("/videos/{VIDEO}")))
    );
    assert_eq!(seen.json(), json!({"title": "Investor update"}));
    assert_eq!(seen.header("authorization"), Some(bearer().as_str()));
    rig.stop().await;
}

#[tokio::test]
async fn delete_video_answers_what_it_deleted() {
    let rig = rig().await;

    let data = rig
        .invoke("loom.delete_video", json!({"video_id": VIDEO}))
        .await
        .unwrap();

    assert_eq!(data, json!({"deleted": true, "video_id": VIDEO}));
    let seen = rig.fake.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.clone()),
        ("DELETE", path(&format!("/videos/{VIDEO}")))
    );
    rig.stop().await;
}

#[tokio::test]
async fn update_and_delete_are_writes_that_viewers_may_not_run() {
    let rig = rig().await;

    for (op, params) in [
        (
            "loom.update_video",
            json!({"video_id": VIDEO, "title": "x"}),
        ),
        ("loom.delete_video", json!({"video_id": VIDEO})),
    ] {
        let err = rig
            .invoke_as(Role::Viewer, &rig.integration, op, params, "")
            .await
            .unwrap_err();

        assert_eq!(err.code(), Code::PermissionDenied, "{op}");
    }
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn params_are_checked_before_any_request() {
    let rig = rig().await;

    let nothing = rig
        .invoke("loom.update_video", json!({"video_id": VIDEO}))
        .await
        .unwrap_err();
    let id = rig
        .invoke("loom.get_video", json!({"video_id": "../users/me"}))
        .await
        .unwrap_err();
    let limits = rig
        .invoke("loom.list_videos", json!({"limit": 0, "sort_by": "views"}))
        .await
        .unwrap_err();

    assert_eq!(violated_fields(&nothing), vec!["params.title"]);
    assert_eq!(violated_fields(&id), vec!["params.video_id"]);
    assert_eq!(
        violated_fields(&limits),
        vec!["params.limit", "params.sort_by"]
    );
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn update_video_is_not_retried_after_a_503() {
    let rig = rig().await;
    rig.fake.then(Scripted::status(
        503,
        r#"{"error": "unavailable", "message": "try later"}"#,
    ));

    let err = rig
        .invoke(
            "loom.update_video",
            json!({"video_id": VIDEO, "description": "v2"}),
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(rig.fake.count(), 1, "a PATCH is not retried");
    rig.stop().await;
}

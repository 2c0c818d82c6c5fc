//! Otter: every operation of the product spec against the fake.

use founderhouse_integrations::domain::{Platform, Role};
use serde_json::{Value, json};

use super::fakes::otter::{self, BASE, KEY};
use super::{Rig, Setup};
use crate::helpers::violated_fields;

async fn rig() -> Rig {
    Rig::start(
        otter::start().await,
        Setup {
            platform: Platform::Otter,
            base_path: Some(BASE),
            credentials: vec![("api_key", KEY.to_owned())],
        },
    )
    .await
}

fn ids(data: &Value) -> Vec<&str> {
    data["items"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["otid"].as_str().expect("an id"))
        .collect()
}

#[tokio::test]
async fn the_connection_test_reads_the_user() {
    let rig = rig().await;

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(t.healthy, "{t:?}");
    let seen = rig.fake.last();
    assert_eq!(seen.path, format!("{BASE}/user"));
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    rig.stop().await;
}

#[tokio::test]
async fn list_speeches_pages_by_offset_and_filters_by_folder() {
    let rig = rig().await;

    let (first, token) = rig
        .invoke_page("otter.list_speeches", json!({"page_size": 2}), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("otter.list_speeches", json!({"page_size": 2}), &token)
        .await
        .unwrap();
    let board = rig
        .invoke("otter.list_speeches", json!({"folder": "board"}))
        .await
        .unwrap();

    assert_eq!(ids(&first), vec!["sp1", "sp2"]);
    assert_eq!(ids(&second), vec!["sp3"]);
    assert_eq!(last, "");
    assert_eq!(ids(&board), vec!["sp1", "sp3"]);
    let seen = rig.fake.requests();
    assert_eq!(seen[1].query_value("offset").as_deref(), Some("2"));
    assert_eq!(seen[2].query_value("folder").as_deref(), Some("board"));
    rig.stop().await;
}

#[tokio::test]
async fn get_speech_transcript_and_summary_read_one_speech() {
    let rig = rig().await;

    let speech = rig
        .invoke("otter.get_speech", json!({"id": "sp2"}))
        .await
        .unwrap();
    let transcript = rig
        .invoke("otter.get_transcript", json!({"id": "sp2"}))
        .await
        .unwrap();
    let summary = rig
        .invoke("otter.get_summary", json!({"id": "sp2"}))
        .await
        .unwrap();

    assert_eq!(speech["speech"]["title"], "Design review");
    assert_eq!(
        transcript["speech"]["transcripts"][0]["transcript"],
        "Good morning"
    );
    assert_eq!(summary["summary"], "The round is oversubscribed.");
    let seen = rig.fake.requests();
    assert_eq!(
        seen[1].query_value("include_transcript").as_deref(),
        Some("true")
    );
    assert_eq!(seen[2].path, format!("{BASE}/speeches/sp2/summary"));
    rig.stop().await;
}

#[tokio::test]
async fn search_speeches_sends_the_query() {
    let rig = rig().await;

    let found = rig
        .invoke("otter.search_speeches", json!({"query": "investor"}))
        .await
        .unwrap();

    assert_eq!(ids(&found), vec!["sp1", "sp3"]);
    let seen = rig.fake.last();
    assert_eq!(seen.path, format!("{BASE}/speeches/search"));
    assert_eq!(seen.query_value("query").as_deref(), Some("investor"));
    rig.stop().await;
}

#[tokio::test]
async fn update_speech_patches_only_the_given_fields() {
    let rig = rig().await;

    let data = rig
        .invoke(
            "otter.update_speech",
            json!({"id": "sp1", "title": "Q3 investor update"}),
        )
        .await
        .unwrap();

    assert_eq!(data["speech"]["title"], "Q3 investor update");
    let seen = rig.fake.last();
    assert_eq!(seen.method, "PATCH");
    assert_eq!(seen.json(), json!({"title": "Q3 investor update"}));
    rig.stop().await;
}

#[tokio::test]
async fn update_speech_with_nothing_to_change_is_refused() {
    let rig = rig().await;

    let err = rig
        .invoke("otter.update_speech", json!({"id": "sp1"}))
        .await
        .unwrap_err();

    assert_eq!(violated_fields(&err), vec!["params.title"]);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn delete_speech_sends_delete() {
    let rig = rig().await;

    let data = rig
        .invoke("otter.delete_speech", json!({"id": "sp3"}))
        .await
        .unwrap();

    assert_eq!(data, json!({"deleted": true, "id": "sp3"}));
    let seen = rig.fake.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.clone()),
        ("DELETE", format!("{BASE}/speeches/sp3"))
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_viewer_may_read_but_not_delete() {
    let rig = rig().await;

    let read = rig
        .invoke_as(
            Role::Viewer,
            &rig.integration,
            "otter.get_speech",
            json!({"id": "sp1"}),
            "",
        )
        .await;
    let delete = rig
        .invoke_as(
            Role::Viewer,
            &rig.integration,
            "otter.delete_speech",
            json!({"id": "sp1"}),
            "",
        )
        .await
        .unwrap_err();

    assert!(read.is_ok(), "{read:?}");
    assert_eq!(delete.code(), tonic::Code::PermissionDenied);
    assert_eq!(rig.fake.count(), 1, "the delete never left");
    rig.stop().await;
}

//! Granola: the public notes API with cursor paging, and the product spec's metric operations.

use founderhouse_integrations::domain::{Platform, Role};
use serde_json::{Value, json};
use tonic::Code;

use super::fakes::granola::{self, KEY};
use super::{Rig, Setup};
use crate::helpers::reason;

async fn rig() -> Rig {
    Rig::start(
        granola::start().await,
        Setup {
            platform: Platform::Granola,
            base_path: Some(""),
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
        .map(|n| n["id"].as_str().expect("an id"))
        .collect()
}

#[tokio::test]
async fn the_connection_test_lists_one_note() {
    let rig = rig().await;

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(t.healthy, "{t:?}");
    let seen = rig.fake.last();
    assert_eq!(seen.path, "/v1/notes");
    assert_eq!(seen.query_value("page_size").as_deref(), Some("1"));
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    rig.stop().await;
}

#[tokio::test]
async fn list_notes_pages_with_granolas_cursor() {
    let rig = rig().await;

    let (first, token) = rig
        .invoke_page("granola.list_notes", json!({"page_size": 2}), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("granola.list_notes", json!({"page_size": 2}), &token)
        .await
        .unwrap();

    assert_eq!(ids(&first), vec!["not_1", "not_2"]);
    assert_eq!(ids(&second), vec!["not_3"]);
    assert_eq!(last, "");
    let seen = rig.fake.requests();
    assert_eq!(seen[0].query_value("cursor"), None);
    assert_eq!(seen[1].query_value("cursor").as_deref(), Some("cur_2"));
    assert_eq!(seen[1].query_value("page_size").as_deref(), Some("2"));
    rig.stop().await;
}

#[tokio::test]
async fn list_notes_passes_date_filters() {
    let rig = rig().await;

    rig.invoke(
        "granola.list_notes",
        json!({"created_after": "2024-05-01", "updated_after": "2024-05-02T00:00:00Z"}),
    )
    .await
    .unwrap();

    let seen = rig.fake.last();
    assert_eq!(
        seen.query_value("created_after").as_deref(),
        Some("2024-05-01")
    );
    assert_eq!(
        seen.query_value("updated_after").as_deref(),
        Some("2024-05-02T00:00:00Z")
    );
    assert_eq!(seen.query_value("page_size").as_deref(), Some("10"));
    rig.stop().await;
}

#[tokio::test]
async fn get_note_includes_the_transcript_when_asked() {
    let rig = rig().await;

    let plain = rig
        .invoke("granola.get_note", json!({"id": "not_1"}))
        .await
        .unwrap();
    let full = rig
        .invoke(
            "granola.get_note",
            json!({"id": "not_1", "include_transcript": true}),
        )
        .await
        .unwrap();

    assert_eq!(plain["title"], "Board");
    assert!(plain.get("transcript").is_none());
    assert_eq!(full["transcript"][0]["text"], "Welcome");
    assert_eq!(
        rig.fake.last().query_value("include").as_deref(),
        Some("transcript")
    );
    rig.stop().await;
}

#[tokio::test]
async fn an_unknown_note_is_a_rejection() {
    let rig = rig().await;

    let err = rig
        .invoke("granola.get_note", json!({"id": "not_9"}))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "PROVIDER_REJECTED");
    assert!(err.message().contains("Note not found"));
    rig.stop().await;
}

#[tokio::test]
async fn list_metrics_pages_by_offset() {
    let rig = rig().await;

    let (first, token) = rig
        .invoke_page("granola.list_metrics", json!({"limit": 2}), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("granola.list_metrics", json!({"limit": 2}), &token)
        .await
        .unwrap();

    assert_eq!(ids(&first), vec!["m1", "m2"]);
    assert_eq!(ids(&second), vec!["m3"]);
    assert_eq!(last, "");
    assert_eq!(rig.fake.last().query_value("offset").as_deref(), Some("2"));
    rig.stop().await;
}

#[tokio::test]
async fn the_metric_reads_reach_the_spec_paths() {
    let rig = rig().await;

    let metric = rig
        .invoke(
            "granola.get_metric",
            json!({"id": "m1", "start_date": "2024-01-01", "end_date": "2024-03-31"}),
        )
        .await
        .unwrap();
    let dashboard = rig
        .invoke("granola.get_dashboard_metrics", json!({}))
        .await
        .unwrap();
    let kpis = rig
        .invoke("granola.get_kpis", json!({"category": "sales"}))
        .await
        .unwrap();
    let insights = rig
        .invoke("granola.get_insights", json!({"limit": 3}))
        .await
        .unwrap();
    let trends = rig
        .invoke(
            "granola.get_trends",
            json!({"metric_id": "m2", "period": "month"}),
        )
        .await
        .unwrap();

    assert_eq!(
        metric["range"],
        json!({"start": "2024-01-01", "end": "2024-03-31"})
    );
    assert_eq!(dashboard["dashboard"], "default");
    assert_eq!(kpis["category"], "sales");
    assert_eq!(insights["limit"], "3");
    assert_eq!(
        trends,
        json!({"metric_id": "m2", "period": "month", "points": [1, 2, 3]})
    );
    let paths: Vec<String> = rig.fake.requests().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        vec![
            "/v1/metrics/m1",
            "/v1/dashboards/default/metrics",
            "/v1/kpis",
            "/v1/insights",
            "/v1/metrics/m2/trends",
        ]
    );
    rig.stop().await;
}

#[tokio::test]
async fn create_metric_posts_its_definition() {
    let rig = rig().await;

    let data = rig
        .invoke(
            "granola.create_metric",
            json!({"name": "Calls per week", "definition": {"source": "meetings", "agg": "count"}}),
        )
        .await
        .unwrap();

    assert_eq!(data["id"], "m9");
    let seen = rig.fake.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/v1/metrics")
    );
    assert_eq!(
        seen.json(),
        json!({"name": "Calls per week", "definition": {"source": "meetings", "agg": "count"}})
    );
    rig.stop().await;
}

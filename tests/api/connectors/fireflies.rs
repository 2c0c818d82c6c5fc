//! Fireflies: every operation against the fake, GraphQL values only in variables, offset paging,
//! and GraphQL errors in a 200.

use founderhouse_integrations::config::Config;
use founderhouse_integrations::domain::Platform;
use serde_json::{Value, json};
use tonic::Code;

use super::fakes::fireflies::{self, KEY, PATH};
use super::{Rig, Setup};
use crate::helpers::{reason, violated_fields};

pub async fn rig() -> Rig {
    rig_with(|_| {}).await
}

pub async fn rig_with(tweak: impl FnOnce(&mut Config)) -> Rig {
    Rig::start_with(
        fireflies::start().await,
        Setup {
            platform: Platform::Fireflies,
            base_path: Some(PATH),
            credentials: vec![("api_key", KEY.to_owned())],
        },
        tweak,
    )
    .await
}

fn ids(data: &Value) -> Vec<&str> {
    data["items"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t["id"].as_str().expect("an id"))
        .collect()
}

#[tokio::test]
async fn list_transcripts_pages_through_every_transcript_with_an_opaque_token() {
    let rig = rig().await;

    let (first, token) = rig
        .invoke_page("fireflies.list_transcripts", json!({"limit": 2}), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("fireflies.list_transcripts", json!({"limit": 2}), &token)
        .await
        .unwrap();

    assert_eq!(ids(&first), vec!["t1", "t2"]);
    assert_eq!(ids(&second), vec!["t3"]);
    assert!(!token.is_empty());
    assert_eq!(last, "");
    let seen = rig.fake.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, PATH);
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(seen[0].json()["variables"]["limit"], 2);
    assert_eq!(seen[0].json()["variables"]["skip"], 0);
    assert_eq!(seen[1].json()["variables"]["skip"], 2);
    rig.stop().await;
}

#[tokio::test]
async fn list_transcripts_sends_dates_as_fireflies_datetimes() {
    let rig = rig().await;

    rig.invoke(
        "fireflies.list_transcripts",
        json!({"from_date": "2024-05-01", "to_date": "2024-05-31T23:59:59Z"}),
    )
    .await
    .unwrap();

    let vars = rig.fake.last().json()["variables"].clone();
    assert_eq!(vars["fromDate"], "2024-05-01T00:00:00.000Z");
    assert_eq!(vars["toDate"], "2024-05-31T23:59:59Z");
    assert_eq!(vars["limit"], 20);
    rig.stop().await;
}

#[tokio::test]
async fn get_transcript_returns_sentences_and_summary() {
    let rig = rig().await;

    let t = rig
        .invoke("fireflies.get_transcript", json!({"id": "t2"}))
        .await
        .unwrap();

    assert_eq!(t["id"], "t2");
    assert_eq!(t["title"], "Customer call: Acme");
    assert_eq!(t["sentences"][0]["speaker_name"], "Ada");
    let sent = rig.fake.last().json();
    assert_eq!(sent["variables"], json!({"id": "t2"}));
    assert!(sent["query"].as_str().unwrap().contains("sentences"));
    rig.stop().await;
}

#[tokio::test]
async fn get_summary_returns_the_summary() {
    let rig = rig().await;

    let t = rig
        .invoke("fireflies.get_summary", json!({"id": "t1"}))
        .await
        .unwrap();

    assert_eq!(t["summary"]["overview"], "Runway is 18 months");
    assert_eq!(t["summary"]["action_items"], "Hire a CFO");
    rig.stop().await;
}

#[tokio::test]
async fn search_transcripts_finds_by_keyword_and_pages() {
    let rig = rig().await;

    let (found, next) = rig
        .invoke_page(
            "fireflies.search_transcripts",
            json!({"query": "acme", "limit": 5}),
            "",
        )
        .await
        .unwrap();

    assert_eq!(ids(&found), vec!["t2"]);
    assert_eq!(next, "");
    assert_eq!(rig.fake.last().json()["variables"]["keyword"], "acme");
    rig.stop().await;
}

#[tokio::test]
async fn graphql_injection_attempts_arrive_as_plain_variable_values() {
    let rig = rig().await;
    let attacks = [
        r#"") { id } } mutation { deleteTranscript(id: "t1") { id } } #"#,
        r#"\" } { __schema { types { name } } }"#,
        "acme\") { user { email } } #",
    ];

    for attack in attacks {
        rig.invoke("fireflies.search_transcripts", json!({"query": attack}))
            .await
            .unwrap();
        rig.invoke("fireflies.get_summary", json!({"id": "t1"}))
            .await
            .unwrap();
    }

    let searches: Vec<_> = rig
        .fake
        .requests()
        .into_iter()
        .filter(|s| s.json()["query"].as_str().unwrap().contains("$keyword"))
        .collect();
    assert_eq!(searches.len(), attacks.len());
    let query_text = searches[0].json()["query"].clone();
    for (seen, attack) in searches.iter().zip(attacks) {
        assert_eq!(seen.json()["variables"]["keyword"], attack);
        assert_eq!(
            seen.json()["query"],
            query_text,
            "the document never changes"
        );
        assert!(!seen.json()["query"].as_str().unwrap().contains(attack));
    }
    rig.stop().await;
}

#[tokio::test]
async fn graphql_query_passes_the_document_and_variables_through() {
    let rig = rig().await;
    let document = "query Users($limit: Int) { users(limit: $limit) { user_id name } }";

    let data = rig
        .invoke(
            "fireflies.graphql_query",
            json!({"query": document, "variables": {"limit": 3}}),
        )
        .await
        .unwrap();

    assert_eq!(data["echo"]["query"], document);
    assert_eq!(data["echo"]["variables"], json!({"limit": 3}));
    rig.stop().await;
}

#[tokio::test]
async fn a_graphql_error_in_a_200_is_an_error_with_the_provider_code() {
    let rig = rig().await;

    let err = rig
        .invoke("fireflies.get_transcript", json!({"id": "missing"}))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "PROVIDER_REJECTED");
    assert_eq!(
        crate::connectors::core::metadata(&err, "provider_code").as_deref(),
        Some("object_not_found")
    );
    assert!(
        err.message().contains("Transcript not found"),
        "{}",
        err.message()
    );
    rig.stop().await;
}

#[tokio::test]
async fn params_are_checked_before_any_request_leaves() {
    let rig = rig().await;

    let err = rig
        .invoke(
            "fireflies.list_transcripts",
            json!({"limit": 500, "bogus": 1, "from_date": "yesterday"}),
        )
        .await
        .unwrap_err();
    let missing = rig
        .invoke("fireflies.get_transcript", json!({}))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        vec!["params.bogus", "params.limit", "params.from_date"]
    );
    assert_eq!(violated_fields(&missing), vec!["params.id"]);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

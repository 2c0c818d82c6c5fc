//! ZeroDB: every operation against the fake, the host taken from the credential.

use founderhouse_integrations::domain::{Platform, Role};
use serde_json::json;
use tonic::Code;

use super::fakes::zerodb::{self, KEY};
use super::{Rig, Setup};
use crate::helpers::{reason, violated_fields};

async fn rig() -> Rig {
    let fake = zerodb::start().await;
    let base = fake.url("/v1");
    Rig::start(
        fake,
        Setup {
            platform: Platform::Zerodb,
            base_path: None,
            credentials: vec![("api_key", KEY.to_owned()), ("base_url", base)],
        },
    )
    .await
}

fn bearer() -> String {
    format!("Bearer {KEY}")
}

#[tokio::test]
async fn the_connection_test_is_an_authenticated_request_to_the_credentials_host() {
    let rig = rig().await;

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(t.healthy, "{t:?}");
    let seen = rig.fake.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("GET", "/v1/collections")
    );
    assert_eq!(seen.header("authorization"), Some(bearer().as_str()));
    rig.stop().await;
}

#[tokio::test]
async fn store_embeddings_posts_the_vectors_with_their_metadata() {
    let rig = rig().await;
    let params = json!({"collection": "docs", "vectors": [
        {"id": "v1", "vector": [0.1, 0.2, 0.3], "metadata": {"source": "notes"}, "document": "hello"},
        {"id": "v2", "vector": [0.3, 0.2, 0.1]},
    ]});

    let data = rig.invoke("zerodb.store_embeddings", params).await.unwrap();

    assert_eq!(data, json!({"collection": "docs", "stored": 2}));
    let seen = rig.fake.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/v1/embeddings")
    );
    assert_eq!(seen.header("authorization"), Some(bearer().as_str()));
    let body = seen.json();
    assert_eq!(body["collection"], "docs");
    assert_eq!(body["vectors"][0]["vector"], json!([0.1, 0.2, 0.3]));
    assert_eq!(body["vectors"][0]["metadata"], json!({"source": "notes"}));
    assert_eq!(body["vectors"][1]["metadata"], json!({}));
    rig.stop().await;
}

#[tokio::test]
async fn vectors_of_different_dimensions_are_refused_naming_the_vector() {
    let rig = rig().await;
    let params = json!({"collection": "docs", "vectors": [
        {"id": "v1", "vector": [0.1, 0.2, 0.3]},
        {"id": "v2", "vector": [0.1]},
    ]});

    let err = rig
        .invoke("zerodb.store_embeddings", params)
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), vec!["params.vectors[1].vector"]);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn search_vectors_returns_the_nearest_as_items() {
    let rig = rig().await;

    let data = rig
        .invoke(
            "zerodb.search_vectors",
            json!({"collection": "docs", "vector": [0.1, 0.2, 0.3], "top_k": 1, "filter": {"source": "notes"}}),
        )
        .await
        .unwrap();

    assert_eq!(
        data["items"],
        json!([{"id": "v1", "score": 0.99, "metadata": {"source": "notes"}}])
    );
    let body = rig.fake.last().json();
    assert_eq!(rig.fake.last().path, "/v1/search");
    assert_eq!(body["top_k"], 1);
    assert_eq!(body["filter"], json!({"source": "notes"}));
    assert_eq!(body["include_vectors"], false);
    rig.stop().await;
}

#[tokio::test]
async fn get_embedding_names_its_collection_in_the_query() {
    let rig = rig().await;

    let data = rig
        .invoke(
            "zerodb.get_embedding",
            json!({"collection": "docs", "id": "v1"}),
        )
        .await
        .unwrap();

    assert_eq!(data["id"], "v1");
    assert_eq!(data["collection"], "docs");
    let seen = rig.fake.last();
    assert_eq!(seen.path, "/v1/embeddings/v1");
    assert_eq!(seen.query_value("collection").as_deref(), Some("docs"));
    rig.stop().await;
}

#[tokio::test]
async fn a_missing_embedding_is_a_rejection_with_zerodbs_code() {
    let rig = rig().await;

    let err = rig
        .invoke(
            "zerodb.get_embedding",
            json!({"collection": "docs", "id": "missing"}),
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "PROVIDER_REJECTED");
    assert_eq!(
        super::core::metadata(&err, "provider_code").as_deref(),
        Some("not_found")
    );
    assert_eq!(
        super::core::metadata(&err, "provider_status").as_deref(),
        Some("404")
    );
    rig.stop().await;
}

#[tokio::test]
async fn delete_embedding_sends_delete_and_reports_it() {
    let rig = rig().await;

    let data = rig
        .invoke(
            "zerodb.delete_embedding",
            json!({"collection": "docs", "id": "v2"}),
        )
        .await
        .unwrap();

    assert_eq!(data, json!({"deleted": true, "id": "v2"}));
    let seen = rig.fake.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("DELETE", "/v1/embeddings/v2")
    );
    assert_eq!(seen.query_value("collection").as_deref(), Some("docs"));
    rig.stop().await;
}

#[tokio::test]
async fn list_collections_returns_them_as_items() {
    let rig = rig().await;

    let data = rig
        .invoke("zerodb.list_collections", json!({}))
        .await
        .unwrap();

    assert_eq!(
        data["items"],
        json!([{"name": "docs", "dimension": 3}, {"name": "faq", "dimension": 3}])
    );
    rig.stop().await;
}

#[tokio::test]
async fn create_collection_defaults_to_1536_dimensions() {
    let rig = rig().await;

    let data = rig
        .invoke("zerodb.create_collection", json!({"name": "calls"}))
        .await
        .unwrap();

    assert_eq!(
        data,
        json!({"name": "calls", "dimension": 1536, "created": true})
    );
    assert_eq!(
        rig.fake.last().json(),
        json!({"name": "calls", "dimension": 1536, "metadata": {}})
    );
    rig.stop().await;
}

#[tokio::test]
async fn creating_an_existing_collection_is_a_rejection_with_the_providers_message() {
    let rig = rig().await;

    let err = rig
        .invoke(
            "zerodb.create_collection",
            json!({"name": "docs", "dimension": 3}),
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        super::core::metadata(&err, "provider_code").as_deref(),
        Some("collection_exists")
    );
    assert!(err.message().contains("collection docs already exists"));
    assert_eq!(rig.fake.count(), 1, "a create is not retried");
    rig.stop().await;
}

#[tokio::test]
async fn get_collection_stats_reads_the_collections_stats() {
    let rig = rig().await;

    let data = rig
        .invoke("zerodb.get_collection_stats", json!({"collection": "faq"}))
        .await
        .unwrap();

    assert_eq!(data["vector_count"], 2);
    assert_eq!(rig.fake.last().path, "/v1/collections/faq/stats");
    rig.stop().await;
}

#[tokio::test]
async fn a_zerodb_base_url_on_a_private_network_is_refused_unless_allowed() {
    let fake = zerodb::start().await;
    let base = fake.url("/v1");
    let rig = Rig::start_with(
        fake,
        Setup {
            platform: Platform::Zerodb,
            base_path: None,
            credentials: vec![("api_key", KEY.to_owned()), ("base_url", base)],
        },
        |c| c.connectors.allow_private_hosts = false,
    )
    .await;

    let err = rig
        .invoke("zerodb.list_collections", json!({}))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "BASE_URL_NOT_ALLOWED");
    assert!(
        rig.fake.requests().is_empty(),
        "nothing reached the private host"
    );
    rig.stop().await;
}

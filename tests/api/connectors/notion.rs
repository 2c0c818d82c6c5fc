//! Notion: every operation against the fake over gRPC with the Bearer token and the pinned
//! Notion-Version, `next_cursor`/`has_more` paging through opaque tokens (in the query of GETs
//! and the body of POSTs), Notion's error JSON, 429 with Retry-After, and the connection test.

use std::time::{Duration, Instant};

use founderhouse_integrations::domain::{Platform, Role};
use founderhouse_integrations::proto::HealthState;
use serde_json::{Value, json};
use tonic::Code;

use super::core::metadata;
use super::fake::Scripted;
use super::fakes::notion::{self, BASE, DATABASE, PAGE, TOKEN, UNKNOWN, VERSION};
use super::{Rig, Setup};
use crate::helpers::{reason, violated_fields};

async fn rig() -> Rig {
    Rig::start(
        notion::start().await,
        Setup {
            platform: Platform::Notion,
            base_path: Some(BASE),
            credentials: vec![("access_token", TOKEN.to_owned())],
        },
    )
    .await
}

fn path(rest: &str) -> String {
    format!("{BASE}{rest}")
}

fn ids(data: &Value) -> Vec<&str> {
    data["items"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t["id"].as_str().expect("an id"))
        .collect()
}

const PAGE_2: &str = "7c4ae2f1-0a2b-4c3d-8e9f-101112131415";
const PAGE_3: &str = "8d5bf302-1b3c-4d4e-9fa0-161718191a1b";

#[tokio::test]
async fn search_pages_through_results_with_the_cursor_in_the_body() {
    let rig = rig().await;

    let (first, token) = rig
        .invoke_page("notion.search", json!({"page_size": 2}), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("notion.search", json!({"page_size": 2}), &token)
        .await
        .unwrap();

    assert_eq!(ids(&first), vec![PAGE, PAGE_2]);
    assert_eq!(ids(&second), vec![PAGE_3]);
    assert_ne!(token, PAGE_3, "the page token is ours");
    assert_eq!(last, "");
    let seen = rig.fake.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, path("/search"));
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(seen[0].header("notion-version"), Some(VERSION));
    assert_eq!(seen[0].json(), json!({"page_size": 2}));
    assert_eq!(
        seen[1].json(),
        json!({"page_size": 2, "start_cursor": PAGE_3})
    );
    rig.stop().await;
}

#[tokio::test]
async fn search_sends_the_query_the_object_filter_and_the_sort() {
    let rig = rig().await;

    let found = rig
        .invoke(
            "notion.search",
            json!({"query": "meetings", "object": "database", "sort_direction": "ascending"}),
        )
        .await
        .unwrap();

    assert_eq!(ids(&found), vec![DATABASE]);
    assert_eq!(
        rig.fake.last().json(),
        json!({
            "query": "meetings",
            "filter": {"property": "object", "value": "database"},
            "sort": {"direction": "ascending", "timestamp": "last_edited_time"},
            "page_size": 25,
        })
    );
    rig.stop().await;
}

#[tokio::test]
async fn get_page_returns_its_properties_and_an_unshared_page_is_notions_404() {
    let rig = rig().await;

    let page = rig
        .invoke("notion.get_page", json!({"page_id": PAGE}))
        .await
        .unwrap();
    let missing = rig
        .invoke("notion.get_page", json!({"page_id": UNKNOWN}))
        .await
        .unwrap_err();

    assert_eq!(
        page["properties"]["Name"]["title"][0]["plain_text"],
        "Board meeting notes"
    );
    assert_eq!(rig.fake.requests()[0].path, path(&format!("/pages/{PAGE}")));
    assert_eq!(missing.code(), Code::FailedPrecondition);
    assert_eq!(reason(&missing), "PROVIDER_REJECTED");
    assert_eq!(
        metadata(&missing, "provider_code").as_deref(),
        Some("object_not_found")
    );
    assert!(
        missing.message().contains("Could not find page"),
        "{}",
        missing.message()
    );
    rig.stop().await;
}

#[tokio::test]
async fn create_page_in_a_database_sends_the_title_properties_and_children() {
    let rig = rig().await;
    let paragraph = json!({"object": "block", "type": "paragraph",
        "paragraph": {"rich_text": [{"type": "text", "text": {"content": "Agenda"}}]}});

    let created = rig
        .invoke(
            "notion.create_page",
            json!({
                "parent_id": DATABASE,
                "title": "Q3 board meeting",
                "properties": {"Status": {"status": {"name": "Planned"}}},
                "children": [paragraph.clone()],
                "icon_emoji": "📈",
            }),
        )
        .await
        .unwrap();

    assert_eq!(created["id"], "a1a1a1a1-b2b2-4c3c-8d4d-e5e5e5e5e5e5");
    let seen = rig.fake.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, path("/pages"));
    assert_eq!(
        seen.json(),
        json!({
            "parent": {"database_id": DATABASE},
            "properties": {
                "Status": {"status": {"name": "Planned"}},
                "title": {"title": [{"type": "text", "text": {"content": "Q3 board meeting"}}]},
            },
            "children": [paragraph],
            "icon": {"type": "emoji", "emoji": "📈"},
        })
    );
    rig.stop().await;
}

#[tokio::test]
async fn create_page_under_a_page_takes_only_a_title() {
    let rig = rig().await;

    rig.invoke(
        "notion.create_page",
        json!({"parent_type": "page_id", "parent_id": PAGE, "title": "Minutes"}),
    )
    .await
    .unwrap();
    let with_properties = rig
        .invoke(
            "notion.create_page",
            json!({"parent_type": "page_id", "parent_id": PAGE, "title": "Minutes",
                   "properties": {"Status": {"status": {"name": "Planned"}}}}),
        )
        .await
        .unwrap_err();
    let title_twice = rig
        .invoke(
            "notion.create_page",
            json!({"parent_id": DATABASE, "title": "Minutes",
                   "properties": {"title": {"title": []}}}),
        )
        .await
        .unwrap_err();

    assert_eq!(
        rig.fake.last().json(),
        json!({"parent": {"page_id": PAGE},
               "properties": {"title": {"title": [{"type": "text", "text": {"content": "Minutes"}}]}}})
    );
    assert_eq!(violated_fields(&with_properties), vec!["params.properties"]);
    assert_eq!(violated_fields(&title_twice), vec!["params.properties"]);
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn update_page_patches_properties_and_archival_and_refuses_an_empty_update() {
    let rig = rig().await;

    let page = rig
        .invoke(
            "notion.update_page",
            json!({"page_id": PAGE, "properties": {"Status": {"status": {"name": "Done"}}}, "archived": true}),
        )
        .await
        .unwrap();
    let nothing = rig
        .invoke("notion.update_page", json!({"page_id": PAGE}))
        .await
        .unwrap_err();

    assert_eq!(page["archived"], true);
    assert_eq!(page["properties"]["Status"]["status"]["name"], "Done");
    let seen = rig.fake.last();
    assert_eq!(seen.method, "PATCH");
    assert_eq!(seen.path, path(&format!("/pages/{PAGE}")));
    assert_eq!(
        seen.json(),
        json!({"properties": {"Status": {"status": {"name": "Done"}}}, "archived": true})
    );
    assert_eq!(violated_fields(&nothing), vec!["params.properties"]);
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn query_database_sends_filter_and_sorts_and_pages_with_the_cursor_in_the_body() {
    let rig = rig().await;
    let params = json!({
        "database_id": DATABASE,
        "filter": {"property": "Status", "status": {"equals": "Planned"}},
        "sorts": [{"property": "Due", "direction": "ascending"}],
        "page_size": 2,
    });

    let (first, token) = rig
        .invoke_page("notion.query_database", params.clone(), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("notion.query_database", params, &token)
        .await
        .unwrap();

    assert_eq!(ids(&first), vec![PAGE, PAGE_2]);
    assert_eq!(ids(&second), vec![PAGE_3]);
    assert_eq!(last, "");
    let seen = rig.fake.requests();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, path(&format!("/databases/{DATABASE}/query")));
    assert_eq!(
        seen[0].json(),
        json!({
            "filter": {"property": "Status", "status": {"equals": "Planned"}},
            "sorts": [{"property": "Due", "direction": "ascending"}],
            "page_size": 2,
        })
    );
    assert_eq!(seen[1].json()["start_cursor"], PAGE_3);
    rig.stop().await;
}

#[tokio::test]
async fn a_notion_validation_error_is_an_invalid_argument_with_its_code() {
    let rig = rig().await;

    let err = rig
        .invoke(
            "notion.query_database",
            json!({"database_id": DATABASE, "filter": {"status": {"equals": "x"}}}),
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "PROVIDER_REJECTED");
    assert_eq!(
        metadata(&err, "provider_code").as_deref(),
        Some("validation_error")
    );
    assert!(
        err.message()
            .contains("body.filter.property should be defined"),
        "{}",
        err.message()
    );
    rig.stop().await;
}

#[tokio::test]
async fn get_database_returns_its_property_schema() {
    let rig = rig().await;

    let db = rig
        .invoke("notion.get_database", json!({"database_id": DATABASE}))
        .await
        .unwrap();

    assert_eq!(db["properties"]["Status"]["type"], "status");
    assert_eq!(
        rig.fake.last().path,
        path(&format!("/databases/{DATABASE}"))
    );
    assert_eq!(rig.fake.last().method, "GET");
    rig.stop().await;
}

#[tokio::test]
async fn get_page_content_pages_through_blocks_with_the_cursor_in_the_query() {
    let rig = rig().await;

    let (first, token) = rig
        .invoke_page(
            "notion.get_page_content",
            json!({"block_id": PAGE, "page_size": 2}),
            "",
        )
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page(
            "notion.get_page_content",
            json!({"block_id": PAGE, "page_size": 2}),
            &token,
        )
        .await
        .unwrap();

    assert_eq!(first["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        first["items"][0]["paragraph"]["rich_text"][0]["plain_text"],
        "Runway is 18 months."
    );
    assert_eq!(ids(&second), vec!["b0000003-0000-4000-8000-000000000003"]);
    assert_eq!(last, "");
    let seen = rig.fake.requests();
    assert_eq!(seen[0].path, path(&format!("/blocks/{PAGE}/children")));
    assert_eq!(seen[0].query, "page_size=2");
    assert_eq!(
        seen[1].query,
        "page_size=2&start_cursor=b0000003-0000-4000-8000-000000000003"
    );
    rig.stop().await;
}

#[tokio::test]
async fn append_blocks_patches_the_children_after_a_block() {
    let rig = rig().await;
    let todo = json!({"object": "block", "type": "to_do",
        "to_do": {"rich_text": [{"type": "text", "text": {"content": "Send deck"}}], "checked": false}});

    let added = rig
        .invoke(
            "notion.append_blocks",
            json!({"block_id": PAGE, "children": [todo.clone()],
                   "after": "b0000001-0000-4000-8000-000000000001"}),
        )
        .await
        .unwrap();

    assert_eq!(added["results"][0]["type"], "to_do");
    let seen = rig.fake.last();
    assert_eq!(seen.method, "PATCH");
    assert_eq!(seen.path, path(&format!("/blocks/{PAGE}/children")));
    assert_eq!(
        seen.json(),
        json!({"children": [todo], "after": "b0000001-0000-4000-8000-000000000001"})
    );
    rig.stop().await;
}

#[tokio::test]
async fn list_users_pages_through_people_and_bots() {
    let rig = rig().await;

    let (first, token) = rig
        .invoke_page("notion.list_users", json!({"page_size": 2}), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("notion.list_users", json!({"page_size": 2}), &token)
        .await
        .unwrap();

    assert_eq!(first["items"][0]["name"], "Ada");
    assert_eq!(first["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(second["items"][0]["type"], "bot");
    assert_eq!(last, "");
    let seen = rig.fake.requests();
    assert_eq!(seen[0].path, path("/users"));
    assert_eq!(
        seen[1].query_value("start_cursor").as_deref(),
        Some("16d84278-ab0e-484c-9bdd-b35da3bd8905")
    );
    assert!(
        seen.iter()
            .all(|s| s.header("notion-version") == Some(VERSION))
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_429_rate_limited_with_retry_after_is_retried_after_the_wait() {
    let rig = rig().await;
    rig.fake.then(
        Scripted::status(
            429,
            r#"{"object": "error", "status": 429, "code": "rate_limited", "message": "You have been rated limited. Please try again in a few minutes."}"#,
        )
        .header("retry-after", "1"),
    );
    let started = Instant::now();

    let db = rig
        .invoke("notion.get_database", json!({"database_id": DATABASE}))
        .await
        .unwrap();

    assert_eq!(db["id"], DATABASE);
    assert_eq!(rig.fake.count(), 2);
    assert!(started.elapsed() >= Duration::from_secs(1));
    rig.stop().await;
}

#[tokio::test]
async fn test_integration_is_healthy_with_a_working_token_and_needs_reauth_after_a_401() {
    let rig = rig().await;

    let healthy = rig.test_as(Role::Member).await.unwrap();
    let probe = rig.fake.last();
    rig.fake.then(Scripted::status(
        401,
        r#"{"object": "error", "status": 401, "code": "unauthorized", "message": "API token is invalid."}"#,
    ));
    let failing = rig.test_as(Role::Admin).await.unwrap();

    assert!(healthy.healthy);
    assert_eq!(healthy.state, HealthState::Healthy as i32);
    assert_eq!(healthy.message, "Notion accepted the credentials");
    assert_eq!(probe.path, path("/users/me"));
    assert_eq!(probe.header("notion-version"), Some(VERSION));
    assert!(!failing.healthy);
    assert_eq!(failing.state, HealthState::NeedsReauth as i32);
    assert_eq!(failing.reason, "NEEDS_REAUTH");
    assert_eq!(rig.fake.count(), 2);
    rig.stop().await;
}

#[tokio::test]
async fn params_are_checked_before_any_request_leaves() {
    let rig = rig().await;

    let err = rig
        .invoke(
            "notion.append_blocks",
            json!({"block_id": "../../users", "children": [], "extra": 1}),
        )
        .await
        .unwrap_err();
    let bad = rig
        .invoke(
            "notion.query_database",
            json!({"database_id": DATABASE, "page_size": 101, "sorts": ["Due"]}),
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        vec!["params.extra", "params.block_id", "params.children"]
    );
    assert_eq!(
        violated_fields(&bad),
        vec!["params.sorts[0]", "params.page_size"]
    );
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

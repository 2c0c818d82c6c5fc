//! Monday.com: every operation against the fake over gRPC, the raw token and the pinned
//! API-Version on every request, values only in GraphQL variables, items paged from
//! `items_page` to `next_items_page`, and Monday's error shapes (`errors[]` and the
//! `error_code` envelope in a 200, 429 with Retry-After).

use std::time::{Duration, Instant};

use founderhouse_integrations::domain::{Platform, Role};
use founderhouse_integrations::proto::HealthState;
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

use super::core::metadata;
use super::fake::{Scripted, Seen};
use super::fakes::monday::{self, PATH, SECOND_PAGE, TOKEN};
use super::seeded::Seed;
use super::{Rig, Setup};
use crate::helpers::{reason, violated_fields};

/// The API version the connector pins (a constant in `connectors::monday`).
const API_VERSION: &str = "2026-07";

const INJECTION: &str = r#"") { id } } mutation { delete_board(board_id: 1) { id } } #"#;

async fn rig() -> Rig {
    Rig::start(
        monday::start().await,
        Setup {
            platform: Platform::Monday,
            base_path: Some(PATH),
            credentials: vec![("api_token", TOKEN.to_owned())],
        },
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

fn query_of(seen: &Seen) -> String {
    seen.json()["query"]
        .as_str()
        .expect("a document")
        .to_owned()
}

#[tokio::test]
async fn list_boards_pages_with_an_opaque_token_sending_the_raw_token_and_api_version() {
    let rig = rig().await;

    let (first, token) = rig
        .invoke_page("monday.list_boards", json!({"limit": 2}), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("monday.list_boards", json!({"limit": 2}), &token)
        .await
        .unwrap();

    assert_eq!(ids(&first), vec!["111", "222"]);
    assert_eq!(ids(&second), vec!["333"]);
    assert_eq!(first["items"][0]["columns"][1]["id"], "status");
    assert!(!token.is_empty());
    assert_eq!(last, "");
    let seen = rig.fake.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, PATH);
    assert_eq!(seen[0].header("authorization"), Some(TOKEN), "no Bearer");
    assert_eq!(seen[0].header("api-version"), Some(API_VERSION));
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(seen[0].json()["variables"], json!({"limit": 2, "page": 1}));
    assert_eq!(seen[1].json()["variables"], json!({"limit": 2, "page": 2}));
    assert!(!query_of(&seen[0]).contains("workspace_ids"));
    rig.stop().await;
}

#[tokio::test]
async fn list_boards_filters_by_workspace_through_a_variable() {
    let rig = rig().await;

    let data = rig
        .invoke("monday.list_boards", json!({"workspace_id": "6"}))
        .await
        .unwrap();

    assert_eq!(ids(&data), vec!["333"]);
    let sent = rig.fake.last().json();
    assert_eq!(sent["variables"]["workspaceIds"], json!(["6"]));
    assert!(
        sent["query"]
            .as_str()
            .unwrap()
            .contains("workspace_ids: $workspaceIds")
    );
    rig.stop().await;
}

#[tokio::test]
async fn get_board_returns_its_columns_and_groups_and_an_unknown_board_is_not_found() {
    let rig = rig().await;

    let board = rig
        .invoke("monday.get_board", json!({"board_id": "111"}))
        .await
        .unwrap();
    let missing = rig
        .invoke("monday.get_board", json!({"board_id": "999"}))
        .await
        .unwrap_err();

    assert_eq!(board["name"], "Fundraising");
    assert_eq!(board["groups"][0]["id"], "topics");
    assert_eq!(
        rig.fake.requests()[0].json()["variables"],
        json!({"ids": ["111"]})
    );
    assert_eq!(missing.code(), Code::FailedPrecondition);
    assert_eq!(reason(&missing), "PROVIDER_REJECTED");
    assert_eq!(
        metadata(&missing, "provider_status").as_deref(),
        Some("404")
    );
    rig.stop().await;
}

#[tokio::test]
async fn list_items_pages_from_items_page_to_next_items_page_with_mondays_cursor() {
    let rig = rig().await;

    let (first, token) = rig
        .invoke_page(
            "monday.list_items",
            json!({"board_id": "111", "limit": 2}),
            "",
        )
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page(
            "monday.list_items",
            json!({"board_id": "111", "limit": 2}),
            &token,
        )
        .await
        .unwrap();

    assert_eq!(ids(&first), vec!["1001", "1002"]);
    assert_eq!(
        first["items"][0]["column_values"][0]["text"],
        "Working on it"
    );
    assert_eq!(ids(&second), vec!["1003"]);
    assert_eq!(last, "");
    assert_ne!(
        token, SECOND_PAGE,
        "the page token is ours, not Monday's cursor"
    );
    let seen = rig.fake.requests();
    let (q1, q2) = (query_of(&seen[0]), query_of(&seen[1]));
    assert!(q1.contains("items_page(limit: $limit)"), "{q1}");
    assert!(q1.contains("column_values { id text value type }"), "{q1}");
    let columns = q1.split("column_values {").nth(1).unwrap_or_default();
    let columns = columns.split('}').next().unwrap_or_default();
    assert!(
        !columns.contains("title"),
        "column_values has no title: {q1}"
    );
    assert!(!q1.contains(" items(") && !q1.contains("{ items {"), "{q1}");
    assert_eq!(
        seen[0].json()["variables"],
        json!({"boardIds": ["111"], "limit": 2})
    );
    assert!(
        q2.contains("next_items_page(cursor: $cursor, limit: $limit)"),
        "{q2}"
    );
    assert_eq!(
        seen[1].json()["variables"],
        json!({"cursor": SECOND_PAGE, "limit": 2})
    );
    rig.stop().await;
}

#[tokio::test]
async fn create_item_sends_every_value_as_a_variable_and_column_values_as_a_json_string() {
    let rig = rig().await;

    let item = rig
        .invoke(
            "monday.create_item",
            json!({
                "board_id": "111",
                "item_name": "Benchmark",
                "group_id": "topics",
                "column_values": {"status": {"label": "Done"}, "text": "hello \"world\""},
                "create_labels_if_missing": true,
            }),
        )
        .await
        .unwrap();

    assert_eq!(
        item,
        json!({"id": "9001", "name": "Benchmark", "board": {"id": "111"}, "group": {"id": "topics"}})
    );
    let sent = rig.fake.last().json();
    let vars = &sent["variables"];
    assert_eq!(vars["boardId"], "111");
    assert_eq!(vars["itemName"], "Benchmark");
    assert_eq!(vars["groupId"], "topics");
    assert_eq!(vars["createLabels"], true);
    let columns: Value =
        serde_json::from_str(vars["columnValues"].as_str().expect("a JSON string")).unwrap();
    assert_eq!(
        columns,
        json!({"status": {"label": "Done"}, "text": "hello \"world\""})
    );
    let query = sent["query"].as_str().unwrap();
    assert!(query.starts_with("mutation CreateItem($boardId: ID!, $itemName: String!"));
    assert!(!query.contains("Benchmark") && !query.contains("111"));
    rig.stop().await;
}

#[tokio::test]
async fn update_item_sends_the_board_id_with_change_multiple_column_values() {
    let rig = rig().await;

    let item = rig
        .invoke(
            "monday.update_item",
            json!({"board_id": "111", "item_id": "1001", "column_values": {"status": {"index": 1}}}),
        )
        .await
        .unwrap();

    assert_eq!(item["id"], "1001");
    assert_eq!(item["column_values"][0]["text"], "Done");
    let sent = rig.fake.last().json();
    assert_eq!(
        sent["variables"],
        json!({"boardId": "111", "itemId": "1001", "columnValues": "{\"status\":{\"index\":1}}"})
    );
    assert!(
        sent["query"]
            .as_str()
            .unwrap()
            .contains("change_multiple_column_values(board_id: $boardId, item_id: $itemId, column_values: $columnValues")
    );
    rig.stop().await;
}

#[tokio::test]
async fn update_item_without_a_board_or_with_board_zero_or_nothing_to_change_is_refused() {
    let rig = rig().await;

    let no_board = rig
        .invoke(
            "monday.update_item",
            json!({"item_id": "1001", "column_values": {"status": {"index": 1}}}),
        )
        .await
        .unwrap_err();
    let board_zero = rig
        .invoke(
            "monday.update_item",
            json!({"board_id": "0", "item_id": "1001", "column_values": {"a": 1}}),
        )
        .await
        .unwrap_err();
    let nothing = rig
        .invoke(
            "monday.update_item",
            json!({"board_id": "111", "item_id": "1001", "column_values": {}}),
        )
        .await
        .unwrap_err();

    assert_eq!(no_board.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&no_board), vec!["params.board_id"]);
    assert_eq!(violated_fields(&board_zero), vec!["params.board_id"]);
    assert_eq!(violated_fields(&nothing), vec!["params.column_values"]);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn create_update_posts_the_body_as_a_variable_and_a_graphql_error_is_a_rejection() {
    let rig = rig().await;

    let update = rig
        .invoke(
            "monday.create_update",
            json!({"item_id": "1001", "body": "Term sheet <b>signed</b>"}),
        )
        .await
        .unwrap();
    let missing = rig
        .invoke(
            "monday.create_update",
            json!({"item_id": "404", "body": "hello"}),
        )
        .await
        .unwrap_err();

    assert_eq!(update["id"], "77");
    assert_eq!(update["body"], "Term sheet <b>signed</b>");
    assert_eq!(
        rig.fake.requests()[0].json()["variables"],
        json!({"itemId": "1001", "body": "Term sheet <b>signed</b>"})
    );
    assert_eq!(missing.code(), Code::FailedPrecondition);
    assert_eq!(reason(&missing), "PROVIDER_REJECTED");
    assert_eq!(
        metadata(&missing, "provider_code").as_deref(),
        Some("ResourceNotFoundException")
    );
    assert!(
        missing.message().contains("Item not found"),
        "{}",
        missing.message()
    );
    assert_eq!(rig.fake.count(), 2, "a mutation is sent once");
    rig.stop().await;
}

#[tokio::test]
async fn list_workspaces_lists_the_workspaces() {
    let rig = rig().await;

    let (data, next) = rig
        .invoke_page("monday.list_workspaces", json!({}), "")
        .await
        .unwrap();

    assert_eq!(ids(&data), vec!["5", "6"]);
    assert_eq!(data["items"][1]["name"], "Product");
    assert_eq!(next, "", "a short page is the last");
    assert_eq!(
        rig.fake.last().json()["variables"],
        json!({"limit": 25, "page": 1})
    );
    rig.stop().await;
}

#[tokio::test]
async fn graphql_query_passes_the_document_through_and_retries_only_a_query() {
    let rig = rig().await;
    let document = "query Tags($ids: [ID!]) { tags(ids: $ids) { id name } }";
    let mutation = "mutation Archive($id: ID!) { archive_board(board_id: $id) { id } }";

    rig.fake
        .then(Scripted::status(503, r#"{"error_message": "down"}"#));
    let data = rig
        .invoke(
            "monday.graphql_query",
            json!({"query": document, "variables": {"ids": ["1"]}}),
        )
        .await
        .unwrap();
    rig.fake
        .then(Scripted::status(503, r#"{"error_message": "down"}"#));
    let err = rig
        .invoke(
            "monday.graphql_query",
            json!({"query": mutation, "variables": {"id": "111"}}),
        )
        .await
        .unwrap_err();

    assert_eq!(data["echo"]["query"], document);
    assert_eq!(data["echo"]["variables"], json!({"ids": ["1"]}));
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(rig.fake.count(), 3, "the query twice, the mutation once");
    rig.stop().await;
}

#[tokio::test]
async fn graphql_injection_attempts_arrive_as_plain_variable_values() {
    let rig = rig().await;

    rig.invoke(
        "monday.create_item",
        json!({"board_id": "111", "item_name": INJECTION}),
    )
    .await
    .unwrap();
    rig.invoke(
        "monday.create_update",
        json!({"item_id": "1001", "body": INJECTION}),
    )
    .await
    .unwrap();
    rig.invoke(
        "monday.create_item",
        json!({"board_id": "111", "item_name": "plain"}),
    )
    .await
    .unwrap();
    let bad_group = rig
        .invoke(
            "monday.create_item",
            json!({"board_id": "111", "item_name": "x", "group_id": INJECTION}),
        )
        .await
        .unwrap_err();

    let seen = rig.fake.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].json()["variables"]["itemName"], INJECTION);
    assert_eq!(seen[1].json()["variables"]["body"], INJECTION);
    assert_eq!(
        query_of(&seen[0]),
        query_of(&seen[2]),
        "the document never changes with the value"
    );
    for s in &seen {
        assert!(!query_of(s).contains("delete_board"));
    }
    assert_eq!(violated_fields(&bad_group), vec!["params.group_id"]);
    rig.stop().await;
}

#[tokio::test]
async fn a_complexity_error_in_a_200_is_rate_limited_with_mondays_wait() {
    let rig = rig().await;
    rig.fake.then(Scripted::status(
        200,
        r#"{"error_code": "ComplexityException", "status_code": 429,
            "error_message": "Complexity budget exhausted, query cost 30001 budget remaining 19986 out of 1000000 reset in 7 seconds",
            "error_data": {},
            "errors": ["Complexity budget exhausted, query cost 30001 budget remaining 19986 out of 1000000 reset in 7 seconds"],
            "account_id": 1}"#,
    ));
    rig.fake.then(Scripted::status(
        200,
        r#"{"errors": [{"message": "Complexity budget exhausted", "extensions": {
            "code": "COMPLEXITY_BUDGET_EXHAUSTED", "complexity": 6182, "complexity_budget_left": 100,
            "complexity_budget_limit": 5000000, "retry_in_seconds": 42, "status_code": 429}}],
            "account_id": 1}"#,
    ));

    let legacy = rig
        .invoke("monday.list_workspaces", json!({}))
        .await
        .unwrap_err();
    let current = rig
        .invoke("monday.list_workspaces", json!({}))
        .await
        .unwrap_err();

    for (err, secs) in [(&legacy, 7), (&current, 42)] {
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(reason(err), "PROVIDER_RATE_LIMITED");
        let delay = err
            .get_details_retry_info()
            .and_then(|r| r.retry_delay)
            .expect("a retry delay");
        assert_eq!(delay, Duration::from_secs(secs));
    }
    assert_eq!(rig.fake.count(), 2, "nothing retried past the wait");
    rig.stop().await;
}

#[tokio::test]
async fn an_error_code_envelope_in_a_200_is_an_error() {
    let rig = rig().await;
    rig.fake.then(Scripted::status(
        200,
        r#"{"error_code": "InvalidColumnIdException", "status_code": 400,
            "error_message": "This column ID doesn't exist for the board", "error_data": {"column_id": "nope"}}"#,
    ));

    let err = rig
        .invoke(
            "monday.update_item",
            json!({"board_id": "111", "item_id": "1001", "column_values": {"nope": "x"}}),
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "PROVIDER_REJECTED");
    assert_eq!(
        metadata(&err, "provider_code").as_deref(),
        Some("InvalidColumnIdException")
    );
    assert!(err.message().contains("column ID"), "{}", err.message());
    rig.stop().await;
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_after_the_wait() {
    let rig = rig().await;
    rig.fake.then(
        Scripted::status(
            429,
            r#"{"error_message": "Rate Limit Exceeded", "status_code": 429}"#,
        )
        .header("retry-after", "1"),
    );
    let started = Instant::now();

    let data = rig
        .invoke("monday.list_workspaces", json!({}))
        .await
        .unwrap();

    assert_eq!(ids(&data), vec!["5", "6"]);
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
        r#"{"error_message": "Not Authenticated", "status_code": 401}"#,
    ));
    let failing = rig.test_as(Role::Member).await.unwrap();

    assert!(healthy.healthy);
    assert_eq!(healthy.state, HealthState::Healthy as i32);
    assert_eq!(healthy.message, "Monday.com accepted the credentials");
    assert_eq!(probe.json()["query"], "query Me { me { id } }");
    assert_eq!(probe.header("authorization"), Some(TOKEN));
    assert!(!failing.healthy);
    assert_eq!(failing.state, HealthState::NeedsReauth as i32);
    assert_eq!(failing.reason, "NEEDS_REAUTH");
    assert_eq!(
        rig.fake.count(),
        2,
        "an API token is not retried after a 401"
    );
    rig.stop().await;
}

#[tokio::test]
async fn an_oauth_access_token_is_sent_raw_like_an_api_token() {
    let access = "monday-oauth-access-6f2e9a";
    let rig = Rig::start_seeded(
        monday::start().await,
        Seed {
            platform: Platform::Monday,
            base_path: PATH,
            tokens: &[("access_token", access)],
            expires_in: None,
        },
        |_| {},
    )
    .await;

    let data = rig
        .invoke("monday.list_workspaces", json!({}))
        .await
        .unwrap();

    assert_eq!(ids(&data), vec!["5", "6"]);
    assert_eq!(rig.fake.last().header("authorization"), Some(access));
    rig.stop().await;
}

#[tokio::test]
async fn params_are_checked_before_any_request_leaves() {
    let rig = rig().await;

    let err = rig
        .invoke(
            "monday.list_items",
            json!({"board_id": "12/../3", "limit": 501, "bogus": true}),
        )
        .await
        .unwrap_err();
    let missing = rig
        .invoke("monday.create_item", json!({"board_id": "111"}))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        vec!["params.bogus", "params.board_id", "params.limit"]
    );
    assert_eq!(violated_fields(&missing), vec!["params.item_name"]);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

//! Monday.com's GraphQL API: POST /v2 with `Authorization: <token>` (no scheme) and
//! `API-Version`. Answers `{"data": ..., "account_id": n}`; application errors are HTTP 200
//! with `errors[{message, extensions: {code, status_code}}]`; a bad token is HTTP 401 with
//! `{"error_message", "status_code"}`. Items page with `items_page(limit)` then
//! `next_items_page(cursor)`; boards and workspaces with `limit`/`page`.
//!
//! The fake reads only `variables`: a value that reached the document instead would not be
//! seen here, and the tests compare documents across calls.

use axum::Router;
use axum::extract::Json;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::connectors::fake::Fake;

pub const TOKEN: &str = "monday-api-token-8c1d2e3f4a5b";
pub const PATH: &str = "/v2";
/// The cursor `items_page` hands out for the second page of board 111's items.
pub const SECOND_PAGE: &str =
    "MSw5NzI4MDA5MDAsaV9YcmxJb0p1VEdYc1VWeGlxeF9kLDg4MiwzNXw0MTQ1NzU1MTE5";

fn boards() -> Vec<Value> {
    vec![
        json!({"id": "111", "name": "Fundraising", "description": "Seed round", "state": "active",
               "board_kind": "public", "workspace_id": "5",
               "columns": [{"id": "name", "title": "Name", "type": "name"},
                           {"id": "status", "title": "Status", "type": "status"}],
               "groups": [{"id": "topics", "title": "Investors"}]}),
        json!({"id": "222", "name": "Hiring", "description": null, "state": "active",
               "board_kind": "private", "workspace_id": "5", "columns": [], "groups": []}),
        json!({"id": "333", "name": "Roadmap", "description": null, "state": "active",
               "board_kind": "public", "workspace_id": "6", "columns": [], "groups": []}),
    ]
}

fn item(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "state": "active",
           "created_at": "2024-05-01T10:00:00Z", "updated_at": "2024-05-02T10:00:00Z",
           "group": {"id": "topics", "title": "Investors"},
           "column_values": [{"id": "status", "text": "Working on it",
                              "value": "{\"index\":0}", "type": "status"}]})
}

fn data(d: Value) -> Response {
    Json(json!({"data": d, "account_id": 1})).into_response()
}

fn paged(all: Vec<Value>, vars: &Value) -> Vec<Value> {
    let limit = vars["limit"].as_u64().unwrap_or(25) as usize;
    let page = vars["page"].as_u64().unwrap_or(1).max(1) as usize;
    all.into_iter()
        .skip((page - 1) * limit)
        .take(limit)
        .collect()
}

async fn graphql(headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let auth = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // Monday accepts the API token and OAuth access tokens the fake issued (prefix "monday-").
    if !auth.is_some_and(|a| a == TOKEN || a.starts_with("monday-oauth-")) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error_message": "Not Authenticated", "status_code": 401})),
        )
            .into_response();
    }
    let query = body["query"].as_str().unwrap_or_default();
    let vars = &body["variables"];
    if query.contains("me {") {
        return data(json!({"me": {"id": "42"}}));
    }
    if query.contains("next_items_page(") {
        if vars["cursor"] != SECOND_PAGE {
            return Json(json!({"errors": [{"message": "Cursor expired or invalid",
                "extensions": {"code": "CursorException", "status_code": 400}}], "account_id": 1}))
            .into_response();
        }
        return data(json!({"next_items_page": {"cursor": null,
            "items": [item("1003", "Acme Ventures")]}}));
    }
    if query.contains("items_page(") {
        let board = vars["boardIds"][0].as_str().unwrap_or_default();
        if board != "111" {
            return data(json!({"boards": []}));
        }
        return data(json!({"boards": [{"items_page": {"cursor": SECOND_PAGE,
            "items": [item("1001", "Sequoia"), item("1002", "Accel")]}}]}));
    }
    if query.contains("boards(limit") {
        let all: Vec<Value> = boards()
            .into_iter()
            .filter(|b| {
                vars["workspaceIds"]
                    .as_array()
                    .is_none_or(|ws| ws.contains(&b["workspace_id"]))
            })
            .collect();
        return data(json!({"boards": paged(all, vars)}));
    }
    if query.contains("boards(ids") {
        let ids = vars["ids"].as_array().cloned().unwrap_or_default();
        let found: Vec<Value> = boards()
            .into_iter()
            .filter(|b| ids.contains(&b["id"]))
            .collect();
        return data(json!({"boards": found}));
    }
    if query.contains("create_item(") {
        return data(
            json!({"create_item": {"id": "9001", "name": vars["itemName"],
            "board": {"id": vars["boardId"]}, "group": {"id": vars.get("groupId").cloned().unwrap_or(json!("topics"))}}}),
        );
    }
    if query.contains("change_multiple_column_values(") {
        return data(
            json!({"change_multiple_column_values": {"id": vars["itemId"], "name": "Sequoia",
            "column_values": [{"id": "status", "text": "Done", "value": "{\"index\":1}", "type": "status"}]}}),
        );
    }
    if query.contains("create_update(") {
        if vars["itemId"] == "404" {
            return Json(
                json!({"data": {"create_update": null}, "errors": [{"message": "Item not found",
                "extensions": {"code": "ResourceNotFoundException", "status_code": 404,
                "error_data": {"item_id": 404}}}], "account_id": 1}),
            )
            .into_response();
        }
        return data(json!({"create_update": {"id": "77", "body": vars["body"],
            "created_at": "2024-05-03T09:00:00Z"}}));
    }
    if query.contains("workspaces(") {
        let all = vec![
            json!({"id": "5", "name": "Main workspace", "kind": "open", "description": null}),
            json!({"id": "6", "name": "Product", "kind": "closed", "description": "R&D"}),
        ];
        return data(json!({"workspaces": paged(all, vars)}));
    }
    // Any other document: echo what arrived, as a custom query would answer with its data.
    data(json!({"echo": {"query": query, "variables": vars}}))
}

pub async fn start() -> Fake {
    Fake::start(Router::new().route(PATH, post(graphql))).await
}

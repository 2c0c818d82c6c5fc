//! Notion's API as documented, under `/v1`: Bearer tokens (401 `unauthorized`), a required
//! `Notion-Version` header (400 `missing_version` without it), errors as `{object: "error",
//! status, code, message}`, lists as `{object: "list", results, next_cursor, has_more}` paged
//! by `page_size` and `start_cursor` (query for GETs, body for POSTs; the cursor is the id of the
//! next result), and 404 `object_not_found` for ids it does not know.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Json, Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::connectors::fake::Fake;

pub const BASE: &str = "/v1";
pub const TOKEN: &str = "secret_notion_internal_4b2f9c";
pub const VERSION: &str = "2022-06-28";
pub const DATABASE: &str = "d9824bdc-8445-4327-be8b-5b47500af6ce";
pub const PAGE: &str = "59833787-2cf9-4fdf-8782-e53db20768a5";
pub const UNKNOWN: &str = "00000000-0000-4000-8000-000000000000";

pub fn notion_error(status: u16, code: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).expect("a status"),
        Json(
            json!({"object": "error", "status": status, "code": code, "message": message,
                    "request_id": "a1b2c3d4-0000-4000-8000-000000000000"}),
        ),
    )
        .into_response()
}

fn check(headers: &HeaderMap) -> Option<Response> {
    let get = |name| {
        headers
            .get(name)
            .and_then(|v: &http::HeaderValue| v.to_str().ok())
    };
    if get(header::AUTHORIZATION) != Some(format!("Bearer {TOKEN}").as_str()) {
        return Some(notion_error(401, "unauthorized", "API token is invalid."));
    }
    if get(http::HeaderName::from_static("notion-version")) != Some(VERSION) {
        return Some(notion_error(
            400,
            "missing_version",
            "Notion-Version header failed validation: Notion-Version header should be defined.",
        ));
    }
    None
}

fn page(id: &str, title: &str) -> Value {
    json!({"object": "page", "id": id, "archived": false,
           "parent": {"type": "database_id", "database_id": DATABASE},
           "properties": {"Name": {"id": "title", "type": "title",
               "title": [{"type": "text", "text": {"content": title}, "plain_text": title}]}}})
}

fn pages() -> Vec<Value> {
    vec![
        page(PAGE, "Board meeting notes"),
        page("7c4ae2f1-0a2b-4c3d-8e9f-101112131415", "Investor pipeline"),
        page("8d5bf302-1b3c-4d4e-9fa0-161718191a1b", "Hiring plan"),
    ]
}

fn blocks() -> Vec<Value> {
    let para = |id: &str, text: &str| {
        json!({"object": "block", "id": id, "type": "paragraph", "has_children": false,
               "paragraph": {"rich_text": [{"type": "text", "text": {"content": text}, "plain_text": text}]}})
    };
    vec![
        para(
            "b0000001-0000-4000-8000-000000000001",
            "Runway is 18 months.",
        ),
        para("b0000002-0000-4000-8000-000000000002", "Hire a CFO."),
        para(
            "b0000003-0000-4000-8000-000000000003",
            "Next meeting in June.",
        ),
    ]
}

/// A Notion list page: results from the `start_cursor` id on, `page_size` of them.
fn list(all: Vec<Value>, page_size: Option<u64>, cursor: Option<&str>) -> Response {
    let size = page_size.unwrap_or(100) as usize;
    let start = match cursor {
        None => 0,
        Some(c) => match all.iter().position(|v| v["id"] == c) {
            Some(i) => i,
            None => {
                return notion_error(
                    400,
                    "validation_error",
                    "start_cursor should be a valid uuid.",
                );
            }
        },
    };
    let results: Vec<Value> = all.iter().skip(start).take(size).cloned().collect();
    let next = all.get(start + size).map(|v| v["id"].clone());
    Json(
        json!({"object": "list", "results": results, "has_more": next.is_some(),
                "next_cursor": next.unwrap_or(Value::Null), "type": "page_or_database"}),
    )
    .into_response()
}

type Q = Query<HashMap<String, String>>;

fn size_of(q: &HashMap<String, String>) -> Option<u64> {
    q.get("page_size").and_then(|s| s.parse().ok())
}

async fn me(headers: HeaderMap) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    Json(
        json!({"object": "user", "id": "16d84278-ab0e-484c-9bdd-b35da3bd8905", "type": "bot",
                "name": "FounderHouse", "bot": {"owner": {"type": "workspace", "workspace": true},
                "workspace_name": "Acme"}}),
    )
    .into_response()
}

async fn users(headers: HeaderMap, Query(q): Q) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let all = vec![
        json!({"object": "user", "id": "e79a0b74-3aba-4149-9f74-0bb5791a6ee6", "type": "person", "name": "Ada"}),
        json!({"object": "user", "id": "f8b0c1d2-4bcb-4250-8a85-1cc6802b7ff7", "type": "person", "name": "Grace"}),
        json!({"object": "user", "id": "16d84278-ab0e-484c-9bdd-b35da3bd8905", "type": "bot", "name": "FounderHouse"}),
    ];
    list(all, size_of(&q), q.get("start_cursor").map(String::as_str))
}

async fn search(headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let query = body["query"].as_str().unwrap_or_default().to_lowercase();
    let mut all: Vec<Value> = pages()
        .into_iter()
        .filter(|p| {
            p["properties"]["Name"]["title"][0]["plain_text"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
                .contains(&query)
        })
        .collect();
    if body["filter"]["value"] == "database" {
        all = vec![json!({"object": "database", "id": DATABASE,
                          "title": [{"plain_text": "Meetings"}]})];
    }
    list(
        all,
        body["page_size"].as_u64(),
        body["start_cursor"].as_str(),
    )
}

async fn get_page(headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    match pages().into_iter().find(|p| p["id"] == id.as_str()) {
        Some(p) => Json(p).into_response(),
        None => notion_error(
            404,
            "object_not_found",
            &format!(
                "Could not find page with ID: {id}. Make sure the relevant pages and databases are shared with your integration."
            ),
        ),
    }
}

async fn update_page(
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let Some(mut p) = pages().into_iter().find(|p| p["id"] == id.as_str()) else {
        return notion_error(404, "object_not_found", "Could not find page.");
    };
    if let Some(archived) = body.get("archived") {
        p["archived"] = archived.clone();
    }
    if let Some(props) = body["properties"].as_object() {
        for (k, v) in props {
            p["properties"][k] = v.clone();
        }
    }
    Json(p).into_response()
}

async fn create_page(headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let parent = &body["parent"];
    let known = parent["database_id"] == DATABASE || parent["page_id"] == PAGE;
    if !known {
        return notion_error(404, "object_not_found", "Could not find database or page.");
    }
    if body["properties"]["title"]["title"].as_array().is_none() {
        return notion_error(
            400,
            "validation_error",
            "body.properties.title should be defined.",
        );
    }
    Json(
        json!({"object": "page", "id": "a1a1a1a1-b2b2-4c3c-8d4d-e5e5e5e5e5e5", "archived": false,
                "parent": parent, "properties": body["properties"],
                "url": "https://www.notion.so/a1a1a1a1b2b24c3c8d4de5e5e5e5e5e5"}),
    )
    .into_response()
}

async fn get_database(headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if id != DATABASE {
        return notion_error(404, "object_not_found", "Could not find database.");
    }
    Json(
        json!({"object": "database", "id": DATABASE, "title": [{"plain_text": "Meetings"}],
                "properties": {"Name": {"id": "title", "type": "title", "title": {}},
                               "Status": {"id": "a%3Bb", "type": "status", "status": {}}}}),
    )
    .into_response()
}

async fn query_database(
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if id != DATABASE {
        return notion_error(404, "object_not_found", "Could not find database.");
    }
    if let Some(filter) = body.get("filter")
        && filter.get("property").is_none()
        && filter.get("and").is_none()
        && filter.get("or").is_none()
    {
        return notion_error(
            400,
            "validation_error",
            "body.filter.property should be defined.",
        );
    }
    list(
        pages(),
        body["page_size"].as_u64(),
        body["start_cursor"].as_str(),
    )
}

async fn children(headers: HeaderMap, Path(id): Path<String>, Query(q): Q) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if id != PAGE {
        return notion_error(404, "object_not_found", "Could not find block.");
    }
    list(
        blocks(),
        size_of(&q),
        q.get("start_cursor").map(String::as_str),
    )
}

async fn append(headers: HeaderMap, Path(id): Path<String>, Json(body): Json<Value>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if id != PAGE {
        return notion_error(404, "object_not_found", "Could not find block.");
    }
    let added: Vec<Value> = body["children"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, mut b)| {
            b["object"] = json!("block");
            b["id"] = json!(format!("c000000{i}-0000-4000-8000-000000000000"));
            b
        })
        .collect();
    Json(json!({"object": "list", "results": added, "has_more": false, "next_cursor": null}))
        .into_response()
}

pub async fn start() -> Fake {
    Fake::start(
        Router::new()
            .route(&format!("{BASE}/users/me"), get(me))
            .route(&format!("{BASE}/users"), get(users))
            .route(&format!("{BASE}/search"), post(search))
            .route(&format!("{BASE}/pages"), post(create_page))
            .route(
                &format!("{BASE}/pages/{{id}}"),
                get(get_page).patch(update_page),
            )
            .route(&format!("{BASE}/databases/{{id}}"), get(get_database))
            .route(
                &format!("{BASE}/databases/{{id}}/query"),
                post(query_database),
            )
            .route(
                &format!("{BASE}/blocks/{{id}}/children"),
                get(children).patch(append),
            ),
    )
    .await
}

//! Otter's (undocumented) API as the product spec describes it, under `/forward/api/v1`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Json, Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::connectors::fake::{Fake, require_auth};

pub const KEY: &str = "otter-test-key-a7e93d10";
pub const BASE: &str = "/forward/api/v1";

fn check(headers: &HeaderMap) -> Option<Response> {
    require_auth(
        headers,
        &format!("Bearer {KEY}"),
        json!({"status": "error", "message": "Unauthorized"}),
    )
}

type Q = Query<HashMap<String, String>>;

fn speeches() -> Vec<Value> {
    vec![
        json!({"otid": "sp1", "title": "Investor update", "folder": "board"}),
        json!({"otid": "sp2", "title": "Design review", "folder": "product"}),
        json!({"otid": "sp3", "title": "Investor Q&A", "folder": "board"}),
    ]
}

fn paged(q: &HashMap<String, String>, items: Vec<Value>) -> Response {
    let size: usize = q
        .get("page_size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let offset: usize = q.get("offset").and_then(|s| s.parse().ok()).unwrap_or(0);
    let page: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
    Json(json!({"status": "OK", "speeches": page})).into_response()
}

async fn user(headers: HeaderMap) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    Json(json!({"user": {"id": 7, "email": "ada@example.com"}})).into_response()
}

async fn list(headers: HeaderMap, Query(q): Q) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let folder = q.get("folder").cloned();
    let items = speeches()
        .into_iter()
        .filter(|s| folder.as_ref().is_none_or(|f| s["folder"] == f.as_str()))
        .collect();
    paged(&q, items)
}

async fn search(headers: HeaderMap, Query(q): Q) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let needle = q.get("query").cloned().unwrap_or_default().to_lowercase();
    let items = speeches()
        .into_iter()
        .filter(|s| {
            s["title"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
                .contains(&needle)
        })
        .collect();
    paged(&q, items)
}

async fn one(headers: HeaderMap, Path(id): Path<String>, Query(q): Q) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let Some(mut s) = speeches().into_iter().find(|s| s["otid"] == id.as_str()) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"status": "error", "message": "speech not found"})),
        )
            .into_response();
    };
    if q.get("include_transcript").map(String::as_str) == Some("true") {
        s["transcripts"] = json!([{"speaker": "Ada", "transcript": "Good morning"}]);
    }
    Json(json!({"status": "OK", "speech": s})).into_response()
}

async fn update(headers: HeaderMap, Path(id): Path<String>, Json(body): Json<Value>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    Json(json!({"status": "OK", "speech": {"otid": id, "title": body["title"], "description": body["description"]}}))
        .into_response()
}

async fn delete(headers: HeaderMap) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn summary(headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    Json(json!({"status": "OK", "otid": id, "summary": "The round is oversubscribed."}))
        .into_response()
}

pub async fn start() -> Fake {
    Fake::start(
        Router::new()
            .route(&format!("{BASE}/user"), get(user))
            .route(&format!("{BASE}/speeches"), get(list))
            .route(&format!("{BASE}/speeches/search"), get(search))
            .route(
                &format!("{BASE}/speeches/{{id}}"),
                get(one).patch(update).delete(delete),
            )
            .route(&format!("{BASE}/speeches/{{id}}/summary"), get(summary)),
    )
    .await
}

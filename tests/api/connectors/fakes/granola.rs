//! Granola's public notes API (`/v1/notes`, cursor paging with `hasMore`), and the product
//! spec's metric endpoints under `/v1`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Json, Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::connectors::fake::{Fake, require_auth};

pub const KEY: &str = "grn_test_6d0b4e2c91";

fn check(headers: &HeaderMap) -> Option<Response> {
    require_auth(
        headers,
        &format!("Bearer {KEY}"),
        json!({"error": "Unauthorized"}),
    )
}

type Q = Query<HashMap<String, String>>;

fn note(id: &str, title: &str) -> Value {
    json!({"id": id, "object": "note", "title": title, "created_at": "2024-05-01T10:00:00Z",
           "owner": {"name": "Ada", "email": "ada@example.com"}, "summary_text": format!("Summary of {title}")})
}

async fn notes(headers: HeaderMap, Query(q): Q) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let all = [
        note("not_1", "Board"),
        note("not_2", "Hiring"),
        note("not_3", "Roadmap"),
    ];
    let size: usize = q
        .get("page_size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    // The cursor is opaque to clients; here it is the index to start at.
    let start: usize = match q.get("cursor") {
        None => 0,
        Some(c) => match c.strip_prefix("cur_").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": "invalid cursor"})),
                )
                    .into_response();
            }
        },
    };
    let page: Vec<Value> = all.iter().skip(start).take(size).cloned().collect();
    let end = start + page.len();
    let more = end < all.len();
    Json(json!({"notes": page, "hasMore": more, "cursor": if more { json!(format!("cur_{end}")) } else { Value::Null }}))
        .into_response()
}

async fn one_note(headers: HeaderMap, Path(id): Path<String>, Query(q): Q) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if id != "not_1" {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "Note not found"})),
        )
            .into_response();
    }
    let mut n = note("not_1", "Board");
    if q.get("include").map(String::as_str) == Some("transcript") {
        n["transcript"] = json!([{"speaker": "Ada", "text": "Welcome"}]);
    }
    Json(n).into_response()
}

fn metric(id: &str) -> Value {
    json!({"id": id, "name": format!("Metric {id}"), "value": 42})
}

async fn metrics(headers: HeaderMap, Query(q): Q) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let limit: usize = q.get("limit").and_then(|s| s.parse().ok()).unwrap_or(50);
    let offset: usize = q.get("offset").and_then(|s| s.parse().ok()).unwrap_or(0);
    let page: Vec<Value> = ["m1", "m2", "m3"]
        .iter()
        .skip(offset)
        .take(limit)
        .map(|id| metric(id))
        .collect();
    Json(json!({"metrics": page})).into_response()
}

async fn create_metric(headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    (
        StatusCode::CREATED,
        Json(json!({"id": "m9", "name": body["name"], "definition": body["definition"]})),
    )
        .into_response()
}

async fn one_metric(headers: HeaderMap, Path(id): Path<String>, Query(q): Q) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let mut m = metric(&id);
    m["range"] = json!({"start": q.get("start_date"), "end": q.get("end_date")});
    Json(m).into_response()
}

async fn trends(headers: HeaderMap, Path(id): Path<String>, Query(q): Q) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    Json(json!({"metric_id": id, "period": q.get("period"), "points": [1, 2, 3]})).into_response()
}

async fn dashboard(headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    Json(json!({"dashboard": id, "metrics": [metric("m1")]})).into_response()
}

async fn kpis(headers: HeaderMap, Query(q): Q) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    Json(json!({"category": q.get("category"), "kpis": [{"name": "meetings_per_week", "value": 12}]}))
        .into_response()
}

async fn insights(headers: HeaderMap, Query(q): Q) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    Json(json!({"limit": q.get("limit"), "insights": [{"text": "Fewer meetings on Fridays"}]}))
        .into_response()
}

pub async fn start() -> Fake {
    Fake::start(
        Router::new()
            .route("/v1/notes", get(notes))
            .route("/v1/notes/{id}", get(one_note))
            .route("/v1/metrics", get(metrics).post(create_metric))
            .route("/v1/metrics/{id}", get(one_metric))
            .route("/v1/metrics/{id}/trends", get(trends))
            .route("/v1/dashboards/{id}/metrics", get(dashboard))
            .route("/v1/kpis", get(kpis))
            .route("/v1/insights", get(insights)),
    )
    .await
}

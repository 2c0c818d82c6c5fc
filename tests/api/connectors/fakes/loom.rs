//! Loom as the product spec describes it (Loom documents no public REST API, so this follows
//! the seed's paths): Bearer tokens, `/users/me`, videos paged by `limit`/`offset`, a search,
//! transcripts and insights per video, PATCH to update and DELETE (204) to remove, errors as
//! `{"error": <code>, "message": ...}`.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Json, Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::connectors::fake::{Fake, require_auth};

pub const BASE: &str = "/api/v1";
pub const TOKEN: &str = "loom-access-token-1b2c3d";
pub const VIDEO: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";

fn loom_error(status: u16, code: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).expect("a status"),
        Json(json!({"error": code, "message": message})),
    )
        .into_response()
}

fn check(headers: &HeaderMap) -> Option<Response> {
    require_auth(
        headers,
        &format!("Bearer {TOKEN}"),
        json!({"error": "unauthorized", "message": "Invalid or expired token"}),
    )
}

type Q = Query<HashMap<String, String>>;

fn videos() -> Vec<Value> {
    (1..=3)
        .map(|n| {
            json!({"id": if n == 1 { VIDEO.to_owned() } else { format!("video{n}") },
            "title": format!("Weekly update {n}"), "duration": 120 + n,
            "share_url": format!("https://www.loom.com/share/video{n}")})
        })
        .collect()
}

async fn me(headers: HeaderMap) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    Json(json!({"id": "u-1", "name": "Ada", "email": "ada@example.com"})).into_response()
}

async fn list(headers: HeaderMap, Query(q): Q) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(25);
    let offset: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let all = videos();
    let page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
    Json(json!({"videos": page, "total": all.len()})).into_response()
}

async fn search(headers: HeaderMap, Query(q): Q) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let query = q.get("query").cloned().unwrap_or_default().to_lowercase();
    let found: Vec<Value> = videos()
        .into_iter()
        .filter(|v| {
            v["title"]
                .as_str()
                .is_some_and(|t| t.to_lowercase().contains(&query))
        })
        .collect();
    Json(json!({"videos": found})).into_response()
}

fn known(id: &str) -> bool {
    videos().iter().any(|v| v["id"] == id)
}

async fn video(headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    match videos().into_iter().find(|v| v["id"] == id.as_str()) {
        Some(v) => Json(v).into_response(),
        None => loom_error(404, "not_found", "Video not found"),
    }
}

async fn update(headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let Some(mut v) = videos().into_iter().find(|v| v["id"] == id.as_str()) else {
        return loom_error(404, "not_found", "Video not found");
    };
    let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(&body) else {
        return loom_error(400, "invalid_request", "Body must be a JSON object");
    };
    for (k, val) in patch {
        v[k] = val;
    }
    Json(v).into_response()
}

async fn delete(headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if !known(&id) {
        return loom_error(404, "not_found", "Video not found");
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn transcript(headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if !known(&id) {
        return loom_error(404, "not_found", "Video not found");
    }
    Json(json!({"video_id": id, "language": "en", "segments": [
        {"start": 0.0, "end": 3.2, "text": "Hi team, quick update."},
        {"start": 3.2, "end": 7.9, "text": "We closed the seed round."},
    ]}))
    .into_response()
}

async fn insights(headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if !known(&id) {
        return loom_error(404, "not_found", "Video not found");
    }
    Json(json!({"video_id": id, "views": 17, "unique_viewers": 9, "average_completion": 0.82}))
        .into_response()
}

pub async fn start() -> Fake {
    Fake::start(
        Router::new()
            .route(&format!("{BASE}/users/me"), get(me))
            .route(&format!("{BASE}/videos"), get(list))
            .route(&format!("{BASE}/videos/search"), get(search))
            .route(
                &format!("{BASE}/videos/{{id}}"),
                get(video).patch(update).delete(delete),
            )
            .route(&format!("{BASE}/videos/{{id}}/transcript"), get(transcript))
            .route(&format!("{BASE}/videos/{{id}}/insights"), get(insights)),
    )
    .await
}

//! A ZeroDB vector store, mounted under `/v1` (the base URL is the credential's `base_url`).

use axum::Router;
use axum::extract::{Json, Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;

use crate::connectors::fake::{Fake, require_auth};

pub const KEY: &str = "zdb-test-key-83c1e0f4a2";

fn unauthorized() -> Value {
    json!({"error": {"code": "unauthorized", "message": "invalid API key"}})
}

fn check(headers: &HeaderMap) -> Option<Response> {
    require_auth(headers, &format!("Bearer {KEY}"), unauthorized())
}

async fn list_collections(headers: HeaderMap) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    Json(
        json!({"collections": [{"name": "docs", "dimension": 3}, {"name": "faq", "dimension": 3}]}),
    )
    .into_response()
}

async fn create_collection(headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if body["name"] == "docs" {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": {"code": "collection_exists", "message": "collection docs already exists"}})),
        )
            .into_response();
    }
    (
        StatusCode::CREATED,
        Json(json!({"name": body["name"], "dimension": body["dimension"], "created": true})),
    )
        .into_response()
}

async fn stats(headers: HeaderMap, Path(name): Path<String>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    Json(json!({"collection": name, "vector_count": 2, "dimension": 3, "index": "hnsw"}))
        .into_response()
}

async fn store(headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let n = body["vectors"].as_array().map_or(0, Vec::len);
    Json(json!({"collection": body["collection"], "stored": n})).into_response()
}

async fn search(headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let k = body["top_k"].as_u64().unwrap_or(10) as usize;
    let results: Vec<Value> = [("v1", 0.99), ("v2", 0.42)]
        .into_iter()
        .take(k)
        .map(|(id, score)| json!({"id": id, "score": score, "metadata": {"source": "notes"}}))
        .collect();
    Json(json!({"results": results})).into_response()
}

async fn embedding(
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if id == "missing" {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": "not_found", "message": "no embedding missing"}})),
        )
            .into_response();
    }
    Json(json!({"id": id, "collection": q.get("collection"), "vector": [0.1, 0.2, 0.3], "metadata": {}}))
        .into_response()
}

async fn delete_embedding(headers: HeaderMap) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    StatusCode::NO_CONTENT.into_response()
}

pub async fn start() -> Fake {
    Fake::start(
        Router::new()
            .route(
                "/v1/collections",
                get(list_collections).post(create_collection),
            )
            .route("/v1/collections/{name}/stats", get(stats))
            .route("/v1/embeddings", post(store))
            .route(
                "/v1/embeddings/{id}",
                get(embedding).delete(delete_embedding),
            )
            .route("/v1/search", post(search)),
    )
    .await
}

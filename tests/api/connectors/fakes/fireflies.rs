//! Fireflies' GraphQL API: POST /graphql with `Authorization: Bearer <api key>`, answers
//! `{"data": ...}` or `{"errors": [{message, extensions: {code, status}}]}`.

use axum::Router;
use axum::extract::Json;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::HeaderMap;
use serde_json::{Value, json};

use crate::connectors::fake::{Fake, require_auth};

pub const KEY: &str = "ff-test-key-5f1c2a9b7d";
pub const PATH: &str = "/graphql";

fn transcripts() -> Vec<Value> {
    vec![
        json!({"id": "t1", "title": "Board meeting", "date": 1714550400000u64, "duration": 42.5,
               "summary": {"overview": "Runway is 18 months", "action_items": "Hire a CFO", "keywords": ["runway"]}}),
        json!({"id": "t2", "title": "Customer call: Acme", "date": 1714636800000u64, "duration": 30.0,
               "summary": {"overview": "Acme wants SSO", "action_items": "Scope SSO", "keywords": ["sso"]}}),
        json!({"id": "t3", "title": "Weekly sync", "date": 1714723200000u64, "duration": 15.0,
               "summary": {"overview": "All green", "action_items": "", "keywords": []}}),
    ]
}

async fn graphql(headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let unauthorized = json!({"errors": [{"message": "Invalid API key",
        "extensions": {"code": "invalid_api_key", "status": 401}}]});
    if let Some(r) = require_auth(&headers, &format!("Bearer {KEY}"), unauthorized) {
        return r;
    }
    let query = body["query"].as_str().unwrap_or_default();
    let vars = &body["variables"];
    if query.contains("user {") {
        return Json(json!({"data": {"user": {"user_id": "u-1", "email": "ada@example.com", "name": "Ada"}}})).into_response();
    }
    if query.contains("transcripts(") {
        let keyword = vars["keyword"].as_str().map(str::to_lowercase);
        let skip = vars["skip"].as_u64().unwrap_or(0) as usize;
        let limit = vars["limit"].as_u64().unwrap_or(50) as usize;
        let page: Vec<Value> = transcripts()
            .into_iter()
            .filter(|t| {
                keyword.as_ref().is_none_or(|k| {
                    t["title"]
                        .as_str()
                        .unwrap_or_default()
                        .to_lowercase()
                        .contains(k)
                })
            })
            .skip(skip)
            .take(limit)
            .collect();
        return Json(json!({"data": {"transcripts": page}})).into_response();
    }
    if query.contains("transcript(id") {
        let id = vars["id"].as_str().unwrap_or_default();
        return match transcripts().into_iter().find(|t| t["id"] == id) {
            Some(mut t) => {
                t["sentences"] = json!([{"index": 0, "text": "Hello", "speaker_name": "Ada", "start_time": 0.0, "end_time": 1.2}]);
                t["summary"]["outline"] = json!("1. Hello");
                Json(json!({"data": {"transcript": t}})).into_response()
            }
            None => Json(
                json!({"data": {"transcript": null}, "errors": [{"message": "Transcript not found",
                "extensions": {"code": "object_not_found", "status": 404}}]}),
            )
            .into_response(),
        };
    }
    // Any other document: echo what arrived, as a custom query would answer with its data.
    Json(json!({"data": {"echo": {"query": query, "variables": vars}}})).into_response()
}

pub async fn start() -> Fake {
    Fake::start(Router::new().route(PATH, post(graphql))).await
}

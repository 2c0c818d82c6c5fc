//! The Gmail API v1 as documented, under `/gmail/v1/users/me`: Bearer access tokens (401
//! `UNAUTHENTICATED` for any other), Google's error model `{error: {code, message, errors:
//! [{reason}], status}}`, lists paged by `maxResults` / `pageToken` / `nextPageToken` (absent on
//! the last page), label filters as repeated `labelIds` parameters, `messages/send` taking a
//! base64url RFC 2822 message in `raw`. Plus Google's token endpoint (`POST /token`) answering
//! `grant_type=refresh_token` with the client credentials in the form body and no new refresh
//! token, as Google does.

use axum::Router;
use axum::extract::{Form, Json, Path, RawQuery};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use std::collections::HashMap;

use crate::connectors::fake::{Fake, decode_form};

pub const BASE: &str = "/gmail/v1";
pub const ACCESS: &str = "ya29.gmail-access-5d1c7e";
/// An access token Google no longer accepts (expired).
pub const STALE: &str = "ya29.gmail-stale-0b9a21";
pub const REFRESH: &str = "1//gmail-refresh-3f8e62";
/// What a refresh issues.
pub const REFRESHED: &str = "ya29.gmail-refreshed-c4d2a8";
pub const CLIENT_ID: &str = "gmail-client-id.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "gmail-client-secret-91";
pub const TOKEN_PATH: &str = "/token";
pub const EMAIL: &str = "ada@example.com";

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Google's error model.
pub fn google_error(status: u16, reason: &str, message: &str, state: &str) -> Response {
    (
        StatusCode::from_u16(status).expect("a status"),
        Json(json!({"error": {"code": status, "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": state}})),
    )
        .into_response()
}

fn check(headers: &HeaderMap) -> Option<Response> {
    let got = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let ok = [ACCESS, REFRESHED]
        .iter()
        .any(|t| got == Some(bearer(t).as_str()));
    (!ok).then(|| {
        google_error(
            401,
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            "UNAUTHENTICATED",
        )
    })
}

fn messages() -> Vec<Value> {
    vec![
        json!({"id": "18f1a2b3c4d5e6f7", "threadId": "18f1a2b3c4d5e6f7", "labelIds": ["INBOX", "UNREAD"]}),
        json!({"id": "18f1a2b3c4d5e6f8", "threadId": "18f1a2b3c4d5e6f7", "labelIds": ["INBOX"]}),
        json!({"id": "18f1a2b3c4d5e6f9", "threadId": "18f1a2b3c4d5e700", "labelIds": ["INBOX", "IMPORTANT"]}),
    ]
}

/// A page of `items` by `maxResults` and `pageToken` ("p<start>").
fn paged(key: &str, items: Vec<Value>, q: &[(String, String)]) -> Response {
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let size: usize = get("maxResults")
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let start: usize = match get("pageToken") {
        None => 0,
        Some(t) => match t.strip_prefix('p').and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => {
                return google_error(
                    400,
                    "invalidArgument",
                    "Invalid pageToken",
                    "INVALID_ARGUMENT",
                );
            }
        },
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start).take(size).collect();
    let mut body = json!({"resultSizeEstimate": total});
    // Gmail leaves the list out when it is empty, and the token out on the last page.
    if !page.is_empty() {
        body[key] = json!(page);
    }
    if start + size < total {
        body["nextPageToken"] = json!(format!("p{}", start + size));
    }
    Json(body).into_response()
}

/// Messages carrying every label in the repeated `labelIds` parameters.
fn with_labels(items: Vec<Value>, q: &[(String, String)]) -> Vec<Value> {
    let wanted: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "labelIds")
        .map(|(_, v)| v.as_str())
        .collect();
    items
        .into_iter()
        .filter(|m| {
            wanted.iter().all(|l| {
                m["labelIds"]
                    .as_array()
                    .is_some_and(|ls| ls.iter().any(|x| x == l))
            })
        })
        .collect()
}

async fn profile(headers: HeaderMap) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    Json(json!({"emailAddress": EMAIL, "messagesTotal": 3, "threadsTotal": 2, "historyId": "4821"}))
        .into_response()
}

async fn list_messages(headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let q = decode_form(&q.unwrap_or_default());
    paged("messages", with_labels(messages(), &q), &q)
}

async fn get_message(
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let q = decode_form(&q.unwrap_or_default());
    let format = q
        .iter()
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "full".to_owned());
    match messages().into_iter().find(|m| m["id"] == id.as_str()) {
        Some(mut m) => {
            m["snippet"] = json!("Runway is 18 months");
            if format == "full" {
                m["payload"] = json!({"mimeType": "text/plain", "headers": [
                    {"name": "From", "value": "Grace <grace@example.com>"},
                    {"name": "Subject", "value": "Board meeting"}],
                    "body": {"size": 19, "data": "UnVud2F5IGlzIDE4IG1vbnRocw"}});
            }
            if format == "raw" {
                m["raw"] = json!("U3ViamVjdDogQm9hcmQgbWVldGluZw0KDQpSdW53YXk");
            }
            Json(m).into_response()
        }
        None => google_error(
            404,
            "notFound",
            "Requested entity was not found.",
            "NOT_FOUND",
        ),
    }
}

async fn send(headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let raw = body["raw"].as_str().unwrap_or_default();
    let decoded = base64::engine::general_purpose::URL_SAFE
        .decode(raw)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw));
    match decoded {
        Ok(bytes) if bytes.windows(4).any(|w| w == b"\r\n\r\n") => Json(json!({
            "id": "18f1a2b3c4d5e7aa", "threadId": "18f1a2b3c4d5e7aa", "labelIds": ["SENT"]}))
        .into_response(),
        _ => google_error(
            400,
            "invalidArgument",
            "Invalid value for ByteString",
            "INVALID_ARGUMENT",
        ),
    }
}

async fn modify(headers: HeaderMap, Path(id): Path<String>, Json(body): Json<Value>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let Some(mut m) = messages().into_iter().find(|m| m["id"] == id.as_str()) else {
        return google_error(
            404,
            "notFound",
            "Requested entity was not found.",
            "NOT_FOUND",
        );
    };
    let mut labels: Vec<Value> = m["labelIds"].as_array().cloned().unwrap_or_default();
    let remove = body["removeLabelIds"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    labels.retain(|l| !remove.contains(l));
    for add in body["addLabelIds"].as_array().cloned().unwrap_or_default() {
        if !labels.contains(&add) {
            labels.push(add);
        }
    }
    m["labelIds"] = json!(labels);
    Json(m).into_response()
}

async fn list_threads(headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let q = decode_form(&q.unwrap_or_default());
    let threads = vec![
        json!({"id": "18f1a2b3c4d5e6f7", "snippet": "Runway is 18 months", "historyId": "4801"}),
        json!({"id": "18f1a2b3c4d5e700", "snippet": "Offer letter", "historyId": "4810"}),
    ];
    paged("threads", threads, &q)
}

async fn get_thread(headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let in_thread: Vec<Value> = messages()
        .into_iter()
        .filter(|m| m["threadId"] == id.as_str())
        .collect();
    if in_thread.is_empty() {
        return google_error(
            404,
            "notFound",
            "Requested entity was not found.",
            "NOT_FOUND",
        );
    }
    Json(json!({"id": id, "historyId": "4801", "messages": in_thread})).into_response()
}

async fn labels(headers: HeaderMap) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    Json(json!({"labels": [
        {"id": "INBOX", "name": "INBOX", "type": "system"},
        {"id": "UNREAD", "name": "UNREAD", "type": "system"},
        {"id": "Label_12", "name": "Investors", "type": "user"},
    ]}))
    .into_response()
}

/// Google's token endpoint, refresh grant only: client credentials in the body, the access
/// token renewed, the refresh token kept (none in the answer).
async fn token(Form(form): Form<HashMap<String, String>>) -> Response {
    let get = |k: &str| form.get(k).map(String::as_str);
    let client_ok =
        get("client_id") == Some(CLIENT_ID) && get("client_secret") == Some(CLIENT_SECRET);
    if !client_ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "Unauthorized"})),
        )
            .into_response();
    }
    if get("grant_type") != Some("refresh_token") || get("refresh_token") != Some(REFRESH) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "Bad Request"})),
        )
            .into_response();
    }
    Json(
        json!({"access_token": REFRESHED, "expires_in": 3599, "token_type": "Bearer",
        "scope": "https://www.googleapis.com/auth/gmail.modify"}),
    )
    .into_response()
}

pub async fn start() -> Fake {
    let me = format!("{BASE}/users/me");
    Fake::start(
        Router::new()
            .route(&format!("{me}/profile"), get(profile))
            .route(&format!("{me}/messages"), get(list_messages))
            .route(&format!("{me}/messages/send"), post(send))
            .route(&format!("{me}/messages/{{id}}"), get(get_message))
            .route(&format!("{me}/messages/{{id}}/modify"), post(modify))
            .route(&format!("{me}/threads"), get(list_threads))
            .route(&format!("{me}/threads/{{id}}"), get(get_thread))
            .route(&format!("{me}/labels"), get(labels))
            .route(TOKEN_PATH, post(token)),
    )
    .await
}

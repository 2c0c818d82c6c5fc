//! Microsoft Graph v1.0 as documented, under `/v1.0/me`: Bearer access tokens (401
//! `InvalidAuthenticationToken` for any other), errors as `{error: {code, message}}`, lists as
//! `{value: [...], @odata.nextLink}` where the next link is an absolute URL on Graph's own host
//! (built here from the request's Host header) carrying `$skip`, `sendMail` answering 202 with
//! no body, `calendarView` requiring its window, events created with 201.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Json, Path, RawQuery};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::connectors::fake::{Fake, decode_form};

pub const BASE: &str = "/v1.0";
pub const ACCESS: &str = "eyJ0eXAiOiJKV1Qi.graph-access.5b7c";
pub const STALE: &str = "eyJ0eXAiOiJKV1Qi.graph-stale.0a1d";
pub const USER_ID: &str = "87d349ed-44d7-43e1-9a83-5f2406dee5bd";

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

pub fn graph_error(status: u16, code: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).expect("a status"),
        Json(json!({"error": {"code": code, "message": message,
            "innerError": {"request-id": "5c3e2c1a-0000-0000-0000-000000000000", "date": "2024-05-01T12:00:00"}}})),
    )
        .into_response()
}

fn check(headers: &HeaderMap) -> Option<Response> {
    let got = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    (got != Some(bearer(ACCESS).as_str())).then(|| {
        graph_error(
            401,
            "InvalidAuthenticationToken",
            "Access token has expired or is not yet valid.",
        )
    })
}

fn query(raw: Option<String>) -> HashMap<String, String> {
    decode_form(&raw.unwrap_or_default()).into_iter().collect()
}

pub fn messages() -> Vec<Value> {
    let m = |id: &str, subject: &str, from: &str, read: bool| {
        json!({"id": id, "subject": subject, "isRead": read,
               "receivedDateTime": "2024-05-01T10:00:00Z",
               "from": {"emailAddress": {"name": from, "address": format!("{}@contoso.com", from.to_lowercase())}},
               "body": {"contentType": "html", "content": format!("<p>{subject}</p>")}})
    };
    vec![
        m("AAMkAGI2TG93AAA=", "Board meeting", "Grace", false),
        m("AAMkAGI2TG94AAA=", "Term sheet", "Alan", true),
        m("AAMkAGI2TG95AAA=", "Budget review", "Grace", true),
    ]
}

fn events() -> Vec<Value> {
    vec![
        json!({"id": "AAMkEv1AAA=", "subject": "Board meeting",
               "start": {"dateTime": "2024-05-02T09:00:00.0000000", "timeZone": "UTC"},
               "end": {"dateTime": "2024-05-02T10:00:00.0000000", "timeZone": "UTC"}}),
        json!({"id": "AAMkEv2AAA=", "subject": "Investor call",
               "start": {"dateTime": "2024-05-03T15:00:00.0000000", "timeZone": "UTC"},
               "end": {"dateTime": "2024-05-03T15:30:00.0000000", "timeZone": "UTC"}}),
    ]
}

/// A Graph page: `$top` and `$skip` in, `value` and an absolute `@odata.nextLink` out.
fn paged(
    headers: &HeaderMap,
    path: &str,
    items: Vec<Value>,
    q: &HashMap<String, String>,
) -> Response {
    let top: usize = q.get("$top").and_then(|s| s.parse().ok()).unwrap_or(10);
    let skip: usize = q.get("$skip").and_then(|s| s.parse().ok()).unwrap_or(0);
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(skip).take(top).collect();
    let mut body = json!({"@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#{path}"), "value": page});
    if skip + top < total {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("graph.microsoft.com");
        body["@odata.nextLink"] = json!(format!(
            "http://{host}{BASE}{path}?%24top={top}&%24skip={}",
            skip + top
        ));
    }
    Json(body).into_response()
}

async fn me(headers: HeaderMap) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    Json(
        json!({"id": USER_ID, "displayName": "Ada Lovelace", "mail": "ada@contoso.com",
                "userPrincipalName": "ada@contoso.com"}),
    )
    .into_response()
}

async fn folder_messages(
    headers: HeaderMap,
    Path(folder): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if !["inbox", "sentitems", "archive"].contains(&folder.as_str()) {
        return graph_error(
            404,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        );
    }
    let q = query(q);
    let all = if folder == "inbox" {
        messages()
    } else {
        Vec::new()
    };
    let filtered: Vec<Value> = match q.get("$filter").map(String::as_str) {
        None => all,
        Some("isRead eq false") => all.into_iter().filter(|m| m["isRead"] == false).collect(),
        Some(_) => {
            return graph_error(
                400,
                "ErrorInvalidUrlQueryFilter",
                "The query filter contains one or more invalid nodes.",
            );
        }
    };
    // Graph rewrites the path of the next link in its own form.
    paged(
        &headers,
        &format!("/me/mailFolders('{folder}')/messages"),
        filtered,
        &q,
    )
}

/// The form Graph writes into next links: `/me/mailFolders('inbox')/messages`.
async fn folder_messages_by_key(
    headers: HeaderMap,
    Path(expr): Path<String>,
    raw: RawQuery,
) -> Response {
    match expr
        .strip_prefix("mailFolders('")
        .and_then(|r| r.strip_suffix("')"))
    {
        Some(folder) => folder_messages(headers, Path(folder.to_owned()), raw).await,
        None => graph_error(400, "BadRequest", "Resource not found for the segment."),
    }
}

/// `/me/messages` with `$search="..."`: subjects containing the unquoted, unescaped words.
async fn search(headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let q = query(q);
    let Some(search) = q.get("$search") else {
        return paged(&headers, "/me/messages", messages(), &q);
    };
    let Some(inner) = search.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return graph_error(
            400,
            "BadRequest",
            "Syntax error: the $search value must be quoted.",
        );
    };
    let words = inner
        .replace("\\\"", "\"")
        .replace("\\\\", "\\")
        .to_lowercase();
    let found: Vec<Value> = messages()
        .into_iter()
        .filter(|m| {
            m["subject"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
                .contains(&words)
        })
        .collect();
    paged(&headers, "/me/messages", found, &q)
}

async fn message(headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    match messages().into_iter().find(|m| m["id"] == id.as_str()) {
        Some(m) => Json(m).into_response(),
        None => graph_error(
            404,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        ),
    }
}

async fn send_mail(headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let to = body["message"]["toRecipients"].as_array();
    if to.is_none_or(|t| t.is_empty()) {
        return graph_error(
            400,
            "ErrorInvalidRecipients",
            "At least one recipient is not valid.",
        );
    }
    StatusCode::ACCEPTED.into_response()
}

async fn calendar_view(headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let q = query(q);
    if !q.contains_key("startDateTime") || !q.contains_key("endDateTime") {
        return graph_error(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        );
    }
    paged(&headers, "/me/calendarView", events(), &q)
}

async fn list_events(headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    let q = query(q);
    paged(&headers, "/me/calendar/events", events(), &q)
}

async fn create_event(headers: HeaderMap, Json(mut event): Json<Value>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if event["subject"].as_str().is_none() || event["start"]["dateTime"].as_str().is_none() {
        return graph_error(
            400,
            "ErrorInvalidRequest",
            "Your request can't be completed.",
        );
    }
    event["id"] = json!("AAMkNewEvAAA=");
    event["webLink"] = json!("https://outlook.office365.com/owa/?itemid=AAMkNewEvAAA%3D");
    (StatusCode::CREATED, Json(event)).into_response()
}

pub async fn start() -> Fake {
    let me_path = format!("{BASE}/me");
    Fake::start(
        Router::new()
            .route(&me_path, get(me))
            .route(
                &format!("{me_path}/mailFolders/{{folder}}/messages"),
                get(folder_messages),
            )
            .route(
                &format!("{me_path}/{{expr}}/messages"),
                get(folder_messages_by_key),
            )
            .route(&format!("{me_path}/messages"), get(search))
            .route(&format!("{me_path}/messages/{{id}}"), get(message))
            .route(&format!("{me_path}/sendMail"), post(send_mail))
            .route(&format!("{me_path}/calendarView"), get(calendar_view))
            .route(
                &format!("{me_path}/calendar/events"),
                get(list_events).post(create_event),
            ),
    )
    .await
}

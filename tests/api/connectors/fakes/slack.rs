//! The Slack Web API as documented: methods under `/api`, Bearer bot (`xoxb-`) or user
//! (`xoxp-`) tokens, every answer HTTP 200 `{"ok": true, ...}` or `{"ok": false, "error":
//! "<code>"}` (a bad token is `invalid_auth`, no token `not_authed`), cursor paging with
//! `response_metadata.next_cursor` (empty on the last page), `search.messages` only for user
//! tokens and paged by page number, `chat.postMessage` taking JSON.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Json, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use http::{HeaderMap, header};
use serde_json::{Value, json};

use crate::connectors::fake::Fake;

pub const BASE: &str = "/api";
pub const BOT: &str = "xoxb-1111-2222-slackbottoken";
pub const USER: &str = "xoxp-1111-3333-slackusertoken";
/// The bot user of the app installation whose token is `BOT`.
pub const BOT_USER: &str = "U0BOTUSR01";
pub const TEAM: &str = "T0ACME123";
pub const GENERAL: &str = "C024BE91L";
/// A channel that exists but is archived.
pub const ARCHIVED: &str = "C0ARCHIVE1";
pub const THREAD_TS: &str = "1512085950.000216";

fn fail(error: &str) -> Response {
    Json(json!({"ok": false, "error": error})).into_response()
}

/// The token of the request, if Slack would accept it.
fn token(headers: &HeaderMap) -> Result<&'static str, Box<Response>> {
    let got = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match got {
        None => Err(Box::new(fail("not_authed"))),
        Some(v) if v == format!("Bearer {BOT}") => Ok(BOT),
        Some(v) if v == format!("Bearer {USER}") => Ok(USER),
        Some(_) => Err(Box::new(fail("invalid_auth"))),
    }
}

type Q = Query<HashMap<String, String>>;

/// Slack cursors are opaque base64; these encode the next start.
fn cursor_of(start: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("start:{start}"))
}

fn start_of(cursor: Option<&String>) -> Option<usize> {
    match cursor.map(String::as_str) {
        None | Some("") => Some(0),
        Some(c) => {
            let raw = base64::engine::general_purpose::STANDARD.decode(c).ok()?;
            String::from_utf8(raw)
                .ok()?
                .strip_prefix("start:")?
                .parse()
                .ok()
        }
    }
}

fn paged(key: &str, items: Vec<Value>, q: &HashMap<String, String>) -> Response {
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    let Some(start) = start_of(q.get("cursor")) else {
        return fail("invalid_cursor");
    };
    let chunk: Vec<Value> = items.iter().skip(start).take(limit).cloned().collect();
    let next = if start + chunk.len() < items.len() {
        cursor_of(start + chunk.len())
    } else {
        String::new()
    };
    Json(json!({"ok": true, key: chunk, "response_metadata": {"next_cursor": next}}))
        .into_response()
}

/// A bot token is the bot user (and names its `bot_id`); a user token is the user.
async fn auth_test(headers: HeaderMap) -> Response {
    match token(&headers) {
        Err(r) => *r,
        Ok(BOT) => Json(
            json!({"ok": true, "url": "https://acme.slack.com/", "team": "Acme",
            "user": "chiefbot", "team_id": TEAM, "user_id": BOT_USER, "bot_id": "B0CHIEF01"}),
        )
        .into_response(),
        Ok(_) => Json(
            json!({"ok": true, "url": "https://acme.slack.com/", "team": "Acme",
            "user": "chief", "team_id": TEAM, "user_id": "U0CHIEF01"}),
        )
        .into_response(),
    }
}

async fn conversations_list(headers: HeaderMap, Query(q): Q) -> Response {
    if let Err(r) = token(&headers) {
        return *r;
    }
    let types = q.get("types").cloned().unwrap_or_default();
    let channels: Vec<Value> = [
        (GENERAL, "general", false),
        ("C0RANDOM01", "random", false),
        ("G0BOARD001", "board", true),
    ]
    .iter()
    .filter(|(_, _, private)| {
        types.contains(if *private {
            "private_channel"
        } else {
            "public_channel"
        })
    })
    .map(|(id, name, private)| json!({"id": id, "name": name, "is_private": private, "is_archived": false}))
    .collect();
    paged("channels", channels, &q)
}

fn history() -> Vec<Value> {
    // Newest first, as Slack answers.
    (1..=3)
        .rev()
        .map(|n| {
            json!({"type": "message", "user": "U024BE7LH", "text": format!("update {n}"),
            "ts": format!("151208595{n}.000100")})
        })
        .collect()
}

async fn conversations_history(headers: HeaderMap, Query(q): Q) -> Response {
    if let Err(r) = token(&headers) {
        return *r;
    }
    match q.get("channel").map(String::as_str) {
        Some(GENERAL) => paged("messages", history(), &q),
        _ => fail("channel_not_found"),
    }
}

async fn conversations_replies(headers: HeaderMap, Query(q): Q) -> Response {
    if let Err(r) = token(&headers) {
        return *r;
    }
    if q.get("channel").map(String::as_str) != Some(GENERAL) {
        return fail("channel_not_found");
    }
    if q.get("ts").map(String::as_str) != Some(THREAD_TS) {
        return fail("thread_not_found");
    }
    let messages = vec![
        json!({"type": "message", "text": "Q2 plan?", "ts": THREAD_TS, "thread_ts": THREAD_TS, "reply_count": 1}),
        json!({"type": "message", "text": "Draft attached", "ts": "1512085960.000300", "thread_ts": THREAD_TS}),
    ];
    paged("messages", messages, &q)
}

async fn post_message(headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = token(&headers) {
        return *r;
    }
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return fail("invalid_json");
    };
    if !json_body {
        return fail("invalid_arguments");
    }
    match msg["channel"].as_str() {
        Some(GENERAL) => {}
        Some(ARCHIVED) => return fail("is_archived"),
        _ => return fail("channel_not_found"),
    }
    if msg.get("text").is_none() && msg.get("blocks").is_none() {
        return fail("no_text");
    }
    Json(
        json!({"ok": true, "channel": GENERAL, "ts": "1512085999.000400",
        "message": {"type": "message", "bot_id": "B0CHIEF01", "text": msg["text"],
            "ts": "1512085999.000400", "thread_ts": msg.get("thread_ts")}}),
    )
    .into_response()
}

async fn search(headers: HeaderMap, Query(q): Q) -> Response {
    match token(&headers) {
        Err(r) => return *r,
        Ok(BOT) => return fail("not_allowed_token_type"),
        Ok(_) => {}
    }
    let count: usize = q.get("count").and_then(|c| c.parse().ok()).unwrap_or(20);
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let all: Vec<Value> = (1..=3)
        .map(|n| {
            json!({"iid": format!("m{n}"), "text": format!("runway note {n}"),
            "channel": {"id": GENERAL, "name": "general"}, "ts": format!("151208595{n}.000100")})
        })
        .collect();
    let pages = all.len().div_ceil(count);
    let matches: Vec<Value> = all
        .iter()
        .skip(page.saturating_sub(1) * count)
        .take(count)
        .cloned()
        .collect();
    Json(json!({"ok": true, "query": q.get("query"), "messages": {
        "total": all.len(), "matches": matches,
        "paging": {"count": count, "total": all.len(), "page": page, "pages": pages}}}))
    .into_response()
}

async fn users_list(headers: HeaderMap, Query(q): Q) -> Response {
    if let Err(r) = token(&headers) {
        return *r;
    }
    let members: Vec<Value> = ["U024BE7LH", "U0GRACE01", "U0LINUS01"]
        .iter()
        .map(|id| json!({"id": id, "team_id": TEAM, "name": id.to_lowercase(), "deleted": false}))
        .collect();
    paged("members", members, &q)
}

async fn users_info(headers: HeaderMap, Query(q): Q) -> Response {
    if let Err(r) = token(&headers) {
        return *r;
    }
    match q.get("user").map(String::as_str) {
        Some("U024BE7LH") => Json(json!({"ok": true, "user": {"id": "U024BE7LH",
            "team_id": TEAM, "name": "ada", "real_name": "Ada Lovelace",
            "profile": {"email": "ada@example.com"}}}))
        .into_response(),
        _ => fail("user_not_found"),
    }
}

pub async fn start() -> Fake {
    Fake::start(
        Router::new()
            .route(&format!("{BASE}/auth.test"), get(auth_test).post(auth_test))
            .route(
                &format!("{BASE}/conversations.list"),
                get(conversations_list),
            )
            .route(
                &format!("{BASE}/conversations.history"),
                get(conversations_history),
            )
            .route(
                &format!("{BASE}/conversations.replies"),
                get(conversations_replies),
            )
            .route(&format!("{BASE}/chat.postMessage"), post(post_message))
            .route(&format!("{BASE}/search.messages"), get(search))
            .route(&format!("{BASE}/users.list"), get(users_list))
            .route(&format!("{BASE}/users.info"), get(users_info)),
    )
    .await
}

//! Discord REST API v10 as documented: `Bot <token>` or `Bearer <token>` authorization (401
//! `{"message": "401: Unauthorized", "code": 0}` otherwise), `{message, code}` errors, snowflake
//! ids, lists paged by `after` (guilds, members) and `before`/`after`/`around` (messages, always
//! newest first), and message creation from JSON.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Json, Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::connectors::fake::Fake;

pub const BASE: &str = "/api/v10";
pub const BOT: &str = "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs";
/// An OAuth user access token.
pub const USER_ACCESS: &str = "discord-user-access-6qfZ3x";
pub const GUILD: &str = "197038439483310086";
pub const CHANNEL: &str = "41771983423143937";
/// A channel the bot cannot see.
pub const HIDDEN: &str = "41771983423143999";
pub const MEMBER: &str = "80351110224678912";

fn discord_error(status: u16, code: u32, message: &str) -> Response {
    (
        StatusCode::from_u16(status).expect("a status"),
        Json(json!({"message": message, "code": code})),
    )
        .into_response()
}

/// Who is calling: the bot or an OAuth user; Discord's 401 otherwise.
fn caller(headers: &HeaderMap) -> Result<&'static str, Box<Response>> {
    let got = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if got == Some(format!("Bot {BOT}").as_str()) {
        Ok("bot")
    } else if got == Some(format!("Bearer {USER_ACCESS}").as_str()) {
        Ok("user")
    } else {
        Err(Box::new(discord_error(401, 0, "401: Unauthorized")))
    }
}

type Q = Query<HashMap<String, String>>;

fn num(q: &HashMap<String, String>, key: &str) -> Option<u64> {
    q.get(key).and_then(|v| v.parse().ok())
}

/// Items with ids greater than `after`, ascending, at most `limit`.
fn after_page(mut items: Vec<(u64, Value)>, q: &HashMap<String, String>, max: u64) -> Response {
    let limit = num(q, "limit").unwrap_or(max).min(max) as usize;
    let after = num(q, "after").unwrap_or(0);
    items.sort_by_key(|(id, _)| *id);
    let page: Vec<Value> = items
        .into_iter()
        .filter(|(id, _)| *id > after)
        .take(limit)
        .map(|(_, v)| v)
        .collect();
    Json(Value::Array(page)).into_response()
}

async fn me(headers: HeaderMap) -> Response {
    match caller(&headers) {
        Err(r) => *r,
        Ok("bot") => Json(
            json!({"id": "80351110224678900", "username": "chief-of-staff",
            "discriminator": "0", "bot": true}),
        )
        .into_response(),
        Ok(_) => {
            Json(json!({"id": MEMBER, "username": "ada", "discriminator": "0"})).into_response()
        }
    }
}

async fn guilds(headers: HeaderMap, Query(q): Q) -> Response {
    if let Err(r) = caller(&headers) {
        return *r;
    }
    let items = (1..=3u64)
        .map(|n| {
            let id = 197038439483310085 + n;
            (
                id,
                json!({"id": id.to_string(), "name": format!("Guild {n}"), "owner": n == 1,
                "permissions": "2147483647"}),
            )
        })
        .collect();
    after_page(items, &q, 200)
}

async fn guild(headers: HeaderMap, Path(id): Path<String>, Query(q): Q) -> Response {
    if let Err(r) = caller(&headers) {
        return *r;
    }
    if id != GUILD {
        return discord_error(404, 10004, "Unknown Guild");
    }
    let mut g = json!({"id": GUILD, "name": "Guild 1", "owner_id": MEMBER});
    if q.get("with_counts").map(String::as_str) == Some("true") {
        g["approximate_member_count"] = json!(42);
        g["approximate_presence_count"] = json!(7);
    }
    Json(g).into_response()
}

async fn channels(headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = caller(&headers) {
        return *r;
    }
    if id != GUILD {
        return discord_error(404, 10004, "Unknown Guild");
    }
    Json(json!([
        {"id": CHANNEL, "type": 0, "guild_id": GUILD, "name": "general", "position": 0},
        {"id": "41771983423143938", "type": 2, "guild_id": GUILD, "name": "voice", "position": 1},
    ]))
    .into_response()
}

/// Messages 1 to 5 of `CHANNEL`, ids ascending with time.
fn message_ids() -> Vec<u64> {
    (1..=5).map(|n| 1_100_000_000_000_000_000 + n).collect()
}

pub fn message_id(n: u64) -> String {
    (1_100_000_000_000_000_000 + n).to_string()
}

fn message(id: u64) -> Value {
    json!({"id": id.to_string(), "channel_id": CHANNEL, "type": 0,
        "content": format!("message {}", id - 1_100_000_000_000_000_000),
        "author": {"id": MEMBER, "username": "ada"}})
}

async fn messages(headers: HeaderMap, Path(id): Path<String>, Query(q): Q) -> Response {
    if let Err(r) = caller(&headers) {
        return *r;
    }
    if id == HIDDEN {
        return discord_error(403, 50001, "Missing Access");
    }
    if id != CHANNEL {
        return discord_error(404, 10003, "Unknown Channel");
    }
    let limit = num(&q, "limit").unwrap_or(50).min(100) as usize;
    let ids = message_ids();
    let mut picked: Vec<u64> = if let Some(after) = num(&q, "after") {
        // The oldest `limit` after it...
        ids.into_iter().filter(|i| *i > after).take(limit).collect()
    } else {
        let before = num(&q, "before").unwrap_or(u64::MAX);
        ids.into_iter()
            .rev()
            .filter(|i| *i < before)
            .take(limit)
            .collect()
    };
    // ...answered newest first, like every message list.
    picked.sort_unstable_by(|a, b| b.cmp(a));
    Json(Value::Array(picked.into_iter().map(message).collect())).into_response()
}

async fn create_message(headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(r) = caller(&headers) {
        return *r;
    }
    if id != CHANNEL {
        return discord_error(404, 10003, "Unknown Channel");
    }
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        == Some("application/json");
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return discord_error(400, 50109, "The request body contains invalid JSON.");
    };
    if !json_body {
        return discord_error(400, 50109, "The request body contains invalid JSON.");
    }
    if msg.get("content").is_none() && msg.get("embeds").is_none() {
        return discord_error(400, 50006, "Cannot send an empty message");
    }
    Json(
        json!({"id": message_id(6), "channel_id": CHANNEL, "type": 0,
        "content": msg.get("content").cloned().unwrap_or_default(),
        "embeds": msg.get("embeds").cloned().unwrap_or(json!([])),
        "message_reference": msg.get("message_reference")}),
    )
    .into_response()
}

fn member(id: u64, name: &str) -> Value {
    json!({"user": {"id": id.to_string(), "username": name}, "nick": null, "roles": [],
        "joined_at": "2024-01-01T00:00:00.000000+00:00"})
}

async fn members(headers: HeaderMap, Path(id): Path<String>, Query(q): Q) -> Response {
    match caller(&headers) {
        Err(r) => return *r,
        // Listing members needs the bot (and its Server Members intent).
        Ok("user") => return discord_error(403, 50001, "Missing Access"),
        Ok(_) => {}
    }
    if id != GUILD {
        return discord_error(404, 10004, "Unknown Guild");
    }
    let items = [
        (80351110224678912_u64, "ada"),
        (80351110224678913, "grace"),
        (80351110224678914, "linus"),
    ]
    .iter()
    .map(|(id, n)| (*id, member(*id, n)))
    .collect();
    after_page(items, &q, 1000)
}

async fn one_member(headers: HeaderMap, Path((guild, user)): Path<(String, String)>) -> Response {
    if let Err(r) = caller(&headers) {
        return *r;
    }
    if guild != GUILD {
        return discord_error(404, 10004, "Unknown Guild");
    }
    if user != MEMBER {
        return discord_error(404, 10007, "Unknown Member");
    }
    Json(member(80351110224678912, "ada")).into_response()
}

pub async fn start() -> Fake {
    Fake::start(
        Router::new()
            .route(&format!("{BASE}/users/@me"), get(me))
            .route(&format!("{BASE}/users/@me/guilds"), get(guilds))
            .route(&format!("{BASE}/guilds/{{id}}"), get(guild))
            .route(&format!("{BASE}/guilds/{{id}}/channels"), get(channels))
            .route(&format!("{BASE}/guilds/{{id}}/members"), get(members))
            .route(
                &format!("{BASE}/guilds/{{guild}}/members/{{user}}"),
                get(one_member),
            )
            .route(
                &format!("{BASE}/channels/{{id}}/messages"),
                get(messages).post(create_message),
            ),
    )
    .await
}

//! Zoom REST API v2 as documented: Bearer access tokens (401 `{code: 124, message}` for a bad
//! one), `{code, message}` errors, lists paged by `page_size` / `next_page_token` (an empty
//! token on the last page), recording files with `download_url`s on a web host (here the same
//! origin) that stream the file, and the OAuth token endpoint answering `grant_type=
//! refresh_token` with HTTP Basic client authentication and a rotated refresh token.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Form, Json, Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::connectors::fake::Fake;

pub const BASE: &str = "/v2";
/// The access token the fake accepts from the start.
pub const ACCESS: &str = "zoom-access-7d1f0c2b";
/// A token Zoom no longer accepts (expired or revoked).
pub const STALE: &str = "zoom-access-stale-51c2";
pub const REFRESH: &str = "zoom-refresh-2e8d41";
/// What a refresh issues.
pub const REFRESHED: &str = "zoom-access-refreshed-93ab";
pub const ROTATED_REFRESH: &str = "zoom-refresh-rotated-6f0a";
pub const CLIENT_ID: &str = "zoom-client-id";
pub const CLIENT_SECRET: &str = "zoom-client-secret-77";

pub const MEETING: &str = "85746065432";
/// A meeting whose recording has no transcript.
pub const NO_TRANSCRIPT: &str = "11122233344";
pub const USER_ID: &str = "KDcuGIm1QgePTO8WbOqwIQ";
/// Size of the fake recording: several chunks.
pub const VIDEO_BYTES: usize = 256 * 1024;
pub const CHUNK: usize = 32 * 1024;
pub const VTT: &str = "WEBVTT\n\n1\n00:00:01.000 --> 00:00:04.000\nAda: Welcome to the board meeting.\n\n2\n00:00:04.500 --> 00:00:07.000\nGrace: Revenue is up 20%.\n";

pub fn video() -> Vec<u8> {
    (0..VIDEO_BYTES).map(|i| (i % 253) as u8).collect()
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn zoom_error(status: u16, code: u32, message: &str) -> Response {
    (
        StatusCode::from_u16(status).expect("a status"),
        Json(json!({"code": code, "message": message})),
    )
        .into_response()
}

/// Zoom's 401 unless the token is one it issued and still honours.
fn check(headers: &HeaderMap) -> Option<Response> {
    let got = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let ok = [ACCESS, REFRESHED]
        .iter()
        .any(|t| got == Some(bearer(t).as_str()));
    (!ok).then(|| zoom_error(401, 124, "Invalid access token."))
}

type Q = Query<HashMap<String, String>>;

/// A page of `items`: `page_size` in, `next_page_token` out ("" on the last page). Tokens are
/// opaque strings naming the next start.
fn page_of(
    key: &str,
    items: Vec<Value>,
    q: &HashMap<String, String>,
) -> Result<Value, Box<Response>> {
    let size: usize = q
        .get("page_size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let start: usize = match q.get("next_page_token").map(String::as_str) {
        None | Some("") => 0,
        Some(t) => match t.strip_prefix("npt-").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return Err(Box::new(zoom_error(400, 300, "Invalid next_page_token."))),
        },
    };
    let chunk: Vec<Value> = items.iter().skip(start).take(size).cloned().collect();
    let next = if start + chunk.len() < items.len() {
        format!("npt-{}", start + chunk.len())
    } else {
        String::new()
    };
    Ok(json!({
        "page_size": size,
        "total_records": items.len(),
        "next_page_token": next,
        key: chunk,
    }))
}

fn page(key: &str, items: Vec<Value>, q: &HashMap<String, String>) -> Response {
    match page_of(key, items, q) {
        Ok(v) => Json(v).into_response(),
        Err(r) => *r,
    }
}

async fn me(headers: HeaderMap) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    Json(
        json!({"id": USER_ID, "email": "founder@example.com", "first_name": "Ada",
        "type": 2, "account_id": "acc-1"}),
    )
    .into_response()
}

fn meetings() -> Vec<Value> {
    (1..=3)
        .map(|n| {
            json!({"id": 85746065430_u64 + n, "topic": format!("Board sync {n}"),
            "type": 2, "start_time": format!("2024-05-0{n}T15:00:00Z"), "duration": 30})
        })
        .collect()
}

async fn list_meetings(headers: HeaderMap, Path(user): Path<String>, Query(q): Q) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if user != "me" && user != USER_ID {
        return zoom_error(404, 1001, "User does not exist.");
    }
    page("meetings", meetings(), &q)
}

async fn meeting(headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if id != MEETING {
        return zoom_error(404, 3001, &format!("Meeting does not exist: {id}."));
    }
    Json(
        json!({"id": 85746065432_u64, "uuid": "4444AAAiAAAAAiAiAiiAii==",
        "topic": "Board meeting", "type": 2, "duration": 60, "timezone": "UTC",
        "join_url": "https://us02web.zoom.us/j/85746065432"}),
    )
    .into_response()
}

/// The Host the request came to: download URLs point back at it, as Zoom's point at its web
/// host.
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

fn recording(headers: &HeaderMap, id: &str) -> Value {
    let origin = origin(headers);
    let mut files = vec![json!({
        "id": "f-mp4", "meeting_id": "4444AAAiAAAAAiAiAiiAii==", "file_type": "MP4",
        "file_extension": "MP4", "file_size": VIDEO_BYTES, "status": "completed",
        "recording_type": "shared_screen_with_speaker_view",
        "download_url": format!("{origin}/rec/download/f-mp4"),
    })];
    if id != NO_TRANSCRIPT {
        files.push(json!({
            "id": "f-vtt", "meeting_id": "4444AAAiAAAAAiAiAiiAii==", "file_type": "TRANSCRIPT",
            "file_extension": "VTT", "file_size": VTT.len(), "status": "completed",
            "recording_type": "audio_transcript",
            "download_url": format!("{origin}/rec/download/f-vtt"),
        }));
    }
    json!({"uuid": "4444AAAiAAAAAiAiAiiAii==", "id": id.parse::<u64>().unwrap_or(0),
        "topic": "Board meeting", "recording_count": files.len(), "recording_files": files})
}

async fn list_recordings(headers: HeaderMap, Path(user): Path<String>, Query(q): Q) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if user != "me" {
        return zoom_error(404, 1001, "User does not exist.");
    }
    if !q.contains_key("from") || !q.contains_key("to") {
        return zoom_error(400, 300, "from and to are required here.");
    }
    let items = vec![
        recording(&headers, MEETING),
        recording(&headers, NO_TRANSCRIPT),
    ];
    match page_of("meetings", items, &q) {
        Ok(mut v) => {
            // Zoom echoes the window.
            v["from"] = json!(q["from"]);
            v["to"] = json!(q["to"]);
            Json(v).into_response()
        }
        Err(r) => *r,
    }
}

async fn meeting_recordings(headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if id != MEETING && id != NO_TRANSCRIPT && !id.contains('=') && !id.contains('%') {
        return zoom_error(404, 3301, "This recording does not exist.");
    }
    Json(recording(&headers, &id)).into_response()
}

async fn participants(headers: HeaderMap, Path(id): Path<String>, Query(q): Q) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if id != MEETING {
        return zoom_error(404, 3001, &format!("Meeting does not exist: {id}."));
    }
    let people: Vec<Value> = ["Ada", "Grace", "Linus"]
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"id": format!("p{i}"), "name": n, "user_email": format!("{}@example.com", n.to_lowercase())}))
        .collect();
    page("participants", people, &q)
}

/// A recording file on Zoom's web host: streamed in several chunks, with its length.
async fn download(headers: HeaderMap, Path(file): Path<String>) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    match file.as_str() {
        "f-mp4" => {
            let chunks: Vec<Result<Bytes, Infallible>> = video()
                .chunks(CHUNK)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            (
                [
                    (header::CONTENT_TYPE, "video/mp4".to_owned()),
                    (header::CONTENT_LENGTH, VIDEO_BYTES.to_string()),
                ],
                Body::from_stream(futures::stream::iter(chunks)),
            )
                .into_response()
        }
        "f-vtt" => ([(header::CONTENT_TYPE, "text/vtt")], VTT).into_response(),
        _ => zoom_error(404, 3301, "This recording does not exist."),
    }
}

/// Zoom's token endpoint: HTTP Basic client authentication, refresh tokens rotate.
async fn token(headers: HeaderMap, Form(form): Form<HashMap<String, String>>) -> Response {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let got = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if got != Some(basic.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"reason": "Invalid client_id or client_secret", "error": "invalid_client"}),
            ),
        )
            .into_response();
    }
    let grant = form.get("grant_type").map(String::as_str);
    let presented = form.get("refresh_token").map(String::as_str);
    if grant != Some("refresh_token") || presented != Some(REFRESH) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"reason": "Invalid Token!", "error": "invalid_grant"})),
        )
            .into_response();
    }
    Json(json!({"access_token": REFRESHED, "token_type": "bearer",
        "refresh_token": ROTATED_REFRESH, "expires_in": 3599,
        "scope": "meeting:read recording:read user:read"}))
    .into_response()
}

pub async fn start() -> Fake {
    Fake::start(
        Router::new()
            .route(&format!("{BASE}/users/me"), get(me))
            .route(
                &format!("{BASE}/users/{{user}}/meetings"),
                get(list_meetings),
            )
            .route(
                &format!("{BASE}/users/{{user}}/recordings"),
                get(list_recordings),
            )
            .route(&format!("{BASE}/meetings/{{id}}"), get(meeting))
            .route(
                &format!("{BASE}/meetings/{{id}}/recordings"),
                get(meeting_recordings),
            )
            .route(
                &format!("{BASE}/past_meetings/{{id}}/participants"),
                get(participants),
            )
            .route("/rec/download/{file}", get(download))
            .route("/oauth/token", post(token)),
    )
    .await
}

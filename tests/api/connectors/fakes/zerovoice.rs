//! ZeroVoice = the Twilio REST API 2010-04-01: Basic auth with the account SID and auth token,
//! form-encoded POSTs, `{code, message, more_info, status}` errors, lists with
//! `next_page_uri`, recording media as `.mp3` (served directly) or `.wav` (a redirect to a media
//! path on the same host, as Twilio's media URLs can be).

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, Json, Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::connectors::fake::{Fake, require_auth};

pub const SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const TOKEN: &str = "zv-auth-token-4b7f9c2e11";
pub const BASE: &str = "/2010-04-01";
pub const RECORDING: &str = "RE0123456789abcdef0123456789abcdef";
/// Size of the fake recording: large enough to arrive in several chunks.
pub const AUDIO_BYTES: usize = 300_000;

pub fn audio() -> Vec<u8> {
    (0..AUDIO_BYTES).map(|i| (i % 251) as u8).collect()
}

pub fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    )
}

fn twilio_error(status: u16, code: u32, message: &str) -> Response {
    (
        StatusCode::from_u16(status).expect("a status"),
        Json(json!({"code": code, "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status})),
    )
        .into_response()
}

fn check(headers: &HeaderMap, account: &str) -> Option<Response> {
    require_auth(
        headers,
        &basic(),
        json!({"code": 20003, "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}),
    )
    .or_else(|| {
        (account != SID).then(|| twilio_error(404, 20404, "The requested resource was not found"))
    })
}

type Q = Query<HashMap<String, String>>;

fn sid(prefix: &str, n: u32) -> String {
    format!("{prefix}{n:032x}")
}

/// A Twilio list page: `PageSize`, `Page` and `PageToken` in, `next_page_uri` out.
fn list(key: &str, path: &str, items: Vec<Value>, q: &HashMap<String, String>) -> Response {
    let size: usize = q.get("PageSize").and_then(|s| s.parse().ok()).unwrap_or(50);
    let page: usize = q.get("Page").and_then(|s| s.parse().ok()).unwrap_or(0);
    if page > 0 && q.get("PageToken").map(String::as_str) != Some(&format!("PT{page}")) {
        return twilio_error(400, 20001, "Invalid PageToken");
    }
    let start = page * size;
    let chunk: Vec<Value> = items.iter().skip(start).take(size).cloned().collect();
    let next = (start + chunk.len() < items.len()).then(|| {
        format!(
            "{BASE}/Accounts/{SID}/{path}?PageSize={size}&Page={}&PageToken=PT{}",
            page + 1,
            page + 1
        )
    });
    Json(json!({
        key: chunk,
        "page": page,
        "page_size": size,
        "uri": format!("{BASE}/Accounts/{SID}/{path}"),
        "next_page_uri": next,
    }))
    .into_response()
}

fn messages() -> Vec<Value> {
    (1..=3)
        .map(|n| json!({"sid": sid("SM", n), "to": "+14155550100", "from": "+14155550199", "body": format!("hello {n}"), "status": "delivered"}))
        .collect()
}

async fn account(headers: HeaderMap, Path(file): Path<String>) -> Response {
    let account = file.strip_suffix(".json").unwrap_or("");
    if let Some(r) = check(&headers, account) {
        return r;
    }
    Json(json!({"sid": SID, "friendly_name": "FounderHouse test", "status": "active", "type": "Full"})).into_response()
}

async fn list_messages(headers: HeaderMap, Path(account): Path<String>, Query(q): Q) -> Response {
    if let Some(r) = check(&headers, &account) {
        return r;
    }
    list("messages", "Messages.json", messages(), &q)
}

async fn send_message(
    headers: HeaderMap,
    Path(account): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(r) = check(&headers, &account) {
        return r;
    }
    let to = form.get("To").cloned().unwrap_or_default();
    if to == "+15005550001" {
        return twilio_error(
            400,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    (
        StatusCode::CREATED,
        Json(json!({"sid": sid("SM", 9), "to": to, "from": form.get("From"), "body": form.get("Body"), "status": "queued"})),
    )
        .into_response()
}

async fn one_message(
    headers: HeaderMap,
    Path((account, file)): Path<(String, String)>,
) -> Response {
    if let Some(r) = check(&headers, &account) {
        return r;
    }
    let id = file.strip_suffix(".json").unwrap_or("");
    match messages().into_iter().find(|m| m["sid"] == id) {
        Some(m) => Json(m).into_response(),
        None => twilio_error(404, 20404, "The requested resource was not found"),
    }
}

async fn list_calls(headers: HeaderMap, Path(account): Path<String>, Query(q): Q) -> Response {
    if let Some(r) = check(&headers, &account) {
        return r;
    }
    let calls: Vec<Value> = (1..=2)
        .map(|n| json!({"sid": sid("CA", n), "status": "completed", "to": "+14155550100"}))
        .filter(|c| q.get("Status").is_none_or(|s| c["status"] == s.as_str()))
        .collect();
    list("calls", "Calls.json", calls, &q)
}

async fn make_call(
    headers: HeaderMap,
    Path(account): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(r) = check(&headers, &account) {
        return r;
    }
    (
        StatusCode::CREATED,
        Json(json!({"sid": sid("CA", 7), "to": form.get("To"), "from": form.get("From"), "url": form.get("Url"), "status": "queued"})),
    )
        .into_response()
}

async fn list_recordings(headers: HeaderMap, Path(account): Path<String>, Query(q): Q) -> Response {
    if let Some(r) = check(&headers, &account) {
        return r;
    }
    let recs = vec![
        json!({"sid": RECORDING, "call_sid": sid("CA", 1), "duration": "42", "status": "completed"}),
    ];
    list("recordings", "Recordings.json", recs, &q)
}

async fn recording(headers: HeaderMap, Path((account, file)): Path<(String, String)>) -> Response {
    if let Some(r) = check(&headers, &account) {
        return r;
    }
    let (id, ext) = file.rsplit_once('.').unwrap_or((&file, ""));
    if id != RECORDING {
        return twilio_error(404, 20404, "The requested resource was not found");
    }
    match ext {
        "json" => Json(json!({"sid": RECORDING, "duration": "42", "status": "completed",
            "media_url": format!("https://api.twilio.com{BASE}/Accounts/{SID}/Recordings/{RECORDING}")})).into_response(),
        "mp3" => ([(header::CONTENT_TYPE, "audio/mpeg")], Bytes::from(audio())).into_response(),
        "wav" => (
            StatusCode::FOUND,
            [(header::LOCATION, format!("/media/{RECORDING}.wav"))],
        )
            .into_response(),
        _ => twilio_error(404, 20404, "The requested resource was not found"),
    }
}

/// The media host behind the redirect: the same origin here, so credentials go along.
async fn media(headers: HeaderMap) -> Response {
    if let Some(r) = check(&headers, SID) {
        return r;
    }
    (
        [(header::CONTENT_TYPE, "audio/x-wav")],
        Bytes::from(audio()),
    )
        .into_response()
}

async fn transcriptions(
    headers: HeaderMap,
    Path((account, rec)): Path<(String, String)>,
    Query(q): Q,
) -> Response {
    if let Some(r) = check(&headers, &account) {
        return r;
    }
    let items = vec![
        json!({"sid": sid("TR", 1), "recording_sid": rec, "transcription_text": "Hello there", "status": "completed"}),
    ];
    list(
        "transcriptions",
        &format!("Recordings/{rec}/Transcriptions.json"),
        items,
        &q,
    )
}

pub async fn start() -> Fake {
    Fake::start(
        Router::new()
            .route(&format!("{BASE}/Accounts/{{file}}"), get(account))
            .route(
                &format!("{BASE}/Accounts/{{account}}/Messages.json"),
                get(list_messages).post(send_message),
            )
            .route(
                &format!("{BASE}/Accounts/{{account}}/Messages/{{file}}"),
                get(one_message),
            )
            .route(
                &format!("{BASE}/Accounts/{{account}}/Calls.json"),
                get(list_calls).post(make_call),
            )
            .route(
                &format!("{BASE}/Accounts/{{account}}/Recordings.json"),
                get(list_recordings),
            )
            .route(
                &format!("{BASE}/Accounts/{{account}}/Recordings/{{file}}"),
                get(recording),
            )
            .route(
                &format!("{BASE}/Accounts/{{account}}/Recordings/{{rec}}/Transcriptions.json"),
                get(transcriptions),
            )
            .route("/media/{file}", get(media)),
    )
    .await
}

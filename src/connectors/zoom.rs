//! Zoom (REST API v2): `Authorization: Bearer <access_token>` from OAuth. Lists page with
//! `page_size` and `next_page_token` (an empty token ends the list), which becomes the page
//! token.
//!
//! Recording files are not served by the API host: each file's `download_url` is on a Zoom web
//! host (`https://{zone}.zoom.us/rec/download/...`), which answers with a redirect to signed
//! storage. Such URLs are fetched only when they are https on `zoom.us` or a subdomain (the
//! hosts Zoom documents for recording files; or on the configured base URL's own origin, where a
//! test double or a proxy serves them), and only under `/rec/`: the access token goes along, so
//! an arbitrary URL would leak it and let callers probe other hosts (SSRF), and another Zoom
//! path would let a viewer send any GET to the API. The one redirect to storage is followed
//! without the token (`Session::stream`).

use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{bearer_access_token, get_users_me};
use super::schema::Pattern;
use super::transport::{ProviderRequest, bad_answer, provider_timeout, too_large};
use super::{Cursor, Download, Field, Page, Params, PlatformDef, Schema, Session, items_of};
use crate::domain::Platform;
use crate::error::{Error, ErrorKind, Reason};

/// Zoom's largest `page_size`.
const MAX_PAGE_SIZE: i64 = 300;
/// Zoom lists recordings over at most a month at a time.
const MAX_RECORDING_DAYS: i64 = 31;
/// Default recording window, ending today.
const DEFAULT_RECORDING_DAYS: i64 = 30;
/// A transcript larger than this is not returned inline (a day-long meeting is a few MB).
const MAX_TRANSCRIPT_BYTES: usize = 8 * 1024 * 1024;

pub fn platform() -> PlatformDef {
    PlatformDef::new(Platform::Zoom, bearer_access_token, get_users_me)
        .list(
            "list_meetings",
            "List a user's meetings (scheduled, live, upcoming or previous).",
            list_meetings,
        )
        .read("get_meeting", "Get one meeting's details.", get_meeting)
        .list(
            "list_recordings",
            "List a user's cloud recordings between two dates (default: the last 30 days).",
            list_recordings,
        )
        .read(
            "get_recording",
            "Get a meeting's cloud recording files, with their download URLs.",
            get_recording,
        )
        .list(
            "get_meeting_participants",
            "List the participants of a past meeting (Zoom's past_meetings report).",
            get_meeting_participants,
        )
        .download(
            "download_recording",
            "Stream a recording file from its download_url (from get_recording or \
             list_recordings); use ConnectorService.Download.",
            download_recording,
        )
        .read(
            "get_transcript",
            "Get the transcript (WebVTT text) of a meeting's cloud recording.",
            get_transcript,
        )
}

fn digits(v: &str, max: usize) -> bool {
    (1..=max).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit())
}

/// A meeting instance's UUID: base64 of 16 bytes, so letters, digits, `+`, `/` and `=`.
fn meeting_uuid(v: &str) -> bool {
    (16..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

fn http_url(v: &str) -> bool {
    Url::parse(v).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

static MEETING_ID: Pattern = Pattern {
    pattern: r"^[0-9]{1,20}$",
    check: |v| digits(v, 20),
    hint: "a meeting id (digits)",
    sample: "85746065432",
};

static MEETING_REF: Pattern = Pattern {
    pattern: r"^([0-9]{1,20}|[A-Za-z0-9+/=]{16,64})$",
    check: |v| digits(v, 20) || meeting_uuid(v),
    hint: "a meeting id (digits) or a meeting instance UUID",
    sample: "4444AAAiAAAAAiAiAiiAii==",
};

static DOWNLOAD_URL: Pattern = Pattern {
    pattern: r"^https://",
    check: http_url,
    hint: "a recording file's download_url",
    sample: "https://us02web.zoom.us/rec/download/abc123",
};

fn page_size() -> Field {
    Field::integer("page_size", "Items per page.", 1, MAX_PAGE_SIZE).default(json!(30))
}

fn user_id() -> Field {
    Field::id(
        "user_id",
        "The user: me (the token's user), a user id or an email address.",
    )
    .default(json!("me"))
}

/// A meeting id or UUID as one path segment. `Session::url` percent-encodes each segment once;
/// Zoom wants a UUID that starts with `/` or contains `//` encoded twice, so such a UUID is
/// encoded once here as well.
fn meeting_segment(id: &str) -> String {
    if !(id.starts_with('/') || id.contains("//")) {
        return id.to_owned();
    }
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One page of a Zoom list: `query` plus the page's `next_page_token`.
async fn zoom_page(
    mut s: Session,
    url: Url,
    mut query: Vec<(&'static str, String)>,
    key: &str,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    query.extend(Cursor::token(page)?.map(|t| ("next_page_token", t)));
    let mut answer = s.json(ProviderRequest::get(url).query(query)).await?;
    let items = match items_of(&mut answer, &[key]) {
        Some(items) => items,
        // Zoom may leave the list out of an empty answer.
        None if answer.get("total_records").and_then(Value::as_u64) == Some(0) => Vec::new(),
        None => return Err(bad_answer(Platform::Zoom, "no list in the answer")),
    };
    let next = answer
        .get("next_page_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(|t| Cursor::Token(t.to_owned()));
    Ok(Page::list(items, next))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListMeetings {
    user_id: String,
    r#type: String,
    page_size: i64,
}

impl Params for ListMeetings {
    fn schema() -> Schema {
        Schema::new(vec![
            user_id(),
            Field::one_of(
                "type",
                "Which meetings.",
                &[
                    "scheduled",
                    "live",
                    "upcoming",
                    "upcoming_meetings",
                    "previous_meetings",
                ],
            )
            .default(json!("scheduled")),
            page_size(),
        ])
    }
}

async fn list_meetings(s: Session, p: ListMeetings, page: Option<Cursor>) -> Result<Page, Error> {
    let url = s.url(&["users", &p.user_id, "meetings"]);
    let query = vec![("type", p.r#type), ("page_size", p.page_size.to_string())];
    zoom_page(s, url, query, "meetings", page).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetMeeting {
    meeting_id: String,
    occurrence_id: Option<String>,
}

impl Params for GetMeeting {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("meeting_id", "The meeting id.", &MEETING_ID).required(),
            Field::pattern(
                "occurrence_id",
                "One occurrence of a recurring meeting.",
                &MEETING_ID,
            ),
        ])
    }
}

async fn get_meeting(mut s: Session, p: GetMeeting) -> Result<Page, Error> {
    let url = s.url(&["meetings", &p.meeting_id]);
    let query: Vec<(&str, String)> = p
        .occurrence_id
        .map(|o| ("occurrence_id", o))
        .into_iter()
        .collect();
    Ok(Page::one(
        s.json(ProviderRequest::get(url).query(query)).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListRecordings {
    user_id: String,
    from: Option<String>,
    to: Option<String>,
    page_size: i64,
}

/// A checked `Field::date` value as a day (an RFC 3339 time is its UTC day).
fn day(v: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d").ok().or_else(|| {
        DateTime::parse_from_rfc3339(v)
            .ok()
            .map(|t| t.with_timezone(&Utc).date_naive())
    })
}

impl ListRecordings {
    /// The window asked for: `to` defaults to today (UTC), `from` to 30 days before `to`.
    fn window(&self) -> Result<(NaiveDate, NaiveDate), Error> {
        let parsed = |field: &str, v: &Option<String>| -> Result<Option<NaiveDate>, Error> {
            v.as_deref()
                .map(|v| day(v).ok_or_else(|| Error::invalid_field(field, "must be a date")))
                .transpose()
        };
        let to = parsed("params.to", &self.to)?.unwrap_or_else(|| Utc::now().date_naive());
        let from = parsed("params.from", &self.from)?
            .unwrap_or_else(|| to - chrono::Duration::days(DEFAULT_RECORDING_DAYS));
        if from > to {
            return Err(Error::invalid_field(
                "params.from",
                "must not be after params.to",
            ));
        }
        if (to - from).num_days() > MAX_RECORDING_DAYS {
            return Err(Error::invalid_field(
                "params.from",
                "must be at most a month (31 days) before params.to: Zoom lists one month at a time",
            ));
        }
        Ok((from, to))
    }
}

impl Params for ListRecordings {
    fn schema() -> Schema {
        Schema::new(vec![
            user_id(),
            Field::date(
                "from",
                "First day (YYYY-MM-DD, UTC); default 30 days before to.",
            ),
            Field::date("to", "Last day (YYYY-MM-DD, UTC); default today."),
            page_size(),
        ])
    }

    fn check(&self) -> Result<(), Error> {
        self.window().map(drop)
    }
}

async fn list_recordings(
    s: Session,
    p: ListRecordings,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let (from, to) = p.window()?;
    let url = s.url(&["users", &p.user_id, "recordings"]);
    let query = vec![
        ("from", from.format("%Y-%m-%d").to_string()),
        ("to", to.format("%Y-%m-%d").to_string()),
        ("page_size", p.page_size.to_string()),
    ];
    zoom_page(s, url, query, "meetings", page).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MeetingRef {
    meeting_id: String,
}

impl Params for MeetingRef {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern(
                "meeting_id",
                "The meeting id, or a meeting instance's UUID.",
                &MEETING_REF,
            )
            .required(),
        ])
    }
}

async fn get_recording(mut s: Session, p: MeetingRef) -> Result<Page, Error> {
    let url = s.url(&["meetings", &meeting_segment(&p.meeting_id), "recordings"]);
    Ok(Page::one(s.json(ProviderRequest::get(url)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Participants {
    meeting_id: String,
    page_size: i64,
}

impl Params for Participants {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern(
                "meeting_id",
                "The past meeting's id, or one instance's UUID.",
                &MEETING_REF,
            )
            .required(),
            page_size(),
        ])
    }
}

/// `past_meetings/{id}/participants` (any paid plan) rather than the dashboard's
/// `metrics/meetings/{id}/participants`, which needs a Business plan and dashboard scopes.
async fn get_meeting_participants(
    s: Session,
    p: Participants,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let url = s.url(&[
        "past_meetings",
        &meeting_segment(&p.meeting_id),
        "participants",
    ]);
    let query = vec![("page_size", p.page_size.to_string())];
    zoom_page(s, url, query, "participants", page).await
}

/// A recording file URL we may send the access token to: https on `zoom.us` or one of its
/// subdomains (default port), or on the configured base URL's origin, and a recording path.
/// Never credentials or a fragment in it.
fn file_url(s: &Session, raw: &str) -> Option<Url> {
    let mut url = Url::parse(raw).ok()?;
    let on_zoom = url.scheme() == "https"
        && url.port().is_none()
        // `domain()` is None for IP addresses.
        && url
            .domain()
            .is_some_and(|h| h == "zoom.us" || h.ends_with(".zoom.us"));
    let on_base = url.origin() == s.base().origin();
    if !(on_zoom || on_base)
        || !is_recording_path(url.path())
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    url.set_fragment(None);
    Some(url)
}

/// Recording files live under `/rec/` (`/rec/download/..`, `/rec/webhook_download/..`). `Url`
/// has already resolved dot segments; encoded slashes, backslashes and dots, which a server
/// might decode into another path, are refused.
fn is_recording_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.starts_with("/rec/") && !["%2f", "%5c", "%2e"].iter().any(|e| lower.contains(e))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DownloadRecording {
    download_url: String,
}

impl Params for DownloadRecording {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern(
                "download_url",
                "The file's download_url, as get_recording lists it (https on zoom.us, under /rec/).",
                &DOWNLOAD_URL,
            )
            .required(),
        ])
    }
}

async fn download_recording(mut s: Session, p: DownloadRecording) -> Result<Download, Error> {
    let url = file_url(&s, &p.download_url).ok_or_else(|| {
        Error::invalid_field(
            "params.download_url",
            "must be a Zoom recording download URL (https on zoom.us, under /rec/)",
        )
    })?;
    s.stream(ProviderRequest::get(url)).await
}

/// The transcript file of a recording: Zoom's audio transcript, else its closed captions.
fn transcript_file(recording: &Value) -> Option<&Value> {
    let files = recording.get("recording_files")?.as_array()?;
    let of_type = |t: &str| {
        files
            .iter()
            .find(|f| f.get("file_type").and_then(Value::as_str) == Some(t))
    };
    of_type("TRANSCRIPT").or_else(|| of_type("CC"))
}

async fn get_transcript(mut s: Session, p: MeetingRef) -> Result<Page, Error> {
    let url = s.url(&["meetings", &meeting_segment(&p.meeting_id), "recordings"]);
    let recording = s.json(ProviderRequest::get(url)).await?;
    let file = transcript_file(&recording).ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            Reason::TranscriptNotFound,
            "the meeting's cloud recording has no transcript (audio transcription is off, or \
             it is still processing)",
        )
        .with_metadata("platform", Platform::Zoom.as_str())
    })?;
    let file_id = file.get("id").cloned().unwrap_or(Value::Null);
    let file_type = file.get("file_type").cloned().unwrap_or(Value::Null);
    // The URL comes from Zoom's answer, but the token must still go only to Zoom.
    let download = file
        .get("download_url")
        .and_then(Value::as_str)
        .and_then(|u| file_url(&s, u))
        .ok_or_else(|| bad_answer(Platform::Zoom, "a transcript without a Zoom download URL"))?;
    let deadline = s.deadline();
    let file = s.stream(ProviderRequest::get(download)).await?;
    let content_type = file.content_type;
    let mut chunks = file.chunks;
    let mut bytes = Vec::new();
    loop {
        let next = tokio::time::timeout_at(deadline, chunks.next())
            .await
            .map_err(|_| provider_timeout(Platform::Zoom))?;
        let Some(chunk) = next else { break };
        let chunk = chunk?;
        if bytes.len() + chunk.len() > MAX_TRANSCRIPT_BYTES {
            return Err(too_large(Platform::Zoom));
        }
        bytes.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| bad_answer(Platform::Zoom, "a transcript that is not UTF-8 text"))?;
    Ok(Page::one(json!({
        "meeting_id": p.meeting_id,
        "file_id": file_id,
        "file_type": file_type,
        "content_type": content_type,
        "format": "vtt",
        "text": s.scrubber().text(&text),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_recording_paths_may_carry_the_token() {
        for ok in ["/rec/download/abc123", "/rec/webhook_download/x-Y_z"] {
            assert!(is_recording_path(ok), "{ok}");
        }
        for bad in [
            "/v2/users/me",
            "/rec",
            "/recording/download/x",
            "/rec/download%2F..%2F..%2Fv2%2Fusers%2Fme",
            "/rec/%2E%2E/v2/users/me",
            "/rec/download/..%5cv2",
        ] {
            assert!(!is_recording_path(bad), "{bad}");
        }
        let parsed = Url::parse("https://zoom.us/rec/../v2/users/me").unwrap();
        assert!(
            !is_recording_path(parsed.path()),
            "dot segments are resolved first"
        );
    }

    #[test]
    fn uuids_with_a_leading_or_double_slash_are_encoded_once_more() {
        assert_eq!(meeting_segment("85746065432"), "85746065432");
        assert_eq!(
            meeting_segment("4444AAAiAAAAAiAiAiiAii=="),
            "4444AAAiAAAAAiAiAiiAii=="
        );
        assert_eq!(
            meeting_segment("/ajXp112QmuoKj4854875=="),
            "%2FajXp112QmuoKj4854875%3D%3D"
        );
        assert_eq!(meeting_segment("ab//cd+ef=="), "ab%2F%2Fcd%2Bef%3D%3D");
    }

    #[test]
    fn meeting_references_are_ids_or_uuids_and_nothing_that_walks_a_path() {
        for ok in [
            "85746065432",
            "4444AAAiAAAAAiAiAiiAii==",
            "/ajXp112QmuoKj4854875==",
        ] {
            assert!((MEETING_REF.check)(ok), "{ok}");
        }
        for bad in ["", "..", "12 34", "abc", "a/../../users/me/x?y=1", "a.b"] {
            assert!(!(MEETING_REF.check)(bad), "{bad}");
        }
    }

    #[test]
    fn the_recording_window_defaults_to_the_last_thirty_days_and_is_at_most_a_month() {
        let p = |from: Option<&str>, to: Option<&str>| ListRecordings {
            user_id: "me".into(),
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
            page_size: 30,
        };
        let (from, to) = p(None, Some("2024-05-31")).window().unwrap();
        assert_eq!(from.to_string(), "2024-05-01");
        assert_eq!(to.to_string(), "2024-05-31");
        let (from, to) = p(None, None).window().unwrap();
        assert_eq!((to - from).num_days(), 30);
        assert_eq!(to, Utc::now().date_naive());
        let late = p(Some("2024-06-01"), Some("2024-05-01"))
            .window()
            .unwrap_err();
        assert_eq!(late.violations()[0].field, "params.from");
        let long = p(Some("2024-01-01"), Some("2024-05-01"))
            .window()
            .unwrap_err();
        assert_eq!(long.violations()[0].field, "params.from");
        let (from, _) = p(Some("2024-05-01T23:30:00-02:00"), Some("2024-05-09"))
            .window()
            .unwrap();
        assert_eq!(from.to_string(), "2024-05-02");
    }
}

//! ZeroVoice speaks the Twilio REST API (2010-04-01): HTTP Basic `account_sid:auth_token`,
//! form-encoded POSTs, JSON answers with Twilio's `{code, message, more_info, status}` errors,
//! and lists paged by `next_page_uri`, which becomes the page token (checked to stay on the
//! same host, API version and account before it is followed).

use http::Method;
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Value, json};

use super::paging::bad_token;
use super::schema::Pattern;
use super::transport::{ProviderRequest, bad_answer};
use super::{
    Auth, Cursor, Download, Field, Identity, Page, Params, PlatformDef, Schema, Session, items_of,
};
use crate::domain::Credentials;
use crate::domain::Platform;
use crate::error::Error;

pub fn platform() -> PlatformDef {
    PlatformDef::new(Platform::Zerovoice, auth, test_connection)
        .form_bodies()
        .write("send_sms", "Send an SMS (or WhatsApp) message.", send_sms)
        .write(
            "make_call",
            "Start an outbound call that runs the TwiML at twiml_url.",
            make_call,
        )
        .list(
            "list_recordings",
            "List call recordings, newest first.",
            list_recordings,
        )
        .read(
            "get_recording",
            "Get one recording's details (duration, call, status).",
            get_recording,
        )
        .download(
            "download_recording",
            "Stream a recording's audio (mp3 or wav); use ConnectorService.Download.",
            download_recording,
        )
        .list(
            "get_transcriptions",
            "List the transcriptions of a recording.",
            get_transcriptions,
        )
        .list(
            "list_messages",
            "List sent and received messages, newest first.",
            list_messages,
        )
        .read("get_message", "Get one message.", get_message)
        .list("list_calls", "List calls, newest first.", list_calls)
}

fn auth(creds: &Credentials) -> Result<Auth, Error> {
    Auth::basic(creds.require("account_sid")?, creds.require("auth_token")?)
}

/// The account resource: `GET /Accounts/{sid}.json` (the old connector built
/// `/Accounts/{sid}/.json`, which is always a 404).
async fn test_connection(mut s: Session) -> Result<Identity, Error> {
    let sid = s.credential("account_sid")?.to_owned();
    let url = s.url(&["Accounts", &format!("{sid}.json")]);
    s.json(ProviderRequest::get(url)).await?;
    Ok(Identity::default())
}

/// `/Accounts/{sid}/<segments>`.
fn account_url(s: &Session, segments: &[&str]) -> Result<Url, Error> {
    let sid = s.credential("account_sid")?;
    let mut all = vec!["Accounts", sid];
    all.extend_from_slice(segments);
    Ok(s.url(&all))
}

fn e164(v: &str) -> bool {
    let digits = v.strip_prefix('+').unwrap_or("");
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

fn phone(v: &str) -> bool {
    e164(v.strip_prefix("whatsapp:").unwrap_or(v))
}

fn sender(v: &str) -> bool {
    phone(v) || sid_of(v, &["MG"])
}

/// A Twilio SID: one of the two-letter `prefixes`, then 32 hex digits.
fn sid_of(v: &str, prefixes: &[&str]) -> bool {
    v.len() == 34
        && prefixes.iter().any(|p| v.starts_with(p))
        && v.bytes().skip(2).all(|b| b.is_ascii_hexdigit())
}

fn https_url(v: &str) -> bool {
    Url::parse(v).is_ok_and(|u| u.scheme() == "https" && u.host().is_some())
}

static PHONE: Pattern = Pattern {
    pattern: r"^(whatsapp:)?\+[1-9][0-9]{1,14}$",
    check: phone,
    hint: "an E.164 number such as +14155550100 (optionally whatsapp:+...)",
    sample: "+14155550100",
};

static SENDER: Pattern = Pattern {
    pattern: r"^((whatsapp:)?\+[1-9][0-9]{1,14}|MG[0-9a-fA-F]{32})$",
    check: sender,
    hint: "an E.164 number or a messaging service SID (MG...)",
    sample: "+14155550199",
};

static RECORDING_SID: Pattern = Pattern {
    pattern: r"^RE[0-9a-fA-F]{32}$",
    check: |v| sid_of(v, &["RE"]),
    hint: "a recording SID (RE followed by 32 hex digits)",
    sample: "RE0123456789abcdef0123456789abcdef",
};

static MESSAGE_SID: Pattern = Pattern {
    pattern: r"^(SM|MM)[0-9a-fA-F]{32}$",
    check: |v| sid_of(v, &["SM", "MM"]),
    hint: "a message SID (SM or MM followed by 32 hex digits)",
    sample: "SM0123456789abcdef0123456789abcdef",
};

static CALL_SID: Pattern = Pattern {
    pattern: r"^CA[0-9a-fA-F]{32}$",
    check: |v| sid_of(v, &["CA"]),
    hint: "a call SID (CA followed by 32 hex digits)",
    sample: "CA0123456789abcdef0123456789abcdef",
};

static HTTPS_URL: Pattern = Pattern {
    pattern: r"^https://",
    check: https_url,
    hint: "an https URL",
    sample: "https://example.com/twiml.xml",
};

const CALL_STATUSES: &[&str] = &[
    "queued",
    "ringing",
    "in-progress",
    "canceled",
    "completed",
    "failed",
    "busy",
    "no-answer",
];

fn page_size() -> Field {
    Field::integer("page_size", "Items per page.", 1, 1000).default(json!(50))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendSms {
    to: String,
    from: String,
    body: String,
}

impl Params for SendSms {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("to", "Recipient.", &PHONE).required(),
            Field::pattern(
                "from",
                "A number of the account, or a messaging service SID.",
                &SENDER,
            )
            .required(),
            Field::text("body", "The message text.", 1600).required(),
        ])
    }
}

async fn send_sms(mut s: Session, p: SendSms) -> Result<Page, Error> {
    let url = account_url(&s, &["Messages.json"])?;
    let form = vec![
        ("To".to_owned(), p.to),
        ("From".to_owned(), p.from),
        ("Body".to_owned(), p.body),
    ];
    Ok(Page::one(
        s.json(ProviderRequest::form(Method::POST, url, form))
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MakeCall {
    to: String,
    from: String,
    twiml_url: String,
}

impl Params for MakeCall {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("to", "Who to call.", &PHONE).required(),
            Field::pattern("from", "A number of the account.", &PHONE).required(),
            Field::pattern(
                "twiml_url",
                "Where Twilio fetches the call's instructions.",
                &HTTPS_URL,
            )
            .required(),
        ])
    }
}

async fn make_call(mut s: Session, p: MakeCall) -> Result<Page, Error> {
    let url = account_url(&s, &["Calls.json"])?;
    let form = vec![
        ("To".to_owned(), p.to),
        ("From".to_owned(), p.from),
        ("Url".to_owned(), p.twiml_url),
    ];
    Ok(Page::one(
        s.json(ProviderRequest::form(Method::POST, url, form))
            .await?,
    ))
}

/// One page of a Twilio list. The first page is `first` with `query`; later pages follow the
/// `next_page_uri` in the cursor, after checking it stays on our host, version and account and
/// names the same list.
async fn twilio_page(
    mut s: Session,
    list: &[&str],
    key: &str,
    query: Vec<(&str, String)>,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let first = account_url(&s, list)?;
    let url = match Cursor::token(page)? {
        None => {
            let mut u = first;
            u.query_pairs_mut().extend_pairs(query);
            u
        }
        Some(next) => follow(&first, &next)?,
    };
    let mut answer = s.json(ProviderRequest::get(url)).await?;
    let items = items_of(&mut answer, &[key])
        .ok_or_else(|| bad_answer(Platform::Zerovoice, "no list in the answer"))?;
    let next = answer
        .get("next_page_uri")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(|u| Cursor::Token(u.to_owned()));
    Ok(Page::list(items, next))
}

/// `next_page_uri` is a path on Twilio's host; it must be the first page's path (same version,
/// account and list) with another query, and nothing that could walk elsewhere.
fn follow(first: &Url, next: &str) -> Result<Url, Error> {
    let (path, query) = next.split_once('?').unwrap_or((next, ""));
    if path != first.path()
        || next.contains("..")
        || next.contains('\\')
        || next.contains('#')
        || next.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(bad_token());
    }
    let mut url = first.clone();
    url.set_query((!query.is_empty()).then_some(query));
    if url.origin() != first.origin() || url.path() != first.path() {
        return Err(bad_token());
    }
    Ok(url)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListRecordings {
    page_size: i64,
    call_sid: Option<String>,
    date_created: Option<String>,
}

impl Params for ListRecordings {
    fn schema() -> Schema {
        Schema::new(vec![
            page_size(),
            Field::pattern("call_sid", "Only recordings of this call.", &CALL_SID),
            Field::date(
                "date_created",
                "Only recordings made on this day (YYYY-MM-DD).",
            ),
        ])
    }
}

async fn list_recordings(
    s: Session,
    p: ListRecordings,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let mut query = vec![("PageSize", p.page_size.to_string())];
    query.extend(p.call_sid.map(|v| ("CallSid", v)));
    query.extend(p.date_created.map(|v| ("DateCreated", v)));
    twilio_page(s, &["Recordings.json"], "recordings", query, page).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordingRef {
    recording_sid: String,
}

impl Params for RecordingRef {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("recording_sid", "The recording.", &RECORDING_SID).required(),
        ])
    }
}

async fn get_recording(mut s: Session, p: RecordingRef) -> Result<Page, Error> {
    let url = account_url(&s, &["Recordings", &format!("{}.json", p.recording_sid)])?;
    Ok(Page::one(s.json(ProviderRequest::get(url)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DownloadRecording {
    recording_sid: String,
    format: String,
}

impl Params for DownloadRecording {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("recording_sid", "The recording.", &RECORDING_SID).required(),
            Field::one_of("format", "Audio format.", &["mp3", "wav"]).default(json!("mp3")),
        ])
    }
}

async fn download_recording(mut s: Session, p: DownloadRecording) -> Result<Download, Error> {
    let file = format!("{}.{}", p.recording_sid, p.format);
    let url = account_url(&s, &["Recordings", &file])?;
    s.stream(ProviderRequest::get(url)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Transcriptions {
    recording_sid: String,
    page_size: i64,
}

impl Params for Transcriptions {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("recording_sid", "The recording.", &RECORDING_SID).required(),
            page_size(),
        ])
    }
}

async fn get_transcriptions(
    s: Session,
    p: Transcriptions,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let query = vec![("PageSize", p.page_size.to_string())];
    twilio_page(
        s,
        &["Recordings", &p.recording_sid, "Transcriptions.json"],
        "transcriptions",
        query,
        page,
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListMessages {
    page_size: i64,
    to: Option<String>,
    from: Option<String>,
    date_sent: Option<String>,
}

impl Params for ListMessages {
    fn schema() -> Schema {
        Schema::new(vec![
            page_size(),
            Field::pattern("to", "Only messages to this number.", &PHONE),
            Field::pattern("from", "Only messages from this sender.", &SENDER),
            Field::date("date_sent", "Only messages sent on this day (YYYY-MM-DD)."),
        ])
    }
}

async fn list_messages(s: Session, p: ListMessages, page: Option<Cursor>) -> Result<Page, Error> {
    let mut query = vec![("PageSize", p.page_size.to_string())];
    query.extend(p.to.map(|v| ("To", v)));
    query.extend(p.from.map(|v| ("From", v)));
    query.extend(p.date_sent.map(|v| ("DateSent", v)));
    twilio_page(s, &["Messages.json"], "messages", query, page).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageRef {
    message_sid: String,
}

impl Params for MessageRef {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("message_sid", "The message.", &MESSAGE_SID).required(),
        ])
    }
}

async fn get_message(mut s: Session, p: MessageRef) -> Result<Page, Error> {
    let url = account_url(&s, &["Messages", &format!("{}.json", p.message_sid)])?;
    Ok(Page::one(s.json(ProviderRequest::get(url)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListCalls {
    page_size: i64,
    status: Option<String>,
    to: Option<String>,
    from: Option<String>,
}

impl Params for ListCalls {
    fn schema() -> Schema {
        Schema::new(vec![
            page_size(),
            Field::one_of("status", "Only calls in this state.", CALL_STATUSES),
            Field::pattern("to", "Only calls to this number.", &PHONE),
            Field::pattern("from", "Only calls from this number.", &PHONE),
        ])
    }
}

async fn list_calls(s: Session, p: ListCalls, page: Option<Cursor>) -> Result<Page, Error> {
    let mut query = vec![("PageSize", p.page_size.to_string())];
    query.extend(p.status.map(|v| ("Status", v)));
    query.extend(p.to.map(|v| ("To", v)));
    query.extend(p.from.map(|v| ("From", v)));
    twilio_page(s, &["Calls.json"], "calls", query, page).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_uris_are_followed_only_on_the_same_list() {
        let first = Url::parse(
            "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json",
        )
        .unwrap();
        let ok = follow(
            &first,
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json?PageSize=2&Page=1&PageToken=PAxyz",
        )
        .unwrap();
        assert_eq!(ok.host_str(), Some("api.twilio.com"));
        assert_eq!(ok.query(), Some("PageSize=2&Page=1&PageToken=PAxyz"));
        for bad in [
            "https://evil.example/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json",
            "//evil.example/x",
            "/2010-04-01/Accounts/ACffffffffffffffffffffffffffffffff/Messages.json?Page=1",
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls.json?Page=1",
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json/../Calls.json",
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json?a=1#x",
        ] {
            assert!(follow(&first, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phone_numbers_and_sids_are_checked() {
        assert!(phone("+14155550100"));
        assert!(phone("whatsapp:+14155550100"));
        assert!(!phone("14155550100"));
        assert!(!phone("+0123"));
        assert!(sender("MG0123456789abcdef0123456789abcdef"));
        assert!(!sid_of("RE0123", &["RE"]));
        assert!(!sid_of("CA0123456789abcdef0123456789abcdef", &["RE"]));
    }
}

//! Outlook through Microsoft Graph v1.0 (`https://graph.microsoft.com/v1.0`), `Authorization:
//! Bearer <access_token>` of the Microsoft OAuth connection, always as the user `me`. Lists
//! page with `@odata.nextLink`, an absolute URL: it becomes the page token only when it stays
//! on the configured Graph origin and under its API path, and is checked again when a token
//! comes back, so a forged token cannot send the user's token anywhere else. Errors are
//! Graph's `{error: {code, message}}`; throttling is 429 with `Retry-After` (the core waits).

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use http::Method;
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::bearer_access_token;
use super::mail::recipients_field;
use super::paging::bad_token;
use super::schema::Pattern;
use super::transport::{ProviderRequest, bad_answer};
use super::{Cursor, Field, Identity, Page, Params, PlatformDef, Schema, Session, items_of};
use crate::domain::Platform;
use crate::error::Error;

/// Graph's maximum `$top` for messages and events.
const MAX_TOP: i64 = 1000;

pub fn platform() -> PlatformDef {
    PlatformDef::new(Platform::Outlook, bearer_access_token, test_connection)
        .list(
            "list_messages",
            "List the messages of a mail folder (inbox by default), newest first, optionally \
             filtered with an OData $filter.",
            list_messages,
        )
        .read("get_message", "Get one message with its body.", get_message)
        .write(
            "send_email",
            "Send an email as the connected user (POST /me/sendMail); answers accepted: true \
             when Graph accepted it for delivery.",
            send_email,
        )
        .list(
            "list_calendar_events",
            "List calendar events by start time; with both start and end, the occurrences in \
             that window (recurring events expanded).",
            list_calendar_events,
        )
        .write(
            "create_calendar_event",
            "Create an event in the user's calendar, inviting attendees.",
            create_calendar_event,
        )
        .list(
            "search_messages",
            "Search messages across folders (Graph $search over subject, body, people).",
            search_messages,
        )
}

async fn test_connection(mut s: Session) -> Result<Identity, Error> {
    let url = s.url(&["me"]);
    let me = s
        .json(ProviderRequest::get(url).query([("$select", "id")]))
        .await?;
    if me.get("id").is_none_or(Value::is_null) {
        return Err(bad_answer(Platform::Outlook, "no user id"));
    }
    // The id_token's `tid:oid` names the account when the grant has one; this is the fallback.
    Ok(Identity::of_account(me.get("id")))
}

/// Graph ids (messages, events, folders) are URL-safe base64 with `=` padding; well-known
/// folder names (`inbox`, `sentitems`) are words. Nothing that could leave a path segment.
fn graph_id(v: &str) -> bool {
    (1..=1024).contains(&v.len())
        && v != "."
        && v != ".."
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=' | b'.' | b'+'))
}

static GRAPH_ID: Pattern = Pattern {
    pattern: r"^[A-Za-z0-9_=.+-]{1,1024}$",
    check: graph_id,
    hint: "a Graph id (letters, digits and -_=.+) or a well-known folder name",
    sample: "AAMkAGI2TG93AAA=",
};

fn date_time(v: &str) -> bool {
    DateTime::parse_from_rfc3339(v).is_ok()
}

static START_TIME: Pattern = Pattern {
    pattern: r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$",
    check: date_time,
    hint: "an RFC 3339 date-time with an offset, such as 2024-05-01T09:00:00+02:00",
    sample: "2024-05-01T09:00:00Z",
};

static END_TIME: Pattern = Pattern {
    pattern: r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$",
    check: date_time,
    hint: "an RFC 3339 date-time with an offset, such as 2024-05-01T10:00:00+02:00",
    sample: "2024-05-01T10:00:00Z",
};

/// A checked date (`YYYY-MM-DD`, its midnight UTC) or RFC 3339 time, in UTC.
fn utc(v: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc())
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The next page link, accepted only on the Graph origin we are configured for and under its
/// API path (e.g. `/v1.0/`), without credentials or fragments. Graph rewrites the path of the
/// first request (`mailFolders('inbox')`), so the path itself is not compared.
fn on_graph(base: &Url, link: &str) -> Option<Url> {
    if link.contains('\\') || link.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return None;
    }
    let url = Url::parse(link).ok()?;
    let prefix = format!("{}/", base.path().trim_end_matches('/'));
    let ok = url.origin() == base.origin()
        && url.username().is_empty()
        && url.password().is_none()
        && url.fragment().is_none()
        && url.path().starts_with(&prefix);
    ok.then_some(url)
}

/// One page: the first request, or the caller's page token's link (checked again, since the
/// token came back from outside). The next link becomes the next token only when it is on Graph.
async fn graph_page(
    mut s: Session,
    first: ProviderRequest,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let req = match Cursor::token(page)? {
        None => first,
        Some(link) => ProviderRequest::get(on_graph(s.base(), &link).ok_or_else(bad_token)?),
    };
    let mut answer = s.json(req).await?;
    let items = items_of(&mut answer, &["value"])
        .ok_or_else(|| bad_answer(Platform::Outlook, "no value list in the answer"))?;
    let next = match answer.get("@odata.nextLink").and_then(Value::as_str) {
        None | Some("") => None,
        Some(link) => {
            if on_graph(s.base(), link).is_none() {
                tracing::warn!(
                    platform = "outlook",
                    "Graph answered a next page link off the configured API; refused"
                );
                return Err(bad_answer(
                    Platform::Outlook,
                    "a next page link outside the configured Graph API",
                ));
            }
            Some(Cursor::Token(link.to_owned()))
        }
    };
    Ok(Page::list(items, next))
}

fn top_field(default: i64) -> Field {
    Field::integer("top", "Items per page.", 1, MAX_TOP).default(json!(default))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListMessages {
    folder: String,
    top: i64,
    filter: Option<String>,
}

impl Params for ListMessages {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern(
                "folder",
                "A folder id or well-known name (inbox, sentitems, drafts, deleteditems, \
                 archive, junkemail).",
                &GRAPH_ID,
            )
            .default(json!("inbox")),
            top_field(25),
            Field::text(
                "filter",
                "An OData $filter, e.g. isRead eq false (newest-first order then is Graph's \
                 default).",
                1000,
            ),
        ])
    }
}

async fn list_messages(s: Session, p: ListMessages, page: Option<Cursor>) -> Result<Page, Error> {
    let url = s.url(&["me", "mailFolders", &p.folder, "messages"]);
    let mut query = vec![("$top", p.top.to_string())];
    match p.filter {
        // Graph refuses $orderby on a property its $filter does not name first
        // (InefficientFilter); without our order it still answers newest first.
        Some(filter) => query.push(("$filter", filter)),
        None => query.push(("$orderby", "receivedDateTime desc".to_owned())),
    }
    graph_page(s, ProviderRequest::get(url).query(query), page).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageRef {
    id: String,
}

impl Params for MessageRef {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("id", "The message id.", &GRAPH_ID).required(),
        ])
    }
}

async fn get_message(mut s: Session, p: MessageRef) -> Result<Page, Error> {
    let url = s.url(&["me", "messages", &p.id]);
    Ok(Page::one(s.json(ProviderRequest::get(url)).await?))
}

fn recipients(addresses: &[String]) -> Value {
    Value::Array(
        addresses
            .iter()
            .map(|a| json!({"emailAddress": {"address": a}}))
            .collect(),
    )
}

fn content_type(body_type: &str) -> &'static str {
    if body_type == "Text" { "Text" } else { "HTML" }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendEmail {
    to: Vec<String>,
    cc: Option<Vec<String>>,
    bcc: Option<Vec<String>>,
    subject: String,
    body: String,
    body_type: String,
    save_to_sent_items: bool,
}

impl Params for SendEmail {
    fn schema() -> Schema {
        Schema::new(vec![
            recipients_field("to", "Recipient addresses.", 1).required(),
            recipients_field("cc", "Copy addresses.", 0),
            recipients_field("bcc", "Blind copy addresses.", 0),
            Field::text("subject", "The subject.", 900).required(),
            Field::text("body", "The message body.", 1_000_000).required(),
            Field::one_of("body_type", "How the body is written.", &["HTML", "Text"])
                .default(json!("HTML")),
            Field::boolean("save_to_sent_items", "Keep a copy in Sent Items.").default(json!(true)),
        ])
    }

    fn check(&self) -> Result<(), Error> {
        // Graph builds the MIME message itself, but a line break in a subject is never
        // intended and some relays mangle it.
        if super::mail::breaks_header(&self.subject) {
            return Err(Error::invalid_field(
                "params.subject",
                "must not contain line breaks (CR or LF)",
            ));
        }
        Ok(())
    }
}

async fn send_email(mut s: Session, p: SendEmail) -> Result<Page, Error> {
    let mut message = json!({
        "subject": p.subject,
        "body": {"contentType": content_type(&p.body_type), "content": p.body},
        "toRecipients": recipients(&p.to),
    });
    if let Some(map) = message.as_object_mut() {
        if let Some(cc) = p.cc.as_deref().filter(|c| !c.is_empty()) {
            map.insert("ccRecipients".into(), recipients(cc));
        }
        if let Some(bcc) = p.bcc.as_deref().filter(|c| !c.is_empty()) {
            map.insert("bccRecipients".into(), recipients(bcc));
        }
    }
    let body = json!({"message": message, "saveToSentItems": p.save_to_sent_items});
    let url = s.url(&["me", "sendMail"]);
    // Graph answers 202 with no body.
    s.json(ProviderRequest::json(Method::POST, url, &body))
        .await?;
    Ok(Page::one(json!({"accepted": true})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListEvents {
    start: Option<String>,
    end: Option<String>,
    top: i64,
}

impl Params for ListEvents {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::date(
                "start",
                "Only events ending after this time (a date means its midnight UTC).",
            ),
            Field::date(
                "end",
                "Only events starting before this time (a date means its midnight UTC).",
            ),
            top_field(50),
        ])
    }

    fn check(&self) -> Result<(), Error> {
        if let (Some(start), Some(end)) = (
            self.start.as_deref().and_then(utc),
            self.end.as_deref().and_then(utc),
        ) && end < start
        {
            return Err(Error::invalid_field(
                "params.end",
                "must not be before params.start",
            ));
        }
        Ok(())
    }
}

async fn list_calendar_events(
    s: Session,
    p: ListEvents,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let start = p.start.as_deref().and_then(utc).map(iso);
    let end = p.end.as_deref().and_then(utc).map(iso);
    let mut query = vec![
        ("$top", p.top.to_string()),
        ("$orderby", "start/dateTime".to_owned()),
    ];
    let url = match (start, end) {
        // A window: calendarView expands recurring events into their occurrences.
        (Some(start), Some(end)) => {
            query.push(("startDateTime", start));
            query.push(("endDateTime", end));
            s.url(&["me", "calendarView"])
        }
        (start, end) => {
            // The values are our own UTC renderings of checked times, so quoting is safe.
            let filter: Vec<String> = [
                start.map(|t| format!("end/dateTime ge '{t}'")),
                end.map(|t| format!("start/dateTime lt '{t}'")),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !filter.is_empty() {
                query.push(("$filter", filter.join(" and ")));
            }
            s.url(&["me", "calendar", "events"])
        }
    };
    graph_page(s, ProviderRequest::get(url).query(query), page).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateEvent {
    subject: String,
    start: String,
    end: String,
    body: Option<String>,
    body_type: String,
    location: Option<String>,
    attendees: Option<Vec<String>>,
    is_online_meeting: Option<bool>,
}

impl Params for CreateEvent {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::text("subject", "The event's title.", 255).required(),
            Field::pattern("start", "When it starts.", &START_TIME).required(),
            Field::pattern("end", "When it ends (after start).", &END_TIME).required(),
            Field::text("body", "The event's description.", 100_000),
            Field::one_of("body_type", "How the body is written.", &["HTML", "Text"])
                .default(json!("HTML")),
            Field::text("location", "Where it takes place.", 255),
            recipients_field("attendees", "Required attendees' addresses.", 0),
            Field::boolean("is_online_meeting", "Create a Teams meeting for it."),
        ])
    }

    fn check(&self) -> Result<(), Error> {
        match (utc(&self.start), utc(&self.end)) {
            (Some(start), Some(end)) if end > start => Ok(()),
            _ => Err(Error::invalid_field(
                "params.end",
                "must be after params.start",
            )),
        }
    }
}

async fn create_calendar_event(mut s: Session, p: CreateEvent) -> Result<Page, Error> {
    // Both checked in `check`; Graph takes a wall-clock time and its zone, so send UTC.
    let (Some(start), Some(end)) = (utc(&p.start), utc(&p.end)) else {
        return Err(Error::invalid_field(
            "params.start",
            "must be an RFC 3339 date-time",
        ));
    };
    let wall = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let mut event = serde_json::Map::new();
    event.insert("subject".into(), json!(p.subject));
    event.insert(
        "start".into(),
        json!({"dateTime": wall(start), "timeZone": "UTC"}),
    );
    event.insert(
        "end".into(),
        json!({"dateTime": wall(end), "timeZone": "UTC"}),
    );
    if let Some(body) = p.body {
        event.insert(
            "body".into(),
            json!({"contentType": content_type(&p.body_type), "content": body}),
        );
    }
    if let Some(location) = p.location {
        event.insert("location".into(), json!({"displayName": location}));
    }
    if let Some(attendees) = p.attendees.filter(|a| !a.is_empty()) {
        let list: Vec<Value> = attendees
            .iter()
            .map(|a| json!({"emailAddress": {"address": a}, "type": "required"}))
            .collect();
        event.insert("attendees".into(), Value::Array(list));
    }
    if let Some(online) = p.is_online_meeting {
        event.insert("isOnlineMeeting".into(), json!(online));
    }
    let url = s.url(&["me", "calendar", "events"]);
    let req = ProviderRequest::json(Method::POST, url, &Value::Object(event));
    Ok(Page::one(s.json(req).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchMessages {
    query: String,
    top: i64,
}

impl Params for SearchMessages {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::text("query", "Words to find (KQL allowed, e.g. from:ada).", 500).required(),
            Field::integer("top", "Messages per page.", 1, 250).default(json!(25)),
        ])
    }
}

/// `$search` takes a double-quoted string: quotes and backslashes inside are escaped, so the
/// query cannot close the string and add search syntax or parameters (the whole value is
/// percent-encoded as one query parameter besides).
fn quoted(query: &str) -> String {
    let escaped = query.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

/// `$search` over messages needs no `ConsistencyLevel: eventual` header: that header is for
/// advanced queries on directory objects (users, groups). No `$orderby` either: Graph refuses
/// it together with `$search` on messages and answers newest first.
async fn search_messages(
    s: Session,
    p: SearchMessages,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let url = s.url(&["me", "messages"]);
    let query = [("$search", quoted(&p.query)), ("$top", p.top.to_string())];
    graph_page(s, ProviderRequest::get(url).query(query), page).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_are_followed_only_on_the_configured_graph_api() {
        let base = Url::parse("https://graph.microsoft.com/v1.0").unwrap();
        let ok = on_graph(
            &base,
            "https://graph.microsoft.com/v1.0/me/mailFolders('inbox')/messages?%24top=10&%24skip=10",
        )
        .unwrap();
        assert_eq!(ok.query(), Some("%24top=10&%24skip=10"));
        for bad in [
            "https://evil.example/v1.0/me/messages?$skip=10",
            "http://graph.microsoft.com/v1.0/me/messages",
            "https://graph.microsoft.com:8443/v1.0/me/messages",
            "https://graph.microsoft.com/beta/me/messages",
            "https://graph.microsoft.com/v1.0/../beta/me",
            "https://graph.microsoft.com/v1.0",
            "https://user:pw@graph.microsoft.com/v1.0/me/messages",
            "https://graph.microsoft.com/v1.0/me/messages#x",
            "https://graph.microsoft.com.evil.example/v1.0/me/messages",
            "/v1.0/me/messages",
            "https://graph.microsoft.com/v1.0/me/messages\\..",
            "https://graph.microsoft.com/v1.0/me/messages?a=1 2",
        ] {
            assert!(on_graph(&base, bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn search_queries_are_quoted_with_escapes() {
        assert_eq!(quoted("budget"), "\"budget\"");
        assert_eq!(quoted(r#"a" OR from:eve \"#), r#""a\" OR from:eve \\""#);
    }

    #[test]
    fn graph_ids_cannot_leave_a_path_segment() {
        assert!(graph_id("AAMkAGI2TG93AAA="));
        assert!(graph_id("inbox"));
        for bad in ["", ".", "..", "a/b", "a b", "a%2F", "a?b", "a#b"] {
            assert!(!graph_id(bad), "{bad}");
        }
    }

    #[test]
    fn dates_read_as_utc() {
        assert_eq!(
            utc("2024-05-01").map(iso).as_deref(),
            Some("2024-05-01T00:00:00Z")
        );
        assert_eq!(
            utc("2024-05-01T09:30:00+02:00").map(iso).as_deref(),
            Some("2024-05-01T07:30:00Z")
        );
        assert_eq!(utc("yesterday"), None);
    }
}

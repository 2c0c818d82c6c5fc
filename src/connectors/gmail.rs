//! Gmail API v1 (`https://gmail.googleapis.com/gmail/v1`), `Authorization: Bearer
//! <access_token>` of the Google OAuth connection, always as the user `me`. Lists page with
//! `pageToken`/`nextPageToken`; label filters are repeated `labelIds` parameters (the API ignores
//! a comma-joined list). Messages are sent as an RFC 2822 message, base64url-encoded in `raw`,
//! built here so no caller value can add a header line.
//!
//! Google's rate limits come as 429 or as 403 `rateLimitExceeded`/`userRateLimitExceeded`, the
//! wait written into the message ("Retry after <time>"); the core honours it on a 429, and a 403
//! rate limit is answered here as PROVIDER_RATE_LIMITED with that wait.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::bearer_access_token;
use super::mail::{breaks_header, recipients_field};
use super::schema::Ty;
use super::transport::{ProviderRequest, bad_answer, rate_limited, rejection, wait_hint};
use super::{
    Cursor, Field, Identity, NoParams, Page, Params, PlatformDef, Schema, Session, items_of,
};
use crate::domain::Platform;
use crate::error::Error;

/// Gmail's maximum `maxResults` for messages and threads.
const MAX_RESULTS: i64 = 500;
/// Base64 body lines are this long (RFC 2045 allows at most 76).
const BASE64_LINE: usize = 76;
/// UTF-8 bytes per RFC 2047 encoded word: 45 bytes make 60 base64 characters, which with
/// `=?UTF-8?B?...?=` stays under the 75-character limit of an encoded word.
const ENCODED_WORD_BYTES: usize = 45;

pub fn platform() -> PlatformDef {
    PlatformDef::new(Platform::Gmail, bearer_access_token, test_connection)
        .list(
            "list_messages",
            "List message ids (and thread ids), newest first, optionally filtered by a Gmail \
             search query and labels.",
            list_messages,
        )
        .read(
            "get_message",
            "Get one message in the chosen format (full, metadata, minimal or raw).",
            get_message,
        )
        .write(
            "send_message",
            "Send an email as the connected user (plain text or HTML).",
            send_message,
        )
        .list(
            "list_threads",
            "List thread ids with snippets, newest first, optionally filtered.",
            list_threads,
        )
        .read(
            "get_thread",
            "Get one thread with its messages.",
            get_thread,
        )
        .write(
            "modify_labels",
            "Add labels to and remove labels from a message (e.g. remove UNREAD to mark read).",
            modify_labels,
        )
        .read(
            "list_labels",
            "List the mailbox's labels, system and user.",
            list_labels,
        )
        .list(
            "search_messages",
            "Find messages with Gmail search syntax (from:, subject:, has:attachment, ...).",
            search_messages,
        )
}

async fn test_connection(mut s: Session) -> Result<Identity, Error> {
    let url = s.url(&["users", "me", "profile"]);
    let profile = call(&mut s, ProviderRequest::get(url)).await?;
    if profile.get("emailAddress").is_none_or(Value::is_null) {
        return Err(bad_answer(
            Platform::Gmail,
            "no email address in the profile",
        ));
    }
    // The id_token's subject names the account when the grant has one; this is the fallback.
    Ok(Identity::of_account(profile.get("emailAddress")))
}

/// Does a 403 say a rate limit was hit? Google's `errors[].reason` (v1 APIs) or
/// `details[].reason` (newer error model).
fn is_rate_limit(body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let reasons = ["/error/errors", "/error/details"]
        .iter()
        .filter_map(|p| v.pointer(p).and_then(Value::as_array))
        .flatten()
        .filter_map(|e| e.get("reason").and_then(Value::as_str));
    reasons.into_iter().any(|r| {
        matches!(
            r,
            "rateLimitExceeded" | "userRateLimitExceeded" | "RATE_LIMIT_EXCEEDED"
        )
    })
}

/// Sends and expects 2xx JSON, like `Session::json`, but reads a 403 rate limit as one.
async fn call(s: &mut Session, req: ProviderRequest) -> Result<Value, Error> {
    let reply = s.send(req).await?;
    if reply.status == StatusCode::FORBIDDEN && is_rate_limit(&reply.body) {
        let wait = wait_hint(reply.status, &reply.headers, &reply.body, SystemTime::now())
            .unwrap_or(Duration::from_secs(1));
        return Err(rate_limited(Platform::Gmail, wait));
    }
    if !reply.status.is_success() {
        return Err(rejection(
            Platform::Gmail,
            reply.status,
            &reply.headers,
            &reply.body,
            s.scrubber(),
        ));
    }
    if reply.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    let body = s.scrubber().bytes(&reply.body);
    serde_json::from_slice(&body).map_err(|_| bad_answer(Platform::Gmail, "not JSON"))
}

/// Query pairs of a list: the filters, then Gmail's page token when continuing.
fn list_query(
    q: Option<String>,
    label_ids: Option<Vec<String>>,
    max_results: i64,
    include_spam_trash: Option<bool>,
    page: Option<Cursor>,
) -> Result<Vec<(&'static str, String)>, Error> {
    let mut query = vec![("maxResults", max_results.to_string())];
    query.extend(q.map(|q| ("q", q)));
    // Repeated, one parameter per label: Gmail reads `labelIds=A,B` as one label named "A,B".
    query.extend(label_ids.into_iter().flatten().map(|l| ("labelIds", l)));
    query.extend(include_spam_trash.map(|b| ("includeSpamTrash", b.to_string())));
    query.extend(Cursor::token(page)?.map(|t| ("pageToken", t)));
    Ok(query)
}

/// One page of `users/me/<collection>`; the list sits under `key` (absent when empty).
async fn page_of(
    mut s: Session,
    collection: &str,
    key: &str,
    query: Vec<(&'static str, String)>,
) -> Result<Page, Error> {
    let url = s.url(&["users", "me", collection]);
    let mut answer = call(&mut s, ProviderRequest::get(url).query(query)).await?;
    if !answer.is_object() {
        return Err(bad_answer(Platform::Gmail, "not an object"));
    }
    // Gmail leaves the list out entirely when nothing matches.
    let items = items_of(&mut answer, &[key]).unwrap_or_default();
    let next = answer
        .get("nextPageToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(|t| Cursor::Token(t.to_owned()));
    Ok(Page::list(items, next))
}

fn label_ids_field(name: &'static str, description: &'static str) -> Field {
    Field::array(name, description, Ty::id(), 0, 100)
}

fn max_results_field() -> Field {
    Field::integer("max_results", "Results per page.", 1, MAX_RESULTS).default(json!(50))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListMessages {
    q: Option<String>,
    label_ids: Option<Vec<String>>,
    max_results: i64,
    include_spam_trash: Option<bool>,
}

impl Params for ListMessages {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::text(
                "q",
                "A Gmail search query (same syntax as the search box).",
                2000,
            ),
            label_ids_field(
                "label_ids",
                "Only messages with all of these label ids (e.g. INBOX, UNREAD).",
            ),
            max_results_field(),
            Field::boolean("include_spam_trash", "Include messages in SPAM and TRASH."),
        ])
    }
}

async fn list_messages(s: Session, p: ListMessages, page: Option<Cursor>) -> Result<Page, Error> {
    let query = list_query(p.q, p.label_ids, p.max_results, p.include_spam_trash, page)?;
    page_of(s, "messages", "messages", query).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchMessages {
    query: String,
    max_results: i64,
}

impl Params for SearchMessages {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::text("query", "A Gmail search query.", 2000).required(),
            max_results_field(),
        ])
    }
}

async fn search_messages(
    s: Session,
    p: SearchMessages,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let query = list_query(Some(p.query), None, p.max_results, None, page)?;
    page_of(s, "messages", "messages", query).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListThreads {
    q: Option<String>,
    label_ids: Option<Vec<String>>,
    max_results: i64,
    include_spam_trash: Option<bool>,
}

impl Params for ListThreads {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::text("q", "A Gmail search query.", 2000),
            label_ids_field("label_ids", "Only threads with all of these label ids."),
            max_results_field(),
            Field::boolean("include_spam_trash", "Include threads in SPAM and TRASH."),
        ])
    }
}

async fn list_threads(s: Session, p: ListThreads, page: Option<Cursor>) -> Result<Page, Error> {
    let query = list_query(p.q, p.label_ids, p.max_results, p.include_spam_trash, page)?;
    page_of(s, "threads", "threads", query).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetMessage {
    id: String,
    format: String,
}

impl Params for GetMessage {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::id("id", "The message id.").required(),
            Field::one_of(
                "format",
                "full: parsed payload; metadata: headers only; minimal: ids and labels; raw: \
                 the RFC 2822 message, base64url-encoded.",
                &["full", "metadata", "minimal", "raw"],
            )
            .default(json!("full")),
        ])
    }
}

async fn get_message(mut s: Session, p: GetMessage) -> Result<Page, Error> {
    let url = s.url(&["users", "me", "messages", &p.id]);
    let req = ProviderRequest::get(url).query([("format", p.format)]);
    Ok(Page::one(call(&mut s, req).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetThread {
    id: String,
    format: String,
}

impl Params for GetThread {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::id("id", "The thread id.").required(),
            Field::one_of(
                "format",
                "Format of the thread's messages.",
                &["full", "metadata", "minimal"],
            )
            .default(json!("full")),
        ])
    }
}

async fn get_thread(mut s: Session, p: GetThread) -> Result<Page, Error> {
    let url = s.url(&["users", "me", "threads", &p.id]);
    let req = ProviderRequest::get(url).query([("format", p.format)]);
    Ok(Page::one(call(&mut s, req).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModifyLabels {
    message_id: String,
    add_label_ids: Option<Vec<String>>,
    remove_label_ids: Option<Vec<String>>,
}

impl Params for ModifyLabels {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::id("message_id", "The message.").required(),
            label_ids_field("add_label_ids", "Label ids to add."),
            label_ids_field("remove_label_ids", "Label ids to remove."),
        ])
    }

    fn check(&self) -> Result<(), Error> {
        let empty = |v: &Option<Vec<String>>| v.as_ref().is_none_or(Vec::is_empty);
        if empty(&self.add_label_ids) && empty(&self.remove_label_ids) {
            return Err(Error::invalid_field(
                "params.add_label_ids",
                "or params.remove_label_ids must name a label: nothing to change",
            ));
        }
        Ok(())
    }
}

async fn modify_labels(mut s: Session, p: ModifyLabels) -> Result<Page, Error> {
    let url = s.url(&["users", "me", "messages", &p.message_id, "modify"]);
    let body = json!({
        "addLabelIds": p.add_label_ids.unwrap_or_default(),
        "removeLabelIds": p.remove_label_ids.unwrap_or_default(),
    });
    // Setting the same labels twice leaves the same labels: safe to retry.
    let req = ProviderRequest::json(Method::POST, url, &body).idempotent(true);
    Ok(Page::one(call(&mut s, req).await?))
}

async fn list_labels(mut s: Session, _: NoParams) -> Result<Page, Error> {
    let url = s.url(&["users", "me", "labels"]);
    let mut answer = call(&mut s, ProviderRequest::get(url)).await?;
    // Labels are not paged: every label comes in one answer.
    let labels = items_of(&mut answer, &["labels"]).unwrap_or_default();
    Ok(Page::list(labels, None))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendMessage {
    to: Vec<String>,
    cc: Option<Vec<String>>,
    bcc: Option<Vec<String>>,
    subject: String,
    body: String,
    body_type: String,
}

impl Params for SendMessage {
    fn schema() -> Schema {
        Schema::new(vec![
            recipients_field("to", "Recipient addresses.", 1).required(),
            recipients_field("cc", "Copy addresses.", 0),
            recipients_field("bcc", "Blind copy addresses (Gmail removes the header).", 0),
            Field::text("subject", "The subject, on one line.", 900).required(),
            Field::text("body", "The message body.", 1_000_000).required(),
            Field::one_of(
                "body_type",
                "Whether the body is plain text or HTML.",
                &["text", "html"],
            )
            .default(json!("text")),
        ])
    }

    fn check(&self) -> Result<(), Error> {
        // A line break would end the Subject header and start one of the caller's choosing.
        if breaks_header(&self.subject) {
            return Err(Error::invalid_field(
                "params.subject",
                "must not contain line breaks (CR or LF)",
            ));
        }
        Ok(())
    }
}

/// A header value as RFC 2047 encoded words when it is not plain ASCII, folded so no line
/// exceeds the RFC 5322 limits; ASCII values as they are.
fn header_value(v: &str) -> String {
    if v.is_ascii() {
        return v.to_owned();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in v.chars() {
        if chunk.len() + c.len_utf8() > ENCODED_WORD_BYTES {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| format!("=?UTF-8?B?{}?=", STANDARD.encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// The RFC 2822 message: headers from checked values only (addresses matched `EMAIL`, the
/// subject has no line break), the body base64-encoded so any text travels unchanged.
fn rfc2822(p: &SendMessage) -> String {
    let mut headers = vec![format!("To: {}", p.to.join(", "))];
    if let Some(cc) = p.cc.as_ref().filter(|c| !c.is_empty()) {
        headers.push(format!("Cc: {}", cc.join(", ")));
    }
    if let Some(bcc) = p.bcc.as_ref().filter(|c| !c.is_empty()) {
        headers.push(format!("Bcc: {}", bcc.join(", ")));
    }
    headers.push(format!("Subject: {}", header_value(&p.subject)));
    headers.push("MIME-Version: 1.0".to_owned());
    let subtype = if p.body_type == "html" {
        "html"
    } else {
        "plain"
    };
    headers.push(format!("Content-Type: text/{subtype}; charset=\"UTF-8\""));
    headers.push("Content-Transfer-Encoding: base64".to_owned());
    let encoded = STANDARD.encode(p.body.as_bytes());
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(BASE64_LINE)
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    format!("{}\r\n\r\n{}\r\n", headers.join("\r\n"), lines.join("\r\n"))
}

async fn send_message(mut s: Session, p: SendMessage) -> Result<Page, Error> {
    let raw = URL_SAFE.encode(rfc2822(&p).as_bytes());
    let url = s.url(&["users", "me", "messages", "send"]);
    let req = ProviderRequest::json(Method::POST, url, &json!({"raw": raw}));
    Ok(Page::one(call(&mut s, req).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(subject: &str, body: &str) -> SendMessage {
        SendMessage {
            to: vec!["ada@example.com".into(), "bob@example.com".into()],
            cc: Some(vec!["cy@example.com".into()]),
            bcc: None,
            subject: subject.into(),
            body: body.into(),
            body_type: "text".into(),
        }
    }

    #[test]
    fn the_message_has_crlf_headers_and_a_base64_body() {
        let m = rfc2822(&message("Board deck", "Hi all,\nsee attached.\n"));
        let (head, body) = m.split_once("\r\n\r\n").unwrap();
        assert_eq!(
            head,
            "To: ada@example.com, bob@example.com\r\nCc: cy@example.com\r\nSubject: Board deck\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\n\
             Content-Transfer-Encoding: base64"
        );
        let decoded = STANDARD.decode(body.replace("\r\n", "")).unwrap();
        assert_eq!(decoded, b"Hi all,\nsee attached.\n");
    }

    #[test]
    fn a_non_ascii_subject_is_encoded_words_on_folded_lines() {
        let subject = "Résumé ✓ ".repeat(10);
        let m = rfc2822(&message(&subject, "x"));
        let line = m.lines().find(|l| l.starts_with("Subject: ")).unwrap();
        assert!(line.starts_with("Subject: =?UTF-8?B?"));
        let words: Vec<&str> = m
            .split("\r\n")
            .skip_while(|l| !l.starts_with("Subject: "))
            .take_while(|l| l.starts_with("Subject: ") || l.starts_with(' '))
            .map(|l| l.trim_start_matches("Subject: ").trim())
            .collect();
        let decoded: String = words
            .iter()
            .map(|w| {
                let b64 = w.trim_start_matches("=?UTF-8?B?").trim_end_matches("?=");
                String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap()
            })
            .collect();
        assert_eq!(decoded, subject);
        assert!(words.iter().all(|w| w.len() <= 75));
    }

    #[test]
    fn long_bodies_are_wrapped_at_76_characters() {
        let m = rfc2822(&message("x", &"y".repeat(1000)));
        let body = m.split_once("\r\n\r\n").unwrap().1;
        assert!(body.split("\r\n").all(|l| l.len() <= 76));
    }

    #[test]
    fn google_rate_limit_reasons_are_recognised() {
        assert!(is_rate_limit(
            br#"{"error": {"code": 403, "message": "User-rate limit exceeded.", "errors": [{"reason": "userRateLimitExceeded"}]}}"#
        ));
        assert!(!is_rate_limit(
            br#"{"error": {"code": 403, "errors": [{"reason": "insufficientPermissions"}]}}"#
        ));
        assert!(!is_rate_limit(b"nope"));
    }
}

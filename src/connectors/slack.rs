//! Slack Web API: `Authorization: Bearer <token>` (the bot token `xoxb-`, or a user token
//! `xoxp-`), methods as paths (`/conversations.list`). Reads are GETs with arguments in the query
//! (Slack's preferred form for them, and idempotent so the core may retry them); `chat.postMessage`
//! posts JSON.
//!
//! Slack reports failures as HTTP 200 `{"ok": false, "error": "<code>"}`, so every answer's `ok`
//! is checked: `invalid_auth`, `not_authed`, `token_revoked`, `token_expired` and
//! `account_inactive` take the 401 path (renew once through `Session::rejected`, else
//! NEEDS_REAUTH), `missing_scope` is SCOPE_MISSING naming the scope Slack says is needed,
//! `ratelimited` is PROVIDER_RATE_LIMITED (Slack's real rate limits are HTTP 429 with
//! `Retry-After`, which the core handles), anything else PROVIDER_REJECTED with Slack's code.
//! Lists page with `cursor` / `response_metadata.next_cursor`; search pages by page number.

use std::time::{Duration, SystemTime};

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::common::bearer_access_token;
use super::schema::{Format, Pattern, Ty};
use super::transport::{
    ProviderRequest, bad_answer, provider_unavailable, rate_limited, rejection, sanitize, wait_hint,
};
use super::{Auth, Cursor, Field, Identity, Page, Params, PlatformDef, Schema, Session, items_of};
use crate::domain::Credentials;
use crate::domain::Platform;
use crate::error::{Error, ErrorKind, Reason};

/// The wait suggested for an `ok:false ratelimited` answer that names none.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);

pub fn platform() -> PlatformDef {
    PlatformDef::new(Platform::Slack, bearer_access_token, test_connection)
        .list(
            "list_channels",
            "List the conversations the token can see (public and private channels by default).",
            list_channels,
        )
        .list(
            "get_channel_history",
            "List a conversation's messages, newest first.",
            get_channel_history,
        )
        .list(
            "get_thread_replies",
            "List a thread's messages: the parent first, then its replies.",
            get_thread_replies,
        )
        .write(
            "send_message",
            "Post a message to a conversation, optionally as a reply in a thread.",
            send_message,
        )
        .list(
            "search_messages",
            "Search the workspace's messages (needs a user token granted search:read).",
            search_messages,
        )
        .list("list_users", "List the workspace's members.", list_users)
        .read("get_user", "Get one member's profile.", get_user)
}

fn is_user_token(token: &str) -> bool {
    // `xoxe.xoxp-` is a user token under token rotation.
    token.starts_with("xoxp-") || token.starts_with("xoxe.xoxp-")
}

fn scope_missing(scope: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::FailedPrecondition,
        Reason::ScopeMissing,
        format!("Slack refused: {why}; reconnect Slack granting {scope}"),
    )
    .with_metadata("platform", Platform::Slack.as_str())
    .with_metadata("scope", scope.to_owned())
}

/// Search works only with a user token: the OAuth connection's `user_token` (from `user_scope`),
/// or an `access_token` that is itself a user token.
fn user_auth(creds: &Credentials) -> Result<Auth, Error> {
    let token = creds
        .get("user_token")
        .or_else(|| creds.get("access_token").filter(|t| is_user_token(t)));
    match token {
        Some(t) => Auth::bearer(t),
        None => Err(scope_missing(
            "search:read",
            "searching messages needs a user token, and this integration has only a bot token",
        )),
    }
}

/// `auth.test`, whose `ok` says whether Slack accepts the token.
async fn test_connection(mut s: Session) -> Result<Identity, Error> {
    let url = s.url(&["auth.test"]);
    let me = call(
        &mut s,
        ProviderRequest::new(Method::POST, url).idempotent(true),
    )
    .await?;
    // A bot token's `user_id` is the bot user (and `bot_id` is set); a user token's is the user.
    let bot_user = me
        .get("bot_id")
        .and_then(|_| super::id_string(me.get("user_id")));
    Ok(Identity {
        account: super::id_string(me.get("team_id")),
        bot_user,
    })
}

/// Slack error codes about the request itself rather than the state of the workspace.
fn is_argument_error(code: &str) -> bool {
    code.starts_with("invalid_")
        || code.ends_with("_too_long")
        || matches!(
            code,
            "no_text" | "too_many_attachments" | "too_many_blocks" | "msg_too_long"
        )
}

/// Sends one method call and checks Slack's `ok`, as the module documents.
async fn call(s: &mut Session, req: ProviderRequest) -> Result<Value, Error> {
    loop {
        let reply = s.send(req.clone()).await?;
        if !reply.status.is_success() {
            return Err(rejection(
                Platform::Slack,
                reply.status,
                &reply.headers,
                &reply.body,
                s.scrubber(),
            ));
        }
        let body = s.scrubber().bytes(&reply.body).into_owned();
        let answer: Value =
            serde_json::from_slice(&body).map_err(|_| bad_answer(Platform::Slack, "not JSON"))?;
        let code = match answer.get("ok") {
            Some(Value::Bool(true)) => return Ok(answer),
            Some(Value::Bool(false)) => answer
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown_error")
                .to_owned(),
            _ => return Err(bad_answer(Platform::Slack, "no ok field")),
        };
        match code.as_str() {
            "invalid_auth" | "not_authed" | "token_revoked" | "token_expired"
            | "account_inactive" => {
                // Slack's 401: renew once and resend, or NEEDS_REAUTH.
                s.rejected().await?;
            }
            "missing_scope" => {
                let needed = answer
                    .get("needed")
                    .and_then(Value::as_str)
                    .map(|n| sanitize(n, s.scrubber()))
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "the scope this method needs".to_owned());
                return Err(
                    scope_missing(&needed, "the token lacks a scope this method needs")
                        .with_metadata("provider_code", code),
                );
            }
            "ratelimited" | "rate_limited" => {
                let wait = wait_hint(
                    StatusCode::TOO_MANY_REQUESTS,
                    &reply.headers,
                    &body,
                    SystemTime::now(),
                )
                .unwrap_or(DEFAULT_RATE_LIMIT_WAIT);
                return Err(
                    rate_limited(Platform::Slack, wait).with_metadata("provider_code", code)
                );
            }
            "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
                return Err(
                    provider_unavailable(Platform::Slack).with_metadata("provider_code", code)
                );
            }
            _ => {
                let code = sanitize(&code, s.scrubber());
                let kind = if is_argument_error(&code) {
                    ErrorKind::InvalidArgument
                } else {
                    ErrorKind::FailedPrecondition
                };
                return Err(Error::new(
                    kind,
                    Reason::ProviderRejected,
                    format!("Slack rejected the request: {code}"),
                )
                .with_metadata("platform", Platform::Slack.as_str())
                .with_metadata("provider_status", reply.status.as_str())
                .with_metadata("provider_code", code));
            }
        }
    }
}

/// One page of a cursor-paged method: `query` plus the page's `cursor`, items under `key`.
async fn cursor_page(
    mut s: Session,
    method: &str,
    mut query: Vec<(&'static str, String)>,
    key: &str,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    query.extend(Cursor::token(page)?.map(|c| ("cursor", c)));
    let url = s.url(&[method]);
    let mut answer = call(&mut s, ProviderRequest::get(url).query(query)).await?;
    let items = items_of(&mut answer, &[key])
        .ok_or_else(|| bad_answer(Platform::Slack, "no list in the answer"))?;
    // An empty next_cursor ends the list.
    let next = answer
        .pointer("/response_metadata/next_cursor")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(|c| Cursor::Token(c.to_owned()));
    Ok(Page::list(items, next))
}

fn slack_id(v: &str, prefixes: &[char]) -> bool {
    (7..=32).contains(&v.len())
        && v.starts_with(prefixes)
        && v.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// A message timestamp: seconds, a dot, microseconds (`1512085950.000216`); bounds also take
/// whole seconds.
fn ts(v: &str, exact: bool) -> bool {
    let (secs, micros) = match v.split_once('.') {
        Some((s, m)) => (s, Some(m)),
        None => (v, None),
    };
    let all_digits =
        |s: &str, max: usize| (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(secs, 12)
        && match micros {
            Some(m) => all_digits(m, 6),
            None => !exact,
        }
}

static CHANNEL: Pattern = Pattern {
    pattern: r"^[CDG][A-Z0-9]{6,31}$",
    check: |v| slack_id(v, &['C', 'D', 'G']),
    hint: "a conversation id (C..., G... or D...)",
    sample: "C024BE91L",
};

static USER: Pattern = Pattern {
    pattern: r"^[UW][A-Z0-9]{6,31}$",
    check: |v| slack_id(v, &['U', 'W']),
    hint: "a user id (U... or W...)",
    sample: "U024BE7LH",
};

static TS: Pattern = Pattern {
    pattern: r"^[0-9]{1,12}\.[0-9]{1,6}$",
    check: |v| ts(v, true),
    hint: "a message timestamp such as 1512085950.000216",
    sample: "1512085950.000216",
};

static TS_BOUND: Pattern = Pattern {
    pattern: r"^[0-9]{1,12}(\.[0-9]{1,6})?$",
    check: |v| ts(v, false),
    hint: "a Unix time in seconds, optionally with microseconds (1512085950.000216)",
    sample: "1512085950",
};

const CONVERSATION_TYPES: &[&str] = &["public_channel", "private_channel", "mpim", "im"];

fn limit(max: i64, default: i64) -> Field {
    Field::integer("limit", "Items per page.", 1, max).default(json!(default))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListChannels {
    types: Vec<String>,
    exclude_archived: bool,
    limit: i64,
}

impl Params for ListChannels {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::array(
                "types",
                "Kinds of conversation to list.",
                Ty::String {
                    min: 1,
                    max: 32,
                    format: Format::OneOf(CONVERSATION_TYPES),
                },
                1,
                4,
            )
            .default(json!(["public_channel", "private_channel"])),
            Field::boolean("exclude_archived", "Leave archived channels out.").default(json!(true)),
            limit(1000, 100),
        ])
    }
}

async fn list_channels(s: Session, p: ListChannels, page: Option<Cursor>) -> Result<Page, Error> {
    let query = vec![
        ("types", p.types.join(",")),
        ("exclude_archived", p.exclude_archived.to_string()),
        ("limit", p.limit.to_string()),
    ];
    cursor_page(s, "conversations.list", query, "channels", page).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelHistory {
    channel: String,
    limit: i64,
    oldest: Option<String>,
    latest: Option<String>,
    inclusive: Option<bool>,
}

impl Params for ChannelHistory {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("channel", "The conversation.", &CHANNEL).required(),
            limit(999, 100),
            Field::pattern("oldest", "Only messages after this time.", &TS_BOUND),
            Field::pattern("latest", "Only messages before this time.", &TS_BOUND),
            Field::boolean("inclusive", "Include messages exactly at oldest or latest."),
        ])
    }
}

async fn get_channel_history(
    s: Session,
    p: ChannelHistory,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let mut query = vec![("channel", p.channel), ("limit", p.limit.to_string())];
    query.extend(p.oldest.map(|v| ("oldest", v)));
    query.extend(p.latest.map(|v| ("latest", v)));
    query.extend(p.inclusive.map(|v| ("inclusive", v.to_string())));
    cursor_page(s, "conversations.history", query, "messages", page).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThreadReplies {
    channel: String,
    ts: String,
    limit: i64,
}

impl Params for ThreadReplies {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("channel", "The thread's conversation.", &CHANNEL).required(),
            Field::pattern("ts", "The thread's parent message timestamp.", &TS).required(),
            limit(1000, 100),
        ])
    }
}

async fn get_thread_replies(
    s: Session,
    p: ThreadReplies,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let query = vec![
        ("channel", p.channel),
        ("ts", p.ts),
        ("limit", p.limit.to_string()),
    ];
    cursor_page(s, "conversations.replies", query, "messages", page).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendMessage {
    channel: String,
    text: Option<String>,
    thread_ts: Option<String>,
    blocks: Option<Vec<Map<String, Value>>>,
    reply_broadcast: Option<bool>,
}

impl Params for SendMessage {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("channel", "The conversation to post in.", &CHANNEL).required(),
            Field::text(
                "text",
                "The message (Slack mrkdwn); with blocks, the notification fallback.",
                40_000,
            ),
            Field::pattern("thread_ts", "Reply in the thread of this message.", &TS),
            Field::array("blocks", "Block Kit layout blocks.", Ty::AnyObject, 1, 50),
            Field::boolean(
                "reply_broadcast",
                "Also show a thread reply in the channel.",
            ),
        ])
    }

    fn check(&self) -> Result<(), Error> {
        if self.text.is_none() && self.blocks.is_none() {
            return Err(Error::invalid_field(
                "params.text",
                "or params.blocks must be set: the message would be empty",
            ));
        }
        if self.reply_broadcast.is_some() && self.thread_ts.is_none() {
            return Err(Error::invalid_field(
                "params.reply_broadcast",
                "needs params.thread_ts: only thread replies are broadcast",
            ));
        }
        Ok(())
    }
}

async fn send_message(mut s: Session, p: SendMessage) -> Result<Page, Error> {
    let mut body = Map::new();
    body.insert("channel".into(), Value::String(p.channel));
    if let Some(t) = p.text {
        body.insert("text".into(), Value::String(t));
    }
    if let Some(t) = p.thread_ts {
        body.insert("thread_ts".into(), Value::String(t));
    }
    if let Some(b) = p.blocks {
        body.insert(
            "blocks".into(),
            Value::Array(b.into_iter().map(Value::Object).collect()),
        );
    }
    if let Some(r) = p.reply_broadcast {
        body.insert("reply_broadcast".into(), Value::Bool(r));
    }
    let url = s.url(&["chat.postMessage"]);
    let answer = call(
        &mut s,
        ProviderRequest::json(Method::POST, url, &Value::Object(body)),
    )
    .await?;
    Ok(Page::one(answer))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchMessages {
    query: String,
    count: i64,
    sort: String,
    sort_dir: String,
}

impl Params for SearchMessages {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::text(
                "query",
                "Slack search syntax (in:#channel, from:@user, ...).",
                500,
            )
            .required(),
            Field::integer("count", "Matches per page.", 1, 100).default(json!(20)),
            Field::one_of("sort", "Order by.", &["score", "timestamp"]).default(json!("score")),
            Field::one_of("sort_dir", "Direction.", &["desc", "asc"]).default(json!("desc")),
        ])
    }
}

/// `search.messages` pages by number; the page token holds the matches to skip.
async fn search_messages(
    mut s: Session,
    p: SearchMessages,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    // Before anything is sent: without a user token Slack can only refuse.
    s.use_auth(user_auth)?;
    let count = u64::try_from(p.count).unwrap_or(1).max(1);
    let skip = Cursor::offset(page)?;
    let number = skip / count + 1;
    let query = vec![
        ("query", p.query),
        ("count", count.to_string()),
        ("page", number.to_string()),
        ("sort", p.sort),
        ("sort_dir", p.sort_dir),
    ];
    let url = s.url(&["search.messages"]);
    let mut answer = call(&mut s, ProviderRequest::get(url).query(query)).await?;
    let pages = answer
        .pointer("/messages/paging/pages")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let items = answer
        .get_mut("messages")
        .and_then(|m| items_of(m, &["matches"]))
        .ok_or_else(|| bad_answer(Platform::Slack, "no matches in the answer"))?;
    let next = (number < pages).then(|| Cursor::Offset(number.saturating_mul(count)));
    Ok(Page::list(items, next))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListUsers {
    limit: i64,
}

impl Params for ListUsers {
    fn schema() -> Schema {
        Schema::new(vec![limit(1000, 100)])
    }
}

async fn list_users(s: Session, p: ListUsers, page: Option<Cursor>) -> Result<Page, Error> {
    let query = vec![("limit", p.limit.to_string())];
    cursor_page(s, "users.list", query, "members", page).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetUser {
    user: String,
}

impl Params for GetUser {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("user", "The member.", &USER).required(),
        ])
    }
}

async fn get_user(mut s: Session, p: GetUser) -> Result<Page, Error> {
    let url = s.url(&["users.info"]);
    let mut answer = call(&mut s, ProviderRequest::get(url).query([("user", p.user)])).await?;
    match answer.get_mut("user").map(Value::take) {
        Some(user @ Value::Object(_)) => Ok(Page::one(user)),
        _ => Err(bad_answer(Platform::Slack, "no user in the answer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_timestamps_have_slacks_shapes() {
        assert!((CHANNEL.check)("C024BE91L"));
        assert!((CHANNEL.check)("G0AB12CDE"));
        assert!(!(CHANNEL.check)("U024BE91L"));
        assert!(!(CHANNEL.check)("c024be91l"));
        assert!(!(CHANNEL.check)("C024/../x"));
        assert!((USER.check)("W012A3CDE"));
        assert!((TS.check)("1512085950.000216"));
        assert!(!(TS.check)("1512085950"));
        assert!((TS_BOUND.check)("1512085950"));
        assert!(!(TS_BOUND.check)("15.12.2024"));
        assert!(!(TS_BOUND.check)("-1"));
    }

    #[test]
    fn user_tokens_are_told_from_bot_tokens() {
        assert!(is_user_token("xoxp-1-2"));
        assert!(is_user_token("xoxe.xoxp-1-2"));
        assert!(!is_user_token("xoxb-1-2"));
        assert!(!is_user_token("xoxe.xoxb-1-2"));
    }
}

//! Discord REST API v10: `Authorization: Bot <bot_token>` when the integration has a bot token,
//! else `Bearer <access_token>` (an OAuth user token, which sees only what its scopes allow:
//! `guilds` lists the user's guilds, but reading channels needs the bot). Ids are snowflakes
//! (decimal u64). Lists page by snowflake: `after` the last guild or member id, messages
//! `before` the oldest (or `after` the newest when paging forwards); the page token carries the
//! direction and the id. Rate limits are 429 with `Retry-After` and a `retry_after` body (float
//! seconds), both honoured by the core.

use http::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::common::bearer_access_token;
use super::paging::bad_token;
use super::schema::{Pattern, Ty};
use super::transport::{ProviderRequest, bad_answer};
use super::{Auth, Cursor, Field, Identity, Page, Params, PlatformDef, Schema, Session, items_of};
use crate::domain::Credentials;
use crate::domain::Platform;
use crate::error::Error;

/// Discord's limit on a message's content.
const MAX_CONTENT: usize = 2000;

pub fn platform() -> PlatformDef {
    PlatformDef::new(Platform::Discord, auth, test_connection)
        .list(
            "list_guilds",
            "List the guilds (servers) the bot or user is in.",
            list_guilds,
        )
        .read(
            "get_guild",
            "Get one guild, with approximate member and presence counts.",
            get_guild,
        )
        .read(
            "list_guild_channels",
            "List a guild's channels (Discord answers them all at once).",
            list_guild_channels,
        )
        .list(
            "get_channel_messages",
            "List a channel's messages, newest first.",
            get_channel_messages,
        )
        .write(
            "send_message",
            "Post a message to a channel, optionally as a reply; @everyone and @here do not ping.",
            send_message,
        )
        .list(
            "list_guild_members",
            "List a guild's members by user id (needs the Server Members intent).",
            list_guild_members,
        )
        .read("get_member", "Get one guild member.", get_member)
}

fn auth(creds: &Credentials) -> Result<Auth, Error> {
    match creds.get("bot_token") {
        Some(token) => Auth::raw(&format!("Bot {token}")),
        None => bearer_access_token(creds),
    }
}

/// The bot's or user's own account.
async fn test_connection(mut s: Session) -> Result<Identity, Error> {
    let url = s.url(&["users", "@me"]);
    let me = s.json(ProviderRequest::get(url)).await?;
    Ok(Identity::of_account(me.get("id")))
}

fn snowflake(v: &str) -> bool {
    (1..=20).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) && v.parse::<u64>().is_ok()
}

static SNOWFLAKE: Pattern = Pattern {
    pattern: r"^[0-9]{1,20}$",
    check: snowflake,
    hint: "a Discord id (a snowflake: digits)",
    sample: "175928847299117063",
};

/// The numeric id at `pointer` of each item.
fn ids(items: &[Value], pointer: &str) -> Vec<u64> {
    items
        .iter()
        .filter_map(|i| i.pointer(pointer)?.as_str()?.parse().ok())
        .collect()
}

/// After a full page, the next one starts after the largest id seen.
fn next_after(items: &[Value], pointer: &str, limit: i64) -> Option<Cursor> {
    let full = i64::try_from(items.len()).unwrap_or(i64::MAX) >= limit;
    let last = ids(items, pointer).into_iter().max()?;
    full.then(|| Cursor::Token(last.to_string()))
}

/// A page token's snowflake (only ones we issued pass `SNOWFLAKE` again).
fn token_id(page: Option<Cursor>) -> Result<Option<String>, Error> {
    match Cursor::token(page)? {
        Some(t) if !snowflake(&t) => Err(bad_token()),
        t => Ok(t),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListGuilds {
    limit: i64,
    with_counts: bool,
}

impl Params for ListGuilds {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::integer("limit", "Guilds per page.", 1, 200).default(json!(200)),
            Field::boolean(
                "with_counts",
                "Include approximate member and presence counts.",
            )
            .default(json!(false)),
        ])
    }
}

async fn list_guilds(mut s: Session, p: ListGuilds, page: Option<Cursor>) -> Result<Page, Error> {
    let mut query = vec![
        ("limit", p.limit.to_string()),
        ("with_counts", p.with_counts.to_string()),
    ];
    query.extend(token_id(page)?.map(|a| ("after", a)));
    let url = s.url(&["users", "@me", "guilds"]);
    let mut answer = s.json(ProviderRequest::get(url).query(query)).await?;
    let items = items_of(&mut answer, &[])
        .ok_or_else(|| bad_answer(Platform::Discord, "no list of guilds"))?;
    let next = next_after(&items, "/id", p.limit);
    Ok(Page::list(items, next))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GuildRef {
    guild_id: String,
}

impl Params for GuildRef {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("guild_id", "The guild.", &SNOWFLAKE).required(),
        ])
    }
}

async fn get_guild(mut s: Session, p: GuildRef) -> Result<Page, Error> {
    let url = s.url(&["guilds", &p.guild_id]);
    let req = ProviderRequest::get(url).query([("with_counts", "true")]);
    Ok(Page::one(s.json(req).await?))
}

async fn list_guild_channels(mut s: Session, p: GuildRef) -> Result<Page, Error> {
    let url = s.url(&["guilds", &p.guild_id, "channels"]);
    let mut answer = s.json(ProviderRequest::get(url)).await?;
    let items = items_of(&mut answer, &[])
        .ok_or_else(|| bad_answer(Platform::Discord, "no list of channels"))?;
    Ok(Page::list(items, None))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelMessages {
    channel_id: String,
    limit: i64,
    before: Option<String>,
    after: Option<String>,
    around: Option<String>,
}

impl Params for ChannelMessages {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("channel_id", "The channel.", &SNOWFLAKE).required(),
            Field::integer("limit", "Messages per page.", 1, 100).default(json!(50)),
            Field::pattern(
                "before",
                "Only messages before this message id.",
                &SNOWFLAKE,
            ),
            Field::pattern(
                "after",
                "Only messages after this message id (pages forwards).",
                &SNOWFLAKE,
            ),
            Field::pattern(
                "around",
                "The messages around this message id (one page).",
                &SNOWFLAKE,
            ),
        ])
    }

    fn check(&self) -> Result<(), Error> {
        let set = [&self.before, &self.after, &self.around]
            .iter()
            .filter(|v| v.is_some())
            .count();
        if set > 1 {
            return Err(Error::invalid_field(
                "params.before",
                "params.before, params.after and params.around exclude each other",
            ));
        }
        Ok(())
    }
}

/// A messages page token: which way it pages, and from which message.
fn message_cursor(direction: &str, id: u64) -> Cursor {
    Cursor::Token(format!("{direction}:{id}"))
}

async fn get_channel_messages(
    mut s: Session,
    p: ChannelMessages,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let (direction, from) = match Cursor::token(page)? {
        None => match (&p.after, &p.before, &p.around) {
            (Some(a), _, _) => ("after", Some(a.clone())),
            (_, Some(b), _) => ("before", Some(b.clone())),
            (_, _, Some(r)) => ("around", Some(r.clone())),
            _ => ("before", None),
        },
        Some(t) => match t.split_once(':') {
            Some(("before", id)) if snowflake(id) => ("before", Some(id.to_owned())),
            Some(("after", id)) if snowflake(id) => ("after", Some(id.to_owned())),
            _ => return Err(bad_token()),
        },
    };
    let mut query = vec![("limit", p.limit.to_string())];
    query.extend(from.map(|id| (direction, id)));
    let url = s.url(&["channels", &p.channel_id, "messages"]);
    let mut answer = s.json(ProviderRequest::get(url).query(query)).await?;
    let items = items_of(&mut answer, &[])
        .ok_or_else(|| bad_answer(Platform::Discord, "no list of messages"))?;
    let full = i64::try_from(items.len()).unwrap_or(i64::MAX) >= p.limit;
    let seen = ids(&items, "/id");
    // Discord answers newest first whichever way it pages; ids order messages by time.
    let next = match direction {
        _ if !full => None,
        "after" => seen.iter().max().map(|id| message_cursor("after", *id)),
        "before" => seen.iter().min().map(|id| message_cursor("before", *id)),
        // A window around a message is one page.
        _ => None,
    };
    Ok(Page::list(items, next))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendMessage {
    channel_id: String,
    content: Option<String>,
    embeds: Option<Vec<Map<String, Value>>>,
    reply_to: Option<String>,
}

impl Params for SendMessage {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("channel_id", "The channel.", &SNOWFLAKE).required(),
            Field::text(
                "content",
                "The message text (Discord markdown).",
                MAX_CONTENT,
            ),
            Field::array(
                "embeds",
                "Rich embeds (title, description, fields, ...).",
                Ty::AnyObject,
                1,
                10,
            ),
            Field::pattern("reply_to", "Reply to this message id.", &SNOWFLAKE),
        ])
    }

    fn check(&self) -> Result<(), Error> {
        if self.content.is_none() && self.embeds.is_none() {
            return Err(Error::invalid_field(
                "params.content",
                "or params.embeds must be set: the message would be empty",
            ));
        }
        Ok(())
    }
}

async fn send_message(mut s: Session, p: SendMessage) -> Result<Page, Error> {
    let mut body = Map::new();
    if let Some(c) = p.content {
        body.insert("content".into(), Value::String(c));
    }
    if let Some(e) = p.embeds {
        body.insert(
            "embeds".into(),
            Value::Array(e.into_iter().map(Value::Object).collect()),
        );
    }
    if let Some(id) = p.reply_to {
        body.insert("message_reference".into(), json!({"message_id": id}));
    }
    // Text written for one reader must not ping a whole server: users and roles named in the
    // content are mentioned, @everyone and @here are not.
    body.insert(
        "allowed_mentions".into(),
        json!({"parse": ["users", "roles"], "replied_user": true}),
    );
    let url = s.url(&["channels", &p.channel_id, "messages"]);
    let req = ProviderRequest::json(Method::POST, url, &Value::Object(body));
    Ok(Page::one(s.json(req).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListMembers {
    guild_id: String,
    limit: i64,
}

impl Params for ListMembers {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("guild_id", "The guild.", &SNOWFLAKE).required(),
            Field::integer("limit", "Members per page.", 1, 1000).default(json!(100)),
        ])
    }
}

async fn list_guild_members(
    mut s: Session,
    p: ListMembers,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let mut query = vec![("limit", p.limit.to_string())];
    query.extend(token_id(page)?.map(|a| ("after", a)));
    let url = s.url(&["guilds", &p.guild_id, "members"]);
    let mut answer = s.json(ProviderRequest::get(url).query(query)).await?;
    let items = items_of(&mut answer, &[])
        .ok_or_else(|| bad_answer(Platform::Discord, "no list of members"))?;
    let next = next_after(&items, "/user/id", p.limit);
    Ok(Page::list(items, next))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberRef {
    guild_id: String,
    user_id: String,
}

impl Params for MemberRef {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("guild_id", "The guild.", &SNOWFLAKE).required(),
            Field::pattern("user_id", "The member's user id.", &SNOWFLAKE).required(),
        ])
    }
}

async fn get_member(mut s: Session, p: MemberRef) -> Result<Page, Error> {
    let url = s.url(&["guilds", &p.guild_id, "members", &p.user_id]);
    Ok(Page::one(s.json(ProviderRequest::get(url)).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflakes_are_decimal_u64s() {
        assert!(snowflake("175928847299117063"));
        assert!(snowflake("18446744073709551615"));
        assert!(!snowflake("18446744073709551616"));
        assert!(!snowflake(""));
        assert!(!snowflake("12a"));
        assert!(!snowflake("-1"));
    }

    #[test]
    fn a_full_page_continues_after_its_largest_id_and_a_short_one_ends() {
        let items = vec![
            json!({"id": "30"}),
            json!({"id": "200"}),
            json!({"id": "4"}),
        ];
        assert_eq!(
            next_after(&items, "/id", 3),
            Some(Cursor::Token("200".into()))
        );
        assert_eq!(next_after(&items, "/id", 4), None);
        let members = vec![json!({"user": {"id": "7"}})];
        assert_eq!(
            next_after(&members, "/user/id", 1),
            Some(Cursor::Token("7".into()))
        );
    }
}

//! Notion (`https://api.notion.com/v1`), `Authorization: Bearer <token>` (an OAuth access token
//! or an internal integration token, both stored as `access_token`) and a pinned
//! `Notion-Version` on every request. Lists answer `{results, next_cursor, has_more}`; the next
//! page is asked for with `start_cursor` (in the query of a GET, the body of a POST). Errors
//! are `{object: "error", status, code, message}`; rate limits are 429 `rate_limited` with
//! `Retry-After` (the core waits).

use http::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::common::bearer_access_token;
use super::schema::{Pattern, Ty};
use super::transport::{ProviderRequest, bad_answer};
use super::{Cursor, Field, Identity, Page, Params, PlatformDef, Schema, Session, items_of};
use crate::domain::Platform;
use crate::error::Error;

/// The API version every request pins. 2022-06-28 is the version whose database endpoints
/// (`/databases/{id}/query`) these operations use; 2025-09-03 moved querying to data sources,
/// a breaking change, so moving on means porting `query_database` and `get_database`.
pub const NOTION_VERSION: &str = "2022-06-28";

/// Notion's maximum `page_size`, and the most children one append takes.
const MAX_PAGE: i64 = 100;
const MAX_CHILDREN: usize = 100;

pub fn platform() -> PlatformDef {
    PlatformDef::new(Platform::Notion, bearer_access_token, test_connection)
        .header("notion-version", NOTION_VERSION)
        .list(
            "search",
            "Search the pages and databases shared with the integration by title.",
            search,
        )
        .read(
            "get_page",
            "Get a page's properties (its content is get_page_content).",
            get_page,
        )
        .write(
            "create_page",
            "Create a page in a database (with properties) or under a page, with a title and \
             optional content blocks.",
            create_page,
        )
        .write(
            "update_page",
            "Change a page's properties, or archive or restore it.",
            update_page,
        )
        .list(
            "query_database",
            "Query a database's pages with Notion filters and sorts.",
            query_database,
        )
        .read(
            "get_database",
            "Get a database's title and property schema.",
            get_database,
        )
        .list(
            "get_page_content",
            "List the child blocks of a page or block (its content), paged.",
            get_page_content,
        )
        .write(
            "append_blocks",
            "Append content blocks to a page or block.",
            append_blocks,
        )
        .list(
            "list_users",
            "List the workspace's users and bots.",
            list_users,
        )
}

async fn test_connection(mut s: Session) -> Result<Identity, Error> {
    let url = s.url(&["users", "me"]);
    let me = s.json(ProviderRequest::get(url)).await?;
    if me.get("id").is_none_or(Value::is_null) {
        return Err(bad_answer(Platform::Notion, "no bot user"));
    }
    Ok(Identity::default())
}

/// Notion ids are UUIDs, written with dashes or as 32 hex digits.
fn notion_id(v: &str) -> bool {
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    match v.len() {
        32 => hex(v),
        36 => {
            let groups: Vec<&str> = v.split('-').collect();
            groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]) && groups.iter().all(|g| hex(g))
        }
        _ => false,
    }
}

static NOTION_ID: Pattern = Pattern {
    pattern: r"^([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$",
    check: notion_id,
    hint: "a Notion id (a UUID, with or without dashes)",
    sample: "59833787-2cf9-4fdf-8782-e53db20768a5",
};

fn page_size_field() -> Field {
    Field::integer("page_size", "Items per page.", 1, MAX_PAGE).default(json!(25))
}

/// A Notion list: `results`, and `next_cursor` when `has_more`.
async fn list_page(mut s: Session, req: ProviderRequest) -> Result<Page, Error> {
    let mut answer = s.json(req).await?;
    let items = items_of(&mut answer, &["results"])
        .ok_or_else(|| bad_answer(Platform::Notion, "no results list"))?;
    let has_more = answer
        .get("has_more")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let next = answer
        .get("next_cursor")
        .and_then(Value::as_str)
        .filter(|c| has_more && !c.is_empty())
        .map(|c| Cursor::Token(c.to_owned()));
    Ok(Page::list(items, next))
}

/// A read that Notion takes as a POST (search, database query): safe to send twice.
fn post_read(url: reqwest::Url, body: Map<String, Value>) -> ProviderRequest {
    ProviderRequest::json(Method::POST, url, &Value::Object(body)).idempotent(true)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Search {
    query: Option<String>,
    object: Option<String>,
    sort_direction: Option<String>,
    page_size: i64,
}

impl Params for Search {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::text(
                "query",
                "Words in the title; everything shared when left out.",
                500,
            ),
            Field::one_of(
                "object",
                "Only pages or only databases.",
                &["page", "database"],
            ),
            Field::one_of(
                "sort_direction",
                "Order by last edit time.",
                &["descending", "ascending"],
            ),
            page_size_field(),
        ])
    }
}

async fn search(s: Session, p: Search, page: Option<Cursor>) -> Result<Page, Error> {
    let mut body = Map::new();
    body.insert("page_size".into(), json!(p.page_size));
    if let Some(q) = p.query {
        body.insert("query".into(), json!(q));
    }
    if let Some(object) = p.object {
        body.insert(
            "filter".into(),
            json!({"property": "object", "value": object}),
        );
    }
    if let Some(direction) = p.sort_direction {
        body.insert(
            "sort".into(),
            json!({"direction": direction, "timestamp": "last_edited_time"}),
        );
    }
    if let Some(c) = Cursor::token(page)? {
        body.insert("start_cursor".into(), json!(c));
    }
    let url = s.url(&["search"]);
    list_page(s, post_read(url, body)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageRef {
    page_id: String,
}

impl Params for PageRef {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("page_id", "The page.", &NOTION_ID).required(),
        ])
    }
}

async fn get_page(mut s: Session, p: PageRef) -> Result<Page, Error> {
    let url = s.url(&["pages", &p.page_id]);
    Ok(Page::one(s.json(ProviderRequest::get(url)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseRef {
    database_id: String,
}

impl Params for DatabaseRef {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("database_id", "The database.", &NOTION_ID).required(),
        ])
    }
}

async fn get_database(mut s: Session, p: DatabaseRef) -> Result<Page, Error> {
    let url = s.url(&["databases", &p.database_id]);
    Ok(Page::one(s.json(ProviderRequest::get(url)).await?))
}

fn children_field(name: &'static str, description: &'static str, min: usize) -> Field {
    Field::array(name, description, Ty::AnyObject, min, MAX_CHILDREN)
}

/// A title property value (rich text of one text run).
fn title_value(title: &str) -> Value {
    json!({"title": [{"type": "text", "text": {"content": title}}]})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePage {
    parent_type: String,
    parent_id: String,
    title: String,
    properties: Option<Map<String, Value>>,
    children: Option<Vec<Value>>,
    icon_emoji: Option<String>,
}

impl Params for CreatePage {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::one_of(
                "parent_type",
                "Whether the parent is a database (the page is a row) or a page.",
                &["database_id", "page_id"],
            )
            .default(json!("database_id")),
            Field::pattern("parent_id", "The parent database or page.", &NOTION_ID).required(),
            Field::text("title", "The page's title.", 2000).required(),
            Field::any_object(
                "properties",
                "Other property values by name or id, as Notion's property value objects \
                 (database parents only).",
            ),
            children_field("children", "Content blocks, as Notion block objects.", 0),
            Field::text("icon_emoji", "An emoji to use as the page icon.", 16),
        ])
    }

    fn check(&self) -> Result<(), Error> {
        let Some(properties) = &self.properties else {
            return Ok(());
        };
        if self.parent_type == "page_id" && !properties.is_empty() {
            return Err(Error::invalid_field(
                "params.properties",
                "must be left out under a page parent: such a page has only a title",
            ));
        }
        if properties.contains_key("title") {
            return Err(Error::invalid_field(
                "params.properties",
                "must not set title: use params.title",
            ));
        }
        Ok(())
    }
}

async fn create_page(mut s: Session, p: CreatePage) -> Result<Page, Error> {
    let mut properties = p.properties.unwrap_or_default();
    // `title` is the id of every page's (and every database's) title property, whatever its
    // display name.
    properties.insert("title".into(), title_value(&p.title));
    let mut body = Map::new();
    let mut parent = Map::new();
    parent.insert(p.parent_type, json!(p.parent_id));
    body.insert("parent".into(), Value::Object(parent));
    body.insert("properties".into(), Value::Object(properties));
    if let Some(children) = p.children.filter(|c| !c.is_empty()) {
        body.insert("children".into(), Value::Array(children));
    }
    if let Some(emoji) = p.icon_emoji {
        body.insert("icon".into(), json!({"type": "emoji", "emoji": emoji}));
    }
    let url = s.url(&["pages"]);
    let req = ProviderRequest::json(Method::POST, url, &Value::Object(body));
    Ok(Page::one(s.json(req).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatePage {
    page_id: String,
    properties: Option<Map<String, Value>>,
    archived: Option<bool>,
    icon_emoji: Option<String>,
}

impl Params for UpdatePage {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("page_id", "The page.", &NOTION_ID).required(),
            Field::any_object(
                "properties",
                "Property values to set, by name or id, as Notion's property value objects.",
            ),
            Field::boolean("archived", "Archive (true) or restore (false) the page."),
            Field::text("icon_emoji", "An emoji to use as the page icon.", 16),
        ])
    }

    fn check(&self) -> Result<(), Error> {
        let no_properties = self.properties.as_ref().is_none_or(Map::is_empty);
        if no_properties && self.archived.is_none() && self.icon_emoji.is_none() {
            return Err(Error::invalid_field(
                "params.properties",
                "(or params.archived or params.icon_emoji) must be set: nothing to update",
            ));
        }
        Ok(())
    }
}

async fn update_page(mut s: Session, p: UpdatePage) -> Result<Page, Error> {
    let mut body = Map::new();
    if let Some(properties) = p.properties.filter(|m| !m.is_empty()) {
        body.insert("properties".into(), Value::Object(properties));
    }
    if let Some(archived) = p.archived {
        body.insert("archived".into(), json!(archived));
    }
    if let Some(emoji) = p.icon_emoji {
        body.insert("icon".into(), json!({"type": "emoji", "emoji": emoji}));
    }
    let url = s.url(&["pages", &p.page_id]);
    let req = ProviderRequest::json(Method::PATCH, url, &Value::Object(body));
    Ok(Page::one(s.json(req).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryDatabase {
    database_id: String,
    filter: Option<Map<String, Value>>,
    sorts: Option<Vec<Value>>,
    page_size: i64,
}

impl Params for QueryDatabase {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("database_id", "The database.", &NOTION_ID).required(),
            Field::any_object(
                "filter",
                "A Notion filter object, e.g. {\"property\": \"Status\", \"status\": \
                 {\"equals\": \"Done\"}}.",
            ),
            Field::array(
                "sorts",
                "Notion sort objects, e.g. {\"property\": \"Due\", \"direction\": \"ascending\"}.",
                Ty::AnyObject,
                0,
                100,
            ),
            page_size_field(),
        ])
    }
}

async fn query_database(s: Session, p: QueryDatabase, page: Option<Cursor>) -> Result<Page, Error> {
    let mut body = Map::new();
    body.insert("page_size".into(), json!(p.page_size));
    if let Some(filter) = p.filter {
        body.insert("filter".into(), Value::Object(filter));
    }
    if let Some(sorts) = p.sorts.filter(|s| !s.is_empty()) {
        body.insert("sorts".into(), Value::Array(sorts));
    }
    if let Some(c) = Cursor::token(page)? {
        body.insert("start_cursor".into(), json!(c));
    }
    let url = s.url(&["databases", &p.database_id, "query"]);
    list_page(s, post_read(url, body)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockChildren {
    block_id: String,
    page_size: i64,
}

impl Params for BlockChildren {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern(
                "block_id",
                "The page or block whose children to list.",
                &NOTION_ID,
            )
            .required(),
            page_size_field(),
        ])
    }
}

/// GET query of a list: `page_size`, then `start_cursor` when continuing.
fn list_query(page_size: i64, page: Option<Cursor>) -> Result<Vec<(&'static str, String)>, Error> {
    let mut query = vec![("page_size", page_size.to_string())];
    query.extend(Cursor::token(page)?.map(|c| ("start_cursor", c)));
    Ok(query)
}

async fn get_page_content(
    s: Session,
    p: BlockChildren,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let url = s.url(&["blocks", &p.block_id, "children"]);
    let query = list_query(p.page_size, page)?;
    list_page(s, ProviderRequest::get(url).query(query)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppendBlocks {
    block_id: String,
    children: Vec<Value>,
    after: Option<String>,
}

impl Params for AppendBlocks {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("block_id", "The page or block to append to.", &NOTION_ID).required(),
            children_field("children", "The blocks, as Notion block objects.", 1).required(),
            Field::pattern(
                "after",
                "Insert after this child block instead of at the end.",
                &NOTION_ID,
            ),
        ])
    }
}

async fn append_blocks(mut s: Session, p: AppendBlocks) -> Result<Page, Error> {
    let mut body = Map::new();
    body.insert("children".into(), Value::Array(p.children));
    if let Some(after) = p.after {
        body.insert("after".into(), json!(after));
    }
    let url = s.url(&["blocks", &p.block_id, "children"]);
    // Appending twice appends twice: never retried.
    let req = ProviderRequest::json(Method::PATCH, url, &Value::Object(body));
    Ok(Page::one(s.json(req).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListUsers {
    page_size: i64,
}

impl Params for ListUsers {
    fn schema() -> Schema {
        Schema::new(vec![page_size_field()])
    }
}

async fn list_users(s: Session, p: ListUsers, page: Option<Cursor>) -> Result<Page, Error> {
    let url = s.url(&["users"]);
    let query = list_query(p.page_size, page)?;
    list_page(s, ProviderRequest::get(url).query(query)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notion_ids_are_uuids_with_or_without_dashes() {
        assert!(notion_id("59833787-2cf9-4fdf-8782-e53db20768a5"));
        assert!(notion_id("598337872cf94fdf8782e53db20768a5"));
        for bad in [
            "",
            "59833787-2cf9-4fdf-8782-e53db20768a",
            "598337872cf94fdf8782e53db20768ag",
            "5983378-72cf9-4fdf-8782-e53db20768a5",
            "../../users/me/aaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(!notion_id(bad), "{bad}");
        }
    }
}

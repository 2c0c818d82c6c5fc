//! Monday.com: one GraphQL endpoint (the base URL, `https://api.monday.com/v2`),
//! `Authorization: <token>` with no scheme (an API token or an OAuth access token) and a pinned
//! `API-Version`. Every value travels in `variables`; the documents are constants, at most
//! assembled from constant fragments. Errors come as `errors[]` or as a 200 with
//! `error_code`/`error_message` (see `graphql`), rate and complexity limits as
//! PROVIDER_RATE_LIMITED with Monday's wait.
//!
//! Items use the current schema: `items_page(limit)` on a board, then
//! `next_items_page(cursor)`; `column_values { id text value type }` (`boards.items` and
//! `column_values.title` were removed in 2023-10).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::graphql;
use super::schema::Pattern;
use super::transport::bad_answer;
use super::transport::not_found;
use super::{
    Auth, Cursor, Field, Identity, Page, Params, PlatformDef, Schema, Session, next_offset,
};
use crate::domain::Credentials;
use crate::domain::Platform;
use crate::error::Error;

/// The API version every request pins, so a new Monday release cannot change answers under us.
/// Monday supports each version for at least six months (three at a time, one new per quarter);
/// 2024-10 and 2025-01 have been routed to 2025-04 since 2026-02-15. 2026-07 is the version
/// Monday's versioning page lists as "Current" (stable). Every field used here exists unchanged
/// since 2023-10, so moving to the next stable version is a one-line change.
pub const API_VERSION: &str = "2026-07";

/// `items_page` takes at most 500 items per page.
const MAX_ITEMS_PAGE: i64 = 500;

pub fn platform() -> PlatformDef {
    PlatformDef::new(Platform::Monday, auth, test_connection)
        .header("api-version", API_VERSION)
        .list(
            "list_boards",
            "List boards (id, name, state, kind, workspace, columns, groups), paged.",
            list_boards,
        )
        .read(
            "get_board",
            "Get one board with its columns, groups and owners.",
            get_board,
        )
        .list(
            "list_items",
            "List a board's items with their column values, paged by Monday's items_page cursor.",
            list_items,
        )
        .write(
            "create_item",
            "Create an item on a board, optionally in a group and with column values.",
            create_item,
        )
        .write(
            "update_item",
            "Change several column values of an item (change_multiple_column_values).",
            update_item,
        )
        .write(
            "create_update",
            "Post an update (a comment) on an item.",
            create_update,
        )
        .list(
            "list_workspaces",
            "List the workspaces the token can see, paged.",
            list_workspaces,
        )
        .write(
            "graphql_query",
            "Run a raw GraphQL document with variables. Listed as a write because it may be a \
             mutation: viewers may not run it; a document without a mutation is retried like a \
             read, a mutation never.",
            graphql::raw_query,
        )
}

/// Monday takes the token itself as the header value (no `Bearer`). An OAuth connection
/// carries `access_token`; a direct connection carries the personal `api_token`.
fn auth(creds: &Credentials) -> Result<Auth, Error> {
    match creds.get("access_token") {
        Some(token) => Auth::raw(token),
        None => Auth::raw(creds.require("api_token")?),
    }
}

async fn test_connection(mut s: Session) -> Result<Identity, Error> {
    let data = run(&mut s, "query Me { me { id } }", json!({}), true).await?;
    if data.pointer("/me/id").is_none_or(Value::is_null) {
        return Err(bad_answer(Platform::Monday, "no user"));
    }
    Ok(Identity::of_account(data.pointer("/me/id")))
}

async fn run(
    s: &mut Session,
    query: &str,
    variables: Value,
    idempotent: bool,
) -> Result<Value, Error> {
    let url = s.base().clone();
    graphql::query(s, url, query, variables, idempotent).await
}

/// Monday ids (boards, items, workspaces, updates) are positive integers, sent as strings
/// (GraphQL `ID`). Zero is never an id (the old connector sent `board_id: 0`).
fn monday_id(v: &str) -> bool {
    (1..=20).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) && !v.starts_with('0')
}

static MONDAY_ID: Pattern = Pattern {
    pattern: r"^[1-9][0-9]{0,19}$",
    check: monday_id,
    hint: "a Monday id (a positive whole number, as a string)",
    sample: "1234567890",
};

/// Group and column ids: Monday's own short identifiers (`topics`, `status`, `date4`,
/// `text_mkq1x2`).
fn monday_key(v: &str) -> bool {
    (1..=100).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

static MONDAY_KEY: Pattern = Pattern {
    pattern: r"^[A-Za-z0-9_-]{1,100}$",
    check: monday_key,
    hint: "a Monday group or column id (letters, digits, _ and -)",
    sample: "topics",
};

/// Monday pages boards and workspaces by 1-based page number; the token keeps the offset, and
/// the limit is fixed for a token (it is bound to the params), so offset / limit is exact.
fn page_number(offset: u64, limit: i64) -> u64 {
    let limit = u64::try_from(limit).unwrap_or(1).max(1);
    offset / limit + 1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListBoards {
    limit: i64,
    workspace_id: Option<String>,
}

impl Params for ListBoards {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::integer("limit", "Boards per page.", 1, 100).default(json!(25)),
            Field::pattern("workspace_id", "Only boards of this workspace.", &MONDAY_ID),
        ])
    }
}

async fn list_boards(mut s: Session, p: ListBoards, page: Option<Cursor>) -> Result<Page, Error> {
    let skip = Cursor::offset(page)?;
    let mut variables = Map::new();
    variables.insert("limit".into(), json!(p.limit));
    variables.insert("page".into(), json!(page_number(skip, p.limit)));
    // The filter argument appears only when asked for: an explicit null is not the same as
    // leaving it out for every Monday argument.
    let (filter_vars, filter_args) = match p.workspace_id {
        Some(w) => {
            variables.insert("workspaceIds".into(), json!([w]));
            (", $workspaceIds: [ID]", ", workspace_ids: $workspaceIds")
        }
        None => ("", ""),
    };
    let query = format!(
        "query Boards($limit: Int!, $page: Int!{filter_vars}) \
         {{ boards(limit: $limit, page: $page{filter_args}) \
         {{ id name description state board_kind workspace_id \
         columns {{ id title type }} groups {{ id title }} }} }}"
    );
    let mut data = run(&mut s, &query, Value::Object(variables), true).await?;
    let boards = super::items_of(&mut data, &["boards"])
        .ok_or_else(|| bad_answer(Platform::Monday, "no boards"))?;
    let next = next_offset(skip, u64::try_from(p.limit).unwrap_or(0), boards.len());
    Ok(Page::list(boards, next))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BoardRef {
    board_id: String,
}

impl Params for BoardRef {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("board_id", "The board.", &MONDAY_ID).required(),
        ])
    }
}

async fn get_board(mut s: Session, p: BoardRef) -> Result<Page, Error> {
    let query = "query Board($ids: [ID!]) { boards(ids: $ids) { id name description state \
                 board_kind workspace_id columns { id title type settings_str } \
                 groups { id title color } owners { id name } } }";
    let mut data = run(&mut s, query, json!({"ids": [p.board_id]}), true).await?;
    Ok(Page::one(the_board(&mut data)?))
}

/// The one board a lookup by id answers; Monday answers an empty list for an unknown id.
fn the_board(data: &mut Value) -> Result<Value, Error> {
    let mut boards = super::items_of(data, &["boards"])
        .ok_or_else(|| bad_answer(Platform::Monday, "no boards"))?;
    if boards.is_empty() {
        return Err(not_found(
            Platform::Monday,
            "ResourceNotFoundException",
            "board",
        ));
    }
    Ok(boards.swap_remove(0))
}

const ITEM_FIELDS: &str = "id name state created_at updated_at group { id title } \
     column_values { id text value type }";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListItems {
    board_id: String,
    limit: i64,
}

impl Params for ListItems {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("board_id", "The board whose items to list.", &MONDAY_ID).required(),
            Field::integer("limit", "Items per page.", 1, MAX_ITEMS_PAGE).default(json!(50)),
        ])
    }
}

/// The first page comes from the board's `items_page`; later pages from `next_items_page` with
/// Monday's cursor (valid for 60 minutes), which the page token carries.
async fn list_items(mut s: Session, p: ListItems, page: Option<Cursor>) -> Result<Page, Error> {
    let mut items_page = match Cursor::token(page)? {
        None => {
            let query = format!(
                "query Items($boardIds: [ID!], $limit: Int!) {{ boards(ids: $boardIds) \
                 {{ items_page(limit: $limit) {{ cursor items {{ {ITEM_FIELDS} }} }} }} }}"
            );
            let variables = json!({"boardIds": [p.board_id], "limit": p.limit});
            let mut data = run(&mut s, &query, variables, true).await?;
            take(&mut the_board(&mut data)?, "items_page")
        }
        Some(cursor) => {
            let query = format!(
                "query NextItems($cursor: String!, $limit: Int!) \
                 {{ next_items_page(cursor: $cursor, limit: $limit) \
                 {{ cursor items {{ {ITEM_FIELDS} }} }} }}"
            );
            let variables = json!({"cursor": cursor, "limit": p.limit});
            let mut data = run(&mut s, &query, variables, true).await?;
            take(&mut data, "next_items_page")
        }
    };
    let items = super::items_of(&mut items_page, &["items"])
        .ok_or_else(|| bad_answer(Platform::Monday, "no items page"))?;
    let next = items_page
        .get("cursor")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(|c| Cursor::Token(c.to_owned()));
    Ok(Page::list(items, next))
}

/// The field `key` of an answer object, taken out; null when absent or not an object (never
/// a panic on an odd answer).
fn take(answer: &mut Value, key: &str) -> Value {
    answer.get_mut(key).map(Value::take).unwrap_or(Value::Null)
}

/// The result of a mutation: `data.<key>`, which Monday always fills on success.
fn result(mut data: Value, key: &str) -> Result<Page, Error> {
    match take(&mut data, key) {
        Value::Null => Err(bad_answer(Platform::Monday, "no result for the mutation")),
        v => Ok(Page::one(v)),
    }
}

/// Column values as Monday's `JSON` scalar takes them in variables: a JSON-encoded string.
fn column_values_json(values: &Map<String, Value>) -> String {
    Value::Object(values.clone()).to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateItem {
    board_id: String,
    item_name: String,
    group_id: Option<String>,
    column_values: Option<Map<String, Value>>,
    create_labels_if_missing: Option<bool>,
}

impl Params for CreateItem {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("board_id", "The board to create the item on.", &MONDAY_ID).required(),
            Field::text("item_name", "The new item's name.", 255).required(),
            Field::pattern(
                "group_id",
                "The group to create it in (the board's top group when left out).",
                &MONDAY_KEY,
            ),
            Field::any_object(
                "column_values",
                "Column values by column id, in Monday's column value JSON \
                 (e.g. {\"status\": {\"label\": \"Done\"}}).",
            ),
            Field::boolean(
                "create_labels_if_missing",
                "Create status or dropdown labels that do not exist yet.",
            ),
        ])
    }
}

async fn create_item(mut s: Session, p: CreateItem) -> Result<Page, Error> {
    let mut variables = Map::new();
    variables.insert("boardId".into(), json!(p.board_id));
    variables.insert("itemName".into(), json!(p.item_name));
    // Optional arguments appear only when given (constant fragments; values stay variables).
    let mut vars = String::new();
    let mut args = String::new();
    if let Some(group) = p.group_id {
        variables.insert("groupId".into(), json!(group));
        vars.push_str(", $groupId: String");
        args.push_str(", group_id: $groupId");
    }
    if let Some(values) = &p.column_values {
        variables.insert("columnValues".into(), json!(column_values_json(values)));
        vars.push_str(", $columnValues: JSON");
        args.push_str(", column_values: $columnValues");
    }
    if let Some(create) = p.create_labels_if_missing {
        variables.insert("createLabels".into(), json!(create));
        vars.push_str(", $createLabels: Boolean");
        args.push_str(", create_labels_if_missing: $createLabels");
    }
    let query = format!(
        "mutation CreateItem($boardId: ID!, $itemName: String!{vars}) \
         {{ create_item(board_id: $boardId, item_name: $itemName{args}) \
         {{ id name board {{ id }} group {{ id }} }} }}"
    );
    let data = run(&mut s, &query, Value::Object(variables), false).await?;
    result(data, "create_item")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateItem {
    board_id: String,
    item_id: String,
    column_values: Map<String, Value>,
    create_labels_if_missing: Option<bool>,
}

impl Params for UpdateItem {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern(
                "board_id",
                "The item's board (Monday requires it).",
                &MONDAY_ID,
            )
            .required(),
            Field::pattern("item_id", "The item to change.", &MONDAY_ID).required(),
            Field::any_object(
                "column_values",
                "New column values by column id, in Monday's column value JSON.",
            )
            .required(),
            Field::boolean(
                "create_labels_if_missing",
                "Create status or dropdown labels that do not exist yet.",
            ),
        ])
    }

    fn check(&self) -> Result<(), Error> {
        if self.column_values.is_empty() {
            return Err(Error::invalid_field(
                "params.column_values",
                "must name at least one column: nothing to update",
            ));
        }
        Ok(())
    }
}

async fn update_item(mut s: Session, p: UpdateItem) -> Result<Page, Error> {
    let mut variables = Map::new();
    variables.insert("boardId".into(), json!(p.board_id));
    variables.insert("itemId".into(), json!(p.item_id));
    variables.insert(
        "columnValues".into(),
        json!(column_values_json(&p.column_values)),
    );
    let (vars, args) = match p.create_labels_if_missing {
        Some(create) => {
            variables.insert("createLabels".into(), json!(create));
            (
                ", $createLabels: Boolean",
                ", create_labels_if_missing: $createLabels",
            )
        }
        None => ("", ""),
    };
    let query = format!(
        "mutation UpdateItem($boardId: ID!, $itemId: ID!, $columnValues: JSON!{vars}) \
         {{ change_multiple_column_values(board_id: $boardId, item_id: $itemId, \
         column_values: $columnValues{args}) {{ id name column_values {{ id text value type }} }} }}"
    );
    let data = run(&mut s, &query, Value::Object(variables), false).await?;
    result(data, "change_multiple_column_values")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUpdate {
    item_id: String,
    body: String,
}

impl Params for CreateUpdate {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::pattern("item_id", "The item to post the update on.", &MONDAY_ID).required(),
            Field::text(
                "body",
                "The update's text (Monday accepts simple HTML).",
                20_000,
            )
            .required(),
        ])
    }
}

async fn create_update(mut s: Session, p: CreateUpdate) -> Result<Page, Error> {
    let query = "mutation CreateUpdate($itemId: ID!, $body: String!) \
                 { create_update(item_id: $itemId, body: $body) { id body created_at } }";
    let variables = json!({"itemId": p.item_id, "body": p.body});
    let data = run(&mut s, query, variables, false).await?;
    result(data, "create_update")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListWorkspaces {
    limit: i64,
}

impl Params for ListWorkspaces {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::integer("limit", "Workspaces per page.", 1, 100).default(json!(25)),
        ])
    }
}

async fn list_workspaces(
    mut s: Session,
    p: ListWorkspaces,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let skip = Cursor::offset(page)?;
    let query = "query Workspaces($limit: Int!, $page: Int!) \
                 { workspaces(limit: $limit, page: $page) { id name kind description } }";
    let variables = json!({"limit": p.limit, "page": page_number(skip, p.limit)});
    let mut data = run(&mut s, query, variables, true).await?;
    let workspaces = super::items_of(&mut data, &["workspaces"])
        .ok_or_else(|| bad_answer(Platform::Monday, "no workspaces"))?;
    let next = next_offset(skip, u64::try_from(p.limit).unwrap_or(0), workspaces.len());
    Ok(Page::list(workspaces, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monday_ids_are_positive_whole_numbers() {
        assert!(monday_id("1234567890"));
        assert!(monday_id("7"));
        for bad in ["0", "0123", "", "12a", "-1", "1 2", "123456789012345678901"] {
            assert!(!monday_id(bad), "{bad}");
        }
    }

    #[test]
    fn page_numbers_follow_the_offset() {
        assert_eq!(page_number(0, 25), 1);
        assert_eq!(page_number(25, 25), 2);
        assert_eq!(page_number(50, 25), 3);
        assert_eq!(page_number(10, 0), 11, "a zero limit cannot divide by zero");
    }

    #[test]
    fn column_values_become_a_json_string() {
        let mut m = Map::new();
        m.insert("status".into(), json!({"label": "Done"}));
        assert_eq!(column_values_json(&m), r#"{"status":{"label":"Done"}}"#);
    }
}

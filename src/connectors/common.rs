//! Small pieces several platforms' connectors share: bearer auth from the access token, the
//! identity call at `users/me`, lists inside answers, offsets, title/description edits and the
//! answer of a delete.

use http::Method;
use reqwest::Url;
use serde_json::{Map, Value};

use super::transport::ProviderRequest;
use super::{Auth, Cursor, Field, Identity, Page, Session};
use crate::domain::Credentials;
use crate::error::Error;

/// `Authorization: Bearer <access_token>`, for OAuth platforms.
pub fn bearer_access_token(creds: &Credentials) -> Result<Auth, Error> {
    Auth::bearer(creds.require("access_token")?)
}

/// A connection test that reads the token's own user at `users/me`: the cheapest
/// authenticated call where a platform has it, and it names the user.
pub async fn get_users_me(mut s: Session) -> Result<Identity, Error> {
    let url = s.url(&["users", "me"]);
    let me = s.json(ProviderRequest::get(url)).await?;
    Ok(Identity::of_account(me.get("id")))
}

/// The `title` and `description` fields of an edit operation.
pub fn title_and_description_fields() -> [Field; 2] {
    [
        Field::text("title", "New title.", 500),
        Field::text("description", "New description.", 5000),
    ]
}

/// An edit must change something.
pub fn check_title_or_description(
    title: &Option<String>,
    description: &Option<String>,
) -> Result<(), Error> {
    if title.is_none() && description.is_none() {
        return Err(Error::invalid_field(
            "params.title",
            "or params.description must be set: nothing to update",
        ));
    }
    Ok(())
}

/// PATCHes `url` with the fields that are set, and answers the provider's answer.
pub async fn patch_title_and_description(
    s: &mut Session,
    url: Url,
    title: Option<String>,
    description: Option<String>,
) -> Result<Page, Error> {
    let mut body = Map::new();
    if let Some(t) = title {
        body.insert("title".into(), Value::String(t));
    }
    if let Some(d) = description {
        body.insert("description".into(), Value::String(d));
    }
    let req = ProviderRequest::json(Method::PATCH, url, &Value::Object(body));
    Ok(Page::one(s.json(req).await?))
}

/// The list inside a provider answer: the answer itself when it is an array, else the array
/// under the first of `keys` that holds one.
pub fn items_of(answer: &mut Value, keys: &[&str]) -> Option<Vec<Value>> {
    if let Value::Array(a) = answer {
        return Some(std::mem::take(a));
    }
    keys.iter().find_map(|k| match answer.get_mut(*k) {
        Some(Value::Array(a)) => Some(std::mem::take(a)),
        _ => None,
    })
}

/// What a delete answers: the provider's own answer, or when it said nothing (a 204)
/// `{"deleted": true, <key>: <id>}`.
pub fn deleted(answer: Value, key: &str, id: String) -> Page {
    if !answer.is_null() {
        return Page::one(answer);
    }
    let mut said = Map::new();
    said.insert("deleted".into(), Value::Bool(true));
    said.insert(key.into(), Value::String(id));
    Page::one(Value::Object(said))
}

/// The next offset when a page came back full; none after a short page.
pub fn next_offset(offset: u64, asked: u64, got: usize) -> Option<Cursor> {
    let got = u64::try_from(got).unwrap_or(u64::MAX);
    (got >= asked && asked > 0).then(|| Cursor::Offset(offset.saturating_add(got)))
}

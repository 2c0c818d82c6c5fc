//! Otter.ai: `Authorization: Bearer <api_key>` against the product spec's paths (the seed's
//! connector). Otter documents no public API: `/forward/api/v1` is its web app's own API, so
//! every path and shape here is unverified, and the base URL is configurable
//! (`FH_OTTER_BASE_URL`) for when Otter publishes one.

use http::Method;
use serde::Deserialize;
use serde_json::json;

use super::common::{
    check_title_or_description, patch_title_and_description, title_and_description_fields,
};
use super::deleted;
use super::transport::{ProviderRequest, bad_answer};
use super::{
    Auth, Cursor, Field, Identity, Page, Params, PlatformDef, Schema, Session, items_of,
    next_offset,
};
use crate::domain::Credentials;
use crate::domain::Platform;
use crate::error::Error;

pub fn platform() -> PlatformDef {
    PlatformDef::new(Platform::Otter, auth, test_connection)
        .list(
            "list_speeches",
            "List recorded conversations (speeches), optionally of one folder (unverified API).",
            list_speeches,
        )
        .read(
            "get_speech",
            "Get one speech's details (unverified API).",
            get_speech,
        )
        .read(
            "get_transcript",
            "Get one speech with its transcript (unverified API).",
            get_transcript,
        )
        .read(
            "get_summary",
            "Get the summary of one speech (unverified API).",
            get_summary,
        )
        .list(
            "search_speeches",
            "Find speeches matching a query (unverified API).",
            search_speeches,
        )
        .write(
            "update_speech",
            "Change a speech's title or description (unverified API).",
            update_speech,
        )
        .write(
            "delete_speech",
            "Delete a speech (unverified API).",
            delete_speech,
        )
}

fn auth(creds: &Credentials) -> Result<Auth, Error> {
    Auth::bearer(creds.require("api_key")?)
}

async fn test_connection(mut s: Session) -> Result<Identity, Error> {
    let url = s.url(&["user"]);
    s.json(ProviderRequest::get(url)).await?;
    Ok(Identity::default())
}

fn page_size() -> Field {
    Field::integer("page_size", "Speeches per page.", 1, 100).default(json!(20))
}

async fn speeches_page(
    mut s: Session,
    segments: &[&str],
    mut query: Vec<(&str, String)>,
    page_size: i64,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let skip = Cursor::offset(page)?;
    query.push(("page_size", page_size.to_string()));
    query.push(("offset", skip.to_string()));
    let url = s.url(segments);
    let mut answer = s.json(ProviderRequest::get(url).query(query)).await?;
    let items = items_of(&mut answer, &["speeches", "results"])
        .ok_or_else(|| bad_answer(Platform::Otter, "no speeches list"))?;
    let next = next_offset(skip, u64::try_from(page_size).unwrap_or(0), items.len());
    Ok(Page::list(items, next))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListSpeeches {
    page_size: i64,
    folder: Option<String>,
}

impl Params for ListSpeeches {
    fn schema() -> Schema {
        Schema::new(vec![
            page_size(),
            Field::id("folder", "Only speeches of this folder."),
        ])
    }
}

async fn list_speeches(s: Session, p: ListSpeeches, page: Option<Cursor>) -> Result<Page, Error> {
    let query: Vec<(&str, String)> = p.folder.map(|f| ("folder", f)).into_iter().collect();
    speeches_page(s, &["speeches"], query, p.page_size, page).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpeechRef {
    id: String,
}

impl Params for SpeechRef {
    fn schema() -> Schema {
        Schema::new(vec![Field::id("id", "The speech id.").required()])
    }
}

async fn get_speech(mut s: Session, p: SpeechRef) -> Result<Page, Error> {
    let url = s.url(&["speeches", &p.id]);
    Ok(Page::one(s.json(ProviderRequest::get(url)).await?))
}

async fn get_transcript(mut s: Session, p: SpeechRef) -> Result<Page, Error> {
    let url = s.url(&["speeches", &p.id]);
    let req = ProviderRequest::get(url).query([("include_transcript", "true")]);
    Ok(Page::one(s.json(req).await?))
}

async fn get_summary(mut s: Session, p: SpeechRef) -> Result<Page, Error> {
    let url = s.url(&["speeches", &p.id, "summary"]);
    Ok(Page::one(s.json(ProviderRequest::get(url)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchSpeeches {
    query: String,
    page_size: i64,
}

impl Params for SearchSpeeches {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::text("query", "What to search for.", 200).required(),
            page_size(),
        ])
    }
}

async fn search_speeches(
    s: Session,
    p: SearchSpeeches,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    speeches_page(
        s,
        &["speeches", "search"],
        vec![("query", p.query)],
        p.page_size,
        page,
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateSpeech {
    id: String,
    title: Option<String>,
    description: Option<String>,
}

impl Params for UpdateSpeech {
    fn schema() -> Schema {
        Schema::new(
            vec![Field::id("id", "The speech id.").required()]
                .into_iter()
                .chain(title_and_description_fields())
                .collect(),
        )
    }

    fn check(&self) -> Result<(), Error> {
        check_title_or_description(&self.title, &self.description)
    }
}

async fn update_speech(mut s: Session, p: UpdateSpeech) -> Result<Page, Error> {
    let url = s.url(&["speeches", &p.id]);
    patch_title_and_description(&mut s, url, p.title, p.description).await
}

async fn delete_speech(mut s: Session, p: SpeechRef) -> Result<Page, Error> {
    let url = s.url(&["speeches", &p.id]);
    let answer = s.json(ProviderRequest::new(Method::DELETE, url)).await?;
    Ok(deleted(answer, "id", p.id))
}

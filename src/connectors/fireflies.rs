//! Fireflies.ai: one GraphQL endpoint (the base URL), `Authorization: Bearer <api_key>`.
//! Lists page with `limit`/`skip`; the next page token carries the offset.

use serde::Deserialize;
use serde_json::{Value, json};

use super::graphql;
use super::transport::not_found;
use super::{
    Auth, Cursor, Field, Identity, Page, Params, PlatformDef, Schema, Session, next_offset,
};
use crate::domain::Credentials;
use crate::domain::Platform;
use crate::error::Error;

/// Fireflies' own maximum for `transcripts(limit:)`.
const MAX_LIMIT: i64 = 50;

pub fn platform() -> PlatformDef {
    PlatformDef::new(Platform::Fireflies, auth, test_connection)
        .list(
            "list_transcripts",
            "List meeting transcripts, newest first, with their summaries.",
            list_transcripts,
        )
        .read(
            "get_transcript",
            "Get one transcript with its sentences, speakers, media links and summary.",
            get_transcript,
        )
        .list(
            "search_transcripts",
            "Find transcripts whose title or spoken words contain a keyword.",
            search_transcripts,
        )
        .read(
            "get_summary",
            "Get the AI summary of one transcript (overview, action items, keywords, outline).",
            get_summary,
        )
        .write(
            "graphql_query",
            "Run a raw GraphQL query or mutation against the Fireflies API, values in variables.",
            graphql::raw_query,
        )
}

fn auth(creds: &Credentials) -> Result<Auth, Error> {
    // An OAuth connection would carry access_token; API-key connections carry api_key.
    match creds.get("access_token") {
        Some(token) => Auth::bearer(token),
        None => Auth::bearer(creds.require("api_key")?),
    }
}

async fn test_connection(mut s: Session) -> Result<Identity, Error> {
    let url = s.base().clone();
    let data = graphql::query(
        &mut s,
        url,
        "query Me { user { user_id email name } }",
        json!({}),
        true,
    )
    .await?;
    if data.get("user").is_none_or(Value::is_null) {
        return Err(super::transport::bad_answer(Platform::Fireflies, "no user"));
    }
    Ok(Identity::default())
}

const LIST_FIELDS: &str = "id title date duration host_email organizer_email participants \
     meeting_attendees { displayName email } summary { overview action_items keywords }";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListTranscripts {
    limit: i64,
    from_date: Option<String>,
    to_date: Option<String>,
}

impl Params for ListTranscripts {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::integer("limit", "Transcripts per page.", 1, MAX_LIMIT).default(json!(20)),
            Field::date(
                "from_date",
                "Only transcripts of meetings on or after this time.",
            ),
            Field::date(
                "to_date",
                "Only transcripts of meetings on or before this time.",
            ),
        ])
    }
}

/// Fireflies' `DateTime` scalar wants a full timestamp; a bare date means its midnight UTC.
fn datetime(v: Option<String>) -> Value {
    match v {
        Some(d) if d.len() == 10 => json!(format!("{d}T00:00:00.000Z")),
        Some(d) => json!(d),
        None => Value::Null,
    }
}

async fn transcripts_page(
    mut s: Session,
    variables: Value,
    limit: i64,
    skip: u64,
    filter_args: &str,
    filter_vars: &str,
) -> Result<Page, Error> {
    let query = format!(
        "query Transcripts($limit: Int, $skip: Int{filter_vars}) \
         {{ transcripts(limit: $limit, skip: $skip{filter_args}) {{ {LIST_FIELDS} }} }}"
    );
    let url = s.base().clone();
    let mut data = graphql::query(&mut s, url, &query, variables, true).await?;
    let items = super::items_of(&mut data, &["transcripts"]).unwrap_or_default();
    let next = next_offset(skip, u64::try_from(limit).unwrap_or(0), items.len());
    Ok(Page::list(items, next))
}

async fn list_transcripts(
    s: Session,
    p: ListTranscripts,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let skip = Cursor::offset(page)?;
    let variables = json!({
        "limit": p.limit,
        "skip": skip,
        "fromDate": datetime(p.from_date),
        "toDate": datetime(p.to_date),
    });
    transcripts_page(
        s,
        variables,
        p.limit,
        skip,
        ", fromDate: $fromDate, toDate: $toDate",
        ", $fromDate: DateTime, $toDate: DateTime",
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchTranscripts {
    query: String,
    limit: i64,
}

impl Params for SearchTranscripts {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::text("query", "Keyword to find in titles and spoken words.", 200).required(),
            Field::integer("limit", "Transcripts per page.", 1, MAX_LIMIT).default(json!(20)),
        ])
    }
}

async fn search_transcripts(
    s: Session,
    p: SearchTranscripts,
    page: Option<Cursor>,
) -> Result<Page, Error> {
    let skip = Cursor::offset(page)?;
    let variables = json!({"limit": p.limit, "skip": skip, "keyword": p.query});
    transcripts_page(
        s,
        variables,
        p.limit,
        skip,
        ", keyword: $keyword",
        ", $keyword: String",
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TranscriptId {
    id: String,
}

impl Params for TranscriptId {
    fn schema() -> Schema {
        Schema::new(vec![Field::id("id", "The transcript id.").required()])
    }
}

async fn one_transcript(mut s: Session, id: String, fields: &str) -> Result<Page, Error> {
    let query = format!("query Transcript($id: String!) {{ transcript(id: $id) {{ {fields} }} }}");
    let url = s.base().clone();
    let mut data = graphql::query(&mut s, url, &query, json!({"id": id}), true).await?;
    match data.get_mut("transcript").map(Value::take) {
        Some(t) if !t.is_null() => Ok(Page::one(t)),
        _ => Err(not_found(
            Platform::Fireflies,
            "object_not_found",
            "transcript",
        )),
    }
}

async fn get_transcript(s: Session, p: TranscriptId) -> Result<Page, Error> {
    one_transcript(
        s,
        p.id,
        "id title date duration host_email organizer_email participants transcript_url \
         audio_url video_url meeting_attendees { displayName email } \
         speakers { id name } sentences { index text speaker_name start_time end_time } \
         summary { overview action_items keywords outline shorthand_bullet }",
    )
    .await
}

async fn get_summary(s: Session, p: TranscriptId) -> Result<Page, Error> {
    one_transcript(
        s,
        p.id,
        "id title summary { overview action_items keywords outline shorthand_bullet bullet_gist }",
    )
    .await
}

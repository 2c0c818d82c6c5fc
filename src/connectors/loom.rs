//! Loom: `Authorization: Bearer <access_token>` against the product spec's paths (the seed's
//! connector). Loom documents no public REST API or OAuth (its developer surface is the
//! record and embed SDKs), so every path and shape here is unverified, and the base URL is
//! configurable (`FH_LOOM_BASE_URL`) for when Loom publishes one. Videos page by
//! `limit`/`offset`; the page token carries the offset.

use http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{bearer_access_token, get_users_me};
use super::common::{
    check_title_or_description, patch_title_and_description, title_and_description_fields,
};
use super::deleted;
use super::transport::{ProviderRequest, bad_answer};
use super::{Cursor, Field, Page, Params, PlatformDef, Schema, Session, items_of, next_offset};
use crate::domain::Platform;
use crate::error::Error;

pub fn platform() -> PlatformDef {
    PlatformDef::new(Platform::Loom, bearer_access_token, get_users_me)
        .list(
            "list_videos",
            "List the user's videos (unverified API: Loom documents none).",
            list_videos,
        )
        .read(
            "get_video",
            "Get one video's details (unverified API).",
            get_video,
        )
        .read(
            "get_transcript",
            "Get a video's transcript (unverified API).",
            get_transcript,
        )
        .read(
            "get_insights",
            "Get a video's viewing insights (unverified API).",
            get_insights,
        )
        .read(
            "search_videos",
            "Find videos matching a query, one page (unverified API).",
            search_videos,
        )
        .write(
            "update_video",
            "Change a video's title or description (unverified API).",
            update_video,
        )
        .write(
            "delete_video",
            "Delete a video (unverified API).",
            delete_video,
        )
}

const VIDEO_KEYS: &[&str] = &["videos", "data", "results"];

fn limit() -> Field {
    Field::integer("limit", "Videos per page.", 1, 100).default(json!(25))
}

fn videos(answer: &mut Value) -> Result<Vec<Value>, Error> {
    items_of(answer, VIDEO_KEYS).ok_or_else(|| bad_answer(Platform::Loom, "no list of videos"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListVideos {
    limit: i64,
    sort_by: Option<String>,
    sort_direction: Option<String>,
}

impl Params for ListVideos {
    fn schema() -> Schema {
        Schema::new(vec![
            limit(),
            Field::one_of(
                "sort_by",
                "Order by.",
                &["created_at", "updated_at", "title"],
            ),
            Field::one_of("sort_direction", "Direction.", &["desc", "asc"]),
        ])
    }
}

async fn list_videos(mut s: Session, p: ListVideos, page: Option<Cursor>) -> Result<Page, Error> {
    let skip = Cursor::offset(page)?;
    let mut query = vec![("limit", p.limit.to_string()), ("offset", skip.to_string())];
    query.extend(p.sort_by.map(|v| ("sort_by", v)));
    query.extend(p.sort_direction.map(|v| ("sort_direction", v)));
    let url = s.url(&["videos"]);
    let mut answer = s.json(ProviderRequest::get(url).query(query)).await?;
    let items = videos(&mut answer)?;
    let next = next_offset(skip, u64::try_from(p.limit).unwrap_or(0), items.len());
    Ok(Page::list(items, next))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VideoRef {
    video_id: String,
}

impl Params for VideoRef {
    fn schema() -> Schema {
        Schema::new(vec![Field::id("video_id", "The video id.").required()])
    }
}

async fn get_video(mut s: Session, p: VideoRef) -> Result<Page, Error> {
    let url = s.url(&["videos", &p.video_id]);
    Ok(Page::one(s.json(ProviderRequest::get(url)).await?))
}

async fn get_transcript(mut s: Session, p: VideoRef) -> Result<Page, Error> {
    let url = s.url(&["videos", &p.video_id, "transcript"]);
    Ok(Page::one(s.json(ProviderRequest::get(url)).await?))
}

async fn get_insights(mut s: Session, p: VideoRef) -> Result<Page, Error> {
    let url = s.url(&["videos", &p.video_id, "insights"]);
    Ok(Page::one(s.json(ProviderRequest::get(url)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchVideos {
    query: String,
    limit: i64,
}

impl Params for SearchVideos {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::text(
                "query",
                "What to search for in titles and transcripts.",
                200,
            )
            .required(),
            limit(),
        ])
    }
}

async fn search_videos(mut s: Session, p: SearchVideos) -> Result<Page, Error> {
    let url = s.url(&["videos", "search"]);
    let query = [("query", p.query), ("limit", p.limit.to_string())];
    let mut answer = s.json(ProviderRequest::get(url).query(query)).await?;
    Ok(Page::list(videos(&mut answer)?, None))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateVideo {
    video_id: String,
    title: Option<String>,
    description: Option<String>,
}

impl Params for UpdateVideo {
    fn schema() -> Schema {
        Schema::new(
            vec![Field::id("video_id", "The video id.").required()]
                .into_iter()
                .chain(title_and_description_fields())
                .collect(),
        )
    }

    fn check(&self) -> Result<(), Error> {
        check_title_or_description(&self.title, &self.description)
    }
}

async fn update_video(mut s: Session, p: UpdateVideo) -> Result<Page, Error> {
    let url = s.url(&["videos", &p.video_id]);
    patch_title_and_description(&mut s, url, p.title, p.description).await
}

async fn delete_video(mut s: Session, p: VideoRef) -> Result<Page, Error> {
    let url = s.url(&["videos", &p.video_id]);
    let answer = s.json(ProviderRequest::new(Method::DELETE, url)).await?;
    Ok(deleted(answer, "video_id", p.video_id))
}

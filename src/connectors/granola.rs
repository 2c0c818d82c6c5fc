//! Granola: `Authorization: Bearer grn_...`. Notes come from Granola's public API
//! (`GET /v1/notes` paged by `cursor`, `GET /v1/notes/{id}`). The metric operations are the
//! product spec's (the seed's paths under `/v1`); Granola documents no such API, so they are
//! unverified and say so in their descriptions and the README.

use http::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::transport::{ProviderRequest, bad_answer};
use super::{
    Auth, Cursor, Field, Identity, Page, Params, PlatformDef, Schema, Session, items_of,
    next_offset,
};
use crate::domain::Credentials;
use crate::domain::Platform;
use crate::error::Error;

pub fn platform() -> PlatformDef {
    PlatformDef::new(Platform::Granola, auth, test_connection)
        .list(
            "list_notes",
            "List meeting notes visible to the API key, newest first.",
            list_notes,
        )
        .read(
            "get_note",
            "Get one meeting note with its summary, optionally its transcript.",
            get_note,
        )
        .list(
            "list_metrics",
            "List metrics (from the product spec; Granola documents no public metrics API).",
            list_metrics,
        )
        .read(
            "get_metric",
            "Get one metric over a date range (from the product spec; unverified).",
            get_metric,
        )
        .read(
            "get_dashboard_metrics",
            "Get the metrics of a dashboard (from the product spec; unverified).",
            get_dashboard_metrics,
        )
        .read(
            "get_kpis",
            "Get KPIs, optionally of one category (from the product spec; unverified).",
            get_kpis,
        )
        .read(
            "get_insights",
            "Get generated insights (from the product spec; unverified).",
            get_insights,
        )
        .read(
            "get_trends",
            "Get a metric's trend over a period (from the product spec; unverified).",
            get_trends,
        )
        .write(
            "create_metric",
            "Create a custom metric (from the product spec; unverified).",
            create_metric,
        )
}

fn auth(creds: &Credentials) -> Result<Auth, Error> {
    Auth::bearer(creds.require("api_key")?)
}

/// The cheapest authenticated call Granola documents (Nango checks keys the same way).
async fn test_connection(mut s: Session) -> Result<Identity, Error> {
    let url = s.url(&["v1", "notes"]);
    s.json(ProviderRequest::get(url).query([("page_size", "1")]))
        .await?;
    Ok(Identity::default())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListNotes {
    page_size: i64,
    created_after: Option<String>,
    created_before: Option<String>,
    updated_after: Option<String>,
}

impl Params for ListNotes {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::integer(
                "page_size",
                "Notes per page (Granola allows 1 to 30).",
                1,
                30,
            )
            .default(json!(10)),
            Field::date("created_after", "Only notes created after this date."),
            Field::date("created_before", "Only notes created before this date."),
            Field::date("updated_after", "Only notes updated after this date."),
        ])
    }
}

async fn list_notes(mut s: Session, p: ListNotes, page: Option<Cursor>) -> Result<Page, Error> {
    let mut query = vec![("page_size", p.page_size.to_string())];
    query.extend(p.created_after.map(|v| ("created_after", v)));
    query.extend(p.created_before.map(|v| ("created_before", v)));
    query.extend(p.updated_after.map(|v| ("updated_after", v)));
    query.extend(Cursor::token(page)?.map(|c| ("cursor", c)));
    let url = s.url(&["v1", "notes"]);
    let mut answer = s.json(ProviderRequest::get(url).query(query)).await?;
    let items = items_of(&mut answer, &["notes"])
        .ok_or_else(|| bad_answer(Platform::Granola, "no notes list"))?;
    // Granola says `hasMore` and gives the `cursor` of the next page.
    let more = answer
        .get("hasMore")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let next = answer
        .get("cursor")
        .and_then(Value::as_str)
        .filter(|c| more && !c.is_empty())
        .map(|c| Cursor::Token(c.to_owned()));
    Ok(Page::list(items, next))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetNote {
    id: String,
    include_transcript: bool,
}

impl Params for GetNote {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::id("id", "The note id (not_...).").required(),
            Field::boolean("include_transcript", "Include the meeting transcript.")
                .default(json!(false)),
        ])
    }
}

async fn get_note(mut s: Session, p: GetNote) -> Result<Page, Error> {
    let url = s.url(&["v1", "notes", &p.id]);
    let mut req = ProviderRequest::get(url);
    if p.include_transcript {
        req = req.query([("include", "transcript")]);
    }
    Ok(Page::one(s.json(req).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListMetrics {
    limit: i64,
}

impl Params for ListMetrics {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::integer("limit", "Metrics per page.", 1, 100).default(json!(50)),
        ])
    }
}

async fn list_metrics(mut s: Session, p: ListMetrics, page: Option<Cursor>) -> Result<Page, Error> {
    let skip = Cursor::offset(page)?;
    let url = s.url(&["v1", "metrics"]);
    let req = ProviderRequest::get(url)
        .query([("limit", p.limit.to_string()), ("offset", skip.to_string())]);
    let mut answer = s.json(req).await?;
    let items = items_of(&mut answer, &["metrics", "data"])
        .ok_or_else(|| bad_answer(Platform::Granola, "no metrics list"))?;
    let next = next_offset(skip, u64::try_from(p.limit).unwrap_or(0), items.len());
    Ok(Page::list(items, next))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetMetric {
    id: String,
    start_date: Option<String>,
    end_date: Option<String>,
}

impl Params for GetMetric {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::id("id", "The metric id.").required(),
            Field::date("start_date", "Start of the range."),
            Field::date("end_date", "End of the range."),
        ])
    }
}

async fn get_metric(mut s: Session, p: GetMetric) -> Result<Page, Error> {
    let url = s.url(&["v1", "metrics", &p.id]);
    let mut query = Vec::new();
    query.extend(p.start_date.map(|v| ("start_date", v)));
    query.extend(p.end_date.map(|v| ("end_date", v)));
    Ok(Page::one(
        s.json(ProviderRequest::get(url).query(query)).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Dashboard {
    dashboard_id: String,
}

impl Params for Dashboard {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::id(
                "dashboard_id",
                "The dashboard; \"default\" for the default one.",
            )
            .default(json!("default")),
        ])
    }
}

async fn get_dashboard_metrics(mut s: Session, p: Dashboard) -> Result<Page, Error> {
    let url = s.url(&["v1", "dashboards", &p.dashboard_id, "metrics"]);
    Ok(Page::one(s.json(ProviderRequest::get(url)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kpis {
    category: Option<String>,
}

impl Params for Kpis {
    fn schema() -> Schema {
        Schema::new(vec![Field::text(
            "category",
            "Only KPIs of this category.",
            100,
        )])
    }
}

async fn get_kpis(mut s: Session, p: Kpis) -> Result<Page, Error> {
    let url = s.url(&["v1", "kpis"]);
    let query: Vec<(&str, String)> = p.category.map(|c| ("category", c)).into_iter().collect();
    Ok(Page::one(
        s.json(ProviderRequest::get(url).query(query)).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Insights {
    limit: i64,
}

impl Params for Insights {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::integer("limit", "How many insights.", 1, 100).default(json!(10)),
        ])
    }
}

async fn get_insights(mut s: Session, p: Insights) -> Result<Page, Error> {
    let url = s.url(&["v1", "insights"]);
    let req = ProviderRequest::get(url).query([("limit", p.limit.to_string())]);
    Ok(Page::one(s.json(req).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Trends {
    metric_id: String,
    period: String,
}

impl Params for Trends {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::id("metric_id", "The metric.").required(),
            Field::one_of(
                "period",
                "Granularity of the trend.",
                &["day", "week", "month", "quarter", "year"],
            )
            .default(json!("week")),
        ])
    }
}

async fn get_trends(mut s: Session, p: Trends) -> Result<Page, Error> {
    let url = s.url(&["v1", "metrics", &p.metric_id, "trends"]);
    let req = ProviderRequest::get(url).query([("period", p.period)]);
    Ok(Page::one(s.json(req).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateMetric {
    name: String,
    definition: Map<String, Value>,
}

impl Params for CreateMetric {
    fn schema() -> Schema {
        Schema::new(vec![
            Field::text("name", "The metric's name.", 200).required(),
            Field::any_object("definition", "How the metric is computed.").required(),
        ])
    }
}

async fn create_metric(mut s: Session, p: CreateMetric) -> Result<Page, Error> {
    let url = s.url(&["v1", "metrics"]);
    let body = json!({"name": p.name, "definition": p.definition});
    Ok(Page::one(
        s.json(ProviderRequest::json(Method::POST, url, &body))
            .await?,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_unverified_marker_is_in_every_metric_description() {
        let def = super::platform();
        for op in def.operations.iter().filter(|o| !o.name.contains("note")) {
            assert!(
                op.description.contains("product spec"),
                "{} must say it is unverified",
                op.name
            );
        }
    }
}

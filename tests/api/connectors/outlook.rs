//! Outlook (Microsoft Graph): every operation against the fake over gRPC, `@odata.nextLink`
//! paging through opaque tokens (and only on the configured Graph host, whether the link comes
//! from Graph or back in a forged token), Graph's error JSON, 429 with Retry-After, and the
//! connection test.

use std::time::{Duration, Instant};

use founderhouse_integrations::connectors::Cursor;
use founderhouse_integrations::connectors::paging;
use founderhouse_integrations::domain::{Platform, Role};
use founderhouse_integrations::proto::HealthState;
use serde_json::{Value, json};
use tonic::Code;

use super::Rig;
use super::core::metadata;
use super::fake::Scripted;
use super::fakes::outlook::{self, ACCESS, BASE, STALE, bearer};
use super::seeded::Seed;
use crate::helpers::{reason, violated_fields};

async fn rig_with(access: &str) -> Rig {
    Rig::start_seeded(
        outlook::start().await,
        Seed {
            platform: Platform::Outlook,
            base_path: BASE,
            tokens: &[("access_token", access)],
            expires_in: Some(Duration::from_secs(3600)),
        },
        |_| {},
    )
    .await
}

async fn rig() -> Rig {
    rig_with(ACCESS).await
}

fn me(rest: &str) -> String {
    format!("{BASE}/me{rest}")
}

fn ids(data: &Value) -> Vec<&str> {
    data["items"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t["id"].as_str().expect("an id"))
        .collect()
}

#[tokio::test]
async fn list_messages_pages_through_the_inbox_by_graphs_next_link() {
    let rig = rig().await;

    let (first, token) = rig
        .invoke_page("outlook.list_messages", json!({"top": 2}), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("outlook.list_messages", json!({"top": 2}), &token)
        .await
        .unwrap();

    assert_eq!(ids(&first), vec!["AAMkAGI2TG93AAA=", "AAMkAGI2TG94AAA="]);
    assert_eq!(ids(&second), vec!["AAMkAGI2TG95AAA="]);
    assert_eq!(first["items"][0]["subject"], "Board meeting");
    assert!(
        !token.is_empty() && !token.contains("http"),
        "an opaque token"
    );
    assert_eq!(last, "");
    let seen = rig.fake.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, me("/mailFolders/inbox/messages"));
    assert_eq!(
        seen[0].header("authorization"),
        Some(bearer(ACCESS).as_str())
    );
    assert_eq!(
        seen[0].query_pairs(),
        vec![
            ("$top".to_owned(), "2".to_owned()),
            ("$orderby".to_owned(), "receivedDateTime desc".to_owned()),
        ]
    );
    assert_eq!(seen[1].path, me("/mailFolders('inbox')/messages"));
    assert_eq!(
        seen[1].query, "%24top=2&%24skip=2",
        "the next link as Graph wrote it"
    );
    assert_eq!(
        seen[1].header("authorization"),
        Some(bearer(ACCESS).as_str())
    );
    rig.stop().await;
}

#[tokio::test]
async fn list_messages_with_a_filter_sends_it_without_an_order() {
    let rig = rig().await;

    let unread = rig
        .invoke(
            "outlook.list_messages",
            json!({"folder": "inbox", "filter": "isRead eq false"}),
        )
        .await
        .unwrap();

    assert_eq!(ids(&unread), vec!["AAMkAGI2TG93AAA="]);
    let seen = rig.fake.last();
    assert_eq!(
        seen.query_value("$filter").as_deref(),
        Some("isRead eq false")
    );
    assert_eq!(seen.query_value("$orderby"), None);
    assert_eq!(seen.query_value("$top").as_deref(), Some("25"));
    rig.stop().await;
}

#[tokio::test]
async fn graphs_error_json_becomes_a_rejection_with_its_code() {
    let rig = rig().await;

    let bad_filter = rig
        .invoke(
            "outlook.list_messages",
            json!({"filter": "subject eq 'unterminated"}),
        )
        .await
        .unwrap_err();
    let missing = rig
        .invoke("outlook.get_message", json!({"id": "AAMkNope="}))
        .await
        .unwrap_err();

    assert_eq!(bad_filter.code(), Code::InvalidArgument);
    assert_eq!(reason(&bad_filter), "PROVIDER_REJECTED");
    assert_eq!(
        metadata(&bad_filter, "provider_code").as_deref(),
        Some("ErrorInvalidUrlQueryFilter")
    );
    assert_eq!(missing.code(), Code::FailedPrecondition);
    assert_eq!(
        metadata(&missing, "provider_code").as_deref(),
        Some("ErrorItemNotFound")
    );
    assert_eq!(
        metadata(&missing, "provider_status").as_deref(),
        Some("404")
    );
    assert!(
        missing.message().contains("not found in the store"),
        "{}",
        missing.message()
    );
    rig.stop().await;
}

#[tokio::test]
async fn get_message_returns_the_message_with_its_body() {
    let rig = rig().await;

    let m = rig
        .invoke("outlook.get_message", json!({"id": "AAMkAGI2TG94AAA="}))
        .await
        .unwrap();

    assert_eq!(m["subject"], "Term sheet");
    assert_eq!(m["body"]["content"], "<p>Term sheet</p>");
    assert_eq!(rig.fake.last().path, me("/messages/AAMkAGI2TG94AAA="));
    rig.stop().await;
}

#[tokio::test]
async fn send_email_posts_graphs_message_shape_and_answers_accepted() {
    let rig = rig().await;

    let sent = rig
        .invoke(
            "outlook.send_email",
            json!({
                "to": ["grace@contoso.com", "alan@fabrikam.com"],
                "cc": ["cfo@contoso.com"],
                "subject": "Q3 update",
                "body": "Runway is 18 months.",
                "body_type": "Text",
            }),
        )
        .await
        .unwrap();

    assert_eq!(sent, json!({"accepted": true}));
    let seen = rig.fake.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, me("/sendMail"));
    assert_eq!(
        seen.json(),
        json!({
            "message": {
                "subject": "Q3 update",
                "body": {"contentType": "Text", "content": "Runway is 18 months."},
                "toRecipients": [
                    {"emailAddress": {"address": "grace@contoso.com"}},
                    {"emailAddress": {"address": "alan@fabrikam.com"}},
                ],
                "ccRecipients": [{"emailAddress": {"address": "cfo@contoso.com"}}],
            },
            "saveToSentItems": true,
        })
    );
    rig.stop().await;
}

#[tokio::test]
async fn send_email_refuses_implausible_addresses_and_broken_subjects_before_sending() {
    let rig = rig().await;

    let err = rig
        .invoke(
            "outlook.send_email",
            json!({"to": ["grace@contoso.com", "Eve <eve@evil.example>"], "bcc": ["nope"],
                   "subject": "hi", "body": "x", "body_type": "Markdown"}),
        )
        .await
        .unwrap_err();
    let subject = rig
        .invoke(
            "outlook.send_email",
            json!({"to": ["grace@contoso.com"], "subject": "hi\r\nBcc: eve@evil.example", "body": "x"}),
        )
        .await
        .unwrap_err();
    let nobody = rig
        .invoke(
            "outlook.send_email",
            json!({"to": [], "subject": "hi", "body": "x"}),
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        vec!["params.to[1]", "params.bcc[0]", "params.body_type"]
    );
    assert_eq!(violated_fields(&subject), vec!["params.subject"]);
    assert_eq!(violated_fields(&nobody), vec!["params.to"]);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn list_calendar_events_in_a_window_uses_calendar_view_in_utc() {
    let rig = rig().await;

    let (events, next) = rig
        .invoke_page(
            "outlook.list_calendar_events",
            json!({"start": "2024-05-01", "end": "2024-05-08T12:00:00+02:00", "top": 10}),
            "",
        )
        .await
        .unwrap();

    assert_eq!(ids(&events), vec!["AAMkEv1AAA=", "AAMkEv2AAA="]);
    assert_eq!(next, "");
    let seen = rig.fake.last();
    assert_eq!(seen.path, me("/calendarView"));
    assert_eq!(
        seen.query_pairs(),
        vec![
            ("$top".to_owned(), "10".to_owned()),
            ("$orderby".to_owned(), "start/dateTime".to_owned()),
            (
                "startDateTime".to_owned(),
                "2024-05-01T00:00:00Z".to_owned()
            ),
            ("endDateTime".to_owned(), "2024-05-08T10:00:00Z".to_owned()),
        ]
    );
    rig.stop().await;
}

#[tokio::test]
async fn list_calendar_events_from_a_start_filters_the_calendars_events() {
    let rig = rig().await;

    let (events, token) = rig
        .invoke_page(
            "outlook.list_calendar_events",
            json!({"start": "2024-05-01T00:00:00Z", "top": 1}),
            "",
        )
        .await
        .unwrap();
    let (rest, last) = rig
        .invoke_page(
            "outlook.list_calendar_events",
            json!({"start": "2024-05-01T00:00:00Z", "top": 1}),
            &token,
        )
        .await
        .unwrap();

    assert_eq!(ids(&events), vec!["AAMkEv1AAA="]);
    assert_eq!(ids(&rest), vec!["AAMkEv2AAA="]);
    assert_eq!(last, "");
    let seen = rig.fake.requests();
    assert_eq!(seen[0].path, me("/calendar/events"));
    assert_eq!(
        seen[0].query_value("$filter").as_deref(),
        Some("end/dateTime ge '2024-05-01T00:00:00Z'")
    );
    assert_eq!(seen[1].path, me("/calendar/events"));
    assert_eq!(seen[1].query, "%24top=1&%24skip=1");
    rig.stop().await;
}

#[tokio::test]
async fn create_calendar_event_sends_utc_times_and_required_attendees() {
    let rig = rig().await;

    let event = rig
        .invoke(
            "outlook.create_calendar_event",
            json!({
                "subject": "Board meeting",
                "start": "2024-05-10T09:00:00+02:00",
                "end": "2024-05-10T10:30:00+02:00",
                "body": "Agenda: runway",
                "body_type": "Text",
                "location": "HQ",
                "attendees": ["grace@contoso.com"],
                "is_online_meeting": true,
            }),
        )
        .await
        .unwrap();

    assert_eq!(event["id"], "AAMkNewEvAAA=");
    let seen = rig.fake.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, me("/calendar/events"));
    assert_eq!(
        seen.json(),
        json!({
            "subject": "Board meeting",
            "start": {"dateTime": "2024-05-10T07:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2024-05-10T08:30:00", "timeZone": "UTC"},
            "body": {"contentType": "Text", "content": "Agenda: runway"},
            "location": {"displayName": "HQ"},
            "attendees": [{"emailAddress": {"address": "grace@contoso.com"}, "type": "required"}],
            "isOnlineMeeting": true,
        })
    );
    rig.stop().await;
}

#[tokio::test]
async fn create_calendar_event_refuses_an_end_before_its_start_and_bare_dates() {
    let rig = rig().await;

    let backwards = rig
        .invoke(
            "outlook.create_calendar_event",
            json!({"subject": "x", "start": "2024-05-10T10:00:00Z", "end": "2024-05-10T09:00:00Z"}),
        )
        .await
        .unwrap_err();
    let bare = rig
        .invoke(
            "outlook.create_calendar_event",
            json!({"subject": "x", "start": "2024-05-10", "end": "2024-05-11"}),
        )
        .await
        .unwrap_err();

    assert_eq!(violated_fields(&backwards), vec!["params.end"]);
    assert_eq!(violated_fields(&bare), vec!["params.start", "params.end"]);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn search_messages_quotes_and_escapes_the_query() {
    let rig = rig().await;

    let found = rig
        .invoke("outlook.search_messages", json!({"query": "budget"}))
        .await
        .unwrap();
    let quoted = rig
        .invoke(
            "outlook.search_messages",
            json!({"query": r#"term" OR "board"#}),
        )
        .await
        .unwrap();

    assert_eq!(ids(&found), vec!["AAMkAGI2TG95AAA="]);
    assert_eq!(ids(&quoted), Vec::<&str>::new());
    let seen = rig.fake.requests();
    assert_eq!(seen[0].path, me("/messages"));
    assert_eq!(
        seen[0].query_value("$search").as_deref(),
        Some("\"budget\"")
    );
    assert_eq!(seen[0].query_value("$top").as_deref(), Some("25"));
    assert_eq!(
        seen[1].query_value("$search").as_deref(),
        Some(r#""term\" OR \"board""#)
    );
    assert_eq!(seen[0].header("consistencylevel"), None);
    rig.stop().await;
}

#[tokio::test]
async fn a_next_link_to_a_foreign_host_is_refused_and_never_becomes_a_token() {
    let rig = rig().await;
    rig.fake.then(Scripted::status(
        200,
        json!({"value": [{"id": "AAMkAGI2TG93AAA="}],
               "@odata.nextLink": "https://graph.evil.example/v1.0/me/messages?$skip=1"})
        .to_string(),
    ));

    let err = rig
        .invoke("outlook.list_messages", json!({}))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(reason(&err), "PROVIDER_BAD_RESPONSE");
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn a_page_token_forged_to_point_elsewhere_is_refused_before_any_request() {
    let rig = rig().await;
    let checked = json!({"folder": "inbox", "top": 2});
    let checked = checked.as_object().unwrap();
    let other_port = format!("http://127.0.0.1:1{BASE}/me/messages");
    let other_host = format!(
        "http://graph.evil.example:{}{BASE}/me/messages",
        rig.fake.addr.port()
    );
    let other_api = rig.fake.url("/beta/me/messages");

    for link in [other_port, other_host, other_api] {
        let token = paging::encode("outlook.list_messages", checked, &Cursor::Token(link));
        let err = rig
            .invoke_page("outlook.list_messages", json!({"top": 2}), &token)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(violated_fields(&err), vec!["page_token"]);
    }
    let same = paging::encode(
        "outlook.list_messages",
        checked,
        &Cursor::Token(
            rig.fake
                .url(&me("/mailFolders('inbox')/messages?%24top=2&%24skip=2")),
        ),
    );
    let (page, _) = rig
        .invoke_page("outlook.list_messages", json!({"top": 2}), &same)
        .await
        .unwrap();

    assert_eq!(ids(&page), vec!["AAMkAGI2TG95AAA="]);
    assert_eq!(
        rig.fake.count(),
        1,
        "only the link on the Graph API was followed"
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_after_the_wait() {
    let rig = rig().await;
    rig.fake.then(
        Scripted::status(
            429,
            r#"{"error": {"code": "ApplicationThrottled", "message": "Application is over its MailboxConcurrency limit."}}"#,
        )
        .header("retry-after", "1"),
    );
    let started = Instant::now();

    let m = rig
        .invoke("outlook.get_message", json!({"id": "AAMkAGI2TG93AAA="}))
        .await
        .unwrap();

    assert_eq!(m["subject"], "Board meeting");
    assert_eq!(rig.fake.count(), 2);
    assert!(started.elapsed() >= Duration::from_secs(1));
    rig.stop().await;
}

#[tokio::test]
async fn test_integration_is_healthy_with_a_working_token() {
    let rig = rig().await;

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(t.healthy);
    assert_eq!(t.state, HealthState::Healthy as i32);
    assert_eq!(t.message, "Outlook accepted the credentials");
    let seen = rig.fake.last();
    assert_eq!(seen.path, me(""));
    assert_eq!(seen.query_value("$select").as_deref(), Some("id"));
    rig.stop().await;
}

#[tokio::test]
async fn test_integration_needs_reauth_when_graph_refuses_a_token_that_cannot_be_refreshed() {
    let rig = rig_with(STALE).await;

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(!t.healthy);
    assert_eq!(t.state, HealthState::NeedsReauth as i32);
    assert_eq!(t.reason, "NEEDS_REAUTH");
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn params_are_checked_before_any_request_leaves() {
    let rig = rig().await;

    let err = rig
        .invoke(
            "outlook.list_messages",
            json!({"folder": "../../users", "top": 0, "orderby": "x"}),
        )
        .await
        .unwrap_err();
    let window = rig
        .invoke(
            "outlook.list_calendar_events",
            json!({"start": "2024-05-08", "end": "2024-05-01"}),
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        vec!["params.orderby", "params.folder", "params.top"]
    );
    assert_eq!(violated_fields(&window), vec!["params.end"]);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

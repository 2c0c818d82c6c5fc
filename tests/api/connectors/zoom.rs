//! Zoom: every operation against the fake over gRPC, `next_page_token` paging, recording files
//! streamed by Download (only from Zoom's hosts and recording paths), the transcript as text,
//! and the OAuth paths: a 401 refreshes once and retries, an expired token is refreshed before
//! the call.

use std::time::Duration;

use founderhouse_integrations::domain::Secret;
use founderhouse_integrations::domain::{Platform, Role};
use founderhouse_integrations::oauth::ProviderSettings;
use founderhouse_integrations::proto::HealthState;
use serde_json::json;
use tonic::Code;

use super::Rig;
use super::fake::{Fake, Scripted};
use super::fakes::zoom::{
    self, ACCESS, BASE, CLIENT_ID, CLIENT_SECRET, MEETING, NO_TRANSCRIPT, REFRESH, REFRESHED,
    ROTATED_REFRESH, STALE, VIDEO_BYTES, VTT, bearer, video,
};
use super::seeded::Seed;
use crate::helpers::{reason, violated_fields};

/// Zoom's OAuth provider configured against the fake's token endpoint.
fn provider(fake: &Fake) -> ProviderSettings {
    ProviderSettings {
        client_id: Some(CLIENT_ID.to_owned()),
        client_secret: Some(Secret::new(CLIENT_SECRET.to_owned())),
        token_url: Some(fake.url("/oauth/token")),
        ..Default::default()
    }
}

/// An integration with `tokens`, its access token expiring in `expires_in`.
async fn rig_with(tokens: &[(&str, &str)], expires_in: Option<Duration>) -> Rig {
    let fake = zoom::start().await;
    let settings = provider(&fake);
    Rig::start_seeded(
        fake,
        Seed {
            platform: Platform::Zoom,
            base_path: BASE,
            tokens,
            expires_in,
        },
        |c| {
            c.providers.insert("zoom".to_owned(), settings);
        },
    )
    .await
}

/// A working access token (valid for an hour) and its refresh token.
async fn rig() -> Rig {
    rig_with(
        &[("access_token", ACCESS), ("refresh_token", REFRESH)],
        Some(Duration::from_secs(3600)),
    )
    .await
}

fn path(rest: &str) -> String {
    format!("{BASE}{rest}")
}

/// Requests the API saw, without the token endpoint's.
fn api_requests(rig: &Rig) -> Vec<super::fake::Seen> {
    rig.fake
        .requests()
        .into_iter()
        .filter(|s| s.path != "/oauth/token")
        .collect()
}

fn token_requests(rig: &Rig) -> Vec<super::fake::Seen> {
    rig.fake
        .requests()
        .into_iter()
        .filter(|s| s.path == "/oauth/token")
        .collect()
}

#[tokio::test]
async fn the_connection_test_reads_the_tokens_own_user() {
    let rig = rig().await;

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(t.healthy, "{t:?}");
    assert_eq!(t.message, "Zoom accepted the credentials");
    let seen = rig.fake.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("GET", "/v2/users/me")
    );
    assert_eq!(seen.header("authorization"), Some(bearer(ACCESS).as_str()));
    rig.stop().await;
}

#[tokio::test]
async fn a_rejected_token_without_a_refresh_token_tests_needs_reauth_after_one_call() {
    let rig = rig_with(&[("access_token", STALE)], None).await;

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(!t.healthy);
    assert_eq!(t.state, HealthState::NeedsReauth as i32);
    assert_eq!(t.reason, "NEEDS_REAUTH");
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn list_meetings_pages_with_next_page_token_across_two_pages() {
    let rig = rig().await;
    let params = json!({"page_size": 2, "type": "upcoming"});

    let (first, token) = rig
        .invoke_page("zoom.list_meetings", params.clone(), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("zoom.list_meetings", params, &token)
        .await
        .unwrap();

    assert_eq!(first["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["items"][0]["topic"], "Board sync 1");
    assert_eq!(second["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["items"][0]["topic"], "Board sync 3");
    assert_eq!(last, "");
    assert!(!token.contains("npt-"), "the page token is opaque: {token}");
    let seen = rig.fake.requests();
    assert_eq!(seen[0].path, path("/users/me/meetings"));
    assert_eq!(
        seen[0].query_pairs(),
        vec![
            ("type".to_owned(), "upcoming".to_owned()),
            ("page_size".to_owned(), "2".to_owned()),
        ]
    );
    assert_eq!(
        seen[1].query_value("next_page_token").as_deref(),
        Some("npt-2")
    );
    assert_eq!(
        seen[1].header("authorization"),
        Some(bearer(ACCESS).as_str())
    );
    rig.stop().await;
}

#[tokio::test]
async fn get_meeting_reads_one_meeting_and_its_occurrence() {
    let rig = rig().await;

    let data = rig
        .invoke(
            "zoom.get_meeting",
            json!({"meeting_id": MEETING, "occurrence_id": "1648194360000"}),
        )
        .await
        .unwrap();

    assert_eq!(data["topic"], "Board meeting");
    assert_eq!(data["id"], 85746065432_f64);
    let seen = rig.fake.last();
    assert_eq!(seen.path, path(&format!("/meetings/{MEETING}")));
    assert_eq!(
        seen.query_value("occurrence_id").as_deref(),
        Some("1648194360000")
    );
    rig.stop().await;
}

#[tokio::test]
async fn an_unknown_meeting_is_a_rejection_carrying_zooms_code_and_message() {
    let rig = rig().await;

    let err = rig
        .invoke("zoom.get_meeting", json!({"meeting_id": "99999999999"}))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "PROVIDER_REJECTED");
    assert_eq!(
        super::core::metadata(&err, "provider_code").as_deref(),
        Some("3001")
    );
    assert_eq!(
        super::core::metadata(&err, "provider_status").as_deref(),
        Some("404")
    );
    assert!(
        err.message()
            .contains("Meeting does not exist: 99999999999.")
    );
    rig.stop().await;
}

#[tokio::test]
async fn list_recordings_asks_for_the_last_thirty_days_by_default() {
    let rig = rig().await;

    let data = rig.invoke("zoom.list_recordings", json!({})).await.unwrap();

    assert_eq!(data["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(data["items"][0]["recording_files"][0]["file_type"], "MP4");
    let seen = rig.fake.last();
    assert_eq!(seen.path, path("/users/me/recordings"));
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Duration::days(30);
    assert_eq!(seen.query_value("to"), Some(today.to_string()));
    assert_eq!(seen.query_value("from"), Some(from.to_string()));
    assert_eq!(seen.query_value("page_size").as_deref(), Some("30"));
    rig.stop().await;
}

#[tokio::test]
async fn list_recordings_sends_the_window_asked_for() {
    let rig = rig().await;

    rig.invoke(
        "zoom.list_recordings",
        json!({"from": "2024-05-01", "to": "2024-05-20", "page_size": 10}),
    )
    .await
    .unwrap();

    let seen = rig.fake.last();
    assert_eq!(seen.query_value("from").as_deref(), Some("2024-05-01"));
    assert_eq!(seen.query_value("to").as_deref(), Some("2024-05-20"));
    assert_eq!(seen.query_value("page_size").as_deref(), Some("10"));
    rig.stop().await;
}

#[tokio::test]
async fn params_are_checked_before_any_request() {
    let rig = rig().await;

    let window = rig
        .invoke(
            "zoom.list_recordings",
            json!({"from": "2024-01-01", "to": "2024-05-01"}),
        )
        .await
        .unwrap_err();
    let ids = rig
        .invoke("zoom.get_meeting", json!({"meeting_id": "../users/me"}))
        .await
        .unwrap_err();
    let limits = rig
        .invoke(
            "zoom.list_meetings",
            json!({"page_size": 301, "type": "all", "user_id": "a/b"}),
        )
        .await
        .unwrap_err();
    let uuid = rig
        .invoke("zoom.get_recording", json!({"meeting_id": "abc?x=1"}))
        .await
        .unwrap_err();

    assert_eq!(window.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&window), vec!["params.from"]);
    assert_eq!(violated_fields(&ids), vec!["params.meeting_id"]);
    assert_eq!(
        violated_fields(&limits),
        vec!["params.user_id", "params.type", "params.page_size"]
    );
    assert_eq!(violated_fields(&uuid), vec!["params.meeting_id"]);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn get_recording_lists_the_files_with_their_download_urls() {
    let rig = rig().await;

    let data = rig
        .invoke("zoom.get_recording", json!({"meeting_id": MEETING}))
        .await
        .unwrap();

    assert_eq!(data["recording_files"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        data["recording_files"][1]["download_url"],
        rig.fake.url("/rec/download/f-vtt")
    );
    assert_eq!(
        rig.fake.last().path,
        path(&format!("/meetings/{MEETING}/recordings"))
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_meeting_uuid_with_slashes_is_double_encoded_as_zoom_requires() {
    let rig = rig().await;

    rig.invoke(
        "zoom.get_recording",
        json!({"meeting_id": "/ajXp112QmuoKj4854875=="}),
    )
    .await
    .unwrap();
    rig.invoke(
        "zoom.get_recording",
        json!({"meeting_id": "4444AAAiAAAAAiAiAiiAii=="}),
    )
    .await
    .unwrap();

    let paths: Vec<String> = rig.fake.requests().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        vec![
            path("/meetings/%252FajXp112QmuoKj4854875%253D%253D/recordings"),
            path("/meetings/4444AAAiAAAAAiAiAiiAii==/recordings"),
        ]
    );
    rig.stop().await;
}

#[tokio::test]
async fn get_meeting_participants_pages_across_two_pages() {
    let rig = rig().await;
    let params = json!({"meeting_id": MEETING, "page_size": 2});

    let (first, token) = rig
        .invoke_page("zoom.get_meeting_participants", params.clone(), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("zoom.get_meeting_participants", params, &token)
        .await
        .unwrap();

    let names = |v: &serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(names(&first), vec!["Ada", "Grace"]);
    assert_eq!(names(&second), vec!["Linus"]);
    assert_eq!(last, "");
    let seen = rig.fake.requests();
    assert_eq!(
        seen[0].path,
        path(&format!("/past_meetings/{MEETING}/participants"))
    );
    assert_eq!(
        seen[1].query_value("next_page_token").as_deref(),
        Some("npt-2")
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_page_token_is_refused_with_other_params() {
    let rig = rig().await;
    let (_, token) = rig
        .invoke_page("zoom.list_meetings", json!({"page_size": 2}), "")
        .await
        .unwrap();

    let err = rig
        .invoke_page("zoom.list_meetings", json!({"page_size": 3}), &token)
        .await
        .unwrap_err();

    assert_eq!(violated_fields(&err), vec!["page_token"]);
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn download_recording_streams_the_file_in_chunks_with_its_type_and_size() {
    let rig = rig().await;

    let messages = rig
        .download(
            "zoom.download_recording",
            json!({"download_url": rig.fake.url("/rec/download/f-mp4")}),
        )
        .await
        .unwrap();

    assert_eq!(messages[0].content_type, "video/mp4");
    assert_eq!(messages[0].total_bytes, VIDEO_BYTES as i64);
    assert!(messages[0].chunk.is_empty());
    assert!(messages.len() > 3, "{} messages", messages.len());
    let bytes: Vec<u8> = messages.iter().flat_map(|m| m.chunk.clone()).collect();
    assert_eq!(bytes, video());
    let seen = rig.fake.last();
    assert_eq!(seen.path, "/rec/download/f-mp4");
    assert_eq!(seen.header("authorization"), Some(bearer(ACCESS).as_str()));
    rig.stop().await;
}

#[tokio::test]
async fn download_recording_refuses_urls_off_zoom_without_calling_anyone() {
    let rig = rig().await;

    for url in [
        "https://evil.example/rec/download/f-mp4",
        "https://zoom.us.evil.example/rec/download/f-mp4",
        "https://evilzoom.us/rec/download/f-mp4",
        "http://us02web.zoom.us/rec/download/f-mp4",
        "https://us02web.zoom.us:8443/rec/download/f-mp4",
        "https://user:pw@zoom.us/rec/download/f-mp4",
        "https://127.0.0.1/rec/download/f-mp4",
        "file:///etc/passwd",
        "not a url",
    ] {
        let err = rig
            .download("zoom.download_recording", json!({"download_url": url}))
            .await
            .unwrap_err();

        assert_eq!(err.code(), Code::InvalidArgument, "{url}");
        assert_eq!(violated_fields(&err), vec!["params.download_url"], "{url}");
    }
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn download_recording_sends_the_token_to_no_other_zoom_path() {
    let rig = rig().await;

    for path in [
        "/v2/users/me",
        "/oauth/token",
        "/rec/download%2F..%2F..%2Fv2%2Fusers%2Fme",
    ] {
        let err = rig
            .download(
                "zoom.download_recording",
                json!({"download_url": rig.fake.url(path)}),
            )
            .await
            .unwrap_err();

        assert_eq!(violated_fields(&err), vec!["params.download_url"], "{path}");
    }
    assert_eq!(rig.fake.count(), 0, "the token went nowhere");
    rig.stop().await;
}

#[tokio::test]
async fn a_download_url_on_another_host_never_receives_the_token() {
    let rig = rig().await;
    let elsewhere = zoom::start().await;

    let err = rig
        .download(
            "zoom.download_recording",
            json!({"download_url": elsewhere.url("/rec/download/f-mp4")}),
        )
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), vec!["params.download_url"]);

    // The same URL in Zoom's own answer.
    let listed = json!({"uuid": "4444AAAiAAAAAiAiAiiAii==", "recording_files": [
        {"id": "f-vtt", "file_type": "TRANSCRIPT",
         "download_url": elsewhere.url("/rec/download/f-vtt")}]});
    rig.fake.then(Scripted::status(200, listed.to_string()));
    let err = rig
        .invoke("zoom.get_transcript", json!({"meeting_id": MEETING}))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "PROVIDER_BAD_RESPONSE");

    assert_eq!(elsewhere.count(), 0, "the other host heard nothing");
    assert_eq!(rig.fake.count(), 1, "only the recording lookup");
    rig.stop().await;
}

#[tokio::test]
async fn download_recording_is_refused_by_invoke() {
    let rig = rig().await;

    let err = rig
        .invoke(
            "zoom.download_recording",
            json!({"download_url": rig.fake.url("/rec/download/f-mp4")}),
        )
        .await
        .unwrap_err();

    assert_eq!(violated_fields(&err), vec!["operation"]);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn get_transcript_returns_the_recordings_vtt_text() {
    let rig = rig().await;

    let data = rig
        .invoke("zoom.get_transcript", json!({"meeting_id": MEETING}))
        .await
        .unwrap();

    assert_eq!(data["text"], VTT);
    assert_eq!(data["format"], "vtt");
    assert_eq!(data["content_type"], "text/vtt");
    assert_eq!(data["file_id"], "f-vtt");
    assert_eq!(data["meeting_id"], MEETING);
    let seen = rig.fake.requests();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["/v2/meetings/85746065432/recordings", "/rec/download/f-vtt"]
    );
    assert_eq!(
        seen[1].header("authorization"),
        Some(bearer(ACCESS).as_str())
    );
    rig.stop().await;
}

#[tokio::test]
async fn get_transcript_of_a_recording_without_one_is_not_found() {
    let rig = rig().await;

    let err = rig
        .invoke("zoom.get_transcript", json!({"meeting_id": NO_TRANSCRIPT}))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason(&err), "TRANSCRIPT_NOT_FOUND");
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn a_429_whose_retry_after_outlasts_the_deadline_is_rate_limited_at_once() {
    let rig = rig().await;
    rig.fake.then(
        Scripted::status(
            429,
            r#"{"code": 429, "message": "You have reached the maximum per-second rate limit for this API."}"#,
        )
        .header("retry-after", "30"),
    );

    let err = rig
        .invoke("zoom.get_meeting", json!({"meeting_id": MEETING}))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(reason(&err), "PROVIDER_RATE_LIMITED");
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_the_retried_call_succeeds_with_the_new_one() {
    let rig = rig_with(
        &[("access_token", STALE), ("refresh_token", REFRESH)],
        Some(Duration::from_secs(3600)),
    )
    .await;

    let data = rig
        .invoke("zoom.get_meeting", json!({"meeting_id": MEETING}))
        .await
        .unwrap();

    assert_eq!(data["topic"], "Board meeting");
    let api = api_requests(&rig);
    let auth: Vec<Option<&str>> = api.iter().map(|s| s.header("authorization")).collect();
    assert_eq!(
        auth,
        vec![
            Some(bearer(STALE).as_str()),
            Some(bearer(REFRESHED).as_str())
        ]
    );
    let refreshes = token_requests(&rig);
    assert_eq!(refreshes.len(), 1);
    let mut form = refreshes[0].form();
    form.sort();
    assert_eq!(
        form,
        vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), REFRESH.to_owned()),
        ]
    );
    rig.stop().await;
}

#[tokio::test]
async fn the_refreshed_tokens_are_kept_for_the_next_call() {
    let rig = rig_with(
        &[("access_token", STALE), ("refresh_token", REFRESH)],
        Some(Duration::from_secs(3600)),
    )
    .await;
    rig.invoke("zoom.get_meeting", json!({"meeting_id": MEETING}))
        .await
        .unwrap();

    rig.invoke("zoom.get_meeting", json!({"meeting_id": MEETING}))
        .await
        .unwrap();

    let api = api_requests(&rig);
    assert_eq!(api.len(), 3);
    assert_eq!(
        api[2].header("authorization"),
        Some(bearer(REFRESHED).as_str())
    );
    assert_eq!(token_requests(&rig).len(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn a_second_401_after_the_refresh_is_needs_reauth_without_another_refresh() {
    let rig = rig_with(
        &[("access_token", STALE), ("refresh_token", REFRESH)],
        Some(Duration::from_secs(3600)),
    )
    .await;
    // Scripted answers go to whatever comes next: the call, the refresh, the retried call.
    let invalid = Scripted::status(401, r#"{"code": 124, "message": "Invalid access token."}"#);
    rig.fake.then(invalid.clone());
    rig.fake.then(Scripted::status(
        200,
        format!(r#"{{"access_token": "{REFRESHED}", "token_type": "bearer", "expires_in": 3599}}"#),
    ));
    rig.fake.then(invalid);

    let err = rig
        .invoke("zoom.get_meeting", json!({"meeting_id": MEETING}))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "NEEDS_REAUTH");
    let api = api_requests(&rig);
    assert_eq!(api.len(), 2);
    assert_eq!(
        api[1].header("authorization"),
        Some(bearer(REFRESHED).as_str())
    );
    assert_eq!(token_requests(&rig).len(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_refreshed_before_the_call() {
    let rig = rig_with(
        &[("access_token", STALE), ("refresh_token", REFRESH)],
        Some(Duration::ZERO),
    )
    .await;

    let data = rig
        .invoke("zoom.get_meeting", json!({"meeting_id": MEETING}))
        .await
        .unwrap();

    assert_eq!(data["topic"], "Board meeting");
    let seen = rig.fake.requests();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, vec!["/oauth/token", "/v2/meetings/85746065432"]);
    assert_eq!(
        seen[1].header("authorization"),
        Some(bearer(REFRESHED).as_str())
    );
    rig.stop().await;
}

#[tokio::test]
async fn no_token_appears_in_an_answer_or_error() {
    let rig = rig_with(
        &[("access_token", STALE), ("refresh_token", REFRESH)],
        Some(Duration::from_secs(3600)),
    )
    .await;
    rig.fake.then(Scripted::status(
        400,
        format!(r#"{{"code": 300, "message": "Token {STALE} and {REFRESH} are not valid here."}}"#),
    ));

    let err = rig
        .invoke("zoom.get_meeting", json!({"meeting_id": MEETING}))
        .await
        .unwrap_err();
    let ok = rig
        .invoke("zoom.get_transcript", json!({"meeting_id": MEETING}))
        .await
        .unwrap();

    let shown = format!("{err:?} {ok}");
    for secret in [
        STALE,
        REFRESH,
        REFRESHED,
        ROTATED_REFRESH,
        ACCESS,
        CLIENT_SECRET,
    ] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
    assert!(err.message().contains("[redacted]"), "{}", err.message());
    rig.stop().await;
}

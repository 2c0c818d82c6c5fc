//! ZeroVoice (Twilio): every operation against the fake, Basic auth, form posts, Twilio error
//! JSON, `next_page_uri` paging, and recordings streamed by Download.

use founderhouse_integrations::domain::{Platform, Role};
use serde_json::json;
use tonic::Code;

use super::fake::Scripted;
use super::fakes::zerovoice::{self, AUDIO_BYTES, BASE, RECORDING, SID, TOKEN, audio, basic};
use super::{Rig, Setup};
use crate::helpers::{reason, violated_fields};

pub async fn rig() -> Rig {
    Rig::start(
        zerovoice::start().await,
        Setup {
            platform: Platform::Zerovoice,
            base_path: Some(BASE),
            credentials: vec![
                ("account_sid", SID.to_owned()),
                ("auth_token", TOKEN.to_owned()),
            ],
        },
    )
    .await
}

fn path(rest: &str) -> String {
    format!("{BASE}/Accounts/{SID}{rest}")
}

#[tokio::test]
async fn the_connection_test_fetches_the_account_resource() {
    let rig = rig().await;

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(t.healthy, "{t:?}");
    let seen = rig.fake.last();
    assert_eq!(seen.path, path(".json"));
    assert_eq!(seen.header("authorization"), Some(basic().as_str()));
    rig.stop().await;
}

#[tokio::test]
async fn send_sms_posts_a_form_with_basic_auth() {
    let rig = rig().await;

    let data = rig
        .invoke(
            "zerovoice.send_sms",
            json!({"to": "+14155550100", "from": "+14155550199", "body": "Board deck attached & ready"}),
        )
        .await
        .unwrap();

    assert_eq!(data["status"], "queued");
    assert_eq!(data["body"], "Board deck attached & ready");
    let seen = rig.fake.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.clone()),
        ("POST", path("/Messages.json"))
    );
    assert_eq!(seen.header("authorization"), Some(basic().as_str()));
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let mut form = seen.form();
    form.sort();
    assert_eq!(
        form,
        vec![
            ("Body".to_owned(), "Board deck attached & ready".to_owned()),
            ("From".to_owned(), "+14155550199".to_owned()),
            ("To".to_owned(), "+14155550100".to_owned()),
        ]
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_twilio_error_is_a_rejection_carrying_twilios_code_and_message() {
    let rig = rig().await;

    let err = rig
        .invoke(
            "zerovoice.send_sms",
            json!({"to": "+15005550001", "from": "+14155550199", "body": "hi"}),
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "PROVIDER_REJECTED");
    assert_eq!(
        super::core::metadata(&err, "provider_code").as_deref(),
        Some("21211")
    );
    assert!(err.message().contains("is not a valid phone number"));
    rig.stop().await;
}

#[tokio::test]
async fn send_sms_is_not_retried_after_a_503() {
    let rig = rig().await;
    rig.fake.then(Scripted::status(
        503,
        r#"{"code": 20500, "message": "Internal Server Error", "status": 503}"#,
    ));

    let err = rig
        .invoke(
            "zerovoice.send_sms",
            json!({"to": "+14155550100", "from": "+14155550199", "body": "once"}),
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn phone_numbers_are_checked_before_sending() {
    let rig = rig().await;

    let err = rig
        .invoke(
            "zerovoice.send_sms",
            json!({"to": "4155550100", "from": "me", "body": ""}),
        )
        .await
        .unwrap_err();

    assert_eq!(
        violated_fields(&err),
        vec!["params.to", "params.from", "params.body"]
    );
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn make_call_posts_to_from_and_the_twiml_url() {
    let rig = rig().await;

    let data = rig
        .invoke(
            "zerovoice.make_call",
            json!({"to": "+14155550100", "from": "+14155550199", "twiml_url": "https://example.com/call.xml"}),
        )
        .await
        .unwrap();

    assert_eq!(data["status"], "queued");
    let seen = rig.fake.last();
    assert_eq!(seen.path, path("/Calls.json"));
    let mut form = seen.form();
    form.sort();
    assert_eq!(
        form,
        vec![
            ("From".to_owned(), "+14155550199".to_owned()),
            ("To".to_owned(), "+14155550100".to_owned()),
            ("Url".to_owned(), "https://example.com/call.xml".to_owned()),
        ]
    );
    rig.stop().await;
}

#[tokio::test]
async fn list_messages_follows_next_page_uri_across_two_pages() {
    let rig = rig().await;

    let (first, token) = rig
        .invoke_page("zerovoice.list_messages", json!({"page_size": 2}), "")
        .await
        .unwrap();
    let (second, last) = rig
        .invoke_page("zerovoice.list_messages", json!({"page_size": 2}), &token)
        .await
        .unwrap();

    assert_eq!(first["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(second["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["items"][0]["body"], "hello 3");
    assert_eq!(last, "");
    let seen = rig.fake.requests();
    assert_eq!(seen[0].query_value("PageSize").as_deref(), Some("2"));
    assert_eq!(seen[1].path, path("/Messages.json"));
    assert_eq!(seen[1].query_value("PageToken").as_deref(), Some("PT1"));
    assert_eq!(seen[1].header("authorization"), Some(basic().as_str()));
    rig.stop().await;
}

#[tokio::test]
async fn a_page_token_of_another_list_is_refused() {
    let rig = rig().await;
    let (_, token) = rig
        .invoke_page("zerovoice.list_messages", json!({"page_size": 2}), "")
        .await
        .unwrap();

    let err = rig
        .invoke_page("zerovoice.list_calls", json!({"page_size": 2}), &token)
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), vec!["page_token"]);
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn get_message_reads_one_message() {
    let rig = rig().await;
    let sid = format!("SM{:032x}", 2);

    let data = rig
        .invoke("zerovoice.get_message", json!({"message_sid": sid}))
        .await
        .unwrap();

    assert_eq!(data["body"], "hello 2");
    assert_eq!(rig.fake.last().path, path(&format!("/Messages/{sid}.json")));
    rig.stop().await;
}

#[tokio::test]
async fn list_calls_filters_by_status() {
    let rig = rig().await;

    let data = rig
        .invoke("zerovoice.list_calls", json!({"status": "completed"}))
        .await
        .unwrap();

    assert_eq!(data["items"].as_array().map(Vec::len), Some(2));
    let seen = rig.fake.last();
    assert_eq!(seen.path, path("/Calls.json"));
    assert_eq!(seen.query_value("Status").as_deref(), Some("completed"));
    assert_eq!(seen.query_value("PageSize").as_deref(), Some("50"));
    rig.stop().await;
}

#[tokio::test]
async fn list_and_get_recordings_and_their_transcriptions() {
    let rig = rig().await;

    let list = rig
        .invoke("zerovoice.list_recordings", json!({}))
        .await
        .unwrap();
    let one = rig
        .invoke(
            "zerovoice.get_recording",
            json!({"recording_sid": RECORDING}),
        )
        .await
        .unwrap();
    let texts = rig
        .invoke(
            "zerovoice.get_transcriptions",
            json!({"recording_sid": RECORDING}),
        )
        .await
        .unwrap();

    assert_eq!(list["items"][0]["sid"], RECORDING);
    assert_eq!(one["duration"], "42");
    assert_eq!(texts["items"][0]["transcription_text"], "Hello there");
    let paths: Vec<String> = rig.fake.requests().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        vec![
            path("/Recordings.json"),
            path(&format!("/Recordings/{RECORDING}.json")),
            path(&format!("/Recordings/{RECORDING}/Transcriptions.json")),
        ]
    );
    rig.stop().await;
}

#[tokio::test]
async fn download_streams_a_recording_in_chunks_with_its_type_and_size_first() {
    let rig = rig().await;

    let messages = rig
        .download(
            "zerovoice.download_recording",
            json!({"recording_sid": RECORDING}),
        )
        .await
        .unwrap();

    assert_eq!(messages[0].content_type, "audio/mpeg");
    assert_eq!(messages[0].total_bytes, AUDIO_BYTES as i64);
    assert!(messages[0].chunk.is_empty());
    assert!(messages.len() > 2, "{} messages", messages.len());
    let bytes: Vec<u8> = messages.iter().flat_map(|m| m.chunk.clone()).collect();
    assert_eq!(bytes, audio());
    let seen = rig.fake.last();
    assert_eq!(seen.path, path(&format!("/Recordings/{RECORDING}.mp3")));
    assert_eq!(seen.header("authorization"), Some(basic().as_str()));
    rig.stop().await;
}

#[tokio::test]
async fn download_follows_one_same_host_redirect_to_the_media() {
    let rig = rig().await;

    let messages = rig
        .download(
            "zerovoice.download_recording",
            json!({"recording_sid": RECORDING, "format": "wav"}),
        )
        .await
        .unwrap();

    assert_eq!(messages[0].content_type, "audio/x-wav");
    let total: usize = messages.iter().map(|m| m.chunk.len()).sum();
    assert_eq!(total, AUDIO_BYTES);
    let paths: Vec<String> = rig.fake.requests().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        vec![
            path(&format!("/Recordings/{RECORDING}.wav")),
            format!("/media/{RECORDING}.wav"),
        ]
    );
    rig.stop().await;
}

#[tokio::test]
async fn downloading_an_unknown_recording_is_a_rejection() {
    let rig = rig().await;

    let err = rig
        .download(
            "zerovoice.download_recording",
            json!({"recording_sid": "REffffffffffffffffffffffffffffffff"}),
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        super::core::metadata(&err, "provider_code").as_deref(),
        Some("20404")
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_download_operation_is_refused_by_invoke_and_an_invoke_operation_by_download() {
    let rig = rig().await;

    let by_invoke = rig
        .invoke(
            "zerovoice.download_recording",
            json!({"recording_sid": RECORDING}),
        )
        .await
        .unwrap_err();
    let by_download = rig
        .download(
            "zerovoice.get_recording",
            json!({"recording_sid": RECORDING}),
        )
        .await
        .unwrap_err();

    assert_eq!(violated_fields(&by_invoke), vec!["operation"]);
    assert_eq!(violated_fields(&by_download), vec!["operation"]);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

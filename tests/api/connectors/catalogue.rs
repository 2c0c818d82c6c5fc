//! ListOperations, unknown and not-yet-built operations, roles, and tenancy: what every
//! connector RPC does before a provider is called.

use std::collections::BTreeSet;

use founderhouse_integrations::domain::Role;
use founderhouse_integrations::proto::{
    DownloadRequest, InvokeRequest, ListOperationsRequest, Platform, ProxyRequest,
    TestIntegrationRequest,
};
use serde_json::json;
use tonic::Code;
use uuid::Uuid;

use super::fireflies::rig;
use super::{to_json, to_struct};
use crate::helpers::{authed, reason, violated_fields};

const EVERY_OPERATION: &[&str] = &[
    "discord.get_channel_messages",
    "discord.get_guild",
    "discord.get_member",
    "discord.list_guild_channels",
    "discord.list_guild_members",
    "discord.list_guilds",
    "discord.send_message",
    "fireflies.get_summary",
    "fireflies.get_transcript",
    "fireflies.graphql_query",
    "fireflies.list_transcripts",
    "fireflies.search_transcripts",
    "gmail.get_message",
    "gmail.get_thread",
    "gmail.list_labels",
    "gmail.list_messages",
    "gmail.list_threads",
    "gmail.modify_labels",
    "gmail.search_messages",
    "gmail.send_message",
    "granola.create_metric",
    "granola.get_dashboard_metrics",
    "granola.get_insights",
    "granola.get_kpis",
    "granola.get_metric",
    "granola.get_note",
    "granola.get_trends",
    "granola.list_metrics",
    "granola.list_notes",
    "loom.delete_video",
    "loom.get_insights",
    "loom.get_transcript",
    "loom.get_video",
    "loom.list_videos",
    "loom.search_videos",
    "loom.update_video",
    "monday.create_item",
    "monday.create_update",
    "monday.get_board",
    "monday.graphql_query",
    "monday.list_boards",
    "monday.list_items",
    "monday.list_workspaces",
    "monday.update_item",
    "notion.append_blocks",
    "notion.create_page",
    "notion.get_database",
    "notion.get_page",
    "notion.get_page_content",
    "notion.list_users",
    "notion.query_database",
    "notion.search",
    "notion.update_page",
    "otter.delete_speech",
    "otter.get_speech",
    "otter.get_summary",
    "otter.get_transcript",
    "otter.list_speeches",
    "otter.search_speeches",
    "otter.update_speech",
    "outlook.create_calendar_event",
    "outlook.get_message",
    "outlook.list_calendar_events",
    "outlook.list_messages",
    "outlook.search_messages",
    "outlook.send_email",
    "slack.get_channel_history",
    "slack.get_thread_replies",
    "slack.get_user",
    "slack.list_channels",
    "slack.list_users",
    "slack.search_messages",
    "slack.send_message",
    "zerodb.create_collection",
    "zerodb.delete_embedding",
    "zerodb.get_collection_stats",
    "zerodb.get_embedding",
    "zerodb.list_collections",
    "zerodb.search_vectors",
    "zerodb.store_embeddings",
    "zerovoice.download_recording",
    "zerovoice.get_message",
    "zerovoice.get_recording",
    "zerovoice.get_transcriptions",
    "zerovoice.list_calls",
    "zerovoice.list_messages",
    "zerovoice.list_recordings",
    "zerovoice.make_call",
    "zerovoice.send_sms",
    "zoom.download_recording",
    "zoom.get_meeting",
    "zoom.get_meeting_participants",
    "zoom.get_recording",
    "zoom.get_transcript",
    "zoom.list_meetings",
    "zoom.list_recordings",
];

#[tokio::test]
async fn list_operations_names_every_operation_to_any_role() {
    let rig = rig().await;

    let ops = rig
        .client()
        .list_operations(authed(
            ListOperationsRequest::default(),
            &rig.app.token(Role::Viewer),
        ))
        .await
        .unwrap()
        .into_inner()
        .operations;

    let names: BTreeSet<&str> = ops.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, EVERY_OPERATION.iter().copied().collect());
    assert_eq!(ops.len(), EVERY_OPERATION.len());
    rig.stop().await;
}

#[tokio::test]
async fn list_operations_of_one_platform_gives_descriptions_schemas_and_writes() {
    let rig = rig().await;

    let ops = rig
        .client()
        .list_operations(authed(
            ListOperationsRequest {
                platform: Platform::Zerovoice as i32,
            },
            &rig.app.token(Role::Member),
        ))
        .await
        .unwrap()
        .into_inner()
        .operations;

    assert_eq!(ops.len(), 9);
    assert!(ops.iter().all(|o| o.platform == Platform::Zerovoice as i32));
    let sms = ops.iter().find(|o| o.name == "zerovoice.send_sms").unwrap();
    assert!(sms.writes);
    assert!(!sms.description.is_empty());
    let schema = to_json(sms.params_schema.clone());
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["required"], json!(["to", "from", "body"]));
    assert_eq!(schema["properties"]["body"]["maxLength"], 1600);
    let list = ops
        .iter()
        .find(|o| o.name == "zerovoice.list_messages")
        .unwrap();
    assert!(!list.writes);
    assert_eq!(
        to_json(list.params_schema.clone())["properties"]["page_size"]["default"],
        50
    );
    rig.stop().await;
}

#[tokio::test]
async fn platforms_without_a_connector_list_nothing_and_their_operations_are_not_found() {
    let rig = rig().await;

    let custom = rig
        .client()
        .list_operations(authed(
            ListOperationsRequest {
                platform: Platform::Custom as i32,
            },
            &rig.app.token(Role::Member),
        ))
        .await
        .unwrap()
        .into_inner()
        .operations;
    let err = rig
        .invoke(
            "custom.send_message",
            json!({"channel": "C1", "text": "hi"}),
        )
        .await
        .unwrap_err();
    let unknown = rig
        .invoke("fireflies.burn_it_all", json!({}))
        .await
        .unwrap_err();

    assert!(custom.is_empty());
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason(&err), "OPERATION_NOT_FOUND");
    assert_eq!(reason(&unknown), "OPERATION_NOT_FOUND");
    rig.stop().await;
}

#[tokio::test]
async fn an_operation_of_another_platform_is_refused_naming_the_operation() {
    let rig = rig().await;

    let err = rig
        .invoke("zerodb.list_collections", json!({}))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), vec!["operation"]);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn a_page_token_on_an_operation_that_does_not_page_is_refused() {
    let rig = rig().await;

    let err = rig
        .invoke_page("fireflies.get_summary", json!({"id": "t1"}), "abc")
        .await
        .unwrap_err();
    let forged = rig
        .invoke_page("fireflies.list_transcripts", json!({}), "bm90IGEgdG9rZW4")
        .await
        .unwrap_err();

    assert_eq!(violated_fields(&err), vec!["page_token"]);
    assert_eq!(violated_fields(&forged), vec!["page_token"]);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn a_viewer_may_run_a_read_but_not_a_write_operation() {
    let rig = rig().await;

    let read = rig
        .invoke_as(
            Role::Viewer,
            &rig.integration,
            "fireflies.get_summary",
            json!({"id": "t1"}),
            "",
        )
        .await;
    let write = rig
        .invoke_as(
            Role::Viewer,
            &rig.integration,
            "fireflies.graphql_query",
            json!({"query": "{ user { name } }"}),
            "",
        )
        .await
        .unwrap_err();

    assert!(read.is_ok(), "{read:?}");
    assert_eq!(write.code(), Code::PermissionDenied);
    assert_eq!(rig.fake.count(), 1, "only the read reached the provider");
    rig.stop().await;
}

#[tokio::test]
async fn another_workspaces_integration_is_not_found_for_every_connector_rpc() {
    let rig = rig().await;
    let stranger = rig.app.token_for(Uuid::new_v4(), Role::Admin);
    let id = rig.integration.rsplit('/').next().unwrap().to_owned();
    let mut client = rig.client();

    let invoke = client
        .invoke(authed(
            InvokeRequest {
                integration: id.clone(),
                operation: "fireflies.list_transcripts".into(),
                params: Some(to_struct(json!({}))),
                page_token: String::new(),
            },
            &stranger,
        ))
        .await
        .unwrap_err();
    let by_name = client
        .invoke(authed(
            InvokeRequest {
                integration: rig.integration.clone(),
                operation: "fireflies.list_transcripts".into(),
                params: None,
                page_token: String::new(),
            },
            &stranger,
        ))
        .await
        .unwrap_err();
    let proxy = client
        .proxy(authed(
            ProxyRequest {
                integration: id.clone(),
                method: "GET".into(),
                path: "/x".into(),
                ..Default::default()
            },
            &stranger,
        ))
        .await
        .unwrap_err();
    let download = client
        .download(authed(
            DownloadRequest {
                integration: id.clone(),
                operation: "zerovoice.download_recording".into(),
                params: Some(to_struct(
                    json!({"recording_sid": "RE0123456789abcdef0123456789abcdef"}),
                )),
            },
            &stranger,
        ))
        .await
        .expect_err("refused");
    let test = rig
        .app
        .integrations()
        .await
        .test_integration(authed(TestIntegrationRequest { name: id }, &stranger))
        .await
        .unwrap_err();

    for (rpc, status) in [
        ("invoke", &invoke),
        ("invoke by name", &by_name),
        ("proxy", &proxy),
        ("download", &download),
        ("test", &test),
    ] {
        assert_eq!(status.code(), Code::NotFound, "{rpc}");
        assert_eq!(reason(status), "INTEGRATION_NOT_FOUND", "{rpc}");
    }
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn malformed_request_fields_are_invalid_argument_naming_the_field() {
    let rig = rig().await;
    let token = rig.app.token(Role::Admin);
    let mut client = rig.client();
    let nan = prost_types::Struct {
        fields: [(
            "limit".to_owned(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::NumberValue(f64::NAN)),
            },
        )]
        .into(),
    };

    let empty_integration = client
        .invoke(authed(
            InvokeRequest {
                operation: "fireflies.list_transcripts".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    let not_a_number = client
        .invoke(authed(
            InvokeRequest {
                integration: rig.integration.clone(),
                operation: "fireflies.list_transcripts".into(),
                params: Some(nan),
                page_token: String::new(),
            },
            &token,
        ))
        .await
        .unwrap_err();
    let bad_proxy_integration = client
        .proxy(authed(
            ProxyRequest {
                integration: "not-an-id".into(),
                method: "GET".into(),
                path: "/x".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    let bad_download_integration = client
        .download(authed(DownloadRequest::default(), &token))
        .await
        .expect_err("refused");
    let bad_platform = client
        .list_operations(authed(ListOperationsRequest { platform: 99 }, &token))
        .await
        .unwrap_err();

    assert_eq!(violated_fields(&empty_integration), vec!["integration"]);
    assert_eq!(violated_fields(&not_a_number), vec!["params"]);
    assert_eq!(violated_fields(&bad_proxy_integration), vec!["integration"]);
    assert_eq!(
        violated_fields(&bad_download_integration),
        vec!["integration"]
    );
    assert_eq!(violated_fields(&bad_platform), vec!["platform"]);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

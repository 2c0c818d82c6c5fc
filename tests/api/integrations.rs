//! IntegrationService over gRPC and its REST mirror: connect, list, get, update, disconnect,
//! and every bad input.

use std::collections::HashSet;

use founderhouse_integrations::domain::Role;
use founderhouse_integrations::proto::{
    self, ConnectIntegrationRequest, DisconnectIntegrationRequest, GetIntegrationRequest,
    ListIntegrationsRequest, Platform, UpdateIntegrationRequest,
};
use prost_types::{FieldMask, Struct, Value, value::Kind};
use serde_json::json;
use tonic::Code;

use crate::helpers::{authed, fireflies, http, reason, spawn_app, violated_fields};

fn zerovoice(sid: &str, token: &str) -> ConnectIntegrationRequest {
    ConnectIntegrationRequest {
        platform: Platform::Zerovoice as i32,
        credentials: [
            ("account_sid".to_owned(), sid.to_owned()),
            ("auth_token".to_owned(), token.to_owned()),
        ]
        .into(),
        ..Default::default()
    }
}

fn string_struct(pairs: &[(&str, &str)]) -> Struct {
    Struct {
        fields: pairs
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    Value {
                        kind: Some(Kind::StringValue((*v).to_owned())),
                    },
                )
            })
            .collect(),
    }
}

#[tokio::test]
async fn connecting_an_api_key_platform_stores_it_and_shows_field_names_only() {
    let app = spawn_app().await;
    let mut c = app.integrations().await;
    let token = app.token(Role::Member);

    let mut req = fireflies("acct-1");
    req.display_name = "Sales calls".into();
    req.metadata = Some(string_struct(&[("team", "sales")]));
    let got = c
        .connect_integration(authed(req, &token))
        .await
        .unwrap()
        .into_inner()
        .integration
        .unwrap();

    assert_eq!(got.platform, Platform::Fireflies as i32);
    assert_eq!(got.status, proto::IntegrationStatus::Connected as i32);
    assert_eq!(got.display_name, "Sales calls");
    assert_eq!(got.credential_fields, vec!["api_key".to_owned()]);
    assert_eq!(
        got.name,
        format!("workspaces/{}/integrations/{}", app.workspace, got.id)
    );
    assert_eq!(got.provider_account_id, "acct-1");
    assert!(got.create_time.is_some() && got.update_time.is_some());
    let fetched = c
        .get_integration(authed(
            GetIntegrationRequest {
                name: got.name.clone(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .integration
        .unwrap();
    assert_eq!(fetched, got);
    let by_id = c
        .get_integration(authed(
            GetIntegrationRequest {
                name: got.id.clone(),
            },
            &token,
        ))
        .await
        .unwrap();
    assert_eq!(by_id.into_inner().integration.unwrap().id, got.id);
    app.stop().await;
}

#[tokio::test]
async fn zerovoice_needs_a_twilio_account_sid_and_the_sid_names_the_account() {
    let app = spawn_app().await;
    let mut c = app.integrations().await;
    let token = app.token(Role::Admin);

    let bad = c
        .connect_integration(authed(zerovoice("AC123", "tok"), &token))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&bad), vec!["credentials.account_sid"]);

    let sid = format!("AC{}", "0123456789abcdef".repeat(2));
    let ok = c
        .connect_integration(authed(zerovoice(&sid, "tok"), &token))
        .await
        .unwrap()
        .into_inner();
    let i = ok.integration.unwrap();
    assert_eq!(i.provider_account_id, sid);
    assert_eq!(
        i.credential_fields,
        vec!["account_sid".to_owned(), "auth_token".to_owned()]
    );
    app.stop().await;
}

#[tokio::test]
async fn connecting_the_same_account_twice_is_already_exists_until_disconnected() {
    let app = spawn_app().await;
    let mut c = app.integrations().await;
    let token = app.token(Role::Admin);

    let first = c
        .connect_integration(authed(fireflies("same"), &token))
        .await
        .unwrap()
        .into_inner();
    let dup = c
        .connect_integration(authed(fireflies("same"), &token))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    assert_eq!(reason(&dup), "INTEGRATION_ALREADY_EXISTS");
    let rest_dup = http()
        .post(app.rest_url("/api/v1/integrations/connect"))
        .bearer_auth(&token)
        .json(&json!({"platform": "fireflies", "credentials": {"api_key": "k"}, "provider_account_id": "same"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rest_dup.status(), 409);

    let name = first.integration.unwrap().name;
    c.disconnect_integration(authed(DisconnectIntegrationRequest { name }, &token))
        .await
        .unwrap();
    c.connect_integration(authed(fireflies("same"), &token))
        .await
        .expect("reconnect after disconnect");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_duplicate_connects_create_exactly_one_integration() {
    let app = spawn_app().await;
    let token = app.token(Role::Admin);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let mut c = app.integrations().await;
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            c.connect_integration(authed(fireflies("race"), &token))
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(s) => assert_eq!(s.code(), Code::AlreadyExists),
        }
    }
    assert_eq!(ok, 1);
    app.stop().await;
}

#[tokio::test]
async fn paging_through_250_integrations_returns_each_exactly_once() {
    let app = spawn_app().await;
    let mut c = app.integrations().await;
    let token = app.token(Role::Admin);
    let mut created = HashSet::new();
    for i in 0..250 {
        let r = c
            .connect_integration(authed(fireflies(&format!("a{i}")), &token))
            .await
            .unwrap();
        created.insert(r.into_inner().integration.unwrap().id);
    }

    let mut seen = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = c
            .list_integrations(authed(
                ListIntegrationsRequest {
                    page_size: 100,
                    page_token: page_token.clone(),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.integrations.len() <= 100);
        seen.extend(page.integrations.into_iter().map(|i| i.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }

    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 250);
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), created);
    app.stop().await;
}

#[tokio::test]
async fn list_filters_by_platform_and_status_and_rest_pages_too() {
    let app = spawn_app().await;
    let mut c = app.integrations().await;
    let token = app.token(Role::Admin);
    let ff = c
        .connect_integration(authed(fireflies("f"), &token))
        .await
        .unwrap()
        .into_inner()
        .integration
        .unwrap();
    let sid = format!("AC{}", "ab".repeat(16));
    c.connect_integration(authed(zerovoice(&sid, "t"), &token))
        .await
        .unwrap();
    c.disconnect_integration(authed(
        DisconnectIntegrationRequest {
            name: ff.id.clone(),
        },
        &token,
    ))
    .await
    .unwrap();

    let only_zv = c
        .list_integrations(authed(
            ListIntegrationsRequest {
                platform: Platform::Zerovoice as i32,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(only_zv.integrations.len(), 1);
    let revoked = c
        .list_integrations(authed(
            ListIntegrationsRequest {
                status: proto::IntegrationStatus::Revoked as i32,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        revoked
            .integrations
            .iter()
            .map(|i| i.id.clone())
            .collect::<Vec<_>>(),
        vec![ff.id]
    );

    let first: serde_json::Value = http()
        .get(app.rest_url("/api/v1/integrations?page_size=1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["integrations"].as_array().unwrap().len(), 1);
    let next = first["next_page_token"].as_str().unwrap();
    assert!(!next.is_empty());
    let second: serde_json::Value = http()
        .get(app.rest_url(&format!(
            "/api/v1/integrations?page_size=1&page_token={next}"
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["integrations"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_page_token"], "");
    assert_ne!(
        first["integrations"][0]["id"],
        second["integrations"][0]["id"]
    );
    app.stop().await;
}

#[tokio::test]
async fn update_changes_display_name_and_merges_metadata_by_field_mask() {
    let app = spawn_app().await;
    let mut c = app.integrations().await;
    let token = app.token(Role::Member);
    let mut req = fireflies("u");
    req.metadata = Some(string_struct(&[("keep", "1"), ("drop", "2")]));
    let i = c
        .connect_integration(authed(req, &token))
        .await
        .unwrap()
        .into_inner()
        .integration
        .unwrap();

    let mut patch = string_struct(&[("added", "3")]);
    patch.fields.insert(
        "drop".into(),
        Value {
            kind: Some(Kind::NullValue(0)),
        },
    );
    let updated = c
        .update_integration(authed(
            UpdateIntegrationRequest {
                integration: Some(proto::Integration {
                    name: i.name.clone(),
                    display_name: "Renamed".into(),
                    metadata: Some(patch),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["metadata".into()],
                }),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .integration
        .unwrap();
    // Only metadata was in the mask: the name stays.
    assert_eq!(updated.display_name, "Fireflies");
    let meta = updated.metadata.unwrap().fields;
    assert!(meta.contains_key("keep") && meta.contains_key("added") && !meta.contains_key("drop"));

    let rest: serde_json::Value = http()
        .patch(app.rest_url(&format!("/api/v1/integrations/{}", i.id)))
        .bearer_auth(&token)
        .json(&json!({"display_name": "Via REST", "metadata": {"n": 1}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["display_name"], "Via REST");
    assert_eq!(rest["metadata"], json!({"keep": "1", "added": "3", "n": 1}));
    app.stop().await;
}

#[tokio::test]
async fn disconnect_destroys_credentials_marks_revoked_and_writes_an_audit_event() {
    let app = spawn_app().await;
    let mut c = app.integrations().await;
    let token = app.token(Role::Owner);
    let i = c
        .connect_integration(authed(fireflies("d"), &token))
        .await
        .unwrap()
        .into_inner()
        .integration
        .unwrap();

    let out = c
        .disconnect_integration(authed(
            DisconnectIntegrationRequest {
                name: i.name.clone(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();

    let after = out.integration.unwrap();
    assert_eq!(after.status, proto::IntegrationStatus::Revoked as i32);
    assert!(after.credential_fields.is_empty());
    assert_eq!(out.revocations.len(), 1);
    assert_eq!(out.revocations[0].token_type, "api_key");
    assert!(!out.revocations[0].revoked_upstream);
    assert_eq!(out.revocations[0].reason, "PROVIDER_HAS_NO_REVOCATION");
    let pool = app.pool().await;
    let creds: i64 = sqlx::query_scalar("SELECT count(*) FROM credentials")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(creds, 0);
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_events ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        actions,
        vec!["integration.connected", "integration.disconnected"]
    );
    // Disconnecting again is harmless.
    let again = c
        .disconnect_integration(authed(
            DisconnectIntegrationRequest { name: i.id.clone() },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(again.revocations.is_empty());
    let rest = http()
        .delete(app.rest_url(&format!("/api/v1/integrations/{}", i.id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 200);
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn every_bad_connect_input_is_invalid_argument_naming_the_field() {
    let app = spawn_app().await;
    let mut c = app.integrations().await;
    let token = app.token(Role::Admin);
    let huge = "x".repeat(100_000);
    let big_meta = string_struct(&[("blob", &"y".repeat(20_000))]);
    let cases: Vec<(ConnectIntegrationRequest, &str)> = vec![
        (
            ConnectIntegrationRequest {
                platform: 0,
                ..fireflies("a")
            },
            "platform",
        ),
        (
            ConnectIntegrationRequest {
                platform: 99,
                ..fireflies("a")
            },
            "platform",
        ),
        (
            ConnectIntegrationRequest {
                platform: Platform::Zoom as i32,
                ..fireflies("a")
            },
            "platform",
        ),
        (
            ConnectIntegrationRequest {
                credentials: Default::default(),
                ..fireflies("a")
            },
            "credentials.api_key",
        ),
        (
            ConnectIntegrationRequest {
                credentials: [("api_key".into(), "   ".into())].into(),
                ..fireflies("a")
            },
            "credentials.api_key",
        ),
        (
            ConnectIntegrationRequest {
                credentials: [("api_key".into(), huge.clone())].into(),
                ..fireflies("a")
            },
            "credentials.api_key",
        ),
        (
            ConnectIntegrationRequest {
                credentials: [("api_key".into(), "k".into()), ("extra".into(), "v".into())].into(),
                ..fireflies("a")
            },
            "credentials.extra",
        ),
        (
            ConnectIntegrationRequest {
                display_name: huge.clone(),
                ..fireflies("a")
            },
            "display_name",
        ),
        (
            ConnectIntegrationRequest {
                display_name: "bad\u{0}name".into(),
                ..fireflies("a")
            },
            "display_name",
        ),
        (
            ConnectIntegrationRequest {
                metadata: Some(big_meta),
                ..fireflies("a")
            },
            "metadata",
        ),
        (
            ConnectIntegrationRequest {
                provider_account_id: huge.clone(),
                ..fireflies("a")
            },
            "provider_account_id",
        ),
        (
            ConnectIntegrationRequest {
                platform: Platform::Granola as i32,
                credentials: [("api_key".into(), "not-granola".into())].into(),
                ..Default::default()
            },
            "credentials.api_key",
        ),
        (
            ConnectIntegrationRequest {
                platform: Platform::Zerodb as i32,
                credentials: [
                    ("api_key".into(), "k".into()),
                    ("base_url".into(), "ftp://x".into()),
                ]
                .into(),
                ..Default::default()
            },
            "credentials.base_url",
        ),
    ];
    for (req, field) in cases {
        let err = c
            .connect_integration(authed(req, &token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(
            violated_fields(&err).contains(&field.to_owned()),
            "{field}: {:?}",
            violated_fields(&err)
        );
        assert_eq!(reason(&err), "INVALID_ARGUMENT");
    }
    let pool = app.pool().await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM integrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing is written for rejected input");
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn bad_names_page_tokens_and_masks_are_invalid_arguments() {
    let app = spawn_app().await;
    let mut c = app.integrations().await;
    let token = app.token(Role::Admin);
    for name in [
        "",
        "not-a-uuid",
        "workspaces/x/integrations/y",
        &"a".repeat(10_000),
    ] {
        let err = c
            .get_integration(authed(GetIntegrationRequest { name: name.into() }, &token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{name:.20}");
        assert_eq!(violated_fields(&err), vec!["name"]);
    }
    let missing = c
        .get_integration(authed(
            GetIntegrationRequest {
                name: uuid::Uuid::new_v4().to_string(),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(reason(&missing), "INTEGRATION_NOT_FOUND");

    for (req, field) in [
        (
            ListIntegrationsRequest {
                page_token: "garbage".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            ListIntegrationsRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        (
            ListIntegrationsRequest {
                page_size: 101,
                ..Default::default()
            },
            "page_size",
        ),
        (
            ListIntegrationsRequest {
                platform: 77,
                ..Default::default()
            },
            "platform",
        ),
        (
            ListIntegrationsRequest {
                status: 77,
                ..Default::default()
            },
            "status",
        ),
    ] {
        let err = c.list_integrations(authed(req, &token)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert_eq!(violated_fields(&err), vec![field]);
    }
    // A page token issued for one filter is refused for another.
    for i in 0..3 {
        c.connect_integration(authed(fireflies(&format!("p{i}")), &token))
            .await
            .unwrap();
    }
    let page = c
        .list_integrations(authed(
            ListIntegrationsRequest {
                page_size: 1,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let err = c
        .list_integrations(authed(
            ListIntegrationsRequest {
                page_size: 1,
                page_token: page.next_page_token,
                platform: Platform::Otter as i32,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), vec!["page_token"]);

    let i = page.integrations[0].clone();
    for (mask, integration, field) in [
        (
            vec!["status".to_owned()],
            proto::Integration {
                name: i.name.clone(),
                ..Default::default()
            },
            "update_mask",
        ),
        (
            vec![],
            proto::Integration {
                name: i.name.clone(),
                ..Default::default()
            },
            "update_mask",
        ),
        (
            vec!["display_name".to_owned()],
            proto::Integration {
                name: i.name.clone(),
                display_name: "  ".into(),
                ..Default::default()
            },
            "integration.display_name",
        ),
        (
            vec!["metadata".to_owned()],
            proto::Integration {
                name: i.name.clone(),
                metadata: Some(string_struct(&[("big", &"z".repeat(17_000))])),
                ..Default::default()
            },
            "integration.metadata",
        ),
        (
            vec![],
            proto::Integration {
                name: "nope".into(),
                display_name: "x".into(),
                ..Default::default()
            },
            "integration.name",
        ),
    ] {
        let err = c
            .update_integration(authed(
                UpdateIntegrationRequest {
                    integration: Some(integration),
                    update_mask: Some(FieldMask { paths: mask }),
                },
                &token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert_eq!(violated_fields(&err), vec![field]);
    }
    let missing_integration = c
        .update_integration(authed(
            UpdateIntegrationRequest {
                integration: None,
                update_mask: None,
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&missing_integration), vec!["integration"]);
    app.stop().await;
}

#[tokio::test]
async fn rest_bad_input_is_400_json_naming_the_field_without_echoing_values() {
    let app = spawn_app().await;
    let token = app.token(Role::Admin);
    let cases = [
        (
            json!({"platform": "myspace", "credentials": {"api_key": "SECRET-ECHO"}}),
            "platform",
        ),
        (
            json!({"platform": "fireflies", "credentials": "SECRET-ECHO"}),
            "credentials",
        ),
        (
            json!({"platform": "fireflies", "credentials": {"api_key": 42}}),
            "credentials.api_key",
        ),
        (
            json!({"platform": "fireflies", "credentials": {"api_key": "k"}, "workspace_id": "x"}),
            "workspace_id",
        ),
        (
            json!({"platform": "zerovoice", "credentials": {"account_sid": "SECRET-ECHO", "auth_token": "t"}}),
            "credentials.account_sid",
        ),
    ];
    for (body, field) in cases {
        let resp = http()
            .post(app.rest_url("/api/v1/integrations/connect"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{field}");
        let text = resp.text().await.unwrap();
        assert!(!text.contains("SECRET-ECHO"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let fields: Vec<&str> = v["error"]["field_violations"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{field}: {text}");
    }
    let not_json = http()
        .post(app.rest_url("/api/v1/integrations/connect"))
        .bearer_auth(&token)
        .body("{not json SECRET-ECHO")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert!(!not_json.text().await.unwrap().contains("SECRET-ECHO"));
    let too_big = http()
        .post(app.rest_url("/api/v1/integrations/connect"))
        .bearer_auth(&token)
        .body("x".repeat(200_000))
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 400);
    let bad_id = http()
        .get(app.rest_url("/api/v1/integrations/not-a-uuid"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_id.status(), 400);
    let bad_size = http()
        .get(app.rest_url("/api/v1/integrations?page_size=abc"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_size.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn rest_update_errors_name_the_body_fields_the_caller_sent() {
    let app = spawn_app().await;
    let token = app.token(Role::Admin);
    let i = app
        .integrations()
        .await
        .connect_integration(authed(fireflies("u"), &token))
        .await
        .unwrap()
        .into_inner()
        .integration
        .unwrap();
    let url = app.rest_url(&format!("/api/v1/integrations/{}", i.id));
    for (body, field) in [
        (json!({"display_name": "   "}), "display_name"),
        (json!({"metadata": {"big": "z".repeat(17_000)}}), "metadata"),
        (json!({}), "body"),
    ] {
        let response = http()
            .patch(&url)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{field}");
        let v: serde_json::Value = response.json().await.unwrap();
        let fields: Vec<&str> = v["error"]["field_violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, vec![field]);
    }
    app.stop().await;
}

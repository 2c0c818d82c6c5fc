//! MCP at `/mcp` over real HTTP: discovery on 401, the protected-resource metadata, Origin and
//! Host checks, the caller's tool list, isolation, roles, tool errors naming fields, JSON-RPC
//! errors for protocol misuse, and no secret in any result or log line of a full cycle.

use founderhouse_integrations::domain::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::connectors::fakes::fireflies::KEY;
use crate::connectors::{Rig, fireflies};
use crate::helpers::{TestApp, http, spawn_app, spawn_app_with};

/// A session-based revision's client, without the handshake: the server is stateless, so any
/// request stands alone.
const REVISION: &str = "2025-06-18";

async fn post(app: &TestApp, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = http()
        .post(app.rest_url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", REVISION)
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn rpc(app: &TestApp, token: &str, method: &str, params: Value) -> Value {
    let (status, body) = post(
        app,
        Some(token),
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn tool_names(app: &TestApp, token: &str) -> Vec<String> {
    let body = rpc(app, token, "tools/list", json!({})).await;
    body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn call(app: &TestApp, token: &str, tool: &str, arguments: Value) -> Value {
    let body = rpc(
        app,
        token,
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
    )
    .await;
    body["result"].clone()
}

fn error_reason(result: &Value) -> &str {
    assert_eq!(result["isError"], true, "{result}");
    result["structuredContent"]["error"]["reason"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn a_missing_expired_or_forged_token_is_401_with_the_resource_metadata_challenge() {
    let app = spawn_app().await;
    // Expired two minutes ago, beyond the 30 s leeway.
    let now = jsonwebtoken::get_current_timestamp();
    let claims = founderhouse_integrations::api::auth::Claims {
        sub: Uuid::new_v4().to_string(),
        workspace_id: app.workspace.to_string(),
        role: "member".to_owned(),
        exp: now - 120,
        iat: Some(now - 180),
    };
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(app.jwt_secret.expose().as_bytes()),
    )
    .unwrap();
    let metadata =
        "resource_metadata=\"http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp\"";

    for (token, sent) in [
        (None, false),
        (Some("not-a-jwt"), true),
        (Some(expired.as_str()), true),
    ] {
        let mut req = http().post(app.rest_url("/mcp")).body("{}");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(challenge.contains(metadata), "{challenge}");
        assert_eq!(
            challenge.contains("error=\"invalid_token\""),
            sent,
            "{challenge}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_protected_resource_metadata_names_the_resource_and_the_issuer_in_both_forms() {
    let app = spawn_app_with(|c| {
        c.public_url = "https://integrations.example.com".parse().unwrap();
        c.jwt_issuer = Some("https://id.example.com".to_owned());
    })
    .await;

    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let resp = http().get(app.rest_url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let doc: Value = resp.json().await.unwrap();
        assert_eq!(doc["resource"], "https://integrations.example.com/mcp");
        assert_eq!(
            doc["authorization_servers"],
            json!(["https://id.example.com"])
        );
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }
    app.stop().await;
}

#[tokio::test]
async fn a_disallowed_origin_or_host_is_refused_and_an_allowed_origin_is_served() {
    let app = spawn_app().await;
    let token = app.token(Role::Member);
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string();
    let send = |header: &'static str, value: &'static str| {
        http()
            .post(app.rest_url("/mcp"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", REVISION)
            .header(header, value)
            .body(list.clone())
            .send()
    };

    let evil_origin = send("origin", "https://evil.example").await.unwrap();
    let rebound_host = send("host", "evil.example").await.unwrap();
    let frontend = send("origin", "http://localhost:3000").await.unwrap();

    assert_eq!(evil_origin.status(), 403);
    assert_eq!(rebound_host.status(), 403);
    assert_eq!(frontend.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn tools_list_shows_the_connected_platforms_tools_and_a_viewer_only_read_ones() {
    let rig = fireflies::rig().await;
    let member = tool_names(&rig.app, &rig.app.token(Role::Member)).await;
    let viewer = tool_names(&rig.app, &rig.app.token(Role::Viewer)).await;
    let stranger = tool_names(&rig.app, &rig.app.token_for(Uuid::new_v4(), Role::Admin)).await;

    assert!(
        member.contains(&"fireflies_list_transcripts".to_owned()),
        "{member:?}"
    );
    assert!(
        member.contains(&"fireflies_graphql_query".to_owned()),
        "{member:?}"
    );
    assert!(member.contains(&"check_integration".to_owned()));
    assert!(
        member.iter().all(|n| n.starts_with("fireflies_")
            || n.ends_with("_integration")
            || n == "list_integrations"),
        "only the connected platform's tools: {member:?}"
    );
    let mut sorted = member.clone();
    sorted.sort();
    assert_eq!(member, sorted, "deterministic order");
    assert!(viewer.contains(&"fireflies_list_transcripts".to_owned()));
    assert!(
        !viewer.contains(&"fireflies_graphql_query".to_owned()),
        "{viewer:?}"
    );
    assert!(!viewer.contains(&"check_integration".to_owned()));
    assert_eq!(stranger, ["check_integration", "list_integrations"]);
    rig.app.stop().await;
}

#[tokio::test]
async fn a_read_tool_answers_structured_data_and_pages_with_page_token() {
    let rig = fireflies::rig().await;
    let token = rig.app.token(Role::Viewer);

    let first = call(
        &rig.app,
        &token,
        "fireflies_list_transcripts",
        json!({"limit": 2}),
    )
    .await;
    let page_token = first["structuredContent"]["next_page_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = call(
        &rig.app,
        &token,
        "fireflies_list_transcripts",
        json!({"limit": 2, "page_token": page_token}),
    )
    .await;

    assert_eq!(first["isError"], false, "{first}");
    assert_eq!(first["structuredContent"]["data"][1]["id"], "t2");
    let text: Value = serde_json::from_str(first["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        text, first["structuredContent"],
        "the text block is the same JSON"
    );
    assert!(!page_token.is_empty());
    assert_eq!(second["structuredContent"]["data"][0]["id"], "t3");
    assert_eq!(second["structuredContent"]["next_page_token"], "");
    let metrics = http()
        .get(rig.app.rest_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("fh_mcp_tool_calls_total{")
                && l.contains("tool=\"fireflies_list_transcripts\"")
                && l.contains("result=\"ok\"")),
        "calls are counted by tool and result"
    );
    assert!(metrics.contains("fh_mcp_tool_call_duration_seconds_bucket{"));
    rig.app.stop().await;
}

#[tokio::test]
async fn another_workspaces_integration_named_in_an_argument_is_not_found() {
    let rig: Rig = fireflies::rig().await;
    let other = rig.app.token_for(Uuid::new_v4(), Role::Admin);
    let bare_id = rig.integration.rsplit('/').next().unwrap().to_owned();
    let before = rig.fake.requests().len();

    let by_name = call(
        &rig.app,
        &other,
        "fireflies_list_transcripts",
        json!({"integration": rig.integration}),
    )
    .await;
    let by_id = call(
        &rig.app,
        &other,
        "fireflies_list_transcripts",
        json!({"integration": bare_id}),
    )
    .await;
    let check = call(
        &rig.app,
        &other,
        "check_integration",
        json!({"integration": bare_id}),
    )
    .await;

    assert_eq!(error_reason(&by_name), "INTEGRATION_NOT_FOUND");
    assert_eq!(error_reason(&by_id), "INTEGRATION_NOT_FOUND");
    assert_eq!(error_reason(&check), "INTEGRATION_NOT_FOUND");
    assert_eq!(
        rig.fake.requests().len(),
        before,
        "nothing reached the provider"
    );
    rig.app.stop().await;
}

#[tokio::test]
async fn a_viewers_write_is_refused_whatever_it_sends() {
    let rig = fireflies::rig().await;
    let before = rig.fake.requests().len();

    let refused = call(
        &rig.app,
        &rig.app.token(Role::Viewer),
        "fireflies_graphql_query",
        json!({"integration": rig.integration, "query": "query { user { email } }"}),
    )
    .await;

    assert_eq!(error_reason(&refused), "PERMISSION_DENIED");
    assert_eq!(rig.fake.requests().len(), before);
    rig.app.stop().await;
}

#[tokio::test]
async fn a_bad_argument_is_a_tool_error_naming_the_field_as_the_tool_takes_it() {
    let rig = fireflies::rig().await;

    let bad = call(
        &rig.app,
        &rig.app.token(Role::Member),
        "fireflies_list_transcripts",
        json!({"limit": "many"}),
    )
    .await;

    assert_eq!(error_reason(&bad), "INVALID_ARGUMENT");
    let fields: Vec<&str> = bad["structuredContent"]["error"]["field_violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["limit"]);
    rig.app.stop().await;
}

#[tokio::test]
async fn protocol_misuse_gets_json_rpc_errors() {
    let app = spawn_app().await;
    let token = app.token(Role::Member);

    let unknown_tool = rpc(
        &app,
        &token,
        "tools/call",
        json!({"name": "no_such_tool", "arguments": {}}),
    )
    .await;
    let unknown_method = rpc(&app, &token, "tools/nonsense", json!({})).await;
    let bad_cursor = rpc(&app, &token, "tools/list", json!({"cursor": "made-up"})).await;
    let (status, garbage) = post(&app, Some(&token), Value::String("{not json".into())).await;

    assert_eq!(unknown_tool["error"]["code"], -32602, "{unknown_tool}");
    assert_eq!(unknown_method["error"]["code"], -32601, "{unknown_method}");
    assert_eq!(bad_cursor["error"]["code"], -32602, "{bad_cursor}");
    assert_eq!(status, 400);
    assert_eq!(garbage["error"]["code"], -32700, "{garbage}");
    assert_eq!(garbage["jsonrpc"], "2.0");
    app.stop().await;
}

#[tokio::test]
async fn a_full_mcp_cycle_leaks_no_provider_token_or_caller_jwt_into_results_or_logs() {
    crate::leaks::capture_logs();
    let rig = fireflies::rig().await;
    let member = rig.app.token(Role::Member);
    let viewer = rig.app.token(Role::Viewer);
    let mut answers = Vec::new();

    answers.push(rpc(&rig.app, &member, "tools/list", json!({})).await);
    answers.push(call(&rig.app, &member, "list_integrations", json!({})).await);
    answers.push(
        call(
            &rig.app,
            &member,
            "fireflies_list_transcripts",
            json!({"limit": 1}),
        )
        .await,
    );
    answers.push(
        call(
            &rig.app,
            &member,
            "fireflies_get_transcript",
            json!({"id": "t1"}),
        )
        .await,
    );
    answers.push(
        call(
            &rig.app,
            &member,
            "fireflies_graphql_query",
            json!({"query": "query { user { email } }"}),
        )
        .await,
    );
    answers.push(
        call(
            &rig.app,
            &member,
            "fireflies_list_transcripts",
            json!({"limit": "x"}),
        )
        .await,
    );
    answers.push(
        call(
            &rig.app,
            &viewer,
            "fireflies_graphql_query",
            json!({"query": "query { user { email } }"}),
        )
        .await,
    );
    answers.push(call(&rig.app, &member, "check_integration", json!({})).await);
    answers.push(
        post(&rig.app, Some(&format!("{member}x")), json!({}))
            .await
            .1,
    );

    let logs = crate::leaks::logs();
    assert!(logs.contains("tool call"), "the capture works");
    let secrets = [
        ("the Fireflies API key", KEY.to_owned()),
        ("the member JWT", member.clone()),
        (
            "the member JWT's signature",
            member.rsplit('.').next().unwrap().to_owned(),
        ),
        ("the viewer JWT", viewer.clone()),
        ("the JWT secret", rig.app.jwt_secret.expose().clone()),
    ];
    let answers = serde_json::to_string(&answers).unwrap();
    assert!(answers.contains("t1"), "the calls answered: {answers}");
    for (what, value) in &secrets {
        assert!(!logs.contains(value.as_str()), "{what} is in the logs");
        assert!(!answers.contains(value.as_str()), "{what} is in an answer");
    }
    rig.app.stop().await;
}

#[tokio::test]
async fn every_operation_maps_to_a_tool_name_clients_accept_and_back_to_one_operation() {
    use founderhouse_integrations::api::mcp::tools::{tool_name, valid_tool_name};
    use founderhouse_integrations::proto::ListOperationsRequest;
    use founderhouse_integrations::proto::connector_service_client::ConnectorServiceClient;
    let app = spawn_app().await;
    let ops = ConnectorServiceClient::new(app.channel().await)
        .list_operations(crate::helpers::authed(
            ListOperationsRequest::default(),
            &app.token(Role::Viewer),
        ))
        .await
        .unwrap()
        .into_inner()
        .operations;

    let mut names: Vec<String> = ops.iter().map(|op| tool_name(&op.name)).collect();
    for (op, name) in ops.iter().zip(&names) {
        assert!(valid_tool_name(name), "{} -> {name}", op.name);
        let params = crate::connectors::to_json(op.params_schema.clone());
        for own in ["integration", "page_token"] {
            assert!(
                params["properties"].get(own).is_none(),
                "{} has {own}",
                op.name
            );
        }
    }
    names.extend([
        "list_integrations".to_owned(),
        "check_integration".to_owned(),
    ]);
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "two operations share a tool name");
    assert!(count > 50, "{count}");
    app.stop().await;
}

#[tokio::test]
async fn a_long_tool_list_pages_with_next_cursor_in_a_stable_order() {
    use crate::connectors::fakes::{discord, granola, monday, notion, otter, slack};
    use founderhouse_integrations::domain::Platform;
    // A pasted Slack token is checked with auth.test at connect: Slack is the fake.
    let slack_fake = slack::start().await;
    let app = crate::helpers::spawn_app_with(|c| {
        c.connectors
            .base_urls
            .set(Platform::Slack, &slack_fake.url(slack::BASE))
            .expect("a valid base URL");
    })
    .await;
    for (platform, creds) in [
        (Platform::Fireflies, vec![("api_key", KEY.to_owned())]),
        (
            Platform::Granola,
            vec![("api_key", granola::KEY.to_owned())],
        ),
        (Platform::Otter, vec![("api_key", otter::KEY.to_owned())]),
        (
            Platform::Monday,
            vec![("api_token", monday::TOKEN.to_owned())],
        ),
        (
            Platform::Notion,
            vec![("access_token", notion::TOKEN.to_owned())],
        ),
        (
            Platform::Discord,
            vec![("bot_token", discord::BOT.to_owned())],
        ),
        (
            Platform::Slack,
            vec![
                ("access_token", slack::BOT.to_owned()),
                ("team_id", slack::TEAM.to_owned()),
            ],
        ),
    ] {
        crate::connectors::connect(&app, platform, &creds).await;
    }
    let token = app.token(Role::Member);

    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let params = cursor.as_ref().map_or(json!({}), |c| json!({"cursor": c}));
        let body = rpc(&app, &token, "tools/list", params).await;
        let names: Vec<String> = body["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        pages.push(names);
        match body["result"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }

    assert!(
        pages.len() >= 2,
        "{} tools fit one page",
        pages.concat().len()
    );
    assert!(pages.iter().all(|p| p.len() <= 50));
    let all = pages.concat();
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(all, sorted, "sorted across pages, none twice");
    assert!(all.contains(&"slack_send_message".to_owned()), "{all:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_request_body_over_the_rest_limit_is_refused() {
    let app = spawn_app().await;
    let big = "x".repeat(65 * 1024);

    let (status, _) = post(
        &app,
        Some(&app.token(Role::Member)),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "list_integrations", "arguments": {"pad": big}}}),
    )
    .await;

    assert_eq!(status, 413);
    app.stop().await;
}

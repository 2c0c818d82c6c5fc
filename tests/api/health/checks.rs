//! Checks through the state machine, passive signals, history, the dashboard and access.

use std::time::Duration;

use founderhouse_integrations::domain::Role;
use founderhouse_integrations::proto::{self, HealthState as S};
use serde_json::{Value, json};
use tonic::Code;

use super::{check, check_named, client, rig, rig_with};
use crate::connectors::fake::Scripted;
use crate::helpers::{authed, http, reason};

fn blip() -> Scripted {
    Scripted::status(503, r#"{"message": "maintenance"}"#)
}

fn rejected() -> Scripted {
    Scripted::status(401, r#"{"errors": [{"message": "Invalid API key"}]}"#)
}

fn st(c: &proto::HealthCheck) -> S {
    S::try_from(c.state).expect("a known state")
}

/// (previous, new, reason) of every event of the integration, in seq order.
async fn events(rig: &crate::connectors::Rig) -> Vec<(String, String, String)> {
    let id = rig.integration.rsplit('/').next().unwrap();
    sqlx::query_as(
        "SELECT previous_state, state, reason FROM health_events
         WHERE integration_id = $1::uuid ORDER BY seq",
    )
    .bind(id)
    .fetch_all(&rig.app.pool().await)
    .await
    .unwrap()
}

fn ev(p: &str, n: &str, r: &str) -> (String, String, String) {
    (p.to_owned(), n.to_owned(), r.to_owned())
}

#[tokio::test]
async fn the_first_probe_decides_and_hysteresis_holds_both_ways() {
    let rig = rig().await;
    let mut seen = Vec::new();
    // (scripted answer, this probe healthy, state after)
    let script: [(Option<Scripted>, bool, S); 7] = [
        (None, true, S::Healthy),
        (Some(blip()), false, S::Healthy),
        (None, true, S::Healthy),
        (Some(blip()), false, S::Healthy),
        (Some(blip()), false, S::Degraded),
        (None, true, S::Degraded),
        (None, true, S::Healthy),
    ];
    for (answer, healthy, after) in script {
        if let Some(a) = answer {
            rig.fake.then(a);
        }
        let c = check(&rig, Role::Member).await.unwrap();
        assert_eq!((c.healthy, st(&c)), (healthy, after), "{c:?}");
        seen.push(c);
    }

    assert_eq!(seen[1].reason, "PROVIDER_UNAVAILABLE");
    assert_eq!(seen[1].source, "probe");
    assert!(seen.iter().all(|c| c.check_time.is_some()));
    assert_eq!(
        events(&rig).await,
        [
            ev("unknown", "unknown", "CONNECTED"),
            ev("unknown", "healthy", ""),
            ev("healthy", "degraded", "PROVIDER_UNAVAILABLE"),
            ev("degraded", "healthy", ""),
        ],
        "one event per transition, none for a blip"
    );
    let probes: i64 = sqlx::query_scalar("SELECT count(*) FROM health_checks")
        .fetch_one(&rig.app.pool().await)
        .await
        .unwrap();
    assert_eq!(probes, 7, "every probe is one history row");
    rig.stop().await;
}

#[tokio::test]
async fn a_first_failure_is_degraded_at_once() {
    let rig = rig().await;
    rig.fake.then(blip());

    let c = check(&rig, Role::Member).await.unwrap();

    assert_eq!((c.healthy, st(&c)), (false, S::Degraded));
    rig.stop().await;
}

#[tokio::test]
async fn a_rejected_key_needs_reauth_at_once_and_the_next_success_ends_it() {
    let rig = rig_with(|c| c.health.hysteresis.recovered_after = 5).await;
    check(&rig, Role::Member).await.unwrap();
    rig.fake.then(rejected());

    let dead = check(&rig, Role::Member).await.unwrap();
    let got = crate::oauth::get(&rig.app, &rig.integration, &rig.app.token(Role::Admin)).await;
    rig.fake.then(blip());
    let still = check(&rig, Role::Member).await.unwrap();
    let back = check(&rig, Role::Member).await.unwrap();

    assert_eq!((dead.healthy, st(&dead)), (false, S::NeedsReauth));
    assert_eq!(dead.reason, "NEEDS_REAUTH");
    assert_eq!(got.status, proto::IntegrationStatus::NeedsReauth as i32);
    assert_eq!(
        st(&still),
        S::NeedsReauth,
        "a struggling provider says nothing about a dead key"
    );
    assert_eq!(
        st(&back),
        S::Healthy,
        "one success is enough: recovered_after is about DEGRADED"
    );
    let got = crate::oauth::get(&rig.app, &rig.integration, &rig.app.token(Role::Admin)).await;
    assert_eq!(got.status, proto::IntegrationStatus::Connected as i32);
    rig.stop().await;
}

#[tokio::test]
async fn disconnecting_is_a_revoked_event_and_checks_stop() {
    let rig = rig().await;
    check(&rig, Role::Member).await.unwrap();

    let mut integrations = rig.app.integrations().await;
    integrations
        .disconnect_integration(authed(
            proto::DisconnectIntegrationRequest {
                name: rig.integration.clone(),
            },
            &rig.app.token(Role::Admin),
        ))
        .await
        .unwrap();
    let after = check(&rig, Role::Member).await.unwrap_err();

    assert_eq!(
        events(&rig).await.last().unwrap(),
        &ev("healthy", "revoked", "DISCONNECTED")
    );
    assert_eq!(after.code(), Code::FailedPrecondition);
    assert_eq!(reason(&after), "INTEGRATION_REVOKED");
    rig.stop().await;
}

#[tokio::test]
async fn invoke_meeting_a_rejected_key_marks_the_integration_within_the_call() {
    let rig = rig().await;
    check(&rig, Role::Member).await.unwrap();
    rig.fake.then(rejected());

    let err = rig
        .invoke("fireflies.list_transcripts", json!({}))
        .await
        .unwrap_err();
    let marked = crate::oauth::get(&rig.app, &rig.integration, &rig.app.token(Role::Admin)).await;
    rig.invoke("fireflies.list_transcripts", json!({}))
        .await
        .unwrap();
    let healed = crate::oauth::get(&rig.app, &rig.integration, &rig.app.token(Role::Admin)).await;

    assert_eq!(reason(&err), "NEEDS_REAUTH");
    assert_eq!(marked.health_state, S::NeedsReauth as i32);
    assert_eq!(
        healed.health_state,
        S::Healthy as i32,
        "traffic is evidence too"
    );
    let sources: Vec<(String, bool)> =
        sqlx::query_as("SELECT source, healthy FROM health_checks ORDER BY id")
            .fetch_all(&rig.app.pool().await)
            .await
            .unwrap();
    assert_eq!(
        sources,
        [("probe".to_owned(), true), ("traffic".to_owned(), false)],
        "traffic failures are history, traffic successes are not"
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_provider_refusing_the_callers_parameters_is_not_a_signal() {
    let rig = rig().await;
    check(&rig, Role::Member).await.unwrap();
    for _ in 0..3 {
        rig.fake.then(Scripted::status(
            400,
            r#"{"errors": [{"message": "Invalid argument: id"}]}"#,
        ));
        rig.invoke("fireflies.get_transcript", json!({"id": "nope"}))
            .await
            .unwrap_err();
    }

    let got = crate::oauth::get(&rig.app, &rig.integration, &rig.app.token(Role::Admin)).await;
    assert_eq!(got.health_state, S::Healthy as i32);
    rig.stop().await;
}

#[tokio::test]
async fn successful_traffic_postpones_the_next_probe() {
    let rig = rig_with(|c| c.health.check_interval = Duration::from_secs(3600)).await;
    check(&rig, Role::Member).await.unwrap();
    let pool = rig.app.pool().await;
    // As if the probe were due now.
    sqlx::query("UPDATE integrations SET next_check_at = now()")
        .execute(&pool)
        .await
        .unwrap();

    rig.invoke("fireflies.list_transcripts", json!({}))
        .await
        .unwrap();

    let ahead: f64 = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM next_check_at - now())::float8 FROM integrations",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(ahead > 3500.0, "postponed by an interval, not {ahead}");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM health_checks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "a successful call is not a history row");
    rig.stop().await;
}

#[tokio::test]
async fn history_pages_newest_first_with_each_check_once() {
    let rig = rig().await;
    let mut made = Vec::new();
    for i in 0..5 {
        if i % 2 == 1 {
            rig.fake.then(blip());
        }
        made.push(check(&rig, Role::Member).await.unwrap());
    }
    let mut health = client(rig.app.channel().await).await;
    let viewer = rig.app.token(Role::Viewer);
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = health
            .list_health_checks(authed(
                proto::ListHealthChecksRequest {
                    integration: rig.integration.clone(),
                    page_size: 2,
                    page_token: token.clone(),
                },
                &viewer,
            ))
            .await
            .unwrap()
            .into_inner();
        pages.push(page.checks);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }

    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    let listed: Vec<_> = pages.concat();
    made.reverse();
    assert_eq!(listed, made, "newest first, each once, as answered");
    let rest: Value = http()
        .get(rig.app.rest_url(&format!(
            "/api/v1/integrations/{}/health/history?page_size=3",
            rig.integration.rsplit('/').next().unwrap()
        )))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["checks"].as_array().unwrap().len(), 3);
    assert_eq!(rest["checks"][0]["healthy"], made[0].healthy);
    assert!(!rest["next_page_token"].as_str().unwrap().is_empty());
    let bad = health
        .list_health_checks(authed(
            proto::ListHealthChecksRequest {
                integration: rig.integration.clone(),
                page_size: 2,
                page_token: "forged".into(),
            },
            &viewer,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    rig.stop().await;
}

#[tokio::test]
async fn the_dashboard_answers_the_seed_shape_from_stored_state() {
    let rig = rig().await;
    let second = super::connect_other(&rig.app, "second").await;
    check(&rig, Role::Member).await.unwrap();
    // The fake rejects any key but its own.
    check_named(&rig, &second, Role::Member).await.unwrap();
    let calls = rig.fake.count();

    let viewer = rig.app.token(Role::Viewer);
    let d: Value = http()
        .get(rig.app.rest_url("/api/v1/integrations/health-dashboard"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(rig.fake.count(), calls, "no provider is called");
    assert_eq!(d["workspace_id"], rig.app.workspace.to_string());
    assert_eq!(
        d["summary"],
        json!({"total_integrations": 2, "healthy": 1, "unhealthy": 1, "success_rate": 50.0})
    );
    assert_eq!(
        d["status_breakdown"],
        json!({"unknown": 0, "healthy": 1, "degraded": 0, "needs_reauth": 1, "revoked": 0})
    );
    assert_eq!(
        d["platform_health"],
        json!({"fireflies": {"total": 2, "healthy": 1, "unhealthy": 1}})
    );
    let errors = d["recent_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0]["integration_id"],
        second.rsplit('/').next().unwrap()
    );
    assert_eq!(errors[0]["platform"], "fireflies");
    assert!(errors[0]["error"].as_str().unwrap().contains("Fireflies"));
    assert!(errors[0]["checked_at"].is_string());
    assert!(d["last_updated"].is_string());

    let g = client(rig.app.channel().await)
        .await
        .get_health_dashboard(authed(proto::GetHealthDashboardRequest {}, &viewer))
        .await
        .unwrap()
        .into_inner();
    let s = g.summary.unwrap();
    assert_eq!((s.total_integrations, s.healthy, s.unhealthy), (2, 1, 1));
    assert_eq!(g.status_breakdown["needs_reauth"], 1);
    assert_eq!(g.platform_health["fireflies"].total, 2);
    assert_eq!(g.recent_errors.len(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn an_empty_workspace_has_a_zero_dashboard() {
    let app = crate::helpers::spawn_app().await;
    let d: Value = http()
        .get(app.rest_url("/api/v1/integrations/health-dashboard"))
        .bearer_auth(app.token(Role::Viewer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["summary"],
        json!({"total_integrations": 0, "healthy": 0, "unhealthy": 0, "success_rate": 0.0})
    );
    assert_eq!(d["recent_errors"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn rest_reads_stored_health_and_checks_on_request() {
    let rig = rig().await;
    let id = rig.integration.rsplit('/').next().unwrap().to_owned();
    let member = rig.app.token(Role::Member);

    let before: Value = http()
        .get(
            rig.app
                .rest_url(&format!("/api/v1/integrations/{id}/health")),
        )
        .bearer_auth(&member)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    rig.fake.then(rejected());
    let checked = http()
        .post(
            rig.app
                .rest_url(&format!("/api/v1/integrations/{id}/health/check")),
        )
        .bearer_auth(&member)
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status(), 200);
    let checked: Value = checked.json().await.unwrap();
    let after: Value = http()
        .get(
            rig.app
                .rest_url(&format!("/api/v1/integrations/{id}/health")),
        )
        .bearer_auth(&member)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status: Value = http()
        .get(rig.app.rest_url("/api/v1/integrations/status"))
        .bearer_auth(&member)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(before["integration_id"], id);
    assert_eq!(before["platform"], "fireflies");
    assert_eq!(before["status"], "connected");
    assert_eq!(before["is_healthy"], false);
    assert_eq!(before["last_checked"], Value::Null);
    assert_eq!(before["health_state"], "unknown");
    assert_eq!(checked["healthy"], false);
    assert_eq!(checked["state"], "needs_reauth");
    assert_eq!(checked["reason"], "NEEDS_REAUTH");
    assert_eq!(after["status"], "needs_reauth");
    assert_eq!(after["health_state"], "needs_reauth");
    assert!(after["last_checked"].is_string());
    assert!(
        after["error_message"]
            .as_str()
            .unwrap()
            .contains("Fireflies")
    );
    assert_eq!(status["workspace_id"], rig.app.workspace.to_string());
    assert_eq!(status["total_integrations"], 1);
    assert_eq!(status["needs_reauth"], 1);
    assert_eq!(status["connected"], 0);
    assert_eq!(status["integrations"][0]["integration_id"], id);
    rig.stop().await;
}

#[tokio::test]
async fn viewers_read_health_but_may_not_run_checks() {
    let rig = rig().await;
    let viewer = rig.app.token(Role::Viewer);
    let id = rig.integration.rsplit('/').next().unwrap().to_owned();

    let grpc = check(&rig, Role::Viewer).await.unwrap_err();
    let workspace = client(rig.app.channel().await)
        .await
        .check_workspace(authed(proto::CheckWorkspaceRequest::default(), &viewer))
        .await
        .unwrap_err();
    let rest = http()
        .post(
            rig.app
                .rest_url(&format!("/api/v1/integrations/{id}/health/check")),
        )
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    let read = http()
        .get(
            rig.app
                .rest_url(&format!("/api/v1/integrations/{id}/health")),
        )
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();

    assert_eq!(grpc.code(), Code::PermissionDenied);
    assert_eq!(workspace.code(), Code::PermissionDenied);
    assert_eq!(rest.status(), 403);
    assert_eq!(read.status(), 200);
    assert_eq!(rig.fake.count(), 0, "nothing reached the provider");
    rig.stop().await;
}

#[tokio::test]
async fn another_workspaces_integration_is_not_found_everywhere() {
    let rig = rig().await;
    let outsider = rig.app.token_for(uuid::Uuid::new_v4(), Role::Admin);
    let id = rig.integration.rsplit('/').next().unwrap().to_owned();
    let mut health = client(rig.app.channel().await).await;

    let checked = health
        .check_integration(authed(
            proto::CheckIntegrationRequest { name: id.clone() },
            &outsider,
        ))
        .await
        .unwrap_err();
    let history = health
        .list_health_checks(authed(
            proto::ListHealthChecksRequest {
                integration: id.clone(),
                ..Default::default()
            },
            &outsider,
        ))
        .await
        .unwrap_err();
    let watched = health
        .watch_health_events(authed(
            proto::WatchHealthEventsRequest {
                integrations: vec![id.clone()],
                ..Default::default()
            },
            &outsider,
        ))
        .await
        .unwrap_err();
    let mut rest = Vec::new();
    for (method, path) in [
        ("GET", format!("/api/v1/integrations/{id}/health")),
        ("POST", format!("/api/v1/integrations/{id}/health/check")),
        ("GET", format!("/api/v1/integrations/{id}/health/history")),
    ] {
        let req = match method {
            "GET" => http().get(rig.app.rest_url(&path)),
            _ => http().post(rig.app.rest_url(&path)),
        };
        rest.push(req.bearer_auth(&outsider).send().await.unwrap().status());
    }
    let dashboard: Value = http()
        .get(rig.app.rest_url("/api/v1/integrations/health-dashboard"))
        .bearer_auth(&outsider)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    for s in [&checked, &history, &watched] {
        assert_eq!(s.code(), Code::NotFound, "{s:?}");
    }
    assert_eq!(rest, [404, 404, 404]);
    assert_eq!(dashboard["summary"]["total_integrations"], 0);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn check_workspace_probes_every_live_integration_of_the_platforms() {
    let rig = rig().await;
    let second = super::connect_other(&rig.app, "second").await;

    let all = client(rig.app.channel().await)
        .await
        .check_workspace(authed(
            proto::CheckWorkspaceRequest {
                platforms: vec![proto::Platform::Fireflies as i32],
            },
            &rig.app.token(Role::Member),
        ))
        .await
        .unwrap()
        .into_inner()
        .checks;
    let none = client(rig.app.channel().await)
        .await
        .check_workspace(authed(
            proto::CheckWorkspaceRequest {
                platforms: vec![proto::Platform::Slack as i32],
            },
            &rig.app.token(Role::Member),
        ))
        .await
        .unwrap()
        .into_inner()
        .checks;

    let mut names: Vec<_> = all.iter().map(|c| c.integration.clone()).collect();
    names.sort();
    let mut expected = vec![rig.integration.clone(), second];
    expected.sort();
    assert_eq!(names, expected);
    assert_eq!(all.iter().filter(|c| c.healthy).count(), 1);
    assert!(none.is_empty());
    rig.stop().await;
}

//! The authenticated proxy: requests under the platform's base URL with the integration's
//! credentials, and nothing else.

use founderhouse_integrations::domain::{Platform, Role};
use founderhouse_integrations::proto::ProxyRequest;
use serde_json::json;
use tonic::Code;

use super::fake::Scripted;
use super::fakes::otter::{self, BASE, KEY};
use super::fakes::zerovoice::{SID, basic};
use super::{Rig, Setup, to_json};
use crate::helpers::{authed, reason, violated_fields};

async fn rig() -> Rig {
    Rig::start(
        otter::start().await,
        Setup {
            platform: Platform::Otter,
            base_path: Some(BASE),
            credentials: vec![("api_key", KEY.to_owned())],
        },
    )
    .await
}

#[tokio::test]
async fn a_proxied_get_reaches_the_platform_with_the_integrations_credentials() {
    let rig = rig().await;

    let r = rig
        .proxy_as(
            Role::Member,
            "GET",
            "/speeches",
            &[("page_size", "1")],
            None,
        )
        .await
        .unwrap();

    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let body = to_json(r.body);
    assert_eq!(body["speeches"][0]["otid"], "sp1");
    let seen = rig.fake.last();
    assert_eq!(seen.path, format!("{BASE}/speeches"));
    assert_eq!(seen.query_value("page_size").as_deref(), Some("1"));
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    rig.stop().await;
}

#[tokio::test]
async fn provider_errors_other_than_auth_and_outages_come_back_as_answers() {
    let rig = rig().await;

    let r = rig
        .proxy_as(Role::Member, "GET", "speeches/nope", &[], None)
        .await
        .unwrap();

    assert_eq!(r.status, 404);
    assert_eq!(to_json(r.body)["message"], "speech not found");
    rig.stop().await;
}

#[tokio::test]
async fn paths_that_could_leave_the_base_url_are_refused_before_any_request() {
    let rig = rig().await;
    let bad = [
        "",
        "/",
        "../user",
        "/speeches/../../admin",
        "/./user",
        "//evil.example/x",
        "/speeches//x",
        "https://evil.example/user",
        "http:evil.example",
        "evil.example:443/user",
        "/%2e%2e/user",
        "/%2E%2e/user",
        "/speeches%2f..%2fadmin",
        "/%252e%252e/user",
        "/speeches%5c..%5cadmin",
        "\\..\\user",
        "/speeches?include=all",
        "/speeches#top",
        "/spe eches",
        "/speeches\r\nHost: evil.example",
    ];

    for path in bad {
        let err = rig
            .proxy_as(Role::Admin, "GET", path, &[], None)
            .await
            .expect_err(path);
        assert_eq!(err.code(), Code::InvalidArgument, "{path:?}");
        assert_eq!(violated_fields(&err), vec!["path"], "{path:?}");
    }
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn caller_headers_never_reach_the_provider_and_query_credentials_are_refused() {
    let rig = rig().await;
    let mut req = authed(
        ProxyRequest {
            integration: rig.integration.clone(),
            method: "GET".into(),
            path: "/user".into(),
            ..Default::default()
        },
        &rig.app.token(Role::Admin),
    );
    for (k, v) in [
        ("x-api-key", "attacker-key"),
        ("cookie", "session=attacker"),
        ("x-authorization", "Bearer attacker"),
        ("proxy-authorization", "Basic YXR0YWNrZXI6eA=="),
    ] {
        req.metadata_mut().insert(k, v.parse().unwrap());
    }

    rig.client().proxy(req).await.unwrap();
    let refused = rig
        .proxy_as(
            Role::Admin,
            "GET",
            "/user",
            &[("access_token", "attacker"), ("API_KEY", "x")],
            None,
        )
        .await
        .unwrap_err();

    let seen = rig.fake.last();
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    for h in [
        "x-api-key",
        "cookie",
        "x-authorization",
        "proxy-authorization",
    ] {
        assert_eq!(seen.header(h), None, "{h} was forwarded");
    }
    assert_eq!(
        violated_fields(&refused),
        vec!["query.API_KEY", "query.access_token"]
    );
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn a_viewer_may_not_proxy_anything_not_even_a_get() {
    let rig = rig().await;

    let get = rig
        .proxy_as(Role::Viewer, "GET", "/user", &[], None)
        .await
        .unwrap_err();
    let patch = rig
        .proxy_as(
            Role::Viewer,
            "PATCH",
            "/speeches/sp1",
            &[],
            Some(json!({"title": "x"})),
        )
        .await
        .unwrap_err();
    let delete = rig
        .proxy_as(Role::Viewer, "delete", "/speeches/sp1", &[], None)
        .await
        .unwrap_err();

    assert_eq!(get.code(), Code::PermissionDenied);
    assert_eq!(patch.code(), Code::PermissionDenied);
    assert_eq!(delete.code(), Code::PermissionDenied);
    assert_eq!(rig.fake.count(), 0, "nothing reached the provider");
    rig.stop().await;
}

#[tokio::test]
async fn a_member_may_patch_with_a_json_body() {
    let rig = rig().await;

    let r = rig
        .proxy_as(
            Role::Member,
            "PATCH",
            "/speeches/sp1",
            &[],
            Some(json!({"title": "Renamed"})),
        )
        .await
        .unwrap();

    assert_eq!(r.status, 200);
    let seen = rig.fake.last();
    assert_eq!(seen.method, "PATCH");
    assert_eq!(seen.json(), json!({"title": "Renamed"}));
    rig.stop().await;
}

#[tokio::test]
async fn methods_and_bodies_are_checked() {
    let rig = rig().await;

    let method = rig
        .proxy_as(Role::Admin, "TRACE", "/user", &[], None)
        .await
        .unwrap_err();
    let body_on_get = rig
        .proxy_as(Role::Admin, "GET", "/user", &[], Some(json!({"a": 1})))
        .await
        .unwrap_err();

    assert_eq!(violated_fields(&method), vec!["method"]);
    assert_eq!(violated_fields(&body_on_get), vec!["body"]);
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

#[tokio::test]
async fn only_harmless_provider_headers_are_passed_back() {
    let rig = rig().await;
    rig.fake.then(
        Scripted::status(200, r#"{"ok": true}"#)
            .header("set-cookie", "session=provider-secret")
            .header("x-ratelimit-remaining", "99")
            .header("x-internal-route", "db-7"),
    );

    let r = rig
        .proxy_as(Role::Admin, "GET", "/user", &[], None)
        .await
        .unwrap();

    assert_eq!(
        r.headers.get("x-ratelimit-remaining").map(String::as_str),
        Some("99")
    );
    assert!(!r.headers.contains_key("set-cookie"));
    assert!(!r.headers.contains_key("x-internal-route"));
    rig.stop().await;
}

#[tokio::test]
async fn a_401_through_the_proxy_is_needs_reauth_after_one_call() {
    let rig = rig().await;
    rig.fake
        .then(Scripted::status(401, r#"{"message": "Unauthorized"}"#));

    let err = rig
        .proxy_as(Role::Admin, "GET", "/user", &[], None)
        .await
        .unwrap_err();

    assert_eq!(reason(&err), "NEEDS_REAUTH");
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn a_proxied_post_to_twilio_is_form_encoded() {
    let rig = super::zerovoice::rig().await;

    let r = rig
        .proxy_as(
            Role::Member,
            "POST",
            &format!("/Accounts/{SID}/Messages.json"),
            &[],
            Some(json!({"To": "+14155550100", "From": "+14155550199", "Body": "via proxy"})),
        )
        .await
        .unwrap();

    assert_eq!(r.status, 201);
    assert_eq!(to_json(r.body)["body"], "via proxy");
    let seen = rig.fake.last();
    assert_eq!(seen.header("authorization"), Some(basic().as_str()));
    let mut form = seen.form();
    form.sort();
    assert_eq!(
        form,
        vec![
            ("Body".to_owned(), "via proxy".to_owned()),
            ("From".to_owned(), "+14155550199".to_owned()),
            ("To".to_owned(), "+14155550100".to_owned()),
        ]
    );
    rig.stop().await;
}

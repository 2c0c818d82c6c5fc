//! The HTTP core seen from the outside: retries only where safe, waits the provider asks for,
//! deadlines, the circuit breaker, the 401 policy, bounded answers, sanitized messages.
//! Fireflies' fake plays the provider (a GraphQL query is an idempotent POST, a mutation not).

use std::time::{Duration, Instant};

use founderhouse_integrations::domain::Role;
use founderhouse_integrations::proto::InvokeRequest;
use serde_json::json;
use tonic::Code;
use tonic_types::StatusExt;

use super::fake::Scripted;
use super::fakes::fireflies::KEY;
use super::fireflies::{rig, rig_with};
use super::to_struct;
use crate::helpers::{authed, reason};

/// ErrorInfo metadata of a status.
pub fn metadata(status: &tonic::Status, key: &str) -> Option<String> {
    status
        .get_details_error_info()
        .and_then(|i| i.metadata.get(key).cloned())
}

const LIST: &str = "fireflies.list_transcripts";
const MUTATION: &str = "mutation Del($id: String!) { deleteTranscript(id: $id) { id } }";

#[tokio::test]
async fn a_read_is_retried_after_a_503_and_then_succeeds() {
    let rig = rig().await;
    rig.fake
        .then(Scripted::status(503, r#"{"message": "overloaded"}"#));

    let data = rig.invoke(LIST, json!({})).await.unwrap();

    assert_eq!(data["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(rig.fake.count(), 2);
    rig.stop().await;
}

#[tokio::test]
async fn retries_stop_after_the_configured_attempts() {
    let rig = rig().await;
    rig.fake.then_n(5, Scripted::status(502, "bad gateway"));

    let err = rig.invoke(LIST, json!({})).await.unwrap_err();

    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(reason(&err), "PROVIDER_UNAVAILABLE");
    assert_eq!(metadata(&err, "provider_status").as_deref(), Some("502"));
    assert_eq!(rig.fake.count(), 3);
    rig.stop().await;
}

#[tokio::test]
async fn a_mutation_is_not_retried_after_a_503() {
    let rig = rig().await;
    rig.fake.then(Scripted::status(503, "{}"));

    let err = rig
        .invoke(
            "fireflies.graphql_query",
            json!({"query": MUTATION, "variables": {"id": "t1"}}),
        )
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(reason(&err), "PROVIDER_UNAVAILABLE");
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_before_the_retry() {
    let rig = rig().await;
    rig.fake
        .then(Scripted::status(429, r#"{"message": "slow down"}"#).header("retry-after", "1"));

    let started = Instant::now();
    let data = rig.invoke(LIST, json!({})).await.unwrap();
    let waited = started.elapsed();

    assert_eq!(data["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(rig.fake.count(), 2);
    assert!(waited >= Duration::from_secs(1), "waited only {waited:?}");
    // Bounded: the core waits what it was told, not a backoff on top.
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
    rig.stop().await;
}

#[tokio::test]
async fn a_wait_longer_than_the_deadline_is_answered_at_once_with_retry_info() {
    let rig = rig().await;
    rig.fake
        .then(Scripted::status(429, r#"{"message": "quota"}"#).header("retry-after", "120"));

    let started = Instant::now();
    let err = rig.invoke(LIST, json!({})).await.unwrap_err();

    // Sleeping would take 120 s, and the call's deadline is 5 s: it answered without waiting.
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(reason(&err), "PROVIDER_RATE_LIMITED");
    assert_eq!(
        err.get_details_retry_info().and_then(|r| r.retry_delay),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        err.metadata()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("120")
    );
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn the_circuit_opens_after_consecutive_failures_and_answers_without_calling() {
    let rig = rig_with(|c| {
        c.connectors.policy.max_attempts = 1;
        c.connectors.policy.breaker_threshold = 2;
    })
    .await;
    rig.fake.then_n(2, Scripted::status(503, "{}"));

    let first = rig.invoke(LIST, json!({})).await.unwrap_err();
    let second = rig.invoke(LIST, json!({})).await.unwrap_err();
    let third = rig.invoke(LIST, json!({})).await.unwrap_err();

    assert_eq!(reason(&first), "PROVIDER_UNAVAILABLE");
    assert_eq!(reason(&second), "PROVIDER_UNAVAILABLE");
    assert_eq!(third.code(), Code::Unavailable);
    assert_eq!(reason(&third), "CIRCUIT_OPEN");
    assert!(third.get_details_retry_info().is_some());
    assert_eq!(rig.fake.count(), 2, "the open circuit did not call");
    rig.stop().await;
}

#[tokio::test]
async fn the_circuit_closes_when_the_probe_after_the_cooldown_succeeds() {
    // Long enough that the second call surely falls inside it on a busy machine.
    let cooldown = Duration::from_secs(1);
    let rig = rig_with(|c| {
        c.connectors.policy.max_attempts = 1;
        c.connectors.policy.breaker_threshold = 1;
        c.connectors.policy.breaker_cooldown = cooldown;
    })
    .await;
    rig.fake.then(Scripted::status(500, "{}"));
    rig.invoke(LIST, json!({})).await.unwrap_err();
    let open = rig.invoke(LIST, json!({})).await.unwrap_err();

    // Until the cooldown has passed the open circuit refuses without calling; then one probe
    // goes through.
    let deadline = std::time::Instant::now() + cooldown * 10;
    let probe = loop {
        match rig.invoke(LIST, json!({})).await {
            Err(e) if reason(&e) == "CIRCUIT_OPEN" => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the circuit never half-opened"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other,
        }
    };
    let after = rig.invoke(LIST, json!({})).await;

    assert_eq!(reason(&open), "CIRCUIT_OPEN");
    assert!(probe.is_ok(), "{probe:?}");
    assert!(after.is_ok(), "{after:?}");
    assert_eq!(rig.fake.count(), 3);
    rig.stop().await;
}

#[tokio::test]
async fn a_rejected_api_key_is_needs_reauth_after_exactly_one_provider_call() {
    let rig = rig().await;
    rig.fake.then(Scripted::status(
        401,
        r#"{"errors": [{"message": "Invalid API key", "extensions": {"code": "invalid_api_key"}}]}"#,
    ));

    let err = rig.invoke(LIST, json!({})).await.unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "NEEDS_REAUTH");
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn a_graphql_authentication_error_in_a_200_takes_the_same_path() {
    let rig = rig().await;
    rig.fake.then(Scripted::status(
        200,
        r#"{"data": null, "errors": [{"message": "Unauthenticated", "extensions": {"code": "UNAUTHENTICATED"}}]}"#,
    ));

    let err = rig.invoke(LIST, json!({})).await.unwrap_err();

    assert_eq!(reason(&err), "NEEDS_REAUTH");
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn a_slow_provider_is_cut_at_the_callers_deadline() {
    let rig = rig().await;
    rig.fake.then(
        Scripted::status(200, r#"{"data": {"transcripts": []}}"#).delayed(Duration::from_secs(5)),
    );
    let mut req = authed(
        InvokeRequest {
            integration: rig.integration.clone(),
            operation: LIST.to_owned(),
            params: Some(to_struct(json!({}))),
            page_token: String::new(),
        },
        &rig.app.token(Role::Member),
    );
    req.set_timeout(Duration::from_secs(1));

    let started = Instant::now();
    let err = rig.client().invoke(req).await.unwrap_err();

    // The provider would answer after 5 s; the caller gave 1 s.
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert_eq!(reason(&err), "PROVIDER_TIMEOUT");
    rig.stop().await;
}

#[tokio::test]
async fn an_answer_larger_than_the_limit_is_refused() {
    let rig = rig_with(|c| c.connectors.policy.max_response_bytes = 256).await;

    let err = rig.invoke(LIST, json!({})).await.unwrap_err();

    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "PROVIDER_RESPONSE_TOO_LARGE");
    rig.stop().await;
}

#[tokio::test]
async fn provider_messages_are_cut_and_never_echo_the_credential() {
    let rig = rig().await;
    let long = "x".repeat(1000);
    rig.fake.then(Scripted::status(
        400,
        json!({"code": "bad_request", "message": format!("the key {KEY} is malformed {long}")})
            .to_string(),
    ));

    let err = rig.invoke(LIST, json!({})).await.unwrap_err();

    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "PROVIDER_REJECTED");
    assert_eq!(
        metadata(&err, "provider_code").as_deref(),
        Some("bad_request")
    );
    assert!(!err.message().contains(KEY));
    assert!(err.message().contains("the key [redacted] is malformed"));
    assert!(err.message().chars().count() < 300);
    rig.stop().await;
}

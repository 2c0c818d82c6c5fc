//! IntegrationService.TestIntegration: the platform's identity call, classified.

use founderhouse_integrations::domain::Role;
use founderhouse_integrations::proto::HealthState;
use tonic::Code;

use super::fake::Scripted;
use super::fireflies::rig;
use crate::helpers::reason;

#[tokio::test]
async fn a_working_key_tests_healthy_with_its_latency() {
    let rig = rig().await;

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(t.healthy);
    assert_eq!(t.state, HealthState::Healthy as i32);
    assert_eq!(t.reason, "");
    assert_eq!(t.message, "Fireflies accepted the credentials");
    assert!(t.latency_ms >= 0 && t.latency_ms < 5000, "{}", t.latency_ms);
    let seen = rig.fake.last();
    assert!(seen.json()["query"].as_str().unwrap().contains("user {"));
    rig.stop().await;
}

#[tokio::test]
async fn a_401_tests_needs_reauth() {
    let rig = rig().await;
    rig.fake.then(Scripted::status(
        401,
        r#"{"errors": [{"message": "Invalid API key"}]}"#,
    ));

    let t = rig.test_as(Role::Member).await.unwrap();

    assert!(!t.healthy);
    assert_eq!(t.state, HealthState::NeedsReauth as i32);
    assert_eq!(t.reason, "NEEDS_REAUTH");
    assert_eq!(rig.fake.count(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn a_503_tests_degraded_after_one_attempt_with_its_latency() {
    let rig = rig().await;
    rig.fake.then(
        Scripted::status(503, r#"{"message": "maintenance"}"#)
            .delayed(std::time::Duration::from_millis(50)),
    );

    let t = rig.test_as(Role::Admin).await.unwrap();

    assert!(!t.healthy);
    assert_eq!(t.state, HealthState::Degraded as i32);
    assert_eq!(t.reason, "PROVIDER_UNAVAILABLE");
    assert!(t.latency_ms >= 50, "{}", t.latency_ms);
    assert_eq!(rig.fake.count(), 1, "a probe is not retried");
    rig.stop().await;
}

#[tokio::test]
async fn a_viewer_may_not_test_an_integration() {
    let rig = rig().await;

    let err = rig.test_as(Role::Viewer).await.unwrap_err();

    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "PERMISSION_DENIED");
    assert_eq!(rig.fake.count(), 0);
    rig.stop().await;
}

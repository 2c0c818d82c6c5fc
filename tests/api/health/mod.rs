//! HealthService and the health REST endpoints: the state machine through real probes of a
//! fake provider, passive signals, history, the dashboard, the event stream across replicas,
//! and the sweep.

mod checks;
mod stream;
mod sweep;

use std::time::Duration;

use founderhouse_integrations::config::Config;
use founderhouse_integrations::domain::Role;
use founderhouse_integrations::proto::health_service_client::HealthServiceClient;
use founderhouse_integrations::proto::{self, HealthEvent, WatchHealthEventsRequest};
use tonic::Streaming;
use tonic::transport::Channel;

use crate::connectors::Rig;
use crate::helpers::authed;

/// A Fireflies integration connected to the fake, with health settings for tests.
pub async fn rig_with(tweak: impl FnOnce(&mut Config)) -> Rig {
    crate::connectors::fireflies::rig_with(tweak).await
}

pub async fn rig() -> Rig {
    rig_with(|_| {}).await
}

/// Another Fireflies integration, with a key the fake rejects. Its resource name.
pub async fn connect_other(app: &crate::helpers::TestApp, account: &str) -> String {
    app.integrations()
        .await
        .connect_integration(authed(
            crate::helpers::fireflies(account),
            &app.token(Role::Admin),
        ))
        .await
        .unwrap()
        .into_inner()
        .integration
        .expect("an integration")
        .name
}

pub async fn client(channel: Channel) -> HealthServiceClient<Channel> {
    HealthServiceClient::new(channel)
}

/// Runs CheckIntegration on the rig's integration.
pub async fn check(rig: &Rig, role: Role) -> Result<proto::HealthCheck, tonic::Status> {
    check_named(rig, &rig.integration, role).await
}

pub async fn check_named(
    rig: &Rig,
    name: &str,
    role: Role,
) -> Result<proto::HealthCheck, tonic::Status> {
    let req = proto::CheckIntegrationRequest {
        name: name.to_owned(),
    };
    client(rig.app.channel().await)
        .await
        .check_integration(authed(req, &rig.app.token(role)))
        .await
        .map(|r| r.into_inner().check.expect("a check"))
}

/// Opens a stream.
pub async fn watch(
    channel: Channel,
    token: &str,
    req: WatchHealthEventsRequest,
) -> Result<Streaming<HealthEvent>, tonic::Status> {
    client(channel)
        .await
        .watch_health_events(authed(req, token))
        .await
        .map(tonic::Response::into_inner)
}

pub fn from(after_seq: i64) -> WatchHealthEventsRequest {
    WatchHealthEventsRequest {
        after_seq,
        ..Default::default()
    }
}

/// The next event, failing the test when none comes within 10 s.
pub async fn next(stream: &mut Streaming<HealthEvent>) -> HealthEvent {
    match tokio::time::timeout(Duration::from_secs(10), stream.message()).await {
        Ok(Ok(Some(e))) => e,
        Ok(Ok(None)) => panic!("the stream ended"),
        Ok(Err(s)) => panic!("the stream failed: {s:?}"),
        Err(_) => panic!("no event within 10 s"),
    }
}

/// True when no event arrives within `wait`.
pub async fn quiet(stream: &mut Streaming<HealthEvent>, wait: Duration) -> bool {
    tokio::time::timeout(wait, stream.message()).await.is_err()
}

pub fn state(e: &HealthEvent) -> proto::HealthState {
    proto::HealthState::try_from(e.state).expect("a known state")
}

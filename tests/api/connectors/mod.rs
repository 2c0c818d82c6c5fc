//! Connector operations over gRPC, each platform played by a local fake that answers like the
//! provider's documentation (`fakes/`), the app pointed at it through its base URL setting.

mod catalogue;
mod core;
mod discord;
pub mod fake;
pub mod fakes;
pub mod fireflies;
mod gmail;
mod granola;
mod leaks;
mod loom;
mod monday;
mod notion;
mod otter;
mod outlook;
mod proxy;
mod seeded;
mod slack;
mod ssrf;
mod test_integration;
mod zerodb;
mod zerovoice;
mod zoom;

use std::collections::HashMap;
use std::time::Duration;

use founderhouse_integrations::api::grpc::convert::{struct_from_json, struct_to_json};
use founderhouse_integrations::config::Config;
use founderhouse_integrations::connectors::HttpPolicy;
use founderhouse_integrations::domain::{Platform, Role};
use founderhouse_integrations::proto::connector_service_client::ConnectorServiceClient;
use founderhouse_integrations::proto::{
    self, ConnectIntegrationRequest, DownloadRequest, DownloadResponse, InvokeRequest,
    InvokeResponse, ProxyRequest, ProxyResponse, TestIntegrationRequest, TestIntegrationResponse,
};
use futures::StreamExt;
use prost_types::Struct;
use serde_json::Value;
use tonic::transport::Channel;

use crate::helpers::{TestApp, authed, spawn_app_with};
use fake::Fake;

/// Fast retries and a breaker that stays out of the way, unless a test says otherwise.
pub fn fast_policy() -> HttpPolicy {
    HttpPolicy {
        max_attempts: 3,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        breaker_threshold: 100,
        breaker_cooldown: Duration::from_secs(30),
        max_response_bytes: 1024 * 1024,
        download_timeout: Duration::from_secs(30),
        default_deadline: Duration::from_secs(5),
    }
}

pub fn to_struct(v: Value) -> Struct {
    match v {
        Value::Object(m) => struct_from_json(m),
        other => panic!("params must be an object, not {other}"),
    }
}

pub fn to_json(s: Option<Struct>) -> Value {
    Value::Object(
        s.map(|s| struct_to_json("data", s).expect("finite numbers"))
            .unwrap_or_default(),
    )
}

/// The app, one platform's fake, and one integration of that platform connected to it.
pub struct Rig {
    pub app: TestApp,
    pub fake: Fake,
    /// The integration's resource name.
    pub integration: String,
    channel: Channel,
}

pub struct Setup<'a> {
    pub platform: Platform,
    /// Path of the base URL on the fake; None when the base URL is a credential (ZeroDB).
    pub base_path: Option<&'a str>,
    pub credentials: Vec<(&'a str, String)>,
}

impl Rig {
    pub async fn start(fake: Fake, setup: Setup<'_>) -> Self {
        Self::start_with(fake, setup, |_| {}).await
    }

    pub async fn start_with(fake: Fake, setup: Setup<'_>, tweak: impl FnOnce(&mut Config)) -> Self {
        let base = setup.base_path.map(|p| fake.url(p));
        let app = spawn_app_with(|c| {
            c.connectors.policy = fast_policy();
            if let Some(base) = &base {
                c.connectors
                    .base_urls
                    .set(setup.platform, base)
                    .expect("a valid base URL");
            }
            tweak(c);
        })
        .await;
        let channel = app.channel().await;
        let integration = connect(&app, setup.platform, &setup.credentials).await;
        // Connecting may ask the provider who the credentials are (Slack's auth.test).
        fake.forget();
        Self {
            app,
            fake,
            integration,
            channel,
        }
    }

    pub fn client(&self) -> ConnectorServiceClient<Channel> {
        ConnectorServiceClient::new(self.channel.clone())
    }

    /// Invokes as an admin; the data as JSON.
    pub async fn invoke(&self, operation: &str, params: Value) -> Result<Value, tonic::Status> {
        self.invoke_page(operation, params, "")
            .await
            .map(|(data, _)| data)
    }

    /// Invokes as an admin; the data and the next page token.
    pub async fn invoke_page(
        &self,
        operation: &str,
        params: Value,
        page_token: &str,
    ) -> Result<(Value, String), tonic::Status> {
        let r = self
            .invoke_as(
                Role::Admin,
                &self.integration,
                operation,
                params,
                page_token,
            )
            .await?;
        Ok((to_json(r.data), r.next_page_token))
    }

    pub async fn invoke_as(
        &self,
        role: Role,
        integration: &str,
        operation: &str,
        params: Value,
        page_token: &str,
    ) -> Result<InvokeResponse, tonic::Status> {
        let req = InvokeRequest {
            integration: integration.to_owned(),
            operation: operation.to_owned(),
            params: Some(to_struct(params)),
            page_token: page_token.to_owned(),
        };
        self.client()
            .invoke(authed(req, &self.app.token(role)))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn proxy_as(
        &self,
        role: Role,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<ProxyResponse, tonic::Status> {
        let req = ProxyRequest {
            integration: self.integration.clone(),
            method: method.to_owned(),
            path: path.to_owned(),
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>(),
            body: body.map(to_struct),
        };
        self.client()
            .proxy(authed(req, &self.app.token(role)))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Every message of a download, or the status that ended it.
    pub async fn download(
        &self,
        operation: &str,
        params: Value,
    ) -> Result<Vec<DownloadResponse>, tonic::Status> {
        let req = DownloadRequest {
            integration: self.integration.clone(),
            operation: operation.to_owned(),
            params: Some(to_struct(params)),
        };
        let mut stream = self
            .client()
            .download(authed(req, &self.app.token(Role::Viewer)))
            .await?
            .into_inner();
        let mut messages = Vec::new();
        while let Some(m) = stream.next().await {
            messages.push(m?);
        }
        Ok(messages)
    }

    pub async fn test_as(&self, role: Role) -> Result<TestIntegrationResponse, tonic::Status> {
        let mut c = self.app.integrations().await;
        c.test_integration(authed(
            TestIntegrationRequest {
                name: self.integration.clone(),
            },
            &self.app.token(role),
        ))
        .await
        .map(tonic::Response::into_inner)
    }

    pub async fn stop(self) {
        self.app.stop().await;
    }
}

/// Connects an API-key integration over gRPC; its resource name.
pub async fn connect(app: &TestApp, platform: Platform, credentials: &[(&str, String)]) -> String {
    let platform = match platform {
        Platform::Fireflies => proto::Platform::Fireflies,
        Platform::Otter => proto::Platform::Otter,
        Platform::Granola => proto::Platform::Granola,
        Platform::Zerodb => proto::Platform::Zerodb,
        Platform::Zerovoice => proto::Platform::Zerovoice,
        // Token connections of OAuth platforms that the credential specs allow.
        Platform::Monday => proto::Platform::Monday,
        Platform::Notion => proto::Platform::Notion,
        Platform::Slack => proto::Platform::Slack,
        Platform::Discord => proto::Platform::Discord,
        other => panic!("{other} does not connect with an API key"),
    };
    let req = ConnectIntegrationRequest {
        platform: platform as i32,
        credentials: credentials
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        ..Default::default()
    };
    app.integrations()
        .await
        .connect_integration(authed(req, &app.token(Role::Admin)))
        .await
        .expect("the integration connects")
        .into_inner()
        .integration
        .expect("an integration")
        .name
}

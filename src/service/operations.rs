//! Connector use cases: list operations, invoke one, proxy a request to a platform, stream a
//! download, and test a connection. Each checks the caller's role, validates everything before a
//! request leaves, gets credentials only through `CredentialAccess` (so another workspace's
//! integration is NotFound), and lets the HTTP core map provider outcomes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_json::{Map, Value};
use tokio::time::Instant;

pub use crate::connectors::proxy::ProxyOutput;
use crate::connectors::proxy::{ProxyCall, parse_method};
use crate::connectors::transport::SendOptions;
use crate::connectors::{Download, HttpCore, Prepared, Registry, Renewal, Session, paging};
/// What `list` answers, for adapters that render operations (MCP tools).
pub use crate::connectors::{Kind, Operation};
use crate::domain::Credentials;
use crate::domain::{Caller, Evidence, HealthState, IntegrationId, Role, WorkspaceId};
use crate::error::{Error, Reason};
use crate::service::credentials::CredentialAccess;
use crate::service::health::Recorder;

/// Part of a caller's grpc-timeout kept back so our answer reaches it before it gives up.
const DEADLINE_MARGIN: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct Operations {
    registry: Arc<Registry>,
    core: Arc<HttpCore>,
    access: CredentialAccess,
    /// The same access, as the sessions' way to renew rejected credentials.
    renewal: Arc<dyn Renewal>,
    /// Real calls' outcomes are health signals.
    recorder: Recorder,
}

/// What one probe said, with how long the provider took.
#[derive(Debug)]
pub struct Probe {
    /// The integration as the probe found it (its health before this probe).
    pub integration: crate::domain::Integration,
    pub evidence: Evidence,
    pub message: String,
    pub latency_ms: i64,
}

pub struct InvokeInput {
    pub integration: IntegrationId,
    pub operation: String,
    pub params: Map<String, Value>,
    pub page_token: String,
}

#[derive(Debug)]
pub struct InvokeOutput {
    pub data: Value,
    pub next_page_token: String,
}

pub struct ProxyInput {
    pub integration: IntegrationId,
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub body: Option<Map<String, Value>>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct TestOutcome {
    pub healthy: bool,
    pub state: HealthState,
    /// Why the probe failed; `None` when it succeeded.
    pub reason: Option<Reason>,
    pub message: String,
    pub latency_ms: i64,
}

impl Operations {
    pub fn new(
        registry: Arc<Registry>,
        core: Arc<HttpCore>,
        access: CredentialAccess,
        recorder: Recorder,
    ) -> Self {
        let renewal = Arc::new(access.clone());
        Self {
            registry,
            core,
            access,
            renewal,
            recorder,
        }
    }

    /// The longest a provider call may take (`FH_CONNECTOR_DEADLINE`, capped by the request
    /// timeout).
    pub fn default_deadline(&self) -> Duration {
        self.core.policy().default_deadline
    }

    /// The deadline of a call: the caller's timeout (less a margin), at most the configured
    /// default.
    pub fn deadline(&self, requested: Option<Duration>) -> Instant {
        let default = self.core.policy().default_deadline;
        let budget = requested
            .map(|t| t.saturating_sub(DEADLINE_MARGIN.min(t / 10)))
            .unwrap_or(default)
            .min(default);
        Instant::now() + budget
    }

    /// Every operation of platforms with a connector, or of one platform. Any role may list.
    pub fn list(&self, platform: Option<crate::domain::Platform>) -> Vec<&Operation> {
        self.registry.operations(platform).collect()
    }

    pub async fn invoke(
        &self,
        caller: &Caller,
        input: InvokeInput,
        deadline: Instant,
    ) -> Result<InvokeOutput, Error> {
        let op = self.registry.operation(&input.operation)?;
        if op.kind == Kind::Download {
            return Err(Error::invalid_field(
                "operation",
                "streams a file: call Download",
            ));
        }
        check_may_run(caller, op)?;
        let (prepared, checked) = op.prepare(input.params)?;
        let cursor = match op.kind {
            Kind::List => paging::decode("page_token", &input.page_token, &op.name, &checked)?,
            _ if !input.page_token.is_empty() => {
                return Err(Error::invalid_field(
                    "page_token",
                    "must be empty: this operation does not page",
                ));
            }
            _ => None,
        };
        let Prepared::Json(run) = prepared else {
            return Err(Error::internal(anyhow::anyhow!(
                "{} prepared a download for Invoke",
                op.name
            )));
        };
        let creds = self.open(caller, input.integration, op).await?;
        if op.writes {
            tracing::info!(operation = %op.name, integration_id = %creds.integration.id, user_id = %caller.user_id.0, "running a write operation");
        }
        let integration = creds.integration.clone();
        let session = self.session(creds, deadline, SendOptions::default())?;
        let page = run(session, cursor).await;
        self.signal(&integration, outcome(&page)).await;
        let page = page?;
        let next_page_token = page
            .next
            .map(|c| paging::encode(&op.name, &checked, &c))
            .unwrap_or_default();
        Ok(InvokeOutput {
            data: page.data,
            next_page_token,
        })
    }

    pub async fn download(
        &self,
        caller: &Caller,
        integration: IntegrationId,
        operation: &str,
        params: Map<String, Value>,
        deadline: Instant,
    ) -> Result<Download, Error> {
        let op = self.registry.operation(operation)?;
        check_may_run(caller, op)?;
        let (prepared, _) = op.prepare(params)?;
        let Prepared::Download(run) = prepared else {
            return Err(Error::invalid_field(
                "operation",
                "does not stream a file: call Invoke",
            ));
        };
        let creds = self.open(caller, integration, op).await?;
        let integration = creds.integration.clone();
        let session = self.session(creds, deadline, SendOptions::default())?;
        let download = run(session).await;
        self.signal(&integration, outcome(&download)).await;
        download
    }

    pub async fn proxy(
        &self,
        caller: &Caller,
        input: ProxyInput,
        deadline: Instant,
    ) -> Result<ProxyOutput, Error> {
        // Not even GET for viewers: some APIs act on GET (Slack's Web API takes
        // `chat.postMessage` and `auth.revoke` as GET), so the method proves nothing. Viewers
        // use the typed read operations.
        caller.require_member()?;
        let method = parse_method(&input.method)?;
        let call = ProxyCall::check(method, &input.path, input.query, input.body)?;
        let creds = self.access.fresh(caller, input.integration).await?;
        if call.method() != Method::GET {
            tracing::info!(platform = creds.integration.platform.as_str(), integration_id = %creds.integration.id, user_id = %caller.user_id.0, method = %call.method(), "proxying a write");
        }
        let integration = creds.integration.clone();
        let mut session = self.session(creds, deadline, SendOptions::default())?;
        let output = call.send(&mut session).await;
        self.signal(&integration, outcome(&output)).await;
        output
    }

    /// A real call's outcome, as a health signal.
    async fn signal(&self, integration: &crate::domain::Integration, outcome: Result<(), Reason>) {
        self.recorder.traffic(integration, outcome).await;
    }

    /// Runs the platform's connection test once (no retries: the answer is what the provider
    /// did now) and classifies it. Members and up. Nothing is recorded: `CheckIntegration` is
    /// the recorded probe.
    pub async fn test(
        &self,
        caller: &Caller,
        integration: IntegrationId,
        deadline: Instant,
    ) -> Result<TestOutcome, Error> {
        caller.require_member()?;
        let creds = self.access.fresh(caller, integration).await?;
        let platform = creds.integration.platform;
        let (result, latency_ms) = self.run_test(creds, deadline).await;
        let failed = |state: HealthState, e: Error| TestOutcome {
            healthy: false,
            state,
            reason: Some(e.reason()),
            message: e.message().to_owned(),
            latency_ms,
        };
        match result {
            Ok(()) => Ok(TestOutcome {
                healthy: true,
                state: HealthState::Healthy,
                reason: None,
                message: accepted(platform),
                latency_ms,
            }),
            Err(e) => match probe_failure_state(e.reason()) {
                Some(state) => Ok(failed(state, e)),
                None => Err(e),
            },
        }
    }

    /// The health probe: the connection test in a workspace, on the service's own behalf,
    /// after refreshing OAuth tokens when they are due (a refresh the provider refuses is
    /// evidence too). Errors are failures that say nothing about the integration.
    pub async fn probe(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        deadline: Instant,
    ) -> Result<Probe, Error> {
        let classify =
            |integration, e: Error, latency_ms: i64| match Evidence::of_probe_failure(e.reason()) {
                Some(evidence) => Ok(Probe {
                    integration,
                    evidence,
                    message: e.message().to_owned(),
                    latency_ms,
                }),
                None => Err(e),
            };
        let creds = match self.access.fresh_in(workspace, integration).await {
            Ok(c) => c,
            // A refresh the provider refused is evidence too; the row says how it stands.
            Err(e) => {
                let Some(current) = self.access.integration(workspace, integration).await? else {
                    return Err(e);
                };
                return classify(current, e, 0);
            }
        };
        let loaded = creds.integration.clone();
        let platform = loaded.platform;
        match self.run_test(creds, deadline).await {
            (Ok(()), latency_ms) => Ok(Probe {
                integration: loaded,
                evidence: Evidence::Success,
                message: accepted(platform),
                latency_ms,
            }),
            (Err(e), latency_ms) => classify(loaded, e, latency_ms),
        }
    }

    async fn run_test(&self, creds: Credentials, deadline: Instant) -> (Result<(), Error>, i64) {
        let platform = creds.integration.platform;
        let started = std::time::Instant::now();
        let result = async {
            let session = self.session(creds, deadline, SendOptions { retries: false })?;
            self.registry
                .platform(platform)?
                .test(session)
                .await
                .map(drop)
        }
        .await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        (result, latency_ms)
    }

    /// The integration's credentials (the caller's, else NotFound); its platform must be the
    /// operation's.
    async fn open(
        &self,
        caller: &Caller,
        integration: IntegrationId,
        op: &Operation,
    ) -> Result<Credentials, Error> {
        let creds = self.access.fresh(caller, integration).await?;
        let platform = creds.integration.platform;
        if platform != op.platform {
            return Err(Error::invalid_field(
                "operation",
                format!(
                    "is a {} operation but the integration is {platform}",
                    op.platform
                ),
            ));
        }
        Ok(creds)
    }

    fn session(
        &self,
        creds: Credentials,
        deadline: Instant,
        opts: SendOptions,
    ) -> Result<Session, Error> {
        self.registry.session(
            self.core.clone(),
            creds,
            self.renewal.clone(),
            deadline,
            opts,
        )
    }
}

/// A call's result as a health signal; computed before awaiting, so a result that is not
/// `Sync` (a download's stream) is not held across the await.
fn outcome<T>(result: &Result<T, Error>) -> Result<(), Reason> {
    result.as_ref().map(drop).map_err(Error::reason)
}

fn accepted(platform: crate::domain::Platform) -> String {
    format!("{} accepted the credentials", platform.title())
}

fn check_may_run(caller: &Caller, op: &Operation) -> Result<(), Error> {
    if op.writes && caller.role == Role::Viewer {
        return Err(Error::permission_denied(
            "viewers may run only read operations",
        ));
    }
    Ok(())
}

/// What a failed connection probe says about the integration: `NeedsReauth` when a person must
/// reconnect, `Degraded` when the provider is struggling, `None` when the failure is ours or the
/// caller's (it is answered as an error instead). The classification is `Evidence`'s.
pub fn probe_failure_state(reason: Reason) -> Option<HealthState> {
    match Evidence::of_probe_failure(reason)? {
        Evidence::Auth(_) => Some(HealthState::NeedsReauth),
        Evidence::Transient(_) => Some(HealthState::Degraded),
        Evidence::Success => None,
    }
}

//! Composition root: pool and migrations, keyring, services, listeners (port 0 works), servers,
//! background jobs, and one shutdown token; a task that dies early shuts the whole app down.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use http::{HeaderName, HeaderValue, Method};
use tokio::net::TcpListener;
use tokio::task::{Id, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::api::auth::{AuthLayer, Authenticator};
use crate::api::grpc::{
    connectors::ConnectorsGrpc, health::HealthGrpc, integrations::IntegrationsGrpc,
    oauth::OAuthGrpc,
};
use crate::api::limit::{RateLimitLayer, RateLimiter};
use crate::api::listen::{self, Accept, Incoming};
use crate::api::observe::ObserveLayer;
use crate::api::reject::Transport;
use crate::api::rest::{self, RestState};
use crate::config::{Config, Limits, Network};
use crate::connectors::{Egress, HttpCore, Registry};
use crate::oauth::Catalogue;
use crate::proto::{
    connector_service_server::ConnectorServiceServer, health_service_server::HealthServiceServer,
    integration_service_server::IntegrationServiceServer,
    o_auth_service_server::OAuthServiceServer,
};
use crate::scheduler::{self, Job};
use crate::service::credentials::CredentialAccess;
use crate::service::health::{Hub, Recorder};
use crate::service::identity::Identifier;
use crate::service::oauth::OAuth;
use crate::service::operations::Operations;
use crate::service::{Health, Integrations, System};
use crate::store::Database;

/// A built, not yet running, service.
pub struct App {
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    /// `/metrics` on a port of its own, when configured.
    metrics_listener: Option<TcpListener>,
    db: Database,
    auth: Arc<Authenticator>,
    integrations: Integrations,
    oauth: OAuth,
    operations: Operations,
    health: Health,
    /// The health event listener, connected: it runs with the servers.
    listener: futures::future::BoxFuture<'static, anyhow::Result<()>>,
    system: System,
    jobs: Vec<Job>,
    cors: CorsLayer,
    mcp: crate::api::mcp::McpSettings,
    limits: Limits,
    network: Network,
    shutdown: CancellationToken,
}

/// HTTP/2 pings on both ports: a peer that stops answering them is dropped.
const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Connections the metrics listener serves at once: a scraper or two.
const METRICS_MAX_CONNECTIONS: usize = 64;

/// Builds the one outbound HTTP client (JWKS, OAuth providers, connectors): timeouts, no redirects.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    http_client_builder()
        .build()
        .context("building the HTTP client")
}

/// The outbound client's settings; the connectors' guarded client starts from them too.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    // Idempotent: the first call installs ring as rustls' provider for the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(
            "founderhouse-integrations/",
            env!("CARGO_PKG_VERSION")
        ))
}

fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let h = HeaderName::from_static;
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            http::header::AUTHORIZATION,
            http::header::CONTENT_TYPE,
            h("x-grpc-web"),
            h("x-user-agent"),
            h("grpc-timeout"),
            h("x-request-id"),
            // MCP's Streamable HTTP headers, for browser-based MCP clients.
            h("mcp-protocol-version"),
            h("mcp-session-id"),
            h("mcp-method"),
            h("mcp-name"),
            h("last-event-id"),
        ])
        .expose_headers([
            h("grpc-status"),
            h("grpc-message"),
            h("grpc-status-details-bin"),
            h("x-request-id"),
            h("mcp-session-id"),
            http::header::WWW_AUTHENTICATE,
        ])
        .max_age(Duration::from_secs(600))
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let db = Database::connect(config.database_url.expose(), &config.pool).await?;
        let http = http_client()?;
        let auth = Arc::new(
            Authenticator::new(
                config.jwt_secret.as_ref(),
                config.jwks_url.clone(),
                config.jwt_issuer.clone(),
                config.jwt_audience.clone(),
                http.clone(),
            )
            .with_max_ttl(config.jwt_max_ttl)
            .with_jwks_max_stale(config.jwks_max_stale),
        );
        if config.jwt_issuer.is_none() && config.jwt_audience.is_none() {
            tracing::warn!(
                "caller tokens are bound to no issuer or audience (FH_JWT_ISSUER, FH_JWT_AUDIENCE): \
                 any token signed with the configured keys is accepted"
            );
        }
        let keyring = Arc::new(config.keyring.clone());
        let mut policy = config.connectors.policy.clone();
        // A connector call must answer before the server's own request timeout cuts it off.
        policy.default_deadline = policy.default_deadline.min(config.limits.request_timeout);
        // A provider answer larger than a gRPC message could not be sent back anyway.
        policy.max_response_bytes = policy
            .max_response_bytes
            .min(config.limits.max_message_bytes);
        let egress = Egress::new(
            http_client_builder(),
            &config.connectors.base_urls,
            config.connectors.allow_private_hosts,
        )
        .context("building the connectors' guarded HTTP client")?;
        let registry = Arc::new(Registry::new(config.connectors.base_urls.clone()));
        let core = Arc::new(HttpCore::new(http.clone(), egress, policy));
        let identifier = Identifier::new(registry.clone(), core.clone());
        let oauth = OAuth::new(
            db.pool.clone(),
            keyring.clone(),
            Catalogue::new(&config.providers).context("OAuth provider configuration")?,
            http.clone(),
            config.oauth.clone(),
            config.public_url.clone(),
            config.frontend_url.clone(),
            config.cors_origins.clone(),
            identifier.clone(),
        );
        let access = CredentialAccess::new(db.pool.clone(), keyring.clone(), oauth.clone());
        let shutdown = CancellationToken::new();
        let health_settings = Arc::new(config.health.clone());
        let recorder = Recorder::new(db.pool.clone(), health_settings.clone());
        let hub = Hub::new(
            db.pool.clone(),
            shutdown.clone(),
            config.health.stream_buffer,
        );
        let operations = Operations::new(registry, core, access, recorder.clone());
        let health = Health::new(
            db.pool.clone(),
            operations.clone(),
            recorder,
            health_settings,
            hub.clone(),
        );
        let system = System::new(db.clone(), keyring.clone());
        let integrations = Integrations::new(db.pool.clone(), keyring, oauth.clone(), identifier);
        let listener = Box::pin(
            hub.clone()
                .listen()
                .await
                .map_err(|e| anyhow::anyhow!("connecting the health event listener: {e}"))?,
        );
        let mut jobs = scheduler::jobs(&oauth, config.oauth.refresh_interval);
        jobs.extend(scheduler::health_jobs(&health));
        jobs.push(scheduler::memory_job());
        let grpc_listener = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("binding gRPC address {}", config.grpc_addr))?;
        let http_listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding HTTP address {}", config.http_addr))?;
        let metrics_listener = match config.network.metrics_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding metrics address {addr}"))?,
            ),
            None => None,
        };
        Ok(Self {
            grpc_listener,
            http_listener,
            metrics_listener,
            db,
            auth,
            integrations,
            oauth,
            operations,
            health,
            listener,
            system,
            jobs,
            cors: cors(&config.cors_origins),
            mcp: crate::api::mcp::McpSettings {
                public_url: config.public_url.clone(),
                extra_hosts: config.network.mcp_allowed_hosts.clone(),
                origins: config.cors_origins.clone(),
                issuer: config.jwt_issuer.clone(),
                max_body_bytes: rest::MAX_BODY_BYTES,
            },
            limits: config.limits,
            network: config.network,
            shutdown,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Cancel it to shut down gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The metrics listener's address, when `/metrics` has one of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Serves until the shutdown token is cancelled, then: readiness fails, listeners stop
    /// accepting, in-flight calls get `shutdown_grace` to finish, the pool closes. A server or
    /// job that stops before that (an error, a panic) is logged and shuts the app down the same
    /// way, and `run` answers an error naming it: never half alive.
    pub async fn run(self) -> anyhow::Result<()> {
        let limits = self.limits.clone();
        let accepting = Arc::new(AtomicBool::new(true));
        let max = limits.max_message_bytes;

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<IntegrationServiceServer<IntegrationsGrpc>>()
            .await;
        health_reporter
            .set_serving::<OAuthServiceServer<OAuthGrpc>>()
            .await;
        health_reporter
            .set_serving::<ConnectorServiceServer<ConnectorsGrpc>>()
            .await;
        health_reporter
            .set_serving::<HealthServiceServer<HealthGrpc>>()
            .await;
        let network = self.network.clone();
        let (reflection_v1, reflection_v1alpha) = if network.reflection {
            (
                Some(
                    tonic_reflection::server::Builder::configure()
                        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
                        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                        .build_v1()?,
                ),
                Some(
                    tonic_reflection::server::Builder::configure()
                        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
                        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                        .build_v1alpha()?,
                ),
            )
        } else {
            (None, None)
        };
        let limiter = Arc::new(RateLimiter::new(network.rate_limits));

        // Layers run top to bottom: observe (request id, metrics), CORS preflight, grpc-web
        // translation, then auth on plain gRPC, then rate limits (which need the caller).
        let grpc = Server::builder()
            .accept_http1(true)
            .timeout(limits.request_timeout)
            .concurrency_limit_per_connection(limits.concurrency_limit)
            .load_shed(true)
            .max_concurrent_streams(limits.max_concurrent_streams)
            .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
            .max_connection_age(network.grpc_max_connection_age)
            // In-flight calls (a WatchHealthEvents stream) get this long after the GOAWAY.
            .max_connection_age_grace(limits.shutdown_grace)
            .layer(ObserveLayer::new("grpc"))
            .layer(self.cors.clone())
            .layer(tonic_web::GrpcWebLayer::new())
            .layer(AuthLayer::new(self.auth.clone(), Transport::Grpc))
            .layer(RateLimitLayer::new(
                limiter.clone(),
                self.auth.clone(),
                Transport::Grpc,
            ))
            .add_service(health_service)
            .add_optional_service(reflection_v1)
            .add_optional_service(reflection_v1alpha)
            .add_service(
                IntegrationServiceServer::new(IntegrationsGrpc {
                    integrations: self.integrations.clone(),
                    operations: self.operations.clone(),
                })
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
            )
            .add_service(
                OAuthServiceServer::new(OAuthGrpc {
                    integrations: self.integrations.clone(),
                    oauth: self.oauth.clone(),
                })
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
            )
            .add_service(
                ConnectorServiceServer::new(ConnectorsGrpc {
                    operations: self.operations.clone(),
                })
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
            )
            .add_service(
                HealthServiceServer::new(HealthGrpc {
                    health: self.health.clone(),
                    operations: self.operations.clone(),
                })
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
            );

        let rest_state = RestState {
            integrations: self.integrations.clone(),
            oauth: self.oauth.clone(),
            health: self.health.clone(),
            operations: self.operations.clone(),
            system: self.system.clone(),
            metrics: crate::telemetry::metrics(),
            accepting: accepting.clone(),
        };
        let metrics_router = self
            .metrics_listener
            .is_some()
            .then(|| rest::metrics_router(rest_state.clone()));
        let mcp = crate::api::mcp::routes(
            self.mcp,
            self.auth.clone(),
            self.operations.clone(),
            self.health.clone(),
            self.shutdown.child_token(),
        );
        let rest = rest::router(
            rest_state,
            AuthLayer::new(self.auth.clone(), Transport::Rest),
            metrics_router.is_none(),
            mcp,
        )
        .layer(tower::limit::ConcurrencyLimitLayer::new(
            limits.concurrency_limit,
        ))
        // Outside the concurrency limit: a refused call takes no slot.
        .layer(RateLimitLayer::new(
            limiter,
            self.auth.clone(),
            Transport::Rest,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            http::StatusCode::GATEWAY_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(self.cors.clone())
        .layer(ObserveLayer::new("rest"));

        let token = self.shutdown.clone();
        let mut tasks = Tasks::default();
        let keepalive = Some(network.tcp_keepalive).filter(|d| !d.is_zero());
        let incoming = Incoming::new(
            self.grpc_listener,
            Accept {
                name: "grpc",
                max_connections: network.grpc_max_connections,
                tcp_keepalive: keepalive,
                // Quiet streams are legitimate; HTTP/2 pings find dead peers instead.
                idle_timeout: None,
                first_byte_timeout: Some(network.header_timeout),
            },
        );
        let http = listen::Http {
            header_timeout: network.header_timeout,
            keepalive_interval: HTTP2_KEEPALIVE_INTERVAL,
            keepalive_timeout: HTTP2_KEEPALIVE_TIMEOUT,
        };
        tasks.spawn("gRPC server", {
            let token = token.clone();
            async move {
                grpc.serve_with_incoming_shutdown(incoming, token.cancelled_owned())
                    .await
                    .context("gRPC server")
            }
        });
        tasks.spawn("REST server", {
            let token = token.clone();
            let incoming = Incoming::new(
                self.http_listener,
                Accept {
                    name: "rest",
                    max_connections: network.http_max_connections,
                    tcp_keepalive: keepalive,
                    // A handler may be silent on its connection for up to the request timeout.
                    idle_timeout: Some(network.idle_timeout.max(limits.request_timeout)),
                    first_byte_timeout: Some(network.header_timeout),
                },
            );
            async move {
                listen::serve_http(incoming, rest, http, token)
                    .await
                    .context("REST server")
            }
        });
        if let (Some(listener), Some(router)) = (self.metrics_listener, metrics_router) {
            let token = token.clone();
            let incoming = Incoming::new(
                listener,
                Accept {
                    name: "metrics",
                    max_connections: METRICS_MAX_CONNECTIONS,
                    tcp_keepalive: keepalive,
                    idle_timeout: Some(network.idle_timeout),
                    first_byte_timeout: Some(network.header_timeout),
                },
            );
            tasks.spawn("metrics server", async move {
                listen::serve_http(incoming, router, http, token)
                    .await
                    .context("metrics server")
            });
        }
        tasks.spawn("health listener", self.listener);
        for job in self.jobs {
            let token = token.clone();
            tasks.spawn(job.name(), async move {
                job.run_until(token).await;
                Ok(())
            });
        }
        tracing::info!("serving");

        let mut failure = tokio::select! {
            // Biased: a task that ends because shutdown began is not an early exit.
            biased;
            _ = token.cancelled() => None,
            Some(exit) = tasks.join_next() => Some(tasks.report_exit(exit)),
        };
        token.cancel();
        accepting.store(false, Ordering::Relaxed);
        health_reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        tracing::info!(grace = ?limits.shutdown_grace, "shutting down");

        let drained = tokio::time::timeout(limits.shutdown_grace, async {
            let mut first = None;
            while let Some(exit) = tasks.join_next().await {
                let (name, result) = tasks.named(exit);
                if let Err(e) = result {
                    tracing::error!(task = name, error = %format!("{e:#}"), "task failed during shutdown");
                    first.get_or_insert(e);
                }
            }
            first
        })
        .await;
        match drained {
            Ok(error) => failure = failure.or(error),
            // The set, dropped on return, aborts what is left.
            Err(_) => tracing::warn!("in-flight requests did not finish within the grace period"),
        }
        self.db.pool.close().await;
        tracing::info!("stopped");
        failure.map_or(Ok(()), Err)
    }
}

/// The app's long-running tasks (servers and jobs), by name.
#[derive(Default)]
struct Tasks {
    set: JoinSet<anyhow::Result<()>>,
    names: HashMap<Id, &'static str>,
}

impl Tasks {
    fn spawn(
        &mut self,
        name: &'static str,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        let handle = self.set.spawn(task);
        self.names.insert(handle.id(), name);
    }

    async fn join_next(&mut self) -> Option<Result<(Id, anyhow::Result<()>), JoinError>> {
        self.set.join_next_with_id().await
    }

    /// The task's name and what it ended with; a panic becomes an error.
    fn named(
        &self,
        exit: Result<(Id, anyhow::Result<()>), JoinError>,
    ) -> (&'static str, anyhow::Result<()>) {
        let id = match &exit {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let name = self.names.get(&id).copied().unwrap_or("a task");
        let result = match exit {
            Ok((_, result)) => result,
            // Servers and jobs never abort themselves, so this is a panic.
            Err(e) => Err(anyhow::anyhow!("{name} ended abnormally: {e}")),
        };
        (name, result)
    }

    /// A task ended before shutdown: logs which and why (like zero-to-production's
    /// `report_exit`) and answers the error `run` returns.
    fn report_exit(&self, exit: Result<(Id, anyhow::Result<()>), JoinError>) -> anyhow::Error {
        let (task, result) = self.named(exit);
        match result {
            Ok(()) => {
                tracing::error!(task, "task stopped before shutdown; shutting down");
                anyhow::anyhow!("{task} stopped before shutdown")
            }
            Err(e) => {
                tracing::error!(task, error = %format!("{e:#}"), "task failed; shutting down");
                e
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Tasks;

    #[tokio::test]
    async fn a_task_that_stops_or_panics_is_reported_by_name() {
        let mut tasks = Tasks::default();
        tasks.spawn("quitter", async { Ok(()) });
        let exit = tasks.join_next().await.expect("one task");
        let error = tasks.report_exit(exit);
        assert_eq!(error.to_string(), "quitter stopped before shutdown");

        tasks.spawn("crasher", async { panic!("on purpose") });
        let exit = tasks.join_next().await.expect("one task");
        let error = tasks.report_exit(exit);
        assert!(
            error.to_string().starts_with("crasher ended abnormally"),
            "{error}"
        );
    }
}

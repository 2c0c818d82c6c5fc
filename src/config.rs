//! Settings: every one a flag and an `FH_*` environment variable, with defaults that run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use reqwest::Url;

use crate::domain::Secret;
use crate::secrets::KeyRing;
use crate::store::db::PoolSettings;

#[derive(Parser, Debug)]
#[command(
    name = "founderhouse-integrations",
    version,
    about = "Connects workspaces to their platforms; serves gRPC, grpc-web and REST.",
    after_help = "OAuth providers (zoom, slack, discord, microsoft, monday, notion, google, loom, custom) \
are configured by environment only: FH_PROVIDER_<P>_CLIENT_ID, FH_PROVIDER_<P>_CLIENT_SECRET and the \
optional overrides FH_PROVIDER_<P>_AUTHORIZE_URL, _TOKEN_URL, _REVOKE_URL, _ISSUER, _SCOPES (space \
separated), _CLIENT_AUTH (basic|post) and, for custom, _PKCE (true|false). A provider without client \
credentials is listed as not configured."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print a development JWT signed with the configured HS256 secret.
    Token {
        /// The workspace the token acts in.
        #[arg(long)]
        workspace: uuid::Uuid,
        /// owner, admin, member, viewer or service.
        #[arg(long, default_value = "admin")]
        role: String,
        /// The user id; random when omitted.
        #[arg(long)]
        sub: Option<uuid::Uuid>,
        /// Lifetime, e.g. 1h, 30m, 7d.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// Encryption keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Print a new key entry (`<id>:<base64>`) to append to FH_ENCRYPTION_KEYS.
    Generate,
    /// Re-seal every stored credential under the active key, printing progress.
    Rewrap {
        /// Rows per transaction.
        #[arg(long, default_value_t = 500)]
        batch: i64,
    },
}

/// Everything configurable. Flags win over environment variables.
#[derive(Args, Debug, Clone)]
pub struct Settings {
    /// gRPC and grpc-web listen address.
    #[arg(
        long,
        env = "FH_GRPC_ADDR",
        default_value = "127.0.0.1:50051",
        global = true
    )]
    pub grpc_addr: SocketAddr,
    /// REST listen address.
    #[arg(
        long,
        env = "FH_HTTP_ADDR",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub http_addr: SocketAddr,
    /// PostgreSQL URL; the database is created if missing and migrated at start.
    #[arg(
        long,
        env = "FH_DATABASE_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/founderhouse",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,
    /// Largest number of database connections this replica opens; requests beyond it wait up
    /// to FH_DB_ACQUIRE_TIMEOUT.
    #[arg(
        long,
        env = "FH_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub db_max_connections: u32,
    /// How long a request waits for a database connection before failing with UNAVAILABLE.
    #[arg(long, env = "FH_DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    pub db_acquire_timeout: Duration,
    /// HS256 secret for caller JWTs. Without it (and without FH_JWKS_URL) a development secret
    /// is created in FH_DATA_DIR.
    #[arg(long, env = "FH_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,
    /// JWKS URL for RS256/ES256 caller JWTs.
    #[arg(long, env = "FH_JWKS_URL", global = true)]
    pub jwks_url: Option<String>,
    /// Required `iss` of caller JWTs, when set.
    #[arg(long, env = "FH_JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,
    /// Required `aud` of caller JWTs, when set.
    #[arg(long, env = "FH_JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,
    /// Longest lifetime (`exp - iat`) a caller JWT may have; longer ones are refused, so a
    /// leaked ten-year token is worthless.
    #[arg(long, env = "FH_JWT_MAX_TTL", default_value = "24h", value_parser = humantime::parse_duration, global = true)]
    pub jwt_max_ttl: Duration,
    /// How long JWKS keys stay usable while fetching the key set keeps failing; after it,
    /// tokens are refused with UNAVAILABLE (JWKS_UNAVAILABLE) rather than trusted forever.
    #[arg(long, env = "FH_JWKS_MAX_STALE", default_value = "1h", value_parser = humantime::parse_duration, global = true)]
    pub jwks_max_stale: Duration,
    /// Encryption keys: comma-separated `<id>:<base64 32 bytes>`; the last is active unless
    /// FH_ENCRYPTION_ACTIVE_KEY says otherwise. Rotate by appending a key, then `keys rewrap`.
    #[arg(
        long,
        env = "FH_ENCRYPTION_KEYS",
        hide_env_values = true,
        global = true
    )]
    pub encryption_keys: Option<String>,
    /// A file holding the FH_ENCRYPTION_KEYS value, as an alternative to the variable.
    #[arg(long, env = "FH_ENCRYPTION_KEYS_FILE", global = true)]
    pub encryption_keys_file: Option<PathBuf>,
    /// The id of the key new seals use, when it is not the last of FH_ENCRYPTION_KEYS (roll a
    /// new key out to every replica first, then make it active).
    #[arg(long, env = "FH_ENCRYPTION_ACTIVE_KEY", global = true)]
    pub encryption_active_key: Option<String>,
    /// Where development secrets are created (0600) when none are configured.
    #[arg(long, env = "FH_DATA_DIR", default_value = ".data", global = true)]
    pub data_dir: PathBuf,
    /// Public base URL of the REST port; OAuth callback URLs are built from it.
    #[arg(
        long,
        env = "FH_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub public_url: Url,
    /// The frontend the browser returns to after OAuth.
    #[arg(
        long,
        env = "FH_FRONTEND_URL",
        default_value = "http://localhost:3000",
        global = true
    )]
    pub frontend_url: Url,
    /// Comma-separated origins allowed by CORS (grpc-web and REST); the frontend's origin is
    /// always allowed.
    #[arg(long, env = "FH_CORS_ORIGINS", value_delimiter = ',', global = true)]
    pub cors_origins: Vec<String>,
    /// Comma-separated `Host` values `/mcp` accepts besides FH_PUBLIC_URL's host (names a
    /// proxy forwards unchanged); any other Host is refused (DNS rebinding).
    #[arg(
        long,
        env = "FH_MCP_ALLOWED_HOSTS",
        value_delimiter = ',',
        global = true
    )]
    pub mcp_allowed_hosts: Vec<String>,
    /// Per-request deadline on both transports.
    #[arg(long, env = "FH_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub request_timeout: Duration,
    /// How long in-flight calls may take to finish after SIGINT/SIGTERM.
    #[arg(long, env = "FH_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub shutdown_grace: Duration,
    /// Largest gRPC message accepted or sent.
    #[arg(long, env = "FH_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024, global = true)]
    pub max_message_bytes: usize,
    /// Concurrent requests per gRPC connection before new ones are shed with UNAVAILABLE.
    #[arg(
        long,
        env = "FH_CONCURRENCY_LIMIT",
        default_value_t = 512,
        global = true
    )]
    pub concurrency_limit: usize,
    /// HTTP/2 max concurrent streams per connection.
    #[arg(
        long,
        env = "FH_MAX_CONCURRENT_STREAMS",
        default_value_t = 1024,
        global = true
    )]
    pub max_concurrent_streams: u32,
    /// How long a REST client has to send a request's headers (each request, keep-alive ones
    /// too); a slow or stalled client is disconnected after it.
    #[arg(long, env = "FH_HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub http_header_timeout: Duration,
    /// A REST connection with no bytes either way for this long is closed (at least
    /// FH_REQUEST_TIMEOUT, so a slow handler is never cut off by it).
    #[arg(long, env = "FH_HTTP_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration, global = true)]
    pub http_idle_timeout: Duration,
    /// Open REST connections beyond which new ones wait in the kernel's backlog; lowered at
    /// start to fit under the process's open-file limit.
    #[arg(
        long,
        env = "FH_HTTP_MAX_CONNECTIONS",
        default_value_t = 4096,
        global = true
    )]
    pub http_max_connections: usize,
    /// Open gRPC connections beyond which new ones wait in the kernel's backlog; lowered at
    /// start to fit under the process's open-file limit.
    #[arg(
        long,
        env = "FH_GRPC_MAX_CONNECTIONS",
        default_value_t = 4096,
        global = true
    )]
    pub grpc_max_connections: usize,
    /// gRPC connections older than this are asked to go away (GOAWAY) and reconnect, so
    /// load spreads over replicas and no connection is held forever.
    #[arg(long, env = "FH_GRPC_MAX_CONNECTION_AGE", default_value = "30m", value_parser = humantime::parse_duration, global = true)]
    pub grpc_max_connection_age: Duration,
    /// TCP keepalive idle time on accepted connections of both ports: dead peers are found.
    #[arg(long, env = "FH_TCP_KEEPALIVE", default_value = "60s", value_parser = humantime::parse_duration, global = true)]
    pub tcp_keepalive: Duration,
    /// Serve `/metrics` on this address instead of the REST port (unset: on the REST port).
    #[arg(long, env = "FH_METRICS_ADDR", global = true)]
    pub metrics_addr: Option<SocketAddr>,
    /// Serve gRPC server reflection (the schema is public; turn it off to hide it).
    #[arg(long, env = "FH_REFLECTION", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub reflection: bool,
    /// StartAuthorization (and POST .../authorize) calls a workspace may make per minute
    /// (bursts up to the same number); beyond it RESOURCE_EXHAUSTED / 429 with retry-after. 0: no limit.
    #[arg(
        long,
        env = "FH_RATE_LIMIT_START_AUTHORIZATION",
        default_value_t = 30,
        global = true
    )]
    pub rate_limit_start_authorization: u32,
    /// RefreshIntegration (and POST .../refresh) calls a workspace may make per minute. 0: no limit.
    #[arg(
        long,
        env = "FH_RATE_LIMIT_REFRESH",
        default_value_t = 60,
        global = true
    )]
    pub rate_limit_refresh: u32,
    /// OAuth callbacks one client IP address may make per minute (the callback needs no token).
    /// 0: no limit.
    #[arg(
        long,
        env = "FH_RATE_LIMIT_CALLBACK",
        default_value_t = 60,
        global = true
    )]
    pub rate_limit_callback: u32,
    /// Refresh OAuth access tokens this long before they expire.
    #[arg(long, env = "FH_REFRESH_AHEAD", default_value = "5m", value_parser = humantime::parse_duration, global = true)]
    pub refresh_ahead: Duration,
    /// How often each replica looks for OAuth tokens due for refresh.
    #[arg(long, env = "FH_REFRESH_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub refresh_interval: Duration,
    /// Refresh OAuth grants unused for this long, so they never reach a provider's inactivity
    /// cliff (Microsoft 90 days, Google about 6 months).
    #[arg(long, env = "FH_REFRESH_KEEPALIVE", default_value = "30days", value_parser = humantime::parse_duration, global = true)]
    pub refresh_keepalive: Duration,
    /// Run the health sweep on this replica (any number of replicas may; they share the work).
    #[arg(long, env = "FH_HEALTH_SWEEP", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub health_sweep: bool,
    /// How often each integration is probed; successful traffic postpones its probe.
    #[arg(long, env = "FH_HEALTH_CHECK_INTERVAL", default_value = "6h", value_parser = humantime::parse_duration, global = true)]
    pub health_check_interval: Duration,
    /// Consecutive transient failures (timeouts, 5xx, 429) that turn HEALTHY into DEGRADED.
    #[arg(
        long,
        env = "FH_HEALTH_DEGRADED_AFTER",
        default_value_t = 2,
        global = true
    )]
    pub health_degraded_after: u32,
    /// Consecutive successes that turn DEGRADED back into HEALTHY.
    #[arg(
        long,
        env = "FH_HEALTH_RECOVERED_AFTER",
        default_value_t = 2,
        global = true
    )]
    pub health_recovered_after: u32,
    /// Probes one replica's sweep runs at once.
    #[arg(
        long,
        env = "FH_HEALTH_SWEEP_CONCURRENCY",
        default_value_t = crate::service::health::DEFAULT_SWEEP_CONCURRENCY,
        global = true
    )]
    pub health_sweep_concurrency: usize,
    /// How long health check history is kept.
    #[arg(long, env = "FH_HEALTH_HISTORY_RETENTION", default_value = "30days", value_parser = humantime::parse_duration, global = true)]
    pub health_history_retention: Duration,
    /// How long health events are kept: how far back a WatchHealthEvents stream can resume.
    #[arg(long, env = "FH_HEALTH_EVENT_RETENTION", default_value = "7days", value_parser = humantime::parse_duration, global = true)]
    pub health_event_retention: Duration,
    /// Health events a replica buffers for momentarily slow streams; a stream further behind
    /// catches up from the database.
    #[arg(
        long,
        env = "FH_HEALTH_STREAM_BUFFER",
        default_value_t = 4096,
        global = true
    )]
    pub health_stream_buffer: usize,
    /// Log filter, e.g. "info" or "founderhouse_integrations=debug".
    #[arg(long, env = "FH_LOG", default_value = "info", global = true)]
    pub log: String,
    /// "text" or "json".
    #[arg(long, env = "FH_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: String,
    /// Platform base URLs (FH_<PLATFORM>_BASE_URL) and the connector HTTP policy.
    #[command(flatten)]
    pub connectors: crate::connectors::ConnectorSettings,
}

/// Server limits.
#[derive(Clone, Debug)]
pub struct Limits {
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
    pub max_message_bytes: usize,
    pub concurrency_limit: usize,
    pub max_concurrent_streams: u32,
}

/// Listener settings: timeouts and caps on connections, where metrics are served, reflection,
/// and the rate limits of the expensive or unauthenticated entry points.
#[derive(Clone, Debug)]
pub struct Network {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub http_max_connections: usize,
    pub grpc_max_connections: usize,
    pub grpc_max_connection_age: Duration,
    pub tcp_keepalive: Duration,
    pub metrics_addr: Option<SocketAddr>,
    pub reflection: bool,
    pub rate_limits: RateLimits,
    /// `Host` values `/mcp` accepts besides the public URL's.
    pub mcp_allowed_hosts: Vec<String>,
}

/// Calls per minute (bursts up to the same number); 0 turns a limit off.
#[derive(Clone, Copy, Debug)]
pub struct RateLimits {
    /// Per workspace.
    pub start_authorization: u32,
    /// Per workspace.
    pub refresh: u32,
    /// Per client IP address.
    pub callback: u32,
}

/// The flags' defaults, for configurations built in code (tests, benches).
impl Default for Network {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            http_max_connections: 4096,
            grpc_max_connections: 4096,
            grpc_max_connection_age: Duration::from_secs(30 * 60),
            tcp_keepalive: Duration::from_secs(60),
            metrics_addr: None,
            reflection: true,
            rate_limits: RateLimits {
                start_authorization: 30,
                refresh: 60,
                callback: 60,
            },
            mcp_allowed_hosts: Vec::new(),
        }
    }
}

/// The validated configuration the app is built from.
#[derive(Clone)]
pub struct Config {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// Holds the database password: never logged.
    pub database_url: Secret<String>,
    pub pool: PoolSettings,
    pub jwt_secret: Option<Secret<String>>,
    pub jwks_url: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    /// Longest accepted caller-token lifetime.
    pub jwt_max_ttl: Duration,
    /// How long JWKS keys are trusted while the key set cannot be fetched.
    pub jwks_max_stale: Duration,
    pub keyring: KeyRing,
    pub public_url: Url,
    pub frontend_url: Url,
    pub cors_origins: Vec<String>,
    pub limits: Limits,
    pub network: Network,
    /// OAuth providers by id ("zoom", "google", ..., "custom"), from `FH_PROVIDER_<P>_*`.
    pub providers: std::collections::BTreeMap<String, crate::oauth::ProviderSettings>,
    pub oauth: crate::oauth::OAuthSettings,
    pub connectors: crate::connectors::ConnectorConfig,
    pub health: crate::service::health::HealthSettings,
}

impl Settings {
    /// Validates everything once; creates development secrets in the data directory when none
    /// are configured, warning loudly.
    pub fn into_config(self) -> anyhow::Result<Config> {
        let jwt_secret = match (self.jwt_secret, &self.jwks_url) {
            (Some(s), _) if s.len() < 32 => bail!("FH_JWT_SECRET must be at least 32 bytes"),
            (Some(s), _) => Some(Secret::new(s)),
            (None, Some(_)) => None,
            (None, None) => Some(Secret::new(dev_secret(
                &self.data_dir,
                "jwt-secret",
                || {
                    use base64::Engine;
                    let bytes: [u8; 32] = rand::random();
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                },
            )?)),
        };
        let keys = match (self.encryption_keys, &self.encryption_keys_file) {
            (Some(k), _) => Secret::new(k),
            (None, Some(path)) => Secret::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading FH_ENCRYPTION_KEYS_FILE {}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => Secret::new(dev_secret(
                &self.data_dir,
                "encryption-keys",
                KeyRing::generate_entry,
            )?),
        };
        let keyring = KeyRing::parse(keys.expose(), self.encryption_active_key.as_deref())
            .context("FH_ENCRYPTION_KEYS is invalid")?;
        let mut cors_origins: Vec<String> = self
            .cors_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        cors_origins.push(self.frontend_url.origin().ascii_serialization());
        cors_origins.sort();
        cors_origins.dedup();
        Ok(Config {
            grpc_addr: self.grpc_addr,
            http_addr: self.http_addr,
            database_url: Secret::new(self.database_url),
            pool: PoolSettings {
                max_connections: self.db_max_connections.max(1),
                acquire_timeout: self.db_acquire_timeout,
            },
            jwt_secret,
            jwks_url: self.jwks_url,
            jwt_issuer: self.jwt_issuer,
            jwt_audience: self.jwt_audience,
            jwt_max_ttl: self.jwt_max_ttl,
            jwks_max_stale: self.jwks_max_stale,
            keyring,
            public_url: self.public_url,
            frontend_url: self.frontend_url,
            cors_origins,
            limits: Limits {
                request_timeout: self.request_timeout,
                shutdown_grace: self.shutdown_grace,
                max_message_bytes: self.max_message_bytes,
                concurrency_limit: self.concurrency_limit.max(1),
                max_concurrent_streams: self.max_concurrent_streams.max(1),
            },
            network: Network {
                header_timeout: self.http_header_timeout,
                idle_timeout: self.http_idle_timeout,
                http_max_connections: self.http_max_connections.max(1),
                grpc_max_connections: self.grpc_max_connections.max(1),
                grpc_max_connection_age: self.grpc_max_connection_age,
                tcp_keepalive: self.tcp_keepalive,
                metrics_addr: self.metrics_addr,
                reflection: self.reflection,
                rate_limits: RateLimits {
                    start_authorization: self.rate_limit_start_authorization,
                    refresh: self.rate_limit_refresh,
                    callback: self.rate_limit_callback,
                },
                mcp_allowed_hosts: self.mcp_allowed_hosts,
            },
            connectors: self.connectors.into_config()?,
            providers: crate::oauth::settings::from_env(std::env::vars())?,
            oauth: crate::oauth::OAuthSettings {
                refresh_ahead: self.refresh_ahead,
                refresh_interval: self.refresh_interval,
                refresh_keepalive: self.refresh_keepalive,
                ..Default::default()
            },
            health: crate::service::health::HealthSettings {
                sweep: self.health_sweep,
                check_interval: self.health_check_interval.max(Duration::from_secs(1)),
                hysteresis: crate::domain::Hysteresis {
                    degraded_after: self.health_degraded_after.max(1),
                    recovered_after: self.health_recovered_after.max(1),
                },
                sweep_concurrency: self.health_sweep_concurrency.max(1),
                history_retention: self.health_history_retention,
                event_retention: self.health_event_retention,
                stream_buffer: self.health_stream_buffer.max(1),
            },
        })
    }
}

/// Reads `dir/name`, or creates it (0600) with `make()`. Development only: says so loudly.
fn dev_secret(dir: &Path, name: &str, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    let path = dir.join(name);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        tracing::warn!(path = %path.display(), "using the DEVELOPMENT {name} from the data directory; configure it explicitly in production");
        return Ok(existing.trim().to_owned());
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    let value = make();
    write_private(&path, &value).with_context(|| format!("writing {}", path.display()))?;
    tracing::warn!(path = %path.display(), "CREATED a DEVELOPMENT {name}: fine for a laptop, never for production");
    // Read back: when another process created it first, its value is the one to use.
    Ok(std::fs::read_to_string(&path)?.trim().to_owned())
}

fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    // create_new: two processes racing both succeed only once; the loser re-reads.
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    match opts.open(path) {
        Ok(mut f) => f.write_all(value.as_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

//! MCP over Streamable HTTP at `/mcp` on the REST port (rmcp as a tower service): every
//! connector operation of the caller's connected platforms as a tool, behind the same bearer
//! JWT, stateless so that any replica answers any request of any revision.
//!
//! - `auth`: the bearer check with the 401 discovery challenge, and the RFC 9728 metadata.
//! - `tools`: the catalogue (names, schemas, annotations) and the caller's filtered list.
//! - `server`: the rmcp `ServerHandler`: `tools/list` and `tools/call` onto the use cases.

mod auth;
pub mod server;
pub mod tools;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use reqwest::Url;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::api::auth::Authenticator;
use crate::service::Health;
use crate::service::operations::Operations;

/// Where MCP is served, who may reach it, and what it serves from.
pub struct McpSettings {
    /// `FH_PUBLIC_URL`: the resource URL and the first allowed `Host`.
    pub public_url: Url,
    /// `FH_MCP_ALLOWED_HOSTS`: further `Host` values (names a proxy forwards as they are).
    pub extra_hosts: Vec<String>,
    /// `FH_CORS_ORIGINS` (with the frontend's): the browser origins allowed.
    pub origins: Vec<String>,
    pub issuer: Option<String>,
    pub max_body_bytes: usize,
}

/// The path of the endpoint and of its protected-resource metadata (RFC 9728 section 3.1:
/// the well-known prefix inserted before the resource's path).
pub const PATH: &str = "/mcp";
const METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";
const METADATA_ROOT: &str = "/.well-known/oauth-protected-resource";

/// `/mcp` behind the MCP auth middleware, and the two metadata routes (public).
pub fn routes<S: Clone + Send + Sync + 'static>(
    settings: McpSettings,
    auth: Arc<Authenticator>,
    operations: Operations,
    health: Health,
    shutdown: CancellationToken,
) -> Router<S> {
    let base = settings
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    let discovery = Arc::new(auth::Discovery {
        auth,
        resource: format!("{base}{PATH}"),
        metadata_url: format!("{base}{METADATA_PATH}"),
        issuer: settings.issuer.clone(),
    });
    let gateway = server::Gateway {
        catalogue: Arc::new(tools::Catalogue::new(operations.list(None))),
        operations,
        health,
    };
    let config = StreamableHttpServerConfig::default()
        // No sessions: every POST is self-contained, so no replica needs another's memory.
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts(allowed_hosts(&settings))
        .with_allowed_origins(allowed_origins(&settings.origins))
        .enforce_origin_validation()
        .with_max_request_body_bytes(settings.max_body_bytes)
        .with_cancellation_token(shutdown);
    let mcp = StreamableHttpService::new(
        move || Ok(gateway.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    let endpoint = Router::new()
        .route_service(PATH, mcp)
        .route_layer(axum::middleware::from_fn(auth::parse_errors))
        .route_layer(axum::middleware::from_fn_with_state(
            discovery.clone(),
            auth::require_caller,
        ));
    let metadata = Router::new()
        .route(METADATA_PATH, get(auth::metadata))
        .route(METADATA_ROOT, get(auth::metadata))
        .with_state(discovery);
    endpoint
        .merge(metadata)
        .route_layer(axum::middleware::from_fn(
            crate::api::observe::expose_matched_path,
        ))
}

/// Names of this machine: a loopback public URL (development) accepts each of them.
const LOOPBACK: [&str; 3] = ["127.0.0.1", "localhost", "::1"];

/// The public URL's host (any port: the port a proxy forwards is not the listener's), and the
/// extra hosts as given. Nothing else: a DNS-rebound name is refused.
fn allowed_hosts(settings: &McpSettings) -> Vec<String> {
    let public = settings.public_url.host_str().unwrap_or_default();
    let public = public.trim_start_matches('[').trim_end_matches(']');
    let names: Vec<String> = if LOOPBACK.contains(&public) {
        LOOPBACK.map(str::to_owned).to_vec()
    } else {
        vec![public.to_owned()]
    };
    names
        .into_iter()
        .chain(
            settings
                .extra_hosts
                .iter()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty()),
        )
        .collect()
}

/// Origins with their port spelt out: rmcp reads a port-less entry as "any port".
fn allowed_origins(origins: &[String]) -> Vec<String> {
    origins
        .iter()
        .filter_map(|o| Url::parse(o).ok())
        .filter_map(|u| {
            let port = u.port_or_known_default()?;
            Some(format!("{}://{}:{port}", u.scheme(), u.host_str()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{McpSettings, allowed_hosts, allowed_origins};

    fn hosts(public: &str, extra: &[&str]) -> Vec<String> {
        allowed_hosts(&McpSettings {
            public_url: public.parse().expect("a url"),
            extra_hosts: extra.iter().map(|h| (*h).to_owned()).collect(),
            origins: Vec::new(),
            issuer: None,
            max_body_bytes: 1,
        })
    }

    #[test]
    fn the_public_host_and_the_extra_ones_are_allowed_and_loopback_only_for_a_loopback_url() {
        assert_eq!(
            hosts("https://api.example.com/", &["mcp.internal", " "]),
            ["api.example.com", "mcp.internal"]
        );
        assert_eq!(
            hosts("http://127.0.0.1:8080", &[]),
            ["127.0.0.1", "localhost", "::1"]
        );
    }

    #[test]
    fn origins_get_their_default_port() {
        assert_eq!(
            allowed_origins(&[
                "https://app.example.com".to_owned(),
                "http://localhost:3000".to_owned(),
                "not a url".to_owned(),
            ]),
            ["https://app.example.com:443", "http://localhost:3000"]
        );
    }
}

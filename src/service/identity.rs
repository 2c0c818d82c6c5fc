//! Who credentials act as before they are stored (a new OAuth grant, a pasted token), asked of
//! the provider through the platform's connection test: the token response of Zoom, Discord,
//! Monday and Loom names no account, and a pasted Slack token's team is only a claim.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::time::Instant;

use crate::connectors::{HttpCore, Identity, Registry};
use crate::domain::{ConnectionType, Credentials, Integration, Platform, Secret, WorkspaceId};
use crate::error::Error;

/// Cheap to clone; shares the connectors' registry and HTTP core (so the egress guard, breakers
/// and deadlines apply to these calls too).
#[derive(Clone)]
pub struct Identifier {
    registry: Arc<Registry>,
    core: Arc<HttpCore>,
}

impl Identifier {
    pub fn new(registry: Arc<Registry>, core: Arc<HttpCore>) -> Self {
        Self { registry, core }
    }

    /// Runs `platform`'s connection test with `fields` once, within the connectors' default
    /// deadline. Platforms without a connector answer Unimplemented.
    pub async fn identify(
        &self,
        workspace: WorkspaceId,
        platform: Platform,
        connection: ConnectionType,
        fields: &BTreeMap<&str, Secret<String>>,
    ) -> Result<Identity, Error> {
        let names = fields.keys().map(|k| (*k).to_owned()).collect();
        let integration = Integration::provisional(workspace, platform, connection, names);
        let values = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let deadline = Instant::now() + self.core.policy().default_deadline;
        self.registry
            .identify(
                self.core.clone(),
                Credentials::new(integration, values),
                deadline,
            )
            .await
    }
}

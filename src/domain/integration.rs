//! An integration as every layer sees it: no credential values, only the names of the fields set.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{ConnectionType, HealthState, IntegrationId, IntegrationStatus, Platform, WorkspaceId};

/// An integration as stored. Holds no credential values, only the names of the fields set.
#[derive(Clone, Debug)]
pub struct Integration {
    pub id: IntegrationId,
    pub workspace_id: WorkspaceId,
    pub platform: Platform,
    pub connection_type: ConnectionType,
    pub status: IntegrationStatus,
    pub status_reason: Option<String>,
    pub display_name: String,
    pub metadata: Map<String, Value>,
    pub provider_account_id: String,
    pub scopes: Vec<String>,
    pub health_state: HealthState,
    /// Why the last check failed, or the last lifecycle change; None when healthy.
    pub health_reason: Option<String>,
    pub health_message: String,
    /// When the sweep probes it next.
    pub next_check_at: DateTime<Utc>,
    /// Consecutive transient failures and successes: the state machine's memory.
    pub health_failures: u32,
    pub health_successes: u32,
    pub credential_fields: Vec<String>,
    pub credential_expires_at: Option<DateTime<Utc>>,
    /// Bumped whenever the tokens are replaced; internal, for refresh compare-and-swap.
    pub credential_version: i64,
    pub last_check_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Integration {
    /// Its health as the state machine sees it.
    pub fn health(&self) -> super::Health {
        super::Health {
            state: self.health_state,
            failures: self.health_failures,
            successes: self.health_successes,
        }
    }

    /// An integration not stored yet, for calls made with credentials before they are kept (who
    /// a new grant or a pasted token acts as). `credential_fields` name the fields it holds.
    pub fn provisional(
        workspace_id: WorkspaceId,
        platform: Platform,
        connection_type: ConnectionType,
        credential_fields: Vec<String>,
    ) -> Self {
        let now = Utc::now();
        Self {
            id: IntegrationId::new(),
            workspace_id,
            platform,
            connection_type,
            status: IntegrationStatus::Connected,
            status_reason: None,
            display_name: platform.title().to_owned(),
            metadata: Map::new(),
            provider_account_id: String::new(),
            scopes: Vec::new(),
            health_state: super::HealthState::Unknown,
            health_reason: None,
            health_message: String::new(),
            next_check_at: now,
            health_failures: 0,
            health_successes: 0,
            credential_fields,
            credential_expires_at: None,
            credential_version: 0,
            last_check_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// `workspaces/{w}/integrations/{id}`.
    pub fn resource_name(&self) -> String {
        format!("workspaces/{}/integrations/{}", self.workspace_id, self.id)
    }
}

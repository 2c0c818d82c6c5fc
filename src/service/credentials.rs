//! The one way to get usable credentials for acting on a platform: connectors call `fresh`
//! before a request and `after_rejection` when the provider answered 401.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::PgPool;

use crate::domain::{Caller, Integration, IntegrationId, IntegrationStatus};
use crate::error::{Error, ErrorKind};
use crate::secrets::{KeyRing, Secret};
use crate::store;

/// Opened credentials of one integration. They never leave the service: no response, log line
/// or error may contain a value.
pub struct Credentials {
    pub integration: Integration,
    fields: BTreeMap<String, Secret<String>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("integration", &self.integration.id)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Credentials {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(|s| s.expose().as_str())
    }

    /// A field the platform cannot work without; its absence means the integration must be
    /// reconnected.
    pub fn require(&self, field: &str) -> Result<&str, Error> {
        self.get(field).ok_or_else(|| {
            Error::new(
                ErrorKind::FailedPrecondition,
                "NEEDS_REAUTH",
                format!("the integration has no {field}; reconnect it"),
            )
        })
    }
}

#[derive(Clone)]
pub struct CredentialAccess {
    db: PgPool,
    keyring: Arc<KeyRing>,
}

impl CredentialAccess {
    pub fn new(db: PgPool, keyring: Arc<KeyRing>) -> Self {
        Self { db, keyring }
    }

    /// The integration (which must be the caller's) and its opened credentials, ready to use.
    pub async fn fresh(&self, caller: &Caller, id: IntegrationId) -> Result<Credentials, Error> {
        let integration = store::integrations::get(&self.db, caller.workspace_id, id)
            .await?
            .ok_or_else(Error::integration_not_found)?;
        self.open(integration).await
    }

    /// The provider rejected `stale` as unauthorized. Credentials that cannot be renewed here
    /// (API keys, pasted tokens) need a person: NEEDS_REAUTH.
    pub async fn after_rejection(&self, stale: &Credentials) -> Result<Credentials, Error> {
        Err(Error::new(
            ErrorKind::FailedPrecondition,
            "NEEDS_REAUTH",
            format!("{} rejected the integration's credentials; reconnect it", stale.integration.platform.title()),
        ))
    }

    async fn open(&self, integration: Integration) -> Result<Credentials, Error> {
        if integration.status == IntegrationStatus::Revoked {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                "INTEGRATION_REVOKED",
                "the integration was disconnected",
            ));
        }
        let fields = store::credentials::open_all(&self.db, &self.keyring, integration.id).await?;
        Ok(Credentials { integration, fields })
    }
}

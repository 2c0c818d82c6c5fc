//! The one way to get usable credentials for acting on a platform: `fresh` before a call, and
//! (as the connectors' `Renewal`) `after_rejection` when the provider answered 401.

use std::sync::Arc;

use chrono::Utc;
use futures::future::BoxFuture;
use sqlx::PgPool;

use super::oauth::OAuth;
use crate::connectors::Renewal;
use crate::domain::{
    Caller, ConnectionType, Credentials, Integration, IntegrationId, IntegrationStatus, WorkspaceId,
};
use crate::error::{Error, ErrorKind, Reason};
use crate::secrets::KeyRing;
use crate::store;

/// Access tokens this close to expiry are refreshed before use.
const EXPIRY_SKEW: chrono::Duration = chrono::Duration::seconds(60);

#[derive(Clone)]
pub struct CredentialAccess {
    db: PgPool,
    keyring: Arc<KeyRing>,
    oauth: OAuth,
}

impl CredentialAccess {
    /// `oauth` refreshes OAuth tokens (before expiry, and after a provider's 401).
    pub fn new(db: PgPool, keyring: Arc<KeyRing>, oauth: OAuth) -> Self {
        Self { db, keyring, oauth }
    }

    /// The OAuth refresher, when this integration's tokens can be refreshed at all.
    fn refresher(&self, integration: &Integration) -> Option<&OAuth> {
        let refreshable = integration.connection_type == ConnectionType::Oauth
            && integration
                .credential_fields
                .iter()
                .any(|f| f == "refresh_token");
        refreshable.then_some(&self.oauth)
    }

    /// The integration (which must be the caller's) and its opened credentials, ready to use.
    pub async fn fresh(&self, caller: &Caller, id: IntegrationId) -> Result<Credentials, Error> {
        self.fresh_in(caller.workspace_id, id).await
    }

    /// As `fresh`, for the service's own work (health probes) in a workspace.
    pub async fn fresh_in(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<Credentials, Error> {
        let creds = self.load(workspace, id).await?;
        let expiring = creds
            .integration
            .credential_expires_at
            .is_some_and(|t| t <= Utc::now() + EXPIRY_SKEW);
        if expiring && let Some(oauth) = self.refresher(&creds.integration) {
            // Concurrent callers share one refresh (see OAuth::refresh), across replicas too.
            oauth
                .refresh(id, Some(creds.integration.credential_version))
                .await?;
            return self.load(workspace, id).await;
        }
        Ok(creds)
    }

    /// The provider rejected `stale` as unauthorized. OAuth tokens are refreshed once (or the
    /// refresh someone else did meanwhile is picked up); credentials that cannot be renewed here
    /// (API keys, pasted tokens) need a person: NEEDS_REAUTH.
    pub async fn after_rejection(&self, stale: &Credentials) -> Result<Credentials, Error> {
        if let Some(oauth) = self.refresher(&stale.integration) {
            oauth
                .refresh(
                    stale.integration.id,
                    Some(stale.integration.credential_version),
                )
                .await?;
            return self
                .load(stale.integration.workspace_id, stale.integration.id)
                .await;
        }
        Err(Error::new(
            ErrorKind::FailedPrecondition,
            Reason::NeedsReauth,
            format!(
                "{} rejected the integration's credentials; reconnect it",
                stale.integration.platform.title()
            ),
        ))
    }

    /// The integration without its credentials, when it is the workspace's.
    pub async fn integration(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<Option<Integration>, Error> {
        store::integrations::get(&self.db, workspace, id).await
    }

    /// The integration and its opened credentials, in one query.
    async fn load(&self, workspace: WorkspaceId, id: IntegrationId) -> Result<Credentials, Error> {
        let (integration, fields) =
            store::integrations::get_opened(&self.db, &self.keyring, workspace, id)
                .await?
                .ok_or_else(Error::integration_not_found)?;
        if integration.status == IntegrationStatus::Revoked {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                Reason::IntegrationRevoked,
                "the integration was disconnected",
            ));
        }
        Ok(Credentials::new(integration, fields))
    }
}

impl Renewal for CredentialAccess {
    fn renew<'a>(&'a self, stale: &'a Credentials) -> BoxFuture<'a, Result<Credentials, Error>> {
        Box::pin(self.after_rejection(stale))
    }
}

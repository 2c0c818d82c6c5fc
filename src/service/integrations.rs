//! Connect, list, read, update and disconnect integrations.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use sqlx::PgPool;

use super::identity::Identifier;
use super::oauth::OAuth;
use super::paging;
use crate::connectors::Identity;
use crate::domain::{
    Caller, ConnectionType, Integration, IntegrationId, IntegrationStatus, Platform, RequestId,
    Secret, TokenRevocation, credential_spec,
};
use crate::error::{Error, ErrorKind, FieldViolation, Reason};
use crate::secrets::KeyRing;
use crate::store::{self, integrations::NewIntegration};

/// Serialized metadata larger than this is refused.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
const MAX_DISPLAY_NAME_CHARS: usize = 200;
const MAX_ACCOUNT_ID_CHARS: usize = 200;

pub struct ConnectInput {
    pub platform: Option<Platform>,
    pub credentials: HashMap<String, String>,
    pub display_name: String,
    pub metadata: Option<Map<String, Value>>,
    pub provider_account_id: String,
}

pub struct ListInput {
    pub page_size: i64,
    pub page_token: String,
    pub platform: Option<Platform>,
    pub status: Option<IntegrationStatus>,
}

/// Fields to change; `None` leaves a field as it is.
pub struct UpdateInput {
    pub display_name: Option<String>,
    /// Merged as an RFC 7386 merge patch: keys set to null are removed.
    pub metadata_patch: Option<Map<String, Value>>,
    /// How the caller's transport names these fields, so errors point at what it sent.
    pub names: UpdateFieldNames,
}

/// The names an update's fields have in one transport's requests.
#[derive(Clone, Copy, Debug)]
pub struct UpdateFieldNames {
    pub display_name: &'static str,
    pub metadata: &'static str,
    /// Where "nothing to update" is reported: the gRPC field mask, the REST body.
    pub selection: &'static str,
}

#[derive(Clone)]
pub struct Integrations {
    db: PgPool,
    keyring: Arc<KeyRing>,
    oauth: OAuth,
    identifier: Identifier,
}

fn check_display_name(field: &str, name: &str) -> Result<String, FieldViolation> {
    let name = name.trim();
    if name.is_empty() {
        return Err(FieldViolation::new(field, "must not be empty"));
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {MAX_DISPLAY_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

fn check_metadata(field: &str, metadata: &Map<String, Value>) -> Result<(), FieldViolation> {
    let size = serde_json::to_vec(metadata)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_METADATA_BYTES {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {MAX_METADATA_BYTES} bytes as JSON"),
        ));
    }
    Ok(())
}

/// RFC 7386 merge patch of objects.
fn merge_patch(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.remove(&k);
            }
            Value::Object(p) => match target.get_mut(&k) {
                Some(Value::Object(t)) => merge_patch(t, p),
                _ => {
                    let mut t = Map::new();
                    merge_patch(&mut t, p);
                    target.insert(k, Value::Object(t));
                }
            },
            other => {
                target.insert(k, other);
            }
        }
    }
}

fn filters_key(platform: Option<Platform>, status: Option<IntegrationStatus>) -> String {
    format!(
        "p={};s={}",
        platform.map_or("", Platform::as_str),
        status.map_or("", IntegrationStatus::as_str)
    )
}

impl Integrations {
    /// Disconnecting an OAuth integration revokes its tokens at the provider through `oauth`;
    /// `identifier` asks Slack whose a pasted token is.
    pub fn new(db: PgPool, keyring: Arc<KeyRing>, oauth: OAuth, identifier: Identifier) -> Self {
        Self {
            db,
            keyring,
            oauth,
            identifier,
        }
    }

    pub async fn connect(
        &self,
        caller: &Caller,
        rid: &RequestId,
        input: ConnectInput,
    ) -> Result<Integration, Error> {
        caller.require_member()?;
        let platform = input
            .platform
            .ok_or_else(|| Error::invalid_field("platform", "is required"))?;
        let spec = credential_spec(platform).ok_or_else(|| {
            Error::invalid_field(
                "platform",
                format!("{platform} connects through OAuth: use OAuthService.StartAuthorization"),
            )
        })?;
        let mut violations = Vec::new();
        let display_name = if input.display_name.is_empty() {
            Ok(platform.title().to_owned())
        } else {
            check_display_name("display_name", &input.display_name)
        }
        .map_err(|v| violations.push(v))
        .ok();
        let metadata = input.metadata.unwrap_or_default();
        if let Err(v) = check_metadata("metadata", &metadata) {
            violations.push(v);
        }
        let account_in = input.provider_account_id.trim();
        if account_in.chars().count() > MAX_ACCOUNT_ID_CHARS
            || account_in.chars().any(char::is_control)
        {
            violations.push(FieldViolation::new(
                "provider_account_id",
                "must be at most 200 printable characters",
            ));
        }
        let creds = match spec.validate(input.credentials) {
            Ok(c) => Some(c),
            Err(e) => {
                violations.extend(e.violations().iter().cloned());
                None
            }
        };
        let (Some(display_name), Some(creds), true) = (display_name, creds, violations.is_empty())
        else {
            return Err(Error::invalid_fields(violations));
        };
        let (account, bot_user_id) = if platform == Platform::Slack {
            let claimed = creds.provider_account_id.as_deref();
            let verified = self.verify_slack(caller, &creds.fields, claimed).await?;
            (verified.account.unwrap_or_default(), verified.bot_user)
        } else {
            let account = creds
                .provider_account_id
                .clone()
                .unwrap_or_else(|| account_in.to_owned());
            (account, None)
        };

        let id = IntegrationId::new();
        let mut tx = self.db.begin().await?;
        store::workspaces::ensure(&mut tx, caller.workspace_id).await?;
        store::integrations::insert(
            &mut tx,
            &NewIntegration {
                id,
                workspace_id: caller.workspace_id,
                platform,
                display_name: &display_name,
                metadata: &metadata,
                provider_account_id: &account,
                scopes: &[],
                credential_expires_at: None,
                created_by: caller.user_id,
                bot_user_id: bot_user_id.as_deref(),
            },
        )
        .await?;
        store::credentials::put(&mut tx, &self.keyring, id, &creds.fields, None).await?;
        let fields: Vec<&str> = creds.fields.keys().copied().collect();
        store::audit::record(
            &mut tx,
            caller,
            Some(id),
            "integration.connected",
            json!({"platform": platform.as_str(), "credential_fields": fields}),
            rid,
        )
        .await?;
        let integration = store::integrations::get(&mut *tx, caller.workspace_id, id)
            .await?
            .ok_or_else(|| Error::internal(anyhow::anyhow!("inserted integration vanished")))?;
        tx.commit().await?;
        tracing::info!(integration_id = %id, platform = %platform, "integration connected");
        Ok(integration)
    }

    /// A pasted Slack token's team and bot user, from Slack's `auth.test`: they decide which
    /// connections share a bot token (and so whether a disconnect may revoke it), so they are
    /// never taken from the caller. A `team_id` the caller gave must match.
    async fn verify_slack(
        &self,
        caller: &Caller,
        fields: &BTreeMap<&'static str, Secret<String>>,
        claimed_team: Option<&str>,
    ) -> Result<Identity, Error> {
        let identity = self
            .identifier
            .identify(
                caller.workspace_id,
                Platform::Slack,
                ConnectionType::Direct,
                fields,
            )
            .await
            .map_err(|e| match e.reason() {
                Reason::NeedsReauth => Error::invalid_field(
                    "credentials.access_token",
                    "Slack did not accept this token",
                ),
                _ => e,
            })?;
        let Some(team) = identity.account.as_deref() else {
            return Err(Error::new(
                ErrorKind::Unavailable,
                Reason::ProviderBadResponse,
                "Slack's auth.test named no team for this token",
            ));
        };
        if claimed_team.is_some_and(|c| c != team) {
            return Err(Error::invalid_field(
                "credentials.team_id",
                "is not the team of this token (Slack's auth.test names another)",
            ));
        }
        Ok(identity)
    }

    pub async fn list(
        &self,
        caller: &Caller,
        input: ListInput,
    ) -> Result<(Vec<Integration>, String), Error> {
        let size = paging::page_size("page_size", input.page_size)?;
        let filters = filters_key(input.platform, input.status);
        let after = paging::decode("page_token", &input.page_token, &filters)?.map(IntegrationId);
        // One extra row tells whether another page exists without a count query.
        let mut rows = store::integrations::list(
            &self.db,
            caller.workspace_id,
            after,
            input.platform,
            input.status,
            size + 1,
        )
        .await?;
        let next = if rows.len() as i64 > size {
            rows.truncate(size as usize);
            rows.last()
                .map(|last| paging::encode(last.id.0, &filters))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((rows, next))
    }

    pub async fn get(&self, caller: &Caller, id: IntegrationId) -> Result<Integration, Error> {
        store::integrations::get(&self.db, caller.workspace_id, id)
            .await?
            .ok_or_else(Error::integration_not_found)
    }

    pub async fn update(
        &self,
        caller: &Caller,
        rid: &RequestId,
        id: IntegrationId,
        input: UpdateInput,
    ) -> Result<Integration, Error> {
        caller.require_member()?;
        let names = input.names;
        if input.display_name.is_none() && input.metadata_patch.is_none() {
            return Err(Error::invalid_field(
                names.selection,
                "names nothing to update (display_name, metadata)",
            ));
        }
        let display_name = input
            .display_name
            .map(|n| check_display_name(names.display_name, &n))
            .transpose()
            .map_err(|v| Error::invalid_fields(vec![v]))?;
        if let Some(patch) = &input.metadata_patch {
            check_metadata(names.metadata, patch).map_err(|v| Error::invalid_fields(vec![v]))?;
        }
        let mut tx = self.db.begin().await?;
        let current = store::integrations::get_for_update(&mut tx, caller.workspace_id, id)
            .await?
            .ok_or_else(Error::integration_not_found)?;
        let mut metadata = current.metadata.clone();
        let mut changed = Vec::new();
        if let Some(patch) = input.metadata_patch {
            merge_patch(&mut metadata, patch);
            check_metadata(names.metadata, &metadata)
                .map_err(|v| Error::invalid_fields(vec![v]))?;
            changed.push("metadata");
        }
        let name = match display_name {
            Some(n) => {
                changed.push("display_name");
                n
            }
            None => current.display_name.clone(),
        };
        store::integrations::update_details(&mut tx, id, &name, &metadata).await?;
        store::audit::record(
            &mut tx,
            caller,
            Some(id),
            "integration.updated",
            json!({"fields": changed}),
            rid,
        )
        .await?;
        let updated = store::integrations::get(&mut *tx, caller.workspace_id, id)
            .await?
            .ok_or_else(Error::integration_not_found)?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Disconnects: marks the integration as disconnecting (no refresh starts from then on),
    /// waits for a refresh in flight and holds the refresh lease, revokes the current tokens at
    /// the provider, then destroys the credentials and marks the integration revoked in one
    /// transaction, whatever the provider answered. No grant the service received outlives it:
    /// tokens that a refresh or a reconnect stored meanwhile are revoked too, and a refresh that
    /// lost the race revokes its own. Runs in a task of its own, so a caller that gives up
    /// leaves nothing half done. Disconnecting twice is not an error; the second time nothing
    /// is left to revoke.
    pub async fn disconnect(
        &self,
        caller: &Caller,
        rid: &RequestId,
        id: IntegrationId,
    ) -> Result<(Integration, Vec<TokenRevocation>), Error> {
        caller.require_admin()?;
        let (this, caller, rid) = (self.clone(), caller.clone(), rid.clone());
        tokio::spawn(async move { this.disconnect_now(&caller, &rid, id).await })
            .await
            .unwrap_or_else(|e| Err(Error::internal(e)))
    }

    async fn disconnect_now(
        &self,
        caller: &Caller,
        rid: &RequestId,
        id: IntegrationId,
    ) -> Result<(Integration, Vec<TokenRevocation>), Error> {
        if !store::refresh::mark_disconnecting(&self.db, caller.workspace_id, id).await? {
            // Already revoked, or not the caller's (NotFound).
            return Ok((self.get(caller, id).await?, Vec::new()));
        }
        let Some(lease) = self.oauth.hold_for_disconnect(id).await? else {
            return Ok((self.get(caller, id).await?, Vec::new()));
        };
        let result = self.revoke_and_destroy(caller, rid, id).await;
        if result.is_err() {
            // Still marked: no refresh starts, and disconnecting again finishes the job.
            self.oauth.give_back(id, lease).await;
        }
        result
    }

    /// Provider calls happen outside the transaction: no row lock is held across the network.
    /// The final transaction is a compare-and-set on the credential version the revoked tokens
    /// were read at; a reconnect that stored new tokens meanwhile sends us round again.
    async fn revoke_and_destroy(
        &self,
        caller: &Caller,
        rid: &RequestId,
        id: IntegrationId,
    ) -> Result<(Integration, Vec<TokenRevocation>), Error> {
        let mut revocations = Vec::new();
        for _ in 0..DISCONNECT_ROUNDS {
            let (read, creds) =
                store::integrations::get_opened(&self.db, &self.keyring, caller.workspace_id, id)
                    .await?
                    .ok_or_else(Error::integration_not_found)?;
            if read.status == IntegrationStatus::Revoked {
                return Ok((read, revocations));
            }
            revocations.extend(if read.connection_type == ConnectionType::Oauth {
                self.oauth.revoke_upstream(&read, &creds).await
            } else {
                local_only_revocations(&read)
            });
            let mut tx = self.db.begin().await?;
            let current = store::integrations::get_for_update(&mut tx, caller.workspace_id, id)
                .await?
                .ok_or_else(Error::integration_not_found)?;
            if current.status == IntegrationStatus::Revoked {
                return Ok((current, revocations));
            }
            if current.credential_version != read.credential_version {
                continue;
            }
            let destroyed = store::credentials::delete_all(&mut tx, id).await?;
            store::integrations::mark_revoked(&mut tx, id).await?;
            store::audit::record(
                &mut tx,
                caller,
                Some(id),
                "integration.disconnected",
                json!({
                    "platform": current.platform.as_str(),
                    "credentials_destroyed": destroyed,
                    "revoked_upstream": revocations.iter().filter(|r| r.revoked_upstream).map(|r| &r.token_type).collect::<Vec<_>>(),
                }),
                rid,
            )
            .await?;
            let after = store::integrations::get(&mut *tx, caller.workspace_id, id)
                .await?
                .ok_or_else(Error::integration_not_found)?;
            tx.commit().await?;
            tracing::info!(integration_id = %id, platform = %current.platform, "integration disconnected");
            return Ok((after, revocations));
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            Reason::RefreshInProgress,
            "the integration kept receiving new tokens while it was disconnected; disconnect it again",
        ))
    }
}

/// Rounds of revoking before a disconnect gives up: each one means a reconnect stored new
/// tokens while the previous ones were being revoked.
const DISCONNECT_ROUNDS: usize = 3;

/// API keys and pasted tokens have no revocation endpoint we may call: they are revoked in the
/// provider's dashboard. Say so per credential, so nobody believes they are dead upstream.
fn local_only_revocations(integration: &Integration) -> Vec<TokenRevocation> {
    let secret_fields: Vec<&str> = credential_spec(integration.platform)
        .map(|s| {
            s.fields
                .iter()
                .filter(|f| f.secret)
                .map(|f| f.name)
                .collect()
        })
        .unwrap_or_default();
    integration
        .credential_fields
        .iter()
        .filter(|f| secret_fields.contains(&f.as_str()))
        .map(|f| TokenRevocation {
            token_type: f.clone(),
            revoked_upstream: false,
            reason: Some(Reason::ProviderHasNoRevocation),
            message: format!(
                "{} has no revocation API for this credential; it was destroyed here, revoke it in the {} dashboard",
                integration.platform.title(),
                integration.platform.title()
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_merges_nested_objects_and_null_removes() {
        let mut t: Map<String, Value> =
            serde_json::from_value(json!({"a": 1, "b": {"c": 2, "d": 3}})).unwrap();
        let p: Map<String, Value> =
            serde_json::from_value(json!({"a": null, "b": {"c": 4}, "e": "x"})).unwrap();
        merge_patch(&mut t, p);
        assert_eq!(Value::Object(t), json!({"b": {"c": 4, "d": 3}, "e": "x"}));
    }
}

//! The authenticated data of a sealed value: which workspace, row and field it belongs to, in a
//! versioned layout so that old rows keep opening until `keys rewrap` moves them.

use uuid::Uuid;

use super::{KeyId, KeyringError};
use crate::domain::WorkspaceId;

/// Domain-separation prefix of the v1 AAD (row, field, key id).
const V1_PREFIX: &[u8; 16] = b"founderhouse/v1\0";
/// Domain-separation prefix of the v2 AAD (workspace, row, field, key id).
const V2_PREFIX: &[u8; 16] = b"founderhouse/v2\0";

/// AAD field of the PKCE verifier sealed in an `oauth_states` row.
const PKCE_VERIFIER: &str = "pkce_verifier";
/// AAD field of the authorization code sealed in an `oauth_handles` row.
const OAUTH_CODE: &str = "oauth_code";
/// AAD field of the token sealed in a `pending_revocations` row.
const PENDING_REVOCATION: &str = "pending_revocation";

/// The layout of a sealed value's AAD, stored next to it (`aad_version` columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AadVersion {
    /// Row id, field and key id. Opened, never written: rows from before v2 until rewrapped.
    V1,
    /// v1 plus the workspace id, so a row moved to another workspace does not open.
    V2,
}

impl AadVersion {
    /// What every new seal uses; rows under any other version need a rewrap.
    pub const CURRENT: AadVersion = AadVersion::V2;

    /// Parses the stored column.
    ///
    /// # Errors
    /// [`KeyringError::UnknownAadVersion`] for a number this build does not know.
    pub fn from_column(version: i16) -> Result<AadVersion, KeyringError> {
        match version {
            1 => Ok(AadVersion::V1),
            2 => Ok(AadVersion::V2),
            other => Err(KeyringError::UnknownAadVersion(other)),
        }
    }

    /// The value of the stored column.
    pub fn as_column(self) -> i16 {
        match self {
            AadVersion::V1 => 1,
            AadVersion::V2 => 2,
        }
    }
}

/// Binds a sealed value to the workspace, row and field it belongs to (goes into the AAD).
#[derive(Debug, Clone, Copy)]
pub struct SealContext<'a> {
    /// The tenant owning the row. Only v2 includes it.
    pub workspace_id: WorkspaceId,
    /// The row anchoring the value: an integration, an oauth state, a queued revocation.
    pub row_id: Uuid,
    pub field: &'a str,
}

impl SealContext<'static> {
    /// The PKCE verifier of the authorization state `state_id`.
    pub fn pkce_verifier(workspace_id: WorkspaceId, state_id: Uuid) -> Self {
        SealContext {
            workspace_id,
            row_id: state_id,
            field: PKCE_VERIFIER,
        }
    }

    /// The authorization code held by the one-time handle `handle_id` until it is redeemed.
    pub fn oauth_code(workspace_id: WorkspaceId, handle_id: Uuid) -> Self {
        SealContext {
            workspace_id,
            row_id: handle_id,
            field: OAUTH_CODE,
        }
    }

    /// The token of the queued revocation `revocation_id`.
    pub fn pending_revocation(workspace_id: WorkspaceId, revocation_id: Uuid) -> Self {
        SealContext {
            workspace_id,
            row_id: revocation_id,
            field: PENDING_REVOCATION,
        }
    }
}

impl<'a> SealContext<'a> {
    /// One credential field of an integration.
    pub fn credential(workspace_id: WorkspaceId, integration: Uuid, field: &'a str) -> Self {
        SealContext {
            workspace_id,
            row_id: integration,
            field,
        }
    }

    /// The AAD bytes for `version` under `key_id`:
    /// v1 = prefix || row id (16 bytes) || field || 0x00 || key id;
    /// v2 = prefix || workspace id (16 bytes) || row id (16 bytes) || field || 0x00 || key id.
    ///
    /// Unambiguous: prefix and uuids are fixed-size and a key id cannot contain 0x00, so the
    /// last 0x00 always separates field from key id; the prefixes differ, so a v1 value never
    /// opens as v2 or the other way round.
    pub(super) fn aad(&self, version: AadVersion, key_id: &KeyId) -> Vec<u8> {
        let id = key_id.as_str().as_bytes();
        let mut aad = Vec::with_capacity(16 + 16 + 16 + self.field.len() + 1 + id.len());
        match version {
            AadVersion::V1 => aad.extend_from_slice(V1_PREFIX),
            AadVersion::V2 => {
                aad.extend_from_slice(V2_PREFIX);
                aad.extend_from_slice(self.workspace_id.0.as_bytes());
            }
        }
        aad.extend_from_slice(self.row_id.as_bytes());
        aad.extend_from_slice(self.field.as_bytes());
        aad.push(0);
        aad.extend_from_slice(id);
        aad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> KeyId {
        KeyId::parse(id).expect("valid id")
    }

    #[test]
    fn the_v1_layout_is_the_one_rows_were_sealed_with_before_v2() {
        let row = Uuid::from_u128(0x0102);
        let ctx = SealContext::credential(WorkspaceId(Uuid::from_u128(9)), row, "api_key");
        let mut expected = b"founderhouse/v1\0".to_vec();
        expected.extend_from_slice(row.as_bytes());
        expected.extend_from_slice(b"api_key\0k1");
        assert_eq!(ctx.aad(AadVersion::V1, &key("k1")), expected);
    }

    #[test]
    fn the_v2_layout_adds_the_workspace_before_the_row() {
        let (workspace, row) = (Uuid::from_u128(9), Uuid::from_u128(0x0102));
        let ctx = SealContext::pending_revocation(WorkspaceId(workspace), row);
        let mut expected = b"founderhouse/v2\0".to_vec();
        expected.extend_from_slice(workspace.as_bytes());
        expected.extend_from_slice(row.as_bytes());
        expected.extend_from_slice(b"pending_revocation\0k1");
        assert_eq!(ctx.aad(AadVersion::V2, &key("k1")), expected);
    }

    #[test]
    fn only_known_versions_parse_and_they_round_trip() {
        for v in [AadVersion::V1, AadVersion::V2] {
            assert_eq!(AadVersion::from_column(v.as_column()).expect("known"), v);
        }
        for bad in [0, 3, -1] {
            let err = AadVersion::from_column(bad).expect_err("unknown version");
            assert!(matches!(err, KeyringError::UnknownAadVersion(n) if n == bad));
        }
        assert_eq!(AadVersion::CURRENT, AadVersion::V2);
    }
}

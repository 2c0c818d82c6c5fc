-- Sealed values name the layout of their AAD. v1 binds a value to its row, field and key id; v2
-- adds the workspace id, so a row moved to another workspace (by anyone with database write
-- access) no longer opens. `keys rewrap` moves v1 rows to v2. The default 1 describes the rows
-- that exist, and rows a replica of the previous release writes during a rolling upgrade (it
-- seals with v1); this release always writes 2.

ALTER TABLE credentials
    ADD COLUMN aad_version smallint NOT NULL DEFAULT 1 CHECK (aad_version IN (1, 2));
COMMENT ON COLUMN credentials.aad_version IS 'AAD layout: 1 = integration, field, key id; 2 = also the workspace id.';
COMMENT ON TABLE credentials IS 'One AES-256-GCM sealed value per credential field; AAD binds it to workspace (v2), integration, field and key id.';

ALTER TABLE oauth_states
    ADD COLUMN verifier_aad_version smallint NOT NULL DEFAULT 1 CHECK (verifier_aad_version IN (1, 2));
COMMENT ON COLUMN oauth_states.verifier_aad_version IS 'AAD layout of the sealed verifier, as credentials.aad_version.';

-- Queued revocations did not record their workspace; v2 needs it. Replicas of the previous
-- release insert without it, hence nullable, and only v1 rows may lack it.
ALTER TABLE pending_revocations
    ADD COLUMN workspace_id uuid,
    ADD COLUMN aad_version smallint NOT NULL DEFAULT 1 CHECK (aad_version IN (1, 2)),
    ADD CONSTRAINT pending_revocations_v2_has_workspace CHECK (aad_version = 1 OR workspace_id IS NOT NULL);
UPDATE pending_revocations p SET workspace_id = i.workspace_id
    FROM integrations i WHERE i.id = p.integration_id;
COMMENT ON COLUMN pending_revocations.workspace_id IS 'Workspace of the integration; part of the v2 AAD.';
COMMENT ON COLUMN pending_revocations.aad_version IS 'AAD layout of the sealed token, as credentials.aad_version.';

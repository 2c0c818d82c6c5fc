-- Workspaces, integrations, their sealed credentials, and the audit trail.

CREATE TABLE workspaces (
    id         uuid PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE workspaces IS 'Tenants, created on first use from the workspace_id claim of a caller''s token.';

CREATE TABLE integrations (
    id                    uuid PRIMARY KEY,
    workspace_id          uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    platform              text NOT NULL CHECK (platform IN (
        'zoom', 'slack', 'discord', 'outlook', 'monday', 'gmail', 'notion', 'loom',
        'fireflies', 'otter', 'granola', 'zerodb', 'zerovoice', 'custom')),
    status                text NOT NULL CHECK (status IN ('pending', 'connected', 'needs_reauth', 'error', 'revoked')),
    status_reason         text,
    display_name          text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    metadata              jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    provider_account_id   text NOT NULL DEFAULT '',
    scopes                text[] NOT NULL DEFAULT '{}',
    credential_fields     text[] NOT NULL DEFAULT '{}',
    health_state          text NOT NULL DEFAULT 'unknown' CHECK (health_state IN ('unknown', 'healthy', 'degraded', 'needs_reauth', 'revoked')),
    last_check_at         timestamptz,
    credential_expires_at timestamptz,
    created_by            uuid,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    revoked_at            timestamptz
);
COMMENT ON COLUMN integrations.id IS 'UUIDv7: time-ordered, so keyset paging by id is paging by creation.';
COMMENT ON COLUMN integrations.provider_account_id IS 'The account at the provider (Slack team, Twilio SID, ...); empty when the credentials name none.';
COMMENT ON COLUMN integrations.status_reason IS 'UPPER_SNAKE reason for the status, e.g. REFRESH_TOKEN_REVOKED.';
COMMENT ON COLUMN integrations.credential_expires_at IS 'When the access token expires; NULL for credentials that do not expire.';
COMMENT ON COLUMN integrations.credential_fields IS 'Names of the sealed fields in credentials, kept in step by the store so reads need no join.';
COMMENT ON COLUMN integrations.revoked_at IS 'Set on disconnect; credentials are deleted at the same time.';

-- One live connection per workspace + platform + provider account. Disconnected (revoked) rows
-- stay for history and do not block reconnecting.
CREATE UNIQUE INDEX integrations_workspace_platform_account_key
    ON integrations (workspace_id, platform, provider_account_id)
    WHERE status <> 'revoked';
CREATE INDEX integrations_workspace_id_idx ON integrations (workspace_id, id);

CREATE TABLE credentials (
    integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    field          text NOT NULL,
    key_id         text NOT NULL,
    nonce          bytea NOT NULL CHECK (length(nonce) = 12),
    ciphertext     bytea NOT NULL,
    version        bigint NOT NULL DEFAULT 1,
    expires_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, field)
);
COMMENT ON TABLE credentials IS 'One AES-256-GCM sealed value per credential field; AAD binds it to integration, field and key id.';
COMMENT ON COLUMN credentials.key_id IS 'Keyring entry that sealed it; rows under a retired key are rewrapped by `keys rewrap`.';
COMMENT ON COLUMN credentials.version IS 'Bumped on every re-seal, for compare-and-swap updates.';
CREATE INDEX credentials_key_id_idx ON credentials (key_id);

CREATE TABLE audit_events (
    id             bigserial PRIMARY KEY,
    workspace_id   uuid NOT NULL,
    integration_id uuid,
    actor_id       uuid,
    actor_role     text,
    action         text NOT NULL,
    detail         jsonb NOT NULL DEFAULT '{}',
    request_id     text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE audit_events IS 'Who did what to which integration. Never holds a secret.';
CREATE INDEX audit_events_integration_idx ON audit_events (integration_id, id);

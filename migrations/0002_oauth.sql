-- OAuth: authorization states, and the bookkeeping of token refresh across replicas.

CREATE TABLE oauth_states (
    state_hash          bytea PRIMARY KEY,
    id                  uuid NOT NULL UNIQUE,
    workspace_id        uuid NOT NULL,
    user_id             uuid NOT NULL,
    user_role           text NOT NULL,
    provider            text NOT NULL,
    platform            text NOT NULL,
    verifier_key_id     text,
    verifier_nonce      bytea,
    verifier_ciphertext bytea,
    return_to           text,
    redirect_uri        text NOT NULL,
    expires_at          timestamptz NOT NULL,
    consumed_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE oauth_states IS 'One row per started authorization. Any replica can finish it.';
COMMENT ON COLUMN oauth_states.state_hash IS 'SHA-256 of the state sent to the provider; the state itself is never stored.';
COMMENT ON COLUMN oauth_states.id IS 'Anchors the AAD of the sealed PKCE verifier.';
COMMENT ON COLUMN oauth_states.consumed_at IS 'Set by the first callback that uses the state; later ones are replays.';
CREATE INDEX oauth_states_expires_at_idx ON oauth_states (expires_at);

ALTER TABLE integrations
    ADD COLUMN credential_version      bigint NOT NULL DEFAULT 1,
    ADD COLUMN refresh_claimed_until   timestamptz,
    ADD COLUMN refresh_failures        integer NOT NULL DEFAULT 0,
    ADD COLUMN next_refresh_attempt_at timestamptz,
    ADD COLUMN tokens_refreshed_at     timestamptz,
    ADD COLUMN connection_type         text NOT NULL DEFAULT 'direct' CHECK (connection_type IN ('direct', 'oauth'));
COMMENT ON COLUMN integrations.tokens_refreshed_at IS 'Last successful refresh; refresh requests right after one reuse its tokens.';
COMMENT ON COLUMN integrations.connection_type IS 'direct: API key or pasted token; oauth: granted through a provider''s consent screen.';
COMMENT ON COLUMN integrations.credential_version IS 'Bumped whenever tokens are replaced: a refresh that finds a newer version than it started from was done by someone else.';
COMMENT ON COLUMN integrations.refresh_claimed_until IS 'Lease of the background refresh loop of one replica.';
COMMENT ON COLUMN integrations.refresh_failures IS 'Consecutive transient refresh failures, for backoff.';
COMMENT ON COLUMN integrations.next_refresh_attempt_at IS 'No background refresh before this (backoff after failures).';
CREATE INDEX integrations_refresh_due_idx ON integrations (credential_expires_at)
    WHERE status = 'connected' AND credential_expires_at IS NOT NULL;

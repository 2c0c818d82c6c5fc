-- One-time handles (issue 10, item 2): the callback no longer exchanges the code. It seals the
-- code here and hands the browser an opaque handle; the user who started the flow redeems it
-- with their own token (CompleteAuthorization), and only then is the code exchanged.

CREATE TABLE oauth_handles (
    handle_hash      bytea PRIMARY KEY,
    id               uuid NOT NULL UNIQUE,
    state_id         uuid NOT NULL REFERENCES oauth_states (id) ON DELETE CASCADE,
    workspace_id     uuid NOT NULL,
    code_key_id      text,
    code_aad_version smallint NOT NULL DEFAULT 2 CHECK (code_aad_version IN (1, 2)),
    code_nonce       bytea,
    code_ciphertext  bytea,
    expires_at       timestamptz NOT NULL,
    consumed_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT oauth_handles_code_until_consumed CHECK (
        (consumed_at IS NULL) = (code_ciphertext IS NOT NULL AND code_nonce IS NOT NULL AND code_key_id IS NOT NULL))
);
COMMENT ON TABLE oauth_handles IS 'One row per callback that came back with a code; redeemed once by the user who started the flow.';
COMMENT ON COLUMN oauth_handles.handle_hash IS 'SHA-256 of the handle given to the browser; the handle itself is never stored.';
COMMENT ON COLUMN oauth_handles.id IS 'Anchors the AAD of the sealed code.';
COMMENT ON COLUMN oauth_handles.state_id IS 'The consumed authorization state: who started the flow, provider, verifier, redirect URI.';
COMMENT ON COLUMN oauth_handles.workspace_id IS 'Workspace of the state; part of the AAD of the sealed code.';
COMMENT ON COLUMN oauth_handles.code_ciphertext IS 'The sealed authorization code; cleared when the handle is redeemed.';
COMMENT ON COLUMN oauth_handles.consumed_at IS 'Set by the first CompleteAuthorization that redeems the handle; later ones are replays.';
CREATE INDEX oauth_handles_expires_at_idx ON oauth_handles (expires_at);
CREATE INDEX oauth_handles_state_id_idx ON oauth_handles (state_id);

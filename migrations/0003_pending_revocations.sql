-- Revocations a provider could not take (5xx, timeouts): retried later by the refresh loop of
-- any replica. The local credentials are already gone; only this sealed copy remains, until the
-- provider confirms or the retries run out.

CREATE TABLE pending_revocations (
    id              uuid PRIMARY KEY,
    integration_id  uuid NOT NULL,
    provider        text NOT NULL,
    method          text NOT NULL CHECK (method IN ('rfc7009', 'slack')),
    token_type_hint text NOT NULL,
    key_id          text NOT NULL,
    nonce           bytea NOT NULL CHECK (length(nonce) = 12),
    ciphertext      bytea NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    claimed_until   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN pending_revocations.id IS 'Anchors the AAD of the sealed token.';
COMMENT ON COLUMN pending_revocations.claimed_until IS 'Lease of the replica retrying it.';
CREATE INDEX pending_revocations_due_idx ON pending_revocations (next_attempt_at);

-- Refresh without holding a transaction across the provider call: a committed lease names the
-- one caller (on any replica) talking to the token endpoint for an integration; everyone else
-- waits for its commit without a connection. A disconnect marks the row first, so no refresh
-- starts after it, and takes the same lease, so none is in flight while it revokes.

ALTER TABLE integrations
    ADD COLUMN refresh_lease_holder uuid,
    ADD COLUMN refresh_lease_until  timestamptz,
    ADD COLUMN disconnecting_at     timestamptz;
COMMENT ON COLUMN integrations.refresh_lease_holder IS 'Random id of the refresh (or disconnect) holding the lease; its token write is a compare-and-set on this and credential_version.';
COMMENT ON COLUMN integrations.refresh_lease_until IS 'When the lease runs out: a holder that died frees it then. NULL or past means free.';
COMMENT ON COLUMN integrations.disconnecting_at IS 'Set when a disconnect begins: no refresh starts, and tokens a refresh still obtains are revoked.';

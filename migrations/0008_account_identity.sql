-- Who an integration acts as, verified with the provider (issue 10, items 5 and 7).

-- Slack's bot user: a bot token is shared by exactly the connections of one app installation
-- (one bot user of one team), so only rows with the same bot user may keep it alive. Taken from
-- the OAuth response or from `auth.test` of a pasted token; never from a caller.
ALTER TABLE integrations ADD COLUMN bot_user_id text;
COMMENT ON COLUMN integrations.bot_user_id IS 'Slack bot user of a bot token, as Slack named it (oauth.v2.access or auth.test); NULL when unknown. Not editable.';
UPDATE integrations SET bot_user_id = NULLIF(metadata->>'bot_user_id', '')
 WHERE platform = 'slack' AND connection_type = 'oauth';

-- An OAuth grant whose provider names no account is a connection of its own: matching it on the
-- empty account would let one member's reconnect take over another's integration.
DROP INDEX integrations_workspace_platform_account_key;
CREATE UNIQUE INDEX integrations_workspace_platform_account_key
    ON integrations (workspace_id, platform, provider_account_id)
    WHERE status <> 'revoked' AND (provider_account_id <> '' OR connection_type <> 'oauth');

-- Health: the state machine's counters on each integration, the probe schedule the sweep claims
-- from, the history of checks, and the events every transition writes (and NOTIFYs).

ALTER TABLE integrations
    ADD COLUMN health_reason       text,
    ADD COLUMN health_message      text NOT NULL DEFAULT '',
    ADD COLUMN health_failures     integer NOT NULL DEFAULT 0,
    ADD COLUMN health_successes    integer NOT NULL DEFAULT 0,
    ADD COLUMN next_check_at       timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN check_claimed_until timestamptz;
COMMENT ON COLUMN integrations.health_reason IS 'UPPER_SNAKE reason of the last failed check or lifecycle change; NULL when healthy.';
COMMENT ON COLUMN integrations.health_failures IS 'Consecutive transient failures (hysteresis towards DEGRADED).';
COMMENT ON COLUMN integrations.health_successes IS 'Consecutive successes (hysteresis back to HEALTHY).';
COMMENT ON COLUMN integrations.next_check_at IS 'When the sweep probes it next; successful traffic pushes it back.';
COMMENT ON COLUMN integrations.check_claimed_until IS 'Lease of the replica probing it; an expired lease is free to take.';
CREATE INDEX integrations_check_due_idx ON integrations (next_check_at) WHERE status <> 'revoked';

CREATE TABLE health_checks (
    id             uuid PRIMARY KEY,
    integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    workspace_id   uuid NOT NULL,
    source         text NOT NULL CHECK (source IN ('probe', 'traffic')),
    healthy        boolean NOT NULL,
    state          text NOT NULL,
    reason         text,
    message        text NOT NULL,
    latency_ms     bigint NOT NULL,
    checked_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE health_checks IS 'One row per probe, and per failure that real traffic met. Pruned by retention.';
COMMENT ON COLUMN health_checks.id IS 'UUIDv7: newest-first keyset paging by id is paging by time.';
COMMENT ON COLUMN health_checks.state IS 'The integration''s health state after this check, hysteresis applied.';
CREATE INDEX health_checks_integration_idx ON health_checks (integration_id, id DESC);
CREATE INDEX health_checks_workspace_failed_idx ON health_checks (workspace_id, checked_at DESC) WHERE NOT healthy;
CREATE INDEX health_checks_checked_at_idx ON health_checks (checked_at);

CREATE TABLE health_events (
    seq            bigserial PRIMARY KEY,
    workspace_id   uuid NOT NULL,
    integration_id uuid NOT NULL,
    platform       text NOT NULL,
    previous_state text NOT NULL,
    state          text NOT NULL,
    reason         text NOT NULL DEFAULT '',
    message        text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE health_events IS 'Every health transition and lifecycle change. Inserts hold an advisory lock until commit, so seq order is commit order and a reader that has seen seq n has seen everything before it.';
CREATE INDEX health_events_workspace_idx ON health_events (workspace_id, seq);
CREATE INDEX health_events_created_at_idx ON health_events (created_at);

CREATE TABLE health_event_retention (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pruned_through bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE health_event_retention IS 'The highest seq pruned: a stream resuming before it may have missed events (EVENTS_EXPIRED).';
INSERT INTO health_event_retention DEFAULT VALUES;

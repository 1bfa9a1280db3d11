-- Webhooks: the tenant's endpoints, one message per event and matching endpoint (the outbox,
-- written in the event's transaction), and every delivery attempt.

CREATE TABLE webhook_endpoints (
    id                     TEXT PRIMARY KEY,
    tenant_id              TEXT NOT NULL REFERENCES tenants(id),
    url                    TEXT NOT NULL,
    description            TEXT,
    -- JSON array of exact names and prefixes (`omni.journey.*`); empty: every event.
    event_types            TEXT NOT NULL,
    enabled                INTEGER NOT NULL,
    disabled_reason        TEXT,
    secret                 TEXT NOT NULL,
    previous_secret        TEXT,
    previous_secret_until  INTEGER,
    -- When the current unbroken run of failed attempts began; NULL after a success.
    failing_since          INTEGER,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints(tenant_id, created_at);

CREATE TABLE webhook_messages (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints(id),
    event_seq        INTEGER NOT NULL REFERENCES events(seq),
    event_type       TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    -- Failed attempts since the message was created or last retried by hand: the place in
    -- the retry schedule.
    failures         INTEGER NOT NULL,
    next_attempt_at  INTEGER,
    lease_until      INTEGER,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    failed_at        INTEGER
);
CREATE INDEX webhook_messages_due ON webhook_messages(next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_messages_endpoint ON webhook_messages(endpoint_id, created_at);

CREATE TABLE webhook_attempts (
    id               TEXT PRIMARY KEY,
    message_id       TEXT NOT NULL REFERENCES webhook_messages(id),
    endpoint_id      TEXT NOT NULL,
    attempted_at     INTEGER NOT NULL,
    succeeded        INTEGER NOT NULL,
    status_code      INTEGER,
    duration_ms      INTEGER NOT NULL,
    response_body    TEXT,
    error            TEXT
);
CREATE INDEX webhook_attempts_message ON webhook_attempts(message_id, attempted_at);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts(endpoint_id, attempted_at);

-- Cross-channel sessions and their handoffs (seed 000).

CREATE TABLE channel_sessions (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    customer_id   TEXT NOT NULL,
    channel       TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    context       TEXT NOT NULL,
    started_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    ended_at      BIGINT,
    end_reason    TEXT,
    handoff_id    TEXT,
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id)
);
CREATE INDEX channel_sessions_customer ON channel_sessions(tenant_id, customer_id, channel);
CREATE INDEX channel_sessions_idle ON channel_sessions(ended_at, last_seen_at);

CREATE TABLE handoffs (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants(id),
    token_hash         TEXT NOT NULL UNIQUE,
    source_session_id  TEXT NOT NULL REFERENCES channel_sessions(id),
    customer_id        TEXT NOT NULL,
    target_channel     TEXT NOT NULL,
    context            TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    used_at            BIGINT,
    target_session_id  TEXT
);

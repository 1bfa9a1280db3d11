-- A session id is the client's choice (`session_id` on POST /sessions), so it is unique
-- within its tenant only: tenant B may use `sess_web_123` while tenant A holds it (issue 20).
-- SQLite cannot change a primary key in place: both tables are rebuilt, the handoffs (whose
-- source session is now named by tenant and id) after the sessions, and renamed into place.

CREATE TABLE channel_sessions_new (
    id            TEXT NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    customer_id   TEXT NOT NULL,
    channel       TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    context       TEXT NOT NULL,
    started_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    ended_at      INTEGER,
    end_reason    TEXT,
    handoff_id    TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id)
);
INSERT INTO channel_sessions_new
    (id, tenant_id, customer_id, channel, device_id, context, started_at, last_seen_at,
     ended_at, end_reason, handoff_id)
SELECT id, tenant_id, customer_id, channel, device_id, context, started_at, last_seen_at,
       ended_at, end_reason, handoff_id
FROM channel_sessions;

CREATE TABLE handoffs_new (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants(id),
    token_hash         TEXT NOT NULL UNIQUE,
    source_session_id  TEXT NOT NULL,
    customer_id        TEXT NOT NULL,
    target_channel     TEXT NOT NULL,
    context            TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    used_at            INTEGER,
    target_session_id  TEXT,
    FOREIGN KEY (tenant_id, source_session_id) REFERENCES channel_sessions_new(tenant_id, id)
);
INSERT INTO handoffs_new
    (id, tenant_id, token_hash, source_session_id, customer_id, target_channel, context,
     created_at, expires_at, used_at, target_session_id)
SELECT id, tenant_id, token_hash, source_session_id, customer_id, target_channel, context,
       created_at, expires_at, used_at, target_session_id
FROM handoffs;

DROP TABLE handoffs;
DROP TABLE channel_sessions;
ALTER TABLE channel_sessions_new RENAME TO channel_sessions;
ALTER TABLE handoffs_new RENAME TO handoffs;

CREATE INDEX channel_sessions_customer ON channel_sessions(tenant_id, customer_id, channel);
CREATE INDEX channel_sessions_idle ON channel_sessions(ended_at, last_seen_at);
CREATE INDEX channel_sessions_open ON channel_sessions(tenant_id, last_seen_at) WHERE ended_at IS NULL;
CREATE INDEX handoffs_source ON handoffs(tenant_id, source_session_id);

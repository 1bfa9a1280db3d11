-- Foundation: tenants, API keys, idempotency, the event spine, journey templates, journeys.
-- Times are integer milliseconds since the Unix epoch (UTC); JSON is stored as text.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    plan        TEXT NOT NULL DEFAULT 'enterprise',
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT,
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id);

CREATE TABLE idempotency_keys (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    idem_key      TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status_code   BIGINT NOT NULL,
    response_body TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);

CREATE TABLE events (
    seq         BIGSERIAL PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    event_type  TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    actor_id    TEXT,
    channel     TEXT,
    summary     TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    payload     TEXT NOT NULL
);
CREATE INDEX events_tenant_time ON events(tenant_id, occurred_at);

CREATE TABLE event_entities (
    tenant_id   TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    event_seq   BIGINT NOT NULL REFERENCES events(seq),
    occurred_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, entity_type, entity_id, event_seq)
);

CREATE TABLE journey_templates (
    tenant_id               TEXT NOT NULL REFERENCES tenants(id),
    id                      TEXT NOT NULL,
    version                 BIGINT NOT NULL,
    name                    TEXT NOT NULL,
    description             TEXT,
    category                TEXT,
    status                  TEXT NOT NULL,
    steps                   TEXT NOT NULL,
    estimated_duration_days BIGINT,
    sla_hours               BIGINT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX journey_templates_list ON journey_templates(tenant_id, created_at);

CREATE TABLE journey_template_versions (
    tenant_id   TEXT NOT NULL,
    template_id TEXT NOT NULL,
    version     BIGINT NOT NULL,
    name        TEXT NOT NULL,
    steps       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, template_id, version),
    FOREIGN KEY (tenant_id, template_id) REFERENCES journey_templates(tenant_id, id)
);

CREATE TABLE journeys (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants(id),
    template_id          TEXT NOT NULL,
    template_version     BIGINT NOT NULL,
    customer_id          TEXT NOT NULL,
    channel              TEXT NOT NULL,
    status               TEXT NOT NULL,
    current_step_index   BIGINT NOT NULL,
    current_step_status  TEXT NOT NULL,
    assignee_id          TEXT,
    assignee_type        TEXT,
    priority             TEXT NOT NULL,
    due_at               BIGINT,
    context              TEXT NOT NULL,
    outcome              TEXT,
    notes                TEXT,
    row_version          BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    FOREIGN KEY (tenant_id, template_id, template_version)
        REFERENCES journey_template_versions(tenant_id, template_id, version)
);
CREATE INDEX journeys_list ON journeys(tenant_id, created_at);
CREATE INDEX journeys_status ON journeys(tenant_id, status, created_at);
CREATE INDEX journeys_customer ON journeys(tenant_id, customer_id, created_at);
CREATE INDEX journeys_assignee ON journeys(tenant_id, assignee_id, created_at);
CREATE INDEX journeys_template ON journeys(tenant_id, template_id, created_at);

CREATE TABLE journey_step_history (
    journey_id  TEXT NOT NULL REFERENCES journeys(id),
    seq         BIGINT NOT NULL,
    step_id     TEXT NOT NULL,
    step_index  BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    data        TEXT NOT NULL,
    actor_id    TEXT,
    occurred_at BIGINT NOT NULL,
    PRIMARY KEY (journey_id, seq)
);

-- Onboarding sessions (seed 002): configurations, onboardings, their tokens, handoffs and
-- documents. Session and handoff tokens are stored only as SHA-256.

CREATE TABLE onboarding_configurations (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    id           TEXT NOT NULL,
    name         TEXT NOT NULL,
    template_id  TEXT NOT NULL,
    countries    TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX onboarding_configurations_list ON onboarding_configurations(tenant_id, created_at);

CREATE TABLE onboardings (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants(id),
    configuration_id      TEXT NOT NULL,
    journey_id            TEXT NOT NULL REFERENCES journeys(id),
    customer_id           TEXT NOT NULL,
    external_customer_id  TEXT,
    country_code          TEXT NOT NULL,
    language              TEXT,
    redirect_url          TEXT,
    custom_fields         TEXT NOT NULL,
    channel               TEXT NOT NULL,
    data                  TEXT NOT NULL,
    status                TEXT NOT NULL,
    row_version           BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    finished_at           BIGINT,
    FOREIGN KEY (tenant_id, configuration_id) REFERENCES onboarding_configurations(tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id)
);
CREATE INDEX onboardings_list ON onboardings(tenant_id, created_at);
CREATE INDEX onboardings_external ON onboardings(tenant_id, external_customer_id, created_at);

CREATE TABLE onboarding_tokens (
    token_hash     TEXT PRIMARY KEY,
    onboarding_id  TEXT NOT NULL REFERENCES onboardings(id),
    channel        TEXT NOT NULL,
    device_id      TEXT,
    handoff_id     TEXT,
    created_at     BIGINT NOT NULL
);
CREATE INDEX onboarding_tokens_onboarding ON onboarding_tokens(onboarding_id);

CREATE TABLE onboarding_handoffs (
    id             TEXT PRIMARY KEY,
    token_hash     TEXT NOT NULL UNIQUE,
    onboarding_id  TEXT NOT NULL REFERENCES onboardings(id),
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);

CREATE TABLE onboarding_documents (
    id             TEXT PRIMARY KEY,
    onboarding_id  TEXT NOT NULL REFERENCES onboardings(id),
    step_id        TEXT NOT NULL,
    document_type  TEXT NOT NULL,
    content_type   TEXT NOT NULL,
    size_bytes     BIGINT NOT NULL,
    sha256         TEXT NOT NULL,
    file_name      TEXT,
    storage_key    TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX onboarding_documents_onboarding ON onboarding_documents(onboarding_id, created_at);

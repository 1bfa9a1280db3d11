-- Notifications: templates, per-tenant providers, rules, customers' push devices, and each
-- notification with one delivery per channel. Provider secrets are stored here and never
-- answered back by the API.

ALTER TABLE customers ADD COLUMN quiet_hours TEXT;

CREATE TABLE notification_templates (
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    code              TEXT NOT NULL,
    name              TEXT,
    default_language  TEXT NOT NULL,
    content           TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, code)
);

CREATE TABLE notification_providers (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    channel     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    settings    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, channel)
);

CREATE TABLE notification_rules (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    event_type     TEXT NOT NULL,
    recipients     TEXT NOT NULL,
    channels       TEXT NOT NULL,
    template_code  TEXT NOT NULL,
    priority       TEXT NOT NULL,
    enabled        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, event_type)
);

CREATE TABLE customer_devices (
    tenant_id    TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    platform     TEXT NOT NULL,
    push_token   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, device_id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id)
);

CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    recipient_id    TEXT NOT NULL,
    recipient_type  TEXT NOT NULL,
    template_code   TEXT NOT NULL,
    template_data   TEXT NOT NULL,
    language        TEXT NOT NULL,
    priority        TEXT NOT NULL,
    schedule_at     INTEGER,
    status          TEXT NOT NULL,
    source_event    TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    read_at         INTEGER,
    cancelled_at    INTEGER
);
CREATE INDEX notifications_list ON notifications(tenant_id, created_at);
CREATE INDEX notifications_recipient ON notifications(tenant_id, recipient_id, created_at);

CREATE TABLE notification_deliveries (
    id                   TEXT PRIMARY KEY,
    notification_id      TEXT NOT NULL REFERENCES notifications(id),
    tenant_id            TEXT NOT NULL,
    channel              TEXT NOT NULL,
    status               TEXT NOT NULL,
    content              TEXT NOT NULL,
    provider             TEXT,
    provider_message_id  TEXT,
    attempts             INTEGER NOT NULL,
    error_code           TEXT,
    last_error           TEXT,
    next_attempt_at      INTEGER,
    lease_until          INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    sent_at              INTEGER,
    delivered_at         INTEGER,
    failed_at            INTEGER,
    UNIQUE (notification_id, channel)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries(next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX notification_deliveries_provider
    ON notification_deliveries(provider, provider_message_id);
CREATE INDEX notification_deliveries_channel
    ON notification_deliveries(tenant_id, channel, status);

-- Secrets at rest (issue 26): each tenant's data key, wrapped under the key-encryption key
-- (KEK) of the configuration, never stored here. `kek_id` names the KEK (a digest of it, not
-- the key). Webhook secrets and provider credentials are sealed under the data key by the
-- server (src/secrets); those stored before this migration are sealed when `omnirail serve`
-- next starts.
CREATE TABLE tenant_data_keys (
    tenant_id     TEXT PRIMARY KEY REFERENCES tenants(id),
    kek_id        TEXT NOT NULL,
    wrapped_key   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    rewrapped_at  BIGINT
);

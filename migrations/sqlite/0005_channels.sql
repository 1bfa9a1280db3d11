-- Channels a tenant has switched on or off, within what its plan includes.
CREATE TABLE tenant_channels (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    channel     TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, channel)
);

-- Channel analytics (seed 000: Get Channel Activity), kept per UTC day (days since 1970-01-01)
-- as changes happen. Derived figures: no foreign keys, nothing reads them but analytics.

-- API calls that changed something, per channel.
CREATE TABLE channel_daily (
    tenant_id     TEXT NOT NULL,
    day           INTEGER NOT NULL,
    channel       TEXT NOT NULL,
    transactions  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day, channel)
) WITHOUT ROWID;

-- Customers with a session open on a channel that day.
CREATE TABLE channel_daily_users (
    tenant_id    TEXT NOT NULL,
    day          INTEGER NOT NULL,
    channel      TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, day, channel, customer_id)
) WITHOUT ROWID;

-- Channels each journey was touched from that day.
CREATE TABLE journey_daily_channels (
    tenant_id   TEXT NOT NULL,
    day         INTEGER NOT NULL,
    journey_id  TEXT NOT NULL,
    channel     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, day, journey_id, channel)
) WITHOUT ROWID;

-- Sessions not yet ended, by tenant and last activity (the open ones analytics adds).
CREATE INDEX channel_sessions_open ON channel_sessions(tenant_id, last_seen_at) WHERE ended_at IS NULL;
